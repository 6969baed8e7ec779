/**
 * Codec benchmark: SHA-256, zstd and gzip decompression, native vs WASM vs the CLI tools, on the
 * same synthetic layer-like data in one run. Prints the median of N runs in ms and MB/s of
 * uncompressed data, and ratios within each group.
 *
 * ```sh
 * deno run -A scripts/bench_codecs.ts [--size=256] [--runs=3]
 * ```
 *
 * In-process codecs read the compressed bytes from memory in 1 MiB chunks (so the numbers are
 * the codec plus its stream plumbing, not disk I/O); the CLIs read the same bytes from a file in
 * the page cache and write to /dev/null.
 *
 * @module
 */

import { Duplex } from "node:stream";
import * as zlib from "node:zlib";
import { type CodecImpl, createSha256, sha256Ready } from "../wasm/sha256.ts";
import { createZstdDecompressor, zstdNativeAvailable } from "../wasm/zstd.ts";
import { createDecompressor } from "../core/compression.ts";

/** Options of {@linkcode benchCodecs}. */
export interface BenchCodecsOptions {
  /** Size of the uncompressed test data in MiB; default 256. */
  sizeMiB?: number;
  /** Runs per candidate (the median is reported); default 3. */
  runs?: number;
}

interface Candidate {
  group: string;
  name: string;
  fn: () => Promise<number>;
}

const CHUNK = 1 << 20;

/** Runs the codec benchmark and prints its table to stdout. */
export async function benchCodecs(options: BenchCodecsOptions = {}): Promise<void> {
  const { sizeMiB = 256, runs = 3 } = options;
  if (!Number.isInteger(sizeMiB) || sizeMiB < 1) throw new RangeError(`Invalid sizeMiB ${sizeMiB}`);
  if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`Invalid runs ${runs}`);
  const size = sizeMiB * CHUNK;
  const dir = await Deno.makeTempDir({ prefix: "berth_bench_codecs_" });
  try {
    const raw = `${dir}/data`, zst = `${dir}/data.zst`, gz = `${dir}/data.gz`;
    const data = layerLike(size);
    await Deno.writeFile(raw, data);
    await sh("zstd", ["-q", "-3", "-f", "-o", zst, raw]);
    await sh("sh", ["-c", `pigz -6 -c '${raw}' > '${gz}'`]);
    const zstBytes = await Deno.readFile(zst), gzBytes = await Deno.readFile(gz);
    await sha256Ready();
    const native = zstdNativeAvailable();
    console.log(
      `data: ${sizeMiB} MiB synthetic layer-like; zstd -3 ${mib(zstBytes.length)} MiB, ` +
        `gzip -6 ${mib(gzBytes.length)} MiB; median of ${runs} runs; Deno ${Deno.version.deno}; ` +
        `native zstd usable: ${native}`,
    );

    const sha = (impl: CodecImpl) => () => {
      const h = createSha256({ impl });
      for (let at = 0; at < size; at += CHUNK) h.update(data.subarray(at, at + CHUNK));
      h.digest();
      return Promise.resolve(size);
    };
    const through = (input: Uint8Array, t: () => TransformStream<Uint8Array, Uint8Array>) => () =>
      drain(chunks(input).pipeThrough(t()));
    const cli = (cmd: string, args: string[]) => async () => {
      await sh(cmd, args, "null");
      return size;
    };
    const candidates: Candidate[] = [
      { group: "sha256", name: "native (node:crypto)", fn: sha("native") },
      { group: "sha256", name: "wasm (hash-wasm)", fn: sha("wasm") },
      { group: "sha256", name: "sha256sum", fn: cli("sha256sum", [raw]) },
      {
        group: "zstd -d",
        name: "native (node:zlib handle)",
        fn: through(zstBytes, () => createZstdDecompressor({ impl: "native" })),
      },
      {
        group: "zstd -d",
        name: "wasm (zstddec libzstd)",
        fn: through(zstBytes, () => createZstdDecompressor({ impl: "wasm" })),
      },
      { group: "zstd -d", name: "zstd -dc", fn: cli("zstd", ["-dc", zst]) },
      {
        group: "gzip -d",
        name: "node:zlib, hand bridge (used)",
        fn: through(gzBytes, () => createDecompressor("gzip")),
      },
      {
        group: "gzip -d",
        name: "node:zlib, Duplex.toWeb",
        fn: through(
          gzBytes,
          () =>
            Duplex.toWeb(
              zlib.createGunzip({ chunkSize: 256 * 1024 }),
            ) as unknown as TransformStream<
              Uint8Array,
              Uint8Array
            >,
        ),
      },
      {
        group: "gzip -d",
        name: "DecompressionStream",
        fn: through(
          gzBytes,
          () =>
            new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
        ),
      },
      { group: "gzip -d", name: "pigz -dc", fn: cli("pigz", ["-dc", gz]) },
      { group: "gzip -d", name: "gzip -dc", fn: cli("gzip", ["-dc", gz]) },
    ];

    // warm-up (JIT, WASM tier-up, page cache), then interleaved runs
    for (const c of candidates) await check(c, size);
    const times = new Map<Candidate, number[]>(candidates.map((c) => [c, []]));
    for (let r = 0; r < runs; r++) {
      for (const c of candidates) {
        const t0 = performance.now();
        await check(c, size);
        times.get(c)!.push(performance.now() - t0);
      }
    }

    let group = "";
    let best = 0;
    for (const c of candidates) {
      const ms = median(times.get(c)!);
      if (c.group !== group) {
        group = c.group;
        best = Math.min(
          ...candidates.filter((x) => x.group === group).map((x) => median(times.get(x)!)),
        );
        console.log(`\n${group}`);
      }
      const mbs = size / 1e6 / (ms / 1000);
      console.log(
        `  ${c.name.padEnd(32)} ${ms.toFixed(0).padStart(6)} ms ${
          mbs.toFixed(0).padStart(6)
        } MB/s` +
          `  ${(ms / best).toFixed(2)}× the fastest`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function check(c: Candidate, size: number): Promise<void> {
  const n = await c.fn();
  if (n !== size) throw new Error(`${c.group} ${c.name}: produced ${n} bytes, expected ${size}`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function mib(n: number): string {
  return (n / CHUNK).toFixed(1);
}

function chunks(input: Uint8Array): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= input.length) return c.close();
      c.enqueue(input.subarray(at, at + CHUNK));
      at += CHUNK;
    },
  }, { highWaterMark: 0 });
}

async function drain(stream: ReadableStream<Uint8Array>): Promise<number> {
  let n = 0;
  const reader = stream.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) n += r.value.byteLength;
  return n;
}

async function sh(cmd: string, args: string[], stdout: "null" | "inherit" = "inherit") {
  const { success, stderr } = await new Deno.Command(cmd, { args, stdout, stderr: "piped" })
    .output();
  if (!success) throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(stderr)}`);
}

/**
 * Deterministic data resembling a layer: text lines from a skewed vocabulary with runs of
 * random bytes (about 3:1 with zstd -3).
 */
function layerLike(size: number): Uint8Array {
  const out = new Uint8Array(size);
  let s = 0x9e3779b9;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  const enc = new TextEncoder();
  const words: Uint8Array[] = [];
  for (let i = 0; i < 4096; i++) {
    let w = "";
    const n = 2 + next() % 10;
    for (let j = 0; j < n; j++) w += String.fromCharCode(97 + next() % 26);
    words.push(enc.encode(w + (i % 9 === 0 ? "\n" : " ")));
  }
  let p = 0;
  while (p < size) {
    const r = next();
    if ((r & 7) === 0) {
      const n = Math.min(16 + (r >>> 8) % 240, size - p);
      for (let j = 0; j < n; j += 4) {
        const v = next();
        out[p + j] = v;
        out[p + j + 1] = v >>> 8;
        out[p + j + 2] = v >>> 16;
        out[p + j + 3] = v >>> 24;
      }
      p += n;
    } else {
      for (let k = 0; k < 32 && p < size; k++) {
        const x = next() % 4096;
        const w = words[(x * x) >>> 12];
        const n = Math.min(w.length, size - p);
        out.set(n === w.length ? w : w.subarray(0, n), p);
        p += n;
      }
    }
  }
  return out;
}

if (import.meta.main) {
  const arg = (name: string) => {
    const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
    return a === undefined ? undefined : Number(a.slice(name.length + 3));
  };
  await benchCodecs({ sizeMiB: arg("size"), runs: arg("runs") });
}
