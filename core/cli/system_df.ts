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
    const pct = (part: number, whole: number) =>
      whole > 0 ? ` (${Math.round((part / whole) * 100)}%)` : "";
    const rows = [
      {
        Type: "Images",
        TotalCount: String(df.images),
        Active: String(df.active),
        Size: humanSize(df.size),
        Reclaimable: `${humanSize(df.reclaimable)}${pct(df.reclaimable, df.size)}`,
      },
      {
        Type: "Containers",
        TotalCount: String(df.containers),
        Active: String(df.running),
        Size: humanSize(df.containerSize),
        Reclaimable: `${humanSize(df.containerReclaimable)}${
          pct(df.containerReclaimable, df.containerSize)
        }`,
      },
    ];
    if (flags.format === "json") {
      ctx.out(rows.map((r) => JSON.stringify(r) + "\n").join(""));
      return 0;
    }
    ctx.out(
      table([
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        ...rows.map((r) => [r.Type, r.TotalCount, r.Active, r.Size, r.Reclaimable]),
      ]) + "\n",
    );
    return 0;
  },
};
