/**
 * `berth exec [-i] [-t] [-e K=V] [--env-file F] [-u USER] [-w DIR] CONTAINER COMMAND [ARG...]`:
 * a process in a running container, with the container's namespaces, cgroup, capabilities and
 * no_new_privs. Exit status: the command's; 126/127 when it cannot be run; 125 for berth's errors.
 *
 * @module
 */
import { UsageError } from "./_args.ts";
import type { Command } from "./_command.ts";
import { parseEnvFile } from "../runtime/spec.ts";
import { discardExec, prepareExec } from "../runtime/prepare_exec.ts";
import { ContainerStartError } from "../runtime/start_error.ts";
import { terminalSize } from "./_io.ts";

/** The `exec` command. */
export const command: Command = {
  usage: "[OPTIONS] CONTAINER COMMAND [ARG...]",
  summary: "Execute a command in a running container",
  stopAtPositional: true,
  flags: {
    interactive: { type: "boolean", short: "i", help: "Keep STDIN open" },
    tty: { type: "boolean", short: "t", help: "Allocate a pseudo-TTY" },
    env: { type: "list", short: "e", arg: "list", help: "Set environment variables" },
    "env-file": { type: "list", arg: "list", help: "Read in a file of environment variables" },
    user: {
      type: "string",
      short: "u",
      arg: "string",
      help: "Username or UID (format: <name|uid>[:<group|gid>])",
    },
    workdir: {
      type: "string",
      short: "w",
      arg: "string",
      help: "Working directory inside the container",
    },
  },
  async run({ flags, args }, ctx) {
    if (args.length < 2) throw new UsageError(`"berth exec" requires at least 2 arguments`);
    const [name, ...cmd] = args;
    const tty = flags.tty === true;
    const interactive = flags.interactive === true;
    if (tty && interactive && !Deno.stdin.isTerminal()) {
      throw new UsageError("the input device is not a TTY");
    }
    const store = await ctx.store();
    const container = await store.container(name);
    const { pid, pidStart } = container.record.state;
    if (container.record.state.status !== "running" || pid === undefined) {
      throw new ContainerStartError(`Container ${container.id.slice(0, 12)} is not running`, 125);
    }
    const stdio = {
      stdin: interactive && !tty ? "inherit" : "null",
      stdout: "inherit",
      stderr: "inherit",
    } as const;
    // The exec's init starts now (its Deno start-up overlaps reading the container's spec), or,
    // where it can, this process's own thread starts the command (one process, nothing else
    // executed afterwards: see core/runtime/_direct.ts).
    const init = prepareExec(
      { pid, ...(pidStart ? { startTime: pidStart } : {}), name },
      stdio,
      { direct: true, terminal: tty },
    );
    let envFile: string[] | undefined;
    try {
      for (const path of (flags["env-file"] as string[] | undefined) ?? []) {
        const text = await Deno.readTextFile(path).catch((e) => {
          throw new TypeError(`Cannot read --env-file "${path}": ${(e as Error).message}`);
        });
        (envFile ??= []).push(...parseEnvFile(text, (k) => Deno.env.get(k)));
      }
    } catch (e) {
      await discardExec(init).catch(() => {});
      throw e;
    }
    const timing = Deno.env.get("BERTH_TIMING") !== undefined;
    const result = await container.exec({
      command: cmd,
      init,
      ...(timing ? { timing } : {}),
      ...(flags.env ? { env: flags.env as string[] } : {}),
      ...(envFile ? { envFile } : {}),
      ...(flags.user !== undefined ? { user: flags.user as string } : {}),
      ...(flags.workdir !== undefined ? { workdir: flags.workdir as string } : {}),
      tty,
      interactive,
      ...(tty ? terminalSize() : {}),
      stdin: interactive ? "inherit" : "null",
      stdout: "inherit",
      stderr: "inherit",
    });
    if (timing) {
      ctx.err(
        `timing: ${JSON.stringify(result.timing)}; done at ${performance.now().toFixed(1)} ms\n`,
      );
    }
    return result.exitCode;
  },
};
