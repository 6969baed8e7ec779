/**
 * Reads a file of a running container from the host, safely: through `/proc/PID/root` (the
 * container's root with its mounts), every symlink resolved inside that root (`openat2`
 * `RESOLVE_IN_ROOT`), no magic links, a size bound, and only a regular file ever opened for
 * reading: the path is opened `O_PATH` (which opens no device or FIFO), checked, then reopened
 * through `/proc/self/fd`. A hostile container cannot make the engine read a host file
 * (`/etc/passwd -> /../../etc/shadow`), hang it (a FIFO), or open a device outside its device
 * cgroup (`mknod /etc/passwd c 10 130`, the watchdog).
 *
 * @module
 */
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  O_CLOEXEC,
  O_DIRECTORY,
  O_NOCTTY,
  O_PATH,
  O_RDONLY,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_MAGICLINKS,
  S_IFMT,
  S_IFREG,
} from "../../ffi/constants.ts";
import { close, openat, openat2, read, statx } from "../../ffi/fs.ts";
import { SyscallError } from "../../ffi/syscall_error.ts";

const MISSING = new Set(["ENOENT", "ENOTDIR", "ELOOP", "EXDEV", "EACCES"]);

/**
 * The text of the file an `O_PATH` descriptor refers to, or undefined when it is not a regular
 * file (nothing else is opened). RangeError (naming `label`) above `maxBytes`.
 */
export function readRegularFile(
  pathFd: number,
  maxBytes: number,
  label: string,
): string | undefined {
  if ((statx(pathFd, "", AT_EMPTY_PATH).mode & S_IFMT) !== S_IFREG) return undefined;
  // the same inode, now open for reading
  const fd = openat(AT_FDCWD, `/proc/self/fd/${pathFd}`, O_RDONLY | O_NOCTTY | O_CLOEXEC);
  try {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const buf = new Uint8Array(65536);
      const n = read(fd, buf);
      if (n === 0) break;
      total += n;
      if (total > maxBytes) throw new RangeError(`${label} is larger than ${maxBytes} bytes`);
      chunks.push(buf.subarray(0, n));
    }
    const out = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) {
      out.set(c, off);
      off += c.length;
    }
    return new TextDecoder().decode(out);
  } finally {
    close(fd);
  }
}

/**
 * The text of `path` (absolute, as the container sees it) in the root of process `pid`, or
 * undefined when it does not exist there or is not a regular file. RangeError above `maxBytes`.
 */
export function readContainerFile(
  pid: number,
  path: string,
  maxBytes = 4 << 20,
): string | undefined {
  const root = openat(AT_FDCWD, `/proc/${pid}/root`, O_PATH | O_DIRECTORY | O_CLOEXEC);
  try {
    let fd: number;
    try {
      fd = openat2(root, path, {
        flags: O_PATH | O_CLOEXEC,
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
      });
    } catch (e) {
      if (e instanceof SyscallError && MISSING.has(e.code)) return undefined;
      throw e;
    }
    try {
      return readRegularFile(fd, maxBytes, `${path} in the container`);
    } finally {
      close(fd);
    }
  } finally {
    close(root);
  }
}
