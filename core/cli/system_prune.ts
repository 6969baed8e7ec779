/**
 * `berth system prune [-a] [-f]` (also `berth prune`): stopped containers, dangling images (with
 * `-a` all unused ones) and unreferenced blobs and snapshots.
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
    const question = `WARNING! This will remove:\n  - all stopped containers\n  - ${
      flags.all
        ? "all images without at least one container associated to them"
        : "all dangling images"
    }\n  - all blobs no image references`;
    if (!flags.force && !(await confirm(question, ctx.out))) return 0;
    const store = await ctx.store();
    const containers = await store.pruneContainers();
    if (containers.deleted.length > 0) {
      ctx.out(`Deleted Containers:\n${containers.deleted.map((d) => `${d}\n`).join("")}\n`);
    }
    const result = await store.prune({ images: flags.all ? "all" : "dangling" });
    result.reclaimedBytes += containers.reclaimedBytes;
    if (result.deletedImages.length > 0) {
      ctx.out(`Deleted Images:\n${result.deletedImages.map((d) => `deleted: ${d}\n`).join("")}\n`);
    }
    ctx.out(`Total reclaimed space: ${humanSize(result.reclaimedBytes)}\n`);
    return 0;
  },
};
