/**
 * `berth wait CONTAINER...`: prints each container's exit code once it has exited.
 *
 * @module
 */
import { UsageError } from "./_args.ts";
import type { Command } from "./_command.ts";
import { forEach } from "./_each.ts";

/** The `wait` command. */
export const command: Command = {
  usage: "CONTAINER [CONTAINER...]",
  summary: "Block until one or more containers stop, then print their exit codes",
  flags: {},
  async run({ args }, ctx) {
    if (args.length === 0) throw new UsageError(`"berth wait" requires at least 1 argument`);
    const store = await ctx.store();
    return await forEach(args, ctx, async (name) => {
      ctx.out(`${await (await store.container(name)).wait()}\n`);
    });
  },
};
