/**
 * Domain errors. Bad arguments throw `TypeError`/`RangeError`; conditions of the store, images and
 * containers throw a `BerthError` subclass. The CLI maps every error to one line and an exit code.
 *
 * @module
 */

/**
 * Base class of berth's domain errors. `exitCode` is what the CLI exits with (docker's 125).
 *
 * @example
 * ```ts
 * import { BerthError, NotFoundError, Store } from "@berth/berth";
 * const root = await Deno.makeTempDir();
 * const store = await Store.open({ root });
 * try {
 *   await store.inspect("nope");
 * } catch (e) {
 *   console.log(e instanceof NotFoundError, e instanceof BerthError); // true true
 * }
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export class BerthError extends Error {
  /** Exit status the CLI uses for this error. */
  readonly exitCode: number = 125;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * A named thing (image, blob, container) does not exist.
 *
 * @example
 * ```ts
 * import { BerthError, NotFoundError } from "@berth/berth";
 * console.log(new NotFoundError("x") instanceof BerthError); // true
 * ```
 */
export class NotFoundError extends BerthError {}

/**
 * Input (an archive, a manifest, a layer) is malformed, hostile or does not verify.
 *
 * @example
 * ```ts
 * import { BerthError, InvalidInputError } from "@berth/berth";
 * console.log(new InvalidInputError("x") instanceof BerthError); // true
 * ```
 */
export class InvalidInputError extends BerthError {}

/**
 * Content does not match the digest or size that names it.
 *
 * @example
 * ```ts
 * import { BerthError, DigestMismatchError } from "@berth/berth";
 * console.log(new DigestMismatchError("x") instanceof BerthError); // true
 * ```
 */
export class DigestMismatchError extends InvalidInputError {}

/**
 * The operation conflicts with the current state (image in use, name taken).
 *
 * @example
 * ```ts
 * import { BerthError, ConflictError } from "@berth/berth";
 * console.log(new ConflictError("x") instanceof BerthError); // true
 * ```
 */
export class ConflictError extends BerthError {}

/**
 * A feature or format berth does not handle (schema1 manifests, a foreign platform).
 *
 * @example
 * ```ts
 * import { BerthError, UnsupportedError } from "@berth/berth";
 * console.log(new UnsupportedError("x") instanceof BerthError); // true
 * ```
 */
export class UnsupportedError extends BerthError {}

/**
 * A limit was hit: JSON too large, a decompression bomb, a layer bigger than declared.
 *
 * @example
 * ```ts
 * import { BerthError, LimitError } from "@berth/berth";
 * console.log(new LimitError("x") instanceof BerthError); // true
 * ```
 */
export class LimitError extends InvalidInputError {}

/**
 * Returns `e` with `what` in front of its message when it is an `InvalidInputError` that does not
 * name it yet (a tar or codec error, raised where the file name is not known).
 */
export function inContext(e: unknown, what: string): unknown {
  if (!(e instanceof InvalidInputError) || e.message.startsWith(what)) return e;
  const Ctor = e.constructor as new (message: string, options?: ErrorOptions) => InvalidInputError;
  return new Ctor(`${what}: ${e.message}`, { cause: e });
}
