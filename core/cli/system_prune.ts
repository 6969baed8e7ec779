/**
 * `berth system prune [-a] [-f]` (also `berth prune`): dangling images (with `-a` all unused
 * ones) and unreferenced blobs.
 *
 * @module
 */
import type { Command } from "./_command.ts";
import { confirm } from "./_confirm.ts";
import { humanSize } from "./_human.ts";

/** The `system prune` command. */
export const command: Command = {
  usage: "[OPTIONS]",
  summary: "Remove unused data",
  flags: {
    all: { type: "boolean", short: "a", help: "Remove all unused images not just dangling ones" },
    force: { type: "boolean", short: "f", help: "Do not prompt for confirmation" },
  },
  async run({ flags }, ctx) {
    const question = `WARNING! This will remove:\n  - ${
      flags.all
        ? "all images without at least one container associated to them"
        : "all dangling images"
    }\n  - all blobs no image references`;
    if (!flags.force && !(await confirm(question, ctx.out))) return 0;
    const result = await (await ctx.store()).prune({ images: flags.all ? "all" : "dangling" });
    if (result.deletedImages.length > 0) {
      ctx.out(`Deleted Images:\n${result.deletedImages.map((d) => `deleted: ${d}\n`).join("")}\n`);
    }
    ctx.out(`Total reclaimed space: ${humanSize(result.reclaimedBytes)}\n`);
    return 0;
  },
};
