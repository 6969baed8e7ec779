/**
 * Builds the single executable `dist/berth` with `deno compile`, from the CLI's bundle
 * (`dist/js/main.js`, see `bundle.ts`). `deno compile` downloads its runtime stub (denort) unless
 * `DENORT_BIN` names a local one; where the download is not possible (as on machines without
 * access to dl.deno.land), set `DENORT_BIN=/path/to/denort`.
 *
 * Usage: deno task compile [--target TRIPLE] [--output PATH]
 *
 * @module
 */
const args = Deno.args;
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const output = flag("--output") ?? "dist/berth";
const target = flag("--target");
const denort = Deno.env.get("DENORT_BIN");
if (denort) {
  const stat = await Deno.stat(denort).catch(() => undefined);
  if (!stat?.isFile) {
    console.error(`Error: DENORT_BIN="${denort}" is not a file`);
    Deno.exit(1);
  }
  console.error(`Using the local runtime stub DENORT_BIN=${denort}`);
}
const root = new URL("..", import.meta.url).pathname;
// the executable runs the bundle (scripts/bundle.ts): the JavaScript the benchmarks measure
const { bundle } = await import("./bundle.ts");
const { V8_FLAGS } = await import("../core/self.ts");
const entry = await bundle();
const cmd = new Deno.Command(Deno.execPath(), {
  args: [
    "compile",
    "-A",
    "--no-check",
    `--v8-flags=${V8_FLAGS.join(",")}`,
    "--output",
    output,
    ...(target ? ["--target", target] : []),
    entry,
  ],
  cwd: root,
  stdout: "inherit",
  stderr: "inherit",
});
const { code } = await cmd.output();
if (code !== 0) {
  console.error(
    "Error: deno compile failed. Without internet access it cannot download denort: set " +
      "DENORT_BIN to a denort binary of the same Deno version.",
  );
}
Deno.exit(code);
