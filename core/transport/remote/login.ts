/**
 * Checking credentials against a registry, as `docker login` does: `GET /v2/`, then the
 * challenge it answers with (Basic: the same request with the credentials; Bearer: a token from
 * the token service, then `GET /v2/` with it).
 *
 * @module
 */
import type { RegistryCredentials } from "../../auth/types.ts";
import { basicAuthorization, errorDetail, fetchToken, pickChallenge } from "./auth.ts";
import type { Endpoint } from "./config.ts";
import { RegistryAuthError, RegistryError } from "./errors.ts";
import { DEFAULT_TIMEOUTS, type HttpTimeouts, readAll, send } from "./http.ts";

/** Options of {@linkcode verifyLogin}. */
export interface VerifyLoginOptions {
  timeouts?: HttpTimeouts;
  signal?: AbortSignal;
}

/**
 * Resolves when `endpoint` accepts `creds`; throws `RegistryAuthError` (`unauthorized: incorrect
 * username or password`) when it does not, `RegistryError` when it cannot be asked.
 */
export async function verifyLogin(
  endpoint: Endpoint,
  creds: RegistryCredentials,
  options: VerifyLoginOptions = {},
): Promise<void> {
  const what = `Cannot log in to ${endpoint.host}`;
  const common = {
    timeouts: options.timeouts ?? DEFAULT_TIMEOUTS,
    ...(options.signal ? { signal: options.signal } : {}),
  };
  const ping = async (authorization?: string) => {
    const ex = await send(`${endpoint.base}/v2/`, {
      ...common,
      what: `${what}: GET /v2/`,
      headers: authorization ? { authorization } : {},
    });
    const body = await readAll(ex, 64 << 10, () => new Error("large")).catch(() =>
      new Uint8Array()
    );
    return { response: ex.response, body };
  };
  const first = await ping();
  if (first.response.status === 200) return; // no authentication at all
  if (first.response.status !== 401) {
    throw new RegistryError(
      `${what}: GET /v2/ answered ${first.response.status} ${first.response.statusText}`.trimEnd(),
      { status: first.response.status },
    );
  }
  const challenge = pickChallenge(first.response.headers.get("www-authenticate"));
  if (!challenge) {
    throw new RegistryError(
      `${what}: the registry asks for an authentication scheme berth does not speak`,
    );
  }
  let authorization: string;
  if (challenge.scheme === "basic") {
    authorization = basicAuthorization(creds.username ?? "", creds.password ?? "");
  } else if (creds.registryToken) {
    authorization = `Bearer ${creds.registryToken}`;
  } else {
    const { token } = await fetchToken(challenge, undefined, creds, {
      what: "Cannot log in",
      host: endpoint.host,
      ...common,
    });
    authorization = `Bearer ${token}`;
  }
  const second = await ping(authorization);
  if (second.response.status === 200) return;
  const detail = errorDetail(second.body);
  if (second.response.status === 401 || second.response.status === 403) {
    throw new RegistryAuthError(
      `${what}: unauthorized: incorrect username or password${detail ? ` (${detail})` : ""}`,
      { status: second.response.status },
    );
  }
  throw new RegistryError(
    `${what}: GET /v2/ answered ${second.response.status}${detail ? `: ${detail}` : ""}`,
    { status: second.response.status },
  );
}
