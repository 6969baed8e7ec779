/**
 * `berth import [-c CHANGE] [-m MSG] [--platform P] FILE|- [REPOSITORY[:TAG]]`
 *
 * @module
 */
import { UsageError } from "./_args.ts";
import type { Command } from "./_command.ts";
import { stdinReadable } from "./_io.ts";
import { fileReadable } from "../content/read_file.ts";
import { parsePlatform } from "../oci/platform.ts";

/** The `import` command. */
export const command: Command = {
  usage: "[OPTIONS] file|- [REPOSITORY[:TAG]]",
  summary: "Import the contents from a tarball (plain, gzip or zstd) to create a filesystem image",
  flags: {
    change: {
      type: "list",
      short: "c",
      arg: "list",
      help: "Apply Dockerfile instruction to the created image",
    },
    message: {
      type: "string",
      short: "m",
      arg: "string",
      help: "Set commit message for imported image",
    },
    platform: { type: "string", arg: "string", help: "Set platform (os/arch[/variant])" },
  },
  async run({ flags, args }, ctx) {
    if (args.length < 1 || args.length > 2) {
      throw new UsageError(`"berth import" requires 1 or 2 arguments`);
    }
    const [file, ref] = args;
    let source: ReadableStream<Uint8Array>;
    if (file === "-") source = stdinReadable();
    else {
      const stat = await Deno.stat(file).catch(() => undefined);
      if (!stat?.isFile) throw new TypeError(`Cannot import "${file}": no such file`);
      source = fileReadable(file);
    }
    const id = await (await ctx.store()).import(source, {
      ...(ref ? { ref } : {}),
      ...(file !== "-" ? { name: file } : {}),
      ...(flags.change ? { changes: flags.change as string[] } : {}),
      ...(flags.message ? { message: flags.message as string } : {}),
      ...(flags.platform ? { platform: parsePlatform(flags.platform as string) } : {}),
    });
    ctx.out(`${id}\n`);
    return 0;
  },
};
