/**
 * Two berth processes on one store, and `kill -9` in the middle of a load: the store stays
 * consistent, the next command cleans up and works.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { berth, listTree, tempDir } from "./_berth.ts";
import { fixtures } from "./_fixtures.ts";

const fx = await fixtures();
const MAIN = new URL("../main.ts", import.meta.url).pathname;

async function assertBlobsVerified(root: string) {
  for await (const e of Deno.readDir(`${root}/blobs/sha256`)) {
    const data = await Deno.readFile(`${root}/blobs/sha256/${e.name}`);
    assert.equal(createHash("sha256").update(data).digest("hex"), e.name, "blob matches its name");
  }
}

Deno.test("concurrency: parallel loads and a prune on one store keep every image whole", async () => {
  await using root = await tempDir();
  const archives = [fx.ociArchive, fx.dockerArchive, fx.zstdOciArchive, fx.whiteoutOciArchive];
  const results = await Promise.all([
    ...archives.map((a) => berth(root.path, ["load", "-i", a])),
    berth(root.path, ["image", "prune", "-f"]),
    berth(root.path, ["image", "prune", "-f"]),
  ]);
  for (const r of results) assert.equal(r.code, 0, r.stderr);
  const images = JSON.parse(await Deno.readTextFile(`${root.path}/images.json`)).images;
  // Every loaded image is recorded (prune may have removed untagged ones that finished first).
  const tagged = images.filter((i: { repoTags: string[] }) => i.repoTags.length > 0);
  assert.equal(tagged.length, 1);
  for (const image of images) {
    const r = await berth(root.path, ["save", "-o", "/dev/null", image.id]);
    assert.equal(r.code, 0, `image ${image.id} readable: ${r.stderr}`);
  }
  await assertBlobsVerified(root.path);
  // All four again, no prune: every distinct image present (the busybox archives share a config).
  const again = await Promise.all(archives.map((a) => berth(root.path, ["load", "-i", a])));
  for (const r of again) assert.equal(r.code, 0, r.stderr);
  const after = JSON.parse(await Deno.readTextFile(`${root.path}/images.json`)).images;
  const ids = new Set(
    ["ociArchive", "dockerArchive", "zstdOciArchive", "whiteoutOciArchive"].map((k) =>
      fx.expected[k].configDigest
    ),
  );
  assert.deepEqual(new Set(after.map((i: { id: string }) => i.id)), ids);
});

Deno.test("crash: kill -9 during a load leaves a store the next command cleans and uses", async () => {
  await using root = await tempDir();
  const archive = await Deno.readFile(fx.ociArchive);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "--root", root.path, "load"],
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(archive.subarray(0, archive.length >> 1));
  // Wait until the load has staged something, then kill it mid-stream.
  let staged = false;
  for (let i = 0; i < 200 && !staged; i++) {
    await new Promise((r) => setTimeout(r, 25));
    const tree = await listTree(`${root.path}/ingest`).catch(() => []);
    staged = tree.some((p) => !p.endsWith("/") && !p.endsWith(".lock"));
  }
  assert.ok(staged, "the load staged a blob before the kill");
  child.kill("SIGKILL");
  await child.status;
  await writer.close().catch(() => {});
  assert.notDeepEqual(await listTree(`${root.path}/ingest`), [], "a crashed session is left over");
  const images = await berth(root.path, ["images", "-q"]);
  assert.equal(images.code, 0, images.stderr);
  assert.equal(images.stdout, "");
  assert.deepEqual(await listTree(`${root.path}/ingest`), [".guard"], "stale session removed");
  await assertBlobsVerified(root.path);
  const load = await berth(root.path, ["load", "-i", fx.ociArchive]);
  assert.equal(load.code, 0, load.stderr);
});
