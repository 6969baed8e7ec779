/**
 * `berth inspect [-f FORMAT] [--type image] NAME...`
 *
 * @module
 */
import { UsageError } from "./_args.ts";
import type { Command } from "./_command.ts";
import { formatInspect } from "./_inspect_output.ts";
import type { Store } from "../store/store.ts";
import { NotFoundError } from "../errors.ts";

/** The `inspect` command. */
export const command: Command = {
  usage: "[OPTIONS] NAME|ID [NAME|ID...]",
  summary: "Return low-level information on images",
  flags: {
    format: {
      type: "string",
      short: "f",
      arg: "FORMAT",
      help: "Format the output using a Go template or 'json'",
    },
    type: {
      type: "string",
      arg: "TYPE",
      help: "Only inspect objects of the given type (container, image)",
    },
    size: { type: "boolean", short: "s", help: "Accepted for docker compatibility" },
  },
  async run({ flags, args }, ctx) {
    if (args.length === 0) throw new UsageError(`"berth inspect" requires at least 1 argument`);
    const type = flags.type as string | undefined;
    if (type !== undefined && type !== "image" && type !== "container") {
      throw new UsageError(`"${type}" is not a valid value for --type`);
    }
    const store = await ctx.store();
    const found: unknown[] = [];
    let status = 0;
    for (const name of args) {
      try {
        found.push(await inspectOne(store, name, type));
      } catch (e) {
        ctx.err(`Error: ${(e as Error).message.split("\n")[0]}\n`);
        status = (e as { exitCode?: number }).exitCode ?? 125;
      }
    }
    // docker prints the objects it found (`[]` when none), then fails for the rest.
    const format = flags.format as string | undefined;
    if (found.length > 0 || format === undefined) ctx.out(formatInspect(found, format));
    return status;
  },
};

/** Containers first (as docker looks them up), then images; `type` restricts the lookup. */
async function inspectOne(
  store: Store,
  name: string,
  type: string | undefined,
): Promise<unknown> {
  if (type !== "image") {
    try {
      return await (await store.container(name)).inspect();
    } catch (e) {
      if (type === "container" || !(e instanceof NotFoundError)) throw e;
    }
  }
  try {
    return await store.inspect(name);
  } catch (e) {
    if (e instanceof NotFoundError && type === undefined) {
      throw new NotFoundError(`No such object: ${name}`);
    }
    throw e;
  }
}
