/**
 * Registry configuration: mirrors, plain-HTTP registries and timeouts, read from
 * `<store root>/registries.json`, else `/etc/berth/registries.json`.
 *
 * ```json
 * {
 *   "mirrors": { "docker.io": ["http://127.0.0.1:5001", "https://mirror.example.com"] },
 *   "insecure": ["myreg:5000", "build-host", "10.0.0.0/8"],
 *   "timeouts": { "response": 30, "idle": 60 },
 *   "retries": 5
 * }
 * ```
 *
 * - `mirrors`: per registry (as written in image names: `docker.io`, `quay.io`, `host:5000`), base
 *   URLs tried in order before the registry itself; a mirror that fails (unreachable, 404, 5xx,
 *   a wrong digest) is skipped for the next one, and the registry itself comes last. A URL may
 *   carry a path prefix (`https://mirror/cache` → `https://mirror/cache/v2/…`); a bare `host:port`
 *   follows the same HTTP/HTTPS rule as a registry.
 * - `insecure`: registries reached over plain HTTP (`host:port`, `host` for any port, or an IPv4
 *   CIDR). Loopback registries (`localhost`, `127.0.0.0/8`, `::1`) are plain HTTP by default, as
 *   docker does; everything else is HTTPS, verified against the system CA store.
 * - `timeouts` (seconds): `response`, to connect and receive the response headers (default 30);
 *   `idle`, the longest pause inside a response body (default 60).
 * - `retries`: attempts per request on connection errors, timeouts, 5xx and 429 (default 5).
 *
 * @module
 */
import { InvalidInputError } from "../../errors.ts";
import { DOCKER_HUB } from "../../reference.ts";

/**
 * Registry settings (the parsed `registries.json`).
 *
 * @example
 * ```ts
 * import type { RegistryConfig } from "@berth/berth";
 * const config: RegistryConfig = {
 *   mirrors: { "docker.io": ["http://127.0.0.1:5001"] },
 *   insecure: ["build-host:5000"],
 *   timeouts: { response: 10, idle: 30 },
 * };
 * ```
 */
export interface RegistryConfig {
  /** Mirrors per registry domain, tried in order before the registry itself. */
  mirrors?: Record<string, string[]>;
  /** Registries reached over plain HTTP: `host:port`, `host` (any port) or an IPv4 CIDR. */
  insecure?: string[];
  /** Timeouts in seconds. */
  timeouts?: { response?: number; idle?: number };
  /** Attempts per request (default 5). */
  retries?: number;
}

/** Where a registry (or one of its mirrors) is reached. */
export interface Endpoint {
  /** Base URL without a trailing slash: `http://127.0.0.1:5000`, `https://mirror/prefix`. */
  base: string;
  /** `host[:port]` of the URL, as shown in messages and used to look up credentials. */
  host: string;
  /** True for a mirror (failures fall back to the next endpoint). */
  mirror: boolean;
}

/** The API host of Docker Hub. */
export const DOCKER_HUB_API = "registry-1.docker.io";

/** The config file names, in the order they are tried. */
export function registryConfigPaths(root?: string): string[] {
  return [...(root ? [`${root}/registries.json`] : []), "/etc/berth/registries.json"];
}

/**
 * Reads the first of `<root>/registries.json` and `/etc/berth/registries.json` that exists;
 * `{}` when neither does. A malformed file is an `InvalidInputError` naming it.
 */
export async function loadRegistryConfig(root?: string): Promise<RegistryConfig> {
  for (const path of registryConfigPaths(root)) {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw e;
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new InvalidInputError(`${path} is not valid JSON: ${(e as Error).message}`);
    }
    return checkRegistryConfig(doc, path);
  }
  return {};
}

/** Validates a parsed config; errors name `what`. */
export function checkRegistryConfig(doc: unknown, what: string): RegistryConfig {
  const fail = (why: string): never => {
    throw new InvalidInputError(`${what}: ${why}`);
  };
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) fail("not a JSON object");
  const d = doc as Record<string, unknown>;
  const isStrings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === "string");
  if (d.mirrors !== undefined) {
    if (typeof d.mirrors !== "object" || d.mirrors === null || Array.isArray(d.mirrors)) {
      fail(`"mirrors" must map registry names to lists of URLs`);
    }
    for (const [k, v] of Object.entries(d.mirrors as Record<string, unknown>)) {
      if (!isStrings(v)) fail(`"mirrors" of "${k}" must be a list of URLs`);
      for (const url of v as string[]) endpointFromString(url, d as RegistryConfig, true, what);
    }
  }
  if (d.insecure !== undefined && !isStrings(d.insecure)) {
    fail(`"insecure" must be a list of hosts`);
  }
  if (d.timeouts !== undefined) {
    const t = d.timeouts as Record<string, unknown>;
    if (typeof t !== "object" || t === null) fail(`"timeouts" must be an object`);
    for (const k of ["response", "idle"]) {
      if (t[k] !== undefined && !(typeof t[k] === "number" && (t[k] as number) > 0)) {
        fail(`"timeouts.${k}" must be a positive number of seconds`);
      }
    }
  }
  if (
    d.retries !== undefined &&
    !(typeof d.retries === "number" && Number.isInteger(d.retries) && d.retries >= 1)
  ) fail(`"retries" must be a positive integer`);
  return d as RegistryConfig;
}

/** Splits `host[:port]` (IPv6 in brackets) into host and port. */
function splitHostPort(hostPort: string): { host: string; port?: string } {
  if (hostPort.startsWith("[")) {
    const end = hostPort.indexOf("]");
    const host = hostPort.slice(1, end);
    const rest = hostPort.slice(end + 1);
    return rest.startsWith(":") ? { host, port: rest.slice(1) } : { host };
  }
  const colon = hostPort.lastIndexOf(":");
  if (colon > 0 && hostPort.indexOf(":") === colon) {
    return { host: hostPort.slice(0, colon), port: hostPort.slice(colon + 1) };
  }
  return { host: hostPort };
}

function ipv4(host: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3];
}

/**
 * True for loopback registries, which docker reaches over plain HTTP: `localhost`, `127.0.0.0/8`,
 * `::1` (with or without a port).
 *
 * @example
 * ```ts ignore
 * isLoopback("127.0.0.1:5000"); // true
 * isLoopback("[::1]:5000"); // true
 * isLoopback("registry.example.com"); // false
 * isLoopback("app.localhost:5000"); // false
 * ```
 */
export function isLoopback(hostPort: string): boolean {
  const { host } = splitHostPort(hostPort.toLowerCase());
  if (host === "localhost") return true; // by name only itself: `*.localhost` may resolve anywhere
  if (host === "::1" || host === "0:0:0:0:0:0:0:1") return true;
  const v4 = ipv4(host);
  return v4 !== undefined && v4 >>> 24 === 127;
}

/** True when `hostPort` is listed in `insecure` (exact, by host for any port, or by CIDR). */
export function isInsecure(hostPort: string, config: RegistryConfig): boolean {
  const hp = hostPort.toLowerCase();
  const { host } = splitHostPort(hp);
  for (const raw of config.insecure ?? []) {
    const entry = raw.toLowerCase().replace(/^https?:\/\//, "").replace(/\/+$/, "");
    if (entry === hp) return true;
    if (!entry.includes(":") && entry === host) return true;
    const cidr = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(entry);
    if (cidr) {
      const net = ipv4(cidr[1]), addr = ipv4(host), bits = Number(cidr[2]);
      if (net === undefined || addr === undefined || bits > 32) continue;
      const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
      if (((net & mask) >>> 0) === ((addr & mask) >>> 0)) return true;
    }
  }
  return false;
}

/** The scheme docker would use for `hostPort`: HTTP for loopback and `insecure`, else HTTPS. */
export function schemeFor(hostPort: string, config: RegistryConfig): "http" | "https" {
  return isLoopback(hostPort) || isInsecure(hostPort, config) ? "http" : "https";
}

function endpointFromString(
  text: string,
  config: RegistryConfig,
  mirror: boolean,
  what: string,
): Endpoint {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text)
    ? text
    : `${schemeFor(text.split("/")[0], config)}://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new InvalidInputError(`${what}: invalid mirror URL "${text}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new InvalidInputError(`${what}: mirror URL "${text}" is not http or https`);
  }
  if (url.search || url.hash || url.username || url.password) {
    throw new InvalidInputError(`${what}: mirror URL "${text}" must not carry a query or userinfo`);
  }
  const path = url.pathname.replace(/\/+$/, "").replace(/\/v2$/, "");
  return { base: `${url.protocol}//${url.host}${path}`, host: url.host, mirror };
}

/**
 * Where to fetch images of registry `domain` from: its mirrors in order, then the registry
 * itself (Docker Hub's API host for `docker.io`).
 *
 * @example
 * ```ts ignore
 * registryEndpoints("docker.io", {});
 * // [{ base: "https://registry-1.docker.io", host: "registry-1.docker.io", mirror: false }]
 * registryEndpoints("localhost:5000", {});
 * // [{ base: "http://localhost:5000", host: "localhost:5000", mirror: false }]
 * ```
 */
export function registryEndpoints(domain: string, config: RegistryConfig = {}): Endpoint[] {
  const mirrors = (config.mirrors?.[domain] ?? []).map((m) =>
    endpointFromString(m, config, true, "registries.json")
  );
  const host = domain === DOCKER_HUB ? DOCKER_HUB_API : domain;
  const origin: Endpoint = { base: `${schemeFor(host, config)}://${host}`, host, mirror: false };
  return [...mirrors, origin];
}
