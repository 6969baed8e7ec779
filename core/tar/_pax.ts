/**
 * PAX extended header records (`"%d %s=%s\n"`): parsing and formatting. Private to `core/tar`.
 *
 * @module
 */

import { InvalidInputError } from "../errors.ts";
import { decodeBytes, encodeUtf8 } from "./_fields.ts";

/**
 * Parses the records of a PAX header body into key -> raw value bytes (later records win). Values
 * stay bytes because `SCHILY.xattr.*` values are binary. Trailing NUL padding is tolerated.
 * `where` names the header in errors.
 */
export function parsePax(buf: Uint8Array, where: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  let pos = 0;
  const n = buf.length;
  while (pos < n) {
    if (buf[pos] === 0) {
      for (let i = pos; i < n; i++) {
        if (buf[i] !== 0) throw bad(where, pos);
      }
      break;
    }
    // decimal length, including itself, the space, "key=value" and the newline
    let len = 0;
    let i = pos;
    while (i < n && buf[i] >= 0x30 && buf[i] <= 0x39 && i - pos < 16) {
      len = len * 10 + buf[i] - 0x30;
      i++;
    }
    if (i === pos || i >= n || buf[i] !== 0x20 || len <= i - pos + 1 || pos + len > n) {
      throw bad(where, pos);
    }
    const end = pos + len - 1; // the newline
    if (buf[end] !== 0x0a) throw bad(where, pos);
    const keyStart = i + 1;
    let eq = keyStart;
    while (eq < end && buf[eq] !== 0x3d) eq++;
    if (eq === end || eq === keyStart) throw bad(where, pos);
    out.set(decodeBytes(buf, keyStart, eq), buf.slice(eq + 1, end));
    pos += len;
  }
  return out;
}

function bad(where: string, pos: number): InvalidInputError {
  return new InvalidInputError(`Invalid ${where}: malformed record at byte ${pos}`);
}

/** Formats records (in the given order) as a PAX header body. */
export function formatPax(records: ReadonlyArray<readonly [string, Uint8Array]>): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const [key, value] of records) {
    const k = encodeUtf8(key);
    const base = k.length + value.length + 3; // " " "=" "\n"
    let digits = String(base).length;
    if (String(base + digits).length > digits) digits++;
    const len = base + digits;
    const head = encodeUtf8(`${len} `);
    const rec = new Uint8Array(len);
    rec.set(head, 0);
    rec.set(k, head.length);
    rec[head.length + k.length] = 0x3d;
    rec.set(value, head.length + k.length + 1);
    rec[len - 1] = 0x0a;
    parts.push(rec);
    total += len;
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
