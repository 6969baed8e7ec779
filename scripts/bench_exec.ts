/**
 * Exec benchmark (`deno task bench exec [--runs N]`): `true` run in an already running container
 * of the busybox fixture image (`tests/_fixtures.ts`, `fixture/busybox:latest`, its PID 1 a
 * `sleep`), by
 *
 * - berth, the CLI: `deno run -A main.ts --root R exec C true`, a fresh process each run, in a
 *   container started by `berth run -d` (only once `core/cli/exec.ts` exists); the command
 *   spawned by the CLI's own thread (the direct start, `core/runtime/_direct.ts`), and again with
 *   `BERTH_START=init` (through the exec init, a second Deno start);
 * - berth, bundled: the same CLI exec from `deno task bundle`'s output (`dist/js/main.js`, built
 *   untimed at the start) as the executable runs it: the JavaScript `deno task compile` puts in
 *   it, with the V8 flags it builds in (`V8_FLAGS`, core/self.ts);
 * - berth, the engine as a fresh process: `deno run -A --no-lock engine.ts`, a script that spawns
 *   the exec's init first thing (`prepareExec`, with only `core/runtime/exec.ts` loaded), then
 *   reads the container's config.json, makes the process (`execProcess`) and calls
 *   `execInContainer` (the work a `berth exec` does, without store or CLI), in a container
 *   started by `runContainer` in this process on the image unpacked by `berth unpack`;
 * - berth, the library: `execInContainer` called in this process (no Deno start of an engine);
 * - podman: `podman exec C true` in a throw-away podman (`tests/_podman.ts`, overlay driver, runc,
 *   cgroupfs), the container started by `podman run -d --network none --ulimit nofile=H:H
 *   --ulimit nproc=N:N` (H the hard nofile limit, N the hard nproc limit capped at H: podman's
 *   defaults make runc fail with EPERM here), after an untimed `podman load`. The sandbox's
 *   wrapper (unshare, sh, a tmpfs mount) is timed alone in the same round, its median subtracted;
 * - containerd: `ctr task exec --exec-id ID C true` against a private containerd (socket, root
 *   and state in a temp dir, own mount namespace; runc shim, overlayfs snapshotter), the
 *   container started by `ctr run -d` after an untimed `ctr images import`;
 * - the floor: an empty `deno run` (a direct exec pays for one Deno start, one through the init
 *   for two: the engine's and the init's, the second overlapped with the first's work).
 *
 * Every round runs every case once, in an order rotated each round, after untimed warm-up rounds;
 * reported: medians, minima, ratios to the fastest peer, and where berth's milliseconds go
 * (medians of the engine's and the init's timestamps). Leaves nothing behind: containers, the
 * podman sandbox, containerd and its state, the cgroups podman's cgroupfs manager and runc under
 * containerd leave. Root.
 *
 * ```sh
 * deno run -A scripts/bench_exec.ts [--runs N] [--warmup N]
 * ```
 *
 * @module
 */
import { Containerd } from "./_containerd.ts";
import { formatTable, machineLine, median, min } from "./_bench_util.ts";

/** A row of the benchmark. */
export type ExecTool =
  | "berth-cli"
  | "berth-cli-bundle"
  | "berth-cli-init"
  | "berth-process"
  | "berth-inproc"
  | "podman"
  | "ctr"
  | "deno-empty";

/** Options of {@linkcode benchExec}. */
export interface BenchExecOptions {
  /** Measured rounds (default 20). */
  runs?: number;
  /** Unmeasured rounds first (default 2). */
  warmup?: number;
  /** Rows to time (default: all that can run here). */
  tools?: ExecTool[];
  /** Progress lines (default: to stderr). */
  log?: (line: string) => void;
  /** Print the tables to stdout (default true). */
  print?: boolean;
}

/** What {@linkcode benchExec} measured, in milliseconds. */
export interface BenchExecResult {
  /** Measured rounds. */
  runs: number;
  /** Median wall time per row. */
  medians: Partial<Record<ExecTool, number>>;
  /** Fastest run per row. */
  mins: Partial<Record<ExecTool, number>>;
  /** The fastest peer (podman or ctr) by median, and that median. */
  fastestPeer?: { tool: ExecTool; median: number };
  /** Each row's median divided by the fastest peer's. */
  ratios: Partial<Record<ExecTool, number>>;
  /** Median milliseconds per phase of berth's engine-process exec, plus derived phases. */
  breakdown: Record<string, number>;
  /** podman's sandbox wrapper alone: its median, and podman's median with it. */
  podmanWrapper?: { median: number; wrappedMedian: number };
  /** Rows left out and why. */
  skipped: string[];
  /** 1-minute load average: before, after, and the range over the rounds. */
  loadavg: { before: number; after: number; min: number; max: number };
}

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const MAIN = `${ROOT}/main.ts`;
const BERTH_IMAGE = "fixture/busybox";
const PODMAN_IMAGE = "docker.io/fixture/busybox:latest";
const SLEEP = "1000000";

const LABELS: Record<ExecTool, [string, string]> = {
  "berth-cli": [
    "berth exec",
    "`deno run -A main.ts --root R exec C true`, a fresh process: the command spawned by " +
    "berth's own thread (the direct start)",
  ],
  "berth-cli-bundle": [
    "berth exec, bundled JS",
    "the same from `deno task bundle`'s output, as the executable runs it (`deno run -A " +
    "--v8-flags=… dist/js/main.js …`, the V8 flags `deno task compile` builds in)",
  ],
  "berth-cli-init": [
    "berth exec, init process",
    "the same with BERTH_START=init: through `berth __init`, a second Deno start",
  ],
  "berth-process": [
    "berth exec (engine process)",
    "a fresh `deno run --no-config`: prepareExec first, then execProcess + execInContainer " +
    "(no store, no CLI)",
  ],
  "berth-inproc": [
    "berth exec (library call)",
    "execInContainer in this process: no Deno start of an engine, only the init's",
  ],
  podman: [
    "podman exec",
    "`podman exec C true`, overlay, runc, cgroupfs (sandbox wrapper subtracted)",
  ],
  ctr: ["ctr task exec", "`ctr task exec --exec-id ID C true`, private containerd, runc shim"],
  "deno-empty": [
    "deno run (empty script)",
    "the floor of a Deno start (the direct start pays one, the init process two)",
  ],
};

const ORDER: ExecTool[] = [
  "berth-cli",
  "berth-cli-bundle",
  "berth-cli-init",
  "berth-process",
  "berth-inproc",
  "podman",
  "ctr",
  "deno-empty",
];

const PHASES: [string, string][] = [
  ["wall", "the whole engine process, as timed here"],
  ["engineReady", "engine's time origin → prepareExec called (Deno start, exec.ts loaded)"],
  ["prepare", "prepareExec: check the pid, open the namespaces, spawn the init in them"],
  ["engineWork", "load exec_spec.ts, read config.json, execProcess"],
  ["initDenoStart", "init's time origin − the spawn (< 0: it started before)"],
  ["initModules", "init: time origin → init() runs (its module graph)"],
  ["initDlopen", "init: first FFI call (dlopen)"],
  ["initWaitConfig", "init: waiting for the engine's config"],
  ["initCgroup", "init: write itself into the container's cgroups"],
  ["initJoin", "init: setns cgroup, unshare(CLONE_FS), setns mnt, setsid"],
  ["initSetup", "init: rlimits, chdir, PATH lookup"],
  ["initPrivileges", "init: close fds, drop capabilities, user, no_new_privs"],
  ["execToStartSeen", "the init's execve → the engine sees end of stream"],
  ["run", "`true` runs and exits, the engine reaps it"],
  ["total", "execInContainer, begin → cleaned"],
  ["outside", "wall − doneAt: exec and Deno's start before its time origin, and the exit"],
  ["doneAt", "engine's time origin → execInContainer returned"],
];

async function exec(
  argv: string[],
  options: { env?: Record<string, string>; clearEnv?: boolean; cwd?: string } = {},
): Promise<{ ms: number; stdout: string; stderr: string }> {
  const cmd = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...options,
  });
  const t0 = performance.now();
  const out = await cmd.output();
  const ms = performance.now() - t0;
  const dec = new TextDecoder();
  const stdout = dec.decode(out.stdout), stderr = dec.decode(out.stderr);
  if (!out.success) {
    throw new Error(`${argv.join(" ")}: exit ${out.code}: ${stderr.trim().slice(-1500)}`);
  }
  return { ms, stdout, stderr };
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

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
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

// containerd's namespace for the benchmark: its cgroups are `/<namespace>/<container>`
const CTR_NAMESPACE = "berth-bench-exec";

// The dirs under `*/libpod_parent` (podman's cgroupfs parent) and `*/berth-bench-exec`
// (containerd's, which runc leaves when it deletes the task), deepest first.
function leftCgroups(): string[] {
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
    for (const parent of ["libpod_parent", CTR_NAMESPACE]) {
      try {
        walk(`${h}/${parent}`);
      } catch { /* none */ }
    }
  }
  return out;
}

// The engine a fresh `deno run` executes for the berth-process row: the exec's init is spawned
// first thing, its Deno start overlapping the loading of the rest, as `berth exec` would.
function engineScript(stateFile: string): string {
  const url = (p: string) => JSON.stringify(new URL(`../${p}`, import.meta.url).href);
  return `import { prepareExec } from ${url("core/runtime/prepare_exec.ts")};
const state = JSON.parse(Deno.readTextFileSync(${JSON.stringify(stateFile)}));
const stdio = { stdin: "null", stdout: "inherit", stderr: "inherit" } as const;
const ready = performance.now();
const init = prepareExec(state.target, stdio);
const prepared = performance.now();
const { execInContainer } = await import(${url("core/runtime/exec.ts")});
const { execProcess } = await import(${url("core/runtime/exec_spec.ts")});
const spec = JSON.parse(Deno.readTextFileSync(state.bundle + "/config.json"));
const process = execProcess(spec, { command: Deno.args, pid: state.target.pid });
const work = performance.now();
const r = await execInContainer(state.target, process, { ...stdio, init, timing: true });
const marks = { ready, prepared, work, done: performance.now() };
console.error("timing: " + JSON.stringify({ ...r.timing, ...marks }));
Deno.exit(r.exitCode);
`;
}

function parseTiming(stderr: string, wall: number): Record<string, number> {
  const m = /^timing: (\{.*\})$/m.exec(stderr);
  if (!m) throw new Error(`the engine printed no timing line: ${stderr.trim()}`);
  const t = JSON.parse(m[1]) as Record<string, number>;
  return {
    ...t,
    wall,
    engineReady: t.ready,
    prepare: t.prepared - t.ready,
    engineWork: t.work - t.prepared,
    outside: wall - t.done,
    doneAt: t.done,
  };
}

/** Runs the benchmark (see the module doc), prints its tables, resolves with its figures. */
export async function benchExec(options: BenchExecOptions = {}): Promise<BenchExecResult> {
  const runs = options.runs ?? 20;
  const warmup = options.warmup ?? 2;
  const log = options.log ?? ((line: string) => console.error(line));
  const print = options.print ?? true;
  if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`Invalid runs ${runs}`);
  if (Deno.uid() !== 0) throw new Error("bench exec needs root");

  const wanted = new Set(options.tools ?? ORDER);
  const skipped: string[] = [];
  if (!exists(`${ROOT}/core/cli/exec.ts`) && wanted.delete("berth-cli")) {
    skipped.push("berth-cli: core/cli/exec.ts does not exist yet");
  }
  if (wanted.has("podman") && !which("podman")) {
    wanted.delete("podman");
    skipped.push("podman: not installed");
  }
  if (wanted.has("ctr") && !(which("ctr") && which("containerd"))) {
    wanted.delete("ctr");
    skipped.push("ctr: containerd not installed");
  }
  const nofile = hardLimit("Max open files");
  const nproc = Math.min(hardLimit("Max processes"), nofile);
  const deno = Deno.execPath();

  const dir = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "berth-bench-exec-" });
  const cgroupsBefore = new Set(leftCgroups());
  const times: Partial<Record<ExecTool, number[]>> = {};
  const wrapperTimes: number[] = [];
  const phases: Record<string, number[]> = {};
  const loads: number[] = [];
  const loadBefore = loadavg1();
  let header = "";
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const { fixtures } = await import("../tests/_fixtures.ts");
    const archive = (await fixtures()).dockerArchive;
    header = `image: ${BERTH_IMAGE}:latest (tests/_fixtures.ts docker-archive, ` +
      `${((await Deno.stat(archive)).size / 1024).toFixed(0)} KiB); command: true; ` +
      (await Promise.all(
        [...wanted].filter((t) => t === "podman" || t === "ctr").map(async (t) =>
          (await exec([t, "--version"])).stdout.split("\n")[0].trim()
        ),
      )).join(", ");

    const { bundle: buildBundle } = await import("./bundle.ts");
    const bundled = wanted.has("berth-cli-bundle") ? await buildBundle(`${dir}/js`) : "";
    const v8Flags = `--v8-flags=${(await import("../core/self.ts")).V8_FLAGS.join(",")}`;
    // berth: a store with the image loaded, unpacked for the runtime's container
    const store = `${dir}/berth`;
    const loaded = await exec([deno, "run", "-A", MAIN, "--root", store, "load", "-i", archive], {
      cwd: ROOT,
    });
    if (!loaded.stdout.includes(`Loaded image: ${BERTH_IMAGE}:latest`)) {
      throw new Error(`berth load said: ${loaded.stdout}`);
    }
    const lower = `${dir}/rootfs`;
    await exec([deno, "run", "-A", MAIN, "--root", store, "unpack", BERTH_IMAGE, lower], {
      cwd: ROOT,
    });

    // the runtime's container (berth-process, berth-inproc): `sleep` as PID 1
    const { createSpec } = await import("../core/runtime/spec.ts");
    const { runContainer } = await import("../core/runtime/run.ts");
    const { execInContainer } = await import("../core/runtime/exec.ts");
    const { execProcess } = await import("../core/runtime/exec_spec.ts");
    const id = crypto.randomUUID().replaceAll("-", "");
    const bundle = `${dir}/bundle`;
    await Deno.mkdir(`${dir}/upper`);
    await Deno.mkdir(`${dir}/work`);
    const spec = createSpec(
      { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] }, config: {} },
      { id, bundleDir: bundle, rootfs: lower, command: ["sleep", SLEEP] },
    );
    const stop = new AbortController();
    let started!: (t: { pid: number; startTime: string }) => void;
    const start = new Promise<{ pid: number; startTime: string }>((r) => started = r);
    const container = runContainer(spec, {
      bundleDir: bundle,
      rootfs: { lowerdirs: [lower], upperdir: `${dir}/upper`, workdir: `${dir}/work` },
      stdout: "null",
      stderr: "inherit",
      removeBundle: true,
      signal: stop.signal,
      onStart: (_pid, info) => started(info),
    });
    cleanups.push(async () => {
      stop.abort();
      await container.catch(() => {});
    });
    const target = { ...await start, name: "bench" };
    const stateFile = `${dir}/state.json`;
    await Deno.writeTextFile(stateFile, JSON.stringify({ target, bundle }));
    const engine = `${dir}/engine.ts`;
    await Deno.writeTextFile(engine, engineScript(stateFile));
    await Deno.writeTextFile(`${dir}/empty.ts`, "");

    // berth's CLI: a store container started by `berth run -d`
    const berthArgv = [deno, "run", "-A", MAIN, "--root", store];
    if (wanted.has("berth-cli")) {
      try {
        await exec([...berthArgv, "run", "-d", "--name", "bench", BERTH_IMAGE, "sleep", SLEEP], {
          cwd: ROOT,
        });
        cleanups.push(async () => {
          await exec([...berthArgv, "rm", "-f", "bench"], { cwd: ROOT }).catch((e) => log(`${e}`));
        });
      } catch (e) {
        wanted.delete("berth-cli");
        skipped.push(`berth-cli: berth run -d failed: ${(e as Error).message.split("\n")[0]}`);
      }
    }

    if (!wanted.has("berth-cli")) wanted.delete("berth-cli-init"); // it execs into that container

    // podman: a throw-away overlay store, the image loaded, a container running
    const { podmanSandbox } = await import("../tests/_podman.ts");
    const podman = wanted.has("podman") ? await podmanSandbox({ driver: "overlay" }) : undefined;
    let podmanId = "";
    if (podman) {
      cleanups.push(async () => await podman[Symbol.asyncDispose]());
      const said = await podman.run(["load", "-i", archive]);
      if (!said.includes(`Loaded image: ${PODMAN_IMAGE}`)) {
        throw new Error(`podman load said: ${said}`);
      }
      podmanId = (await podman.run([
        "run",
        "-d",
        "--network",
        "none",
        "--ulimit",
        `nofile=${nofile}:${nofile}`,
        "--ulimit",
        `nproc=${nproc}:${nproc}`,
        PODMAN_IMAGE,
        "sleep",
        SLEEP,
      ])).trim();
      cleanups.push(async () => {
        await podman.run(["rm", "-f", "-t", "0", podmanId]).catch((e) => log(`${e}`));
      });
    }
    const podmanWrapper = podman
      ? [...podman.argv.slice(0, podman.argv.indexOf("podman")), "true"]
      : [];

    // containerd: a private daemon, the image imported, a task running
    const ctrd = wanted.has("ctr") ? await Containerd.create() : undefined;
    if (ctrd) {
      cleanups.push(async () => {
        const ctr = (args: string[]) => exec(ctrArgv(ctrd, args));
        await ctr(["task", "kill", "-s", "SIGKILL", "bench"]).catch(() => {});
        for (let i = 0; i < 50; i++) {
          if (await ctr(["task", "rm", "bench"]).then(() => true, () => false)) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        await ctr(["containers", "rm", "bench"]).catch(() => {});
        await ctrd[Symbol.asyncDispose]();
      });
      try {
        const why = await ctrd.tryStart();
        if (why) throw new Error(why);
        await exec(ctrArgv(ctrd, ["images", "import", archive]));
        await exec(ctrArgv(ctrd, [
          "run",
          "-d",
          "--snapshotter",
          "overlayfs",
          PODMAN_IMAGE,
          "bench",
          "sleep",
          SLEEP,
        ]));
      } catch (e) {
        wanted.delete("ctr");
        skipped.push(`ctr: ${(e as Error).message.split("\n")[0]}`);
      }
    }

    let seq = 0;
    const one = async (tool: ExecTool, timed: boolean): Promise<number> => {
      switch (tool) {
        case "berth-cli":
          return (await exec([...berthArgv, "exec", "bench", "true"], { cwd: ROOT })).ms;
        case "berth-cli-bundle":
          return (await exec(
            [deno, "run", "-A", v8Flags, bundled, "--root", store, "exec", "bench", "true"],
            {
              cwd: ROOT,
            },
          )).ms;
        case "berth-cli-init":
          return (await exec([...berthArgv, "exec", "bench", "true"], {
            cwd: ROOT,
            env: { BERTH_START: "init" },
          })).ms;
        case "berth-process": {
          const r = await exec([deno, "run", "-A", "--no-lock", "--no-config", engine, "true"], {
            cwd: ROOT,
          });
          const t = parseTiming(r.stderr, r.ms);
          if (timed) { for (const [k, v] of Object.entries(t)) (phases[k] ??= []).push(v); }
          return r.ms;
        }
        case "berth-inproc": {
          const t0 = performance.now();
          const r = await execInContainer(
            target,
            execProcess(spec, { command: ["true"], pid: target.pid }),
            { stdout: "null", stderr: "inherit" },
          );
          if (r.exitCode !== 0) throw new Error(`berth exec: exit ${r.exitCode}`);
          return performance.now() - t0;
        }
        case "podman": {
          const w = await exec(podmanWrapper, { env: podman!.env, clearEnv: true });
          const r = await exec([...podman!.argv, "exec", podmanId, "true"], {
            env: podman!.env,
            clearEnv: true,
          });
          if (timed) wrapperTimes.push(w.ms);
          return r.ms;
        }
        case "ctr":
          return (await exec(
            ctrArgv(ctrd!, ["task", "exec", "--exec-id", `e${++seq}`, "bench", "true"]),
          ))
            .ms;
        case "deno-empty":
          return (await exec([deno, "run", "-A", "--no-lock", "--no-config", `${dir}/empty.ts`]))
            .ms;
      }
    };

    const tools = ORDER.filter((t) => wanted.has(t));
    for (let round = 0; round < warmup + runs; round++) {
      const timed = round >= warmup;
      const order = tools.map((_, i) => tools[(i + round) % tools.length]);
      for (const tool of order) {
        const ms = await one(tool, timed);
        if (timed) (times[tool] ??= []).push(ms);
      }
      loads.push(loadavg1());
      log(
        `${timed ? `round ${round - warmup + 1}/${runs}` : `warm-up ${round + 1}/${warmup}`}: ` +
          (timed ? tools.map((t) => `${t} ${times[t]!.at(-1)!.toFixed(0)}`).join(", ") : "done") +
          `; load ${loads.at(-1)}`,
      );
    }
    // the containers are still the ones the rounds began with
    const { processAlive } = await import("../core/runtime/process_info.ts");
    if (!processAlive(target.pid, target.startTime)) throw new Error("the container died");
  } finally {
    for (const c of cleanups.reverse()) await c().catch((e) => log(`cleanup: ${e}`));
    for (const d of leftCgroups()) {
      if (cgroupsBefore.has(d)) continue;
      try {
        Deno.removeSync(d);
      } catch {
        log(`cgroup left (busy): ${d}`);
      }
    }
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch (e) {
      log(`could not remove ${dir}: ${e}`);
    }
  }

  const tools = ORDER.filter((t) => times[t]?.length);
  const medians: Partial<Record<ExecTool, number>> = {};
  const mins: Partial<Record<ExecTool, number>> = {};
  for (const t of tools) {
    const w = t === "podman" ? wrapperTimes : [];
    medians[t] = +(median(times[t]!) - (w.length ? median(w) : 0)).toFixed(1);
    mins[t] = +(min(times[t]!) - (w.length ? min(w) : 0)).toFixed(1);
  }
  const peers = (["podman", "ctr"] as const).filter((t) => medians[t] !== undefined);
  const fastest = peers.sort((a, b) => medians[a]! - medians[b]!)[0];
  const fastestPeer = fastest ? { tool: fastest, median: medians[fastest]! } : undefined;
  const ratios: Partial<Record<ExecTool, number>> = {};
  if (fastestPeer) {
    for (const t of tools) ratios[t] = +(medians[t]! / fastestPeer.median).toFixed(3);
  }
  const breakdown: Record<string, number> = {};
  for (const [k] of PHASES) if (phases[k]) breakdown[k] = +median(phases[k]).toFixed(1);
  const result: BenchExecResult = {
    runs,
    medians,
    mins,
    ...(fastestPeer ? { fastestPeer } : {}),
    ratios,
    breakdown,
    ...(wrapperTimes.length
      ? {
        podmanWrapper: {
          median: +median(wrapperTimes).toFixed(1),
          wrappedMedian: +median(times.podman!).toFixed(1),
        },
      }
      : {}),
    skipped,
    loadavg: {
      before: loadBefore,
      after: loadavg1(),
      min: Math.min(...loads),
      max: Math.max(...loads),
    },
  };
  if (print) await printResult(result, tools, header, warmup);
  return result;
}

async function printResult(
  r: BenchExecResult,
  tools: ExecTool[],
  header: string,
  warmup: number,
): Promise<void> {
  const peer = r.fastestPeer;
  console.log(header);
  console.log(
    `${await machineLine()}\nmedian of ${r.runs} rounds after ${warmup} warm-up, interleaved ` +
      `(order rotated each round); 1-min load average ${r.loadavg.before} before, ` +
      `${r.loadavg.min}–${r.loadavg.max} over the rounds, ${r.loadavg.after} after\n`,
  );
  const head = ["case", "median ms", "min ms", peer ? `÷ ${LABELS[peer.tool][0]}` : "÷ peer"];
  console.log(formatTable(
    head,
    tools.map((t) => [
      LABELS[t][0],
      r.medians[t]!.toFixed(1),
      r.mins[t]!.toFixed(1),
      r.ratios[t] === undefined ? "" : `${r.ratios[t]!.toFixed(2)}×`,
    ]),
  ));
  console.log();
  for (const t of tools) console.log(`  ${LABELS[t][0]}: ${LABELS[t][1]}`);
  if (r.podmanWrapper) {
    console.log(
      `  podman's sandbox wrapper alone: median ${r.podmanWrapper.median} ms, subtracted from ` +
        `podman's ${r.podmanWrapper.wrappedMedian} ms`,
    );
  }
  for (const s of r.skipped) console.log(`  skipped ${s}`);
  const headlines = (["berth-cli", "berth-cli-bundle", "berth-process"] as const)
    .filter((t) => r.ratios[t] !== undefined).slice(0, 2);
  for (const [i, headline] of headlines.entries()) {
    if (!peer) break;
    const x = r.ratios[headline]!;
    console.log(
      `${i ? "" : "\n"}${LABELS[headline][0]} ÷ ${LABELS[peer.tool][0]} (the fastest peer) ` +
        `${x.toFixed(2)} (goal ≤ 0.50: ${x <= 0.5 ? "met" : "not met"})`,
    );
  }
  if (Object.keys(r.breakdown).length) {
    console.log("\nwhere berth exec's milliseconds go (engine process; medians; init* overlap):\n");
    const rows = PHASES.filter(([k]) => r.breakdown[k] !== undefined);
    const w = Math.max(...rows.map(([k]) => k.length));
    console.log(`${"phase".padEnd(w)}  median ms  what`);
    for (const [k, what] of rows) {
      console.log(`${k.padEnd(w)}  ${r.breakdown[k].toFixed(1).padStart(9)}  ${what}`);
    }
  }
}

/** `ctr` against the bench's private daemon, in its namespace. */
function ctrArgv(ctrd: Containerd, args: string[]): string[] {
  return ["ctr", "--address", ctrd.socket, "-n", CTR_NAMESPACE, ...args];
}

if (import.meta.main) {
  const value = (name: string) => {
    const i = Deno.args.indexOf(name);
    const eq = Deno.args.find((a) => a.startsWith(`${name}=`));
    return eq ? Number(eq.slice(name.length + 1)) : i < 0 ? undefined : Number(Deno.args[i + 1]);
  };
  await benchExec({ runs: value("--runs"), warmup: value("--warmup") });
}
