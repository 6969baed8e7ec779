/**
 * `berth load`, `images`, `inspect`, `tag`, `rmi`, `prune`, `system df` as a user runs them, on
 * archives made by skopeo, umoci and podman (tests/_fixtures.ts).
 */
import assert from "node:assert/strict";
import { berth, listTree, sh, tempDir } from "./_berth.ts";
import { type ExpectedImage, fixtures, HOSTILE_NOTES, hostileArchives } from "./_fixtures.ts";

const fx = await fixtures();

async function inspect(root: string, name: string): Promise<Record<string, unknown>> {
  const r = await berth(root, ["image", "inspect", name]);
  assert.equal(r.code, 0, r.stderr);
  const [obj] = JSON.parse(r.stdout);
  return obj;
}

function assertImage(obj: Record<string, unknown>, exp: ExpectedImage) {
  assert.equal(obj.Id, exp.configDigest);
  assert.deepEqual((obj.RootFS as { Layers: string[] }).Layers, exp.diffIDs);
  if (exp.manifestDigest) {
    assert.equal((obj.Descriptor as { digest: string }).digest, exp.manifestDigest);
  }
}

async function blobExists(root: string, digest: string): Promise<boolean> {
  return await Deno.stat(`${root}/blobs/sha256/${digest.slice(7)}`).then(() => true, () => false);
}

const CASES: [keyof typeof fx, string, string | undefined][] = [
  ["ociArchive", "ociArchive", undefined],
  ["dockerArchive", "dockerArchive", "fixture/busybox:latest"],
  ["zstdOciArchive", "zstdOciArchive", undefined],
  ["uncompressedOciArchive", "uncompressedOciArchive", undefined],
  ["whiteoutOciArchive", "whiteoutOciArchive", undefined],
  ["docker25Archive", "docker25Archive", "fixture/busybox:latest"],
  ["multiArchOciArchive", "multiArchOciArchive", undefined],
  ["manifestListDockerArchive", "manifestListDockerArchive", undefined],
  ["podmanDockerArchive", "podmanDockerArchive", "fixture/busybox:latest"],
  ["podmanOciArchive", "podmanOciArchive", undefined],
  ["podmanMislabeledOciArchive", "podmanMislabeledOciArchive", undefined],
];

for (const [key, expKey, tag] of CASES) {
  Deno.test(`load: ${key} gives the digests the tool wrote`, async () => {
    const file = fx[key] as string | undefined;
    assert.ok(file, `fixture ${key} missing: ${fx.podmanError ?? ""}`);
    await using root = await tempDir();
    const r = await berth(root.path, ["load", "-i", file]);
    assert.equal(r.code, 0, r.stderr);
    const exp = fx.expected[expKey];
    if (tag) assert.match(r.stdout, new RegExp(`^Loaded image: ${tag}$`, "m"));
    else assert.match(r.stdout, new RegExp(`^Loaded image(?: ID)?: `, "m"));
    assertImage(await inspect(root.path, exp.configDigest), exp);
    for (const d of exp.layerDigests) {
      if (exp.manifestDigest) assert.ok(await blobExists(root.path, d), `layer ${d} stored`);
    }
    assert.ok(await blobExists(root.path, exp.configDigest));
    assert.deepEqual(await listTree(`${root.path}/ingest`), [".guard"], "ingest area empty");
  });
}

Deno.test("load: --platform picks another platform of an index", async () => {
  await using root = await tempDir();
  for (const platform of ["linux/arm64", "linux/arm/v7"]) {
    const r = await berth(root.path, [
      "load",
      "--platform",
      platform,
      "-i",
      fx.multiArchOciArchive,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const exp = fx.expected[`multiArchOciArchive:${platform}`];
    assertImage(await inspect(root.path, exp.configDigest), exp);
  }
  const bad = await berth(root.path, [
    "load",
    "--platform",
    "linux/s390x",
    "-i",
    fx.multiArchOciArchive,
  ]);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /no image for platform linux\/s390x.*linux\/amd64/);
});

Deno.test("load: podman save -m with two images loads both, tagged", async () => {
  assert.ok(fx.podmanMultiImage, fx.podmanError);
  await using root = await tempDir();
  const r = await berth(root.path, ["load", "-i", fx.podmanMultiImage]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Loaded image: fixture\/busybox:latest$/m);
  assert.match(r.stdout, /^Loaded image: localhost\/fixture\/whiteout:latest$/m);
  assertImage(
    await inspect(root.path, "localhost/fixture/whiteout"),
    fx.expected["podmanMultiImage[1]"],
  );
});

Deno.test("load: from stdin, and gzip/zstd wrapped archives", async () => {
  await using root = await tempDir();
  await using tmp = await tempDir();
  const exp = fx.expected.dockerArchive;
  const r = await berth(root.path, ["load"], { stdin: { file: fx.dockerArchive } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Loaded image: fixture\/busybox:latest$/m);
  for (const [tool, ext] of [["gzip", "gz"], ["zstd", "zst"]]) {
    const wrapped = `${tmp.path}/busybox.tar.${ext}`;
    await sh("sh", ["-c", `${tool} -c < '${fx.ociArchive}' > '${wrapped}'`]);
    const w = await berth(root.path, ["load", "-i", wrapped]);
    assert.equal(w.code, 0, w.stderr);
  }
  assertImage(await inspect(root.path, "fixture/busybox"), exp);
  assertImage(
    await inspect(root.path, fx.expected.ociArchive.configDigest),
    fx.expected.ociArchive,
  );
});

Deno.test("load: a terminal-less empty stdin and a missing file are one-line errors", async () => {
  await using root = await tempDir();
  const r = await berth(root.path, ["load", "-i", "/nonexistent/x.tar"]);
  assert.equal(r.code, 125);
  assert.equal(r.stderr, 'Error: Cannot load "/nonexistent/x.tar": no such file\n');
  const empty = await berth(root.path, ["load"], { stdin: new Uint8Array() });
  assert.equal(empty.code, 125);
  assert.equal(empty.stderr.trim().split("\n").length, 1, empty.stderr);
});

Deno.test("load: every hostile archive is refused with one line, store untouched", async (t) => {
  await using root = await tempDir();
  await using tmp = await tempDir();
  const hostile = await hostileArchives(tmp.path);
  // A first good load creates the store's files; then nothing may change.
  assert.equal((await berth(root.path, ["load", "-i", fx.ociArchive])).code, 0);
  const before = await listTree(root.path);
  const imagesBefore = await Deno.readTextFile(`${root.path}/images.json`);
  const marker = "/tmp/berth-fixture-escape";
  await Deno.remove(marker).catch(() => {});
  for (const [name, file] of Object.entries(hostile)) {
    await t.step(name, async () => {
      const r = await berth(root.path, ["load", "-i", file]);
      assert.equal(r.code, 125, `${HOSTILE_NOTES[name]}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
      const lines = r.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.ok(lines[0].startsWith(`Error: Cannot load "${file}"`), r.stderr);
      assert.deepEqual(await listTree(root.path), before);
      assert.equal(await Deno.readTextFile(`${root.path}/images.json`), imagesBefore);
    });
  }
  assert.equal(await Deno.stat(marker).then(() => true, () => false), false);
});

Deno.test("images, tag, rmi: docker's columns and semantics", async () => {
  await using root = await tempDir();
  assert.equal((await berth(root.path, ["load", "-i", fx.dockerArchive])).code, 0);
  const id = fx.expected.dockerArchive.configDigest;
  assert.equal(
    (await berth(root.path, ["tag", "fixture/busybox", "localhost:5000/bb:v1"])).code,
    0,
  );
  const list = await berth(root.path, ["images"]);
  assert.equal(list.code, 0, list.stderr);
  const lines = list.stdout.trimEnd().split("\n");
  assert.match(lines[0], /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
  assert.equal(lines.length, 3);
  const row = lines.find((l) => l.startsWith("localhost:5000/bb "))!;
  assert.match(
    row,
    new RegExp(`^localhost:5000/bb\\s+v1\\s+${id.slice(7, 19)}\\s+\\S.* ago\\s+[0-9.]+[kM]B$`),
  );
  const q = await berth(root.path, ["images", "-q"]);
  assert.equal(q.stdout, `${id.slice(7, 19)}\n`);
  const tpl = await berth(root.path, ["images", "--format", "{{.Repository}}:{{.Tag}}"]);
  assert.deepEqual(tpl.stdout.trim().split("\n").sort(), [
    "fixture/busybox:latest",
    "localhost:5000/bb:v1",
  ]);
  const json = await berth(root.path, ["images", "--format", "json"]);
  const rows = json.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(rows[0].ID, id.slice(7, 19));
  const filtered = await berth(root.path, ["images", "fixture/*"]);
  assert.equal(filtered.stdout.trim().split("\n").length, 2);
  const full = await berth(root.path, ["images", "docker.io/fixture/busybox"]);
  assert.match(full.stdout.trim().split("\n")[1], /^fixture\/busybox\s+latest\s/);

  // rmi of an image with two tags by ID is refused without -f; by tag it only untags.
  const refused = await berth(root.path, ["rmi", id.slice(7, 19)]);
  assert.equal(refused.code, 125);
  assert.match(refused.stderr, /must be forced.*multiple repositories/);
  const untag = await berth(root.path, ["rmi", "localhost:5000/bb:v1"]);
  assert.equal(untag.stdout, "Untagged: localhost:5000/bb:v1\n");
  const del = await berth(root.path, ["rmi", "fixture/busybox"]);
  assert.equal(del.stdout, `Untagged: fixture/busybox:latest\nDeleted: ${id}\n`);
  assert.equal((await berth(root.path, ["images", "-q"])).stdout, "");
  const missing = await berth(root.path, ["rmi", "nope"]);
  assert.equal(missing.code, 125);
  assert.equal(missing.stderr, "Error: No such image: nope\n");
  // The image's blobs went with it.
  assert.deepEqual(await listTree(`${root.path}/blobs/sha256`), []);
});

Deno.test("shared layers are stored once; prune removes only unreferenced blobs", async () => {
  await using root = await tempDir();
  // The whiteout image is built on the busybox image: the base layers are shared.
  assert.equal((await berth(root.path, ["load", "-i", fx.ociArchive])).code, 0);
  const one = (await listTree(`${root.path}/blobs/sha256`)).length;
  assert.equal((await berth(root.path, ["load", "-i", fx.whiteoutOciArchive])).code, 0);
  const both = (await listTree(`${root.path}/blobs/sha256`)).length;
  const base = fx.expected.ociArchive.layerDigests;
  const extra = fx.expected.whiteoutOciArchive.layerDigests.filter((d) => !base.includes(d));
  assert.ok(
    extra.length < fx.expected.whiteoutOciArchive.layerDigests.length,
    "fixture shares layers",
  );
  assert.equal(both, one + extra.length + 2); // its own layers, config and manifest
  const df = await berth(root.path, ["system", "df"]);
  assert.match(df.stdout, /^Images\s+2\s+0\s+\S+\s+\S+/m);
  // Both are untagged (OCI ref names are bare tags): prune removes both and every blob.
  const pruned = await berth(root.path, ["image", "prune", "-f"]);
  assert.equal(pruned.code, 0, pruned.stderr);
  assert.match(pruned.stdout, /^Deleted Images:$/m);
  assert.match(pruned.stdout, /^Total reclaimed space: [0-9.]+[kM]B$/m);
  assert.deepEqual(await listTree(`${root.path}/blobs/sha256`), []);
});

Deno.test("inspect: docker's shape and --format templates", async () => {
  await using root = await tempDir();
  assert.equal((await berth(root.path, ["load", "-i", fx.dockerArchive])).code, 0);
  const obj = await inspect(root.path, "fixture/busybox:latest");
  for (
    const k of [
      "Id",
      "RepoTags",
      "RepoDigests",
      "Created",
      "Config",
      "Architecture",
      "Os",
      "Size",
      "RootFS",
    ]
  ) {
    assert.ok(k in obj, k);
  }
  assert.deepEqual(obj.RepoTags, ["fixture/busybox:latest"]);
  assert.equal(obj.Architecture, "amd64");
  assert.deepEqual((obj.Config as { Cmd: string[] }).Cmd, ["sh"]);
  const f = await berth(root.path, [
    "inspect",
    "-f",
    "{{.Os}}/{{.Architecture}} {{json .Config.Cmd}} {{.Config.Cmd}}",
    "fixture/busybox",
  ]);
  assert.equal(f.stdout, 'linux/amd64 ["sh"] [sh]\n');
  const none = await berth(root.path, ["inspect", "nope"]);
  assert.equal(none.code, 125);
  assert.equal(none.stderr, "Error: No such object: nope\n");
  const noImage = await berth(root.path, ["image", "inspect", "nope"]);
  assert.equal(noImage.code, 125);
  assert.equal(noImage.stderr, "Error: No such image: nope\n");
});
