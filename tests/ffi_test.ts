// Tests of ffi/: every wrapper's error path (errno read right after the call, named in a
// SyscallError), plus the round trips that need a real kernel. Some need root.
import assert from "node:assert/strict";
import * as f from "../ffi/mod.ts";

const root = Deno.uid() === 0;

function fails(fn: () => unknown, syscall: string, code: string): f.SyscallError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof f.SyscallError, `expected SyscallError, got ${err}`);
  assert.equal(err.syscall, syscall);
  assert.equal(err.code, code, err.message);
  assert.equal(f.errnoName(err.errno), code);
  return err;
}

function tmp(): string {
  return Deno.makeTempDirSync({ prefix: "berth-ffi-" });
}

Deno.test("SyscallError names the call, the argument and the errno", () => {
  const e = fails(() => f.mount("none", "/x/nonexistent", "tmpfs", 0), "mount", "ENOENT");
  assert.equal(e.message, 'mount("/x/nonexistent"): ENOENT (No such file or directory)');
  assert.equal(e.errno, 2);
  assert.equal(e.arg, "/x/nonexistent");
  assert.equal(new f.SyscallError("close", 9, 7).message, "close(7): EBADF (Bad file descriptor)");
  assert.equal(new f.SyscallError("getpid", 22).message, "getpid(): EINVAL (Invalid argument)");
  assert.equal(f.errnoName(11), "EAGAIN");
  assert.equal(f.errnoName(9999), "E9999");
});

Deno.test("strings with NUL bytes are rejected before the call", () => {
  assert.throws(() => f.chdir("/tmp\0/x"), TypeError);
});

Deno.test("bpf: an unknown command fails with EINVAL", () => {
  fails(() => f.bpf(9999, new Uint8Array(128)), "bpf", "EINVAL");
});

Deno.test("namespaces: unshare(NEWUSER) in a threaded process, setns on a bad fd", () => {
  fails(() => f.unshare(f.CLONE_NEWUSER), "unshare", "EINVAL");
  fails(() => f.setns(-1, 0), "setns", "EBADF");
});

Deno.test({
  name: "mount, umount2, pivot_root, mount_setattr error paths",
  ignore: !root,
  fn() {
    const d = tmp();
    try {
      fails(() => f.umount2(`${d}/nonexistent`), "umount2", "ENOENT");
      fails(() => f.umount2(d), "umount2", "EINVAL"); // not a mount point
      fails(() => f.pivotRoot(`${d}/nonexistent`, "/"), "pivot_root", "ENOENT");
      const ro = { set: f.MOUNT_ATTR_RDONLY };
      fails(() => f.mountSetattr(-1, "x", 0, ro), "mount_setattr", "EBADF");
      fails(() => f.mount(null, d, "nosuchfs", 0), "mount", "ENODEV");
    } finally {
      Deno.removeSync(d, { recursive: true });
    }
  },
});

Deno.test("process: prctl, kill, prlimit, sethostname, execve error paths", () => {
  fails(() => f.prctl(0x7fff), "prctl", "EINVAL");
  fails(() => f.kill(2147483647, 0), "kill", "ESRCH");
  fails(() => f.tgkill(Deno.pid, 2147483647, 0), "tgkill", "ESRCH");
  f.tgkill(Deno.pid, f.gettid(), 0);
  fails(() => f.prlimit(2147483647, f.RLIMIT_NOFILE), "prlimit64", "ESRCH");
  const nofile = f.getrlimit(f.RLIMIT_NOFILE);
  fails(
    () => f.setrlimit(f.RLIMIT_NOFILE, { soft: nofile.hard + 1n, hard: nofile.hard }),
    "prlimit64",
    "EINVAL",
  );
  fails(() => f.sethostname("x".repeat(100)), "sethostname", "EINVAL");
  fails(() => f.setdomainname("x".repeat(100)), "setdomainname", "EINVAL");
  fails(() => f.execve("/nonexistent/berth", ["x"], []), "execve", "ENOENT");
  const d = tmp();
  Deno.writeTextFileSync(`${d}/plain`, "#!/bin/sh\n", { mode: 0o644 });
  fails(() => f.execve(`${d}/plain`, ["x"], []), "execve", "EACCES");
  Deno.removeSync(d, { recursive: true });
  assert.equal(f.getpid(), Deno.pid);
  const old = f.umask(0o027);
  assert.equal(f.umask(old), 0o027);
});

Deno.test("credentials: capget, capset beyond the permitted set, setgroups too long", () => {
  const caps = f.capget();
  assert.equal(caps.inheritable & ~caps.permitted, 0n);
  fails(() => f.capget(-5), "capget", "EINVAL");
  fails(() => f.setgroups(new Array(70000).fill(0)), "setgroups", "EINVAL");
  if (root) {
    const beyond = ~caps.permitted & ((1n << 40n) - 1n);
    if (beyond) {
      fails(
        () => f.capset({ effective: beyond, permitted: beyond, inheritable: 0n }),
        "capset",
        "EPERM",
      );
    }
  }
});

Deno.test({
  name: "credentials: setresuid back to root after dropping fails with EPERM (subprocess)",
  ignore: !root,
  async fn() {
    const script = `
      import * as f from ${JSON.stringify(new URL("../ffi/mod.ts", import.meta.url).href)};
      f.setgroups([]); f.setresgid(65534, 65534, 65534); f.setresuid(65534, 65534, 65534);
      const out = [];
      for (const fn of [() => f.setresuid(0, 0, 0), () => f.setresgid(0, 0, 0), () => f.setgroups([0])]) {
        try { fn(); out.push("ok"); } catch (e) { out.push(e.syscall + ":" + e.code); }
      }
      console.log(out.join(" "));`;
    const { stdout, code } = await new Deno.Command(Deno.execPath(), {
      args: ["eval", script],
      stderr: "inherit",
    }).output();
    assert.equal(code, 0);
    assert.equal(
      new TextDecoder().decode(stdout).trim(),
      "setresuid:EPERM setresgid:EPERM setgroups:EPERM",
    );
  },
});

Deno.test("fs: every fd/path call's error path", () => {
  const d = tmp();
  try {
    const file = `${d}/file`;
    Deno.writeTextFileSync(file, "hello");
    const dirfd = f.openat(f.AT_FDCWD, d, f.O_RDONLY | f.O_DIRECTORY | f.O_CLOEXEC);
    try {
      fails(() => f.openat(dirfd, "nonexistent", f.O_RDONLY), "openat", "ENOENT");
      fails(
        () => f.openat2(dirfd, "../x", { flags: f.O_PATH, resolve: f.RESOLVE_BENEATH }),
        "openat2",
        "EXDEV",
      );
      fails(() => f.close(-1), "close", "EBADF");
      fails(() => f.closeRange(10, 5), "close_range", "EINVAL");
      fails(() => f.fcntl(-1, f.F_GETFD), "fcntl", "EBADF");
      fails(() => f.dup3(-1, 100), "dup3", "EBADF");
      fails(() => f.read(-1, new Uint8Array(1)), "read", "EBADF");
      fails(() => f.write(-1, new Uint8Array(1)), "write", "EBADF");
      fails(() => f.statx(dirfd, "nonexistent"), "statx", "ENOENT");
      fails(() => f.mkdirat(dirfd, "file", 0o755), "mkdirat", "EEXIST");
      fails(() => f.mknodat(dirfd, "file", f.S_IFIFO | 0o644), "mknodat", "EEXIST");
      fails(() => f.mknod(file, f.S_IFIFO | 0o644), "mknodat", "EEXIST");
      fails(() => f.symlinkat("x", dirfd, "file"), "symlinkat", "EEXIST");
      fails(() => f.linkat(dirfd, "nonexistent", dirfd, "l"), "linkat", "ENOENT");
      fails(() => f.readlinkat(dirfd, "file"), "readlinkat", "EINVAL");
      fails(() => f.fchownat(dirfd, "nonexistent", 0, 0), "fchownat", "ENOENT");
      fails(() => f.fchmodat(dirfd, "nonexistent", 0o644), "fchmodat", "ENOENT");
      fails(() => f.fchmod(-1, 0o644), "fchmod", "EBADF");
      fails(() => f.fchown(-1, 0, 0), "fchown", "EBADF");
      const t = { sec: 0, nsec: 0 };
      fails(() => f.utimensat(dirfd, "nonexistent", t, t), "utimensat", "ENOENT");
      fails(() => f.unlinkat(dirfd, "nonexistent"), "unlinkat", "ENOENT");
      fails(() => f.unlinkat(dirfd, "file", f.AT_REMOVEDIR), "unlinkat", "ENOTDIR");
      fails(() => f.renameat(dirfd, "nonexistent", dirfd, "y"), "renameat2", "ENOENT");
      fails(() => f.fsetxattr(-1, "user.x", new Uint8Array(1)), "fsetxattr", "EBADF");
      fails(
        () => f.lsetxattr(`${d}/nonexistent`, "user.x", new Uint8Array(1)),
        "lsetxattr",
        "ENOENT",
      );
      fails(() => f.lgetxattr(file, "user.nonexistent"), "lgetxattr", "ENODATA");
      fails(() => f.fgetxattr(-1, "user.x"), "fgetxattr", "EBADF");
      fails(() => f.flock(-1, f.LOCK_EX), "flock", "EBADF");
      fails(() => f.chdir(`${d}/nonexistent`), "chdir", "ENOENT");
      fails(() => f.fchdir(-1), "fchdir", "EBADF");
      fails(() => f.chroot(`${d}/nonexistent`), "chroot", "ENOENT");
    } finally {
      f.close(dirfd);
    }
  } finally {
    Deno.removeSync(d, { recursive: true });
  }
});

Deno.test("fs: fd-relative round trips (statx, links, xattrs, times, modes, fifo)", () => {
  const d = tmp();
  const dirfd = f.openat(f.AT_FDCWD, d, f.O_PATH | f.O_DIRECTORY | f.O_CLOEXEC);
  try {
    f.mkdirat(dirfd, "sub", 0o700);
    f.symlinkat("sub", dirfd, "link");
    assert.equal(f.readlinkat(dirfd, "link"), "sub");
    const fd = f.openat(dirfd, "sub/f", f.O_CREAT | f.O_WRONLY | f.O_CLOEXEC, 0o600);
    assert.equal(f.write(fd, new TextEncoder().encode("abc")), 3);
    f.fsetxattr(fd, "user.berth", new TextEncoder().encode("v1"));
    assert.equal(new TextDecoder().decode(f.fgetxattr(fd, "user.berth")), "v1");
    f.close(fd);
    f.lsetxattr(`/proc/self/fd/${dirfd}/sub/f`, "user.other", new Uint8Array([1, 2]));
    assert.deepEqual([...f.lgetxattr(`${d}/sub/f`, "user.other")], [1, 2]);
    f.linkat(dirfd, "sub/f", dirfd, "hard");
    f.fchmodat(dirfd, "hard", 0o640);
    f.utimensat(dirfd, "hard", { sec: 1000, nsec: 5 }, { sec: 2000, nsec: 7 });
    const st = f.statx(dirfd, "hard");
    assert.equal(st.mode & f.S_IFMT, f.S_IFREG);
    assert.equal(st.mode & 0o7777, 0o640);
    assert.equal(st.size, 3);
    assert.equal(st.nlink, 2);
    assert.deepEqual(st.mtime, { sec: 2000, nsec: 7 });
    assert.deepEqual(st.atime, { sec: 1000, nsec: 5 });
    const lst = f.statx(dirfd, "link", f.AT_SYMLINK_NOFOLLOW);
    assert.equal(lst.mode & f.S_IFMT, f.S_IFLNK);
    f.mknodat(dirfd, "fifo", f.S_IFIFO | 0o600);
    assert.equal(f.statx(dirfd, "fifo").mode & f.S_IFMT, f.S_IFIFO);
    f.renameat(dirfd, "fifo", dirfd, "fifo2");
    f.unlinkat(dirfd, "fifo2");
    // RESOLVE_IN_ROOT: an absolute symlink stays inside the dirfd
    f.symlinkat("/sub", dirfd, "abs");
    const p = f.openat2(dirfd, "abs/f", {
      flags: f.O_PATH | f.O_CLOEXEC,
      resolve: f.RESOLVE_IN_ROOT,
    });
    assert.equal(f.statx(p, "", f.AT_EMPTY_PATH).size, 3);
    f.close(p);
    if (root) {
      f.fchownat(dirfd, "link", 1234, 5678, f.AT_SYMLINK_NOFOLLOW);
      const l = f.statx(dirfd, "link", f.AT_SYMLINK_NOFOLLOW);
      assert.deepEqual([l.uid, l.gid], [1234, 5678]);
      f.mknodat(dirfd, "null", f.S_IFCHR | 0o666, f.makedev(1, 3));
      assert.deepEqual(f.statx(dirfd, "null").rdev, { major: 1, minor: 3 });
    }
    assert.equal(f.makedev(136, 300), 0x10882cn);
  } finally {
    f.close(dirfd);
    Deno.removeSync(d, { recursive: true });
  }
});

Deno.test("fs: flock LOCK_NB fails with EAGAIN while another description holds it", () => {
  const d = tmp();
  try {
    Deno.writeTextFileSync(`${d}/lock`, "");
    const a = f.openat(f.AT_FDCWD, `${d}/lock`, f.O_RDONLY | f.O_CLOEXEC);
    const b = f.openat(f.AT_FDCWD, `${d}/lock`, f.O_RDONLY | f.O_CLOEXEC);
    f.flock(a, f.LOCK_EX);
    fails(() => f.flock(b, f.LOCK_EX | f.LOCK_NB), "flock", "EAGAIN");
    f.flock(a, f.LOCK_UN);
    f.flock(b, f.LOCK_EX | f.LOCK_NB);
    f.close(a);
    f.close(b);
  } finally {
    Deno.removeSync(d, { recursive: true });
  }
});

Deno.test("fs: fcntl CLOEXEC, dup3, closeRange with CLOEXEC", () => {
  const fd = f.openat(f.AT_FDCWD, "/dev/null", f.O_RDONLY);
  assert.equal(f.fcntl(fd, f.F_GETFD), 0);
  f.fcntl(fd, f.F_SETFD, f.FD_CLOEXEC);
  assert.equal(f.fcntl(fd, f.F_GETFD), f.FD_CLOEXEC);
  const hi = f.dup3(fd, 900, 0);
  assert.equal(f.fcntl(hi, f.F_GETFD), 0);
  f.closeRange(900, 900, f.CLOSE_RANGE_CLOEXEC);
  assert.equal(f.fcntl(hi, f.F_GETFD), f.FD_CLOEXEC);
  f.closeRange(900, 900);
  fails(() => f.fcntl(hi, f.F_GETFD), "fcntl", "EBADF");
  f.close(fd);
});

Deno.test("tty: ioctls on a non-terminal and on a real pty", () => {
  fails(() => f.ioctl(-1, f.TIOCGWINSZ, new Uint16Array(4)), "ioctl", "EBADF");
  const file = f.openat(f.AT_FDCWD, "/dev/null", f.O_RDONLY | f.O_CLOEXEC);
  fails(() => f.ioctlGetPtyNumber(file), "ioctl", "ENOTTY");
  fails(() => f.ioctlSetCtty(file), "ioctl", "ENOTTY");
  f.close(file);
  const master = f.openat(f.AT_FDCWD, "/dev/ptmx", f.O_RDWR | f.O_NOCTTY | f.O_CLOEXEC);
  try {
    f.ioctlSetPtyLock(master, false);
    const n = f.ioctlGetPtyNumber(master);
    assert.ok(n >= 0);
    f.ioctlSetWinsize(master, { rows: 33, columns: 111 });
    assert.deepEqual(f.ioctlGetWinsize(master), { rows: 33, columns: 111 });
  } finally {
    f.close(master);
  }
});

Deno.test("socket: errors, SCM_RIGHTS round trip, poll and pollAsync", async () => {
  fails(() => f.socket(9999, f.SOCK_STREAM), "socket", "EAFNOSUPPORT");
  fails(() => f.socketpair(f.AF_INET, f.SOCK_STREAM), "socketpair", "EOPNOTSUPP");
  fails(() => f.sendmsg(-1, new Uint8Array(1)), "sendmsg", "EBADF");
  fails(() => f.recvmsg(-1), "recvmsg", "EBADF");
  const tooMany = Array.from({ length: 1 << 20 }, () => ({ fd: -1, events: 0 }));
  fails(() => f.poll(tooMany, 0), "ppoll", "EINVAL");
  const [a, b] = f.socketpair(f.AF_UNIX, f.SOCK_SEQPACKET | f.SOCK_CLOEXEC);
  const nul = f.openat(f.AT_FDCWD, "/dev/null", f.O_RDONLY | f.O_CLOEXEC);
  try {
    assert.deepEqual(f.poll([{ fd: b, events: f.POLLIN }], 0), [0]);
    const waiting = f.pollAsync([{ fd: b, events: f.POLLIN }], 5000);
    f.sendmsg(a, new TextEncoder().encode("hello"), [nul]);
    assert.equal((await waiting)[0] & f.POLLIN, f.POLLIN);
    const got = f.recvmsg(b, 100, 2);
    assert.equal(new TextDecoder().decode(got.data), "hello");
    assert.equal(got.fds.length, 1);
    assert.notEqual(got.fds[0], nul);
    assert.equal(f.fcntl(got.fds[0], f.F_GETFD), f.FD_CLOEXEC);
    const st = f.statx(got.fds[0], "", f.AT_EMPTY_PATH);
    assert.deepEqual(st.rdev, { major: 1, minor: 3 });
    f.close(got.fds[0]);
    f.close(a);
    assert.equal(f.recvmsg(b).data.length, 0); // end of stream
  } finally {
    f.close(b);
    f.close(nul);
  }
});

Deno.test("spawn: posixSpawn's argv, exact environment, dup2, session and signals; waitid; errors", async () => {
  const [r, w] = f.pipe2(f.O_CLOEXEC);
  const pid = f.posixSpawn(
    "/bin/sh",
    [
      "probe-name",
      "-c",
      'echo "$0 $A"; /usr/bin/tr "\\0" " " < /proc/$$/environ; echo; /bin/ps -o sid= -p $$; ' +
      "/bin/grep -E '^(SigBlk|SigIgn)' /proc/self/status; kill -PIPE $$; sleep 1",
    ],
    ["A=1", "B=two words"],
    {
      flags: f.POSIX_SPAWN_SETSID | f.POSIX_SPAWN_SETSIGMASK | f.POSIX_SPAWN_SETSIGDEF,
      sigmask: 0n,
      sigdefault: (1n << 64n) - 1n,
      dup2: [[w, 1]],
    },
  );
  f.close(w);
  // SIGPIPE, which Deno ignores, is at its default in the child: `kill -PIPE $$` ends it
  let exit: f.ChildExit | undefined;
  for (let i = 0; i < 200 && !exit; i++) {
    exit = f.waitid(f.P_PID, pid, f.WEXITED | f.WNOHANG);
    if (!exit) await new Promise((ok) => setTimeout(ok, 10));
  }
  assert.deepEqual(exit, { pid, code: f.CLD_KILLED, status: 13 });
  const out = new Uint8Array(4096);
  const text = new TextDecoder().decode(out.subarray(0, f.read(r, out)));
  f.close(r);
  // argv[0] as given, only the given environment, its own session, nothing blocked or ignored
  assert.equal(
    text.replace(/^ +/gm, ""),
    `probe-name 1\nA=1 B=two words \n${pid}\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n`,
  );
  // no other child: ECHILD
  fails(() => f.waitid(f.P_PID, pid, f.WEXITED | f.WNOHANG), "waitid", "ECHILD");
  const spawnFails = (path: string, code: string) => {
    const e = fails(() => f.posixSpawn(path, ["x"], []), "posix_spawn", code);
    assert.equal(e.arg, path);
  };
  spawnFails("/nonexistent/x", "ENOENT");
  // not executable (no x bit, root or not); a file without "#!" or ELF header: execve's ENOEXEC
  // (no /bin/sh fallback as with execvp)
  const d = tmp();
  Deno.writeTextFileSync(`${d}/plain`, "echo hi\n", { mode: 0o644 });
  spawnFails(`${d}/plain`, "EACCES");
  Deno.writeTextFileSync(`${d}/script`, "echo hi\n", { mode: 0o755 });
  spawnFails(`${d}/script`, "ENOEXEC");
  Deno.removeSync(d, { recursive: true });
  fails(() => f.pipe2(-1), "pipe2", "EINVAL");
});
