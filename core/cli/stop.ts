/**
 * `berth stop [-t N] [-s SIG] CONTAINER...`: the stop signal (the image's StopSignal, or
 * SIGTERM), then SIGKILL after N seconds (default 10).
 *
 * @module
 */
import { UsageError } from "./_args.ts";
import type { Command } from "./_command.ts";
import { forEach } from "./_each.ts";
import { parseSignal } from "../store/container.ts";

/** The `stop` command. */
export const command: Command = {
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  summary: "Stop one or more running containers",
  flags: {
    time: {
      type: "string",
      short: "t",
      arg: "int",
      help: "Seconds to wait before killing the container (default 10)",
    },
    timeout: { type: "string", arg: "int", help: "Alias of --time" },
    signal: { type: "string", short: "s", arg: "string", help: "Signal to send to the container" },
  },
  async run({ flags, args }, ctx) {
    if (args.length === 0) throw new UsageError(`"berth stop" requires at least 1 argument`);
    const t = (flags.time ?? flags.timeout) as string | undefined;
    const timeout = t === undefined ? 10 : Number(t);
    if (!Number.isFinite(timeout) || timeout < 0) throw new UsageError(`invalid --time "${t}"`);
    const signal = flags.signal ? parseSignal(flags.signal as string) : undefined;
    const store = await ctx.store();
    return await forEach(args, ctx, async (name) => {
      const c = await store.container(name);
      await c.stop({ timeout, ...(signal ? { signal } : {}) });
      ctx.out(`${name}\n`);
    });
  },
};
