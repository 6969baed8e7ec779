/**
 * Benchmark dispatcher: `deno task bench [load|run|pull|exec|codecs|unpack|all] [--runs N]`.
 *
 * Each benchmark lives in `scripts/bench_<name>.ts` and exports `bench<Name>(options)`; it runs
 * berth and a reference tool on the same input in the same run and prints the ratio (a benchmark
 * that returns its figures without printing is shown here as JSON). A benchmark
 * whose file does not exist yet is skipped by `all` (the default) with a message, and is an error
 * when named explicitly.
 *
 * @module
 */

/** The benchmarks the dispatcher knows, in the order `all` runs them. */
export const BENCHMARKS = ["codecs", "load", "unpack", "pull", "run", "exec"] as const;

/** A benchmark name. */
export type BenchName = typeof BENCHMARKS[number];

type BenchFn = (options: { runs?: number }) => Promise<unknown>;

/** Options of {@linkcode runBenchmarks}. */
export interface RunBenchmarksOptions {
  /** Timed runs per case, passed to every benchmark. */
  runs?: number;
}

function exportName(name: BenchName): string {
  return `bench${name[0].toUpperCase()}${name.slice(1)}`;
}

/** Loads `scripts/bench_<name>.ts`; resolves undefined when that file does not exist. */
async function loadBench(name: BenchName): Promise<BenchFn | undefined> {
  const url = new URL(`./bench_${name}.ts`, import.meta.url);
  try {
    await Deno.stat(url);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  const mod = await import(url.href);
  const fn = mod[exportName(name)];
  if (typeof fn !== "function") {
    throw new TypeError(`scripts/bench_${name}.ts does not export ${exportName(name)}()`);
  }
  return fn as BenchFn;
}

/**
 * Runs the named benchmarks (`all`: every one whose file exists) one after the other; resolves
 * with the names that were missing or failed.
 */
export async function runBenchmarks(
  names: readonly (BenchName | "all")[],
  options: RunBenchmarksOptions = {},
): Promise<{ missing: BenchName[]; failed: BenchName[] }> {
  const all = names.length === 0 || names.includes("all");
  const wanted: BenchName[] = all ? [...BENCHMARKS] : names as BenchName[];
  const missing: BenchName[] = [], failed: BenchName[] = [];
  for (const name of wanted) {
    const fn = await loadBench(name);
    if (!fn) {
      missing.push(name);
      console.log(
        `\n== ${name}: skipped, scripts/bench_${name}.ts does not exist yet ` +
          `(no ${exportName(name)}() to run)`,
      );
      continue;
    }
    console.log(`\n== ${name}`);
    try {
      // A benchmark that returns its figures without printing anything: show them as JSON.
      const log = console.log;
      let printed = 0;
      console.log = (...args: unknown[]) => {
        printed++;
        log(...args);
      };
      let result: unknown;
      try {
        result = await fn(options.runs === undefined ? {} : { runs: options.runs });
      } finally {
        console.log = log;
      }
      if (printed === 0 && result !== undefined && result !== null) {
        console.log(JSON.stringify(result, null, 2));
      }
    } catch (e) {
      failed.push(name);
      console.log(`!! ${name} failed: ${e instanceof Error ? e.stack ?? e.message : e}`);
    }
  }
  return { missing: all ? [] : missing, failed };
}

const USAGE = `Usage: deno task bench [${BENCHMARKS.join("|")}|all]... [--runs N]`;

function parse(argv: string[]): { names: (BenchName | "all")[]; runs?: number } {
  const names: (BenchName | "all")[] = [];
  let runs: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    let value: string | undefined;
    if (a === "--runs") value = argv[++i];
    else if (a.startsWith("--runs=")) value = a.slice(7);
    else if (a === "-h" || a === "--help") {
      console.log(USAGE);
      Deno.exit(0);
    } else if (a === "all" || (BENCHMARKS as readonly string[]).includes(a)) {
      names.push(a as BenchName | "all");
      continue;
    } else throw new TypeError(`unknown argument "${a}"\n${USAGE}`);
    runs = Number(value);
    if (!Number.isInteger(runs) || runs < 1) throw new TypeError(`--runs needs a positive integer`);
  }
  return runs === undefined ? { names } : { names, runs };
}

if (import.meta.main) {
  let parsed;
  try {
    parsed = parse(Deno.args);
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(2);
  }
  const { missing, failed } = await runBenchmarks(parsed.names, { runs: parsed.runs });
  if (missing.length) console.error(`missing benchmark(s): ${missing.join(", ")}`);
  if (failed.length) console.error(`failed benchmark(s): ${failed.join(", ")}`);
  Deno.exit(missing.length || failed.length ? 1 : 0);
}
