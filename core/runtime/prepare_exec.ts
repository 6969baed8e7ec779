/**
 * Spawning the init of an `exec` into a running container (step 1 of `execInContainer`), with a
 * small import graph, so that a command can do it first thing and let the init's Deno start
 * overlap its own work: `prepareExec` now, `execInContainer(target, process, { init, ... })`
 * later.
 *
 * @module
 */
import {
  AF_UNIX,
  AT_FDCWD,
  F_SETFD,
  O_CLOEXEC,
  O_RDONLY,
  SOCK_CLOEXEC,
  SOCK_SEQPACKET,
} from "../../ffi/constants.ts";
import { close, fcntl, openat } from "../../ffi/fs.ts";
import { setns } from "../../ffi/namespaces.ts";
import { socketpair } from "../../ffi/socket.ts";
import {
  claimDirect,
  initCommand,
  type PreparedInit,
  type PreparedInitInternal,
  type PrepareInitOptions,
  restore,
  type Stdio,
} from "./_prepare_init.ts";
import { pidfdOpen } from "../../ffi/process.ts";
import { processAlive, processStartTime } from "./process_info.ts";
import { ContainerStartError } from "./start_error.ts";

/** The running container to exec into. */
export interface ExecTarget {
  /** Host pid of the container's first process (its PID 1; `onStart`'s pid). */
  pid: number;
  /**
   * That process's start time as recorded at start (`processStartTime`, `onStart`'s
   * `startTime`): a pid now used by another process is refused as "not running". Default: read
   * now (no reuse check).
   */
  startTime?: string;
  /** The container's name or id, for messages (default: the pid). */
  name?: string;
}

/**
 * An exec init spawned ahead of its process (see {@linkcode prepareExec}): pass it to
 * `execInContainer` as `init`, or {@linkcode discardExec} it.
 */
export interface PreparedExec extends PreparedInit {
  /** The target's pid. */
  readonly targetPid: number;
  /** The target's start time, as checked. */
  readonly targetStartTime: string;
}

/** What exec.ts needs of a prepared direct exec (see `_direct.ts`). */
export interface PreparedExecDirect extends PreparedExec {
  readonly kind: "direct";
  /** A pidfd of the target (its namespaces are joined through it). */
  pidfd: number;
  stdio: { stdin: Stdio; stdout: Stdio; stderr: Stdio };
}

/** What exec.ts needs of a prepared exec. */
export interface PreparedExecInternal extends PreparedExec, PreparedInitInternal {
  readonly kind: "process";
  /** The container's namespaces the init joins, in the order of {@linkcode INIT_NS}. */
  nsFds: number[];
}

// joined by the engine's thread around the spawn: what the thread had, what the target has
const ENGINE_NS: [own: string, target: string][] = [
  ["pid_for_children", "pid"],
  ["net", "net"],
  ["ipc", "ipc"],
  ["uts", "uts"],
];

/** The namespaces the init joins itself, in this order (`ExecConfig.namespaces`). */
export const INIT_NS = ["cgroup", "mnt"] as const;

/** ContainerStartError (125): `container NAME is not running`. */
export function notRunning(target: ExecTarget, cause?: unknown): ContainerStartError {
  return new ContainerStartError(
    `container ${target.name ?? target.pid} is not running`,
    125,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Spawns the init of an exec into the running container `target`, in its pid, net, ipc and uts
 * namespaces, with the given stdio (with a terminal, stdin `"null"`; a sink is `"piped"`),
 * before the process is known: its Deno start then overlaps the caller's own work (reading the
 * spec, resolving the user). All on this thread, with no await between the setns calls and the
 * spawn. ContainerStartError (125) `container NAME is not running` when the target's pid is gone,
 * a zombie, or another process's. With `direct` where it can be used (see `_direct.ts`; only
 * for a process that runs this one exec and executes nothing afterwards), no init: a pidfd of
 * the target is kept, and `execInContainer` starts the process from this thread.
 *
 * @example
 * ```ts ignore
 * import { discardExec, prepareExec } from "./prepare_exec.ts";
 * const init = prepareExec({ pid, startTime, name: "web" }, {
 *   stdin: "null",
 *   stdout: "inherit",
 *   stderr: "inherit",
 * });
 * // ... then execInContainer(target, process, { init, ... }), or, if it will not be used:
 * await discardExec(init);
 * ```
 */
export function prepareExec(
  target: ExecTarget,
  stdio: { stdin: Stdio; stdout: Stdio; stderr: Stdio },
  options: Pick<PrepareInitOptions, "direct" | "terminal" | "cgroupLayout"> = {},
): PreparedExec {
  const pid = target.pid;
  if (!Number.isSafeInteger(pid) || pid <= 0) throw new TypeError(`Invalid pid: ${pid}`);
  const startTime = target.startTime ?? processStartTime(pid);
  if (startTime === undefined || !processAlive(pid, startTime)) throw notRunning(target);
  // (a direct exec's "null" output is a pipe it drains: only while the engine lives)
  const direct = options.direct && stdio.stdout !== "null" && stdio.stderr !== "null";
  if (claimDirect(direct, options.cgroupLayout, options.terminal ?? false)) {
    let pidfd: number;
    try {
      pidfd = pidfdOpen(pid);
    } catch (e) {
      throw notRunning(target, e);
    }
    // the pidfd is the recorded process's, not a successor's with its pid
    if (!processAlive(pid, startTime)) {
      close(pidfd);
      throw notRunning(target);
    }
    const prepared: PreparedExecDirect = {
      kind: "direct",
      pid: 0,
      targetPid: pid,
      targetStartTime: startTime,
      pidfd,
      stdio,
    };
    return prepared;
  }
  const ns = new Map<string, number>();
  const closeNs = (names: readonly string[]) => {
    for (const n of names) {
      const fd = ns.get(n);
      if (fd !== undefined) close(fd);
      ns.delete(n);
    }
  };
  const all = [...ENGINE_NS.map(([, t]) => t), ...INIT_NS];
  try {
    for (const n of all) ns.set(n, openat(AT_FDCWD, `/proc/${pid}/ns/${n}`, O_RDONLY | O_CLOEXEC));
  } catch (e) {
    closeNs(all);
    if (!processAlive(pid, startTime)) throw notRunning(target, e);
    throw new ContainerStartError(`exec: ${(e as Error).message}`, 125, { cause: e });
  }
  // the namespaces opened are the recorded process's, not those of a successor with its pid
  if (!processAlive(pid, startTime)) {
    closeNs(all);
    throw notRunning(target);
  }

  const [engineEnd, initEnd] = socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC);
  const { command, args, env } = initCommand();
  const cmd = new Deno.Command(command, {
    args: [...args, String(initEnd)],
    stdin: stdio.stdin,
    stdout: stdio.stdout,
    stderr: stdio.stderr,
    clearEnv: true,
    env,
  });
  const saved: number[] = [];
  const cwd = Deno.cwd();
  let child: Deno.ChildProcess;
  try {
    for (const [own] of ENGINE_NS) {
      saved.push(openat(AT_FDCWD, `/proc/thread-self/ns/${own}`, O_RDONLY | O_CLOEXEC));
    }
    fcntl(initEnd, F_SETFD, 0); // the one descriptor the init inherits
    try {
      for (const [, t] of ENGINE_NS) setns(ns.get(t)!, 0);
      child = cmd.spawn();
    } finally {
      restore(saved, cwd);
    }
  } catch (e) {
    close(engineEnd);
    closeNs(INIT_NS);
    // a pid namespace whose init has exited refuses new members (fork: ENOMEM)
    if (!processAlive(pid, startTime)) throw notRunning(target, e);
    throw new ContainerStartError(`start exec init: ${(e as Error).message}`, 125, { cause: e });
  } finally {
    for (const fd of saved) close(fd);
    close(initEnd);
    closeNs(ENGINE_NS.map(([, t]) => t));
  }
  const prepared: PreparedExecInternal = {
    kind: "process",
    pid: child.pid,
    targetPid: pid,
    targetStartTime: startTime,
    child,
    startTime: processStartTime(child.pid) ?? "",
    sync: engineEnd,
    flags: 0,
    stdio,
    nsFds: INIT_NS.map((n) => ns.get(n)!),
  };
  return prepared;
}

/** Kills and reaps a prepared exec init that will not be used; closes what it holds. */
export async function discardExec(init: PreparedExec): Promise<void> {
  if (init.kind === "direct") {
    const d = init as PreparedExecDirect;
    if (d.pidfd >= 0) close(d.pidfd);
    d.pidfd = -1;
    return;
  }
  const p = init as PreparedExecInternal;
  try {
    p.child.kill("SIGKILL");
  } catch { /* gone */ }
  close(p.sync);
  for (const fd of p.nsFds.splice(0)) close(fd);
  await p.child.status;
}
