/**
 * `berth container prune [-f]`: removes every stopped container.
 *
 * @module
 */
import type { Command } from "./_command.ts";
import { confirm } from "./_confirm.ts";
import { humanSize } from "./_human.ts";
import { dirSize } from "../store/dir_size.ts";

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
    const store = await ctx.store();
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const c of await store.listContainers()) {
      if (c.running) continue;
      reclaimed += await dirSize(store.containers.path(c.id));
      await c.remove();
      deleted.push(c.id);
    }
    if (deleted.length) ctx.out(`Deleted Containers:\n${deleted.map((d) => `${d}\n`).join("")}\n`);
    ctx.out(`Total reclaimed space: ${humanSize(reclaimed)}\n`);
    return 0;
  },
};
