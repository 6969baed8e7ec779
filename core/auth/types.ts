/**
 * Credential types shared by the registry client and the docker config reader.
 *
 * @module
 */

/**
 * Credentials for one registry, as docker keeps them.
 *
 * @example
 * ```ts
 * import type { RegistryCredentials } from "@berth/berth";
 * const basic: RegistryCredentials = { username: "me", password: "secret" };
 * const oauth: RegistryCredentials = { identityToken: "refresh-token-from-login" };
 * ```
 */
export interface RegistryCredentials {
  /** User name (Basic auth, or the token service's Basic auth). */
  username?: string;
  /** Password or personal access token. */
  password?: string;
  /** OAuth2 refresh token (docker's `identitytoken`), traded at the token service. */
  identityToken?: string;
  /** A bearer token sent as it is (docker's `registrytoken`). */
  registryToken?: string;
}

/**
 * Looks up the credentials for a registry `host[:port]` (`registry-1.docker.io` is Docker
 * Hub); resolves `undefined` for anonymous access.
 *
 * @example
 * ```ts
 * import type { CredentialSource } from "@berth/berth";
 * const fixed: CredentialSource = (host) =>
 *   Promise.resolve(host === "127.0.0.1:5000" ? { username: "u", password: "p" } : undefined);
 * ```
 */
export type CredentialSource = (host: string) => Promise<RegistryCredentials | undefined>;
