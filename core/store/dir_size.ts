/**
 * Bytes a directory tree holds (regular files' sizes; links not followed).
 *
 * @module
 */

/** Sums the sizes of the files under `path` (0 when it does not exist). */
export async function dirSize(path: string): Promise<number> {
  let total = 0;
  try {
    for await (const e of Deno.readDir(path)) {
      const p = `${path}/${e.name}`;
      if (e.isDirectory) total += await dirSize(p);
      else if (e.isFile) total += (await Deno.lstat(p)).size;
    }
  } catch { /* gone meanwhile */ }
  return total;
}
