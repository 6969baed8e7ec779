/**
 * Environment lists: docker's env-file format and its merge rule (a later `K=V` replaces an
 * earlier `K` in place; a bare `K` removes it).
 *
 * @module
 */
import { InvalidInputError } from "../errors.ts";

/**
 * Parses an env file as docker does: leading whitespace trimmed, blank and `#` lines skipped,
 * `K=V` kept verbatim, a bare `K` taken from `lookup` (dropped when absent).
 */
export function parseEnvFile(
  text: string,
  lookup: (key: string) => string | undefined = () => undefined,
): string[] {
  const out: string[] = [];
  text.replace(/^\uFEFF/, "").split(/\r?\n/).forEach((raw) => {
    const line = raw.replace(/^\s+/, "");
    if (!line || line.startsWith("#")) return;
    const eq = line.indexOf("=");
    const key = eq < 0 ? line : line.slice(0, eq);
    if (/\s/.test(key)) throw new InvalidInputError(`variable '${key}' contains whitespaces`);
    if (eq >= 0) out.push(line);
    else {
      const v = lookup(key);
      if (v !== undefined) out.push(`${key}=${v}`);
    }
  });
  return out;
}

/**
 * Merges `overrides` into `base`: `K=V` replaces `K`'s entry in place or appends it; a bare `K`
 * removes `K`.
 */
export function mergeEnv(base: readonly string[], overrides: readonly string[]): string[] {
  const out: (string | undefined)[] = [...base];
  const index = new Map<string, number>();
  out.forEach((e, i) => index.set(e!.split("=", 1)[0], i));
  for (const e of overrides) {
    const eq = e.indexOf("=");
    const key = eq < 0 ? e : e.slice(0, eq);
    const i = index.get(key);
    if (eq < 0) {
      if (i !== undefined) out[i] = undefined;
      index.delete(key);
    } else if (i !== undefined) out[i] = e;
    else index.set(key, out.push(e) - 1);
  }
  return out.filter((e): e is string => e !== undefined);
}

/**
 * docker's `-e` values: `K=V` as is, a bare `K` takes the caller's value (`lookup`) and stays bare
 * (which removes `K` in {@linkcode mergeEnv}) when the caller has none. TypeError for `=V` or `""`.
 */
export function flagEnv(
  env: readonly string[],
  lookup: (key: string) => string | undefined,
): string[] {
  return env.map((e) => {
    if (e.startsWith("=") || e === "") throw new TypeError(`invalid environment variable: ${e}`);
    if (e.includes("=")) return e;
    const v = lookup(e);
    return v === undefined ? e : `${e}=${v}`;
  });
}
