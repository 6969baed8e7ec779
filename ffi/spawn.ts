/**
 * `posix_spawn(3)` of glibc, bound on first use through its own handle (only a process that
 * spawns this way pays for the symbols). glibc clones with `CLONE_VM | CLONE_VFORK`: the engine's
 * page tables are not copied (a fork of the Deno process costs ~10 ms here, posix_spawn ~1 ms),
 * the calling thread waits until the child has called execve, and the child runs with that
 * thread's credentials, namespaces, root, cwd and umask, as a fork from it would. The result is
 * the error of the child's set-up or execve (glibc's default `posix_spawn` never retries with
 * /bin/sh: a file execve refuses is `ENOEXEC`).
 *
 * @module
 */
import { cstr } from "./_libc.ts";
import { SyscallError } from "./syscall_error.ts";

const SYMBOLS = {
  posix_spawn: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  posix_spawnattr_init: { parameters: ["buffer"], result: "i32" },
  posix_spawnattr_destroy: { parameters: ["buffer"], result: "i32" },
  posix_spawnattr_setflags: { parameters: ["buffer", "i16"], result: "i32" },
  posix_spawnattr_setsigmask: { parameters: ["buffer", "buffer"], result: "i32" },
  posix_spawnattr_setsigdefault: { parameters: ["buffer", "buffer"], result: "i32" },
  posix_spawn_file_actions_init: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_destroy: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_adddup2: { parameters: ["buffer", "i32", "i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] | undefined;
// the argument strings of the call in progress: referenced until it returns (only their
// addresses are in the arrays given to posix_spawn)
const inFlight: unknown[] = [];

/**
 * Binds the symbols now (`posixSpawn` does it at its first call otherwise): a thread about to
 * enter a container's mount namespace makes sure no library is looked up from in there.
 */
export function loadPosixSpawn(): void {
  lib ??= Deno.dlopen("libc.so.6", SYMBOLS).symbols;
}

/** What {@linkcode posixSpawn} sets up in the child before its execve. */
export interface PosixSpawnOptions {
  /** `POSIX_SPAWN_*` flags (`POSIX_SPAWN_SETSIGMASK`, `..._SETSIGDEF`, `..._SETSID`, ...). */
  flags?: number;
  /** The signal mask (with `POSIX_SPAWN_SETSIGMASK`); bit n-1 = signal n. */
  sigmask?: bigint;
  /** The signals set to their default action (with `POSIX_SPAWN_SETSIGDEF`); bit n-1 = signal n. */
  sigdefault?: bigint;
  /** `dup2(from, to)` in the child, in this order. */
  dup2?: readonly (readonly [from: number, to: number])[];
}

// sigset_t of glibc: 1024 bits; signals 1..64 are the first 8 bytes
function sigset(bits: bigint): BigUint64Array<ArrayBuffer> {
  const set = new BigUint64Array(16);
  set[0] = BigInt.asUintN(64, bits);
  return set;
}

/**
 * `posix_spawn(3)`: runs `path` with `argv` (argv[0] included) and exactly the environment
 * `envp`, in a child of the calling thread; returns the child's pid. Throws
 * `SyscallError("posix_spawn", error, path)` when the child could not be set up or `path` could
 * not be executed.
 */
export function posixSpawn(
  path: string,
  argv: readonly string[],
  envp: readonly string[],
  options: PosixSpawnOptions = {},
): number {
  loadPosixSpawn();
  const s = lib!;
  const file = cstr(path);
  const strings = [argv, envp].map((list) => list.map(cstr));
  const [args, env] = strings.map((list) => {
    const array = new BigUint64Array(list.length + 1);
    list.forEach((b, i) => {
      array[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
    });
    return array;
  });
  // posix_spawnattr_t (336 bytes) and posix_spawn_file_actions_t (80 bytes), with room to spare
  const attr = new Uint8Array(512);
  const actions = new Uint8Array(256);
  const check = (what: string, r: number) => {
    if (r !== 0) throw new SyscallError(what, r, path);
  };
  check("posix_spawnattr_init", s.posix_spawnattr_init(attr));
  inFlight.push(strings);
  try {
    check("posix_spawn_file_actions_init", s.posix_spawn_file_actions_init(actions));
    try {
      check("posix_spawnattr_setflags", s.posix_spawnattr_setflags(attr, options.flags ?? 0));
      if (options.sigmask !== undefined) {
        check(
          "posix_spawnattr_setsigmask",
          s.posix_spawnattr_setsigmask(attr, sigset(options.sigmask)),
        );
      }
      if (options.sigdefault !== undefined) {
        check(
          "posix_spawnattr_setsigdefault",
          s.posix_spawnattr_setsigdefault(attr, sigset(options.sigdefault)),
        );
      }
      for (const [from, to] of options.dup2 ?? []) {
        check(
          "posix_spawn_file_actions_adddup2",
          s.posix_spawn_file_actions_adddup2(actions, from, to),
        );
      }
      const pid = new Int32Array(1);
      check("posix_spawn", s.posix_spawn(pid, file, actions, attr, args, env));
      return pid[0];
    } finally {
      s.posix_spawn_file_actions_destroy(actions);
    }
  } finally {
    s.posix_spawnattr_destroy(attr);
    inFlight.pop();
  }
}
