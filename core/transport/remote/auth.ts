/**
 * Registry authentication: Basic, and the Docker token protocol (`WWW-Authenticate: Bearer
 * realm=…,service=…,scope=…` → `GET realm?service=…&scope=…`, with Basic credentials when there
 * are some, or `POST` with an OAuth2 refresh token; the answer's `token` or `access_token` is
 * cached per registry (scheme, host and port), realm, service, scope and user until `expires_in`
 * (default 60 s) runs out, and dropped when the registry answers 401 to it). A token is only ever
 * sent to the registry it was asked for, even when another one names the same realm.
 *
 * @module
 */
import type { CredentialSource, RegistryCredentials } from "../../auth/types.ts";
import { type Challenge, parseChallenges } from "./_challenge.ts";
import { RegistryAuthError, RegistryError } from "./errors.ts";
import { DEFAULT_TIMEOUTS, type HttpTimeouts, readAll, send } from "./http.ts";
import type { Endpoint } from "./config.ts";

interface CachedToken {
  token: string;
  /** `performance.now()`-free wall clock ms after which the token is not used. */
  expires: number;
}

/** Tokens shared by every pull of this process, keyed by registry, realm, service, scope, user. */
const tokenCache = new Map<string, CachedToken>();

/** Forgets every cached token (tests, `logout`). */
export function clearTokenCache(): void {
  tokenCache.clear();
}

/** Options of {@linkcode Authenticator}. */
export interface AuthenticatorOptions {
  /** Where credentials come from; none: anonymous. */
  credentials?: CredentialSource;
  timeouts?: HttpTimeouts;
  signal?: AbortSignal;
}

const MAX_TOKEN_RESPONSE = 1 << 20;

/**
 * The `Authorization` value of Basic credentials (UTF-8, as docker sends them).
 *
 * @example
 * ```ts ignore
 * basicAuthorization("me", "pw"); // "Basic bWU6cHc="
 * ```
 */
export function basicAuthorization(username: string, password: string): string {
  const bytes = new TextEncoder().encode(`${username}:${password}`);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return `Basic ${btoa(bin)}`;
}

/** Picks the challenge berth answers: Bearer before Basic; undefined when neither is offered. */
export function pickChallenge(header: string | null): Challenge | undefined {
  if (!header) return undefined;
  const all = parseChallenges(header);
  return all.find((c) => c.scheme === "bearer" && c.params.realm) ??
    all.find((c) => c.scheme === "basic");
}

/** Authorization of the requests of one pull (or login), per endpoint. */
export class Authenticator {
  readonly #options: AuthenticatorOptions;
  /** Endpoint base → the challenge its `/v2/` answered with (null: no auth needed). */
  readonly #challenges = new Map<string, Challenge | null>();
  readonly #credentials = new Map<string, Promise<RegistryCredentials | undefined>>();

  constructor(options: AuthenticatorOptions = {}) {
    this.#options = options;
  }

  /** True once the endpoint's challenge is known (its `/v2/` was asked). */
  known(endpoint: Endpoint): boolean {
    return this.#challenges.has(endpoint.base);
  }

  /** Records the challenge of an endpoint from a 401's `WWW-Authenticate` (null: none needed). */
  setChallenge(endpoint: Endpoint, header: string | null | undefined): void {
    this.#challenges.set(endpoint.base, header ? pickChallenge(header) ?? null : null);
  }

  /** The credentials for the endpoint's host (looked up once). */
  credentials(endpoint: Endpoint): Promise<RegistryCredentials | undefined> {
    let p = this.#credentials.get(endpoint.host);
    if (!p) {
      p = this.#options.credentials?.(endpoint.host) ?? Promise.resolve(undefined);
      this.#credentials.set(endpoint.host, p);
    }
    return p;
  }

  /** True when credentials are known for the endpoint. */
  async hasCredentials(endpoint: Endpoint): Promise<boolean> {
    const c = await this.credentials(endpoint);
    return !!(c && (c.username || c.identityToken || c.registryToken));
  }

  /** The `Authorization` value for a request to `endpoint` needing `scope`, if any. */
  async header(
    endpoint: Endpoint,
    scope: string | undefined,
    what: string,
  ): Promise<string | undefined> {
    const challenge = this.#challenges.get(endpoint.base);
    if (!challenge) return undefined;
    const creds = await this.credentials(endpoint);
    if (challenge.scheme === "basic") {
      return creds?.username !== undefined
        ? basicAuthorization(creds.username, creds.password ?? "")
        : undefined;
    }
    if (creds?.registryToken) return `Bearer ${creds.registryToken}`;
    return `Bearer ${await this.#token(endpoint, challenge, scope, creds, what)}`;
  }

  /**
   * Called on a 401: drops the token that was used and records the new challenge. Resolves true
   * when asking again may succeed (a token was dropped, or the challenge changed).
   */
  async unauthorized(
    endpoint: Endpoint,
    scope: string | undefined,
    response: Response,
  ): Promise<boolean> {
    const before = this.#challenges.get(endpoint.base);
    const next = pickChallenge(response.headers.get("www-authenticate"));
    if (next) this.#challenges.set(endpoint.base, next);
    if (next?.scheme === "bearer") {
      const creds = await this.credentials(endpoint);
      const key = this.#cacheKey(endpoint, next, scope, creds);
      const had = tokenCache.delete(key) ||
        (before?.scheme === "bearer" &&
          tokenCache.delete(this.#cacheKey(endpoint, before, scope, creds)));
      return had || before?.scheme !== "bearer";
    }
    return before === undefined || before === null || before.scheme !== next?.scheme;
  }

  /** The token cache key: the registry the token is sent to (origin), realm, service, scope, user. */
  #cacheKey(
    endpoint: Endpoint,
    ch: Challenge,
    scope: string | undefined,
    creds: RegistryCredentials | undefined,
  ): string {
    const who = creds?.identityToken
      ? `oauth:${creds.identityToken.slice(0, 12)}`
      : creds?.username ?? "";
    const registry = new URL(endpoint.base).origin;
    return [registry, ch.params.realm, ch.params.service ?? "", scope ?? "", who].join("\n");
  }

  async #token(
    endpoint: Endpoint,
    challenge: Challenge,
    scope: string | undefined,
    creds: RegistryCredentials | undefined,
    what: string,
  ): Promise<string> {
    const key = this.#cacheKey(endpoint, challenge, scope, creds);
    const cached = tokenCache.get(key);
    if (cached && cached.expires > Date.now()) return cached.token;
    tokenCache.delete(key);
    const { token, expiresIn } = await fetchToken(challenge, scope, creds, {
      what,
      host: endpoint.host,
      timeouts: this.#options.timeouts ?? DEFAULT_TIMEOUTS,
      ...(this.#options.signal ? { signal: this.#options.signal } : {}),
    });
    // A margin of a tenth (at most 30 s) so that a token does not expire on its way.
    const lifeMs = expiresIn * 1000;
    tokenCache.set(key, { token, expires: Date.now() + lifeMs - Math.min(lifeMs / 10, 30_000) });
    return token;
  }
}

/** Options of {@linkcode fetchToken}. */
export interface FetchTokenOptions {
  /** Prefix of errors. */
  what: string;
  /** The registry the token is for (messages). */
  host: string;
  timeouts?: HttpTimeouts;
  signal?: AbortSignal;
}

/**
 * Asks the token service of a Bearer challenge for a token with `scope`. Throws
 * `RegistryAuthError` when it refuses the credentials.
 */
export async function fetchToken(
  challenge: Challenge,
  scope: string | undefined,
  creds: RegistryCredentials | undefined,
  options: FetchTokenOptions,
): Promise<{ token: string; expiresIn: number }> {
  const { what, host } = options;
  let realm: URL;
  try {
    realm = new URL(challenge.params.realm);
    if (realm.protocol !== "http:" && realm.protocol !== "https:") throw new TypeError();
  } catch {
    throw new RegistryError(
      `${what}: ${host} names an invalid token realm "${challenge.params.realm}"`,
    );
  }
  const service = challenge.params.service;
  let exchange;
  const common = {
    what: `${what}: token service ${realm.host}`,
    ...(options.timeouts ? { timeouts: options.timeouts } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
  if (creds?.identityToken) {
    const form = new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: creds.identityToken,
      client_id: "berth",
      ...(service ? { service } : {}),
      ...(scope ? { scope } : {}),
    });
    exchange = await send(realm, {
      ...common,
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: form.toString(),
    });
  } else {
    const url = new URL(realm);
    if (service) url.searchParams.set("service", service);
    if (scope) url.searchParams.set("scope", scope);
    if (creds?.username !== undefined) {
      url.searchParams.set("account", creds.username);
    }
    exchange = await send(url, {
      ...common,
      headers: creds?.username !== undefined
        ? { authorization: basicAuthorization(creds.username, creds.password ?? "") }
        : {},
    });
  }
  const status = exchange.response.status;
  const tooLarge = () =>
    new RegistryError(`${what}: the token service ${realm.host} answered with more than 1 MiB`);
  const bytes = await readAll(exchange, MAX_TOKEN_RESPONSE, tooLarge);
  if (status === 401 || status === 403) {
    const detail = errorDetail(bytes);
    throw new RegistryAuthError(
      `${what}: ${host}: ${
        creds
          ? "unauthorized: incorrect username or password"
          : "unauthorized: authentication required"
      } (token service ${realm.host} answered ${status}${detail ? `: ${detail}` : ""})`,
      { status },
    );
  }
  if (status !== 200) {
    throw new RegistryError(
      `${what}: the token service ${realm.host} answered ${status} ${exchange.response.statusText}`
        .trimEnd(),
      { status, temporary: status === 429 || status >= 500 },
    );
  }
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new RegistryError(
      `${what}: the token service ${realm.host} answered with malformed JSON`,
    );
  }
  const token = typeof doc.token === "string" && doc.token
    ? doc.token
    : typeof doc.access_token === "string" && doc.access_token
    ? doc.access_token
    : undefined;
  if (!token) {
    throw new RegistryError(`${what}: the token service ${realm.host} answered without a token`);
  }
  const expiresIn = typeof doc.expires_in === "number" && doc.expires_in > 0 ? doc.expires_in : 60;
  return { token, expiresIn };
}

/** `code: message` of a distribution-spec error body, or of a token service's `details`. */
export function errorDetail(bytes: Uint8Array): string | undefined {
  try {
    const doc = JSON.parse(new TextDecoder().decode(bytes.subarray(0, 64 << 10)));
    const e = Array.isArray(doc?.errors) ? doc.errors[0] : undefined;
    if (e && typeof e === "object") {
      const msg = typeof e.message === "string" ? e.message : "";
      const code = typeof e.code === "string" ? e.code.toLowerCase().replace(/_/g, " ") : "";
      if (code && msg && code !== msg.toLowerCase()) return `${code}: ${msg}`;
      return msg || code || undefined;
    }
    if (typeof doc?.details === "string") return doc.details;
    if (typeof doc?.error === "string") return doc.error;
  } catch { /* not JSON */ }
  const text = new TextDecoder().decode(bytes.subarray(0, 200)).trim().split("\n")[0];
  return text && !text.startsWith("<") ? text : undefined;
}
