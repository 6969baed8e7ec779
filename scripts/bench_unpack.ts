/**
 * Layer unpack benchmark: berth's applier (readLayer: gunzip + sha256 + tar parse + fd-relative
 * writes) against GNU tar on the same gzip layer in the same run: `tar -xzf` (tar + gzip) and
 * `tar -I pigz -xf`. Each run extracts into a fresh directory on the same filesystem (removed
 * after, not timed); `sync` runs before each timed run so that earlier runs' dirty pages are not
 * charged to the next. berth runs in a child process whose peak RSS (VmHWM) is reported; the time of
 * one `syncfs` after berth's extraction (what a snapshot commit adds) is reported separately.
 *
 * The input is a GNU tar of `/usr/{bin,sbin,share,include}` (about 1.2 GB, 64k entries on the dev
 * machine), compressed with pigz, cached in `/var/tmp/berth-bench/`.
 *
 * Run: `deno run -A scripts/bench_unpack.ts [--runs N] [--tmpfs] [--dirs usr/share,usr/bin]`
 *
 * @module
 */
import { createHash } from "node:crypto";
import { createApplier } from "../core/snapshot/applier.ts";
import { readLayer } from "../core/image/read_layer.ts";
import { readFileChunks } from "../core/content/read_file.ts";
import type { Layer } from "../core/image/image.ts";
import type { Digest } from "../core/digest.ts";
import * as sys from "../ffi/fs_native.ts";
import { AT_FDCWD, O_CLOEXEC, O_DIRECTORY, O_RDONLY } from "../ffi/constants.ts";

/** Options of {@linkcode benchUnpack}. */
export interface BenchUnpackOptions {
  /** Timed runs per tool (median reported); default 3. */
  runs?: number;
  /** Directories under `/` to tar as the input; default usr/bin, usr/sbin, usr/share, usr/include. */
  dirs?: string[];
  /** Work directory (input cache and extraction targets); default `/var/tmp/berth-bench`. */
  workDir?: string;
  /** Print progress and the table to stdout; default true. */
  print?: boolean;
  /**
   * Extract onto a tmpfs mounted for the run (needs root) instead of the work directory's
   * filesystem: measures the CPU and syscall cost without the disk. Default false.
   */
  tmpfs?: boolean;
}

/** One tool's timings. */
export interface ToolResult {
  /** Wall-clock seconds of each run (process start to exit). */
  seconds: number[];
  /** Median of `seconds`. */
  median: number;
}

/** What {@linkcode benchUnpack} measured. */
export interface BenchUnpackResult {
  input: { tarBytes: number; gzBytes: number; entries: number };
  /** Process start to exit, less the syncfs (GNU tar does not sync either). */
  berth: ToolResult & {
    /** Peak RSS of the berth process (MiB), per run. */
    peakRssMiB: number[];
    /** Seconds of one syncfs after the extraction, per run. */
    syncfsSeconds: number[];
  };
  tarGzip: ToolResult;
  tarPigz: ToolResult;
  /** berth median / tar median. */
  ratioVsTarGzip: number;
  /** berth median / pigz median. */
  ratioVsTarPigz: number;
}

const SELF = new URL(import.meta.url).pathname;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function run(cmd: string, args: string[]): Promise<{ seconds: number; stdout: string }> {
  const t0 = performance.now();
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const seconds = (performance.now() - t0) / 1000;
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return { seconds, stdout: new TextDecoder().decode(out.stdout) };
}

async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of readFileChunks(path)) h.update(chunk);
  return h.digest("hex");
}

async function prepareInput(workDir: string, dirs: string[]) {
  const key = createHash("sha256").update(dirs.join(",")).digest("hex").slice(0, 12);
  const tar = `${workDir}/input-${key}.tar`;
  const gz = `${tar}.gz`;
  const metaPath = `${tar}.json`;
  try {
    return JSON.parse(await Deno.readTextFile(metaPath)) as {
      gz: string;
      diffID: string;
      digest: string;
      tarBytes: number;
      gzBytes: number;
      entries: number;
    };
  } catch {
    // build below
  }
  await Deno.mkdir(workDir, { recursive: true });
  await run("tar", ["--xattrs", "--xattrs-include=*", "-cf", tar, "-C", "/", ...dirs]);
  const diffID = await sha256File(tar);
  const tarBytes = (await Deno.stat(tar)).size;
  const entries = (await run("sh", ["-c", `tar -tf '${tar}' | wc -l`])).stdout.trim();
  await run("pigz", ["-f", tar]);
  const meta = {
    gz,
    diffID: `sha256:${diffID}`,
    digest: `sha256:${await sha256File(gz)}`,
    tarBytes,
    gzBytes: (await Deno.stat(gz)).size,
    entries: Number(entries),
  };
  await Deno.writeTextFile(metaPath, JSON.stringify(meta));
  return meta;
}

/** Runs the benchmark; see the module doc. */
export async function benchUnpack(options: BenchUnpackOptions = {}): Promise<BenchUnpackResult> {
  const runs = options.runs ?? 3;
  const workDir = options.workDir ?? "/var/tmp/berth-bench";
  const print = options.print ?? true;
  const dirs = options.dirs ?? ["usr/bin", "usr/sbin", "usr/share", "usr/include"];
  const log = (s: string) => print && console.log(s);
  const input = await prepareInput(workDir, dirs);
  log(
    `input: ${(input.tarBytes / 1e6).toFixed(0)} MB tar, ${
      (input.gzBytes / 1e6).toFixed(0)
    } MB gzip, ${input.entries} entries`,
  );
  const berth = {
    seconds: [] as number[],
    peakRssMiB: [] as number[],
    syncfsSeconds: [] as number[],
  };
  const tarGzip: number[] = [];
  const tarPigz: number[] = [];
  const target = `${workDir}/out`;
  const mountPoint = `${workDir}/tmpfs`;
  if (options.tmpfs) {
    await Deno.mkdir(mountPoint, { recursive: true });
    await run("mount", ["-t", "tmpfs", "-o", "size=8g", "berth-bench", mountPoint]);
  }
  try {
    await runAll(options.tmpfs ? `${mountPoint}/out` : target);
  } finally {
    if (options.tmpfs) await run("umount", [mountPoint]).catch(() => {});
  }
  async function runAll(target: string) {
    const fresh = async () => {
      await Deno.remove(target, { recursive: true }).catch(() => {});
      await Deno.mkdir(target);
      await run("sync", []);
    };
    for (let i = 0; i < runs; i++) {
      await fresh();
      const b = await run(Deno.execPath(), [
        "run",
        "-A",
        SELF,
        "--child",
        input.gz,
        target,
        input.diffID,
        input.digest,
        String(input.gzBytes),
      ]);
      const child = JSON.parse(b.stdout) as { rssMiB: number; syncfsSeconds: number };
      berth.seconds.push(b.seconds - child.syncfsSeconds); // tar does not sync: compare without
      berth.peakRssMiB.push(child.rssMiB);
      berth.syncfsSeconds.push(child.syncfsSeconds);
      log(
        `berth      run ${i + 1}: ${(b.seconds - child.syncfsSeconds).toFixed(2)} s (+ syncfs ${
          child.syncfsSeconds.toFixed(2)
        } s), peak RSS ${child.rssMiB} MiB`,
      );

      await fresh();
      const g = await run("tar", ["-xzpf", input.gz, "-C", target]);
      tarGzip.push(g.seconds);
      log(`tar -xzf   run ${i + 1}: ${g.seconds.toFixed(2)} s`);

      await fresh();
      const p = await run("tar", ["-I", "pigz", "-xpf", input.gz, "-C", target]);
      tarPigz.push(p.seconds);
      log(`tar -Ipigz run ${i + 1}: ${p.seconds.toFixed(2)} s`);
    }
    await Deno.remove(target, { recursive: true }).catch(() => {});
  }
  const result: BenchUnpackResult = {
    input: { tarBytes: input.tarBytes, gzBytes: input.gzBytes, entries: input.entries },
    berth: { ...berth, median: median(berth.seconds) },
    tarGzip: { seconds: tarGzip, median: median(tarGzip) },
    tarPigz: { seconds: tarPigz, median: median(tarPigz) },
    ratioVsTarGzip: median(berth.seconds) / median(tarGzip),
    ratioVsTarPigz: median(berth.seconds) / median(tarPigz),
  };
  log(
    `\nmedians: berth ${result.berth.median.toFixed(2)} s (syncfs after: ${
      median(berth.syncfsSeconds).toFixed(2)
    } s, peak RSS ${Math.max(...berth.peakRssMiB)} MiB), tar -xzf ${
      result.tarGzip.median.toFixed(2)
    } s, tar -I pigz ${result.tarPigz.median.toFixed(2)} s; berth/tar ${
      result.ratioVsTarGzip.toFixed(2)
    }, berth/pigz ${result.ratioVsTarPigz.toFixed(2)}`,
  );
  return result;
}

/** The child: one extraction with berth's applier, then one syncfs; prints JSON. */
async function child(args: string[]): Promise<void> {
  const [gz, target, diffID, digest, size] = args;
  const layer: Layer = {
    digest: digest as Digest,
    diffID: diffID as Digest,
    size: Number(size),
    mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
    compression: "gzip",
  };
  const what = `bench: layer ${digest}`;
  const applier = createApplier(target, { mode: "overlay", what });
  try {
    await readLayer(readFileChunks(gz), layer, { what: "bench", sink: applier });
    applier.finish();
  } finally {
    applier.close();
  }
  const t0 = performance.now();
  const fd = sys.openat(AT_FDCWD, target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  sys.syncfs(fd);
  sys.close(fd);
  const syncfsSeconds = (performance.now() - t0) / 1000;
  const status = await Deno.readTextFile("/proc/self/status");
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
  console.log(JSON.stringify({ rssMiB: Math.round(hwm / 1024), syncfsSeconds }));
}

if (import.meta.main) {
  if (Deno.args[0] === "--child") {
    await child(Deno.args.slice(1));
  } else {
    const runsAt = Deno.args.indexOf("--runs");
    const dirsAt = Deno.args.indexOf("--dirs");
    await benchUnpack({
      tmpfs: Deno.args.includes("--tmpfs"),
      ...(runsAt >= 0 ? { runs: Number(Deno.args[runsAt + 1]) } : {}),
      ...(dirsAt >= 0 ? { dirs: Deno.args[dirsAt + 1].split(",") } : {}),
    });
  }
}
