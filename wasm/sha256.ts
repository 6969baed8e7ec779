/**
 * Incremental SHA-256 behind one small interface, with two implementations:
 *
 * - `"native"` (the default): `node:crypto` `createHash("sha256")`, which uses the CPU's SHA
 *   instructions. Measured by `scripts/bench_codecs.ts` at about 4× the WASM speed here.
 * - `"wasm"`: hash-wasm's SHA-256 (WebAssembly embedded in the npm package, so it also works in
 *   a `deno compile`d binary). hash-wasm only creates hashers asynchronously, so the WASM
 *   implementation must be loaded once with {@linkcode sha256Ready} before
 *   {@linkcode createSha256} is called with `impl: "wasm"`; after that creation is synchronous.
 *   Every WASM hasher shares one WASM instance (a new instance costs ~164 µs): a hasher that is
 *   interleaved with another saves and restores its ~100-byte state, so any number of
 *   concurrent hashes stay correct.
 *
 * @example
 * ```ts ignore
 * import { createSha256 } from "./sha256.ts";
 * const h = createSha256();
 * h.update(new TextEncoder().encode("abc"));
 * h.digest(); // "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";

/** Which implementation of a codec to use: the Node-compatible built-in or the WASM one. */
export type CodecImpl = "native" | "wasm";

/** An incremental SHA-256. `digest()` finishes it; later calls throw a `TypeError`. */
export interface Sha256 {
  /** Feeds bytes. The chunk is read, never kept or modified. */
  update(chunk: Uint8Array): void;
  /** Returns the digest as 64 lowercase hex digits and finishes the hash. */
  digest(): string;
}

/** Options of {@linkcode createSha256}. */
export interface CreateSha256Options {
  /** Implementation; default `"native"` (the faster one as measured). */
  impl?: CodecImpl;
}

/** The implementation used when none is asked for: the faster one as measured. */
const DEFAULT_SHA256_IMPL: CodecImpl = "native";

/**
 * Creates an incremental SHA-256.
 *
 * @throws {TypeError} for an unknown `impl`, or `impl: "wasm"` before {@linkcode sha256Ready}
 * resolved.
 */
export function createSha256(options: CreateSha256Options = {}): Sha256 {
  const impl = checkImpl(options.impl);
  if (impl === "native") return new NativeSha256();
  if (shared === undefined) {
    throw new TypeError('createSha256({ impl: "wasm" }) needs "await sha256Ready()" first');
  }
  return new WasmSha256(shared);
}

/**
 * Loads the WASM SHA-256 (hash-wasm) once; later calls return the same promise. Needed only
 * before `createSha256({ impl: "wasm" })`. hash-wasm is imported lazily here, so programs that
 * only use the native implementation do not pay its ~60 ms module load.
 */
export function sha256Ready(): Promise<void> {
  ready ??= import("hash-wasm").then(async ({ createSHA256 }) => {
    shared = await createSHA256();
  }).catch((err) => {
    ready = undefined;
    throw err;
  });
  return ready;
}

/** Validates a `CodecImpl` option; `undefined` means the default. @internal */
function checkImpl(impl: unknown): CodecImpl {
  if (impl === undefined) return DEFAULT_SHA256_IMPL;
  if (impl === "native" || impl === "wasm") return impl;
  throw new TypeError(`Invalid impl ${JSON.stringify(impl)}: expected "native" or "wasm"`);
}

function checkChunk(chunk: unknown): asserts chunk is Uint8Array {
  if (!(chunk instanceof Uint8Array)) {
    throw new TypeError("Sha256.update() expects a Uint8Array");
  }
}

const FINISHED = "Sha256 digest() was already called";

class NativeSha256 implements Sha256 {
  #hash: ReturnType<typeof createHash> | undefined = createHash("sha256");

  update(chunk: Uint8Array): void {
    checkChunk(chunk);
    if (this.#hash === undefined) throw new TypeError(FINISHED);
    this.#hash.update(chunk);
  }

  digest(): string {
    if (this.#hash === undefined) throw new TypeError(FINISHED);
    const hex = this.#hash.digest("hex");
    this.#hash = undefined;
    return hex;
  }
}

/** The subset of hash-wasm's `IHasher` used here. */
interface WasmHasher {
  init(): unknown;
  update(data: Uint8Array): unknown;
  digest(outputType: "hex"): string;
  save(): Uint8Array;
  load(state: Uint8Array): unknown;
}

let ready: Promise<void> | undefined;
let shared: WasmHasher | undefined;
/** The WasmSha256 whose state is currently loaded in `shared`. */
let owner: WasmSha256 | undefined;

class WasmSha256 implements Sha256 {
  readonly #hasher: WasmHasher;
  /** Saved state while another hash owns the instance; `undefined` = not started. */
  #state: Uint8Array | undefined;
  #finished = false;

  constructor(hasher: WasmHasher) {
    this.#hasher = hasher;
  }

  /** Makes this hash's state the one loaded in the shared instance. */
  #acquire(): void {
    if (owner === this) return;
    if (owner !== undefined) owner.#state = this.#hasher.save();
    if (this.#state === undefined) this.#hasher.init();
    else this.#hasher.load(this.#state);
    this.#state = undefined;
    owner = this;
  }

  update(chunk: Uint8Array): void {
    checkChunk(chunk);
    if (this.#finished) throw new TypeError(FINISHED);
    this.#acquire();
    // hash-wasm copies straight from this view into WASM memory in 16 KiB steps: no extra copy.
    this.#hasher.update(chunk);
  }

  digest(): string {
    if (this.#finished) throw new TypeError(FINISHED);
    this.#acquire();
    this.#finished = true;
    owner = undefined;
    return this.#hasher.digest("hex");
  }
}
