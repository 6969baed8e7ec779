// Checks that the fixture images exist and that skopeo reads each one as the harness says, so a
// broken fixture fails here, loudly, rather than in the tests that use it.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  busyboxRootfs,
  type ExpectedImage,
  type Fixtures,
  fixtures,
  HOSTILE_NOTES,
  hostileArchives,
  IMAGE_FACTS,
  runSkopeo,
} from "./_fixtures.ts";

const DOCKER_KEYS = new Set(["dockerArchive", "podmanDockerArchive", "podmanMultiImage"]);
const PATH_KEYS = [
  "ociLayout",
  "ociArchive",
  "dockerArchive",
  "zstdOciArchive",
  "uncompressedOciArchive",
  "multiArchOciArchive",
  "manifestListDockerArchive",
  "whiteoutOciArchive",
  "podmanDockerArchive",
  "podmanOciArchive",
  "podmanMislabeledOciArchive",
  "podmanMultiImage",
  "docker25Archive",
] as const;

interface Inspect {
  Digest: string;
  Layers: string[];
}

async function json<T>(args: string[]): Promise<T> {
  return JSON.parse(await runSkopeo(args)) as T;
}

function sha256(text: string): string {
  return "sha256:" + createHash("sha256").update(text).digest("hex");
}

function platformFlags(platform: string | undefined): string[] {
  if (!platform) return [];
  const [os, arch, variant] = platform.split("/");
  return [
    "--override-os",
    os,
    "--override-arch",
    arch,
    ...(variant ? ["--override-variant", variant] : []),
  ];
}

/** Compares what skopeo reports for `ref` with the harness's expectation. */
async function checkRef(what: string, ref: string, exp: ExpectedImage, docker: boolean) {
  const flags = platformFlags(exp.platform);
  const [info, config, raw] = await Promise.all([
    json<Inspect>([...flags, "inspect", ref]),
    json<{ rootfs: { diff_ids: string[] } }>([...flags, "inspect", "--config", ref]),
    runSkopeo(["inspect", "--raw", ref]),
  ]);
  assert.deepEqual(info.Layers, exp.layerDigests, `${what}: layers`);
  assert.deepEqual(config.rootfs.diff_ids, exp.diffIDs, `${what}: diff_ids`);
  const top = JSON.parse(raw);
  if (exp.indexDigest) {
    // skopeo reports the digest of the top-level list; the platform's manifest is listed in it.
    assert.equal(sha256(raw), exp.indexDigest, `${what}: index digest`);
    assert.equal(info.Digest, exp.indexDigest, `${what}: index digest (inspect)`);
    const listed = top.manifests.map((m: { digest: string }) => m.digest);
    assert.ok(listed.includes(exp.manifestDigest), `${what}: manifest listed in the index`);
  } else {
    assert.equal(top.config.digest, exp.configDigest, `${what}: config digest`);
    if (!docker) assert.equal(info.Digest, exp.manifestDigest, `${what}: manifest digest`);
  }
  assert.ok(exp.repoTags.length > 0, `${what}: repoTags`);
}

function refFor(key: string, path: string, docker: boolean): string {
  if (key === "ociLayout") return `oci:${path}:latest`;
  return docker ? `docker-archive:${path}` : `oci-archive:${path}`;
}

let fx: Fixtures;

Deno.test("fixtures: build (or cache hit) and every fixture file exists", async () => {
  fx = await fixtures();
  console.log(
    `fixtures in ${fx.dir}, built in ${fx.buildSeconds} s, multi-arch by ${fx.multiArchSource}`,
  );
  if (fx.podmanError) console.log(`podman fixtures missing: ${fx.podmanError}`);
  for (const key of PATH_KEYS) {
    const path = fx[key];
    if (path === undefined) {
      assert.ok(fx.podmanError, `${key} missing without a podman error`);
      continue;
    }
    const st = await Deno.stat(path);
    assert.ok(st.isDirectory || st.size > 0, `${key}: ${path}`);
    assert.ok(fx.expected[key], `${key}: expected entry`);
  }
});

Deno.test("fixtures: skopeo reads each fixture as expected", async () => {
  fx ??= await fixtures();
  const checks = Object.entries(fx.expected).map(([name, exp]) => async () => {
    const key = name.replace(/[:[].*$/, "") as (typeof PATH_KEYS)[number];
    const path = fx[key]!;
    const docker = DOCKER_KEYS.has(key);
    let ref = refFor(key, path, docker);
    const idx = name.match(/\[(\d+)\]$/);
    if (key === "podmanMultiImage") ref += `:@${idx ? idx[1] : 0}`;
    await checkRef(name, ref, exp, docker);
    if (key === "docker25Archive") {
      await checkRef(`${name} as docker-archive`, `docker-archive:${path}`, exp, true);
    }
  });
  // Four at a time: each check is three skopeo processes.
  for (let i = 0; i < checks.length; i += 4) {
    await Promise.all(checks.slice(i, i + 4).map((check) => check()));
  }
});

Deno.test("fixtures: media types are what each tool was asked for", async () => {
  fx ??= await fixtures();
  const layers = async (ref: string) =>
    (JSON.parse(await runSkopeo(["inspect", "--raw", ref])).layers as { mediaType: string }[])
      .map((l) => l.mediaType);
  const every = (types: string[], want: string) => types.every((t) => t === want);
  assert.ok(
    every(
      await layers(`oci:${fx.ociLayout}:latest`),
      "application/vnd.oci.image.layer.v1.tar+gzip",
    ),
  );
  assert.ok(
    every(
      await layers(`oci-archive:${fx.zstdOciArchive}`),
      "application/vnd.oci.image.layer.v1.tar+zstd",
    ),
  );
  const plain = await layers(`oci-archive:${fx.uncompressedOciArchive}`);
  assert.ok(every(plain, "application/vnd.oci.image.layer.v1.tar"), plain.join());
  assert.ok(
    every(
      await layers(`oci-archive:${fx.docker25Archive}`),
      "application/vnd.oci.image.layer.v1.tar",
    ),
  );
  const index = JSON.parse(
    await runSkopeo(["inspect", "--raw", `oci-archive:${fx.multiArchOciArchive}`]),
  );
  assert.equal(index.mediaType, "application/vnd.oci.image.index.v1+json");
  const platforms = index.manifests.map((
    m: { platform: { os: string; architecture: string; variant?: string } },
  ) => [m.platform.os, m.platform.architecture, m.platform.variant].filter(Boolean).join("/"));
  assert.deepEqual(platforms, [...IMAGE_FACTS.multiArch]);
  if (fx.manifestListDockerArchive) {
    const list = JSON.parse(
      await runSkopeo(["inspect", "--raw", `oci-archive:${fx.manifestListDockerArchive}`]),
    );
    assert.equal(list.mediaType, "application/vnd.docker.distribution.manifest.list.v2+json");
  }
  const config = JSON.parse(await runSkopeo(["inspect", "--config", `oci:${fx.ociLayout}:latest`]));
  assert.deepEqual(config.config.Cmd, IMAGE_FACTS.cmd);
  assert.deepEqual(config.config.Env, IMAGE_FACTS.env);
});

Deno.test("fixtures: whiteout image carries .wh. entries and an opaque marker", async () => {
  fx ??= await fixtures();
  const dir = await Deno.makeTempDir({ prefix: "berth-fx-wh-" });
  try {
    const tar = (args: string[]) => new Deno.Command("tar", { args, stdout: "piped" }).output();
    assert.ok((await tar(["-xf", fx.whiteoutOciArchive, "-C", dir])).success);
    const exp = fx.expected.whiteoutOciArchive;
    const names: string[] = [];
    for (const digest of exp.layerDigests.slice(-2)) {
      const out = await tar(["-tzf", `${dir}/blobs/sha256/${digest.slice(7)}`]);
      assert.ok(out.success);
      names.push(...new TextDecoder().decode(out.stdout).split("\n"));
    }
    for (const n of ["wh/.wh.file-to-delete", "wh/.wh.dir-to-delete", "wh/replaced/.wh..wh..opq"]) {
      assert.ok(names.includes(n), `${n} in ${names.join(" ")}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("busyboxRootfs: sh runs under chroot, users and groups resolve", async () => {
  const dir = await Deno.makeTempDir({ prefix: "berth-fx-rootfs-" });
  try {
    await busyboxRootfs(dir);
    assert.equal((await Deno.stat(`${dir}/tmp`)).mode! & 0o7777, 0o1777);
    if (Deno.uid() !== 0) return;
    const out = await new Deno.Command("chroot", {
      args: [dir, "/bin/sh", "-c", "id -u app; id -G app; id -u nobody; echo ok | cat"],
      stdout: "piped",
    }).output();
    assert.ok(out.success);
    assert.equal(new TextDecoder().decode(out.stdout), "1000\n1000 50 1001\n65534\nok\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hostileArchives: every archive exists and its defect is where the note says", async () => {
  const dir = await Deno.makeTempDir({ prefix: "berth-fx-hostile-" });
  try {
    const h = await hostileArchives(dir);
    assert.deepEqual(Object.keys(h).sort(), Object.keys(HOSTILE_NOTES).sort());
    for (const path of Object.values(h)) assert.ok((await Deno.stat(path)).size > 0, path);
    // skopeo hits exactly the intended check (so every other digest in them is right).
    const fails = async (ref: string, message: RegExp) => {
      const dest = `${dir}/copy`;
      await assert.rejects(
        runSkopeo(["copy", "-q", "--dest-decompress", ref, `dir:${dest}`]),
        message,
        ref,
      );
      await Deno.remove(dest, { recursive: true }).catch(() => {});
    };
    await fails(`oci-archive:${h.ociLayerWrongDigest}`, /Digest did not match/);
    await fails(`oci-archive:${h.ociTruncatedGzipLayer}`, /unexpected EOF/);
    await fails(`docker-archive:${h.dockerDiffIdMismatch}`, /Digest did not match/);
    // The bomb's manifest, config and index verify: skopeo reads its config by digest.
    const cfg = JSON.parse(
      await runSkopeo(["inspect", "--config", `oci-archive:${h.ociZstdBomb}`]),
    );
    assert.equal(cfg.rootfs.diff_ids.length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
