/**
 * `berth tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]`
 *
 * @module
 */
import { UsageError } from "./_args.ts";
import type { Command } from "./_command.ts";

/** The `tag` command. */
export const command: Command = {
  usage: "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
  summary: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
  flags: {},
  async run({ args }, ctx) {
    if (args.length !== 2) throw new UsageError(`"berth tag" requires exactly 2 arguments`);
    await (await ctx.store()).tag(args[0], args[1]);
    return 0;
  },
};
