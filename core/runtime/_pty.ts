/**
 * The engine's side of a container's terminal: relays the pty master to the caller's stdout (or a
 * buffer, or a sink) and the caller's stdin to it (raw mode when stdin is a terminal), and passes
 * window size changes on (SIGWINCH → TIOCSWINSZ).
 *
 * @module
 */
import { F_GETFL, F_SETFL, O_NONBLOCK, POLLIN, POLLOUT } from "../../ffi/constants.ts";
import { close, fcntl, read, write } from "../../ffi/fs.ts";
import { pollAsync } from "../../ffi/socket.ts";
import { SyscallError } from "../../ffi/syscall_error.ts";
import { ioctlSetWinsize } from "../../ffi/tty.ts";

/** A running relay. */
export interface PtyRelay {
  /** Settles when the container side of the terminal is closed; the output when collected. */
  done: Promise<Uint8Array | undefined>;
  /** Restores the caller's terminal, stops listening, closes the master. Idempotent. */
  close(): void;
}

// The master is non-blocking: a container that does not read its input must not block the
// engine's JS thread (signals, window size, output would stop).
async function writeAll(fd: number, data: Uint8Array): Promise<void> {
  let buf = new Uint8Array(data);
  while (buf.length) {
    try {
      buf = buf.subarray(write(fd, buf));
    } catch (e) {
      if (!(e instanceof SyscallError && e.code === "EAGAIN")) throw e;
      await pollAsync([{ fd, events: POLLOUT }], 100);
    }
  }
}

/** Starts relaying the pty `master`. */
export function relayPty(
  master: number,
  options: {
    stdin: "inherit" | "piped" | "null";
    /** A sink gets the chunks as they come (each write awaited; a failing sink is dropped). */
    stdout: "inherit" | "piped" | "null" | WritableStream<Uint8Array>;
    input?: Uint8Array;
  },
): PtyRelay {
  const chunks: Uint8Array[] = [];
  let closed = false;
  fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
  let raw = false;
  const stdinTty = options.stdin === "inherit" && Deno.stdin.isTerminal();
  const stdoutTty = options.stdout === "inherit" && Deno.stdout.isTerminal();
  const resize = () => {
    try {
      const { rows, columns } = Deno.consoleSize();
      ioctlSetWinsize(master, { rows, columns });
    } catch { /* not a terminal any more */ }
  };
  if (stdoutTty) {
    resize();
    Deno.addSignalListener("SIGWINCH", resize);
  }
  if (stdinTty) {
    Deno.stdin.setRaw(true);
    raw = true;
  }

  const sink = typeof options.stdout === "string" ? undefined : options.stdout.getWriter();
  let sinkBroken = false;
  const output = (async () => {
    const buf = new Uint8Array(65536);
    for (;;) {
      await pollAsync([{ fd: master, events: POLLIN }], -1);
      if (closed) return;
      let n: number;
      try {
        n = read(master, buf);
      } catch (e) {
        if (e instanceof SyscallError && e.code === "EAGAIN") continue;
        if (e instanceof SyscallError && e.code === "EIO") return; // no slave left
        throw e;
      }
      if (n === 0) return;
      const chunk = buf.slice(0, n);
      if (options.stdout === "inherit") {
        for (let c = chunk; c.length;) c = c.subarray(Deno.stdout.writeSync(c));
      } else if (options.stdout === "piped") chunks.push(chunk);
      else if (sink && !sinkBroken) {
        try {
          await sink.write(chunk);
        } catch {
          sinkBroken = true;
        }
      }
    }
  })().finally(() => sink?.releaseLock());

  if (options.stdin === "piped" && options.input?.length) {
    writeAll(master, options.input).catch(() => {/* the container closed its terminal */});
  }
  if (options.stdin === "inherit") {
    (async () => {
      const buf = new Uint8Array(4096);
      for (;;) {
        const n = await Deno.stdin.read(buf);
        if (n === null || closed) return;
        await writeAll(master, buf.subarray(0, n));
      }
    })().catch(() => {/* the container closed its terminal */});
  }

  const done = output.then(() => {
    if (options.stdout !== "piped") return undefined;
    const out = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
    let off = 0;
    for (const c of chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  });
  return {
    done,
    close() {
      if (closed) return;
      closed = true;
      if (raw) Deno.stdin.setRaw(false);
      if (stdoutTty) Deno.removeSignalListener("SIGWINCH", resize);
      close(master);
    },
  };
}
