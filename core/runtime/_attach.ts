/**
 * The engine's side of a started init, shared by `runContainer` and `execInContainer`: the
 * container's stdio (inherited, collected, discarded or streamed to a sink), the init's messages
 * up to its `exec`, signal forwarding.
 *
 * @module
 */
import { POLLIN, SIGNALS } from "../../ffi/constants.ts";
import { close } from "../../ffi/fs.ts";
import { pollAsync, recvmsg } from "../../ffi/socket.ts";
import type { Child } from "./_child.ts";
import type { Stdio } from "./_prepare_init.ts";
import type { InitMessage } from "./_init_protocol.ts";
import { ContainerStartError } from "./start_error.ts";
import type { ContainerResult } from "./run.ts";

/**
 * Where a container's output stream goes: a {@linkcode Stdio} mode, or a sink that receives the
 * chunks as they come (berth never closes it).
 */
export type Output = Stdio | WritableStream<Uint8Array>;

/** The stdio of a run or exec as given. */
export interface IoOptions {
  stdin: Stdio;
  stdout: Output;
  stderr: Output;
}

/** How the init is spawned for `output`: a sink is read from a pipe. */
export function spawnMode(output: Output): Stdio {
  return typeof output === "string" ? output : "piped";
}

/** The bytes of `input` (a string is UTF-8 encoded). */
export function inputBytes(input: Uint8Array | string | undefined): Uint8Array | undefined {
  return typeof input === "string" ? new TextEncoder().encode(input) : input;
}

/**
 * Writes every chunk of `stream` to `sink`, in order, each write awaited (the sink's
 * backpressure holds the container's writes back through the pipe). A sink that fails is left
 * alone and the rest of the stream is read and dropped, so that the container never gets a
 * SIGPIPE because of its log. Resolves at the stream's end; the sink is not closed.
 */
export async function pump(
  stream: ReadableStream<Uint8Array>,
  sink: WritableStream<Uint8Array>,
): Promise<void> {
  const writer = sink.getWriter();
  let broken = false;
  try {
    for await (const chunk of stream) {
      if (broken) continue;
      try {
        await writer.write(chunk);
      } catch {
        broken = true;
      }
    }
  } finally {
    writer.releaseLock();
  }
}

/**
 * Feeds a piped stdin and reads the child's piped outputs: collected (`"piped"`) or streamed to a
 * sink. Resolves with the collected bytes once both streams ended and every sink write is done.
 * With a `terminal` the sinks are the terminal relay's: what the init itself writes to its pipes
 * before it takes the terminal is dropped.
 */
export async function startIo(
  child: Child,
  io: IoOptions,
  spawned: { stdin: Stdio; stdout: Stdio; stderr: Stdio },
  input: Uint8Array | undefined,
  terminal: boolean,
): Promise<[Uint8Array | undefined, Uint8Array | undefined]> {
  if (spawned.stdin === "piped") {
    const w = child.stdin.getWriter();
    (async () => {
      try {
        if (input?.length) await w.write(input);
        await w.close();
      } catch { /* the container closed its stdin */ }
    })();
  }
  const read = async (output: Output, mode: Stdio, s: () => ReadableStream<Uint8Array>) => {
    if (mode !== "piped") return undefined;
    if (typeof output !== "string") {
      if (terminal) await s().pipeTo(new WritableStream());
      else await pump(s(), output);
      return undefined;
    }
    return await new Response(s()).bytes();
  };
  return await Promise.all([
    read(io.stdout, spawned.stdout, () => child.stdout),
    read(io.stderr, spawned.stderr, () => child.stderr),
  ]);
}

/** Reads the init's messages until end of stream: the pty master, `exec`, or an error. */
export async function awaitExec(
  sync: number,
  status: Promise<Deno.CommandStatus>,
): Promise<{ pty?: number; initMarks?: Record<string, number> }> {
  let execing = false;
  let pty: number | undefined;
  let initMarks: Record<string, number> | undefined;
  try {
    for (;;) {
      await pollAsync([{ fd: sync, events: POLLIN }], -1);
      const { data, fds } = recvmsg(sync, 65536, 1);
      // the one descriptor expected (the first pty); any other is closed at once
      let msg: InitMessage;
      try {
        if (!data.length) break;
        msg = JSON.parse(new TextDecoder().decode(data)) as InitMessage;
        if (msg.t === "pty" && pty === undefined && fds.length) pty = fds.shift();
      } finally {
        for (const fd of fds) close(fd);
      }
      if (msg.t === "exec") {
        execing = true;
        initMarks = msg.marks;
      } else if (msg.t === "error") {
        await status;
        throw new ContainerStartError(msg.message, msg.code);
      }
    }
  } catch (e) {
    if (pty !== undefined) close(pty);
    throw e;
  }
  if (!execing) {
    const s = await status;
    if (pty !== undefined) close(pty);
    throw new ContainerStartError(
      `container init exited before starting the command (${s.signal ?? `exit status ${s.code}`})`,
    );
  }
  return { pty, initMarks };
}

/** A started child process, watched: its status, and a SIGKILL for the undo steps. */
export interface Watched {
  /** Its status (the child is reaped once). */
  status: Promise<Deno.CommandStatus>;
  /** SIGKILL, unless it has exited. */
  kill(): void;
}

/** Watches `child` (see {@linkcode Watched}). */
export function watch(child: Child): Watched {
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const kill = () => {
    if (exited) return;
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  };
  return { status, kill };
}

/**
 * What a run or exec resolves with: the exit status (128+n when signal n killed the process),
 * the OOM flag, and the collected output.
 */
export function exitResult(
  st: Deno.CommandStatus,
  oomKilled: boolean,
  stdout: Uint8Array | undefined,
  stderr: Uint8Array | undefined,
): ContainerResult {
  const result: ContainerResult = {
    exitCode: st.signal ? 128 + (SIGNALS[st.signal] ?? 0) : st.code,
    oomKilled,
  };
  if (st.signal) result.signal = st.signal;
  if (stdout) result.stdout = stdout;
  if (stderr) result.stderr = stderr;
  return result;
}

/** Forwards SIGINT, SIGTERM and SIGHUP to `child` until the returned function is called. */
export function forwardSignals(
  child: { kill(sig: Deno.Signal): void },
  enabled: boolean,
): () => void {
  if (!enabled) return () => {};
  const forward = (sig: Deno.Signal) => () => {
    try {
      child.kill(sig);
    } catch { /* exited */ }
  };
  const forwarders = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map((s) =>
    [s, forward(s)] as const
  );
  for (const [s, f] of forwarders) Deno.addSignalListener(s, f);
  return () => {
    for (const [s, f] of forwarders) Deno.removeSignalListener(s, f);
  };
}

/** Calls `kill` when `signal` aborts (at once if it has); returns the function that stops it. */
export function onAbort(signal: AbortSignal | undefined, kill: () => void): () => void {
  if (!signal) return () => {};
  signal.addEventListener("abort", kill);
  if (signal.aborted) kill();
  return () => signal.removeEventListener("abort", kill);
}
