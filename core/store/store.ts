/**
 * The store facade: one directory (`--root`, `$BERTH_ROOT`, `/var/lib/berth`) holding blobs, image
 * records and (later) snapshots and containers. Commands and the library go through it.
 *
 * @module
 */
import type { Digest } from "../digest.ts";
import { BerthError, ConflictError, LimitError, NotFoundError } from "../errors.ts";
import { ContentStore, type StagedBlob } from "../content/store.ts";
import { readFileChunks } from "../content/read_file.ts";
import {
  ImageDb,
  type ImageDbData,
  type ImageRecord,
  setTag,
  upsertImage,
} from "../metadata/image_db.ts";
import { acquireLock } from "../lock.ts";
import {
  MAX_CONFIG_SIZE,
  MAX_EXPANSION,
  MAX_MANIFEST_SIZE,
  parseConfig,
  parseManifest,
} from "../image/parse.ts";
import { createImage, type Image } from "../image/image.ts";
import { hostPlatform } from "../oci/platform.ts";
import type { Platform } from "../oci/types.ts";
import { familiarString, formatReference, parseReference } from "../reference.ts";
import { resolveImage } from "./resolve.ts";
import { Snapshotter } from "../snapshot/snapshotter.ts";
import { ContainerDb } from "../metadata/container_db.ts";
import type { RunImageOptions, RunResult } from "./run_image.ts";
import type { CreateContainerOptions } from "./containers.ts";
import { Container } from "./container.ts";
import { dirSize } from "./dir_size.ts";
import type { PulledImage, PullOptions } from "./pull.ts";
import { discardInit } from "../runtime/_prepare_init.ts";
import { type ImageInspect, inspectImage } from "./inspect_image.ts";
import type { ArchiveImage } from "../transport/archive_reader.ts";
import type { ArchiveEntry } from "../transport/archive_writer.ts";

/**
 * Default store root, used when neither `root` nor `$BERTH_ROOT` is given.
 *
 * @example
 * ```ts
 * import { DEFAULT_ROOT } from "@berth/berth";
 * console.log(DEFAULT_ROOT); // "/var/lib/berth"
 * ```
 */
export const DEFAULT_ROOT = "/var/lib/berth";

/**
 * Options of {@linkcode Store.open}.
 *
 * @example
 * ```ts
 * import type { StoreOptions } from "@berth/berth";
 * const options: StoreOptions = { root: "/var/lib/berth" };
 * ```
 */
export interface StoreOptions {
  /** Store directory; default `$BERTH_ROOT` or `/var/lib/berth`. */
  root?: string;
}

/**
 * An image as `images` lists it.
 *
 * @example
 * ```ts
 * import type { ImageSummary } from "@berth/berth";
 * const show = (i: ImageSummary) => `${i.repoTags[0] ?? "<none>"} ${i.id.slice(7, 19)} ${i.size}`;
 * ```
 */
export interface ImageSummary {
  /** Image ID (config digest). */
  id: Digest;
  /** Tags as docker shows them (`busybox:latest`). */
  repoTags: string[];
  /** `name@sha256:…` as docker shows them. */
  repoDigests: string[];
  /** Manifest digest in the store. */
  manifest: Digest;
  /** Creation time from the image config (ISO 8601), if any. */
  created?: string;
  /** Uncompressed size in bytes. */
  size: number;
}

/**
 * One image `load` stored.
 *
 * @example
 * ```ts
 * import type { LoadedImage } from "@berth/berth";
 * const line = (i: LoadedImage) => i.tags.length ? `Loaded image: ${i.tags[0]}` : `Loaded image ID: ${i.id}`;
 * ```
 */
export interface LoadedImage {
  id: Digest;
  manifest: Digest;
  /** Tags as docker shows them. */
  tags: string[];
}

/**
 * Options of {@linkcode Store.load}.
 *
 * @example
 * ```ts
 * import type { LoadOptions } from "@berth/berth";
 * const options: LoadOptions = { name: "app.tar", platform: { os: "linux", architecture: "arm64" } };
 * ```
 */
export interface LoadOptions {
  /** How the source is named in errors (e.g. the file name); default `stdin`. */
  name?: string;
  /** Platform to pick from multi-platform images; default the host's. */
  platform?: Platform;
}

/**
 * Options of {@linkcode Store.import}.
 *
 * @example
 * ```ts
 * import type { ImportRootfsOptions } from "@berth/berth";
 * const options: ImportRootfsOptions = { ref: "me/rootfs:1", changes: ['CMD ["sh"]'] };
 * ```
 */
export interface ImportRootfsOptions {
  /** Tag for the new image. */
  ref?: string;
  /** Source name for errors. */
  name?: string;
  /** `--change` Dockerfile instructions. */
  changes?: string[];
  /** `--message` recorded in the history. */
  message?: string;
  /** Platform to record; default the host's. */
  platform?: Platform;
}

/**
 * What `system df` reports (bytes).
 *
 * @example
 * ```ts
 * import type { DiskUsage } from "@berth/berth";
 * const line = (d: DiskUsage) => `${d.images} images, ${d.containers} containers (${d.running} up)`;
 * ```
 */
export interface DiskUsage {
  /** Images, and how many of them containers use. */
  images: number;
  active: number;
  /** Unique blob bytes, and those no tagged image needs. */
  size: number;
  reclaimable: number;
  /** Containers, running ones, their own bytes (upper dirs, logs), and stopped ones' bytes. */
  containers: number;
  running: number;
  containerSize: number;
  containerReclaimable: number;
}

/**
 * What `rmi` did.
 *
 * @example
 * ```ts
 * import type { RemoveResult } from "@berth/berth";
 * const print = (r: RemoveResult) => [...r.untagged.map((t) => `Untagged: ${t}`), ...r.deleted.map((d) => `Deleted: ${d}`)];
 * ```
 */
export interface RemoveResult {
  untagged: string[];
  deleted: Digest[];
}

/**
 * Result of garbage collection / prune.
 *
 * @example
 * ```ts
 * import type { PruneResult } from "@berth/berth";
 * const freed = (r: PruneResult) => `${r.deletedImages.length} images, ${r.reclaimedBytes} bytes`;
 * ```
 */
export interface PruneResult {
  deletedImages: Digest[];
  deletedBlobs: number;
  reclaimedBytes: number;
}

/**
 * A berth store: blobs under `blobs/sha256`, image records in `images.json`. Create one with
 * {@linkcode Store.open}. Several processes may use one store at once.
 *
 * @example
 * ```ts
 * import { Store } from "@berth/berth";
 * const root = await Deno.makeTempDir();
 * const store = await Store.open({ root });
 * console.log(await store.images()); // []
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export class Store {
  readonly root: string;
  readonly content: ContentStore;
  readonly imageDb: ImageDb;
  readonly snapshots: Snapshotter;
  readonly containers: ContainerDb;

  private constructor(root: string) {
    this.root = root;
    this.content = new ContentStore(root);
    this.imageDb = new ImageDb(root);
    this.snapshots = new Snapshotter(root);
    this.containers = new ContainerDb(root);
  }

  /**
   * Opens (creating if needed) the store at `root` and cleans what a crash left behind.
   *
   * @example
   * ```ts
   * import { Store } from "@berth/berth";
   * const root = await Deno.makeTempDir();
   * const store = await Store.open({ root });
   * console.log(store.root === await Deno.realPath(root)); // true
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  static async open(options: StoreOptions = {}): Promise<Store> {
    const root = options.root ?? Deno.env.get("BERTH_ROOT") ?? DEFAULT_ROOT;
    if (root === "") throw new TypeError("Store root must not be empty");
    // small synchronous calls: every command opens the store
    Deno.mkdirSync(root, { recursive: true, mode: 0o700 });
    const store = new Store(Deno.realPathSync(root));
    await store.content.init();
    await store.snapshots.init();
    await store.containers.sweep();
    await sweepTempFiles(store.root);
    return store;
  }

  /** Holds the GC lock shared: blobs this operation writes survive a concurrent prune. */
  gcShared(): Promise<Disposable> {
    return acquireLock(`${this.root}/gc.lock`, { exclusive: false });
  }

  /**
   * Loads a docker-archive or OCI archive (optionally gzip/zstd wrapped). Every blob is verified
   * (digest, size, layer diffID, tar structure) before anything becomes visible; on any error the
   * store is left as it was.
   *
   * @example
   * ```ts
   * import { Store } from "@berth/berth";
   * const dir = await Deno.makeTempDir();
   * await new Deno.Command("tar", { args: ["-C", "/etc", "-cf", `${dir}/etc.tar`, "hostname"] })
   *   .output();
   * const store = await Store.open({ root: `${dir}/store` });
   * using file = await Deno.open(`${dir}/etc.tar`);
   * const id = await store.import(file.readable, { ref: "example/etc:1" });
   * const other = await Store.open({ root: `${dir}/other` });
   * const loaded = await other.load(await store.save([id]), { name: "etc.tar" });
   * console.log(loaded[0].id === id); // true
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async load(
    source: ReadableStream<Uint8Array>,
    options: LoadOptions = {},
  ): Promise<LoadedImage[]> {
    const what = `Cannot load ${options.name ? `"${options.name}"` : "from stdin"}`;
    using _gc = await this.gcShared();
    const session = await this.content.session();
    try {
      // The codecs and transports load here, not at start-up: `run` never needs them.
      const [{ createDecompressor, sniffCompression }, { readImageArchive }] = await Promise.all([
        import("../compression.ts"),
        import("../transport/archive_reader.ts"),
      ]);
      const sniffed = await sniffCompression(source);
      const stream = sniffed.compression === "none"
        ? sniffed.stream
        : boundedExpansion(sniffed.stream, (s) =>
          s.pipeThrough(createDecompressor(sniffed.compression, { what })), what);
      const images = await readImageArchive(stream, {
        session,
        what,
        platform: options.platform ?? hostPlatform(),
      });
      const sizes = await this.#unpackLayers(images, what);
      for (const { blobs } of images) {
        for (const blob of blobs.values()) await this.content.commit(blob);
      }
      await this.content.syncDir();
      const now = new Date().toISOString();
      return await this.imageDb.update((data) =>
        images.map(({ image, tags }) => {
          const size = image.layers.reduce((n, l) => n + sizes.get(l.digest)!, 0);
          upsertImage(data, { id: image.configDigest, manifest: image.manifestDigest }, size, now);
          for (const tag of tags) setTag(data, image.configDigest, tag, now);
          return {
            id: image.configDigest,
            manifest: image.manifestDigest,
            tags: tags.map((t) => familiarString(parseReference(t))),
          };
        })
      );
    } finally {
      await session.close();
    }
  }

  /**
   * Unpacks the layers of every image into snapshots, checking each diffID and tar as it streams
   * (layers already unpacked are skipped); resolves with the uncompressed sizes by layer digest.
   */
  async #unpackLayers(images: ArchiveImage[], what: string): Promise<Map<Digest, number>> {
    const sizes = new Map<Digest, number>();
    for (const { image, blobs } of images) {
      const layers = image.layers.map((layer) => ({
        layer,
        open: () => readFileChunks((blobs.get(layer.digest) as StagedBlob).path),
      }));
      for (const [d, n] of await this.snapshots.unpack(layers, { what })) sizes.set(d, n);
    }
    return sizes;
  }

  /**
   * `import`: stores a root filesystem tarball as a one-layer image, tagged `ref` when given.
   * Returns the image ID.
   *
   * @example
   * ```ts
   * import { Store } from "@berth/berth";
   * const dir = await Deno.makeTempDir();
   * await new Deno.Command("tar", { args: ["-C", "/etc", "-cf", `${dir}/etc.tar`, "hostname"] })
   *   .output();
   * const store = await Store.open({ root: `${dir}/store` });
   * using file = await Deno.open(`${dir}/etc.tar`);
   * const id = await store.import(file.readable, { ref: "example/etc:1" });
   * console.log((await store.inspect("example/etc:1")).Id === id); // true
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async import(
    source: ReadableStream<Uint8Array>,
    options: ImportRootfsOptions = {},
  ): Promise<Digest> {
    const what = `Cannot import ${options.name ? `"${options.name}"` : "from stdin"}`;
    const ref = options.ref ? formatReference(parseReference(options.ref)) : undefined;
    using _gc = await this.gcShared();
    const session = await this.content.session();
    try {
      const { buildImportImage } = await import("./import_rootfs.ts");
      const { image, blobs, size } = await buildImportImage(source, {
        session,
        what,
        platform: options.platform ?? hostPlatform(),
        ...(options.changes ? { changes: options.changes } : {}),
        ...(options.message ? { message: options.message } : {}),
      });
      const layerBlob = blobs[0];
      await this.snapshots.unpack(
        [{ layer: image.layers[0], open: () => readFileChunks(layerBlob.path) }],
        { what },
      );
      for (const blob of blobs) await this.content.commit(blob);
      await this.content.syncDir();
      const now = new Date().toISOString();
      await this.imageDb.update((data) => {
        upsertImage(data, { id: image.configDigest, manifest: image.manifestDigest }, size, now);
        if (ref) setTag(data, image.configDigest, ref, now);
      });
      return image.configDigest;
    } finally {
      await session.close();
    }
  }

  /**
   * `save`: streams an archive of the named images that docker, podman and skopeo load (an OCI
   * layout plus docker's manifest.json). Names given as tags are recorded in the archive.
   *
   * @example
   * ```ts
   * import { Store } from "@berth/berth";
   * const dir = await Deno.makeTempDir();
   * await new Deno.Command("tar", { args: ["-C", "/etc", "-cf", `${dir}/etc.tar`, "hostname"] })
   *   .output();
   * const store = await Store.open({ root: `${dir}/store` });
   * using file = await Deno.open(`${dir}/etc.tar`);
   * const id = await store.import(file.readable, { ref: "example/etc:1" });
   * await (await store.save(["example/etc:1"])).pipeTo((await Deno.create(`${dir}/out.tar`)).writable);
   * console.log((await Deno.stat(`${dir}/out.tar`)).size > 0); // true
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async save(
    names: readonly string[],
    options: { format?: "docker-archive" | "oci-archive" } = {},
  ): Promise<ReadableStream<Uint8Array>> {
    if (names.length === 0) throw new TypeError("save needs at least one image");
    // Held from before the images are read until the stream ends, fails or is cancelled: a
    // concurrent rmi or prune cannot pull blobs out from under it.
    const gc = await this.gcShared();
    const release = () => gc[Symbol.dispose]();
    let entries: ArchiveEntry[];
    try {
      entries = await this.#saveEntries(names);
    } catch (e) {
      release();
      throw e;
    }
    const { writeImageArchive } = await import("../transport/archive_writer.ts");
    const stream = writeImageArchive(entries, {
      format: options.format ?? "docker-archive",
      openBlob: (digest) => this.content.read(digest),
    });
    const reader = stream.getReader();
    let held = true;
    const done = () => {
      if (held) release();
      held = false;
    };
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { value, done: end } = await reader.read();
          if (end) {
            done();
            controller.close();
          } else controller.enqueue(value);
        } catch (e) {
          done();
          controller.error(e);
        }
      },
      async cancel(reason) {
        done();
        await reader.cancel(reason).catch(() => {});
      },
    }, { highWaterMark: 0 });
  }

  async #saveEntries(names: readonly string[]): Promise<ArchiveEntry[]> {
    const data = await this.imageDb.read();
    const entries: ArchiveEntry[] = [];
    for (const name of names) {
      const record = resolveImage(data, name);
      let tag: string | undefined;
      try {
        const canonical = formatReference(parseReference(name));
        if (record.repoTags.includes(canonical)) tag = canonical;
      } catch { /* an ID */ }
      const existing = entries.find((e) => e.image.configDigest === record.id);
      if (existing) {
        if (tag && !existing.tags.includes(tag)) existing.tags.push(tag);
        continue;
      }
      entries.push({ image: await this.image(record), tags: tag ? [tag] : [] });
    }
    return entries;
  }

  /**
   * `run`: creates a container from the image `name` names and runs it to its exit. The exit code
   * is the command's (128+n when signal n killed it); a container that cannot start throws
   * `ContainerStartError` (exit code 125, or 126/127 when the command cannot be run).
   *
   * @example
   * ```ts ignore
   * import { Store } from "@berth/berth";
   * const store = await Store.open();
   * const { exitCode, stdout } = await store.run("busybox", {
   *   command: ["sh", "-c", "echo hi"],
   *   stdout: "piped",
   *   rm: true,
   * });
   * console.log(exitCode, new TextDecoder().decode(stdout)); // 0 "hi\n"
   * ```
   */
  async run(name: string, options: RunImageOptions = {}): Promise<RunResult> {
    let image: Image;
    try {
      image = await this.image(await this.resolve(name));
    } catch (e) {
      if (options.init) await discardInit(options.init);
      throw e;
    }
    // loaded here: the lifecycle commands (exec, ps, ...) open the store without the run path
    const { runImage } = await import("./run_image.ts");
    return await runImage(this, image, { ...options, imageName: name });
  }

  /**
   * `pull`: the image `ref` names from its registry (or a mirror), verified, unpacked and
   * recorded with its RepoDigest. See {@linkcode pullImage} for the options.
   *
   * @example
   * ```ts ignore
   * import { Store } from "@berth/berth";
   * const store = await Store.open();
   * const image = await store.pull("localhost:5000/app:1");
   * console.log(image.id, image.repoDigest);
   * ```
   */
  async pull(ref: string, options: PullOptions = {}): Promise<PulledImage> {
    // The registry client loads only when something is pulled.
    const { pullImage } = await import("./pull.ts");
    return await pullImage(this, ref, options);
  }

  /**
   * `create`: a container from the image `name` names, not started (see `Container.start`).
   *
   * @example
   * ```ts ignore
   * import { Store } from "@berth/berth";
   * const store = await Store.open();
   * const c = await store.create("busybox", { command: ["sleep", "60"], name: "nap" });
   * await c.start();
   * await c.stop({ timeout: 1 });
   * await c.remove();
   * ```
   */
  async create(name: string, options: CreateContainerOptions = {}): Promise<Container> {
    const image = await this.image(await this.resolve(name));
    const { createContainer } = await import("./containers.ts");
    const record = await createContainer(this, image, { ...options, imageName: name });
    return new Container(this, record);
  }

  /**
   * The container `nameOrId` names (a name, a full id or a unique id prefix), its state made
   * truthful. Throws `NotFoundError` (`No such container: x`).
   *
   * @example
   * ```ts ignore
   * import { Store } from "@berth/berth";
   * const store = await Store.open();
   * const c = await store.container("nap");
   * console.log(c.record.state.status);
   * ```
   */
  async container(nameOrId: string): Promise<Container> {
    const c = new Container(this, await this.containers.resolve(nameOrId));
    await c.refresh();
    return c;
  }

  /**
   * `container prune`: removes every container that is not running; resolves with their ids and
   * the bytes they held (upper dirs, logs).
   *
   * @example
   * ```ts
   * import { Store } from "@berth/berth";
   * const root = await Deno.makeTempDir();
   * const store = await Store.open({ root });
   * console.log(await store.pruneContainers()); // { deleted: [], reclaimedBytes: 0 }
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async pruneContainers(): Promise<{ deleted: string[]; reclaimedBytes: number }> {
    const deleted: string[] = [];
    let reclaimedBytes = 0;
    for (const c of await this.listContainers()) {
      if (c.running) continue;
      const size = await dirSize(this.containers.path(c.id));
      await c.remove();
      deleted.push(c.id);
      reclaimedBytes += size;
    }
    return { deleted, reclaimedBytes };
  }

  /**
   * Every container (states made truthful), newest first.
   *
   * @example
   * ```ts
   * import { Store } from "@berth/berth";
   * const root = await Deno.makeTempDir();
   * const store = await Store.open({ root });
   * console.log((await store.listContainers()).length); // 0
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async listContainers(): Promise<Container[]> {
    const out: Container[] = [];
    for (const record of await this.containers.list()) {
      const c = new Container(this, record);
      try {
        await c.refresh();
        out.push(c);
      } catch { /* removed meanwhile (--rm) */ }
    }
    return out.sort((a, b) => b.record.created.localeCompare(a.record.created));
  }

  /**
   * `image inspect`: docker's JSON shape (Id, RepoTags, RepoDigests, Config, RootFS, ...).
   *
   * @example
   * ```ts
   * import { Store } from "@berth/berth";
   * const dir = await Deno.makeTempDir();
   * await new Deno.Command("tar", { args: ["-C", "/etc", "-cf", `${dir}/etc.tar`, "hostname"] })
   *   .output();
   * const store = await Store.open({ root: `${dir}/store` });
   * using file = await Deno.open(`${dir}/etc.tar`);
   * const id = await store.import(file.readable, { ref: "example/etc:1" });
   * const info = await store.inspect("example/etc:1");
   * console.log(info.RepoTags, info.RootFS.Layers.length); // ["example/etc:1"] 1
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async inspect(input: string): Promise<ImageInspect> {
    const record = await this.resolve(input);
    return inspectImage(record, await this.image(record));
  }

  /**
   * Lists images, newest first.
   *
   * @example
   * ```ts
   * import { Store } from "@berth/berth";
   * const dir = await Deno.makeTempDir();
   * await new Deno.Command("tar", { args: ["-C", "/etc", "-cf", `${dir}/etc.tar`, "hostname"] })
   *   .output();
   * const store = await Store.open({ root: `${dir}/store` });
   * using file = await Deno.open(`${dir}/etc.tar`);
   * const id = await store.import(file.readable, { ref: "example/etc:1" });
   * const [image] = await store.images();
   * console.log(image.repoTags, image.id === id); // ["example/etc:1"] true
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async images(): Promise<ImageSummary[]> {
    const data = await this.imageDb.read();
    const out: ImageSummary[] = [];
    for (const r of data.images) {
      const image = await this.image(r).catch(() => undefined);
      out.push({
        id: r.id,
        repoTags: r.repoTags.map((t) => familiarString(parseReference(t))),
        repoDigests: r.repoDigests.map((t) => familiarString(parseReference(t))),
        manifest: r.manifest,
        ...(image?.config.created ? { created: image.config.created } : {}),
        size: r.size,
      });
    }
    return out.sort((a, b) => (b.created ?? "").localeCompare(a.created ?? ""));
  }

  /**
   * Finds an image by tag, digest reference or (short) ID; throws `NotFoundError`.
   *
   * @example
   * ```ts
   * import { NotFoundError, Store } from "@berth/berth";
   * const dir = await Deno.makeTempDir();
   * await new Deno.Command("tar", { args: ["-C", "/etc", "-cf", `${dir}/etc.tar`, "hostname"] })
   *   .output();
   * const store = await Store.open({ root: `${dir}/store` });
   * using file = await Deno.open(`${dir}/etc.tar`);
   * const id = await store.import(file.readable, { ref: "example/etc:1" });
   * console.log((await store.resolve(id.slice(7, 19))).id === id); // true
   * await store.resolve("nope").catch((e) => console.log(e instanceof NotFoundError)); // true
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async resolve(input: string): Promise<ImageRecord> {
    return resolveImage(await this.imageDb.read(), input);
  }

  /** Reads the image model of a record from the blob store. */
  async image(record: ImageRecord): Promise<Image> {
    const manifestBytes = await this.content.readBytes(record.manifest, MAX_MANIFEST_SIZE);
    const manifest = parseManifest(manifestBytes, `manifest ${record.manifest}`);
    const configBytes = await this.content.readBytes(manifest.config.digest, MAX_CONFIG_SIZE);
    parseConfig(configBytes, `config ${manifest.config.digest}`);
    return createImage(record.manifest, manifestBytes, configBytes, { what: `image ${record.id}` });
  }

  /**
   * Adds tag `target` to the image `source` names (a tag moves from any image that had it).
   *
   * @example
   * ```ts
   * import { Store } from "@berth/berth";
   * const dir = await Deno.makeTempDir();
   * await new Deno.Command("tar", { args: ["-C", "/etc", "-cf", `${dir}/etc.tar`, "hostname"] })
   *   .output();
   * const store = await Store.open({ root: `${dir}/store` });
   * using file = await Deno.open(`${dir}/etc.tar`);
   * const id = await store.import(file.readable, { ref: "example/etc:1" });
   * await store.tag("example/etc:1", "localhost:5000/etc:latest");
   * console.log((await store.images())[0].repoTags.length); // 2
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async tag(source: string, target: string): Promise<void> {
    const ref = parseReference(target);
    if (ref.digest) throw new TypeError(`Cannot tag with a digest reference: "${target}"`);
    await this.imageDb.update((data) => {
      const record = resolveImage(data, source);
      setTag(data, record.id, formatReference(ref), new Date().toISOString());
    });
  }

  /**
   * `rmi`: a tag argument removes that tag, and the image with its last tag; an ID removes the
   * image (refusing one with several tags unless `force`). Its blobs are collected at once.
   *
   * @example
   * ```ts
   * import { Store } from "@berth/berth";
   * const dir = await Deno.makeTempDir();
   * await new Deno.Command("tar", { args: ["-C", "/etc", "-cf", `${dir}/etc.tar`, "hostname"] })
   *   .output();
   * const store = await Store.open({ root: `${dir}/store` });
   * using file = await Deno.open(`${dir}/etc.tar`);
   * const id = await store.import(file.readable, { ref: "example/etc:1" });
   * const result = await store.removeImage("example/etc:1");
   * console.log(result.untagged, result.deleted[0] === id); // ["example/etc:1"] true
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async removeImage(input: string, options: { force?: boolean } = {}): Promise<RemoveResult> {
    // Exclusive from the in-use check to the sweep: no container is created on this image, and
    // no load or pull writes blobs, in between (both hold the lock shared).
    using _gc = await this.#gcExclusive();
    const containers = await this.containers.list();
    const result = await this.imageDb.update((data) => {
      const record = resolveImage(data, input);
      const result: RemoveResult = { untagged: [], deleted: [] };
      const user = containers.find((c) => c.imageId === record.id);
      let byTag: string | undefined;
      try {
        const ref = parseReference(input);
        const canonical = formatReference(ref);
        if (record.repoTags.includes(canonical)) byTag = canonical;
      } catch { /* an ID */ }
      if (byTag && record.repoTags.length > 1) {
        record.repoTags = record.repoTags.filter((t) => t !== byTag);
        result.untagged.push(familiarString(parseReference(byTag)));
        return result;
      }
      if (!byTag && record.repoTags.length > 1 && !options.force) {
        throw new ConflictError(
          `Unable to delete ${record.id.slice(7, 19)} (must be forced) - image is referenced in ` +
            `multiple repositories`,
        );
      }
      if (user && !options.force) {
        throw new ConflictError(
          `Unable to remove ${input} (must force) - container ${user.id.slice(0, 12)} is using ` +
            `its referenced image ${record.id.slice(7, 19)}`,
        );
      }
      result.untagged.push(...record.repoTags.map((t) => familiarString(parseReference(t))));
      result.untagged.push(...record.repoDigests.map((t) => familiarString(parseReference(t))));
      if (user) {
        // Forced while a container uses it: untagged (dangling), kept for the container (docker).
        record.repoTags = [];
        record.repoDigests = [];
        return result;
      }
      data.images = data.images.filter((i) => i !== record);
      result.deleted.push(record.id);
      return result;
    });
    if (result.deleted.length > 0) await this.#collect();
    return result;
  }

  /**
   * Removes blobs no image references. With `images: "dangling"` untagged images go first, with
   * `"all"` every image (docker's `image prune -a`, until containers exist to keep them).
   *
   * @example
   * ```ts
   * import { Store } from "@berth/berth";
   * const dir = await Deno.makeTempDir();
   * await new Deno.Command("tar", { args: ["-C", "/etc", "-cf", `${dir}/etc.tar`, "hostname"] })
   *   .output();
   * const store = await Store.open({ root: `${dir}/store` });
   * using file = await Deno.open(`${dir}/etc.tar`);
   * const id = await store.import(file.readable, { ref: "example/etc:1" });
   * const { deletedImages } = await store.prune({ images: "all" });
   * console.log(deletedImages[0] === id); // true
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async prune(options: { images?: "none" | "dangling" | "all" } = {}): Promise<PruneResult> {
    using _gc = await this.#gcExclusive();
    const used = new Set((await this.containers.list()).map((c) => c.imageId));
    const deletedImages = await this.imageDb.update((data) => {
      const mode = options.images ?? "none";
      const gone = data.images.filter((i) =>
        !used.has(i.id) && (mode === "all" || (mode === "dangling" && i.repoTags.length === 0))
      );
      data.images = data.images.filter((i) => !gone.includes(i));
      return gone.map((i) => i.id);
    });
    return { deletedImages, ...(await this.#collect()) };
  }

  /**
   * Garbage collection: marks blobs from every image record, sweeps the rest.
   *
   * @example
   * ```ts
   * import { Store } from "@berth/berth";
   * const root = await Deno.makeTempDir();
   * const store = await Store.open({ root });
   * console.log(await store.gc()); // { deletedBlobs: 0, reclaimedBytes: 0 }
   * await Deno.remove(root, { recursive: true });
   * ```
   */
  async gc(): Promise<{ deletedBlobs: number; reclaimedBytes: number }> {
    using _gc = await this.#gcExclusive();
    return await this.#collect();
  }

  /** The GC lock, exclusive: no load, pull, import, save or create runs meanwhile. */
  #gcExclusive(): Promise<Disposable> {
    return acquireLock(`${this.root}/gc.lock`, { exclusive: true });
  }

  /** Mark and sweep; the caller holds the GC lock exclusively. */
  async #collect(): Promise<{ deletedBlobs: number; reclaimedBytes: number }> {
    const data = await this.imageDb.read();
    const live = await this.#liveBlobs(data);
    let deletedBlobs = 0;
    let reclaimedBytes = 0;
    for await (const blob of this.content.list()) {
      if (live.has(blob.digest)) continue;
      await this.content.delete(blob.digest);
      deletedBlobs++;
      reclaimedBytes += blob.size;
    }
    // Snapshots: kept for every image's layer chain and every container's.
    const liveChains = new Set<Digest>();
    for (const record of data.images) {
      const image = await this.#readLive(record);
      if (image) {
        for (const c of Snapshotter.chainIDs(image.config.rootfs.diff_ids)) liveChains.add(c);
      }
    }
    for (const c of await this.containers.list()) for (const s of c.snapshots) liveChains.add(s);
    for await (const chainID of this.snapshots.list()) {
      if (liveChains.has(chainID)) continue;
      reclaimedBytes += (await this.snapshots.info(chainID))?.size ?? 0;
      await this.snapshots.remove(chainID);
    }
    return { deletedBlobs, reclaimedBytes };
  }

  async #liveBlobs(data: ImageDbData): Promise<Set<Digest>> {
    const live = new Set<Digest>();
    for (const record of data.images) {
      live.add(record.manifest);
      const image = await this.#readLive(record);
      if (!image) continue;
      live.add(image.configDigest);
      for (const layer of image.layers) live.add(layer.digest);
    }
    return live;
  }

  /**
   * An image that GC must keep. A record whose manifest or config blob is gone can keep nothing
   * more (say so); any other failure (EIO, EMFILE, …) stops GC rather than sweep live data.
   */
  async #readLive(record: ImageRecord): Promise<Image | undefined> {
    try {
      return await this.image(record);
    } catch (e) {
      if (!(e instanceof NotFoundError)) {
        throw new BerthError(
          `Garbage collection stopped: image ${record.id}: ${(e as Error).message}`,
        );
      }
      console.error(`Warning: image ${record.id}: ${(e as Error).message}`);
      return undefined;
    }
  }

  /**
   * Disk usage as `system df` shows it: unique blob bytes, and the bytes `image prune` would free
   * (blobs no tagged image needs).
   *
   * @example
   * ```ts
   * import { Store } from "@berth/berth";
   * const dir = await Deno.makeTempDir();
   * await new Deno.Command("tar", { args: ["-C", "/etc", "-cf", `${dir}/etc.tar`, "hostname"] })
   *   .output();
   * const store = await Store.open({ root: `${dir}/store` });
   * using file = await Deno.open(`${dir}/etc.tar`);
   * const id = await store.import(file.readable, { ref: "example/etc:1" });
   * const df = await store.df();
   * console.log(df.images, df.size > 0, df.reclaimable); // 1 true 0
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  async df(): Promise<DiskUsage> {
    const data = await this.imageDb.read();
    const tagged = data.images.filter((i) => i.repoTags.length > 0);
    const kept = await this.#liveBlobs({ version: 1, images: tagged });
    let size = 0;
    let reclaimable = 0;
    for await (const blob of this.content.list()) {
      size += blob.size;
      if (!kept.has(blob.digest)) reclaimable += blob.size;
    }
    const containers = await this.listContainers();
    const used = new Set(containers.map((c) => c.record.imageId));
    let containerSize = 0;
    let containerReclaimable = 0;
    for (const c of containers) {
      const n = await dirSize(this.containers.path(c.id));
      containerSize += n;
      if (!c.running) containerReclaimable += n;
    }
    return {
      images: data.images.length,
      active: data.images.filter((i) => used.has(i.id)).length,
      size,
      reclaimable,
      containers: containers.length,
      running: containers.filter((c) => c.running).length,
      containerSize,
      containerReclaimable,
    };
  }
}

/**
 * Undoes the compression of a whole archive (`.tar.gz`, `.tar.zst`) with a bound no real archive
 * reaches: never more than {@linkcode MAX_EXPANSION} times the compressed bytes read so far (plus
 * 1 MiB), so a small bomb cannot fill the disk with staged files.
 */
function boundedExpansion(
  source: ReadableStream<Uint8Array>,
  decompress: (s: ReadableStream<Uint8Array>) => ReadableStream<Uint8Array>,
  what: string,
): ReadableStream<Uint8Array> {
  let input = 0;
  let output = 0;
  const counted = source.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        input += chunk.byteLength;
        controller.enqueue(chunk);
      },
    }),
  );
  return decompress(counted).pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        output += chunk.byteLength;
        if (output > input * MAX_EXPANSION + (1 << 20)) {
          throw new LimitError(
            `${what}: decompresses to more than ${MAX_EXPANSION} times its size (a decompression bomb?)`,
          );
        }
        controller.enqueue(chunk);
      },
    }),
  );
}

/** Temp files of atomic writes a crash left in the store root (older than a minute). */
async function sweepTempFiles(root: string): Promise<void> {
  for (const e of Deno.readDirSync(root)) {
    if (!e.isFile || !e.name.startsWith(".") || !e.name.endsWith(".tmp")) continue;
    const st = await Deno.stat(`${root}/${e.name}`).catch(() => undefined);
    if (st?.mtime && Date.now() - st.mtime.getTime() > 60_000) {
      await Deno.remove(`${root}/${e.name}`).catch(() => {});
    }
  }
}
