/**
 * The content-addressed blob store (containerd style): a blob is written to an ingest session
 * under `ingest/`, hashed while streaming, checked against the expected size and digest, fsynced and
 * renamed into `blobs/sha256/<hex>`. Nothing unverified is ever visible under `blobs/`.
 *
 * @module
 */
import { type Digest, digestHex } from "../digest.ts";
import { DigestMismatchError, LimitError, NotFoundError } from "../errors.ts";
import { readFileChunks } from "./read_file.ts";
import { acquireLock } from "../lock.ts";

/** A source of bytes. */
export type ByteSource =
  | AsyncIterable<Uint8Array>
  | Iterable<Uint8Array>
  | ReadableStream<Uint8Array>;

/** What a blob is expected to be. */
export interface Expected {
  digest?: Digest;
  size?: number;
}

/** Options of {@linkcode IngestSession.stage}. */
export interface StageOptions {
  /** Expected digest and size; a mismatch rejects with `DigestMismatchError`. */
  expected?: Expected;
  /** Hard bound on the number of bytes (when no size is expected). */
  maxSize?: number;
  /** How to name the blob in errors, e.g. `layer sha256:ab…`. */
  what?: string;
}

/** A blob written to an ingest session, hashed and fsynced, not yet visible. */
export interface StagedBlob {
  readonly path: string;
  readonly digest: Digest;
  readonly size: number;
}

const LOCK = ".lock";
/** Lock file in `ingest/` that orders session creation against cleanup. */
const GUARD = ".guard";

/**
 * A private directory under `ingest/` for the blobs one command writes. It holds an exclusive lock
 * on `<dir>/.lock` for its lifetime, so that another process's cleanup never removes it, and it is
 * removed with everything left in it by {@linkcode IngestSession.close} (or, after a crash, by the
 * next {@linkcode ContentStore.init}).
 */
export class IngestSession {
  readonly dir: string;
  #lock: Deno.FsFile;

  private constructor(dir: string, lock: Deno.FsFile) {
    this.dir = dir;
    this.#lock = lock;
  }

  /** @internal */
  static async create(ingestDir: string): Promise<IngestSession> {
    // Held shared while the session is half made, so that no cleanup (exclusive) can see it so.
    using _guard = await acquireLock(`${ingestDir}/${GUARD}`, { exclusive: false });
    const dir = `${ingestDir}/${crypto.randomUUID()}`;
    await Deno.mkdir(dir);
    const lock = await Deno.open(`${dir}/${LOCK}`, { write: true, createNew: true });
    await lock.lock(true);
    return new IngestSession(dir, lock);
  }

  /** Writes `source` to the session, hashing and counting as it streams; fsyncs it. */
  async stage(source: ByteSource, options: StageOptions = {}): Promise<StagedBlob> {
    const { expected = {}, what = expected.digest ?? "blob" } = options;
    const limit = expected.size ?? options.maxSize ?? Infinity;
    const path = `${this.dir}/${crypto.randomUUID()}`;
    const file = await Deno.open(path, { write: true, createNew: true, mode: 0o644 });
    let ok = false;
    try {
      // Loaded on first use: commands that write no blob (run) skip node:crypto's start-up cost.
      const { createSha256 } = await import("../../wasm/sha256.ts");
      const hash = createSha256();
      let size = 0;
      for await (const chunk of source) {
        size += chunk.byteLength;
        if (size > limit) {
          throw expected.size !== undefined
            ? new DigestMismatchError(`${what} is larger than its declared size ${expected.size}`)
            : new LimitError(`${what} is larger than the limit of ${limit} bytes`);
        }
        hash.update(chunk);
        let written = 0;
        while (written < chunk.byteLength) written += await file.write(chunk.subarray(written));
      }
      if (expected.size !== undefined && size !== expected.size) {
        throw new DigestMismatchError(
          `${what} is ${size} bytes, not its declared size ${expected.size}`,
        );
      }
      const digest: Digest = `sha256:${hash.digest()}`;
      if (expected.digest !== undefined && digest !== expected.digest) {
        throw new DigestMismatchError(`${what} does not match its digest (got ${digest})`);
      }
      await file.syncData();
      ok = true;
      return { path, digest, size };
    } finally {
      file.close();
      if (!ok) await Deno.remove(path).catch(() => {});
    }
  }

  /** Removes the session directory with every blob not committed. */
  async close(): Promise<void> {
    try {
      await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    } finally {
      this.#lock.close();
    }
  }

  /** `using`-style disposal. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** The blob store under `<root>/blobs/sha256` with its ingest area `<root>/ingest`. */
export class ContentStore {
  readonly blobDir: string;
  readonly ingestDir: string;

  constructor(root: string) {
    this.blobDir = `${root}/blobs/sha256`;
    this.ingestDir = `${root}/ingest`;
  }

  /**
   * Creates the directories; removes ingest sessions no live process holds (left by a crash). When
   * another process is creating a session right now, cleanup waits for a later command.
   */
  async init(): Promise<void> {
    // synchronous: every command opens the store, and leftovers are rare
    Deno.mkdirSync(this.blobDir, { recursive: true });
    Deno.mkdirSync(this.ingestDir, { recursive: true });
    using guard = Deno.openSync(`${this.ingestDir}/${GUARD}`, {
      read: true,
      write: true,
      create: true,
    });
    if (!guard.tryLockSync(true)) return;
    for (const entry of Deno.readDirSync(this.ingestDir)) {
      if (entry.name === GUARD) continue;
      const path = `${this.ingestDir}/${entry.name}`;
      if (!entry.isDirectory) {
        await Deno.remove(path).catch(() => {});
        continue;
      }
      let lock: Deno.FsFile | undefined;
      try {
        lock = await Deno.open(`${path}/${LOCK}`, { read: true });
      } catch {
        // No lock file: a session that died between mkdir and creating its lock.
      }
      try {
        if (!lock || await lock.tryLock(true)) {
          await Deno.remove(path, { recursive: true }).catch(() => {});
        }
      } finally {
        lock?.close();
      }
    }
  }

  /** Starts an ingest session; close it when done. */
  session(): Promise<IngestSession> {
    return IngestSession.create(this.ingestDir);
  }

  /** Path of a committed blob (it may not exist). */
  path(digest: Digest): string {
    return `${this.blobDir}/${digestHex(digest)}`;
  }

  /** Size of a committed blob, or `undefined` when absent. */
  // deno-lint-ignore require-await -- a synchronous stat; the API stays a Promise
  async size(digest: Digest): Promise<number | undefined> {
    try {
      return Deno.statSync(this.path(digest)).size;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    }
  }

  /** True when the blob is in the store. */
  async has(digest: Digest): Promise<boolean> {
    return (await this.size(digest)) !== undefined;
  }

  /** Streams a committed blob in 1 MiB chunks. */
  read(digest: Digest): AsyncGenerator<Uint8Array> {
    return readFileChunks(this.path(digest));
  }

  /** Reads a small committed blob (a manifest or config) whole, refusing more than `maxSize`. */
  async readBytes(digest: Digest, maxSize: number): Promise<Uint8Array> {
    const size = await this.size(digest);
    if (size === undefined) throw new NotFoundError(`Blob ${digest} is not in the store`);
    if (size > maxSize) {
      throw new LimitError(`Blob ${digest} is ${size} bytes, more than the limit of ${maxSize}`);
    }
    return Deno.readFileSync(this.path(digest)); // at most maxSize (a manifest or config)
  }

  /**
   * Makes a staged blob visible by renaming it to `blobs/sha256/<hex>`. A blob already present is
   * success (dedupe); the staged copy then goes with its session.
   */
  async commit(staged: StagedBlob): Promise<Digest> {
    if (!(await this.has(staged.digest))) {
      try {
        await Deno.rename(staged.path, this.path(staged.digest));
      } catch (e) {
        // Committed twice from one session (an archive naming one blob twice) is fine.
        if (!(e instanceof Deno.errors.NotFound && await this.has(staged.digest))) throw e;
      }
    }
    return staged.digest;
  }

  /** Makes the directory entries of committed blobs durable. */
  async syncDir(): Promise<void> {
    using dir = await Deno.open(this.blobDir, { read: true });
    await dir.sync().catch(() => {});
  }

  /** Lists committed blobs. */
  async *list(): AsyncGenerator<{ digest: Digest; size: number }> {
    for await (const entry of Deno.readDir(this.blobDir)) {
      if (!entry.isFile || !/^[0-9a-f]{64}$/.test(entry.name)) continue;
      const stat = await Deno.stat(`${this.blobDir}/${entry.name}`).catch(() => undefined);
      if (stat) yield { digest: `sha256:${entry.name}`, size: stat.size };
    }
  }

  /** Removes a committed blob (garbage collection). */
  async delete(digest: Digest): Promise<void> {
    await Deno.remove(this.path(digest)).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  }
}
