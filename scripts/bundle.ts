/**
 * Builds the CLI as plain JavaScript with `deno bundle` (esbuild), split at its dynamic imports
 * so that each command and mode still loads only its own code: `dist/js/main.js` and its chunks.
 * This is what `deno task compile` puts in the executable, and what `deno run -A dist/js/main.js`
 * runs without TypeScript (fewer, pre-transpiled modules: a faster start than main.ts).
 *
 * Usage: deno task bundle [--outdir DIR]
 *
 * @module
 */

const ROOT = new URL("..", import.meta.url).pathname;

/**
 * Bundles main.ts into `outdir` (emptied first); resolves with the entry's path. Throws with
 * `deno bundle`'s output when it fails.
 */
export async function bundle(outdir = `${ROOT}dist/js`): Promise<string> {
  await Deno.remove(outdir, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
  // the npm packages must be in Deno's cache first (deno bundle does not fetch them)
  await run(["cache", "--quiet", `${ROOT}main.ts`]);
  await run([
    "bundle",
    "--quiet",
    "--platform",
    "deno",
    "--code-splitting",
    "--outdir",
    outdir,
    `${ROOT}main.ts`,
  ]);
  const entry = `${outdir}/main.js`;
  await Deno.stat(entry);
  return entry;
}

async function run(args: string[]): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr).trim() ||
      new TextDecoder().decode(out.stdout).trim();
    throw new Error(`deno ${args[0]} failed (${out.code}): ${text}`);
  }
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--outdir");
  const entry = await bundle(i >= 0 ? Deno.args[i + 1] : undefined);
  console.log(entry);
}
