/**
 * Thin, synchronous libc wrappers: one function per system call, errno read at once, failures
 * thrown as {@linkcode SyscallError}. No policy lives here.
 *
 * @module
 */
export * from "./bpf.ts";
export * from "./constants.ts";
export * from "./credentials.ts";
export * from "./fs.ts";
export * from "./mount.ts";
export * from "./namespaces.ts";
export * from "./process.ts";
export * from "./socket.ts";
export * from "./spawn.ts";
export * from "./syscall_error.ts";
export * from "./tty.ts";
