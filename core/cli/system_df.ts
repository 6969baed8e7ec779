/**
 * `berth system df`: docker's TYPE, TOTAL, ACTIVE, SIZE, RECLAIMABLE table.
 *
 * @module
 */
import type { Command } from "./_command.ts";
import { humanSize } from "./_human.ts";
import { table } from "./_table.ts";

/** The `system df` command. */
export const command: Command = {
  usage: "[OPTIONS]",
  summary: "Show berth disk usage",
  flags: {
    format: { type: "string", arg: "FORMAT", help: "'json' for one JSON object per line" },
  },
  async run({ flags }, ctx) {
    const df = await (await ctx.store()).df();
    const pct = df.size > 0 ? ` (${Math.round((df.reclaimable / df.size) * 100)}%)` : "";
    const row = {
      Type: "Images",
      TotalCount: String(df.images),
      Active: String(df.active),
      Size: humanSize(df.size),
      Reclaimable: `${humanSize(df.reclaimable)}${pct}`,
    };
    if (flags.format === "json") {
      ctx.out(JSON.stringify(row) + "\n");
      return 0;
    }
    ctx.out(
      table([
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        [row.Type, row.TotalCount, row.Active, row.Size, row.Reclaimable],
      ]) + "\n",
    );
    return 0;
  },
};
