/**
 * `docker image inspect`'s JSON shape for an image in the store.
 *
 * @module
 */
import type { Image } from "../image/image.ts";
import type { ImageRecord } from "../metadata/image_db.ts";
import { familiarString, parseReference } from "../reference.ts";
import type { ContainerConfig } from "../oci/types.ts";

/**
 * What `inspect` prints for an image (docker's field names).
 *
 * @example
 * ```ts
 * import type { ImageInspect } from "@berth/berth";
 * const summary = (i: ImageInspect) => `${i.Id} ${i.Os}/${i.Architecture} ${i.RootFS.Layers.length} layers`;
 * ```
 */
export interface ImageInspect {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
  Parent: string;
  Comment: string;
  Created: string;
  DockerVersion: string;
  Author: string;
  Config: ContainerConfig;
  Architecture: string;
  Variant?: string;
  Os: string;
  Size: number;
  GraphDriver: { Name: string; Data: Record<string, string> | null };
  RootFS: { Type: string; Layers: string[] };
  Metadata: { LastTagTime: string };
  Descriptor: { mediaType: string; digest: string; size: number };
}

/** Builds the inspect object of `record`, whose image model is `image`. */
export function inspectImage(record: ImageRecord, image: Image): ImageInspect {
  const c = image.config;
  const history = c.history ?? [];
  return {
    Id: record.id,
    RepoTags: record.repoTags.map((t) => familiarString(parseReference(t))),
    RepoDigests: record.repoDigests.map((t) => familiarString(parseReference(t))),
    Parent: "",
    Comment: history.length ? history[history.length - 1].comment ?? "" : "",
    Created: c.created ?? "0001-01-01T00:00:00Z",
    DockerVersion: typeof c.docker_version === "string" ? c.docker_version : "",
    Author: c.author ?? "",
    Config: c.config ?? {},
    Architecture: c.architecture,
    ...(c.variant ? { Variant: c.variant } : {}),
    Os: c.os,
    Size: record.size,
    GraphDriver: { Name: "overlay", Data: null },
    RootFS: { Type: "layers", Layers: [...c.rootfs.diff_ids] },
    Metadata: { LastTagTime: record.lastTagTime ?? "0001-01-01T00:00:00Z" },
    Descriptor: {
      mediaType: image.manifest.mediaType ?? "application/vnd.oci.image.manifest.v1+json",
      digest: image.manifestDigest,
      size: image.manifestBytes.byteLength,
    },
  };
}
