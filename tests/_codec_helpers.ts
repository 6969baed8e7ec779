/**
 * Test helpers shared by the codec suites (compression_test.ts, wasm_test.ts): deterministic
 * data, running the reference CLIs, chunked sources, collecting output, asserting rejections.
 *
 * @module
 */
import assert from "node:assert/strict";
import { InvalidInputError } from "../core/errors.ts";

const enc = new TextEncoder();

/** Deterministic, compressible test data (words with some binary noise and newlines). */
export function pattern(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let s = seed;
  const words = ["layer", "blob", "sha256", "manifest", "config", "overlay", "rootfs", "tar"]
    .map((w) => enc.encode(w + " "));
  let p = 0;
  while (p < size) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    if ((s >>> 29) === 0) {
      for (let i = 0; i < 16 && p < size; i++) {
        s = (Math.imul(s, 1103515245) + 12345) >>> 0;
        out[p++] = s >>> 24;
      }
    } else {
      const w = words[(s >>> 8) % words.length];
      const n = Math.min(w.length, size - p);
      out.set(w.subarray(0, n), p);
      p += n;
      if ((s & 0xf) === 0 && p < size) out[p++] = 0x0a;
    }
  }
  return out;
}

/** Runs a reference tool, feeding `stdin` while reading its output; throws with its stderr. */
export async function run(cmd: string, args: string[], stdin?: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writing = stdin
    ? (async () => {
      const w = child.stdin.getWriter();
      await w.write(stdin);
      await w.close();
    })()
    : Promise.resolve();
  const [out] = await Promise.all([child.output(), writing]);
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return out.stdout;
}

/** The bytes of `parts`, one after another. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** A stream of `data` cut into chunks of the given sizes (cycled); counts pulls and cancels. */
export function source(data: Uint8Array, sizes: number[] = [1 << 20]) {
  let at = 0, i = 0;
  const stats = { pulls: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      stats.pulls++;
      if (at >= data.byteLength) return c.close();
      const n = sizes[i++ % sizes.length];
      c.enqueue(data.subarray(at, at + n));
      at += n;
    },
    cancel() {
      stats.cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { stream, stats };
}

/** Everything a stream yields, concatenated. */
export async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of stream) parts.push(p);
  return concat(parts);
}

/** Asserts `p` rejects with a one-line `InvalidInputError` matching `re`. */
export async function rejectsInvalid(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof InvalidInputError, `expected InvalidInputError, got ${err}`);
    assert.match(err.message, re);
    assert.ok(!err.message.includes("\n"));
    return true;
  });
}
