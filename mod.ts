/**
 * berth as a library: the content-addressed image store behind the `berth` CLI.
 *
 * Open a store, then load, import, save, list, tag, inspect, remove and prune images — the same
 * operations and the same on-disk store as the CLI (`--root`, `$BERTH_ROOT`, `/var/lib/berth`).
 *
 * @example Import a root filesystem, save it, load it into a second store
 * ```ts
 * import { Store } from "@berth/berth";
 *
 * const dir = await Deno.makeTempDir();
 * await new Deno.Command("tar", { args: ["-C", "/etc", "-cf", `${dir}/etc.tar`, "hostname"] })
 *   .output();
 * const store = await Store.open({ root: `${dir}/a` });
 * using file = await Deno.open(`${dir}/etc.tar`);
 * const id = await store.import(file.readable, { ref: "example/etc:1" });
 *
 * const other = await Store.open({ root: `${dir}/b` });
 * const [loaded] = await other.load(await store.save(["example/etc:1"]));
 * if (loaded.id !== id || loaded.tags[0] !== "example/etc:1") throw new Error("round trip");
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
export {
  DEFAULT_ROOT,
  type DiskUsage,
  type ImageSummary,
  type ImportRootfsOptions,
  type LoadedImage,
  type LoadOptions,
  type PruneResult,
  type RemoveResult,
  Store,
  type StoreOptions,
} from "./core/store/store.ts";
export type { ImageInspect } from "./core/store/inspect_image.ts";
export type { RunImageOptions, RunResult } from "./core/store/run_image.ts";
export { ContainerStartError } from "./core/runtime/start_error.ts";
export type { ContainerRecord } from "./core/metadata/container_db.ts";
export {
  type LayerStatus,
  type PulledImage,
  type PullEvent,
  pullImage,
  type PullOptions,
} from "./core/store/pull.ts";
export type { RegistryConfig } from "./core/transport/remote/config.ts";
export { RegistryAuthError, RegistryError } from "./core/transport/remote/errors.ts";
export type { CredentialSource, RegistryCredentials } from "./core/auth/types.ts";
export {
  CredentialHelperError,
  credentialKey,
  dockerConfigDir,
  dockerCredentials,
  eraseCredentials,
  getCredentials,
  storeCredentials,
} from "./core/auth/credentials.ts";
export {
  Container,
  type ContainerExecOptions,
  parseSignal,
  type StopOptions,
} from "./core/store/container.ts";
export type { CreateContainerOptions } from "./core/store/containers.ts";
export type { LogEntry } from "./core/store/container_logs.ts";
export type { ContainerInspect } from "./core/store/inspect_container.ts";
export type { ImageRecord } from "./core/metadata/image_db.ts";
export type { Image, Layer } from "./core/image/image.ts";
export type {
  ContainerConfig,
  Descriptor,
  ImageConfig,
  Index,
  Manifest,
  Platform,
} from "./core/oci/types.ts";
export { type Digest, isDigest, parseDigest } from "./core/digest.ts";
export {
  familiarString,
  formatReference,
  parseReference,
  type Reference,
} from "./core/reference.ts";
export { formatPlatform, hostPlatform, parsePlatform } from "./core/oci/platform.ts";
export {
  BerthError,
  ConflictError,
  DigestMismatchError,
  InvalidInputError,
  LimitError,
  NotFoundError,
  UnsupportedError,
} from "./core/errors.ts";
