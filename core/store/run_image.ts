/**
 * `run`: an image from the store becomes a container — a record under `containers/<id>/`, an
 * overlay of the image's snapshots with the container's own upper/work dirs, an OCI runtime spec
 * made from the image config and the flags, run by the runtime; the record keeps the exit status.
 *
 * @module
 */
import type { Store } from "./store.ts";
import type { ContainerRecord } from "../metadata/container_db.ts";
import { createContainer, type CreateContainerOptions, startContainer } from "./containers.ts";
import { type ContainerResult, discardInit, type RunContainerOptions } from "../runtime/run.ts";
import type { Image } from "../image/image.ts";
import { logPath, LogWriter } from "./container_logs.ts";

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
  CreateContainerOptions,
  Pick<
    RunContainerOptions,
    "stdin" | "stdout" | "stderr" | "input" | "signal" | "forwardSignals" | "timing" | "init"
  > {
  /**
   * Keep the output in the container's log (`berth logs`), as docker does for every container:
   * `"inherit"` stdout/stderr are then copied to the caller's and to the log (an early `init` must
   * have been spawned with them `"piped"`). Off for `rm` containers, whose log would go with them.
   */
  log?: boolean;
  /** Called once the container exists (its record and directory), before it starts. */
  onCreate?: (id: string) => void | Promise<void>;
  /** Called once the container's process runs and is recorded as running. */
  onStart?: (pid: number, id: string) => void;
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

/** Runs `image` (already resolved from the store as `name`) and waits for it to exit. */
export async function runImage(
  store: Store,
  image: Image,
  options: RunImageOptions & { imageName: string },
): Promise<RunResult> {
  let record: ContainerRecord | undefined;
  let log: LogWriter | undefined;
  try {
    record = await createContainer(store, image, options);
    await options.onCreate?.(record.id);
    if (options.log && !options.rm) log = await LogWriter.open(logPath(store, record.id));
  } catch (e) {
    // Nothing half-made stays behind: a container that could not be set up goes.
    if (record) await store.containers.remove(record).catch(() => {});
    if (options.init) await discardInit(options.init);
    throw e;
  }
  try {
    const { stdin, input, signal, forwardSignals, timing, init } = options;
    let { stdout, stderr } = options;
    if (log && (stdout ?? "inherit") === "inherit") stdout = log.sink("stdout", Deno.stdout);
    if (log && (stderr ?? "inherit") === "inherit") stderr = log.sink("stderr", Deno.stderr);
    const result = await startContainer(store, record, {
      ...{ stdin, stdout, stderr, input, signal, forwardSignals, timing, init },
      onStart: (pid) => options.onStart?.(pid, record.id),
    });
    return { ...result, id: record.id, name: record.name };
  } finally {
    log?.close();
    if (options.rm) await store.containers.remove(record);
  }
}
