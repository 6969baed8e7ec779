/**
 * Runs an OCI runtime spec as a container on this kernel and waits for it (DESIGN.md §3).
 *
 * A fixed list of named steps, each with its undo, run in order; the undos run in reverse when the
 * container has exited or when a step fails half way:
 *
 * 1. `spawn`   (or a {@linkcode prepareInit} done earlier) on the JS thread, without an await:
 *              a socket pair, save the namespace fds, unshare, spawn `berth __init <fd>`, setns
 *              back, chdir back. The init boots (a Deno start, the longest step) while the engine
 *              goes on; it waits for its configuration on the socket.
 * 2. `bundle`  write config.json, hosts, hostname, resolv.conf; make the rootfs mount point
 * 3. `cgroup`  create the container's cgroup and write its limits
 * 4. `config`  send the init its configuration (rootfs, cgroup.procs files, ...)
 * 5. `start`   wait for the init to exec the command (or report why it could not)
 * 6. `wait`    relay the terminal, forward signals, wait for the exit status, read OOM kills
 *
 * Mounts live only in the container's mount namespace, which the kernel tears down with its last
 * process: no mount is ever made in the engine's namespace.
 *
 * The direct start (a {@linkcode prepareInit} with `direct`, where `_direct.ts` allows it: the
 * CLI's `run`) has no init process: in step 5 the engine's own thread sets the container up and
 * spawns the command (`_direct_start.ts`), joining the v1 cgroups by thread id (the cgroup's
 * pids limit is one higher until the thread has left), then returns to its own namespaces and
 * credentials; steps 1–4 and 6 are as above.
 *
 * @module
 */
import { MSG_NOSIGNAL } from "../../ffi/constants.ts";
import { close } from "../../ffi/fs.ts";
import { sendmsg } from "../../ffi/socket.ts";
import { SyscallError } from "../../ffi/syscall_error.ts";
import {
  Cgroup,
  type CgroupLayout,
  cgroupMountsFor,
  detectCgroupLayout,
  returnThread,
} from "./cgroups.ts";
import { gettid } from "../../ffi/process.ts";
import {
  discardInit,
  initCommand,
  namespaceFlags,
  type PreparedDirectInternal,
  type PreparedInit,
  type PreparedInitInternal,
  prepareInit,
  type Stdio,
} from "./_prepare_init.ts";
import type { RuntimeSpec } from "./spec_types.ts";
import { etcFiles } from "./_etc_files.ts";
import type { RootfsSource, RunConfig } from "./_init_protocol.ts";
import { type PtyRelay, relayPty } from "./_pty.ts";
import {
  awaitExec,
  exitResult,
  forwardSignals,
  inputBytes,
  type IoOptions,
  onAbort,
  type Output,
  spawnMode,
  startIo,
  watch,
} from "./_attach.ts";
import { processAlive, processStartTime } from "./process_info.ts";
import { breakdown, mark, runSteps, type StepFn } from "./_steps.ts";
import { type DirectRequest, directSpecRefusal } from "./_direct.ts";
import { type DirectStarted, startDirect } from "./_direct_start.ts";

export type { RootfsSource };
export { discardInit, initCommand, prepareInit, processAlive, processStartTime };
export type { Output, PreparedInit, Stdio };

/** What a supervisor records when the container's command runs (see `onStart`). */
export interface StartInfo {
  /** The container's host pid (its init, now the command: PID 1 in its PID namespace). */
  pid: number;
  /**
   * The process's start time (field 22 of /proc/PID/stat, clock ticks since boot): with the pid,
   * it identifies the process; see {@linkcode processAlive}.
   */
  startTime: string;
}

/** Options of {@linkcode runContainer}. */
export interface RunContainerOptions {
  /** The bundle directory (created when missing): config.json and the /etc files go here. */
  bundleDir: string;
  /** The root filesystem: overlay layers (lowerdirs top-most first), or a directory to bind. */
  rootfs: RootfsSource;
  /** Container stdin (default `"null"`; docker's `-i` is `"inherit"`). */
  stdin?: Stdio;
  /**
   * Container stdout (default `"inherit"`). `"piped"` collects it into the result. A
   * `WritableStream` receives the chunks as the container writes them (for a supervisor's log):
   * each write is awaited, so a slow sink holds the container's writes back; a sink that throws
   * is dropped and the rest of the output discarded (the container is not hurt); the sink is
   * never closed, and every write is done when the run resolves. With a terminal, the terminal's
   * output goes here.
   */
  stdout?: Output;
  /**
   * Container stderr (default `"inherit"`), as `stdout`, kept apart from it; with a terminal it
   * is merged into stdout (a sink here then receives nothing).
   */
  stderr?: Output;
  /** Bytes to write to a `"piped"` stdin, which is then closed. */
  input?: Uint8Array | string;
  /** Aborting kills the container (SIGKILL). */
  signal?: AbortSignal;
  /** Forward SIGINT, SIGTERM and SIGHUP to the container (default true). */
  forwardSignals?: boolean;
  /** Remove, after the run, the files and directories the runtime created in the bundle. */
  removeBundle?: boolean;
  /** The host's cgroup layout (default: detected). */
  cgroupLayout?: CgroupLayout;
  /**
   * Called once the container's command runs, with its host pid and (second argument) what
   * identifies the process: record both to tell later whether it still runs.
   */
  onStart?: (pid: number, info: StartInfo) => void;
  /** Collect a breakdown of the start's milliseconds into the result. */
  timing?: boolean;
  /**
   * An init spawned earlier with {@linkcode prepareInit}: same namespaces and stdio (a sink is
   * spawned as `"piped"`; with a terminal, stdin as `"null"`).
   */
  init?: PreparedInit;
}

/** How a container ended. */
export interface ContainerResult {
  /** The exit status: the command's, or 128+n when signal n killed it. */
  exitCode: number;
  /** The signal that killed it, e.g. `"SIGKILL"`. */
  signal?: string;
  /** The kernel's OOM killer killed a process of the container. */
  oomKilled: boolean;
  /** Collected stdout (`"piped"`; with a terminal, the terminal's output). */
  stdout?: Uint8Array;
  /** Collected stderr (`"piped"`, no terminal). */
  stderr?: Uint8Array;
  /** Milliseconds per phase (with `timing`). */
  timing?: Record<string, number>;
}

/**
 * Runs `spec` as a container: writes it to `<bundleDir>/config.json`, runs it and waits for it to
 * exit; then removes its cgroup (and, with `removeBundle`, what it created in the bundle). A
 * failure to start throws ContainerStartError (exit code 125, or 126/127 when the command cannot
 * be run) after the same cleanup.
 */
export async function runContainer(
  spec: RuntimeSpec,
  options: RunContainerOptions,
): Promise<ContainerResult> {
  if (!options.bundleDir.startsWith("/")) {
    if (options.init) await discardInit(options.init);
    throw new TypeError(`bundleDir must be absolute: ${options.bundleDir}`);
  }
  const { value: result, marks } = await runSteps((step, marks) =>
    steps(spec, options, step, marks)
  );
  if (options.timing) result.timing = breakdown(marks, PHASES);
  return result;
}

async function steps(
  spec: RuntimeSpec,
  options: RunContainerOptions,
  step: StepFn,
  marks: Record<string, number>,
): Promise<ContainerResult> {
  const bundle = options.bundleDir.replace(/\/+$/, "");
  const io = {
    stdin: options.stdin ?? "null",
    stdout: options.stdout ?? "inherit",
    stderr: options.stderr ?? "inherit",
  };
  const terminal = spec.process.terminal ?? false;
  const initStdio = {
    stdin: terminal ? "null" as const : io.stdin,
    stdout: spawnMode(io.stdout),
    stderr: spawnMode(io.stderr),
  };

  const layout = options.cgroupLayout ?? detectCgroupLayout();

  // 1. spawn (or take the prepared init)
  const namespaces = spec.linux?.namespaces ?? [];
  let prepared = options.init ?? prepareInit(namespaces, initStdio, {
    terminal,
    cgroupLayout: layout,
  });
  if (prepared.kind === "direct") {
    if (options.init) checkPrepared(prepared as PreparedDirectInternal, spec, initStdio);
    // the spec may need what only the init process gives (known only now)
    if (directSpecRefusal(spec) !== undefined) prepared = prepareInit(namespaces, initStdio);
  }
  if (prepared.kind === "direct") {
    return await directSteps(spec, options, step, marks, {
      prepared: prepared as PreparedDirectInternal,
      bundle,
      layout,
      io,
      stdio: initStdio,
    });
  }
  const { child, sync, startTime } = prepared as PreparedInitInternal;
  let syncOpen = true;
  const closeSync = () => {
    if (syncOpen) close(sync);
    syncOpen = false;
  };
  const { status, kill } = watch(child);
  step("spawn", async () => {
    kill();
    closeSync();
    await status;
  });
  if (options.init) checkPrepared(prepared as PreparedInitInternal, spec, initStdio);
  step("abort", onAbort(options.signal, kill));
  const input = inputBytes(options.input);
  const output = startIo(child, io, initStdio, input, terminal);
  output.catch(() => {/* awaited below; a start failure leaves it unobserved */});

  // 2. bundle
  const created = prepareBundle(spec, bundle);
  step("bundle", () => {
    if (options.removeBundle) {
      for (const p of created.reverse()) Deno.removeSync(p, { recursive: true });
    }
  });

  // 3. cgroup
  const cgroup = spec.linux?.cgroupsPath
    ? Cgroup.create(spec.linux.cgroupsPath, spec.linux.resources, { layout })
    : undefined;
  step("cgroup", () => cgroup?.remove());

  // 4. config
  const config: RunConfig = {
    bundle,
    rootfs: options.rootfs,
    cgroupProcs: cgroup?.procsFiles ?? [],
    cgroupMounts: cgroupMountsFor(layout),
    timing: options.timing ?? false,
  };
  try {
    sendmsg(sync, new TextEncoder().encode(JSON.stringify(config)), [], MSG_NOSIGNAL);
  } catch (e) {
    // the init died before reading it: awaitExec reports how
    if (!(e instanceof SyscallError && (e.code === "EPIPE" || e.code === "ECONNRESET"))) throw e;
  }
  step("config");

  // 5. start
  const { pty, initMarks } = await awaitExec(sync, status);
  closeSync();
  if (initMarks) Object.assign(marks, prefix(initMarks, "init."));
  step("start");
  let relay: PtyRelay | undefined;
  if (pty !== undefined) {
    relay = relayPty(pty, { stdin: io.stdin, stdout: io.stdout, input });
    step("terminal", () => relay!.close());
  }
  options.onStart?.(child.pid, { pid: child.pid, startTime });

  // 6. wait
  step("signals", forwardSignals(child, options.forwardSignals ?? true));
  const st = await status;
  mark(marks, "exited");
  const [out, err] = await output;
  const ttyOut = await relay?.done;
  return exitResult(st, (cgroup?.oomKills() ?? 0) > 0, ttyOut ?? out, err);
}

function prefix(o: Record<string, number>, p: string): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [p + k, v]));
}

// Writes config.json and the /etc files, makes the rootfs mount point; returns what it created
// (to remove with `removeBundle`), outermost first.
function prepareBundle(spec: RuntimeSpec, bundle: string): string[] {
  const created: string[] = [];
  const mkdir = (dir: string) => {
    try {
      Deno.statSync(dir);
    } catch {
      const missing: string[] = [];
      for (let d = dir; d !== "/" && !exists(d); d = d.replace(/\/[^/]*$/, "") || "/") {
        missing.unshift(d);
      }
      Deno.mkdirSync(dir, { recursive: true });
      if (missing.length) created.push(missing[0]);
    }
  };
  mkdir(bundle);
  const file = (path: string, text: string) => {
    const fresh = !exists(path);
    Deno.writeTextFileSync(path, text);
    if (fresh && !created.some((c) => path.startsWith(c + "/"))) created.push(path);
  };
  file(`${bundle}/config.json`, JSON.stringify(spec, null, 2));
  const hostNetwork = !spec.linux?.namespaces?.some((n) => n.type === "network");
  const etc = etcFiles(spec.hostname ?? "localhost", hostNetwork);
  for (const m of spec.mounts ?? []) {
    const name = m.source?.startsWith(bundle + "/") ? m.source.slice(bundle.length + 1) : "";
    if (m.type === "bind" && name in etc && !exists(m.source!)) file(m.source!, etc[name]);
  }
  const root = spec.root.path.startsWith("/") ? spec.root.path : `${bundle}/${spec.root.path}`;
  if (!exists(root)) {
    Deno.mkdirSync(root, { recursive: true });
    if (!created.some((c) => root.startsWith(c + "/"))) created.push(root);
  }
  return created;
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Steps 1–6 for a direct start (`_direct_start.ts`): this thread sets the container up and
 * spawns the command, then returns to the engine's namespaces and credentials; the engine moves
 * it out of the container's cgroup, and waits for the command as for an init.
 */
async function directSteps(
  spec: RuntimeSpec,
  options: RunContainerOptions,
  step: StepFn,
  marks: Record<string, number>,
  how: {
    prepared: PreparedDirectInternal;
    bundle: string;
    layout: CgroupLayout;
    io: IoOptions;
    stdio: { stdin: Stdio; stdout: Stdio; stderr: Stdio };
  },
): Promise<ContainerResult> {
  // 1. spawn: later, in 5
  step("spawn");

  // 2. bundle
  const created = prepareBundle(spec, how.bundle);
  step("bundle", () => {
    if (options.removeBundle) {
      for (const p of created.reverse()) Deno.removeSync(p, { recursive: true });
    }
  });

  // 3. cgroup (the starting thread joins it too: one more pid until it leaves), in the v1
  // hierarchies only: a hybrid host's cgroup2 cannot take a thread alone, so the container gets
  // no cgroup there (none to leave behind either; it has no controllers)
  const pidsLimit = spec.linux?.resources?.pids?.limit;
  const limitPids = pidsLimit !== undefined && pidsLimit > 0;
  const layout = how.layout.version === "v2" ? how.layout : { ...how.layout, unified: undefined };
  const cgroup = spec.linux?.cgroupsPath
    ? Cgroup.create(spec.linux.cgroupsPath, spec.linux.resources, { layout })
    : undefined;
  step("cgroup", () => cgroup?.remove());
  if (cgroup && limitPids) cgroup.setPidsMax(pidsLimit + 1);

  // 4. config
  const request: DirectRequest = {
    config: {
      bundle: how.bundle,
      rootfs: options.rootfs,
      cgroupProcs: [],
      cgroupMounts: cgroupMountsFor(layout),
      timing: options.timing ?? false,
    },
    spec,
    flags: how.prepared.flags,
    stdio: how.stdio,
    cgroupTasks: cgroup?.tasksFiles ?? [],
    timing: options.timing ?? false,
  };
  step("config");

  // 5. start
  const initMarks: Record<string, number> = {};
  let started: DirectStarted;
  try {
    started = startDirect(request, initMarks);
  } catch (e) {
    if (cgroup) returnThread(gettid(), how.layout);
    throw e;
  }
  const { child } = started;
  const startTime = processStartTime(child.pid) ?? "";
  const { status, kill } = watch(child);
  step("start", async () => {
    kill();
    await status;
  });
  // the thread leaves the cgroup; the command has the whole pids limit from here on (set first:
  // the thread's slot must not go to the container; a failure kills the command, see above)
  try {
    if (cgroup && limitPids) cgroup.setPidsMax(pidsLimit);
  } finally {
    if (cgroup) returnThread(gettid(), how.layout);
  }
  if (options.timing) Object.assign(marks, prefix(initMarks, "init."));
  step("abort", onAbort(options.signal, kill));
  const input = inputBytes(options.input);
  const output = startIo(child, how.io, how.stdio, input, false);
  options.onStart?.(child.pid, { pid: child.pid, startTime });

  // 6. wait
  step("signals", forwardSignals(child, options.forwardSignals ?? true));
  const st = await status;
  mark(marks, "exited");
  const [out, err] = await output;
  return exitResult(st, (cgroup?.oomKills() ?? 0) > 0, out, err);
}

function checkPrepared(
  init: PreparedInitInternal | PreparedDirectInternal,
  spec: RuntimeSpec,
  stdio: { stdin: Stdio; stdout: Stdio; stderr: Stdio },
): void {
  if (init.flags !== namespaceFlags(spec.linux?.namespaces ?? [])) {
    throw new TypeError("The prepared init's namespaces differ from the spec's");
  }
  const s = init.stdio;
  if (s.stdin !== stdio.stdin || s.stdout !== stdio.stdout || s.stderr !== stdio.stderr) {
    throw new TypeError("The prepared init's stdio differs from the run's");
  }
}

// Milliseconds per phase, from the engine's and the init's timestamps.
const PHASES = [
  ["spawn", "begin", "spawn"],
  ["bundle", "spawn", "bundle"],
  ["cgroup", "bundle", "cgroup"],
  ["initDenoStart", "spawn", "init.origin"],
  ["initModules", "init.origin", "init.start"],
  ["initDlopen", "init.start", "init.ffi"],
  ["initWaitConfig", "init.ffi", "init.config"],
  ["initCgroup", "init.config", "init.cgroup"],
  ["initRootfs", "init.cgroup", "init.rootfs"],
  ["initMounts", "init.rootfs", "init.mounts"],
  ["initPivot", "init.mounts", "init.pivot"],
  ["initSetup", "init.pivot", "init.setup"],
  ["initPrivileges", "init.setup", "init.exec"],
  ["directSpawn", "init.exec", "init.spawned"],
  ["execToStartSeen", "init.exec", "start"],
  ["run", "start", "exited"],
  ["cleanup", "exited", "cleaned"],
  ["total", "begin", "cleaned"],
] as const;
