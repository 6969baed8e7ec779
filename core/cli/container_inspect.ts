/**
 * `berth container inspect [-f FORMAT] CONTAINER...`
 *
 * @module
 */
import type { Command } from "./_command.ts";
import { command as inspect } from "./inspect.ts";

/** The `container inspect` command. */
export const command: Command = {
  usage: "[OPTIONS] CONTAINER [CONTAINER...]",
  summary: "Display detailed information on one or more containers",
  flags: { format: inspect.flags.format },
  run: (parsed, ctx) =>
    inspect.run({ ...parsed, flags: { ...parsed.flags, type: "container" } }, ctx),
};
