/**
 * The benchmark image: a Debian bookworm **minbase** rootfs made by `debootstrap`, packed into an
 * image by real tools (umoci, skopeo), never by berth.
 *
 * {@linkcode debianImage} builds it once into `/var/tmp/berth-bench/debian-bookworm-minbase-<hash
 * of RECIPE>` (or under `$BERTH_BENCH_DIR`): the build goes into a temporary sibling directory
 * that is renamed into place under an exclusive lock file, so concurrent runs neither race nor build
 * twice, and a missing or half-built cache is rebuilt on the next call.
 *
 * Steps:
 * 1. `debootstrap --variant=minbase bookworm rootfs http://deb.debian.org/debian`, in a private
 *    mount namespace (its /proc and /sys mounts never reach the host). Then cleaned as Debian's
 *    official images are: `/dev` emptied (a runtime mounts its own), the downloaded `.deb` files,
 *    apt lists and apt's binary caches removed (about 115 MiB and 6,700 entries are left).
 * 2. GNU tar packs the rootfs (`--sort=name --numeric-owner --xattrs`, names without `./`):
 *    `rootfs.tar`.
 * 3. umoci: `init`, `new`, `raw add-layer rootfs.tar` (umoci gzips it), `config --config.cmd bash`.
 *    The gzip layer blob of that layout is kept as `layer.tar.gz` (the exact bytes the OCI archive
 *    holds, for the `tar -xzf` floor).
 * 4. `skopeo copy` to `docker-archive:debian.docker.tar:debian:bookworm-minbase` (uncompressed
 *    layer) and `oci-archive:debian.oci.tar:bookworm-minbase` (same gzip blob), in a private mount
 *    namespace with a tmpfs over /var/lib/containers so its blob-info cache stays off the host.
 *
 * ```sh
 * deno run -A scripts/make_debian_image.ts   # prints the paths as JSON
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";

/** Paths of the benchmark image files (all inside one cache directory). */
export interface DebianImage {
  /** `skopeo copy … docker-archive:<file>:debian:bookworm-minbase` (one uncompressed layer). */
  dockerArchive: string;
  /** `skopeo copy … oci-archive:<file>:bookworm-minbase` (one gzip layer, umoci's blob). */
  ociArchive: string;
  /** The rootfs as GNU tar packed it (the layer, uncompressed). */
  rootfsTar: string;
  /** The gzip layer blob as it is in the OCI archive. */
  layerGz: string;
}

/** Bump when the build below changes: its hash names the cache directory. */
const RECIPE = "debian bookworm minbase v2";
const SUITE = "bookworm";
const MIRROR = "http://deb.debian.org/debian";
const TAG = "bookworm-minbase";
const MARKER = "image.json";

const FILES = {
  dockerArchive: "debian.docker.tar",
  ociArchive: "debian.oci.tar",
  rootfsTar: "rootfs.tar",
  layerGz: "layer.tar.gz",
} as const;

const ISOLATE = "if [ -d /var/lib/containers ]; then " +
  "mount -t tmpfs -o mode=0700 berth-bench /var/lib/containers; " +
  'else mount -t tmpfs -o mode=0755 berth-bench /var/lib; fi 2>/dev/null; exec "$@"';

/**
 * Returns the benchmark image, building it first when the cache lacks it (a few minutes: the
 * download of ~60 packages from the Debian mirror dominates). Needs root.
 */
export async function debianImage(
  options: { log?: (line: string) => void } = {},
): Promise<DebianImage> {
  const log = options.log ?? ((line: string) => console.error(line));
  const dir = cacheDir();
  const paths = {
    dockerArchive: `${dir}/${FILES.dockerArchive}`,
    ociArchive: `${dir}/${FILES.ociArchive}`,
    rootfsTar: `${dir}/${FILES.rootfsTar}`,
    layerGz: `${dir}/${FILES.layerGz}`,
  };
  await buildOnce(dir, MARKER, async (tmp) => {
    log(`debian image: building into ${dir} (debootstrap, umoci, skopeo) …`);
    const t0 = performance.now();
    await build(tmp, log);
    log(`debian image: built in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  });
  return paths;
}

async function build(tmp: string, log: (line: string) => void): Promise<void> {
  if (Deno.uid() !== 0) throw new Error("building the debian image needs root (debootstrap)");
  const rootfs = `${tmp}/rootfs`;
  log(`  debootstrap --variant=minbase ${SUITE} … ${MIRROR}`);
  await run("unshare", [
    "-m",
    "--propagation",
    "private",
    "debootstrap",
    "--variant=minbase",
    SUITE,
    rootfs,
    MIRROR,
  ], { label: "debootstrap" });
  // Images ship an empty /dev (the runtime mounts one; debootstrap made device nodes) and no
  // package downloads or apt lists (what `apt-get clean` and `rm -rf /var/lib/apt/lists/*` do).
  const empty = async (dir: string, keep: (name: string) => boolean = () => false) => {
    for await (const e of Deno.readDir(`${rootfs}/${dir}`)) {
      if (!keep(e.name)) await Deno.remove(`${rootfs}/${dir}/${e.name}`, { recursive: true });
    }
  };
  await empty("dev");
  await empty("var/cache/apt/archives", (n) => n === "partial" || n === "lock");
  await empty("var/lib/apt/lists", (n) => n === "partial" || n === "lock");
  await empty("var/cache/apt", (n) => !n.endsWith(".bin"));
  const top: string[] = [];
  for await (const e of Deno.readDir(rootfs)) top.push(e.name);
  top.sort();
  log("  tar → rootfs.tar");
  await run("tar", [
    "--sort=name",
    "--numeric-owner",
    "--xattrs",
    "--xattrs-include=*",
    "-C",
    rootfs,
    "-cf",
    `${tmp}/${FILES.rootfsTar}`,
    ...top,
  ]);
  await Deno.remove(rootfs, { recursive: true });

  log("  umoci init/new/raw add-layer/config");
  const layout = `${tmp}/oci`;
  const image = `${layout}:${TAG}`;
  await run("umoci", ["init", "--layout", layout]);
  await run("umoci", ["new", "--image", image]);
  await run("umoci", [
    "raw",
    "add-layer",
    "--image",
    image,
    "--history.created_by",
    `debootstrap --variant=minbase ${SUITE} / ${MIRROR}`,
    `${tmp}/${FILES.rootfsTar}`,
  ]);
  await run("umoci", [
    "config",
    "--image",
    image,
    "--architecture",
    "amd64",
    "--os",
    "linux",
    "--config.env",
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "--config.cmd",
    "bash",
  ]);
  // The gzip layer: the one layer of the manifest umoci wrote.
  const index = JSON.parse(await Deno.readTextFile(`${layout}/index.json`));
  const desc = index.manifests.find((m: { annotations?: Record<string, string> }) =>
    m.annotations?.["org.opencontainers.image.ref.name"] === TAG
  );
  const blob = (d: string) => `${layout}/blobs/${d.replace(":", "/")}`;
  const manifest = JSON.parse(await Deno.readTextFile(blob(desc.digest)));
  if (manifest.layers.length !== 1) throw new Error("expected one layer from umoci");
  await Deno.copyFile(blob(manifest.layers[0].digest), `${tmp}/${FILES.layerGz}`);

  log("  skopeo copy → docker-archive, oci-archive");
  await Deno.mkdir(`${tmp}/skopeo-tmp`);
  const skopeo = (args: string[]) =>
    run("unshare", [
      "-m",
      "--propagation",
      "private",
      "sh",
      "-c",
      ISOLATE,
      "sh",
      "skopeo",
      "--insecure-policy",
      "--tmpdir",
      `${tmp}/skopeo-tmp`,
      ...args,
    ], { label: `skopeo ${args.join(" ")}`, env: { TMPDIR: `${tmp}/skopeo-tmp` } });
  await skopeo([
    "copy",
    "-q",
    `oci:${image}`,
    `docker-archive:${tmp}/${FILES.dockerArchive}:debian:${TAG}`,
  ]);
  await skopeo(["copy", "-q", `oci:${image}`, `oci-archive:${tmp}/${FILES.ociArchive}:${TAG}`]);
  await Deno.remove(`${tmp}/skopeo-tmp`, { recursive: true });
  await Deno.remove(layout, { recursive: true });

  const sizes: Record<string, number> = {};
  for (const f of Object.values(FILES)) sizes[f] = (await Deno.stat(`${tmp}/${f}`)).size;
  await Deno.writeTextFile(
    `${tmp}/${MARKER}`,
    JSON.stringify(
      { recipe: RECIPE, suite: SUITE, mirror: MIRROR, built: new Date().toISOString(), sizes },
      null,
      2,
    ) + "\n",
  );
}

function cacheDir(): string {
  const hash = createHash("sha256").update(RECIPE).digest("hex").slice(0, 12);
  const base = Deno.env.get("BERTH_BENCH_DIR") ?? "/var/tmp/berth-bench";
  return `${base}/debian-${TAG}-${hash}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Runs `make(tmp)` to create `final` unless it already holds `marker`; builds into a temporary
 * sibling and renames it into place under an exclusive lock on `<final>.lock`. Temporary dirs of
 * dead builders are removed.
 */
async function buildOnce(
  final: string,
  marker: string,
  make: (tmp: string) => Promise<void>,
): Promise<void> {
  if (await exists(`${final}/${marker}`)) return;
  const parent = final.slice(0, final.lastIndexOf("/"));
  await Deno.mkdir(parent, { recursive: true });
  using lock = await Deno.open(`${final}.lock`, { create: true, write: true });
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
    throw e;
  }
}

async function run(
  cmd: string,
  args: string[],
  opts: { label?: string; env?: Record<string, string> } = {},
): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    env: opts.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(
      `${opts.label ?? [cmd, ...args].join(" ")} exited ${out.code}: ` +
        (dec.decode(out.stderr).trim() || dec.decode(out.stdout).trim()).slice(-2000),
    );
  }
  return dec.decode(out.stdout);
}

if (import.meta.main) {
  console.log(JSON.stringify(await debianImage(), null, 2));
}
