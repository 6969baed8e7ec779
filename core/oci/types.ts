/**
 * Types of the OCI image spec (descriptor, manifest, index, image config), which Docker's schema 2
 * shares field for field.
 *
 * @module
 */
import type { Digest } from "../digest.ts";

/**
 * A platform as in the OCI image index.
 *
 * @example
 * ```ts
 * import type { Platform } from "@berth/berth";
 * const p: Platform = { os: "linux", architecture: "arm64", variant: "v8" };
 * ```
 */
export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  "os.version"?: string;
  "os.features"?: string[];
}

/**
 * An OCI content descriptor.
 *
 * @example
 * ```ts
 * import type { Descriptor } from "@berth/berth";
 * const d: Descriptor = { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: `sha256:${"0".repeat(64)}`, size: 0 };
 * ```
 */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

/**
 * An image manifest (OCI or Docker schema 2).
 *
 * @example
 * ```ts
 * import type { Manifest } from "@berth/berth";
 * const layers = (m: Manifest) => m.layers.map((l) => l.digest);
 * ```
 */
export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/**
 * An image index (OCI) or manifest list (Docker).
 *
 * @example
 * ```ts
 * import type { Index } from "@berth/berth";
 * const platforms = (i: Index) => i.manifests.map((m) => m.platform?.architecture);
 * ```
 */
export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/**
 * The `config` member of an image config: defaults for a container.
 *
 * @example
 * ```ts
 * import type { ContainerConfig } from "@berth/berth";
 * const c: ContainerConfig = { Cmd: ["sh"], Env: ["PATH=/bin"], WorkingDir: "/" };
 * ```
 */
export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, Record<string, never>>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  ArgsEscaped?: boolean;
  Healthcheck?: unknown;
  Hostname?: string;
  Domainname?: string;
  OnBuild?: string[] | null;
  Shell?: string[];
}

/** One entry of an image config's history. */
export interface History {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

/**
 * An image config (OCI image-spec config.md; Docker's image JSON has the same fields).
 *
 * @example
 * ```ts
 * import type { ImageConfig } from "@berth/berth";
 * const diffIDs = (c: ImageConfig) => c.rootfs.diff_ids;
 * ```
 */
export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  "os.version"?: string;
  "os.features"?: string[];
  config?: ContainerConfig;
  rootfs: { type: "layers"; diff_ids: Digest[] };
  history?: History[];
  [key: string]: unknown;
}
