/**
 * Crash-safe file replacement: write a temp file beside the target, fsync it, rename it over the
 * target, fsync the directory. A reader sees the old or the new content, never a mix.
 *
 * @module
 */

/**
 * Atomically replaces `path` with `data`. With `durable: false` the fsyncs are skipped: a crash of
 * the process still leaves the old or the new content, a power loss may leave the old one. The
 * data is small (metadata): it is written with synchronous calls; only the fsyncs wait off the
 * event loop.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  options: { mode?: number; durable?: boolean } = {},
): Promise<void> {
  const durable = options.durable ?? true;
  const slash = path.lastIndexOf("/");
  const dir = slash > 0 ? path.slice(0, slash) : ".";
  const tmp = `${dir}/.${path.slice(slash + 1)}.${crypto.randomUUID()}.tmp`;
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  try {
    using file = Deno.openSync(tmp, {
      write: true,
      createNew: true,
      mode: options.mode ?? 0o644,
    });
    let written = 0;
    while (written < bytes.byteLength) written += file.writeSync(bytes.subarray(written));
    if (durable) await file.syncData();
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  Deno.renameSync(tmp, path);
  if (!durable) return;
  using d = await Deno.open(dir, { read: true });
  await d.sync().catch(() => {});
}
