/**
 * `berth ps [-a] [-q] [--no-trunc] [--format …]`: docker's columns CONTAINER ID, IMAGE, COMMAND,
 * CREATED, STATUS, PORTS, NAMES. States are checked against the processes (a container whose
 * supervisor died shows as exited).
 *
 * @module
 */
import type { Command } from "./_command.ts";
import { humanDuration } from "./_human.ts";
import { table } from "./_table.ts";
import { parseTemplate } from "./_template.ts";
import type { ContainerRecord } from "../metadata/container_db.ts";

interface Row {
  ID: string;
  Image: string;
  Command: string;
  CreatedAt: string;
  RunningFor: string;
  Ports: string;
  State: string;
  Status: string;
  Names: string;
  Labels: string;
  Mounts: string;
  Networks: string;
}

const HEADERS: Record<string, string> = {
  ID: "CONTAINER ID",
  Image: "IMAGE",
  Command: "COMMAND",
  CreatedAt: "CREATED AT",
  RunningFor: "CREATED",
  Ports: "PORTS",
  State: "STATE",
  Status: "STATUS",
  Names: "NAMES",
  Labels: "LABELS",
  Mounts: "MOUNTS",
  Networks: "NETWORKS",
};

function ellipsis(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/** docker's STATUS column. */
export function statusText(r: ContainerRecord, now = Date.now()): string {
  const ago = (iso?: string) => (iso ? humanDuration(now - Date.parse(iso)) : "");
  switch (r.state.status) {
    case "running":
      return `Up ${ago(r.state.startedAt)}`;
    case "restarting":
      return `Restarting (${r.state.exitCode ?? 0}) ${ago(r.state.finishedAt)} ago`;
    case "exited":
      return `Exited (${r.state.exitCode ?? 0}) ${ago(r.state.finishedAt)} ago`;
    default:
      return "Created";
  }
}

function row(r: ContainerRecord, noTrunc: boolean): Row {
  const command = r.command.join(" ");
  return {
    ID: noTrunc ? r.id : r.id.slice(0, 12),
    Image: r.image,
    Command: `"${noTrunc ? command : ellipsis(command, 20)}"`,
    CreatedAt: r.created,
    RunningFor: `${humanDuration(Date.now() - Date.parse(r.created))} ago`,
    Ports: "",
    State: r.state.status,
    Status: statusText(r),
    Names: r.name,
    Labels: "",
    Mounts: "",
    Networks: String(r.hostConfig.NetworkMode ?? "none"),
  };
}

/** The `ps` command. */
export const command: Command = {
  usage: "[OPTIONS]",
  summary: "List containers",
  flags: {
    all: { type: "boolean", short: "a", help: "Show all containers (default shows just running)" },
    quiet: { type: "boolean", short: "q", help: "Only display container IDs" },
    "no-trunc": { type: "boolean", help: "Don't truncate output" },
    latest: { type: "boolean", short: "l", help: "Show the latest created container" },
    format: { type: "string", arg: "FORMAT", help: "'table', 'json', or a Go template" },
  },
  async run({ flags }, ctx) {
    const store = await ctx.store();
    let list = (await store.listContainers()).map((c) => c.record);
    if (flags.latest) list = list.slice(0, 1);
    else if (!flags.all) {
      list = list.filter((r) => r.state.status === "running" || r.state.status === "restarting");
    }
    const noTrunc = flags["no-trunc"] === true;
    if (flags.quiet) {
      ctx.out(list.map((r) => `${noTrunc ? r.id : r.id.slice(0, 12)}\n`).join(""));
      return 0;
    }
    const rows = list.map((r) => row(r, noTrunc));
    const format = flags.format as string | undefined;
    if (format === "json") {
      ctx.out(rows.map((r) => JSON.stringify(r) + "\n").join(""));
      return 0;
    }
    if (format !== undefined && format !== "table") {
      const tpl = parseTemplate(format);
      if (tpl.table) {
        const lines = [tpl.header(HEADERS), ...rows.map((r) => tpl.render(r))];
        ctx.out(table(lines.map((l) => l.split("\t"))) + "\n");
      } else ctx.out(rows.map((r) => tpl.render(r) + "\n").join(""));
      return 0;
    }
    const cols: (keyof Row)[] = [
      "ID",
      "Image",
      "Command",
      "RunningFor",
      "Status",
      "Ports",
      "Names",
    ];
    ctx.out(table([cols.map((c) => HEADERS[c]), ...rows.map((r) => cols.map((c) => r[c]))]) + "\n");
    return 0;
  },
};
