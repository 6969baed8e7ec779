/** `berth import`: a rootfs tarball made by GNU tar becomes a one-layer image. */
import assert from "node:assert/strict";
import { berth, listTree, sh, tempDir } from "./_berth.ts";
import { busyboxRootfs } from "./_fixtures.ts";

Deno.test("import: rootfs tar → image whose diffID is the tar's sha256, with --change", async () => {
  await using root = await tempDir();
  await using tmp = await tempDir();
  await busyboxRootfs(`${tmp.path}/rootfs`);
  const tar = `${tmp.path}/rootfs.tar`;
  await sh("tar", ["-C", `${tmp.path}/rootfs`, "--numeric-owner", "-cf", tar, "."]);
  const diffID = "sha256:" + (await sh("sha256sum", [tar])).slice(0, 64);
  await sh("zstd", ["-q", "-k", tar, "-o", `${tar}.zst`]);
  const r = await berth(root.path, [
    "import",
    "-c",
    "CMD sh -c 'echo hi'",
    "-c",
    "ENV A=1 B=two",
    "-c",
    "WORKDIR /tmp",
    "-m",
    "from busybox",
    `${tar}.zst`,
    "local/bb:1",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^sha256:[0-9a-f]{64}\n$/);
  const [obj] = JSON.parse((await berth(root.path, ["inspect", "local/bb:1"])).stdout);
  assert.equal(obj.Id, r.stdout.trim());
  assert.deepEqual(obj.RootFS.Layers, [diffID]);
  assert.deepEqual(obj.Config.Cmd, ["/bin/sh", "-c", "sh -c 'echo hi'"]);
  assert.deepEqual(obj.Config.Env, ["A=1", "B=two"]);
  assert.equal(obj.Config.WorkingDir, "/tmp");
  assert.equal(obj.Comment, "from busybox");
  assert.equal(obj.Architecture, "amd64");
  // The stored layer is gzip: skopeo reads berth's save of it.
  const out = `${tmp.path}/bb.tar`;
  assert.equal((await berth(root.path, ["save", "-o", out, "local/bb:1"])).code, 0);
  const cfg = JSON.parse(await sh("skopeo", ["inspect", "--config", `oci-archive:${out}`]));
  assert.deepEqual(cfg.rootfs.diff_ids, [diffID]);
  // From stdin, untagged.
  const s = await berth(root.path, ["import", "-"], { stdin: { file: tar } });
  assert.equal(s.code, 0, s.stderr);
  assert.equal(
    (await berth(root.path, ["images", "-q"])).stdout.split("\n").filter(Boolean).length,
    2,
  );
});

Deno.test("import: a truncated tarball is refused and stores nothing", async () => {
  await using root = await tempDir();
  await using tmp = await tempDir();
  await busyboxRootfs(`${tmp.path}/rootfs`);
  const tar = `${tmp.path}/rootfs.tar`;
  await sh("tar", ["-C", `${tmp.path}/rootfs`, "-cf", tar, "."]);
  await sh("truncate", ["-s", "300000", tar]);
  const r = await berth(root.path, ["import", tar, "x"]);
  assert.equal(r.code, 125);
  assert.match(r.stderr, new RegExp(`^Error: Cannot import "${tar}": Truncated tar`));
  assert.deepEqual(await listTree(`${root.path}/blobs`), ["sha256/"]);
  const bad = await berth(root.path, ["import", tar, "-c", "FROM x"]);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /Invalid --change "FROM x"/);
});
