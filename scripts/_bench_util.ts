/**
 * Timing helpers shared by the benchmarks: run commands N times with an untimed prepare step
 * between runs, collect wall time, CPU time and peak RSS, and print a table with ratios
 * (berth ÷ reference).
 *
 * Peak RSS comes from GNU time (`/usr/bin/time -f "%M %U %S" -o FILE`, installed from the apt
 * package `time` when missing). GNU time reports the `ru_maxrss` of the process it waited for,
 * which for a tree of processes is the largest single process in that tree (the kernel keeps the
 * maximum over waited-for descendants), not their sum. Wall time is measured here, around the
 * spawn of `/usr/bin/time …` (its own fork+exec costs well under a millisecond).
 *
 * Candidates are interleaved (round 1: A B C, round 2: A B C …) after one untimed warm-up run
 * each, so background load and page-cache state hit them alike.
 *
 * @module
 */

/** One timed run. */
export interface Sample {
  /** Wall time in milliseconds. */
  ms: number;
  /** Peak resident set size in KiB (see the module doc for what it covers). */
  maxRssKiB: number;
  /** User CPU seconds of the process tree. */
  userS: number;
  /** System CPU seconds of the process tree. */
  sysS: number;
  /** Extra figures a case reports after a run (e.g. a daemon's peak RSS). */
  extra?: Record<string, number>;
}

/** A command to benchmark. */
export interface Case {
  /** Row label, e.g. `berth load (docker-archive)`. */
  name: string;
  /** What the tool does in that time, printed under the table. */
  does?: string;
  /** Command and arguments. */
  argv: string[];
  /** Environment (added to the inherited one unless {@linkcode Case.clearEnv}). */
  env?: Record<string, string>;
  /** Start from an empty environment plus {@linkcode Case.env}. */
  clearEnv?: boolean;
  /** Untimed, before every run (warm-up included): e.g. a fresh store. */
  prepare?: () => Promise<void>;
  /**
   * Untimed, after every run, with the run's output: check the result, collect extra figures,
   * clean up. Throwing fails the benchmark (a wrong result must not be timed as a fast one).
   */
  after?: (out: { stdout: string; stderr: string }) => Promise<Record<string, number> | void>;
}

/** Result of {@linkcode benchCases}: the samples of each case, in the cases' order. */
export type Results = Map<Case, Sample[]>;

/** Options of {@linkcode benchCases}. */
export interface BenchOptions {
  /** Timed runs per case; default 5. */
  runs?: number;
  /** Untimed warm-up runs per case; default 1. */
  warmup?: number;
  /** Progress lines (default: to stderr). */
  log?: (line: string) => void;
}

const GNU_TIME = "/usr/bin/time";
let timeChecked = false;

/** Makes sure GNU time is at `/usr/bin/time`, installing the apt package `time` if it is not. */
export async function ensureGnuTime(): Promise<void> {
  if (timeChecked) return;
  const ok = async () => {
    try {
      const out = await new Deno.Command(GNU_TIME, {
        args: ["-f", "%M", "true"],
        stdout: "null",
        stderr: "piped",
      }).output();
      return out.success && /^\d+\s*$/.test(new TextDecoder().decode(out.stderr));
    } catch {
      return false;
    }
  };
  if (!(await ok())) {
    console.error("GNU time missing: apt-get install time");
    const env = { DEBIAN_FRONTEND: "noninteractive" };
    await new Deno.Command("apt-get", { args: ["install", "-y", "-qq", "time"], env }).output();
    if (!(await ok())) throw new Error("GNU time (/usr/bin/time) is needed for peak RSS");
  }
  timeChecked = true;
}

/** Runs `argv` once under GNU time; throws with its stderr when it fails. */
export async function timeOnce(
  argv: string[],
  options: { env?: Record<string, string>; clearEnv?: boolean } = {},
): Promise<Sample & { stdout: string; stderr: string }> {
  await ensureGnuTime();
  const report = await Deno.makeTempFile({ prefix: "berth-bench-time-" });
  try {
    const cmd = new Deno.Command(GNU_TIME, {
      args: ["-f", "%M %U %S", "-o", report, ...argv],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      ...(options.env ? { env: options.env } : {}),
      ...(options.clearEnv ? { clearEnv: true } : {}),
    });
    const t0 = performance.now();
    const out = await cmd.output();
    const ms = performance.now() - t0;
    const dec = new TextDecoder();
    const stdout = dec.decode(out.stdout), stderr = dec.decode(out.stderr);
    if (!out.success) {
      throw new Error(
        `${argv.join(" ")} exited ${out.code}: ${(stderr.trim() || stdout.trim()).slice(-1500)}`,
      );
    }
    const line = (await Deno.readTextFile(report)).trim().split("\n").pop() ?? "";
    const [rss, user, sys] = line.split(" ").map(Number);
    return { ms, maxRssKiB: rss, userS: user, sysS: sys, stdout, stderr };
  } finally {
    await Deno.remove(report).catch(() => {});
  }
}

/** Runs every case `warmup` + `runs` times, interleaved, and returns the timed samples. */
export async function benchCases(cases: Case[], options: BenchOptions = {}): Promise<Results> {
  const { runs = 5, warmup = 1 } = options;
  const log = options.log ?? ((line: string) => console.error(line));
  if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`Invalid runs ${runs}`);
  const results: Results = new Map(cases.map((c) => [c, []]));
  const once = async (c: Case): Promise<Sample> => {
    await c.prepare?.();
    const s = await timeOnce(c.argv, { env: c.env, clearEnv: c.clearEnv });
    const extra = await c.after?.(s);
    return {
      ms: s.ms,
      maxRssKiB: s.maxRssKiB,
      userS: s.userS,
      sysS: s.sysS,
      ...(extra ? { extra } : {}),
    };
  };
  for (let w = 0; w < warmup; w++) {
    for (const c of cases) {
      const s = await once(c);
      log(`  warm-up  ${c.name}: ${s.ms.toFixed(0)} ms`);
    }
  }
  for (let r = 0; r < runs; r++) {
    for (const c of cases) {
      const s = await once(c);
      results.get(c)!.push(s);
      log(`  run ${r + 1}/${runs} ${c.name}: ${s.ms.toFixed(0)} ms, ${kib(s.maxRssKiB)}`);
    }
  }
  return results;
}

/** Median of a non-empty list. */
export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Smallest value of a list. */
export function min(xs: number[]): number {
  return xs.length ? Math.min(...xs) : NaN;
}

/** Largest value of a list. */
export function max(xs: number[]): number {
  return xs.length ? Math.max(...xs) : NaN;
}

function kib(n: number): string {
  return `${(n / 1024).toFixed(0)} MiB`;
}

/** Summary of one case's samples. */
export interface Summary {
  /** The case's name. */
  name: string;
  /** Median wall ms. */
  median: number;
  /** Fastest wall ms. */
  min: number;
  /** Median CPU (user + sys) seconds. */
  cpuS: number;
  /** Largest peak RSS over the runs, KiB. */
  maxRssKiB: number;
  /** Medians of the extra figures. */
  extra: Record<string, number>;
}

/** Median / min / CPU / peak RSS of each case. */
export function summarize(results: Results): Summary[] {
  return [...results].map(([c, samples]) => {
    const extra: Record<string, number> = {};
    for (const key of new Set(samples.flatMap((s) => Object.keys(s.extra ?? {})))) {
      extra[key] = median(samples.map((s) => s.extra?.[key]).filter((x) => x !== undefined));
    }
    return {
      name: c.name,
      median: median(samples.map((s) => s.ms)),
      min: min(samples.map((s) => s.ms)),
      cpuS: median(samples.map((s) => s.userS + s.sysS)),
      maxRssKiB: max(samples.map((s) => s.maxRssKiB)),
      extra,
    };
  });
}

/** Left-pads / right-pads cells into an aligned text table (first column left-aligned). */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join("  ")
      .trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join(
    "\n",
  );
}

/** The standard results table: median, min, CPU and peak RSS per case. */
export function resultsTable(summaries: Summary[]): string {
  return formatTable(
    ["case", "median ms", "min ms", "cpu s", "peak RSS MiB"],
    summaries.map((s) => [
      s.name,
      s.median.toFixed(0),
      s.min.toFixed(0),
      s.cpuS.toFixed(2),
      (s.maxRssKiB / 1024).toFixed(0),
    ]),
  );
}

/** One ratio line: `berth ÷ reference`. */
export interface Ratio {
  /** Row label. */
  label: string;
  /** berth's summary (the row is left out when undefined, e.g. a skipped tool). */
  berth: Summary | undefined;
  /** The reference tool's summary (the row is left out when undefined). */
  reference: Summary | undefined;
}

/** A table of ratios of medians (and of peak RSS): berth ÷ reference; >1 means berth is slower. */
export function ratioTable(ratios: Ratio[]): string {
  const rows = ratios.filter((r) => r.berth && r.reference).map((r) => [
    r.label,
    `${(r.berth!.median / r.reference!.median).toFixed(2)}×`,
    `${(r.berth!.maxRssKiB / r.reference!.maxRssKiB).toFixed(2)}×`,
  ]);
  return formatTable(["berth ÷ reference", "time", "peak RSS"], rows);
}

/** Runs a command to completion, untimed; throws with its stderr when it fails. */
export async function sh(
  cmd: string,
  args: string[],
  options: { env?: Record<string, string>; clearEnv?: boolean } = {},
): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...options,
  }).output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} exited ${out.code}: ${dec.decode(out.stderr).trim().slice(-1500)}`,
    );
  }
  return dec.decode(out.stdout);
}

/** Removes a tree (ignoring a missing one) and flushes dirty pages so the next run starts clean. */
export async function freshDir(path: string): Promise<void> {
  await Deno.remove(path, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
  await sh("sync", []);
}

/** One line describing the machine and its load, for the benchmark header. */
export async function machineLine(): Promise<string> {
  const load = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  const mem = (await Deno.readTextFile("/proc/meminfo")).match(/MemTotal:\s+(\d+)/)?.[1];
  return `Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores, ` +
    `${mem ? (Number(mem) / 1048576).toFixed(0) : "?"} GiB, load average ${load}`;
}
