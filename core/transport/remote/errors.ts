/**
 * Errors of the registry client.
 *
 * @module
 */
import { BerthError } from "../../errors.ts";

/**
 * A registry answered with an error, or could not be reached (refused, reset, timed out). The
 * message is one line that names the registry, the repository and what was asked for.
 *
 * @example
 * ```ts
 * import { BerthError, RegistryError } from "@berth/berth";
 * const e = new RegistryError("127.0.0.1:5000/app: toomanyrequests", { status: 429 });
 * console.log(e instanceof BerthError, e.status); // true 429
 * ```
 */
export class RegistryError extends BerthError {
  /** HTTP status, when the registry answered. */
  readonly status?: number;
  /** The distribution-spec error code (`MANIFEST_UNKNOWN`, `UNAUTHORIZED`, …), when given. */
  readonly code?: string;
  /** True when trying again may help (connection errors, timeouts, 5xx, 429). */
  readonly temporary: boolean;
  /** How long the registry asked to wait (`Retry-After`), in ms. */
  readonly retryAfterMs?: number;

  constructor(
    message: string,
    options: ErrorOptions & {
      status?: number;
      code?: string;
      temporary?: boolean;
      retryAfterMs?: number;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    if (options.status !== undefined) this.status = options.status;
    if (options.code !== undefined) this.code = options.code;
    this.temporary = options.temporary ?? false;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * The registry refused the credentials (401 after authenticating, or the token service said so)
 * or denied access (403).
 *
 * @example
 * ```ts
 * import { RegistryAuthError, RegistryError } from "@berth/berth";
 * console.log(new RegistryAuthError("denied", { status: 401 }) instanceof RegistryError); // true
 * ```
 */
export class RegistryAuthError extends RegistryError {}
