/**
 * `berth pull [-q] [--platform P] NAME[:TAG|@DIGEST]`: an image from a registry, with docker's
 * progress output.
 *
 * @module
 */
import { UsageError } from "./_args.ts";
import type { Command } from "./_command.ts";
import { parsePlatform } from "../oci/platform.ts";
import { registryConfig } from "./_registries.ts";

/** The `pull` command. */
export const command: Command = {
  usage: "[OPTIONS] NAME[:TAG|@DIGEST]",
  summary: "Download an image from a registry",
  flags: {
    quiet: { type: "boolean", short: "q", help: "Suppress verbose output" },
    platform: {
      type: "string",
      arg: "OS/ARCH[/VARIANT]",
      help: "Image to pick from a multi-platform image (default: this host's)",
    },
    "all-tags": { type: "boolean", short: "a", help: "Download all tagged images (not supported)" },
    "insecure-registry": {
      type: "list",
      arg: "HOST[:PORT]",
      help: "Reach this registry over plain HTTP (also: registries.json)",
    },
    "disable-content-trust": { type: "boolean", help: "Accepted for docker compatibility" },
  },
  async run({ flags, args }, ctx) {
    if (args.length !== 1) {
      throw new UsageError(`"berth pull" requires exactly 1 argument`);
    }
    if (flags["all-tags"]) throw new UsageError("--all-tags is not supported");
    const platform = flags.platform ? parsePlatform(flags.platform as string) : undefined;
    const [{ pullImage }, { PullProgress }] = await Promise.all([
      import("../store/pull.ts"),
      import("./_progress.ts"),
    ]);
    const store = await ctx.store();
    const quiet = flags.quiet === true;
    const tty = Deno.stdout.isTerminal();
    let columns = 80;
    try {
      columns = Deno.consoleSize().columns;
    } catch { /* not a terminal */ }
    const progress = quiet ? undefined : new PullProgress({ out: ctx.out, tty, columns });
    const abort = new AbortController();
    const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
    const onSignal = () => abort.abort(new Error(`Cannot pull "${args[0]}": interrupted`));
    for (const s of signals) Deno.addSignalListener(s, onSignal);
    try {
      const image = await pullImage(store, args[0], {
        registries: await registryConfig(store, flags["insecure-registry"] as string[] | undefined),
        ...(platform ? { platform } : {}),
        signal: abort.signal,
        ...(progress ? { onProgress: (e) => progress.handle(e) } : {}),
      });
      if (!quiet) {
        ctx.out(`Digest: ${image.digest}\n`);
        ctx.out(
          `Status: ${
            image.upToDate ? "Image is up to date" : "Downloaded newer image"
          } for ${image.name}\n`,
        );
      }
      ctx.out(`${image.reference}\n`);
      return 0;
    } finally {
      for (const s of signals) Deno.removeSignalListener(s, onSignal);
    }
  },
};
