/**
 * Content digests (`sha256:<64 hex>`), as in the OCI image spec's descriptor `digest` field.
 *
 * @module
 */

/**
 * A validated `sha256:<64 lowercase hex>` string.
 *
 * @example
 * ```ts
 * import { type Digest, parseDigest } from "@berth/berth";
 * const d: Digest = parseDigest("sha256:" + "ab".repeat(32));
 * console.log(d.length); // 71
 * ```
 */
export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/**
 * True when `value` is a well-formed sha256 digest.
 *
 * @example
 * ```ts
 * import { isDigest } from "@berth/berth";
 * console.log(isDigest("sha256:abc")); // false
 * ```
 */
export function isDigest(value: unknown): value is Digest {
  return typeof value === "string" && DIGEST_RE.test(value);
}

/**
 * Returns `value` as a {@linkcode Digest}, or throws a `TypeError` naming `what`.
 * Only sha256 is accepted: it is what every registry and tool writes.
 *
 * @example
 * ```ts
 * import { parseDigest } from "@berth/berth";
 * try {
 *   parseDigest("md5:00", "layer digest");
 * } catch (e) {
 *   console.log((e as Error).message); // Unsupported layer digest algorithm "md5" in "md5:00"
 * }
 * ```
 */
export function parseDigest(value: unknown, what = "digest"): Digest {
  if (isDigest(value)) return value;
  const shown = typeof value === "string" ? JSON.stringify(value.slice(0, 80)) : String(value);
  if (typeof value === "string" && /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:/.test(value)) {
    const algo = value.slice(0, value.indexOf(":"));
    if (algo !== "sha256") {
      throw new TypeError(`Unsupported ${what} algorithm "${algo}" in ${shown}`);
    }
  }
  throw new TypeError(`Invalid ${what} ${shown}: expected sha256:<64 hex digits>`);
}

/** The 64 hex digits of a digest. */
export function digestHex(digest: Digest): string {
  return digest.slice(7);
}

/** The short form a user sees: the first 12 hex digits. */
export function shortDigest(digest: Digest): string {
  return digest.slice(7, 19);
}
