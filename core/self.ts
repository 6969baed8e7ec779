/**
 * How berth runs itself again, in its init and monitor modes: the compiled binary, or Deno
 * running the CLI's entry module — main.ts, or its bundle (`deno task bundle`). The entry module
 * registers itself with {@linkcode setEntry}; in a library user's process (mod.ts) there is none,
 * and the main.ts beside this module is run.
 *
 * @module
 */

let entry: string | undefined;

/**
 * V8 flags berth runs with: `deno task compile` builds them into the executable, and berth's own
 * `deno run`s (init, monitor) pass them. A young generation of 4 MiB from the start: a `run` or
 * `exec` allocates ~4 MiB, and with V8's default first size (1 MiB) it pays two scavenges of 3-9
 * ms each here (page faults are dear in this VM); with it, none.
 */
export const V8_FLAGS: readonly string[] = ["--min-semi-space-size=4"];

/** Records the CLI's entry module (its `import.meta.url`). */
export function setEntry(url: string): void {
  entry = url;
}

/**
 * The command line that runs berth in `mode` (`__init`, `__monitor`); `denoFlags` go to
 * `deno run` when berth is not compiled.
 */
export function selfCommand(
  mode: string,
  denoFlags: readonly string[] = [],
): { command: string; args: string[] } {
  if (Deno.build.standalone) return { command: Deno.execPath(), args: [mode] };
  const main = new URL(entry ?? new URL("../main.ts", import.meta.url)).pathname;
  return {
    command: Deno.execPath(),
    args: ["run", "-A", `--v8-flags=${V8_FLAGS.join(",")}`, ...denoFlags, main, mode],
  };
}
