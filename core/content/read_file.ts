/**
 * Reading files as streams in 1 MiB chunks (Deno's `FsFile.readable` reads 64 KiB at a time, several
 * times slower for big blobs; DESIGN.md §5).
 *
 * @module
 */

/** Chunk size for file reads. */
export const CHUNK_SIZE = 1 << 20;

/**
 * Yields the bytes of `path` in chunks of up to `chunkSize`. Every chunk is a fresh buffer that the
 * consumer may keep. `range` limits the read to `[start, start + length)`.
 */
export async function* readFileChunks(
  path: string,
  options: { chunkSize?: number; start?: number } = {},
): AsyncGenerator<Uint8Array> {
  const size = options.chunkSize ?? CHUNK_SIZE;
  using file = await Deno.open(path, { read: true });
  if (options.start) await file.seek(options.start, Deno.SeekMode.Start);
  while (true) {
    const buf = new Uint8Array(size);
    let filled = 0;
    while (filled < size) {
      const n = await file.read(buf.subarray(filled));
      if (n === null) break;
      filled += n;
    }
    if (filled === 0) return;
    yield filled === size ? buf : buf.subarray(0, filled);
    if (filled < size) return;
  }
}

/** The same as a `ReadableStream`. */
export function fileReadable(
  path: string,
  options?: { chunkSize?: number },
): ReadableStream<Uint8Array> {
  return ReadableStream.from(readFileChunks(path, options));
}
