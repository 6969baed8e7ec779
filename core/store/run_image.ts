/**
 * `run`: an image from the store becomes a container — a record under `containers/<id>/`, an
 * overlay of the image's snapshots with the container's own upper/work dirs, an OCI runtime spec
 * made from the image config and the flags, run by the runtime; the record keeps the exit status.
 *
 * @module
 */
import type { Store } from "./store.ts";
import { randomName } from "../metadata/random_name.ts";
import type { ContainerRecord } from "../metadata/container_db.ts";
import { ConflictError } from "../errors.ts";
import { createSpec, type RunOptions } from "../runtime/spec.ts";
import {
  type ContainerResult,
  discardInit,
  type PreparedInit,
  runContainer,
  type RunContainerOptions,
} from "../runtime/run.ts";
import type { RootfsSource } from "../runtime/_init_protocol.ts";
import type { Image } from "../image/image.ts";
import { Snapshotter } from "../snapshot/snapshotter.ts";

/**
 * Options of {@linkcode runImage} (and `Store.run`): docker's `run` flags plus how to connect stdio.
 *
 * @example
 * ```ts
 * import type { RunImageOptions } from "@berth/berth";
 * const options: RunImageOptions = {
 *   command: ["sh", "-c", "echo hi"],
 *   env: ["A=1"],
 *   memory: "64m",
 *   rm: true,
 *   stdout: "piped",
 * };
 * ```
 */
export interface RunImageOptions extends
  Omit<RunOptions, "id" | "bundleDir" | "rootfs">,
  Pick<
    RunContainerOptions,
    "stdin" | "stdout" | "stderr" | "input" | "signal" | "forwardSignals" | "timing" | "init"
  > {
  /** `--name`; default a generated `adjective_name`. */
  name?: string;
  /** `--rm`: remove the container (record, upper dir) when it exits. */
  rm?: boolean;
  /** Called once the container exists (its record and directory), before it starts. */
  onCreate?: (id: string) => void | Promise<void>;
  /** Called once the container's process runs. */
  onStart?: (pid: number, id: string) => void;
  /** Use a flattened copy of the image instead of an overlay (also automatic without overlayfs). */
  flatten?: boolean;
}

/**
 * What {@linkcode runImage} (and `Store.run`) resolves with.
 *
 * @example
 * ```ts
 * import type { RunResult } from "@berth/berth";
 * const report = (r: RunResult) => `${r.name} exited ${r.exitCode}${r.oomKilled ? " (OOM)" : ""}`;
 * ```
 */
export interface RunResult extends ContainerResult {
  /** The container's id (64 hex). */
  id: string;
  /** The container's name. */
  name: string;
}

/** True when the kernel offers overlayfs. */
async function overlayAvailable(): Promise<boolean> {
  if (Deno.env.get("BERTH_STORAGE_DRIVER") === "vfs") return false;
  const fs = await Deno.readTextFile("/proc/filesystems").catch(() => "");
  return /\boverlay\b/.test(fs);
}

/** Runs `image` (already resolved from the store as `name`) and waits for it to exit. */
export async function runImage(
  store: Store,
  image: Image,
  options: RunImageOptions & { imageName: string },
): Promise<RunResult> {
  let init = options.init;
  try {
    return await createAndRun(store, image, options, () => {
      const taken = init;
      init = undefined;
      return taken;
    });
  } finally {
    if (init) await discardInit(init);
  }
}

async function createAndRun(
  store: Store,
  image: Image,
  options: RunImageOptions & { imageName: string },
  takeInit: () => PreparedInit | undefined,
): Promise<RunResult> {
  const snapshots = await Snapshotter.chainIDs(image.layers.map((l) => l.diffID));
  const layerSources = image.layers.map((layer) => ({
    layer,
    open: () => store.content.read(layer.digest),
  }));
  const flatten = options.flatten || !(await overlayAvailable());
  if (!flatten) {
    // Normally a no-op: load and pull unpack. Images stored before, or pruned snapshots, unpack now.
    await store.snapshots.unpack(layerSources, { what: `Cannot run "${options.imageName}"` });
  }
  const id = Array.from(
    crypto.getRandomValues(new Uint8Array(32)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  const record: ContainerRecord = {
    id,
    name: options.name ?? randomName(),
    image: options.imageName,
    imageId: image.configDigest,
    snapshots,
    command: [],
    created: new Date().toISOString(),
    state: { status: "created" },
    hostConfig: hostConfig(options),
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
  const dir = store.containers.path(id);
  let result: ContainerResult | undefined;
  try {
    await options.onCreate?.(id);
    let rootfs: RootfsSource;
    let lowerdirs: string[] | string;
    if (flatten) {
      if (!options.flatten) {
        console.error(
          "Warning: overlayfs is not available: the container runs on a flattened copy",
        );
      }
      const copy = `${dir}/rootfs-copy`;
      await Deno.mkdir(copy);
      const { flattenImage } = await import("../snapshot/flatten.ts");
      await flattenImage(layerSources, copy, { what: `Cannot run "${options.imageName}"` });
      rootfs = { dir: copy };
      lowerdirs = copy;
    } else {
      lowerdirs = snapshots.map((c) => store.snapshots.path(c)).reverse();
      await Deno.mkdir(`${dir}/upper`);
      await Deno.mkdir(`${dir}/work`);
      rootfs = { lowerdirs, upperdir: `${dir}/upper`, workdir: `${dir}/work` };
    }
    const spec = createSpec(image.config, {
      ...options,
      id,
      bundleDir: dir,
      rootfs: lowerdirs,
    });
    record.command = spec.process?.args ?? [];
    await store.containers.write(record);
    const init = takeInit();
    const { stdin, stdout, stderr, input, signal, forwardSignals, timing } = options;
    result = await runContainer(spec, {
      bundleDir: dir,
      rootfs,
      ...(init ? { init } : {}),
      ...{ stdin, stdout, stderr, input, signal, forwardSignals, timing },
      onStart: (pid) => {
        record.state = { status: "running", pid, startedAt: new Date().toISOString() };
        // Recorded in the background: the start path does not wait for the disk.
        store.containers.write(record).catch(() => {});
        options.onStart?.(pid, id);
      },
    });
    record.state = {
      ...record.state,
      status: "exited",
      exitCode: result.exitCode,
      oomKilled: result.oomKilled,
      finishedAt: new Date().toISOString(),
    };
    delete record.state.pid;
    return { ...result, id, name: record.name };
  } catch (e) {
    record.state = {
      status: "exited",
      exitCode: (e as { exitCode?: number }).exitCode ?? 125,
      error: (e as Error).message,
      finishedAt: new Date().toISOString(),
    };
    throw e;
  } finally {
    if (options.rm) await store.containers.remove(record);
    else await store.containers.write(record).catch(() => {});
  }
}

function hostConfig(o: RunImageOptions): Record<string, unknown> {
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
  };
}
