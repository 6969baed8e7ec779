/**
 * The direct start: the engine's own thread sets the container up and spawns the container's
 * command itself, with no `berth __init` process in between (one Deno start per container
 * instead of two). The kernel keeps namespaces, root, cwd, umask, credentials, capabilities,
 * no_new_privs and v1 cgroup membership per thread, and a spawned child takes the spawning
 * thread's. So, synchronously, with no await (no thread may be started while this thread's PID
 * namespace for children is the container's): save what the thread has; unshare the container's
 * namespaces; set the container up as the init does (`setUpContainer`, joining the v1 cgroups by
 * thread id and mounting the container's procfs for its still empty PID namespace with `pidns=`);
 * take the container's user, groups, inheritable capabilities, capability bounding set and
 * no_new_privs; spawn the command (PID 1 of the new namespace, its own session); then return to
 * the saved namespaces, cwd, umask and credentials.
 *
 * Two changes cannot be undone and stay with the thread: the smaller capability bounding set and
 * no_new_privs. They matter only to programs this thread (or a thread it starts) executes later,
 * so only a process that starts one container and executes nothing afterwards may start one
 * this way: the CLI's `run` (see `_direct.ts` for when it is used). The engine moves the thread
 * back out of the container's cgroup once the command runs.
 *
 * @module
 */
import {
  AT_FDCWD,
  CLONE_FS,
  CLOSE_RANGE_CLOEXEC,
  O_CLOEXEC,
  O_RDONLY,
  PIDFD_GET_PID_FOR_CHILDREN_NAMESPACE,
  PIDFD_THREAD,
  SIG_DFL,
  SIG_IGN,
} from "../../ffi/constants.ts";
import { capget, capset, setgroups, setresgid, setresuid } from "../../ffi/credentials.ts";
import { close, closeRange, openat } from "../../ffi/fs.ts";
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
import { restore } from "./_prepare_init.ts";
import { ContainerStartError } from "./start_error.ts";

// what the thread is in, to return to: the container's namespaces are new ones of these kinds
const NAMESPACES = ["mnt", "uts", "ipc", "net", "cgroup", "pid_for_children"];

/** The started command. */
export interface DirectStarted {
  /** The command's process (this process's child). */
  child: Deno.ChildProcess;
  /** The calling thread's id (in the container's v1 cgroups until the engine moves it back). */
  tid: number;
}

/**
 * Starts the container's command from the calling thread (see the module doc). Throws
 * ContainerStartError (125, or 126/127 when the command cannot be run); the thread is back in
 * its namespaces, cwd and credentials either way (else the process exits 125).
 */
export function startDirect(req: DirectRequest, marks: Record<string, number>): DirectStarted {
  const now = () => performance.timeOrigin + performance.now();
  const proc = req.spec.process;
  const tid = gettid();
  const creds = ownCredentials();
  const saved: number[] = [];
  const cwd = Deno.cwd();
  let self = -1;
  let child: Deno.ChildProcess;
  try {
    for (const ns of NAMESPACES) {
      saved.push(openat(AT_FDCWD, `/proc/thread-self/ns/${ns}`, O_RDONLY | O_CLOEXEC));
    }
    self = pidfdOpen(tid, PIDFD_THREAD);
    marks.start = marks.ffi = marks.config = now();
    // this thread's own root, cwd and umask first (a shared umask would change every thread's)
    unshare(CLONE_FS);
    const oldUmask = umask(0o022);
    try {
      // from here until restore: no await, nothing that starts a thread
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
      closeRange(3, 0xffffffff, CLOSE_RANGE_CLOEXEC);
      try {
        takePrivileges(proc, creds);
        umask(proc.user.umask ?? 0o022);
        marks.exec = now();
        child = spawn(path, proc, req.stdio, creds.ignored);
      } finally {
        restoreCredentials(creds);
      }
    } finally {
      umask(oldUmask);
      restore(saved, cwd);
    }
    marks.spawned = now();
  } catch (e) {
    if (e instanceof InitError) throw new ContainerStartError(e.message, e.code);
    const message = e instanceof Error ? e.message : String(e);
    throw new ContainerStartError(message, 125, { cause: e });
  } finally {
    if (self >= 0) close(self);
    for (const fd of saved) close(fd);
  }
  return { child, tid };
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
 * its command, and returns to its own namespaces, cwd and credentials (see the module doc).
 * Throws ContainerStartError (125; 126 for a missing cwd or a command that cannot be invoked,
 * 127 when not found).
 */
export function startDirectExec(
  req: DirectExecRequest,
  marks: Record<string, number>,
): DirectStarted {
  const now = () => performance.timeOrigin + performance.now();
  const proc = req.process;
  const tid = gettid();
  const creds = ownCredentials();
  const saved: number[] = [];
  const target: number[] = [];
  const cwd = Deno.cwd();
  let child: Deno.ChildProcess;
  try {
    for (const [kind] of JOIN) {
      saved.push(openat(AT_FDCWD, `/proc/thread-self/ns/${kind}`, O_RDONLY | O_CLOEXEC));
    }
    for (const [, request] of JOIN) target.push(pidfdNamespace(req.pidfd, request));
    marks.start = marks.ffi = marks.config = now();
    // this thread's own root, cwd and umask first (a shared umask would change every thread's;
    // a thread sharing its fs_struct may not change mount namespace)
    unshare(CLONE_FS);
    const oldUmask = umask(0o022);
    try {
      // from the first setns until restore: no await, nothing that starts a thread
      for (const f of req.cgroupTasks) Deno.writeTextFileSync(f, String(tid), { create: false });
      marks.cgroup = now();
      for (const fd of target) setns(fd, 0);
      marks.join = now();
      enterWorkdir(proc);
      const path = lookPath(proc.args[0], proc.env ?? []);
      marks.setup = now();
      closeRange(3, 0xffffffff, CLOSE_RANGE_CLOEXEC);
      try {
        takePrivileges(proc, creds);
        umask(proc.user.umask ?? 0o022);
        marks.exec = now();
        child = spawn(path, proc, req.stdio, creds.ignored);
      } finally {
        restoreCredentials(creds);
      }
    } finally {
      umask(oldUmask);
      restore(saved, cwd);
    }
    marks.spawned = now();
  } catch (e) {
    if (e instanceof InitError) throw new ContainerStartError(e.message, e.code);
    const message = e instanceof Error ? e.message : String(e);
    throw new ContainerStartError(message, 125, { cause: e });
  } finally {
    for (const fd of [...saved, ...target]) close(fd);
  }
  return { child, tid };
}

const CAP_SETGID = 1n << 6n;

/**
 * The container process's user, groups, capability bounding and inheritable sets and
 * no_new_privs, on this thread; its effective and permitted capabilities stay the engine's
 * (what the child has after its execve comes from the bounding and inheritable sets, never
 * from these), but for CAP_SETGID: Deno's detached spawn calls setgroups(0, NULL) in the child
 * before the execve and ignores its failure, so without CAP_SETGID the container's
 * supplementary groups stay.
 */
function takePrivileges(proc: SpecProcess, creds: Credentials): void {
  dropPrivileges(proc, creds.caps.permitted);
  const now = capget();
  capset({ ...now, effective: now.effective & ~CAP_SETGID });
}

/**
 * Spawns the command in its own session. A child keeps the signals its parent ignores (the
 * spawn resets SIGPIPE only), while the init gives the command every signal at its default:
 * the process's ignored signals are set to default around the spawn and ignored again after.
 */
function spawn(
  path: string,
  proc: SpecProcess,
  stdio: DirectRequest["stdio"],
  ignored: readonly number[],
): Deno.ChildProcess {
  for (const sig of ignored) sigaction(sig, SIG_DFL);
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
    throw execError(proc.args[0], spawnErrno(e));
  } finally {
    for (const sig of ignored) sigaction(sig, SIG_IGN);
  }
}

// what the thread had (and the process's ignored signals), read before it leaves its namespaces
interface Credentials {
  uid: number[];
  gid: number[];
  groups: number[];
  caps: ReturnType<typeof capget>;
  ignored: number[];
}

function ownCredentials(): Credentials {
  const status = Deno.readTextFileSync("/proc/thread-self/status");
  const ids = (key: string) =>
    (new RegExp(`^${key}:[ \\t]*(.*)$`, "m").exec(status)?.[1] ?? "").trim().split(/\s+/)
      .filter(Boolean).map(Number);
  const mask = BigInt("0x" + (/^SigIgn:[ \t]*([0-9a-f]+)$/m.exec(status)?.[1] ?? "0"));
  const ignored: number[] = [];
  for (let sig = 1; sig <= 64; sig++) if (mask & (1n << BigInt(sig - 1))) ignored.push(sig);
  return { uid: ids("Uid"), gid: ids("Gid"), groups: ids("Groups"), caps: capget(), ignored };
}

function restoreCredentials(c: Credentials): void {
  try {
    // the engine's capabilities first (still permitted: kept across the change of user)
    capset(c.caps);
    setresuid(c.uid[0], c.uid[1], c.uid[2]);
    setresgid(c.gid[0], c.gid[1], c.gid[2]);
    setgroups(c.groups);
    capset(c.caps);
  } catch (e) {
    // this thread cannot be trusted with anything any more
    console.error(`berth: fatal: cannot return to the engine's credentials: ${e}`);
    Deno.exit(125);
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

// A failed spawn as the SyscallError of its execve (Deno reports the errno as "os error N").
function spawnErrno(e: unknown): unknown {
  const m = /os error (\d+)/.exec(e instanceof Error ? e.message : String(e));
  return m ? new SyscallError("execve", Number(m[1])) : e;
}
