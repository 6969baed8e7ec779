/**
 * `berth run [OPTIONS] IMAGE [COMMAND] [ARG...]`: docker's flags and exit codes (the container's
 * own; 125 when berth fails, 126 when the command cannot be invoked, 127 when it is not found).
 * `IMAGE` may also be `docker-archive:FILE` or `oci-archive:FILE`: loaded (verified), then run.
 *
 * @module
 */
import { UsageError } from "./_args.ts";
import type { Command } from "./_command.ts";
import { fileReadable } from "../content/read_file.ts";
import { parsePlatform } from "../oci/platform.ts";
import type { RunImageOptions } from "../store/run_image.ts";
import { containerNamespaces, parseEnvFile } from "../runtime/spec.ts";
import { discardInit, prepareInit } from "../runtime/run.ts";

const list = (v: unknown) => (v as string[] | undefined) ?? undefined;

/** The `run` command. */
export const command: Command = {
  usage: "[OPTIONS] IMAGE [COMMAND] [ARG...]",
  summary: "Create and run a new container from an image",
  stopAtPositional: true,
  flags: {
    rm: { type: "boolean", help: "Automatically remove the container when it exits" },
    interactive: { type: "boolean", short: "i", help: "Keep STDIN open" },
    tty: { type: "boolean", short: "t", help: "Allocate a pseudo-TTY" },
    env: { type: "list", short: "e", arg: "list", help: "Set environment variables" },
    "env-file": { type: "list", arg: "list", help: "Read in a file of environment variables" },
    volume: { type: "list", short: "v", arg: "list", help: "Bind mount a volume (SRC:DST[:ro])" },
    tmpfs: { type: "list", arg: "list", help: "Mount a tmpfs directory (PATH[:OPTIONS])" },
    workdir: {
      type: "string",
      short: "w",
      arg: "string",
      help: "Working directory inside the container",
    },
    user: {
      type: "string",
      short: "u",
      arg: "string",
      help: "Username or UID (format: <name|uid>[:<group|gid>])",
    },
    name: { type: "string", arg: "string", help: "Assign a name to the container" },
    entrypoint: {
      type: "string",
      arg: "string",
      help: "Overwrite the default ENTRYPOINT of the image",
    },
    hostname: { type: "string", short: "h", arg: "string", help: "Container host name" },
    "read-only": { type: "boolean", help: "Mount the container's root filesystem as read only" },
    memory: { type: "string", short: "m", arg: "bytes", help: "Memory limit (swap included)" },
    cpus: { type: "string", arg: "decimal", help: "Number of CPUs" },
    "pids-limit": {
      type: "string",
      arg: "int",
      help: "Tune container pids limit (-1 for unlimited)",
    },
    "cap-add": { type: "list", arg: "list", help: "Add Linux capabilities" },
    "cap-drop": { type: "list", arg: "list", help: "Drop Linux capabilities" },
    network: { type: "string", arg: "string", help: "none (default) or host" },
    net: { type: "string", arg: "string", help: "Alias of --network" },
    platform: { type: "string", arg: "string", help: "Platform to pick from an archive" },
    cidfile: { type: "string", arg: "string", help: "Write the container ID to the file" },
  },
  async run({ flags, args }, ctx) {
    if (args.length === 0) throw new UsageError(`"berth run" requires at least 1 argument`);
    const [imageArg, ...cmd] = args;
    const network = (flags.network ?? flags.net) as string | undefined;
    if (network !== undefined && network !== "none" && network !== "host") {
      throw new UsageError(`invalid --network "${network}": berth supports none and host`);
    }
    let pidsLimit: number | undefined;
    if (flags["pids-limit"] !== undefined) {
      pidsLimit = Number(flags["pids-limit"]);
      if (!Number.isInteger(pidsLimit)) {
        throw new UsageError(`invalid argument "${flags["pids-limit"]}" for "--pids-limit" flag`);
      }
    }
    const tty = flags.tty === true;
    const interactive = flags.interactive === true;
    if (tty && !Deno.stdin.isTerminal()) {
      throw new UsageError("the input device is not a TTY");
    }
    const stdio = {
      stdin: interactive ? "inherit" : "null",
      stdout: "inherit",
      stderr: "inherit",
    } as const;
    // The container's init starts now: its Deno start-up overlaps opening the store and the rest.
    const init = prepareInit(containerNamespaces(network as "none" | "host" | undefined), {
      ...stdio,
      ...(tty ? { stdin: "null" as const } : {}),
    });
    let handedOver = false;
    try {
      const store = await ctx.store();
      let imageName = imageArg;
      const archive = /^(docker-archive|oci-archive):(.+)$/.exec(imageArg);
      if (archive) {
        const file = archive[2];
        const stat = await Deno.stat(file).catch(() => undefined);
        if (!stat?.isFile) throw new TypeError(`Cannot load "${file}": no such file`);
        const loaded = await store.load(fileReadable(file), {
          name: file,
          ...(flags.platform ? { platform: parsePlatform(flags.platform as string) } : {}),
        });
        imageName = loaded[0].tags[0] ?? loaded[0].id;
      }
      const options: RunImageOptions = {
        init,
        ...(cmd.length ? { command: cmd } : {}),
        ...(flags.entrypoint !== undefined ? { entrypoint: flags.entrypoint as string } : {}),
        ...(flags.env ? { env: list(flags.env) } : {}),
        ...(flags["env-file"] ? { envFile: await readEnvFiles(list(flags["env-file"])!) } : {}),
        ...(flags.volume ? { volumes: list(flags.volume) } : {}),
        ...(flags.tmpfs ? { tmpfs: list(flags.tmpfs) } : {}),
        ...(flags.workdir !== undefined ? { workdir: flags.workdir as string } : {}),
        ...(flags.user !== undefined ? { user: flags.user as string } : {}),
        ...(flags.name !== undefined ? { name: flags.name as string } : {}),
        ...(flags.hostname !== undefined ? { hostname: flags.hostname as string } : {}),
        ...(flags["read-only"] ? { readOnly: true } : {}),
        ...(flags.memory !== undefined ? { memory: flags.memory as string } : {}),
        ...(flags.cpus !== undefined ? { cpus: flags.cpus as string } : {}),
        ...(pidsLimit !== undefined ? { pidsLimit } : {}),
        ...(flags["cap-add"] ? { capAdd: list(flags["cap-add"]) } : {}),
        ...(flags["cap-drop"] ? { capDrop: list(flags["cap-drop"]) } : {}),
        ...(network ? { network: network as "none" | "host" } : {}),
        ...(flags.rm ? { rm: true } : {}),
        tty,
        interactive,
        ...(tty ? { consoleSize: Deno.consoleSize() } : {}),
        ...stdio,
      };
      const cidfile = flags.cidfile as string | undefined;
      if (cidfile !== undefined) {
        if (await Deno.lstat(cidfile).then(() => true, () => false)) {
          throw new UsageError(
            `container ID file found, make sure the other container isn't running or delete ${cidfile}`,
          );
        }
        options.onCreate = (id) => Deno.writeTextFile(cidfile, id, { createNew: true });
      }
      const timing = Deno.env.get("BERTH_TIMING") !== undefined;
      if (timing) {
        options.timing = true;
        ctx.err(`timing: engine ready to run at ${performance.now().toFixed(1)} ms\n`);
      }
      handedOver = true; // store.run starts or discards it from here on
      const result = await store.run(imageName, options);
      if (timing) {
        ctx.err(
          `timing: ${JSON.stringify(result.timing)}; done at ${performance.now().toFixed(1)} ms\n`,
        );
      }
      return result.exitCode;
    } finally {
      if (!handedOver) await discardInit(init).catch(() => {});
    }
  },
};

/** Reads `--env-file` files (docker's format; a bare `KEY` takes the caller's value). */
async function readEnvFiles(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const path of paths) {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      throw new TypeError(`Cannot read --env-file "${path}": ${(e as Error).message}`);
    }
    out.push(...parseEnvFile(text, (k) => Deno.env.get(k)));
  }
  return out;
}
