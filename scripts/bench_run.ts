/**
 * Container start benchmark (`deno task bench run [--runs N]`): `true` in the busybox fixture image
 * (`tests/_fixtures.ts`, `fixture/busybox:latest`), started and removed by
 *
 * - berth: `deno run -A main.ts --root R run --rm fixture/busybox true`, a fresh process each run
 *   (the CLI as a user runs it), after an untimed `berth load -i` into the temp store R; run with
 *   `BERTH_TIMING=1`, whose `timing:` lines on stderr give the per-phase breakdown;
 * - berth, bundled: the same from `deno task bundle`'s output (`dist/js/main.js`, built untimed at
 *   the start) as the executable runs it: the JavaScript `deno task compile` puts in it
 *   (pre-transpiled, in few modules), with the V8 flags it builds in (`V8_FLAGS`, core/self.ts);
 * - podman: `podman run --rm --network none --ulimit nofile=H:H --ulimit nproc=N:N
 *   docker.io/fixture/busybox:latest true` in a throw-away podman (`tests/_podman.ts`, overlay
 *   driver, runtime runc, cgroupfs; H is the hard nofile limit, N the hard nproc limit capped at H:
 *   podman's default limits, and 50000 here, make runc fail with EPERM), after an untimed
 *   `podman load`. The sandbox's wrapper (unshare, sh, a tmpfs mount) is timed alone in the same
 *   round, its median subtracted;
 * - runc: `runc run` of a bundle whose rootfs is the image unpacked by `berth unpack`, config from
 *   `runc spec` with no terminal, args `["true"]`, a writable root (as berth's and podman's are)
 *   and the network namespace; crun the same bundle (on a hybrid cgroup host crun 1.8 refuses a
 *   cgroup2 mount that has controllers: it runs where that mount is hidden, and that wrapper,
 *   timed alone in the same rounds, is subtracted);
 * - the floor: an empty `deno run` with the flags berth's init uses (every berth start pays for
 *   two Deno starts: the engine's and the init's, the second overlapped with the first's work).
 *
 * Secondary rows: `berth --version` (the engine's start without the run path), and berth's
 * runtime (`runContainer`, no store, no CLI) on the unpacked image as the overlay's lower dir, in
 * a fresh process with the init spawned first thing (as `berth run` does) and without, and in this
 * process (the library call).
 *
 * Every round runs every case once, in an order rotated each round, after untimed warm-up rounds;
 * reported: medians, minima, ratios to podman and to runc, the load average over the rounds, and
 * where berth's milliseconds go (medians of its `BERTH_TIMING=1` phases). Leaves nothing behind:
 * temp dirs, the podman sandbox (reset and removed), the cgroups podman's cgroupfs manager creates
 * and does not remove. Needs root.
 *
 * ```sh
 * deno run -A scripts/bench_run.ts [--runs N] [--warmup N]
 * ```
 *
 * @module
 */
import { formatTable, machineLine, median, min } from "./_bench_util.ts";
import type { PreparedInit } from "../core/runtime/prepare_init.ts";

/** A row of the benchmark. */
export type BenchTool =
  | "berth"
  | "berth-bundle"
  | "berth-init"
  | "podman"
  | "runc"
  | "crun"
  | "deno-empty"
  | "berth-version"
  | "runtime-process"
  | "runtime-process-seq"
  | "runtime-inproc";

/** Options of {@linkcode benchRun}. */
export interface BenchRunOptions {
  /** Measured rounds (default 20). */
  runs?: number;
  /** Unmeasured rounds first (default 2). */
  warmup?: number;
  /** Rows to time (default: all whose tool is installed). */
  tools?: BenchTool[];
  /** Progress lines (default: to stderr). */
  log?: (line: string) => void;
  /** Print the tables to stdout (default true). */
  print?: boolean;
}

/** What {@linkcode benchRun} measured, in milliseconds. */
export interface BenchRunResult {
  /** Measured rounds. */
  runs: number;
  /** Median wall time per row. */
  medians: Partial<Record<BenchTool, number>>;
  /** Fastest run per row. */
  mins: Partial<Record<BenchTool, number>>;
  /**
   * Mean CPU milliseconds (user + system) per row, of the processes the tool waits for: podman's
   * leaves out conmon, the runc it starts and the cleanup process (not podman's children).
   */
  cpu: Partial<Record<BenchTool, number>>;
  /** Each row's median divided by podman's (when podman ran). */
  ratiosToPodman: Partial<Record<BenchTool, number>>;
  /** Each row's median divided by runc's (when runc ran). */
  ratiosToRunc: Partial<Record<BenchTool, number>>;
  /** Median milliseconds per phase of `berth run` (BERTH_TIMING=1), plus derived phases. */
  breakdown: Record<string, number>;
  /** The same for `berth run` through the init process (BERTH_START=init). */
  breakdownInit: Record<string, number>;
  /** The wrappers subtracted from podman's and crun's times: theirs and the wrapped medians. */
  wrappers: Partial<Record<"podman" | "crun", { median: number; wrappedMedian: number }>>;
  /** 1-minute load average: before, after, and sampled after every round. */
  loadavg: { before: number; after: number; min: number; median: number; max: number };
}

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const MAIN = `${ROOT}/main.ts`;
const SELF = new URL(import.meta.url).pathname;
const BERTH_IMAGE = "fixture/busybox";
const PODMAN_IMAGE = "docker.io/fixture/busybox:latest";

const LABELS: Record<BenchTool, [string, string]> = {
  berth: [
    "berth run --rm",
    "`deno run -A main.ts --root R run --rm fixture/busybox true` (BERTH_TIMING=1), a new process: " +
    "the command spawned by berth's own thread (the direct start)",
  ],
  "berth-bundle": [
    "berth run --rm, bundled JS",
    "the same from `deno task bundle`'s output, as the executable runs it (`deno run -A " +
    "--v8-flags=… dist/js/main.js …`, the V8 flags `deno task compile` builds in): the CLI as " +
    "plain, pre-transpiled JavaScript in few modules",
  ],
  "berth-init": [
    "berth run --rm, init process",
    "the same with BERTH_START=init: through `berth __init`, a second Deno start",
  ],
  podman: [
    "podman run --rm",
    "`podman run --rm --network none --ulimit … docker.io/fixture/busybox:latest true`, overlay, " +
    "runc, cgroupfs (sandbox wrapper subtracted)",
  ],
  runc: ["runc run", "`runc run` of the unpacked image (config: `runc spec`, no terminal, `true`)"],
  crun: ["crun run", "`crun run` of the same bundle"],
  "deno-empty": [
    "deno run (empty script)",
    "`deno run -A --no-lock --no-config empty.ts`: the floor, what any Deno start pays",
  ],
  "berth-version": [
    "berth --version",
    "`deno run -A main.ts --version`: the engine's start without the run path",
  ],
  "runtime-process": [
    "berth runtime, process",
    "a fresh Deno process: init spawned first, then `runContainer` (no store, no CLI)",
  ],
  "runtime-process-seq": [
    "berth runtime, process, no early init",
    "the same, the init spawned by `runContainer`",
  ],
  "runtime-inproc": [
    "berth runtime, in process",
    "`runContainer` called in this process (the library call; no Deno start of the engine)",
  ],
};

const HEADLINE: BenchTool[] = [
  "berth",
  "berth-bundle",
  "berth-init",
  "podman",
  "runc",
  "crun",
  "deno-empty",
];
const SECONDARY: BenchTool[] = [
  "berth-version",
  "runtime-process",
  "runtime-process-seq",
  "runtime-inproc",
];

const PHASES: [string, string][] = [
  ["wall", "the whole `berth run` process, as timed here"],
  ["outside", "wall − doneAt: exec and Deno's start before its time origin, and the exit"],
  [
    "engineReady",
    "time origin → the CLI is ready to call store.run (imports, flags, [init spawn])",
  ],
  ["storeRun", "doneAt − engineReady − total: image lookup, record, spec; --rm removal"],
  ["spawn", "runContainer: take the prepared init (direct start: nothing yet)"],
  ["bundle", "runContainer: config.json, hosts, hostname, resolv.conf"],
  ["cgroup", "runContainer: create the cgroup"],
  ["waitInit", "runContainer: the init's config → its exec (derived); direct: the thread's set-up"],
  ["initDenoStart", "init's time origin − runContainer's spawn step (< 0: it started before)"],
  ["initModules", "init: time origin → init() runs (its module graph)"],
  ["initDlopen", "init: first FFI call (dlopen)"],
  ["initWaitConfig", "init: waiting for the engine's config"],
  ["initCgroup", "init (direct start: the engine's thread): join the cgroup"],
  ["initRootfs", "init: mount the overlay"],
  ["initMounts", "init: /proc, /sys, /dev, … mounts"],
  ["initPivot", "init: pivot_root"],
  ["initSetup", "init: masked paths, hostname, loopback, rlimits"],
  ["initPrivileges", "init: close fds, drop capabilities, no_new_privs"],
  [
    "directSpawn",
    "direct start: the thread's spawn of the command (posix_spawn: vfork, setsid, execve), back",
  ],
  ["execToStartSeen", "the init's exec → the engine sees end of stream (direct: the spawn)"],
  ["run", "`true` runs and exits"],
  ["cleanup", "runContainer's undo steps (cgroup, bundle files)"],
  ["total", "runContainer, begin → cleaned"],
  ["doneAt", "engine's time origin → the run returned (its `done at`)"],
];

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

interface Exec {
  ms: number;
  cpu: number;
  stderr: string;
}

// CPU milliseconds of this process's waited-for children (with `self`, plus its own), from
// /proc/self/stat (clock ticks of 10 ms: meaningful as a mean over rounds)
function cpuMs(self = false): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").slice(11, 15).map(Number);
  return ((self ? f[0] + f[1] : 0) + f[2] + f[3]) * 10;
}

async function exec(
  argv: string[],
  options: { env?: Record<string, string>; clearEnv?: boolean; cwd?: string } = {},
): Promise<Exec> {
  const cmd = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    ...options,
  });
  const c0 = cpuMs();
  const t0 = performance.now();
  const out = await cmd.output();
  const ms = performance.now() - t0;
  const cpu = cpuMs() - c0;
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw new Error(`${argv.join(" ")}: exit ${out.code}: ${stderr.trim().slice(-1500)}`);
  }
  return { ms, cpu, stderr };
}

async function output(argv: string[], cwd?: string): Promise<string> {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(cwd ? { cwd } : {}),
  }).output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(`${argv.join(" ")}: exit ${out.code}: ${dec.decode(out.stderr).trim()}`);
  }
  return dec.decode(out.stdout);
}

function which(cmd: string): boolean {
  const path = Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin";
  return path.split(":").some((d) => {
    try {
      return Deno.statSync(`${d}/${cmd}`).isFile;
    } catch {
      return false;
    }
  });
}

function hardLimit(name: string): number {
  const line = Deno.readTextFileSync("/proc/self/limits").split("\n")
    .find((l) => l.startsWith(name));
  const hard = line?.slice(name.length).trim().split(/\s+/)[1];
  return hard === undefined || hard === "unlimited" ? Infinity : Number(hard);
}

function loadavg1(): number {
  return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
}

function hybridCgroups(): boolean {
  try {
    return !!Deno.readTextFileSync("/sys/fs/cgroup/unified/cgroup.controllers").trim();
  } catch {
    return false;
  }
}

// crun 1.8 refuses a hybrid layout whose cgroup2 mount has a controller: hide that mount
const HIDE_V2 = [
  "unshare",
  "-m",
  "--propagation",
  "private",
  "sh",
  "-c",
  'umount /sys/fs/cgroup/unified && exec "$@"',
  "sh",
];

// `timing:` lines of `BERTH_TIMING=1 berth run`, plus derived phases
function parseTiming(stderr: string, wall: number): Record<string, number> {
  const ready = /^timing: engine ready to run at ([\d.]+) ms$/m.exec(stderr);
  const done = /^timing: (\{.*\}); done at ([\d.]+) ms$/m.exec(stderr);
  if (!ready || !done) throw new Error(`berth run printed no timing lines: ${stderr.trim()}`);
  const t = JSON.parse(done[1]) as Record<string, number>;
  const engineReady = Number(ready[1]), doneAt = Number(done[2]);
  const known = ["spawn", "bundle", "cgroup", "execToStartSeen", "run", "cleanup"];
  return {
    wall,
    outside: wall - doneAt,
    engineReady,
    storeRun: doneAt - engineReady - t.total,
    ...t,
    waitInit: t.total - known.reduce((s, k) => s + t[k], 0),
    doneAt,
  };
}

// The dirs under `*/libpod_parent` (podman's cgroupfs parent), deepest first.
function libpodCgroups(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(dir)) if (e.isDirectory) walk(`${dir}/${e.name}`);
    out.push(dir);
  };
  let hierarchies: string[] = [];
  try {
    hierarchies = [...Deno.readDirSync("/sys/fs/cgroup")].filter((e) => e.isDirectory)
      .map((e) => `/sys/fs/cgroup/${e.name}`);
  } catch { /* no cgroupfs */ }
  for (const h of ["/sys/fs/cgroup", ...hierarchies]) {
    try {
      walk(`${h}/libpod_parent`);
    } catch { /* none */ }
  }
  return out;
}

// podman's cgroupfs manager leaves its (empty) parent cgroups behind: remove those that were not
// there before this benchmark, deepest first (a busy one stays: rmdir fails)
function removeNewCgroups(before: Set<string>): string[] {
  const left: string[] = [];
  for (const d of libpodCgroups()) {
    if (before.has(d)) continue;
    try {
      Deno.removeSync(d);
    } catch {
      left.push(d);
    }
  }
  return left;
}

// One start by berth's runtime without store or CLI: overlay of `lower` with a fresh upper dir.
async function runtimeOnce(dir: string, init?: PreparedInit): Promise<void> {
  const { createSpec } = await import("../core/runtime/spec.ts");
  const { runContainer } = await import("../core/runtime/run.ts");
  const id = crypto.randomUUID().replaceAll("-", "");
  const layer = `${dir}/runtime/${id}`;
  const lower = `${dir}/bundle/rootfs`;
  Deno.mkdirSync(`${layer}/upper`, { recursive: true });
  Deno.mkdirSync(`${layer}/work`);
  try {
    const spec = createSpec(
      { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] }, config: {} },
      { id, bundleDir: `${layer}/bundle`, rootfs: lower, command: ["true"] },
    );
    const r = await runContainer(spec, {
      bundleDir: `${layer}/bundle`,
      rootfs: { lowerdirs: [lower], upperdir: `${layer}/upper`, workdir: `${layer}/work` },
      stdout: "null",
      stderr: "inherit",
      removeBundle: true,
      ...(init ? { init } : {}),
    });
    if (r.exitCode !== 0) throw new Error(`berth runtime: exit ${r.exitCode}`);
  } finally {
    Deno.removeSync(layer, { recursive: true });
  }
}

/** Runs the benchmark (see the module doc), prints its tables, resolves with its figures. */
export async function benchRun(options: BenchRunOptions = {}): Promise<BenchRunResult> {
  const runs = options.runs ?? 20;
  const warmup = options.warmup ?? 2;
  const log = options.log ?? ((line: string) => console.error(line));
  const print = options.print ?? true;
  if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`Invalid runs ${runs}`);
  if (Deno.uid() !== 0) throw new Error("bench run needs root");

  const wanted = new Set(options.tools ?? [...HEADLINE, ...SECONDARY]);
  const has = (t: BenchTool) => wanted.has(t);
  const skipped: string[] = [];
  for (const t of ["podman", "runc", "crun"] as const) {
    if (has(t) && !which(t)) {
      wanted.delete(t);
      skipped.push(`${t}: not installed`);
    }
  }
  const hybrid = hybridCgroups();
  const nofile = hardLimit("Max open files");
  const nproc = Math.min(hardLimit("Max processes"), nofile);
  const deno = Deno.execPath();

  const dir = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "berth-bench-run-" });
  const cgroupsBefore = new Set(libpodCgroups());
  const times: Partial<Record<BenchTool, number[]>> = {};
  const cpus: Partial<Record<BenchTool, number[]>> = {};
  const wrapperTimes: { podman: Exec[]; crun: Exec[] } = { podman: [], crun: [] };
  const phases: Record<string, number[]> = {};
  const initPhases: Record<string, number[]> = {};
  const loads: number[] = [];
  const loadBefore = loadavg1();
  let header = "";
  try {
    const { fixtures } = await import("../tests/_fixtures.ts");
    const { podmanSandbox } = await import("../tests/_podman.ts");
    const archive = (await fixtures()).dockerArchive;
    header = `image: ${BERTH_IMAGE}:latest (tests/_fixtures.ts docker-archive, ` +
      `${((await Deno.stat(archive)).size / 1024).toFixed(0)} KiB); ` +
      (await Promise.all(
        [...wanted].filter((t) => t === "podman" || t === "runc" || t === "crun").map(async (t) =>
          (await output([t, "--version"])).split("\n").find((l) => /version/i.test(l))?.trim()
        ),
      )).join(", ") +
      (wanted.has("podman")
        ? `; podman --ulimit nofile=${nofile}:${nofile} nproc=${nproc}:${nproc}`
        : "");

    // berth: a store with the image loaded (untimed), and the image unpacked for runc and crun
    const store = `${dir}/berth`;
    const loaded = await output([deno, "run", "-A", MAIN, "--root", store, "load", "-i", archive]);
    if (!loaded.includes(`Loaded image: ${BERTH_IMAGE}:latest`)) {
      throw new Error(`berth load said: ${loaded}`);
    }
    const bundle = `${dir}/bundle`;
    await Deno.mkdir(bundle);
    await output([
      deno,
      "run",
      "-A",
      MAIN,
      "--root",
      store,
      "unpack",
      BERTH_IMAGE,
      `${bundle}/rootfs`,
    ]);
    Deno.writeTextFileSync(`${dir}/empty.ts`, "");
    const { bundle: buildBundle } = await import("./bundle.ts");
    const bundled = has("berth-bundle") ? await buildBundle(`${dir}/js`) : "";
    const v8Flags = `--v8-flags=${(await import("../core/self.ts")).V8_FLAGS.join(",")}`;

    // runc's (or crun's) default spec, adjusted
    const specTool = ["runc", "crun"].find((t) => which(t));
    if (specTool && (has("runc") || has("crun"))) {
      await output([specTool, "spec", "--bundle", bundle]);
      const config = JSON.parse(Deno.readTextFileSync(`${bundle}/config.json`));
      config.process.terminal = false;
      config.process.args = ["true"];
      config.root = { path: "rootfs", readonly: false };
      const ns: { type: string }[] = config.linux.namespaces ??= [];
      if (!ns.some((n) => n.type === "network")) ns.push({ type: "network" });
      Deno.writeTextFileSync(`${bundle}/config.json`, JSON.stringify(config, null, 2));
    }

    {
      // podman: a throw-away overlay store with the image loaded (untimed)
      await using podman = has("podman") ? await podmanSandbox({ driver: "overlay" }) : undefined;
      if (podman) {
        const said = await podman.run(["load", "-i", archive]);
        if (!said.includes(`Loaded image: ${PODMAN_IMAGE}`)) {
          throw new Error(`podman load said: ${said}`);
        }
      }
      const podmanRun = podman
        ? [
          ...podman.argv,
          "run",
          "--rm",
          "--network",
          "none",
          "--ulimit",
          `nofile=${nofile}:${nofile}`,
          "--ulimit",
          `nproc=${nproc}:${nproc}`,
          PODMAN_IMAGE,
          "true",
        ]
        : [];
      const podmanWrapper = podman
        ? [...podman.argv.slice(0, podman.argv.indexOf("podman")), "true"]
        : [];
      let seq = 0;
      const one = async (tool: BenchTool, timed: boolean): Promise<{ ms: number; cpu: number }> => {
        switch (tool) {
          case "berth":
          case "berth-init": {
            const r = await exec(
              [deno, "run", "-A", MAIN, "--root", store, "run", "--rm", BERTH_IMAGE, "true"],
              {
                env: {
                  BERTH_TIMING: "1",
                  ...(tool === "berth-init" ? { BERTH_START: "init" } : {}),
                },
                cwd: ROOT,
              },
            );
            const t = parseTiming(r.stderr, r.ms);
            const into = tool === "berth" ? phases : initPhases;
            if (timed) {
              // a phase the other start has not is null
              for (const [k, v] of Object.entries(t)) if (v !== null) (into[k] ??= []).push(v);
            }
            return r;
          }
          case "berth-bundle":
            // from the repository, as main.ts: deno.json's settings apply to both
            return await exec(
              [
                deno,
                "run",
                "-A",
                v8Flags,
                bundled,
                "--root",
                store,
                "run",
                "--rm",
                BERTH_IMAGE,
                "true",
              ],
              { cwd: ROOT },
            );
          case "podman": {
            const w = await exec(podmanWrapper, { env: podman!.env, clearEnv: true });
            const r = await exec(podmanRun, { env: podman!.env, clearEnv: true });
            if (timed) wrapperTimes.podman.push(w);
            return r;
          }
          case "runc":
          case "crun": {
            const id = `berth-bench-${tool}-${++seq}`;
            const args = [tool, "--root", `${dir}/${tool}-state`, "run", "-b", bundle, id];
            if (tool === "crun" && hybrid) {
              const w = await exec([...HIDE_V2, "true"]);
              const r = await exec([...HIDE_V2, ...args]);
              if (timed) wrapperTimes.crun.push(w);
              return r;
            }
            return await exec(args);
          }
          case "deno-empty":
            return await exec([deno, "run", "-A", "--no-lock", "--no-config", `${dir}/empty.ts`]);
          case "berth-version":
            return await exec([deno, "run", "-A", MAIN, "--version"], { cwd: ROOT });
          case "runtime-process":
          case "runtime-process-seq": {
            const mode = tool === "runtime-process" ? "--one" : "--one-seq";
            return await exec([deno, "run", "-A", "--no-lock", SELF, mode, dir], { cwd: ROOT });
          }
          case "runtime-inproc": {
            const c0 = cpuMs(true);
            const t0 = performance.now();
            await runtimeOnce(dir);
            return { ms: performance.now() - t0, cpu: cpuMs(true) - c0 };
          }
        }
      };

      const tools = [...HEADLINE, ...SECONDARY].filter(has);
      for (let round = 0; round < warmup + runs; round++) {
        const timed = round >= warmup;
        // rotate the order so that no tool always follows the same one
        const order = tools.map((_, i) => tools[(i + round) % tools.length]);
        for (const tool of order) {
          try {
            const { ms, cpu } = await one(tool, timed);
            if (timed) {
              (times[tool] ??= []).push(ms);
              (cpus[tool] ??= []).push(cpu);
            }
          } catch (e) {
            if (tool.startsWith("berth") || tool === "podman" || round > 0) throw e;
            // a reference tool that cannot run here (round 0): leave it out
            tools.splice(tools.indexOf(tool), 1);
            skipped.push(`${tool}: ${(e as Error).message.split("\n")[0]}`);
          }
        }
        loads.push(loadavg1());
        log(
          `${timed ? `round ${round - warmup + 1}/${runs}` : `warm-up ${round + 1}/${warmup}`}: ` +
            (timed ? tools.map((t) => `${t} ${times[t]!.at(-1)!.toFixed(0)}`).join(", ") : "done") +
            `; load ${loads.at(-1)}`,
        );
      }
    }
    for await (const e of Deno.readDir(`${store}/containers`)) {
      if (e.isDirectory && /^[0-9a-f]{64}$/.test(e.name)) {
        throw new Error(`berth run --rm left ${store}/containers/${e.name}`);
      }
    }
  } finally {
    const left = removeNewCgroups(cgroupsBefore);
    if (left.length) log(`cgroups left (busy): ${left.join(", ")}`);
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch (e) {
      log(`could not remove ${dir}: ${e}`);
    }
  }

  const tools = [...HEADLINE, ...SECONDARY].filter((t) => times[t]?.length);
  const medians: Partial<Record<BenchTool, number>> = {};
  const mins: Partial<Record<BenchTool, number>> = {};
  const cpu: Partial<Record<BenchTool, number>> = {};
  const wrappers: BenchRunResult["wrappers"] = {};
  for (const t of tools) {
    // podman and crun ran inside a wrapper, timed alone in the same rounds: subtract its median
    // (from the median and from the minimum; per-round differences would be noisier)
    const wr = t === "podman" || t === "crun" ? wrapperTimes[t] : [];
    const w = wr.map((e) => e.ms);
    const wCpu = wr.length ? mean(wr.map((e) => e.cpu)) : 0;
    if (w.length) {
      wrappers[t as "podman" | "crun"] = {
        median: +median(w).toFixed(1),
        wrappedMedian: +median(times[t]!).toFixed(1),
      };
    }
    medians[t] = +(median(times[t]!) - (w.length ? median(w) : 0)).toFixed(1);
    mins[t] = +(min(times[t]!) - (w.length ? median(w) : 0)).toFixed(1);
    cpu[t] = Math.round(mean(cpus[t]!) - wCpu);
  }
  const ratio = (ref: number | undefined) => {
    const out: Partial<Record<BenchTool, number>> = {};
    if (ref) { for (const t of tools) out[t] = +(medians[t]! / ref).toFixed(3); }
    return out;
  };
  const ratiosToPodman = ratio(medians.podman);
  const ratiosToRunc = ratio(medians.runc);
  const breakdown: Record<string, number> = {};
  for (const [k] of PHASES) if (phases[k]) breakdown[k] = +median(phases[k]).toFixed(1);
  const breakdownInit: Record<string, number> = {};
  for (const [k] of PHASES) {
    if (initPhases[k]) breakdownInit[k] = +median(initPhases[k]).toFixed(1);
  }
  const loadavg = {
    before: loadBefore,
    after: loadavg1(),
    min: Math.min(...loads),
    median: +median(loads).toFixed(2),
    max: Math.max(...loads),
  };
  const result = {
    runs,
    medians,
    mins,
    cpu,
    ratiosToPodman,
    ratiosToRunc,
    breakdown,
    breakdownInit,
    wrappers,
    loadavg,
  };
  if (print) await printResult(result, tools, header, skipped, warmup);
  return result;
}

async function printResult(
  r: BenchRunResult,
  tools: BenchTool[],
  header: string,
  skipped: string[],
  warmup: number,
): Promise<void> {
  const x = (v: number | undefined) => v === undefined ? "" : `${v.toFixed(2)}×`;
  const row = (t: BenchTool) => [
    LABELS[t][0],
    r.medians[t]!.toFixed(1),
    r.mins[t]!.toFixed(1),
    `${r.cpu[t]}${t === "podman" ? "*" : ""}`,
    x(r.ratiosToPodman[t]),
    x(r.ratiosToRunc[t]),
  ];
  const head = ["case", "median ms", "min ms", "cpu ms", "÷ podman", "÷ runc"];
  console.log(header);
  console.log(
    `${await machineLine()}\nmedian of ${r.runs} rounds after ${warmup} warm-up, interleaved ` +
      `(order rotated each round); ` +
      `1-min load average ${r.loadavg.before} before, ${r.loadavg.min}–${r.loadavg.max} ` +
      `(median ${r.loadavg.median}) over the rounds, ${r.loadavg.after} after`,
  );
  console.log();
  console.log(formatTable(head, tools.filter((t) => HEADLINE.includes(t)).map(row)));
  const secondary = tools.filter((t) => SECONDARY.includes(t));
  if (secondary.length) {
    console.log();
    console.log(formatTable(head, secondary.map(row)));
  }
  console.log();
  for (const t of tools) console.log(`  ${LABELS[t][0]}: ${LABELS[t][1]}`);
  console.log(
    "  ÷ podman, ÷ runc: ratios of medians; cpu ms: mean user + system time of the processes " +
      "the tool waits for (clock ticks of 10 ms)" +
      (r.cpu.podman !== undefined
        ? "; * podman's leaves out conmon, the runc it starts and its cleanup process"
        : ""),
  );
  const { podman, crun } = r.wrappers;
  if (podman) {
    console.log(
      `  podman's sandbox wrapper (unshare, sh, tmpfs mount) alone: median ${podman.median} ms, ` +
        `subtracted from podman's ${podman.wrappedMedian} ms`,
    );
  }
  if (crun) {
    console.log(
      `  crun's cgroup2-hiding wrapper alone: median ${crun.median} ms, subtracted from crun's ` +
        `${crun.wrappedMedian} ms`,
    );
  }
  for (const s of skipped) console.log(`  skipped ${s}`);
  for (const t of ["berth", "berth-bundle"] as const) {
    const vsPodman = r.ratiosToPodman[t];
    if (vsPodman === undefined) continue;
    console.log(
      `${t === "berth" ? "\n" : ""}${LABELS[t][0]} ÷ podman ${vsPodman.toFixed(2)} (goal ≤ 0.33: ${
        vsPodman <= 1 / 3 ? "met" : "not met"
      })`,
    );
  }
  const rows = PHASES.filter(([k]) =>
    r.breakdown[k] !== undefined || r.breakdownInit[k] !== undefined
  );
  if (rows.length) {
    console.log(
      "\nwhere berth run's milliseconds go (medians of BERTH_TIMING=1; the init process's " +
        "init* phases overlap the engine's, the direct start's are the engine thread's own):\n",
    );
    const w = Math.max(...rows.map(([k]) => k.length));
    const cell = (v: number | undefined) => (v === undefined ? "" : v.toFixed(1)).padStart(9);
    console.log(`${"phase".padEnd(w)}     direct       init  what`);
    for (const [k, what] of rows) {
      console.log(`${k.padEnd(w)}  ${cell(r.breakdown[k])}  ${cell(r.breakdownInit[k])}  ${what}`);
    }
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "--one" || Deno.args[0] === "--one-seq") {
    // one container start in a fresh process; `--one`: the init spawned first thing, its Deno
    // start overlapping the loading of the rest, as `berth run` does
    let init: PreparedInit | undefined;
    if (Deno.args[0] === "--one") {
      const { prepareInit } = await import("../core/runtime/prepare_init.ts");
      init = prepareInit(
        [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }, { type: "network" }],
        { stdin: "null", stdout: "null", stderr: "inherit" },
      );
    }
    await runtimeOnce(Deno.args[1], init);
    Deno.exit(0);
  }
  const value = (name: string) => {
    const i = Deno.args.indexOf(name);
    return i < 0 ? undefined : Number(Deno.args[i + 1]);
  };
  await benchRun({ runs: value("--runs"), warmup: value("--warmup") });
}
