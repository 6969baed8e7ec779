/**
 * Reads a file of a container's root filesystem before it is mounted: from a stack of layer
 * directories (top-most first, as overlay lowerdirs are given), resolving symlinks inside that root
 * so that a hostile image (`/etc -> /`) cannot make the engine read host files.
 *
 * @module
 */

const MAX_HOPS = 40;

function lookup(
  layers: readonly string[],
  rel: string,
): { path: string; info: Deno.FileInfo } | undefined {
  for (const layer of layers) {
    const path = `${layer}/${rel}`;
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) continue;
      throw e;
    }
    // an overlay whiteout (0/0 character device) hides the lower layers
    if (info.isCharDevice && info.rdev === 0) return undefined;
    return { path, info };
  }
  return undefined;
}

/**
 * The text of `path` (absolute, inside the rootfs) in the union of `layers`, or undefined when it
 * does not exist there (or is not a regular file).
 */
export function readRootfsFile(layers: readonly string[], path: string): string | undefined {
  let todo = path.split("/").filter((c) => c && c !== ".");
  let cur: string[] = [];
  let hops = 0;
  let found: { path: string; info: Deno.FileInfo } | undefined;
  while (todo.length) {
    const c = todo.shift()!;
    if (c === "..") {
      cur.pop();
      found = undefined;
      continue;
    }
    found = lookup(layers, [...cur, c].join("/"));
    if (!found) return undefined;
    if (found.info.isSymlink) {
      if (++hops > MAX_HOPS) return undefined;
      const target = Deno.readLinkSync(found.path);
      if (target.startsWith("/")) cur = [];
      todo = [...target.split("/").filter((x) => x && x !== "."), ...todo];
      found = undefined;
      continue;
    }
    cur.push(c);
  }
  if (!found?.info.isFile) return undefined;
  return Deno.readTextFileSync(found.path);
}
