/**
 * Attributes for the directories a layer needed but did not contain. Layers written by umoci (and
 * other tools that only record what changed) hold `home/app/hello.txt` without `home/app/`; unpacked
 * on its own, the layer gets a 0755 root-owned `home/app`, and since the upper directory's
 * attributes win in an overlay, the merged view would show the wrong owner, mode and mtime. As
 * containerd's `mkparent` does, such a directory takes the attributes of the same directory in the
 * nearest lower layer that has it (0755 root stays when none has it, or a lower layer hides it with a
 * whiteout, a non-directory or an opaque parent).
 *
 * Lower layers are our own snapshots; they are still walked with `O_NOFOLLOW` one component at a
 * time, and a symlink on the way ends the search. In the upper layer, the directory is reached the
 * same way and changed only if it still is one (never through a symlink the layer put in its
 * place). Xattrs of the lower directory are not copied.
 *
 * @module
 */
import { SyscallError } from "../../ffi/syscall_error.ts";
import { lgetxattr, statx } from "../../ffi/fs.ts";
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  O_CLOEXEC,
  O_DIRECTORY,
  O_NOFOLLOW,
  O_PATH,
  S_IFDIR,
  S_IFMT,
} from "../../ffi/constants.ts";
import * as sys from "../../ffi/fs_native.ts";

const PATH = O_PATH | O_NOFOLLOW | O_CLOEXEC;

type Found = { mode: number; uid: number; gid: number; times: sys.Times } | "absent" | "hidden";

/** Looks `name` up in one lower layer, as overlayfs would see it from above. */
function lookup(lowerFd: number, parts: string[]): Found {
  let cur = lowerFd;
  try {
    for (let i = 0; i < parts.length; i++) {
      let next: number;
      try {
        next = sys.openat(cur, parts[i], PATH);
      } catch (e) {
        if (!(e instanceof SyscallError) || e.code !== "ENOENT") throw e;
        return i > 0 && isOpaque(cur) ? "hidden" : "absent";
      }
      if (cur !== lowerFd) sys.close(cur);
      cur = next;
      const st = statx(cur, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
      if ((st.mode & S_IFMT) !== S_IFDIR) return "hidden"; // whiteout, file or symlink
      if (i === parts.length - 1) {
        return {
          mode: st.mode & 0o7777,
          uid: st.uid,
          gid: st.gid,
          times: {
            atime: st.atime.sec,
            atimeNs: st.atime.nsec,
            mtime: st.mtime.sec,
            mtimeNs: st.mtime.nsec,
          },
        };
      }
    }
    return "absent";
  } finally {
    if (cur !== lowerFd) sys.close(cur);
  }
}

function isOpaque(dirFd: number): boolean {
  try {
    return new TextDecoder().decode(
      lgetxattr(`/proc/self/fd/${dirFd}/.`, "trusted.overlay.opaque"),
    ) === "y";
  } catch {
    return false;
  }
}

/**
 * Gives each directory of `dirs` (root-relative names in `upperDir`) the mode, owner and times of
 * the same directory in the first of `lowerDirs` (top layer first) that has it.
 */
export function inheritParentAttrs(
  upperDir: string,
  dirs: Iterable<string>,
  lowerDirs: readonly string[],
): void {
  const names = [...dirs];
  if (names.length === 0 || lowerDirs.length === 0) return;
  const dirFlags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  const lowers = lowerDirs.map((d) => sys.openat(AT_FDCWD, d, dirFlags));
  const upper = sys.openat(AT_FDCWD, upperDir, dirFlags);
  try {
    for (const name of names) {
      const parts = name.split("/");
      let found: Found = "absent";
      for (const fd of lowers) {
        found = lookup(fd, parts);
        if (found !== "absent") break;
      }
      if (typeof found === "string") continue;
      const parent = parts.length > 1 ? walk(upper, parts.slice(0, -1)) : upper;
      if (parent < 0) continue;
      const base = parts[parts.length - 1];
      try {
        // Only a real directory: had the layer replaced it (`a/x`, then `a -> /etc/shadow`), a
        // chmod could follow the symlink out of the layer.
        if (!isDir(parent, base)) continue;
        sys.fchownat(parent, base, found.uid, found.gid, AT_SYMLINK_NOFOLLOW);
        sys.chmodNoFollow(parent, base, found.mode);
        sys.utimensat(parent, base, found.times, AT_SYMLINK_NOFOLLOW);
      } finally {
        if (parent !== upper) sys.close(parent);
      }
    }
  } finally {
    for (const fd of lowers) sys.close(fd);
    sys.close(upper);
  }
}

/** True when `base` in `fd` is a directory (not a symlink to one); false when it is missing. */
function isDir(fd: number, base: string): boolean {
  try {
    return sys.fileType(fd, base, AT_SYMLINK_NOFOLLOW) === S_IFDIR;
  } catch (e) {
    if (e instanceof SyscallError && e.code === "ENOENT") return false;
    throw e;
  }
}

/** O_PATH fd of the directory `parts` below `fd`, no symlink followed; -1 when it is not there. */
function walk(fd: number, parts: string[]): number {
  let cur = fd;
  for (const part of parts) {
    let next: number;
    try {
      next = sys.openat(cur, part, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    } catch {
      next = -1;
    }
    if (cur !== fd) sys.close(cur);
    if (next < 0) return -1;
    cur = next;
  }
  return cur;
}
