/**
 * A tiny Docker token server (the "Bearer" half of the distribution auth protocol) for tests.
 *
 * {@linkcode startTokenIssuer} makes a P-256 key and a self-signed certificate with `openssl` in a
 * temp dir (never committed), serves `GET /token` and `POST /token` on 127.0.0.1 with
 * `Deno.serve`, and signs ES256 JWTs with WebCrypto. The header carries a libtrust `kid` (what
 * distribution 2.8 looks the key up by in its `rootcertbundle`), so a registry configured with
 * {@linkcode TokenIssuer.certPath} runs its real token verification on every token.
 *
 * Knobs for client tests live on the returned object and may be changed at any time:
 * {@linkcode TokenIssuer.expiresIn} (short values for refresh tests), {@linkcode TokenIssuer.refuse}
 * (401/403 for everything), {@linkcode TokenIssuer.spoilNext} (the next tokens are rejected by the
 * registry), {@linkcode TokenIssuer.anonymousPull} and {@linkcode TokenIssuer.requests} (to assert
 * token caching).
 *
 * @example
 * ```ts ignore
 * await using issuer = await startTokenIssuer({ users: { alice: "secret" } });
 * const res = await fetch(`${issuer.realm}?service=${issuer.service}&scope=repository:a/b:pull`);
 * const { token } = await res.json();
 * ```
 *
 * @module
 */

import { createHash, randomUUID } from "node:crypto";

/** A resource and the actions granted on it: one entry of the JWT `access` claim. */
export interface ResourceActions {
  /** `repository`, `registry`, … */
  type: string;
  /** Repository name (`library/busybox`), or `catalog` for type `registry`. */
  name: string;
  /** `pull`, `push`, `delete`, `*`. */
  actions: string[];
}

/** One request the issuer answered. */
export interface TokenRequest {
  /** `GET` or `POST`. */
  method: string;
  /** The authenticated user; undefined when anonymous (or when the credentials were wrong). */
  user?: string;
  /** Whether the request carried credentials (Basic header or POST form / refresh token). */
  withCredentials: boolean;
  /** `service` parameter. */
  service?: string;
  /** Every `scope` parameter, as sent. */
  scopes: string[];
  /** What the issued token grants (empty when refused). */
  granted: ResourceActions[];
  /** HTTP status answered. */
  status: number;
  /** The raw `Authorization` header, if any. */
  authorization?: string;
  /** `Date.now()` when answered. */
  at: number;
}

/** Decides what a user gets; the default is in {@linkcode TokenIssuerOptions.grant}. */
export type GrantFunction = (
  user: string | undefined,
  requested: ResourceActions,
) => string[];

/** Options of {@linkcode startTokenIssuer}. */
export interface TokenIssuerOptions {
  /** `username → password` accepted as Basic credentials or by the OAuth2 password grant. */
  users?: Record<string, string>;
  /**
   * Repositories anonymous users may pull (exact names, or `"*"` for all); default none. Also
   * settable later through {@linkcode TokenIssuer.anonymousPull}.
   */
  anonymousPull?: Iterable<string>;
  /** The `service` (JWT `aud`) the registry expects; default `berth-test-registry`. */
  service?: string;
  /** The `iss` claim; default `berth-test-issuer`. */
  issuer?: string;
  /** Lifetime of tokens in seconds (`expires_in` and JWT `exp - iat`); default 300. */
  expiresIn?: number;
  /**
   * What a request gets; default: an authenticated user gets every requested `pull`/`push`/
   * `delete`/`*` on any repository and `*` on `registry:catalog`; an anonymous one gets `pull` on
   * the repositories of `anonymousPull` only.
   */
  grant?: GrantFunction;
  /** Directory for the key and certificate (default: a new temp dir, removed on dispose). */
  dir?: string;
}

/** A running token issuer. */
export interface TokenIssuer extends AsyncDisposable {
  /** `http://127.0.0.1:PORT/token`: the `realm` to configure in the registry. */
  realm: string;
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** `service` / `aud`. */
  service: string;
  /** `iss`. */
  issuer: string;
  /** PEM certificate of the signing key (the registry's `rootcertbundle`). */
  certPath: string;
  /** PEM (PKCS#8) private key. */
  keyPath: string;
  /** libtrust key ID of the signing key (JWT header `kid`). */
  kid: string;
  /** Users and passwords; may be changed. */
  users: Record<string, string>;
  /** Repositories anonymous users may pull (`"*"`: all); may be changed. */
  anonymousPull: Set<string>;
  /** Token lifetime in seconds, for tokens issued from now on; may be changed. */
  expiresIn: number;
  /** Answer every request with this status (401 or 403) instead of a token; `false` to serve. */
  refuse: false | 401 | 403;
  /**
   * The next N tokens are issued normally but the registry rejects them: `untrusted` (signed by a
   * key the registry does not know), `expired` (exp two minutes ago, beyond distribution's 60 s
   * leeway) or `audience` (wrong `aud`). Decremented per token.
   */
  spoilNext: { count: number; kind: "untrusted" | "expired" | "audience" };
  /** The grant policy; may be replaced. */
  grant: GrantFunction;
  /** Every request answered, in order. */
  requests: TokenRequest[];
  /** Number of requests answered (`requests.length`). */
  readonly count: number;
  /** Refresh tokens handed out by `POST /token` with `access_type=offline`, → user. */
  refreshTokens: Map<string, string>;
  /** Issues a refresh token for `user` (an `identitytoken` for docker's config.json). */
  issueRefreshToken(user: string): string;
  /** Signs a token for `user` granting `access` (for tests that build requests by hand). */
  sign(user: string | undefined, access: ResourceActions[], lifetime?: number): Promise<string>;
  /** Clears {@linkcode TokenIssuer.requests}. */
  reset(): void;
  /** Stops the server and removes the temp dir it made. */
  stop(): Promise<void>;
}

const enc = new TextEncoder();

function b64url(data: Uint8Array | string): string {
  const bytes = typeof data === "string" ? enc.encode(data) : data;
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * The libtrust key ID distribution 2.8 indexes trusted keys by: SHA-256 of the DER
 * SubjectPublicKeyInfo, first 30 bytes, base32 (RFC 4648, no padding), groups of 4 joined by ':'.
 */
export function libtrustKeyId(spkiDer: Uint8Array): string {
  const digest = createHash("sha256").update(spkiDer).digest().subarray(0, 30);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out.match(/.{1,4}/g)!.join(":");
}

function pemBody(pem: string): Uint8Array<ArrayBuffer> {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} exited ${out.code}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

interface SigningKey {
  key: CryptoKey;
  kid: string;
}

async function publicSpki(privateKey: CryptoKey): Promise<Uint8Array> {
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  const pub = await crypto.subtle.importKey(
    "jwk",
    { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, ext: true },
    { name: "ECDSA", namedCurve: "P-256" },
    true,
    ["verify"],
  );
  return new Uint8Array(await crypto.subtle.exportKey("spki", pub));
}

/** Parses `type:name:actions`; the name may hold ':' (a registry host with a port). */
function parseScope(scope: string): ResourceActions | undefined {
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  if (first < 0 || last === first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope.slice(last + 1).split(",").filter((a) => a !== ""),
  };
}

/** Starts a token issuer on 127.0.0.1 (a free port chosen by the kernel). */
export async function startTokenIssuer(options: TokenIssuerOptions = {}): Promise<TokenIssuer> {
  const ownDir = options.dir === undefined;
  const dir = options.dir ??
    await Deno.makeTempDir({ dir: "/var/tmp", prefix: "berth-token-issuer-" });
  const keyPath = `${dir}/token-key.pem`;
  const certPath = `${dir}/token-cert.pem`;
  const issuerName = options.issuer ?? "berth-test-issuer";
  try {
    await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyPath,
      "-out",
      certPath,
      "-days",
      "2",
      "-subj",
      `/CN=${issuerName}`,
    ]);
  } catch (e) {
    if (ownDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
  const key = await crypto.subtle.importKey(
    "pkcs8",
    pemBody(await Deno.readTextFile(keyPath)),
    { name: "ECDSA", namedCurve: "P-256" },
    true,
    ["sign"],
  );
  const trusted: SigningKey = { key, kid: libtrustKeyId(await publicSpki(key)) };
  let untrusted: SigningKey | undefined;
  const untrustedKey = async () => {
    if (!untrusted) {
      const pair = await crypto.subtle.generateKey(
        { name: "ECDSA", namedCurve: "P-256" },
        true,
        ["sign", "verify"],
      );
      const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey));
      untrusted = { key: pair.privateKey, kid: libtrustKeyId(spki) };
    }
    return untrusted;
  };

  const service = options.service ?? "berth-test-registry";
  const defaultGrant: GrantFunction = (user, req) => {
    if (req.type === "registry") return user !== undefined && req.name === "catalog" ? ["*"] : [];
    if (req.type !== "repository") return [];
    if (user !== undefined) {
      return req.actions.filter((a) => ["pull", "push", "delete", "*"].includes(a));
    }
    const anon = self.anonymousPull.has("*") || self.anonymousPull.has(req.name);
    return anon ? req.actions.filter((a) => a === "pull") : [];
  };

  async function signWith(
    signer: SigningKey,
    claims: Record<string, unknown>,
  ): Promise<string> {
    const header = b64url(JSON.stringify({ typ: "JWT", alg: "ES256", kid: signer.kid }));
    const payload = b64url(JSON.stringify(claims));
    const input = `${header}.${payload}`;
    // WebCrypto ECDSA signatures are r || s (IEEE P1363), the JWS ES256 encoding.
    const sig = await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-256" },
      signer.key,
      enc.encode(input),
    );
    return `${input}.${b64url(new Uint8Array(sig))}`;
  }

  async function makeToken(
    user: string | undefined,
    access: ResourceActions[],
    lifetime: number,
    spoil?: "untrusted" | "expired" | "audience",
  ): Promise<{ token: string; issuedAt: number }> {
    const now = Math.floor(Date.now() / 1000);
    const iat = spoil === "expired" ? now - 600 : now;
    const exp = spoil === "expired" ? now - 120 : now + lifetime;
    const claims = {
      iss: issuerName,
      sub: user ?? "",
      aud: spoil === "audience" ? "some-other-service" : service,
      exp,
      nbf: iat - 1,
      iat,
      jti: randomUUID(),
      access,
    };
    const signer = spoil === "untrusted" ? await untrustedKey() : trusted;
    return { token: await signWith(signer, claims), issuedAt: iat };
  }

  const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json", ...headers },
    });

  function basicUser(header: string | null): { user?: string; bad: boolean; sent: boolean } {
    if (!header || !/^basic /i.test(header)) return { bad: false, sent: false };
    let decoded: string;
    try {
      decoded = atob(header.slice(6).trim());
    } catch {
      return { bad: true, sent: true };
    }
    const colon = decoded.indexOf(":");
    const name = colon < 0 ? decoded : decoded.slice(0, colon);
    const pass = colon < 0 ? "" : decoded.slice(colon + 1);
    if (Object.hasOwn(self.users, name) && self.users[name] === pass) {
      return { user: name, bad: false, sent: true };
    }
    return { bad: true, sent: true };
  }

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const record: TokenRequest = {
      method: req.method,
      withCredentials: false,
      scopes: [],
      granted: [],
      status: 0,
      authorization: req.headers.get("authorization") ?? undefined,
      at: 0,
    };
    const done = (res: Response) => {
      record.status = res.status;
      record.at = Date.now();
      self.requests.push(record);
      return res;
    };
    if (url.pathname !== "/token") return done(json(404, { details: "not found" }));
    let user: string | undefined;
    let badCredentials = false;
    let params: URLSearchParams;
    let offline = false;
    if (req.method === "GET") {
      params = url.searchParams;
      const who = basicUser(req.headers.get("authorization"));
      record.withCredentials = who.sent;
      user = who.user;
      badCredentials = who.bad;
    } else if (req.method === "POST") {
      params = new URLSearchParams(await req.text());
      const grantType = params.get("grant_type");
      record.withCredentials = true;
      offline = params.get("access_type") === "offline";
      if (grantType === "password") {
        const name = params.get("username") ?? "";
        if (Object.hasOwn(self.users, name) && self.users[name] === params.get("password")) {
          user = name;
        } else badCredentials = true;
      } else if (grantType === "refresh_token") {
        user = self.refreshTokens.get(params.get("refresh_token") ?? "");
        if (user === undefined) badCredentials = true;
      } else {
        return done(json(400, { error: "unsupported_grant_type" }));
      }
    } else {
      return done(json(405, { details: "method not allowed" }));
    }
    record.user = user;
    record.service = params.get("service") ?? undefined;
    record.scopes = params.getAll("scope").flatMap((s) => s.split(" ")).filter((s) => s !== "");
    if (self.refuse) {
      return done(json(self.refuse, {
        details: self.refuse === 401 ? "authentication refused" : "access forbidden",
      }));
    }
    if (badCredentials) {
      return done(json(401, { details: "incorrect username or password" }, {
        "www-authenticate": `Basic realm="${self.realm}"`,
      }));
    }
    if (record.service !== undefined && record.service !== service) {
      return done(json(400, { details: `unknown service ${record.service}` }));
    }
    for (const scope of record.scopes) {
      const wanted = parseScope(scope);
      if (!wanted) continue;
      const actions = self.grant(user, wanted);
      if (actions.length > 0) record.granted.push({ ...wanted, actions });
    }
    const lifetime = self.expiresIn;
    let spoil: "untrusted" | "expired" | "audience" | undefined;
    if (self.spoilNext.count > 0) {
      self.spoilNext.count--;
      spoil = self.spoilNext.kind;
    }
    const { token, issuedAt } = await makeToken(user, record.granted, lifetime, spoil);
    const body: Record<string, unknown> = {
      token,
      access_token: token,
      expires_in: lifetime,
      issued_at: new Date(issuedAt * 1000).toISOString(),
    };
    if (req.method === "POST") {
      body.scope = record.scopes.join(" ");
      if (offline && user !== undefined) body.refresh_token = self.issueRefreshToken(user);
      delete body.token;
    }
    return done(json(200, body));
  }

  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
  }, handle);
  const url = `http://127.0.0.1:${server.addr.port}`;
  let stopped: Promise<void> | undefined;

  const self: TokenIssuer = {
    realm: `${url}/token`,
    url,
    service,
    issuer: issuerName,
    certPath,
    keyPath,
    kid: trusted.kid,
    users: { ...(options.users ?? {}) },
    anonymousPull: new Set(options.anonymousPull ?? []),
    expiresIn: options.expiresIn ?? 300,
    refuse: false,
    spoilNext: { count: 0, kind: "untrusted" },
    grant: options.grant ?? defaultGrant,
    requests: [],
    get count() {
      return self.requests.length;
    },
    refreshTokens: new Map(),
    issueRefreshToken(user: string) {
      const token = `refresh-${randomUUID()}`;
      self.refreshTokens.set(token, user);
      return token;
    },
    async sign(user, access, lifetime) {
      return (await makeToken(user, access, lifetime ?? self.expiresIn)).token;
    },
    reset() {
      self.requests.length = 0;
    },
    stop() {
      stopped ??= (async () => {
        await server.shutdown().catch(() => {});
        if (ownDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
      })();
      return stopped;
    },
    [Symbol.asyncDispose]() {
      return self.stop();
    },
  };
  return self;
}
