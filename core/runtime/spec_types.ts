/**
 * The subset of the OCI runtime spec (config.json, runtime-spec v1.2) that berth writes and runs.
 * Field names and meanings are the spec's, so `runc run` and `crun run` accept the same bundle.
 *
 * @module
 */

/** A resource limit of the container process (`RLIMIT_*` by name). */
export interface SpecRlimit {
  /** e.g. `"RLIMIT_NOFILE"`. */
  type: string;
  /** Hard limit. */
  hard: number;
  /** Soft limit. */
  soft: number;
}

/** Capability sets by name (`"CAP_CHOWN"`, ...). */
export interface SpecCapabilities {
  /** Bounding set. */
  bounding?: string[];
  /** Effective set. */
  effective?: string[];
  /** Permitted set. */
  permitted?: string[];
  /** Inheritable set. */
  inheritable?: string[];
  /** Ambient set. */
  ambient?: string[];
}

/** The user the process runs as. */
export interface SpecUser {
  /** User id. */
  uid: number;
  /** Primary group id. */
  gid: number;
  /** Supplementary group ids. */
  additionalGids?: number[];
  /** File mode creation mask (runc's default is 0o022). */
  umask?: number;
}

/** The container's process. */
export interface SpecProcess {
  /** Attach a pseudo-terminal. */
  terminal?: boolean;
  /** Initial terminal size. */
  consoleSize?: { height: number; width: number };
  /** The user. */
  user: SpecUser;
  /** argv; `args[0]` is looked up in the container's `PATH` when it has no slash. */
  args: string[];
  /** `K=V` strings. */
  env?: string[];
  /** Absolute working directory inside the container. */
  cwd: string;
  /** Capability sets. */
  capabilities?: SpecCapabilities;
  /** Resource limits. */
  rlimits?: SpecRlimit[];
  /** Set `PR_SET_NO_NEW_PRIVS`. */
  noNewPrivileges?: boolean;
}

/** The root filesystem. */
export interface SpecRoot {
  /** Path of the rootfs, relative to the bundle or absolute. */
  path: string;
  /** Make the root read-only. */
  readonly?: boolean;
}

/** A mount, in order. */
export interface SpecMount {
  /** Absolute path inside the container. */
  destination: string;
  /** Filesystem type (`"bind"` for a bind mount; `"cgroup"` expands to the host's layout). */
  type?: string;
  /** Device, host path of a bind, or a name. */
  source?: string;
  /** mount(8)-style options: flags (`ro`, `nosuid`, `rbind`, `rprivate`, ...) and data. */
  options?: string[];
}

/** A namespace the container gets. */
export interface SpecNamespace {
  /** `pid`, `network`, `mount`, `ipc`, `uts`, `user` or `cgroup`. */
  type: "pid" | "network" | "mount" | "ipc" | "uts" | "user" | "cgroup";
  /** Join this namespace instead of creating one. */
  path?: string;
}

/** A device-cgroup rule. */
export interface SpecDeviceCgroup {
  /** Allow (true) or deny (false). */
  allow: boolean;
  /** `"a"`, `"c"` or `"b"`. */
  type?: string;
  /** Major number; absent = any. */
  major?: number;
  /** Minor number; absent = any. */
  minor?: number;
  /** Some of `r`, `w`, `m`. */
  access?: string;
}

/** Cgroup limits. */
export interface SpecResources {
  /** Device rules, in order. */
  devices?: SpecDeviceCgroup[];
  /** Memory limits in bytes; `swap` is memory + swap. */
  memory?: { limit?: number; swap?: number };
  /** CPU bandwidth: `quota` µs per `period` µs. */
  cpu?: { quota?: number; period?: number };
  /** Maximum number of tasks. */
  pids?: { limit: number };
}

/** The Linux-specific part. */
export interface SpecLinux {
  /** Namespaces. */
  namespaces?: SpecNamespace[];
  /** Cgroup limits. */
  resources?: SpecResources;
  /** Cgroup path: absolute, or relative to the engine's own cgroup. */
  cgroupsPath?: string;
  /** Paths made inaccessible (a file: /dev/null over it; a directory: an empty read-only tmpfs). */
  maskedPaths?: string[];
  /** Paths made read-only. */
  readonlyPaths?: string[];
  /** Propagation of the root mount: `private`, `rprivate`, `slave`, `rslave`, ... */
  rootfsPropagation?: string;
}

/** An OCI runtime spec (config.json). */
export interface RuntimeSpec {
  /** Spec version. */
  ociVersion: string;
  /** The process to run. */
  process: SpecProcess;
  /** The root filesystem. */
  root: SpecRoot;
  /** Host name in the container's UTS namespace. */
  hostname?: string;
  /** Mounts, in order. */
  mounts?: SpecMount[];
  /** Linux configuration. */
  linux?: SpecLinux;
  /** Free-form annotations. */
  annotations?: Record<string, string>;
}
