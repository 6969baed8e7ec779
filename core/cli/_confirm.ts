/**
 * docker's `Are you sure you want to continue? [y/N]` prompt, read from stdin.
 *
 * @module
 */

/** Asks `question`; true only for an answer starting with y/Y. */
export async function confirm(question: string, write: (s: string) => void): Promise<boolean> {
  write(`${question}\nAre you sure you want to continue? [y/N] `);
  const buf = new Uint8Array(256);
  const n = await Deno.stdin.read(buf);
  const answer = n === null ? "" : new TextDecoder().decode(buf.subarray(0, n)).trim();
  if (n === null) write("\n");
  return /^y/i.test(answer);
}
