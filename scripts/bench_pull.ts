/**
 * Pull benchmark: `berth pull` against `podman pull`, `ctr images pull` and `skopeo copy`, of the
 * Debian bookworm minbase image (see `make_debian_image.ts`: one gzip layer of ~51 MB, ~128 MB
 * unpacked) from a loopback registry (Debian's docker-registry, plain HTTP), in one run.
 *
 * ```sh
 * deno run -A scripts/bench_pull.ts [--runs N]
 * ```
 *
 * Every tool starts from empty storage each run (set up untimed): berth a new `--root`; podman an
 * overlay-driver sandbox reset with `podman system reset -f`; containerd a new daemon on a private
 * socket with its root and state in a temp dir (its CPU time and peak RSS are reported beside
 * ctr's); skopeo a new `oci:` directory. After each run the result is checked, so a failed run is
 * never timed as a fast one. What each tool does in its time differs (skopeo does not unpack):
 * see the notes printed under the tables.
 *
 * @module
 */

import { Containerd, daemonTable } from "./_containerd.ts";
import {
  benchCases,
  type Case,
  freshDir,
  machineLine,
  type Ratio,
  ratioTable,
  resultsTable,
  sh,
  summarize,
  type Summary,
} from "./_bench_util.ts";
import { debianImage } from "./make_debian_image.ts";
import { podmanSandbox } from "../tests/_podman.ts";
import { startRegistry } from "../tests/_registry.ts";

/** Options of {@linkcode benchPull}. */
export interface BenchPullOptions {
  /** Timed runs per case (the median is reported); default 5. */
  runs?: number;
}

/** What {@linkcode benchPull} measured. */
export interface BenchPullResult {
  /** Per case: median and min wall ms, CPU s, peak RSS KiB. */
  summaries: Summary[];
  /** Tools that could not run here, with why. */
  skipped: string[];
}

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const MAIN_CLI = new URL("../core/cli/main.ts", import.meta.url);
const CLI_DIR = new URL("../core/cli/", import.meta.url).href;
const REPO = "library/debian:bookworm-minbase";

/**
 * The argv that runs `berth --root ROOT pull …`: main.ts once it lists `pull`, else a driver that
 * runs the command module the way main.ts does (same code path, same imports).
 */
async function berthArgv(work: string): Promise<string[]> {
  const deno = [Deno.execPath(), "run", "-A", "--quiet"];
  if (/\bpull: \(\) => import/.test(await Deno.readTextFile(MAIN_CLI))) return [...deno, MAIN];
  const driver = `${work}/berth_driver.ts`;
  await Deno.writeTextFile(
    driver,
    `import { parseArgs } from "${CLI_DIR}_args.ts";
import { err, out } from "${CLI_DIR}_io.ts";
const [, root, name, ...rest] = Deno.args;
const { command } = await import("${CLI_DIR}" + name + ".ts");
let store;
const ctx = { root, out, err, store: () => store ??= import("${CLI_DIR}../store/store.ts").then((m) => m.Store.open({ root })) };
try {
  Deno.exit(await command.run(parseArgs(rest, command.flags), ctx));
} catch (e) {
  err("Error: " + e.message + "\\n");
  Deno.exit(125);
}
`,
  );
  return [...deno, driver];
}

/** Runs the pull benchmark and prints its tables to stdout (progress goes to stderr). */
export async function benchPull(options: BenchPullOptions = {}): Promise<BenchPullResult> {
  const runs = options.runs ?? 5;
  const image = await debianImage();
  const size = async (p: string) => ((await Deno.stat(p)).size / 1048576).toFixed(1);
  console.log(
    `image: debian bookworm minbase (debootstrap → umoci → skopeo), one gzip layer of ` +
      `${await size(image.layerGz)} MiB (${await size(image.rootfsTar)} MiB unpacked), ` +
      `pushed by skopeo to docker-registry on 127.0.0.1 (plain HTTP, no auth)`,
  );
  console.log(`${await machineLine()}; median of ${runs} runs after 1 warm-up, interleaved`);

  const work = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "berth-bench-pull-" });
  await using reg = await startRegistry();
  await reg.push(`oci-archive:${image.ociArchive}:bookworm-minbase`, REPO);
  const ref = `${reg.host}/${REPO}`;
  await using podman = await podmanSandbox({ driver: "overlay" });
  await using ctrd = await Containerd.create();
  const skipped: string[] = [];
  try {
    const cases: Case[] = [];
    const berthStore = `${work}/berth`;
    const berth = await berthArgv(work);
    cases.push({
      name: "berth pull",
      argv: [...berth, "--root", berthStore, "pull", ref],
      prepare: () => freshDir(berthStore),
      after: async ({ stdout }) => {
        if (!stdout.includes("Status: Downloaded newer image")) {
          throw new Error(`berth pull said: ${stdout}`);
        }
        let snapshots = 0;
        for await (const e of Deno.readDir(`${berthStore}/snapshots`)) {
          if (/^[0-9a-f]{64}$/.test(e.name)) snapshots++;
        }
        if (snapshots !== 1) throw new Error(`berth pull left ${snapshots} snapshots`);
      },
    });

    let podmanOk = true;
    try {
      await podman.run(["info", "--format", "{{.Store.GraphDriverName}}"]);
    } catch (e) {
      podmanOk = false;
      skipped.push(`podman: ${(e as Error).message.split("\n")[0]}`);
    }
    if (podmanOk) {
      cases.push({
        name: "podman pull",
        argv: [...podman.argv, "pull", "--tls-verify=false", ref],
        env: podman.env,
        clearEnv: true,
        prepare: async () => {
          await podman.run(["system", "reset", "-f"]);
          await podman.run(["info", "--format", "{{.Store.GraphDriverName}}"]);
          await sh("sync", []);
        },
        after: async () => {
          const list = await podman.run(["images", "--format", "{{.Repository}}:{{.Tag}}"]);
          if (!list.includes(ref)) throw new Error(`podman images: ${list}`);
        },
      });
    }

    const why = await ctrd.tryStart();
    if (why) skipped.push(`ctr: containerd cannot run here: ${why}`);
    else {
      cases.push({
        name: "ctr pull --plain-http",
        argv: [
          "ctr",
          "--address",
          ctrd.socket,
          "-n",
          "bench",
          "images",
          "pull",
          "--plain-http",
          ref,
        ],
        prepare: () => ctrd.restart(),
        after: async () => {
          const usage = await ctrd.usage();
          const list = await sh("ctr", ["--address", ctrd.socket, "-n", "bench", "i", "ls", "-q"]);
          if (!list.includes(ref)) throw new Error(`ctr images ls: ${list}`);
          return usage;
        },
      });
    }

    const ociDir = `${work}/skopeo-oci`;
    cases.push({
      name: "skopeo copy → oci:",
      argv: [
        "skopeo",
        "--insecure-policy",
        "copy",
        "-q",
        "--src-tls-verify=false",
        `docker://${ref}`,
        `oci:${ociDir}:bookworm-minbase`,
      ],
      prepare: () => freshDir(ociDir),
      after: async () => {
        await Deno.stat(`${ociDir}/index.json`);
      },
    });

    const results = await benchCases(cases, { runs });
    const sums = summarize(results);
    const by = (name: string): Summary | undefined => sums.find((s) => s.name === name);
    console.log("");
    console.log(resultsTable(sums));
    const daemon = daemonTable(
      sums,
      "ctr's own CPU/RSS are above; the containerd daemon's during the pull:",
    );
    if (daemon) console.log(daemon);
    const b = by("berth pull");
    const ratios: Ratio[] = [
      { label: "berth / podman pull (equal work)", berth: b, reference: by("podman pull") },
      { label: "berth / ctr pull (equal work)", berth: b, reference: by("ctr pull --plain-http") },
      {
        label: "berth / skopeo copy (skopeo does not unpack)",
        berth: b,
        reference: by("skopeo copy → oci:"),
      },
    ];
    console.log("");
    console.log(ratioTable(ratios));
    if (b) console.log(`berth peak RSS: ${(b.maxRssKiB / 1024).toFixed(0)} MiB`);
    console.log("\nWhat each row does (the same registry, over loopback):");
    const notes = [
      "berth pull: GET /v2/, the manifest, the config, the layer streamed into the ingest area " +
      "(sha256 and size checked while streaming, fdatasync), unpacked into its snapshot (gunzip, " +
      "diffID checked, safe applier, one syncfs) as soon as it is complete, blobs renamed into " +
      "place, image recorded.",
      "podman pull: containers/image copy into containers-storage (overlay): the layer is " +
      "downloaded to a temp file, then decompressed, its diffID computed and applied to an " +
      "overlay diff dir; no fsync of layer data.",
      "ctr pull: containerd fetches the blobs into its content store (digest-checked, fsynced " +
      "on commit), then unpacks the layer into its overlayfs snapshotter.",
      "skopeo copy: downloads the blobs into an OCI layout directory (digest-checked); no unpack.",
    ];
    for (const n of notes) console.log(`  - ${n}`);
    for (const s of skipped) console.log(`skipped ${s}`);
    return { summaries: sums, skipped };
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--runs");
  const eq = Deno.args.find((a) => a.startsWith("--runs="));
  const runs = eq ? Number(eq.slice(7)) : i >= 0 ? Number(Deno.args[i + 1]) : undefined;
  await benchPull(runs === undefined ? {} : { runs });
}
