/**
 * `berth image inspect [-f FORMAT] IMAGE...`
 *
 * @module
 */
import type { Command } from "./_command.ts";
import { command as inspect } from "./inspect.ts";

/** The `image inspect` command. */
export const command: Command = {
  usage: "[OPTIONS] IMAGE [IMAGE...]",
  summary: "Display detailed information on one or more images",
  flags: { format: inspect.flags.format },
  run: (parsed, ctx) => inspect.run({ ...parsed, flags: { ...parsed.flags, type: "image" } }, ctx),
};
