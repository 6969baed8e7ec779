/**
 * `berth import`: a root filesystem tarball (plain, gzip or zstd) becomes a one-layer image. The
 * layer is stored gzip-compressed; its diffID is hashed from the uncompressed tar while it streams.
 *
 * @module
 */
import type { Digest } from "../digest.ts";
import { createSha256 } from "../../wasm/sha256.ts";
import { createDecompressor, createGzipCompressor, sniffCompression } from "../compression.ts";
import { inContext } from "../errors.ts";
import type { IngestSession } from "../content/store.ts";
import { TarParser } from "../tar/reader.ts";
import { MediaType } from "../oci/media_types.ts";
import type { ContainerConfig, ImageConfig, Manifest, Platform } from "../oci/types.ts";
import { createImage, type Image } from "../image/image.ts";
import { applyChange } from "./changes.ts";

/** Options of {@linkcode buildImportImage}. */
export interface ImportOptions {
  session: IngestSession;
  /** Name of the source in errors. */
  what: string;
  /** `--change` lines. */
  changes?: string[];
  /** `--message`: the history comment. */
  message?: string;
  /** Platform recorded in the config; default the host's. */
  platform: Platform;
  /** Creation time; default now. */
  created?: string;
}

const encoder = new TextEncoder();

/** Stages the layer, config and manifest of the imported image; the caller commits them. */
export async function buildImportImage(
  source: ReadableStream<Uint8Array>,
  options: ImportOptions,
): Promise<
  { image: Image; blobs: { path: string; digest: Digest; size: number }[]; size: number }
> {
  const { session, what } = options;
  const config: ContainerConfig = {};
  for (const change of options.changes ?? []) applyChange(config, change);
  const sniffed = await sniffCompression(source);
  const tarStream = sniffed.compression === "none"
    ? sniffed.stream
    : sniffed.stream.pipeThrough(createDecompressor(sniffed.compression, { what }));
  const hash = createSha256();
  const parser = new TarParser({ entry() {}, data() {} });
  let size = 0;
  const checked = tarStream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        hash.update(chunk);
        size += chunk.byteLength;
        if (!parser.done) parser.push(chunk);
        controller.enqueue(chunk);
      },
      flush() {
        parser.end();
      },
    }),
  );
  let layer;
  try {
    layer = await session.stage(checked.pipeThrough(createGzipCompressor()), { what });
  } catch (e) {
    throw inContext(e, what);
  }
  const created = options.created ?? new Date().toISOString();
  const imageConfig: ImageConfig = {
    created,
    architecture: options.platform.architecture,
    os: options.platform.os,
    ...(options.platform.variant && options.platform.architecture !== "amd64"
      ? { variant: options.platform.variant }
      : {}),
    config,
    rootfs: { type: "layers", diff_ids: [`sha256:${hash.digest()}`] },
    history: [{
      created,
      created_by: "berth import",
      ...(options.message ? { comment: options.message } : {}),
    }],
  };
  const configBytes = encoder.encode(JSON.stringify(imageConfig));
  const configBlob = await session.stage([configBytes], { what });
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: configBlob.digest, size: configBlob.size },
    layers: [{ mediaType: MediaType.OciLayerGzip, digest: layer.digest, size: layer.size }],
  };
  const manifestBytes = encoder.encode(JSON.stringify(manifest));
  const manifestBlob = await session.stage([manifestBytes], { what });
  const image = createImage(manifestBlob.digest, manifestBytes, configBytes, { what });
  return { image, blobs: [layer, configBlob, manifestBlob], size };
}
