/**
 * The CLI dispatcher: global flags, command lookup (commands load lazily, so `run` pays only for
 * what it imports), error → one line on stderr + exit status.
 *
 * @module
 */
import { formatFlags, parseArgs, UsageError } from "./_args.ts";
import type { CliContext, Command } from "./_command.ts";
import { err, out } from "./_io.ts";

/** berth's version. */
export const VERSION = "0.1.0";

type Loader = () => Promise<{ command: Command }>;

const COMMANDS: Record<string, Loader> = {
  load: () => import("./load.ts"),
  save: () => import("./save.ts"),
  images: () => import("./images.ts"),
  rmi: () => import("./rmi.ts"),
  tag: () => import("./tag.ts"),
  inspect: () => import("./inspect.ts"),
  import: () => import("./import.ts"),
  prune: () => import("./system_prune.ts"),
  run: () => import("./run.ts"),
  unpack: () => import("./unpack.ts"),
  ps: () => import("./ps.ts"),
  pull: () => import("./pull.ts"),
  login: () => import("./login.ts"),
  logout: () => import("./logout.ts"),
  logs: () => import("./logs.ts"),
  stop: () => import("./stop.ts"),
  kill: () => import("./kill.ts"),
  wait: () => import("./wait.ts"),
  rm: () => import("./rm.ts"),
  start: () => import("./start.ts"),
  exec: () => import("./exec.ts"),
};

/** `berth image …` and `berth system …` subcommands. */
const GROUPS: Record<string, Record<string, Loader>> = {
  image: {
    pull: COMMANDS.pull,
    ls: COMMANDS.images,
    list: COMMANDS.images,
    rm: COMMANDS.rmi,
    remove: COMMANDS.rmi,
    inspect: () => import("./image_inspect.ts"),
    load: COMMANDS.load,
    save: COMMANDS.save,
    tag: COMMANDS.tag,
    import: COMMANDS.import,
    prune: () => import("./image_prune.ts"),
  },
  container: {
    ls: COMMANDS.ps,
    list: COMMANDS.ps,
    ps: COMMANDS.ps,
    run: COMMANDS.run,
    logs: COMMANDS.logs,
    stop: COMMANDS.stop,
    kill: COMMANDS.kill,
    wait: COMMANDS.wait,
    rm: COMMANDS.rm,
    remove: COMMANDS.rm,
    start: COMMANDS.start,
    exec: COMMANDS.exec,
    inspect: () => import("./container_inspect.ts"),
    prune: () => import("./container_prune.ts"),
  },
  system: {
    df: () => import("./system_df.ts"),
    prune: COMMANDS.prune,
  },
};

const GLOBAL_HELP = `Usage:  berth [OPTIONS] COMMAND

A container engine in one file: load, save and run OCI and Docker images.

Options:
      --root DIR   Store directory (default $BERTH_ROOT or /var/lib/berth)
  -v, --version    Print version information and quit
  -h, --help       Print usage

Commands:
  images      List images
  exec        Execute a command in a running container
  import      Import the contents from a tarball to create a filesystem image
  inspect     Return low-level information on containers and images
  kill        Kill one or more running containers
  load        Load an image from a tar archive or STDIN
  login       Log in to a registry
  logout      Log out from a registry
  logs        Fetch the logs of a container
  ps          List containers
  pull        Download an image from a registry
  rm          Remove one or more containers
  rmi         Remove one or more images
  run         Create and run a new container from an image
  save        Save one or more images to a tar archive (streamed to STDOUT by default)
  start       Start one or more stopped containers
  stop        Stop one or more running containers
  tag         Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
  unpack      Write an image's merged filesystem into an empty directory
  wait        Block until one or more containers stop, then print their exit codes
  prune       Remove unused data

Management commands:
  container   Manage containers (ls, run, exec, logs, stop, kill, wait, rm, start, inspect, prune)
  image       Manage images (ls, pull, rm, inspect, load, save, tag, import, prune)
  system      Manage berth (df, prune)

Run 'berth COMMAND --help' for more information on a command.
`;

function errorLine(e: unknown): [string, number] {
  if (e instanceof UsageError) return [e.message, 125];
  if (e instanceof Error) {
    const code = typeof (e as { exitCode?: unknown }).exitCode === "number"
      ? (e as unknown as { exitCode: number }).exitCode
      : 125;
    if (e instanceof Deno.errors.PermissionDenied) return [e.message, 125];
    return [e.message.split("\n")[0], code];
  }
  return [String(e), 125];
}

/** Runs the CLI with `argv`; resolves with the exit status. */
export async function main(argv: string[]): Promise<number> {
  let root: string | undefined;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--root") root = argv[++i];
    else if (a.startsWith("--root=")) root = a.slice(7);
    else if (a === "-v" || a === "--version") {
      out(`berth version ${VERSION}\n`);
      return 0;
    } else if (a === "-h" || a === "--help") {
      out(GLOBAL_HELP);
      return 0;
    } else if (a.startsWith("-")) {
      err(`unknown flag: ${a}\nSee 'berth --help'.\n`);
      return 125;
    } else break;
  }
  if (root === "") {
    err("Error: --root needs a directory\n");
    return 125;
  }
  const name = argv[i];
  if (name === undefined || name === "help") {
    out(GLOBAL_HELP);
    return name === undefined ? 1 : 0;
  }
  let path = name;
  let loader = COMMANDS[name];
  let rest = argv.slice(i + 1);
  const group = GROUPS[name];
  if (group) {
    const sub = rest[0];
    if (sub === undefined || sub === "--help" || sub === "-h") {
      out(`Usage:  berth ${name} COMMAND\n\nCommands: ${Object.keys(group).join(", ")}\n`);
      return sub === undefined ? 1 : 0;
    }
    loader = group[sub];
    path = `${name} ${sub}`;
    rest = rest.slice(1);
  }
  if (!loader) {
    err(`berth: '${path}' is not a berth command.\nSee 'berth --help'\n`);
    return 125;
  }
  const { command } = await loader();
  const spec = {
    ...command.flags,
    root: { type: "string", arg: "DIR", help: "Store directory" },
    help: { type: "boolean", help: "Print usage" },
  } as const;
  let store: Promise<import("../store/store.ts").Store> | undefined;
  const ctx: CliContext = {
    store: () =>
      store ??= import("../store/store.ts").then(({ Store }) =>
        Store.open(ctx.root !== undefined ? { root: ctx.root } : {})
      ),
    out,
    err,
    ...(root !== undefined ? { root } : {}),
  };
  try {
    const parsed = parseArgs(rest, spec, { stopAtPositional: command.stopAtPositional });
    if (parsed.flags.help) {
      out(
        `Usage:  berth ${path} ${command.usage}\n\n${command.summary}\n\nOptions:\n${
          formatFlags(command.flags)
        }\n`,
      );
      return 0;
    }
    if (typeof parsed.flags.root === "string") ctx.root = parsed.flags.root;
    return await command.run(parsed, ctx);
  } catch (e) {
    const [line, code] = errorLine(e);
    if (e instanceof UsageError) err(`${line}\nSee 'berth ${path} --help'.\n`);
    else err(`Error: ${line}\n`);
    if (Deno.env.get("BERTH_DEBUG") && e instanceof Error) err(`${e.stack}\n`);
    return code;
  }
}
