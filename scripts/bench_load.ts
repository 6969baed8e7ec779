/**
 * Load benchmark: `berth load` against `podman load`, `ctr images import` and the GNU tar floor,
 * on the same Debian bookworm minbase image (see `make_debian_image.ts`), in one run.
 *
 * ```sh
 * deno run -A scripts/bench_load.ts [--runs N]
 * ```
 *
 * Every tool starts from fresh storage each run (set up untimed): berth a new `--root`; podman an
 * overlay-driver sandbox reset with `podman system reset -f` then initialised with `podman info`;
 * containerd a new daemon on a private socket, root and state in a temp dir (its start-up is
 * untimed; its CPU time and peak RSS are reported beside ctr's). After each run the result is
 * checked (the tool said it loaded the image), so a failing run is never timed as a fast one.
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

/** Options of {@linkcode benchLoad}. */
export interface BenchLoadOptions {
  /** Timed runs per case (the median is reported); default 5. */
  runs?: number;
}

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const IMAGE = "docker.io/library/debian:bookworm-minbase";

/** Runs the load benchmark and prints its tables to stdout (progress goes to stderr). */
export async function benchLoad(options: BenchLoadOptions = {}): Promise<void> {
  const runs = options.runs ?? 5;
  const image = await debianImage();
  const size = async (p: string) => ((await Deno.stat(p)).size / 1048576).toFixed(1);
  console.log(
    `image: debian bookworm minbase (debootstrap → umoci → skopeo), one layer; ` +
      `docker-archive ${await size(image.dockerArchive)} MiB (layer uncompressed), ` +
      `oci-archive ${await size(image.ociArchive)} MiB (layer gzip); rootfs tar ` +
      `${await size(image.rootfsTar)} MiB`,
  );
  console.log(`${await machineLine()}; median of ${runs} runs after 1 warm-up, interleaved`);

  const work = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "berth-bench-load-" });
  await using podman = await podmanSandbox({ driver: "overlay" });
  await using ctrd = await Containerd.create();
  const skipped: string[] = [];
  try {
    const cases: Case[] = [];
    const berthStore = `${work}/berth`;
    let berthUnpacked = "";
    const deno = [Deno.execPath(), "run", "-A", "--quiet", MAIN];
    cases.push({
      name: "deno start-up (berth --version)",
      does: "`deno run main.ts --version`: the fixed cost inside every berth row",
      argv: [...deno, "--version"],
    });
    for (const [kind, file] of [["docker", image.dockerArchive], ["oci", image.ociArchive]]) {
      cases.push({
        name: `berth load (${kind}-archive)`,
        argv: [...deno, "--root", berthStore, "load", "-i", file],
        prepare: () => freshDir(berthStore),
        after: async ({ stdout }) => {
          if (!stdout.includes("Loaded image")) throw new Error(`berth load said: ${stdout}`);
          berthUnpacked = await unpackedState(berthStore);
        },
      });
    }

    // podman: fresh overlay storage each run, initialised untimed.
    let podmanOk = true;
    try {
      await podman.run(["info", "--format", "{{.Store.GraphDriverName}}"]);
    } catch (e) {
      podmanOk = false;
      skipped.push(`podman: ${(e as Error).message.split("\n")[0]}`);
    }
    if (podmanOk) {
      for (const [kind, file] of [["docker", image.dockerArchive], ["oci", image.ociArchive]]) {
        cases.push({
          name: `podman load (${kind}-archive)`,
          argv: [...podman.argv, "load", "-i", file],
          env: podman.env,
          clearEnv: true,
          prepare: async () => {
            await podman.run(["system", "reset", "-f"]);
            await podman.run(["info", "--format", "{{.Store.GraphDriverName}}"]);
            await sh("sync", []);
          },
          after: ({ stdout, stderr }) => {
            if (!(stdout + stderr).includes("Loaded image")) {
              throw new Error(`podman load said: ${stdout}${stderr}`);
            }
            return Promise.resolve();
          },
        });
      }
    }

    // containerd: a new daemon per run; ctr imports (with and without unpack).
    const why = await ctrd.tryStart();
    if (why) {
      skipped.push(`ctr: containerd cannot run here: ${why}`);
    } else {
      for (const unpack of [true, false]) {
        for (const [kind, file] of [["docker", image.dockerArchive], ["oci", image.ociArchive]]) {
          cases.push({
            name: `ctr import${unpack ? "" : " --no-unpack"} (${kind}-archive)`,
            argv: [
              "ctr",
              "--address",
              ctrd.socket,
              "-n",
              "bench",
              "images",
              "import",
              ...(unpack ? [] : ["--no-unpack"]),
              ...(kind === "oci" ? ["--base-name", "docker.io/library/debian"] : []),
              file,
            ],
            prepare: () => ctrd.restart(),
            after: async () => {
              const usage = await ctrd.usage();
              const list = await sh("ctr", ["--address", ctrd.socket, "-n", "bench", "i", "ls"]);
              if (!list.includes(IMAGE)) throw new Error(`ctr import left: ${list}`);
              return usage;
            },
          });
        }
      }
    }

    // The floor: GNU tar into a fresh dir.
    const out = `${work}/tar-out`;
    const prepareTar = async () => {
      await freshDir(out);
      await Deno.mkdir(out);
    };
    cases.push({
      name: "tar -xf rootfs.tar",
      does: "GNU tar extracts the uncompressed layer (no digests, no fsync)",
      argv: ["tar", "-xf", image.rootfsTar, "-C", out],
      prepare: prepareTar,
    });
    cases.push({
      name: "tar -xzf layer.tar.gz",
      does: "GNU tar | gzip -d extracts the gzip layer blob (no digests, no fsync)",
      argv: ["tar", "-xzf", image.layerGz, "-C", out],
      prepare: prepareTar,
    });

    const results = await benchCases(cases, { runs });
    const sums = summarize(results);
    const by = (name: string): Summary | undefined => sums.find((s) => s.name === name);

    console.log("");
    console.log(resultsTable(sums));
    const daemon = daemonTable(
      sums,
      "ctr rows time the whole import; ctr's own CPU/RSS are above, the daemon's:",
    );
    if (daemon) console.log(daemon);

    // Equal work: blobs only while berth does not unpack; blobs + unpack once it does.
    const unpacks = !berthUnpacked.startsWith("no");
    const mark = (equal: boolean) => equal ? " (equal work)" : "";
    const ratios: Ratio[] = [];
    for (const kind of ["docker", "oci"]) {
      const b = by(`berth load (${kind}-archive)`);
      ratios.push(
        {
          label: `${kind}-archive: berth / podman load${mark(unpacks)}`,
          berth: b,
          reference: by(`podman load (${kind}-archive)`),
        },
        {
          label: `${kind}-archive: berth / ctr import${mark(unpacks)}`,
          berth: b,
          reference: by(`ctr import (${kind}-archive)`),
        },
        {
          label: `${kind}-archive: berth / ctr import --no-unpack${mark(!unpacks)}`,
          berth: b,
          reference: by(`ctr import --no-unpack (${kind}-archive)`),
        },
        {
          label: `${kind}-archive: berth / ${kind === "docker" ? "tar -xf" : "tar -xzf"} (floor)`,
          berth: b,
          reference: by(kind === "docker" ? "tar -xf rootfs.tar" : "tar -xzf layer.tar.gz"),
        },
      );
    }
    console.log("");
    console.log(ratioTable(ratios));
    for (const kind of ["docker", "oci"]) {
      const b = by(`berth load (${kind}-archive)`);
      if (b) {
        console.log(
          `berth peak RSS, ${kind}-archive: ${(b.maxRssKiB / 1024).toFixed(0)} MiB ` +
            `(start-up alone: ${
              ((by("deno start-up (berth --version)")?.maxRssKiB ?? 0) / 1024)
                .toFixed(0)
            } MiB)`,
        );
      }
    }

    console.log("\nWhat each row does (the same archive file, in the page cache, for every tool):");
    const notes: string[] = [
      `berth load: read the archive, stage every file (sha256 + size while streaming, fdatasync), ` +
      `re-read each layer to check its diffID (gunzip + sha256 + tar walk), rename blobs into ` +
      `blobs/sha256, record the image; unpack into snapshots: ${berthUnpacked}.`,
    ];
    if (podmanOk) {
      notes.push(
        "podman load: containers/image copy into containers-storage, overlay driver (the " +
          "oci-archive is first untarred to a temp dir); each layer is decompressed, its diffID " +
          "computed and it is unpacked into an overlay diff dir; metadata written. No fsync of " +
          "layer data (strace: ~31 fdatasync, all on metadata files).",
      );
    }
    if (!why) {
      notes.push(
        "ctr import: ctr streams the blobs over gRPC into containerd's content store " +
          "(digest-checked, fsynced on commit); containerd then unpacks the layer into its " +
          "overlayfs snapshotter. With --no-unpack it only stores the blobs: the same work " +
          `berth load does ${
            unpacks ? "without its unpack" : "today (berth does not unpack yet)"
          }.`,
      );
    }
    for (const c of cases) if (c.does) notes.push(`${c.name}: ${c.does}`);
    for (const n of notes) console.log(`  - ${n}`);
    for (const s of skipped) console.log(`skipped ${s}`);
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/** Whether the berth store holds unpacked snapshots after a load, as a phrase. */
async function unpackedState(root: string): Promise<string> {
  let n = 0;
  try {
    for await (const _ of Deno.readDir(`${root}/snapshots`)) n++;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return n ? `yes (${n} snapshot dir${n > 1 ? "s" : ""})` : "no (no snapshots/ yet)";
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--runs");
  const eq = Deno.args.find((a) => a.startsWith("--runs="));
  const runs = eq ? Number(eq.slice(7)) : i >= 0 ? Number(Deno.args[i + 1]) : undefined;
  await benchLoad(runs === undefined ? {} : { runs });
}
