/**
 * Lexical path normalization shared by the spec builders and the init.
 *
 * @module
 */

/** Normalizes an absolute path: no `.`, `..`, doubled or trailing slashes (`..` stops at `/`). */
export function normalizePath(path: string): string {
  const out: string[] = [];
  for (const c of path.split("/")) {
    if (c === "..") out.pop();
    else if (c && c !== ".") out.push(c);
  }
  return `/${out.join("/")}`;
}
