/**
 * A throw-away containerd for the benchmarks: private socket, root and state in a temp dir, its
 * own mount namespace; CPU and peak memory of the daemon for the tables.
 *
 * @module
 */
import { formatTable, freshDir, type Summary } from "./_bench_util.ts";

/** A throw-away containerd: private socket, root and state in a temp dir, private mount ns. */
export class Containerd implements AsyncDisposable {
  #child: Deno.ChildProcess | undefined;
  #cpuAtStart = 0;
  private constructor(readonly dir: string) {}

  static async create(): Promise<Containerd> {
    // The socket path must stay short (sun_path is 108 bytes).
    return new Containerd(await Deno.makeTempDir({ dir: "/tmp", prefix: "bctr-" }));
  }

  get socket(): string {
    return `${this.dir}/c.sock`;
  }

  /** Starts the daemon; resolves with why it cannot run, or undefined when it is up. */
  async tryStart(): Promise<string | undefined> {
    try {
      await this.#start();
      return undefined;
    } catch (e) {
      await this.stop();
      return (e as Error).message.split("\n").slice(0, 3).join(" | ");
    }
  }

  async #start(): Promise<void> {
    const root = `${this.dir}/root`, state = `${this.dir}/state`;
    await Deno.writeTextFile(
      `${this.dir}/config.toml`,
      `version = 2\nroot = "${root}"\nstate = "${state}"\n` +
        `disabled_plugins = ["io.containerd.grpc.v1.cri"]\n` +
        `[grpc]\n  address = "${this.socket}"\n[ttrpc]\n  address = "${this.socket}.ttrpc"\n` +
        `[debug]\n  address = ""\n[metrics]\n  address = ""\n`,
    );
    const log = await Deno.open(`${this.dir}/containerd.log`, {
      create: true,
      append: true,
    });
    this.#child = new Deno.Command("unshare", {
      args: [
        "-m",
        "--propagation",
        "private",
        "containerd",
        "--config",
        `${this.dir}/config.toml`,
        "--log-level",
        "warn",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.#child.stderr.pipeTo(log.writable).catch(() => {});
    const deadline = Date.now() + 15000;
    let last = "";
    while (Date.now() < deadline) {
      const out = await new Deno.Command("ctr", {
        args: ["--address", this.socket, "version"],
        stdout: "null",
        stderr: "piped",
      }).output();
      if (out.success) {
        this.#cpuAtStart = await this.#cpuS();
        return;
      }
      last = new TextDecoder().decode(out.stderr).trim();
      const exited = await Promise.race([
        this.#child.status.then(() => true),
        new Promise<false>((r) => setTimeout(() => r(false), 100)),
      ]);
      if (exited) {
        const text = await Deno.readTextFile(`${this.dir}/containerd.log`).catch(() => "");
        throw new Error(`containerd exited: ${text.trim().split("\n").slice(-3).join(" | ")}`);
      }
    }
    throw new Error(`containerd did not answer within 15 s: ${last}`);
  }

  async #cpuS(): Promise<number> {
    const stat = await Deno.readTextFile(`/proc/${this.#child!.pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime, stime are fields 14 and 15 (1-based) of the whole line, in clock ticks (100 Hz).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  }

  /** containerd's CPU seconds since it answered, and its peak RSS (VmHWM) in KiB. */
  async usage(): Promise<Record<string, number>> {
    const status = await Deno.readTextFile(`/proc/${this.#child!.pid}/status`);
    const hwm = Number(status.match(/VmHWM:\s+(\d+)/)?.[1] ?? NaN);
    return { containerdCpuS: (await this.#cpuS()) - this.#cpuAtStart, containerdRssKiB: hwm };
  }

  /** Stops the daemon, wipes its root and state, starts it again. */
  async restart(): Promise<void> {
    await this.stop();
    await freshDir(`${this.dir}/root`);
    await freshDir(`${this.dir}/state`);
    await this.#start();
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = undefined;
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    const done = await Promise.race([
      child.status.then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), 10000)),
    ]);
    if (!done) {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** The containerd daemon's own CPU and memory for the rows that used it (empty when none). */
export function daemonTable(sums: Summary[], heading: string): string {
  const daemon = sums.filter((s) => s.extra.containerdCpuS !== undefined);
  if (daemon.length === 0) return "";
  return `\n${heading}\n` + formatTable(
    ["case", "containerd cpu s", "containerd peak RSS MiB"],
    daemon.map((s) => [
      s.name,
      s.extra.containerdCpuS.toFixed(2),
      (s.extra.containerdRssKiB / 1024).toFixed(0),
    ]),
  );
}
