/**
 * `berth load [-i FILE] [-q] [--platform P]`: docker-archive or OCI archive from a file or stdin.
 *
 * @module
 */
import { UsageError } from "./_args.ts";
import type { Command } from "./_command.ts";
import { stdinReadable } from "./_io.ts";
import { fileReadable } from "../content/read_file.ts";
import { parsePlatform } from "../oci/platform.ts";

/** The `load` command. */
export const command: Command = {
  usage: "[OPTIONS]",
  summary:
    "Load an image from a tar archive (docker-archive or OCI, optionally gzip/zstd) or STDIN",
  flags: {
    input: {
      type: "string",
      short: "i",
      arg: "FILE",
      help: "Read from tar archive file, instead of STDIN",
    },
    quiet: { type: "boolean", short: "q", help: "Suppress the load output" },
    platform: {
      type: "string",
      arg: "OS/ARCH[/VARIANT]",
      help: "Image to pick from a multi-platform archive",
    },
  },
  async run({ flags, args }, ctx) {
    if (args.length > 0) throw new UsageError(`"berth load" accepts no arguments`);
    const input = flags.input as string | undefined;
    let source: ReadableStream<Uint8Array>;
    if (input !== undefined && input !== "-") {
      try {
        const stat = await Deno.stat(input);
        if (!stat.isFile) throw new TypeError(`Cannot load "${input}": not a regular file`);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) {
          throw new TypeError(`Cannot load "${input}": no such file`);
        }
        throw e;
      }
      source = fileReadable(input);
    } else {
      if (Deno.stdin.isTerminal()) {
        throw new UsageError("requested load from stdin, but stdin is a terminal: use -i FILE");
      }
      source = stdinReadable();
    }
    const store = await ctx.store();
    const loaded = await store.load(source, {
      ...(input && input !== "-" ? { name: input } : {}),
      ...(flags.platform ? { platform: parsePlatform(flags.platform as string) } : {}),
    });
    if (!flags.quiet) {
      for (const image of loaded) {
        if (image.tags.length === 0) ctx.out(`Loaded image ID: ${image.id}\n`);
        for (const tag of image.tags) ctx.out(`Loaded image: ${tag}\n`);
      }
    }
    return 0;
  },
};
