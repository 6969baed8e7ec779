/**
 * `berth save`: archives that skopeo (docker-archive: and oci-archive:) and podman load, with the
 * config and layer digests preserved; and back through `berth load`.
 */
import assert from "node:assert/strict";
import { berth, sh, tempDir } from "./_berth.ts";
import { fixtures, runSkopeo } from "./_fixtures.ts";
import { podmanSandbox } from "./_podman.ts";

const fx = await fixtures();

interface SkopeoInspect {
  Digest: string;
  Layers: string[];
  RepoTags?: string[];
}

Deno.test("save: skopeo reads berth's archive as docker-archive and oci-archive, digests kept", async () => {
  await using root = await tempDir();
  await using tmp = await tempDir();
  assert.equal((await berth(root.path, ["load", "-i", fx.ociArchive])).code, 0);
  const exp = fx.expected.ociArchive;
  assert.equal((await berth(root.path, ["tag", exp.configDigest, "example/app:1.0"])).code, 0);
  const out = `${tmp.path}/app.tar`;
  const r = await berth(root.path, ["save", "-o", out, "example/app:1.0"]);
  assert.equal(r.code, 0, r.stderr);

  const config = JSON.parse(
    await runSkopeo(["inspect", "--raw", "--config", `docker-archive:${out}`]),
  );
  assert.deepEqual(config.rootfs.diff_ids, exp.diffIDs);
  const cfgBytes = await runSkopeo(["inspect", "--config", "--raw", `oci-archive:${out}`]);
  const cfgDigest = "sha256:" +
    (await sh("sh", ["-c", `printf %s '${cfgBytes.replaceAll("'", "'\\''")}' | sha256sum`])).slice(
      0,
      64,
    );
  assert.equal(cfgDigest, exp.configDigest);
  const oci = JSON.parse(await runSkopeo(["inspect", `oci-archive:${out}`])) as SkopeoInspect;
  assert.deepEqual(oci.Layers, exp.layerDigests);
  assert.equal(oci.Digest, exp.manifestDigest);
  const docker = JSON.parse(await runSkopeo(["inspect", `docker-archive:${out}`])) as SkopeoInspect;
  assert.deepEqual(docker.Layers, exp.diffIDs);
  const raw = JSON.parse(await sh("tar", ["-xOf", out, "manifest.json"]));
  assert.deepEqual(raw[0].RepoTags, ["docker.io/example/app:1.0"]);
  // skopeo copies it on, byte for byte: its OCI layout holds the same blobs.
  await runSkopeo(["copy", `oci-archive:${out}`, `oci:${tmp.path}/layout:x`]);
  for (const d of exp.layerDigests) {
    const stat = await Deno.stat(`${tmp.path}/layout/blobs/sha256/${d.slice(7)}`);
    assert.ok(stat.isFile);
  }
});

Deno.test("save: podman loads berth's archive with the same image ID and tags", async () => {
  await using root = await tempDir();
  await using tmp = await tempDir();
  await using podman = await podmanSandbox();
  assert.equal((await berth(root.path, ["load", "-i", fx.dockerArchive])).code, 0);
  assert.equal((await berth(root.path, ["load", "-i", fx.whiteoutOciArchive])).code, 0);
  const white = fx.expected.whiteoutOciArchive.configDigest;
  assert.equal((await berth(root.path, ["tag", white, "example/white"])).code, 0);
  const out = `${tmp.path}/two.tar`;
  const r = await berth(root.path, ["save", "-o", out, "fixture/busybox:latest", "example/white"]);
  assert.equal(r.code, 0, r.stderr);
  const loaded = await podman.run(["load", "-i", out]);
  assert.match(loaded, /fixture\/busybox:latest/);
  const ids = JSON.parse(
    await podman.run([
      "image",
      "inspect",
      "docker.io/fixture/busybox:latest",
      "docker.io/example/white:latest",
    ]),
  );
  assert.equal(`sha256:${ids[0].Id}`, fx.expected.dockerArchive.configDigest);
  assert.equal(`sha256:${ids[1].Id}`, white);
  assert.deepEqual(ids[0].RootFS.Layers, fx.expected.dockerArchive.diffIDs);
});

Deno.test("save: to stdout, and back through berth load into another store", async () => {
  await using a = await tempDir();
  await using b = await tempDir();
  await using tmp = await tempDir();
  assert.equal((await berth(a.path, ["load", "-i", fx.zstdOciArchive])).code, 0);
  const exp = fx.expected.zstdOciArchive;
  assert.equal((await berth(a.path, ["tag", exp.configDigest, "zstd/app"])).code, 0);
  const out = `${tmp.path}/s.tar`;
  await sh("sh", [
    "-c",
    `deno run -A --quiet '${
      new URL("../main.ts", import.meta.url).pathname
    }' --root '${a.path}' save zstd/app > '${out}'`,
  ]);
  const r = await berth(b.path, ["load", "-i", out]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "Loaded image: zstd/app:latest\n");
  const [obj] = JSON.parse((await berth(b.path, ["inspect", "zstd/app"])).stdout);
  assert.equal(obj.Id, exp.configDigest);
  assert.equal(obj.Descriptor.digest, exp.manifestDigest);
  // OCI-only format: no manifest.json.
  const oci = `${tmp.path}/o.tar`;
  assert.equal(
    (await berth(a.path, ["save", "--format", "oci-archive", "-o", oci, "zstd/app"])).code,
    0,
  );
  const names = (await sh("tar", ["-tf", oci])).split("\n");
  assert.ok(names.includes("index.json") && !names.includes("manifest.json"));
  const missing = await berth(a.path, ["save", "-o", `${tmp.path}/x.tar`, "nope"]);
  assert.equal(missing.code, 125);
  assert.equal(missing.stderr, "Error: No such image: nope\n");
  assert.equal(await Deno.stat(`${tmp.path}/x.tar`).then(() => true, () => false), false);
});

Deno.test("save: -o /dev/null writes to the device, never replaces it", async () => {
  await using root = await tempDir();
  assert.equal((await berth(root.path, ["load", "-i", fx.ociArchive])).code, 0);
  const before = await Deno.stat("/dev/null");
  const r = await berth(root.path, [
    "save",
    "-o",
    "/dev/null",
    fx.expected.ociArchive.configDigest,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const after = await Deno.stat("/dev/null");
  assert.ok(after.isCharDevice, "/dev/null is still a character device");
  assert.equal(after.ino, before.ino);
});

Deno.test("save: a cancelled archive stream lets go of the store (rmi does not wait forever)", async () => {
  await using root = await tempDir();
  assert.equal((await berth(root.path, ["load", "-i", fx.dockerArchive])).code, 0);
  const { Store } = await import("../mod.ts");
  const store = await Store.open({ root: root.path });
  const stream = await store.save(["fixture/busybox"]);
  await stream.cancel();
  const done = store.removeImage("fixture/busybox");
  const timeout = new Promise((_, reject) =>
    setTimeout(() => reject(new Error("rmi hung")), 10_000)
  );
  const result = await Promise.race([done, timeout]) as { deleted: string[] };
  assert.equal(result.deleted.length, 1);
});
