/**
 * Printing inspect results: docker's 4-space-indented JSON array, or one `--format` line each.
 *
 * @module
 */
import { parseTemplate } from "./_template.ts";

/** Renders `items` as `inspect` does. */
export function formatInspect(items: unknown[], format: string | undefined): string {
  if (format === undefined || format === "" || format === "json") {
    return JSON.stringify(items, null, 4) + "\n";
  }
  const tpl = parseTemplate(format);
  return items.map((i) => tpl.render(i) + "\n").join("");
}
