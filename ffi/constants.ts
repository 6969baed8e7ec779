/**
 * Linux constants for the `ffi/` wrappers, for the x86_64 and aarch64 ABIs (they agree on every
 * constant here except `O_DIRECTORY` and `O_NOFOLLOW`, chosen by `Deno.build.arch`).
 *
 * @module
 */

// clone/unshare/setns flags
/** New mount namespace. */
export const CLONE_NEWNS = 0x00020000;
/** Unshare the filesystem attributes (root, cwd, umask). */
export const CLONE_FS = 0x00000200;
/** Unshare the file descriptor table. */
export const CLONE_FILES = 0x00000400;
/** New cgroup namespace. */
export const CLONE_NEWCGROUP = 0x02000000;
/** New UTS namespace. */
export const CLONE_NEWUTS = 0x04000000;
/** New IPC namespace. */
export const CLONE_NEWIPC = 0x08000000;
/** New user namespace. */
export const CLONE_NEWUSER = 0x10000000;
/** New PID namespace (for the children). */
export const CLONE_NEWPID = 0x20000000;
/** `pidfd_open` flag: a pidfd for a thread, not only for a thread group leader (Linux 6.9). */
export const PIDFD_THREAD = 0o200;
/** `ioctl` on a pidfd: its task's PID namespace for children (Linux 6.11). */
export const PIDFD_GET_PID_FOR_CHILDREN_NAMESPACE = 0xff06;
/** New network namespace. */
export const CLONE_NEWNET = 0x40000000;

// mount(2) flags
/** Mount read-only. */
export const MS_RDONLY = 0x1;
/** Ignore set-user/group-ID bits. */
export const MS_NOSUID = 0x2;
/** No device files. */
export const MS_NODEV = 0x4;
/** No execution. */
export const MS_NOEXEC = 0x8;
/** Synchronous writes. */
export const MS_SYNCHRONOUS = 0x10;
/** Change the flags of an existing mount. */
export const MS_REMOUNT = 0x20;
/** Allow mandatory locks. */
export const MS_MANDLOCK = 0x40;
/** Synchronous directory changes. */
export const MS_DIRSYNC = 0x80;
/** Do not follow symlinks in the target (5.x+). */
export const MS_NOSYMFOLLOW = 0x100;
/** Do not update access times. */
export const MS_NOATIME = 0x400;
/** Do not update directory access times. */
export const MS_NODIRATIME = 0x800;
/** Bind mount. */
export const MS_BIND = 0x1000;
/** Move a mount. */
export const MS_MOVE = 0x2000;
/** Recursive (with MS_BIND or a propagation flag). */
export const MS_REC = 0x4000;
/** Suppress some kernel messages. */
export const MS_SILENT = 0x8000;
/** Unbindable propagation. */
export const MS_UNBINDABLE = 0x20000;
/** Private propagation. */
export const MS_PRIVATE = 0x40000;
/** Slave propagation. */
export const MS_SLAVE = 0x80000;
/** Shared propagation. */
export const MS_SHARED = 0x100000;
/** Update atime relative to mtime/ctime. */
export const MS_RELATIME = 0x200000;
/** Always update atime. */
export const MS_STRICTATIME = 0x1000000;
/** Update times lazily. */
export const MS_LAZYTIME = 0x2000000;

// umount2(2) flags
/** Force unmount. */
export const MNT_FORCE = 0x1;
/** Lazy unmount. */
export const MNT_DETACH = 0x2;
/** Mark for expiry. */
export const MNT_EXPIRE = 0x4;
/** Do not follow a symlink in the target. */
export const UMOUNT_NOFOLLOW = 0x8;

// mount_setattr(2)
/** Read-only mount attribute. */
export const MOUNT_ATTR_RDONLY = 0x1;
/** nosuid mount attribute. */
export const MOUNT_ATTR_NOSUID = 0x2;
/** nodev mount attribute. */
export const MOUNT_ATTR_NODEV = 0x4;
/** noexec mount attribute. */
export const MOUNT_ATTR_NOEXEC = 0x8;

// open flags
/** Read only. */
export const O_RDONLY = 0o0;
/** Write only. */
export const O_WRONLY = 0o1;
/** Read and write. */
export const O_RDWR = 0o2;
/** Create the file. */
export const O_CREAT = 0o100;
/** Fail if it exists (with O_CREAT). */
export const O_EXCL = 0o200;
/** Do not make a terminal the controlling terminal. */
export const O_NOCTTY = 0o400;
/** Truncate. */
export const O_TRUNC = 0o1000;
/** Append. */
export const O_APPEND = 0o2000;
/** Non-blocking I/O. */
export const O_NONBLOCK = 0o4000;
const arm64 = Deno.build.arch === "aarch64";
/** Must be a directory (aarch64 uses the 32-bit ARM value). */
export const O_DIRECTORY: number = arm64 ? 0o40000 : 0o200000;
/** Do not follow a final symlink (aarch64 uses the 32-bit ARM value). */
export const O_NOFOLLOW: number = arm64 ? 0o100000 : 0o400000;
/** Close on exec. */
export const O_CLOEXEC = 0o2000000;
/** Path-only descriptor. */
export const O_PATH = 0o10000000;

// *at flags
/** The directory fd meaning the current working directory. */
export const AT_FDCWD: number = -100;
/** Do not follow a final symlink. */
export const AT_SYMLINK_NOFOLLOW = 0x100;
/** unlinkat: remove a directory. */
export const AT_REMOVEDIR = 0x200;
/** linkat: follow a final symlink. */
export const AT_SYMLINK_FOLLOW = 0x400;
/** Operate on the fd itself when the path is empty. */
export const AT_EMPTY_PATH = 0x1000;
/** Apply recursively (mount_setattr, open_tree). */
export const AT_RECURSIVE = 0x8000;

// openat2(2) resolve flags
/** No crossing of mount points. */
export const RESOLVE_NO_XDEV = 0x01;
/** No /proc magic links. */
export const RESOLVE_NO_MAGICLINKS = 0x02;
/** No symlinks at all. */
export const RESOLVE_NO_SYMLINKS = 0x04;
/** Fail on any path escaping the dirfd. */
export const RESOLVE_BENEATH = 0x08;
/** Treat the dirfd as the root: "/" and ".." stay inside it. */
export const RESOLVE_IN_ROOT = 0x10;
/** Only resolve from the dcache. */
export const RESOLVE_CACHED = 0x20;

// statx
/** statx: all basic stats. */
export const STATX_BASIC_STATS = 0x7ff;

// file types (st_mode)
/** File type mask. */
export const S_IFMT = 0o170000;
/** Socket. */
export const S_IFSOCK = 0o140000;
/** Symbolic link. */
export const S_IFLNK = 0o120000;
/** Regular file. */
export const S_IFREG = 0o100000;
/** Block device. */
export const S_IFBLK = 0o060000;
/** Directory. */
export const S_IFDIR = 0o040000;
/** Character device. */
export const S_IFCHR = 0o020000;
/** FIFO. */
export const S_IFIFO = 0o010000;

// fcntl
/** Duplicate a descriptor. */
export const F_DUPFD = 0;
/** Get fd flags. */
export const F_GETFD = 1;
/** Set fd flags. */
export const F_SETFD = 2;
/** Get file status flags. */
export const F_GETFL = 3;
/** Set file status flags. */
export const F_SETFL = 4;
/** Duplicate with close-on-exec. */
export const F_DUPFD_CLOEXEC = 1030;
/** The close-on-exec fd flag. */
export const FD_CLOEXEC = 1;

// close_range(2)
/** close_range: unshare the fd table first. */
export const CLOSE_RANGE_UNSHARE = 0x2;
/** close_range: mark close-on-exec instead of closing. */
export const CLOSE_RANGE_CLOEXEC = 0x4;

// flock(2)
/** Shared lock. */
export const LOCK_SH = 1;
/** Exclusive lock. */
export const LOCK_EX = 2;
/** Do not block. */
export const LOCK_NB = 4;
/** Unlock. */
export const LOCK_UN = 8;

// prctl(2)
/** Get the parent-death signal. */
export const PR_GET_PDEATHSIG = 2;
/** Set the parent-death signal. */
export const PR_SET_PDEATHSIG = 1;
/** Get the dumpable flag. */
export const PR_GET_DUMPABLE = 3;
/** Set the dumpable flag (0: /proc/PID is root's, no ptrace without CAP_SYS_PTRACE). */
export const PR_SET_DUMPABLE = 4;
/** Keep capabilities across setuid. */
export const PR_SET_KEEPCAPS = 8;
/** Read a capability of the bounding set. */
export const PR_CAPBSET_READ = 23;
/** Drop a capability from the bounding set. */
export const PR_CAPBSET_DROP = 24;
/** Set no_new_privs. */
export const PR_SET_NO_NEW_PRIVS = 38;
/** Get no_new_privs. */
export const PR_GET_NO_NEW_PRIVS = 39;
/** Ambient capability operations. */
export const PR_CAP_AMBIENT = 47;
/** PR_CAP_AMBIENT: clear all. */
export const PR_CAP_AMBIENT_CLEAR_ALL = 4;

// capabilities
/** capget/capset header version 3 (64-bit sets). */
export const LINUX_CAPABILITY_VERSION_3 = 0x20080522;

// rlimits
/** CPU time. */
export const RLIMIT_CPU = 0;
/** File size. */
export const RLIMIT_FSIZE = 1;
/** Data segment. */
export const RLIMIT_DATA = 2;
/** Stack. */
export const RLIMIT_STACK = 3;
/** Core files. */
export const RLIMIT_CORE = 4;
/** Resident set. */
export const RLIMIT_RSS = 5;
/** Processes. */
export const RLIMIT_NPROC = 6;
/** Open files. */
export const RLIMIT_NOFILE = 7;
/** Locked memory. */
export const RLIMIT_MEMLOCK = 8;
/** Address space. */
export const RLIMIT_AS = 9;
/** File locks. */
export const RLIMIT_LOCKS = 10;
/** Pending signals. */
export const RLIMIT_SIGPENDING = 11;
/** POSIX message queues. */
export const RLIMIT_MSGQUEUE = 12;
/** Nice ceiling. */
export const RLIMIT_NICE = 13;
/** Realtime priority. */
export const RLIMIT_RTPRIO = 14;
/** Realtime CPU time. */
export const RLIMIT_RTTIME = 15;
/** No limit. */
export const RLIM_INFINITY = 0xffffffffffffffffn;

// ioctl requests (generic values, same on x86_64 and aarch64)
/** Make the terminal the controlling terminal. */
export const TIOCSCTTY = 0x540e;
/** Get the window size. */
export const TIOCGWINSZ = 0x5413;
/** Set the window size. */
export const TIOCSWINSZ = 0x5414;
/** Get the pty number. */
export const TIOCGPTN = 0x80045430;
/** Lock/unlock the pty. */
export const TIOCSPTLCK = 0x40045431;
/** Get interface flags. */
export const SIOCGIFFLAGS = 0x8913;
/** Set interface flags. */
export const SIOCSIFFLAGS = 0x8914;
/** Interface is up. */
export const IFF_UP = 0x1;

// sockets
/** Unix domain sockets. */
export const AF_UNIX = 1;
/** IPv4. */
export const AF_INET = 2;
/** Stream socket. */
export const SOCK_STREAM = 1;
/** Datagram socket. */
export const SOCK_DGRAM = 2;
/** Sequenced-packet socket. */
export const SOCK_SEQPACKET = 5;
/** Close-on-exec socket flag. */
export const SOCK_CLOEXEC = 0o2000000;
/** Socket-level control messages. */
export const SOL_SOCKET = 1;
/** Pass file descriptors. */
export const SCM_RIGHTS = 1;
/** recvmsg: received fds are close-on-exec. */
export const MSG_CMSG_CLOEXEC = 0x40000000;
/** Do not raise SIGPIPE. */
export const MSG_NOSIGNAL = 0x4000;
/** recvmsg: look at the message, leave it queued. */
export const MSG_PEEK = 0x2;
/** recvmsg: return the real length of a datagram longer than the buffer. */
export const MSG_TRUNC = 0x20;
/** setsockopt: the send buffer size, above the system's maximum (CAP_NET_ADMIN). */
export const SO_SNDBUFFORCE = 32;

// waitid(2), posix_spawn(3)
/** `waitid(2)`'s `idtype`: a pid. */
export const P_PID = 1;
/** `waitid(2)`'s `idtype`: a pidfd (Linux 5.4). */
export const P_PIDFD = 3;
/** `waitid(2)`: don't block. */
export const WNOHANG = 1;
/** `waitid(2)`: wait for children that ended. */
export const WEXITED = 4;
/** siginfo `si_code` of a child: it exited. */
export const CLD_EXITED = 1;
/** siginfo `si_code` of a child: a signal killed it. */
export const CLD_KILLED = 2;
/** siginfo `si_code` of a child: a signal killed it and it dumped core. */
export const CLD_DUMPED = 3;
/** `posix_spawn(3)` flag: set the child's signal mask. */
export const POSIX_SPAWN_SETSIGMASK = 0x08;
/** `posix_spawn(3)` flag: set the given signals to their default action in the child. */
export const POSIX_SPAWN_SETSIGDEF = 0x04;
/** `posix_spawn(3)` flag (glibc 2.26): the child starts a new session. */
export const POSIX_SPAWN_SETSID = 0x80;

// poll(2)
/** Data to read. */
export const POLLIN = 0x1;
/** Room to write. */
export const POLLOUT = 0x4;
/** Error. */
export const POLLERR = 0x8;
/** Hang up. */
export const POLLHUP = 0x10;

// xattr flags
/** Fail if the attribute exists. */
export const XATTR_CREATE = 0x1;
/** Fail if the attribute does not exist. */
export const XATTR_REPLACE = 0x2;

// utimensat
/** Set the time to now. */
export const UTIME_NOW = (1 << 30) - 1;
/** Leave the time unchanged. */
export const UTIME_OMIT = (1 << 30) - 2;

// signals (x86_64 and aarch64 share the generic numbering)
/** Signal numbers by name. */
export const SIGNALS: Readonly<Record<string, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPWR: 30,
  SIGSYS: 31,
};
/** SIGKILL. */
export const SIGKILL = 9;
/** SIGSTOP. */
export const SIGSTOP = 19;
/** The highest signal number (SIGRTMAX). */
export const SIGRTMAX = 64;
/** A signal disposition: the default action. */
export const SIG_DFL = 0;
/** A signal disposition: ignored. */
export const SIG_IGN = 1;
/** `rt_sigprocmask`: replace the mask. */
export const SIG_SETMASK = 2;

// bpf(2)
/** Load a program. */
export const BPF_PROG_LOAD = 5;
/** Attach a program. */
export const BPF_PROG_ATTACH = 8;
/** Program type of a cgroup device filter. */
export const BPF_PROG_TYPE_CGROUP_DEVICE = 15;
/** Attach type of a cgroup device filter. */
export const BPF_CGROUP_DEVICE = 6;
/** Allow several programs on one cgroup. */
export const BPF_F_ALLOW_MULTI = 2;
