/**
 * When the direct start (`_direct_start.ts`: the engine's thread spawns the container's command,
 * no init process) is used, and what it is given.
 *
 * It is used for a process that asks for it (one that starts a single container, or execs one
 * process, and executes nothing else: the CLI's foreground `run` and its `exec`) when everything
 * the container needs can be given from a thread:
 *
 * - Linux ≥ 6.15 (procfs `pidns=`; pidfds of threads and their namespaces are older);
 * - cgroup v1 controllers with a v1 devices hierarchy (v1 or hybrid): a thread joins a v1 cgroup
 *   alone, while cgroup2 moves whole processes (the hybrid layout's cgroup2, which has no
 *   controllers, is then neither joined nor mounted in the container);
 * - the engine runs as root (uid 0) with no inheritable or ambient capabilities, and there is no
 *   terminal (`-t` needs the init's set-up);
 * - the process's rlimits already are the spec's (they are per process);
 * - `run`: no memory limit; `exec`: the container has no memory or pids limit (the thread counts
 *   against them while it is in the container's cgroups: see the functions below).
 *
 * Otherwise, or with `BERTH_START=init` in the environment, containers start through the init
 * process (DESIGN §3). Differences a user can see:
 *
 * - the command (and an `exec`'d process) outlives an engine that exits without its clean-up
 *   (SIGKILL, a crash): no parent-death signal can be set on the child. So does a docker or
 *   podman container outlive its CLI: `ps` shows it running, `rm -f` removes it;
 * - on a hybrid host the command stays in the engine's cgroup2 cgroup (no controllers there);
 * - while its credentials are the container's (microseconds), a host process of the container's
 *   uid could signal the engine; a change of user also leaves the engine's dumpable flag at the
 *   system's `suid_dumpable` and clears its parent-death signal (neither is set back);
 * - in v1, joining the container's cpuset and leaving it resets the thread's CPU affinity to the
 *   cgroups' (a `taskset` mask berth was started with is lost); an `exec` into a frozen container
 *   would freeze the thread (berth has no `pause`).
 *
 * The command is spawned with glibc's `posix_spawn` (`ffi/spawn.ts`): a vfork-style clone of the
 * thread that copies no page tables (a fork of the Deno process costs ~10 ms here), keeps the
 * thread's supplementary groups, sets every signal to its default action in the child only, and
 * reports execve's own error (ENOEXEC included: glibc's execvp would run such a file with /bin/sh).
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
  // a thread with a smaller bounding set may not take these back
  if (/^Cap(Inh|Amb):\s*0*[1-9a-f]/m.test(status)) return "inheritable capabilities";
  return undefined;
}

/**
 * Why `spec` cannot start directly (undefined: it can): a terminal; rlimits other than the
 * process's; a memory limit (while the thread is in the container's memory cgroup, the engine's
 * page faults are charged to it, and an OOM kill there would pick the engine).
 */
export function directSpecRefusal(spec: RuntimeSpec): string | undefined {
  if (spec.process.terminal) return "terminal";
  if (!rlimitsInherited(spec.process.rlimits)) return "rlimits";
  if (spec.linux?.resources?.memory?.limit !== undefined) return "memory limit";
  return undefined;
}

/**
 * Why `process` cannot be exec'd directly into a container in the cgroups `cgroupProcs` (its
 * `cgroup.procs` files): a terminal; rlimits other than the process's; a memory or pids limit
 * (the thread would count against them while it is inside: an OOM kill would pick the engine,
 * and the exec would fail one process early).
 */
export function directExecRefusal(
  process: SpecProcess,
  cgroupProcs: readonly string[],
): string | undefined {
  if (process.terminal) return "terminal";
  if (!rlimitsInherited(process.rlimits)) return "rlimits";
  for (const f of cgroupProcs) {
    const dir = f.replace(/\/cgroup\.procs$/, "");
    const read = (name: string) => {
      try {
        return Deno.readTextFileSync(`${dir}/${name}`).trim();
      } catch {
        return undefined;
      }
    };
    const memory = read("memory.limit_in_bytes");
    if (memory !== undefined && BigInt(memory) < 1n << 62n) return "memory limit";
    const pids = read("pids.max");
    if (pids !== undefined && pids !== "max") return "pids limit";
  }
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
