/**
 * The libc binding shared by the `ffi/` wrappers, opened lazily, once. Only `syscall(2)` and
 * `__errno_location` are bound on the hot path (each bound symbol costs 0.1–0.5 ms of `Deno.dlopen`,
 * which the container's init pays on every start); `strerror` and the non-blocking `syscall` are
 * bound on first use. Synchronous symbols run on the calling thread, so namespace and credential
 * calls affect that thread and errno is that thread's.
 *
 * @module
 */

const I64x7 = ["i64", "i64", "i64", "i64", "i64", "i64", "i64"] as const;
const CORE = {
  __errno_location: { parameters: [], result: "pointer" },
  syscall: { parameters: I64x7, result: "i64" },
} as const satisfies Deno.ForeignLibraryInterface;
const EXTRA = {
  strerror: { parameters: ["i32"], result: "pointer" },
  syscall_async: { name: "syscall", parameters: I64x7, result: "i64", nonblocking: true },
} as const satisfies Deno.ForeignLibraryInterface;

/** An integer argument of a raw system call (pointers are addresses, see {@linkcode addr}). */
export type Arg = number | bigint;

let core: Deno.DynamicLibrary<typeof CORE>["symbols"] | undefined;
let extra: Deno.DynamicLibrary<typeof EXTRA>["symbols"] | undefined;
let errnoCell: Int32Array | undefined;

function open(): Deno.DynamicLibrary<typeof CORE>["symbols"] {
  core = Deno.dlopen("libc.so.6", CORE).symbols;
  const p = core.__errno_location();
  if (p === null) throw new Error("__errno_location returned NULL");
  errnoCell = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(p, 4));
  return core;
}

function more(): Deno.DynamicLibrary<typeof EXTRA>["symbols"] {
  return extra ??= Deno.dlopen("libc.so.6", EXTRA).symbols;
}

const big = (args: Arg[]) => Array.from({ length: 6 }, (_, i) => BigInt(args[i] ?? 0));

// Buffers whose addresses were taken for the next call: held here so that nothing frees them
// before the kernel has used them (a bare address does not keep a typed array alive).
let pinned: ArrayBufferView[] = [];

/**
 * `syscall(nr, args...)` (up to 6) on the calling thread with errno cleared first; returns the raw
 * result (-1 on failure, errno then in {@linkcode errno}). Releases the buffers pinned by
 * {@linkcode addr}.
 */
export function syscall(nr: number, ...args: Arg[]): number {
  const s = core ?? open();
  errnoCell![0] = 0;
  const [a, b, c, d, e, f] = big(args);
  const r = Number(s.syscall(BigInt(nr), a, b, c, d, e, f));
  pinned = [];
  return r;
}

/** The calling thread's errno as left by the last {@linkcode syscall}. */
export function errno(): number {
  if (errnoCell === undefined) open();
  return errnoCell![0];
}

/**
 * `syscall(nr, args...)` on a blocking-pool thread (errno is not readable there: -1 is all you
 * get). The buffers pinned by {@linkcode addr} stay pinned until it settles.
 */
export async function syscallAsync(nr: number, ...args: Arg[]): Promise<number> {
  const keep = pinned;
  pinned = [];
  const [a, b, c, d, e, f] = big(args);
  const r = Number(await more().syscall_async(BigInt(nr), a, b, c, d, e, f));
  keep.length = 0;
  return r;
}

/** `strerror(errno)` from libc (C locale: English). */
export function strerror(code: number): string {
  const p = more().strerror(code);
  return p === null ? `errno ${code}` : Deno.UnsafePointerView.getCString(p);
}

/**
 * The address of a typed array's first byte, to pass as a pointer argument (0 for null). The array
 * stays referenced until the next {@linkcode syscall} returns.
 */
export function addr(buf: ArrayBufferView | null): Arg {
  if (buf === null) return 0;
  pinned.push(buf);
  return Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf));
}

const encoder = new TextEncoder();

/** A NUL-terminated UTF-8 copy of `s`; TypeError if `s` contains a NUL. */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  if (s.includes("\0")) throw new TypeError(`String contains a NUL byte: ${JSON.stringify(s)}`);
  const buf = new Uint8Array(s.length * 3 + 1);
  const { written } = encoder.encodeInto(s, buf);
  return buf.subarray(0, written + 1);
}

/**
 * A NULL-terminated array of pointers to NUL-terminated copies of `strings` (argv, envp); the
 * copies are pinned until the next {@linkcode syscall} returns.
 */
export function cstrArray(strings: readonly string[]): {
  array: BigUint64Array<ArrayBuffer>;
  keep: Uint8Array[];
} {
  const keep = strings.map(cstr);
  const array = new BigUint64Array(keep.length + 1);
  keep.forEach((b, i) => {
    array[i] = BigInt(addr(b));
  });
  return { array, keep };
}
