/**
 * Runs a command's action on each argument, as docker does: a failure is printed and the rest go
 * on; the exit status is that of the last failure (0 when all succeeded).
 *
 * @module
 */
import type { CliContext } from "./_command.ts";

/** Applies `action` to each name; prints `Error: …` lines for failures. */
export async function forEach(
  names: readonly string[],
  ctx: CliContext,
  action: (name: string) => Promise<void>,
): Promise<number> {
  let status = 0;
  for (const name of names) {
    try {
      await action(name);
    } catch (e) {
      ctx.err(`Error: ${(e as Error).message.split("\n")[0]}\n`);
      status = (e as { exitCode?: number }).exitCode ?? 125;
    }
  }
  return status;
}
