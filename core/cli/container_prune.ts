/**
 * `berth container prune [-f]`: removes every stopped container.
 *
 * @module
 */
import type { Command } from "./_command.ts";
import { confirm } from "./_confirm.ts";
import { humanSize } from "./_human.ts";

/** The `container prune` command. */
export const command: Command = {
  usage: "[OPTIONS]",
  summary: "Remove all stopped containers",
  flags: {
    force: { type: "boolean", short: "f", help: "Do not prompt for confirmation" },
  },
  async run({ flags }, ctx) {
    if (
      !flags.force &&
      !(await confirm("WARNING! This will remove all stopped containers.", ctx.out))
    ) return 0;
    const { deleted, reclaimedBytes } = await (await ctx.store()).pruneContainers();
    if (deleted.length) ctx.out(`Deleted Containers:\n${deleted.map((d) => `${d}\n`).join("")}\n`);
    ctx.out(`Total reclaimed space: ${humanSize(reclaimedBytes)}\n`);
    return 0;
  },
};
