/**
 * The container's first process: berth itself, started by the engine as `berth __init <fd>` in
 * the container's new namespaces (DESIGN.md §3). On its main thread, synchronously, it joins the
 * cgroup, mounts the root filesystem and the spec's mounts, pivots into the root, drops privileges
 * and `execve`s the container's command, which becomes PID 1. Failures go to the engine on the sync
 * socket as one message (exit code 125, or 126/127 for a command that cannot be run).
 *
 * The same entry joins a process into a running container (`exec`): spawned by the engine in the
 * container's pid, net, ipc and uts namespaces, it joins the container's cgroup, then its cgroup
 * and mount namespaces (setns(mnt) sets root and cwd to the container's root), and goes on as
 * above from the working directory: terminal, rlimits, privileges, `execve`. A process joined by
 * setns alone would keep the engine's full root powers.
 *
 * Hostile images: the destinations of the kernel's filesystems (proc, sysfs, devpts, mqueue,
 * cgroup) and of any mount on /proc, /sys or /dev or below are resolved without following a single
 * symlink of the image (a mount there fails, exit 125), and every masked or read-only path the
 * fresh procfs or sysfs has must, after the pivot, still be that very entry (else exit 125: a
 * mask is never skipped because the path went elsewhere). The capability bounding set is dropped
 * by probing the kernel (EINVAL past the last capability), not by reading the container's /proc.
 * The init is not dumpable until its execve, dies with the engine (PR_SET_PDEATHSIG, set again
 * after the change of user, which clears it) and exits if the engine is already gone.
 *
 * Keep this module's import graph small: it is loaded on every container start.
 *
 * @module
 */
import {
  AF_INET,
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_RECURSIVE,
  CLONE_FS,
  CLONE_NEWCGROUP,
  CLONE_NEWNS,
  CLOSE_RANGE_CLOEXEC,
  F_SETFD,
  FD_CLOEXEC,
  IFF_UP,
  MNT_DETACH,
  MOUNT_ATTR_RDONLY,
  MS_BIND,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  MS_REMOUNT,
  MSG_NOSIGNAL,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_NOCTTY,
  O_NOFOLLOW,
  O_PATH,
  O_RDWR,
  O_WRONLY,
  POLLHUP,
  POLLIN,
  PR_CAPBSET_DROP,
  PR_SET_DUMPABLE,
  PR_SET_KEEPCAPS,
  PR_SET_NO_NEW_PRIVS,
  PR_SET_PDEATHSIG,
  RESOLVE_BENEATH,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_MAGICLINKS,
  RESOLVE_NO_SYMLINKS,
  S_IFCHR,
  S_IFDIR,
  S_IFMT,
  S_IFREG,
  SIG_DFL,
  SIG_IGN,
  SIG_SETMASK,
  SIGKILL,
  SIGRTMAX,
  SIGSTOP,
  SIOCGIFFLAGS,
  SIOCSIFFLAGS,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
} from "../../ffi/constants.ts";
import { capset, setgroups, setresgid, setresuid } from "../../ffi/credentials.ts";
import {
  chdir,
  close,
  closeRange,
  dup3,
  fchdir,
  fchown,
  fcntl,
  makedev,
  mkdirat,
  mknodat,
  openat,
  openat2,
  type Stat,
  statx,
  symlinkat,
} from "../../ffi/fs.ts";
import { mount, mountSetattr, pivotRoot, umount2 } from "../../ffi/mount.ts";
import { setns, unshare } from "../../ffi/namespaces.ts";
import {
  execve,
  getppid,
  prctl,
  sethostname,
  setrlimit,
  setsid,
  sigaction,
  sigprocmask,
  umask,
} from "../../ffi/process.ts";
import { nextMessageLength, poll, recvmsg, sendmsg, socket } from "../../ffi/socket.ts";
import { SyscallError } from "../../ffi/syscall_error.ts";
import {
  ioctl,
  ioctlGetPtyNumber,
  ioctlSetCtty,
  ioctlSetPtyLock,
  ioctlSetWinsize,
} from "../../ffi/tty.ts";
import { capabilityMask } from "./_capabilities.ts";
import { RLIMITS } from "./_rlimits.ts";
import type { ExecConfig, InitConfig, InitMessage, RunConfig } from "./_init_protocol.ts";
import { parseMountOptions } from "./_mount_options.ts";
import { normalizePath } from "./_path.ts";
import type { RuntimeSpec, SpecMount, SpecProcess } from "./spec_types.ts";

/** An init failure with the exit code docker would give it. */
export class InitError extends Error {
  constructor(message: string, readonly code = 125) {
    super(message);
  }
}

const DEVICES: [string, number, number][] = [
  ["null", 1, 3],
  ["zero", 1, 5],
  ["full", 1, 7],
  ["random", 1, 8],
  ["urandom", 1, 9],
  ["tty", 5, 0],
];

const LINKS: [string, string][] = [
  ["/proc/self/fd", "fd"],
  ["/proc/self/fd/0", "stdin"],
  ["/proc/self/fd/1", "stdout"],
  ["/proc/self/fd/2", "stderr"],
  ["pts/ptmx", "ptmx"],
];

const encoder = new TextEncoder();
const now = () => performance.timeOrigin + performance.now();

function send(sync: number, msg: InitMessage, fds: number[] = []): void {
  // MSG_NOSIGNAL: once the signals are reset, a gone engine must not kill the init by SIGPIPE
  sendmsg(sync, encoder.encode(JSON.stringify(msg)), fds, MSG_NOSIGNAL);
}

/**
 * Runs the init: `args[0]` is the fd of its end of the sync socket, on which the engine sends the
 * {@linkcode InitConfig}. Never returns when the container's command starts (execve); exits
 * 125/126/127 after reporting a failure to the engine.
 */
export function init(args: string[]): Promise<void> {
  const marks: Record<string, number> = { origin: performance.timeOrigin, start: now() };
  // no one else's /proc/PID (environ, mem, fd) until the execve, which restores the flag
  prctl(PR_SET_DUMPABLE, 0);
  const sync = Number(args[0]);
  if (!/^\d+$/.test(args[0] ?? "")) {
    console.error("berth: __init: bad argument");
    Deno.exit(125);
  }
  // die with the engine rather than outlive it unsupervised
  ppid = getppid();
  keepParent(sync);
  try {
    fcntl(sync, F_SETFD, FD_CLOEXEC);
    marks.ffi = now();
    const { data, fds } = recvmsg(sync, Math.max(nextMessageLength(sync), 1), 2);
    if (!data.length) Deno.exit(125); // the engine went away
    const config: InitConfig = JSON.parse(new TextDecoder().decode(data));
    marks.config = now();
    if (config.kind === "exec") join(config, fds, sync, marks);
    for (const fd of fds) close(fd);
    start(config, sync, marks);
  } catch (e) {
    const code = e instanceof InitError ? e.code : 125;
    const message = e instanceof Error ? e.message : String(e);
    try {
      send(sync, { t: "error", code, message });
    } catch {
      console.error(`berth: ${message}`);
    }
    Deno.exit(code);
  }
  return Promise.resolve();
}

// the parent's pid as this process first saw it (0: outside its pid namespace)
let ppid = 0;

/**
 * Sets the parent-death signal (again: a change of credentials clears it) and exits when the
 * parent (the engine) is already gone: reparented, or its end of the sync socket closed (a pid
 * namespace's first process sees its parent as 0 either way).
 */
function keepParent(sync: number): void {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  let hup = false;
  try {
    hup = (poll([{ fd: sync, events: POLLIN }], 0)[0] & POLLHUP) !== 0;
  } catch { /* not a socket: the argument check reports it */ }
  if (getppid() !== ppid || hup) Deno.exit(125);
}

function start(config: RunConfig, sync: number, marks: Record<string, number>): never {
  const spec: RuntimeSpec = JSON.parse(Deno.readTextFileSync(`${config.bundle}/config.json`));
  const path = setUpContainer(config, spec, marks, { sync });
  execProcess(spec.process, path, sync, config.timing ? marks : undefined);
}

/**
 * How a thread of the engine sets a container up for the direct start (`_direct_start.ts`):
 * it joins the v1 cgroups alone (its thread id to `tasks`), and the container's procfs is
 * mounted for a PID namespace that has no process yet (`pidns=`, Linux 6.15).
 */
export interface DirectSetup {
  /** The calling thread's id. */
  tid: number;
  /** A descriptor of the container's PID namespace. */
  pidns: number;
  /** The v1 `tasks` files of the container's cgroup. */
  cgroupTasks: readonly string[];
}

/**
 * Sets the container up on the calling thread, in the namespaces it is in (new ones, from the
 * engine's spawn or the direct start's unshare): cgroup, root filesystem, mounts, pivot, masked
 * and read-only paths, terminal, hostname, loopback, rlimits (not for `direct`: they are the
 * process's, and the engine checked they already are the spec's) and working directory. Returns
 * the command's path, found in the container's PATH. Privileges are still the engine's.
 */
export function setUpContainer(
  config: RunConfig,
  spec: RuntimeSpec,
  marks: Record<string, number>,
  how: { sync: number; direct?: undefined } | { direct: DirectSetup; sync?: undefined },
): string {
  const proc = spec.process;
  const direct = how.direct;
  const namespaces = new Set(spec.linux?.namespaces?.map((n) => n.type));
  umask(0);

  // cgroup: join, then make it the root of a new cgroup namespace
  if (direct) {
    for (const f of direct.cgroupTasks) {
      Deno.writeTextFileSync(f, String(direct.tid), { create: false });
    }
  } else {
    for (const f of config.cgroupProcs) Deno.writeTextFileSync(f, "0", { create: false });
  }
  if (namespaces.has("cgroup")) unshare(CLONE_NEWCGROUP);
  if (!direct) setsid();
  marks.cgroup = now();

  // root filesystem
  mount(null, "/", null, MS_REC | MS_PRIVATE);
  const rootPath = spec.root.path.startsWith("/")
    ? spec.root.path
    : `${config.bundle}/${spec.root.path}`;
  mountRootfs(config, rootPath);
  // the roots of the procfs and sysfs mounted for the container: what its masked and read-only
  // paths must be found in (descriptors closed on every path: a direct start's thread goes on)
  const kernelFs = new Map<string, number>();
  try {
    const root = openat(AT_FDCWD, rootPath, O_PATH | O_DIRECTORY | O_CLOEXEC);
    try {
      marks.rootfs = now();
      for (const m of spec.mounts ?? []) mountOne(root, m, config, kernelFs, direct?.pidns);
      if (spec.mounts?.some((m) => isDev(m.destination) && m.type === "tmpfs")) makeDev(root);
      close(resolveIn(root, proc.cwd, "dir"));
      marks.mounts = now();

      // pivot
      fchdir(root);
      pivotRoot(".", ".");
      umount2(".", MNT_DETACH);
    } finally {
      close(root);
    }
    Deno.chdir("/");
    marks.pivot = now();

    for (const p of spec.linux?.maskedPaths ?? []) maskPath(p, kernelFs);
    for (const p of spec.linux?.readonlyPaths ?? []) readonlyPath(p, kernelFs);
  } finally {
    for (const fd of kernelFs.values()) close(fd);
  }
  if (proc.terminal) {
    if (how.sync === undefined) throw new InitError("a terminal needs berth's init process");
    setupTerminal(how.sync, proc, true);
  }
  if (spec.root.readonly) mount(null, "/", null, MS_BIND | MS_REMOUNT | MS_RDONLY);
  if (namespaces.has("uts") && spec.hostname) sethostname(spec.hostname);
  if (namespaces.has("network")) loopbackUp();
  if (!direct) setRlimits(proc);
  Deno.chdir(proc.cwd);
  const path = lookPath(proc.args[0], proc.env ?? []);
  marks.setup = now();
  return path;
}

/**
 * `exec`: joins the running container (the engine spawned this process in its pid, net, ipc and
 * uts namespaces), then runs `config.process` in it. Never returns.
 */
function join(
  config: ExecConfig,
  fds: number[],
  sync: number,
  marks: Record<string, number>,
): never {
  const proc = config.process;
  if (fds.length !== config.namespaces.length) {
    throw new InitError(`exec: expected ${config.namespaces.length} namespace descriptors`);
  }
  const ns = new Map(config.namespaces.map((n, i) => [n, fds[i]]));
  umask(0);
  // the container's cgroup first (from the host's view of the cgroup filesystems), then its
  // cgroup namespace: /proc/self/cgroup then reads "/" as the container's own does
  for (const f of config.cgroupProcs) {
    try {
      Deno.writeTextFileSync(f, "0", { create: false });
    } catch (e) {
      throw new InitError(`join the container's cgroup ${f}: ${(e as Error).message}`);
    }
  }
  if (ns.has("cgroup")) setns(ns.get("cgroup")!, CLONE_NEWCGROUP);
  marks.cgroup = now();
  if (ns.has("mnt")) {
    // a thread sharing its fs_struct (every Deno thread) may not change mount namespace; the
    // join sets this thread's root and cwd to the container's root
    unshare(CLONE_FS);
    setns(ns.get("mnt")!, CLONE_NEWNS);
  }
  for (const fd of fds) close(fd);
  setsid();
  marks.join = now();

  if (proc.terminal) setupTerminal(sync, proc, false);
  setRlimits(proc);
  enterWorkdir(proc);
  const path = lookPath(proc.args[0], proc.env ?? []);
  marks.setup = now();
  execProcess(proc, path, sync, config.timing ? marks : undefined);
}

/** chdir to `proc.cwd` in the container, or docker's 126 error. */
export function enterWorkdir(proc: SpecProcess): void {
  try {
    chdir(proc.cwd);
  } catch (e) {
    const why = e instanceof SyscallError ? e.message.replace(/^[^:]*: /, "") : String(e);
    throw new InitError(
      `chdir to cwd (${JSON.stringify(proc.cwd)}) set in config.json failed: ${why}`,
      126,
    );
  }
}

/**
 * The command starts with every signal at its default action and none blocked, as under runc:
 * execve resets handled signals but keeps ignored ones, and Deno's runtime ignores SIGPIPE (a
 * `yes | head` in the container would otherwise end with a write error, not SIGPIPE).
 */
function resetSignals(): void {
  for (let sig = 1; sig <= SIGRTMAX; sig++) {
    if (sig === SIGKILL || sig === SIGSTOP) continue;
    if (sigaction(sig) === BigInt(SIG_IGN)) sigaction(sig, SIG_DFL);
  }
  sigprocmask(SIG_SETMASK, 0n);
}

function setRlimits(proc: SpecProcess): void {
  for (const r of proc.rlimits ?? []) {
    const resource = RLIMITS[r.type];
    if (resource === undefined) throw new InitError(`unknown rlimit: ${r.type}`);
    setrlimit(resource, { soft: BigInt(r.soft), hard: BigInt(r.hard) });
  }
}

// Drops privileges, reports `exec` and execs `proc` (the inherited descriptors are closed on exec).
function execProcess(
  proc: SpecProcess,
  path: string,
  sync: number,
  marks: Record<string, number> | undefined,
): never {
  closeRange(3, 0xffffffff, CLOSE_RANGE_CLOEXEC);
  dropPrivileges(proc);
  keepParent(sync);
  umask(proc.user.umask ?? 0o022);
  resetSignals();
  if (marks) marks.exec = now();
  send(sync, { t: "exec", ...(marks ? { marks } : {}) });
  try {
    execve(path, proc.args, proc.env ?? []);
  } catch (e) {
    throw execError(proc.args[0], e);
  }
}

function mountRootfs(config: RunConfig, target: string): void {
  const r = config.rootfs;
  if ("dir" in r) {
    mount(r.dir, target, null, MS_BIND | MS_REC);
  } else {
    // lowerdir paths with ':' or ',' would need escaping; the store's paths have neither
    const data = `lowerdir=${r.lowerdirs.join(":")},upperdir=${r.upperdir},workdir=${r.workdir}`;
    mount("overlay", target, "overlay", 0, data);
  }
}

/**
 * An O_PATH fd of `path` inside the root `root` (symlinks resolved inside it; with `noSymlinks`,
 * none followed at all: ELOOP), creating missing directories, and the last component as `kind`
 * when missing.
 */
function resolveIn(root: number, path: string, kind: "dir" | "file", noSymlinks = false): number {
  const how = (flags: number) => ({
    flags: flags | O_CLOEXEC,
    resolve: RESOLVE_IN_ROOT | (noSymlinks ? RESOLVE_NO_SYMLINKS : RESOLVE_NO_MAGICLINKS),
  });
  const open = (p: string) => openat2(root, p, how(O_PATH));
  try {
    return open(path);
  } catch (e) {
    if (!(e instanceof SyscallError) || e.code !== "ENOENT") throw e;
  }
  const parts = path.split("/").filter(Boolean);
  let parent = openat2(root, "/", how(O_PATH | O_DIRECTORY));
  try {
    for (let i = 0; i < parts.length; i++) {
      const sub = "/" + parts.slice(0, i + 1).join("/");
      let fd: number;
      try {
        fd = open(sub);
      } catch (e) {
        if (!(e instanceof SyscallError) || e.code !== "ENOENT") throw e;
        if (i === parts.length - 1 && kind === "file") {
          close(openat(parent, parts[i], O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0o644));
        } else {
          mkdirat(parent, parts[i], 0o755);
        }
        fd = open(sub);
      }
      close(parent);
      parent = fd;
    }
    const fd = parent;
    parent = -1;
    return fd;
  } finally {
    if (parent >= 0) close(parent);
  }
}

const fdPath = (fd: number) => `/proc/self/fd/${fd}`;

const KERNEL_TYPES = new Set(["proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2"]);
const isDev = (dest: string) => normalizePath(dest) === "/dev";

/**
 * Whether a mount's destination must be reached without following any symlink of the image: the
 * kernel's filesystems and whatever goes on /proc, /sys, /dev or below (runc's rule). An image
 * symlink there could move /proc out from under its masks (`/proc -> dev/pts/../../w`, with
 * `/dev/pts -> /a/b/c`, is another directory once /dev is mounted).
 */
function strictDestination(m: SpecMount): boolean {
  return KERNEL_TYPES.has(m.type ?? "") ||
    /^\/(proc|sys|dev)(\/|$)/.test(normalizePath(m.destination));
}

function mountOne(
  root: number,
  m: SpecMount,
  config: RunConfig,
  kernelFs: Map<string, number>,
  pidns?: number,
): void {
  const { flags, propagation, data } = parseMountOptions(m.options);
  const bind = m.type === "bind" || (flags & MS_BIND) !== 0;
  const strict = strictDestination(m);
  try {
    if (m.type === "cgroup") return mountCgroups(root, m.destination, flags, config);
    let kind: "dir" | "file" = "dir";
    if (bind) {
      const st = statx(AT_FDCWD, m.source ?? "");
      kind = (st.mode & S_IFMT) === S_IFDIR ? "dir" : "file";
    }
    const at = resolveIn(root, m.destination, kind, strict);
    try {
      if (bind) mount(m.source ?? "", fdPath(at), null, MS_BIND | (flags & MS_REC));
      else {
        // a procfs for a PID namespace the calling thread is not in (the direct start)
        const d = m.type === "proc" && pidns !== undefined
          ? [data, `pidns=${fdPath(pidns)}`].filter(Boolean).join(",")
          : data;
        mount(m.source ?? m.type ?? "none", fdPath(at), m.type ?? null, flags, d || null);
      }
    } finally {
      close(at);
    }
    if (!bind && (m.type === "proc" || m.type === "sysfs")) {
      const dest = normalizePath(m.destination);
      const old = kernelFs.get(dest);
      if (old !== undefined) close(old);
      kernelFs.set(dest, resolveIn(root, dest, "dir", true));
    }
    const rest = flags & ~(MS_BIND | MS_REC | MS_REMOUNT);
    if ((bind && rest) || propagation.length) {
      // the new mount, not the directory under it
      const top = resolveIn(root, m.destination, kind, strict);
      try {
        if (bind && rest) {
          mount(null, fdPath(top), null, MS_BIND | MS_REMOUNT | rest);
          if ((rest & MS_RDONLY) && (flags & MS_REC)) {
            mountSetattr(top, "", AT_RECURSIVE | AT_EMPTY_PATH, { set: MOUNT_ATTR_RDONLY });
          }
        }
        for (const p of propagation) mount(null, fdPath(top), null, p);
      } finally {
        close(top);
      }
    }
  } catch (e) {
    if (!(e instanceof SyscallError)) throw e;
    const what = bind ? JSON.stringify(m.source) : m.type;
    const why = strict && e.code === "ELOOP"
      ? "a symlink in the image is on the way (not followed here)"
      : e.message.replace(/^[^:]*: /, "");
    throw new InitError(`mount ${what} to ${JSON.stringify(m.destination)}: ${why}`);
  }
}

function mountCgroups(root: number, dest: string, flags: number, config: RunConfig): void {
  const entries = config.cgroupMounts;
  const at = resolveIn(root, dest, "dir", true);
  try {
    if (entries.length === 1 && entries[0].dir === "") {
      mount("cgroup2", fdPath(at), "cgroup2", flags);
      return;
    }
    mount("tmpfs", fdPath(at), "tmpfs", flags & ~MS_RDONLY, "mode=755");
  } finally {
    close(at);
  }
  const top = resolveIn(root, dest, "dir", true);
  try {
    for (const e of entries) {
      mkdirat(top, e.dir, 0o755);
      const sub = `${fdPath(top)}/${e.dir}`;
      mount(e.fstype, sub, e.fstype, flags, e.data || null);
    }
    if (flags & MS_RDONLY) mount(null, fdPath(top), null, MS_REMOUNT | flags);
  } finally {
    close(top);
  }
}

function makeDev(root: number): void {
  const dev = openat2(root, "/dev", {
    flags: O_PATH | O_DIRECTORY | O_CLOEXEC,
    resolve: RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS,
  });
  try {
    for (const [name, major, minor] of DEVICES) {
      mknodat(dev, name, S_IFCHR | 0o666, makedev(major, minor));
    }
    for (const [target, name] of LINKS) symlinkat(target, dev, name);
    if (exists("/proc/kcore")) symlinkat("/proc/kcore", dev, "core");
  } finally {
    close(dev);
  }
}

function exists(path: string): boolean {
  try {
    statx(AT_FDCWD, path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The entry `path` names in the container's fresh procfs or sysfs (`kernelFs`, by mount point),
 * or undefined when it names none or the kernel has no such entry.
 */
function kernelEntry(path: string, kernelFs: Map<string, number>): Stat | undefined {
  for (const [dir, fd] of kernelFs) {
    if (!path.startsWith(dir + "/")) continue;
    let entry: number;
    try {
      entry = openat2(fd, path.slice(dir.length + 1), {
        flags: O_PATH | O_NOFOLLOW | O_CLOEXEC,
        resolve: RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
      });
    } catch (e) {
      if (e instanceof SyscallError && ["ENOENT", "ENOTDIR", "ELOOP"].includes(e.code)) {
        return undefined;
      }
      throw e;
    }
    try {
      return statx(entry, "", AT_EMPTY_PATH);
    } finally {
      close(entry);
    }
  }
  return undefined;
}

/**
 * What `path` is in the container (after the pivot), undefined when it does not exist. A path
 * the container's fresh procfs or sysfs has must be that very entry: missing or anything else
 * (a mount over /proc, /proc elsewhere) is an error, never a mask silently skipped.
 */
function protectedPath(path: string, kernelFs: Map<string, number>): Stat | undefined {
  const p = normalizePath(path);
  const want = kernelEntry(p, kernelFs);
  let st: Stat;
  try {
    st = statx(AT_FDCWD, p);
  } catch (e) {
    if (!(e instanceof SyscallError && e.code === "ENOENT")) throw e;
    if (want) throw new InitError(`${p} is missing from the container's /proc or /sys`);
    return undefined;
  }
  const same = (a: Stat["dev"], b: Stat["dev"]) => a.major === b.major && a.minor === b.minor;
  if (want && (st.ino !== want.ino || !same(st.dev, want.dev))) {
    throw new InitError(`${p} is not the container's own /proc or /sys entry`);
  }
  return st;
}

function maskPath(path: string, kernelFs: Map<string, number>): void {
  const st = protectedPath(path, kernelFs);
  if (!st) return;
  if ((st.mode & S_IFMT) === S_IFDIR) mount("tmpfs", path, "tmpfs", MS_RDONLY);
  else mount("/dev/null", path, null, MS_BIND);
}

function readonlyPath(path: string, kernelFs: Map<string, number>): void {
  if (!protectedPath(path, kernelFs)) return;
  mount(path, path, null, MS_BIND | MS_REC);
  const flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
  mount(path, path, null, flags);
}

function setupTerminal(sync: number, proc: SpecProcess, devConsole: boolean): void {
  const master = openat(AT_FDCWD, "/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  ioctlSetPtyLock(master, false);
  const n = ioctlGetPtyNumber(master);
  const slave = openat(AT_FDCWD, `/dev/pts/${n}`, O_RDWR | O_NOCTTY | O_CLOEXEC);
  const size = proc.consoleSize;
  if (size?.height && size.width) {
    ioctlSetWinsize(master, { rows: size.height, columns: size.width });
  }
  fchown(slave, proc.user.uid, 0xffffffff);
  if (devConsole) {
    close(openat(AT_FDCWD, "/dev/console", O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0o600));
    mount(`/dev/pts/${n}`, "/dev/console", null, MS_BIND);
  }
  send(sync, { t: "pty" }, [master]);
  close(master);
  for (const fd of [0, 1, 2]) dup3(slave, fd);
  if (slave > 2) close(slave);
  ioctlSetCtty(0);
}

function loopbackUp(): void {
  const s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC);
  try {
    const ifr = new Uint8Array(40);
    ifr.set(encoder.encode("lo"));
    ioctl(s, SIOCGIFFLAGS, ifr);
    const v = new DataView(ifr.buffer);
    v.setInt16(16, v.getInt16(16, true) | IFF_UP, true);
    ioctl(s, SIOCSIFFLAGS, ifr);
  } finally {
    close(s);
  }
}

function isExecutable(path: string): boolean {
  try {
    const st = statx(AT_FDCWD, path);
    return (st.mode & S_IFMT) === S_IFREG && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Go's exec.LookPath, as runc uses it: the container's PATH, regular files with an x bit. */
export function lookPath(name: string, env: readonly string[]): string {
  if (name === undefined || name === "") throw new InitError(`exec: "": empty command`, 127);
  if (name.includes("/")) {
    let st;
    try {
      st = statx(AT_FDCWD, name);
    } catch (e) {
      if (e instanceof SyscallError && e.code === "ENOENT") {
        throw new InitError(`exec: "${name}": stat ${name}: no such file or directory`, 127);
      }
      throw e;
    }
    if ((st.mode & S_IFMT) === S_IFDIR || (st.mode & 0o111) === 0) {
      throw new InitError(`exec: "${name}": permission denied`, 126);
    }
    return name;
  }
  const path = env.findLast((e) => e.startsWith("PATH="))?.slice(5) ?? "";
  for (const dir of path.split(":")) {
    const candidate = `${dir || "."}/${name}`;
    if (isExecutable(candidate)) return candidate;
  }
  throw new InitError(`exec: "${name}": executable file not found in $PATH`, 127);
}

/** The error docker reports when `execve` of `name` fails with `e`. */
export function execError(name: string, e: unknown): Error {
  if (!(e instanceof SyscallError)) return e as Error;
  const text: Record<string, [string, number]> = {
    ENOENT: ["no such file or directory", 127],
    EACCES: ["permission denied", 126],
    ENOEXEC: ["exec format error", 126],
    EISDIR: ["is a directory", 126],
  };
  const [what, code] = text[e.code] ?? [e.message.replace(/^[^:]*: /, ""), 126];
  return new InitError(`exec: "${name}": ${what}`, code);
}

const ID_MAX = 2 ** 31 - 1;

/**
 * Drops the calling thread to `proc`'s user, groups, capabilities and no_new_privs. `keep`
 * (capability bits) stays permitted, not effective, for the thread itself: what a direct start's
 * thread needs to come back after the spawn (the child's capabilities after its execve come from
 * the bounding and inheritable sets, never from its permitted set).
 */
export function dropPrivileges(proc: SpecProcess, keep = 0n): void {
  const caps = proc.capabilities ?? {};
  const user = proc.user;
  // -1 would leave an id as it is (root)
  for (const id of [user.uid, user.gid, ...(user.additionalGids ?? [])]) {
    if (!Number.isInteger(id) || id < 0 || id > ID_MAX) {
      throw new InitError(`invalid user or group id: ${id}`);
    }
  }
  const bounding = capabilityMask(caps.bounding);
  // every capability the kernel knows (EINVAL past the last): no file of the container's is read
  // for it (its /proc/sys/kernel/cap_last_cap could be anything)
  for (let c = 0; c < 64; c++) {
    if (bounding & (1n << BigInt(c))) continue;
    try {
      prctl(PR_CAPBSET_DROP, c);
    } catch (e) {
      if (e instanceof SyscallError && e.code === "EINVAL") break;
      throw e;
    }
  }
  prctl(PR_SET_KEEPCAPS, 1);
  setgroups(user.additionalGids ?? []);
  setresgid(user.gid, user.gid, user.gid);
  setresuid(user.uid, user.uid, user.uid);
  prctl(PR_SET_KEEPCAPS, 0);
  capset({
    effective: capabilityMask(caps.effective),
    permitted: capabilityMask(caps.permitted) | keep,
    inheritable: capabilityMask(caps.inheritable),
  });
  if (proc.noNewPrivileges) prctl(PR_SET_NO_NEW_PRIVS, 1);
}
