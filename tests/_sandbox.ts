/**
 * A sandbox a path-traversal bug cannot escape, for tests that feed hostile input to code running as
 * root. {@linkcode runSandboxed} runs a Deno script inside `unshare -m --propagation private`,
 * chrooted into an overlay whose lower layer is the host's `/` and whose upper and work dirs live on
 * a tmpfs private to that mount namespace: whatever the script writes outside `/tmp` lands in the
 * upper dir, never on the host. Inside: a fresh tmpfs on `/tmp` (the place for the test's target
 * dirs), a fresh procfs with `/proc/sys` and `/proc/sysrq-trigger` read-only, a read-only sysfs, and
 * a tmpfs `/dev` with only null, zero, full, random, urandom and tty (no disk can be reached through
 * it). After the script exits, the wrapper lists the upper dir, `/tmp` and `/dev` (the namespace and
 * every mount in it vanish with the last process), so a test can assert that nothing was written
 * outside its target.
 *
 * Needs root and util-linux `unshare`; tests should be skipped otherwise.
 *
 * @example
 * ```ts ignore
 * const r = await runSandboxed(new URL("./my_script.ts", import.meta.url), { args: ["x"] });
 * assert.equal(r.code, 0, r.stderr);
 * assert.deepEqual(unexpectedChanges(r, ["/tmp/target/"]), []);
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";

/** Options of {@linkcode runSandboxed}. */
export interface SandboxOptions {
  /** Arguments for the script. */
  args?: string[];
  /** Extra environment for the script (on top of the test's). */
  env?: Record<string, string>;
  /** Kill the script after this many seconds (default 300). */
  timeoutSeconds?: number;
  /** Deno flags before the script (default `["-A", "--quiet"]`). */
  denoFlags?: string[];
}

/** One path the script left, as `{ type, path }` with `find`'s type letter (f, d, l, c, b, p, s). */
export interface SandboxEntry {
  /** `find -printf %y`: f file, d dir, l symlink, c char device (an overlay whiteout in `upper`). */
  type: string;
  /** Absolute path as seen inside the sandbox. */
  path: string;
}

/** What {@linkcode runSandboxed} observed. */
export interface SandboxResult {
  /** Exit status of the script (124 on timeout). */
  code: number;
  stdout: string;
  stderr: string;
  /**
   * Everything the script changed in the host's view of `/` (outside `/tmp`, `/proc`, `/dev`,
   * `/sys`): the overlay upper dir. A deleted host file shows as a `c` entry (a whiteout).
   */
  rootChanges: SandboxEntry[];
  /** Everything under `/tmp` at the end. */
  tmpEntries: SandboxEntry[];
  /** Entries of `/dev` beyond the ones the sandbox made. */
  devChanges: SandboxEntry[];
}

/** `/dev` entries the sandbox creates. */
const DEV_NODES = ["null 1 3", "zero 1 5", "full 1 7", "random 1 8", "urandom 1 9", "tty 5 0"];
const DEV_LINKS = ["fd /proc/self/fd", "stdin /proc/self/fd/0", "stdout /proc/self/fd/1"]
  .concat(["stderr /proc/self/fd/2"]);
const DEV_EXPECTED = new Set([...DEV_NODES, ...DEV_LINKS].map((s) => `/dev/${s.split(" ")[0]}`));

const WRAPPER = `
set -eu
S=$1; REPORT=$2; LIMIT=$3; BIND=$4; shift 4
mount -t tmpfs -o size=4g,mode=0700 berth-sandbox "$S"
mkdir "$S/upper" "$S/work" "$S/root"
mount -t overlay berth-sandbox -o "lowerdir=/,upperdir=$S/upper,workdir=$S/work" "$S/root"
R=$S/root
mount -t proc proc "$R/proc"
mount --bind "$R/proc/sys" "$R/proc/sys"
mount -o remount,bind,ro "$R/proc/sys"
if [ -e "$R/proc/sysrq-trigger" ]; then
  mount --bind "$R/proc/sysrq-trigger" "$R/proc/sysrq-trigger"
  mount -o remount,bind,ro "$R/proc/sysrq-trigger"
fi
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys" 2>/dev/null || true
mount -t tmpfs -o mode=1777,size=4g berth-sandbox-tmp "$R/tmp"
if [ -n "$BIND" ]; then
  # The checkout lives under /tmp, which the fresh tmpfs hides: show it again, read-only.
  mkdir -p "$R$BIND"
  mount --bind "$BIND" "$R$BIND"
  mount -o remount,bind,ro "$R$BIND"
fi
mount -t tmpfs -o mode=0755,size=1m berth-sandbox-dev "$R/dev"
${
  DEV_NODES.map((n) =>
    `mknod -m 666 "$R/dev/${n.split(" ")[0]}" c ${n.split(" ").slice(1).join(" ")}`
  ).join("\n")
}
${DEV_LINKS.map((l) => `ln -s ${l.split(" ")[1]} "$R/dev/${l.split(" ")[0]}"`).join("\n")}
set +e
timeout -k 5 "$LIMIT" chroot "$R" "$@"
code=$?
(cd "$S/upper" && find . -mindepth 1 -printf '%y /%P\\n') > "$REPORT.upper"
(cd "$R/tmp" && find . -xdev -mindepth 1 -printf '%y /tmp/%P\\n') > "$REPORT.tmp"
(cd "$R/dev" && find . -mindepth 1 -printf '%y /dev/%P\\n') > "$REPORT.dev"
exit $code
`;

function parseListing(text: string): SandboxEntry[] {
  return text.split("\n").filter(Boolean).map((line) => ({
    type: line[0],
    path: line.slice(2),
  }));
}

/** Runs `script` (a path or file URL) with `deno run` inside the sandbox; see the module doc. */
export async function runSandboxed(
  script: string | URL,
  options: SandboxOptions = {},
): Promise<SandboxResult> {
  if (Deno.uid() !== 0) throw new Error("runSandboxed needs root");
  const path = script instanceof URL ? script.pathname : script;
  if (!path.startsWith("/")) throw new TypeError(`script must be an absolute path: ${path}`);
  // A checkout under /tmp (hidden by the sandbox's own /tmp) is bind-mounted back, read-only.
  const bind = path.startsWith("/tmp/") ? await checkoutRoot(path) : "";
  const state = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "berth-sandbox-" });
  const report = `${state}.report`;
  try {
    const out = await new Deno.Command("unshare", {
      args: [
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        WRAPPER,
        "sandbox",
        state,
        report,
        String(options.timeoutSeconds ?? 300),
        bind,
        Deno.execPath(),
        "run",
        ...(options.denoFlags ?? ["-A", "--quiet"]),
        path,
        ...(options.args ?? []),
      ],
      env: options.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    const read = (suffix: string) => Deno.readTextFile(`${report}.${suffix}`).catch(() => "");
    const upper = parseListing(await read("upper"));
    const tmp = parseListing(await read("tmp")).filter((e) =>
      !(bind && (e.path === bind || bind.startsWith(`${e.path}/`)))
    );
    const dev = parseListing(await read("dev")).filter((e) => !DEV_EXPECTED.has(e.path));
    if (upper.length === 0 && tmp.length === 0 && out.code !== 0) {
      const stderr = dec.decode(out.stderr);
      if (!(await Deno.stat(`${report}.upper`).catch(() => null))) {
        throw new Error(`sandbox setup failed (${out.code}): ${stderr.trim().slice(-2000)}`);
      }
    }
    return {
      code: out.code,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
      rootChanges: upper,
      tmpEntries: tmp,
      devChanges: dev,
    };
  } finally {
    await Deno.remove(state, { recursive: true }).catch(() => {});
    for (const s of ["upper", "tmp", "dev"]) await Deno.remove(`${report}.${s}`).catch(() => {});
  }
}

/** The nearest directory above `path` holding deno.json (the checkout the script imports from). */
async function checkoutRoot(path: string): Promise<string> {
  let dir = path.slice(0, path.lastIndexOf("/"));
  while (dir !== "" && dir !== "/tmp") {
    if (await Deno.stat(`${dir}/deno.json`).then(() => true, () => false)) return dir;
    dir = dir.slice(0, dir.lastIndexOf("/"));
  }
  return path.slice(0, path.lastIndexOf("/"));
}

/** Where Deno keeps its cache: writes there (compiled code, sqlite caches) are expected. */
export function denoDir(): string {
  const dir = Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME") ?? "/root"}/.cache/deno`;
  return dir.endsWith("/") ? dir : `${dir}/`;
}

/**
 * The changes of `result` outside `allowed` (path prefixes; a prefix ending in `/` also allows the
 * directory itself). Deno's cache dir and its parents are always allowed, as are the parents of
 * every allowed prefix (directories that had to be created on the way).
 */
export function unexpectedChanges(result: SandboxResult, allowed: readonly string[]): string[] {
  const prefixes = [...allowed, denoDir()];
  const ok = (p: string) =>
    prefixes.some((a) =>
      p.startsWith(a) || (a.endsWith("/") && p === a.slice(0, -1)) || a.startsWith(`${p}/`)
    );
  return [...result.rootChanges, ...result.tmpEntries, ...result.devChanges]
    .filter((e) => !ok(e.path))
    .map((e) => `${e.type} ${e.path}`);
}

/** mtime, size and sha256 of each path (or "absent"): to show host files were not touched. */
export async function fingerprint(paths: readonly string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const p of paths) {
    try {
      const st = await Deno.lstat(p);
      const hash = st.isFile
        ? createHash("sha256").update(await Deno.readFile(p)).digest("hex")
        : st.isSymlink
        ? `-> ${await Deno.readLink(p)}`
        : "";
      out[p] = `${st.mtime?.getTime()} ${st.size} ${st.mode} ${hash}`;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      out[p] = "absent";
    }
  }
  return out;
}
