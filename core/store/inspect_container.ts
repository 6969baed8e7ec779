/**
 * `docker container inspect`'s JSON shape for a berth container.
 *
 * @module
 */
import type { ContainerRecord } from "../metadata/container_db.ts";
import type { RuntimeSpec } from "../runtime/spec_types.ts";

/**
 * What `inspect` prints for a container (docker's field names).
 *
 * @example
 * ```ts
 * import type { ContainerInspect } from "@berth/berth";
 * const up = (c: ContainerInspect) => c.State.Running ? `${c.Name} pid ${c.State.Pid}` : c.Name;
 * ```
 */
export interface ContainerInspect {
  Id: string;
  Created: string;
  Path: string;
  Args: string[];
  State: {
    Status: string;
    Running: boolean;
    Paused: boolean;
    Restarting: boolean;
    OOMKilled: boolean;
    Dead: boolean;
    Pid: number;
    ExitCode: number;
    Error: string;
    StartedAt: string;
    FinishedAt: string;
  };
  Image: string;
  Name: string;
  RestartCount: number;
  Driver: string;
  Platform: string;
  HostConfig: Record<string, unknown>;
  GraphDriver: { Name: string; Data: Record<string, string> };
  Mounts: { Type: string; Source: string; Destination: string; Mode: string; RW: boolean }[];
  Config: {
    Hostname: string;
    User: string;
    Tty: boolean;
    OpenStdin: boolean;
    Env: string[];
    Cmd: string[];
    Image: string;
    WorkingDir: string;
  };
}

const ZERO_TIME = "0001-01-01T00:00:00Z";

/** Builds the inspect object of a container from its record and runtime spec. */
export function inspectContainer(
  r: ContainerRecord,
  spec: RuntimeSpec | undefined,
  paths: { upper: string; work: string; lowers: string[] },
): ContainerInspect {
  const s = r.state;
  const args = spec?.process?.args ?? r.command;
  const volumes = (spec?.mounts ?? []).filter((m) =>
    m.type === "bind" && !/\/(hosts|hostname|resolv\.conf)$/.test(m.destination)
  );
  const user = spec?.process?.user;
  return {
    Id: r.id,
    Created: r.created,
    Path: args[0] ?? "",
    Args: args.slice(1),
    State: {
      Status: s.status,
      Running: s.status === "running",
      Paused: false,
      Restarting: s.status === "restarting",
      OOMKilled: s.oomKilled ?? false,
      Dead: false,
      Pid: s.status === "running" ? s.pid ?? 0 : 0,
      ExitCode: s.exitCode ?? 0,
      Error: s.error ?? "",
      StartedAt: s.startedAt ?? ZERO_TIME,
      FinishedAt: s.finishedAt ?? ZERO_TIME,
    },
    Image: r.imageId,
    Name: `/${r.name}`,
    RestartCount: r.restartCount ?? 0,
    Driver: r.rootfs === "copy" ? "vfs" : "overlay",
    Platform: "linux",
    HostConfig: r.hostConfig,
    GraphDriver: r.rootfs === "copy" ? { Name: "vfs", Data: {} } : {
      Name: "overlay",
      Data: { LowerDir: paths.lowers.join(":"), UpperDir: paths.upper, WorkDir: paths.work },
    },
    Mounts: volumes.map((m) => {
      const ro = (m.options ?? []).includes("ro");
      return {
        Type: "bind",
        Source: m.source ?? "",
        Destination: m.destination,
        Mode: ro ? "ro" : "",
        RW: !ro,
      };
    }),
    Config: {
      Hostname: spec?.hostname ?? r.id.slice(0, 12),
      User: user ? `${user.uid}:${user.gid}` : "",
      Tty: r.tty ?? false,
      OpenStdin: r.interactive ?? false,
      Env: spec?.process?.env ?? [],
      Cmd: args,
      Image: r.image,
      WorkingDir: spec?.process?.cwd ?? "/",
    },
  };
}
