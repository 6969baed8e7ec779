/**
 * Finding an image record by what a user types: a tag (`busybox`, `busybox:1`), a digest reference
 * (`busybox@sha256:…`), a full or short image ID (`sha256:ab…`, `ab12`), as docker does.
 *
 * @module
 */
import { NotFoundError } from "../errors.ts";
import type { ImageDbData, ImageRecord } from "../metadata/image_db.ts";
import { formatReference, parseReference, repositoryName } from "../reference.ts";
import { ConflictError } from "../errors.ts";

/** Finds the record `input` names, or throws `NotFoundError` (`No such image: x`). */
export function resolveImage(data: ImageDbData, input: string): ImageRecord {
  const found = findImage(data, input);
  if (!found) throw new NotFoundError(`No such image: ${input}`);
  return found;
}

/** Like {@linkcode resolveImage} but returns `undefined` when nothing matches. */
export function findImage(data: ImageDbData, input: string): ImageRecord | undefined {
  const idPrefix = /^(?:sha256:)?([0-9a-f]{1,64})$/.exec(input)?.[1];
  if (idPrefix && (input.startsWith("sha256:") || idPrefix.length === 64)) {
    return byIdPrefix(data, idPrefix, input);
  }
  let ref;
  try {
    ref = parseReference(input);
  } catch (e) {
    if (idPrefix) return byIdPrefix(data, idPrefix, input);
    throw e;
  }
  if (ref.digest) {
    const name = repositoryName(ref);
    const hit = data.images.find((i) =>
      i.repoDigests.includes(`${name}@${ref.digest}`) ||
      (i.manifest === ref.digest && i.repoTags.some((t) => t.startsWith(`${name}:`)))
    );
    if (hit) return hit;
  } else {
    const canonical = formatReference(ref);
    const hit = data.images.find((i) => i.repoTags.includes(canonical));
    if (hit) return hit;
  }
  return idPrefix ? byIdPrefix(data, idPrefix, input) : undefined;
}

function byIdPrefix(data: ImageDbData, hex: string, input: string): ImageRecord | undefined {
  const hits = data.images.filter((i) => i.id.startsWith(`sha256:${hex}`));
  if (hits.length > 1) throw new ConflictError(`Image ID prefix "${input}" is ambiguous`);
  return hits[0];
}
