/**
 * Image references as docker reads them: `busybox` is `docker.io/library/busybox:latest`,
 * `host:5000/a/b:tag`, `name@sha256:…`, `name:tag@sha256:…`.
 *
 * @module
 */
import { type Digest, parseDigest } from "./digest.ts";

/**
 * A parsed, normalised image reference.
 *
 * @example
 * ```ts
 * import { parseReference, type Reference } from "@berth/berth";
 * const ref: Reference = parseReference("localhost:5000/app@sha256:" + "0".repeat(64));
 * console.log(ref.domain, ref.tag); // "localhost:5000" undefined
 * ```
 */
export interface Reference {
  /** Registry host (with port), e.g. `docker.io`, `localhost:5000`. */
  readonly domain: string;
  /** Repository path inside the registry, e.g. `library/busybox`. */
  readonly path: string;
  /** Tag, when given (or defaulted). */
  readonly tag?: string;
  /** Digest, when pinned. */
  readonly digest?: Digest;
}

/** Docker Hub's canonical domain. */
export const DOCKER_HUB = "docker.io";

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const PORT = /^[0-9]+$/;
const MAX_NAME = 255;

function isDomain(part: string): boolean {
  if (part === "localhost") return true;
  if (part.startsWith("[")) return /^\[[0-9a-fA-F:.]+\](?::[0-9]+)?$/.test(part);
  if (!part.includes(".") && !part.includes(":")) return false;
  const [host, port, ...rest] = part.split(":");
  if (rest.length > 0 || (port !== undefined && !PORT.test(port))) return false;
  return host.split(".").every((c) => DOMAIN_COMPONENT.test(c));
}

/**
 * Parses `input` the way docker does. A reference with neither tag nor digest gets `defaultTag`
 * (default `"latest"`; pass `null` to leave it untagged). Throws a `TypeError` naming the reference.
 *
 * @example
 * ```ts
 * import { parseReference } from "@berth/berth";
 * const ref = parseReference("busybox");
 * console.log(ref); // { domain: "docker.io", path: "library/busybox", tag: "latest" }
 * ```
 */
export function parseReference(
  input: string,
  options: { defaultTag?: string | null } = {},
): Reference {
  const fail = (why: string): never => {
    throw new TypeError(`Invalid reference "${input}": ${why}`);
  };
  if (input === "") fail("empty");
  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    try {
      digest = parseDigest(rest.slice(at + 1));
    } catch (e) {
      fail((e as Error).message);
    }
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const slash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) fail(`invalid tag "${tag}"`);
  }
  if (rest === "") fail("missing repository name");
  const parts = rest.split("/");
  let domain = DOCKER_HUB;
  if (parts.length > 1 && isDomain(parts[0])) {
    domain = parts.shift()!;
    if (domain === "index.docker.io" || domain === "registry-1.docker.io") domain = DOCKER_HUB;
  }
  for (const part of parts) {
    if (part !== part.toLowerCase() && COMPONENT.test(part.toLowerCase())) {
      fail("repository name must be lowercase");
    }
    if (!COMPONENT.test(part)) fail(`invalid repository name component "${part}"`);
  }
  if (domain === DOCKER_HUB && parts.length === 1) parts.unshift("library");
  const path = parts.join("/");
  if (`${domain}/${path}`.length > MAX_NAME) fail(`repository name longer than ${MAX_NAME}`);
  if (tag === undefined && digest === undefined && options.defaultTag !== null) {
    tag = options.defaultTag ?? "latest";
  }
  return { domain, path, ...(tag !== undefined ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** `domain/path`, e.g. `docker.io/library/busybox`. */
export function repositoryName(ref: Reference): string {
  return `${ref.domain}/${ref.path}`;
}

/**
 * Full canonical string: `docker.io/library/busybox:latest[@sha256:…]`.
 *
 * @example
 * ```ts
 * import { formatReference, parseReference } from "@berth/berth";
 * console.log(formatReference(parseReference("user/app:1"))); // "docker.io/user/app:1"
 * ```
 */
export function formatReference(ref: Reference): string {
  return repositoryName(ref) + (ref.tag !== undefined ? `:${ref.tag}` : "") +
    (ref.digest ? `@${ref.digest}` : "");
}

/** The repository as docker shows it: `busybox`, `user/app`, `localhost:5000/app`. */
export function familiarRepository(ref: Reference): string {
  if (ref.domain !== DOCKER_HUB) return repositoryName(ref);
  return ref.path.startsWith("library/") && ref.path.split("/").length === 2
    ? ref.path.slice(8)
    : ref.path;
}

/**
 * The reference as docker shows it: `busybox:latest`, `user/app@sha256:…`.
 *
 * @example
 * ```ts
 * import { familiarString, parseReference } from "@berth/berth";
 * console.log(familiarString(parseReference("docker.io/library/busybox"))); // "busybox:latest"
 * ```
 */
export function familiarString(ref: Reference): string {
  return familiarRepository(ref) + (ref.tag !== undefined ? `:${ref.tag}` : "") +
    (ref.digest ? `@${ref.digest}` : "");
}
