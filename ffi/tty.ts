/**
 * Terminal ioctls: controlling terminal, window size, pty number and lock.
 *
 * @module
 */
import { call } from "./_call.ts";
import { addr } from "./_libc.ts";
import { TIOCGPTN, TIOCGWINSZ, TIOCSCTTY, TIOCSPTLCK, TIOCSWINSZ } from "./constants.ts";

/** `ioctl(2)`: `arg` is an integer, or a buffer the request reads or fills (passed by address). */
export function ioctl(
  fd: number,
  request: number,
  arg: ArrayBufferView | number | bigint | null = 0,
): number {
  const a = arg === null || typeof arg === "number" || typeof arg === "bigint"
    ? (arg ?? 0)
    : addr(arg);
  return call("ioctl", fd, fd, request, a);
}

/** `ioctl(TIOCSCTTY)`: make `fd` the controlling terminal of the calling session leader. */
export function ioctlSetCtty(fd: number, steal = false): void {
  ioctl(fd, TIOCSCTTY, steal ? 1 : 0);
}

/** A terminal size in characters. */
export interface WinSize {
  /** Rows. */
  rows: number;
  /** Columns. */
  columns: number;
}

/** `ioctl(TIOCSWINSZ)`: set a terminal's size. */
export function ioctlSetWinsize(fd: number, size: WinSize): void {
  ioctl(fd, TIOCSWINSZ, new Uint16Array([size.rows, size.columns, 0, 0]));
}

/** `ioctl(TIOCGWINSZ)`: a terminal's size. */
export function ioctlGetWinsize(fd: number): WinSize {
  const ws = new Uint16Array(4);
  ioctl(fd, TIOCGWINSZ, ws);
  return { rows: ws[0], columns: ws[1] };
}

/** `ioctl(TIOCGPTN)`: the number of the pty whose master is `fd`. */
export function ioctlGetPtyNumber(fd: number): number {
  const n = new Uint32Array(1);
  ioctl(fd, TIOCGPTN, n);
  return n[0];
}

/** `ioctl(TIOCSPTLCK)`: lock (true) or unlock (false) the slave of the pty master `fd`. */
export function ioctlSetPtyLock(fd: number, lock: boolean): void {
  ioctl(fd, TIOCSPTLCK, new Int32Array([lock ? 1 : 0]));
}
