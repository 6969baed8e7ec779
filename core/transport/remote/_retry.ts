/**
 * Retry timing: `Retry-After` (RFC 9110 §10.2.3: seconds or an HTTP date) and exponential backoff
 * with jitter.
 *
 * @module
 */

/** Longest wait berth accepts from a `Retry-After` header. */
export const MAX_RETRY_AFTER_MS = 5 * 60_000;

/**
 * Milliseconds to wait for a `Retry-After` value (`"120"` or `"Wed, 21 Oct 2015 07:28:00 GMT"`),
 * or `undefined` when it is absent or unreadable. A date in the past gives 0; the result is capped
 * at {@linkcode MAX_RETRY_AFTER_MS}.
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now = Date.now(),
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (v === "") return undefined;
  let ms: number;
  if (/^\d+$/.test(v)) ms = Number(v) * 1000;
  else {
    const t = Date.parse(v);
    if (Number.isNaN(t) || !/[a-zA-Z]/.test(v)) return undefined;
    ms = Math.max(0, t - now);
  }
  return Math.min(ms, MAX_RETRY_AFTER_MS);
}

/** Options of {@linkcode backoffDelay}. */
export interface BackoffOptions {
  /** Delay before the first retry; default 500 ms. */
  baseMs?: number;
  /** Largest delay; default 10 s. */
  maxMs?: number;
  /** Random source in [0, 1) for the jitter; default `Math.random`. */
  random?: () => number;
}

/**
 * Delay before retry number `attempt` (1 for the first retry): `base × 2^(attempt-1)`, capped,
 * with ±20 % jitter so that parallel downloads do not retry in lock step.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  if (!Number.isInteger(attempt) || attempt < 1) {
    throw new RangeError(`attempt must be a positive integer, got ${attempt}`);
  }
  const base = options.baseMs ?? 500;
  const max = options.maxMs ?? 10_000;
  const random = options.random ?? Math.random;
  const raw = Math.min(max, base * 2 ** (attempt - 1));
  return Math.round(raw * (0.8 + 0.4 * random()));
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
