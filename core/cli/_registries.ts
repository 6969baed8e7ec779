/**
 * The registry configuration of a CLI command: the config file (`<root>/registries.json` or
 * `/etc/berth/registries.json`) plus `--insecure-registry` flags.
 *
 * @module
 */
import type { Store } from "../store/store.ts";
import type { RegistryConfig } from "../transport/remote/config.ts";

/** Loads the config file and adds the `--insecure-registry` hosts given on the command line. */
export async function registryConfig(
  store: Store,
  insecure: readonly string[] | undefined,
): Promise<RegistryConfig> {
  const { loadRegistryConfig } = await import("../transport/remote/config.ts");
  const config = await loadRegistryConfig(store.root);
  if (!insecure?.length) return config;
  return { ...config, insecure: [...(config.insecure ?? []), ...insecure] };
}
