/**
 * Registry credentials the way docker keeps them: `$DOCKER_CONFIG/config.json` (default
 * `~/.docker/config.json`) with
 *
 * - `auths`: `{ "<registry>": { "auth": base64("user:password") } }` (or `identitytoken`, an
 *   OAuth2 refresh token; `registrytoken`, a bearer token), keyed by `host[:port]`, Docker Hub by
 *   `https://index.docker.io/v1/`;
 * - `credHelpers` (`{ "<registry>": "<name>" }`) and `credsStore` (`"<name>"`): credentials kept
 *   by `docker-credential-<name>`, spoken to with docker's helper protocol (`get`, `store`,
 *   `erase`: the server URL or a JSON object on stdin, JSON on stdout).
 *
 * Writes (login, logout) keep every other key of the file, replace it atomically and leave it
 * mode 0600, as docker does.
 *
 * @module
 */
import { BerthError, InvalidInputError } from "../errors.ts";
import { writeFileAtomic } from "../metadata/atomic_write.ts";
import type { CredentialSource, RegistryCredentials } from "./types.ts";

/** The key Docker Hub's credentials are stored under. */
export const DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/";

const HUB_HOSTS = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);

/** Options naming the docker config directory. */
export interface DockerConfigOptions {
  /** Directory of `config.json`; default `$DOCKER_CONFIG`, else `~/.docker`. */
  configDir?: string;
}

/**
 * The directory docker's `config.json` lives in: `$DOCKER_CONFIG`, else `$HOME/.docker`.
 *
 * @example
 * ```ts
 * import { dockerConfigDir } from "@berth/berth";
 * console.log(dockerConfigDir({ configDir: "/tmp/d" })); // "/tmp/d"
 * ```
 */
export function dockerConfigDir(options: DockerConfigOptions = {}): string {
  if (options.configDir) return options.configDir;
  const env = Deno.env.get("DOCKER_CONFIG");
  if (env) return env;
  const home = Deno.env.get("HOME") ?? "/root";
  return `${home}/.docker`;
}

/** `https://host:5000/v1/` → `host:5000` (docker's ConvertToHostname). */
function hostname(key: string): string {
  return key.replace(/^https?:\/\//, "").split("/")[0];
}

/**
 * The key a registry's credentials are stored under: `https://index.docker.io/v1/` for Docker
 * Hub (`docker.io`, `index.docker.io`, `registry-1.docker.io`), else `host[:port]`.
 *
 * @example
 * ```ts
 * import { credentialKey } from "@berth/berth";
 * console.log(credentialKey("docker.io"), credentialKey("http://localhost:5000/")); // "https://index.docker.io/v1/" "localhost:5000"
 * ```
 */
export function credentialKey(registry: string): string {
  const host = hostname(registry.trim()).toLowerCase();
  if (host === "" || HUB_HOSTS.has(host)) return DOCKER_HUB_AUTH_KEY;
  return host;
}

type ConfigFile = Record<string, unknown> & {
  auths?: Record<string, Record<string, unknown>>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
};

async function readConfig(path: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return {};
    throw e;
  }
  if (text.trim() === "") return {};
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new InvalidInputError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new InvalidInputError(`${path} is not a JSON object`);
  }
  const c = doc as ConfigFile;
  if (c.auths !== undefined && (typeof c.auths !== "object" || c.auths === null)) {
    throw new InvalidInputError(`${path}: "auths" is not an object`);
  }
  return c;
}

/** The entry of `auths` for `key` (also under a scheme-qualified or `/v1/` spelling). */
function findAuthEntry(
  auths: Record<string, Record<string, unknown>> | undefined,
  key: string,
): [string, Record<string, unknown>] | undefined {
  if (!auths) return undefined;
  if (auths[key] && typeof auths[key] === "object") return [key, auths[key]];
  const want = key === DOCKER_HUB_AUTH_KEY ? "index.docker.io" : key;
  for (const [k, v] of Object.entries(auths)) {
    const h = hostname(k).toLowerCase();
    if (
      (h === want || (want === "index.docker.io" && HUB_HOSTS.has(h))) && v && typeof v === "object"
    ) {
      return [k, v];
    }
  }
  return undefined;
}

function decodeEntry(
  entry: Record<string, unknown>,
  what: string,
): RegistryCredentials | undefined {
  const creds: RegistryCredentials = {};
  if (typeof entry.auth === "string" && entry.auth !== "") {
    let text: string;
    try {
      text = new TextDecoder().decode(Uint8Array.from(atob(entry.auth), (c) => c.charCodeAt(0)));
    } catch {
      throw new InvalidInputError(`${what}: "auth" is not base64`);
    }
    const colon = text.indexOf(":");
    if (colon < 0) throw new InvalidInputError(`${what}: "auth" is not base64 of user:password`);
    creds.username = text.slice(0, colon);
    creds.password = text.slice(colon + 1);
  } else {
    if (typeof entry.username === "string") creds.username = entry.username;
    if (typeof entry.password === "string") creds.password = entry.password;
  }
  if (typeof entry.identitytoken === "string" && entry.identitytoken) {
    creds.identityToken = entry.identitytoken;
  }
  if (typeof entry.registrytoken === "string" && entry.registrytoken) {
    creds.registryToken = entry.registrytoken;
  }
  return Object.keys(creds).length ? creds : undefined;
}

/**
 * A credential helper (`docker-credential-<name>`) failed or is missing.
 *
 * @example
 * ```ts
 * import { BerthError, CredentialHelperError } from "@berth/berth";
 * console.log(new CredentialHelperError("x") instanceof BerthError); // true
 * ```
 */
export class CredentialHelperError extends BerthError {}

/** Runs `docker-credential-<name> <action>` with `input` on stdin; resolves with its stdout. */
async function runHelper(
  name: string,
  action: "get" | "store" | "erase",
  input: string,
): Promise<{ ok: boolean; out: string }> {
  const program = `docker-credential-${name}`;
  let output: Deno.CommandOutput;
  try {
    const child = new Deno.Command(program, {
      args: [action],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(input)).catch(() => {});
    await w.close().catch(() => {});
    output = await child.output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new CredentialHelperError(
        `credential helper ${program} is not in PATH (named by the docker config's credsStore or credHelpers)`,
      );
    }
    throw e;
  }
  const dec = new TextDecoder();
  const out = dec.decode(output.stdout).trim();
  if (!output.success) {
    const msg = (out || dec.decode(output.stderr).trim()).split("\n")[0];
    return { ok: false, out: msg };
  }
  return { ok: true, out };
}

function helperFor(config: ConfigFile, key: string): string | undefined {
  const helpers = config.credHelpers;
  if (helpers && typeof helpers === "object") {
    for (const [k, v] of Object.entries(helpers)) {
      if (typeof v === "string" && v && credentialKey(k) === key) return v;
    }
  }
  return typeof config.credsStore === "string" && config.credsStore ? config.credsStore : undefined;
}

/**
 * The credentials docker would use for `registry` (`host[:port]`; Docker Hub by any of its names),
 * or `undefined` for anonymous access: a credential helper first (`credHelpers`, then
 * `credsStore`), else the `auths` entry.
 *
 * @example
 * ```ts
 * import { getCredentials } from "@berth/berth";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify({ auths: { "localhost:5000": { auth: btoa("me:pw") } } }));
 * console.log(await getCredentials("localhost:5000", { configDir: dir })); // { username: "me", password: "pw" }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function getCredentials(
  registry: string,
  options: DockerConfigOptions = {},
): Promise<RegistryCredentials | undefined> {
  const path = `${dockerConfigDir(options)}/config.json`;
  const config = await readConfig(path);
  const key = credentialKey(registry);
  const helper = helperFor(config, key);
  if (helper) {
    const { ok, out } = await runHelper(helper, "get", key);
    if (ok) {
      let doc: Record<string, unknown>;
      try {
        doc = JSON.parse(out);
      } catch {
        throw new CredentialHelperError(`docker-credential-${helper} get: output is not JSON`);
      }
      const user = typeof doc.Username === "string" ? doc.Username : "";
      const secret = typeof doc.Secret === "string" ? doc.Secret : "";
      if (user === "<token>") return { identityToken: secret };
      if (user || secret) return { username: user, password: secret };
    } else if (!/credentials not found/i.test(out)) {
      throw new CredentialHelperError(`docker-credential-${helper} get ${key} failed: ${out}`);
    }
  }
  const found = findAuthEntry(config.auths, key);
  return found ? decodeEntry(found[1], `${path}: auths["${found[0]}"]`) : undefined;
}

/**
 * A {@linkcode CredentialSource} reading docker's config (see {@linkcode getCredentials}).
 *
 * @example
 * ```ts
 * import { dockerCredentials } from "@berth/berth";
 * const source = dockerCredentials({ configDir: "/nonexistent" });
 * console.log(await source("localhost:5000")); // undefined
 * ```
 */
export function dockerCredentials(options: DockerConfigOptions = {}): CredentialSource {
  return (host) => getCredentials(host, options);
}

function b64(text: string): string {
  let bin = "";
  for (const b of new TextEncoder().encode(text)) bin += String.fromCharCode(b);
  return btoa(bin);
}

async function writeConfig(dir: string, config: ConfigFile): Promise<string> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  let path = `${dir}/config.json`;
  try {
    path = await Deno.realPath(path); // a symlinked config.json is replaced where it points
  } catch { /* new file */ }
  await writeFileAtomic(path, JSON.stringify(config, null, "\t") + "\n", { mode: 0o600 });
  await Deno.chmod(path, 0o600);
  return path;
}

/** Where {@linkcode storeCredentials} put the credentials. */
export interface StoredCredentials {
  /** The config file written. */
  path: string;
  /** The key used (`https://index.docker.io/v1/` or `host[:port]`). */
  key: string;
  /** The credential helper that holds the secret, when one does. */
  helper?: string;
}

/**
 * Saves credentials for `registry` as `docker login` does: in the configured credential helper
 * (with an empty `auths` entry in the file), else base64 in `auths[key].auth`. Other keys of
 * the file are kept; it is written atomically with mode 0600.
 *
 * @example
 * ```ts
 * import { getCredentials, storeCredentials } from "@berth/berth";
 * const dir = await Deno.makeTempDir();
 * await storeCredentials("localhost:5000", { username: "me", password: "pw" }, { configDir: dir });
 * console.log((await getCredentials("localhost:5000", { configDir: dir }))?.username); // "me"
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function storeCredentials(
  registry: string,
  creds: { username: string; password: string },
  options: DockerConfigOptions = {},
): Promise<StoredCredentials> {
  const dir = dockerConfigDir(options);
  const config = await readConfig(`${dir}/config.json`);
  const key = credentialKey(registry);
  const helper = helperFor(config, key);
  const auths = (config.auths && typeof config.auths === "object" ? config.auths : {}) as Record<
    string,
    Record<string, unknown>
  >;
  const old = findAuthEntry(auths, key);
  if (old && old[0] !== key) delete auths[old[0]];
  if (helper) {
    const { ok, out } = await runHelper(
      helper,
      "store",
      JSON.stringify({ ServerURL: key, Username: creds.username, Secret: creds.password }),
    );
    if (!ok) {
      throw new CredentialHelperError(`docker-credential-${helper} store ${key} failed: ${out}`);
    }
    auths[key] = {};
  } else {
    auths[key] = { auth: b64(`${creds.username}:${creds.password}`) };
  }
  config.auths = auths;
  const path = await writeConfig(dir, config);
  return { path, key, ...(helper ? { helper } : {}) };
}

/**
 * Removes the credentials of `registry` (`docker logout`): from its credential helper and from
 * `auths`. Resolves false when there were none.
 *
 * @example
 * ```ts
 * import { eraseCredentials, storeCredentials } from "@berth/berth";
 * const dir = await Deno.makeTempDir();
 * await storeCredentials("localhost:5000", { username: "me", password: "pw" }, { configDir: dir });
 * console.log(await eraseCredentials("localhost:5000", { configDir: dir })); // true
 * console.log(await eraseCredentials("localhost:5000", { configDir: dir })); // false
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function eraseCredentials(
  registry: string,
  options: DockerConfigOptions = {},
): Promise<boolean> {
  const dir = dockerConfigDir(options);
  const path = `${dir}/config.json`;
  const config = await readConfig(path);
  const key = credentialKey(registry);
  let removed = false;
  const helper = helperFor(config, key);
  if (helper) {
    const { ok, out } = await runHelper(helper, "erase", key);
    if (ok) removed = true;
    else if (!/credentials not found/i.test(out)) {
      throw new CredentialHelperError(`docker-credential-${helper} erase ${key} failed: ${out}`);
    }
  }
  const found = findAuthEntry(config.auths, key);
  if (found) {
    delete config.auths![found[0]];
    removed ||= found[1] !== undefined;
    await writeConfig(dir, config);
  }
  return removed;
}
