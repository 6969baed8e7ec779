// Tests of core/compression.ts: detection, gzip against the real gzip/pigz CLIs, the
// decompression-bomb guard for every codec and implementation, sniffing, gzip compression.

import assert from "node:assert/strict";
import { collect, concat, pattern, rejectsInvalid, run, source } from "./_codec_helpers.ts";
import {
  type Compression,
  createDecompressor,
  createGzipCompressor,
  detectCompression,
  sniffCompression,
} from "../core/compression.ts";
import { LimitError } from "../core/errors.ts";
import type { CodecImpl } from "../wasm/sha256.ts";

const enc = new TextEncoder();

async function decompress(
  compression: Compression,
  input: Uint8Array,
  options: { impl?: CodecImpl; maxOutput?: number; what?: string; sizes?: number[] } = {},
): Promise<Uint8Array> {
  const { sizes, ...rest } = options;
  return await collect(
    source(input, sizes).stream.pipeThrough(createDecompressor(compression, rest)),
  );
}

interface Fixtures {
  data: Uint8Array;
  gz1: Uint8Array;
  gz9: Uint8Array;
  pigz: Uint8Array;
  zst: Uint8Array;
  gzBomb: Uint8Array;
  zstBomb: Uint8Array;
}

let fixtures: Promise<Fixtures> | undefined;

function getFixtures(): Promise<Fixtures> {
  fixtures ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "berth_compression_test_" });
    try {
      const data = pattern(2 << 20, 5);
      const file = `${dir}/data`;
      await Deno.writeFile(file, data);
      const zeros = new Uint8Array(64 << 20);
      return {
        data,
        gz1: await run("gzip", ["-1", "-c", file]),
        gz9: await run("gzip", ["-9", "-c", file]),
        pigz: await run("pigz", ["-c", "-b", "128", file]),
        zst: await run("zstd", ["-q", "-c", file]),
        gzBomb: await run("gzip", ["-c"], zeros),
        zstBomb: await run("zstd", ["-q", "-c"], zeros),
      };
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  })();
  return fixtures;
}

// --------------------------------------------------------------------------------------------

Deno.test("detectCompression: magic bytes", () => {
  const b = (...x: number[]) => new Uint8Array(x);
  assert.equal(detectCompression(b(0x1f, 0x8b, 0x08, 0x00)), "gzip");
  assert.equal(detectCompression(b(0x1f, 0x8b)), "gzip");
  assert.equal(detectCompression(b(0x28, 0xb5, 0x2f, 0xfd, 0x04)), "zstd");
  for (let n = 0x50; n <= 0x5f; n++) {
    assert.equal(detectCompression(b(n, 0x2a, 0x4d, 0x18)), "zstd", `skippable ${n}`);
  }
  assert.equal(detectCompression(b(0x60, 0x2a, 0x4d, 0x18)), "none");
  assert.equal(detectCompression(b(0x28, 0xb5, 0x2f)), "none"); // too short to tell
  assert.equal(detectCompression(b(0x1f)), "none");
  assert.equal(detectCompression(b()), "none");
  assert.equal(detectCompression(enc.encode("etc/passwd\0\0\0")), "none"); // a tar header
  // deno-lint-ignore no-explicit-any
  assert.throws(() => detectCompression([0x1f, 0x8b] as any), TypeError);
});

Deno.test("sniffCompression: peeks without losing bytes", async () => {
  const f = await getFixtures();
  for (const [input, expected] of [[f.gz1, "gzip"], [f.zst, "zstd"], [f.data, "none"]] as const) {
    for (const sizes of [[1, 1, 1, 1, 1, 1 << 16], [3, 1, 1 << 16], [1 << 20]]) {
      const { compression, stream } = await sniffCompression(source(input, sizes).stream);
      assert.equal(compression, expected);
      assert.deepEqual(await collect(stream), input);
    }
  }
  const empty = await sniffCompression(source(new Uint8Array(0)).stream);
  assert.equal(empty.compression, "none");
  assert.deepEqual(await collect(empty.stream), new Uint8Array(0));
  const short = await sniffCompression(source(new Uint8Array([0x1f, 0x8b]), [1]).stream);
  assert.equal(short.compression, "gzip");
  assert.deepEqual(await collect(short.stream), new Uint8Array([0x1f, 0x8b]));
  // cancelling the replay cancels the original
  const s = source(f.data, [1000]);
  const sniffed = await sniffCompression(s.stream);
  await sniffed.stream.cancel();
  assert.equal(s.stats.cancelled, true);
});

Deno.test("createDecompressor: bad arguments", () => {
  // deno-lint-ignore no-explicit-any
  assert.throws(() => createDecompressor("bzip2" as any), TypeError);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => createDecompressor("gzip", { impl: "pako" as any }), TypeError);
  for (const maxOutput of [-1, 1.5, NaN, Infinity]) {
    assert.throws(() => createDecompressor("none", { maxOutput }), RangeError);
  }
  for (const level of [-1, 10, 2.5]) {
    assert.throws(() => createGzipCompressor({ level }), RangeError);
  }
});

Deno.test("none: passes bytes through", async () => {
  const f = await getFixtures();
  assert.deepEqual(await decompress("none", f.data), f.data);
  assert.deepEqual(await decompress("none", f.data, { maxOutput: f.data.length }), f.data);
});

Deno.test("gzip: gzip -1/-9 and pigz output, any chunking", async () => {
  const f = await getFixtures();
  for (const input of [f.gz1, f.gz9, f.pigz]) {
    assert.deepEqual(await decompress("gzip", input), f.data);
  }
  await rejectsInvalid(
    decompress("gzip", f.gz1.subarray(0, 3000), { sizes: [1] }),
    /^truncated gzip stream$/,
  );

  const small = await run("gzip", ["-c"], f.data.subarray(0, 50_000));
  assert.deepEqual(
    await decompress("gzip", small, { sizes: [1, 2, 3, 5, 7] }),
    f.data.subarray(0, 50_000),
  );
});

Deno.test("gzip: concatenated members", async () => {
  const f = await getFixtures();
  const expected = concat([f.data, f.data, f.data]);
  assert.deepEqual(await decompress("gzip", concat([f.gz1, f.pigz, f.gz9])), expected);
  // zero padding after the last member (as some tools write) is accepted
  assert.deepEqual(await decompress("gzip", concat([f.gz1, new Uint8Array(512)])), f.data);
});

Deno.test("gzip: truncated input is rejected", async () => {
  const f = await getFixtures();
  for (const cut of [0, 1, 2, 10, 1000, f.gz1.length >> 1, f.gz1.length - 4, f.gz1.length - 1]) {
    await rejectsInvalid(decompress("gzip", f.gz1.subarray(0, cut)), /^truncated gzip stream$/);
  }
  const two = concat([f.gz1, f.gz9]);
  await rejectsInvalid(
    decompress("gzip", two.subarray(0, f.gz1.length + 100)),
    /^truncated gzip stream$/,
  );
});

Deno.test("gzip: corrupt input is rejected", async () => {
  const f = await getFixtures();
  for (const pos of [0, 3, 1000, f.gz1.length >> 1, f.gz1.length - 8, f.gz1.length - 2]) {
    const bad = f.gz1.slice();
    bad[pos] ^= 0xa5;
    bad[pos + 1] ^= 0x5a;
    await rejectsInvalid(decompress("gzip", bad), /^(corrupt|truncated) gzip stream/);
  }
  await rejectsInvalid(
    decompress("gzip", concat([f.gz1, enc.encode("junk")])),
    /^corrupt gzip stream/,
  );
});

const BOMB_CASES: [Compression, CodecImpl | undefined][] = [
  ["none", undefined],
  ["gzip", undefined],
  ["zstd", "native"],
  ["zstd", "wasm"],
];

for (const [compression, impl] of BOMB_CASES) {
  const name = impl ? `${compression} ${impl}` : compression;
  Deno.test(`${name}: maxOutput stops a decompression bomb with a LimitError`, async () => {
    const f = await getFixtures();
    const input = compression === "none"
      ? new Uint8Array(4 << 20)
      : compression === "gzip"
      ? f.gzBomb
      : f.zstBomb;
    const { stream, stats } = source(input, [4096]);
    const what = "layer sha256:abcdef012345";
    const out = stream.pipeThrough(
      createDecompressor(compression, { impl, maxOutput: 1 << 20, what }),
    );
    let seen = 0;
    await assert.rejects(
      (async () => {
        for await (const piece of out) seen += piece.byteLength;
      })(),
      (err: unknown) => {
        assert.ok(err instanceof LimitError);
        assert.match(err.message, /^layer sha256:abcdef012345 .*1048576/);
        return true;
      },
    );
    assert.ok(seen <= 1 << 20);
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(stats.cancelled, true, "the source was cancelled");
    // the exact size is allowed
    if (compression !== "none") {
      const all = await decompress(compression, input, { impl, maxOutput: 64 << 20 });
      assert.equal(all.length, 64 << 20);
    }
  });
}

Deno.test("gzip: memory stays bounded for a slow consumer (backpressure)", async () => {
  const f = await getFixtures();
  const { stream, stats } = source(f.gzBomb, [1024]); // 64 MiB of zeros in ~64 KiB
  const reader = stream.pipeThrough(createDecompressor("gzip")).getReader();
  const first = await reader.read();
  await new Promise((r) => setTimeout(r, 100));
  const total = Math.ceil(f.gzBomb.length / 1024);
  assert.ok(stats.pulls < total / 4, `source pulled ${stats.pulls} of ${total} chunks`);
  let n = first.value!.byteLength;
  for (let r = await reader.read(); !r.done; r = await reader.read()) n += r.value.byteLength;
  assert.equal(n, 64 << 20);
});

for (const compression of ["gzip", "zstd"] as const) {
  Deno.test(`${compression}: an erroring source errors the output`, async () => {
    const f = await getFixtures();
    const input = compression === "gzip" ? f.gz1 : f.zst;
    let sent = false;
    const failing = new ReadableStream<Uint8Array>({
      pull(c) {
        if (!sent) {
          sent = true;
          c.enqueue(input.subarray(0, 5000));
        } else c.error(new Error("network down"));
      },
    });
    await assert.rejects(
      collect(failing.pipeThrough(createDecompressor(compression))),
      /network down/,
    );
  });
}

Deno.test("createGzipCompressor: output is read by gzip -dc and by createDecompressor", async () => {
  const f = await getFixtures();
  for (const level of [1, 6, 9]) {
    const gz = await collect(
      source(f.data, [100_000]).stream.pipeThrough(createGzipCompressor({ level })),
    );
    assert.equal(detectCompression(gz), "gzip");
    assert.deepEqual(await run("gzip", ["-dc"], gz), f.data);
    assert.deepEqual(await decompress("gzip", gz), f.data);
  }
  const empty = await collect(source(new Uint8Array(0)).stream.pipeThrough(createGzipCompressor()));
  assert.deepEqual(await run("gzip", ["-dc"], empty), new Uint8Array(0));
});
