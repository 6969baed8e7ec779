/**
 * `berth logs [-f] [--tail N] [-t] [--since T] CONTAINER`: stdout entries to stdout, stderr
 * entries to stderr, as docker prints them.
 *
 * @module
 */
import { UsageError } from "./_args.ts";
import type { Command } from "./_command.ts";

/** Parses `--since`: RFC 3339, a Unix timestamp, or a duration before now (`10m`, `1h30m`). */
export function parseSince(value: string, now = Date.now()): Date {
  if (/^\d+(\.\d+)?$/.test(value)) return new Date(Number(value) * 1000);
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length && parts.map((p) => p[0]).join("") === value) {
    return new Date(now - parts.reduce((t, p) => t + Number(p[1]) * units[p[2]], 0));
  }
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new UsageError(`invalid value for "since": ${value}`);
  return new Date(t);
}

/** The `logs` command. */
export const command: Command = {
  usage: "[OPTIONS] CONTAINER",
  summary: "Fetch the logs of a container",
  flags: {
    follow: { type: "boolean", short: "f", help: "Follow log output" },
    tail: {
      type: "string",
      short: "n",
      arg: "string",
      help: "Number of lines to show from the end (default all)",
    },
    timestamps: { type: "boolean", short: "t", help: "Show timestamps" },
    since: {
      type: "string",
      arg: "string",
      help: "Show logs since timestamp or relative (e.g. 42m)",
    },
  },
  async run({ flags, args }, ctx) {
    if (args.length !== 1) throw new UsageError(`"berth logs" requires exactly 1 argument`);
    const tailFlag = flags.tail as string | undefined;
    let tail: number | undefined;
    if (tailFlag !== undefined && tailFlag !== "all") {
      tail = Number(tailFlag);
      if (!Number.isInteger(tail) || tail < 0) throw new UsageError(`invalid --tail "${tailFlag}"`);
    }
    const container = await (await ctx.store()).container(args[0]);
    const enc = new TextEncoder();
    for await (
      const e of container.logs({
        follow: flags.follow === true,
        ...(tail !== undefined ? { tail } : {}),
        ...(flags.since ? { since: parseSince(flags.since as string) } : {}),
      })
    ) {
      const text = (flags.timestamps ? `${e.time} ` : "") + e.log;
      const target = e.stream === "stderr" ? Deno.stderr : Deno.stdout;
      const bytes = enc.encode(text);
      let n = 0;
      while (n < bytes.byteLength) n += target.writeSync(bytes.subarray(n));
    }
    return 0;
  },
};
