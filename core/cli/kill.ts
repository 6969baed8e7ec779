/**
 * `berth kill [-s SIG] CONTAINER...`
 *
 * @module
 */
import { UsageError } from "./_args.ts";
import type { Command } from "./_command.ts";
import { forEach } from "./_each.ts";
import { parseSignal } from "../store/container.ts";

/** The `kill` command. */
export const command: Command = {
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  summary: "Kill one or more running containers",
  flags: {
    signal: {
      type: "string",
      short: "s",
      arg: "string",
      help: 'Signal to send to the container (default "KILL")',
    },
  },
  async run({ flags, args }, ctx) {
    if (args.length === 0) throw new UsageError(`"berth kill" requires at least 1 argument`);
    const signal = parseSignal((flags.signal as string | undefined) ?? "KILL");
    const store = await ctx.store();
    return await forEach(args, ctx, async (name) => {
      await (await store.container(name)).kill(signal);
      ctx.out(`${name}\n`);
    });
  },
};
