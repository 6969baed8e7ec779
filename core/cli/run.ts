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
import type { CreateContainerOptions } from "../store/containers.ts";
import type { RestartPolicy } from "../metadata/container_db.ts";
import type { Store } from "../store/store.ts";
import type { ParsedArgs } from "./_args.ts";
import type { CliContext } from "./_command.ts";
import { terminalSize } from "./_io.ts";
import { NotFoundError } from "../errors.ts";
import { registryConfig } from "./_registries.ts";
import { familiarString, parseReference } from "../reference.ts";
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
    detach: {
      type: "boolean",
      short: "d",
      help: "Run container in background and print container ID",
    },
    pull: {
      type: "string",
      arg: "string",
      help: 'Pull image before running ("always", "missing", "never") (default "missing")',
    },
    "insecure-registry": {
      type: "list",
      arg: "HOST[:PORT]",
      help: "Reach this registry over plain HTTP when pulling (also: registries.json)",
    },
    restart: {
      type: "string",
      arg: "string",
      help: "no, on-failure[:N], always, unless-stopped (honoured by the container's supervisor)",
    },
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
    const detach = flags.detach === true;
    const tty = flags.tty === true;
    const interactive = flags.interactive === true;
    // docker refuses only -it without a terminal; -t alone allocates a pty all the same.
    if (tty && interactive && !detach && !Deno.stdin.isTerminal()) {
      throw new UsageError("the input device is not a TTY");
    }
    const restart = flags.restart === undefined ? undefined : parseRestart(flags.restart as string);
    const pull = (flags.pull as string | undefined) ?? "missing";
    if (pull !== "always" && pull !== "missing" && pull !== "never") {
      throw new UsageError(`invalid --pull "${pull}": use always, missing or never`);
    }
    if (restart && restart.name !== "no" && flags.rm) {
      throw new UsageError("Conflicting options: --restart and --rm");
    }
    if (detach) {
      return await runDetached(imageArg, cmd, flags, ctx, { network, pidsLimit, restart });
    }
    const stdio = {
      stdin: interactive ? "inherit" : "null",
      stdout: "inherit",
      stderr: "inherit",
    } as const;
    // A container that outlives the run (no --rm) keeps its output for `berth logs`: berth then
    // copies it to the terminal and the log, so the init's stdout and stderr are pipes.
    const log = flags.rm !== true;
    // The container's init starts now (its Deno start-up overlaps opening the store and the
    // rest), or, where it can, this process's own thread starts the container later: it starts
    // one container and executes nothing else (see core/runtime/_direct.ts).
    const init = prepareInit(containerNamespaces(network as "none" | "host" | undefined), {
      ...stdio,
      ...(tty ? { stdin: "null" as const } : {}),
      ...(log ? { stdout: "piped" as const, stderr: "piped" as const } : {}),
    }, { terminal: tty, direct: true });
    let handedOver = false;
    try {
      const store = await ctx.store();
      const imageName = await resolveArchive(store, imageArg, flags);
      await ensureImage(store, imageName, imageArg !== imageName, flags, ctx);
      const options: RunImageOptions = {
        init,
        ...(await containerOptions(cmd, flags, { network, pidsLimit, restart })),
        ...stdio,
        log,
      };
      const cidfile = flags.cidfile as string | undefined;
      if (cidfile !== undefined) {
        await refuseExistingCidfile(cidfile);
        options.onCreate = (id) => writeCidfile(cidfile, id);
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

/** docker's refusal of an existing `--cidfile`. */
async function refuseExistingCidfile(path: string): Promise<void> {
  if (await Deno.lstat(path).then(() => true, () => false)) {
    throw new UsageError(
      `container ID file found, make sure the other container isn't running or delete ${path}`,
    );
  }
}

/** Writes `--cidfile` (never over an existing file); one-line error naming it. */
async function writeCidfile(path: string, id: string): Promise<void> {
  try {
    await Deno.writeTextFile(path, id, { createNew: true });
  } catch (e) {
    throw new TypeError(`Cannot write --cidfile "${path}": ${(e as Error).message.split(":")[0]}`);
  }
}

/** Parses `--restart no|on-failure[:N]|always|unless-stopped`. */
export function parseRestart(value: string): RestartPolicy {
  const m = /^(no|always|unless-stopped|on-failure)(?::(\d+))?$/.exec(value);
  if (!m || (m[2] !== undefined && m[1] !== "on-failure")) {
    throw new UsageError(
      `invalid restart policy "${value}": use no, on-failure[:N], always or unless-stopped`,
    );
  }
  return {
    name: m[1] as RestartPolicy["name"],
    ...(m[2] !== undefined ? { maximumRetryCount: Number(m[2]) } : {}),
  };
}

/** The container options the flags describe (shared by foreground and detached runs). */
async function containerOptions(
  cmd: string[],
  flags: ParsedArgs["flags"],
  extra: { network?: string; pidsLimit?: number; restart?: RestartPolicy },
): Promise<CreateContainerOptions> {
  const tty = flags.tty === true;
  return {
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
    ...(extra.pidsLimit !== undefined ? { pidsLimit: extra.pidsLimit } : {}),
    ...(flags["cap-add"] ? { capAdd: list(flags["cap-add"]) } : {}),
    ...(flags["cap-drop"] ? { capDrop: list(flags["cap-drop"]) } : {}),
    ...(extra.network ? { network: extra.network as "none" | "host" } : {}),
    ...(flags.rm ? { rm: true } : {}),
    ...(extra.restart ? { restart: extra.restart } : {}),
    tty,
    interactive: flags.interactive === true,
    ...(tty ? terminalSize() : {}),
  };
}

/** `run -d`: create, start under a supervisor, print the id. */
async function runDetached(
  imageArg: string,
  cmd: string[],
  flags: ParsedArgs["flags"],
  ctx: CliContext,
  extra: { network?: string; pidsLimit?: number; restart?: RestartPolicy },
): Promise<number> {
  const store = await ctx.store();
  const imageName = await resolveArchive(store, imageArg, flags);
  await ensureImage(store, imageName, imageArg !== imageName, flags, ctx);
  const cidfile = flags.cidfile as string | undefined;
  if (cidfile !== undefined) await refuseExistingCidfile(cidfile);
  const container = await store.create(imageName, await containerOptions(cmd, flags, extra));
  try {
    if (cidfile !== undefined) await writeCidfile(cidfile, container.id);
    await container.start();
  } catch (e) {
    // Nothing half-made stays: a container that never ran goes (as with --rm).
    if (flags.rm || container.record.state.status === "created") {
      await container.remove({ force: true }).catch(() => {});
    }
    throw e;
  }
  ctx.out(`${container.id}\n`);
  return 0;
}

/**
 * `--pull missing` (default): pulls the image when the store lacks it, saying so as docker does;
 * `always` pulls first; `never` leaves it to the run to report a missing image. Progress goes to
 * stderr, so that the container's stdout stays its own.
 */
async function ensureImage(
  store: Store,
  name: string,
  fromArchive: boolean,
  flags: ParsedArgs["flags"],
  ctx: CliContext,
): Promise<void> {
  const policy = (flags.pull as string | undefined) ?? "missing";
  if (policy === "never" || fromArchive) return;
  if (policy === "missing") {
    try {
      await store.resolve(name);
      return;
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
    }
    let ref;
    try {
      ref = parseReference(name);
    } catch {
      return; // not a name a registry could serve: the run reports "No such image"
    }
    ctx.err(`Unable to find image '${familiarString(ref)}' locally\n`);
  }
  const { PullProgress } = await import("./_progress.ts");
  const tty = Deno.stderr.isTerminal();
  let columns = 80;
  try {
    columns = Deno.consoleSize().columns;
  } catch { /* not a terminal */ }
  const progress = new PullProgress({ out: ctx.err, tty, columns });
  const image = await store.pull(name, {
    registries: await registryConfig(store, flags["insecure-registry"] as string[] | undefined),
    ...(flags.platform ? { platform: parsePlatform(flags.platform as string) } : {}),
    onProgress: (e) => progress.handle(e),
  });
  ctx.err(`Digest: ${image.digest}\n`);
  ctx.err(
    `Status: ${
      image.upToDate ? "Image is up to date" : "Downloaded newer image"
    } for ${image.name}\n`,
  );
}

/** `docker-archive:FILE` / `oci-archive:FILE`: loaded (verified) first; the image name to run. */
async function resolveArchive(
  store: Store,
  imageArg: string,
  flags: ParsedArgs["flags"],
): Promise<string> {
  const archive = /^(docker-archive|oci-archive):(.+)$/.exec(imageArg);
  if (!archive) return imageArg;
  const file = archive[2];
  const stat = await Deno.stat(file).catch(() => undefined);
  if (!stat?.isFile) throw new TypeError(`Cannot load "${file}": no such file`);
  const loaded = await store.load(fileReadable(file), {
    name: file,
    ...(flags.platform ? { platform: parsePlatform(flags.platform as string) } : {}),
  });
  return loaded[0].tags[0] ?? loaded[0].id;
}

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
