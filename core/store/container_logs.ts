/**
 * Container logs in docker's json-file format: one JSON object per line,
 * `{"log":"text\n","stream":"stdout","time":"2026-11-29T08:00:00.123Z"}`. stdout and stderr are
 * kept apart; a line is written when it ends (or when the stream ends, unterminated).
 *
 * @module
 */

/** The log file of container `id`. */
export function logPath(store: { containers: { path(id: string): string } }, id: string): string {
  return `${store.containers.path(id)}/container.log`;
}

/**
 * One logged line.
 *
 * @example
 * ```ts
 * import type { LogEntry } from "@berth/berth";
 * const show = (e: LogEntry) => `${e.time} ${e.stream}: ${e.log}`;
 * ```
 */
export interface LogEntry {
  stream: "stdout" | "stderr";
  /** ISO 8601 time the line was read from the container. */
  time: string;
  /** The line, with its `\n` when it had one. */
  log: string;
}

const MAX_LINE = 16 * 1024; // docker splits longer lines into 16 KiB entries

/** Appends a container's output to its log file. */
export class LogWriter {
  readonly #file: Deno.FsFile;
  readonly #partial: Record<LogEntry["stream"], string> = { stdout: "", stderr: "" };
  readonly #decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
  readonly #encoder = new TextEncoder();

  private constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  /** Opens (creating) `path` for appending. */
  static async open(path: string): Promise<LogWriter> {
    return new LogWriter(
      await Deno.open(path, { append: true, create: true, mode: 0o640 }),
    );
  }

  /** Takes a chunk of `stream`'s output. */
  write(stream: LogEntry["stream"], chunk: Uint8Array): void {
    let text = this.#partial[stream] + this.#decoders[stream].decode(chunk, { stream: true });
    const time = new Date().toISOString();
    let out = "";
    for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n")) {
      out += entries(stream, text.slice(0, nl + 1), time);
      text = text.slice(nl + 1);
    }
    while (text.length >= MAX_LINE) {
      out += entries(stream, text.slice(0, MAX_LINE), time);
      text = text.slice(MAX_LINE);
    }
    this.#partial[stream] = text;
    if (out) this.#append(out);
  }

  /**
   * A sink for one stream, for the runtime; with `tee` each chunk is also written to it (the
   * caller's terminal, for a foreground run).
   */
  sink(
    stream: LogEntry["stream"],
    tee?: { writeSync(p: Uint8Array): number },
  ): WritableStream<Uint8Array> {
    return new WritableStream({
      write: (chunk) => {
        if (tee) {
          try {
            let n = 0;
            while (n < chunk.byteLength) n += tee.writeSync(chunk.subarray(n));
          } catch { /* the caller's output went away: the log still gets everything */ }
        }
        this.write(stream, chunk);
      },
    });
  }

  /** Writes what is left of unterminated lines and closes the file. */
  close(): void {
    const time = new Date().toISOString();
    let out = "";
    for (const stream of ["stdout", "stderr"] as const) {
      const rest = this.#partial[stream] + this.#decoders[stream].decode();
      if (rest) out += entries(stream, rest, time);
      this.#partial[stream] = "";
    }
    if (out) this.#append(out);
    this.#file.close();
  }

  #append(text: string): void {
    const bytes = this.#encoder.encode(text);
    let n = 0;
    while (n < bytes.byteLength) n += this.#file.writeSync(bytes.subarray(n));
  }
}

function entries(stream: LogEntry["stream"], log: string, time: string): string {
  return JSON.stringify({ log, stream, time }) + "\n";
}

/** Options of {@linkcode readLogs}. */
export interface ReadLogsOptions {
  /** Only the last N entries (before following). */
  tail?: number;
  /** Only entries at or after this time. */
  since?: Date;
  /** Keep reading as the container writes, until `running()` says it stopped. */
  follow?: boolean;
  /** Whether the container still runs (polled while following). */
  running?: () => Promise<boolean>;
  /** Stops following. */
  signal?: AbortSignal;
}

/**
 * Reads the entries of a log file (none when it does not exist yet), streaming: memory stays
 * bounded by one read (1 MiB) plus, with `tail`, the last N entries.
 */
export async function* readLogs(
  path: string,
  options: ReadLogsOptions = {},
): AsyncGenerator<LogEntry> {
  let offset = 0;
  let rest = "";
  const decoder = new TextDecoder();
  const keep = (e: LogEntry) => !options.since || Date.parse(e.time) >= options.since.getTime();
  /** The entries written since the last call, as they are parsed. */
  async function* readNew(): AsyncGenerator<LogEntry> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      throw e;
    }
    try {
      await file.seek(offset, Deno.SeekMode.Start);
      const buf = new Uint8Array(1 << 20);
      while (true) {
        const n = await file.read(buf);
        if (n === null) break;
        offset += n;
        rest += decoder.decode(buf.subarray(0, n), { stream: true });
        const lines = rest.split("\n");
        rest = lines.pop()!;
        for (const line of lines) {
          let e: LogEntry;
          try {
            e = JSON.parse(line);
          } catch {
            continue; // a torn last line of a crashed writer
          }
          if (keep(e)) yield e;
        }
      }
    } finally {
      file.close();
    }
  }
  if (options.tail !== undefined) {
    const last: LogEntry[] = [];
    if (options.tail > 0) {
      for await (const e of readNew()) {
        last.push(e);
        if (last.length > options.tail) last.shift();
      }
    } else for await (const _ of readNew()) { /* skip to the end */ }
    yield* last;
  } else yield* readNew();
  if (!options.follow) return;
  while (!options.signal?.aborted) {
    const alive = options.running ? await options.running() : false;
    let more = false;
    for await (const e of readNew()) {
      more = true;
      yield e;
    }
    if (!alive && !more) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}
