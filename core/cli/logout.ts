/**
 * `berth logout [SERVER]`: removes the credentials of a registry (default Docker Hub) from docker's
 * `config.json` and its credential helper.
 *
 * @module
 */
import { UsageError } from "./_args.ts";
import type { Command } from "./_command.ts";

/** The `logout` command. */
export const command: Command = {
  usage: "[SERVER]",
  summary: "Log out from a registry (default Docker Hub)",
  flags: {},
  async run({ args }, ctx) {
    if (args.length > 1) throw new UsageError(`"berth logout" requires at most 1 argument`);
    const { credentialKey, eraseCredentials } = await import("../auth/credentials.ts");
    const key = credentialKey(args[0] ?? "docker.io");
    if (await eraseCredentials(key)) ctx.out(`Removing login credentials for ${key}\n`);
    else ctx.out(`Not logged in to ${key}\n`);
    return 0;
  },
};
