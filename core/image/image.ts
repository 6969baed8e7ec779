/**
 * The one immutable image model (go-containerregistry style): a manifest, its config, and layers
 * that each carry both their compressed `digest` and their uncompressed `diffID`. Transports read and
 * write this model; it imports none of them.
 *
 * @module
 */
import type { Digest } from "../digest.ts";
import { InvalidInputError, UnsupportedError } from "../errors.ts";
import { layerCompression } from "../oci/media_types.ts";
import type { ImageConfig, Manifest } from "../oci/types.ts";
import { parseConfig, parseManifest } from "./parse.ts";

/**
 * One layer of an image.
 *
 * @example
 * ```ts
 * import type { Layer } from "@berth/berth";
 * const compressed = (l: Layer) => l.digest !== l.diffID;
 * ```
 */
export interface Layer {
  /** Digest of the blob as stored and transferred (compressed or not). */
  readonly digest: Digest;
  /** Digest of the uncompressed tar (the config's `rootfs.diff_ids` entry). */
  readonly diffID: Digest;
  /** Size of the blob in bytes. */
  readonly size: number;
  readonly mediaType: string;
  readonly compression: "none" | "gzip" | "zstd";
}

/**
 * An image: manifest, config and layers, all verified against each other.
 *
 * @example
 * ```ts
 * import type { Image } from "@berth/berth";
 * const cmd = (i: Image) => [...(i.config.config?.Entrypoint ?? []), ...(i.config.config?.Cmd ?? [])];
 * ```
 */
export interface Image {
  readonly manifestDigest: Digest;
  readonly manifestBytes: Uint8Array;
  readonly manifest: Manifest;
  /** The config's digest, which is the image ID. */
  readonly configDigest: Digest;
  readonly configBytes: Uint8Array;
  readonly config: ImageConfig;
  readonly layers: readonly Layer[];
}

/**
 * Builds an {@linkcode Image} from a manifest and config whose digests the caller has verified.
 * Checks that the layers match `rootfs.diff_ids` one for one and that every layer type is known.
 */
export function createImage(
  manifestDigest: Digest,
  manifestBytes: Uint8Array,
  configBytes: Uint8Array,
  options: { what: string },
): Image {
  const { what } = options;
  const manifest = parseManifest(manifestBytes, `${what} manifest ${manifestDigest}`);
  const config = parseConfig(configBytes, `${what} config ${manifest.config.digest}`);
  const diffIDs = config.rootfs.diff_ids;
  if (diffIDs.length !== manifest.layers.length) {
    throw new InvalidInputError(
      `${what}: manifest ${manifestDigest} has ${manifest.layers.length} layers but its config ` +
        `lists ${diffIDs.length} diff_ids`,
    );
  }
  const layers = manifest.layers.map((d, i): Layer => {
    const compression = layerCompression(d.mediaType);
    if (compression === undefined) {
      throw new UnsupportedError(
        `${what}: layer ${d.digest} has unsupported media type "${d.mediaType}"`,
      );
    }
    return {
      digest: d.digest,
      diffID: diffIDs[i],
      size: d.size,
      mediaType: d.mediaType,
      compression,
    };
  });
  return {
    manifestDigest,
    manifestBytes,
    manifest,
    configDigest: manifest.config.digest,
    configBytes,
    config,
    layers,
  };
}
