/**
 * `berth image prune [-a] [-f]`: removes dangling (with `-a`: all unused) images and every blob no
 * image references.
 *
 * @module
 */
import type { Command } from "./_command.ts";
import { confirm } from "./_confirm.ts";
import { humanSize } from "./_human.ts";

/** The `image prune` command. */
export const command: Command = {
  usage: "[OPTIONS]",
  summary: "Remove unused images and the blobs no image references",
  flags: {
    all: { type: "boolean", short: "a", help: "Remove all unused images, not just dangling ones" },
    force: { type: "boolean", short: "f", help: "Do not prompt for confirmation" },
  },
  async run({ flags }, ctx) {
    const question = flags.all
      ? "WARNING! This will remove all images without at least one container associated to them."
      : "WARNING! This will remove all dangling images.";
    if (!flags.force && !(await confirm(question, ctx.out))) return 0;
    const result = await (await ctx.store()).prune({ images: flags.all ? "all" : "dangling" });
    if (result.deletedImages.length > 0) {
      ctx.out(`Deleted Images:\n${result.deletedImages.map((d) => `deleted: ${d}\n`).join("")}\n`);
    }
    ctx.out(`Total reclaimed space: ${humanSize(result.reclaimedBytes)}\n`);
    return 0;
  },
};
