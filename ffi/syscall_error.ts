/**
 * The error every `ffi/` wrapper throws when a call fails: the call, the errno (number and name) and
 * the argument that names the thing, e.g. `mount("/x"): EINVAL (Invalid argument)`.
 *
 * @module
 */
import { strerror } from "./_libc.ts";

// asm-generic errno numbering, shared by x86_64 and aarch64. Index = errno.
const NAMES = (
  "_ EPERM ENOENT ESRCH EINTR EIO ENXIO E2BIG ENOEXEC EBADF ECHILD EAGAIN ENOMEM EACCES EFAULT " +
  "ENOTBLK EBUSY EEXIST EXDEV ENODEV ENOTDIR EISDIR EINVAL ENFILE EMFILE ENOTTY ETXTBSY EFBIG " +
  "ENOSPC ESPIPE EROFS EMLINK EPIPE EDOM ERANGE EDEADLK ENAMETOOLONG ENOLCK ENOSYS ENOTEMPTY " +
  "ELOOP E41 ENOMSG EIDRM ECHRNG EL2NSYNC EL3HLT EL3RST ELNRNG EUNATCH ENOCSI EL2HLT EBADE EBADR " +
  "EXFULL ENOANO EBADRQC EBADSLT E58 EBFONT ENOSTR ENODATA ETIME ENOSR ENONET ENOPKG EREMOTE " +
  "ENOLINK EADV ESRMNT ECOMM EPROTO EMULTIHOP EDOTDOT EBADMSG EOVERFLOW ENOTUNIQ EBADFD EREMCHG " +
  "ELIBACC ELIBBAD ELIBSCN ELIBMAX ELIBEXEC EILSEQ ERESTART ESTRPIPE EUSERS ENOTSOCK EDESTADDRREQ " +
  "EMSGSIZE EPROTOTYPE ENOPROTOOPT EPROTONOSUPPORT ESOCKTNOSUPPORT EOPNOTSUPP EPFNOSUPPORT " +
  "EAFNOSUPPORT EADDRINUSE EADDRNOTAVAIL ENETDOWN ENETUNREACH ENETRESET ECONNABORTED ECONNRESET " +
  "ENOBUFS EISCONN ENOTCONN ESHUTDOWN ETOOMANYREFS ETIMEDOUT ECONNREFUSED EHOSTDOWN EHOSTUNREACH " +
  "EALREADY EINPROGRESS ESTALE EUCLEAN ENOTNAM ENAVAIL EISNAM EREMOTEIO EDQUOT ENOMEDIUM " +
  "EMEDIUMTYPE ECANCELED ENOKEY EKEYEXPIRED EKEYREVOKED EKEYREJECTED EOWNERDEAD ENOTRECOVERABLE " +
  "ERFKILL EHWPOISON"
).split(" ");

/** The symbolic name of an errno value (`22` → `"EINVAL"`), or `E<n>` for an unknown one. */
export function errnoName(errno: number): string {
  return (errno > 0 && NAMES[errno]) || `E${errno}`;
}

/** A failed system call. `code` is the errno name, `errno` its number. */
export class SyscallError extends Error {
  /** The call, e.g. `"mount"`. */
  readonly syscall: string;
  /** The errno value. */
  readonly errno: number;
  /** The errno name, e.g. `"EINVAL"`. */
  readonly code: string;
  /** What the call was about (usually a path), if given. */
  readonly arg: string | number | undefined;

  /**
   * Describes a failed call.
   *
   * @param syscall the call's name
   * @param errno the errno value read right after the call
   * @param arg the argument naming the thing (a path, an fd, a flag set)
   */
  constructor(syscall: string, errno: number, arg?: string | number) {
    const what = arg === undefined ? "" : typeof arg === "number" ? `${arg}` : JSON.stringify(arg);
    const code = errnoName(errno);
    super(`${syscall}(${what}): ${code} (${strerror(errno)})`);
    this.name = "SyscallError";
    this.syscall = syscall;
    this.errno = errno;
    this.code = code;
    this.arg = arg;
  }
}
