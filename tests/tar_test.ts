import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { InvalidInputError, LimitError } from "../core/errors.ts";
import { readTar, type TarHeader, TarParser, type TarReadOptions } from "../core/tar/reader.ts";
import { type TarWriteHeader, TarWriter } from "../core/tar/writer.ts";

// ---------------------------------------------------------------------------------------------
// helpers

const enc = new TextEncoder();
// The pyenv shim in front of python3 costs ~0.4 s per start; prefer the system interpreter.
const PY = (() => {
  try {
    Deno.statSync("/usr/bin/python3");
    return "/usr/bin/python3";
  } catch {
    return "python3";
  }
})();
const dec = new TextDecoder();

async function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; ok?: boolean } = {},
): Promise<{ stdout: Uint8Array; stderr: string; code: number }> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = dec.decode(out.stderr);
  if ((opts.ok ?? true) && !out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}): ${stderr}`);
  }
  return { stdout: out.stdout, stderr, code: out.code };
}

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "berth_tar_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

interface Parsed {
  entries: { header: TarHeader; body: Uint8Array }[];
  done: boolean;
}

/** Parses `bytes` with the push parser, fed in `chunk`-byte pieces. */
function parse(bytes: Uint8Array, chunk = 1 << 20, options?: TarReadOptions): Parsed {
  const entries: Parsed["entries"] = [];
  let parts: Uint8Array[] = [];
  let ended = 0;
  const parser = new TarParser({
    entry(header) {
      assert.equal(ended, entries.length, "entryEnd before the next entry");
      entries.push({ header, body: new Uint8Array(0) });
      parts = [];
    },
    data(c) {
      parts.push(c.slice());
    },
    entryEnd() {
      entries[entries.length - 1].body = concat(parts);
      ended++;
    },
  }, options);
  for (let i = 0; i < bytes.length; i += chunk) parser.push(bytes.subarray(i, i + chunk));
  parser.end();
  assert.equal(ended, entries.length);
  return { entries, done: parser.done };
}

const byName = (p: Parsed, name: string) => {
  const e = p.entries.find((x) => x.header.name === name);
  assert.ok(e, `no entry ${name} in ${p.entries.map((x) => x.header.name).join(", ")}`);
  return e;
};

const PY_LIST = `
import sys, tarfile, json, hashlib
out = []
with tarfile.open(sys.argv[1], "r:") as t:
    for m in t:
        d = dict(name=m.name, type=m.type.decode("latin1"), mode=m.mode & 0o7777, uid=m.uid,
                 gid=m.gid, uname=m.uname, gname=m.gname, size=m.size, mtime=m.mtime,
                 linkname=m.linkname, devmajor=m.devmajor, devminor=m.devminor)
        if m.isreg():
            d["sha256"] = hashlib.sha256(t.extractfile(m).read()).hexdigest()
        out.append(d)
print(json.dumps(out))
`;

const PY_TYPES: Record<string, string> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "3": "char",
  "4": "block",
  "5": "dir",
  "6": "fifo",
};

/** Compares our parse of `file` with python3's tarfile and with `tar -t`. */
async function compareWithReferences(file: string): Promise<Parsed> {
  const bytes = await Deno.readFile(file);
  const ours = parse(bytes);
  const py = JSON.parse(dec.decode((await run(PY, ["-c", PY_LIST, file])).stdout));
  assert.equal(ours.entries.length, py.length, file);
  for (let i = 0; i < py.length; i++) {
    const h = ours.entries[i].header;
    const p = py[i];
    const where = `${file}: ${h.name}`;
    assert.equal(h.name.replace(/\/+$/, ""), p.name.replace(/\/+$/, ""), where);
    assert.equal(h.type, PY_TYPES[p.type], where);
    assert.equal(h.mode, p.mode, where);
    assert.equal(h.uid, p.uid, where);
    assert.equal(h.gid, p.gid, where);
    assert.equal(h.uname, p.uname, where);
    assert.equal(h.gname, p.gname, where);
    assert.equal(h.mtime, p.mtime, where);
    assert.equal(h.linkname, p.linkname, where);
    if (h.type === "char" || h.type === "block") {
      assert.deepEqual([h.devmajor, h.devminor], [p.devmajor, p.devminor], where);
    }
    if (h.type === "file") {
      assert.equal(h.size, p.size, where);
      assert.equal(sha256(ours.entries[i].body), p.sha256, where);
    } else {
      assert.equal(ours.entries[i].body.length, 0, where);
    }
  }
  const listed = dec.decode(
    (await run("tar", ["--quoting-style=literal", "-tf", file])).stdout,
  ).split("\n").filter((x) => x !== "");
  assert.deepEqual(ours.entries.map((e) => e.header.name), listed, file);
  return ours;
}

const LONG_DIR = "long/" + "a".repeat(90) + "/" + "b".repeat(90) + "/" + "c".repeat(90);
const LONG_FILE = LONG_DIR + "/file-with-a-long-name.txt"; // > 255 bytes
const MID_FILE = "mid/" + "x".repeat(80) + "/" + "y".repeat(60); // 145 bytes: ustar prefix
const LONG_TARGET = "t".repeat(150) + "/target";
const UNICODE = "ünïcødé-日本.txt";

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** A source tree with every kind of entry GNU tar can store. */
async function makeTree(root: string): Promise<void> {
  const w = (p: string, data: Uint8Array) => Deno.writeFile(`${root}/${p}`, data);
  await Deno.mkdir(`${root}/d`);
  await w("d/empty", new Uint8Array(0));
  await w("d/one", enc.encode("1"));
  await w("d/b511", pattern(511, 1));
  await w("d/b512", pattern(512, 2));
  await w("d/b513", pattern(513, 3));
  await w("d/big", pattern(70_000, 4));
  await Deno.symlink("one", `${root}/d/link`);
  await Deno.link(`${root}/d/one`, `${root}/d/hard`);
  await w("suid", enc.encode("#!/bin/sh\n"));
  await Deno.chmod(`${root}/suid`, 0o4755);
  await Deno.mkdir(`${root}/sticky`);
  await Deno.chmod(`${root}/sticky`, 0o1777);
  await Deno.mkdir(`${root}/${LONG_DIR}`, { recursive: true });
  await w(LONG_FILE, enc.encode("deep\n"));
  await Deno.mkdir(`${root}/mid/${"x".repeat(80)}`, { recursive: true });
  await w(MID_FILE, enc.encode("mid\n"));
  await Deno.symlink(LONG_TARGET, `${root}/longlink`);
  await w(UNICODE, enc.encode("unicode\n"));
  await run("mkfifo", [`${root}/fifo`]);
  await run("mknod", [`${root}/chr`, "c", "1", "3"]);
  await run("mknod", [`${root}/blk`, "b", "7", "0"]);
}

// Members per format: ustar cannot hold > 255-byte names or > 100-byte link targets; v7 has no
// devices, fifos, prefixes or owner names.
const V7_MEMBERS = ["d", "suid", "sticky", UNICODE];
const USTAR_MEMBERS = [...V7_MEMBERS, "mid", "fifo", "chr", "blk"];

// ---------------------------------------------------------------------------------------------
// reader against GNU tar and python's tarfile

Deno.test("tar reader: GNU tar gnu/oldgnu/posix/ustar/v7 archives match tarfile and tar -t", async () => {
  await withTemp(async (dir) => {
    await Deno.mkdir(`${dir}/src`);
    await makeTree(`${dir}/src`);
    const formats: [string, string[]][] = [
      ["gnu", ["."]],
      ["oldgnu", ["."]],
      ["posix", ["."]],
      ["ustar", USTAR_MEMBERS],
      ["v7", V7_MEMBERS],
    ];
    for (const [format, members] of formats) {
      const file = `${dir}/${format}.tar`;
      await run("tar", [`--format=${format}`, "-cf", file, "-C", `${dir}/src`, ...members]);
      const p = await compareWithReferences(file);
      assert.equal(p.done, true, format);
      const prefix = members[0] === "." ? "./" : "";
      assert.equal(byName(p, `${prefix}d/b513`).body.length, 513);
      assert.equal(byName(p, `${prefix}suid`).header.mode, 0o4755, format);
      assert.equal(byName(p, `${prefix}sticky/`).header.mode, 0o1777, format);
      assert.equal(byName(p, `${prefix}sticky/`).header.type, "dir", format);
      const link = byName(p, `${prefix}d/link`).header;
      assert.deepEqual([link.type, link.linkname], ["symlink", "one"]);
      const hard = p.entries.filter((e) => e.header.type === "hardlink");
      assert.equal(hard.length, 1, format);
      assert.match(hard[0].header.linkname, /^(\.\/)?d\/(one|hard)$/);
      assert.equal(byName(p, `${prefix}${UNICODE}`).header.name, `${prefix}${UNICODE}`);
      if (format !== "v7") {
        assert.equal(byName(p, `${prefix}${MID_FILE}`).body.length, 4);
        const chr = byName(p, `${prefix}chr`).header;
        assert.deepEqual([chr.type, chr.devmajor, chr.devminor], ["char", 1, 3]);
        const blk = byName(p, `${prefix}blk`).header;
        assert.deepEqual([blk.type, blk.devmajor, blk.devminor], ["block", 7, 0]);
        assert.equal(byName(p, `${prefix}fifo`).header.type, "fifo");
        assert.equal(byName(p, `${prefix}d/one`).header.uname, "root");
      }
      if (members[0] === ".") {
        const long = byName(p, `./${LONG_FILE}`);
        assert.equal(dec.decode(long.body), "deep\n");
        assert.ok(long.header.name.length > 255);
        assert.equal(byName(p, "./longlink").header.linkname, LONG_TARGET);
        if (format === "posix") {
          assert.equal(long.header.pax.path, `./${LONG_FILE}`);
          assert.equal(typeof long.header.pax.mtime, "string"); // GNU tar posix stores atime etc.
        }
      }
    }
  });
});

Deno.test("tar reader: xattrs from GNU tar --xattrs and python pax_headers (SCHILY, LIBARCHIVE, global)", async () => {
  await withTemp(async (dir) => {
    await Deno.mkdir(`${dir}/src`);
    await Deno.writeFile(`${dir}/src/f`, enc.encode("x"));
    await run(PY, [
      "-c",
      `import os; os.setxattr("${dir}/src/f", "user.bin", bytes([0, 255, 10, 61])); ` +
      `os.setxattr("${dir}/src/f", "user.text", b"hello")`,
    ]);
    await run("tar", [
      "--format=posix",
      "--xattrs",
      "--xattrs-include=user.*",
      "-cf",
      `${dir}/x.tar`,
      "-C",
      `${dir}/src`,
      "f",
    ]);
    const p = parse(await Deno.readFile(`${dir}/x.tar`));
    const f = byName(p, "f").header;
    assert.deepEqual(f.xattrs["user.bin"], new Uint8Array([0, 255, 10, 61]));
    assert.deepEqual(f.xattrs["user.text"], enc.encode("hello"));

    // python: a global header, raw (hdrcharset=BINARY) values, libarchive-style xattrs,
    // a local record overriding a global one.
    const py = `
import tarfile, io, base64
t = tarfile.open("${dir}/py.tar", "w", format=tarfile.PAX_FORMAT,
                 pax_headers={"comment": "global one", "uname": "globaluser"})
def add(name, data, pax):
    ti = tarfile.TarInfo(name); ti.size = len(data); ti.mtime = 1700000000.25; ti.pax_headers = pax
    t.addfile(ti, io.BytesIO(data))
add("a", b"aa", {"SCHILY.xattr.user.raw": "\\udcff\\udcfe=x", "SCHILY.xattr.security.capability": "cap"})
add("b", b"bbb", {"LIBARCHIVE.xattr.user.lib%3Dname": base64.b64encode(b"\\x00\\x01lib").decode().rstrip("="),
                  "uname": "localuser"})
t.close()
`;
    await run(PY, ["-c", py]);
    const q = parse(await Deno.readFile(`${dir}/py.tar`));
    assert.deepEqual(q.entries.map((e) => e.header.name), ["a", "b"]);
    const a = q.entries[0].header;
    assert.deepEqual(a.xattrs["user.raw"], new Uint8Array([0xff, 0xfe, 0x3d, 0x78]));
    assert.deepEqual(a.xattrs["security.capability"], enc.encode("cap"));
    assert.equal(a.pax.comment, "global one");
    assert.equal(a.uname, "globaluser");
    assert.equal(a.mtime, 1700000000.25);
    assert.equal(dec.decode(q.entries[0].body), "aa");
    const b = q.entries[1].header;
    assert.deepEqual(b.xattrs["user.lib=name"], new Uint8Array([0, 1, 0x6c, 0x69, 0x62]));
    assert.equal(b.uname, "localuser");
    assert.equal(b.pax.comment, "global one");
  });
});

Deno.test("tar reader: base-256 numbers from GNU tar (uid, gid, negative mtime) and crafted sizes", async () => {
  await withTemp(async (dir) => {
    await Deno.writeFile(`${dir}/f`, pattern(1000, 9));
    await run("tar", [
      "--format=gnu",
      "--owner=big:3000000",
      "--group=bigger:4000000000",
      "--mtime=@-1000",
      "-cf",
      `${dir}/b.tar`,
      "-C",
      dir,
      "f",
    ]);
    const p = await compareWithReferences(`${dir}/b.tar`);
    const h = p.entries[0].header;
    assert.deepEqual([h.uid, h.gid, h.mtime, h.uname], [3000000, 4000000000, -1000, "big"]);

    // python tarfile, GNU format, uid beyond octal
    await run(PY, [
      "-c",
      `import tarfile, io
t = tarfile.open("${dir}/py.tar", "w", format=tarfile.GNU_FORMAT)
ti = tarfile.TarInfo("g"); ti.uid = 2097152; ti.gid = 99999999; ti.size = 3
t.addfile(ti, io.BytesIO(b"abc")); t.close()`,
    ]);
    const q = await compareWithReferences(`${dir}/py.tar`);
    assert.deepEqual([q.entries[0].header.uid, q.entries[0].header.gid], [2097152, 99999999]);
  });

  // A crafted base-256 size field with a real body.
  const body = pattern(1000, 5);
  const arch = concat([
    rawHeader({ name: "b256", size: base256(1000, 12) }),
    body,
    new Uint8Array(24),
    new Uint8Array(1024),
  ]);
  const r = parse(arch);
  assert.equal(r.entries[0].header.size, 1000);
  assert.deepEqual(r.entries[0].body, body);

  // > 8 GiB: base-256 and PAX sizes; only the header is written.
  const big = 10 * 2 ** 30 + 7;
  for (
    const head of [
      rawHeader({ name: "huge", size: base256(big, 12) }),
      concat([pax({ size: String(big) }), rawHeader({ name: "huge" })]),
    ]
  ) {
    const seen: TarHeader[] = [];
    let bytes = 0;
    const parser = new TarParser({ entry: (h) => seen.push(h), data: (c) => (bytes += c.length) });
    parser.push(concat([head, new Uint8Array(4096)]));
    assert.equal(seen[0].size, big);
    assert.equal(bytes, 4096);
    assert.throws(
      () => parser.end(),
      (e) =>
        e instanceof InvalidInputError &&
        /entry "huge" ends after 4096 of 10737418247 bytes/.test(e.message),
    );
  }
});

// ---------------------------------------------------------------------------------------------
// crafted headers

interface Raw {
  name: string;
  flag?: string;
  size?: number | Uint8Array;
  mode?: number;
  uid?: number;
  mtime?: number;
  linkname?: string;
  magic?: "ustar" | "gnu" | "v7";
  nameBytes?: Uint8Array;
  signed?: boolean;
}

function base256(n: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  let v = n;
  for (let i = len - 1; i > 0; i--) {
    b[i] = v % 256;
    v = Math.floor(v / 256);
  }
  b[0] = 0x80;
  return b;
}

function octal(b: Uint8Array, off: number, len: number, v: number) {
  b.set(enc.encode(v.toString(8).padStart(len - 1, "0")), off);
}

/** A header block built by hand (independent of the writer). */
function rawHeader(r: Raw): Uint8Array {
  const b = new Uint8Array(512);
  b.set(r.nameBytes ?? enc.encode(r.name), 0);
  octal(b, 100, 8, r.mode ?? 0o644);
  octal(b, 108, 8, r.uid ?? 0);
  octal(b, 116, 8, 0);
  if (r.size instanceof Uint8Array) b.set(r.size, 124);
  else octal(b, 124, 12, r.size ?? 0);
  octal(b, 136, 12, r.mtime ?? 0);
  b[156] = (r.flag ?? "0").charCodeAt(0);
  b.set(enc.encode(r.linkname ?? ""), 157);
  const magic = r.magic ?? "ustar";
  if (magic === "ustar") b.set(enc.encode("ustar\x0000"), 257);
  if (magic === "gnu") b.set(enc.encode("ustar  \x00"), 257);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of b) sum += r.signed && c > 127 ? c - 256 : c;
  b.set(enc.encode(sum.toString(8).padStart(6, "0") + "\x00 "), 148);
  return b;
}

function padTo512(b: Uint8Array): Uint8Array {
  return concat([b, new Uint8Array((512 - (b.length % 512)) % 512)]);
}

/** A PAX 'x' (or 'g') header with its records, formatted by hand. */
function pax(records: Record<string, string>, flag = "x"): Uint8Array {
  let text = "";
  for (const [k, v] of Object.entries(records)) {
    const rest = ` ${k}=${v}\n`;
    let len = enc.encode(rest).length + 1;
    while (String(len).length + enc.encode(rest).length !== len) len++;
    text += len + rest;
  }
  const data = enc.encode(text);
  return concat([rawHeader({ name: "PaxHeader", flag, size: data.length }), padTo512(data)]);
}

const END = new Uint8Array(1024);

Deno.test("tar reader: checksums, v7 dirs, link types, global/local PAX precedence", () => {
  // signed checksum (old tars) accepted; latin1 fallback for non-UTF-8 names
  const latin = rawHeader({
    name: "",
    nameBytes: new Uint8Array([0x63, 0x61, 0x66, 0xe9]),
    signed: true,
  });
  const r = parse(concat([latin, END]));
  assert.equal(r.entries[0].header.name, "caf\u00e9");

  // v7: '\0' and '0' with a trailing slash are dirs; ustar '0' with a slash stays a file
  const v7 = parse(concat([
    rawHeader({ name: "olddir/", flag: "\0", magic: "v7" }),
    rawHeader({ name: "v7dir/", flag: "0", magic: "v7" }),
    rawHeader({ name: "ustardir/", flag: "\0" }),
    rawHeader({ name: "weird/", flag: "0" }),
    rawHeader({ name: "c", flag: "7", size: 1 }),
    padTo512(enc.encode("c")),
    rawHeader({ name: "o", flag: "Z", size: 2 }),
    padTo512(enc.encode("oo")),
    END,
  ]));
  assert.deepEqual(
    v7.entries.map((e) => [e.header.name, e.header.type, e.header.typeflag]),
    [
      ["olddir/", "dir", "\0"],
      ["v7dir/", "dir", "0"],
      ["ustardir/", "dir", "\0"],
      ["weird/", "file", "0"],
      ["c", "file", "7"],
      ["o", "other", "Z"],
    ],
  );
  assert.equal(dec.decode(v7.entries[5].body), "oo");

  // star: ustar magic, "tar\0" at 508, a 131-byte prefix
  const star = rawHeader({ name: "base" });
  star.set(enc.encode("star/prefix"), 345);
  star.set(enc.encode("tar\0"), 508);
  star.fill(0x20, 148, 156);
  star.set(enc.encode(star.reduce((a, c) => a + c, 0).toString(8).padStart(6, "0") + "\0 "), 148);
  assert.equal(parse(concat([star, END])).entries[0].header.name, "star/prefix/base");

  // header-only types ignore a non-zero size field (as Go's archive/tar and python do)
  const sym = parse(concat([
    rawHeader({ name: "s", flag: "2", size: 700, linkname: "t" }),
    rawHeader({ name: "after", size: 0 }),
    END,
  ]));
  assert.deepEqual(sym.entries.map((e) => [e.header.name, e.header.size]), [["s", 0], [
    "after",
    0,
  ]]);

  // global under local; an empty local value unsets a global one; GNU 'L'/'K' long names
  const g = parse(concat([
    pax({ uname: "gu", gname: "gg", comment: "c" }, "g"),
    pax({ uname: "lu", gname: "", path: "from-pax", linkpath: "lp" }),
    rawHeader({ name: "short", flag: "2" }),
    rawHeader({ name: "plain" }),
    pax({ comment: "" }, "g"),
    rawHeader({ name: "ln", flag: "L", size: 9, magic: "gnu" }),
    padTo512(enc.encode("longname\0")),
    rawHeader({ name: "lk", flag: "K", size: 8, magic: "gnu" }),
    padTo512(enc.encode("longlink")),
    rawHeader({ name: "x", flag: "1", magic: "gnu" }),
    END,
  ]));
  const [e1, e2, e3] = g.entries.map((e) => e.header);
  assert.deepEqual([e1.name, e1.linkname, e1.uname, e1.gname], ["from-pax", "lp", "lu", ""]);
  assert.deepEqual(e1.pax, { uname: "lu", path: "from-pax", linkpath: "lp", comment: "c" });
  assert.deepEqual([e2.name, e2.uname, e2.gname, e2.pax.comment], ["plain", "gu", "gg", "c"]);
  assert.deepEqual([e3.name, e3.linkname, e3.type, e3.pax], [
    "longname",
    "longlink",
    "hardlink",
    { uname: "gu", gname: "gg" },
  ]);

  // bad PAX values and records
  assert.throws(
    () => parse(concat([pax({ size: "12x" }), rawHeader({ name: "f" }), END])),
    /Invalid tar header at offset 1024: bad PAX size value "12x"/,
  );
  assert.throws(
    () =>
      parse(
        concat([
          rawHeader({ name: "p", flag: "x", size: 8 }),
          padTo512(enc.encode("9 a=b\n\n\n")),
          END,
        ]),
      ),
    (e) => e instanceof InvalidInputError && /PAX header at offset 0: malformed/.test(e.message),
  );
  assert.throws(
    () =>
      parse(concat([rawHeader({ name: "f", mode: 0, size: enc.encode("12x45678901\0") }), END])),
    /Invalid tar header at offset 0: bad size field/,
  );
});

Deno.test("tar reader: end of archive, truncation, bad checksum, trailing data", async () => {
  await withTemp(async (dir) => {
    await Deno.writeFile(`${dir}/a`, pattern(1200, 1));
    await Deno.writeFile(`${dir}/b`, pattern(100, 2));
    // -b1: no padding to a 10 KiB record: a(0..512) body(512..1712) pad(..2048) b(2048..2560)
    // body(..2660) pad(..3072) zero blocks (..4096)
    await run("tar", ["--format=gnu", "-b1", "-cf", `${dir}/t.tar`, "-C", dir, "a", "b"]);
    const full = await Deno.readFile(`${dir}/t.tar`);
    assert.equal(full.length, 4096);
    const ref = parse(full);
    assert.equal(ref.done, true);

    // missing end blocks (both, or one) are accepted
    const noEnd = parse(full.subarray(0, 3072));
    assert.deepEqual(noEnd, { ...ref, done: false });
    assert.deepEqual(parse(full.subarray(0, 3584)), ref);
    // and GNU tar agrees that the cut archive is fine
    await Deno.writeFile(`${dir}/cut.tar`, full.subarray(0, 3072));
    await run("tar", ["-tf", `${dir}/cut.tar`]);

    // trailing garbage after the end marker is ignored
    const garbage = concat([full, pattern(5000, 7)]);
    for (const size of [1, 1000, 1 << 20]) assert.deepEqual(parse(garbage, size), ref);

    const err = (cut: Uint8Array, re: RegExp) =>
      assert.throws(() => parse(cut), (e) => e instanceof InvalidInputError && re.test(e.message));
    err(
      full.subarray(0, 300),
      /^Truncated tar: input ends inside the header at offset 0 \(300 of 512/,
    );
    err(full.subarray(0, 1024), /^Truncated tar: entry "a" ends after 512 of 1200 bytes$/);
    err(full.subarray(0, 1800), /^Truncated tar: entry "a" ends inside its padding$/);
    err(full.subarray(0, 2100), /^Truncated tar: input ends inside the header at offset 2048/);
    err(full.subarray(0, 2600), /^Truncated tar: entry "b" ends after 40 of 100 bytes$/);

    // bad checksum names the offset
    const bad = full.slice();
    bad[2048] ^= 1;
    err(bad, /^Invalid tar header at offset 2048: checksum mismatch$/);
    // a lone zero block followed by a header is rejected, not skipped
    err(
      concat([full.subarray(0, 2048), new Uint8Array(512), full.subarray(2048)]),
      /^Invalid tar header at offset 2560: data after a lone end-of-archive zero block$/,
    );
    // an extended header with no entry after it
    err(
      concat([full.subarray(0, 2048), pax({ path: "x" })]),
      /^Truncated tar: extended header at offset 2048 is not followed by an entry$/,
    );
    err(
      concat([full.subarray(0, 2048), pax({ path: "x" }), END]),
      /extended header at offset 2048 is not followed by an entry$/,
    );
  });

  // empty input is an empty archive
  assert.deepEqual(parse(new Uint8Array(0)), { entries: [], done: false });
  assert.deepEqual(parse(END), { entries: [], done: true });
});

Deno.test("tar reader: unsupported sparse and multi-volume entries, meta size limit", async () => {
  await withTemp(async (dir) => {
    const f = await Deno.open(`${dir}/sparse`, { write: true, create: true });
    await f.truncate(1 << 20);
    await f.seek(500_000, Deno.SeekMode.Start);
    await f.write(enc.encode("data"));
    f.close();
    for (const format of ["gnu", "posix"]) {
      await run("tar", [
        `--format=${format}`,
        "--sparse",
        "-cf",
        `${dir}/s.tar`,
        "-C",
        dir,
        "sparse",
      ]);
      assert.throws(
        () => parse(Deno.readFileSync(`${dir}/s.tar`)),
        (e) =>
          e instanceof InvalidInputError &&
          /^Unsupported tar entry ".*sparse" at offset \d+: GNU sparse file/.test(e.message),
      );
    }
    assert.throws(
      () => parse(concat([rawHeader({ name: "mv", flag: "M", magic: "gnu" }), END])),
      /Unsupported tar entry "mv" at offset 0: GNU multi-volume/,
    );

    // PAX records and GNU long names are bounded
    await run(PY, [
      "-c",
      `import tarfile, io
t = tarfile.open("${dir}/big.tar", "w", format=tarfile.PAX_FORMAT)
ti = tarfile.TarInfo("f"); ti.pax_headers = {"comment": "x" * (1 << 20)}
t.addfile(ti); t.close()`,
    ]);
    const big = await Deno.readFile(`${dir}/big.tar`);
    assert.throws(
      () => parse(big),
      (e) =>
        e instanceof LimitError &&
        /^Tar extended header at offset 0 is too large: \d+ bytes \(limit 1048576\)$/.test(
          e.message,
        ),
    );
    assert.equal(
      parse(big, 1 << 20, { maxMetaSize: 2 << 20 }).entries[0].header.pax.comment.length,
      1 << 20,
    );
    await Deno.mkdir(`${dir}/${"n".repeat(150)}`);
    await run("tar", ["--format=gnu", "-cf", `${dir}/l.tar`, "-C", dir, "n".repeat(150)]);
    assert.throws(
      () => parse(Deno.readFileSync(`${dir}/l.tar`), 512, { maxMetaSize: 100 }),
      LimitError,
    );
    assert.throws(() => new TarParser({ entry() {}, data() {} }, { maxMetaSize: -1 }), RangeError);
  });
});

Deno.test("tar reader: identical results for 1, 7, 511, 512, 513 and 1 MiB chunks", async () => {
  await withTemp(async (dir) => {
    await Deno.mkdir(`${dir}/src`);
    await makeTree(`${dir}/src`);
    for (const format of ["posix", "gnu"]) {
      await run("tar", [`--format=${format}`, "-cf", `${dir}/t.tar`, "-C", `${dir}/src`, "."]);
      const bytes = await Deno.readFile(`${dir}/t.tar`);
      const ref = parse(bytes, 1 << 20);
      assert.ok(ref.entries.length >= 20);
      for (const size of [1, 7, 511, 512, 513]) {
        assert.deepEqual(parse(bytes, size), ref, `${size}`);
      }
      // a truncated archive fails the same way at any chunk size
      const cut = bytes.subarray(0, 3000);
      let msg = "";
      try {
        parse(cut, 1 << 20);
      } catch (e) {
        msg = (e as Error).message;
      }
      assert.match(msg, /^Truncated tar/);
      for (const size of [1, 7, 513]) assert.throws(() => parse(cut, size), { message: msg });
    }
  });
});

Deno.test("tar reader: readTar over a file stream and an async iterable", async () => {
  await withTemp(async (dir) => {
    await Deno.mkdir(`${dir}/src`);
    await makeTree(`${dir}/src`);
    await run("tar", ["--format=posix", "-cf", `${dir}/t.tar`, "-C", `${dir}/src`, "."]);
    const bytes = await Deno.readFile(`${dir}/t.tar`);
    const ref = parse(bytes);

    // consume every other body; the rest are skipped
    using file = await Deno.open(`${dir}/t.tar`);
    let i = 0;
    for await (const entry of readTar(file.readable)) {
      const r = ref.entries[i];
      assert.deepEqual(entry.header, r.header);
      if (i % 2 === 0) {
        const parts: Uint8Array[] = [];
        for await (const c of entry.body) parts.push(c);
        assert.deepEqual(concat(parts), r.body);
      }
      i++;
    }
    assert.equal(i, ref.entries.length);

    // async iterable source in odd chunks; early exit returns the source; stale bodies throw
    let returned = false;
    let pulled = 0;
    async function* source() {
      try {
        for (let o = 0; o < bytes.length; o += 777) {
          pulled += 777;
          yield bytes.subarray(o, o + 777);
        }
      } finally {
        returned = true;
      }
    }
    let stale: AsyncIterable<Uint8Array> | undefined;
    let n = 0;
    for await (const entry of readTar(source())) {
      if (entry.header.name === "./d/big") {
        stale = entry.body;
        continue;
      }
      if (stale) break;
      n++;
    }
    assert.ok(n > 0);
    assert.equal(returned, true);
    assert.ok(pulled < bytes.length);
    await assert.rejects(async () => {
      for await (const _ of stale!) { /* nothing */ }
    }, TypeError);

    // data after the end-of-archive marker is read (and ignored) to the end of the source
    let drained = false;
    async function* withTrailer() {
      yield* chunked(concat([bytes, pattern(30_000, 1)]), 4096);
      drained = true;
    }
    let count = 0;
    for await (const _ of readTar(withTrailer())) count++;
    assert.equal(count, ref.entries.length);
    assert.equal(drained, true);

    // errors surface from the generator
    await assert.rejects(async () => {
      for await (const _ of readTar(chunked(bytes.subarray(0, 2000), 100))) { /* nothing */ }
    }, InvalidInputError);
  });
});

// ---------------------------------------------------------------------------------------------
// writer

async function writeAll(
  entries: [TarWriteHeader, (Uint8Array | (() => AsyncIterable<Uint8Array>))?][],
): Promise<Uint8Array> {
  const w = new TarWriter();
  const out = new Response(w.readable).arrayBuffer();
  for (const [h, body] of entries) await w.add(h, typeof body === "function" ? body() : body);
  await w.close();
  return new Uint8Array(await out);
}

async function* chunked(b: Uint8Array, size: number) {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

const BIG = pattern(300_000, 11);
const WRITE_SET: [TarWriteHeader, (Uint8Array | (() => AsyncIterable<Uint8Array>))?][] = [
  [{ name: "d/", type: "dir", mode: 0o1777, mtime: 1700000000 }],
  [{ name: "d/empty", type: "file", mtime: 1700000000 }],
  [{
    name: "d/small",
    type: "file",
    mode: 0o600,
    uid: 1000,
    gid: 1001,
    uname: "u",
    gname: "g",
    mtime: 1700000000.5,
  }, enc.encode("hello\n")],
  [
    { name: "d/big", type: "file", size: BIG.length, mode: 0o4755, mtime: 1 },
    () => chunked(BIG, 40_000),
  ],
  [{ name: "d/tiny-chunks", type: "file", size: 1000 }, () => chunked(pattern(1000, 3), 7)],
  [{ name: `d/${UNICODE}`, type: "file" }, enc.encode("ü\n")],
  [{ name: MID_FILE, type: "file" }, enc.encode("mid\n")],
  [{ name: LONG_FILE, type: "file" }, enc.encode("deep\n")],
  [{ name: "d/link", type: "symlink", linkname: "small" }],
  [{ name: "d/longlink", type: "symlink", linkname: LONG_TARGET }],
  [{ name: "d/hard", type: "hardlink", linkname: "d/small" }],
  [{ name: "d/chr", type: "char", devmajor: 1, devminor: 3, mode: 0o666 }],
  [{ name: "d/blk", type: "block", devmajor: 7, devminor: 130, mode: 0o660 }],
  [{ name: "d/fifo", type: "fifo" }],
  [{ name: "d/old", type: "file", mtime: -86400.25 }, enc.encode("old")],
  [{ name: "z".repeat(101), type: "file", mtime: 1e9 }, enc.encode("z")],
  [{
    name: "d/xattr",
    type: "file",
    xattrs: { "user.b": new Uint8Array([0, 255, 61, 10]), "user.a": enc.encode("ä") },
  }, enc.encode("x")],
  [{
    name: "d/owner",
    type: "file",
    uid: 3_000_000,
    gid: 70_000_000,
    uname: "a-very-long-user-name-over-32-bytes",
    gname: "grüppe",
  }, new Uint8Array(0)],
];

Deno.test("tar writer: round trip through GNU tar (list, extract, cmp), python tarfile and our reader", async () => {
  const bytes = await writeAll(WRITE_SET);
  await withTemp(async (dir) => {
    await Deno.writeFile(`${dir}/w.tar`, bytes);
    const listing = dec.decode(
      (await run("tar", ["--quoting-style=literal", "-tvf", `${dir}/w.tar`])).stdout,
    );
    assert.match(listing, /^drwxrwxrwt 0\/0 +0 2023-11-14 \d\d:\d\d d\/$/m);
    assert.match(listing, new RegExp(`^-rw-r--r-- .* ${LONG_FILE}$`, "m"));
    assert.match(listing, new RegExp(`d/longlink -> ${LONG_TARGET}$`, "m"));
    assert.match(listing, /d\/hard link to d\/small$/m);
    assert.match(listing, /^crw-rw-rw- .* 1,3 .* d\/chr$/m);
    assert.match(listing, /^prw-r--r-- .* d\/fifo$/m);
    assert.match(listing, / a-very-long-user-name-over-32-bytes\/grüppe /);
    await compareWithReferences(`${dir}/w.tar`);

    await Deno.mkdir(`${dir}/x`);
    await run("tar", ["--xattrs", "--xattrs-include=*", "-xpf", `${dir}/w.tar`, "-C", `${dir}/x`]);
    await Deno.mkdir(`${dir}/ref`);
    for (const [i, [h, body]] of WRITE_SET.entries()) {
      if (h.type !== "file") continue;
      const data = body === undefined
        ? new Uint8Array(0)
        : body instanceof Uint8Array
        ? body
        : concat(await Array.fromAsync(body()));
      const ref = `${dir}/ref/${i}`;
      await Deno.writeFile(ref, data);
      await run("cmp", [ref, `${dir}/x/${h.name}`]);
    }
    assert.equal(await Deno.readLink(`${dir}/x/d/longlink`), LONG_TARGET);
    assert.equal(await Deno.readLink(`${dir}/x/d/link`), "small");
    const small = await Deno.lstat(`${dir}/x/d/small`);
    assert.equal((await Deno.lstat(`${dir}/x/d/hard`)).ino, small.ino);
    assert.deepEqual([small.mode! & 0o7777, small.uid, small.gid], [0o600, 1000, 1001]);
    assert.equal(small.mtime!.getTime(), 1700000000500);
    const big = await Deno.lstat(`${dir}/x/d/big`);
    assert.equal(big.mode! & 0o7777, 0o4755);
    const chr = await Deno.lstat(`${dir}/x/d/chr`);
    assert.equal(chr.isCharDevice, true);
    assert.equal(chr.rdev, (1 << 8) | 3);
    const blk = await Deno.lstat(`${dir}/x/d/blk`);
    assert.equal(blk.isBlockDevice, true);
    assert.equal(blk.rdev, (7 << 8) | 130);
    assert.equal((await Deno.lstat(`${dir}/x/d/fifo`)).isFifo, true);
    assert.equal((await Deno.lstat(`${dir}/x/d`)).mode! & 0o7777, 0o1777);
    const owner = await Deno.lstat(`${dir}/x/d/owner`);
    assert.deepEqual([owner.uid, owner.gid], [3_000_000, 70_000_000]);
    const xattrs = dec.decode(
      (await run(PY, [
        "-c",
        `import os, json; p = "${dir}/x/d/xattr"; print(json.dumps({k: list(os.getxattr(p, k)) for k in os.listxattr(p)}))`,
      ])).stdout,
    );
    assert.deepEqual(JSON.parse(xattrs), { "user.a": [0xc3, 0xa4], "user.b": [0, 255, 61, 10] });
  });

  // our reader gets back what was written
  const p = parse(bytes, 4096);
  assert.equal(p.done, true);
  assert.equal(p.entries.length, WRITE_SET.length);
  for (let i = 0; i < WRITE_SET.length; i++) {
    const [w, body] = WRITE_SET[i];
    const { header: h, body: got } = p.entries[i];
    assert.equal(h.name, w.name);
    assert.equal(h.type, w.type);
    assert.equal(h.mtime, w.mtime ?? 0);
    assert.equal(h.uid, w.uid ?? 0);
    assert.equal(h.gname, w.gname ?? "");
    assert.equal(h.uname, w.uname ?? "");
    assert.equal(h.linkname, w.linkname ?? "");
    assert.deepEqual([h.devmajor, h.devminor], [w.devmajor ?? 0, w.devminor ?? 0]);
    assert.deepEqual(h.xattrs, w.xattrs ?? {});
    if (body instanceof Uint8Array) assert.deepEqual(got, body);
  }
  assert.deepEqual(p.entries[3].body, BIG);
  // headers from the reader can be written back: same bytes
  const again = await writeAll(p.entries.map((e) => [e.header, e.body]));
  assert.deepEqual(again, bytes);
  assert.equal(p.entries[0].header.mode, 0o1777);
  assert.equal(p.entries[8].header.mode, 0o777);
  assert.equal(p.entries[1].header.mode, 0o644);
});

Deno.test("tar writer: deterministic output, ustar when possible", async () => {
  const a = await writeAll(WRITE_SET);
  const b = await writeAll(WRITE_SET);
  assert.deepEqual(a, b);
  assert.equal(sha256(a), sha256(b));
  // a plain entry is a single ustar header: no PAX
  const plain = await writeAll([[{ name: "f", type: "file", mtime: 5 }, enc.encode("abc")]]);
  assert.equal(plain.length, 512 + 512 + 1024);
  assert.equal(dec.decode(plain.subarray(257, 265)), "ustar\x0000");
  // ustar prefix split, no PAX, for a 145-byte name
  const mid = await writeAll([[{ name: MID_FILE, type: "file" }]]);
  assert.equal(mid.length, 512 + 1024);
});

Deno.test("tar writer: size mismatches and bad headers", async () => {
  // Uint8Array body of the wrong size: rejected up front, the writer stays usable
  const w = new TarWriter();
  const out = new Response(w.readable).arrayBuffer();
  await assert.rejects(
    w.add({ name: "f", type: "file", size: 4 }, enc.encode("abc")),
    (e) =>
      e instanceof InvalidInputError &&
      /^Tar entry "f": body has 3 bytes, size says 4$/.test(e.message),
  );
  const bad = (h: TarWriteHeader, cls: typeof TypeError, body?: Uint8Array) =>
    assert.rejects(w.add(h, body), cls);
  await bad({ name: "", type: "file" }, TypeError);
  await bad({ name: "a\0b", type: "file" }, TypeError);
  await bad({ name: "o", type: "other" }, TypeError);
  await bad({ name: "m", type: "file", mode: 0o10000 }, RangeError);
  await bad({ name: "u", type: "file", uid: -1 }, RangeError);
  await bad({ name: "t", type: "file", mtime: NaN }, RangeError);
  await bad({ name: "dev", type: "char", devmajor: 0o10000000 }, RangeError);
  await bad({ name: "s", type: "symlink" }, TypeError);
  await bad({ name: "d", type: "dir" }, TypeError, enc.encode("x"));
  await bad({ name: "x", type: "file", xattrs: { "a=b": new Uint8Array(1) } }, TypeError);
  await bad({ name: "f", type: "file", size: 3 }, TypeError);
  await assert.rejects(w.add({ name: "f", type: "file" }, chunked(enc.encode("x"), 1)), TypeError);
  await w.add({ name: "ok", type: "file" }, enc.encode("fine"));
  await w.close();
  await assert.rejects(w.add({ name: "late", type: "file" }), TypeError);
  const p = parse(new Uint8Array(await out));
  assert.deepEqual(p.entries.map((e) => e.header.name), ["ok"]);

  // streamed bodies that are too short or too long fail the writer and its output
  for (
    const [len, re] of [[5, /body has 5 bytes, size says 6$/], [
      7,
      /body is longer than its size 6$/,
    ]] as const
  ) {
    const w2 = new TarWriter();
    const out2 = new Response(w2.readable).arrayBuffer();
    await w2.add({ name: "first", type: "file" }, enc.encode("1"));
    await assert.rejects(
      w2.add({ name: "streamed", type: "file", size: 6 }, chunked(pattern(len, 1), 2)),
      (e) =>
        e instanceof InvalidInputError && e.message.startsWith('Tar entry "streamed"') &&
        re.test(e.message),
    );
    await assert.rejects(out2, InvalidInputError);
    await assert.rejects(w2.add({ name: "next", type: "file" }), InvalidInputError);
    await assert.rejects(w2.close(), InvalidInputError);
  }
});

Deno.test("tar writer: abort() fails the output and pending adds", async () => {
  const w = new TarWriter();
  await w.add({ name: "a", type: "file" }, enc.encode("a"));
  const pending = w.add(
    { name: "big", type: "file", size: 8 << 20 },
    chunked(new Uint8Array(8 << 20), 1 << 16),
  );
  const reason = new Error("producer failed");
  await new Promise((r) => setTimeout(r, 10));
  w.abort(reason);
  await assert.rejects(pending, { message: "producer failed" });
  await assert.rejects(w.close(), { message: "producer failed" });
  await assert.rejects(new Response(w.readable).arrayBuffer(), { message: "producer failed" });
});

Deno.test("tar writer: back-pressure, ReadableStream bodies, > 8 GiB sizes via PAX", async () => {
  // nothing reads: add() waits once about 1 MiB is queued instead of pulling the whole body
  const w = new TarWriter();
  let produced = 0;
  const total = 64 << 20;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (produced >= total) return c.close();
      produced += 1 << 16;
      c.enqueue(new Uint8Array(1 << 16));
    },
  }, { highWaterMark: 0 });
  let added = false;
  const adding = w.add({ name: "big", type: "file", size: total }, body).then(() => (added = true));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(added, false);
  assert.ok(produced <= 3 << 20, `produced ${produced}`);
  let read = 0;
  const reading = (async () => {
    for await (const c of w.readable) read += c.length;
  })();
  await adding;
  await w.close();
  await reading;
  assert.equal(read, 512 + total + 1024);

  // a 10 GiB entry: the header goes out with a PAX size; cancelling the output fails the add
  const huge = 10 * 2 ** 30 + 1;
  const w2 = new TarWriter();
  async function* zeros() {
    while (true) yield new Uint8Array(1 << 16);
  }
  const adding2 = w2.add({ name: "huge", type: "file", size: huge }, zeros());
  const reader = w2.readable.getReader();
  const first = await reader.read();
  const seen: TarHeader[] = [];
  new TarParser({ entry: (h) => seen.push(h), data() {} }).push(first.value!);
  assert.equal(seen[0].size, huge);
  assert.equal(seen[0].pax.size, String(huge));
  await reader.cancel();
  await assert.rejects(adding2, /cancelled/);
});
