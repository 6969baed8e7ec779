/**
 * `berth rmi [-f] IMAGE...`
 *
 * @module
 */
import { UsageError } from "./_args.ts";
import type { Command } from "./_command.ts";

/** The `rmi` command. */
export const command: Command = {
  usage: "[OPTIONS] IMAGE [IMAGE...]",
  summary: "Remove one or more images",
  flags: {
    force: { type: "boolean", short: "f", help: "Force removal of the image" },
    "no-prune": { type: "boolean", help: "Accepted for docker compatibility" },
  },
  async run({ flags, args }, ctx) {
    if (args.length === 0) throw new UsageError(`"berth rmi" requires at least 1 argument`);
    const store = await ctx.store();
    let status = 0;
    for (const name of args) {
      try {
        const result = await store.removeImage(name, { force: flags.force === true });
        for (const t of result.untagged) ctx.out(`Untagged: ${t}\n`);
        for (const d of result.deleted) ctx.out(`Deleted: ${d}\n`);
      } catch (e) {
        ctx.err(`Error: ${(e as Error).message.split("\n")[0]}\n`);
        status = (e as { exitCode?: number }).exitCode ?? 125;
      }
    }
    return status;
  },
};
