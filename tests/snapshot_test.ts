/**
 * Snapshots and `berth unpack` on real images (tests/_fixtures.ts: umoci, skopeo, GNU tar) and on
 * layers python3's tarfile writes, compared with what the reference tools produce: GNU tar per layer
 * (plus the overlay whiteout conversion), `umoci unpack`, and the kernel's own overlay mount of the
 * snapshots. Needs root (owners, device nodes, trusted xattrs, mounts).
 */
import { sha256Hex } from "../core/snapshot/_sha256.ts";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { berth, sh, tempDir } from "./_berth.ts";
import { fixtures, IMAGE_FACTS } from "./_fixtures.ts";
import { Store } from "../core/store/store.ts";
import { type LayerSource, Snapshotter } from "../core/snapshot/snapshotter.ts";
import { createApplier } from "../core/snapshot/applier.ts";
import { TarParser } from "../core/tar/reader.ts";
import { readFileChunks } from "../core/content/read_file.ts";
import { command as unpackCommand } from "../core/cli/unpack.ts";
import type { CliContext } from "../core/cli/_command.ts";
import type { Image, Layer } from "../core/image/image.ts";
import type { Digest } from "../core/digest.ts";
import { DigestMismatchError, InvalidInputError } from "../core/errors.ts";
import { inheritParentAttrs } from "../core/snapshot/_parents.ts";
import { statx, type Timespec, utimensat } from "../ffi/fs.ts";
import * as sys from "../ffi/fs_native.ts";
import { SyscallError } from "../ffi/syscall_error.ts";
import { AT_FDCWD, AT_SYMLINK_NOFOLLOW, O_CLOEXEC, O_DIRECTORY, O_PATH } from "../ffi/constants.ts";

const isRoot = Deno.uid() === 0;
const fx = isRoot ? await fixtures() : undefined;

// -----------------------------------------------------------------------------------------------
// Describing a tree

interface DescribeOptions {
  /** Leave out the mtime of these paths (directories the reference tool creates "now"). */
  noMtime?: (path: string, isDir: boolean) => boolean;
  /** Leave out the link count of directories (overlayfs reports 1). */
  dirNlink?: boolean;
}

/** xattrs of every path under `root` by relative path, read by getfattr (attr package). */
async function xattrs(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const text = await new Deno.Command("getfattr", {
    args: ["-R", "-h", "-d", "-m", "-", "-e", "hex", "--absolute-names", root],
    stdout: "piped",
    stderr: "null",
  }).output();
  let current = "";
  for (const line of new TextDecoder().decode(text.stdout).split("\n")) {
    if (line.startsWith("# file: ")) {
      current = line.slice(8).slice(root.length + 1);
      out.set(current, "");
    } else if (line.includes("=")) out.set(current, `${out.get(current)}${line};`);
  }
  return out;
}

/**
 * One line per path under `root` (the root itself excluded): type, mode, owner, size and content
 * hash, symlink target, device numbers, mtime to the nanosecond, hardlink group, xattrs.
 */
async function describeTree(
  root: string,
  options: DescribeOptions = {},
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const inodes = new Map<bigint, string[]>();
  const info = new Map<string, { line: string; ino: bigint; nlink: number; dir: boolean }>();
  const walk = async (dir: string, rel: string) => {
    for await (const e of Deno.readDir(dir)) {
      const path = `${dir}/${e.name}`;
      const r = rel ? `${rel}/${e.name}` : e.name;
      const st = statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW);
      const fmt = st.mode & 0o170000;
      const isDir = fmt === 0o040000;
      let line = `${fmt.toString(8)} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      if (fmt === 0o100000) {
        const hash = createHash("sha256").update(await Deno.readFile(path)).digest("hex");
        line += ` size=${st.size} sha=${hash.slice(0, 16)}`;
      } else if (fmt === 0o120000) line += ` -> ${await Deno.readLink(path)}`;
      else if (fmt === 0o020000 || fmt === 0o060000) {
        line += ` dev=${st.rdev.major},${st.rdev.minor}`;
      }
      if (!options.noMtime?.(r, isDir)) line += ` mtime=${st.mtime.sec}.${st.mtime.nsec}`;
      if (isDir && options.dirNlink) line += ` nlink=${st.nlink}`;
      info.set(r, { line, ino: st.ino, nlink: st.nlink, dir: isDir });
      if (!isDir && st.nlink > 1) inodes.set(st.ino, [...(inodes.get(st.ino) ?? []), r]);
      if (isDir) await walk(path, r);
    }
  };
  await walk(root, "");
  const attrs = await xattrs(root);
  for (const [r, i] of info) {
    let line = i.line;
    if (!i.dir && i.nlink > 1) line += ` links=[${inodes.get(i.ino)!.sort().join(",")}]`;
    const x = attrs.get(r);
    if (x) line += ` xattrs=${x}`;
    out[r] = line;
  }
  return out;
}

/** Asserts two descriptions are equal, showing only the differing paths. */
function assertSameTree(
  actual: Record<string, string>,
  expected: Record<string, string>,
  label: string,
): void {
  const diffs: string[] = [];
  for (const k of new Set([...Object.keys(actual), ...Object.keys(expected)])) {
    if (actual[k] !== expected[k]) {
      diffs.push(
        `${k}\n    got:  ${actual[k] ?? "(absent)"}\n    want: ${expected[k] ?? "(absent)"}`,
      );
    }
  }
  assert.deepEqual(diffs.slice(0, 20), [], `${label}: ${diffs.length} paths differ`);
}

// -----------------------------------------------------------------------------------------------
// Stores and images

interface Loaded {
  root: string;
  store: Store;
  image: Image;
  sources: LayerSource[];
}

async function loadFixture(root: string, file: string): Promise<Loaded> {
  const r = await berth(root, ["load", "-q", "-i", file]);
  assert.equal(r.code, 0, r.stderr);
  const store = await Store.open({ root });
  const { images } = await store.images().then((images) => ({ images }));
  assert.equal(images.length, 1);
  const image = await store.image(await store.resolve(images[0].id));
  return { root, store, image, sources: sourcesOf(store, image) };
}

function sourcesOf(store: Store, image: Image): LayerSource[] {
  return image.layers.map((layer) => ({ layer, open: () => store.content.read(layer.digest) }));
}

/** Runs the `unpack` command module in-process, as main.ts would. */
async function unpackCli(root: string, args: string[]): Promise<{ code: number; error?: Error }> {
  const ctx: CliContext = {
    root,
    store: () => Store.open({ root }),
    out: () => {},
    err: () => {},
  };
  try {
    return { code: await unpackCommand.run({ flags: {}, args }, ctx) };
  } catch (e) {
    return { code: 125, error: e as Error };
  }
}

/** Mounts the snapshots of `image` read-only as an overlay at `target`; returns the unmounter. */
async function mountOverlay(
  snapshotter: Snapshotter,
  image: Image,
  target: string,
): Promise<() => Promise<void>> {
  const chain = Snapshotter.chainIDs(image.layers.map((l) => l.diffID));
  const lowers = chain.map((c) => snapshotter.path(c)).reverse().join(":");
  await sh("mount", ["-t", "overlay", "berth-test", "-o", `ro,lowerdir=${lowers}`, target]);
  return async () => {
    await sh("umount", [target]).catch(() => sh("umount", ["-l", target]));
  };
}

/** Extracts a layer blob with GNU tar as root (owners, modes, xattrs, times kept). */
async function gnuTarExtract(blob: string, dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await sh("tar", [
    "--xattrs",
    "--xattrs-include=*",
    "--same-owner",
    "--same-permissions",
    "--numeric-owner",
    "-xf",
    blob,
    "-C",
    dir,
  ]);
}

/**
 * Converts the OCI whiteouts of a GNU-tar-extracted layer into overlay whiteouts (the reference for
 * a snapshot): `.wh.NAME` → char device 0/0 NAME (mode 0, the .wh file's owner and times),
 * `.wh..wh..opq` →
 * `trusted.overlay.opaque=y` on its dir. Directory mtimes are kept.
 */
async function convertWhiteouts(root: string): Promise<void> {
  const found: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      if (e.name.startsWith(".wh.")) found.push(`${dir}/${e.name}`);
      else if (e.isDirectory) await walk(`${dir}/${e.name}`);
    }
  };
  await walk(root);
  for (const path of found) {
    const dir = path.slice(0, path.lastIndexOf("/"));
    const name = path.slice(dir.length + 1);
    const saved = statx(AT_FDCWD, dir, AT_SYMLINK_NOFOLLOW);
    const st = statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW);
    await Deno.remove(path);
    if (name === ".wh..wh..opq") {
      await sh("setfattr", ["-n", "trusted.overlay.opaque", "-v", "y", dir]);
    } else {
      const target = `${dir}/${name.slice(4)}`;
      await sh("mknod", ["-m", "000", target, "c", "0", "0"]);
      await Deno.chown(target, st.uid, st.gid);
      utimensat(AT_FDCWD, target, st.atime, st.mtime, AT_SYMLINK_NOFOLLOW);
    }
    utimensat(AT_FDCWD, dir, saved.atime, saved.mtime, AT_SYMLINK_NOFOLLOW);
  }
}

/** Names of the entries of a layer tar (normalised: no leading ./ or /, no trailing /). */
async function tarNames(blob: string): Promise<Set<string>> {
  const out = await sh("tar", ["-tf", blob]);
  return new Set(
    out.split("\n").filter(Boolean).map((n) => n.replace(/^(\.\/|\/)+/, "").replace(/\/$/, "")),
  );
}

// -----------------------------------------------------------------------------------------------
// Fixture images

for (const key of ["ociArchive", "whiteoutOciArchive"] as const) {
  Deno.test({
    name: `snapshots of ${key} equal GNU tar per layer, with overlay whiteouts`,
    ignore: !isRoot,
    async fn() {
      await using tmp = await tempDir();
      const { store, image, sources, root } = await loadFixture(`${tmp.path}/store`, fx![key]);
      const snapshotter = new Snapshotter(root);
      await snapshotter.init();
      const sizes = await snapshotter.unpack(sources, { what: "test" });
      const chain = Snapshotter.chainIDs(image.layers.map((l) => l.diffID));
      for (const [i, layer] of image.layers.entries()) {
        const blob = store.content.path(layer.digest);
        const size = Number((await sh("sh", ["-c", `gzip -dc '${blob}' | wc -c`])).trim());
        assert.equal(sizes.get(layer.digest), size, `uncompressed size of layer ${i}`);
        const info = await snapshotter.info(chain[i]);
        assert.equal(info?.size, size);
        assert.equal(info?.diffID, layer.diffID);
        const ref = `${tmp.path}/ref${i}`;
        await gnuTarExtract(blob, ref);
        await convertWhiteouts(ref);
        const names = await tarNames(blob);
        // Parents GNU tar had to create itself (no entry of their own) get "now" there; ours
        // inherit the lower layer's attributes (checked below), so they are left out here.
        const implicit = (p: string, isDir: boolean) => isDir && !names.has(p);
        const want = await describeTree(ref, { noMtime: implicit });
        const got = await describeTree(snapshotter.path(chain[i]), { noMtime: implicit });
        for (const p of Object.keys(want)) {
          if (implicit(p, want[p].startsWith("40000 "))) {
            delete want[p];
            delete got[p];
          }
        }
        assertSameTree(got, want, `layer ${i} (${layer.digest})`);
      }
      assert.deepEqual((await Array.fromAsync(snapshotter.list())).sort(), [...chain].sort());
      assert.deepEqual([...Deno.readDirSync(`${root}/snapshots/tmp`)], []);
    },
  });
}

Deno.test({
  name: "snapshots: a layer without its parent dirs inherits them from the layer below",
  ignore: !isRoot,
  async fn() {
    await using tmp = await tempDir();
    const { image, sources, root } = await loadFixture(`${tmp.path}/store`, fx!.ociArchive);
    const snapshotter = new Snapshotter(root);
    await snapshotter.init();
    await snapshotter.unpack(sources, { what: "test" });
    const chain = Snapshotter.chainIDs(image.layers.map((l) => l.diffID));
    // umoci's layer 2 has home/app/hello.txt but no home/app/ entry.
    const lower = statx(AT_FDCWD, `${snapshotter.path(chain[0])}/home/app`, AT_SYMLINK_NOFOLLOW);
    const upper = statx(AT_FDCWD, `${snapshotter.path(chain[1])}/home/app`, AT_SYMLINK_NOFOLLOW);
    assert.equal(upper.uid, IMAGE_FACTS.appFile.uid);
    assert.deepEqual(
      [upper.mode, upper.uid, upper.gid, upper.mtime],
      [lower.mode, lower.uid, lower.gid, lower.mtime],
    );
  },
});

for (const key of ["ociLayout", "whiteoutOciArchive"] as const) {
  Deno.test({
    name: `berth unpack of ${key} equals umoci unpack, and the overlay of its snapshots`,
    ignore: !isRoot,
    async fn() {
      await using tmp = await tempDir();
      let archive: string = fx![key];
      let layout: string;
      if (key === "ociLayout") {
        layout = `${tmp.path}/layout`;
        await sh("cp", ["-a", fx!.ociLayout, layout]);
        archive = `${tmp.path}/image.tar`;
        await sh("tar", ["-cf", archive, "-C", layout, "."]);
      } else {
        layout = `${tmp.path}/layout`;
        await Deno.mkdir(layout);
        await sh("tar", ["-xf", archive, "-C", layout]);
      }
      const { image, sources, root } = await loadFixture(`${tmp.path}/store`, archive);
      const out = `${tmp.path}/unpacked`;
      const r = await unpackCli(root, [image.configDigest, out]);
      assert.equal(r.code, 0, r.error?.stack);

      await sh("umoci", ["unpack", "--image", `${layout}:latest`, `${tmp.path}/bundle`]);
      const umoci = await describeTree(`${tmp.path}/bundle/rootfs`);
      const ours = await describeTree(out);
      assertSameTree(ours, umoci, "berth unpack vs umoci unpack");

      const snapshotter = new Snapshotter(root);
      await snapshotter.init();
      await snapshotter.unpack(sources, { what: "test" });
      const mnt = `${tmp.path}/merged`;
      await Deno.mkdir(mnt);
      const unmount = await mountOverlay(snapshotter, image, mnt);
      try {
        const merged = await describeTree(mnt);
        assertSameTree(merged, ours, "overlay of the snapshots vs berth unpack");
      } finally {
        await unmount();
      }
    },
  });
}

Deno.test({
  name: "berth unpack: image facts (whiteouts, hardlinks, long names, owners)",
  ignore: !isRoot,
  async fn() {
    await using tmp = await tempDir();
    const { image, root } = await loadFixture(`${tmp.path}/store`, fx!.ociArchive);
    const out = `${tmp.path}/out`;
    assert.equal((await unpackCli(root, [image.configDigest, out])).code, 0);
    assert.equal(await Deno.readTextFile(`${out}/etc/motd`), IMAGE_FACTS.motd);
    const app = await Deno.lstat(`${out}${IMAGE_FACTS.appFile.path}`);
    assert.equal(app.uid, IMAGE_FACTS.appFile.uid);
    assert.equal(app.gid, IMAGE_FACTS.appFile.gid);
    assert.equal(app.mode! & 0o7777, 0o640);
    const [a, b] = IMAGE_FACTS.hardlinks;
    assert.equal((await Deno.lstat(`${out}${a}`)).ino, (await Deno.lstat(`${out}${b}`)).ino);
    assert.ok((await Deno.lstat(`${out}${IMAGE_FACTS.longPath}`)).isFile);
    assert.equal(
      await Deno.readLink(`${out}${IMAGE_FACTS.longSymlink.path}`),
      IMAGE_FACTS.longSymlink.target,
    );

    await using tmp2 = await tempDir();
    const w = await loadFixture(`${tmp2.path}/store`, fx!.whiteoutOciArchive);
    const out2 = `${tmp2.path}/out`;
    await Deno.mkdir(out2); // an existing empty dir is fine too
    const cli = await berth(w.root, ["unpack", w.image.configDigest, out2]); // as a user runs it
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /^Unpacked sha256:/);
    for (const p of IMAGE_FACTS.whiteout.present) assert.ok(await exists(`${out2}${p}`), p);
    for (const p of IMAGE_FACTS.whiteout.absent) assert.ok(!(await exists(`${out2}${p}`)), p);
  },
});

function dirTimes(path: string): [Timespec, Timespec] {
  const st = statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW);
  return [st.atime, st.mtime];
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

Deno.test({
  name: "berth unpack: refuses a non-empty DIR, cleans up after an error",
  ignore: !isRoot,
  async fn() {
    await using tmp = await tempDir();
    const { store, image, root } = await loadFixture(`${tmp.path}/store`, fx!.whiteoutOciArchive);
    const full = `${tmp.path}/full`;
    await Deno.mkdir(full);
    await Deno.writeTextFile(`${full}/keep`, "x");
    const r = await unpackCli(root, [image.configDigest, full]);
    assert.match(r.error?.message ?? "", /is not empty/);
    assert.deepEqual([...Deno.readDirSync(full)].map((e) => e.name), ["keep"]);
    assert.match((await unpackCli(root, ["nosuchimage", `${tmp.path}/x`])).error!.message, /./);
    assert.ok(!(await exists(`${tmp.path}/x`)));

    // Corrupt the top layer in the store: its diffID no longer matches after it was applied.
    const top = image.layers[image.layers.length - 1];
    const blob = store.content.path(top.digest);
    const plain = await sh("sh", ["-c", `gzip -dc '${blob}' | base64 -w0`]);
    const bytes = Uint8Array.from(atob(plain), (c) => c.charCodeAt(0));
    bytes[bytes.length - 1] ^= 1; // inside the trailing zero blocks: the tar still parses
    await Deno.writeFile(blob, bytes);
    const created = `${tmp.path}/created`;
    const r2 = await unpackCli(root, [image.configDigest, created]);
    assert.ok(r2.error instanceof DigestMismatchError, String(r2.error));
    assert.ok(!(await exists(created)), "a DIR berth created is removed");
    const empty = `${tmp.path}/empty`;
    await Deno.mkdir(empty);
    const r3 = await unpackCli(root, [image.configDigest, empty]);
    assert.ok(r3.error instanceof DigestMismatchError);
    assert.deepEqual([...Deno.readDirSync(empty)], [], "an existing DIR is emptied");
  },
});

// -----------------------------------------------------------------------------------------------
// The snapshotter's own behaviour

Deno.test({
  name: "snapshotter: skip, sizes from metadata, remove, concurrent unpacks, failures",
  ignore: !isRoot,
  async fn() {
    await using tmp = await tempDir();
    const { image, sources, root } = await loadFixture(`${tmp.path}/store`, fx!.whiteoutOciArchive);
    const s1 = new Snapshotter(root);
    const s2 = new Snapshotter(root);
    await s1.init();
    // two unpacks of the same image at once (another process would look the same): both succeed
    const [a, b] = await Promise.all([
      s1.unpack(sources, { what: "a", concurrency: 3 }),
      s2.unpack(sources, { what: "b", concurrency: 1 }),
    ]);
    assert.deepEqual(a, b);
    const chain = Snapshotter.chainIDs(image.layers.map((l) => l.diffID));
    assert.deepEqual((await Array.fromAsync(s1.list())).sort(), [...chain].sort());
    assert.deepEqual([...Deno.readDirSync(`${root}/snapshots/tmp`)], []);

    // Everything present: nothing is opened, sizes come from meta.json.
    const unopened = sources.map((s) => ({
      layer: s.layer,
      open: (): AsyncIterable<Uint8Array> => {
        throw new Error("opened");
      },
    }));
    assert.deepEqual(await s1.unpack(unopened, { what: "c" }), a);

    // A removed top snapshot is unpacked again; the others are not.
    await s1.remove(chain[chain.length - 1]);
    assert.equal(await s1.has(chain[chain.length - 1]), false);
    const opened: string[] = [];
    const counting = sources.map((s) => ({
      layer: s.layer,
      open: () => {
        opened.push(s.layer.digest);
        return s.open();
      },
    }));
    await s1.unpack(counting, { what: "d" });
    assert.deepEqual(opened, [image.layers[image.layers.length - 1].digest]);

    // A wrong diffID on layer 2: all or nothing, no snapshot of the stack commits.
    await using tmp2 = await tempDir();
    const s3 = new Snapshotter(`${tmp2.path}`);
    await s3.init();
    const bad = sources.map((s, i) => ({
      layer: i === 2 ? { ...s.layer, diffID: chain[0] } as Layer : s.layer,
      open: s.open,
    }));
    await assert.rejects(() => s3.unpack(bad, { what: "e" }), DigestMismatchError);
    const badChain = Snapshotter.chainIDs(bad.map((s) => s.layer.diffID));
    assert.deepEqual(
      await Promise.all(badChain.map((c) => s3.has(c))),
      badChain.map(() => false),
    );
    assert.deepEqual([...Deno.readDirSync(`${tmp2.path}/snapshots/tmp`)], []);
  },
});

Deno.test({
  name: "snapshotter: init removes what crashed unpacks left, not live ones",
  ignore: !isRoot,
  async fn() {
    await using tmp = await tempDir();
    const s = new Snapshotter(tmp.path);
    await s.init();
    const t = `${tmp.path}/snapshots/tmp`;
    await Deno.mkdir(`${t}/crashed/fs/a`, { recursive: true }); // no lock file
    await Deno.mkdir(`${t}/unlocked/fs`, { recursive: true });
    await Deno.writeTextFile(`${t}/unlocked.lock`, "");
    await Deno.mkdir(`${t}/live/fs`, { recursive: true });
    using live = await Deno.open(`${t}/live.lock`, { write: true, create: true });
    await live.lock(true);
    await s.init();
    assert.deepEqual([...Deno.readDirSync(t)].map((e) => e.name).sort(), ["live", "live.lock"]);
  },
});

Deno.test("snapshotter: chain IDs follow the OCI image spec", () => {
  const d = (c: string) => `sha256:${c.repeat(64)}` as Digest;
  const sha = (s: string) => `sha256:${createHash("sha256").update(s).digest("hex")}`;
  const ids = Snapshotter.chainIDs([d("a"), d("b"), d("c")]);
  assert.equal(ids[0], d("a"));
  assert.equal(ids[1], sha(`${d("a")} ${d("b")}`));
  assert.equal(ids[2], sha(`${ids[1]} ${d("c")}`));
  assert.deepEqual(Snapshotter.chainIDs([]), []);
  assert.throws(() => Snapshotter.chainIDs(["md5:x" as Digest]), TypeError);
  // the synchronous SHA-256 behind them, at every padding boundary and over several blocks
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 141, 1000, 70_000]) {
    const data = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff);
    assert.equal(sha256Hex(data), createHash("sha256").update(data).digest("hex"), `${n} bytes`);
  }
});

// -----------------------------------------------------------------------------------------------
// Metadata and whiteout semantics on layers python3 writes

const PY_LAYERS = `
import io, json, sys, tarfile
def add(tf, name, kind="file", data=b"", mode=0o644, uid=0, gid=0, mtime=1704067200, link="",
        pax=None, major=0, minor=0):
    ti = tarfile.TarInfo(name)
    ti.mode, ti.uid, ti.gid, ti.mtime = mode, uid, gid, mtime
    if pax: ti.pax_headers = dict(pax)
    types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
             "hardlink": tarfile.LNKTYPE, "char": tarfile.CHRTYPE, "block": tarfile.BLKTYPE,
             "fifo": tarfile.FIFOTYPE}
    ti.type = types[kind]
    ti.linkname = link
    ti.devmajor, ti.devminor = major, minor
    if kind == "file":
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    else:
        tf.addfile(ti)
out = sys.argv[1]
X = {"SCHILY.xattr.user.berth": "on-file", "SCHILY.xattr.security.capability":
     "\\x01\\x00\\x00\\x02\\x00\\x04\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00"}
with tarfile.open(out + "/meta.tar", "w", format=tarfile.PAX_FORMAT) as tf:
    add(tf, "./", "dir", mode=0o755, mtime=1704067000)
    add(tf, "bin/", "dir", mode=0o755)
    add(tf, "bin/suid", data=b"#!/bin/sh\\n", mode=0o4755, uid=1234, gid=5678)
    add(tf, "bin/sgid", data=b"x", mode=0o2711, uid=0, gid=50)
    add(tf, "tmp/", "dir", mode=0o1777)
    add(tf, "shared/", "dir", mode=0o2775, uid=1000, gid=1000,
        pax={"SCHILY.xattr.user.dir": "on-dir"})
    add(tf, "shared/x", data=b"hello", pax=X)
    add(tf, "shared/hl", "hardlink", link="shared/x", pax=X)
    add(tf, "shared/ns", data=b"t", pax={"mtime": "1704067200.123456789"})
    add(tf, "shared/old", data=b"t", mtime=-86400)
    add(tf, "shared/link", "symlink", link="../bin/suid", uid=1000, gid=1000, mtime=1600000000)
    add(tf, "dev/", "dir")
    add(tf, "dev/null", "char", mode=0o666, major=1, minor=3)
    add(tf, "dev/sda", "block", mode=0o660, gid=6, major=8, minor=0)
    add(tf, "dev/pipe", "fifo", mode=0o600)
    add(tf, "deep/er/than/its/parents/f", data=b"implicit parents")
    add(tf, "u/" + "\\u00e9t\\u00e9/" + "n" * 200, data=b"long utf-8 name")
# whiteout semantics across layers
with tarfile.open(out + "/w1.tar", "w", format=tarfile.PAX_FORMAT) as tf:
    for d in ["a/", "a/sub/", "o/", "o/sub/", "r/"]:
        add(tf, d, "dir")
    for f in ["a/gone", "a/kept", "a/sub/f", "o/old", "o/sub/old", "r/x"]:
        add(tf, f, data=f.encode())
    add(tf, "s", "symlink", link="a")
with tarfile.open(out + "/w2.tar", "w", format=tarfile.PAX_FORMAT) as tf:
    add(tf, "a/", "dir", mtime=1704000000)
    add(tf, "a/.wh.gone")
    add(tf, "a/.wh.sub")
    add(tf, "o/", "dir", mtime=1704000000)
    add(tf, "o/new", data=b"new")             # before the opaque marker: stays
    add(tf, "o/.wh..wh..opq")
    add(tf, "o/sub/newer", data=b"newer")     # implicit o/sub of this layer: stays, old one goes
    add(tf, "o/.wh..wh.plnk")                 # AUFS metadata: skipped
    add(tf, "r", data=b"file over dir")       # replaces the dir r/ of layer 1
    add(tf, "self", data=b"mine")
    add(tf, ".wh.self")                       # same-layer whiteout: ignored (OCI)
    add(tf, "s/viaLink", data=b"through lower symlink")
with tarfile.open(out + "/w3.tar", "w", format=tarfile.PAX_FORMAT) as tf:
    add(tf, ".wh.s")                          # remove the symlink itself, not its target
    add(tf, "r/", "dir")                      # dir replaces the file again
    add(tf, "r/y", data=b"y")
`;

/** Applies the tar files with the applier directly (TarParser, no readLayer). */
async function applyTars(tars: string[], dir: string, mode: "overlay" | "flatten") {
  const apply = async (tar: string, target: string) => {
    const applier = createApplier(target, { mode, what: `layer ${tar}` });
    try {
      const parser = new TarParser(applier);
      for await (const chunk of readFileChunks(tar)) parser.push(chunk);
      parser.end();
      applier.finish();
      return applier.stats;
    } finally {
      applier.close();
    }
  };
  if (mode === "flatten") {
    await Deno.mkdir(dir, { recursive: true });
    for (const t of tars) await apply(t, dir);
    return [];
  }
  const dirs: string[] = [];
  for (const [i, t] of tars.entries()) {
    const d = `${dir}/${i}`;
    await Deno.mkdir(d, { recursive: true });
    await apply(t, d);
    dirs.push(d);
  }
  return dirs;
}

Deno.test({
  name: "applier: modes, owners, ns mtimes, xattrs, devices, hardlinks equal GNU tar",
  ignore: !isRoot,
  async fn() {
    await using tmp = await tempDir();
    await sh("python3", ["-c", PY_LAYERS, tmp.path]);
    const tar = `${tmp.path}/meta.tar`;
    const ref = `${tmp.path}/ref`;
    await gnuTarExtract(tar, ref);
    const names = await tarNames(tar);
    const implicit = (p: string, isDir: boolean) => isDir && !names.has(p);
    const want = await describeTree(ref, { noMtime: implicit });
    // the reference really holds what is compared
    assert.match(want["bin/suid"], /^100000 4755 1234:5678 /);
    assert.match(want["shared"], /^40000 2775 1000:1000 .*user\.dir=/);
    assert.match(
      want["shared/x"],
      /links=\[shared\/hl,shared\/x\].*security\.capability=.*user\.berth=/,
    );
    assert.match(want["tmp"], /^40000 1777 /);
    assert.match(want["dev/sda"], /^60000 660 0:6 dev=8,0 /);
    assert.match(
      want["shared/link"],
      /^120000 777 1000:1000 -> \.\.\/bin\/suid mtime=1600000000\.0/,
    );
    for (const mode of ["overlay", "flatten"] as const) {
      const out = `${tmp.path}/${mode}`;
      const stats = await (async () => {
        await Deno.mkdir(out);
        const applier = createApplier(out, { mode, what: "meta" });
        try {
          const parser = new TarParser(applier);
          for await (const chunk of readFileChunks(tar)) parser.push(chunk);
          parser.end();
          applier.finish();
          return applier.stats;
        } finally {
          applier.close();
        }
      })();
      assert.deepEqual(stats.skippedXattrs, []);
      assertSameTree(await describeTree(out, { noMtime: implicit }), want, mode);
      // the root entry "./" applies to the target dir itself
      const rootStat = statx(AT_FDCWD, out, 0);
      assert.equal(rootStat.mtime.sec, 1704067000);
      assert.equal(rootStat.mode & 0o7777, 0o755);
    }
    const ns = statx(AT_FDCWD, `${tmp.path}/flatten/shared/ns`, AT_SYMLINK_NOFOLLOW);
    assert.deepEqual(ns.mtime, { sec: 1704067200, nsec: 123456789 });
  },
});

Deno.test({
  name: "applier: whiteout semantics, flatten equals the overlay mount of the same layers",
  ignore: !isRoot,
  async fn() {
    await using tmp = await tempDir();
    await sh("python3", ["-c", PY_LAYERS, tmp.path]);
    const tars = ["w1", "w2", "w3"].map((n) => `${tmp.path}/${n}.tar`);
    const flat = `${tmp.path}/flat`;
    await applyTars(tars, flat, "flatten");
    const layers = await applyTars(tars, `${tmp.path}/layers`, "overlay");

    const exists = (p: string) => Deno.lstat(`${flat}/${p}`).then(() => true, () => false);
    for (const p of ["a/kept", "o/new", "o/sub/newer", "self", "a/viaLink", "r/y", "a"]) {
      assert.ok(await exists(p), `${p} present`);
    }
    for (const p of ["a/gone", "a/sub", "o/old", "o/sub/old", "s", "r/x", "o/.wh..wh.plnk"]) {
      assert.ok(!(await exists(p)), `${p} absent`);
    }
    assert.equal(await Deno.readTextFile(`${flat}/a/viaLink`), "through lower symlink");

    // overlay mode: whiteout devices and the opaque xattr in the layer dirs
    const w2 = statx(AT_FDCWD, `${layers[1]}/a/gone`, AT_SYMLINK_NOFOLLOW);
    assert.equal(w2.mode & 0o170000, 0o020000);
    assert.deepEqual(w2.rdev, { major: 0, minor: 0 });
    assert.equal(
      await sh("getfattr", ["--only-values", "-n", "trusted.overlay.opaque", `${layers[1]}/o`]),
      "y",
    );
    assert.ok(!(await Deno.lstat(`${layers[1]}/o/.wh..wh..opq`).catch(() => null)));

    // Layer 2's s/viaLink: flattened, it goes through layer 1's symlink s -> a (as containerd's
    // and docker's naive appliers do); in overlay mode each layer is unpacked alone (docker
    // overlay2), so layer 2 has a directory s/, which layer 3's .wh.s then hides.
    assert.ok((await Deno.lstat(`${layers[1]}/s`)).isDirectory);
    assert.ok((await Deno.lstat(`${layers[1]}/s/viaLink`)).isFile);
    await Deno.remove(`${flat}/a/viaLink`);
    utimensat(AT_FDCWD, `${flat}/a`, ...dirTimes(`${layers[1]}/a`), AT_SYMLINK_NOFOLLOW);

    const mnt = `${tmp.path}/mnt`;
    await Deno.mkdir(mnt);
    await sh("mount", [
      "-t",
      "overlay",
      "berth-test",
      "-o",
      `ro,lowerdir=${[...layers].reverse().join(":")}`,
      mnt,
    ]);
    try {
      // Directories created implicitly in both trees get "now": leave their mtimes out.
      const implicit = (p: string, isDir: boolean) => isDir && ["o/sub"].includes(p);
      assertSameTree(
        await describeTree(mnt, { noMtime: implicit }),
        await describeTree(flat, { noMtime: implicit }),
        "overlay mount vs flatten",
      );
    } finally {
      await sh("umount", [mnt]).catch(() => sh("umount", ["-l", mnt]));
    }
  },
});

Deno.test({
  name: "applier: errors name the layer and the entry; trusted.overlay xattrs are skipped",
  ignore: !isRoot,
  async fn() {
    await using tmp = await tempDir();
    const py = `
import io, sys, tarfile
with tarfile.open(sys.argv[1] + "/bad.tar", "w", format=tarfile.PAX_FORMAT) as tf:
    ti = tarfile.TarInfo("d"); ti.type = tarfile.DIRTYPE
    ti.pax_headers = {"SCHILY.xattr.trusted.overlay.redirect": "/etc"}
    tf.addfile(ti)
    ti = tarfile.TarInfo("x"); ti.type = tarfile.CONTTYPE; tf.addfile(ti)
    ti = tarfile.TarInfo("v"); ti.type = b"V"; tf.addfile(ti)
`;
    await sh("python3", ["-c", py, tmp.path]);
    const out = `${tmp.path}/out`;
    await Deno.mkdir(out);
    const applier = createApplier(out, { mode: "overlay", what: "layer sha256:ab" });
    try {
      const parser = new TarParser(applier);
      const data = await Deno.readFile(`${tmp.path}/bad.tar`);
      assert.throws(
        () => parser.push(data),
        (e) =>
          e instanceof InvalidInputError &&
          /^layer sha256:ab: entry "v" has unsupported/.test(e.message),
      );
      assert.deepEqual(applier.stats.skippedXattrs, [
        "d/: trusted.overlay.redirect (overlayfs private attribute from the archive)",
      ]);
    } finally {
      applier.close();
      applier.close(); // idempotent
    }
    assert.ok((await Deno.lstat(`${out}/x`)).isFile, "contiguous files are files");
    assert.throws(() => createApplier(out, { mode: "x" as "overlay", what: "" }), TypeError);
  },
});

// -----------------------------------------------------------------------------------------------
// Regressions

/** Mode bits of `path` (not following a symlink). */
function modeOf(path: string): number {
  return statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW).mode & 0o7777;
}

/** Runs `fn` with `dir` open as an O_PATH fd. */
function withDirFd<T>(dir: string, fn: (fd: number) => T): T {
  const fd = sys.openat(AT_FDCWD, dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  try {
    return fn(fd);
  } finally {
    sys.close(fd);
  }
}

Deno.test("chmodNoFollow: refuses a symlink, with fchmodat2 and in its fallback", async () => {
  await using tmp = await tempDir();
  const d = tmp.path;
  for (const fallback of [false, true]) {
    await Deno.writeTextFile(`${d}/victim`, "v", { mode: 0o600 });
    await Deno.chmod(`${d}/victim`, 0o600);
    await Deno.symlink(`${d}/victim`, `${d}/link`);
    await Deno.writeTextFile(`${d}/f`, "f");
    await Deno.mkdir(`${d}/dir`);
    sys._simulateNoFchmodat2ForTesting(fallback);
    try {
      withDirFd(d, (fd) => {
        assert.throws(
          () => sys.chmodNoFollow(fd, "link", 0o4777),
          (e) => e instanceof SyscallError && e.code === "EOPNOTSUPP",
          `fallback ${fallback}`,
        );
        assert.throws(
          () => sys.chmodNoFollow(fd, "missing", 0o755),
          (e) => e instanceof SyscallError && e.code === "ENOENT",
        );
        sys.chmodNoFollow(fd, "f", 0o4755);
        sys.chmodNoFollow(fd, "dir", 0o1777);
      });
    } finally {
      sys._simulateNoFchmodat2ForTesting(false);
    }
    assert.equal(modeOf(`${d}/victim`), 0o600, `symlink target untouched (fallback ${fallback})`);
    assert.equal(modeOf(`${d}/f`), 0o4755);
    assert.equal(modeOf(`${d}/dir`), 0o1777);
    for (const p of ["victim", "link", "f", "dir"]) await Deno.remove(`${d}/${p}`);
  }
});

Deno.test({
  name: "snapshots: an implicit parent the layer replaced by a symlink inherits nothing",
  ignore: !isRoot,
  async fn() {
    await using tmp = await tempDir();
    const lower = `${tmp.path}/lower`;
    const upper = `${tmp.path}/upper`;
    const victim = `${tmp.path}/victim`;
    for (const p of [`${lower}/a`, `${lower}/d`, `${upper}/d`]) {
      await Deno.mkdir(p, { recursive: true });
      await Deno.chmod(p, p.startsWith(lower) ? 0o4777 : 0o755);
    }
    await Deno.writeTextFile(victim, "v");
    await Deno.chmod(victim, 0o600);
    await Deno.symlink(victim, `${upper}/a`);
    // On a kernel without fchmodat2, chmod used to follow the symlink.
    sys._simulateNoFchmodat2ForTesting(true);
    try {
      inheritParentAttrs(upper, ["a", "d", "gone"], [lower]);
    } finally {
      sys._simulateNoFchmodat2ForTesting(false);
    }
    assert.equal(modeOf(victim), 0o600);
    assert.equal(await Deno.readLink(`${upper}/a`), victim);
    assert.equal(modeOf(`${upper}/d`), 0o4777, "a real implicit directory still inherits");
  },
});

Deno.test({
  name: "applier: implicitDirs forgets a directory the layer replaced, and what was below it",
  ignore: !isRoot,
  async fn() {
    await using tmp = await tempDir();
    const py = `
import io, sys, tarfile
with tarfile.open(sys.argv[1] + "/l.tar", "w", format=tarfile.PAX_FORMAT) as tf:
    for name, kind in [("a/x", "f"), ("a", "l"), ("p/q/r", "f"), ("p", "f"), ("k/y", "f")]:
        ti = tarfile.TarInfo(name)
        if kind == "l":
            ti.type, ti.linkname = tarfile.SYMTYPE, "elsewhere"
        tf.addfile(ti, io.BytesIO(b""))
`;
    await sh("python3", ["-c", py, tmp.path]);
    const out = `${tmp.path}/out`;
    await Deno.mkdir(out);
    const applier = createApplier(out, { mode: "overlay", what: "layer" });
    try {
      const parser = new TarParser(applier);
      parser.push(await Deno.readFile(`${tmp.path}/l.tar`));
      parser.end();
      applier.finish();
      assert.deepEqual([...applier.implicitDirs], ["k"]);
    } finally {
      applier.close();
    }
  },
});

Deno.test({
  name: "applier: a cached parent reached through a symlink is not used after its target goes",
  ignore: !isRoot,
  async fn() {
    await using tmp = await tempDir();
    const py = `
import io, sys, tarfile
def write(path, members):
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind in members:
            ti = tarfile.TarInfo(name)
            ti.mode = 0o755 if kind == "d" else 0o644
            if kind == "d":
                ti.type = tarfile.DIRTYPE
            elif kind.startswith("l:"):
                ti.type, ti.linkname = tarfile.SYMTYPE, kind[2:]
            tf.addfile(ti, io.BytesIO(b""))
out = sys.argv[1]
base = [("c/", "d"), ("b", "l:c"), ("b/f", "f")]
write(out + "/1.tar", base)
write(out + "/2.tar", [(".wh.c", "f")])
write(out + "/3.tar", [("c/", "d"), ("b/g", "f")])
# one layer: c replaced by a file, then by a new directory
write(out + "/one.tar", base + [("c", "f"), ("c/", "d"), ("b/g", "f")])
`;
    await sh("python3", ["-c", py, tmp.path]);
    const tar = (n: string) => `${tmp.path}/${n}.tar`;
    const check = async (root: string) => {
      assert.equal(await Deno.readLink(`${root}/b`), "c");
      assert.ok((await Deno.lstat(`${root}/c/g`)).isFile);
      assert.ok(!(await exists(`${root}/c/f`)));
    };
    // flattened across layers by one applier, as `berth unpack` does
    const flat = `${tmp.path}/flat`;
    await Deno.mkdir(flat);
    const applier = createApplier(flat, { mode: "flatten", what: "layers" });
    try {
      for (const n of ["1", "2", "3"]) {
        const parser = new TarParser(applier);
        parser.push(await Deno.readFile(tar(n)));
        parser.end();
        applier.finish();
      }
    } finally {
      applier.close();
    }
    await check(flat);
    // within one layer, both modes
    await applyTars([tar("one")], `${tmp.path}/flat1`, "flatten");
    await check(`${tmp.path}/flat1`);
    const [layer] = await applyTars([tar("one")], `${tmp.path}/overlay`, "overlay");
    await check(layer);
  },
});

Deno.test({
  name: "snapshotter: another process's init() during remove() leaves the removal alone",
  ignore: !isRoot,
  async fn() {
    await using tmp = await tempDir();
    const s = new Snapshotter(tmp.path);
    await s.init();
    const chainID = `sha256:${"ab".repeat(32)}` as Digest;
    const snap = `${tmp.path}/snapshots/${"ab".repeat(32)}`;
    await Deno.mkdir(`${snap}/fs/a`, { recursive: true });
    await Deno.writeTextFile(`${snap}/meta.json`, "{}");
    const t = `${tmp.path}/snapshots/tmp`;
    // The worst moment: right after the rename into tmp/, before the recursive remove.
    const realRemove = Deno.remove;
    let raced = 0;
    Deno.remove = async (path, options) => {
      if (raced === 0 && String(path).startsWith(`${t}/`) && !String(path).endsWith(".lock")) {
        raced++;
        await new Snapshotter(tmp.path).init();
      }
      return await realRemove(path, options);
    };
    try {
      await s.remove(chainID);
    } finally {
      Deno.remove = realRemove;
    }
    assert.equal(raced, 1);
    assert.equal(await s.has(chainID), false);
    assert.ok(!(await exists(snap)));
    assert.deepEqual([...Deno.readDirSync(t)], []);
  },
});
