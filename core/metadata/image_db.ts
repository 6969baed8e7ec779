/**
 * Image records: image ID (config digest) → manifest, tags and repo digests, in one JSON file
 * (`<root>/images.json`) replaced atomically under an exclusive lock.
 *
 * @module
 */
import type { Digest } from "../digest.ts";
import { InvalidInputError } from "../errors.ts";
import { acquireLock } from "../lock.ts";
import { writeFileAtomic } from "./atomic_write.ts";

/**
 * One image in the store.
 *
 * @example
 * ```ts
 * import type { ImageRecord } from "@berth/berth";
 * const tagged = (r: ImageRecord) => r.repoTags.length > 0;
 * ```
 */
export interface ImageRecord {
  /** Image ID: the config digest. */
  id: Digest;
  /** The manifest the image's layers come from. */
  manifest: Digest;
  /** Canonical references (`docker.io/library/busybox:latest`) naming this image. */
  repoTags: string[];
  /** Canonical `name@sha256:…` references of the manifest (or index) as pulled. */
  repoDigests: string[];
  /** Sum of the uncompressed layer sizes. */
  size: number;
  /** When the image was stored (ISO 8601). */
  added: string;
  /** When a tag was last added (ISO 8601). */
  lastTagTime?: string;
}

/** The whole file. */
export interface ImageDbData {
  version: 1;
  images: ImageRecord[];
}

const FILE = "images.json";

/** Reads and updates `<root>/images.json`. */
export class ImageDb {
  readonly #root: string;

  constructor(root: string) {
    this.#root = root;
  }

  get #path(): string {
    return `${this.#root}/${FILE}`;
  }

  /** The current records (a snapshot; no lock held afterwards). */
  // deno-lint-ignore require-await -- a small synchronous read; the API stays a Promise
  async read(): Promise<ImageDbData> {
    let text: string;
    try {
      text = Deno.readTextFileSync(this.#path); // small; sync: no trip through the blocking pool
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return { version: 1, images: [] };
      throw e;
    }
    try {
      const data = JSON.parse(text) as ImageDbData;
      if (data.version !== 1 || !Array.isArray(data.images)) throw new Error("unknown version");
      return data;
    } catch (e) {
      throw new InvalidInputError(`Store file ${this.#path} is corrupt: ${(e as Error).message}`);
    }
  }

  /**
   * Read-modify-write under the metadata lock: `fn` may change `data` in place; the result is
   * written atomically when `fn` returns without throwing.
   */
  async update<T>(fn: (data: ImageDbData) => T | Promise<T>): Promise<T> {
    using _lock = await acquireLock(`${this.#root}/metadata.lock`, { exclusive: true });
    const data = await this.read();
    const result = await fn(data);
    await writeFileAtomic(this.#path, JSON.stringify(data, null, 1) + "\n");
    return result;
  }
}

/** Points `ref` at image `id`, taking it from any other image (tags are unique). */
export function setTag(data: ImageDbData, id: Digest, ref: string, now: string): void {
  for (const image of data.images) {
    if (image.id !== id) image.repoTags = image.repoTags.filter((t) => t !== ref);
  }
  const image = data.images.find((i) => i.id === id);
  if (!image) throw new Error(`setTag: no image ${id}`);
  if (!image.repoTags.includes(ref)) {
    image.repoTags.push(ref);
    image.lastTagTime = now;
  }
}

/**
 * Inserts the record of image `id` (config digest) or refreshes its manifest and size; returns
 * it. Tags and repo digests are the caller's to add.
 */
export function upsertImage(
  data: ImageDbData,
  image: { id: Digest; manifest: Digest },
  size: number,
  now: string,
): ImageRecord {
  let record = data.images.find((i) => i.id === image.id);
  if (!record) {
    record = { ...image, repoTags: [], repoDigests: [], size, added: now };
    data.images.push(record);
  } else {
    record.manifest = image.manifest;
    record.size = size;
  }
  return record;
}
