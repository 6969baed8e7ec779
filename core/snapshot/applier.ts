/**
 * The layer applier: a {@linkcode TarSink} that writes a layer's entries into a directory and
 * never creates, changes or follows anything outside it, whatever the tar says.
 *
 * How it stays inside (the way runc's and containerd's newer code does it, with the kernel doing the
 * resolution rather than string checks):
 * - Every operation is relative to an `O_PATH` fd of the root directory. Entry names are first
 *   normalised lexically (leading `/` and `./` dropped; a `..` that would climb above the root
 *   rejects the layer: nothing is clamped).
 * - The parent directory of an entry is opened with `openat2(RESOLVE_IN_ROOT |
 *   RESOLVE_NO_MAGICLINKS)`: symlinks on the way (laid by this layer or, in flatten mode, an earlier
 *   one) are followed as if the root were `/`, so `evil -> /etc` then `evil/x` writes
 *   `<root>/etc/x`, and `..` can never leave the root (containerd's `RootPath` semantics, enforced by
 *   the kernel and race-free). Missing parents are created 0755 (as docker does) by a walk that
 *   opens each component with `O_NOFOLLOW` and goes back to `openat2` only at a symlink; a
 *   dangling symlink's target is created inside the root, as containerd does.
 * - The final component is never followed: files are created with `O_CREAT | O_EXCL | O_NOFOLLOW`
 *   (anything already there is removed first, never written through), and owners, modes, times
 *   and xattrs are set with `AT_SYMLINK_NOFOLLOW`, `fchmodat2(AT_SYMLINK_NOFOLLOW)`, on the open
 *   fd, or through `/proc/self/fd/<parent fd>/<name>` with `lsetxattr`.
 * - Symlink targets are data: stored as they are, never followed by the applier.
 * - A hardlink's target is normalised like a name, must stay in the root and must be in this
 *   layer (it has to exist in this layer's own directory in overlay mode, and to be an earlier
 *   entry of this layer in flatten mode); a link to a lower layer, a missing target or a directory
 *   rejects the layer, as it does in docker's overlay2 driver.
 *
 * Modes:
 * - `"overlay"`: one layer into its own empty directory (an overlay lowerdir). `.wh.NAME` becomes a
 *   whiteout (character device 0/0 named NAME, mode 0, owner and mtime from the header);
 *   `.wh..wh..opq` in directory
 *   D sets `trusted.overlay.opaque=y` on D; other `.wh..wh.*` names (AUFS metadata) are skipped.
 * - `"flatten"`: layers applied one after another into ONE directory (`berth unpack`, and hosts
 *   without overlayfs); call `finish()` after each layer. `.wh.NAME` deletes NAME (recursively,
 *   fd-relative, nothing followed); an opaque marker deletes everything under D that this same layer
 *   did not write (tracked per layer, as containerd does).
 * In both modes a whiteout never hides an entry of its own layer (OCI image spec: "files that are
 * present in the same layer as a whiteout file can only be hidden by whiteout files in subsequent
 * layers").
 *
 * Metadata: owner (chown before chmod, since chown clears suid/sgid), mode with suid/sgid/sticky,
 * mtime and atime (atime = mtime when the archive has none; PAX fractional times kept to the
 * nanosecond), xattrs (`trusted.overlay.*` from the archive are skipped and reported in
 * {@linkcode LayerApplier.stats}: they would forge overlay whiteouts, redirects or metacopy
 * origins; xattrs the filesystem does not support are skipped and reported likewise), directory
 * mtimes applied in `finish()` after their children. Hardlink entries re-apply their header's owner,
 * mode and times to the shared inode, as docker and containerd do.
 *
 * The applier needs root (it chowns, mknods and sets trusted xattrs).
 *
 * @module
 */
import { BerthError, InvalidInputError } from "../errors.ts";
import type { TarHeader, TarSink } from "../tar/reader.ts";
import { SyscallError } from "../../ffi/syscall_error.ts";
import { makedev, readlinkat } from "../../ffi/fs.ts";
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_REMOVEDIR,
  AT_SYMLINK_NOFOLLOW,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOFOLLOW,
  O_PATH,
  O_RDONLY,
  O_WRONLY,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_MAGICLINKS,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFREG,
} from "../../ffi/constants.ts";
import * as sys from "../../ffi/fs_native.ts";
import type { Times } from "../../ffi/fs_native.ts";

/** How an applier lays out what it writes. */
export type ApplierMode = "overlay" | "flatten";

/** Options of {@linkcode createApplier}. */
export interface ApplierOptions {
  /** `"overlay"`: one layer, overlay whiteouts; `"flatten"`: layers merged, whiteouts applied. */
  mode: ApplierMode;
  /** Prefix of error messages, e.g. `Cannot load "x.tar": layer sha256:ab…`. */
  what: string;
}

/** What an applier did, beyond writing the entries. */
export interface ApplierStats {
  /** Tar entries seen. */
  entries: number;
  /** File bytes written. */
  bytes: number;
  /** Xattrs not applied, as `entry: name (reason)` (at most 100 are kept). */
  skippedXattrs: string[];
  /** `.wh..wh.*` entries other than the opaque marker, skipped. */
  skippedWhiteoutMeta: number;
}

/** A {@linkcode TarSink} that unpacks into a directory; see the module doc. */
export interface LayerApplier extends TarSink {
  /**
   * Ends a layer: applies the deferred directory times. In flatten mode the applier may then be fed
   * the next layer.
   */
  finish(): void;
  /** Releases every fd; safe to call more than once and after an error. */
  close(): void;
  /** Counters and what was skipped. */
  readonly stats: ApplierStats;
  /** Prefix of error messages (from the options); in flatten mode, set it for each layer. */
  what: string;
  /**
   * Overlay mode: directories created only because an entry below them needed a parent (the layer
   * has no entry of their own, and did not replace or remove them later). They are 0755
   * root-owned here; the snapshotter gives them the attributes of the same directory in the lower
   * layers (see `_parents.ts`), as containerd does.
   */
  readonly implicitDirs: ReadonlySet<string>;
}

/**
 * Creates an applier writing into `rootDir` (an existing directory, trusted: it is opened normally,
 * everything below it is not).
 *
 * @example
 * ```ts ignore
 * import { createApplier } from "./applier.ts";
 * import { readLayer } from "../image/read_layer.ts";
 * const applier = createApplier("/tmp/snap", { mode: "overlay", what: "layer x" });
 * try {
 *   await readLayer(source, layer, { what: "layer x", sink: applier });
 *   applier.finish();
 * } finally {
 *   applier.close();
 * }
 * ```
 */
export function createApplier(rootDir: string, options: ApplierOptions): LayerApplier {
  if (typeof rootDir !== "string" || rootDir === "") {
    throw new TypeError("createApplier: rootDir must be a non-empty path");
  }
  if (options?.mode !== "overlay" && options?.mode !== "flatten") {
    throw new TypeError(`createApplier: mode must be "overlay" or "flatten", got ${options?.mode}`);
  }
  return new Applier(rootDir, options);
}

const DIR = 1;
const NONDIR = 2;
const OPAQUE = ".wh..wh..opq";
/** Longest root-relative path the kernel resolves (PATH_MAX - 1). */
const MAX_PATH = 4095;
const CACHE_SIZE = 32;
const MAX_HOPS = 40;
const PATH_DIR = O_PATH | O_DIRECTORY | O_CLOEXEC;
const PATH_DIR_NOFOLLOW = PATH_DIR | O_NOFOLLOW;
const IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
const CREATE_FILE = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
const OPEN_DIR = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
const Y = new TextEncoder().encode("y");
/** errnos that mean the archive asked for something impossible (not an I/O or host problem). */
const INPUT_ERRNOS = new Set([
  "ENAMETOOLONG",
  "ELOOP",
  "ENOTDIR",
  "EISDIR",
  "EMLINK",
  "EXDEV",
  "EINVAL",
  "EEXIST",
]);

function quote(name: string): string {
  return JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}…` : name);
}

function code(e: unknown): string | undefined {
  return e instanceof SyscallError ? e.code : undefined;
}

/** Splits a tar time into seconds and nanoseconds, exactly from the PAX text when there is one. */
function splitTime(t: number, exact: string | undefined): [number, number] {
  if (exact !== undefined && /^-?[0-9]+(\.[0-9]*)?$/.test(exact)) {
    const neg = exact.startsWith("-");
    const [i, f = ""] = (neg ? exact.slice(1) : exact).split(".");
    let sec = Number(i);
    let ns = Number((f + "000000000").slice(0, 9));
    if (Number.isSafeInteger(sec)) {
      if (neg) {
        sec = -sec;
        if (ns > 0) {
          sec -= 1;
          ns = 1e9 - ns;
        }
      }
      return [sec, ns];
    }
  }
  const sec = Math.floor(t);
  const ns = Math.min(Math.round((t - sec) * 1e9), 999_999_999);
  return [sec, ns];
}

function headerTimes(h: TarHeader): Times {
  const [mtime, mtimeNs] = splitTime(h.mtime, h.pax.mtime);
  if (h.atime === undefined) return { atime: mtime, atimeNs: mtimeNs, mtime, mtimeNs };
  const [atime, atimeNs] = splitTime(h.atime, h.pax.atime);
  return { atime, atimeNs, mtime, mtimeNs };
}

/** Byte length of `s` in UTF-8 (cheap bound first). */
function utf8Length(s: string): number {
  if (s.length * 3 <= MAX_PATH) return s.length; // below any limit either way
  return new TextEncoder().encode(s).length;
}

class Applier implements LayerApplier {
  readonly stats: ApplierStats = {
    entries: 0,
    bytes: 0,
    skippedXattrs: [],
    skippedWhiteoutMeta: 0,
  };
  #root: number;
  what: string;
  #flatten: boolean;
  /** Resolved parent directories (O_PATH fds) by root-relative name. */
  #cache = new Map<string, number>();
  /** Fds dropped from the cache during an entry (which may still use them); closed after it. */
  #retired: number[] = [];
  /** Directory times to apply at `finish()`, by name (kept across layers in flatten mode). */
  #dirTimes = new Map<string, Times>();
  /** Flatten mode: directories this layer changed (their times are re-applied at finish). */
  #touched = new Set<string>();
  /** Flatten mode: names this layer wrote (DIR or NONDIR), with their implicit parents. */
  #written = new Map<string, number>();
  readonly implicitDirs: Set<string> = new Set();
  #fd = -1;
  #fileHeader: TarHeader | null = null;
  #fileName = "";
  #closed = false;
  #rootPath: string | undefined;

  constructor(rootDir: string, options: ApplierOptions) {
    this.what = options.what;
    this.#flatten = options.mode === "flatten";
    this.#root = sys.openat(AT_FDCWD, rootDir, PATH_DIR);
  }

  // ---------------------------------------------------------------------------------------------
  // TarSink

  entry(h: TarHeader): void {
    if (this.#closed) throw new TypeError("LayerApplier.entry() called after close()");
    this.stats.entries++;
    this.#trimCache();
    const name = this.#normalize(h.name, h.name, "");
    const slash = name.lastIndexOf("/");
    const dir = slash < 0 ? "" : name.slice(0, slash);
    const base = name.slice(slash + 1);
    try {
      if (base.startsWith(".wh.")) return this.#whiteout(h, dir, base);
      if (name === "") return this.#rootEntry(h);
      if (this.#flatten) {
        this.#touched.add(dir);
        this.#mark(name, h.type === "dir" ? DIR : NONDIR);
      }
      switch (h.type) {
        case "file":
          return this.#file(h, name, dir, base);
        case "dir":
          return this.#dir(h, name, dir, base);
        case "symlink":
          return this.#symlink(h, name, dir, base);
        case "hardlink":
          return this.#hardlink(h, name, dir, base);
        case "char":
        case "block":
        case "fifo":
          return this.#node(h, name, dir, base);
        default:
          throw this.#invalid(
            h.name,
            `has unsupported type ${
              JSON.stringify(h.typeflag)
            } (docker and containerd reject it too)`,
          );
      }
    } catch (e) {
      throw this.#wrap(e, h.name);
    }
  }

  data(chunk: Uint8Array): void {
    if (this.#fd < 0) return;
    try {
      sys.writeAll(this.#fd, chunk);
    } catch (e) {
      throw this.#wrap(e, this.#fileName);
    }
    this.stats.bytes += chunk.byteLength;
  }

  entryEnd(): void {
    const fd = this.#fd;
    if (fd < 0) return;
    const h = this.#fileHeader!;
    this.#fd = -1;
    this.#fileHeader = null;
    try {
      this.#fdAttrs(fd, h);
      sys.futimens(fd, headerTimes(h));
    } catch (e) {
      throw this.#wrap(e, h.name);
    } finally {
      sys.close(fd);
    }
  }

  finish(): void {
    if (this.#closed) throw new TypeError("LayerApplier.finish() called after close()");
    this.entryEnd();
    this.#trimCache();
    const names = this.#flatten ? this.#touched : this.#dirTimes.keys();
    for (const name of names) {
      const t = this.#dirTimes.get(name);
      if (t === undefined) continue;
      this.#trimCache();
      try {
        this.#applyTimes(name, t);
      } catch (e) {
        throw this.#wrap(e, name);
      }
    }
    if (this.#flatten) {
      this.#touched.clear();
      this.#written.clear();
    } else {
      this.#dirTimes.clear();
    }
    this.#dropCache(); // the next layer starts from fresh lookups
    this.#trimCache();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#fd >= 0) sys.close(this.#fd);
    this.#fd = -1;
    this.#dropCache();
    this.#trimCache();
    sys.close(this.#root);
  }

  // ---------------------------------------------------------------------------------------------
  // Names and errors

  /**
   * The root-relative form of `raw` ("" for the root itself): no leading `/`, no `.` or empty
   * components, `..` applied. Throws when `..` climbs above the root, on NUL, on a too long path.
   */
  #normalize(raw: string, entry: string, role: string): string {
    const what = role ? `${role} ${quote(raw)}` : "";
    if (raw.includes("\0")) {
      throw this.#invalid(entry, `${what ? what + " " : "name "}contains a NUL byte`);
    }
    let name = raw;
    if (
      name.startsWith("/") || name.startsWith("./") || name.endsWith("/") || name === "." ||
      name.includes("//") || name.includes("/./") || name.endsWith("/.") || name.includes("..")
    ) {
      const out: string[] = [];
      for (const part of raw.split("/")) {
        if (part === "" || part === ".") continue;
        if (part === "..") {
          if (out.length === 0) {
            throw this.#invalid(
              entry,
              role
                ? `has ${what}, which escapes the layer (".." above its root)`
                : `escapes the layer (".." above its root); the layer is rejected`,
            );
          }
          out.pop();
        } else out.push(part);
      }
      name = out.join("/");
    }
    const bytes = utf8Length(name);
    if (bytes > MAX_PATH) {
      throw this.#invalid(
        entry,
        `${
          what ? `has ${what} that ` : ""
        }is ${bytes} bytes long, more than the ${MAX_PATH} a path ` +
          `may have`,
      );
    }
    return name;
  }

  #invalid(entry: string, problem: string): InvalidInputError {
    return new InvalidInputError(`${this.what}: entry ${quote(entry)} ${problem}`);
  }

  /** Gives a failure the layer and entry context; errnos caused by the archive are invalid input. */
  #wrap(e: unknown, entry: string): unknown {
    if (e instanceof BerthError) return e;
    if (e instanceof TypeError && /NUL byte/.test(e.message)) {
      return this.#invalid(entry, "has a link target with a NUL byte");
    }
    if (e instanceof SyscallError) {
      const Ctor = INPUT_ERRNOS.has(e.code) ? InvalidInputError : BerthError;
      return new Ctor(`${this.what}: entry ${quote(entry)}: ${e.message}`, { cause: e });
    }
    return e;
  }

  // ---------------------------------------------------------------------------------------------
  // Resolution

  /**
   * An O_PATH fd of directory `dir` resolved inside the root (cached; do not close it). Missing
   * components are created when `create`; otherwise -1 is returned for a missing directory or one
   * that is not a directory.
   */
  #parent(dir: string, create: boolean): number {
    if (dir === "") return this.#root;
    const cached = this.#cache.get(dir);
    if (cached !== undefined) return cached;
    let fd = -1;
    for (let attempt = 0; fd < 0; attempt++) {
      try {
        fd = sys.openat2(this.#root, dir, PATH_DIR, IN_ROOT);
      } catch (e) {
        const c = code(e);
        if (c === "EAGAIN" && attempt < 8) continue; // a concurrent rename: the kernel asks to retry
        if (!create && (c === "ENOENT" || c === "ENOTDIR")) return -1;
        if (c !== "ENOENT") throw e;
        fd = this.#makeParents(dir, 0);
      }
    }
    if (fd !== this.#root) this.#cache.set(dir, fd);
    return fd;
  }

  /** Creates the missing directories of `path` (see the module doc); returns its O_PATH fd. */
  #makeParents(path: string, hops: number): number {
    const parts = path.split("/");
    let cur = this.#root;
    let curPath = "";
    let redirect: string | undefined;
    try {
      for (let i = 0; i < parts.length; i++) {
        const c = parts[i];
        const here = curPath === "" ? c : `${curPath}/${c}`;
        let next: number;
        try {
          next = sys.openat(cur, c, PATH_DIR_NOFOLLOW);
        } catch (e) {
          const ec = code(e);
          if (ec === "ENOENT") {
            try {
              sys.mkdirat(cur, c, 0o755);
            } catch (e2) {
              if (code(e2) !== "EEXIST") throw e2;
            }
            if (this.#flatten) this.#touched.add(curPath);
            else this.implicitDirs.add(here);
            next = sys.openat(cur, c, PATH_DIR_NOFOLLOW);
          } else if (ec === "ENOTDIR" || ec === "ELOOP") {
            // A symlink (or not a directory at all): let the kernel resolve it inside the root.
            try {
              next = sys.openat2(this.#root, here, PATH_DIR, IN_ROOT);
            } catch (e3) {
              if (code(e3) !== "ENOENT") throw e3;
              // A dangling symlink: continue at its target, inside the root.
              if (hops >= MAX_HOPS) throw new SyscallError("openat2", 40, here); // ELOOP
              let target: string;
              try {
                target = readlinkat(cur, c);
              } catch {
                throw e3;
              }
              const joined = target.startsWith("/") ? target : `${curPath}/${target}`;
              redirect = clampJoin(joined, parts.slice(i + 1));
              break;
            }
          } else throw e;
        }
        if (cur !== this.#root) sys.close(cur);
        cur = next;
        curPath = here;
      }
    } catch (e) {
      if (cur !== this.#root) sys.close(cur);
      throw e;
    }
    if (redirect === undefined) return cur;
    if (cur !== this.#root) sys.close(cur);
    if (redirect === "") return this.#root;
    return this.#makeParents(redirect, hops + 1);
  }

  /**
   * Closes retired fds and cached fds beyond the bound (only between entries: an entry's fds stay
   * valid).
   */
  #trimCache(): void {
    for (const fd of this.#retired) sys.close(fd);
    this.#retired.length = 0;
    if (this.#cache.size <= CACHE_SIZE) return;
    for (const [key, fd] of this.#cache) {
      sys.close(fd);
      this.#cache.delete(key);
      if (this.#cache.size <= CACHE_SIZE / 2) break;
    }
  }

  /**
   * Drops what was known about `name` (of file type `type`) and everything below it: it was removed
   * or replaced. A directory or symlink empties the whole cache, since a cached name may have been
   * resolved through it under another spelling (`b/` through `b -> c`, then `c` removed).
   */
  #forget(name: string, type: number): void {
    if (type === S_IFDIR || type === S_IFLNK) this.#dropCache();
    const prefix = name + "/";
    for (const key of this.#dirTimes.keys()) {
      if (key === name || key.startsWith(prefix)) this.#dirTimes.delete(key);
    }
    for (const key of this.implicitDirs) {
      if (key === name || key.startsWith(prefix)) this.implicitDirs.delete(key);
    }
  }

  /** Empties the cache; its fds are closed after the current entry (see `#trimCache`). */
  #dropCache(): void {
    for (const fd of this.#cache.values()) this.#retired.push(fd);
    this.#cache.clear();
  }

  /** Flatten mode: records that this layer wrote `name` (and, implicitly, its parents). */
  #mark(name: string, kind: number): void {
    this.#written.set(name, kind);
    let i = name.lastIndexOf("/");
    while (i > 0) {
      const p = name.slice(0, i);
      if (this.#written.get(p) === DIR) break;
      this.#written.set(p, DIR);
      i = p.lastIndexOf("/");
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Removal (fd-relative, nothing followed)

  /** Removes whatever is at `base` in `pfd` (a directory recursively); false when nothing was. */
  #remove(pfd: number, base: string, name: string): boolean {
    let type: number;
    try {
      type = sys.fileType(pfd, base, AT_SYMLINK_NOFOLLOW);
    } catch (e) {
      if (code(e) === "ENOENT") return false;
      throw e;
    }
    if (type === S_IFDIR) {
      this.#removeTree(pfd, base);
      sys.unlinkat(pfd, base, AT_REMOVEDIR);
    } else {
      sys.unlinkat(pfd, base, 0);
    }
    if (type !== S_IFREG) this.#forget(name, type);
    return true;
  }

  #removeTree(pfd: number, base: string): void {
    const fd = sys.openat(pfd, base, OPEN_DIR);
    try {
      for (const e of listDir(fd)) {
        if (e.isDirectory) {
          this.#removeTree(fd, e.name);
          sys.unlinkat(fd, e.name, AT_REMOVEDIR);
        } else {
          sys.unlinkat(fd, e.name, 0);
        }
      }
    } finally {
      sys.close(fd);
    }
  }

  /** Flatten mode: removes everything under the directory `fd` (named `prefix`) this layer did not write. */
  #emptyExcept(fd: number, prefix: string): void {
    for (const e of listDir(fd)) {
      const key = prefix === "" ? e.name : `${prefix}/${e.name}`;
      const kind = this.#written.get(key);
      if (kind === undefined) {
        this.#remove(fd, e.name, key);
      } else if (kind === DIR && e.isDirectory) {
        const child = sys.openat(fd, e.name, OPEN_DIR);
        try {
          this.#emptyExcept(child, key);
        } finally {
          sys.close(child);
        }
        this.#touched.add(key);
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Entries

  #file(h: TarHeader, name: string, dir: string, base: string): void {
    const pfd = this.#parent(dir, true);
    let fd: number;
    try {
      fd = sys.openat(pfd, base, CREATE_FILE, 0o600);
    } catch (e) {
      if (code(e) !== "EEXIST") throw e;
      this.#remove(pfd, base, name);
      fd = sys.openat(pfd, base, CREATE_FILE, 0o600);
    }
    this.#fd = fd;
    this.#fileHeader = h;
    this.#fileName = h.name;
  }

  #dir(h: TarHeader, name: string, dir: string, base: string): void {
    const pfd = this.#parent(dir, true);
    try {
      sys.mkdirat(pfd, base, 0o700);
    } catch (e) {
      if (code(e) !== "EEXIST") throw e;
      if (sys.fileType(pfd, base, AT_SYMLINK_NOFOLLOW) !== S_IFDIR) {
        this.#remove(pfd, base, name);
        sys.mkdirat(pfd, base, 0o700);
      }
    }
    this.#attrs(h, pfd, base, false);
    this.implicitDirs.delete(name);
    this.#dirTimes.set(name, headerTimes(h));
    if (this.#flatten) this.#touched.add(name);
  }

  #symlink(h: TarHeader, name: string, dir: string, base: string): void {
    if (h.linkname === "") throw this.#invalid(h.name, "is a symlink with an empty target");
    const pfd = this.#parent(dir, true);
    try {
      sys.symlinkat(h.linkname, pfd, base);
    } catch (e) {
      if (code(e) !== "EEXIST") throw e;
      this.#remove(pfd, base, name);
      sys.symlinkat(h.linkname, pfd, base);
    }
    this.#attrs(h, pfd, base, true);
  }

  #hardlink(h: TarHeader, name: string, dir: string, base: string): void {
    const target = this.#normalize(h.linkname, h.name, "hardlink target");
    const what = `is a hardlink to ${quote(h.linkname)}`;
    if (target === "") throw this.#invalid(h.name, `${what}, the layer root`);
    if (target === name) throw this.#invalid(h.name, `${what}, itself`);
    const slash = target.lastIndexOf("/");
    const tdir = slash < 0 ? "" : target.slice(0, slash);
    const tbase = target.slice(slash + 1);
    if (this.#flatten) {
      let kind = this.#written.get(target);
      if (kind === undefined) {
        // Named through a symlink? Compare the canonical name too.
        const tfd = this.#parent(tdir, false);
        const canon = tfd < 0 ? undefined : this.#canonical(tfd);
        if (canon !== undefined) kind = this.#written.get(canon ? `${canon}/${tbase}` : tbase);
      }
      if (kind === undefined) {
        throw this.#invalid(h.name, `${what}, which is not an earlier entry of this layer`);
      }
      if (kind === DIR) throw this.#invalid(h.name, `${what}, a directory`);
    }
    const pfd = this.#parent(dir, true);
    for (let attempt = 0;; attempt++) {
      const tfd = this.#parent(tdir, false);
      if (tfd < 0) throw this.#invalid(h.name, `${what}, which does not exist in this layer`);
      try {
        sys.linkat(tfd, tbase, pfd, base, 0);
        break;
      } catch (e) {
        const c = code(e);
        if (c === "EEXIST" && attempt === 0) {
          this.#remove(pfd, base, name);
          continue;
        }
        if (c === "ENOENT") {
          throw this.#invalid(h.name, `${what}, which does not exist in this layer`);
        }
        if (c === "EPERM") throw this.#invalid(h.name, `${what}, a directory`);
        throw e;
      }
    }
    // docker and containerd re-apply the link entry's metadata to the (shared) inode.
    const isLink = sys.fileType(pfd, base, AT_SYMLINK_NOFOLLOW) === S_IFLNK;
    this.#attrs(h, pfd, base, isLink);
  }

  #node(h: TarHeader, name: string, dir: string, base: string): void {
    const fmt = h.type === "char" ? S_IFCHR : h.type === "block" ? S_IFBLK : S_IFIFO;
    const dev = h.type === "fifo" ? 0n : makedev(h.devmajor, h.devminor);
    const pfd = this.#parent(dir, true);
    try {
      sys.mknodat(pfd, base, fmt | 0o600, dev);
    } catch (e) {
      if (code(e) !== "EEXIST") throw e;
      this.#remove(pfd, base, name);
      sys.mknodat(pfd, base, fmt | 0o600, dev);
    }
    this.#attrs(h, pfd, base, false);
  }

  #rootEntry(h: TarHeader): void {
    if (h.type !== "dir") {
      throw this.#invalid(h.name, `names the layer root but is a ${h.type}, not a directory`);
    }
    const fd = sys.openat(this.#root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    try {
      this.#fdAttrs(fd, h);
    } finally {
      sys.close(fd);
    }
    this.#dirTimes.set("", headerTimes(h));
    if (this.#flatten) this.#touched.add("");
  }

  /** Owner, mode and xattrs of an open file or directory (chmod after chown: chown clears suid). */
  #fdAttrs(fd: number, h: TarHeader): void {
    sys.fchown(fd, h.uid, h.gid);
    sys.fchmod(fd, h.mode);
    for (const key in h.xattrs) {
      if (!this.#xattrAllowed(h.name, key)) continue;
      try {
        sys.fsetxattr(fd, key, h.xattrs[key]);
      } catch (e) {
        this.#xattrFailed(e, h.name, key);
      }
    }
  }

  /** Owner, mode, xattrs and (for non-directories) times of the entry `base` in `pfd`. */
  #attrs(h: TarHeader, pfd: number, base: string, symlink: boolean): void {
    sys.fchownat(pfd, base, h.uid, h.gid, AT_SYMLINK_NOFOLLOW);
    if (!symlink) sys.chmodNoFollow(pfd, base, h.mode);
    let path: string | undefined;
    for (const key in h.xattrs) {
      if (!this.#xattrAllowed(h.name, key)) continue;
      path ??= `/proc/self/fd/${pfd}/${base}`;
      try {
        sys.lsetxattr(path, key, h.xattrs[key]);
      } catch (e) {
        this.#xattrFailed(e, h.name, key);
      }
    }
    if (h.type !== "dir") sys.utimensat(pfd, base, headerTimes(h), AT_SYMLINK_NOFOLLOW);
  }

  #xattrAllowed(entry: string, key: string): boolean {
    if (!key.startsWith("trusted.overlay.")) return true;
    this.#skipXattr(entry, key, "overlayfs private attribute from the archive");
    return false;
  }

  #xattrFailed(e: unknown, entry: string, key: string): void {
    const c = code(e);
    // Not storable here (filesystem without xattrs, user.* on a symlink or device): docker and
    // containerd skip these too.
    if (c === "EOPNOTSUPP" || c === "ENOTSUP" || c === "EPERM") {
      this.#skipXattr(entry, key, c);
      return;
    }
    throw e;
  }

  #skipXattr(entry: string, key: string, reason: string): void {
    if (this.stats.skippedXattrs.length < 100) {
      this.stats.skippedXattrs.push(`${entry}: ${key} (${reason})`);
    }
  }

  #whiteout(h: TarHeader, dir: string, base: string): void {
    if (base === OPAQUE) return this.#opaque(dir);
    if (base.startsWith(".wh..wh.")) {
      this.stats.skippedWhiteoutMeta++;
      return;
    }
    const target = base.slice(4);
    if (target === "" || target === "." || target === "..") {
      throw this.#invalid(h.name, "is a whiteout that names no file");
    }
    const name = dir === "" ? target : `${dir}/${target}`;
    if (this.#flatten) {
      if (this.#written.has(name)) return; // never hides its own layer's entries
      const pfd = this.#parent(dir, false);
      if (pfd < 0) return; // nothing below to hide
      if (this.#remove(pfd, target, name)) this.#touched.add(dir);
      return;
    }
    const pfd = this.#parent(dir, true);
    try {
      sys.mknodat(pfd, target, S_IFCHR, 0n);
    } catch (e) {
      if (code(e) === "EEXIST") return; // this layer wrote `target`: it stays (OCI)
      throw e;
    }
    sys.fchownat(pfd, target, h.uid, h.gid, AT_SYMLINK_NOFOLLOW);
    sys.utimensat(pfd, target, headerTimes(h), AT_SYMLINK_NOFOLLOW); // reproducible snapshots
  }

  #opaque(dir: string): void {
    if (this.#flatten) {
      const fd = this.#parent(dir, false);
      if (fd < 0) return;
      this.#emptyExcept(fd, dir);
      this.#touched.add(dir);
      return;
    }
    const pfd = this.#parent(dir, true);
    const fd = sys.openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    try {
      sys.fsetxattr(fd, "trusted.overlay.opaque", Y);
    } finally {
      sys.close(fd);
    }
  }

  /** The root-relative name of the directory `fd` (undefined when outside the root). */
  #canonical(fd: number): string | undefined {
    const root = this.#rootPath ??= Deno.readLinkSync(`/proc/self/fd/${this.#root}`);
    const p = Deno.readLinkSync(`/proc/self/fd/${fd}`);
    if (p === root) return "";
    const prefix = root === "/" ? "/" : `${root}/`;
    return p.startsWith(prefix) ? p.slice(prefix.length) : undefined;
  }

  #applyTimes(name: string, t: Times): void {
    if (name === "") {
      sys.utimensat(this.#root, "", t, AT_EMPTY_PATH);
      return;
    }
    const slash = name.lastIndexOf("/");
    const pfd = this.#parent(slash < 0 ? "" : name.slice(0, slash), false);
    if (pfd < 0) return;
    try {
      sys.utimensat(pfd, name.slice(slash + 1), t, AT_SYMLINK_NOFOLLOW);
    } catch (e) {
      if (code(e) !== "ENOENT") throw e;
    }
  }
}

/** The entries of the directory `fd` (read through its `/proc/self/fd` link, which is exact). */
function listDir(fd: number): Deno.DirEntry[] {
  return Array.from(Deno.readDirSync(`/proc/self/fd/${fd}`));
}

/** `base` joined with `rest`, normalised lexically with `..` stopping at the root (IN_ROOT). */
function clampJoin(base: string, rest: string[]): string {
  const out: string[] = [];
  for (const part of [...base.split("/"), ...rest]) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return out.join("/");
}
