/**
 * Container lifecycle on top of the store: create (record, root filesystem, runtime spec in
 * `containers/<id>/config.json`), start (one run of the spec: state recorded at start and exit),
 * and the truthful state of a container whose supervisor or engine may have died.
 *
 * @module
 */
import type { Store } from "./store.ts";
import { randomName } from "../metadata/random_name.ts";
import type { ContainerRecord, RestartPolicy } from "../metadata/container_db.ts";
import { ConflictError, NotFoundError } from "../errors.ts";
import { createSpec, readUserFiles, type RunOptions, type UserFiles } from "../runtime/spec.ts";
import type { RuntimeSpec } from "../runtime/spec_types.ts";
import {
  type ContainerResult,
  discardInit,
  runContainer,
  type RunContainerOptions,
} from "../runtime/run.ts";
import type { RootfsSource } from "../runtime/_init_protocol.ts";
import { detectCgroupLayout } from "../runtime/cgroups.ts";
import { processStartTime } from "../runtime/process_info.ts";
import type { Image } from "../image/image.ts";
import { Snapshotter } from "../snapshot/snapshotter.ts";

/**
 * What `create` takes: docker's run flags that shape the container.
 *
 * @example
 * ```ts
 * import type { CreateContainerOptions } from "@berth/berth";
 * const o: CreateContainerOptions = { name: "web", command: ["httpd", "-f"], restart: { name: "always" } };
 * ```
 */
export interface CreateContainerOptions
  extends Omit<RunOptions, "id" | "bundleDir" | "rootfs" | "userFiles"> {
  /** `--name`; default a generated `adjective_name`. */
  name?: string;
  /** `--rm`: remove the container when it exits (recorded for the supervisor). */
  rm?: boolean;
  /** `--restart`. */
  restart?: RestartPolicy;
  /** Use a flattened copy of the image instead of an overlay (also automatic without overlayfs). */
  flatten?: boolean;
}

/** True when the kernel offers overlayfs. */
function overlayAvailable(): boolean {
  if (Deno.env.get("BERTH_STORAGE_DRIVER") === "vfs") return false;
  let fs = "";
  try {
    fs = Deno.readTextFileSync("/proc/filesystems");
  } catch { /* no procfs: no overlay known */ }
  return /\boverlay\b/.test(fs);
}

/** A new random container id (64 hex). */
function newId(): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(32)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

/**
 * Creates a container from `image` (named `imageName` by the user): its record, its root
 * filesystem (upper/work dirs over the snapshots, or a flattened copy) and its runtime spec. A
 * failure leaves nothing behind.
 */
export async function createContainer(
  store: Store,
  image: Image,
  options: CreateContainerOptions & { imageName: string },
): Promise<ContainerRecord> {
  const what = `Cannot run "${options.imageName}"`;
  // Held shared until the record exists: an rmi or prune (exclusive) sees the container, or
  // runs before it and then the image is gone for it too (NotFoundError below).
  using _gc = await store.gcShared();
  if (!(await store.content.has(image.manifestDigest))) {
    throw new NotFoundError(`No such image: ${options.imageName}`);
  }
  const snapshots = Snapshotter.chainIDs(image.layers.map((l) => l.diffID));
  const layerSources = image.layers.map((layer) => ({
    layer,
    open: () => store.content.read(layer.digest),
  }));
  const flatten = options.flatten || !overlayAvailable();
  if (!flatten) {
    // Normally a no-op: load and pull unpack. Images stored before, or pruned snapshots, unpack now.
    await store.snapshots.unpack(layerSources, { what });
  }
  const record: ContainerRecord = {
    id: newId(),
    name: options.name ?? randomName(),
    image: options.imageName,
    imageId: image.configDigest,
    snapshots,
    command: [],
    created: new Date().toISOString(),
    state: { status: "created" },
    hostConfig: hostConfig(options),
    rootfs: flatten ? "copy" : "overlay",
    ...(image.config.config?.StopSignal ? { stopSignal: image.config.config.StopSignal } : {}),
    ...(options.restart ? { restartPolicy: options.restart } : {}),
    ...(options.tty ? { tty: true } : {}),
    ...(options.interactive ? { interactive: true } : {}),
  };
  for (let retry = 1;; retry++) {
    try {
      await store.containers.create(record);
      break;
    } catch (e) {
      if (!(e instanceof ConflictError) || options.name !== undefined || retry > 5) throw e;
      record.name = randomName(retry);
    }
  }
  const dir = store.containers.path(record.id);
  try {
    let lowerdirs: string[] | string;
    let userFiles: UserFiles | undefined;
    if (flatten) {
      if (!options.flatten) {
        console.error(
          "Warning: overlayfs is not available: the container runs on a flattened copy",
        );
      }
      await Deno.mkdir(`${dir}/rootfs-copy`);
      const { flattenImage } = await import("../snapshot/flatten.ts");
      await flattenImage(layerSources, `${dir}/rootfs-copy`, { what });
      lowerdirs = `${dir}/rootfs-copy`;
    } else {
      lowerdirs = snapshots.map((c) => store.snapshots.path(c)).reverse();
      const rootfs = lowerdirs;
      if (snapshots.length) {
        userFiles = await store.snapshots.userFiles(snapshots.at(-1)!, () => readUserFiles(rootfs));
      }
      Deno.mkdirSync(`${dir}/upper`);
      Deno.mkdirSync(`${dir}/work`);
    }
    const spec = createSpec(image.config, {
      ...options,
      id: record.id,
      bundleDir: dir,
      rootfs: lowerdirs,
      ...(userFiles ? { userFiles } : {}),
    });
    // sync: small, and Deno's async writeTextFile costs ~8 ms at its first use (the run path)
    Deno.writeTextFileSync(`${dir}/config.json`, JSON.stringify(spec, null, 2));
    record.command = spec.process?.args ?? [];
    await store.containers.write(record);
    return record;
  } catch (e) {
    await store.containers.remove(record);
    throw e;
  }
}

/** The root filesystem of a created container. */
export function containerRootfs(store: Store, record: ContainerRecord): RootfsSource {
  const dir = store.containers.path(record.id);
  if (record.rootfs === "copy") return { dir: `${dir}/rootfs-copy` };
  return {
    lowerdirs: record.snapshots.map((c) => store.snapshots.path(c)).reverse(),
    upperdir: `${dir}/upper`,
    workdir: `${dir}/work`,
  };
}

/** How to connect one run of a container. */
export type StartOptions =
  & Pick<
    RunContainerOptions,
    "stdin" | "stdout" | "stderr" | "input" | "signal" | "forwardSignals" | "timing" | "init"
  >
  & {
    /**
     * Called once the container's process runs and is recorded as running. What it throws
     * rejects the start, once the container's end is recorded.
     */
    onStart?: (pid: number) => void;
  };

/**
 * Runs a created (or exited) container once and waits for it: the record says `running` (pid,
 * its start time, cgroup dirs) from the start and `exited` (code, OOM) at the end; a start that
 * fails records the error and its exit code (125/126/127) and throws.
 */
export async function startContainer(
  store: Store,
  record: ContainerRecord,
  options: StartOptions = {},
): Promise<ContainerResult> {
  const { stdin, stdout, stderr, input, signal, forwardSignals, timing, init } = options;
  let spec: RuntimeSpec;
  try {
    spec = store.containers.readSpec(record.id);
  } catch (e) {
    if (init) await discardInit(init);
    throw e;
  }
  let result: ContainerResult;
  let started: Promise<unknown> = Promise.resolve();
  let ownWatch = false;
  let callbackError: { error: unknown } | undefined;
  try {
    result = await runContainer(spec, {
      bundleDir: store.containers.path(record.id),
      rootfs: containerRootfs(store, record),
      ...(init ? { init } : {}),
      ...{ stdin, stdout, stderr, input, signal, forwardSignals, timing },
      onStart: (pid, info) => {
        record.state = {
          ...record.state,
          status: "running",
          pid,
          pidStart: info.startTime,
          startedAt: new Date().toISOString(),
        };
        delete record.state.exitCode;
        delete record.state.finishedAt;
        delete record.state.error;
        record.cgroupDirs = cgroupDirsOf(pid);
        // Recorded in the background (the start path does not wait for the disk), field by
        // field: a stop requested meanwhile by another process must survive. This process is
        // recorded as the one watching the container, unless its supervisor already is.
        const { status, startedAt } = record.state;
        started = store.containers.update(record.id, (r) => {
          Object.assign(r.state, { status, pid, pidStart: info.startTime, startedAt });
          if (r.state.monitorPid === undefined) {
            ownWatch = true;
            r.state.monitorPid = Deno.pid;
            r.state.monitorStart = processStartTime(Deno.pid);
          }
          delete r.state.exitCode;
          delete r.state.finishedAt;
          delete r.state.error;
          r.cgroupDirs = record.cgroupDirs;
        }).catch(() => {});
        // said once recorded: `run -d` returns with the container running in `ps`
        started.then(() => options.onStart?.(pid)).catch((error) => {
          callbackError ??= { error };
        });
      },
    });
  } catch (e) {
    await started;
    await store.containers.update(record.id, (r) => {
      if (ownWatch) {
        delete r.state.monitorPid;
        delete r.state.monitorStart;
      }
      r.state = {
        ...r.state,
        status: "exited",
        exitCode: (e as { exitCode?: number }).exitCode ?? 125,
        error: (e as Error).message,
        finishedAt: new Date().toISOString(),
      };
      delete r.state.pid;
      delete r.state.pidStart;
    }).catch(() => {});
    throw e;
  }
  await started; // the start's own record update lands first
  const updated = await store.containers.update(record.id, (r) => {
    r.state = {
      ...r.state,
      status: "exited",
      exitCode: result.exitCode,
      oomKilled: result.oomKilled,
      finishedAt: new Date().toISOString(),
    };
    delete r.state.pid;
    delete r.state.pidStart;
    delete r.state.error;
    if (ownWatch) {
      delete r.state.monitorPid;
      delete r.state.monitorStart;
    }
  }).catch(() => undefined);
  if (updated) Object.assign(record, updated);
  if (callbackError) throw callbackError.error;
  return result;
}

/** The absolute cgroup directories of a running process (read from /proc/<pid>/cgroup). */
function cgroupDirsOf(pid: number): string[] {
  try {
    const layout = detectCgroupLayout({ cgroup: Deno.readTextFileSync(`/proc/${pid}/cgroup`) });
    if (layout.version === "v2") return [`${layout.mountpoint}${layout.own}`];
    const dirs = layout.hierarchies.map((h) => `${h.mountpoint}${h.own === "/" ? "" : h.own}`);
    if (layout.unified) dirs.push(`${layout.unified.mountpoint}${layout.unified.own}`);
    return dirs.filter((d) => d.includes("/berth/"));
  } catch {
    return [];
  }
}

function hostConfig(o: CreateContainerOptions): Record<string, unknown> {
  return {
    AutoRemove: o.rm ?? false,
    Binds: o.volumes ?? [],
    Tmpfs: o.tmpfs ?? [],
    ReadonlyRootfs: o.readOnly ?? false,
    Memory: o.memory ?? 0,
    NanoCpus: o.cpus ? Math.round(Number(o.cpus) * 1e9) : 0,
    PidsLimit: o.pidsLimit ?? 0,
    CapAdd: o.capAdd ?? [],
    CapDrop: o.capDrop ?? [],
    NetworkMode: o.network ?? "none",
    RestartPolicy: {
      Name: o.restart?.name ?? "no",
      MaximumRetryCount: o.restart?.maximumRetryCount ?? 0,
    },
  };
}
