/**
 * One HTTP exchange with a registry: `fetch` with a response timeout, redirects followed by hand
 * (so that neither `Authorization` nor a request body is ever sent to another origin), bodies read
 * with an idle timeout, HTTPS verified against the system CA store, and the proxy rules of
 * `HTTPS_PROXY`/`NO_PROXY`.
 *
 * Proxies: Deno's `fetch` honours `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` itself
 * (measured on Deno 2.9.6: for its default client and for `Deno.createHttpClient` ones; `NO_PROXY`
 * takes host names and CIDRs). It does not exempt loopback addresses the way Go's `net/http`
 * (docker, podman, containerd) does, so before its first client is made this module appends
 * `localhost,127.0.0.0/8,::1` to this process's `NO_PROXY` when a proxy variable is set.
 *
 * CA store: HTTPS clients trust `$SSL_CERT_FILE` or `/etc/ssl/certs/ca-certificates.crt` (plus
 * Deno's built-in roots, or the OS store under `DENO_TLS_CA_STORE=system`), and for a registry
 * `host[:port]` also every `*.crt` in `/etc/docker/certs.d/<host[:port]>/` and
 * `/etc/berth/certs.d/<host[:port]>/`, as docker does.
 *
 * @module
 */
import { RegistryError } from "./errors.ts";

/** Timeouts of one exchange. */
export interface HttpTimeouts {
  /** Connect and receive the response headers; default 30 s. */
  responseMs: number;
  /** Longest pause between two chunks of a body; default 60 s. */
  idleMs: number;
}

/** Default {@linkcode HttpTimeouts}. */
export const DEFAULT_TIMEOUTS: HttpTimeouts = { responseMs: 30_000, idleMs: 60_000 };

/** A response whose body is read with an idle timeout. */
export interface Exchange {
  /** The final response (after redirects). */
  response: Response;
  /** The URL that answered. */
  url: URL;
  /** The response body in chunks; throws a temporary {@linkcode RegistryError} when it stalls. */
  body(): AsyncGenerator<Uint8Array>;
  /** Drops the body. */
  cancel(): Promise<void>;
}

/** Options of {@linkcode send}. */
export interface SendOptions {
  method?: string;
  headers?: HeadersInit;
  body?: BodyInit;
  timeouts?: HttpTimeouts;
  signal?: AbortSignal;
  /** Names the target in errors, e.g. `127.0.0.1:5000/app`. */
  what?: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
/** Headers that describe a request body, dropped with it (fetch's "request-body-header name"). */
const BODY_HEADERS = [
  "content-type",
  "content-length",
  "content-encoding",
  "content-language",
  "content-location",
];
const PROXY_VARS = [
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "ALL_PROXY",
  "http_proxy",
  "https_proxy",
  "all_proxy",
];
const LOOPBACK_NO_PROXY = ["localhost", "127.0.0.0/8", "::1"];

let proxyChecked = false;
const clients = new Map<string, Deno.HttpClient>();

/** Exempts loopback from proxies (Go's rule), once, before the first client exists. */
function exemptLoopbackFromProxy(): void {
  if (proxyChecked) return;
  proxyChecked = true;
  let env: (name: string) => string | undefined;
  try {
    env = (name) => Deno.env.get(name);
    if (!PROXY_VARS.some((v) => env(v))) return;
  } catch {
    return; // no env permission: nothing to adjust
  }
  for (const name of ["NO_PROXY", "no_proxy"]) {
    const current = (env(name) ?? "").split(",").map((s) => s.trim()).filter(Boolean);
    if (current.includes("*")) continue;
    const add = LOOPBACK_NO_PROXY.filter((h) => !current.includes(h));
    if (add.length) Deno.env.set(name, [...current, ...add].join(","));
  }
}

function readCaFiles(host: string): string[] {
  const out: string[] = [];
  const read = (path: string) => {
    try {
      out.push(Deno.readTextFileSync(path));
    } catch { /* absent */ }
  };
  let bundle: string | undefined;
  try {
    bundle = Deno.env.get("SSL_CERT_FILE");
  } catch { /* no env permission */ }
  read(bundle ?? "/etc/ssl/certs/ca-certificates.crt");
  for (const dir of [`/etc/docker/certs.d/${host}`, `/etc/berth/certs.d/${host}`]) {
    try {
      for (const e of Deno.readDirSync(dir)) {
        if (e.isFile && e.name.endsWith(".crt")) read(`${dir}/${e.name}`);
      }
    } catch { /* absent */ }
  }
  return out;
}

/** The HTTP client for `url` (one per HTTPS host, one for plain HTTP), made on first use. */
function clientFor(url: URL): Deno.HttpClient {
  exemptLoopbackFromProxy();
  const key = url.protocol === "https:" ? url.host : "";
  let client = clients.get(key);
  if (!client) {
    client = key === "" ? Deno.createHttpClient({}) : Deno.createHttpClient({
      caCerts: readCaFiles(url.host),
    });
    clients.set(key, client);
  }
  return client;
}

function sameOrigin(a: URL, b: URL): boolean {
  return a.protocol === b.protocol && a.host === b.host;
}

/** A one-line reason from a fetch failure (`connection refused`, `connection reset`, …). */
export function networkReason(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let i = 0; i < 4 && cur instanceof Error; i++) {
    if (cur.message && !parts.includes(cur.message)) parts.push(cur.message);
    cur = (cur as { cause?: unknown }).cause;
  }
  const text = parts.join(": ") || String(e);
  const low = text.toLowerCase();
  if (isDnsFailure(low)) return "no such host (DNS lookup failed)";
  if (low.includes("corrupt message") || low.includes("invalidcontenttype")) {
    return "TLS handshake failed (is it a plain HTTP registry? see --insecure-registry)";
  }
  if (low.includes("connection refused")) return "connection refused";
  if (low.includes("connection reset")) return "connection reset by peer";
  if (low.includes("certificate") || low.includes("invalidcertificate")) {
    return `TLS certificate not trusted (${text.split("\n")[0].slice(0, 200)})`;
  }
  return text.split("\n")[0].slice(0, 300);
}

/** True for a name-resolution failure (getaddrinfo's messages as Deno reports them). */
function isDnsFailure(low: string): boolean {
  return low.includes("dns error") || low.includes("failed to lookup address") ||
    low.includes("name or service not known") || low.includes("no address associated");
}

/**
 * Sends one request, following up to 10 redirects by hand: 301, 302 and 303 turn a POST into a
 * GET without its body; a redirect to another origin (scheme, host or port) drops `Authorization`,
 * and one that would carry a body there (307/308 of a POST) is refused with a
 * {@linkcode RegistryError}. Resolves once the headers of the final response arrived; network
 * failures and the response timeout reject with a temporary {@linkcode RegistryError}.
 */
export async function send(input: string | URL, options: SendOptions = {}): Promise<Exchange> {
  const timeouts = options.timeouts ?? DEFAULT_TIMEOUTS;
  const what = options.what ?? String(input);
  let url = new URL(input);
  const headers = new Headers(options.headers);
  let method = (options.method ?? "GET").toUpperCase();
  let body = options.body;
  const origin = url;
  for (let hop = 0;; hop++) {
    const controller = new AbortController();
    const onAbort = () => controller.abort(options.signal!.reason);
    if (options.signal?.aborted) throw options.signal.reason;
    options.signal?.addEventListener("abort", onAbort, { once: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new DOMException("timed out", "TimeoutError"));
    }, timeouts.responseMs);
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        redirect: "manual",
        signal: controller.signal,
        client: clientFor(url),
      });
    } catch (e) {
      options.signal?.removeEventListener("abort", onAbort);
      if (options.signal?.aborted) throw options.signal.reason;
      if (timedOut) {
        throw new RegistryError(
          `${what}: no response from ${url.host} within ${timeouts.responseMs / 1000} s`,
          { temporary: true, cause: e },
        );
      }
      const reason = networkReason(e);
      // A host that does not resolve, or speaks no TLS, will not on the next try either.
      throw new RegistryError(`${what}: cannot reach ${url.host}: ${reason}`, {
        temporary: !reason.startsWith("no such host") && !reason.startsWith("TLS handshake"),
        cause: e,
      });
    } finally {
      clearTimeout(timer);
    }
    const location = response.headers.get("location");
    if (REDIRECTS.has(response.status) && location !== null) {
      await response.body?.cancel().catch(() => {});
      options.signal?.removeEventListener("abort", onAbort);
      if (hop >= MAX_REDIRECTS) {
        throw new RegistryError(
          `${what}: more than ${MAX_REDIRECTS} redirects from ${origin.host}`,
        );
      }
      const next = new URL(location, url);
      if (next.protocol !== "http:" && next.protocol !== "https:") {
        throw new RegistryError(`${what}: redirect to unsupported URL scheme ${next.protocol}`);
      }
      // 301/302/303 turn a POST (any method but GET and HEAD) into a GET without its body, as
      // browsers and Go do; 307/308 keep the method and the body.
      const keepsMethod = response.status === 307 || response.status === 308;
      if (!keepsMethod && method !== "GET" && method !== "HEAD") {
        method = "GET";
        body = undefined;
        for (const h of BODY_HEADERS) headers.delete(h);
      }
      if (!sameOrigin(next, url)) {
        // Never carry a body (a refresh token, a password) to another origin.
        if (method !== "GET" && method !== "HEAD") {
          throw new RegistryError(
            `${what}: ${url.host} answered ${response.status} to a ${method} with a redirect to ` +
              `another origin (${next.origin}); not following it`,
          );
        }
        // Nor credentials (presigned storage URLs carry their own).
        headers.delete("authorization");
      }
      url = next;
      continue;
    }
    const final = url;
    const exchange: Exchange = {
      response,
      url: final,
      cancel: async () => {
        options.signal?.removeEventListener("abort", onAbort);
        await response.body?.cancel().catch(() => {});
      },
      body: () =>
        readBody(response, controller, {
          what,
          host: final.host,
          timeouts,
          onAbort,
          signal: options.signal,
        }),
    };
    return exchange;
  }
}

async function* readBody(
  response: Response,
  controller: AbortController,
  o: {
    what: string;
    host: string;
    timeouts: HttpTimeouts;
    onAbort: () => void;
    signal?: AbortSignal;
  },
): AsyncGenerator<Uint8Array> {
  if (!response.body) return;
  const reader = response.body.getReader();
  let done = false;
  try {
    while (true) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stalled = new Promise<"stalled">((resolve) => {
        timer = setTimeout(() => resolve("stalled"), o.timeouts.idleMs);
      });
      let result: ReadableStreamReadResult<Uint8Array> | "stalled";
      try {
        result = await Promise.race([reader.read(), stalled]);
      } catch (e) {
        if (o.signal?.aborted) throw o.signal.reason;
        throw new RegistryError(
          `${o.what}: download from ${o.host} broke off: ${networkReason(e)}`,
          {
            temporary: true,
            cause: e,
          },
        );
      } finally {
        clearTimeout(timer);
      }
      if (result === "stalled") {
        controller.abort(new DOMException("stalled", "TimeoutError"));
        throw new RegistryError(
          `${o.what}: no data from ${o.host} for ${o.timeouts.idleMs / 1000} s`,
          { temporary: true },
        );
      }
      if (result.done) {
        done = true;
        return;
      }
      yield result.value;
    }
  } finally {
    o.signal?.removeEventListener("abort", o.onAbort);
    if (!done) {
      reader.cancel().catch(() => {});
      controller.abort();
    }
    try {
      reader.releaseLock();
    } catch { /* a read is still pending: the cancel above ends it */ }
  }
}

/** Reads a whole (small) body, refusing more than `max` bytes. */
export async function readAll(
  exchange: Exchange,
  max: number,
  onTooLarge: (size: number) => Error,
): Promise<Uint8Array> {
  const declared = Number(exchange.response.headers.get("content-length") ?? NaN);
  if (declared > max) {
    await exchange.cancel();
    throw onTooLarge(declared);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of exchange.body()) {
    size += chunk.byteLength;
    if (size > max) throw onTooLarge(size);
    chunks.push(chunk);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
