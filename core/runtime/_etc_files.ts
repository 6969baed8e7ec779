/**
 * The /etc/hosts, /etc/hostname and /etc/resolv.conf the engine writes into the bundle for the
 * container to bind (docker's behaviour for `--network none` and `--network host`).
 *
 * @module
 */

const LOCALHOST = [
  "127.0.0.1\tlocalhost",
  "::1\tlocalhost ip6-localhost ip6-loopback",
  "fe00::0\tip6-localnet",
  "ff00::0\tip6-mcastprefix",
  "ff02::1\tip6-allnodes",
  "ff02::2\tip6-allrouters",
];

function readHost(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

/**
 * The files' contents: `hostNetwork` copies the host's hosts and resolv.conf; otherwise hosts is
 * the loopback table and resolv.conf the host's without loopback name servers (which are not
 * reachable from the container's network namespace), Google's if none remain.
 */
export function etcFiles(hostname: string, hostNetwork: boolean): Record<string, string> {
  const resolv = readHost("/etc/resolv.conf") ?? "";
  if (hostNetwork) {
    return {
      hosts: readHost("/etc/hosts") ?? LOCALHOST.join("\n") + "\n",
      hostname: `${hostname}\n`,
      "resolv.conf": resolv,
    };
  }
  const lines = resolv.split("\n").filter((l) =>
    !/^\s*nameserver\s+(127\.|::1\b|0:0:0:0:0:0:0:1)/.test(l)
  );
  if (!lines.some((l) => /^\s*nameserver\s/.test(l))) {
    lines.push("nameserver 8.8.8.8", "nameserver 8.8.4.4");
  }
  return {
    hosts: LOCALHOST.join("\n") + "\n",
    hostname: `${hostname}\n`,
    "resolv.conf": lines.join("\n").trim() + "\n",
  };
}
