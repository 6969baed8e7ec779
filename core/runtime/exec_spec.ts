/**
 * docker's `exec` flags + the container's runtime spec → the process to run in it
 * ({@linkcode SpecProcess}), with docker's rules: the container's environment (plus `TERM=xterm`
 * with `-t`) under the flags' `-e`, the container's user, working directory, capabilities,
 * rlimits and no_new_privs unless `-u` / `-w` say otherwise. A `-u` name is resolved in the
 * running container's own /etc/passwd and /etc/group, read through its root with every symlink
 * resolved inside it.
 *
 * @module
 */
import { flagEnv, mergeEnv, parseEnvFile } from "./_env.ts";
import { resolveUser } from "./_user.ts";
import { normalizePath } from "./_path.ts";
import { readContainerFile } from "./_container_file.ts";
import type { RuntimeSpec, SpecProcess } from "./spec_types.ts";

/** docker's `exec` flags, as values. */
export interface ExecProcessOptions {
  /** The command and its arguments (`args[0]` looked up in the process's `PATH`). */
  command: readonly string[];
  /** `-e K=V` (or `-e K`: taken from `callerEnv`, removed when absent there). */
  env?: readonly string[];
  /** `--env-file`: a path to read, or its already parsed `K=V` lines. Applied before `env`. */
  envFile?: string | readonly string[];
  /** The caller's environment for `-e K` and bare env-file keys (default: `Deno.env`). */
  callerEnv?: Readonly<Record<string, string>>;
  /** `-u name|uid[:group|gid]` (default: the container's user). */
  user?: string;
  /** `-w`: absolute working directory (default: the container's). */
  workdir?: string;
  /** `-t`: allocate a pseudo-terminal. */
  tty?: boolean;
  /** `-i`: keep stdin open (the exec's stdin option; no effect on the process). */
  interactive?: boolean;
  /** Initial terminal size for `-t`. */
  consoleSize?: { rows: number; columns: number };
  /**
   * Host pid of the container's first process: `user` is resolved in its root's /etc/passwd and
   * /etc/group (required with a `user`).
   */
  pid?: number;
  /** The container's /etc/passwd and /etc/group texts, instead of reading them through `pid`. */
  userFiles?: { passwd?: string; group?: string };
}

/**
 * The process `docker exec` would run in the container of `spec` (its saved config.json) for
 * `options`. TypeError for an empty command or a relative workdir; NotFoundError for a user or
 * group the container does not know by name.
 *
 * @example
 * ```ts
 * import { execProcess } from "./exec_spec.ts";
 * const spec = {
 *   ociVersion: "1.0.2",
 *   root: { path: "rootfs" },
 *   process: { args: ["sleep", "60"], cwd: "/", user: { uid: 0, gid: 0 }, env: ["PATH=/bin"] },
 * };
 * const p = execProcess(spec, { command: ["ls"], env: ["A=1"], workdir: "/tmp", tty: true });
 * console.log(p.args, p.env, p.cwd, p.terminal); // ["ls"] ["PATH=/bin", "TERM=xterm", "A=1"] /tmp true
 * ```
 */
export function execProcess(spec: RuntimeSpec, options: ExecProcessOptions): SpecProcess {
  const base = spec.process;
  if (!options.command.length || options.command[0] === "") {
    throw new TypeError("exec needs a command");
  }
  const cwd = options.workdir === undefined || options.workdir === "" ? base.cwd : options.workdir;
  if (!cwd.startsWith("/")) {
    throw new TypeError(
      `the working directory '${cwd}' is invalid, it needs to be an absolute path`,
    );
  }

  let callerEnv = options.callerEnv;
  const lookup = (k: string) => (callerEnv ??= Deno.env.toObject())[k];
  let env = [...(base.env ?? [])];
  if (options.tty && !env.some((e) => e.startsWith("TERM="))) env.push("TERM=xterm");

  let user = base.user;
  if (options.user !== undefined && options.user !== "") {
    const files = options.userFiles ?? (() => {
      if (options.pid === undefined) throw new TypeError("exec: a user needs the container's pid");
      return {
        passwd: readContainerFile(options.pid, "/etc/passwd"),
        group: readContainerFile(options.pid, "/etc/group"),
      };
    })();
    const resolved = resolveUser(options.user, files);
    user = {
      uid: resolved.uid,
      gid: resolved.gid,
      ...(resolved.additionalGids.length ? { additionalGids: resolved.additionalGids } : {}),
      ...(base.user.umask !== undefined ? { umask: base.user.umask } : {}),
    };
    // HOME that came from the container's user (not from the image or a flag) follows the user
    const runHome = homeOf(base.user.uid, files.passwd);
    const i = env.findIndex((e) => e.startsWith("HOME="));
    if (i >= 0 && env[i] === `HOME=${runHome}`) env[i] = `HOME=${resolved.home}`;
  }

  const fileEnv = options.envFile === undefined
    ? []
    : typeof options.envFile === "string"
    ? parseEnvFile(Deno.readTextFileSync(options.envFile), lookup)
    : [...options.envFile];
  // docker's ReplaceOrAppendEnvValues, in turn: a bare K removes K from what came before
  env = mergeEnv(mergeEnv(env, fileEnv), flagEnv(options.env ?? [], lookup));

  const process: SpecProcess = {
    terminal: options.tty ?? false,
    ...(options.tty && options.consoleSize
      ? { consoleSize: { height: options.consoleSize.rows, width: options.consoleSize.columns } }
      : {}),
    user,
    args: [...options.command],
    env,
    cwd: normalizePath(cwd),
    ...(base.capabilities ? { capabilities: structuredClone(base.capabilities) } : {}),
    ...(base.rlimits ? { rlimits: structuredClone(base.rlimits) } : {}),
    noNewPrivileges: base.noNewPrivileges ?? false,
  };
  return process;
}

function homeOf(uid: number, passwd: string | undefined): string {
  try {
    return resolveUser(String(uid), { passwd }).home;
  } catch {
    return "/";
  }
}
