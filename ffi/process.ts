/**
 * Process calls: exec, signals, prctl, rlimits, host names, session, umask.
 *
 * @module
 */
import { call } from "./_call.ts";
import { addr, cstr, cstrArray } from "./_libc.ts";

/**
 * `execve(2)`: replace the process image. Returns only by throwing (the error names `path`).
 * `argv` and `envp` are marshalled as NULL-terminated arrays of NUL-terminated strings.
 */
export function execve(path: string, argv: readonly string[], envp: readonly string[]): never {
  const p = addr(cstr(path));
  const a = addr(cstrArray(argv).array);
  const e = addr(cstrArray(envp).array);
  call("execve", path, p, a, e);
  throw new Error("unreachable: execve returned"); // call() throws on -1
}

/** `kill(2)`: send signal `sig` to `pid`. */
export function kill(pid: number, sig: number): void {
  call("kill", pid, pid, sig);
}

/** `tgkill(2)`: send signal `sig` to thread `tid` of process `tgid`. */
export function tgkill(tgid: number, tid: number, sig: number): void {
  call("tgkill", tid, tgid, tid, sig);
}

/** `getpid(2)`. */
export function getpid(): number {
  return call("getpid", undefined);
}

/** `gettid(2)`: the calling thread's id. */
export function gettid(): number {
  return call("gettid", undefined);
}

/** `getppid(2)`: the parent's pid in this process's pid namespace (0 when it is outside). */
export function getppid(): number {
  return call("getppid", undefined);
}

/** `pidfd_open(2)`: a descriptor that refers to process `pid` (not to whatever reuses its pid). */
export function pidfdOpen(pid: number, flags = 0): number {
  return call("pidfd_open", pid, pid, flags);
}

/** `pidfd_send_signal(2)`: send `sig` to the process `pidfd` refers to. */
export function pidfdSendSignal(pidfd: number, sig: number): void {
  call("pidfd_send_signal", pidfd, pidfd, sig, 0, 0);
}

/** How a child ended, from `waitid(2)`'s siginfo. */
export interface ChildExit {
  /** The child's pid. */
  pid: number;
  /** `CLD_EXITED` (1), `CLD_KILLED` (2) or `CLD_DUMPED` (3). */
  code: number;
  /** The exit status (`CLD_EXITED`) or the signal's number. */
  status: number;
}

/**
 * `waitid(2)`: waits for (with `WNOHANG`: checks on) the child `id` names by `idtype` (`P_PID` 1,
 * `P_PIDFD` 3) for the events in `options` (`WEXITED` 4, ...). `undefined` when `WNOHANG` found
 * no change.
 */
export function waitid(idtype: number, id: number, options: number): ChildExit | undefined {
  const info = new Int32Array(32); // siginfo_t: 128 bytes
  call("waitid", id, idtype, id, addr(info), options, 0);
  // si_signo, si_errno, si_code, (pad), si_pid, si_uid, si_status
  return info[4] === 0 ? undefined : { pid: info[4], code: info[2], status: info[6] };
}

/** `setsid(2)`: start a new session; returns its id. */
export function setsid(): number {
  return call("setsid", undefined);
}

/** `prctl(2)`; returns the call's non-negative result. Acts on the calling thread. */
export function prctl(option: number, arg2 = 0, arg3 = 0, arg4 = 0, arg5 = 0): number {
  return call("prctl", option, option, arg2, arg3, arg4, arg5);
}

/** A resource limit; `RLIM_INFINITY` is `0xffff_ffff_ffff_ffffn`. */
export interface Rlimit {
  /** Soft limit. */
  soft: bigint;
  /** Hard limit. */
  hard: bigint;
}

/**
 * `prlimit(2)`: set (when `limit` is given) and return the previous limit of `resource` for `pid`
 * (0 = the calling process).
 */
export function prlimit(pid: number, resource: number, limit?: Rlimit): Rlimit {
  const next = limit === undefined ? null : new BigUint64Array([limit.soft, limit.hard]);
  const old = new BigUint64Array(2);
  call("prlimit64", resource, pid, resource, addr(next), addr(old));
  return { soft: old[0], hard: old[1] };
}

/** `setrlimit(2)` for the calling process (through prlimit). */
export function setrlimit(resource: number, limit: Rlimit): void {
  prlimit(0, resource, limit);
}

/** `getrlimit(2)` for the calling process (through prlimit). */
export function getrlimit(resource: number): Rlimit {
  return prlimit(0, resource);
}

/** `sethostname(2)` in the calling thread's UTS namespace. */
export function sethostname(name: string): void {
  const b = cstr(name);
  call("sethostname", name, addr(b), b.length - 1);
}

/** `setdomainname(2)` in the calling thread's UTS namespace. */
export function setdomainname(name: string): void {
  const b = cstr(name);
  call("setdomainname", name, addr(b), b.length - 1);
}

/** `umask(2)`: set the file mode creation mask of the calling thread; returns the previous one. */
export function umask(mask: number): number {
  return call("umask", undefined, mask);
}

/**
 * `rt_sigaction(2)` for dispositions only: returns the handler of signal `sig` (0 = `SIG_DFL`,
 * 1 = `SIG_IGN`, else a handler's address) and, when `disposition` is given, sets it to that
 * (`SIG_DFL` or `SIG_IGN`, no flags, empty mask). Acts on the whole process.
 */
export function sigaction(sig: number, disposition?: 0 | 1): bigint {
  // struct sigaction of the kernel: handler, flags, (restorer,) mask: all zero is SIG_DFL
  const next = disposition === undefined
    ? null
    : new BigUint64Array([BigInt(disposition), 0n, 0n, 0n]);
  const old = new BigUint64Array(4);
  call("rt_sigaction", sig, sig, addr(next), addr(old), 8);
  return old[0];
}

/**
 * `rt_sigprocmask(2)`: changes the calling thread's blocked signals (`how`: `SIG_BLOCK` 0,
 * `SIG_UNBLOCK` 1, `SIG_SETMASK` 2; bit n-1 of `set` = signal n); returns the previous mask.
 */
export function sigprocmask(how: number, set: bigint): bigint {
  const next = new BigUint64Array([set]);
  const old = new BigUint64Array(1);
  call("rt_sigprocmask", how, how, addr(next), addr(old), 8);
  return old[0];
}
