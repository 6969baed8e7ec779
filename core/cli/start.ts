/**
 * `berth start CONTAINER...`: a created or stopped container runs again, detached, under a new
 * supervisor.
 *
 * @module
 */
import { UsageError } from "./_args.ts";
import type { Command } from "./_command.ts";
import { forEach } from "./_each.ts";

/** The `start` command. */
export const command: Command = {
  usage: "CONTAINER [CONTAINER...]",
  summary: "Start one or more stopped containers",
  flags: {},
  async run({ args }, ctx) {
    if (args.length === 0) throw new UsageError(`"berth start" requires at least 1 argument`);
    const store = await ctx.store();
    return await forEach(args, ctx, async (name) => {
      await (await store.container(name)).start();
      ctx.out(`${name}\n`);
    });
  },
};
