/**
 * A child process as the engine uses it — pid, exit status, signals, piped stdio — whether
 * `Deno.Command` spawned it (the init) or `posix_spawn` did (the direct start,
 * {@linkcode SpawnedChild}).
 *
 * @module
 */
import {
  CLD_EXITED,
  P_PID,
  P_PIDFD,
  POLLIN,
  SIGKILL,
  SIGNALS,
  WEXITED,
  WNOHANG,
} from "../../ffi/constants.ts";
import { close } from "../../ffi/fs.ts";
import { kill, pidfdOpen, pidfdSendSignal, waitid } from "../../ffi/process.ts";
import { pollAsync } from "../../ffi/socket.ts";

/** What the engine needs of a child process (`Deno.ChildProcess` is one). */
export interface Child {
  /** Its pid. */
  readonly pid: number;
  /** Settles once it has ended (and has been reaped). */
  readonly status: Promise<Deno.CommandStatus>;
  /** Sends `signal` (default SIGTERM); throws once the child has been reaped. */
  kill(signal?: Deno.Signal): void;
  /** Its stdin, when piped. */
  readonly stdin: WritableStream<Uint8Array>;
  /** Its stdout, when piped. */
  readonly stdout: ReadableStream<Uint8Array>;
  /** Its stderr, when piped. */
  readonly stderr: ReadableStream<Uint8Array>;
}

/** The engine's ends of a spawned child's pipes (descriptors, closed on exec). */
export interface ChildPipes {
  stdin?: number;
  stdout?: number;
  stderr?: number;
}

const NAMES: Record<number, Deno.Signal> = Object.fromEntries(
  Object.entries(SIGNALS).map(([name, n]) => [n, name as Deno.Signal]),
);

// A pipe's descriptor as a Deno file (through /proc/self/fd: a new open of the same pipe); the
// descriptor itself is closed.
function pipeFile(fd: number, mode: "read" | "write"): Deno.FsFile {
  try {
    return Deno.openSync(`/proc/self/fd/${fd}`, mode === "read" ? { read: true } : { write: true });
  } finally {
    close(fd);
  }
}

/**
 * A child this process started with `posix_spawn`, reaped through a pidfd (so neither its exit
 * nor a signal can reach another process that reuses its pid).
 */
export class SpawnedChild implements Child {
  readonly status: Promise<Deno.CommandStatus>;
  #pidfd: number;
  #reaped = false;
  #pipes: { stdin?: Deno.FsFile; stdout?: Deno.FsFile; stderr?: Deno.FsFile } = {};

  private constructor(readonly pid: number, pidfd: number) {
    this.#pidfd = pidfd;
    this.status = this.#wait();
  }

  /**
   * Takes charge of `pid`, a child of this process not yet reaped, and of `pipes`, the engine's
   * ends of its pipes. If that fails, the child is killed and reaped, the pipes closed, and the
   * error thrown.
   */
  static adopt(pid: number, pipes: ChildPipes = {}): SpawnedChild {
    let child: SpawnedChild;
    try {
      child = new SpawnedChild(pid, pidfdOpen(pid));
    } catch (e) {
      try {
        kill(pid, SIGKILL);
        waitid(P_PID, pid, WEXITED);
      } catch { /* gone already */ }
      for (const fd of Object.values(pipes)) close(fd);
      throw e;
    }
    const left: ChildPipes = { ...pipes };
    try {
      for (const name of ["stdin", "stdout", "stderr"] as const) {
        const fd = left[name];
        if (fd === undefined) continue;
        delete left[name];
        child.#pipes[name] = pipeFile(fd, name === "stdin" ? "write" : "read");
      }
    } catch (e) {
      child.kill("SIGKILL");
      for (const fd of Object.values(left)) close(fd);
      for (const file of Object.values(child.#pipes)) file.close();
      throw e;
    }
    return child;
  }

  get stdin(): WritableStream<Uint8Array> {
    if (!this.#pipes.stdin) throw new TypeError("stdin is not piped");
    return this.#pipes.stdin.writable;
  }

  get stdout(): ReadableStream<Uint8Array> {
    if (!this.#pipes.stdout) throw new TypeError("stdout is not piped");
    return this.#pipes.stdout.readable;
  }

  get stderr(): ReadableStream<Uint8Array> {
    if (!this.#pipes.stderr) throw new TypeError("stderr is not piped");
    return this.#pipes.stderr.readable;
  }

  kill(signal: Deno.Signal = "SIGTERM"): void {
    if (this.#reaped) throw new TypeError("Child process has already terminated");
    const sig = SIGNALS[signal];
    if (sig === undefined) throw new TypeError(`Unknown signal: ${signal}`);
    pidfdSendSignal(this.#pidfd, sig);
  }

  async #wait(): Promise<Deno.CommandStatus> {
    for (;;) {
      // a pidfd polls readable once its process has ended; a signal to the engine may interrupt
      // the wait (EINTR: pollAsync then throws): look, and wait again
      await pollAsync([{ fd: this.#pidfd, events: POLLIN }], -1).catch(() => {});
      const exit = waitid(P_PIDFD, this.#pidfd, WEXITED | WNOHANG);
      if (!exit) continue;
      this.#reaped = true;
      close(this.#pidfd);
      if (exit.code === CLD_EXITED) {
        return { success: exit.status === 0, code: exit.status, signal: null };
      }
      return { success: false, code: 128 + exit.status, signal: NAMES[exit.status] ?? null };
    }
  }
}
