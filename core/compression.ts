/**
 * Layer compression: detection by magic bytes, streaming decompression (gzip, zstd, none) with a
 * decompression-bomb guard, and gzip compression.
 *
 * gzip runs on `node:zlib` (`createGunzip`/`createGzip`, zlib), bridged to web streams by a
 * small hand-written pair: as fast as `Duplex.toWeb` (within noise) with explicit backpressure,
 * error mapping and cancellation, and about 2× `DecompressionStream("gzip")`
 * (`scripts/bench_codecs.ts`). zstd comes from `wasm/zstd.ts` (native libzstd or WASM).
 *
 * Every decompressor accepts concatenated gzip members / zstd frames, rejects truncated input
 * with `InvalidInputError("truncated gzip stream")` / `("truncated zstd stream")` and corrupt
 * input with `InvalidInputError("corrupt … stream: …")`, and honours backpressure, so memory
 * stays bounded when the consumer is slow.
 *
 * @example
 * ```ts ignore
 * import { createDecompressor, sniffCompression } from "./compression.ts";
 * const input = new Blob([new Uint8Array([1, 2, 3])]).stream();
 * const { compression, stream } = await sniffCompression(input);
 * const plain = stream.pipeThrough(createDecompressor(compression, { maxOutput: 1 << 20 }));
 * await plain.pipeTo(new WritableStream());
 * ```
 *
 * @module
 */

import * as zlib from "node:zlib";
import type { Transform } from "node:stream";
import { InvalidInputError, LimitError } from "./errors.ts";
import { createZstdDecompressor } from "../wasm/zstd.ts";
import type { CodecImpl } from "../wasm/sha256.ts";

/** How a blob (a layer) is compressed. */
export type Compression = "none" | "gzip" | "zstd";

/** Options of {@linkcode createDecompressor}. */
export interface DecompressorOptions {
  /** zstd implementation (see `wasm/zstd.ts`); gzip always uses `node:zlib`. */
  impl?: CodecImpl;
  /** Most decompressed bytes allowed; more errors the stream with a `LimitError`. */
  maxOutput?: number;
  /** What is being decompressed, for the `LimitError` message (e.g. `layer sha256:ab…`). */
  what?: string;
}

/** Options of {@linkcode createGzipCompressor}. */
export interface GzipCompressorOptions {
  /** zlib level 0 (store) to 9 (smallest); default 6. */
  level?: number;
}

/** Bytes {@linkcode sniffCompression} waits for before it decides. */
const SNIFF_BYTES = 4;
/** zlib output chunk size: 256 KiB measured fastest (16 KiB default: about half the speed). */
const ZLIB_CHUNK = 256 * 1024;
/** Output queued before the zlib stream is paused (fewer pause/resume round trips than 1). */
const READABLE_BYTES = 1 << 20;

/**
 * Tells the compression of a blob from its first bytes: gzip `1f 8b`, zstd `28 b5 2f fd` or a
 * zstd skippable frame (`5? 2a 4d 18`); anything else (including too few bytes) is `"none"`.
 */
export function detectCompression(head: Uint8Array): Compression {
  if (!(head instanceof Uint8Array)) throw new TypeError("detectCompression expects a Uint8Array");
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.length >= 4) {
    if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) {
      return "zstd";
    }
    if ((head[0] & 0xf0) === 0x50 && head[1] === 0x2a && head[2] === 0x4d && head[3] === 0x18) {
      return "zstd";
    }
  }
  return "none";
}

/**
 * Creates a decompressor for `compression`. `"none"` passes bytes through (still counting them
 * against `maxOutput`). With `maxOutput`, producing more than that many bytes errors the stream
 * with a `LimitError` naming `what`, and the source pipe is cancelled.
 *
 * The result is `TransformStream`-shaped (use it with `pipeThrough`); gzip and zstd results are
 * plain `{ readable, writable }` pairs, not `instanceof TransformStream`.
 *
 * @throws {TypeError} for an unknown compression or impl; {RangeError} for a bad `maxOutput`.
 */
export function createDecompressor(
  compression: Compression,
  options: DecompressorOptions = {},
): TransformStream<Uint8Array, Uint8Array> {
  const { impl, maxOutput, what = "stream" } = options;
  if (maxOutput !== undefined && !(Number.isSafeInteger(maxOutput) && maxOutput >= 0)) {
    throw new RangeError(`Invalid maxOutput ${maxOutput}: expected a non-negative integer`);
  }
  if (impl !== undefined && impl !== "native" && impl !== "wasm") {
    throw new TypeError(`Invalid impl ${JSON.stringify(impl)}: expected "native" or "wasm"`);
  }
  let codec: TransformStream<Uint8Array, Uint8Array> | undefined;
  switch (compression) {
    case "none":
      break;
    case "gzip":
      codec = nodeTransform(
        () => zlib.createGunzip({ chunkSize: ZLIB_CHUNK }) as unknown as Transform,
        gzipError,
      );
      break;
    case "zstd":
      codec = createZstdDecompressor({ impl });
      break;
    default:
      throw new TypeError(
        `Invalid compression ${JSON.stringify(compression)}: expected "none", "gzip" or "zstd"`,
      );
  }
  if (maxOutput === undefined) return codec ?? new TransformStream();
  const limit = limiter(maxOutput, what);
  if (codec === undefined) return limit;
  return { writable: codec.writable, readable: codec.readable.pipeThrough(limit) };
}

/**
 * Creates a streaming gzip compressor (`node:zlib`), e.g. for `save` to write `.tar.gz` layers.
 * The output is one gzip member.
 *
 * @throws {RangeError} for a level that is not an integer from 0 to 9.
 */
export function createGzipCompressor(
  options: GzipCompressorOptions = {},
): TransformStream<Uint8Array, Uint8Array> {
  const { level = 6 } = options;
  if (!Number.isInteger(level) || level < 0 || level > 9) {
    throw new RangeError(`Invalid gzip level ${level}: expected an integer from 0 to 9`);
  }
  return nodeTransform(
    () => zlib.createGzip({ level, chunkSize: ZLIB_CHUNK }) as unknown as Transform,
    (err) => err,
  );
}

/**
 * Reads just enough of `stream` to call {@linkcode detectCompression}, and returns the
 * compression with a stream that yields every byte of the original, the peeked ones included.
 * Cancelling the returned stream cancels the original.
 */
export async function sniffCompression(
  stream: ReadableStream<Uint8Array>,
): Promise<{ compression: Compression; stream: ReadableStream<Uint8Array> }> {
  if (!(stream instanceof ReadableStream)) {
    throw new TypeError("sniffCompression expects a ReadableStream");
  }
  const reader = stream.getReader();
  const peeked: Uint8Array[] = [];
  let have = 0;
  let done = false;
  try {
    while (have < SNIFF_BYTES) {
      const result = await reader.read();
      if (result.done) {
        done = true;
        break;
      }
      peeked.push(result.value);
      have += result.value.byteLength;
    }
  } catch (err) {
    reader.releaseLock();
    throw err;
  }
  const head = new Uint8Array(Math.min(have, SNIFF_BYTES));
  let at = 0;
  for (const chunk of peeked) {
    if (at === head.length) break;
    const part = chunk.subarray(0, head.length - at);
    head.set(part, at);
    at += part.length;
  }
  const replay = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = peeked.shift();
      if (next !== undefined) return controller.enqueue(next);
      if (done) return controller.close();
      const result = await reader.read();
      if (result.done) controller.close();
      else controller.enqueue(result.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return { compression: detectCompression(head), stream: replay };
}

// ---------------------------------------------------------------------------------------------

function limiter(maxOutput: number, what: string): TransformStream<Uint8Array, Uint8Array> {
  let total = 0;
  return new TransformStream({
    transform(chunk, controller) {
      total += chunk.byteLength;
      if (total > maxOutput) {
        throw new LimitError(`${what} decompresses to more than ${maxOutput} bytes`);
      }
      controller.enqueue(chunk);
    },
  });
}

function gzipError(err: unknown): unknown {
  if (err instanceof InvalidInputError) return err;
  const e = err as { code?: string; message?: string };
  if (e?.code === "Z_BUF_ERROR") return new InvalidInputError("truncated gzip stream");
  const detail = String(e?.message ?? err).split("\n")[0];
  return new InvalidInputError(`corrupt gzip stream: ${detail}`, { cause: err });
}

/**
 * Bridges a Node `Transform` (a zlib stream) to a web readable/writable pair, with
 * backpressure both ways: the Node stream is paused while the readable side's queue is full
 * (zlib then stops inflating and delays its write callbacks), and resumed when it is pulled.
 */
function nodeTransform(
  create: () => Transform,
  mapError: (err: unknown) => unknown,
): TransformStream<Uint8Array, Uint8Array> {
  let node!: Transform;
  let readableController!: ReadableStreamDefaultController<Uint8Array>;
  let writableController!: WritableStreamDefaultController;
  let failure: { reason: unknown } | undefined;
  let ended: (() => void) | undefined;
  let endFailed: ((reason: unknown) => void) | undefined;
  /** Rejects the write in flight: a destroyed Node stream may never call its callback. */
  let writeFailed: ((reason: unknown) => void) | undefined;

  const fail = (reason: unknown): unknown => {
    if (failure) return failure.reason;
    failure = { reason };
    node.destroy();
    try {
      readableController.error(reason);
    } catch { /* closed */ }
    try {
      writableController.error(reason);
    } catch { /* errored */ }
    endFailed?.(reason);
    writeFailed?.(reason);
    return reason;
  };

  const readable = new ReadableStream<Uint8Array>({
    start(controller) {
      readableController = controller;
    },
    pull() {
      if (!failure && node.isPaused()) node.resume();
    },
    cancel(reason) {
      fail(reason);
    },
  }, new ByteLengthQueuingStrategy({ highWaterMark: READABLE_BYTES }));

  const writable = new WritableStream<Uint8Array>({
    start(controller) {
      writableController = controller;
      node = create();
      node.on("data", (data: Uint8Array) => {
        if (failure) return;
        readableController.enqueue(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        if ((readableController.desiredSize ?? 0) <= 0) node.pause();
      });
      node.on("error", (err: unknown) => fail(mapError(err)));
      node.on("end", () => {
        if (failure) return;
        readableController.close();
        ended?.();
      });
    },
    write(chunk) {
      if (failure) throw failure.reason;
      if (!(chunk instanceof Uint8Array)) {
        throw fail(new TypeError("Compression stream input chunks must be Uint8Array"));
      }
      return new Promise<void>((resolve, reject) => {
        writeFailed = reject;
        node.write(chunk, (err) => {
          writeFailed = undefined;
          if (failure) reject(failure.reason);
          else if (err) reject(fail(mapError(err)));
          else resolve();
        });
      });
    },
    close() {
      if (failure) throw failure.reason;
      return new Promise<void>((resolve, reject) => {
        ended = resolve;
        endFailed = reject;
        node.end();
      });
    },
    abort(reason) {
      fail(reason);
    },
  }, { highWaterMark: 1 });

  return { readable, writable };
}
