/**
 * Runs a process in a running container, as `docker exec` does, through the same init path as
 * the container's own start (DESIGN.md §3): a process joined into a container by setns alone
 * would keep the engine's full root powers, so the engine spawns `berth __init <fd>` inside the
 * container's namespaces and the init drops to the process's privileges before its execve.
 *
 * 1. `spawn`   {@linkcode prepareExec} (or one done earlier), on the JS thread, without an await:
 *              check the target's pid and start time, open its namespaces; save this thread's
 *              namespaces, setns into the target's pid (for children), net, ipc and uts
 *              namespaces, spawn the init, setns back. The mount namespace is left to
 *              the init: a spawn from a thread in the container's mount namespace would look for
 *              the berth binary in the container's root.
 * 2. `config`  read the target's cgroups (/proc/PID/cgroup, while the init starts); send the
 *              init the process and, as SCM_RIGHTS, the container's cgroup and mount
 *              namespaces; the init writes itself into the container's cgroup.procs files (host
 *              paths), setns(cgroup), unshare(CLONE_FS) + setns(mnt) (root and cwd become the
 *              container's root), chdir(cwd), terminal, rlimits, capabilities, user and groups,
 *              no_new_privs, execve
 * 3. `start`   wait for the init's exec (or the reason it could not: 125, 126, 127)
 * 4. `wait`    relay the terminal, forward signals, wait for the exit status
 *
 * Nothing is created on the host (no mount, cgroup or file); the undos only stop and reap the
 * process when the exec fails or is aborted.
 *
 * The direct exec (a {@linkcode prepareExec} with `direct`, where `_direct.ts` allows it: the
 * CLI's `exec`) has no init process: the engine's own thread joins the container's v1 cgroups
 * (by thread id) and namespaces (through a pidfd of its first process), takes the process's
 * privileges, spawns the command and returns (`_direct_start.ts`). On a hybrid host the process
 * stays in the engine's cgroup2 cgroup (placement only, no controllers: a thread cannot join it
 * alone); its limits are the v1 hierarchies'.
 *
 * Known limit of the init process: the exec init is a Deno process that starts (tens of milliseconds) inside the
 * container's pid namespace but still in the host's mount namespace, with the engine's full
 * capabilities: it joins the container's mount namespace only once configured. A container run
 * with `--cap-add SYS_PTRACE` can, during that window, read the host's filesystem through
 * `/proc/<exec init>/root` (and the init's memory and descriptors). Without CAP_SYS_PTRACE the
 * kernel keeps the container out (the init's capabilities are not a subset of the container's,
 * and the init makes itself non-dumpable first thing). The init's environment holds nothing of
 * the engine's, only what Deno needs to find its cache (`DENO_DIR`, `HOME`, `XDG_CACHE_HOME`).
 *
 * @module
 */
import { MSG_NOSIGNAL, SO_SNDBUFFORCE, SOL_SOCKET } from "../../ffi/constants.ts";
import { close } from "../../ffi/fs.ts";
import { sendmsg, setsockopt } from "../../ffi/socket.ts";
import { SyscallError } from "../../ffi/syscall_error.ts";
import { cgroupProcsFilesOf, detectCgroupLayout, returnThread } from "./cgroups.ts";
import { gettid } from "../../ffi/process.ts";
import { directExecRefusal } from "./_direct.ts";
import { type DirectStarted, startDirectExec } from "./_direct_start.ts";
import type { Stdio } from "./_prepare_init.ts";
import type { ExecConfig } from "./_init_protocol.ts";
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
import { processAlive } from "./process_info.ts";
import {
  discardExec,
  type ExecTarget,
  INIT_NS,
  notRunning,
  type PreparedExec,
  type PreparedExecDirect,
  type PreparedExecInternal,
  prepareExec,
} from "./prepare_exec.ts";
import type { SpecProcess } from "./spec_types.ts";
import type { ContainerResult } from "./run.ts";
import { breakdown, mark, runSteps, type StepFn } from "./_steps.ts";

export { discardExec, prepareExec };
export type { ExecTarget, PreparedExec };

/** Options of {@linkcode execInContainer}. */
export interface ExecInContainerOptions {
  /** The process's stdin (default `"null"`; docker's `-i` is `"inherit"`). */
  stdin?: Stdio;
  /**
   * Its stdout (default `"inherit"`); `"piped"` collects it into the result; a `WritableStream`
   * gets the chunks as they come (see `RunContainerOptions.stdout`). With a terminal, the
   * terminal's output.
   */
  stdout?: Output;
  /** Its stderr (default `"inherit"`), as `stdout`; with a terminal it is merged into stdout. */
  stderr?: Output;
  /** Bytes to write to a `"piped"` stdin, which is then closed. */
  input?: Uint8Array | string;
  /** Aborting kills the process (SIGKILL). */
  signal?: AbortSignal;
  /** Forward SIGINT, SIGTERM and SIGHUP to the process (default true). */
  forwardSignals?: boolean;
  /** Called with the process's host pid once its command runs. */
  onStart?: (pid: number) => void;
  /** Collect a breakdown of the milliseconds into the result. */
  timing?: boolean;
  /** An init spawned earlier by {@linkcode prepareExec} for the same target and stdio. */
  init?: PreparedExec;
}

/**
 * Runs `process` in the running container `target` (docker's `exec`) and waits for it: joins
 * every namespace of the container (mnt, uts, ipc, net, pid, cgroup) and its cgroups, drops to
 * the process's capabilities, user and groups and no_new_privs, changes to its cwd and execs its
 * args with its env. Resolves with its exit status (128+n when signal n killed it; `oomKilled` is
 * always false). Throws ContainerStartError: 125 when the container is not running or the join
 * fails, 126 when the command cannot be invoked or the cwd is missing, 127 when it is not found
 * (docker's messages, e.g. `exec: "nosuch": executable file not found in $PATH`).
 *
 * The process dies with the container (its PID 1), and, through the init process, with the
 * engine (PR_SET_PDEATHSIG); a direct exec's outlives an engine killed without its clean-up.
 *
 * @example
 * ```ts ignore
 * // `berth exec -u app -e A=1 -w /tmp C ls -l`, the container's pid and start time recorded
 * // by runContainer's onStart; the init spawned first, while the spec is read
 * import { execInContainer, prepareExec } from "./exec.ts";
 * import { execProcess } from "./exec_spec.ts";
 * const target = { pid: record.pid, startTime: record.pidStart, name: "C" };
 * const stdio = { stdin: "null", stdout: "inherit", stderr: "inherit" } as const;
 * const init = prepareExec(target, stdio);
 * const spec = JSON.parse(await Deno.readTextFile(`${bundle}/config.json`));
 * const process = execProcess(spec, {
 *   command: ["ls", "-l"],
 *   user: "app",
 *   env: ["A=1"],
 *   workdir: "/tmp",
 *   pid: target.pid,
 * });
 * const { exitCode } = await execInContainer(target, process, { ...stdio, init });
 * ```
 */
export async function execInContainer(
  target: ExecTarget,
  process: SpecProcess,
  options: ExecInContainerOptions = {},
): Promise<ContainerResult> {
  try {
    checkProcess(process);
  } catch (e) {
    if (options.init) await discardExec(options.init).catch(() => {});
    throw e;
  }
  const { value: result, marks } = await runSteps((step, marks) =>
    steps(target, process, options, step, marks)
  );
  if (options.timing) result.timing = breakdown(marks, PHASES);
  return result;
}

function checkProcess(p: SpecProcess): void {
  if (!Array.isArray(p.args) || !p.args.length || p.args.some((a) => typeof a !== "string")) {
    throw new TypeError("exec: the process needs args (a command)");
  }
  if (typeof p.cwd !== "string" || !p.cwd.startsWith("/")) {
    throw new TypeError(`exec: the working directory must be absolute: ${JSON.stringify(p.cwd)}`);
  }
  if (!Number.isInteger(p.user?.uid) || !Number.isInteger(p.user?.gid)) {
    throw new TypeError("exec: the process needs a user (uid, gid)");
  }
}

async function steps(
  target: ExecTarget,
  process: SpecProcess,
  options: ExecInContainerOptions,
  step: StepFn,
  marks: Record<string, number>,
): Promise<ContainerResult> {
  const io = {
    stdin: options.stdin ?? "null",
    stdout: options.stdout ?? "inherit",
    stderr: options.stderr ?? "inherit",
  };
  const terminal = process.terminal ?? false;
  const initStdio = {
    stdin: terminal ? "null" as const : io.stdin,
    stdout: spawnMode(io.stdout),
    stderr: spawnMode(io.stderr),
  };

  // 1. spawn (or take the prepared init)
  let taken: PreparedExec = options.init ?? prepareExec(target, initStdio);
  if (
    taken.kind === "direct" &&
    directExecRefusal(process, cgroupProcsFilesOf(taken.targetPid) ?? []) !== undefined
  ) {
    // what only the init process gives (a terminal, other rlimits, no slot in a limited cgroup)
    await discardExec(taken);
    taken = prepareExec(target, initStdio);
  }
  if (taken.kind === "direct") {
    return await directSteps(target, process, options, step, marks, {
      prepared: taken as PreparedExecDirect,
      io,
      stdio: initStdio,
    });
  }
  const prepared = taken as PreparedExecInternal;
  const { child, sync, nsFds } = prepared;
  let syncOpen = true;
  const closeSync = () => {
    if (syncOpen) close(sync);
    syncOpen = false;
  };
  const closeNs = () => {
    for (const fd of nsFds.splice(0)) close(fd);
  };
  const { status, kill } = watch(child);
  step("spawn", async () => {
    kill();
    closeSync();
    closeNs();
    await status;
  });
  if (options.init) checkPreparedExec(prepared, target, initStdio);
  step("abort", onAbort(options.signal, kill));
  const input = inputBytes(options.input);
  const output = startIo(child, io, initStdio, input, terminal);
  output.catch(() => {/* awaited below; a start failure leaves it unobserved */});

  // 2. config, with the container's cgroups (read now, while the init starts) and its cgroup
  // and mount namespaces
  const cgroupProcs = cgroupProcsFilesOf(prepared.targetPid);
  if (!cgroupProcs || !processAlive(prepared.targetPid, prepared.targetStartTime)) {
    throw notRunning(target);
  }
  const config: ExecConfig = {
    kind: "exec",
    process,
    cgroupProcs,
    namespaces: [...INIT_NS],
    timing: options.timing ?? false,
  };
  const message = new TextEncoder().encode(JSON.stringify(config));
  // one datagram: a large environment or command line needs a larger send buffer than the
  // default (about 200 KiB); the init reads the length first
  if (message.length > 100_000) {
    setsockopt(sync, SOL_SOCKET, SO_SNDBUFFORCE, 2 * message.length + 65536);
  }
  try {
    sendmsg(sync, message, nsFds, MSG_NOSIGNAL);
  } catch (e) {
    // the init died before reading it: awaitExec reports how
    if (!(e instanceof SyscallError && (e.code === "EPIPE" || e.code === "ECONNRESET"))) throw e;
  }
  closeNs();
  step("config");

  // 3. start
  const { pty, initMarks } = await awaitExec(sync, status);
  closeSync();
  if (initMarks) {
    for (const [k, v] of Object.entries(initMarks)) marks[`init.${k}`] = v;
  }
  step("start");
  let relay: PtyRelay | undefined;
  if (pty !== undefined) {
    relay = relayPty(pty, { stdin: io.stdin, stdout: io.stdout, input });
    step("terminal", () => relay!.close());
  }
  options.onStart?.(child.pid);

  // 4. wait
  step("signals", forwardSignals(child, options.forwardSignals ?? true));
  const st = await status;
  mark(marks, "exited");
  const [out, err] = await output;
  const ttyOut = await relay?.done;
  return exitResult(st, false, ttyOut ?? out, err);
}

/**
 * Steps 1–4 for a direct exec (`_direct_start.ts`): this thread joins the container, spawns the
 * command and returns; the command is this process's child.
 */
async function directSteps(
  target: ExecTarget,
  process: SpecProcess,
  options: ExecInContainerOptions,
  step: StepFn,
  marks: Record<string, number>,
  how: {
    prepared: PreparedExecDirect;
    io: IoOptions;
    stdio: { stdin: Stdio; stdout: Stdio; stderr: Stdio };
  },
): Promise<ContainerResult> {
  const { prepared } = how;
  step("spawn", () => discardExec(prepared));
  checkPreparedExec(prepared, target, how.stdio);
  const layout = detectCgroupLayout();
  const cgroupProcs = cgroupProcsFilesOf(prepared.targetPid);
  if (!cgroupProcs || !processAlive(prepared.targetPid, prepared.targetStartTime)) {
    throw notRunning(target);
  }
  // v1 hierarchies only (a thread cannot join a cgroup2 cgroup alone)
  const v1 = layout.version === "v2" ? [] : layout.hierarchies.map((h) => `${h.mountpoint}/`);
  const cgroupTasks = cgroupProcs.filter((f) => v1.some((m) => f.startsWith(m)))
    .map((f) => f.replace(/cgroup\.procs$/, "tasks"));
  step("config");

  const initMarks: Record<string, number> = {};
  let started: DirectStarted;
  try {
    started = startDirectExec(
      { process, pidfd: prepared.pidfd, cgroupTasks, stdio: how.stdio },
      initMarks,
    );
  } catch (e) {
    returnThread(gettid(), layout);
    // a pid namespace whose init has exited refuses new members (fork: ENOMEM)
    if (!processAlive(prepared.targetPid, prepared.targetStartTime)) throw notRunning(target, e);
    throw e;
  }
  const { child } = started;
  const { status, kill } = watch(child);
  step("start", async () => {
    kill();
    await status;
  });
  returnThread(gettid(), layout); // a failure kills the process (the step above)
  for (const [k, v] of Object.entries(initMarks)) marks[`init.${k}`] = v;
  step("abort", onAbort(options.signal, kill));
  const output = startIo(child, how.io, how.stdio, inputBytes(options.input), false);
  options.onStart?.(child.pid);

  step("signals", forwardSignals(child, options.forwardSignals ?? true));
  const st = await status;
  mark(marks, "exited");
  const [out, err] = await output;
  return exitResult(st, false, out, err);
}

function checkPreparedExec(
  prepared: PreparedExec & { stdio: { stdin: Stdio; stdout: Stdio; stderr: Stdio } },
  target: ExecTarget,
  stdio: { stdin: Stdio; stdout: Stdio; stderr: Stdio },
): void {
  const s = prepared.stdio;
  if (prepared.targetPid !== target.pid) {
    throw new TypeError("The prepared exec's container differs from the target");
  }
  if (s.stdin !== stdio.stdin || s.stdout !== stdio.stdout || s.stderr !== stdio.stderr) {
    throw new TypeError("The prepared exec's stdio differs from the exec's");
  }
}

// Milliseconds per phase, from the engine's and the init's timestamps.
const PHASES = [
  ["spawn", "begin", "spawn"],
  ["initDenoStart", "spawn", "init.origin"],
  ["initModules", "init.origin", "init.start"],
  ["initDlopen", "init.start", "init.ffi"],
  ["initWaitConfig", "init.ffi", "init.config"],
  ["initCgroup", "init.config", "init.cgroup"],
  ["initJoin", "init.cgroup", "init.join"],
  ["initSetup", "init.join", "init.setup"],
  ["initPrivileges", "init.setup", "init.exec"],
  ["directSpawn", "init.exec", "init.spawned"],
  ["execToStartSeen", "init.exec", "start"],
  ["run", "start", "exited"],
  ["cleanup", "exited", "cleaned"],
  ["total", "begin", "cleaned"],
] as const;
