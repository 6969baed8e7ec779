/**
 * Hot-path file system calls, bound with native argument types ("buffer" for paths, numbers for
 * ints), so each call is one V8 fast call with no BigInt conversions and no allocation. The layer
 * applier makes ~6 per tar entry. Measured on this machine: `fchownat` costs 6.5 µs through the
 * generic wrappers of `fs.ts` (`syscall(2)` with six BigInt arguments, a fresh C string per call)
 * and 2.1 µs here, the kernel's own share being ~2 µs. Both exist because binding a symbol costs
 * 0.1–0.5 ms at `dlopen`: the container init, which makes a few calls once, binds only `syscall`.
 *
 * Failures throw `ffi/`'s {@linkcode SyscallError} with errno read right after the call, exactly
 * as the `ffi/` wrappers do. Paths are encoded into two reusable scratch buffers (so a call may
 * take at most two paths), and a path containing NUL is refused with a `TypeError`.
 *
 * @module
 */
import { SyscallError } from "./syscall_error.ts";
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  O_CLOEXEC,
  O_NOFOLLOW,
  O_PATH,
  S_IFLNK,
  S_IFMT,
} from "./constants.ts";

const SYMBOLS = {
  __errno_location: { parameters: [], result: "pointer" },
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  mkdirat: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  symlinkat: { parameters: ["buffer", "i32", "buffer"], result: "i32" },
  linkat: { parameters: ["i32", "buffer", "i32", "buffer", "i32"], result: "i32" },
  unlinkat: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  fchownat: { parameters: ["i32", "buffer", "u32", "u32", "i32"], result: "i32" },
  fchown: { parameters: ["i32", "u32", "u32"], result: "i32" },
  fchmod: { parameters: ["i32", "u32"], result: "i32" },
  fchmodat: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  futimens: { parameters: ["i32", "buffer"], result: "i32" },
  utimensat: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  fsetxattr: { parameters: ["i32", "buffer", "buffer", "usize", "i32"], result: "i32" },
  lsetxattr: { parameters: ["buffer", "buffer", "buffer", "usize", "i32"], result: "i32" },
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  syncfs: { parameters: ["i32"], result: "i32" },
  // syscall(2) for calls glibc 2.31–2.36 has no wrapper for: openat2, fchmodat2, mknodat.
  syscall_openat2: {
    name: "syscall",
    parameters: ["i64", "i64", "buffer", "buffer", "i64"],
    result: "i64",
  },
  syscall_path_mode_flags: {
    name: "syscall",
    parameters: ["i64", "i64", "buffer", "i64", "i64"],
    result: "i64",
  },
} as const satisfies Deno.ForeignLibraryInterface;

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let lib: Symbols | undefined;
let errnoCell: Int32Array | undefined;

function open(): Symbols {
  lib = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  const p = lib.__errno_location();
  if (p === null) throw new Error("__errno_location returned NULL");
  errnoCell = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(p, 4));
  return lib;
}

const arm64 = Deno.build.arch === "aarch64";
// openat2 and fchmodat2 have the same number on every architecture (asm-generic, 5.x+).
const NR_OPENAT2 = 437n;
const NR_FCHMODAT2 = 452n;
const NR_MKNODAT = arm64 ? 33n : 259n;

const encoder = new TextEncoder();
const SCRATCH = 16 * 1024;
const pathA = new Uint8Array(SCRATCH);
const pathB = new Uint8Array(SCRATCH);
const nameBuf = new Uint8Array(1024);
const statBuf = new Uint8Array(256);
const statView = new DataView(statBuf.buffer);
const STATX_TYPE = 0x1;
const ENAMETOOLONG = 36;
const EINTR = 4;
const ENOSYS = 38;
const EOPNOTSUPP = 95;

function fail(name: string, arg: string | number): never {
  throw new SyscallError(name, errnoCell![0], arg);
}

/** `s` as a NUL-terminated C string in `buf` (valid until the next call using `buf`). */
function cstr(s: string, buf: Uint8Array, call: string): Uint8Array {
  if (s.includes("\0")) throw new TypeError(`String contains a NUL byte: ${JSON.stringify(s)}`);
  const { read, written } = encoder.encodeInto(s, buf);
  if (read !== s.length || written >= buf.length) throw new SyscallError(call, ENAMETOOLONG, s);
  buf[written] = 0;
  return buf;
}

function check(r: number, name: string, arg: string | number): number {
  if (r === -1) fail(name, arg);
  return r;
}

/** `openat(2)`; returns the fd. */
export function openat(dirfd: number, path: string, flags: number, mode = 0): number {
  const s = lib ?? open();
  return check(s.openat(dirfd, cstr(path, pathA, "openat"), flags, mode), "openat", path);
}

const how = new BigUint64Array(3);
const howBytes = new Uint8Array(how.buffer);

/** `openat2(2)` with `O_*` flags and `RESOLVE_*` flags; returns the fd. */
export function openat2(dirfd: number, path: string, flags: number, resolve: number): number {
  const s = lib ?? open();
  how[0] = BigInt(flags >>> 0);
  how[1] = 0n;
  how[2] = BigInt(resolve >>> 0);
  const p = cstr(path, pathA, "openat2");
  const r = Number(s.syscall_openat2(NR_OPENAT2, BigInt(dirfd), p, howBytes, 24n));
  return check(r, "openat2", path);
}

/** `mkdirat(2)`. */
export function mkdirat(dirfd: number, path: string, mode: number): void {
  const s = lib ?? open();
  check(s.mkdirat(dirfd, cstr(path, pathA, "mkdirat"), mode), "mkdirat", path);
}

/** `mknodat(2)`; `dev` as made by `makedev`. */
export function mknodat(dirfd: number, path: string, mode: number, dev: bigint): void {
  const s = lib ?? open();
  const r = s.syscall_path_mode_flags(
    NR_MKNODAT,
    BigInt(dirfd),
    cstr(path, pathA, "mknodat"),
    BigInt(mode),
    dev,
  );
  check(Number(r), "mknodat", path);
}

/** `symlinkat(2)`: create `path` (relative to `dirfd`) pointing to `target`. */
export function symlinkat(target: string, dirfd: number, path: string): void {
  const s = lib ?? open();
  const t = cstr(target, pathB, "symlinkat");
  check(s.symlinkat(t, dirfd, cstr(path, pathA, "symlinkat")), "symlinkat", path);
}

/** `linkat(2)`. */
export function linkat(
  olddirfd: number,
  oldpath: string,
  newdirfd: number,
  newpath: string,
  flags = 0,
): void {
  const s = lib ?? open();
  const o = cstr(oldpath, pathB, "linkat");
  check(s.linkat(olddirfd, o, newdirfd, cstr(newpath, pathA, "linkat"), flags), "linkat", newpath);
}

/** `unlinkat(2)`. */
export function unlinkat(dirfd: number, path: string, flags = 0): void {
  const s = lib ?? open();
  check(s.unlinkat(dirfd, cstr(path, pathA, "unlinkat"), flags), "unlinkat", path);
}

/** `fchownat(2)`. */
export function fchownat(dirfd: number, path: string, uid: number, gid: number, flags: number) {
  const s = lib ?? open();
  check(s.fchownat(dirfd, cstr(path, pathA, "fchownat"), uid, gid, flags), "fchownat", path);
}

/** `fchown(2)`. */
export function fchown(fd: number, uid: number, gid: number): void {
  check((lib ?? open()).fchown(fd, uid, gid), "fchown", fd);
}

/** `fchmod(2)`. */
export function fchmod(fd: number, mode: number): void {
  check((lib ?? open()).fchmod(fd, mode), "fchmod", fd);
}

let noFchmodat2 = false;

/**
 * Test-only: `true` makes {@linkcode chmodNoFollow} act as on a kernel without `fchmodat2` (before
 * Linux 6.6), so that tests run its fallback on any kernel; `false` goes back to detecting.
 */
export function _simulateNoFchmodat2ForTesting(on: boolean): void {
  noFchmodat2 = on;
}

/**
 * chmod without following a final symlink: `fchmodat2(2)` with `AT_SYMLINK_NOFOLLOW` (Linux 6.6+).
 * On older kernels, as glibc's `fchmodat(AT_SYMLINK_NOFOLLOW)` does: the entry is opened with
 * `O_PATH | O_NOFOLLOW`, a symlink is refused, and the opened inode itself is chmodded through
 * `/proc/self/fd/N`. A symlink fails with `EOPNOTSUPP` either way (its mode is never changed, its
 * target never touched).
 */
export function chmodNoFollow(dirfd: number, path: string, mode: number): void {
  const s = lib ?? open();
  const p = cstr(path, pathA, "fchmodat2");
  if (!noFchmodat2) {
    const r = Number(
      s.syscall_path_mode_flags(NR_FCHMODAT2, BigInt(dirfd), p, BigInt(mode), 0x100n),
    );
    if (r !== -1) return;
    if (errnoCell![0] !== ENOSYS) fail("fchmodat2", path);
    noFchmodat2 = true;
  }
  const fd = check(s.openat(dirfd, p, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0), "openat", path);
  try {
    const empty = cstr("", pathB, "statx");
    const flags = AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW;
    check(s.statx(fd, empty, flags, STATX_TYPE, statBuf), "statx", path);
    if ((statView.getUint16(28, true) & S_IFMT) === S_IFLNK) {
      throw new SyscallError("fchmodat", EOPNOTSUPP, path);
    }
    const proc = cstr(`/proc/self/fd/${fd}`, pathA, "fchmodat");
    check(s.fchmodat(AT_FDCWD, proc, mode, 0), "fchmodat", path);
  } finally {
    s.close(fd);
  }
}

const times = new BigInt64Array(4);
const timesBytes = new Uint8Array(times.buffer);

function setTimes(atime: number, atimeNs: number, mtime: number, mtimeNs: number): void {
  times[0] = BigInt(atime);
  times[1] = BigInt(atimeNs);
  times[2] = BigInt(mtime);
  times[3] = BigInt(mtimeNs);
}

/** `utimensat(2)` with access and modification times (seconds, nanoseconds). */
export function utimensat(
  dirfd: number,
  path: string,
  t: Times,
  flags: number,
): void {
  const s = lib ?? open();
  setTimes(t.atime, t.atimeNs, t.mtime, t.mtimeNs);
  check(s.utimensat(dirfd, cstr(path, pathA, "utimensat"), timesBytes, flags), "utimensat", path);
}

/** `futimens(3)`. */
export function futimens(fd: number, t: Times): void {
  const s = lib ?? open();
  setTimes(t.atime, t.atimeNs, t.mtime, t.mtimeNs);
  check(s.futimens(fd, timesBytes), "futimens", fd);
}

/** Access and modification times of an entry. */
export interface Times {
  /** Access time, whole seconds. */
  atime: number;
  /** Access time, nanoseconds. */
  atimeNs: number;
  /** Modification time, whole seconds. */
  mtime: number;
  /** Modification time, nanoseconds. */
  mtimeNs: number;
}

/** Writes all of `buf` to `fd` (retrying short writes and EINTR). */
export function writeAll(fd: number, buf: Uint8Array): void {
  const s = lib ?? open();
  const n = buf.byteLength;
  let off = 0;
  while (off < n) {
    const view = off === 0 ? buf : buf.subarray(off);
    const r = Number(s.write(fd, view as Uint8Array<ArrayBuffer>, BigInt(n - off)));
    if (r === -1) {
      if (errnoCell![0] === EINTR) continue;
      fail("write", fd);
    }
    off += r;
  }
}

/** `close(2)` (errors ignored: the fd is gone either way on Linux). */
export function close(fd: number): void {
  (lib ?? open()).close(fd);
}

/** `fsetxattr(2)`. */
export function fsetxattr(fd: number, name: string, value: Uint8Array): void {
  const s = lib ?? open();
  const n = cstr(name, nameBuf, "fsetxattr");
  check(
    s.fsetxattr(fd, n, value as Uint8Array<ArrayBuffer>, BigInt(value.byteLength), 0),
    "fsetxattr",
    name,
  );
}

/** `lsetxattr(2)` (does not follow a final symlink). */
export function lsetxattr(path: string, name: string, value: Uint8Array): void {
  const s = lib ?? open();
  const p = cstr(path, pathA, "lsetxattr");
  const n = cstr(name, nameBuf, "lsetxattr");
  check(
    s.lsetxattr(p, n, value as Uint8Array<ArrayBuffer>, BigInt(value.byteLength), 0),
    "lsetxattr",
    name,
  );
}

/** The `S_IFMT` file type of `path` (`AT_SYMLINK_NOFOLLOW` in `flags` for lstat). */
export function fileType(dirfd: number, path: string, flags: number): number {
  const s = lib ?? open();
  check(s.statx(dirfd, cstr(path, pathA, "statx"), flags, STATX_TYPE, statBuf), "statx", path);
  return statView.getUint16(28, true) & 0o170000;
}

/** `syncfs(2)`: flush the filesystem that holds `fd`. */
export function syncfs(fd: number): void {
  check((lib ?? open()).syncfs(fd), "syncfs", fd);
}
