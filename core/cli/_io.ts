/**
 * Small I/O helpers for the CLI: whole writes to stdout/stderr, stdin as a stream read in 1 MiB
 * chunks, a file written atomically from a stream.
 *
 * @module
 */
import { CHUNK_SIZE } from "../content/read_file.ts";

const encoder = new TextEncoder();

/** Writes all of `data` to a sync writer. */
export function writeAllSync(w: { writeSync(p: Uint8Array): number }, data: Uint8Array): void {
  let n = 0;
  while (n < data.byteLength) n += w.writeSync(data.subarray(n));
}

/** Writes `text` to stdout. */
export function out(text: string): void {
  writeAllSync(Deno.stdout, encoder.encode(text));
}

/** Writes `text` to stderr. */
export function err(text: string): void {
  writeAllSync(Deno.stderr, encoder.encode(text));
}

/** Standard input as a stream of 1 MiB reads. */
export function stdinReadable(): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const buf = new Uint8Array(CHUNK_SIZE);
      const n = await Deno.stdin.read(buf);
      if (n === null) controller.close();
      else controller.enqueue(buf.subarray(0, n));
    },
  }, { highWaterMark: 2 });
}

/** Streams `source` to stdout. */
export async function streamToStdout(source: ReadableStream<Uint8Array>): Promise<void> {
  for await (const chunk of source) {
    let n = 0;
    while (n < chunk.byteLength) n += await Deno.stdout.write(chunk.subarray(n));
  }
}

/**
 * Streams `source` into `path`. A regular file (or a new one) is written through a temp file that
 * is renamed over it at the end, so a failure leaves no partial file behind; anything else that
 * exists there (`/dev/null`, a FIFO, a terminal) is written to directly, never replaced.
 */
export async function streamToFile(
  source: ReadableStream<Uint8Array>,
  path: string,
): Promise<void> {
  const existing = await Deno.stat(path).catch(() => undefined);
  if (existing && !existing.isFile) {
    using file = await Deno.open(path, { write: true });
    await writeStream(source, file);
    return;
  }
  const slash = path.lastIndexOf("/");
  const tmp = `${slash >= 0 ? path.slice(0, slash + 1) : ""}.${
    path.slice(slash + 1)
  }.${crypto.randomUUID()}.tmp`;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
  } catch (e) {
    await source.cancel().catch(() => {});
    // Named as the user gave it, not as the temp file.
    throw new TypeError(`Cannot write "${path}": ${(e as Error).message.split(":")[0]}`);
  }
  try {
    try {
      await writeStream(source, file);
      await file.syncData();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

async function writeStream(source: ReadableStream<Uint8Array>, file: Deno.FsFile): Promise<void> {
  for await (const chunk of source) {
    let n = 0;
    while (n < chunk.byteLength) n += await file.write(chunk.subarray(n));
  }
}

/** The caller's terminal size (`-t`), when it has a terminal. */
export function terminalSize(): { consoleSize?: { rows: number; columns: number } } {
  try {
    return { consoleSize: Deno.consoleSize() };
  } catch {
    return {};
  }
}
