/**
 * Streaming tar reader: a synchronous push parser ({@linkcode TarParser}) for hot paths and an
 * async generator ({@linkcode readTar}) on top of it.
 *
 * Formats: v7, ustar (and star's ustar variant), GNU (long names 'L'/'K', base-256 numbers) and
 * POSIX pax ('x' and global 'g' headers, `SCHILY.xattr.*`, `LIBARCHIVE.xattr.*`). GNU sparse
 * ('S', `GNU.sparse.*`) and multi-volume ('M') entries are rejected as unsupported.
 *
 * Names from raw header fields and PAX values are decoded as UTF-8 when the bytes are valid UTF-8,
 * otherwise as latin1 (one U+0000..U+00FF code point per byte); no byte is ever replaced.
 *
 * Like Go's archive/tar (docker, containerd) and Python's tarfile, the size field of header-only
 * types (hardlink, symlink, char, block, dir, fifo) is ignored: they have no body and their
 * `size` is reported as 0. A zero block followed by a non-zero block is rejected (as Go does), so
 * no entry can hide behind a lone end marker.
 *
 * @module
 */

import { InvalidInputError, LimitError } from "../errors.ts";
import {
  BLOCK,
  checksum,
  decodeBytes,
  decodeField,
  encodeUtf8,
  F,
  FieldCache,
  parseNumeric,
} from "./_fields.ts";
import { parsePax } from "./_pax.ts";

/** The kind of a tar entry. */
export type TarEntryType =
  | "file"
  | "hardlink"
  | "symlink"
  | "char"
  | "block"
  | "dir"
  | "fifo"
  | "contiguous"
  | "other";

/** One entry's metadata, after PAX and GNU long-name headers have been applied. */
export interface TarHeader {
  /** Full path after applying PAX `path` / GNU long name ('L'); otherwise as in the archive. */
  name: string;
  /**
   * Entry kind. Type '0', '\0' and '7' (contiguous) are `"file"`; a '\0' entry (or a '0' entry in a
   * v7 archive) whose name ends in '/' is `"dir"`; unknown flags are `"other"` (body per `size`).
   */
  type: TarEntryType;
  /** The raw typeflag character ("\0" for an old-style file). */
  typeflag: string;
  /** Permission bits plus suid/sgid/sticky (masked with 0o7777). */
  mode: number;
  /** Owner user id. */
  uid: number;
  /** Owner group id. */
  gid: number;
  /** Owner user name ("" in v7 archives). */
  uname: string;
  /** Owner group name ("" in v7 archives). */
  gname: string;
  /** Body size in bytes (PAX size / base-256 honoured); 0 for header-only types. */
  size: number;
  /** Modification time in seconds since the epoch; may be fractional (PAX) or negative. */
  mtime: number;
  /** Access time (PAX `atime`, GNU or star header), when present. */
  atime?: number;
  /** Status change time (PAX `ctime`, GNU or star header), when present. */
  ctime?: number;
  /** Link target (PAX `linkpath` / GNU long link 'K' honoured). */
  linkname: string;
  /** Device major number (char and block devices; else 0). */
  devmajor: number;
  /** Device minor number (char and block devices; else 0). */
  devminor: number;
  /** Extended attributes from `SCHILY.xattr.*` (raw bytes) and `LIBARCHIVE.xattr.*` (decoded). */
  xattrs: Record<string, Uint8Array>;
  /** All PAX records that applied to this entry (global 'g' merged under local 'x'). */
  pax: Record<string, string>;
}

/** Receiver of parse events from a {@linkcode TarParser}. */
export interface TarSink {
  /** Called once per entry, before its data. */
  entry(header: TarHeader): void;
  /**
   * Body bytes of the current entry, in order. The chunk may be a view into the pushed input: it is
   * valid only during the call.
   */
  data(chunk: Uint8Array): void;
  /** Called after the last data of the current entry (right after `entry` for empty bodies). */
  entryEnd?(): void;
}

/** Options of {@linkcode TarParser} and {@linkcode readTar}. */
export interface TarReadOptions {
  /**
   * Bound in bytes for the PAX records and GNU long names that precede one entry (and for the
   * accumulated global PAX records). Default 1 MiB. Bigger input throws a `LimitError`.
   */
  maxMetaSize?: number;
}

const HEADER = 0;
const BODY = 1;
const META = 2;
const PAD = 3;
const DONE = 4;

const V7 = 0;
const USTAR = 1;
const GNU = 2;
const STAR = 3;

const FLAG_CHARS: string[] = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i));
const EMPTY = new Uint8Array(0);

/** Maps a typeflag byte to the entry type (before the v7 trailing-slash rule). */
function typeOf(flag: number): TarEntryType {
  switch (flag) {
    case 0x30: // '0'
    case 0: // '\0'
    case 0x37: // '7' contiguous
      return "file";
    case 0x31:
      return "hardlink";
    case 0x32:
      return "symlink";
    case 0x33:
      return "char";
    case 0x34:
      return "block";
    case 0x35:
      return "dir";
    case 0x36:
      return "fifo";
    default:
      return "other";
  }
}

/**
 * Synchronous, callback-based tar parser. Feed chunks of any size with {@linkcode push}; entries
 * and body bytes are delivered to the sink as they complete. Bodies are never copied: `data`
 * receives subarrays of the pushed chunks. After a throw (bad input or a throwing sink) the parser
 * is unusable and rethrows that error.
 *
 * @example Count the bytes of every file
 * ```ts ignore
 * import { TarParser } from "./reader.ts";
 * const sizes = new Map<string, number>();
 * let current = "";
 * const parser = new TarParser({
 *   entry(h) { current = h.name; sizes.set(current, 0); },
 *   data(chunk) { sizes.set(current, sizes.get(current)! + chunk.length); },
 * });
 * parser.push(new Uint8Array(1024)); // an empty archive: two zero blocks
 * parser.end();
 * ```
 */
export class TarParser {
  #sink: TarSink;
  #maxMeta: number;
  #state = HEADER;
  /** Absolute offset of the next input byte. */
  #offset = 0;
  #block = new Uint8Array(BLOCK);
  #blockFill = 0;
  /** Body or meta bytes still to come. */
  #remaining = 0;
  /** Padding bytes still to come. */
  #pad = 0;
  /** Current entry (or meta header) for error messages. */
  #curName = "";
  #curMeta = -1; // offset of the current meta header, -1 when reading an entry
  #curSize = 0;
  #metaBuf: Uint8Array = EMPTY;
  #metaFill = 0;
  #metaFlag = 0;
  /** Bytes of extended headers since the last entry. */
  #metaTotal = 0;
  /** Offset of the first extended header still waiting for its entry, or -1. */
  #pendingMeta = -1;
  #local: Map<string, Uint8Array> | null = null;
  #global: Map<string, Uint8Array> | null = null;
  #longName: string | null = null;
  #longLink: string | null = null;
  /** The previous block was a zero block. */
  #zero = false;
  #unames = new FieldCache(F.ownerLen);
  #gnames = new FieldCache(F.ownerLen);
  #ended = false;
  #failed: { error: unknown } | null = null;

  /** Creates a parser that reports to `sink`. */
  constructor(sink: TarSink, options: TarReadOptions = {}) {
    const max = options.maxMetaSize ?? 1024 * 1024;
    if (!Number.isSafeInteger(max) || max < 0) {
      throw new RangeError(`maxMetaSize must be a non-negative integer, got ${max}`);
    }
    this.#sink = sink;
    this.#maxMeta = max;
  }

  /** True once the end-of-archive marker was seen; further input is ignored. */
  get done(): boolean {
    return this.#state === DONE;
  }

  /** Feeds the next chunk of the archive (any size). Synchronous. */
  push(chunk: Uint8Array): void {
    if (this.#failed) throw this.#failed.error;
    if (this.#ended) throw new TypeError("TarParser.push() called after end()");
    try {
      this.#push(chunk);
    } catch (error) {
      this.#failed = { error };
      throw error;
    }
  }

  /**
   * Declares the input finished. Input that ends at a header boundary is accepted even without the
   * end-of-archive zero blocks; input ending inside a header, body or padding throws an
   * `InvalidInputError`.
   */
  end(): void {
    if (this.#failed) throw this.#failed.error;
    if (this.#ended) return;
    this.#ended = true;
    try {
      this.#end();
    } catch (error) {
      this.#failed = { error };
      throw error;
    }
  }

  #end(): void {
    switch (this.#state) {
      case HEADER:
        if (this.#blockFill > 0) {
          throw new InvalidInputError(
            `Truncated tar: input ends inside the header at offset ${
              this.#offset - this.#blockFill
            } (${this.#blockFill} of 512 bytes)`,
          );
        }
        if (this.#pendingMeta >= 0) {
          throw new InvalidInputError(
            `Truncated tar: extended header at offset ${this.#pendingMeta} is not followed by an entry`,
          );
        }
        if (this.#zero) this.#state = DONE;
        return;
      case BODY:
      case META:
        throw new InvalidInputError(
          `Truncated tar: ${this.#label()} ends after ${
            this.#curSize - this.#remaining
          } of ${this.#curSize} bytes`,
        );
      case PAD:
        throw new InvalidInputError(`Truncated tar: ${this.#label()} ends inside its padding`);
    }
  }

  #label(): string {
    return this.#curMeta >= 0
      ? `extended header at offset ${this.#curMeta}`
      : `entry ${JSON.stringify(this.#curName)}`;
  }

  #push(chunk: Uint8Array): void {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      const state = this.#state;
      if (state === HEADER) {
        if (this.#blockFill === 0 && n - i >= BLOCK) {
          const at = this.#offset;
          this.#offset = at + BLOCK;
          this.#header(chunk, i, at);
          i += BLOCK;
        } else {
          const fill = this.#blockFill;
          const take = Math.min(BLOCK - fill, n - i);
          this.#block.set(chunk.subarray(i, i + take), fill);
          this.#blockFill = fill + take;
          this.#offset += take;
          i += take;
          if (fill + take === BLOCK) {
            this.#blockFill = 0;
            this.#header(this.#block, 0, this.#offset - BLOCK);
          }
        }
      } else if (state === BODY) {
        const take = Math.min(this.#remaining, n - i);
        const end = i + take;
        this.#remaining -= take;
        this.#offset += take;
        this.#sink.data(chunk.subarray(i, end));
        i = end;
        if (this.#remaining === 0) {
          this.#state = this.#pad > 0 ? PAD : HEADER;
          this.#sink.entryEnd?.();
        }
      } else if (state === PAD) {
        const take = Math.min(this.#pad, n - i);
        this.#pad -= take;
        this.#offset += take;
        i += take;
        if (this.#pad === 0) this.#state = HEADER;
      } else if (state === META) {
        const take = Math.min(this.#remaining, n - i);
        this.#metaBuf.set(chunk.subarray(i, i + take), this.#metaFill);
        this.#metaFill += take;
        this.#remaining -= take;
        this.#offset += take;
        i += take;
        if (this.#remaining === 0) this.#metaDone();
      } else {
        return; // DONE: trailing data is ignored
      }
    }
  }

  #header(b: Uint8Array, o: number, at: number): void {
    const sum = checksum(b, o, false);
    if (sum === 256 && isZero(b, o + F.chksum, 8)) {
      if (this.#pendingMeta >= 0) {
        throw new InvalidInputError(
          `Invalid tar: extended header at offset ${this.#pendingMeta} is not followed by an entry`,
        );
      }
      if (this.#zero) this.#state = DONE;
      this.#zero = true;
      return;
    }
    if (this.#zero) {
      throw new InvalidInputError(
        `Invalid tar header at offset ${at}: data after a lone end-of-archive zero block`,
      );
    }
    const stored = parseNumeric(b, o + F.chksum, 8);
    if (stored !== sum && stored !== checksum(b, o, true)) {
      throw new InvalidInputError(`Invalid tar header at offset ${at}: checksum mismatch`);
    }

    let fmt = V7;
    if (
      b[o + 257] === 0x75 && b[o + 258] === 0x73 && b[o + 259] === 0x74 && b[o + 260] === 0x61 &&
      b[o + 261] === 0x72
    ) {
      const c = b[o + 262];
      if (c === 0) {
        fmt = b[o + 508] === 0x74 && b[o + 509] === 0x61 && b[o + 510] === 0x72 && b[o + 511] === 0
          ? STAR
          : USTAR;
      } else if (c === 0x20) fmt = GNU;
    }

    const flag = b[o + F.typeflag];
    let size = parseNumeric(b, o + F.size, 12);
    if (!(size >= 0)) throw badField(at, "size");

    // Extended headers: collect their bodies, apply them to the next entry.
    if (flag === 0x78 || flag === 0x58 || flag === 0x67 || flag === 0x4c || flag === 0x4b) {
      if (flag !== 0x67) this.#metaTotal += size;
      if (size > this.#maxMeta || this.#metaTotal > this.#maxMeta) {
        throw new LimitError(
          `Tar extended header at offset ${at} is too large: ${size} bytes (limit ${this.#maxMeta})`,
        );
      }
      if (flag !== 0x67 && this.#pendingMeta < 0) this.#pendingMeta = at;
      this.#metaFlag = flag;
      this.#curMeta = at;
      this.#curSize = size;
      this.#pad = (BLOCK - (size % BLOCK)) % BLOCK;
      if (size === 0) {
        this.#metaBuf = EMPTY;
        this.#metaDone();
      } else {
        this.#metaBuf = new Uint8Array(size);
        this.#metaFill = 0;
        this.#remaining = size;
        this.#state = META;
      }
      return;
    }

    let name = decodeField(b, o, F.nameLen);
    if ((fmt === USTAR || fmt === STAR) && b[o + F.prefix] !== 0) {
      const prefix = decodeField(b, o + F.prefix, fmt === STAR ? F.starPrefixLen : F.prefixLen);
      name = prefix + "/" + name;
    }
    if (flag === 0x53) throw unsupported(at, name, "GNU sparse file");
    if (flag === 0x4d) throw unsupported(at, name, "GNU multi-volume continuation");

    const rawMode = parseNumeric(b, o + F.mode, 8);
    if (!(rawMode >= 0)) throw badField(at, "mode");
    let uid = parseNumeric(b, o + F.uid, 8);
    if (!(uid >= 0)) throw badField(at, "uid");
    let gid = parseNumeric(b, o + F.gid, 8);
    if (!(gid >= 0)) throw badField(at, "gid");
    let mtime = parseNumeric(b, o + F.mtime, 12);
    if (Number.isNaN(mtime)) throw badField(at, "mtime");
    let linkname = decodeField(b, o + F.linkname, F.linknameLen);
    let uname = "";
    let gname = "";
    let devmajor = 0;
    let devminor = 0;
    let atime: number | undefined;
    let ctime: number | undefined;
    if (fmt !== V7) {
      uname = this.#unames.decode(b, o + F.uname);
      gname = this.#gnames.decode(b, o + F.gname);
      if (flag === 0x33 || flag === 0x34) {
        devmajor = parseNumeric(b, o + F.devmajor, 8);
        if (!(devmajor >= 0)) throw badField(at, "devmajor");
        devminor = parseNumeric(b, o + F.devminor, 8);
        if (!(devminor >= 0)) throw badField(at, "devminor");
      }
      if (fmt === GNU) {
        atime = optionalTime(b, o + F.gnuAtime);
        ctime = optionalTime(b, o + F.gnuCtime);
      } else if (fmt === STAR) {
        atime = optionalTime(b, o + F.starAtime);
        ctime = optionalTime(b, o + F.starCtime);
      }
    }

    const xattrs: Record<string, Uint8Array> = {};
    const pax: Record<string, string> = {};
    const local = this.#local;
    const global = this.#global;
    if (local !== null || global !== null) {
      let merged: Map<string, Uint8Array>;
      if (global === null) merged = local!;
      else if (local === null) merged = global;
      else {
        merged = new Map(global);
        for (const [k, v] of local) merged.set(k, v);
      }
      for (const [key, raw] of merged) {
        if (raw.length === 0) continue; // an empty local record unsets the keyword
        const value = decodeBytes(raw, 0, raw.length);
        pax[key] = value;
        switch (key) {
          case "path":
            name = value;
            break;
          case "linkpath":
            linkname = value;
            break;
          case "size":
            size = paxInt(at, key, value);
            break;
          case "uid":
            uid = paxInt(at, key, value);
            break;
          case "gid":
            gid = paxInt(at, key, value);
            break;
          case "uname":
            uname = value;
            break;
          case "gname":
            gname = value;
            break;
          case "mtime":
            mtime = paxTime(at, key, value);
            break;
          case "atime":
            atime = paxTime(at, key, value);
            break;
          case "ctime":
            ctime = paxTime(at, key, value);
            break;
          case "SCHILY.devmajor":
            devmajor = paxInt(at, key, value);
            break;
          case "SCHILY.devminor":
            devminor = paxInt(at, key, value);
            break;
          default:
            if (key.startsWith("SCHILY.xattr.")) {
              xattrs[key.slice(13)] = raw;
            } else if (key.startsWith("LIBARCHIVE.xattr.")) {
              xattrs[urlDecode(key.slice(17))] = base64Decode(at, key, value);
            } else if (key.startsWith("GNU.sparse.")) {
              throw unsupported(at, name, "GNU sparse file (PAX)");
            }
        }
      }
      this.#local = null;
    }
    if (this.#longName !== null) {
      name = this.#longName;
      this.#longName = null;
    }
    if (this.#longLink !== null) {
      linkname = this.#longLink;
      this.#longLink = null;
    }
    this.#pendingMeta = -1;
    this.#metaTotal = 0;

    let type = typeOf(flag);
    if ((flag === 0 || (flag === 0x30 && fmt === V7)) && name.endsWith("/")) type = "dir";
    if (type !== "file" && type !== "other") size = 0; // header-only types have no body

    const header: TarHeader = {
      name,
      type,
      typeflag: FLAG_CHARS[flag],
      mode: rawMode & 0o7777,
      uid,
      gid,
      uname,
      gname,
      size,
      mtime,
      atime,
      ctime,
      linkname,
      devmajor,
      devminor,
      xattrs,
      pax,
    };
    this.#curMeta = -1;
    this.#curName = name;
    this.#curSize = size;
    this.#sink.entry(header);
    if (size === 0) {
      this.#sink.entryEnd?.();
    } else {
      this.#remaining = size;
      this.#pad = (BLOCK - (size % BLOCK)) % BLOCK;
      this.#state = BODY;
    }
  }

  #metaDone(): void {
    const buf = this.#metaBuf;
    this.#metaBuf = EMPTY;
    const at = this.#curMeta;
    switch (this.#metaFlag) {
      case 0x78: // 'x'
      case 0x58: { // 'X' (Solaris)
        const records = parsePax(buf, `PAX header at offset ${at}`);
        if (this.#local === null) this.#local = records;
        else for (const [k, v] of records) this.#local.set(k, v);
        break;
      }
      case 0x67: { // 'g'
        const records = parsePax(buf, `PAX global header at offset ${at}`);
        const global = this.#global ?? new Map<string, Uint8Array>();
        for (const [k, v] of records) {
          if (v.length === 0) global.delete(k);
          else global.set(k, v);
        }
        let total = 0;
        for (const [k, v] of global) total += k.length + v.length;
        if (total > this.#maxMeta) {
          throw new LimitError(
            `Tar global PAX records at offset ${at} are too large: ${total} bytes (limit ${this.#maxMeta})`,
          );
        }
        this.#global = global.size > 0 ? global : null;
        break;
      }
      case 0x4c: // 'L'
        this.#longName = decodeField(buf, 0, buf.length);
        break;
      case 0x4b: // 'K'
        this.#longLink = decodeField(buf, 0, buf.length);
        break;
    }
    this.#state = this.#pad > 0 ? PAD : HEADER;
  }
}

function isZero(b: Uint8Array, start: number, len: number): boolean {
  for (let i = start, end = start + len; i < end; i++) if (b[i] !== 0) return false;
  return true;
}

function badField(at: number, field: string): InvalidInputError {
  return new InvalidInputError(`Invalid tar header at offset ${at}: bad ${field} field`);
}

function unsupported(at: number, name: string, what: string): InvalidInputError {
  return new InvalidInputError(
    `Unsupported tar entry ${JSON.stringify(name)} at offset ${at}: ${what}`,
  );
}

function optionalTime(b: Uint8Array, start: number): number | undefined {
  if (b[start] === 0) return undefined;
  const t = parseNumeric(b, start, 12);
  return Number.isNaN(t) ? undefined : t;
}

function badPax(at: number, key: string, value: string): InvalidInputError {
  const shown = value.length > 40 ? value.slice(0, 40) + "..." : value;
  return new InvalidInputError(
    `Invalid tar header at offset ${at}: bad PAX ${key} value ${JSON.stringify(shown)}`,
  );
}

const INT_RE = /^[0-9]+$/;
const TIME_RE = /^-?[0-9]+(\.[0-9]*)?$/;

function paxInt(at: number, key: string, value: string): number {
  const n = Number(value);
  if (!INT_RE.test(value) || !Number.isSafeInteger(n)) throw badPax(at, key, value);
  return n;
}

function paxTime(at: number, key: string, value: string): number {
  const n = Number(value);
  if (!TIME_RE.test(value) || !Number.isFinite(n)) throw badPax(at, key, value);
  return n;
}

/** Decodes libarchive's %XX-escaped xattr name. */
function urlDecode(s: string): string {
  if (!s.includes("%")) return s;
  const utf8 = encodeUtf8(s);
  const out = new Uint8Array(utf8.length);
  let n = 0;
  for (let i = 0; i < utf8.length; i++) {
    const hex = utf8[i] === 0x25 ? String.fromCharCode(utf8[i + 1], utf8[i + 2]) : "";
    if (/^[0-9a-fA-F]{2}$/.test(hex)) {
      out[n++] = parseInt(hex, 16);
      i += 2;
    } else {
      out[n++] = utf8[i];
    }
  }
  return decodeBytes(out, 0, n);
}

/** Decodes base64 with or without '=' padding (libarchive omits it). */
function base64Decode(at: number, key: string, value: string): Uint8Array {
  let s = value.replace(/=+$/, "");
  if (s.length % 4 === 1) throw badPax(at, key, value);
  s += "===".slice(0, (4 - (s.length % 4)) % 4);
  let bin: string;
  try {
    bin = atob(s);
  } catch {
    throw badPax(at, key, value);
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** One entry yielded by {@linkcode readTar}. */
export interface TarEntry {
  /** The entry's metadata. */
  header: TarHeader;
  /**
   * The entry's body (empty for header-only types). Consume it before advancing the loop, or it is
   * skipped automatically; reading it after the loop advanced throws a `TypeError`. Chunks are
   * views into the source's chunks (not copies): if the source reuses its buffers, a chunk is valid
   * only until the next step of the iteration.
   */
  body: AsyncIterable<Uint8Array>;
}

type Event = TarHeader | Uint8Array | null; // null: end of the current entry's body

/**
 * Reads a tar archive from a stream, one entry at a time. Input after the end-of-archive marker
 * is read to the end of the source and discarded (so that a digest computed by a stream in front of
 * the reader covers every byte, as docker and containerd do). Leaving the loop early cancels the
 * source.
 *
 * @example List the names in an archive
 * ```ts ignore
 * import { readTar } from "./reader.ts";
 * using file = await Deno.open("image.tar");
 * for await (const { header } of readTar(file.readable)) console.log(header.name);
 * ```
 */
export async function* readTar(
  source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
  options: TarReadOptions = {},
): AsyncGenerator<TarEntry> {
  const queue: Event[] = [];
  let head = 0;
  const parser = new TarParser({
    entry: (h) => void queue.push(h),
    data: (c) => void queue.push(c),
    entryEnd: () => void queue.push(null),
  }, options);
  const iterator = (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  let eof = false;

  /** The next parse event; undefined when the archive is over. */
  const next = async (): Promise<Event | undefined> => {
    while (head === queue.length) {
      queue.length = 0;
      head = 0;
      if (eof) return undefined;
      const r = await iterator.next();
      if (r.done) {
        eof = true;
        parser.end();
      } else {
        parser.push(r.value);
      }
    }
    return queue[head++];
  };

  let generation = 0;
  let inBody = false;
  try {
    while (true) {
      while (inBody) {
        const ev = await next();
        if (ev === null || ev === undefined) inBody = false;
      }
      const ev = await next();
      if (ev === undefined) return;
      const header = ev as TarHeader;
      const mine = ++generation;
      inBody = true;
      const body: AsyncIterable<Uint8Array> = {
        async *[Symbol.asyncIterator]() {
          while (true) {
            if (mine !== generation) {
              throw new TypeError(
                `Body of tar entry ${JSON.stringify(header.name)} read after the loop advanced`,
              );
            }
            if (!inBody) return;
            const ev = await next();
            if (ev === null || ev === undefined) {
              inBody = false;
              return;
            }
            yield ev as Uint8Array;
          }
        },
      };
      yield { header, body };
    }
  } finally {
    if (!eof) await iterator.return?.();
  }
}
