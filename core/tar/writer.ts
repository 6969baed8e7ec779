/**
 * Streaming tar writer: ustar headers, with a PAX extended header in front of an entry when ustar
 * cannot hold it. Output is deterministic: the same entries give the same bytes.
 *
 * @module
 */

import { InvalidInputError } from "../errors.ts";
import { BLOCK, checksum, encodeUtf8, F, octalMax, writeOctal } from "./_fields.ts";
import { formatPax } from "./_pax.ts";
import type { TarEntryType } from "./reader.ts";

/**
 * Metadata of an entry to write. Omitted fields default to 0 / "" (mode: see
 * {@linkcode TarWriter.add}). A `TarHeader` from the reader can be passed as is (its extra fields
 * are ignored; type "other" cannot be written).
 */
export interface TarWriteHeader {
  /** Path in the archive, written as given (give directories a trailing "/" if wanted). */
  name: string;
  /** Entry kind; `"other"` cannot be written. */
  type: TarEntryType;
  /** Permission bits plus suid/sgid/sticky, 0..0o7777. */
  mode?: number;
  /** Owner user id. */
  uid?: number;
  /** Owner group id. */
  gid?: number;
  /** Owner user name. */
  uname?: string;
  /** Owner group name. */
  gname?: string;
  /** Body size; defaults to the length of a `Uint8Array` body. Required for a streamed body. */
  size?: number;
  /** Modification time in seconds; may be fractional or negative (written as PAX then). */
  mtime?: number;
  /** Link target; required for hardlinks and symlinks. */
  linkname?: string;
  /** Device major number (0..0o7777777). */
  devmajor?: number;
  /** Device minor number (0..0o7777777). */
  devminor?: number;
  /** Extended attributes, written as PAX `SCHILY.xattr.<name>` records (sorted by name). */
  xattrs?: Record<string, Uint8Array>;
}

/** Body accepted by {@linkcode TarWriter.add}. */
export type TarBody = Uint8Array | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

const FLAGS: Record<string, number> = {
  file: 0x30,
  hardlink: 0x31,
  symlink: 0x32,
  char: 0x33,
  block: 0x34,
  dir: 0x35,
  fifo: 0x36,
  contiguous: 0x37,
};

/** Output is coalesced into chunks of this size; bigger body chunks pass through uncopied. */
const BATCH = 256 * 1024;
const DIRECT = 32 * 1024;
const QUEUE_BYTES = 1024 * 1024;
const MAX_OCTAL_8 = octalMax(8);
const MAX_OCTAL_12 = octalMax(12);

/**
 * Writes a tar archive to {@linkcode TarWriter.readable}. Calls to {@linkcode add} run in order
 * (each waits for the previous one); back-pressure from the reader of `readable` holds them up.
 *
 * Body chunks of 32 KiB or more are passed to `readable` by reference (not copied): do not reuse
 * their buffers. A body whose length differs from `size` fails the writer: the `add` call rejects
 * with an `InvalidInputError` naming the entry and `readable` errors with it.
 *
 * @example Write an archive to a file
 * ```ts ignore
 * import { TarWriter } from "./writer.ts";
 * const tar = new TarWriter();
 * using file = await Deno.create("out.tar");
 * const done = tar.readable.pipeTo(file.writable);
 * await tar.add({ name: "etc/", type: "dir" });
 * await tar.add({ name: "etc/hostname", type: "file" }, new TextEncoder().encode("box\n"));
 * await tar.close();
 * await done;
 * ```
 */
export class TarWriter {
  /** The archive bytes. */
  readonly readable: ReadableStream<Uint8Array>;
  #ctrl!: ReadableStreamDefaultController<Uint8Array>;
  #batch = new Uint8Array(BATCH);
  #fill = 0;
  #wake: (() => void) | null = null;
  #failure: { error: unknown } | null = null;
  #tail: Promise<void> = Promise.resolve();
  #closing: Promise<void> | null = null;

  /** Creates a writer; read the archive from `readable`. */
  constructor() {
    this.readable = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#ctrl = controller;
      },
      pull: () => this.#wakeUp(),
      cancel: (reason) => {
        this.#failure ??= {
          error: new Error("Tar output was cancelled", { cause: reason }),
        };
        this.#wakeUp();
      },
    }, { highWaterMark: QUEUE_BYTES, size: (chunk) => chunk.byteLength });
  }

  /**
   * Appends an entry. `body` is required for files with a non-zero size and forbidden for other
   * types. Default modes: 0o755 for dirs, 0o777 for symlinks, 0o644 otherwise.
   *
   * Throws `TypeError`/`RangeError` (without writing anything) for a bad header; rejects with an
   * `InvalidInputError` when a streamed body's length differs from `size`.
   */
  add(header: TarWriteHeader, body?: TarBody): Promise<void> {
    if (this.#closing) return Promise.reject(new TypeError("TarWriter.add() called after close()"));
    let prepared: Prepared;
    try {
      prepared = prepare(header, body);
    } catch (error) {
      return Promise.reject(error);
    }
    const run = this.#tail.then(() => this.#write(prepared, body));
    this.#tail = run.catch(() => {});
    return run;
  }

  /** Waits for pending entries, writes the two zero blocks and closes `readable`. */
  close(): Promise<void> {
    this.#closing ??= this.#tail.then(() => {
      if (this.#failure) throw this.#failure.error;
      this.#zeros(2 * BLOCK);
      this.#flush();
      this.#ctrl.close();
    });
    return this.#closing;
  }

  /**
   * Fails the writer: `readable` errors with `reason` (unless it was already closed) and pending
   * and later `add`/`close` calls reject with it. For producers that hit an error mid-archive.
   */
  abort(reason?: unknown): void {
    if (this.#failure) return;
    this.#failure = { error: reason };
    try {
      this.#ctrl.error(reason);
    } catch {
      // already closed
    }
    this.#wakeUp();
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  #fail(error: unknown): never {
    if (!this.#failure) {
      this.#failure = { error };
      try {
        this.#ctrl.error(error);
      } catch {
        // already closed or errored
      }
    }
    throw error;
  }

  async #write(p: Prepared, body: TarBody | undefined): Promise<void> {
    if (this.#failure) throw this.#failure.error;
    this.#put(p.header);
    if (p.size > 0) {
      if (body instanceof Uint8Array) {
        this.#data(body);
      } else {
        let n = 0;
        for await (const chunk of body as AsyncIterable<Uint8Array>) {
          n += chunk.length;
          if (n > p.size) {
            this.#fail(
              new InvalidInputError(
                `Tar entry ${JSON.stringify(p.name)}: body is longer than its size ${p.size}`,
              ),
            );
          }
          this.#data(chunk);
          if (this.#full()) await this.#backpressure();
        }
        if (n < p.size) {
          this.#fail(
            new InvalidInputError(
              `Tar entry ${JSON.stringify(p.name)}: body has ${n} bytes, size says ${p.size}`,
            ),
          );
        }
      }
      this.#zeros((BLOCK - (p.size % BLOCK)) % BLOCK);
    }
    if (this.#full()) await this.#backpressure();
  }

  /** Copies bytes into the current batch, handing full batches to `readable`. */
  #put(bytes: Uint8Array): void {
    let i = 0;
    while (i < bytes.length) {
      const take = Math.min(BATCH - this.#fill, bytes.length - i);
      this.#batch.set(take === bytes.length ? bytes : bytes.subarray(i, i + take), this.#fill);
      this.#fill += take;
      i += take;
      if (this.#fill === BATCH) this.#flush();
    }
  }

  /** Appends `n` zero bytes (a fresh batch is zero-filled, so this only advances). */
  #zeros(n: number): void {
    let left = n;
    while (left > 0) {
      const take = Math.min(BATCH - this.#fill, left);
      this.#fill += take;
      left -= take;
      if (this.#fill === BATCH) this.#flush();
    }
  }

  #data(chunk: Uint8Array): void {
    if (chunk.length < DIRECT) return this.#put(chunk);
    this.#flush();
    this.#enqueue(chunk);
  }

  #flush(): void {
    if (this.#fill === 0) return;
    const out = this.#batch.subarray(0, this.#fill);
    this.#batch = new Uint8Array(BATCH);
    this.#fill = 0;
    this.#enqueue(out);
  }

  #enqueue(chunk: Uint8Array): void {
    if (this.#failure) throw this.#failure.error;
    this.#ctrl.enqueue(chunk);
  }

  #full(): boolean {
    return this.#failure !== null || (this.#ctrl.desiredSize ?? 1) <= 0;
  }

  async #backpressure(): Promise<void> {
    while (!this.#failure && (this.#ctrl.desiredSize ?? 1) <= 0) {
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    if (this.#failure) throw this.#failure.error;
  }
}

interface Prepared {
  name: string;
  size: number;
  /** ustar header, preceded by the PAX header and its records when needed. */
  header: Uint8Array;
}

function isInt(v: number, max: number): boolean {
  return Number.isSafeInteger(v) && v >= 0 && v <= max;
}

function checkString(entry: string, field: string, v: unknown): string {
  if (typeof v !== "string") {
    throw new TypeError(`Tar entry ${JSON.stringify(entry)}: ${field} must be a string`);
  }
  if (v.includes("\0")) {
    throw new TypeError(`Tar entry ${JSON.stringify(entry)}: ${field} contains a NUL byte`);
  }
  return v;
}

function checkInt(entry: string, field: string, v: number, max: number): number {
  if (!isInt(v, max)) {
    throw new RangeError(
      `Tar entry ${JSON.stringify(entry)}: ${field} must be an integer in 0..${max}, got ${v}`,
    );
  }
  return v;
}

/** Splits an ASCII path into ustar prefix and name (as Go's archive/tar does), or null. */
function splitUstar(s: string): [string, string] | null {
  let length = s.length;
  if (length > F.prefixLen + 1) length = F.prefixLen + 1;
  else if (s[length - 1] === "/") length--;
  const i = s.lastIndexOf("/", length - 1);
  const nlen = s.length - i - 1;
  if (i <= 0 || nlen > F.nameLen || nlen === 0 || i > F.prefixLen) return null;
  return [s.slice(0, i), s.slice(i + 1)];
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

function formatTime(t: number): string {
  const s = String(t);
  if (!s.includes("e")) return s;
  return t.toFixed(9).replace(/0+$/, "").replace(/\.$/, "");
}

function prepare(h: TarWriteHeader, body: TarBody | undefined): Prepared {
  if (typeof h !== "object" || h === null) throw new TypeError("Tar header must be an object");
  const name = checkString("", "name", h.name);
  if (name === "") throw new TypeError("Tar entry name must not be empty");
  const q = JSON.stringify(name);
  const flag = Object.hasOwn(FLAGS, h.type) ? FLAGS[h.type] : undefined;
  if (flag === undefined) throw new TypeError(`Tar entry ${q}: cannot write type ${h.type}`);
  const hasBody = h.type === "file" || h.type === "contiguous";

  let size: number;
  if (body instanceof Uint8Array) size = h.size ?? body.length;
  else if (body === undefined) size = h.size ?? 0;
  else if (h.size === undefined) {
    throw new TypeError(`Tar entry ${q}: a streamed body needs a size`);
  } else size = h.size;
  checkInt(name, "size", size, Number.MAX_SAFE_INTEGER);
  if (!hasBody && (size !== 0 || (body instanceof Uint8Array ? body.length > 0 : body))) {
    throw new TypeError(`Tar entry ${q}: a ${h.type} entry has no body`);
  }
  if (body instanceof Uint8Array && body.length !== size) {
    throw new InvalidInputError(`Tar entry ${q}: body has ${body.length} bytes, size says ${size}`);
  }
  if (hasBody && size > 0 && body === undefined) {
    throw new TypeError(`Tar entry ${q}: size is ${size} but no body was given`);
  }

  const mode = checkInt(
    name,
    "mode",
    h.mode ?? (h.type === "dir" ? 0o755 : h.type === "symlink" ? 0o777 : 0o644),
    0o7777,
  );
  const uid = checkInt(name, "uid", h.uid ?? 0, Number.MAX_SAFE_INTEGER);
  const gid = checkInt(name, "gid", h.gid ?? 0, Number.MAX_SAFE_INTEGER);
  const uname = checkString(name, "uname", h.uname ?? "");
  const gname = checkString(name, "gname", h.gname ?? "");
  const linkname = checkString(name, "linkname", h.linkname ?? "");
  if ((h.type === "hardlink" || h.type === "symlink") && linkname === "") {
    throw new TypeError(`Tar entry ${q}: a ${h.type} needs a linkname`);
  }
  const devmajor = checkInt(name, "devmajor", h.devmajor ?? 0, MAX_OCTAL_8);
  const devminor = checkInt(name, "devminor", h.devminor ?? 0, MAX_OCTAL_8);
  const mtime = h.mtime ?? 0;
  if (typeof mtime !== "number" || !(Math.abs(mtime) <= Number.MAX_SAFE_INTEGER)) {
    throw new RangeError(`Tar entry ${q}: mtime must be a finite number, got ${mtime}`);
  }
  const xattrs = h.xattrs ?? {};
  const xattrNames = Object.keys(xattrs).sort();
  for (const x of xattrNames) {
    if (x === "" || x.includes("\0") || x.includes("=")) {
      throw new TypeError(`Tar entry ${q}: bad xattr name ${JSON.stringify(x)}`);
    }
    if (!(xattrs[x] instanceof Uint8Array)) {
      throw new TypeError(`Tar entry ${q}: xattr ${JSON.stringify(x)} must be a Uint8Array`);
    }
  }

  const records: [string, Uint8Array][] = [];
  let nameField = name;
  let prefixField = "";
  if (!isAscii(name) || name.length > F.nameLen) {
    const split = isAscii(name) ? splitUstar(name) : null;
    if (split) [prefixField, nameField] = split;
    else records.push(["path", encodeUtf8(name)]);
  }
  if (!isAscii(linkname) || linkname.length > F.linknameLen) {
    records.push(["linkpath", encodeUtf8(linkname)]);
  }
  if (size > MAX_OCTAL_12) records.push(["size", encodeUtf8(String(size))]);
  if (uid > MAX_OCTAL_8) records.push(["uid", encodeUtf8(String(uid))]);
  if (gid > MAX_OCTAL_8) records.push(["gid", encodeUtf8(String(gid))]);
  if (!isAscii(uname) || uname.length >= F.ownerLen) records.push(["uname", encodeUtf8(uname)]);
  if (!isAscii(gname) || gname.length >= F.ownerLen) records.push(["gname", encodeUtf8(gname)]);
  const mtimeField = Math.min(Math.max(Math.floor(mtime), 0), MAX_OCTAL_12);
  if (mtimeField !== mtime) records.push(["mtime", encodeUtf8(formatTime(mtime))]);
  for (const x of xattrNames) records.push([`SCHILY.xattr.${x}`, xattrs[x]]);

  let header: Uint8Array;
  let o = 0;
  if (records.length === 0) {
    header = new Uint8Array(BLOCK);
  } else {
    const data = formatPax(records);
    const padded = Math.ceil(data.length / BLOCK) * BLOCK;
    header = new Uint8Array(BLOCK + padded + BLOCK);
    ustar(header, 0, {
      name: paxName(name),
      prefix: "",
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: data.length,
      mtime: mtimeField,
      flag: 0x78,
      linkname: "",
      uname: "",
      gname: "",
      devmajor: 0,
      devminor: 0,
    });
    header.set(data, BLOCK);
    o = BLOCK + padded;
  }
  ustar(header, o, {
    name: nameField,
    prefix: prefixField,
    mode,
    uid: uid > MAX_OCTAL_8 ? 0 : uid,
    gid: gid > MAX_OCTAL_8 ? 0 : gid,
    size: size > MAX_OCTAL_12 ? 0 : size,
    mtime: mtimeField,
    flag,
    linkname,
    uname,
    gname,
    devmajor,
    devminor,
  });
  return { name, size, header };
}

/** Name of the PAX header of `name`: "<dir>/PaxHeaders/<base>" (as GNU tar does). */
function paxName(name: string): string {
  const trimmed = name.replace(/\/+$/, "");
  const slash = trimmed.lastIndexOf("/");
  const dir = slash >= 0 ? trimmed.slice(0, slash) : "";
  const base = slash >= 0 ? trimmed.slice(slash + 1) : trimmed;
  const full = dir ? `${dir}/PaxHeaders/${base}` : `PaxHeaders/${base}`;
  return full.length <= F.nameLen ? full : `PaxHeaders/${base}`;
}

interface UstarFields {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  flag: number;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

/**
 * Writes `s` into a field of `max` bytes: its ASCII characters, anything else as '_' (a fallback
 * for readers that ignore the PAX record that holds the real value), cut at `max`.
 */
function writeAscii(b: Uint8Array, start: number, s: string, max: number): void {
  const n = Math.min(s.length, max);
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    b[start + i] = c < 0x80 ? c : 0x5f;
  }
}

/** Fills the zeroed 512-byte block at `o` with a ustar header (POSIX "ustar\0" "00"). */
function ustar(b: Uint8Array, o: number, f: UstarFields): void {
  writeAscii(b, o + F.name, f.name, F.nameLen);
  writeOctal(b, o + F.mode, 8, f.mode);
  writeOctal(b, o + F.uid, 8, f.uid);
  writeOctal(b, o + F.gid, 8, f.gid);
  writeOctal(b, o + F.size, 12, f.size);
  writeOctal(b, o + F.mtime, 12, f.mtime);
  b[o + F.typeflag] = f.flag;
  writeAscii(b, o + F.linkname, f.linkname, F.linknameLen);
  b.set(USTAR_MAGIC, o + F.magic);
  writeAscii(b, o + F.uname, f.uname, F.ownerLen - 1);
  writeAscii(b, o + F.gname, f.gname, F.ownerLen - 1);
  writeOctal(b, o + F.devmajor, 8, f.devmajor);
  writeOctal(b, o + F.devminor, 8, f.devminor);
  writeAscii(b, o + F.prefix, f.prefix, F.prefixLen);
  writeOctal(b, o + F.chksum, 7, checksum(b, o, false));
  b[o + F.chksum + 7] = 0x20;
}

const USTAR_MAGIC = new Uint8Array([0x75, 0x73, 0x74, 0x61, 0x72, 0, 0x30, 0x30]); // "ustar\0" "00"
