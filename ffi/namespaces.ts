/**
 * Namespace calls. They act on the calling thread only: call them from the JS thread, synchronously.
 *
 * @module
 */
import { call } from "./_call.ts";

/** `unshare(2)`: move the calling thread into new namespaces (`CLONE_NEW*` flags). */
export function unshare(flags: number): void {
  call("unshare", `0x${flags.toString(16)}`, flags);
}

/** `setns(2)`: join the namespace `fd` refers to (`nstype` 0 = any). */
export function setns(fd: number, nstype = 0): void {
  call("setns", fd, fd, nstype);
}

/**
 * `ioctl(2)` on a pidfd for one of its namespaces (`PIDFD_GET_*_NAMESPACE`, Linux 6.11): a new
 * namespace descriptor. Unlike /proc/PID/ns/pid_for_children, it also works for a PID namespace
 * that has no process yet.
 */
export function pidfdNamespace(pidfd: number, request: number): number {
  return call("ioctl", pidfd, pidfd, request, 0);
}
