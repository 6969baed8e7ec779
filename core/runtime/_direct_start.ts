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
 * set and no_new_privs; spawn the command with `posix_spawn` (PID 1 of the new namespace, its own
 * session); then return to the saved credentials, umask, namespaces, root and cwd. If the thread
 * cannot return, the command is killed and the process exits (125): nothing it does could be
 * trusted.
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
  AT_FDCWD,
  CLONE_FS,
  CLOSE_RANGE_CLOEXEC,
  F_DUPFD_CLOEXEC,
  O_CLOEXEC,
  O_DIRECTORY,
  O_PATH,
  O_RDONLY,
  O_RDWR,
  PIDFD_GET_PID_FOR_CHILDREN_NAMESPACE,
  PIDFD_THREAD,
  POSIX_SPAWN_SETSID,
  POSIX_SPAWN_SETSIGDEF,
  POSIX_SPAWN_SETSIGMASK,
  SIGKILL,
} from "../../ffi/constants.ts";
import { capget, capset, setgroups, setresgid, setresuid } from "../../ffi/credentials.ts";
import { chroot, close, closeRange, fchdir, fcntl, openat, pipe2 } from "../../ffi/fs.ts";
import { pidfdNamespace, setns, unshare } from "../../ffi/namespaces.ts";
import { gettid, kill, pidfdOpen, umask } from "../../ffi/process.ts";
import { loadPosixSpawn, posixSpawn } from "../../ffi/spawn.ts";
import {
  dropPrivileges,
  enterWorkdir,
  execError,
  InitError,
  lookPath,
  setUpContainer,
} from "./init.ts";
import { type ChildPipes, SpawnedChild } from "./_child.ts";
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
  child: SpawnedChild;
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
  let devNull = -1;
  let thread: SavedThread | undefined;
  let spawned: Spawned | undefined;
  try {
    self = pidfdOpen(tid, PIDFD_THREAD);
    // a "null" stream is the host's /dev/null, opened here as the init's spawn opens it
    if (Object.values(req.stdio).includes("null")) {
      devNull = openat(AT_FDCWD, "/dev/null", O_RDWR | O_CLOEXEC);
    }
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
      spawned = spawnAs(proc, path, req.stdio, { thread, devNull }, marks);
    } finally {
      thread.back(spawned?.pid);
    }
    marks.spawned = now();
    return { child: SpawnedChild.adopt(spawned.pid, spawned.pipes) };
  } catch (e) {
    throw startError(e);
  } finally {
    if (self >= 0) close(self);
    if (devNull >= 0) close(devNull);
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
 * its command, and returns (see the module doc). A `"null"` stdin is a pipe closed at once: the
 * container's own /dev/null is not opened (the container may have replaced it). Throws
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
  let spawned: Spawned | undefined;
  const stdio = {
    ...req.stdio,
    stdin: req.stdio.stdin === "null" ? "eof" as const : req.stdio.stdin,
  };
  if (stdio.stdout === "null" || stdio.stderr === "null") {
    throw new TypeError("A direct exec does not discard output"); // prepareExec never asks
  }
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
      spawned = spawnAs(proc, path, stdio, { thread, devNull: -1 }, marks);
    } finally {
      thread.back(spawned?.pid);
    }
    marks.spawned = now();
    return { child: SpawnedChild.adopt(spawned.pid, spawned.pipes) };
  } catch (e) {
    throw startError(e);
  } finally {
    for (const fd of target) close(fd);
    thread?.close();
  }
}

function startError(e: unknown): ContainerStartError {
  if (e instanceof ContainerStartError) return e;
  if (e instanceof InitError) return new ContainerStartError(e.message, e.code);
  const message = e instanceof Error ? e.message : String(e);
  return new ContainerStartError(message, 125, { cause: e });
}

/** How a direct start connects a stream: as the init would, or `"eof"`: a pipe closed at once. */
type SpawnStdio = Stdio | "eof";

/** A spawned command: its pid and the engine's ends of its pipes. */
interface Spawned {
  pid: number;
  pipes: ChildPipes;
}

// every signal 1..64 at its default action in the child (the engine ignores some, SIGPIPE
// among them, and a child would keep an ignored signal across execve)
const ALL_SIGNALS = (1n << 64n) - 1n;

/**
 * In the container (after setUpContainer or the joins): takes the process's privileges and
 * spawns it with `posix_spawn` — its own session, no signal blocked, every signal at its default
 * action, as the init's execve does. The engine's capabilities stay permitted (not effective), so
 * that the thread can come back; the child's after its execve come from the bounding and
 * inheritable sets. `"null"` is `devNull` (the host's /dev/null, opened before the thread left);
 * `"piped"` and `"eof"` are pipes. The child starts from this thread: its namespaces, root, cwd,
 * credentials and umask. The engine's descriptors are all close-on-exec by then.
 */
function spawnAs(
  proc: SpecProcess,
  path: string,
  stdio: { stdin: SpawnStdio; stdout: SpawnStdio; stderr: SpawnStdio },
  how: { thread: SavedThread; devNull: number },
  marks: Record<string, number>,
): Spawned {
  const mine: number[] = []; // the child's ends, closed here after the spawn
  const pipes: ChildPipes = {};
  const eof: number[] = []; // the engine's ends of "eof" pipes
  try {
    const dup2: [number, number][] = [];
    const { devNull } = how;
    (["stdin", "stdout", "stderr"] as const).forEach((name, target) => {
      const kind = stdio[name];
      if (kind === "inherit") return;
      let fd: number;
      if (kind === "null") {
        if (devNull < 0) throw new TypeError(`No /dev/null for ${name}`);
        fd = devNull;
      } else {
        const [r, w] = pipe2(O_CLOEXEC);
        const [theirs, ours] = target === 0 ? [r, w] : [w, r];
        fd = theirs;
        mine.push(fd);
        if (kind === "eof") eof.push(ours);
        else pipes[name] = ours;
      }
      // a descriptor 0..2 (the engine's own stdio closed) could be overwritten by another dup2
      if (fd < 3) mine.push(fd = fcntl(fd, F_DUPFD_CLOEXEC, 3));
      dup2.push([fd, target]);
    });
    marks.setup = now();
    closeRange(3, 0xffffffff, CLOSE_RANGE_CLOEXEC);
    dropPrivileges(proc, how.thread.caps.permitted);
    umask(proc.user.umask ?? 0o022);
    marks.exec = now();
    let pid: number;
    try {
      pid = posixSpawn(path, proc.args, proc.env ?? [], {
        flags: POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF,
        sigmask: 0n,
        sigdefault: ALL_SIGNALS,
        dup2,
      });
    } catch (e) {
      throw execError(proc.args[0], e);
    }
    return { pid, pipes };
  } catch (e) {
    for (const fd of Object.values(pipes)) close(fd);
    throw e;
  } finally {
    for (const fd of [...mine, ...eof]) close(fd);
  }
}

/**
 * What the calling thread had: namespaces, root, cwd (as descriptors), umask and credentials;
 * `save` also gives the thread its own root, cwd and umask (unshare(CLONE_FS): a shared umask
 * would change every thread's, and a thread sharing them may not change mount namespace).
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
  ) {}

  static save(kinds: readonly string[]): SavedThread {
    loadPosixSpawn(); // bound on the host: no library is looked up from a container's root
    const status = Deno.readTextFileSync("/proc/thread-self/status");
    const ids = (key: string) =>
      (new RegExp(`^${key}:[ \\t]*(.*)$`, "m").exec(status)?.[1] ?? "").trim().split(/\s+/)
        .filter(Boolean).map(Number);
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
      );
    } catch (e) {
      for (const fd of fds) close(fd);
      throw e;
    }
  }

  /**
   * Back to what was saved: credentials first (their capabilities are still permitted), then
   * umask, namespaces, root and cwd. A thread that cannot return is in a container's namespaces
   * or credentials for good: the child `pid` (if any) is killed and the process exits (125).
   */
  back(pid: number | undefined): void {
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
        if (pid !== undefined) kill(pid, SIGKILL); // not reaped: the pid is still this child's
      } catch { /* gone */ }
      console.error(`berth: fatal: cannot return to the engine's namespaces or credentials: ${e}`);
      Deno.exit(125);
    }
  }

  close(): void {
    for (const fd of [...this.ns, this.root, this.cwd]) close(fd);
  }
}
