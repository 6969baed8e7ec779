/**
 * `berth rm [-f] [-v] CONTAINER...`
 *
 * @module
 */
import { UsageError } from "./_args.ts";
import type { Command } from "./_command.ts";
import { forEach } from "./_each.ts";

/** The `rm` command. */
export const command: Command = {
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  summary: "Remove one or more containers",
  flags: {
    force: {
      type: "boolean",
      short: "f",
      help: "Force the removal of a running container (uses SIGKILL)",
    },
    volumes: { type: "boolean", short: "v", help: "Remove anonymous volumes (berth makes none)" },
  },
  async run({ flags, args }, ctx) {
    if (args.length === 0) throw new UsageError(`"berth rm" requires at least 1 argument`);
    const store = await ctx.store();
    return await forEach(args, ctx, async (name) => {
      await (await store.container(name)).remove({ force: flags.force === true });
      ctx.out(`${name}\n`);
    });
  },
};
