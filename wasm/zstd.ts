/**
 * Streaming zstd decompression behind one interface, with two implementations that pass the
 * same test suite:
 *
 * - `"native"` (the default where available): the libzstd inside Deno's `node:zlib`. Deno
 *   2.9.6's public `createZstdDecompress()` stream is not usable on untrusted input: it drops
 *   every frame after the first, accepts truncated input, and throws an *uncaught* exception
 *   (killing the process) for corrupt data that is detected after the first output chunk.
 *   So this module drives the stream's decoder handle synchronously (`_handle.writeSync`, the
 *   Node binding protocol), which decodes all frames and reports errors as catchable throws,
 *   and walks the frame and block headers itself to detect truncation. A self-test on a tiny
 *   embedded stream decides at first use whether this works on the running Deno
 *   ({@linkcode zstdNativeAvailable}); if not, `"native"` falls back to `"wasm"`.
 * - `"wasm"`: libzstd from the zstddec npm package (MIT/BSD), whose WebAssembly is embedded in
 *   its JavaScript, so it works in `deno compile`d binaries. zstddec's own streaming API pulls
 *   from a synchronous iterable and keeps its WASM instance private, so this module captures
 *   the embedded WASM bytes once (the `data:` URL zstddec passes to `fetch` in `init()`) and
 *   calls `ZSTD_createDCtx` / `ZSTD_decompressStream` / `ZSTD_freeDCtx` on instances of its
 *   own. Each stream has an instance to itself; the DCtx and buffers are freed when the stream
 *   ends, errors or is cancelled, and the instance is kept for reuse (at most 2 idle) only if
 *   its memory stayed at or under 64 MiB, so the memory a large window took goes with its stream.
 *
 * Both accept concatenated frames and skippable frames, reject truncated input with
 * `InvalidInputError("truncated zstd stream")` and corrupt input with
 * `InvalidInputError("corrupt zstd stream: …")`, and keep memory bounded: output comes in pieces
 * of at most 1 MiB and none is produced while the consumer's queue is full. Windows up to
 * 128 MiB (`zstd --long`) are accepted; a larger one is a `LimitError`, as in `zstd -d`.
 *
 * @module
 */

import * as zlib from "node:zlib";
import { InvalidInputError, LimitError } from "../core/errors.ts";
import { type Engine, engineStream } from "./_engine_stream.ts";
import type { CodecImpl } from "./sha256.ts";

export type { CodecImpl } from "./sha256.ts";

/** Options of {@linkcode createZstdDecompressor}. */
export interface ZstdDecompressorOptions {
  /** Implementation; default `"native"` when {@linkcode zstdNativeAvailable}, else `"wasm"`. */
  impl?: CodecImpl;
}

/** Output piece size (and, for WASM, the input staging size). */
const PIECE = 1 << 20;

/**
 * Creates a streaming zstd decompressor. The result is a `{ readable, writable }` pair usable
 * with `pipeThrough` (not an `instanceof TransformStream`). Errors: `InvalidInputError` for
 * truncated or corrupt input; the writable side errors too, so a pipe into it stops.
 *
 * @throws {TypeError} for an unknown `impl`.
 */
export function createZstdDecompressor(
  options: ZstdDecompressorOptions = {},
): TransformStream<Uint8Array, Uint8Array> {
  const impl = options.impl;
  if (impl !== undefined && impl !== "native" && impl !== "wasm") {
    throw new TypeError(`Invalid impl ${JSON.stringify(impl)}: expected "native" or "wasm"`);
  }
  const native = impl !== "wasm" && zstdNativeAvailable();
  return engineStream(native ? () => new NativeZstd() : openWasm, toInputError);
}

/**
 * True when the native (`node:zlib`) zstd decoder can be driven correctly on this runtime:
 * decided once by decoding a tiny embedded stream (a skippable frame, two frames, then a frame
 * with a bad checksum that must throw).
 */
export function zstdNativeAvailable(): boolean {
  return nativeOk ??= selfTest();
}

// ---------------------------------------------------------------------------------------------
// errors

/** A libzstd error code or a structural error found by the frame walker. */
class ZstdError extends Error {}

const ERROR_NAMES: Record<number, string> = {
  1: "Error (generic)",
  10: "Unknown frame descriptor",
  12: "Version not supported",
  14: "Unsupported frame parameter",
  16: "Frame requires too much memory for decoding",
  20: "Data corruption detected",
  22: "Restored data doesn't match checksum",
  24: "Header of Literals' block doesn't respect format specification",
  30: "Dictionary is corrupted",
  32: "Dictionary mismatch",
  44: "tableLog requires too much memory : unsupported",
  46: "Unsupported max Symbol Value : too large",
  48: "Specified maxSymbolValue is too small",
  64: "Allocation error : not enough memory",
  70: "Destination buffer is too small",
  72: "Src size is incorrect",
};

class Truncated extends Error {}

function toInputError(err: unknown): unknown {
  if (err instanceof InvalidInputError) return err;
  if (err instanceof Truncated) return new InvalidInputError("truncated zstd stream");
  const message = err instanceof Error ? err.message : String(err);
  const detail = message.replace(/^Zstd decompress error: /, "").split("\n")[0];
  if (detail === ERROR_NAMES[16]) {
    return new LimitError("zstd stream needs a window larger than 128 MiB", { cause: err });
  }
  return new InvalidInputError(`corrupt zstd stream: ${detail}`, { cause: err });
}

// ---------------------------------------------------------------------------------------------
// frame walker (truncation detection for the native decoder)

const MAGIC = 0, SKIPPABLE_SIZE = 1, FRAME_HEADER = 2, BLOCK_HEADER = 3;
const NEED = [4, 4, 1, 3];
const ZSTD_MAGIC = 0xfd2fb528;
const MAX_BLOCK = 128 * 1024;

/**
 * Follows the zstd frame format (RFC 8878) over the compressed bytes without decoding:
 * frame header sizes, block headers, checksums and skippable frames. Knows at the end of input
 * whether it stopped at a frame boundary.
 */
class FrameWalker {
  #phase = MAGIC;
  #head = new Uint8Array(4);
  #have = 0;
  #skip = 0;
  #checksum = false;
  #frames = 0;

  scan(chunk: Uint8Array): void {
    const n = chunk.byteLength;
    let i = 0;
    while (i < n) {
      if (this.#skip > 0) {
        const k = Math.min(this.#skip, n - i);
        this.#skip -= k;
        i += k;
        continue;
      }
      const need = NEED[this.#phase];
      const k = Math.min(need - this.#have, n - i);
      this.#head.set(chunk.subarray(i, i + k), this.#have);
      this.#have += k;
      i += k;
      if (this.#have < need) return;
      this.#have = 0;
      this.#advance();
    }
  }

  #advance(): void {
    const h = this.#head;
    switch (this.#phase) {
      case MAGIC: {
        const magic = (h[0] | h[1] << 8 | h[2] << 16 | h[3] << 24) >>> 0;
        if (magic === ZSTD_MAGIC) this.#phase = FRAME_HEADER;
        else if ((magic & 0xfffffff0) >>> 0 === 0x184d2a50) this.#phase = SKIPPABLE_SIZE;
        else throw new ZstdError(ERROR_NAMES[10]);
        return;
      }
      case SKIPPABLE_SIZE:
        this.#skip = (h[0] | h[1] << 8 | h[2] << 16 | h[3] << 24) >>> 0;
        this.#frames++;
        this.#phase = MAGIC;
        return;
      case FRAME_HEADER: {
        const fhd = h[0];
        if (fhd & 0x08) throw new ZstdError(ERROR_NAMES[20]);
        const singleSegment = (fhd >> 5) & 1;
        const fcsSize = [singleSegment, 2, 4, 8][fhd >> 6];
        this.#skip = (singleSegment ? 0 : 1) + [0, 1, 2, 4][fhd & 3] + fcsSize;
        this.#checksum = (fhd & 0x04) !== 0;
        this.#phase = BLOCK_HEADER;
        return;
      }
      default: {
        const header = h[0] | h[1] << 8 | h[2] << 16;
        const type = (header >> 1) & 3;
        const size = header >>> 3;
        if (type === 3 || size > MAX_BLOCK) throw new ZstdError(ERROR_NAMES[20]);
        this.#skip = type === 1 ? 1 : size;
        if (header & 1) {
          if (this.#checksum) this.#skip += 4;
          this.#frames++;
          this.#phase = MAGIC;
        }
      }
    }
  }

  /** True when the input seen so far is a whole number (at least one) of frames. */
  get complete(): boolean {
    return this.#frames > 0 && this.#phase === MAGIC && this.#have === 0 && this.#skip === 0;
  }
}

// ---------------------------------------------------------------------------------------------
// native: node:zlib's decoder handle, driven synchronously

/** The part of Node's zlib binding protocol used here. */
interface ZlibHandle {
  writeSync(
    flush: number,
    input: Uint8Array,
    inOff: number,
    inLen: number,
    out: Uint8Array,
    outOff: number,
    outLen: number,
  ): unknown;
}
interface ZlibInternals {
  _handle?: ZlibHandle;
  _writeState?: Uint32Array;
  close(): void;
  on(event: "error", listener: () => void): unknown;
}

let nativeOk: boolean | undefined;

class NativeZstd implements Engine {
  #stream: ZlibInternals | undefined;
  #handle: ZlibHandle;
  #state: Uint32Array;
  #walker = new FrameWalker();
  #input: Uint8Array | null = null;
  #offset = 0;
  #scratch: Uint8Array | null = null;
  readonly #pieceSize: number;

  constructor(pieceSize = PIECE) {
    const create = (zlib as { createZstdDecompress?: () => unknown }).createZstdDecompress;
    if (typeof create !== "function") throw new Error("node:zlib has no createZstdDecompress");
    const stream = create() as ZlibInternals;
    // Errors come back as throws from writeSync; never let the unused stream emit an unhandled
    // 'error' event (an uncaught exception).
    stream.on("error", () => {});
    const handle = stream._handle, state = stream._writeState;
    if (typeof handle?.writeSync !== "function" || !(state instanceof Uint32Array)) {
      stream.close();
      throw new Error("node:zlib zstd decoder has no usable handle");
    }
    this.#stream = stream;
    this.#handle = handle;
    this.#state = state;
    this.#pieceSize = pieceSize;
  }

  write(chunk: Uint8Array): void {
    this.#walker.scan(chunk);
    this.#input = chunk;
    this.#offset = 0;
  }

  read(): Uint8Array | null {
    const input = this.#input;
    if (input === null) return null;
    const size = this.#pieceSize;
    const out = this.#scratch ??= new Uint8Array(size);
    const inLen = input.byteLength - this.#offset;
    this.#handle.writeSync(ZSTD_E_CONTINUE, input, this.#offset, inLen, out, 0, size);
    const availOut = this.#state[0], availIn = this.#state[1];
    const produced = size - availOut;
    this.#offset += inLen - availIn;
    if (availIn === 0 && availOut !== 0) this.#input = null;
    else if (produced === 0 && availIn === inLen) throw new ZstdError("decoder made no progress");
    if (produced >= size >> 1) {
      this.#scratch = null; // hand the buffer over instead of copying it
      return out.subarray(0, produced);
    }
    return out.slice(0, produced);
  }

  end(): void {
    if (!this.#walker.complete) throw new Truncated();
  }

  free(): void {
    const stream = this.#stream;
    this.#stream = undefined;
    this.#input = this.#scratch = null;
    stream?.close();
  }
}

const ZSTD_E_CONTINUE = (zlib.constants as Record<string, number>).ZSTD_e_continue ?? 0;

/** skippable frame "xyz", frame "hello " (no checksum), frame "world" (checksum), as hex. */
const SAMPLE = "5f2a4d180300000078797a28b52ffd0058310000" +
  "68656c6c6f2028b52ffd0458290000776f726c64ef51ee66";

function decodeAll(engine: Engine, input: Uint8Array): string {
  const parts: number[] = [];
  try {
    engine.write(input);
    for (let piece = engine.read(); piece !== null; piece = engine.read()) parts.push(...piece);
    engine.end();
  } finally {
    engine.free();
  }
  return String.fromCharCode(...parts);
}

function selfTest(): boolean {
  try {
    const sample = new Uint8Array(SAMPLE.match(/../g)!.map((b) => parseInt(b, 16)));
    // A small piece size makes the 2nd and 3rd frames arrive in separate decoder calls.
    if (decodeAll(new NativeZstd(4), sample) !== "hello world") return false;
    sample[sample.length - 1] ^= 0xff;
    try {
      decodeAll(new NativeZstd(), sample);
      return false;
    } catch (err) {
      return err instanceof Error && /checksum/i.test(err.message);
    }
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// wasm: zstddec's libzstd build, an instance per stream (reused through a small pool)

interface ZstdExports {
  memory: WebAssembly.Memory;
  malloc(size: number): number;
  free(ptr: number): void;
  ZSTD_createDCtx(): number;
  ZSTD_freeDCtx(dctx: number): number;
  ZSTD_decompressStream(dctx: number, output: number, input: number): number;
}

let wasmModule: Promise<WebAssembly.Module> | undefined;

/**
 * Compiles zstddec's embedded WASM once. zstddec's `init()` synchronously calls `fetch` with a
 * `data:application/wasm;base64,…` URL; a stand-in `fetch` records that URL and declines, so
 * zstddec never instantiates its own copy. This module must be zstddec's only user.
 */
function loadWasmModule(): Promise<WebAssembly.Module> {
  wasmModule ??= (async () => {
    const { ZSTDDecoder } = await import("zstddec/stream");
    const realFetch = globalThis.fetch;
    let url = "";
    globalThis.fetch = ((input: string | URL | Request) => {
      url = String(input);
      return Promise.reject(new Error("zstddec WASM captured by berth"));
    }) as typeof fetch;
    let pending: Promise<void>;
    try {
      pending = new ZSTDDecoder().init();
    } finally {
      globalThis.fetch = realFetch;
    }
    pending.catch(() => {});
    const prefix = "data:application/wasm;base64,";
    if (!url.startsWith(prefix)) throw new Error("zstddec did not load its WASM as expected");
    const binary = atob(url.slice(prefix.length));
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return await WebAssembly.compile(bytes);
  })();
  wasmModule.catch(() => wasmModule = undefined);
  return wasmModule;
}

/**
 * Idle instances for reuse: instantiating costs ~0.3 ms and a fresh 16 MiB heap each time, and
 * dropped instances are only reclaimed by GC. An instance whose memory grew past
 * {@linkcode MAX_IDLE_BYTES} (a large window) is not kept, so that memory goes back with it.
 */
const idle: ZstdExports[] = [];
const MAX_IDLE = 2;
const MAX_IDLE_BYTES = 64 << 20;

async function openWasm(): Promise<Engine> {
  let x = idle.pop();
  if (x === undefined) {
    const module = await loadWasmModule();
    const instance = await WebAssembly.instantiate(module, {
      // The views are refreshed after every call anyway.
      env: { emscripten_notify_memory_growth: () => {} },
    });
    x = instance.exports as unknown as ZstdExports;
  }
  return new WasmZstd(x);
}

class WasmZstd implements Engine {
  #x: ZstdExports | undefined;
  #heap: Uint8Array;
  #view: DataView;
  readonly #dctx: number;
  /** Staging buffer for input, output buffer, ZSTD_inBuffer and ZSTD_outBuffer structs. */
  readonly #inPtr: number;
  readonly #outPtr: number;
  readonly #inBuf: number;
  readonly #outBuf: number;
  #input: Uint8Array | null = null;
  #offset = 0;
  /** Bytes staged in WASM memory and how many of them were consumed. */
  #staged = 0;
  #consumed = 0;
  #outputFull = false;
  #lastRet = 0;
  #sawInput = false;
  /** Set while inside libzstd: a trap leaves it set, and such an instance is not reused. */
  #inCall = false;

  constructor(x: ZstdExports) {
    this.#x = x;
    this.#dctx = x.ZSTD_createDCtx();
    this.#inPtr = x.malloc(PIECE);
    this.#outPtr = x.malloc(PIECE);
    this.#inBuf = x.malloc(12);
    this.#outBuf = x.malloc(12);
    if (!this.#dctx || !this.#inPtr || !this.#outPtr || !this.#inBuf || !this.#outBuf) {
      this.#x = undefined;
      throw new Error("zstd WASM: out of memory");
    }
    this.#heap = new Uint8Array(x.memory.buffer);
    this.#view = new DataView(x.memory.buffer);
  }

  write(chunk: Uint8Array): void {
    this.#input = chunk;
    this.#offset = 0;
    this.#sawInput = true;
  }

  read(): Uint8Array | null {
    const x = this.#x!;
    while (true) {
      if (this.#consumed === this.#staged && !this.#outputFull) {
        const input = this.#input;
        if (input === null || this.#offset === input.byteLength) {
          this.#input = null;
          return null;
        }
        const slice = input.subarray(this.#offset, this.#offset + PIECE);
        this.#offset += slice.byteLength;
        this.#heap.set(slice, this.#inPtr);
        this.#staged = slice.byteLength;
        this.#consumed = 0;
      }
      const v = this.#view;
      v.setUint32(this.#inBuf, this.#inPtr, true);
      v.setUint32(this.#inBuf + 4, this.#staged, true);
      v.setUint32(this.#inBuf + 8, this.#consumed, true);
      v.setUint32(this.#outBuf, this.#outPtr, true);
      v.setUint32(this.#outBuf + 4, PIECE, true);
      v.setUint32(this.#outBuf + 8, 0, true);
      this.#inCall = true;
      const ret = x.ZSTD_decompressStream(this.#dctx, this.#outBuf, this.#inBuf);
      this.#inCall = false;
      if (this.#heap.buffer !== x.memory.buffer) {
        this.#heap = new Uint8Array(x.memory.buffer);
        this.#view = new DataView(x.memory.buffer);
      }
      // size_t in wasm32 comes back as i32; ZSTD_isError(): (size_t)ret > (size_t)-120.
      if (ret < 0 && ret > -120) {
        throw new ZstdError(ERROR_NAMES[-ret] ?? `zstd error ${-ret}`);
      }
      const before = this.#consumed;
      this.#consumed = this.#view.getUint32(this.#inBuf + 8, true);
      const produced = this.#view.getUint32(this.#outBuf + 8, true);
      this.#outputFull = produced === PIECE;
      // ret is 0 when a frame is complete and flushed. A call that did nothing (the extra call
      // after a full output buffer) returns the next frame's header-size hint: ignore it.
      if (produced > 0 || this.#consumed > before) this.#lastRet = ret;
      if (produced > 0) return this.#heap.slice(this.#outPtr, this.#outPtr + produced);
      if (this.#consumed === before && this.#consumed < this.#staged) {
        throw new ZstdError("decoder made no progress");
      }
    }
  }

  end(): void {
    if (!this.#sawInput || this.#lastRet !== 0) throw new Truncated();
  }

  free(): void {
    const x = this.#x;
    this.#x = undefined;
    this.#input = null;
    if (x === undefined) return;
    x.ZSTD_freeDCtx(this.#dctx);
    x.free(this.#inPtr);
    x.free(this.#outPtr);
    x.free(this.#inBuf);
    x.free(this.#outBuf);
    if (!this.#inCall && idle.length < MAX_IDLE && x.memory.buffer.byteLength <= MAX_IDLE_BYTES) {
      idle.push(x);
    }
  }
}
