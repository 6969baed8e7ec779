/**
 * Container records: `containers/<id>/container.json` (written atomically), with unique names
 * claimed by creating `containers/names/<name>` exclusively — no central file to lock.
 *
 * @module
 */
import type { Digest } from "../digest.ts";
import { ConflictError, InvalidInputError, NotFoundError } from "../errors.ts";
import { writeFileAtomic } from "./atomic_write.ts";
import { acquireLock } from "../lock.ts";
import type { RuntimeSpec } from "../runtime/spec_types.ts";

/** Where a container is in its life. */
export type ContainerStatus = "created" | "running" | "restarting" | "exited";

/** docker's `--restart` policies (honoured by the container's supervisor while it lives). */
export interface RestartPolicy {
  name: "no" | "on-failure" | "always" | "unless-stopped";
  /** `on-failure:N`: at most N restarts. */
  maximumRetryCount?: number;
}

/**
 * One container.
 *
 * @example
 * ```ts
 * import type { ContainerRecord } from "@berth/berth";
 * const status = (c: ContainerRecord) => `${c.name}: ${c.state.status} ${c.state.exitCode ?? ""}`;
 * ```
 */
export interface ContainerRecord {
  /** 64 hex digits. */
  id: string;
  /** Unique name (docker's `--name`, or generated). */
  name: string;
  /** The image as the user named it. */
  image: string;
  /** The image ID (config digest). */
  imageId: Digest;
  /** Chain IDs of the image's snapshots, bottom first (the overlay lowerdirs). */
  snapshots: Digest[];
  /** The command the container runs (entrypoint + cmd as resolved). */
  command: string[];
  /** Creation time (ISO 8601). */
  created: string;
  /** Run-time state. */
  state: {
    status: ContainerStatus;
    /** Host pid of the container's first process, and its start time (/proc/PID/stat field 22). */
    pid?: number;
    pidStart?: string;
    /** The supervisor of a detached container: pid and start time. */
    monitorPid?: number;
    monitorStart?: string;
    exitCode?: number;
    oomKilled?: boolean;
    startedAt?: string;
    finishedAt?: string;
    error?: string;
    /** Set by stop/kill: the supervisor does not restart the container after this exit. */
    stopRequested?: boolean;
  };
  /** The run flags (docker's HostConfig-like view, for inspect). */
  hostConfig: Record<string, unknown>;
  /** How the root filesystem is made: an overlay of the snapshots, or a flattened copy. */
  rootfs?: "overlay" | "copy";
  /** The container's cgroup directories (absolute), to clean up after a crash. */
  cgroupDirs?: string[];
  /** `--restart`. */
  restartPolicy?: RestartPolicy;
  /** Restarts made by the supervisor. */
  restartCount?: number;
  /** The signal `stop` sends first (the image's StopSignal; default SIGTERM). */
  stopSignal?: string;
  /** Whether the container has a terminal (`-t`) and keeps stdin open (`-i`). */
  tty?: boolean;
  interactive?: boolean;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const ID_RE = /^[0-9a-f]{64}$/;

/** Reads and writes container records under `<root>/containers`. */
export class ContainerDb {
  readonly dir: string;

  constructor(root: string) {
    this.dir = `${root}/containers`;
  }

  /** The directory of container `id` (bundle, upper/work dirs, logs). */
  path(id: string): string {
    return `${this.dir}/${id}`;
  }

  /**
   * Creates the record and its directory, claiming the name. Throws `ConflictError` when the name
   * is taken (docker's message), `TypeError` for an invalid name.
   */
  async create(record: ContainerRecord): Promise<void> {
    if (!NAME_RE.test(record.name)) {
      throw new TypeError(
        `Invalid container name "${record.name}", only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`,
      );
    }
    // small metadata calls are synchronous here: the run path makes several (see lock.ts)
    Deno.mkdirSync(`${this.dir}/names`, { recursive: true });
    const nameFile = `${this.dir}/names/${record.name}`;
    try {
      // sync: a few bytes, and Deno's async writeTextFile costs ~8 ms at its first use
      Deno.writeTextFileSync(nameFile, record.id, { createNew: true });
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      const owner = await Deno.readTextFile(nameFile).catch(() => "");
      if (this.#exists(owner)) {
        throw new ConflictError(
          `Conflict. The container name "/${record.name}" is already in use by container ` +
            `"${owner}". You have to remove (or rename) that container to be able to reuse that name.`,
        );
      }
      // A crash left the name behind without its container: take it over, atomically, unless
      // another process was quicker (then its claim stands).
      await writeFileAtomic(nameFile, record.id, { durable: false });
      if ((await Deno.readTextFile(nameFile).catch(() => "")) !== record.id) {
        throw new ConflictError(`Conflict. The container name "/${record.name}" is already in use`);
      }
    }
    try {
      Deno.mkdirSync(this.path(record.id), { mode: 0o700 });
      await this.write(record);
    } catch (e) {
      await Deno.remove(`${this.dir}/names/${record.name}`).catch(() => {});
      await Deno.remove(this.path(record.id), { recursive: true }).catch(() => {});
      throw e;
    }
  }

  /**
   * Replaces the record atomically. Not fsynced: run state is rewritten at every start and exit
   * (a power loss may show an older state, never a torn one), and the run path stays fast.
   */
  async write(record: ContainerRecord): Promise<void> {
    await writeFileAtomic(`${this.path(record.id)}/container.json`, JSON.stringify(record), {
      durable: false,
    });
  }

  /**
   * Read-modify-write of one record under its lock (the supervisor and the CLI both update a
   * record). `fn` changes the record in place; returns the updated record.
   */
  async update(id: string, fn: (record: ContainerRecord) => void): Promise<ContainerRecord> {
    using _lock = await acquireLock(`${this.path(id)}/lock`, { exclusive: true });
    const record = await this.read(id);
    fn(record);
    await this.write(record);
    return record;
  }

  /** The container's runtime spec (its `config.json`), as created. */
  readSpec(id: string): RuntimeSpec {
    return JSON.parse(Deno.readTextFileSync(`${this.path(id)}/config.json`));
  }

  /** Reads one record by full id. */
  // deno-lint-ignore require-await -- a small synchronous read; the API stays a Promise
  async read(id: string): Promise<ContainerRecord> {
    let text: string;
    try {
      text = Deno.readTextFileSync(`${this.path(id)}/container.json`);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) throw new NotFoundError(`No such container: ${id}`);
      throw e;
    }
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new InvalidInputError(`Container record ${id} is corrupt: ${(e as Error).message}`);
    }
  }

  /** Every container (records that cannot be read are skipped). */
  async list(): Promise<ContainerRecord[]> {
    const out: ContainerRecord[] = [];
    try {
      for (const e of Deno.readDirSync(this.dir)) {
        if (!e.isDirectory || !ID_RE.test(e.name)) continue;
        const r = await this.read(e.name).catch(() => undefined);
        if (r) out.push(r);
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return out;
  }

  /** Finds a container by name, full id or unique id prefix. */
  async resolve(input: string): Promise<ContainerRecord> {
    let byName: string | undefined;
    try {
      byName = Deno.readTextFileSync(`${this.dir}/names/${input}`);
    } catch { /* not a name */ }
    if (byName && ID_RE.test(byName)) return await this.read(byName);
    if (/^[0-9a-f]{1,64}$/.test(input)) {
      const hits = (await this.list()).filter((c) => c.id.startsWith(input));
      if (hits.length > 1) {
        throw new ConflictError(`Multiple IDs found with provided prefix: ${input}`);
      }
      if (hits.length === 1) return hits[0];
    }
    throw new NotFoundError(`No such container: ${input}`);
  }

  /**
   * Removes the record, its directory and its name. The directory is first renamed to
   * `containers/.trash-<uuid>`, so a crash never leaves a half-removed container (the next
   * {@linkcode ContainerDb.sweep} finishes the job).
   */
  async remove(record: ContainerRecord): Promise<void> {
    const nameFile = `${this.dir}/names/${record.name}`;
    let owner = "";
    try {
      owner = Deno.readTextFileSync(nameFile);
      if (owner === record.id) Deno.removeSync(nameFile);
    } catch { /* gone already */ }
    const trash = `${this.dir}/.trash-${crypto.randomUUID()}`;
    try {
      Deno.renameSync(this.path(record.id), trash);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      throw e;
    }
    // A concurrent sweep may be removing it too; what is left goes at the next sweep.
    await Deno.remove(trash, { recursive: true }).catch(() => {});
  }

  /**
   * Cleans what crashes left: trash dirs, container dirs without a record (a crash between
   * mkdir and the first write; only when older than a minute, so a create in progress is safe).
   */
  async sweep(): Promise<void> {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(this.dir)];
    } catch {
      return;
    }
    for (const e of entries) {
      const path = `${this.dir}/${e.name}`;
      if (e.name.startsWith(".trash-")) {
        await Deno.remove(path, { recursive: true }).catch(() => {});
      } else if (e.isDirectory && ID_RE.test(e.name) && !this.#exists(e.name)) {
        const st = await Deno.stat(path).catch(() => undefined);
        if (st?.mtime && Date.now() - st.mtime.getTime() > 60_000) {
          await Deno.remove(path, { recursive: true }).catch(() => {});
        }
      }
    }
  }

  /** True when container `id` has a record. */
  #exists(id: string): boolean {
    if (!ID_RE.test(id)) return false;
    try {
      Deno.statSync(`${this.path(id)}/container.json`);
      return true;
    } catch {
      return false;
    }
  }
}
