/**
 * Reads image archives: `docker save` / `podman save` / skopeo docker-archives (manifest.json),
 * OCI image layout tars (index.json + oci-layout: skopeo, podman, buildah oci-archive) and docker ≥ 25
 * saves that carry both. Every referenced blob is staged and checked against its digest and size;
 * nothing is committed here.
 *
 * @module
 */
import type { Digest } from "../digest.ts";
import { InvalidInputError, LimitError, UnsupportedError } from "../errors.ts";
import type { IngestSession, StagedBlob } from "../content/store.ts";
import { createImage, type Image } from "../image/image.ts";
import {
  isImageManifest,
  MAX_CONFIG_SIZE,
  MAX_MANIFEST_SIZE,
  parseIndex,
  parseJson,
  parseManifest,
  sniffManifestKind,
} from "../image/parse.ts";
import { isIndexMediaType, isManifestMediaType, MediaType } from "../oci/media_types.ts";
import { selectPlatform } from "../oci/platform.ts";
import type { Descriptor, Manifest, Platform } from "../oci/types.ts";
import { formatReference, parseReference } from "../reference.ts";
import { detectCompression } from "../compression.ts";
import { ArchiveFiles } from "./_archive_files.ts";

/** One image found in an archive, with its staged, digest-checked blobs. */
export interface ArchiveImage {
  readonly image: Image;
  /** Canonical references to tag the image with. */
  readonly tags: readonly string[];
  /** Manifest, config and layer blobs by digest. */
  readonly blobs: ReadonlyMap<Digest, StagedBlob>;
}

/** Options of {@linkcode readImageArchive}. */
export interface ReadArchiveOptions {
  /** Where blobs are staged. */
  session: IngestSession;
  /** Prefix of error messages, e.g. `Cannot load "x.tar"`. */
  what: string;
  /** Platform to pick from image indexes. */
  platform: Platform;
}

/** Annotation holding the full image name (containerd, docker ≥ 25). */
const CONTAINERD_NAME = "io.containerd.image.name";
/** OCI annotation holding the reference name (often only the tag). */
const OCI_REF_NAME = "org.opencontainers.image.ref.name";

const encoder = new TextEncoder();

async function readStaged(blob: StagedBlob, maxSize: number, what: string): Promise<Uint8Array> {
  if (blob.size > maxSize) {
    throw new LimitError(`${what} is ${blob.size} bytes, more than the limit of ${maxSize}`);
  }
  return await Deno.readFile(blob.path);
}

async function readHead(blob: StagedBlob): Promise<Uint8Array> {
  using file = await Deno.open(blob.path, { read: true });
  const head = new Uint8Array(8);
  const n = await file.read(head);
  return head.subarray(0, n ?? 0);
}

/** Parses one `RepoTags` / annotation name into a canonical reference, or undefined. */
function canonicalTag(name: string, what: string): string {
  try {
    const ref = parseReference(name);
    if (ref.digest) throw new TypeError("a tag may not carry a digest");
    return formatReference(ref);
  } catch (e) {
    throw new InvalidInputError(`${what}: invalid image name "${name}": ${(e as Error).message}`);
  }
}

/** Reads an image archive stream; see the module doc for the formats. */
export async function readImageArchive(
  source: ReadableStream<Uint8Array>,
  options: ReadArchiveOptions,
): Promise<ArchiveImage[]> {
  const { what } = options;
  const files = await ArchiveFiles.read(source, options);
  const isOci = files.has("index.json") && files.has("oci-layout");
  const hasDockerManifest = files.has("manifest.json");
  if (!isOci && !hasDockerManifest) {
    throw new InvalidInputError(
      `${what}: not a docker-archive or OCI image archive (no manifest.json or index.json)`,
    );
  }
  const dockerEntries = hasDockerManifest ? await readDockerManifest(files, what) : [];
  const images = isOci
    ? await readOciLayout(files, options, dockerEntries)
    : await readDockerArchive(files, options, dockerEntries);
  if (images.length === 0) throw new InvalidInputError(`${what}: the archive holds no image`);
  return images;
}

interface DockerEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

async function readDockerManifest(files: ArchiveFiles, what: string): Promise<DockerEntry[]> {
  const bytes = await readStaged(
    files.get("manifest.json"),
    MAX_MANIFEST_SIZE,
    `${what}: manifest.json`,
  );
  const doc = parseJson(bytes, `${what}: manifest.json`, MAX_MANIFEST_SIZE);
  if (!Array.isArray(doc)) {
    throw new InvalidInputError(`${what}: manifest.json is not a JSON array`);
  }
  return doc.map((e, i) => {
    const where = `${what}: manifest.json[${i}]`;
    if (typeof e !== "object" || e === null) {
      throw new InvalidInputError(`${where} is not an object`);
    }
    const { Config, RepoTags, Layers } = e as Record<string, unknown>;
    if (typeof Config !== "string") throw new InvalidInputError(`${where} has no Config path`);
    if (!Array.isArray(Layers) || Layers.some((l) => typeof l !== "string")) {
      throw new InvalidInputError(`${where} has no Layers list`);
    }
    if (
      RepoTags != null && (!Array.isArray(RepoTags) || RepoTags.some((t) => typeof t !== "string"))
    ) {
      throw new InvalidInputError(`${where}: RepoTags is not a list of names`);
    }
    return {
      Config,
      Layers,
      RepoTags: ((RepoTags ?? []) as string[]).map((t) => canonicalTag(t, where)),
    };
  });
}

async function readDockerArchive(
  files: ArchiveFiles,
  options: ReadArchiveOptions,
  entries: DockerEntry[],
): Promise<ArchiveImage[]> {
  const { what, session } = options;
  const out: ArchiveImage[] = [];
  for (const entry of entries) {
    const blobs = new Map<Digest, StagedBlob>();
    const config = files.get(entry.Config, `config "${entry.Config}"`);
    const configBytes = await readStaged(
      config,
      MAX_CONFIG_SIZE,
      `${what}: config "${entry.Config}"`,
    );
    blobs.set(config.digest, config);
    const layers: Descriptor[] = [];
    for (const path of entry.Layers) {
      const blob = files.get(path, `layer "${path}"`);
      const compression = detectCompression(await readHead(blob));
      const mediaType = compression === "gzip"
        ? MediaType.OciLayerGzip
        : compression === "zstd"
        ? MediaType.OciLayerZstd
        : MediaType.OciLayer;
      layers.push({ mediaType, digest: blob.digest, size: blob.size });
      blobs.set(blob.digest, blob);
    }
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: config.digest, size: config.size },
      layers,
    };
    const manifestBytes = encoder.encode(JSON.stringify(manifest));
    const staged = await session.stage([manifestBytes], { what: `${what}: manifest` });
    blobs.set(staged.digest, staged);
    const image = createImage(staged.digest, manifestBytes, configBytes, { what });
    checkUncompressedDiffIDs(image, what);
    out.push({ image, tags: entry.RepoTags, blobs });
  }
  return out;
}

/** An uncompressed layer's digest is its diffID: check it now (compressed ones are checked later). */
function checkUncompressedDiffIDs(image: Image, what: string): void {
  for (const layer of image.layers) {
    if (layer.compression === "none" && layer.digest !== layer.diffID) {
      throw new InvalidInputError(
        `${what}: layer ${layer.digest} does not match diff_id ${layer.diffID} of config ${image.configDigest}`,
      );
    }
  }
}

async function readOciLayout(
  files: ArchiveFiles,
  options: ReadArchiveOptions,
  dockerEntries: DockerEntry[],
): Promise<ArchiveImage[]> {
  const { what, platform } = options;
  const layoutBytes = await readStaged(files.get("oci-layout"), 4096, `${what}: oci-layout`);
  const layout = parseJson(layoutBytes, `${what}: oci-layout`, 4096) as {
    imageLayoutVersion?: unknown;
  };
  if (layout?.imageLayoutVersion !== "1.0.0") {
    throw new UnsupportedError(
      `${what}: unsupported OCI layout version ${JSON.stringify(layout?.imageLayoutVersion)}`,
    );
  }
  const indexBytes = await readStaged(
    files.get("index.json"),
    MAX_MANIFEST_SIZE,
    `${what}: index.json`,
  );
  const index = parseIndex(indexBytes, `${what}: index.json`);

  const blob = (d: Descriptor, kind: string): StagedBlob => {
    const [algo, hex] = d.digest.split(":");
    const staged = files.get(`blobs/${algo}/${hex}`, `${kind} ${d.digest}`);
    if (staged.digest !== d.digest) {
      throw new InvalidInputError(`${what}: ${kind} ${d.digest} does not match its digest`);
    }
    if (staged.size !== d.size) {
      throw new InvalidInputError(
        `${what}: ${kind} ${d.digest} is ${staged.size} bytes, not its declared size ${d.size}`,
      );
    }
    return staged;
  };
  const tagsByConfig = new Map<string, string[]>();
  for (const entry of dockerEntries) {
    const config = files.get(entry.Config, `config "${entry.Config}"`);
    tagsByConfig.set(config.digest, [
      ...(tagsByConfig.get(config.digest) ?? []),
      ...entry.RepoTags,
    ]);
  }

  // Top-level image manifests that carry platforms and share a name are one multi-platform image.
  const groups = new Map<string, Descriptor[]>();
  for (const d of index.manifests) {
    if (
      d.mediaType === MediaType.DockerManifestV1 || d.mediaType === MediaType.DockerManifestV1Signed
    ) {
      throw new UnsupportedError(
        `${what}: manifest ${d.digest} is a Docker schema 1 manifest, which berth does not support`,
      );
    }
    if (!isIndexMediaType(d.mediaType) && !isManifestMediaType(d.mediaType)) continue;
    const name = d.annotations?.[CONTAINERD_NAME] ?? d.annotations?.[OCI_REF_NAME] ?? "";
    const key = d.platform ? `${name}\0platform` : `${name}\0${d.digest}`;
    groups.set(key, [...(groups.get(key) ?? []), d]);
  }
  const byManifest = new Map<Digest, ArchiveImage>();
  const out: ArchiveImage[] = [];
  for (const group of groups.values()) {
    let top = group.length > 1 ? selectPlatform(group, platform, `${what}: index.json`) : group[0];
    const tags = new Set<string>();
    const name = top.annotations?.[CONTAINERD_NAME] ?? top.annotations?.[OCI_REF_NAME];
    // A bare tag ("latest") names no repository: the image then stays untagged, like docker.
    if (name && /[/:]/.test(name)) tags.add(canonicalTag(name, `${what}: index.json`));
    let manifestBlob: StagedBlob | undefined;
    for (let depth = 0; depth < 4; depth++) {
      const staged = blob(top, "manifest");
      const bytes = await readStaged(staged, MAX_MANIFEST_SIZE, `${what}: manifest ${top.digest}`);
      const kind = sniffManifestKind(
        parseJson(bytes, `${what}: manifest ${top.digest}`, MAX_MANIFEST_SIZE),
      );
      if (kind === "index") {
        const nested = parseIndex(bytes, `${what}: index ${top.digest}`);
        top = selectPlatform(
          nested.manifests.filter((d) =>
            isManifestMediaType(d.mediaType) || isIndexMediaType(d.mediaType)
          ),
          platform,
          `${what}: index ${top.digest}`,
        );
        continue;
      }
      parseManifest(bytes, `${what}: manifest ${top.digest}`); // refuses schema 1 by name
      manifestBlob = staged;
      break;
    }
    if (!manifestBlob) throw new InvalidInputError(`${what}: image indexes nested too deeply`);
    const manifestBytes = await Deno.readFile(manifestBlob.path);
    const manifest = parseManifest(manifestBytes, `${what}: manifest ${manifestBlob.digest}`);
    if (!isImageManifest(manifest)) continue; // an artifact, attestation or signature: skipped
    const existing = byManifest.get(manifestBlob.digest);
    if (existing) {
      for (const t of tags) (existing.tags as string[]).push(t);
      continue;
    }
    const blobs = new Map<Digest, StagedBlob>([[manifestBlob.digest, manifestBlob]]);
    const config = blob(manifest.config, "config");
    blobs.set(config.digest, config);
    const configBytes = await readStaged(
      config,
      MAX_CONFIG_SIZE,
      `${what}: config ${config.digest}`,
    );
    const image = createImage(manifestBlob.digest, manifestBytes, configBytes, { what });
    for (const layer of manifest.layers) blobs.set(layer.digest, blob(layer, "layer"));
    checkUncompressedDiffIDs(image, what);
    for (const t of tagsByConfig.get(image.configDigest) ?? []) tags.add(t);
    const result: ArchiveImage = { image, tags: [...tags], blobs };
    byManifest.set(manifestBlob.digest, result);
    out.push(result);
  }
  return out;
}
