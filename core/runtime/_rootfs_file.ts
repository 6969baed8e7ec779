/**
 * Reads a file of a container's root filesystem before it is mounted: from a stack of layer
 * directories (top-most first, as overlay lowerdirs are given), with overlay's rules (the top-most
 * entry wins; directories merge down to an opaque one or a non-directory; a whiteout hides), and
 * every symlink resolved inside that root, by this module, one component at a time. The kernel
 * never follows a link of a layer (each step is a single name under a directory descriptor, with
 * `O_NOFOLLOW`), so neither a hostile image (`/etc -> /`) nor a lower layer's `etc -> /etc` under
 * an upper layer's `etc/` can make the engine read host files; only a regular file is opened for
 * reading.
 *
 * @module
 */
import {
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  O_CLOEXEC,
  O_DIRECTORY,
  O_NOFOLLOW,
  O_PATH,
  O_RDONLY,
  S_IFCHR,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
} from "../../ffi/constants.ts";
import { close, fgetxattr, openat, readlinkat, statx } from "../../ffi/fs.ts";
import { SyscallError } from "../../ffi/syscall_error.ts";
import { readRegularFile } from "./_container_file.ts";

const MAX_HOPS = 40;
const ABSENT = new Set(["ENOENT", "ENOTDIR"]);

/** A directory of the union: its descriptors in the layers that make it up, top-most first. */
type Dir = number[];

type Entry =
  | { kind: "dir"; dir: Dir }
  | { kind: "link"; target: string }
  | { kind: "other"; parent: number; name: string };

function opaque(fd: number): boolean {
  try {
    return new TextDecoder().decode(fgetxattr(fd, "trusted.overlay.opaque")) === "y";
  } catch {
    return false;
  }
}

// `name` (one component) in the union directory `dir`; every descriptor it opens goes to `open`.
function lookup(dir: Dir, name: string, open: number[]): Entry | undefined {
  const merged: Dir = [];
  for (const fd of dir) {
    let type: number;
    let whiteout: boolean;
    try {
      const st = statx(fd, name, AT_SYMLINK_NOFOLLOW);
      type = st.mode & S_IFMT;
      whiteout = type === S_IFCHR && st.rdev.major === 0 && st.rdev.minor === 0;
    } catch (e) {
      if (e instanceof SyscallError && ABSENT.has(e.code)) continue;
      throw e;
    }
    if (merged.length) {
      // below a directory only directories merge: anything else ends the union
      if (type !== S_IFDIR) break;
    } else if (whiteout) {
      return undefined;
    } else if (type === S_IFLNK) {
      return { kind: "link", target: readlinkat(fd, name) };
    } else if (type !== S_IFDIR) {
      return { kind: "other", parent: fd, name };
    }
    const sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    open.push(sub);
    merged.push(sub);
    if (opaque(sub)) break;
  }
  return merged.length ? { kind: "dir", dir: merged } : undefined;
}

const components = (p: string) => p.split("/").filter((c) => c && c !== ".");

/**
 * The text of `path` (absolute, inside the rootfs) in the union of `layers`, or undefined when it
 * does not exist there (or is not a regular file). RangeError above `maxBytes`.
 */
export function readRootfsFile(
  layers: readonly string[],
  path: string,
  maxBytes = 4 << 20,
): string | undefined {
  const open: number[] = [];
  try {
    const root: Dir = [];
    for (const layer of layers) {
      try {
        root.push(openat(AT_FDCWD, layer, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      } catch (e) {
        if (e instanceof SyscallError && ABSENT.has(e.code)) continue;
        throw e;
      }
      open.push(root.at(-1)!);
    }
    // the directories from the root down to the current one (`..` goes back up)
    let stack: Dir[] = [root];
    let todo = components(path);
    let hops = 0;
    while (todo.length) {
      const c = todo.shift()!;
      if (c === "..") {
        if (stack.length > 1) stack.pop();
        continue;
      }
      const entry = lookup(stack.at(-1)!, c, open);
      if (!entry) return undefined;
      if (entry.kind === "dir") {
        stack.push(entry.dir);
      } else if (entry.kind === "link") {
        if (++hops > MAX_HOPS) return undefined;
        if (entry.target.startsWith("/")) stack = [root];
        todo = [...components(entry.target), ...todo];
      } else {
        if (todo.length) return undefined; // not a directory
        let fd: number;
        try {
          fd = openat(entry.parent, entry.name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        } catch (e) {
          if (e instanceof SyscallError && ABSENT.has(e.code)) return undefined;
          throw e;
        }
        try {
          return readRegularFile(fd, maxBytes, `${path} in the image`);
        } finally {
          close(fd);
        }
      }
    }
    return undefined; // a directory
  } finally {
    for (const fd of open) close(fd);
  }
}
