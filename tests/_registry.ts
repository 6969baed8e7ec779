/**
 * A real registry for the pull tests: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1,
 * plain HTTP, with its config, storage and log in a temp dir, filled with skopeo.
 *
 * Three auth modes: `none`; `basic` (an htpasswd file written with `htpasswd -Bbn`, bcrypt);
 * `token` (a {@linkcode TokenIssuer} from `_token_issuer.ts` whose self-signed certificate is the
 * registry's `rootcertbundle`, so the registry's own JWT verification checks every token).
 *
 * @example
 * ```ts ignore
 * await using reg = await startRegistry({ auth: "basic" });
 * const digest = await reg.push(`oci-archive:${fx.ociArchive}:latest`, "library/busybox:latest");
 * // skopeo inspect --tls-verify=false --creds … docker://${reg.host}/library/busybox:latest
 * ```
 *
 * @module
 */

import { fixtures, runSkopeo } from "./_fixtures.ts";
import { startTokenIssuer, type TokenIssuer, type TokenIssuerOptions } from "./_token_issuer.ts";

/** Options of {@linkcode startRegistry}. */
export interface RegistryOptions {
  /** Auth mode (default `none`). */
  auth?: "none" | "basic" | "token";
  /**
   * `username → password` for `basic` and `token` (default one user, `berth` with a random
   * password). The first one is {@linkcode Registry.credentials}, which {@linkcode Registry.push}
   * uses.
   */
  users?: Record<string, string>;
  /** Token mode: more issuer options (`anonymousPull`, `expiresIn`, `grant`, …). */
  token?: Omit<TokenIssuerOptions, "users" | "dir">;
  /** distribution's `log.level` (default `warn`); the log is {@linkcode Registry.logPath}. */
  logLevel?: "error" | "warn" | "info" | "debug";
}

/** Options of {@linkcode Registry.push}. */
export interface PushOptions {
  /** `skopeo copy --format`: manifest type written (default: the source's). */
  format?: "oci" | "v2s2";
  /** `skopeo copy --all`: push every image of an index / manifest list, and the list itself. */
  all?: boolean;
  /**
   * `skopeo copy --dest-compress-format`. skopeo 1.9 applies it only to layers it compresses
   * (uncompressed sources); gzip layers stay gzip. Push a zstd source to get zstd layers.
   */
  compress?: "gzip" | "zstd";
  /**
   * `skopeo copy --preserve-digests`: fail rather than change a digest. Without it skopeo gzips
   * plain-`tar` layers on the way to a registry.
   */
  preserveDigests?: boolean;
}

/** A running registry. Dispose (`await using`) or {@linkcode Registry.stop} kills it and removes its dir. */
export interface Registry extends AsyncDisposable {
  /** `127.0.0.1:PORT`. */
  host: string;
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** The filesystem storage root (`docker/registry/v2/…`). */
  storage: string;
  /** The temp dir holding config.yml, storage, htpasswd and the log. */
  dir: string;
  /** The registry's stdout+stderr. */
  logPath: string;
  /** Auth mode. */
  auth: "none" | "basic" | "token";
  /**
   * `skopeo copy SRC docker://HOST/REPO` with the right TLS and credential flags; resolves with the
   * digest of the manifest (or, with `all`, of the index / list) pushed.
   */
  push(src: string, repo: string, options?: PushOptions): Promise<string>;
  /**
   * skopeo flags to reach this registry: `--<prefix>tls-verify=false` and, when it has
   * credentials, `--<prefix>creds USER:PASS`. `prefix` is `src`, `dest` or none (`inspect`).
   */
  skopeoFlags(prefix?: "src" | "dest" | ""): string[];
  /** The first user (basic and token modes). */
  credentials?: { username: string; password: string };
  /** All users (basic and token modes). */
  users: Record<string, string>;
  /** Token mode: the issuer the registry trusts. */
  tokenIssuer?: TokenIssuer;
  /** Kills the registry (and the issuer) and removes the temp dir. */
  stop(): Promise<void>;
}

const dec = new TextDecoder();

async function exec(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} exited ${out.code}: ${dec.decode(out.stderr)}`);
  }
  return dec.decode(out.stdout);
}

/** A port the kernel just handed out on 127.0.0.1 (released; a race is retried by the caller). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function yamlString(s: string): string {
  return JSON.stringify(s);
}

function randomSecret(): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(16)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

interface Running {
  child: Deno.ChildProcess;
  log: Promise<void>;
  status: Promise<Deno.CommandStatus>;
}

async function spawnRegistry(config: string, logPath: string): Promise<Running> {
  // setpriv --pdeathsig: the registry dies with this process even when it is killed.
  const child = new Deno.Command("setpriv", {
    args: ["--pdeathsig", "SIGKILL", "--", "docker-registry", "serve", config],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const file = await Deno.open(logPath, { write: true, create: true, append: true });
  // Both streams into one file; each pipe gets its own writer over the shared file.
  const sink = (s: ReadableStream<Uint8Array>) =>
    s.pipeTo(
      new WritableStream({
        async write(chunk) {
          let off = 0;
          while (off < chunk.length) off += await file.write(chunk.subarray(off));
        },
      }),
    ).catch(() => {});
  const log = Promise.all([sink(child.stdout), sink(child.stderr)]).then(() => file.close());
  return { child, log, status: child.status };
}

async function tail(path: string): Promise<string> {
  const text = await Deno.readTextFile(path).catch(() => "");
  const last = text.slice(text.lastIndexOf("--- start on port"));
  return last.trim().split("\n").slice(-20).join("\n");
}

/**
 * Waits until `GET /v2/` answers (200, or 401 with auth) with this instance's `X-Berth-Registry`
 * header (not another process's server on a port lost in a race). Resolves false if the process
 * exits first; throws on timeout.
 */
async function waitReady(
  url: string,
  id: string,
  running: Running,
  timeoutMs = 15000,
): Promise<boolean> {
  let exited = false;
  running.status.then(() => exited = true);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited) return false;
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 1000);
    try {
      const res = await Promise.race([
        fetch(`${url}/v2/`, { signal: ctl.signal }),
        running.status.then(() => undefined),
      ]);
      await res?.body?.cancel();
      const ours = res?.headers.get("x-berth-registry") === id;
      if (ours && (res.status === 200 || res.status === 401)) return true;
    } catch {
      // not listening yet
    } finally {
      clearTimeout(timer);
      ctl.abort();
    }
    await new Promise((r) => setTimeout(r, 30));
  }
  throw new Error(`docker-registry at ${url} did not answer GET /v2/ within ${timeoutMs} ms`);
}

/** Removes registry dirs left by test processes that died (their `owner.pid` is gone). */
async function sweepStale(): Promise<void> {
  for await (const e of Deno.readDir("/var/tmp")) {
    if (!e.isDirectory || !e.name.startsWith("berth-registry-")) continue;
    const path = `/var/tmp/${e.name}`;
    const pid = await Deno.readTextFile(`${path}/owner.pid`).catch(() => "");
    if (pid === "") {
      const st = await Deno.stat(path).catch(() => null);
      if (!st?.mtime || Date.now() - st.mtime.getTime() < 3600_000) continue;
    } else if (await Deno.stat(`/proc/${pid.trim()}`).then(() => true, () => false)) continue;
    await Deno.remove(path, { recursive: true }).catch(() => {});
  }
}

/**
 * Starts `docker-registry serve` on a free 127.0.0.1 port with a temp storage dir and resolves
 * once `GET /v2/` answers.
 */
export async function startRegistry(options: RegistryOptions = {}): Promise<Registry> {
  const auth = options.auth ?? "none";
  await sweepStale().catch(() => {});
  const dir = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "berth-registry-" });
  await Deno.writeTextFile(`${dir}/owner.pid`, String(Deno.pid));
  const storage = `${dir}/storage`;
  const logPath = `${dir}/registry.log`;
  const configPath = `${dir}/config.yml`;
  let issuer: TokenIssuer | undefined;
  let running: Running | undefined;
  const users = auth === "none" ? {} : { ...(options.users ?? { berth: randomSecret() }) };
  const first = Object.entries(users)[0];
  const credentials = first ? { username: first[0], password: first[1] } : undefined;

  const kill = async () => {
    if (!running) return;
    const r = running;
    running = undefined;
    try {
      r.child.kill("SIGTERM");
    } catch {
      // already gone
    }
    const timer = setTimeout(() => {
      try {
        r.child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }, 3000);
    await r.status;
    clearTimeout(timer);
    await r.log;
  };

  try {
    await Deno.mkdir(storage);
    let authYaml = "";
    if (auth === "basic") {
      let htpasswd = "";
      for (const [user, pass] of Object.entries(users)) {
        htpasswd += (await exec("htpasswd", ["-Bbn", user, pass])).trim() + "\n";
      }
      await Deno.writeTextFile(`${dir}/htpasswd`, htpasswd);
      authYaml = `auth:\n  htpasswd:\n    realm: berth-test-registry\n` +
        `    path: ${yamlString(`${dir}/htpasswd`)}\n`;
    } else if (auth === "token") {
      issuer = await startTokenIssuer({ ...options.token, users, dir });
      authYaml = `auth:\n  token:\n    realm: ${yamlString(issuer.realm)}\n` +
        `    service: ${yamlString(issuer.service)}\n` +
        `    issuer: ${yamlString(issuer.issuer)}\n` +
        `    rootcertbundle: ${yamlString(issuer.certPath)}\n`;
    }

    for (let attempt = 0;; attempt++) {
      const port = freePort();
      const id = randomSecret();
      const config = `version: 0.1
log:
  level: ${options.logLevel ?? "warn"}
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${yamlString(storage)}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:${port}
  secret: ${randomSecret()}
  headers:
    X-Berth-Registry: [${id}]
${authYaml}`;
      await Deno.writeTextFile(configPath, config);
      await Deno.writeTextFile(logPath, `--- start on port ${port}\n`, { append: true });
      running = await spawnRegistry(configPath, logPath);
      const url = `http://127.0.0.1:${port}`;
      if (await waitReady(url, id, running)) {
        const host = `127.0.0.1:${port}`;
        let stopped: Promise<void> | undefined;
        const registry: Registry = {
          host,
          url,
          storage,
          dir,
          logPath,
          auth,
          users,
          credentials,
          tokenIssuer: issuer,
          skopeoFlags(prefix = "") {
            const p = prefix ? `${prefix}-` : "";
            const flags = [`--${p}tls-verify=false`];
            if (credentials) {
              flags.push(`--${p}creds`, `${credentials.username}:${credentials.password}`);
            }
            return flags;
          },
          async push(src, repo, opts = {}) {
            const digestFile = `${dir}/digest-${crypto.randomUUID()}`;
            const args = ["copy", "-q", "--retry-times", "0", ...registry.skopeoFlags("dest")];
            if (opts.all) args.push("--all");
            if (opts.format) args.push("--format", opts.format);
            if (opts.compress) args.push("--dest-compress-format", opts.compress);
            if (opts.preserveDigests) args.push("--preserve-digests");
            args.push("--digestfile", digestFile, src, `docker://${host}/${repo}`);
            await runSkopeo(args);
            const digest = (await Deno.readTextFile(digestFile)).trim();
            await Deno.remove(digestFile);
            return digest;
          },
          stop() {
            stopped ??= (async () => {
              await kill();
              await issuer?.stop();
              await Deno.remove(dir, { recursive: true }).catch(() => {});
            })();
            return stopped;
          },
          [Symbol.asyncDispose]() {
            return registry.stop();
          },
        };
        return registry;
      }
      // The process exited before answering: a lost race for the port is retried.
      const r = running;
      running = undefined;
      await r.log;
      const log = await tail(logPath);
      if (!/address already in use/i.test(log) || attempt >= 5) {
        throw new Error(`docker-registry exited (${(await r.status).code}): ${log}`);
      }
    }
  } catch (e) {
    await kill();
    await issuer?.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
}

/** One image {@linkcode pushFixtures} pushed. */
export interface PushedImage {
  /** `repo:tag` inside the registry (no host). */
  ref: string;
  /** Digest of the top manifest (the index / list for multi-arch). */
  digest: string;
  /** Media type of that manifest. */
  mediaType: string;
  /** The fixture archive it came from. */
  source: string;
}

/** What {@linkcode pushFixtures} fills a registry with (keys of its result). */
export type FixtureKey =
  | "oci"
  | "v2s2"
  | "zstd"
  | "uncompressed"
  | "index"
  | "manifestList"
  | "whiteout";

/** The images {@linkcode pushFixtures} pushed, by kind. */
export type PushedFixtures = Partial<Record<FixtureKey, PushedImage>>;

/**
 * Pushes the fixture images (from `tests/_fixtures.ts`) into `registry`, concurrently:
 * `library/busybox:latest` (OCI manifest, gzip), `library/busybox:v2s2` (the same image as a
 * Docker schema2 manifest, `--format v2s2`), `library/busybox:zstd` (`tar+zstd` layers),
 * `library/busybox:uncompressed` (plain `tar` layers), `library/multiarch:latest` (OCI index of
 * amd64, arm64, arm/v7; `--all`), `library/manifestlist:latest` (Docker manifest list; `--all`;
 * absent when podman could not build it) and `library/whiteout:latest` (5 layers with whiteouts).
 * `only` limits the set. Every push but `v2s2` uses `--preserve-digests`, so the digests are the
 * fixtures' own (`fx.expected`).
 */
export async function pushFixtures(
  registry: Registry,
  only?: FixtureKey[],
): Promise<PushedFixtures> {
  const fx = await fixtures();
  const keep = { preserveDigests: true };
  const plan: [FixtureKey, string | undefined, string, PushOptions, string][] = [
    ["oci", fx.ociArchive, "library/busybox:latest", keep, OCI_MANIFEST],
    ["v2s2", fx.ociArchive, "library/busybox:v2s2", { format: "v2s2" }, DOCKER_MANIFEST],
    ["zstd", fx.zstdOciArchive, "library/busybox:zstd", keep, OCI_MANIFEST],
    ["uncompressed", fx.uncompressedOciArchive, "library/busybox:uncompressed", keep, OCI_MANIFEST],
    [
      "index",
      fx.multiArchOciArchive,
      "library/multiarch:latest",
      { ...keep, all: true },
      OCI_INDEX,
    ],
    [
      "manifestList",
      fx.manifestListDockerArchive,
      "library/manifestlist:latest",
      { ...keep, all: true },
      DOCKER_LIST,
    ],
    ["whiteout", fx.whiteoutOciArchive, "library/whiteout:latest", keep, OCI_MANIFEST],
  ];
  const out: PushedFixtures = {};
  // One repository at a time (concurrent uploads of one blob into one repository can race in
  // distribution 2.8); different repositories in parallel.
  const chains = new Map<string, Promise<void>>();
  for (const [key, source, ref, opts, mediaType] of plan) {
    if (!source || (only && !only.includes(key))) continue;
    const repo = ref.slice(0, ref.lastIndexOf(":"));
    const prev = chains.get(repo) ?? Promise.resolve();
    chains.set(
      repo,
      prev.then(async () => {
        const digest = await registry.push(`oci-archive:${source}`, ref, opts);
        out[key] = { ref, digest, mediaType, source };
      }),
    );
  }
  await Promise.all(chains.values());
  return out;
}

/** OCI image manifest media type. */
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** OCI image index media type. */
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
/** Docker schema2 manifest media type. */
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
/** Docker manifest list media type. */
export const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
