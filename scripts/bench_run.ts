/**
 * Container start benchmark: `true` in a busybox rootfs, run by berth's runtime (in process, as a
 * library `run()` would; and as a fresh Deno process, as the `berth run` CLI would), by `runc run`
 * and `crun run` on the same bundle, by `podman run --rm --rootfs`, and an empty `deno run` (the
 * floor of berth's init). Medians over N interleaved rounds, ratios to podman, and where berth's
 * milliseconds go (from the engine's and the init's timestamps). Needs root.
 *
 * Usage: `deno run -A scripts/bench_run.ts [runs]`
 *
 * @module
 */
import type { PreparedInit } from "../core/runtime/prepare_init.ts";
import type { RuntimeSpec } from "../core/runtime/spec_types.ts";

/** A tool the benchmark can time. */
export type BenchTool =
  | "berth"
  | "berth-process"
  | "berth-process-seq"
  | "runc"
  | "crun"
  | "podman"
  | "deno-empty";

/** Options of {@linkcode benchRun}. */
export interface BenchRunOptions {
  /** Measured rounds (default 20). */
  runs?: number;
  /** Unmeasured rounds first (default 2). */
  warmup?: number;
  /** Tools to time (default: all that are installed). */
  tools?: BenchTool[];
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** What {@linkcode benchRun} measured, in milliseconds. */
export interface BenchRunResult {
  /** Measured rounds. */
  runs: number;
  /** Median wall time per tool. */
  medians: Partial<Record<BenchTool, number>>;
  /** Each tool's median divided by podman's (when podman ran). */
  ratiosToPodman: Partial<Record<BenchTool, number>>;
  /** Median milliseconds per phase of berth's in-process runs. */
  breakdown: Record<string, number>;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? +((s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2).toFixed(2) : NaN;
};

function which(cmd: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

const IMAGE = {
  architecture: "amd64",
  os: "linux",
  rootfs: { type: "layers" as const, diff_ids: [] },
  config: { Cmd: ["true"] },
};

function newId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

async function berthOnce(dir: string, timing: boolean, init?: PreparedInit) {
  const { createSpec } = await import("../core/runtime/spec.ts");
  const { runContainer } = await import("../core/runtime/run.ts");
  const id = newId();
  const bundle = `${dir}/bundles/${id}`;
  const layer = `${dir}/layers/${id}`;
  Deno.mkdirSync(`${layer}/upper`, { recursive: true });
  Deno.mkdirSync(`${layer}/work`);
  const t0 = performance.now();
  const spec = createSpec(IMAGE, { id, bundleDir: bundle, rootfs: `${dir}/rootfs` });
  const r = await runContainer(spec, {
    bundleDir: bundle,
    rootfs: { lowerdirs: [`${dir}/rootfs`], upperdir: `${layer}/upper`, workdir: `${layer}/work` },
    stdout: "null",
    stderr: "inherit",
    removeBundle: true,
    timing,
    init,
  });
  const ms = performance.now() - t0;
  Deno.removeSync(layer, { recursive: true });
  if (r.exitCode !== 0) throw new Error(`berth: exit ${r.exitCode}`);
  return { ms, timing: r.timing };
}

// a runc/crun bundle with berth's spec, the rootfs bound read-write from the fixture copy
async function ociBundle(dir: string, tool: string): Promise<{ bundle: string; id: string }> {
  const { createSpec } = await import("../core/runtime/spec.ts");
  const id = `${tool}-${newId()}`;
  const bundle = `${dir}/oci/${id}`;
  Deno.mkdirSync(bundle, { recursive: true });
  const spec: RuntimeSpec = createSpec(IMAGE, { id, bundleDir: bundle, rootfs: `${dir}/rootfs` });
  spec.root = { path: `${dir}/rootfs-oci`, readonly: false };
  for (const name of ["hosts", "hostname", "resolv.conf"]) {
    Deno.writeTextFileSync(`${bundle}/${name}`, name === "hostname" ? `${id}\n` : "");
  }
  Deno.writeTextFileSync(`${bundle}/config.json`, JSON.stringify(spec));
  return { bundle, id };
}

async function timed(cmd: string, args: string[]): Promise<number> {
  const t0 = performance.now();
  const { code, stderr } = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" })
    .output();
  const ms = performance.now() - t0;
  if (code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(stderr)}`);
  return ms;
}

const HIDE_V2 = [
  "-m",
  "--propagation",
  "private",
  "sh",
  "-c",
  'umount /sys/fs/cgroup/unified && exec "$@"',
  "sh",
];

/** Runs the benchmark; see the module doc. */
export async function benchRun(options: BenchRunOptions = {}): Promise<BenchRunResult> {
  const runs = options.runs ?? 20;
  const warmup = options.warmup ?? 2;
  const log = options.log ?? (() => {});
  const available: BenchTool[] = ["berth", "berth-process", "berth-process-seq", "deno-empty"];
  for (const t of ["runc", "crun", "podman"] as const) if (which(t)) available.push(t);
  const tools = (options.tools ?? available).filter((t) => available.includes(t));

  const hybrid = (() => {
    try {
      return !!Deno.readTextFileSync("/sys/fs/cgroup/unified/cgroup.controllers").trim();
    } catch {
      return false;
    }
  })();
  const dir = Deno.makeTempDirSync({ prefix: "berth-bench-" });
  const times: Partial<Record<BenchTool, number[]>> = {};
  const phases: Record<string, number[]> = {};
  try {
    // imported here so that the `--one` process loads only what `berth run` would
    const { busyboxRootfs } = await import("../tests/_fixtures.ts");
    await busyboxRootfs(`${dir}/rootfs`);
    for (const copy of ["rootfs-oci", "rootfs-podman"]) {
      await new Deno.Command("cp", { args: ["-a", `${dir}/rootfs`, `${dir}/${copy}`] }).output();
    }
    Deno.writeTextFileSync(`${dir}/empty.ts`, "");
    const self = new URL(import.meta.url).pathname;
    const podmanArgs = [
      "--root",
      `${dir}/podman/root`,
      "--runroot",
      `${dir}/podman/run`,
      "--cgroup-manager",
      "cgroupfs",
      "--runtime",
      "runc",
      "--events-backend",
      "none",
      "run",
      "--rm",
      "--network",
      "none",
      "--ulimit",
      "nofile=20000:20000",
      "--ulimit",
      "nproc=20000:20000",
      "--rootfs",
      `${dir}/rootfs-podman`,
      "true",
    ];
    const one = async (tool: BenchTool): Promise<number> => {
      switch (tool) {
        case "berth": {
          const { ms, timing } = await berthOnce(dir, true);
          for (const [k, v] of Object.entries(timing ?? {})) (phases[k] ??= []).push(v);
          return ms;
        }
        case "berth-process":
          return await timed(Deno.execPath(), ["run", "-A", "--no-lock", self, "--one", dir]);
        case "berth-process-seq":
          return await timed(Deno.execPath(), ["run", "-A", "--no-lock", self, "--one-seq", dir]);
        case "deno-empty":
          return await timed(Deno.execPath(), ["run", "-A", "--no-lock", `${dir}/empty.ts`]);
        case "runc":
        case "crun": {
          const { bundle, id } = await ociBundle(dir, tool);
          const args = ["--root", `${dir}/${tool}-state`, "run", "-b", bundle, id];
          let ms: number;
          if (tool === "crun" && hybrid) {
            // crun 1.8 refuses a hybrid layout whose cgroup2 has a controller (hugetlb here): run
            // it where the cgroup2 mount is hidden, and subtract what that wrapper costs alone
            ms = await timed("unshare", [...HIDE_V2, "crun", ...args]) -
              await timed("unshare", [...HIDE_V2, "true"]);
          } else ms = await timed(tool, args);
          Deno.removeSync(bundle, { recursive: true });
          return ms;
        }
        case "podman":
          return await timed("podman", podmanArgs);
      }
    };
    for (let round = 0; round < warmup + runs; round++) {
      for (const tool of tools) {
        const ms = await one(tool);
        if (round >= warmup) (times[tool] ??= []).push(ms);
      }
      if (round >= warmup) {
        log(
          `round ${round - warmup + 1}/${runs}: ` +
            tools.map((t) => `${t} ${times[t]!.at(-1)!.toFixed(1)}`).join(", "),
        );
      } else for (const k of Object.keys(phases)) phases[k] = [];
    }
  } finally {
    cleanupCgroups(["libpod_parent"]);
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch (e) {
      log(`could not remove ${dir}: ${e}`);
    }
  }
  const medians: Partial<Record<BenchTool, number>> = {};
  for (const t of tools) medians[t] = median(times[t] ?? []);
  const ratiosToPodman: Partial<Record<BenchTool, number>> = {};
  if (medians.podman) {
    for (const t of tools) ratiosToPodman[t] = +(medians[t]! / medians.podman).toFixed(3);
  }
  const breakdown = Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, median(v)]));
  return { runs, medians, ratiosToPodman, breakdown };
}

// podman's cgroupfs manager leaves its (empty) parent cgroups behind: remove them, deepest first
function cleanupCgroups(names: string[]): void {
  const walk = (dir: string, out: string[]) => {
    for (const e of Deno.readDirSync(dir)) {
      if (e.isDirectory) walk(`${dir}/${e.name}`, out);
    }
    out.push(dir);
  };
  let hierarchies: string[] = [];
  try {
    hierarchies = [...Deno.readDirSync("/sys/fs/cgroup")].map((e) => `/sys/fs/cgroup/${e.name}`);
  } catch { /* no cgroupfs */ }
  for (const h of ["/sys/fs/cgroup", ...hierarchies]) {
    for (const name of names) {
      const dirs: string[] = [];
      try {
        walk(`${h}/${name}`, dirs);
      } catch {
        continue;
      }
      for (const d of dirs) {
        try {
          Deno.removeSync(d);
        } catch { /* busy or gone */ }
      }
    }
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "--one") {
    // one container start in a fresh process, as `berth run` should do it: the init spawned
    // first thing, its Deno start overlapping the loading of the rest and the spec's creation
    const { prepareInit } = await import("../core/runtime/prepare_init.ts");
    const init = prepareInit(
      [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }, { type: "network" }],
      { stdin: "null", stdout: "null", stderr: "inherit" },
    );
    await berthOnce(Deno.args[1], false, init);
    Deno.exit(0);
  }
  if (Deno.args[0] === "--one-seq") {
    // the same without the early spawn
    await berthOnce(Deno.args[1], false);
    Deno.exit(0);
  }
  const runs = Number(Deno.args[0] ?? 20);
  const result = await benchRun({ runs, log: (l) => console.error(l) });
  console.log(JSON.stringify(result, null, 2));
}
