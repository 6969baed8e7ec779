/**
 * System call numbers of x86_64 and aarch64 (asm-generic). The wrappers call the kernel through
 * libc's `syscall(2)`: one FFI symbol instead of one per call keeps `Deno.dlopen` cheap on the
 * container start path (each bound symbol costs 0.1–0.5 ms).
 *
 * @module
 */

const NAMES = [
  "read",
  "write",
  "close",
  "ioctl",
  "getpid",
  "socket",
  "sendmsg",
  "recvmsg",
  "socketpair",
  "execve",
  "kill",
  "fcntl",
  "flock",
  "chdir",
  "fchdir",
  "fchmod",
  "fchown",
  "umask",
  "setsid",
  "setgroups",
  "setresuid",
  "setresgid",
  "capget",
  "capset",
  "pivot_root",
  "prctl",
  "chroot",
  "mount",
  "umount2",
  "sethostname",
  "setdomainname",
  "lsetxattr",
  "fsetxattr",
  "lgetxattr",
  "fgetxattr",
  "openat",
  "mkdirat",
  "mknodat",
  "fchownat",
  "unlinkat",
  "linkat",
  "symlinkat",
  "readlinkat",
  "fchmodat",
  "ppoll",
  "unshare",
  "utimensat",
  "dup3",
  "prlimit64",
  "setns",
  "renameat2",
  "statx",
  "close_range",
  "openat2",
  "mount_setattr",
  "fchmodat2",
  "bpf",
  "rt_sigaction",
  "rt_sigprocmask",
  "setsockopt",
  "getppid",
  "pidfd_open",
  "pidfd_send_signal",
  "gettid",
  "waitid",
  "pipe2",
  "tgkill",
] as const;

/** A system call this layer knows the number of. */
export type SyscallName = (typeof NAMES)[number];

// deno-fmt-ignore
const X86_64 = [
  0, 1, 3, 16, 39, 41, 46, 47, 53, 59, 62, 72, 73, 80, 81, 91, 93, 95, 112, 116, 117, 119, 125,
  126, 155, 157, 161, 165, 166, 170, 171, 189, 190, 192, 193, 257, 258, 259, 260, 263, 265, 266,
  267, 268, 271, 272, 280, 292, 302, 308, 316, 332, 436, 437, 442, 452, 321, 13, 14, 54, 110, 434,
  424, 186, 247, 293, 234,
];
// deno-fmt-ignore
const AARCH64 = [
  63, 64, 57, 29, 172, 198, 211, 212, 199, 221, 129, 25, 32, 49, 50, 52, 55, 166, 157, 159, 147,
  149, 90, 91, 41, 167, 51, 40, 39, 161, 162, 6, 7, 9, 10, 56, 34, 33, 54, 35, 37, 36, 78, 53, 73,
  97, 88, 24, 261, 268, 276, 291, 436, 437, 442, 452, 280, 134, 135, 208, 173, 434, 424, 178,
  95, 59, 131,
];

/** The syscall numbers of the running architecture, by name. */
export const NR: Readonly<Record<SyscallName, number>> = Object.fromEntries(
  NAMES.map((n, i) => [n, (Deno.build.arch === "aarch64" ? AARCH64 : X86_64)[i]]),
) as Record<SyscallName, number>;
