/**
 * Spawning a container's init (DESIGN §3, step 1); public through prepare_init.ts, internals
 * (`PreparedInitInternal`, `namespaceFlags`) for run.ts.
 *
 * @module
 */
import {
  AF_UNIX,
  AT_FDCWD,
  CLONE_NEWIPC,
  CLONE_NEWNET,
  CLONE_NEWNS,
  CLONE_NEWPID,
  CLONE_NEWUTS,
  F_SETFD,
  O_CLOEXEC,
  O_RDONLY,
  SOCK_CLOEXEC,
  SOCK_SEQPACKET,
} from "../../ffi/constants.ts";
import { chdir, close, fcntl, openat } from "../../ffi/fs.ts";
import { setns, unshare } from "../../ffi/namespaces.ts";
import { socketpair } from "../../ffi/socket.ts";
import { ContainerStartError } from "./start_error.ts";
import { processStartTime } from "./process_info.ts";
import type { SpecNamespace } from "./spec_types.ts";
import { type CgroupLayout, detectCgroupLayout } from "./cgroups.ts";
import { directStartRefusal } from "./_direct.ts";
import { selfCommand } from "../self.ts";

/** How a stream of the container is connected. */
export type Stdio = "inherit" | "piped" | "null";

const NS_FLAGS: Record<string, [number, string]> = {
  mount: [CLONE_NEWNS, "mnt"],
  uts: [CLONE_NEWUTS, "uts"],
  ipc: [CLONE_NEWIPC, "ipc"],
  network: [CLONE_NEWNET, "net"],
  pid: [CLONE_NEWPID, "pid_for_children"],
};

// what Deno needs to find its cache (the init's modules are compiled there once): nothing else of
// the engine's environment reaches the init
const INIT_ENV_KEYS = ["DENO_DIR", "HOME", "XDG_CACHE_HOME", "NO_COLOR"];

/**
 * The command that starts berth's hidden init mode: the compiled binary, or `deno run` main.ts,
 * and its whole environment (spawn it with `clearEnv`). The engine's environment (a registry
 * token, a proxy password) stays out: the init runs inside the container's namespaces, and an
 * exec init's /proc/PID/environ is readable by the container's root while Deno starts.
 */
export function initCommand(): { command: string; args: string[]; env: Record<string, string> } {
  const env: Record<string, string> = { DENO_NO_UPDATE_CHECK: "1" };
  for (const k of INIT_ENV_KEYS) {
    const v = Deno.env.get(k);
    if (v !== undefined) env[k] = v;
  }
  // the init's graph needs neither the config's import map nor the lock file: skipping both
  // saves ~3 ms of every start; nor the modules of the other modes main.ts can import
  return {
    ...selfCommand("__init", ["--no-lock", "--no-config", "--unstable-lazy-dynamic-imports"]),
    env,
  };
}

/**
 * A container init spawned ahead of its configuration (see {@linkcode prepareInit}). Pass it to
 * {@linkcode runContainer} as `init`; if it is never used, {@linkcode discardInit} it.
 */
export interface PreparedInit {
  /**
   * `"process"`: berth's init process (DESIGN §3); `"direct"`: the calling thread will spawn
   * the command itself (see `_direct.ts` for when).
   */
  readonly kind: "process" | "direct";
  /** The init's host pid (0 for `"direct"`: no process exists before the command's). */
  readonly pid: number;
}

/** What run.ts needs of a prepared direct start. */
export interface PreparedDirectInternal extends PreparedInit {
  readonly kind: "direct";
  flags: number;
  stdio: { stdin: Stdio; stdout: Stdio; stderr: Stdio };
}

/** What run.ts needs of a prepared init. */
export interface PreparedInitInternal extends PreparedInit {
  readonly kind: "process";
  child: Deno.ChildProcess;
  /** Its start time, read right after the spawn (execve keeps it; the init waits for its config). */
  startTime: string;
  sync: number;
  flags: number;
  stdio: { stdin: Stdio; stdout: Stdio; stderr: Stdio };
}

/** The CLONE_NEW* flags of the namespaces the engine creates at spawn. */
export function namespaceFlags(namespaces: readonly SpecNamespace[]): number {
  const wanted = namespaces.filter((n) => NS_FLAGS[n.type]);
  if (wanted.some((n) => n.path)) {
    throw new ContainerStartError("joining existing namespaces is not supported");
  }
  return wanted.reduce((f, n) => f | NS_FLAGS[n.type][0], 0);
}

/** Options of {@linkcode prepareInit}. */
export interface PrepareInitOptions {
  /** The container gets a terminal (`-t`): only the init process gives one. */
  terminal?: boolean;
  /** The host's cgroup layout (default: detected). */
  cgroupLayout?: CgroupLayout;
  /**
   * May the calling thread start the container itself where it can (the direct start, see
   * `_direct.ts`)? Only for a process that starts this one container and executes nothing
   * afterwards (its thread keeps a smaller capability bounding set and no_new_privs): berth's
   * CLI. Default false: berth's init process.
   */
  direct?: boolean;
}

// the direct start leaves its thread unfit for another one
let directUsed = false;

/**
 * Whether this thread may start a container (or exec) directly: asked for, not done before in
 * this process, and possible here (see `_direct.ts`). True claims it.
 */
export function claimDirect(
  wanted: boolean | undefined,
  layout: CgroupLayout | undefined,
  terminal: boolean,
): boolean {
  if (!wanted || directUsed) return false;
  if (directStartRefusal(layout ?? detectCgroupLayout(), terminal) !== undefined) return false;
  directUsed = true;
  return true;
}

/**
 * Prepares a container's start in new namespaces (`namespaces` as in the spec's
 * `linux.namespaces`) with the given stdio (with a terminal, stdin `"null"`), before the container
 * is configured: berth's init process, spawned now in the new namespaces so that its Deno start
 * overlaps whatever the caller does until {@linkcode runContainer} (DESIGN §3's step 1: all on
 * this thread, with no await between unshare and setns); or, with `direct` where it can be
 * used, nothing yet: `runContainer` then starts the command from this thread.
 */
export function prepareInit(
  namespaces: readonly SpecNamespace[],
  stdio: { stdin: Stdio; stdout: Stdio; stderr: Stdio },
  options: PrepareInitOptions = {},
): PreparedInit {
  const flags = namespaceFlags(namespaces);
  if (
    (flags & CLONE_NEWPID) && (flags & CLONE_NEWNS) &&
    claimDirect(options.direct, options.cgroupLayout, options.terminal ?? false)
  ) {
    const prepared: PreparedDirectInternal = { kind: "direct", pid: 0, flags, stdio };
    return prepared;
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
    for (const [flag, name] of Object.values(NS_FLAGS)) {
      if (flags & flag) {
        saved.push(openat(AT_FDCWD, `/proc/thread-self/ns/${name}`, O_RDONLY | O_CLOEXEC));
      }
    }
    fcntl(initEnd, F_SETFD, 0); // the one descriptor the init inherits
    unshare(flags);
    try {
      child = cmd.spawn();
    } finally {
      restore(saved, cwd);
    }
  } catch (e) {
    close(engineEnd);
    throw new ContainerStartError(`start container init: ${(e as Error).message}`, 125, {
      cause: e,
    });
  } finally {
    for (const fd of saved) close(fd);
    close(initEnd);
  }
  const prepared: PreparedInitInternal = {
    kind: "process",
    pid: child.pid,
    child,
    startTime: processStartTime(child.pid) ?? "",
    sync: engineEnd,
    flags,
    stdio,
  };
  return prepared;
}

/** Kills and reaps a prepared init that will not be used. */
export async function discardInit(init: PreparedInit): Promise<void> {
  if (init.kind === "direct") return;
  const { child, sync } = init as PreparedInitInternal;
  try {
    child.kill("SIGKILL");
  } catch { /* gone */ }
  close(sync);
  await child.status;
}

/**
 * Returns this thread to the namespaces `saved` (fds of its own, opened before it left them) and
 * to `cwd`; a failure leaves the thread in a container's namespaces, so the process exits (125).
 */
export function restore(saved: number[], cwd: string): void {
  try {
    for (const fd of saved) setns(fd, 0);
    chdir(cwd);
  } catch (e) {
    // this thread is stuck in the container's namespaces: nothing it does can be trusted
    console.error(`berth: fatal: cannot return to the engine's namespaces: ${e}`);
    Deno.exit(125);
  }
}
