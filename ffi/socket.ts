/**
 * Socket calls: `socket`, `socketpair`, `sendmsg`/`recvmsg` with `SCM_RIGHTS` fd passing, and
 * `poll` (synchronous, plus an async form for waiting without blocking the JS thread).
 *
 * @module
 */
import { call } from "./_call.ts";
import { addr, syscallAsync } from "./_libc.ts";
import { NR } from "./_syscall_numbers.ts";
import { MSG_CMSG_CLOEXEC, MSG_PEEK, MSG_TRUNC, SCM_RIGHTS, SOL_SOCKET } from "./constants.ts";
import { SyscallError } from "./syscall_error.ts";

/** `socket(2)`; returns the fd. */
export function socket(domain: number, type: number, protocol = 0): number {
  return call("socket", domain, domain, type, protocol);
}

/** `socketpair(2)`; returns both fds. */
export function socketpair(domain: number, type: number, protocol = 0): [number, number] {
  const fds = new Int32Array(2);
  call("socketpair", domain, domain, type, protocol, addr(fds));
  return [fds[0], fds[1]];
}

const ptr = (b: ArrayBufferView) => BigInt(addr(b));
const cmsgSpace = (n: number) => 16 + ((n * 4 + 7) & ~7);

// Builds a msghdr with one iovec; every buffer it points to is pinned by ptr() (addr).
function msghdr(data: Uint8Array, control: Uint8Array | null): { hdr: Uint8Array<ArrayBuffer> } {
  const iov = new BigUint64Array([data.byteLength ? ptr(data) : 0n, BigInt(data.byteLength)]);
  const hdr = new Uint8Array(56);
  const v = new DataView(hdr.buffer);
  v.setBigUint64(16, ptr(iov), true);
  v.setBigUint64(24, 1n, true);
  if (control) {
    v.setBigUint64(32, ptr(control), true);
    v.setBigUint64(40, BigInt(control.byteLength), true);
  }
  return { hdr };
}

/** `sendmsg(2)`: send `data` and, as `SCM_RIGHTS`, the descriptors `fds`; returns bytes sent. */
export function sendmsg(
  fd: number,
  data: Uint8Array,
  fds: readonly number[] = [],
  flags = 0,
): number {
  let control: Uint8Array | null = null;
  if (fds.length) {
    control = new Uint8Array(cmsgSpace(fds.length));
    const v = new DataView(control.buffer);
    v.setBigUint64(0, BigInt(16 + fds.length * 4), true);
    v.setInt32(8, SOL_SOCKET, true);
    v.setInt32(12, SCM_RIGHTS, true);
    fds.forEach((f, i) => v.setInt32(16 + i * 4, f, true));
  }
  const { hdr } = msghdr(data, control);
  return call("sendmsg", fd, fd, addr(hdr), flags);
}

/** What `recvmsg` returns: the bytes and the descriptors received (close-on-exec). */
export interface Received {
  /** The data (empty at end of stream). */
  data: Uint8Array;
  /** Descriptors passed with `SCM_RIGHTS`. */
  fds: number[];
}

/** `recvmsg(2)` of up to `size` bytes and `maxFds` descriptors (received with `MSG_CMSG_CLOEXEC`). */
export function recvmsg(fd: number, size = 4096, maxFds = 4, flags = 0): Received {
  const data = new Uint8Array(size);
  const control = new Uint8Array(cmsgSpace(maxFds));
  const { hdr } = msghdr(data, control);
  const n = call("recvmsg", fd, fd, addr(hdr), flags | MSG_CMSG_CLOEXEC);
  const hv = new DataView(hdr.buffer);
  const clen = Number(hv.getBigUint64(40, true));
  const cv = new DataView(control.buffer);
  const fds: number[] = [];
  for (let off = 0; off + 16 <= clen;) {
    const len = Number(cv.getBigUint64(off, true));
    if (len < 16) break;
    if (cv.getInt32(off + 8, true) === SOL_SOCKET && cv.getInt32(off + 12, true) === SCM_RIGHTS) {
      for (let i = off + 16; i + 4 <= off + len; i += 4) fds.push(cv.getInt32(i, true));
    }
    off += (len + 7) & ~7;
  }
  return { data: data.slice(0, n), fds };
}

/**
 * The length of the next datagram queued on `fd` (0 at end of stream), without receiving it
 * (`recvmsg` with `MSG_PEEK | MSG_TRUNC`, no descriptors taken).
 */
export function nextMessageLength(fd: number): number {
  const { hdr } = msghdr(new Uint8Array(1), null);
  return call("recvmsg", fd, fd, addr(hdr), MSG_PEEK | MSG_TRUNC);
}

/** `setsockopt(2)` of an int option. */
export function setsockopt(fd: number, level: number, name: number, value: number): void {
  const v = new Int32Array([value]);
  call("setsockopt", fd, fd, level, name, addr(v), 4);
}

function pollfds(fds: readonly { fd: number; events: number }[]): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(8 * fds.length);
  const v = new DataView(buf.buffer);
  fds.forEach(({ fd, events }, i) => {
    v.setInt32(i * 8, fd, true);
    v.setInt16(i * 8 + 4, events, true);
  });
  return buf;
}

function revents(buf: Uint8Array): number[] {
  const v = new DataView(buf.buffer);
  return Array.from({ length: buf.byteLength / 8 }, (_, i) => v.getInt16(i * 8 + 6, true));
}

function timespec(ms: number): BigInt64Array | null {
  if (ms < 0) return null;
  return new BigInt64Array([BigInt(Math.floor(ms / 1000)), BigInt((ms % 1000) * 1e6)]);
}

/** `poll(2)` (as `ppoll`): wait up to `timeout` ms (-1 = forever); returns each fd's `revents`. */
export function poll(fds: readonly { fd: number; events: number }[], timeout: number): number[] {
  const buf = pollfds(fds);
  call("ppoll", fds[0]?.fd, addr(buf), fds.length, addr(timespec(timeout)), 0, 8);
  return revents(buf);
}

/**
 * `poll(2)` on a blocking-pool thread, so the JS thread keeps running; returns each fd's
 * `revents`. errno is not readable there: a failure (after one retry, for EINTR) throws with
 * errno 0. The wait cannot be cancelled: include an fd that is sure to become ready.
 */
export async function pollAsync(
  fds: readonly { fd: number; events: number }[],
  timeout: number,
): Promise<number[]> {
  const buf = pollfds(fds);
  for (let attempt = 0; attempt < 2; attempt++) {
    const r = await syscallAsync(NR.ppoll, addr(buf), fds.length, addr(timespec(timeout)), 0, 8);
    if (r >= 0) return revents(buf);
  }
  throw new SyscallError("poll", 0, fds[0]?.fd);
}
