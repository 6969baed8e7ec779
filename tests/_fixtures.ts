/**
 * Test images made by real tools (umoci, skopeo, podman, GNU tar, python3), never by berth.
 *
 * {@linkcode fixtures} builds every image once into a cache directory
 * (`$BERTH_FIXTURES_DIR` or `/var/tmp`, then `berth-fixtures-<hash of this recipe>`), shared by
 * all test files and runs. A build goes into a temporary directory that is renamed into place, under
 * an exclusive lock file, so concurrent test processes neither race nor build twice. The cache
 * directory may be deleted at any time between runs; it is rebuilt on the next call.
 *
 * skopeo and podman run in a private mount namespace with a tmpfs over `/var/lib/containers` (or
 * `/var/lib` when that does not exist), so their blob-info cache never touches the host; podman's
 * storage lives in the build directory and is removed before the rename.
 *
 * @module
 */

import { createHash } from "node:crypto";

/** What a fixture holds, read from the files the tools wrote (not computed by berth). */
export interface ExpectedImage {
  /** Digest of the image config blob. */
  configDigest: string;
  /** Layer digests as stored (compressed blob digests; for docker-archive, the layer tar files). */
  layerDigests: string[];
  /** `rootfs.diff_ids` of the config. */
  diffIDs: string[];
  /** Digest of the image manifest as stored in the archive (absent for docker-archive). */
  manifestDigest?: string;
  /** Digest of the top-level index / manifest list (multi-arch fixtures only). */
  indexDigest?: string;
  /** `os/arch[/variant]` (multi-arch fixtures only). */
  platform?: string;
  /** docker-archive: `RepoTags` of manifest.json; OCI: every `org.opencontainers.image.ref.name`. */
  repoTags: string[];
}

/** Paths of the fixture images; see the field docs for the tool that made each one. */
export interface Fixtures {
  /** Cache dir holding everything below. */
  dir: string;
  /**
   * OCI image layout dir written by umoci (`init`/`new`/`unpack`/`repack`/`config`), tag `latest`:
   * two gzip layers (1: {@linkcode busyboxRootfs} plus `/etc/motd`; 2: see {@linkcode IMAGE_FACTS}),
   * Cmd `["sh"]`, Env PATH, amd64/linux.
   */
  ociLayout: string;
  /** `skopeo copy oci:<ociLayout>:latest oci-archive:<file>:latest` (blobs identical to the layout). */
  ociArchive: string;
  /**
   * `skopeo copy oci:… docker-archive:<file>:fixture/busybox:latest`. skopeo writes: uncompressed
   * layers as `<diffID hex>.tar`, the config as `<config hex>.json`, manifest.json (RepoTags
   * `["docker.io/fixture/busybox:latest"]`, Layers `<hex>.tar`), `repositories`
   * (`{"docker.io/fixture/busybox":{"latest":"<top v1 id>"}}`) and one legacy dir per layer,
   * `<v1 id>/{VERSION,json}` plus `<v1 id>/layer.tar`, a symlink to `../<diffID hex>.tar`.
   */
  dockerArchive: string;
  /** `skopeo copy --dest-compress-format zstd oci:… oci-archive:…`: `tar+zstd` layers. */
  zstdOciArchive: string;
  /**
   * Plain-tar layers (`application/vnd.oci.image.layer.v1.tar`):
   * `skopeo copy --dest-decompress oci:… dir:…` then
   * `skopeo copy --dest-oci-accept-uncompressed-layers dir:… oci-archive:…`.
   */
  uncompressedOciArchive: string;
  /**
   * OCI index with linux/amd64, linux/arm64, linux/arm/v7 manifests. Each is a real umoci image
   * (the busybox image plus a layer writing `/etc/berth-arch` with the arch name, config
   * architecture set by `umoci config --architecture`); the index is made by podman
   * (`manifest create` / `add --arch --variant` / `push --all … oci-archive:`), or, when podman
   * fails, written by this harness and copied by `skopeo copy --all` (see `multiArchSource`).
   */
  multiArchOciArchive: string;
  /** Who made the index of {@linkcode Fixtures.multiArchOciArchive}. */
  multiArchSource: "podman" | "harness";
  /**
   * A Docker manifest list (`application/vnd.docker.distribution.manifest.list.v2+json`) over v2s2
   * manifests: `podman manifest push --all --format v2s2 … oci-archive:`. A docker-archive cannot
   * hold a list, so this is an OCI archive whose index.json points at a Docker manifest list.
   */
  manifestListDockerArchive?: string;
  /**
   * Whiteouts: the busybox image plus three layers. 3 (umoci repack): `/wh/{file-to-delete,
   * dir-to-delete/inner,replaced/old1,replaced/sub/old3,kept}`. 4 (umoci repack after `rm`):
   * `wh/.wh.file-to-delete`, `wh/.wh.dir-to-delete`. 5 (GNU tar + `umoci raw add-layer`, because
   * umoci repack never emits opaque whiteouts, it whites out each old file instead):
   * `wh/replaced/`, `wh/replaced/.wh..wh..opq`, `wh/replaced/new`. Then `skopeo copy` to
   * oci-archive. Expected result in {@linkcode IMAGE_FACTS}.whiteout.
   */
  whiteoutOciArchive: string;
  /** `podman save --format docker-archive` after `podman load` of {@linkcode Fixtures.dockerArchive}. */
  podmanDockerArchive?: string;
  /** `podman save --format oci-archive` (podman recompresses the layers: new layer digests). */
  podmanOciArchive?: string;
  /**
   * `podman save --uncompressed --format oci-archive`: podman 4.3 writes plain-tar layers but
   * labels them `tar+gzip` (a real-world mislabelled archive; sniff, or reject).
   */
  podmanMislabeledOciArchive?: string;
  /** `podman save -m` of `docker.io/fixture/busybox:latest` and `localhost/fixture/whiteout:latest`. */
  podmanMultiImage?: string;
  /** Why the podman fixtures are missing, when they are. */
  podmanError?: string;
  /**
   * What docker >= 25.0.1 `docker save` writes, assembled by this harness from skopeo's
   * uncompressed copy: `blobs/sha256/…` (uncompressed layers named by diffID, the config, the OCI
   * manifest with `application/vnd.oci.image.layer.v1.tar` layers, plus unreferenced legacy v1
   * layer JSON blobs), `index.json` (annotations `io.containerd.image.name`,
   * `org.opencontainers.image.ref.name`), `manifest.json` (`Config`/`Layers` =
   * `blobs/sha256/<hex>`, RepoTags `["fixture/busybox:latest"]`), `repositories`, `oci-layout`.
   */
  docker25Archive: string;
  /**
   * Per fixture key (multi-image / multi-platform fixtures add `key[1]` and `key:os/arch[/variant]`
   * entries; the plain key is the first image, amd64 for multi-arch).
   */
  expected: Record<string, ExpectedImage>;
  /** Seconds the build took (0 when read from the cache). */
  buildSeconds: number;
}

/** Facts about the images' content that tests can assert on. */
export const IMAGE_FACTS = {
  cmd: ["sh"],
  env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
  architecture: "amd64",
  os: "linux",
  dockerTag: "fixture/busybox:latest",
  /** Layer 1 writes "berth fixture layer 1\n", layer 2 overwrites it. */
  motd: "berth fixture layer 2\n",
  /** Layer 2: owned by 1000:1000, mode 0640. */
  appFile: { path: "/home/app/hello.txt", content: "hello from layer 2\n", uid: 1000, gid: 1000 },
  /** Layer 2: two names of one inode (a tar hard link). */
  hardlinks: ["/usr/share/berth/hardlink-a", "/usr/share/berth/hardlink-b"],
  /** Layer 2: a file whose path is longer than 100 bytes (PAX / GNU long name). */
  longPath: "/usr/share/berth/" + "d".repeat(90) + "/" + "f".repeat(60) + ".txt",
  /** Layer 2: a symlink whose target is longer than 100 bytes. */
  longSymlink: {
    path: "/usr/share/berth/long-link",
    target: "x".repeat(80) + "/" + "y".repeat(60),
  },
  whiteout: {
    present: ["/wh/kept", "/wh/replaced/new"],
    absent: [
      "/wh/file-to-delete",
      "/wh/dir-to-delete",
      "/wh/replaced/old1",
      "/wh/replaced/sub",
    ],
  },
  multiArch: ["linux/amd64", "linux/arm64", "linux/arm/v7"],
} as const;

/** What each archive of {@linkcode hostileArchives} holds and what a loader must do with it. */
export const HOSTILE_NOTES: Readonly<Record<string, string>> = {
  dockerLayerPathTraversal:
    "docker-archive, manifest.json Layers[0] = ../../etc/passwd: reject (path escapes archive)",
  dockerLayerPathAbsolute: "docker-archive, Layers[0] = /etc/passwd: reject (absolute path)",
  dockerConfigPathTraversal: "docker-archive, Config = ../../etc/passwd: reject",
  dockerLayerSymlinkAbsolute:
    "docker-archive, the Layers[0] member is a symlink to /etc/passwd: reject, never follow it",
  dockerLayerSymlinkRelative:
    "docker-archive, the Layers[0] member is a symlink to ../x (outside the archive): reject",
  dockerHugeManifest:
    "docker-archive, manifest.json is valid JSON of 64 MiB + a few hundred bytes: reject by size bound",
  dockerMalformedManifest: "docker-archive, manifest.json cut in half: reject (bad JSON)",
  dockerDiffIdMismatch:
    "docker-archive, config diff_ids[-1] is not the sha256 of the last layer tar (config renamed " +
    "to its new digest): reject after reading the layer",
  dockerOuterTarTraversal:
    "docker-archive plus an extra member ../../../tmp/berth-fixture-escape: never write it " +
    "outside (rejecting the archive is fine)",
  dockerTruncatedTar:
    "docker-archive cut in the middle of the largest layer: reject (unexpected EOF)",
  ociLayerWrongDigest:
    "oci-archive, layer 0 blob changed in its gzip MTIME byte (same size, same diffID), name " +
    "kept: reject (digest mismatch)",
  ociConfigWrongDigest:
    "oci-archive, one digit of the config's `created` changed, name and size kept: reject (digest)",
  ociMissingManifest: "oci-archive, index.json names a manifest blob that is absent: reject",
  ociMissingLayer: "oci-archive, the manifest names a layer blob that is absent: reject",
  ociLayerSizeSmaller:
    "oci-archive, manifest declares layer 0 one byte smaller than the blob (digests recomputed): reject",
  ociLayerSizeLarger:
    "oci-archive, manifest declares layer 0 one byte larger than the blob (digests recomputed): reject",
  ociUnknownLayerMediaType:
    "oci-archive, layer 0 mediaType application/vnd.example.unknown (digests recomputed): reject",
  ociTruncatedTar: "oci-archive cut in the middle of its largest blob: reject (unexpected EOF)",
  ociTruncatedGzipLayer:
    "oci-archive, layer 0 is the first half of the gzip blob, with its digest and size recomputed " +
    "in the manifest: only decompression detects it, reject",
  ociZstdBomb:
    "oci-archive, one tar+zstd layer (`zstd -19`, ~65 KiB) of a tar holding 2 GiB of zeros, " +
    "correct digest, size and diffID: reject by the bound declared size x 1100",
  ociDiffIdMismatch:
    "oci-archive, config diff_ids[-1] wrong (config/manifest/index digests recomputed): reject",
  ociSchema1Manifest:
    "oci-archive whose index points at a signed schema1 manifest written by `skopeo copy " +
    "--format v2s1` (mediaType application/vnd.docker.distribution.manifest.v1+prettyjws): reject",
  ociConfigNonSha256:
    "oci-archive, config descriptor digest sha512:<hex> with the blob at blobs/sha512/<hex>: reject",
  ociMalformedIndex: "oci-archive, index.json cut in half: reject (bad JSON)",
  ociDigestTraversal: "oci-archive, index.json digest sha256:../../../../etc/passwd: reject",
};

const RECIPE = "berth-fixtures 1";
const EPOCH = "1704067200"; // 2024-01-01T00:00:00Z
const CREATED = "2024-01-01T00:00:00Z";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
const HOSTILE_SCRIPT = new URL("../scripts/fixtures/hostile.py", import.meta.url);

// ---------------------------------------------------------------------------------------------
// Processes

interface RunOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** The command line shown in errors (default: cmd and args). */
  label?: string;
}

async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    env: opts.env,
    cwd: opts.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(
      `${opts.label ?? [cmd, ...args].join(" ")} exited ${out.code}: ` +
        dec.decode(out.stderr).trim().slice(-2000),
    );
  }
  return dec.decode(out.stdout);
}

/** Runs skopeo/podman in a private mount namespace so they keep nothing under /var/lib. */
const ISOLATE = "if [ -d /var/lib/containers ]; then " +
  "mount -t tmpfs -o mode=0700 berth-fixtures /var/lib/containers; " +
  'else mount -t tmpfs -o mode=0755 berth-fixtures /var/lib; fi 2>/dev/null; exec "$@"';

function isolated(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  if (Deno.uid() !== 0) return run(cmd, args, opts);
  return run(
    "unshare",
    ["-m", "--propagation", "private", "sh", "-c", ISOLATE, "sh", cmd, ...args],
    { label: [cmd, ...args].join(" "), ...opts },
  );
}

function skopeo(tmp: string, args: string[]): Promise<string> {
  return isolated("skopeo", ["--insecure-policy", "--tmpdir", tmp, ...args], {
    env: { TMPDIR: tmp },
  });
}

/**
 * Runs `skopeo --insecure-policy ARGS` the way the fixtures are made (private mount namespace, so
 * its blob-info cache stays off the host) and returns its stdout; throws with its stderr on failure.
 */
export function runSkopeo(args: string[]): Promise<string> {
  return skopeo("/var/tmp", args);
}

function umoci(args: string[]): Promise<string> {
  return run("umoci", args);
}

// ---------------------------------------------------------------------------------------------
// Files

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function readJson<T = unknown>(path: string): Promise<T> {
  return JSON.parse(await Deno.readTextFile(path)) as T;
}

function sha256(data: Uint8Array | string): string {
  return "sha256:" + createHash("sha256").update(data).digest("hex");
}

async function writeFile(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  if (typeof data === "string") await Deno.writeTextFile(path, data, { mode });
  else await Deno.writeFile(path, data, { mode });
  await Deno.chmod(path, mode);
}

async function chown(path: string, uid: number, gid: number): Promise<void> {
  try {
    await Deno.chown(path, uid, gid);
  } catch (e) {
    if (!(e instanceof Deno.errors.PermissionDenied)) throw e;
  }
}

/** Sets every mtime under `dir` (symlinks included) to {@linkcode EPOCH}. */
async function pinMtimes(dir: string): Promise<void> {
  await run("find", [dir, "-exec", "touch", "-h", "-d", "@" + EPOCH, "{}", "+"]);
}

// ---------------------------------------------------------------------------------------------
// busybox rootfs

/**
 * Writes a minimal busybox root filesystem into `dir` (created if missing): `/bin/busybox` (a copy
 * of the host's static `/bin/busybox`), one relative symlink per applet at the place
 * `busybox --list-full` names (`/bin/sh`, `/bin/ls`, `/usr/bin/id`, `/sbin/ip`, …),
 * `/etc/passwd` (root 0, app 1000, nobody 65534), `/etc/group` (root 0, staff 50 and extra 1001
 * with member app, app 1000, nogroup 65534), `/etc/motd`, `/tmp` (1777), `/root` (0700),
 * `/home/app` (owned by 1000:1000). No `/proc`, `/sys`, `/dev`: the runtime creates mount points.
 * Ownership is only set when running as root.
 */
export async function busyboxRootfs(dir: string): Promise<void> {
  for (const d of ["bin", "sbin", "usr/bin", "usr/sbin", "etc", "home", "var"]) {
    await Deno.mkdir(`${dir}/${d}`, { recursive: true, mode: 0o755 });
  }
  await Deno.mkdir(`${dir}/tmp`, { recursive: true });
  await Deno.chmod(`${dir}/tmp`, 0o1777);
  await Deno.mkdir(`${dir}/root`, { recursive: true });
  await Deno.chmod(`${dir}/root`, 0o700);
  await Deno.mkdir(`${dir}/home/app`, { recursive: true });
  await chown(`${dir}/home/app`, 1000, 1000);

  await Deno.copyFile("/bin/busybox", `${dir}/bin/busybox`);
  await Deno.chmod(`${dir}/bin/busybox`, 0o755);
  const applets = (await run("/bin/busybox", ["--list-full"])).split("\n").filter(Boolean);
  for (const rel of applets) {
    if (rel === "bin/busybox" || !/^(bin|sbin|usr\/bin|usr\/sbin)\/[^/]+$/.test(rel)) continue;
    const depth = rel.split("/").length - 2;
    const target = depth === 0 && rel.startsWith("bin/")
      ? "busybox"
      : "../".repeat(depth + 1).slice(0, -1) + "/bin/busybox";
    const link = `${dir}/${rel}`;
    if (await exists(link)) await Deno.remove(link);
    await Deno.symlink(target, link);
  }

  await writeFile(
    `${dir}/etc/passwd`,
    "root:x:0:0:root:/root:/bin/sh\n" +
      "app:x:1000:1000:app:/home/app:/bin/sh\n" +
      "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
  );
  await writeFile(
    `${dir}/etc/group`,
    "root:x:0:\nstaff:x:50:app\napp:x:1000:\nextra:x:1001:app\nnogroup:x:65534:\n",
  );
  await writeFile(`${dir}/etc/motd`, "berth fixture layer 1\n");
}

// ---------------------------------------------------------------------------------------------
// Reading what the tools wrote

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
  annotations?: Record<string, string>;
}

function platformOf(d: Descriptor): string {
  const p = d.platform;
  if (!p) return "";
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

/** Reads an OCI layout dir: one entry per index.json manifest (lists expanded per platform). */
async function expectFromLayout(dir: string): Promise<ExpectedImage[]> {
  const blob = (digest: string) => `${dir}/blobs/${digest.replace(":", "/")}`;
  const index = await readJson<{ manifests: Descriptor[] }>(`${dir}/index.json`);
  const refs = index.manifests
    .map((m) => m.annotations?.["org.opencontainers.image.ref.name"])
    .filter((r): r is string => !!r);
  const out: ExpectedImage[] = [];
  const image = async (d: Descriptor, extra: Partial<ExpectedImage>) => {
    const m = await readJson<{ config: Descriptor; layers: Descriptor[] }>(blob(d.digest));
    const c = await readJson<{ rootfs: { diff_ids: string[] } }>(blob(m.config.digest));
    out.push({
      configDigest: m.config.digest,
      layerDigests: m.layers.map((l) => l.digest),
      diffIDs: c.rootfs.diff_ids,
      manifestDigest: d.digest,
      repoTags: refs,
      ...extra,
    });
  };
  for (const d of index.manifests) {
    if (d.mediaType === OCI_INDEX || d.mediaType === DOCKER_LIST) {
      const list = await readJson<{ manifests: Descriptor[] }>(blob(d.digest));
      for (const m of list.manifests) {
        await image(m, { indexDigest: d.digest, platform: platformOf(m) });
      }
    } else {
      await image(d, {});
    }
  }
  return out;
}

/** Reads an extracted docker-archive: one entry per manifest.json item. */
async function expectFromDockerDir(dir: string): Promise<ExpectedImage[]> {
  const items = await readJson<{ Config: string; RepoTags: string[] | null; Layers: string[] }[]>(
    `${dir}/manifest.json`,
  );
  const name = (p: string) => "sha256:" + p.split("/").pop()!.replace(/\.(tar|json)$/, "");
  const out: ExpectedImage[] = [];
  for (const it of items) {
    const c = await readJson<{ rootfs: { diff_ids: string[] } }>(`${dir}/${it.Config}`);
    out.push({
      configDigest: name(it.Config),
      layerDigests: it.Layers.map(name),
      diffIDs: c.rootfs.diff_ids,
      repoTags: it.RepoTags ?? [],
    });
  }
  return out;
}

async function extract(archive: string, into: string): Promise<string> {
  await Deno.mkdir(into, { recursive: true });
  await run("tar", ["-xf", archive, "-C", into]);
  return into;
}

// ---------------------------------------------------------------------------------------------
// The build

class Builder {
  readonly work: string;
  readonly tmp: string;
  expected: Record<string, ExpectedImage> = {};

  constructor(readonly out: string) {
    this.work = `${out}/work`;
    this.tmp = `${out}/work/tmp`;
  }

  skopeo(args: string[]): Promise<string> {
    return skopeo(this.tmp, args);
  }

  /** Base image: umoci layout with two layers. */
  async base(layout: string): Promise<void> {
    const bundle = `${this.work}/bundle-base`;
    await umoci(["init", "--layout", layout]);
    await umoci(["new", "--image", `${layout}:latest`]);
    await umoci(["unpack", "--image", `${layout}:latest`, bundle]);
    const rootfs = `${bundle}/rootfs`;
    await busyboxRootfs(rootfs);
    await pinMtimes(rootfs);
    await this.repack(layout, "latest", bundle, "busybox rootfs (berth fixtures)");

    const share = `${rootfs}/usr/share/berth`;
    await Deno.mkdir(share, { recursive: true });
    await writeFile(`${rootfs}/etc/motd`, IMAGE_FACTS.motd);
    const app = IMAGE_FACTS.appFile;
    await writeFile(rootfs + app.path, app.content, 0o640);
    await chown(rootfs + app.path, app.uid, app.gid);
    const [ha, hb] = IMAGE_FACTS.hardlinks;
    await writeFile(rootfs + ha, "one inode, two names\n");
    await Deno.link(rootfs + ha, rootfs + hb);
    const long = rootfs + IMAGE_FACTS.longPath;
    await Deno.mkdir(long.slice(0, long.lastIndexOf("/")), { recursive: true });
    await writeFile(long, "a path longer than 100 bytes\n");
    await Deno.symlink(IMAGE_FACTS.longSymlink.target, rootfs + IMAGE_FACTS.longSymlink.path);
    await pinMtimes(rootfs);
    await this.repack(layout, "latest", bundle, "layer 2 (berth fixtures)");

    await umoci([
      "config",
      "--image",
      `${layout}:latest`,
      "--config.cmd",
      "sh",
      "--config.env",
      IMAGE_FACTS.env[0],
      "--architecture",
      IMAGE_FACTS.architecture,
      "--os",
      IMAGE_FACTS.os,
      "--created",
      CREATED,
      "--author",
      "berth fixtures",
      "--no-history",
    ]);
    await umoci(["gc", "--layout", layout]);
  }

  async repack(layout: string, tag: string, bundle: string, what: string): Promise<void> {
    await umoci([
      "repack",
      "--refresh-bundle",
      "--image",
      `${layout}:${tag}`,
      "--history.created",
      CREATED,
      "--history.created_by",
      what,
      bundle,
    ]);
  }

  /** Whiteout image: a copy of the base layout plus three layers. */
  async whiteout(base: string, layout: string): Promise<void> {
    await run("cp", ["-a", base, layout]);
    const bundle = `${this.work}/bundle-wh`;
    await umoci(["unpack", "--image", `${layout}:latest`, bundle]);
    const wh = `${bundle}/rootfs/wh`;
    await Deno.mkdir(`${wh}/dir-to-delete`, { recursive: true });
    await Deno.mkdir(`${wh}/replaced/sub`, { recursive: true });
    await writeFile(`${wh}/file-to-delete`, "delete me\n");
    await writeFile(`${wh}/dir-to-delete/inner`, "inner\n");
    await writeFile(`${wh}/replaced/old1`, "old1\n");
    await writeFile(`${wh}/replaced/sub/old3`, "old3\n");
    await writeFile(`${wh}/kept`, "kept\n");
    await pinMtimes(`${bundle}/rootfs`);
    await this.repack(layout, "latest", bundle, "whiteout setup");
    await Deno.remove(`${wh}/file-to-delete`);
    await Deno.remove(`${wh}/dir-to-delete`, { recursive: true });
    await pinMtimes(`${bundle}/rootfs`);
    await this.repack(layout, "latest", bundle, "delete a file and a directory");

    const stage = `${this.work}/opaque`;
    await Deno.mkdir(`${stage}/wh/replaced`, { recursive: true });
    await writeFile(`${stage}/wh/replaced/.wh..wh..opq`, "");
    await writeFile(`${stage}/wh/replaced/new`, "new\n");
    await pinMtimes(stage);
    const layer = `${this.work}/opaque.tar`;
    await run("tar", [
      "-C",
      stage,
      "--sort=name",
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      "--format=gnu",
      "-cf",
      layer,
      "wh",
    ]);
    await umoci([
      "raw",
      "add-layer",
      "--image",
      `${layout}:latest`,
      "--history.created",
      CREATED,
      "--history.created_by",
      "opaque whiteout (GNU tar)",
      layer,
    ]);
    await umoci(["gc", "--layout", layout]);
  }

  /** One umoci layout with tags amd64, arm64, armv7: busybox + /etc/berth-arch. */
  async perArch(base: string, layout: string): Promise<Record<string, string>> {
    await run("cp", ["-a", base, layout]);
    const tags: Record<string, [string, string | undefined]> = {
      amd64: ["amd64", undefined],
      arm64: ["arm64", undefined],
      armv7: ["arm", "v7"],
    };
    for (const [tag, [arch, variant]] of Object.entries(tags)) {
      await umoci(["tag", "--image", `${layout}:latest`, tag]);
      const bundle = `${this.work}/bundle-${tag}`;
      await umoci(["unpack", "--image", `${layout}:${tag}`, bundle]);
      await writeFile(
        `${bundle}/rootfs/etc/berth-arch`,
        `${arch}${variant ? "/" + variant : ""}\n`,
      );
      await pinMtimes(`${bundle}/rootfs`);
      await this.repack(layout, tag, bundle, `arch marker ${tag}`);
      await umoci([
        "config",
        "--image",
        `${layout}:${tag}`,
        "--architecture",
        arch,
        "--created",
        CREATED,
        "--no-history",
      ]);
    }
    await umoci(["rm", "--image", `${layout}:latest`]);
    await umoci(["gc", "--layout", layout]);
    return Object.fromEntries(
      Object.entries(tags).map(([t, [a, v]]) => [t, ["linux", a, v].filter(Boolean).join("/")]),
    );
  }

  /** Fallback multi-arch: an index written by this harness, copied by skopeo. */
  async harnessIndex(layout: string, platforms: Record<string, string>, archive: string) {
    const index = await readJson<{ manifests: Descriptor[] }>(`${layout}/index.json`);
    const manifests = index.manifests.map((d) => {
      const [os, architecture, variant] =
        platforms[d.annotations!["org.opencontainers.image.ref.name"]]
          .split("/");
      return {
        mediaType: d.mediaType,
        digest: d.digest,
        size: d.size,
        platform: variant ? { architecture, os, variant } : { architecture, os },
      };
    });
    const raw = new TextEncoder().encode(
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }),
    );
    const digest = sha256(raw);
    await Deno.writeFile(`${layout}/blobs/sha256/${digest.slice(7)}`, raw);
    index.manifests.push({
      mediaType: OCI_INDEX,
      digest,
      size: raw.length,
      annotations: { "org.opencontainers.image.ref.name": "multi" },
    });
    await Deno.writeTextFile(`${layout}/index.json`, JSON.stringify(index));
    await this.skopeo([
      "copy",
      "-q",
      "--all",
      `oci:${layout}:multi`,
      `oci-archive:${archive}:latest`,
    ]);
  }

  /** Everything podman makes. Returns the relative paths made, or throws. */
  async podman(
    dockerArchive: string,
    whiteoutArchive: string,
    perArch: string,
    platforms: Record<string, string>,
  ): Promise<Record<string, string>> {
    const p = `${this.work}/podman`;
    await Deno.mkdir(`${p}/tmp`, { recursive: true });
    // podman refuses a runroot longer than 50 characters: a short transient dir in /tmp.
    const runroot = await Deno.makeTempDir({ dir: "/tmp", prefix: "berth-podman-" });
    await writeFile(
      `${p}/storage.conf`,
      `[storage]\ndriver = "vfs"\nrunroot = "${runroot}"\ngraphroot = "${p}/root"\n`,
    );
    await writeFile(
      `${p}/containers.conf`,
      '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "runc"\n' +
        'lock_type = "file"\n',
    );
    const env = {
      CONTAINERS_CONF: `${p}/containers.conf`,
      CONTAINERS_STORAGE_CONF: `${p}/storage.conf`,
      TMPDIR: this.tmp,
    };
    const podman = (args: string[]) =>
      isolated("podman", [
        "--root",
        `${p}/root`,
        "--runroot",
        runroot,
        "--tmpdir",
        `${p}/tmp`,
        "--storage-driver",
        "vfs",
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "file",
        "--runtime",
        "runc",
        ...args,
      ], { env });
    try {
      const made: Record<string, string> = {};
      const busybox = "docker.io/fixture/busybox:latest";
      await podman(["load", "-q", "-i", dockerArchive]);
      await podman([
        "save",
        "-q",
        "--format",
        "docker-archive",
        "-o",
        `${this.out}/podman-docker.tar`,
        busybox,
      ]);
      made.podmanDockerArchive = "podman-docker.tar";
      await podman([
        "save",
        "-q",
        "--format",
        "oci-archive",
        "-o",
        `${this.out}/podman-oci.tar`,
        busybox,
      ]);
      made.podmanOciArchive = "podman-oci.tar";
      await podman([
        "save",
        "-q",
        "--uncompressed",
        "--format",
        "oci-archive",
        "-o",
        `${this.out}/podman-oci-mislabeled.tar`,
        busybox,
      ]);
      made.podmanMislabeledOciArchive = "podman-oci-mislabeled.tar";

      const loaded = await podman(["load", "-q", "-i", whiteoutArchive]);
      const name = loaded.match(/Loaded image(?:\(s\))?: (\S+)/)?.[1];
      if (!name) throw new Error(`podman load printed no image name: ${loaded}`);
      await podman(["tag", name, "fixture/whiteout:latest"]);
      await podman([
        "save",
        "-q",
        "-m",
        "-o",
        `${this.out}/podman-multi.tar`,
        busybox,
        "localhost/fixture/whiteout:latest",
      ]);
      made.podmanMultiImage = "podman-multi.tar";

      const list = "localhost/fixture/multi:latest";
      await podman(["manifest", "create", list]);
      for (const [tag, platform] of Object.entries(platforms)) {
        const [, arch, variant] = platform.split("/");
        await podman([
          "manifest",
          "add",
          "--os",
          "linux",
          "--arch",
          arch,
          ...(variant ? ["--variant", variant] : []),
          list,
          `oci:${perArch}:${tag}`,
        ]);
      }
      await podman([
        "manifest",
        "push",
        "-q",
        "--all",
        list,
        `oci-archive:${this.out}/multiarch.tar:latest`,
      ]);
      made.multiArchOciArchive = "multiarch.tar";
      await podman([
        "manifest",
        "push",
        "-q",
        "--all",
        "--format",
        "v2s2",
        list,
        `oci-archive:${this.out}/manifest-list-v2s2.tar:latest`,
      ]);
      made.manifestListDockerArchive = "manifest-list-v2s2.tar";
      return made;
    } finally {
      await Deno.remove(p, { recursive: true }).catch(() => {});
      await Deno.remove(runroot, { recursive: true }).catch(() => {});
    }
  }

  /** docker >= 25 `docker save` layout, from skopeo's uncompressed `dir:` copy. */
  async docker25(uncompressedDir: string, dockerDir: string, archive: string): Promise<void> {
    const root = `${this.work}/docker25`;
    const blobs = `${root}/blobs/sha256`;
    await Deno.mkdir(blobs, { recursive: true });
    const dirManifest = await readJson<{ config: Descriptor; layers: Descriptor[] }>(
      `${uncompressedDir}/manifest.json`,
    );
    const copy = (d: Descriptor) =>
      Deno.copyFile(`${uncompressedDir}/${d.digest.slice(7)}`, `${blobs}/${d.digest.slice(7)}`);
    await copy(dirManifest.config);
    for (const l of dirManifest.layers) await copy(l);
    const config = await readJson<{ architecture: string; os: string }>(
      `${uncompressedDir}/${dirManifest.config.digest.slice(7)}`,
    );
    const manifest = {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        digest: dirManifest.config.digest,
        size: dirManifest.config.size,
      },
      layers: dirManifest.layers.map((l) => ({
        mediaType: "application/vnd.oci.image.layer.v1.tar",
        digest: l.digest,
        size: l.size,
      })),
    };
    const raw = new TextEncoder().encode(JSON.stringify(manifest));
    const mdigest = sha256(raw);
    await Deno.writeFile(`${blobs}/${mdigest.slice(7)}`, raw);
    // Legacy v1 layer JSON, unreferenced, as docker 25 still writes it (content from skopeo's).
    for await (const e of Deno.readDir(dockerDir)) {
      if (!e.isDirectory) continue;
      const v1 = await Deno.readFile(`${dockerDir}/${e.name}/json`);
      await Deno.writeFile(`${blobs}/${sha256(v1).slice(7)}`, v1);
    }
    const index = {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{
        mediaType: manifest.mediaType,
        digest: mdigest,
        size: raw.length,
        annotations: {
          "io.containerd.image.name": "docker.io/fixture/busybox:latest",
          "org.opencontainers.image.ref.name": "latest",
        },
        platform: { architecture: config.architecture, os: config.os },
      }],
    };
    const p = (d: string) => `blobs/sha256/${d.slice(7)}`;
    const items = [{
      Config: p(dirManifest.config.digest),
      RepoTags: [IMAGE_FACTS.dockerTag],
      Layers: dirManifest.layers.map((l) => p(l.digest)),
    }];
    const last = dirManifest.layers[dirManifest.layers.length - 1].digest.slice(7);
    await Deno.writeTextFile(`${root}/index.json`, JSON.stringify(index));
    await Deno.writeTextFile(`${root}/manifest.json`, JSON.stringify(items) + "\n");
    await Deno.writeTextFile(
      `${root}/repositories`,
      JSON.stringify({ "fixture/busybox": { latest: last } }) + "\n",
    );
    await Deno.writeTextFile(`${root}/oci-layout`, '{"imageLayoutVersion":"1.0.0"}');
    await run("tar", [
      "-C",
      root,
      "--sort=name",
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      "--mtime=@0",
      "-cf",
      archive,
      "blobs",
      "index.json",
      "manifest.json",
      "oci-layout",
      "repositories",
    ]);
  }

  async expectArchive(key: string, archive: string, kind: "oci" | "docker" | "both") {
    const dir = await extract(archive, `${this.work}/inspect/${key}`);
    const images = kind === "docker" ? await expectFromDockerDir(dir) : await expectFromLayout(dir);
    if (kind === "both") {
      const docker = await expectFromDockerDir(dir);
      images[0].repoTags = docker[0].repoTags;
    }
    this.addExpected(key, images);
  }

  addExpected(key: string, images: ExpectedImage[]) {
    images.forEach((img, i) => {
      if (i === 0) this.expected[key] = img;
      if (img.platform) this.expected[`${key}:${img.platform}`] = img;
      else if (i > 0) this.expected[`${key}[${i}]`] = img;
    });
  }

  async build(): Promise<Omit<Fixtures, "dir" | "buildSeconds">> {
    await Deno.mkdir(this.tmp, { recursive: true });
    const o = this.out;
    const layout = `${o}/oci-layout`;
    await this.base(layout);
    this.addExpected("ociLayout", await expectFromLayout(layout));
    const src = `oci:${layout}:latest`;

    const files = {
      ociArchive: "oci.tar",
      dockerArchive: "docker.tar",
      zstdOciArchive: "oci-zstd.tar",
      uncompressedOciArchive: "oci-uncompressed.tar",
      whiteoutOciArchive: "oci-whiteout.tar",
      docker25Archive: "docker25.tar",
      multiArchOciArchive: "multiarch.tar",
    };
    const uncompressedDir = `${this.work}/uncompressed-dir`;
    const whLayout = `${this.work}/whiteout-layout`;
    const archLayout = `${this.work}/arch-layout`;
    let platforms: Record<string, string> = {};
    await Promise.all([
      this.skopeo(["copy", "-q", src, `oci-archive:${o}/${files.ociArchive}:latest`]),
      this.skopeo([
        "copy",
        "-q",
        src,
        `docker-archive:${o}/${files.dockerArchive}:${IMAGE_FACTS.dockerTag}`,
      ]),
      this.skopeo([
        "copy",
        "-q",
        "--dest-compress-format",
        "zstd",
        src,
        `oci-archive:${o}/${files.zstdOciArchive}:latest`,
      ]),
      this.skopeo(["copy", "-q", "--dest-decompress", src, `dir:${uncompressedDir}`]),
      this.whiteout(layout, whLayout),
      this.perArch(layout, archLayout).then((p) => platforms = p),
    ]);
    await Promise.all([
      this.skopeo([
        "copy",
        "-q",
        "--dest-oci-accept-uncompressed-layers",
        `dir:${uncompressedDir}`,
        `oci-archive:${o}/${files.uncompressedOciArchive}:latest`,
      ]),
      this.skopeo([
        "copy",
        "-q",
        `oci:${whLayout}:latest`,
        `oci-archive:${o}/${files.whiteoutOciArchive}:latest`,
      ]),
    ]);
    const dockerDir = await extract(
      `${o}/${files.dockerArchive}`,
      `${this.work}/inspect/dockerArchive`,
    );
    await this.docker25(uncompressedDir, dockerDir, `${o}/${files.docker25Archive}`);

    let podmanFiles: Record<string, string> = {};
    let podmanError: string | undefined;
    try {
      podmanFiles = await this.podman(
        `${o}/${files.dockerArchive}`,
        `${o}/${files.whiteoutOciArchive}`,
        archLayout,
        platforms,
      );
    } catch (e) {
      podmanError = e instanceof Error ? e.message : String(e);
    }
    let multiArchSource: "podman" | "harness" = "podman";
    if (!podmanFiles.multiArchOciArchive) {
      multiArchSource = "harness";
      await this.harnessIndex(archLayout, platforms, `${o}/${files.multiArchOciArchive}`);
    }

    const all: Record<string, string> = { ...files, ...podmanFiles };
    const kinds: Record<string, "oci" | "docker" | "both"> = {
      dockerArchive: "docker",
      podmanDockerArchive: "docker",
      podmanMultiImage: "docker",
      docker25Archive: "both",
    };
    for (const [key, file] of Object.entries(all)) {
      await this.expectArchive(key, `${o}/${file}`, kinds[key] ?? "oci");
    }
    await Deno.remove(this.work, { recursive: true });
    const rel: Record<string, string> = { ociLayout: "oci-layout", ...all };
    return {
      ...(rel as unknown as Omit<
        Fixtures,
        "dir" | "buildSeconds" | "expected" | "multiArchSource"
      >),
      multiArchSource,
      ...(podmanError ? { podmanError } : {}),
      expected: this.expected,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Cache

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

async function cacheDir(): Promise<string> {
  const self = await Deno.readTextFile(new URL(import.meta.url));
  const script = await Deno.readTextFile(HOSTILE_SCRIPT);
  const hash = sha256(RECIPE + "\0" + self + "\0" + script).slice(7, 23);
  const base = Deno.env.get("BERTH_FIXTURES_DIR") ?? "/var/tmp";
  return `${base}/berth-fixtures-${hash}`;
}

/**
 * Runs `make(tmp)` to create `final` unless it already holds `marker`; builds into a temporary
 * sibling and renames it into place under an exclusive lock on `<final>.lock`.
 */
async function buildOnce(final: string, marker: string, make: (tmp: string) => Promise<void>) {
  if (await exists(`${final}/${marker}`)) return;
  const parent = final.slice(0, final.lastIndexOf("/"));
  await Deno.mkdir(parent, { recursive: true });
  const lock = await Deno.open(`${final}.lock`, { create: true, write: true });
  try {
    await lock.lock(true);
    if (await exists(`${final}/${marker}`)) return;
    const name = final.slice(parent.length + 1);
    for await (const e of Deno.readDir(parent)) {
      const m = e.name.startsWith(name + ".tmp-") && e.name.slice(name.length + 5).match(/^(\d+)-/);
      if (m && !(await exists(`/proc/${m[1]}`))) {
        await Deno.remove(`${parent}/${e.name}`, { recursive: true }).catch(() => {});
      }
    }
    const tmp = `${final}.tmp-${Deno.pid}-${Date.now()}`;
    await Deno.mkdir(tmp, { recursive: true });
    try {
      await make(tmp);
      if (await exists(final)) {
        const stale = `${final}.tmp-${Deno.pid}-stale-${Date.now()}`;
        await Deno.rename(final, stale);
        await Deno.remove(stale, { recursive: true }).catch(() => {});
      }
      await Deno.rename(tmp, final);
    } catch (e) {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
      if (!(await exists(`${final}/${marker}`))) throw e;
    }
  } finally {
    lock.close();
  }
}

/** Removes caches of other recipes not touched for a day (never the one in use). */
async function removeOldCaches(current: string): Promise<void> {
  const parent = current.slice(0, current.lastIndexOf("/"));
  const dayAgo = Date.now() - 24 * 3600 * 1000;
  for await (const e of Deno.readDir(parent)) {
    const path = `${parent}/${e.name}`;
    if (!e.isDirectory || !/^berth-fixtures-[0-9a-f]{16}$/.test(e.name) || path === current) {
      continue;
    }
    const st = await Deno.stat(path).catch(() => null);
    if (st?.mtime && st.mtime.getTime() < dayAgo) {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    }
  }
}

let pending: Promise<Fixtures> | undefined;

/**
 * Builds the fixture images once (5 to 10 s on 2 cores) into the cache dir and returns their
 * paths. Later calls, in this or another process, read `fixtures.json` from the cache. Files are
 * shared: treat them as read-only.
 */
export function fixtures(): Promise<Fixtures> {
  pending ??= (async () => {
    const dir = await cacheDir();
    const t0 = performance.now();
    let built = false;
    await buildOnce(`${dir}/images`, "fixtures.json", async (tmp) => {
      built = true;
      await removeOldCaches(dir);
      const data = await new Builder(tmp).build();
      await Deno.writeTextFile(`${tmp}/fixtures.json`, JSON.stringify(data, null, 1));
    });
    const data = await readJson<Record<string, unknown>>(`${dir}/images/fixtures.json`);
    const now = new Date();
    await Deno.utime(dir, now, now).catch(() => {}); // in use: keeps removeOldCaches away
    for (const k of PATH_KEYS) {
      if (typeof data[k] === "string") data[k] = `${dir}/images/${data[k]}`;
    }
    const buildSeconds = built ? Math.round(performance.now() - t0) / 1000 : 0;
    return { ...data, dir, buildSeconds } as unknown as Fixtures;
  })();
  pending.catch(() => pending = undefined);
  return pending;
}

/**
 * Writes the hostile archives (see {@linkcode HOSTILE_NOTES} for each) into `dir` and returns
 * `{name: path}`. They are made once by `scripts/fixtures/hostile.py` (python3 tarfile/hashlib and
 * `zstd`) from {@linkcode Fixtures.dockerArchive}, {@linkcode Fixtures.ociArchive} and a schema1
 * manifest written by `skopeo copy --format v2s1`, cached beside the fixtures (5 to 7 s, 95 MB),
 * and hard-linked (or copied) into `dir`: do not modify them.
 */
export async function hostileArchives(dir: string): Promise<Record<string, string>> {
  const fx = await fixtures();
  const cache = `${fx.dir}/hostile`;
  await buildOnce(cache, "hostile.json", async (tmp) => {
    const work = `${tmp}/work`;
    await Deno.mkdir(`${work}/tmp`, { recursive: true });
    await skopeo(`${work}/tmp`, [
      "copy",
      "-q",
      "--format",
      "v2s1",
      `oci:${fx.ociLayout}:latest`,
      `dir:${work}/schema1`,
    ]);
    const out = await run("python3", [
      decodeURIComponent(HOSTILE_SCRIPT.pathname),
      fx.dockerArchive,
      fx.ociArchive,
      tmp,
      `${work}/schema1/manifest.json`,
    ]);
    await Deno.remove(work, { recursive: true });
    const made = JSON.parse(out) as Record<string, string>;
    const rel = Object.fromEntries(
      Object.entries(made).map(([k, p]) => [k, p.slice(tmp.length + 1)]),
    );
    await Deno.writeTextFile(`${tmp}/hostile.json`, JSON.stringify(rel, null, 1));
  });
  const rel = await readJson<Record<string, string>>(`${cache}/hostile.json`);
  await Deno.mkdir(dir, { recursive: true });
  const res: Record<string, string> = {};
  for (const [name, file] of Object.entries(rel)) {
    const to = `${dir}/${file}`;
    await Deno.remove(to).catch(() => {});
    try {
      await Deno.link(`${cache}/${file}`, to);
    } catch {
      await Deno.copyFile(`${cache}/${file}`, to);
    }
    res[name] = to;
  }
  return res;
}
