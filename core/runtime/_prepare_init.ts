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
  if (Deno.build.standalone) return { command: Deno.execPath(), args: ["__init"], env };
  const main = new URL("../../main.ts", import.meta.url).pathname;
  // the init's graph needs neither the config's import map nor the lock file: skipping both
  // saves ~3 ms of every start
  return {
    command: Deno.execPath(),
    args: ["run", "-A", "--no-lock", "--no-config", main, "__init"],
    env,
  };
}

/**
 * A container init spawned ahead of its configuration (see {@linkcode prepareInit}). Pass it to
 * {@linkcode runContainer} as `init`; if it is never used, {@linkcode discardInit} it.
 */
export interface PreparedInit {
  /** The init's host pid. */
  readonly pid: number;
}

/** What run.ts needs of a prepared init. */
export interface PreparedInitInternal extends PreparedInit {
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

/**
 * Spawns a container's init in new namespaces (`namespaces` as in the spec's `linux.namespaces`)
 * with the given stdio (with a terminal, stdin `"null"`), before the container is configured: the
 * init's Deno start then overlaps whatever the caller does until {@linkcode runContainer}. This is
 * DESIGN §3's step 1: all on this thread, with no await between unshare and setns.
 */
export function prepareInit(
  namespaces: readonly SpecNamespace[],
  stdio: { stdin: Stdio; stdout: Stdio; stderr: Stdio },
): PreparedInit {
  const flags = namespaceFlags(namespaces);
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
