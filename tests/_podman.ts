/**
 * A throw-away podman (vfs storage, cgroupfs, runc, file locks and events) whose state lives in a
 * temp dir, run in a private mount namespace with a tmpfs over /var/lib/containers so it leaves
 * nothing on the host. For round trips and benchmarks against podman.
 *
 * @module
 */

/** A podman sandbox. */
export interface Podman extends AsyncDisposable {
  /** Runs `podman ARGS` in the sandbox; resolves with stdout, throws with stderr on failure. */
  run(args: string[]): Promise<string>;
  /** The argv prefix (for hyperfine-style timing): `unshare … podman --root …`. */
  argv: string[];
  /** Environment the argv needs. */
  env: Record<string, string>;
}

const ISOLATE = "if [ -d /var/lib/containers ]; then " +
  "mount -t tmpfs -o mode=0700 berth-podman /var/lib/containers; " +
  'else mount -t tmpfs -o mode=0755 berth-podman /var/lib; fi 2>/dev/null; exec "$@"';

/** Creates a sandbox; `driver` is podman's storage driver (default vfs; overlay for benchmarks). */
export async function podmanSandbox(options: { driver?: "vfs" | "overlay" } = {}): Promise<Podman> {
  const dir = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "berth-podman-" });
  // podman refuses a runroot path longer than 50 characters.
  const runroot = await Deno.makeTempDir({ dir: "/tmp", prefix: "bpr-" });
  const driver = options.driver ?? "vfs";
  await Deno.mkdir(`${dir}/tmp`);
  await Deno.writeTextFile(
    `${dir}/storage.conf`,
    `[storage]\ndriver = "${driver}"\nrunroot = "${runroot}"\ngraphroot = "${dir}/root"\n`,
  );
  await Deno.writeTextFile(
    `${dir}/containers.conf`,
    '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "runc"\n' +
      'lock_type = "file"\n',
  );
  const env = {
    CONTAINERS_CONF: `${dir}/containers.conf`,
    CONTAINERS_STORAGE_CONF: `${dir}/storage.conf`,
    TMPDIR: `${dir}/tmp`,
    PATH: Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin",
  };
  const argv = [
    "unshare",
    "-m",
    "--propagation",
    "private",
    "sh",
    "-c",
    ISOLATE,
    "sh",
    "podman",
    "--root",
    `${dir}/root`,
    "--runroot",
    runroot,
    "--tmpdir",
    `${dir}/tmp`,
    "--storage-driver",
    driver,
    "--cgroup-manager",
    "cgroupfs",
    "--events-backend",
    "file",
    "--runtime",
    "runc",
  ];
  const run = async (args: string[]) => {
    const out = await new Deno.Command(argv[0], {
      args: [...argv.slice(1), ...args],
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    if (!out.success) {
      throw new Error(
        `podman ${args.join(" ")} exited ${out.code}: ${dec.decode(out.stderr).trim()}`,
      );
    }
    return dec.decode(out.stdout);
  };
  return {
    run,
    argv,
    env,
    async [Symbol.asyncDispose]() {
      // vfs/overlay layers may hold mounts or immutable dirs: podman cleans its own first.
      await run(["system", "reset", "-f"]).catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove(runroot, { recursive: true }).catch(() => {});
    },
  };
}
