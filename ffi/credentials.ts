/**
 * Credential calls: capabilities, groups, uid/gid. These are the raw system calls, which act on
 * the calling thread only (glibc's wrappers would also signal every other thread to follow): what
 * a container init that is about to `execve` from this thread needs.
 *
 * @module
 */
import { call } from "./_call.ts";
import { addr } from "./_libc.ts";
import { LINUX_CAPABILITY_VERSION_3 } from "./constants.ts";

/** The three capability sets of a thread, one bit per capability number. */
export interface CapabilitySets {
  /** Effective set. */
  effective: bigint;
  /** Permitted set. */
  permitted: bigint;
  /** Inheritable set. */
  inheritable: bigint;
}

const header = (pid: number) => new Uint32Array([LINUX_CAPABILITY_VERSION_3, pid]);

/** `capget(2)`: the capability sets of thread `pid` (0 = the calling thread). */
export function capget(pid = 0): CapabilitySets {
  const data = new Uint32Array(6);
  call("capget", pid, addr(header(pid)), addr(data));
  const join = (lo: number, hi: number) => BigInt(lo) | (BigInt(hi) << 32n);
  return {
    effective: join(data[0], data[3]),
    permitted: join(data[1], data[4]),
    inheritable: join(data[2], data[5]),
  };
}

/** `capset(2)`: set the calling thread's capability sets. */
export function capset(sets: CapabilitySets): void {
  const lo = (v: bigint) => Number(v & 0xffffffffn);
  const hi = (v: bigint) => Number((v >> 32n) & 0xffffffffn);
  const { effective: e, permitted: p, inheritable: i } = sets;
  const data = new Uint32Array([lo(e), lo(p), lo(i), hi(e), hi(p), hi(i)]);
  call("capset", undefined, addr(header(0)), addr(data));
}

/** `setgroups(2)`: set the calling thread's supplementary groups. */
export function setgroups(gids: readonly number[]): void {
  call("setgroups", gids.join(","), gids.length, addr(new Uint32Array(gids)));
}

/** `setresgid(2)`: set the calling thread's real, effective and saved group id. */
export function setresgid(rgid: number, egid: number, sgid: number): void {
  call("setresgid", egid, rgid, egid, sgid);
}

/** `setresuid(2)`: set the calling thread's real, effective and saved user id. */
export function setresuid(ruid: number, euid: number, suid: number): void {
  call("setresuid", euid, ruid, euid, suid);
}
