/**
 * A small argv parser with docker's conventions: `--flag value`, `--flag=value`, `-abc` bundles of
 * boolean shorts, `-e K=V` / `-eK=V`, repeatable list flags, `--` ends flags. With
 * `stopAtPositional` (run, exec) parsing stops at the first positional argument, so the container
 * command keeps its own flags.
 *
 * @module
 */

/** One flag's definition. */
export interface FlagDef {
  type: "boolean" | "string" | "list";
  short?: string;
  /** Shown in help. */
  help?: string;
  /** Placeholder in help, e.g. `FILE`. */
  arg?: string;
}

/** A command's flag table, by long name. */
export type FlagSpec = Record<string, FlagDef>;

/** Parse result. */
export interface ParsedArgs {
  flags: Record<string, string | boolean | string[] | undefined>;
  args: string[];
}

/** A usage error: wrong flags or arguments (exit 125, like docker). */
export class UsageError extends Error {
  readonly exitCode = 125;
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

const TRUE = new Set(["true", "1"]);
const FALSE = new Set(["false", "0"]);

/** Parses `argv` against `spec`. */
export function parseArgs(
  argv: readonly string[],
  spec: FlagSpec,
  options: { stopAtPositional?: boolean } = {},
): ParsedArgs {
  const flags: ParsedArgs["flags"] = {};
  const args: string[] = [];
  const byShort = new Map<string, string>();
  for (const [name, def] of Object.entries(spec)) if (def.short) byShort.set(def.short, name);

  const set = (name: string, def: FlagDef, value: string | boolean, shown: string) => {
    if (def.type === "list") {
      if (typeof value !== "string") throw new UsageError(`flag needs an argument: ${shown}`);
      ((flags[name] ??= []) as string[]).push(value);
    } else flags[name] = value;
  };

  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      i++;
      break;
    }
    if (arg.startsWith("--") && arg.length > 2) {
      const eq = arg.indexOf("=");
      const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      const def = spec[name];
      if (!def) throw new UsageError(`unknown flag: --${name}`);
      if (def.type === "boolean") {
        if (eq < 0) set(name, def, true, `--${name}`);
        else {
          const v = arg.slice(eq + 1);
          if (!TRUE.has(v) && !FALSE.has(v)) {
            throw new UsageError(
              `invalid argument "${v}" for "--${name}" flag: expected true or false`,
            );
          }
          set(name, def, TRUE.has(v), `--${name}`);
        }
      } else if (eq >= 0) set(name, def, arg.slice(eq + 1), `--${name}`);
      else {
        if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: --${name}`);
        set(name, def, argv[++i], `--${name}`);
      }
      continue;
    }
    if (arg.startsWith("-") && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const c = arg[j];
        const name = byShort.get(c);
        if (!name) throw new UsageError(`unknown shorthand flag: '${c}' in ${arg}`);
        const def = spec[name];
        if (def.type === "boolean") {
          set(name, def, true, `-${c}`);
          continue;
        }
        let value = arg.slice(j + 1);
        if (value.startsWith("=")) value = value.slice(1);
        if (value === "") {
          if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: '${c}' in -${c}`);
          value = argv[++i];
        }
        set(name, def, value, `-${c}`);
        break;
      }
      continue;
    }
    args.push(arg);
    if (options.stopAtPositional) {
      i++;
      break;
    }
  }
  args.push(...argv.slice(i));
  return { flags, args };
}

/** Renders a flag table for `--help`. */
export function formatFlags(spec: FlagSpec): string {
  const rows = Object.entries(spec).map(([name, def]) => {
    const left = `${def.short ? `-${def.short}, ` : "    "}--${name}${
      def.type === "boolean" ? "" : ` ${def.arg ?? (def.type === "list" ? "list" : "string")}`
    }`;
    return [left, def.help ?? ""];
  });
  const width = Math.max(0, ...rows.map(([l]) => l.length));
  return rows.map(([l, h]) => `  ${l.padEnd(width)}   ${h}`.trimEnd()).join("\n");
}
