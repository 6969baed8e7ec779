/**
 * Reading one layer blob: detect and undo its compression (bounded against decompression bombs),
 * hash the uncompressed tar to check its diffID, and walk the tar (to a sink that unpacks it, or
 * just to prove it well-formed).
 *
 * @module
 */
import { createSha256 } from "../../wasm/sha256.ts";
import { createDecompressor, sniffCompression } from "../compression.ts";
import { DigestMismatchError, inContext } from "../errors.ts";
import { TarParser, type TarSink } from "../tar/reader.ts";
import type { ByteSource } from "../content/store.ts";
import type { Layer } from "./image.ts";
import { MAX_EXPANSION } from "./parse.ts";

export { MAX_EXPANSION };

/** Options of {@linkcode readLayer}. */
export interface ReadLayerOptions {
  /** Prefix for errors, e.g. `Cannot load "x.tar"`. */
  what: string;
  /** Receives the tar entries (an unpacker); without it the tar is only checked. */
  sink?: TarSink;
  /** Override of {@linkcode MAX_EXPANSION}. */
  maxExpansion?: number;
}

const NULL_SINK: TarSink = { entry() {}, data() {} };

function toStream(source: ByteSource): ReadableStream<Uint8Array> {
  return source instanceof ReadableStream
    ? source
    : ReadableStream.from(source as AsyncIterable<Uint8Array>);
}

/** Reads `layer` from `source`; resolves with the uncompressed size once the diffID matched. */
export async function readLayer(
  source: ByteSource,
  layer: Layer,
  options: ReadLayerOptions,
): Promise<{ uncompressedSize: number }> {
  const what = `${options.what}: layer ${layer.digest}`;
  const maxOutput = Math.max(layer.size, 1 << 20) * (options.maxExpansion ?? MAX_EXPANSION);
  const sniffed = await sniffCompression(toStream(source));
  const stream = sniffed.stream.pipeThrough(
    createDecompressor(sniffed.compression, { maxOutput, what }),
  );
  const hash = createSha256();
  const parser = new TarParser(options.sink ?? NULL_SINK);
  let size = 0;
  try {
    for await (const chunk of stream) {
      size += chunk.byteLength;
      hash.update(chunk);
      if (!parser.done) parser.push(chunk);
    }
    parser.end();
  } catch (e) {
    throw inContext(e, what);
  }
  const diffID = `sha256:${hash.digest()}`;
  if (diffID !== layer.diffID) {
    throw new DigestMismatchError(
      `${what} does not match its diff_id ${layer.diffID} (uncompressed content is ${diffID})`,
    );
  }
  return { uncompressedSize: size };
}
