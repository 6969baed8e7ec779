/**
 * The direct start: the engine's own thread sets the container up and spawns the container's
 * command itself, with no `berth __init` process in between (one Deno start per container
 * instead of two). The kernel keeps namespaces, root, cwd, umask, credentials, capabilities,
 * no_new_privs and v1 cgroup membership per thread, and a spawned child takes the spawning
 * thread's. So, synchronously, with no await (no thread may be started while this thread's PID
 * namespace for children is the container's): save what the thread has; unshare the container's
 * namespaces (or join a running container's, for `exec`); set the container up as the init does
 * (`setUpContainer`, joining the v1 cgroups by thread id and mounting the container's procfs for
 * its still empty PID namespace with `pidns=`); take the container process's user, groups,
 * capabilities (the engine's stay permitted, not effective, to come back to), capability bounding
 * set and no_new_privs; spawn the command (PID 1 of the new namespace, its own session); then
 * return to the saved credentials, umask, namespaces, root and cwd. If the thread cannot return,
 * the command is killed and the process exits (125): nothing it does could be trusted.
 *
 * Two changes cannot be undone and stay with the thread: the smaller capability bounding set and
 * no_new_privs. They matter only to programs this thread (or a thread it starts) executes later,
 * so only a process that starts one container and executes nothing afterwards may start one
 * this way: the CLI's `run` and `exec` (see `_direct.ts` for when it is used). The engine moves
 * the thread back out of the container's cgroups once the command runs.
 *
 * @module
 */
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  CLONE_FS,
  CLOSE_RANGE_CLOEXEC,
  O_CLOEXEC,
  O_DIRECTORY,
  O_NONBLOCK,
  O_PATH,
  O_RDONLY,
  PIDFD_GET_PID_FOR_CHILDREN_NAMESPACE,
  PIDFD_THREAD,
  S_IFMT,
  S_IFREG,
  SIG_DFL,
  SIG_IGN,
} from "../../ffi/constants.ts";
import { capget, capset, setgroups, setresgid, setresuid } from "../../ffi/credentials.ts";
import { chroot, close, closeRange, fchdir, openat, read, statx } from "../../ffi/fs.ts";
import { pidfdNamespace, setns, unshare } from "../../ffi/namespaces.ts";
import { gettid, pidfdOpen, sigaction, umask } from "../../ffi/process.ts";
import { SyscallError } from "../../ffi/syscall_error.ts";
import {
  dropPrivileges,
  enterWorkdir,
  execError,
  InitError,
  lookPath,
  setUpContainer,
} from "./init.ts";
import type { DirectExecRequest, DirectRequest } from "./_direct.ts";
import type { SpecProcess } from "./spec_types.ts";
import { ContainerStartError } from "./start_error.ts";
import type { Stdio } from "./_prepare_init.ts";

/**
 * The started command: this process's child. The calling thread is still in the container's v1
 * cgroups: the engine moves it back (`returnThread`).
 */
export interface DirectStarted {
  /** The command's process. */
  child: Deno.ChildProcess;
}

const now = () => performance.timeOrigin + performance.now();

/**
 * Starts the container's command from the calling thread (see the module doc). Throws
 * ContainerStartError (125, or 126/127 when the command cannot be run); the thread is back in
 * its credentials, namespaces, root, cwd and umask either way.
 */
export function startDirect(req: DirectRequest, marks: Record<string, number>): DirectStarted {
  const proc = req.spec.process;
  const tid = gettid();
  let self = -1;
  let thread: SavedThread | undefined;
  let child: Deno.ChildProcess | undefined;
  try {
    self = pidfdOpen(tid, PIDFD_THREAD);
    thread = SavedThread.save(["mnt", "uts", "ipc", "net", "cgroup", "pid_for_children"]);
    marks.start = marks.ffi = marks.config = now();
    try {
      // from here until back(): no await, nothing that starts a thread
      unshare(req.flags);
      const pidns = pidfdNamespace(self, PIDFD_GET_PID_FOR_CHILDREN_NAMESPACE);
      let path: string;
      try {
        path = setUpContainer(req.config, req.spec, marks, {
          direct: { tid, pidns, cgroupTasks: req.cgroupTasks },
        });
      } finally {
        close(pidns);
      }
      child = spawnAs(proc, path, req.stdio, thread, marks);
    } finally {
      thread.back(child);
    }
    marks.spawned = now();
    return { child };
  } catch (e) {
    throw startError(e);
  } finally {
    if (self >= 0) close(self);
    thread?.close();
  }
}

// PIDFD_GET_<kind>_NAMESPACE (Linux 6.11): the target's namespaces through its pidfd, so that a
// pid reused meanwhile cannot hand over another process's; in the order they are joined (cgroup
// first: the thread's cgroup is then the namespace's root; mnt last)
const JOIN: [kind: string, request: number][] = [
  ["cgroup", 0xff01],
  ["pid_for_children", 0xff05], // the target's own pid namespace, for this thread's children
  ["net", 0xff04],
  ["ipc", 0xff02],
  ["uts", 0xff0a],
  ["mnt", 0xff03],
];

/**
 * `exec` from the calling thread: joins the target's v1 cgroups (by thread id) and namespaces,
 * changes to the process's cwd, takes its user, groups, capabilities and no_new_privs, spawns
 * its command, and returns (see the module doc). A `"null"` stream is a pipe closed at once
 * (stdin) or read and dropped: the container's own /dev/null is not opened. Throws
 * ContainerStartError (125; 126 for a missing cwd or a command that cannot be invoked, 127 when
 * not found).
 */
export function startDirectExec(
  req: DirectExecRequest,
  marks: Record<string, number>,
): DirectStarted {
  const proc = req.process;
  const tid = gettid();
  const target: number[] = [];
  let thread: SavedThread | undefined;
  let child: Deno.ChildProcess | undefined;
  const piped = (s: Stdio) => s === "null" ? "piped" as const : s;
  const stdio = {
    stdin: piped(req.stdio.stdin),
    stdout: piped(req.stdio.stdout),
    stderr: piped(req.stdio.stderr),
  };
  try {
    for (const [, request] of JOIN) target.push(pidfdNamespace(req.pidfd, request));
    thread = SavedThread.save(JOIN.map(([kind]) => kind));
    marks.start = marks.ffi = marks.config = now();
    try {
      // from the first write until back(): no await, nothing that starts a thread
      for (const f of req.cgroupTasks) Deno.writeTextFileSync(f, String(tid), { create: false });
      marks.cgroup = now();
      for (const fd of target) setns(fd, 0);
      umask(0);
      marks.join = now();
      enterWorkdir(proc);
      const path = lookPath(proc.args[0], proc.env ?? []);
      child = spawnAs(proc, path, stdio, thread, marks);
    } finally {
      thread.back(child);
    }
    marks.spawned = now();
  } catch (e) {
    throw startError(e);
  } finally {
    for (const fd of target) close(fd);
    thread?.close();
  }
  if (req.stdio.stdin === "null") child.stdin.close().catch(() => {});
  if (req.stdio.stdout === "null") child.stdout.pipeTo(new WritableStream()).catch(() => {});
  if (req.stdio.stderr === "null") child.stderr.pipeTo(new WritableStream()).catch(() => {});
  return { child };
}

function startError(e: unknown): ContainerStartError {
  if (e instanceof ContainerStartError) return e;
  if (e instanceof InitError) return new ContainerStartError(e.message, e.code);
  const message = e instanceof Error ? e.message : String(e);
  return new ContainerStartError(message, 125, { cause: e });
}

const CAP_SETGID = 1n << 6n;

/**
 * In the container (after setUpContainer or the joins): refuses what execve(2) would refuse as
 * ENOEXEC, then takes the process's privileges and spawns it, in its own session, with every
 * signal at its default action, as the init's execve does.
 *
 * - Privileges: `dropPrivileges` with the engine's capabilities kept permitted (not effective),
 *   so that the thread can come back; CAP_SETGID also leaves the effective set: Deno's detached
 *   spawn calls setgroups(0, NULL) in the child and ignores its failure, so the container's
 *   supplementary groups stay.
 * - Format: glibc's execvp, which Deno's spawn uses, runs a file execve refuses (ENOEXEC) with
 *   /bin/sh; the init gets docker's 126: refused here too (`refuseUnknownFormat`).
 * - Signals: a child keeps the signals its parent ignores (the spawn resets SIGPIPE only): the
 *   process's other ignored signals are set to default around the spawn (for those microseconds
 *   the engine takes them at their default too), and ignored again after if nothing changed them
 *   meanwhile.
 */
function spawnAs(
  proc: SpecProcess,
  path: string,
  stdio: { stdin: Stdio; stdout: Stdio; stderr: Stdio },
  thread: SavedThread,
  marks: Record<string, number>,
): Deno.ChildProcess {
  refuseUnknownFormat(proc.args[0], path, thread.formats);
  marks.setup = now();
  closeRange(3, 0xffffffff, CLOSE_RANGE_CLOEXEC);
  dropPrivileges(proc, thread.caps.permitted);
  const caps = capget();
  capset({ ...caps, effective: caps.effective & ~CAP_SETGID });
  umask(proc.user.umask ?? 0o022);
  const reset = thread.ignored.filter((sig) => sig !== SIGPIPE);
  for (const sig of reset) sigaction(sig, SIG_DFL);
  marks.exec = now();
  try {
    return new Deno.Command(path, {
      args: proc.args.slice(1),
      clearEnv: true,
      env: envRecord(proc.env ?? []),
      stdin: stdio.stdin,
      stdout: stdio.stdout,
      stderr: stdio.stderr,
      detached: true, // its own session, as under the init (setsid)
    }).spawn();
  } catch (e) {
    const m = /os error (\d+)/.exec(e instanceof Error ? e.message : String(e));
    throw execError(proc.args[0], m ? new SyscallError("execve", Number(m[1])) : e);
  } finally {
    for (const sig of reset) if (sigaction(sig) === BigInt(SIG_DFL)) sigaction(sig, SIG_IGN);
  }
}

const SIGPIPE = 13;

/**
 * The formats execve(2) runs without help, read before the thread leaves the host: scripts
 * (`#!`), and ELF executables of this machine (the engine's own class, byte order and machine;
 * the 32-bit compat machine too). `undefined` when binfmt_misc has entries: the kernel may run
 * more (a foreign architecture through qemu, ...), and the spawn is left to find out.
 */
export function nativeFormats(): { ident: Uint8Array; machines: number[] } | undefined {
  try {
    const entries = [...Deno.readDirSync("/proc/sys/fs/binfmt_misc")]
      .filter((e) => e.name !== "register" && e.name !== "status");
    if (entries.length) return undefined;
  } catch { /* not mounted: no entries */ }
  const head = new Uint8Array(20);
  const fd = openat(AT_FDCWD, "/proc/self/exe", O_RDONLY | O_CLOEXEC);
  try {
    read(fd, head);
  } finally {
    close(fd);
  }
  const machine = head[18] | (head[19] << 8);
  // x86_64 runs i386 (and x32) binaries, aarch64 runs 32-bit arm ones
  const compat: Record<number, number> = { 62: 3, 183: 40 };
  return { ident: head.slice(0, 6), machines: [machine, compat[machine] ?? machine] };
}

const ET_EXEC = 2;
const ET_DYN = 3;

/**
 * ENOEXEC as execve would give it (126, docker's "exec format error"), for a regular file that
 * is neither a script nor an executable of this machine (see {@linkcode nativeFormats}): glibc's
 * execvp, which Deno's spawn uses, would run it with /bin/sh instead.
 */
function refuseUnknownFormat(
  name: string,
  path: string,
  native: ReturnType<typeof nativeFormats>,
): void {
  if (!native) return;
  const regular = (st: { mode: number }) => (st.mode & S_IFMT) === S_IFREG;
  let fd: number;
  try {
    // only a regular file is opened (execve refuses anything else); O_NONBLOCK in case it was
    // just replaced by a FIFO
    if (!regular(statx(AT_FDCWD, path))) return;
    fd = openat(AT_FDCWD, path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  } catch {
    return; // the spawn reports why it cannot be run
  }
  try {
    if (!regular(statx(fd, "", AT_EMPTY_PATH))) return;
    const buf = new Uint8Array(20);
    const head = buf.subarray(0, read(fd, buf));
    if (head.length >= 2 && head[0] === 0x23 && head[1] === 0x21) return; // "#!"
    const ident = native.ident;
    const elf = head.length === 20 && ident.every((b, i) => i >= 4 || head[i] === b);
    const type = head[16] | (head[17] << 8);
    const machine = head[18] | (head[19] << 8);
    const runs = elf && (type === ET_EXEC || type === ET_DYN) &&
      native.machines.includes(machine) && [1, 2].includes(head[4]) && head[5] === ident[5];
    if (!runs) throw new InitError(`exec: "${name}": exec format error`, 126);
  } catch (e) {
    if (e instanceof InitError) throw e; // a read error: the spawn tells
  } finally {
    close(fd);
  }
}

/**
 * What the calling thread had: namespaces, root, cwd (as descriptors), umask, credentials, the
 * process's ignored signals, and what the host's execve runs ({@linkcode nativeFormats}); `save` also gives the thread its own root, cwd and umask
 * (unshare(CLONE_FS): a shared umask would change every thread's, and a thread sharing them may
 * not change mount namespace).
 */
class SavedThread {
  private constructor(
    readonly ns: number[],
    readonly root: number,
    readonly cwd: number,
    readonly umask: number,
    readonly uid: number[],
    readonly gid: number[],
    readonly groups: number[],
    readonly caps: ReturnType<typeof capget>,
    readonly ignored: number[],
    readonly formats: ReturnType<typeof nativeFormats>,
  ) {}

  static save(kinds: readonly string[]): SavedThread {
    const status = Deno.readTextFileSync("/proc/thread-self/status");
    const ids = (key: string) =>
      (new RegExp(`^${key}:[ \\t]*(.*)$`, "m").exec(status)?.[1] ?? "").trim().split(/\s+/)
        .filter(Boolean).map(Number);
    const mask = BigInt("0x" + (/^SigIgn:[ \t]*([0-9a-f]+)$/m.exec(status)?.[1] ?? "0"));
    const ignored: number[] = [];
    for (let sig = 1; sig <= 64; sig++) if (mask & (1n << BigInt(sig - 1))) ignored.push(sig);
    const fds: number[] = [];
    try {
      for (const kind of kinds) {
        fds.push(openat(AT_FDCWD, `/proc/thread-self/ns/${kind}`, O_RDONLY | O_CLOEXEC));
      }
      const root = openat(AT_FDCWD, "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
      fds.push(root);
      const cwd = openat(AT_FDCWD, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
      fds.push(cwd);
      unshare(CLONE_FS);
      const mask = umask(0o022);
      return new SavedThread(
        fds.slice(0, kinds.length),
        root,
        cwd,
        mask,
        ids("Uid"),
        ids("Gid"),
        ids("Groups"),
        capget(),
        ignored,
        nativeFormats(),
      );
    } catch (e) {
      for (const fd of fds) close(fd);
      throw e;
    }
  }

  /**
   * Back to what was saved: credentials first (their capabilities are still permitted), then
   * umask, namespaces, root and cwd. A thread that cannot return is in a container's namespaces
   * or credentials for good: `child` is killed and the process exits (125).
   */
  back(child: Deno.ChildProcess | undefined): void {
    try {
      capset(this.caps);
      setresuid(this.uid[0], this.uid[1], this.uid[2]);
      setresgid(this.gid[0], this.gid[1], this.gid[2]);
      setgroups(this.groups);
      capset(this.caps);
      umask(this.umask);
      for (const fd of this.ns) setns(fd, 0);
      fchdir(this.root);
      chroot(".");
      fchdir(this.cwd);
    } catch (e) {
      try {
        child?.kill("SIGKILL");
      } catch { /* gone */ }
      console.error(`berth: fatal: cannot return to the engine's namespaces or credentials: ${e}`);
      Deno.exit(125);
    }
  }

  close(): void {
    for (const fd of [...this.ns, this.root, this.cwd]) close(fd);
  }
}

function envRecord(env: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of env) {
    const i = e.indexOf("=");
    if (i > 0) out[e.slice(0, i)] = e.slice(i + 1);
  }
  return out;
}
