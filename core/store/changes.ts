/**
 * `--change` instructions of `docker import` / `docker commit`: the Dockerfile instructions that set
 * image config fields (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME,
 * WORKDIR), applied to a container config.
 *
 * @module
 */
import type { ContainerConfig } from "../oci/types.ts";

function jsonOrShell(rest: string): string[] {
  if (rest.trimStart().startsWith("[")) {
    try {
      const v = JSON.parse(rest);
      if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v;
    } catch { /* shell form */ }
  }
  return ["/bin/sh", "-c", rest];
}

function words(rest: string): string[] {
  if (rest.trimStart().startsWith("[")) {
    try {
      const v = JSON.parse(rest);
      if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v;
    } catch { /* plain words */ }
  }
  return rest.split(/\s+/).filter(Boolean);
}

function unquote(s: string): string {
  return /^".*"$|^'.*'$/.test(s) ? s.slice(1, -1) : s;
}

function pairs(rest: string, what: string): [string, string][] {
  if (!rest.includes("=")) {
    const m = /^(\S+)\s+(.*)$/.exec(rest);
    if (!m) throw new TypeError(`${what} needs a value: "${rest}"`);
    return [[m[1], m[2]]];
  }
  const out: [string, string][] = [];
  for (const m of rest.matchAll(/([^\s=]+)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g)) {
    out.push([m[1], unquote(m[2])]);
  }
  return out;
}

/** Applies one `--change` line to `config` (mutating it). Throws `TypeError` on a bad line. */
export function applyChange(config: ContainerConfig, change: string): void {
  const m = /^\s*(\w+)\s*(.*?)\s*$/s.exec(change);
  if (!m) throw new TypeError(`Invalid --change "${change}"`);
  const [, word, rest] = m;
  const op = word.toUpperCase();
  switch (op) {
    case "CMD":
      config.Cmd = jsonOrShell(rest);
      break;
    case "ENTRYPOINT":
      config.Entrypoint = jsonOrShell(rest);
      break;
    case "ENV": {
      const env = config.Env ?? [];
      for (const [k, v] of pairs(rest, "ENV")) {
        const i = env.findIndex((e) => e.split("=")[0] === k);
        if (i >= 0) env[i] = `${k}=${v}`;
        else env.push(`${k}=${v}`);
      }
      config.Env = env;
      break;
    }
    case "LABEL":
      config.Labels = { ...config.Labels, ...Object.fromEntries(pairs(rest, "LABEL")) };
      break;
    case "EXPOSE":
      for (const p of words(rest)) {
        (config.ExposedPorts ??= {})[p.includes("/") ? p : `${p}/tcp`] = {};
      }
      break;
    case "VOLUME":
      for (const v of words(rest)) (config.Volumes ??= {})[v] = {};
      break;
    case "WORKDIR":
      config.WorkingDir = rest;
      break;
    case "USER":
      config.User = rest;
      break;
    case "STOPSIGNAL":
      config.StopSignal = rest;
      break;
    case "ONBUILD":
      (config.OnBuild ??= []).push(rest);
      break;
    default:
      throw new TypeError(
        `Invalid --change "${change}": ${op} is not one of CMD, ENTRYPOINT, ENV, ` +
          `EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR`,
      );
  }
}
