/**
 * The one way the wrappers enter the kernel: clear errno, `syscall(2)`, read errno at once, throw
 * `SyscallError` on -1.
 *
 * @module
 */
import { type Arg, errno, syscall } from "./_libc.ts";
import { NR, type SyscallName } from "./_syscall_numbers.ts";
import { SyscallError } from "./syscall_error.ts";

/**
 * Calls system call `name` with `args`; returns its result, or throws
 * `SyscallError(name, errno, arg)` when it fails.
 */
export function call(name: SyscallName, arg: string | number | undefined, ...args: Arg[]): number {
  const r = syscall(NR[name], ...args);
  if (r === -1) throw new SyscallError(name, errno(), arg);
  return r;
}
