// Tests of wasm/sha256.ts and wasm/zstd.ts. Every suite runs against both implementations
// ("native" and "wasm"); fixtures come from the real sha256sum and zstd CLIs.

import assert from "node:assert/strict";
import { collect, concat, pattern, rejectsInvalid, run, source } from "./_codec_helpers.ts";
import { type CodecImpl, createSha256, sha256Ready } from "../wasm/sha256.ts";
import { createZstdDecompressor, zstdNativeAvailable } from "../wasm/zstd.ts";
import { LimitError } from "../core/errors.ts";

const IMPLS: CodecImpl[] = ["native", "wasm"];
const enc = new TextEncoder();

// --------------------------------------------------------------------------------------------
// SHA-256

Deno.test("sha256 wasm: createSha256 before sha256Ready is a TypeError", () => {
  assert.throws(() => createSha256({ impl: "wasm" }), TypeError);
});

Deno.test("sha256: bad arguments", async () => {
  await sha256Ready();
  // deno-lint-ignore no-explicit-any
  assert.throws(() => createSha256({ impl: "fast" as any }), TypeError);
  for (const impl of IMPLS) {
    const h = createSha256({ impl });
    // deno-lint-ignore no-explicit-any
    assert.throws(() => h.update("abc" as any), TypeError);
    h.digest();
    assert.throws(() => h.digest(), TypeError);
    assert.throws(() => h.update(new Uint8Array(1)), TypeError);
  }
});

const VECTORS: [string, string][] = [
  ["", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
  ["abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"],
  [
    "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  ],
];

for (const impl of IMPLS) {
  Deno.test(`sha256 ${impl}: known vectors`, async () => {
    await sha256Ready();
    for (const [text, digest] of VECTORS) {
      const h = createSha256({ impl });
      h.update(enc.encode(text));
      assert.equal(h.digest(), digest);
    }
    assert.equal(createSha256({ impl }).digest(), VECTORS[0][1]);
  });

  Deno.test(`sha256 ${impl}: 1 MiB pattern and 3 MiB + 1 in one update match sha256sum`, async () => {
    await sha256Ready();
    for (const size of [1 << 20, 3 * (1 << 20) + 1]) {
      const data = pattern(size, size);
      const expected = new TextDecoder().decode(await run("sha256sum", ["-"], data)).slice(0, 64);
      const h = createSha256({ impl });
      h.update(data);
      assert.equal(h.digest(), expected);
    }
  });

  Deno.test(`sha256 ${impl}: digest does not depend on chunk boundaries or views`, async () => {
    await sha256Ready();
    const data = pattern(300_001, 7);
    const whole = createSha256({ impl });
    whole.update(data);
    const expected = whole.digest();
    for (const sizes of [[1], [63, 64, 65], [16383, 16384, 16385], [100_000]]) {
      const h = createSha256({ impl });
      let at = 0, i = 0;
      while (at < data.length) {
        const n = sizes[i++ % sizes.length];
        h.update(data.subarray(at, at + n)); // views with a byteOffset
        at += n;
      }
      h.update(new Uint8Array(0));
      assert.equal(h.digest(), expected, `chunks ${sizes}`);
    }
    // a view into a larger buffer hashes only its own bytes
    const padded = new Uint8Array(data.length + 20);
    padded.set(data, 10);
    const v = createSha256({ impl });
    v.update(padded.subarray(10, 10 + data.length));
    assert.equal(v.digest(), expected);
  });
}

Deno.test("sha256 wasm: interleaved hashes share one instance correctly", async () => {
  await sha256Ready();
  const a = pattern(200_000, 11), b = pattern(150_000, 12), c = enc.encode("abc");
  const ha = createSha256({ impl: "wasm" }), hb = createSha256({ impl: "wasm" });
  const hc = createSha256({ impl: "wasm" });
  for (let at = 0; at < 200_000; at += 10_000) {
    ha.update(a.subarray(at, at + 10_000));
    hb.update(b.subarray(at, at + 10_000));
  }
  hc.update(c);
  const na = createSha256({ impl: "native" }), nb = createSha256({ impl: "native" });
  na.update(a);
  nb.update(b);
  assert.equal(hc.digest(), VECTORS[1][1]);
  assert.equal(hb.digest(), nb.digest());
  assert.equal(ha.digest(), na.digest());
});

// --------------------------------------------------------------------------------------------
// zstd

Deno.test("zstd native: the node:zlib decoder passes its self-test on this Deno", () => {
  // If this fails, impl "native" silently falls back to "wasm": the native suite below would
  // then not test the native decoder at all.
  assert.equal(zstdNativeAvailable(), true);
});

interface ZstdFixtures {
  data: Uint8Array;
  small: Uint8Array;
  l1: Uint8Array;
  l19: Uint8Array;
  long: Uint8Array;
  multi: Uint8Array;
  noSize: Uint8Array;
  skippy: Uint8Array;
  smallMulti: Uint8Array;
  bomb: Uint8Array;
  window256: Uint8Array;
}

let fixtures: Promise<ZstdFixtures> | undefined;

function zstdFixtures(): Promise<ZstdFixtures> {
  fixtures ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "berth_zstd_test_" });
    try {
      const data = pattern(3 << 20, 3);
      const small = data.subarray(0, 200_000);
      const file = `${dir}/data`, smallFile = `${dir}/small`;
      await Deno.writeFile(file, data);
      await Deno.writeFile(smallFile, small);
      const l1 = await run("zstd", ["-q", "-1", "-c", file]);
      const l19 = await run("zstd", ["-q", "-19", "-c", smallFile]);
      // from stdin the window stays 2^27 (128 MiB): the decoder must allocate all of it
      const long = await run("zstd", ["-q", "--long", "-3", "-c"], data);
      const noSize = await run("zstd", ["-q", "-c"], data); // from stdin: size unknown
      const s1 = await run("zstd", ["-q", "-c", smallFile]);
      const skip = (n: number) =>
        concat([new Uint8Array([0x53, 0x2a, 0x4d, 0x18, n, 0, 0, 0]), new Uint8Array(n).fill(7)]);
      const bomb = await run("zstd", ["-q", "-c"], new Uint8Array(64 << 20));
      const window256 = await run("zstd", ["-q", "--long=28", "-c"], small);
      return {
        data,
        small,
        l1,
        l19,
        long,
        multi: concat([l1, l19]),
        noSize,
        skippy: concat([skip(3), s1, skip(0), s1, skip(20)]),
        smallMulti: concat([s1, skip(5), l19]),
        bomb,
        window256,
      };
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  })();
  return fixtures;
}

async function decode(impl: CodecImpl, input: Uint8Array, sizes?: number[]) {
  return await collect(source(input, sizes).stream.pipeThrough(createZstdDecompressor({ impl })));
}

Deno.test("zstd: bad impl is a TypeError", () => {
  // deno-lint-ignore no-explicit-any
  assert.throws(() => createZstdDecompressor({ impl: "zlib" as any }), TypeError);
});

for (const impl of IMPLS) {
  Deno.test(`zstd ${impl}: zstd CLI output at levels 1 and 19, --long, size unknown`, async () => {
    const f = await zstdFixtures();
    // the stdin fixture really has no content size: FCS flag 0 and no single-segment flag
    assert.equal(f.noSize[4] & 0xe0, 0);
    assert.equal(10 + (f.long[5] >> 3), 27, "--long fixture has a 128 MiB window");
    assert.deepEqual(await decode(impl, f.l1), f.data);
    assert.deepEqual(await decode(impl, f.l19), f.small);
    assert.deepEqual(await decode(impl, f.long), f.data);
    assert.deepEqual(await decode(impl, f.noSize), f.data);
  });

  Deno.test(`zstd ${impl}: concatenated frames and skippable frames`, async () => {
    const f = await zstdFixtures();
    assert.deepEqual(await decode(impl, f.multi), concat([f.data, f.small]));
    assert.deepEqual(await decode(impl, f.skippy), concat([f.small, f.small]));
    // only a skippable frame: valid, no output
    assert.deepEqual(await decode(impl, f.skippy.subarray(0, 11)), new Uint8Array(0));
  });

  Deno.test(`zstd ${impl}: output does not depend on input chunk boundaries`, async () => {
    const f = await zstdFixtures();
    const expected = concat([f.small, f.small]);
    for (const sizes of [[1, 2, 3, 5, 7, 11], [4096], [13, 100_000]]) {
      assert.deepEqual(await decode(impl, f.skippy, sizes), expected, `chunks ${sizes}`);
    }
    assert.deepEqual(
      await decode(impl, f.smallMulti, [3, 1, 4, 1, 5, 9, 2, 6]),
      concat([f.small, f.small]),
    );
  });

  Deno.test(`zstd ${impl}: truncated input is rejected`, async () => {
    const f = await zstdFixtures();
    const s = f.smallMulti;
    const cuts = [0, 1, 4, 5, 8, 100, s.length >> 1, s.length - 5, s.length - 1];
    for (const cut of cuts) {
      await rejectsInvalid(decode(impl, s.subarray(0, cut)), /^truncated zstd stream$/);
    }
    await rejectsInvalid(
      decode(impl, f.l1.subarray(0, f.l1.length - 4)),
      /^truncated zstd stream$/,
    );
    await rejectsInvalid(decode(impl, f.skippy.subarray(0, 9)), /^truncated zstd stream$/);
  });

  Deno.test(`zstd ${impl}: corrupt input is rejected`, async () => {
    const f = await zstdFixtures();
    const positions = [0, 4, 20, 5000, 40_000, f.l1.length >> 1, f.l1.length - 2];
    assert.ok(positions.every((p) => p + 1 < f.l1.length));
    for (const pos of positions) {
      const bad = f.l1.slice();
      bad[pos] ^= 0xa5;
      bad[pos + 1] ^= 0x5a;
      await rejectsInvalid(decode(impl, bad), /^(corrupt|truncated) zstd stream/);
    }
    await rejectsInvalid(decode(impl, enc.encode("plain text, not zstd")), /^corrupt zstd stream/);
    // trailing garbage after a valid frame
    await rejectsInvalid(decode(impl, concat([f.l19, enc.encode("junk")])), /^corrupt zstd stream/);
  });

  Deno.test(`zstd ${impl}: a window over 128 MiB is a LimitError, as in zstd -d`, async () => {
    const f = await zstdFixtures();
    assert.equal(10 + (f.window256[5] >> 3), 28);
    await assert.rejects(decode(impl, f.window256), LimitError);
  });

  Deno.test(`zstd ${impl}: memory stays bounded for a slow consumer (backpressure)`, async () => {
    const f = await zstdFixtures();
    const { stream, stats } = source(f.bomb, [64]); // 64 MiB of zeros in ~2 KiB
    const reader = stream.pipeThrough(createZstdDecompressor({ impl })).getReader();
    const first = await reader.read();
    await new Promise((r) => setTimeout(r, 100));
    const pulls = stats.pulls;
    const total = Math.ceil(f.bomb.length / 64);
    assert.ok(pulls < total / 4, `source pulled ${pulls} of ${total} chunks without reads`);
    let n = first.value!.byteLength;
    for (let r = await reader.read(); !r.done; r = await reader.read()) n += r.value.byteLength;
    assert.equal(n, 64 << 20);
  });

  Deno.test(`zstd ${impl}: cancelling the output errors the input side`, async () => {
    const f = await zstdFixtures();
    const { stream } = source(f.l1, [4096]);
    const dec = createZstdDecompressor({ impl });
    const piping = stream.pipeTo(dec.writable);
    const reader = dec.readable.getReader();
    await reader.read();
    await reader.cancel(new Error("enough"));
    await assert.rejects(piping, /enough/);
  });
}
