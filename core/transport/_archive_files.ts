/**
 * The files of an image archive, staged into an ingest session while the outer tar streams by
 * (archives may come from stdin and their index may come last), with the archive's symlinks and
 * hardlinks resolved inside the archive only.
 *
 * @module
 */
import { inContext, InvalidInputError, LimitError } from "../errors.ts";
import type { IngestSession, StagedBlob } from "../content/store.ts";
import { readTar } from "../tar/reader.ts";

/** Most entries an image archive may have (docker archives have a few dozen). */
const MAX_ENTRIES = 100_000;
const MAX_LINK_DEPTH = 40;

type Node = { kind: "file"; blob: StagedBlob } | { kind: "symlink"; target: string } | {
  kind: "other";
};

/** Normalises an archive path (`./a//b/` → `a/b`); `undefined` when it leaves the archive. */
export function normalizeArchivePath(path: string): string | undefined {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length === 0) return undefined;
      out.pop();
    } else out.push(part);
  }
  return out.join("/");
}

/** The staged files of one archive. */
export class ArchiveFiles {
  readonly #nodes = new Map<string, Node>();
  readonly #what: string;

  private constructor(what: string) {
    this.#what = what;
  }

  /** Reads the whole archive, staging every regular file into `session`. */
  static async read(
    source: ReadableStream<Uint8Array>,
    options: { session: IngestSession; what: string },
  ): Promise<ArchiveFiles> {
    try {
      return await ArchiveFiles.#read(source, options);
    } catch (e) {
      throw inContext(e, options.what);
    }
  }

  static async #read(
    source: ReadableStream<Uint8Array>,
    options: { session: IngestSession; what: string },
  ): Promise<ArchiveFiles> {
    const files = new ArchiveFiles(options.what);
    let count = 0;
    for await (const { header, body } of readTar(source)) {
      if (++count > MAX_ENTRIES) {
        throw new LimitError(`${options.what} has more than ${MAX_ENTRIES} entries`);
      }
      const name = header.name.startsWith("/") ? undefined : normalizeArchivePath(header.name);
      if (name === undefined) {
        throw new InvalidInputError(`${options.what}: entry "${header.name}" escapes the archive`);
      }
      if (header.type === "file") {
        const blob = await options.session.stage(body, { what: `${options.what}: ${name}` });
        files.#nodes.set(name, { kind: "file", blob });
      } else if (header.type === "symlink") {
        files.#nodes.set(name, { kind: "symlink", target: header.linkname });
      } else if (header.type === "hardlink") {
        const target = normalizeArchivePath(header.linkname);
        const node = target === undefined ? undefined : files.#nodes.get(target);
        if (!node || node.kind !== "file") {
          throw new InvalidInputError(
            `${options.what}: hardlink "${name}" points to "${header.linkname}", not a file before it`,
          );
        }
        files.#nodes.set(name, node);
      } else if (header.type !== "dir") {
        files.#nodes.set(name, { kind: "other" });
      }
    }
    return files;
  }

  /** True when `path` names something in the archive. */
  has(path: string): boolean {
    const name = normalizeArchivePath(path);
    return name !== undefined && this.#nodes.has(name);
  }

  /**
   * The staged file at `path`, following the archive's symlinks. Throws `InvalidInputError` when
   * the path or a link leaves the archive, or names nothing or no regular file.
   */
  get(path: string, what: string = `"${path}"`): StagedBlob {
    let name = normalizeArchivePath(path);
    for (let depth = 0; depth <= MAX_LINK_DEPTH; depth++) {
      if (name === undefined || path.startsWith("/")) {
        throw new InvalidInputError(`${this.#what}: ${what} points outside the archive`);
      }
      const node = this.#nodes.get(name);
      if (!node) throw new InvalidInputError(`${this.#what}: ${what} is missing from the archive`);
      if (node.kind === "file") return node.blob;
      if (node.kind === "other") {
        throw new InvalidInputError(`${this.#what}: ${what} is not a regular file`);
      }
      if (node.target.startsWith("/")) {
        throw new InvalidInputError(
          `${this.#what}: ${what} is a symlink to "${node.target}", outside the archive`,
        );
      }
      const dir = name.includes("/") ? name.slice(0, name.lastIndexOf("/")) : "";
      const next = normalizeArchivePath(dir ? `${dir}/${node.target}` : node.target);
      if (next === undefined) {
        throw new InvalidInputError(
          `${this.#what}: ${what} is a symlink to "${node.target}", outside the archive`,
        );
      }
      name = next;
    }
    throw new InvalidInputError(`${this.#what}: ${what} has too many levels of symlinks`);
  }
}
