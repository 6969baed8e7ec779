/**
 * When the direct start (`_direct_start.ts`: the engine's thread spawns the container's command,
 * no init process) is used, and what it is given.
 *
 * It is used for a process that asks for it (one that starts a single container and executes
 * nothing else: the CLI's foreground `run`) when everything the container needs can be given
 * from a thread:
 *
 * - Linux ≥ 6.15 (procfs `pidns=`; pidfds of threads and their namespaces are older);
 * - cgroup v1 controllers with a v1 devices hierarchy (v1 or hybrid): a thread joins a v1 cgroup
 *   alone, while cgroup2 moves whole processes (the hybrid layout's cgroup2, which has no
 *   controllers, is then neither joined nor mounted in the container);
 * - the engine runs as root (uid 0), and there is no terminal (`-t` needs the init's setup);
 * - the process's rlimits already are the spec's (they are per process).
 *
 * Otherwise, or with `BERTH_START=init` in the environment, containers start through the init
 * process (DESIGN §3). Differences a user can see: the command's argv[0] is its resolved path
 * (`/bin/sleep`, not `sleep`: Deno spawns with no argv0 of its own), and a container started this
 * way outlives an engine killed by SIGKILL (no parent-death signal can be set on the child), as a
 * docker or podman container outlives its CLI.
 *
 * @module
 */
import type { CgroupLayout } from "./cgroups.ts";
import type { RunConfig } from "./_init_protocol.ts";
import type { RuntimeSpec, SpecProcess, SpecRlimit } from "./spec_types.ts";
import type { Stdio } from "./_prepare_init.ts";
import { prlimit } from "../../ffi/process.ts";
import { RLIMITS } from "./_rlimits.ts";

/** What a direct start needs. */
export interface DirectRequest {
  /** As for the init; `cgroupProcs` is not used (see `cgroupTasks`). */
  config: RunConfig;
  /** The container's spec (as written to config.json). */
  spec: RuntimeSpec;
  /** CLONE_NEW* flags to unshare. */
  flags: number;
  /** The command's stdio. */
  stdio: { stdin: Stdio; stdout: Stdio; stderr: Stdio };
  /** The v1 `tasks` files of the container's cgroup. */
  cgroupTasks: string[];
  /** Record the phases' timestamps. */
  timing: boolean;
}

/** What a direct `exec` needs. */
export interface DirectExecRequest {
  /** The process to run (as in the spec). */
  process: SpecProcess;
  /** A pidfd of the container's first process (its namespaces are joined through it). */
  pidfd: number;
  /** The v1 `tasks` files of the container's cgroups (host paths). */
  cgroupTasks: string[];
  /** The command's stdio. */
  stdio: { stdin: Stdio; stdout: Stdio; stderr: Stdio };
}

/**
 * Why containers cannot start directly here (undefined: they can), from what is known before
 * the spec: the environment, kernel, cgroup layout, terminal and the engine's user. See the
 * module doc; the spec's rlimits are checked by {@linkcode rlimitsInherited}.
 */
export function directStartRefusal(layout: CgroupLayout, terminal: boolean): string | undefined {
  const wanted = Deno.env.get("BERTH_START");
  if (wanted === "init") return "BERTH_START=init";
  const [major, minor] = Deno.osRelease().split(".").map((n) => parseInt(n));
  if (major < 6 || (major === 6 && minor < 15)) return "Linux < 6.15";
  if (layout.version === "v2") return "cgroup v2";
  if (!layout.hierarchies.some((h) => h.controllers.includes("devices"))) {
    return "no v1 devices cgroup";
  }
  if (terminal) return "terminal";
  const status = Deno.readTextFileSync("/proc/self/status");
  if (!/^Uid:\s+0\s+0\s+0\s/m.test(status)) return "not root";
  return undefined;
}

/** Whether every rlimit of `spec` already is this process's (what a spawned child inherits). */
export function rlimitsInherited(rlimits: readonly SpecRlimit[] | undefined): boolean {
  return (rlimits ?? []).every((r) => {
    const resource = RLIMITS[r.type];
    if (resource === undefined) return false;
    const now = prlimit(0, resource);
    return now.soft === BigInt(r.soft) && now.hard === BigInt(r.hard);
  });
}
