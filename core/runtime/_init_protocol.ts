/**
 * The init's protocol. The init is started as `berth __init <fd>`, `fd` being its end of a
 * SOCK_SEQPACKET socket pair (one JSON message per packet). The engine sends one
 * {@linkcode InitConfig}; the init answers with {@linkcode InitMessage}s; end of stream after
 * `exec` means the command runs. Types only: the init imports this.
 *
 * @module
 */
import type { CgroupMountEntry } from "./cgroups.ts";

/** The root filesystem to mount: an overlay of layers, or a directory to bind. */
export type RootfsSource =
  | { lowerdirs: readonly string[]; upperdir: string; workdir: string }
  | { dir: string };

/** The init's argument. */
export interface InitConfig {
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

/** A message of the init to the engine. */
export type InitMessage =
  /** The pty master, passed with SCM_RIGHTS. */
  | { t: "pty" }
  /** About to execve (end of stream next means it succeeded). */
  | { t: "exec"; marks?: Record<string, number> }
  /** Setup failed: docker's 125, or 126/127 for a command that cannot be run. */
  | { t: "error"; code: number; message: string };
