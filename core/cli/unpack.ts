/**
 * `berth unpack IMAGE DIR`: writes the image's merged filesystem (whiteouts applied as deletions)
 * into DIR, which must be empty or absent (then it is created), like `umoci unpack` or
 * `crane export | tar -x`, with the same hostile-input-safe applier the snapshots use. On an error
 * DIR is removed when this command created it, otherwise emptied of what it wrote.
 *
 * @module
 */
import { UsageError } from "./_args.ts";
import type { Command } from "./_command.ts";
import { ConflictError, NotFoundError } from "../errors.ts";
import { flattenImage } from "../snapshot/flatten.ts";

/** The `unpack` command. */
export const command: Command = {
  usage: "IMAGE DIR",
  summary: "Write an image's merged filesystem into an empty directory",
  flags: {
    quiet: { type: "boolean", short: "q", help: "Print nothing but errors" },
  },
  async run({ flags, args }, ctx) {
    if (args.length !== 2) throw new UsageError(`"berth unpack" requires exactly 2 arguments`);
    const [name, dir] = args;
    const what = `Cannot unpack ${JSON.stringify(name)}`;
    const store = await ctx.store();
    using _gc = await store.gcShared();
    const image = await store.image(await store.resolve(name));
    for (const layer of image.layers) {
      if (!(await store.content.has(layer.digest))) {
        throw new NotFoundError(`${what}: layer ${layer.digest} is not in the store`);
      }
    }
    const created = await prepareDir(dir, what);
    try {
      const sources = image.layers.map((layer) => ({
        layer,
        open: () => store.content.read(layer.digest),
      }));
      const stats = await flattenImage(sources, dir, { what });
      if (!flags.quiet) {
        for (const skipped of stats.skippedXattrs) ctx.err(`Skipped xattr: ${skipped}\n`);
        ctx.out(`Unpacked ${image.configDigest} into ${dir}\n`);
      }
    } catch (e) {
      await cleanUp(dir, created);
      throw e;
    }
    return 0;
  },
};

/** Makes sure `dir` is an empty directory; true when it was created here. */
async function prepareDir(dir: string, what: string): Promise<boolean> {
  try {
    await Deno.mkdir(dir, { mode: 0o755 });
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new NotFoundError(`${what}: the parent directory of "${dir}" does not exist`);
    }
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  }
  const stat = await Deno.stat(dir);
  if (!stat.isDirectory) throw new ConflictError(`${what}: "${dir}" is not a directory`);
  for await (const _ of Deno.readDir(dir)) {
    throw new ConflictError(`${what}: directory "${dir}" is not empty`);
  }
  return false;
}

/** Removes `dir` (created here) or what was written into it (it was empty before). */
async function cleanUp(dir: string, created: boolean): Promise<void> {
  if (created) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    return;
  }
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  for (const n of names) await Deno.remove(`${dir}/${n}`, { recursive: true }).catch(() => {});
}
