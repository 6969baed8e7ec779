/**
 * `berth save [-o FILE] [--format docker-archive|oci-archive] IMAGE...`
 *
 * @module
 */
import { UsageError } from "./_args.ts";
import type { Command } from "./_command.ts";
import { streamToFile, streamToStdout } from "./_io.ts";

/** The `save` command. */
export const command: Command = {
  usage: "[OPTIONS] IMAGE [IMAGE...]",
  summary: "Save one or more images to a tar archive (streamed to STDOUT by default)",
  flags: {
    output: { type: "string", short: "o", arg: "FILE", help: "Write to a file, instead of STDOUT" },
    format: {
      type: "string",
      arg: "FORMAT",
      help: "docker-archive (default: also an OCI layout) or oci-archive",
    },
  },
  async run({ flags, args }, ctx) {
    if (args.length === 0) throw new UsageError(`"berth save" requires at least 1 argument`);
    const format = (flags.format as string | undefined) ?? "docker-archive";
    if (format !== "docker-archive" && format !== "oci-archive") {
      throw new UsageError(`invalid --format "${format}": use docker-archive or oci-archive`);
    }
    const output = flags.output as string | undefined;
    if (output === undefined && Deno.stdout.isTerminal()) {
      throw new UsageError("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    const store = await ctx.store();
    const stream = await store.save(args, { format });
    if (output === undefined || output === "-") await streamToStdout(stream);
    else await streamToFile(stream, output);
    return 0;
  },
};
