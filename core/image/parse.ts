/**
 * Parsing and validating manifests, indexes and image configs from bytes, with bounded sizes.
 *
 * @module
 */
import { isDigest } from "../digest.ts";
import { InvalidInputError, LimitError, UnsupportedError } from "../errors.ts";
import { isIndexMediaType, isManifestMediaType, MediaType } from "../oci/media_types.ts";
import type { Descriptor, ImageConfig, Index, Manifest } from "../oci/types.ts";

/** Largest manifest or index accepted (as containerd and the distribution spec suggest). */
export const MAX_MANIFEST_SIZE = 4 << 20;
/** Largest image config accepted. */
export const MAX_CONFIG_SIZE = 8 << 20;

/**
 * Largest accepted ratio of uncompressed to compressed layer size. Deflate cannot exceed 1032:1, so
 * this never refuses a real gzip layer; it stops zstd bombs whose output has no bound otherwise.
 */
export const MAX_EXPANSION = 1100;

/** Parses JSON of at most `maxSize` bytes; errors name `what`. */
export function parseJson(bytes: Uint8Array, what: string, maxSize: number): unknown {
  if (bytes.byteLength > maxSize) {
    throw new LimitError(`${what} is ${bytes.byteLength} bytes, more than the limit of ${maxSize}`);
  }
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw new InvalidInputError(`${what} is not valid JSON: ${(e as Error).message}`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Validates one descriptor. */
export function checkDescriptor(value: unknown, what: string): Descriptor {
  if (!isObject(value)) throw new InvalidInputError(`${what}: descriptor is not an object`);
  const { mediaType, digest, size } = value;
  if (typeof mediaType !== "string") throw new InvalidInputError(`${what}: missing mediaType`);
  if (!isDigest(digest)) {
    throw new InvalidInputError(`${what}: invalid digest ${JSON.stringify(digest)}`);
  }
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw new InvalidInputError(`${what}: invalid size ${JSON.stringify(size)} for ${digest}`);
  }
  if (value.platform !== undefined) {
    const p = value.platform;
    if (!isObject(p) || typeof p.os !== "string" || typeof p.architecture !== "string") {
      throw new InvalidInputError(`${what}: invalid platform for ${digest}`);
    }
  }
  return value as unknown as Descriptor;
}

/** What a manifest-like document is, from its mediaType or its shape. */
export function sniffManifestKind(doc: unknown): "index" | "manifest" | "schema1" | "unknown" {
  if (!isObject(doc)) return "unknown";
  const mt = doc.mediaType;
  if (mt === MediaType.DockerManifestV1 || mt === MediaType.DockerManifestV1Signed) {
    return "schema1";
  }
  if (doc.schemaVersion === 1) return "schema1";
  if (typeof mt === "string") {
    if (isIndexMediaType(mt)) return "index";
    if (isManifestMediaType(mt)) return "manifest";
    return "unknown";
  }
  if (Array.isArray(doc.manifests)) return "index";
  if (isObject(doc.config) && Array.isArray(doc.layers)) return "manifest";
  return "unknown";
}

/** Parses an image index / manifest list. */
export function parseIndex(bytes: Uint8Array, what: string): Index {
  const doc = parseJson(bytes, what, MAX_MANIFEST_SIZE);
  if (sniffManifestKind(doc) !== "index") {
    throw new InvalidInputError(`${what} is not an image index`);
  }
  const index = doc as Record<string, unknown>;
  if (index.schemaVersion !== 2) {
    throw new InvalidInputError(`${what}: unsupported schemaVersion ${index.schemaVersion}`);
  }
  (index.manifests as unknown[]).forEach((d, i) => checkDescriptor(d, `${what} manifests[${i}]`));
  return index as unknown as Index;
}

/** Parses an image manifest (OCI or Docker schema 2); schema 1 is refused by name. */
export function parseManifest(bytes: Uint8Array, what: string): Manifest {
  const doc = parseJson(bytes, what, MAX_MANIFEST_SIZE);
  const kind = sniffManifestKind(doc);
  if (kind === "schema1") {
    throw new UnsupportedError(
      `${what} is a Docker schema 1 manifest, which berth does not support (deprecated since 2017)`,
    );
  }
  if (kind !== "manifest") throw new InvalidInputError(`${what} is not an image manifest`);
  const m = doc as Record<string, unknown>;
  if (m.schemaVersion !== 2) {
    throw new InvalidInputError(`${what}: unsupported schemaVersion ${m.schemaVersion}`);
  }
  checkDescriptor(m.config, `${what} config`);
  (m.layers as unknown[]).forEach((d, i) => checkDescriptor(d, `${what} layers[${i}]`));
  return m as unknown as Manifest;
}

/** Parses an image config and checks `rootfs.diff_ids`. */
export function parseConfig(bytes: Uint8Array, what: string): ImageConfig {
  const doc = parseJson(bytes, what, MAX_CONFIG_SIZE);
  if (!isObject(doc)) throw new InvalidInputError(`${what} is not a JSON object`);
  const rootfs = doc.rootfs;
  if (!isObject(rootfs) || rootfs.type !== "layers" || !Array.isArray(rootfs.diff_ids)) {
    throw new InvalidInputError(`${what} has no rootfs.diff_ids`);
  }
  for (const id of rootfs.diff_ids) {
    if (!isDigest(id)) {
      throw new InvalidInputError(`${what}: invalid diff_id ${JSON.stringify(id)}`);
    }
  }
  if (typeof doc.architecture !== "string" || typeof doc.os !== "string") {
    throw new InvalidInputError(`${what} lacks architecture or os`);
  }
  if (doc.config !== undefined && doc.config !== null && !isObject(doc.config)) {
    throw new InvalidInputError(`${what}: config is not an object`);
  }
  return doc as unknown as ImageConfig;
}

/** True when a manifest describes a container image (not an artifact or attestation). */
export function isImageManifest(m: Manifest): boolean {
  return m.config.mediaType === MediaType.OciConfig ||
    m.config.mediaType === MediaType.DockerConfig;
}
