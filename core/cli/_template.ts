/**
 * The part of Go's text/template that docker's `--format` users write: `{{.Field.Sub}}`, `{{.}}`,
 * functions `json`, `join`, `upper`, `lower`, `index`, `len`, `println`; a `table` prefix; `\t` and
 * `\n` escapes. Values print as Go's `%v` does (`[a b]`, `map[k:v]`).
 *
 * @module
 */
import { UsageError } from "./_args.ts";

type Arg = { kind: "path"; path: string[] } | { kind: "string"; value: string };
type Action = { fn?: string; args: Arg[] };
type Part = string | Action;

/** A parsed template. */
export interface Template {
  /** True when the format began with `table`. */
  readonly table: boolean;
  /** Renders one item. */
  render(value: unknown): string;
  /** The header line of a table format: each action shown as `headers[field]` or its name. */
  header(headers: Record<string, string>): string;
}

/** Go's `%v` formatting. */
export function goValue(v: unknown): string {
  if (v === undefined || v === null) return "<no value>";
  if (Array.isArray(v)) return `[${v.map(goValue).join(" ")}]`;
  if (typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a < b ? -1 : 1);
    return `map[${entries.map(([k, x]) => `${k}:${goValue(x)}`).join(" ")}]`;
  }
  return String(v);
}

function tokenize(src: string, format: string): Arg[] {
  const out: Arg[] = [];
  const re = /\s*(?:"((?:[^"\\]|\\.)*)"|`([^`]*)`|(\.[\w.]*|[\w]+))/y;
  let m: RegExpExecArray | null;
  let pos = 0;
  while (pos < src.trimEnd().length && (re.lastIndex = pos, m = re.exec(src))) {
    pos = re.lastIndex;
    if (m[1] !== undefined) out.push({ kind: "string", value: JSON.parse(`"${m[1]}"`) });
    else if (m[2] !== undefined) out.push({ kind: "string", value: m[2] });
    else if (m[3].startsWith(".")) {
      out.push({ kind: "path", path: m[3] === "." ? [] : m[3].slice(1).split(".") });
    } else out.push({ kind: "string", value: `\0fn:${m[3]}` });
  }
  if (pos < src.trimEnd().length) throw new UsageError(`template parsing error in "${format}"`);
  return out;
}

const FUNCS = new Set(["json", "join", "upper", "lower", "index", "len", "println", "print"]);

/** Parses a `--format` string. */
export function parseTemplate(format: string): Template {
  let src = format;
  const isTable = src.startsWith("table");
  if (isTable) src = src.slice(5);
  src = src.trim().replaceAll("\\t", "\t").replaceAll("\\n", "\n");
  const parts: Part[] = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf("{{", i);
    if (open < 0) {
      parts.push(src.slice(i));
      break;
    }
    if (open > i) parts.push(src.slice(i, open));
    const close = src.indexOf("}}", open);
    if (close < 0) throw new UsageError(`template parsing error: unclosed action in "${format}"`);
    const tokens = tokenize(src.slice(open + 2, close).replace(/^-|-$/g, ""), format);
    const first = tokens[0];
    let action: Action;
    if (first?.kind === "string" && first.value.startsWith("\0fn:")) {
      const fn = first.value.slice(4);
      if (!FUNCS.has(fn)) {
        throw new UsageError(`template: function "${fn}" not defined in "${format}"`);
      }
      action = { fn, args: tokens.slice(1) };
    } else if (tokens.length === 1 && first.kind === "path") action = { args: tokens };
    else throw new UsageError(`template parsing error in "${format}"`);
    parts.push(action);
    i = close + 2;
  }

  const resolve = (root: unknown, arg: Arg): unknown => {
    if (arg.kind === "string") return arg.value;
    let v: unknown = root;
    for (const key of arg.path) {
      if (v === null || typeof v !== "object") {
        throw new UsageError(`template: can't evaluate field ${key} in "${format}"`);
      }
      v = (v as Record<string, unknown>)[key];
    }
    return v;
  };
  const call = (root: unknown, a: Action): string => {
    const args = a.args.map((x) => resolve(root, x));
    switch (a.fn) {
      case undefined:
        return goValue(args[0]);
      case "json":
        return JSON.stringify(args[0] ?? null);
      case "join":
        return ((args[0] as unknown[] | undefined) ?? []).map(goValue).join(String(args[1] ?? ""));
      case "upper":
        return goValue(args[0]).toUpperCase();
      case "lower":
        return goValue(args[0]).toLowerCase();
      case "index":
        return goValue((args[0] as Record<string, unknown> | undefined)?.[String(args[1])]);
      case "len":
        return String(
          Array.isArray(args[0]) || typeof args[0] === "string"
            ? (args[0] as unknown[]).length
            : Object.keys(args[0] ?? {}).length,
        );
      case "println":
        return args.map(goValue).join(" ") + "\n";
      default:
        return args.map(goValue).join("");
    }
  };
  return {
    table: isTable,
    render: (value) => parts.map((p) => typeof p === "string" ? p : call(value, p)).join(""),
    header: (headers) =>
      parts.map((p) => {
        if (typeof p === "string") return p;
        const arg = p.args[0];
        const name = arg?.kind === "path" ? arg.path.join(".") : "";
        return headers[name] ?? name.toUpperCase();
      }).join(""),
  };
}
