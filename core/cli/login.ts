/**
 * `berth login [-u USER] [-p PASS | --password-stdin] [SERVER]`: checks the credentials against
 * the registry (default Docker Hub), then saves them in docker's `config.json` (or its credential
 * helper), as `docker login` does.
 *
 * @module
 */
import { UsageError } from "./_args.ts";
import type { Command } from "./_command.ts";
import { stdinReadable } from "./_io.ts";

async function readStdin(): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const c of stdinReadable()) chunks.push(c);
  return new TextDecoder().decode(await new Blob(chunks as BlobPart[]).arrayBuffer());
}

/** Reads one line from the terminal; without echo for a password. */
async function prompt(label: string, echo: boolean, err: (t: string) => void): Promise<string> {
  err(label);
  if (!echo) Deno.stdin.setRaw(true);
  try {
    const buf = new Uint8Array(1);
    const bytes: number[] = [];
    while (true) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      const b = buf[0];
      if (b === 3) throw new UsageError("interrupted");
      if (b === 10 || b === 13) break;
      if (b === 127 || b === 8) {
        bytes.pop();
        continue;
      }
      bytes.push(b);
    }
    return new TextDecoder().decode(new Uint8Array(bytes));
  } finally {
    if (!echo) {
      Deno.stdin.setRaw(false);
      err("\n");
    }
  }
}

/** The `login` command. */
export const command: Command = {
  usage: "[OPTIONS] [SERVER]",
  summary: "Log in to a registry (default Docker Hub)",
  flags: {
    username: { type: "string", short: "u", arg: "USER", help: "Username" },
    password: { type: "string", short: "p", arg: "PASS", help: "Password" },
    "password-stdin": { type: "boolean", help: "Take the password from stdin" },
  },
  async run({ flags, args }, ctx) {
    if (args.length > 1) throw new UsageError(`"berth login" requires at most 1 argument`);
    const server = args[0] ?? "docker.io";
    const [
      { credentialKey, getCredentials, storeCredentials },
      { loadRegistryConfig, registryEndpoints },
      { verifyLogin },
      { DEFAULT_ROOT },
    ] = await Promise.all([
      import("../auth/credentials.ts"),
      import("../transport/remote/config.ts"),
      import("../transport/remote/login.ts"),
      import("../store/store.ts"),
    ]);
    const key = credentialKey(server);
    const domain = key === "https://index.docker.io/v1/" ? "docker.io" : key;
    let username = flags.username as string | undefined;
    let password = flags.password as string | undefined;
    if (password !== undefined && flags["password-stdin"]) {
      throw new UsageError("--password and --password-stdin are mutually exclusive");
    }
    if (flags["password-stdin"]) {
      if (username === undefined) {
        throw new UsageError("Must provide --username with --password-stdin");
      }
      password = (await readStdin()).replace(/\r?\n$/, "");
    } else if (password !== undefined) {
      ctx.err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n");
    }
    const root = ctx.root ?? Deno.env.get("BERTH_ROOT") ?? DEFAULT_ROOT;
    const config = await loadRegistryConfig(root);
    const endpoint = registryEndpoints(domain, config).at(-1)!;
    const timeouts = {
      responseMs: (config.timeouts?.response ?? 30) * 1000,
      idleMs: (config.timeouts?.idle ?? 60) * 1000,
    };

    if (username === undefined && password === undefined) {
      const existing = await getCredentials(key);
      if (existing && (existing.username || existing.identityToken)) {
        ctx.out("Authenticating with existing credentials...\n");
        try {
          await verifyLogin(endpoint, existing, { timeouts });
          ctx.out("Login Succeeded\n");
          return 0;
        } catch (e) {
          ctx.err(`Login did not succeed, error: ${(e as Error).message}\n`);
          if (!Deno.stdin.isTerminal()) throw e;
        }
      }
    }
    if (username === undefined || password === undefined) {
      if (!Deno.stdin.isTerminal()) {
        throw new UsageError("Cannot perform an interactive login from a non TTY device");
      }
      username ??= (await prompt("Username: ", true, ctx.err)).trim();
      password ??= await prompt("Password: ", false, ctx.err);
    }
    if (username === "") throw new UsageError("Error: Non-null Username Required");
    if (password === "") throw new UsageError("Error: Non-null Password Required");
    await verifyLogin(endpoint, { username, password }, { timeouts });
    const stored = await storeCredentials(key, { username, password });
    if (!stored.helper) {
      ctx.err(
        `WARNING! Your password will be stored unencrypted in ${stored.path}.\n` +
          `Configure a credential helper to remove this warning. See\n` +
          `https://docs.docker.com/engine/reference/commandline/login/#credential-stores\n\n`,
      );
    }
    ctx.out("Login Succeeded\n");
    return 0;
  },
};
