/**
 * A handle on one container for the library and the CLI: state (truthful after crashes), start,
 * stop, kill, wait, logs, exec, remove, inspect.
 *
 * @module
 */
import type { Store } from "./store.ts";
import type { ContainerRecord } from "../metadata/container_db.ts";
import { ConflictError, NotFoundError } from "../errors.ts";
import { SIGNALS } from "../../ffi/constants.ts";
import { processAlive as isAlive } from "../runtime/process_info.ts";
import { ContainerStartError } from "../runtime/start_error.ts";
import type { ExecProcessOptions } from "../runtime/exec_spec.ts";
import type { ExecInContainerOptions } from "../runtime/exec.ts";
import type { ContainerResult } from "../runtime/run.ts";
import type { RuntimeSpec } from "../runtime/spec_types.ts";
import type { ContainerInspect } from "./inspect_container.ts";
import { type LogEntry, logPath, readLogs, type ReadLogsOptions } from "./container_logs.ts";
// exec, the supervisor and inspect are loaded when used: `run` needs none of them

/**
 * Options of {@linkcode Container.exec}: docker's exec flags plus how to connect stdio.
 *
 * @example
 * ```ts
 * import type { ContainerExecOptions } from "@berth/berth";
 * const o: ContainerExecOptions = { command: ["id"], user: "app", workdir: "/tmp", stdout: "piped" };
 * ```
 */
export interface ContainerExecOptions
  extends Omit<ExecProcessOptions, "pid" | "userFiles">, Omit<ExecInContainerOptions, "onStart"> {}

/**
 * Options of {@linkcode Container.stop}.
 *
 * @example
 * ```ts
 * import type { StopOptions } from "@berth/berth";
 * const o: StopOptions = { timeout: 2, signal: "SIGINT" };
 * ```
 */
export interface StopOptions {
  /** Seconds to wait after the stop signal before SIGKILL (docker's default 10). */
  timeout?: number;
  /** The stop signal; default the image's StopSignal, else SIGTERM. */
  signal?: Deno.Signal;
}

/**
 * Parses docker's signal forms: `KILL`, `SIGKILL`, `9`. Throws `TypeError`.
 *
 * @example
 * ```ts
 * import { parseSignal } from "@berth/berth";
 * console.log(parseSignal("hup"), parseSignal("9")); // "SIGHUP" "SIGKILL"
 * ```
 */
export function parseSignal(value: string): Deno.Signal {
  const upper = value.toUpperCase();
  const name = /^\d+$/.test(value)
    ? Object.keys(SIGNALS).find((k) => SIGNALS[k] === Number(value))
    : upper.startsWith("SIG")
    ? upper
    : `SIG${upper}`;
  if (!name || !(name in SIGNALS)) throw new TypeError(`Invalid signal: ${value}`);
  return name as Deno.Signal;
}

/**
 * A container of a store. Get one with `Store.container(nameOrId)`, `Store.create()` or
 * `Store.listContainers()`.
 *
 * @example
 * ```ts ignore
 * import { Store } from "@berth/berth";
 * const store = await Store.open();
 * const c = await store.create("busybox", { command: ["sh", "-c", "echo up; sleep 60"] });
 * await c.start();
 * const r = await c.exec({ command: ["cat", "/etc/hostname"], stdout: "piped" });
 * console.log(new TextDecoder().decode(r.stdout));
 * for await (const line of c.logs()) console.log(line.stream, line.log);
 * await c.stop({ timeout: 2 });
 * console.log(await c.wait());
 * await c.remove();
 * ```
 */
export class Container {
  readonly #store: Store;
  #record: ContainerRecord;

  /** @internal */
  constructor(store: Store, record: ContainerRecord) {
    this.#store = store;
    this.#record = record;
  }

  /** The 64-hex id. */
  get id(): string {
    return this.#record.id;
  }

  /** The name. */
  get name(): string {
    return this.#record.name;
  }

  /** The record as last read (see {@linkcode Container.refresh}). */
  get record(): ContainerRecord {
    return this.#record;
  }

  /** True while the container's process runs. */
  get running(): boolean {
    return this.#record.state.status === "running" || this.#record.state.status === "restarting";
  }

  /**
   * Re-reads the record and makes it truthful: a container recorded as running whose process is
   * gone (its supervisor or engine was killed; a pid reused by another process does not count)
   * is recorded as exited, its cgroup removed, and with `--rm` the container itself.
   */
  async refresh(): Promise<ContainerRecord> {
    const db = this.#store.containers;
    let r = await db.read(this.id);
    if (r.state.status === "running" || r.state.status === "restarting") {
      const alive = processAlive(r.state.pid, r.state.pidStart);
      const monitorAlive = processAlive(r.state.monitorPid, r.state.monitorStart);
      if (!alive && !monitorAlive) {
        const who = r.state.monitorPid !== undefined
          ? `the berth process watching it (pid ${r.state.monitorPid})`
          : "the berth process running it";
        r = await db.update(this.id, (x) => {
          x.state = {
            ...x.state,
            status: "exited",
            exitCode: x.state.exitCode ?? 137,
            error: `${who} died`,
            finishedAt: x.state.finishedAt ?? new Date().toISOString(),
          };
          delete x.state.pid;
          delete x.state.pidStart;
          delete x.state.monitorPid;
          delete x.state.monitorStart;
        });
        await removeCgroups(r.cgroupDirs ?? []);
        if (r.hostConfig.AutoRemove) await db.remove(r);
      }
    }
    this.#record = r;
    return r;
  }

  /** Starts a created or exited container under a supervisor; resolves once it runs. */
  async start(): Promise<void> {
    await this.refresh();
    if (this.running) return; // docker: starting a running container is a no-op
    const { spawnSupervisor } = await import("./supervisor.ts");
    await spawnSupervisor(this.#store, this.#record);
    await this.refresh();
  }

  /** Sends `signal` (default SIGKILL) to the container's first process. */
  async kill(signal: Deno.Signal = "SIGKILL", options: { stop?: boolean } = {}): Promise<void> {
    await this.refresh();
    if (!this.running) {
      throw new ConflictError(`Container ${this.id.slice(0, 12)} is not running`);
    }
    // Recorded first: a supervisor between two runs (restarting) then starts none.
    this.#record = await this.#store.containers.update(this.id, (r) => {
      r.state.stopRequested = options.stop ?? (signal === "SIGKILL" || signal === "SIGTERM");
    });
    const { pid } = this.#record.state;
    if (pid === undefined) return;
    try {
      Deno.kill(pid, signal);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }

  /**
   * `stop`: the stop signal, then SIGKILL after `timeout` seconds; resolves when it has exited.
   * A container that is not running is left alone.
   */
  async stop(options: StopOptions = {}): Promise<void> {
    await this.refresh();
    if (!this.running) return;
    const signal = options.signal ?? this.#stopSignal();
    // Recorded as a stop first: a supervisor between two runs then starts none.
    await this.kill(signal, { stop: true }).catch(() => {});
    let signaled = this.#record.state.pid;
    const deadline = Date.now() + (options.timeout ?? 10) * 1000;
    for (let killing = false;;) {
      try {
        await this.refresh();
      } catch (e) {
        if (e instanceof NotFoundError) return; // a --rm container went away by itself
        throw e;
      }
      if (!this.running) return;
      if (!killing && Date.now() >= deadline) {
        killing = true;
        signaled = undefined;
      }
      const pid = this.#record.state.pid;
      // A run that began despite the stop (a restart racing it) gets the signal too.
      if (pid !== undefined && pid !== signaled && this.#processRuns()) {
        try {
          Deno.kill(pid, killing ? "SIGKILL" : signal);
        } catch { /* gone meanwhile */ }
        signaled = pid;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Resolves with the exit code once the container has exited. A `--rm` container removed by its
   * supervisor meanwhile has exited too: its last known code is returned.
   */
  async wait(options: { signal?: AbortSignal } = {}): Promise<number> {
    for (;;) {
      try {
        await this.refresh();
      } catch (e) {
        if (e instanceof NotFoundError) return this.#record.state.exitCode ?? 0;
        throw e;
      }
      if (!this.running) return this.#record.state.exitCode ?? 0;
      options.signal?.throwIfAborted();
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The container's log entries (stdout and stderr apart), optionally following. */
  logs(options: Omit<ReadLogsOptions, "running"> = {}): AsyncGenerator<LogEntry> {
    return readLogs(logPath(this.#store, this.id), {
      ...options,
      running: async () => (await this.refresh(), this.running),
    });
  }

  /**
   * Removes the container; a running one only with `force` (killed first). Its upper dir, logs
   * and record go; its cgroup too when a crash left it.
   */
  async remove(options: { force?: boolean } = {}): Promise<void> {
    await this.refresh().catch(() => this.#record);
    if (this.running) {
      if (!options.force) {
        throw new ConflictError(
          `You cannot remove a running container ${this.id}. Stop the container before ` +
            `attempting removal or force remove`,
        );
      }
      await this.kill("SIGKILL", { stop: true }).catch(() => {});
      await this.wait();
    }
    await removeCgroups(this.#record.cgroupDirs ?? []);
    await this.#store.containers.remove(this.#record);
  }

  /**
   * `exec`: runs `options.command` inside the running container — in all its namespaces and its
   * cgroup, with its capabilities and no_new_privs, through berth's init (never a bare setns'd
   * process). Resolves with the exit status (126/127 as `run` when it cannot run the command).
   */
  async exec(options: ContainerExecOptions): Promise<ContainerResult> {
    await this.refresh();
    const { pid, pidStart } = this.#record.state;
    if (this.#record.state.status !== "running" || pid === undefined) {
      throw new ContainerStartError(`Container ${this.id.slice(0, 12)} is not running`, 125);
    }
    const target = { pid, ...(pidStart ? { startTime: pidStart } : {}), name: this.name };
    const { stdin, stdout, stderr, input, signal, forwardSignals, timing, init, ...flags } =
      options;
    try {
      const spec = this.#store.containers.readSpec(this.id);
      const [{ execProcess }, { execInContainer }] = await Promise.all([
        import("../runtime/exec_spec.ts"),
        import("../runtime/exec.ts"),
      ]);
      const process = execProcess(spec, { ...flags, pid });
      return await execInContainer(target, process, {
        ...{ stdin, stdout, stderr, input, signal, forwardSignals, timing },
        ...(init ? { init } : {}),
      });
    } catch (e) {
      if (init) {
        const { discardExec } = await import("../runtime/prepare_exec.ts");
        await discardExec(init).catch(() => {});
      }
      throw e;
    }
  }

  /** docker's `container inspect` shape. */
  async inspect(): Promise<ContainerInspect> {
    await this.refresh();
    let spec: RuntimeSpec | undefined;
    try {
      spec = this.#store.containers.readSpec(this.id);
    } catch { /* a container whose bundle is gone is still inspected */ }
    const dir = this.#store.containers.path(this.id);
    const { inspectContainer } = await import("./inspect_container.ts");
    return inspectContainer(this.#record, spec, {
      upper: `${dir}/upper`,
      work: `${dir}/work`,
      lowers: [...this.#record.snapshots].reverse().map((c) => this.#store.snapshots.path(c)),
    });
  }

  #processRuns(): boolean {
    return processAlive(this.#record.state.pid, this.#record.state.pidStart);
  }

  #stopSignal(): Deno.Signal {
    try {
      return this.#record.stopSignal ? parseSignal(this.#record.stopSignal) : "SIGTERM";
    } catch {
      return "SIGTERM";
    }
  }
}

/** Removes cgroup dirs a dead container left (killing what still runs in them). */
async function removeCgroups(dirs: readonly string[]): Promise<void> {
  for (const dir of dirs) {
    if (!dir.includes("/berth/")) continue;
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        await Deno.remove(dir);
        break;
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) break;
        const procs = await Deno.readTextFile(`${dir}/cgroup.procs`).catch(() => "");
        for (const p of procs.split("\n").filter(Boolean)) {
          try {
            Deno.kill(Number(p), "SIGKILL");
          } catch { /* gone */ }
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }
}

function processAlive(pid: number | undefined, start: string | undefined): boolean {
  return pid !== undefined && start !== undefined && isAlive(pid, start);
}
