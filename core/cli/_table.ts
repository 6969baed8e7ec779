/**
 * Column output like Go's tabwriter as docker configures it (min width 10, padding 3).
 *
 * @module
 */

/** Lays out rows (the first is the header) in columns. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      if (i < row.length - 1) widths[i] = Math.max(widths[i] ?? 0, Math.max(cell.length + 3, 10));
    });
  }
  return rows.map((row) =>
    row.map((cell, i) => (i < row.length - 1 ? cell.padEnd(widths[i]) : cell)).join("").trimEnd()
  ).join("\n");
}
