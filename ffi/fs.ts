/**
 * File-descriptor and path calls, fd-relative where the kernel allows it (for a path-walking
 * applier that never leaves its root), plus `chdir`/`fchdir`/`chroot`.
 *
 * @module
 */
import { call } from "./_call.ts";
import { addr, cstr } from "./_libc.ts";
import { SyscallError } from "./syscall_error.ts";
import { AT_FDCWD, STATX_BASIC_STATS } from "./constants.ts";

/** `openat(2)`; returns the new fd. `mode` is used with `O_CREAT`. */
export function openat(dirfd: number, path: string, flags: number, mode = 0): number {
  return call("openat", path, dirfd, addr(cstr(path)), flags, mode);
}

/** The `struct open_how` of `openat2(2)`. */
export interface OpenHow {
  /** `O_*` flags. */
  flags: number;
  /** Mode for `O_CREAT`. */
  mode?: number;
  /** `RESOLVE_*` flags. */
  resolve?: number;
}

/** `openat2(2)` (raw syscall): open with `RESOLVE_*` restrictions; returns the new fd. */
export function openat2(dirfd: number, path: string, how: OpenHow): number {
  const h = new BigUint64Array([
    BigInt(how.flags >>> 0),
    BigInt(how.mode ?? 0),
    BigInt(how.resolve ?? 0),
  ]);
  return call("openat2", path, dirfd, addr(cstr(path)), addr(h), 24);
}

/** `close(2)`. */
export function close(fd: number): void {
  call("close", fd, fd);
}

/** `close_range(2)` (raw syscall) with `CLOSE_RANGE_*` flags; `last` defaults to the maximum. */
export function closeRange(first: number, last = 0xffffffff, flags = 0): void {
  call("close_range", first, first, last, flags);
}

/** `pipe2(2)`: a pipe; returns its read and write ends. */
export function pipe2(flags = 0): [number, number] {
  const fds = new Int32Array(2);
  call("pipe2", flags, addr(fds), flags);
  return [fds[0], fds[1]];
}

/** `fcntl(2)` with an integer argument; returns the call's result. */
export function fcntl(fd: number, cmd: number, arg = 0): number {
  return call("fcntl", fd, fd, cmd, arg);
}

/** `dup3(2)`; returns `newfd`. */
export function dup3(oldfd: number, newfd: number, flags = 0): number {
  return call("dup3", oldfd, oldfd, newfd, flags);
}

/** `read(2)` into `buf`; returns the byte count (0 = end of file). */
export function read(fd: number, buf: Uint8Array<ArrayBuffer>): number {
  return call("read", fd, fd, addr(buf), buf.byteLength);
}

/** `write(2)` from `buf`; returns the byte count written. */
export function write(fd: number, buf: Uint8Array<ArrayBuffer>): number {
  return call("write", fd, fd, addr(buf), buf.byteLength);
}

/** A timestamp: seconds and nanoseconds. */
export interface Timespec {
  /** Seconds since the epoch. */
  sec: number;
  /** Nanoseconds; `UTIME_NOW`/`UTIME_OMIT` for `utimensat`. */
  nsec: number;
}

/** What `statx` returns (the fields of `STATX_BASIC_STATS`). */
export interface Stat {
  /** File type and permission bits (`S_IF*` | mode). */
  mode: number;
  /** Owner. */
  uid: number;
  /** Group. */
  gid: number;
  /** Size in bytes. */
  size: number;
  /** Inode number. */
  ino: bigint;
  /** Hard link count. */
  nlink: number;
  /** Device numbers of a device file. */
  rdev: { major: number; minor: number };
  /** Device the file lives on. */
  dev: { major: number; minor: number };
  /** Access time. */
  atime: Timespec;
  /** Modification time. */
  mtime: Timespec;
  /** Status change time. */
  ctime: Timespec;
}

/**
 * `statx(2)` (the arch-independent `fstatat`): `AT_SYMLINK_NOFOLLOW` for lstat, `AT_EMPTY_PATH` with
 * `""` to stat `dirfd` itself.
 */
export function statx(dirfd: number, path: string, flags = 0): Stat {
  const buf = new Uint8Array(256);
  call("statx", path, dirfd, addr(cstr(path)), flags, STATX_BASIC_STATS, addr(buf));
  const v = new DataView(buf.buffer);
  const ts = (o: number): Timespec => ({
    sec: Number(v.getBigInt64(o, true)),
    nsec: v.getUint32(o + 8, true),
  });
  return {
    mode: v.getUint16(28, true),
    uid: v.getUint32(20, true),
    gid: v.getUint32(24, true),
    size: Number(v.getBigUint64(40, true)),
    ino: v.getBigUint64(32, true),
    nlink: v.getUint32(16, true),
    atime: ts(64),
    ctime: ts(96),
    mtime: ts(112),
    rdev: { major: v.getUint32(128, true), minor: v.getUint32(132, true) },
    dev: { major: v.getUint32(136, true), minor: v.getUint32(140, true) },
  };
}

/** `mkdirat(2)`. */
export function mkdirat(dirfd: number, path: string, mode: number): void {
  call("mkdirat", path, dirfd, addr(cstr(path)), mode);
}

/** The `dev_t` of a device (glibc's `makedev`). */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major >>> 0);
  const mi = BigInt(minor >>> 0);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) |
    (mi & 0xffn);
}

/** `mknodat(2)`: `mode` includes the file type (`S_IFCHR`, `S_IFBLK`, `S_IFIFO`, ...). */
export function mknodat(dirfd: number, path: string, mode: number, dev: bigint = 0n): void {
  call("mknodat", path, dirfd, addr(cstr(path)), mode, dev);
}

/** `mknod(2)` (as `mknodat(AT_FDCWD, ...)`, the only form aarch64 has). */
export function mknod(path: string, mode: number, dev: bigint = 0n): void {
  call("mknodat", path, AT_FDCWD, addr(cstr(path)), mode, dev);
}

/** `symlinkat(2)`: create `path` (relative to `dirfd`) pointing to `target`. */
export function symlinkat(target: string, dirfd: number, path: string): void {
  call("symlinkat", path, addr(cstr(target)), dirfd, addr(cstr(path)));
}

/** `linkat(2)`. */
export function linkat(
  olddirfd: number,
  oldpath: string,
  newdirfd: number,
  newpath: string,
  flags = 0,
): void {
  call("linkat", newpath, olddirfd, addr(cstr(oldpath)), newdirfd, addr(cstr(newpath)), flags);
}

/** `readlinkat(2)`: the target of a symlink. */
export function readlinkat(dirfd: number, path: string): string {
  const p = cstr(path);
  let size = 256;
  for (;;) {
    const buf = new Uint8Array(size);
    const n = call("readlinkat", path, dirfd, addr(p), addr(buf), size);
    if (n < size) return new TextDecoder().decode(buf.subarray(0, n));
    size *= 4;
  }
}

/** `fchownat(2)` (`AT_SYMLINK_NOFOLLOW` to change a symlink itself, `AT_EMPTY_PATH` for dirfd). */
export function fchownat(dirfd: number, path: string, uid: number, gid: number, flags = 0): void {
  call("fchownat", path, dirfd, addr(cstr(path)), uid, gid, flags);
}

/** `fchmodat(2)`. */
export function fchmodat(dirfd: number, path: string, mode: number, flags = 0): void {
  // the fchmodat syscall has no flags argument; fchmodat2 (Linux 6.6) has
  if (flags === 0) call("fchmodat", path, dirfd, addr(cstr(path)), mode);
  else call("fchmodat2", path, dirfd, addr(cstr(path)), mode, flags);
}

/** `fchmod(2)` (not on `O_PATH` fds: use `fchmodat` on the parent for those). */
export function fchmod(fd: number, mode: number): void {
  call("fchmod", fd, fd, mode);
}

/** `fchown(2)`. */
export function fchown(fd: number, uid: number, gid: number): void {
  call("fchown", fd, fd, uid, gid);
}

/** `utimensat(2)`: set access and modification times (`AT_SYMLINK_NOFOLLOW` for a symlink). */
export function utimensat(
  dirfd: number,
  path: string,
  atime: Timespec,
  mtime: Timespec,
  flags = 0,
): void {
  const t = new BigInt64Array([
    BigInt(atime.sec),
    BigInt(atime.nsec),
    BigInt(mtime.sec),
    BigInt(mtime.nsec),
  ]);
  call("utimensat", path, dirfd, addr(cstr(path)), addr(t), flags);
}

/** `unlinkat(2)` (`AT_REMOVEDIR` for a directory). */
export function unlinkat(dirfd: number, path: string, flags = 0): void {
  call("unlinkat", path, dirfd, addr(cstr(path)), flags);
}

/** `renameat(2)`. */
export function renameat(
  olddirfd: number,
  oldpath: string,
  newdirfd: number,
  newpath: string,
): void {
  // aarch64 has only renameat2
  call("renameat2", oldpath, olddirfd, addr(cstr(oldpath)), newdirfd, addr(cstr(newpath)), 0);
}

/** `fsetxattr(2)`: set an extended attribute on an open (not `O_PATH`) fd. */
export function fsetxattr(fd: number, name: string, value: Uint8Array, flags = 0): void {
  call("fsetxattr", name, fd, addr(cstr(name)), addr(value), value.byteLength, flags);
}

/**
 * `lsetxattr(2)`: set an extended attribute without following a final symlink. For fd-relative
 * use pass `/proc/self/fd/<O_PATH fd of the parent>/<name>`.
 */
export function lsetxattr(path: string, name: string, value: Uint8Array, flags = 0): void {
  const [p, n] = [addr(cstr(path)), addr(cstr(name))];
  call("lsetxattr", path, p, n, addr(value), value.byteLength, flags);
}

function getxattr(get: (buf: Uint8Array<ArrayBuffer>) => number): Uint8Array {
  for (let size = 256;; size *= 8) {
    const buf = new Uint8Array(size);
    try {
      return buf.slice(0, get(buf));
    } catch (e) {
      if (!(e instanceof SyscallError) || e.code !== "ERANGE" || size > 1 << 20) throw e;
    }
  }
}

/** `lgetxattr(2)`: an extended attribute's value, without following a final symlink. */
export function lgetxattr(path: string, name: string): Uint8Array {
  const [p, n] = [cstr(path), cstr(name)];
  return getxattr((buf) => call("lgetxattr", path, addr(p), addr(n), addr(buf), buf.byteLength));
}

/** `fgetxattr(2)`: an extended attribute's value on an open fd. */
export function fgetxattr(fd: number, name: string): Uint8Array {
  const n = cstr(name);
  return getxattr((buf) => call("fgetxattr", name, fd, addr(n), addr(buf), buf.byteLength));
}

/** `flock(2)` with `LOCK_*` (add `LOCK_NB` to fail with EWOULDBLOCK/EAGAIN instead of waiting). */
export function flock(fd: number, operation: number): void {
  call("flock", fd, fd, operation);
}

/** `chdir(2)` of the calling thread (its fs struct; see DESIGN §3). */
export function chdir(path: string): void {
  call("chdir", path, addr(cstr(path)));
}

/** `fchdir(2)`. */
export function fchdir(fd: number): void {
  call("fchdir", fd, fd);
}

/** `chroot(2)`. */
export function chroot(path: string): void {
  call("chroot", path, addr(cstr(path)));
}
