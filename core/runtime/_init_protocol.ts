/**
 * The init's protocol. The init is started as `berth __init <fd>`, `fd` being its end of a
 * SOCK_SEQPACKET socket pair (one JSON message per packet). The engine sends one
 * {@linkcode InitConfig}: a {@linkcode RunConfig} for a container's first process, an
 * {@linkcode ExecConfig} (with namespace descriptors attached as SCM_RIGHTS) for a process joined
 * into a running container. The init answers with {@linkcode InitMessage}s; end of stream after
 * `exec` means the command runs. Types only: the init imports this.
 *
 * @module
 */
import type { CgroupMountEntry } from "./cgroups.ts";
import type { SpecProcess } from "./spec_types.ts";

/** The root filesystem to mount: an overlay of layers, or a directory to bind. */
export type RootfsSource =
  | { lowerdirs: readonly string[]; upperdir: string; workdir: string }
  | { dir: string };

/** Start a container: the init becomes its first process. */
export interface RunConfig {
  /** `"run"` (the default when absent). */
  kind?: "run";
  /** Absolute bundle directory (config.json is read from it). */
  bundle: string;
  /** What to mount at the spec's root path. */
  rootfs: RootfsSource;
  /** cgroup.procs files to write 0 to, before unsharing the cgroup namespace. */
  cgroupProcs: string[];
  /** What a `cgroup` mount of the spec expands to. */
  cgroupMounts: CgroupMountEntry[];
  /** Send timestamps of the init's phases with the `exec` message. */
  timing?: boolean;
}

/**
 * Join a running container: the init was spawned in its pid, net, ipc and uts namespaces; it
 * joins its cgroup, its cgroup and mount namespaces (descriptors passed with the message, in the
 * order of `namespaces`), then drops to `process`'s privileges and execs it.
 */
export interface ExecConfig {
  /** `"exec"`. */
  kind: "exec";
  /** The process to run (as in the spec: args, env, cwd, user, capabilities, rlimits, ...). */
  process: SpecProcess;
  /** The container's cgroup.procs files (host paths), to write 0 to first. */
  cgroupProcs: string[];
  /** What the descriptors attached to the message are, in order. */
  namespaces: ("cgroup" | "mnt")[];
  /** Send timestamps of the init's phases with the `exec` message. */
  timing?: boolean;
}

/** The init's configuration. */
export type InitConfig = RunConfig | ExecConfig;

/** A message of the init to the engine. */
export type InitMessage =
  /** The pty master, passed with SCM_RIGHTS. */
  | { t: "pty" }
  /** About to execve (end of stream next means it succeeded). */
  | { t: "exec"; marks?: Record<string, number> }
  /** Setup failed: docker's 125, or 126/127 for a command that cannot be run. */
  | { t: "error"; code: number; message: string };
