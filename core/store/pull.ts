/**
 * `pull`: an image from a registry into the store, verified and all or nothing.
 *
 * Steps: resolve the reference to a manifest (tag or digest; an image index or manifest list
 * picks the platform), fetch the config, download the layers (3 at a time, those already in the
 * store are skipped: "Already exists") into the command's ingest session while each is unpacked
 * into its snapshot as soon as it is complete, then commit the blobs and record the image with
 * its tag and `name@digest`. Until that last step no image is visible in the store.
 *
 * Snapshots are committed by the unpack, before the blobs and the image record, so everything
 * else that can fail is done first: the manifest is staged and the image DB read before the
 * layers, and the unpack commits nothing unless every download succeeded, so a network, registry
 * or verification error leaves the store as it was. Only an I/O error in the last step (renaming
 * the blobs into place, writing the image record) can leave snapshots and blobs that no image
 * names; nothing shows them, and the next garbage collection (`berth rmi`, `berth image prune`)
 * removes them.
 *
 * @module
 */
import type { Digest } from "../digest.ts";
import { shortDigest } from "../digest.ts";
import {
  BerthError,
  DigestMismatchError,
  InvalidInputError,
  LimitError,
  NotFoundError,
  UnsupportedError,
} from "../errors.ts";
import type { CredentialSource } from "../auth/types.ts";
import { createImage, type Image } from "../image/image.ts";
import {
  isImageManifest,
  MAX_CONFIG_SIZE,
  MAX_MANIFEST_SIZE,
  parseIndex,
  parseJson,
  parseManifest,
  sniffManifestKind,
} from "../image/parse.ts";
import { isIndexMediaType, isManifestMediaType } from "../oci/media_types.ts";
import { formatPlatform, hostPlatform, platformMatches, selectPlatform } from "../oci/platform.ts";
import type { Descriptor, Platform } from "../oci/types.ts";
import {
  familiarString,
  formatReference,
  parseReference,
  type Reference,
  repositoryName,
} from "../reference.ts";
import type { IngestSession, StagedBlob } from "../content/store.ts";
import { readFileChunks } from "../content/read_file.ts";
import { setTag, upsertImage } from "../metadata/image_db.ts";
import type { Store } from "./store.ts";
import { Snapshotter } from "../snapshot/snapshotter.ts";
import { Authenticator } from "../transport/remote/auth.ts";
import {
  type FetchedManifest,
  RemoteRepository,
  type RetryEvent,
} from "../transport/remote/client.ts";
import {
  type Endpoint,
  loadRegistryConfig,
  type RegistryConfig,
  registryEndpoints,
} from "../transport/remote/config.ts";
import { RegistryError } from "../transport/remote/errors.ts";
import { DEFAULT_TIMEOUTS, type HttpTimeouts } from "../transport/remote/http.ts";

/**
 * A layer's state, with docker's wording.
 *
 * @example
 * ```ts
 * import type { LayerStatus } from "@berth/berth";
 * const done = (s: LayerStatus) => s === "Pull complete" || s === "Already exists";
 * ```
 */
export type LayerStatus =
  | "Already exists"
  | "Pulling fs layer"
  | "Waiting"
  | "Downloading"
  | "Retrying"
  | "Verifying Checksum"
  | "Download complete"
  | "Extracting"
  | "Pull complete";

/**
 * What a pull reports as it goes (the CLI draws docker's progress display from these).
 *
 * @example
 * ```ts
 * import type { PullEvent } from "@berth/berth";
 * const line = (e: PullEvent) =>
 *   e.type === "layer" ? `${e.id}: ${e.status}` : e.type === "resolved" ? `Digest: ${e.digest}` : "";
 * ```
 */
export type PullEvent =
  | {
    /** The pull started: `latest: Pulling from library/busybox`. */
    type: "start";
    /** The tag, or the digest when pinned. */
    reference: string;
    /** The repository path on the registry (`library/busybox`). */
    repository: string;
  }
  | {
    /** The manifest (or index) was resolved. */
    type: "resolved";
    /** Digest pulled (the index's when the name points at an index). */
    digest: Digest;
    /** The image manifest's digest. */
    manifest: Digest;
    /** Where it came from, `host/repository`. */
    source: string;
  }
  | {
    /** A layer's state changed, or bytes arrived. */
    type: "layer";
    /** Short id: the first 12 hex digits of the layer digest. */
    id: string;
    digest: Digest;
    status: LayerStatus;
    /** Bytes so far (Downloading, Extracting). */
    current?: number;
    /** Bytes in all (Downloading, Extracting). */
    total?: number;
    /** Retrying: in how many seconds. */
    retryInSeconds?: number;
  }
  | ({
    /** A request is retried (what, why, after how long). */
    type: "retry";
    /** The layer's short id, when it is a layer. */
    id?: string;
  } & RetryEvent);

/**
 * Options of {@linkcode pullImage}.
 *
 * @example
 * ```ts
 * import type { PullOptions } from "@berth/berth";
 * const options: PullOptions = {
 *   platform: { os: "linux", architecture: "arm64" },
 *   onProgress: (e) => e.type === "retry" && console.error(`waiting ${e.delayMs} ms: ${e.reason}`),
 *   registries: { mirrors: { "docker.io": ["http://127.0.0.1:5001"] } },
 *   signal: AbortSignal.timeout(600_000),
 * };
 * ```
 */
export interface PullOptions {
  /** Platform to pick from an image index; default the host's. */
  platform?: Platform;
  /** Progress events (none: quiet). */
  onProgress?: (event: PullEvent) => void;
  /** Aborts the pull (the store stays as it was). */
  signal?: AbortSignal;
  /** Mirrors, plain-HTTP registries, timeouts; default `<root>/registries.json` or `/etc/berth/registries.json`. */
  registries?: RegistryConfig;
  /** Where credentials come from; default docker's config (`$DOCKER_CONFIG`, `~/.docker`). */
  credentials?: CredentialSource;
  /** Layers downloaded at once; default 3. */
  concurrency?: number;
  /** Attempts per request (default: the config's `retries`, else 5). */
  attempts?: number;
  /** Delay before the first retry in ms, doubling up to 10 s (default 500). */
  backoffMs?: number;
  /** Timeouts in ms (default: the config's, else 30 s for a response, 60 s of silence in a body). */
  timeouts?: Partial<HttpTimeouts>;
}

/**
 * The image a pull stored.
 *
 * @example
 * ```ts
 * import type { PulledImage } from "@berth/berth";
 * const status = (p: PulledImage) =>
 *   `Status: ${p.upToDate ? "Image is up to date" : "Downloaded newer image"} for ${p.name}`;
 * ```
 */
export interface PulledImage {
  /** Image ID (config digest). */
  id: Digest;
  /** Digest of the image manifest stored. */
  manifest: Digest;
  /** Digest pulled: the index's (manifest list's) when the name points at one, else the manifest's. */
  digest: Digest;
  /** The reference as docker shows it: `busybox:latest`, `localhost:5000/app@sha256:…`. */
  name: string;
  /** Canonical reference: `docker.io/library/busybox:latest`. */
  reference: string;
  /** Canonical `name@digest` recorded in RepoDigests. */
  repoDigest: string;
  /** True when the name already pointed at this image (nothing new was stored). */
  upToDate: boolean;
  /** The image's platform (from its config). */
  platform: Platform;
  /** Layers, bottom first: whether each was downloaded or already in the store. */
  layers: { digest: Digest; size: number; downloaded: boolean }[];
}

/** A downloaded (staged) blob, or one found in the store. */
interface LayerJob {
  index: number;
  descriptor: Descriptor;
  id: string;
  present: boolean;
  staged?: Promise<StagedBlob>;
  /** Hands the bytes to the unpacker while they are downloaded. */
  tee?: LayerTee;
  /** True once the blob is staged (Extracting is reported from then on). */
  downloaded?: boolean;
  /** True once the unpacker opened the layer (through its tee). */
  opened?: boolean;
}

/** Bytes a layer's tee holds for its unpacker before it spills (see {@linkcode LayerTee}). */
const TEE_LIMIT = 8 << 20;

/**
 * Hands a layer's bytes to its unpacker as they are downloaded, so that unpacking overlaps the
 * download. While the unpacker reads, the download waits for it when `limit` bytes are queued
 * (memory stays bounded); while it has not started (it is busy with a lower layer), the queue
 * spills at `limit` and the unpacker later reads the staged file from where it stopped. The
 * unpacker's stream ends only after the blob was staged with its digest and size verified, so a
 * snapshot is never made visible from unverified bytes.
 */
class LayerTee {
  #chunks: Uint8Array[] = [];
  #bytes = 0;
  #spilled = false;
  #ended = false;
  #attached = false;
  #wakeReader: (() => void) | undefined;
  #wakeWriter: (() => void) | undefined;
  /** Bytes the unpacker took from the queue. */
  consumed = 0;

  /** Queues a chunk; waits while the queue is full and the unpacker is reading. */
  async push(chunk: Uint8Array): Promise<void> {
    if (this.#spilled) return;
    this.#chunks.push(chunk);
    this.#bytes += chunk.byteLength;
    this.#wakeReader?.();
    while (this.#bytes > TEE_LIMIT && !this.#spilled) {
      if (!this.#attached) {
        this.spill();
        return;
      }
      await new Promise<void>((r) => this.#wakeWriter = r);
    }
  }

  /** Stops queueing: the unpacker continues from the staged file. */
  spill(): void {
    this.#spilled = true;
    this.#chunks = [];
    this.#bytes = 0;
    this.#wakeReader?.();
    this.#wakeWriter?.();
  }

  /** Every byte was queued. */
  end(): void {
    this.#ended = true;
    this.#wakeReader?.();
  }

  /** The unpacker's stream: queued bytes, then the rest from the staged file once verified. */
  async *read(staged: Promise<StagedBlob>): AsyncGenerator<Uint8Array> {
    this.#attached = true;
    try {
      while (true) {
        const chunk = this.#chunks.shift();
        if (chunk) {
          this.#bytes -= chunk.byteLength;
          this.consumed += chunk.byteLength;
          this.#wakeWriter?.();
          yield chunk;
          continue;
        }
        if (this.#spilled || this.#ended) break;
        await new Promise<void>((r) => this.#wakeReader = r);
      }
    } finally {
      this.#attached = false;
      this.#wakeWriter?.();
    }
    const blob = await staged;
    if (this.consumed < blob.size) yield* readFileChunks(blob.path, { start: this.consumed });
  }
}

/**
 * Pulls `ref` from its registry into `store`; see the module doc. Errors are one line naming the
 * registry, repository and digest; the store is unchanged by a failed pull.
 *
 * @example
 * ```ts ignore
 * import { pullImage, Store } from "@berth/berth";
 * const store = await Store.open({ root: "/var/lib/berth" });
 * const image = await pullImage(store, "localhost:5000/app:1", {
 *   onProgress: (e) => e.type === "layer" && console.log(e.id, e.status),
 * });
 * console.log(image.id, image.repoDigest);
 * ```
 */
export async function pullImage(
  store: Store,
  ref: string,
  options: PullOptions = {},
): Promise<PulledImage> {
  if (typeof ref !== "string") throw new TypeError("pull needs an image reference");
  const reference = parseReference(ref);
  const concurrency = options.concurrency ?? 3;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  }
  const what = `Cannot pull "${ref}"`;
  const emit = options.onProgress ?? (() => {});
  const config = options.registries ?? await loadRegistryConfig(store.root);
  const timeouts: HttpTimeouts = {
    responseMs: options.timeouts?.responseMs ??
      (config.timeouts?.response ? config.timeouts.response * 1000 : DEFAULT_TIMEOUTS.responseMs),
    idleMs: options.timeouts?.idleMs ??
      (config.timeouts?.idle ? config.timeouts.idle * 1000 : DEFAULT_TIMEOUTS.idleMs),
  };
  // The download stops when the caller aborts, or when one part of the pull failed.
  const abort = new AbortController();
  const onAbort = () => abort.abort(options.signal!.reason);
  if (options.signal?.aborted) throw options.signal.reason;
  options.signal?.addEventListener("abort", onAbort, { once: true });

  let credentials = options.credentials;
  if (!credentials) {
    const { dockerCredentials } = await import("../auth/credentials.ts");
    credentials = dockerCredentials();
  }
  const auth = new Authenticator({ credentials, timeouts, signal: abort.signal });
  const layerIds = new Map<string, string>();
  const repos = registryEndpoints(reference.domain, config).map((endpoint: Endpoint) =>
    new RemoteRepository(endpoint, reference.path, {
      auth,
      what,
      timeouts,
      attempts: options.attempts ?? config.retries ?? 5,
      ...(options.backoffMs !== undefined ? { backoffMs: options.backoffMs } : {}),
      signal: abort.signal,
      onRetry: (e) => {
        const id = layerIds.get(e.what);
        emit({ type: "retry", ...e, ...(id ? { id } : {}) });
        if (id) {
          const digest = e.what.slice(e.what.indexOf(" ") + 1) as Digest;
          emit({
            type: "layer",
            id,
            digest,
            status: "Retrying",
            retryInSeconds: Math.ceil(e.delayMs / 1000),
          });
        }
      },
    })
  );

  try {
    using _gc = await store.gcShared();
    const session = await store.content.session();
    try {
      emit({
        type: "start",
        reference: reference.digest ?? reference.tag ?? "latest",
        repository: reference.path,
      });
      const resolved = await resolve(reference, repos, {
        what,
        name: familiarString(reference),
        ...(options.platform ? { platform: options.platform } : {}),
      });
      emit({
        type: "resolved",
        digest: resolved.digest,
        manifest: resolved.manifest.digest,
        source: resolved.repo.name,
      });
      const order = [resolved.repo, ...repos.filter((r) => r !== resolved.repo)];
      const image = await fetchImage(store, session, resolved.manifest, order, what);
      if (options.platform && !resolved.fromIndex) {
        const have: Platform = {
          os: image.image.config.os,
          architecture: image.image.config.architecture,
          ...(image.image.config.variant ? { variant: image.image.config.variant } : {}),
        };
        if (!platformMatches(options.platform, have)) {
          throw new UnsupportedError(
            `${what}: image ${familiarString(reference)} was found but its platform ` +
              `(${formatPlatform(have)}) does not match the specified platform ` +
              `(${formatPlatform(options.platform)})`,
          );
        }
      }
      // What can fail is done before the layers, whose snapshots are committed once unpacked.
      const manifestBlob = await session.stage([resolved.manifest.bytes], {
        expected: { digest: resolved.manifest.digest, size: resolved.manifest.bytes.byteLength },
        what: `${what}: manifest ${resolved.manifest.digest}`,
      });
      await store.imageDb.read(); // a corrupt image DB fails here, not after the unpack
      const { sizes, jobs } = await fetchLayers(store, session, image, order, {
        what,
        emit,
        concurrency,
        layerIds,
        abort,
      });
      // Everything is verified (blobs by digest and size, layers by diffID): make it visible.
      for (const job of jobs) if (job.staged) await store.content.commit(await job.staged);
      if (image.configStaged) await store.content.commit(image.configStaged);
      await store.content.commit(manifestBlob);
      await store.content.syncDir();

      const canonical = formatReference(reference);
      const repoDigest = `${repositoryName(reference)}@${resolved.digest}`;
      const size = image.image.layers.reduce((n, l) => n + (sizes.get(l.digest) ?? 0), 0);
      const now = new Date().toISOString();
      const upToDate = await store.imageDb.update((data) => {
        const before = reference.tag !== undefined && !reference.digest
          ? data.images.find((i) => i.repoTags.includes(canonical))
          : data.images.find((i) => i.repoDigests.includes(repoDigest));
        const same = before?.id === image.image.configDigest &&
          before.manifest === image.image.manifestDigest;
        const record = upsertImage(
          data,
          { id: image.image.configDigest, manifest: image.image.manifestDigest },
          size,
          now,
        );
        if (reference.tag !== undefined && !reference.digest) {
          setTag(data, record.id, canonical, now);
        }
        if (!record.repoDigests.includes(repoDigest)) record.repoDigests.push(repoDigest);
        return same;
      });
      for (const job of jobs) {
        if (!job.present) {
          emit({
            type: "layer",
            id: job.id,
            digest: job.descriptor.digest,
            status: "Pull complete",
          });
        }
      }
      return {
        id: image.image.configDigest,
        manifest: image.image.manifestDigest,
        digest: resolved.digest,
        name: familiarString(reference),
        reference: canonical,
        repoDigest,
        upToDate,
        platform: {
          os: image.image.config.os,
          architecture: image.image.config.architecture,
          ...(image.image.config.variant ? { variant: image.image.config.variant } : {}),
        },
        layers: image.image.layers.map((l) => ({
          digest: l.digest,
          size: l.size,
          downloaded: jobs.some((j) => j.descriptor.digest === l.digest && !j.present),
        })),
      };
    } finally {
      await session.close();
    }
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
  }
}

interface Resolved {
  /** The digest the name resolved to (index or manifest). */
  digest: Digest;
  /** The image manifest. */
  manifest: FetchedManifest;
  fromIndex: boolean;
  /** Where it was found. */
  repo: RemoteRepository;
}

/**
 * Tries each endpoint in order (mirrors, then the registry); a mirror's failure moves on to the
 * next, the registry's is the error.
 */
async function eachEndpoint<T>(
  repos: RemoteRepository[],
  fn: (repo: RemoteRepository) => Promise<T>,
): Promise<T> {
  let last: unknown;
  for (const repo of repos) {
    try {
      return await fn(repo);
    } catch (e) {
      last = e;
      if (!repo.endpoint.mirror || !(e instanceof BerthError)) throw e;
    }
  }
  throw last;
}

/** The manifest `reference` names, through an index when it is one. */
async function resolve(
  reference: Reference,
  repos: RemoteRepository[],
  o: { what: string; name: string; platform?: Platform },
): Promise<Resolved> {
  const { what } = o;
  const tagOrDigest = reference.digest ?? reference.tag ?? "latest";
  return await eachEndpoint(repos, async (repo) => {
    let top: FetchedManifest;
    try {
      top = await repo.manifest(tagOrDigest);
    } catch (e) {
      if (e instanceof RegistryError && e.status === 404) {
        throw new NotFoundError(
          `${what}: manifest for ${o.name} not found: ${
            e.code === "NAME_UNKNOWN" ? "repository name not known to registry" : "manifest unknown"
          } (${repo.name})`,
          { cause: e },
        );
      }
      throw e;
    }
    const where = `manifest ${top.digest} from ${repo.name}`;
    const kind = kindOf(top, `${what}: ${where}`);
    if (kind === "manifest") return { digest: top.digest, manifest: top, fromIndex: false, repo };
    const index = parseIndex(top.bytes, `${what}: index ${top.digest} from ${repo.name}`);
    const images = index.manifests.filter((d) =>
      isManifestMediaType(d.mediaType) || d.mediaType === undefined
    );
    const chosen = selectPlatform(
      images,
      o.platform ?? hostPlatform(),
      `${what}: index ${top.digest} from ${repo.name}`,
    );
    const child = await repo.manifest(chosen.digest);
    if (child.bytes.byteLength !== chosen.size) {
      throw new DigestMismatchError(
        `${what}: manifest ${chosen.digest} from ${repo.name} is ${child.bytes.byteLength} bytes, not the size ${chosen.size} its index declares`,
      );
    }
    if (kindOf(child, `${what}: manifest ${chosen.digest} from ${repo.name}`) !== "manifest") {
      throw new UnsupportedError(
        `${what}: index ${top.digest} from ${repo.name} names ${chosen.digest}, which is not an image manifest`,
      );
    }
    return { digest: top.digest, manifest: child, fromIndex: true, repo };
  });
}

/** `manifest` or `index`; throws on schema 1, unknown media types and malformed JSON. */
function kindOf(m: FetchedManifest, what: string): "manifest" | "index" {
  const doc = parseJson(m.bytes, what, MAX_MANIFEST_SIZE);
  const kind = sniffManifestKind(doc);
  if (kind === "schema1") {
    throw new UnsupportedError(
      `${what} is a Docker schema 1 manifest (${
        m.mediaType || "schemaVersion 1"
      }), which berth does not support (deprecated since 2017)`,
    );
  }
  if (
    kind === "index" &&
    (isIndexMediaType(m.mediaType) || !m.mediaType || m.mediaType.endsWith("json"))
  ) {
    return "index";
  }
  if (kind === "manifest") return "manifest";
  throw new UnsupportedError(`${what} has unsupported media type "${m.mediaType || "(none)"}"`);
}

interface FetchedImage {
  image: Image;
  configStaged?: StagedBlob;
}

/** Fetches (or finds) the config and builds the image model. */
async function fetchImage(
  store: Store,
  session: IngestSession,
  manifest: FetchedManifest,
  repos: RemoteRepository[],
  what: string,
): Promise<FetchedImage> {
  const m = parseManifest(
    manifest.bytes,
    `${what}: manifest ${manifest.digest} from ${repos[0].name}`,
  );
  if (!isImageManifest(m)) {
    throw new UnsupportedError(
      `${what}: manifest ${manifest.digest} from ${
        repos[0].name
      } is not a container image (config media type "${m.config.mediaType}")`,
    );
  }
  const desc = m.config;
  if (desc.size > MAX_CONFIG_SIZE) {
    throw new LimitError(
      `${what}: config ${desc.digest} from ${
        repos[0].name
      } is ${desc.size} bytes, more than the limit of ${MAX_CONFIG_SIZE}`,
    );
  }
  let configBytes: Uint8Array;
  let configStaged: StagedBlob | undefined;
  if (await store.content.has(desc.digest)) {
    configBytes = await store.content.readBytes(desc.digest, MAX_CONFIG_SIZE);
  } else {
    configStaged = await eachEndpoint(
      repos,
      (repo) =>
        session.stage(repo.blob(desc, { label: `config ${desc.digest}` }), {
          expected: { digest: desc.digest, size: desc.size },
          what: `${what}: config ${desc.digest} from ${repo.name}`,
        }),
    );
    configBytes = await Deno.readFile(configStaged.path);
  }
  const image = createImage(manifest.digest, manifest.bytes, configBytes, {
    what: `${what}: image ${manifest.digest} from ${repos[0].name}`,
  });
  for (const layer of image.layers) {
    if (layer.compression === "none" && layer.digest !== layer.diffID) {
      throw new InvalidInputError(
        `${what}: layer ${layer.digest} from ${
          repos[0].name
        } does not match diff_id ${layer.diffID} of config ${image.configDigest}`,
      );
    }
  }
  return { image, ...(configStaged ? { configStaged } : {}) };
}

/** Counts bytes read from `source` into Extracting events (throttled). */
async function* counting(
  source: AsyncIterable<Uint8Array>,
  report: (n: number) => void,
): AsyncGenerator<Uint8Array> {
  let n = 0;
  for await (const chunk of source) {
    n += chunk.byteLength;
    report(n);
    yield chunk;
  }
}

/** A throttle: true at most every `ms`, and always for `force`. */
function throttle(ms: number): (force?: boolean) => boolean {
  let last = 0;
  return (force = false) => {
    const now = performance.now();
    if (!force && now - last < ms) return false;
    last = now;
    return true;
  };
}

/**
 * Downloads the layers not in the store (`concurrency` at a time) while unpacking each into its
 * snapshot as soon as its blob is staged; resolves with the uncompressed sizes.
 */
async function fetchLayers(
  store: Store,
  session: IngestSession,
  fetched: FetchedImage,
  repos: RemoteRepository[],
  o: {
    what: string;
    emit: (e: PullEvent) => void;
    concurrency: number;
    layerIds: Map<string, string>;
    abort: AbortController;
  },
): Promise<{ sizes: Map<Digest, number>; jobs: LayerJob[] }> {
  const { image } = fetched;
  const { what, emit } = o;
  const jobs: LayerJob[] = [];
  const byDigest = new Map<Digest, LayerJob>();
  for (const [index, layer] of image.layers.entries()) {
    if (byDigest.has(layer.digest)) continue;
    const descriptor = image.manifest.layers[index];
    const job: LayerJob = {
      index,
      descriptor,
      id: shortDigest(layer.digest),
      present: await store.content.has(layer.digest),
    };
    byDigest.set(layer.digest, job);
    jobs.push(job);
    o.layerIds.set(`layer ${layer.digest}`, job.id);
  }
  const todo = jobs.filter((j) => !j.present);
  for (const job of jobs) {
    emit({
      type: "layer",
      id: job.id,
      digest: job.descriptor.digest,
      status: job.present ? "Already exists" : "Pulling fs layer",
    });
  }
  todo.slice(o.concurrency).forEach((job) =>
    emit({ type: "layer", id: job.id, digest: job.descriptor.digest, status: "Waiting" })
  );

  // Each layer's staged blob, as a promise the unpacker can wait for.
  const settle = new Map<
    LayerJob,
    { resolve: (b: StagedBlob) => void; reject: (e: unknown) => void }
  >();
  for (const job of todo) {
    job.tee = new LayerTee();
    job.staged = new Promise<StagedBlob>((resolve, reject) => settle.set(job, { resolve, reject }));
    job.staged.catch(() => {}); // observed below; never an unhandled rejection
  }
  const download = async (job: LayerJob): Promise<StagedBlob> => {
    const d = job.descriptor;
    const total = d.size;
    const tick = throttle(100);
    emit({ type: "layer", id: job.id, digest: d.digest, status: "Downloading", current: 0, total });
    const tee = job.tee!;
    let attempt = 0;
    let firstError: unknown;
    const staged = await eachEndpoint(repos, async (repo) => {
      if (attempt++ > 0) {
        // Another endpoint after a failure: what the unpacker took cannot be taken back.
        if (tee.consumed > 0) throw firstError;
        tee.spill();
      }
      const blob = repo.blob(d, {
        label: `layer ${d.digest}`,
        onBytes: (n) => {
          if (tick(n >= total)) {
            emit({
              type: "layer",
              id: job.id,
              digest: d.digest,
              status: "Downloading",
              current: n,
              total,
            });
          }
          if (n >= total) {
            emit({ type: "layer", id: job.id, digest: d.digest, status: "Verifying Checksum" });
          }
        },
      });
      const source = async function* () {
        for await (const chunk of blob) {
          await tee.push(chunk);
          yield chunk;
        }
        tee.end();
      };
      try {
        return await session.stage(source(), {
          expected: { digest: d.digest, size: d.size },
          what: `${what}: layer ${d.digest} from ${repo.name}`,
        });
      } catch (e) {
        firstError ??= e;
        tee.spill(); // wakes an unpacker waiting for bytes that will not come
        throw e;
      }
    });
    job.downloaded = true;
    emit({ type: "layer", id: job.id, digest: d.digest, status: "Download complete" });
    // Unpacking began with the download; from now on it is what this layer waits for.
    emit({
      type: "layer",
      id: job.id,
      digest: d.digest,
      status: "Extracting",
      current: tee.consumed,
      total,
    });
    return staged;
  };
  const queue = [...todo];
  let failed: { error: unknown } | undefined;
  const worker = async () => {
    while (queue.length > 0 && !failed) {
      const job = queue.shift()!;
      try {
        settle.get(job)!.resolve(await download(job));
      } catch (error) {
        failed ??= { error };
        settle.get(job)!.reject(error);
        o.abort.abort(error);
      }
    }
  };
  const downloads = Promise.all(
    Array.from({ length: Math.min(o.concurrency, todo.length) }, worker),
  )
    .then(() => {
      // Jobs never started (a failure stopped the workers) fail their waiters too.
      for (const job of queue) {
        settle.get(job)!.reject(failed?.error ?? new Error("not downloaded"));
      }
    });

  const sources = image.layers.map((layer) => {
    const job = byDigest.get(layer.digest)!;
    return {
      layer,
      open: (): AsyncIterable<Uint8Array> => {
        const tick = throttle(100);
        const total = layer.size;
        const report = (n: number) => {
          if (!job.present && job.downloaded && tick(n >= total)) {
            emit({
              type: "layer",
              id: job.id,
              digest: layer.digest,
              status: "Extracting",
              current: n,
              total,
            });
          }
        };
        if (job.present) return store.content.read(layer.digest);
        // A blob named twice in one image is unpacked twice: the second reads the staged file.
        if (job.opened) {
          const staged = job.staged!;
          return (async function* () {
            yield* readFileChunks((await staged).path);
          })();
        }
        job.opened = true;
        return counting(job.tee!.read(job.staged!), report);
      },
    };
  });
  // A layer whose snapshot exists is not unpacked, so the unpacker would not see its download
  // fail: every layer it reads also waits for those downloads before it ends, so that a pull
  // whose download fails commits no snapshot.
  const chain = Snapshotter.chainIDs(image.layers.map((l) => l.diffID));
  const unread: Promise<StagedBlob>[] = [];
  for (const [i, layer] of image.layers.entries()) {
    const job = byDigest.get(layer.digest)!;
    if (job.staged && await store.snapshots.has(chain[i])) unread.push(job.staged);
  }
  const waiting = unread.length === 0 ? sources : sources.map(({ layer, open }) => ({
    layer,
    open: async function* () {
      yield* open();
      await Promise.all(unread);
    },
  }));
  let unpackError: { error: unknown } | undefined;
  const unpacked = store.snapshots.unpack(waiting, { what }).catch((error) => {
    unpackError = { error };
    o.abort.abort(error);
    return undefined;
  });
  await downloads;
  const sizes = await unpacked;
  // A download failure explains an unpack failure better than the unpack does.
  if (failed) throw failed.error;
  if (unpackError) throw unpackError.error;
  return { sizes: sizes!, jobs };
}
