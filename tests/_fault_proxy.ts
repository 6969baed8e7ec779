/**
 * A loopback HTTP/1.1 proxy that sits in front of a registry and misbehaves on demand.
 *
 * It speaks raw HTTP over `Deno.listen` sockets (not `Deno.serve`), so it can do what a well-behaved
 * server cannot: cut a body, lie in `Content-Length`, close a connection without an answer, or never
 * answer. Each client request is forwarded on a fresh upstream connection with its `Host` header
 * unchanged, so the registry's absolute `Location` headers (upload URLs) point back at the proxy.
 * `Range` and every other end-to-end header pass through untouched.
 *
 * {@linkcode FaultRule}s are matched in order against every request (method, path regex, first N
 * times); the first rule that matches and has uses left applies its {@linkcode Fault}. Every request
 * is recorded ({@linkcode FaultProxy.requests}) with its headers and what was done to it.
 *
 * Blob redirects: a `redirect` fault answers `307` to a second listener (by default on 127.0.0.2,
 * another host) at the same path plus a one-time signature in the query. That origin serves the same
 * bytes, fetched from the upstream with the credentials of the original request, so a client that
 * drops its `Authorization` on the cross-host redirect (as it must) still gets the blob; the headers
 * it sent there are recorded with `origin: "redirect"`.
 *
 * @example
 * ```ts ignore
 * await using proxy = await startFaultProxy(registry.url, [
 *   { method: "GET", path: /\/blobs\/sha256:/, times: 1, fault: { type: "truncate", after: 1000 } },
 * ]);
 * // pull from proxy.host: the first blob GET is cut after 1000 bytes, the retry is clean.
 * ```
 *
 * @module
 */

/** What to do to a matching request. */
export type Fault =
  /** Forward, send the real headers, then only the first `after` body bytes, then close. */
  | { type: "truncate"; after: number }
  /** Forward, but flip (XOR 0xff) the body byte at `offset` (default: the middle byte). */
  | { type: "corrupt"; offset?: number }
  /** Forward with `Content-Length` = real length + `delta`; then close the connection. */
  | { type: "lieLength"; delta: number }
  /**
   * Answer `status` without asking upstream. 429 gets `Retry-After: 1` unless `retryAfter` says
   * otherwise (`null`: no header).
   */
  | {
    type: "status";
    status: number;
    retryAfter?: string | null;
    body?: string;
    headers?: Record<string, string>;
  }
  /** Close the connection without any answer (clients see EOF / connection reset). */
  | { type: "reset" }
  /** Never answer; the connection stays open until the client gives up or the proxy stops. */
  | { type: "hang" }
  /** Forward, send the headers and the first `after` body bytes, then stall until the client gives up. */
  | { type: "stall"; after: number }
  /** Wait `ms`, then forward normally. */
  | { type: "delay"; ms: number }
  /** Answer `307` to the redirect origin (another host), which serves the same bytes. */
  | { type: "redirect"; status?: 301 | 302 | 303 | 307 | 308 };

/** A rule: which requests, how many times, what fault. */
export interface FaultRule {
  /** HTTP method (case-insensitive); any when absent. */
  method?: string;
  /** Tested against the request path without the query string (e.g. `/\/blobs\/sha256:/`). */
  path: RegExp;
  /** Apply to the first N matching requests only (default: every one). */
  times?: number;
  /** Which listener: the proxy itself (default) or the redirect origin. */
  origin?: "proxy" | "redirect";
  /** The fault. */
  fault: Fault;
  /** How many times the rule was applied so far (maintained by the proxy). */
  applied?: number;
}

/** One request the proxy (or its redirect origin) received. */
export interface ProxiedRequest {
  /** Which listener got it. */
  origin: "proxy" | "redirect";
  /** HTTP method. */
  method: string;
  /** Path and query as sent. */
  target: string;
  /** Path without the query. */
  path: string;
  /** Request headers, names lower-cased (repeated headers joined with ", "). */
  headers: Record<string, string>;
  /** The fault applied (its `type`), if any. */
  fault?: Fault["type"];
  /** Status sent to the client (0 when none was sent). */
  status: number;
  /** Body bytes sent to the client. */
  bytesSent: number;
  /** `Date.now()` when the request head arrived. */
  at: number;
}

/** Options of {@linkcode startFaultProxy}. */
export interface FaultProxyOptions {
  /** Address of the redirect origin (default `127.0.0.2`, falling back to `127.0.0.1`). */
  redirectHost?: string;
}

/** A running fault proxy. */
export interface FaultProxy extends AsyncDisposable {
  /** `127.0.0.1:PORT`: use as the registry host. */
  host: string;
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** `HOST:PORT` of the redirect origin. */
  redirectHost: string;
  /** The upstream, as given. */
  upstream: string;
  /** The rules, in order; may be replaced or edited at any time. */
  rules: FaultRule[];
  /** Every request, in arrival order. */
  requests: ProxiedRequest[];
  /** The requests the redirect origin received. */
  readonly redirectRequests: ProxiedRequest[];
  /** Clears the recorded requests. */
  reset(): void;
  /** Closes the listeners and every open connection (hanging ones included). */
  stop(): Promise<void>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const CRLFCRLF = enc.encode("\r\n\r\n");
const MAX_HEAD = 64 * 1024;
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);
const REASONS: Record<number, string> = {
  200: "OK",
  201: "Created",
  202: "Accepted",
  204: "No Content",
  206: "Partial Content",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  416: "Range Not Satisfiable",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
};

function indexOf(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = from; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

class NotHttp extends Error {}

/** Buffered reader over a socket. */
class Reader {
  #conn: Deno.Conn;
  #buf = new Uint8Array(0);
  #pos = 0;
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }
  get #available(): number {
    return this.#buf.length - this.#pos;
  }
  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(64 * 1024);
    const n = await this.#conn.read(chunk);
    if (n === null) return false;
    const rest = this.#buf.subarray(this.#pos);
    const next = new Uint8Array(rest.length + n);
    next.set(rest);
    next.set(chunk.subarray(0, n), rest.length);
    this.#buf = next;
    this.#pos = 0;
    return true;
  }
  /** The head up to the blank line, or null on a clean EOF before any byte. */
  async head(): Promise<string | null> {
    let scanned = 0;
    for (;;) {
      const view = this.#buf.subarray(this.#pos);
      const i = indexOf(view, CRLFCRLF, Math.max(0, scanned - 3));
      if (i >= 0) {
        this.#pos += i + 4;
        return dec.decode(view.subarray(0, i));
      }
      scanned = view.length;
      if (view.length > 0 && !/[A-Z]/.test(String.fromCharCode(view[0]))) {
        // A TLS ClientHello (Go clients try HTTPS first): answer as Go's server does.
        throw new NotHttp();
      }
      if (view.length > MAX_HEAD) throw new Error("HTTP head too large");
      if (!(await this.#fill())) {
        if (this.#available === 0) return null;
        throw new Error("connection closed inside an HTTP head");
      }
    }
  }
  async line(): Promise<string> {
    for (;;) {
      const view = this.#buf.subarray(this.#pos);
      const i = indexOf(view, enc.encode("\r\n"));
      if (i >= 0) {
        this.#pos += i + 2;
        return dec.decode(view.subarray(0, i));
      }
      if (!(await this.#fill())) throw new Error("connection closed inside a chunk header");
    }
  }
  /** Up to `max` bytes; null at EOF. */
  async read(max: number): Promise<Uint8Array | null> {
    if (this.#available === 0 && !(await this.#fill())) return null;
    const n = Math.min(max, this.#available);
    const out = this.#buf.slice(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }
}

type Framing = { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" } | {
  kind: "eof";
};

/** The body chunks of a message; throws if the peer closes early. */
async function* bodyChunks(reader: Reader, framing: Framing): AsyncGenerator<Uint8Array> {
  if (framing.kind === "none") return;
  if (framing.kind === "length") {
    let left = framing.length;
    while (left > 0) {
      const chunk = await reader.read(Math.min(left, 256 * 1024));
      if (!chunk) throw new Error(`body ended ${left} bytes early`);
      left -= chunk.length;
      yield chunk;
    }
    return;
  }
  if (framing.kind === "eof") {
    for (;;) {
      const chunk = await reader.read(256 * 1024);
      if (!chunk) return;
      yield chunk;
    }
  }
  for (;;) {
    const size = parseInt((await reader.line()).split(";")[0].trim(), 16);
    if (!Number.isFinite(size)) throw new Error("bad chunk size");
    if (size === 0) {
      while ((await reader.line()) !== "");
      return;
    }
    let left = size;
    while (left > 0) {
      const chunk = await reader.read(left);
      if (!chunk) throw new Error("connection closed inside a chunk");
      left -= chunk.length;
      yield chunk;
    }
    await reader.line();
  }
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const c of chunks) {
    parts.push(c);
    total += c.length;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

interface Head {
  start: string[];
  headers: [string, string][];
}

function parseHead(text: string): Head {
  const lines = text.split("\r\n");
  const start = lines[0].split(" ");
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const c = line.indexOf(":");
    if (c > 0) headers.push([line.slice(0, c).trim(), line.slice(c + 1).trim()]);
  }
  return { start, headers };
}

function header(h: [string, string][], name: string): string | undefined {
  const found = h.filter(([k]) => k.toLowerCase() === name);
  return found.length ? found.map(([, v]) => v).join(", ") : undefined;
}

function framingOf(h: [string, string][], isResponse: boolean): Framing {
  if (/chunked/i.test(header(h, "transfer-encoding") ?? "")) return { kind: "chunked" };
  const cl = header(h, "content-length");
  if (cl !== undefined) return { kind: "length", length: Number(cl.split(",")[0]) };
  return isResponse ? { kind: "eof" } : { kind: "none" };
}

interface UpstreamResponse {
  status: number;
  reason: string;
  headers: [string, string][];
  framing: Framing;
  reader: Reader;
  conn: Deno.Conn;
}

/** Starts a fault proxy for `upstream` (`http://HOST:PORT`) on a free 127.0.0.1 port. */
export async function startFaultProxy(
  upstream: string,
  rules: FaultRule[] = [],
  options: FaultProxyOptions = {},
): Promise<FaultProxy> {
  const up = new URL(upstream);
  if (up.protocol !== "http:") throw new Error(`fault proxy: only http upstreams (${upstream})`);
  const upAddr = { hostname: up.hostname, port: Number(up.port || 80) };
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let redirectListener: Deno.TcpListener;
  try {
    redirectListener = Deno.listen({ hostname: options.redirectHost ?? "127.0.0.2", port: 0 });
  } catch (e) {
    if (options.redirectHost) {
      listener.close();
      throw e;
    }
    redirectListener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  }
  const host = `127.0.0.1:${listener.addr.port}`;
  const redirectHost = `${redirectListener.addr.hostname}:${redirectListener.addr.port}`;
  const conns = new Set<Deno.Conn>();
  const signatures = new Map<string, { authorization?: string }>();
  let closing = false;
  let wakeStopped!: () => void;
  const stoppedSignal = new Promise<void>((r) => wakeStopped = r);
  const handlers = new Set<Promise<void>>();

  const self: FaultProxy = {
    host,
    url: `http://${host}`,
    redirectHost,
    upstream,
    rules,
    requests: [],
    get redirectRequests() {
      return self.requests.filter((r) => r.origin === "redirect");
    },
    reset() {
      self.requests.length = 0;
    },
    async stop() {
      if (closing) return;
      closing = true;
      wakeStopped();
      for (const l of [listener, redirectListener]) {
        try {
          l.close();
        } catch {
          // closed
        }
      }
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed
        }
      }
      await Promise.allSettled([...handlers, acceptors]);
    },
    [Symbol.asyncDispose]() {
      return self.stop();
    },
  };

  function pickRule(origin: "proxy" | "redirect", method: string, path: string) {
    for (const rule of self.rules) {
      if ((rule.origin ?? "proxy") !== origin) continue;
      if (rule.method && rule.method.toUpperCase() !== method) continue;
      rule.path.lastIndex = 0;
      if (!rule.path.test(path)) continue;
      const applied = rule.applied ?? 0;
      if (rule.times !== undefined && applied >= rule.times) continue;
      rule.applied = applied + 1;
      return rule.fault;
    }
    return undefined;
  }

  async function forward(
    method: string,
    target: string,
    headers: [string, string][],
    body: Uint8Array,
  ): Promise<UpstreamResponse> {
    const conn = await Deno.connect(upAddr);
    conns.add(conn);
    let head = `${method} ${target} HTTP/1.1\r\n`;
    for (const [k, v] of headers) {
      const lk = k.toLowerCase();
      if (HOP_BY_HOP.has(lk) || lk === "content-length") continue;
      head += `${k}: ${v}\r\n`;
    }
    if (body.length > 0 || !["GET", "HEAD", "DELETE", "OPTIONS"].includes(method)) {
      head += `Content-Length: ${body.length}\r\n`;
    }
    head += "Connection: close\r\n\r\n";
    await writeAll(conn, enc.encode(head));
    if (body.length) await writeAll(conn, body);
    const reader = new Reader(conn);
    let text = await reader.head();
    if (text === null) throw new Error("upstream closed without answering");
    let parsed = parseHead(text);
    while (parsed.start[1]?.startsWith("1") && parsed.start[1] !== "101") {
      text = await reader.head();
      if (text === null) throw new Error("upstream closed without answering");
      parsed = parseHead(text);
    }
    const status = Number(parsed.start[1]);
    const noBody = method === "HEAD" || status === 204 || status === 304;
    return {
      status,
      reason: parsed.start.slice(2).join(" "),
      headers: parsed.headers,
      framing: noBody ? { kind: "none" } : framingOf(parsed.headers, true),
      reader,
      conn,
    };
  }

  /** Serves one request; resolves true to keep the client connection open. */
  async function serveOne(
    origin: "proxy" | "redirect",
    client: Deno.Conn,
    reader: Reader,
  ): Promise<boolean> {
    const text = await reader.head();
    if (text === null) return false;
    const { start, headers } = parseHead(text);
    const [method, target, version] = start;
    const path = target.split("?")[0];
    const reqBody = await collect(bodyChunks(reader, framingOf(headers, false)));
    const record: ProxiedRequest = {
      origin,
      method,
      target,
      path,
      headers: Object.fromEntries(
        [...new Set(headers.map(([k]) => k.toLowerCase()))].map((k) => [k, header(headers, k)!]),
      ),
      status: 0,
      bytesSent: 0,
      at: Date.now(),
    };
    self.requests.push(record);
    const fault = pickRule(origin, method, path);
    if (fault) record.fault = fault.type;
    const keepAlive = version === "HTTP/1.1" &&
      !/close/i.test(header(headers, "connection") ?? "");

    const respond = async (
      status: number,
      hdrs: [string, string][],
      body: Uint8Array,
      close = !keepAlive,
    ) => {
      let head = `HTTP/1.1 ${status} ${REASONS[status] ?? "Status"}\r\n`;
      for (const [k, v] of hdrs) head += `${k}: ${v}\r\n`;
      head += `Content-Length: ${body.length}\r\n`;
      if (close) head += "Connection: close\r\n";
      record.status = status;
      await writeAll(client, enc.encode(head + "\r\n"));
      if (method !== "HEAD") {
        await writeAll(client, body);
        record.bytesSent = body.length;
      }
      return !close;
    };

    if (fault?.type === "reset") return false;
    if (fault?.type === "hang") {
      await stoppedSignal;
      return false;
    }
    if (fault?.type === "delay") {
      await Promise.race([new Promise((r) => setTimeout(r, fault.ms)), stoppedSignal]);
      if (closing) return false;
    }
    if (fault?.type === "status") {
      const hdrs: [string, string][] = [["Content-Type", "application/json; charset=utf-8"]];
      const retryAfter = fault.retryAfter === undefined
        ? (fault.status === 429 ? "1" : null)
        : fault.retryAfter;
      if (retryAfter !== null) hdrs.push(["Retry-After", retryAfter]);
      for (const [k, v] of Object.entries(fault.headers ?? {})) hdrs.push([k, v]);
      const body = fault.body ?? JSON.stringify({
        errors: [{
          code: fault.status === 429 ? "TOOMANYREQUESTS" : "UNAVAILABLE",
          message: `injected ${fault.status}`,
        }],
      });
      return await respond(fault.status, hdrs, enc.encode(body));
    }
    if (fault?.type === "redirect") {
      const sig = crypto.randomUUID();
      signatures.set(sig, { authorization: header(headers, "authorization") });
      const sep = target.includes("?") ? "&" : "?";
      const location = `http://${redirectHost}${target}${sep}berth-sig=${sig}`;
      return await respond(fault.status ?? 307, [["Location", location]], new Uint8Array(0));
    }

    // Forward to the upstream.
    let upHeaders = headers;
    let upTarget = target;
    if (origin === "redirect") {
      const url = new URL(target, "http://x");
      const sig = url.searchParams.get("berth-sig") ?? "";
      const grant = signatures.get(sig);
      if (!grant) {
        return await respond(403, [], enc.encode("unknown or missing signature\n"));
      }
      url.searchParams.delete("berth-sig");
      upTarget = url.pathname + url.search;
      // What a CDN does with a presigned URL: the client's own headers except auth; the
      // upstream is reached with the credentials captured when the redirect was issued.
      upHeaders = headers.filter(([k]) => !["authorization", "host"].includes(k.toLowerCase()));
      upHeaders.push(["Host", `${upAddr.hostname}:${upAddr.port}`]);
      if (grant.authorization) upHeaders.push(["Authorization", grant.authorization]);
    }
    let res: UpstreamResponse;
    try {
      res = await forward(method, upTarget, upHeaders, reqBody);
    } catch (e) {
      return await respond(502, [], enc.encode(`fault proxy: ${(e as Error).message}\n`), true);
    }
    try {
      const outHeaders = res.headers.filter(([k]) => {
        const lk = k.toLowerCase();
        return !HOP_BY_HOP.has(lk) && lk !== "content-length";
      });
      let length: number | undefined = res.framing.kind === "length"
        ? res.framing.length
        : undefined;
      let chunks: AsyncIterable<Uint8Array> = bodyChunks(res.reader, res.framing);
      if (
        length === undefined && res.framing.kind !== "none" &&
        (fault?.type === "lieLength" || fault?.type === "corrupt")
      ) {
        const all = await collect(chunks);
        length = all.length;
        chunks = (async function* () {
          yield all;
        })();
      }
      let close = !keepAlive;
      let cut: number | undefined;
      let stallAt: number | undefined;
      let flipAt: number | undefined;
      let declared = length;
      if (fault?.type === "truncate") [cut, close] = [fault.after, true];
      if (fault?.type === "stall") stallAt = fault.after;
      if (fault?.type === "corrupt") flipAt = fault.offset ?? Math.floor((length ?? 0) / 2);
      if (fault?.type === "lieLength" && length !== undefined) {
        [declared, close] = [Math.max(0, length + fault.delta), true];
      }
      const chunked = res.framing.kind !== "none" && declared === undefined;
      let head = `HTTP/1.1 ${res.status} ${res.reason || REASONS[res.status] || "Status"}\r\n`;
      for (const [k, v] of outHeaders) head += `${k}: ${v}\r\n`;
      if (res.framing.kind === "none") {
        const cl = header(res.headers, "content-length");
        if (cl !== undefined) head += `Content-Length: ${cl}\r\n`;
      } else if (chunked) head += "Transfer-Encoding: chunked\r\n";
      else head += `Content-Length: ${declared}\r\n`;
      if (close) head += "Connection: close\r\n";
      record.status = res.status;
      await writeAll(client, enc.encode(head + "\r\n"));
      let sent = 0;
      for await (let chunk of chunks) {
        if (flipAt !== undefined && flipAt >= sent && flipAt < sent + chunk.length) {
          chunk = chunk.slice();
          chunk[flipAt - sent] ^= 0xff;
        }
        const limit = cut ?? stallAt;
        if (limit !== undefined && sent + chunk.length >= limit) {
          chunk = chunk.subarray(0, Math.max(0, limit - sent));
          if (chunk.length) await writeAll(client, chunked ? frame(chunk) : chunk);
          sent += chunk.length;
          record.bytesSent = sent;
          if (stallAt !== undefined) await stoppedSignal;
          return false;
        }
        await writeAll(client, chunked ? frame(chunk) : chunk);
        sent += chunk.length;
        record.bytesSent = sent;
      }
      if (stallAt !== undefined) {
        await stoppedSignal;
        return false;
      }
      if (chunked) await writeAll(client, enc.encode("0\r\n\r\n"));
      return !close;
    } finally {
      conns.delete(res.conn);
      try {
        res.conn.close();
      } catch {
        // closed
      }
    }
  }

  function frame(chunk: Uint8Array): Uint8Array {
    const prefix = enc.encode(chunk.length.toString(16) + "\r\n");
    const out = new Uint8Array(prefix.length + chunk.length + 2);
    out.set(prefix);
    out.set(chunk, prefix.length);
    out.set(enc.encode("\r\n"), prefix.length + chunk.length);
    return out;
  }

  async function serveConn(origin: "proxy" | "redirect", client: Deno.Conn): Promise<void> {
    conns.add(client);
    const reader = new Reader(client);
    try {
      while (!closing && await serveOne(origin, client, reader));
    } catch (e) {
      // Otherwise the client or the upstream went away; the connection is closed below.
      if (e instanceof NotHttp) {
        await writeAll(client, enc.encode("HTTP/1.0 400 Bad Request\r\n\r\nnot HTTP\n")).catch(
          () => {},
        );
      }
    } finally {
      conns.delete(client);
      try {
        client.close();
      } catch {
        // closed
      }
    }
  }

  async function accept(origin: "proxy" | "redirect", l: Deno.TcpListener): Promise<void> {
    try {
      for await (const conn of l) {
        if (closing) {
          conn.close();
          break;
        }
        const h = serveConn(origin, conn);
        handlers.add(h);
        h.finally(() => handlers.delete(h));
      }
    } catch {
      // listener closed
    }
  }
  const acceptors = Promise.all([accept("proxy", listener), accept("redirect", redirectListener)]);
  await Promise.resolve();
  return self;
}
