/**
 * A distribution-spec client for one repository at one endpoint (a registry or a mirror):
 * `GET /v2/` (which tells how to authenticate), manifests by tag or digest, and blobs streamed
 * with resumption. Every request is authorized (see `auth.ts`) and retried with backoff on
 * connection errors, timeouts, 5xx and 429 (honouring `Retry-After`); a blob download that breaks
 * off resumes with `Range` from the bytes already delivered.
 *
 * @module
 */
import type { Digest } from "../../digest.ts";
import { isDigest } from "../../digest.ts";
import { DigestMismatchError, LimitError } from "../../errors.ts";
import { MAX_MANIFEST_SIZE } from "../../image/parse.ts";
import { MediaType } from "../../oci/media_types.ts";
import type { Descriptor } from "../../oci/types.ts";
import { type Authenticator, errorDetail } from "./auth.ts";
import type { Endpoint } from "./config.ts";
import { RegistryAuthError, RegistryError } from "./errors.ts";
import { DEFAULT_TIMEOUTS, type Exchange, type HttpTimeouts, readAll, send } from "./http.ts";
import { backoffDelay, parseRetryAfter, sleep } from "./_retry.ts";

/** The Accept list of manifest requests: OCI index and manifest, Docker list and schema 2. */
export const MANIFEST_ACCEPT = [
  MediaType.OciIndex,
  MediaType.DockerManifestList,
  MediaType.OciManifest,
  MediaType.DockerManifest,
].join(", ");

/** A retry berth is about to make (for progress output). */
export interface RetryEvent {
  /** What is retried, e.g. `layer sha256:…` or `manifest latest`. */
  what: string;
  /** Why, one line. */
  reason: string;
  /** How long berth waits first, in ms. */
  delayMs: number;
  /** Which retry this is (1: the first). */
  attempt: number;
  /** True when the wait is what the registry asked for (`Retry-After`). */
  retryAfter: boolean;
  /** For a resumed download: the byte offset it continues from. */
  resumeAt?: number;
}

/** Options of {@linkcode RemoteRepository}. */
export interface RemoteRepositoryOptions {
  /** Authorization state shared by the repositories of one pull. */
  auth: Authenticator;
  /** Prefix of error messages, e.g. `Cannot pull "app:1"`. */
  what: string;
  timeouts?: HttpTimeouts;
  /** Attempts per request (default 5). */
  attempts?: number;
  /** Delay before the first retry (default 500 ms), doubling up to 10 s. */
  backoffMs?: number;
  signal?: AbortSignal;
  onRetry?: (event: RetryEvent) => void;
}

/** A manifest (or index) as the registry served it, its digest verified. */
export interface FetchedManifest {
  bytes: Uint8Array;
  /** sha256 of `bytes`. */
  digest: Digest;
  /** The document's `mediaType`, else the response's `Content-Type`. */
  mediaType: string;
}

const BLOB_CHUNK = 1 << 20;
const ERROR_BODY_MAX = 64 << 10;

/** sha256 of a small byte array (WebCrypto: no `node:` import). */
export async function sha256Digest(bytes: Uint8Array): Promise<Digest> {
  const hash = new Uint8Array(
    await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>),
  );
  return `sha256:${Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** One repository at one endpoint. */
export class RemoteRepository {
  readonly endpoint: Endpoint;
  /** Repository path, e.g. `library/busybox`. */
  readonly path: string;
  readonly #o: RemoteRepositoryOptions;
  readonly #timeouts: HttpTimeouts;
  readonly #attempts: number;
  #pinged: Promise<void> | undefined;

  constructor(endpoint: Endpoint, path: string, options: RemoteRepositoryOptions) {
    this.endpoint = endpoint;
    this.path = path;
    this.#o = options;
    this.#timeouts = options.timeouts ?? DEFAULT_TIMEOUTS;
    this.#attempts = options.attempts ?? 5;
  }

  /** `host/path` as messages name it, e.g. `127.0.0.1:5000/app`. */
  get name(): string {
    return `${this.endpoint.host}/${this.path}`;
  }

  get #scope(): string {
    return `repository:${this.path}:pull`;
  }

  /** `GET /v2/`: learns how the endpoint authenticates (once). */
  ping(): Promise<void> {
    if (this.#o.auth.known(this.endpoint)) return Promise.resolve();
    this.#pinged ??= this.#retrying(`${this.endpoint.host}`, async () => {
      const ex = await send(`${this.endpoint.base}/v2/`, this.#sendOptions(this.endpoint.host));
      const status = ex.response.status;
      await ex.cancel();
      if (status === 200) this.#o.auth.setChallenge(this.endpoint, null);
      else if (status === 401) {
        this.#o.auth.setChallenge(this.endpoint, ex.response.headers.get("www-authenticate"));
      } else this.#throwStatus(ex.response, undefined, `${this.endpoint.host}: GET /v2/`);
    }).catch((e) => {
      this.#pinged = undefined;
      throw e;
    });
    return this.#pinged;
  }

  #sendOptions(what: string, headers?: HeadersInit) {
    return {
      what: `${this.#o.what}: ${what}`,
      timeouts: this.#timeouts,
      ...(headers ? { headers } : {}),
      ...(this.#o.signal ? { signal: this.#o.signal } : {}),
    };
  }

  /** Runs `fn`, retrying temporary failures with backoff (or the registry's `Retry-After`). */
  async #retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1;; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (!(e instanceof RegistryError) || !e.temporary || attempt >= this.#attempts) throw e;
        const delayMs = e.retryAfterMs ??
          backoffDelay(attempt, { baseMs: this.#o.backoffMs ?? 500 });
        this.#o.onRetry?.({
          what,
          reason: e.message.slice(this.#o.what.length + 2),
          delayMs,
          attempt,
          retryAfter: e.retryAfterMs !== undefined,
        });
        await sleep(delayMs, this.#o.signal);
      }
    }
  }

  /**
   * One authorized request (no retries here): a 401 is answered once by re-authenticating; 429
   * and 5xx become temporary errors. Other statuses are returned for the caller to judge.
   */
  async #request(
    sub: string,
    what: string,
    headers: Record<string, string> = {},
  ): Promise<Exchange> {
    await this.ping();
    const url = `${this.endpoint.base}/v2/${this.path}/${sub}`;
    for (let reauth = 0;; reauth++) {
      const authorization = await this.#o.auth.header(
        this.endpoint,
        this.#scope,
        `${this.#o.what}: ${what}`,
      );
      const ex = await send(
        url,
        this.#sendOptions(`${what} from ${this.name}`, {
          ...headers,
          ...(authorization ? { authorization } : {}),
        }),
      );
      const status = ex.response.status;
      if (
        status === 401 && reauth === 0 &&
        await this.#o.auth.unauthorized(this.endpoint, this.#scope, ex.response)
      ) {
        await ex.cancel();
        continue;
      }
      if (status === 401 || status === 403 || status === 429 || status >= 500) {
        const body = await readAll(ex, ERROR_BODY_MAX, () => new Error("large")).catch(() =>
          new Uint8Array()
        );
        this.#throwStatus(ex.response, body, `${what} from ${this.name}`, !!authorization);
      }
      return ex;
    }
  }

  #throwStatus(
    response: Response,
    body: Uint8Array | undefined,
    what: string,
    authorized = false,
  ): never {
    const status = response.status;
    const detail = body ? errorDetail(body) : undefined;
    const tail = `${status} ${response.statusText}`.trim() + (detail ? `: ${detail}` : "");
    const code = body ? errorCode(body) : undefined;
    if (status === 401) {
      throw new RegistryAuthError(
        authorized
          ? `${this.#o.what}: ${what}: unauthorized (${tail}); check the credentials ('berth login ${this.endpoint.host}')`
          : `${this.#o.what}: pull access denied for ${this.name}, repository does not exist or may require 'berth login' (${tail})`,
        { status, ...(code ? { code } : {}) },
      );
    }
    if (status === 403) {
      throw new RegistryAuthError(`${this.#o.what}: ${what}: access denied (${tail})`, {
        status,
        ...(code ? { code } : {}),
      });
    }
    const temporary = status === 429 || status === 408 ||
      (status >= 500 && status !== 501 && status !== 505);
    const retryAfterMs = temporary
      ? parseRetryAfter(response.headers.get("retry-after"))
      : undefined;
    throw new RegistryError(`${this.#o.what}: ${what}: ${tail}`, {
      status,
      temporary,
      ...(code ? { code } : {}),
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }

  /**
   * Fetches a manifest or index by tag or digest. Its digest is computed and checked against
   * `reference` when that is a digest, else against `Docker-Content-Digest` when the registry sent
   * one. Throws `RegistryError` with status 404 when the registry does not have it.
   */
  manifest(reference: string): Promise<FetchedManifest> {
    const label = `manifest ${reference}`;
    return this.#retrying(label, async () => {
      const ex = await this.#request(`manifests/${reference}`, label, { accept: MANIFEST_ACCEPT });
      const { response } = ex;
      if (response.status !== 200) {
        const body = await readAll(ex, ERROR_BODY_MAX, () => new Error("large")).catch(() =>
          undefined
        );
        this.#throwStatus(response, body, `${label} from ${this.name}`);
      }
      const where = `${this.#o.what}: ${label} from ${this.name}`;
      const bytes = await readAll(
        ex,
        MAX_MANIFEST_SIZE,
        (n) =>
          new LimitError(
            `${where} is ${n} bytes or more, more than the limit of ${MAX_MANIFEST_SIZE}`,
          ),
      );
      const digest = await sha256Digest(bytes);
      if (isDigest(reference) && digest !== reference) {
        throw new DigestMismatchError(`${where} does not match its digest (got ${digest})`);
      }
      const header = response.headers.get("docker-content-digest");
      if (!isDigest(reference) && header && isDigest(header) && header !== digest) {
        throw new DigestMismatchError(
          `${where} does not match the Docker-Content-Digest ${header} the registry sent (got ${digest})`,
        );
      }
      let mediaType = (response.headers.get("content-type") ?? "").split(";")[0].trim();
      try {
        const doc = JSON.parse(new TextDecoder().decode(bytes));
        if (typeof doc?.mediaType === "string") mediaType = doc.mediaType;
      } catch { /* parsed (and refused) by the caller */ }
      return { bytes, digest, mediaType };
    });
  }

  /**
   * Streams the blob `descriptor` names, in chunks of up to 1 MiB. Temporary failures are retried;
   * a body that breaks off (reset, truncated, stalled) resumes with `Range: bytes=N-` from the
   * bytes already yielded, so a consumer hashing the stream covers every byte exactly once. Size
   * and digest are for the consumer to check (an `IngestSession.stage`).
   */
  async *blob(
    descriptor: Descriptor,
    options: { label: string; onBytes?: (total: number) => void },
  ): AsyncGenerator<Uint8Array> {
    const { label } = options;
    const size = descriptor.size;
    let offset = 0;
    let failures = 0;
    let resumes = 0;
    let progressAtFailure = 0;
    let useRange = true;
    while (true) {
      const pending: Uint8Array[] = [];
      let pendingBytes = 0;
      let failure: unknown;
      let inBody = false;
      const flush = (): Uint8Array => {
        const out = pending.length === 1 ? pending[0] : concat(pending, pendingBytes);
        pending.length = 0;
        pendingBytes = 0;
        return out;
      };
      try {
        const ex = await this.#request(
          `blobs/${descriptor.digest}`,
          label,
          offset > 0 && useRange ? { range: `bytes=${offset}-` } : {},
        );
        const { response } = ex;
        let skip = 0;
        if (response.status === 206 && offset > 0) {
          const start = /^bytes (\d+)-/.exec(response.headers.get("content-range") ?? "")?.[1];
          if (start === undefined || Number(start) !== offset) {
            // A range we did not ask for: take the whole blob again, skipping what we have.
            await ex.cancel();
            useRange = false;
            throw new RegistryError(
              `${this.#o.what}: ${label} from ${this.name}: registry answered range ${
                response.headers.get("content-range")
              } for bytes=${offset}-`,
              { temporary: true },
            );
          }
        } else if (response.status === 200) {
          skip = offset; // no Range support: skip what was already delivered
        } else {
          const body = await readAll(ex, ERROR_BODY_MAX, () => new Error("large")).catch(() =>
            undefined
          );
          this.#throwStatus(response, body, `${label} from ${this.name}`);
        }
        inBody = true;
        for await (let chunk of ex.body()) {
          if (skip > 0) {
            if (chunk.byteLength <= skip) {
              skip -= chunk.byteLength;
              continue;
            }
            chunk = chunk.subarray(skip);
            skip = 0;
          }
          offset += chunk.byteLength;
          pending.push(chunk);
          pendingBytes += chunk.byteLength;
          if (pendingBytes >= BLOB_CHUNK) {
            yield flush();
            options.onBytes?.(offset);
          }
          if (offset > size) break; // the consumer refuses it; stop reading
        }
        if (offset < size) {
          throw new RegistryError(
            `${this.#o.what}: ${label} from ${this.name}: the body ended after ${offset} of ${size} bytes`,
            { temporary: true },
          );
        }
      } catch (e) {
        failure = e;
      }
      if (pendingBytes > 0) {
        yield flush();
        options.onBytes?.(offset);
      }
      // Every byte arrived and then the connection broke (a Content-Length larger than the
      // blob): done; the consumer checks the digest.
      if (failure === undefined || (inBody && offset === size)) return;
      const e = failure;
      if (!(e instanceof RegistryError) || !e.temporary) throw e;
      // A failure after progress starts the count again; resumes are bounded all the same.
      if (offset > progressAtFailure) failures = 0;
      progressAtFailure = offset;
      failures++;
      resumes++;
      if (failures >= this.#attempts || resumes > this.#attempts * 4) throw e;
      const delayMs = e.retryAfterMs ??
        backoffDelay(failures, { baseMs: this.#o.backoffMs ?? 500 });
      this.#o.onRetry?.({
        what: label,
        reason: e.message.slice(this.#o.what.length + 2),
        delayMs,
        attempt: failures,
        retryAfter: e.retryAfterMs !== undefined,
        ...(offset > 0 ? { resumeAt: offset } : {}),
      });
      await sleep(delayMs, this.#o.signal);
    }
  }
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

function errorCode(body: Uint8Array): string | undefined {
  try {
    const doc = JSON.parse(new TextDecoder().decode(body.subarray(0, ERROR_BODY_MAX)));
    const code = doc?.errors?.[0]?.code;
    return typeof code === "string" ? code : undefined;
  } catch {
    return undefined;
  }
}
