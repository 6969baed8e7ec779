/**
 * Image config + docker-style run options → OCI runtime spec, with docker's defaults: the default
 * capability set, masked and read-only paths, the standard mounts, devices, rlimits and
 * environment. Pure logic except for reading /etc/passwd and /etc/group of the rootfs (for `user`),
 * an env file given by path, the existence of volume sources and the host's open-files limit.
 *
 * @module
 */
import type { ImageConfig } from "../oci/types.ts";
import { InvalidInputError, NotFoundError, UnsupportedError } from "../errors.ts";
import type {
  RuntimeSpec,
  SpecDeviceCgroup,
  SpecMount,
  SpecNamespace,
  SpecResources,
} from "./spec_types.ts";
import { CAPABILITY_NAMES, DEFAULT_CAPABILITIES } from "./_capabilities.ts";
import { flagEnv, mergeEnv, parseEnvFile } from "./_env.ts";
import { readRootfsFile } from "./_rootfs_file.ts";
import { resolveUser } from "./_user.ts";
import { normalizePath } from "./_path.ts";

export { parseEnvFile };

/** A root filesystem's /etc/passwd and /etc/group texts (absent: undefined). */
export interface UserFiles {
  passwd?: string;
  group?: string;
}

/**
 * The /etc/passwd and /etc/group of `rootfs` (a directory, or overlay lowerdirs, top-most first),
 * read without following any of its links outside it (`_rootfs_file.ts`).
 */
export function readUserFiles(rootfs: string | readonly string[]): UserFiles {
  const layers = typeof rootfs === "string" ? [rootfs] : rootfs;
  if (!layers.length) return {};
  return {
    passwd: readRootfsFile(layers, "/etc/passwd"),
    group: readRootfsFile(layers, "/etc/group"),
  };
}

/** Docker's `run` flags, as values. */
export interface RunOptions {
  /** Container id (letters, digits, `_.-`; docker uses 64 hex). The default hostname is its first 12 characters. */
  id: string;
  /** Directory of the bundle, where the engine writes hosts, hostname and resolv.conf to bind. */
  bundleDir?: string;
  /**
   * The rootfs, to resolve `user` in its /etc/passwd and /etc/group: a directory, or overlay
   * lowerdirs (top-most first).
   */
  rootfs?: string | readonly string[];
  /** The rootfs's /etc/passwd and /etc/group texts, instead of reading them from `rootfs`. */
  userFiles?: UserFiles;
  /** Arguments after the image name: replace the image's `Cmd`. */
  command?: readonly string[];
  /** `--entrypoint`: replaces the image's `Entrypoint` and drops its `Cmd`; `""` clears it. */
  entrypoint?: string | readonly string[];
  /** `-e K=V` (or `-e K`: taken from `callerEnv`, removed when absent there). */
  env?: readonly string[];
  /** `--env-file`: a path to read, or its already parsed `K=V` lines. Applied before `env`. */
  envFile?: string | readonly string[];
  /** The caller's environment for `-e K` and bare env-file keys (default: `Deno.env`). */
  callerEnv?: Readonly<Record<string, string>>;
  /** `-w`: absolute working directory. */
  workdir?: string;
  /** `-u name|uid[:group|gid]`. */
  user?: string;
  /** `-h`: host name. */
  hostname?: string;
  /** `--read-only`: read-only root filesystem. */
  readOnly?: boolean;
  /** `--tmpfs /path[:opts]`. */
  tmpfs?: readonly string[];
  /** `-v SRC:DST[:ro|rw]`: bind mounts; SRC absolute and existing. */
  volumes?: readonly string[];
  /** `-m`: memory limit, bytes or docker units (`b`, `k`, `m`, `g`); swap is not allowed on top. */
  memory?: string | number;
  /** `--cpus`: CPU bandwidth in CPUs (period 100000 µs). */
  cpus?: string | number;
  /** `--pids-limit` (0 or -1 = unlimited). */
  pidsLimit?: number;
  /** `--cap-add` (docker names, with or without `CAP_`, or `ALL`). */
  capAdd?: readonly string[];
  /** `--cap-drop` (docker names, with or without `CAP_`, or `ALL`). */
  capDrop?: readonly string[];
  /** `--network none|host` (default none: a network namespace with only `lo`). */
  network?: "none" | "host";
  /** `-t`: allocate a pseudo-terminal. */
  tty?: boolean;
  /** `-i`: keep stdin open (the runtime's stdin option; no effect on the spec). */
  interactive?: boolean;
  /** Initial terminal size for `-t`. */
  consoleSize?: { rows: number; columns: number };
  /** Parent of the container's cgroup (default `berth`, relative to the engine's own cgroup). */
  cgroupParent?: string;
  /** The host's hard limit of open files (default: read from /proc/self/limits). */
  nofileHardLimit?: number;
  /** Number of host CPUs, the maximum of `cpus` (default: `navigator.hardwareConcurrency`). */
  hostCpus?: number;
}

/** `PATH` when the image sets none. */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Docker's masked paths. */
export const DEFAULT_MASKED_PATHS: readonly string[] = [
  "/proc/asound",
  "/proc/acpi",
  "/proc/interrupts",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
];

/** Docker's read-only paths. */
export const DEFAULT_READONLY_PATHS: readonly string[] = [
  "/proc/bus",
  "/proc/fs",
  "/proc/irq",
  "/proc/sys",
  "/proc/sysrq-trigger",
];

const NOFILE = 1048576;
const CPU_PERIOD = 100000;
const MIN_MEMORY = 6 * 1024 * 1024;

// deny everything, then allow mknod of any device and use of the nodes /dev holds (runc's list)
const DEVICE_RULES: SpecDeviceCgroup[] = [
  { allow: false, access: "rwm" },
  { allow: true, type: "c", access: "m" },
  { allow: true, type: "b", access: "m" },
  ...[[1, 3], [1, 5], [1, 7], [1, 8], [1, 9], [5, 0], [5, 1], [5, 2]].map(([major, minor]) => ({
    allow: true,
    type: "c",
    major,
    minor,
    access: "rwm",
  })),
  { allow: true, type: "c", major: 136, access: "rwm" },
];

/**
 * Builds the OCI runtime spec of a container of `image` run with `options`, as `docker run` would.
 * TypeError/RangeError for malformed flags; NotFoundError for a user, group or volume source that
 * does not exist; InvalidInputError when no command results.
 */
export function createSpec(image: ImageConfig, options: RunOptions): RuntimeSpec {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(options.id)) {
    throw new TypeError(`Invalid container id: ${JSON.stringify(options.id)}`);
  }
  const config = image.config ?? {};
  const hostname = options.hostname ?? options.id.slice(0, 12);
  if (!hostname || hostname.length > 64 || /[\s/\0]/.test(hostname)) {
    throw new TypeError(`Invalid hostname: ${JSON.stringify(hostname)}`);
  }

  const args = commandLine(config.Entrypoint, config.Cmd, options);
  const files = options.userFiles ??
    (options.rootfs === undefined ? {} : readUserFiles(options.rootfs));
  const user = resolveUser(options.user ?? config.User ?? "", files);

  const cwd = options.workdir ?? (config.WorkingDir || "/");
  if (!cwd.startsWith("/")) {
    throw new TypeError(
      `the working directory '${cwd}' is invalid, it needs to be an absolute path`,
    );
  }

  const env = environment(config.Env ?? [], hostname, user.home, options);
  const caps = capabilities(options.capAdd ?? [], options.capDrop ?? []);
  const nofile = Math.min(NOFILE, options.nofileHardLimit ?? hostNofileHardLimit());
  const network = options.network ?? "none";
  if (network !== "none" && network !== "host") {
    throw new UnsupportedError(`network mode not supported: ${network}`);
  }

  const spec: RuntimeSpec = {
    ociVersion: "1.0.2",
    process: {
      terminal: options.tty ?? false,
      ...(options.tty && options.consoleSize
        ? { consoleSize: { height: options.consoleSize.rows, width: options.consoleSize.columns } }
        : {}),
      user: {
        uid: user.uid,
        gid: user.gid,
        ...(user.additionalGids.length ? { additionalGids: user.additionalGids } : {}),
      },
      args,
      env,
      cwd: normalizePath(cwd),
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: nofile, soft: nofile }],
      noNewPrivileges: true,
    },
    root: { path: "rootfs", readonly: options.readOnly ?? false },
    hostname,
    mounts: mounts(options),
    linux: {
      namespaces: containerNamespaces(network),
      resources: resources(options),
      cgroupsPath: `${options.cgroupParent ?? "berth"}/${options.id}`,
      maskedPaths: [...DEFAULT_MASKED_PATHS],
      readonlyPaths: [...DEFAULT_READONLY_PATHS],
    },
  };
  return spec;
}

/**
 * The namespaces of a container on `network` (what `createSpec` puts in `linux.namespaces`), e.g.
 * for `prepareInit` before the spec exists.
 */
export function containerNamespaces(network: "none" | "host" = "none"): SpecNamespace[] {
  return [
    { type: "pid" },
    { type: "ipc" },
    { type: "uts" },
    { type: "mount" },
    ...(network === "host" ? [] : [{ type: "network" as const }]),
    { type: "cgroup" },
  ];
}

function commandLine(
  imageEntrypoint: string[] | null | undefined,
  imageCmd: string[] | null | undefined,
  options: RunOptions,
): string[] {
  const ep = options.entrypoint;
  const entrypoint = ep === undefined
    ? imageEntrypoint ?? []
    : typeof ep === "string"
    ? (ep === "" ? [] : [ep])
    : [...ep];
  const cmd = options.command?.length
    ? [...options.command]
    : ep === undefined
    ? imageCmd ?? []
    : [];
  const args = [...entrypoint, ...cmd];
  if (!args.length) throw new InvalidInputError("no command specified");
  return args;
}

function environment(
  imageEnv: readonly string[],
  hostname: string,
  home: string,
  options: RunOptions,
): string[] {
  let callerEnv = options.callerEnv;
  const lookup = (k: string) => (callerEnv ??= Deno.env.toObject())[k];
  const fileEnv = options.envFile === undefined
    ? []
    : typeof options.envFile === "string"
    ? parseEnvFile(Deno.readTextFileSync(options.envFile), lookup)
    : [...options.envFile];
  const base = [`PATH=${DEFAULT_PATH}`, `HOSTNAME=${hostname}`];
  if (options.tty) base.push("TERM=xterm");
  const env = mergeEnv(
    base,
    mergeEnv(mergeEnv(imageEnv, fileEnv), flagEnv(options.env ?? [], lookup)),
  );
  if (!env.some((e) => e.startsWith("HOME="))) env.push(`HOME=${home}`);
  return env;
}

function capName(name: string): string {
  const upper = name.toUpperCase();
  if (upper === "ALL") return "ALL";
  const bare = upper.replace(/^CAP_/, "");
  if (!CAPABILITY_NAMES.includes(bare)) throw new TypeError(`unknown capability: "${name}"`);
  return `CAP_${bare}`;
}

function capabilities(add: readonly string[], drop: readonly string[]): string[] {
  const a = add.map(capName);
  const d = drop.map(capName);
  let caps: string[];
  if (a.includes("ALL")) {
    caps = CAPABILITY_NAMES.map((n) => `CAP_${n}`).filter((c) => !d.includes(c));
  } else if (d.includes("ALL")) caps = a;
  else caps = [...DEFAULT_CAPABILITIES.filter((c) => !d.includes(c)), ...a];
  return [...new Set(caps)];
}

function hostNofileHardLimit(): number {
  try {
    const line = Deno.readTextFileSync("/proc/self/limits").split("\n").find((l) =>
      l.startsWith("Max open files")
    );
    const hard = line?.trim().split(/\s+/)[4];
    return hard === undefined || hard === "unlimited" ? NOFILE : Number(hard);
  } catch {
    return NOFILE;
  }
}

const depth = (p: string) => (p === "/" ? 0 : p.split("/").length - 1);

function mounts(options: RunOptions): SpecMount[] {
  const defaults: SpecMount[] = [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    {
      destination: "/dev",
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
      destination: "/dev/pts",
      type: "devpts",
      source: "devpts",
      options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    {
      destination: "/sys",
      type: "sysfs",
      source: "sysfs",
      options: ["nosuid", "noexec", "nodev", "ro"],
    },
    {
      destination: "/sys/fs/cgroup",
      type: "cgroup",
      source: "cgroup",
      options: ["ro", "nosuid", "noexec", "nodev"],
    },
    {
      destination: "/dev/mqueue",
      type: "mqueue",
      source: "mqueue",
      options: ["nosuid", "noexec", "nodev"],
    },
    {
      destination: "/dev/shm",
      type: "tmpfs",
      source: "shm",
      options: ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"],
    },
  ];
  if (options.bundleDir !== undefined) {
    for (const name of ["resolv.conf", "hostname", "hosts"]) {
      defaults.push({
        destination: `/etc/${name}`,
        type: "bind",
        source: `${options.bundleDir}/${name}`,
        options: ["rbind", "rprivate"],
      });
    }
  }

  const user: SpecMount[] = [];
  for (const v of options.volumes ?? []) user.push(volumeMount(v));
  for (const t of options.tmpfs ?? []) user.push(tmpfsMount(t));
  const seen = new Set<string>();
  for (const m of user) {
    if (seen.has(m.destination)) throw new TypeError(`Duplicate mount point: ${m.destination}`);
    seen.add(m.destination);
  }
  user.sort((a, b) => depth(a.destination) - depth(b.destination));
  return [...defaults.filter((m) => !seen.has(m.destination)), ...user];
}

function volumeMount(spec: string): SpecMount {
  const parts = spec.split(":");
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) {
    throw new TypeError(`invalid volume specification: '${spec}'`);
  }
  const [source, dest, mode = ""] = parts;
  if (!source.startsWith("/")) {
    throw new UnsupportedError(`named volumes are not supported: '${source}'`);
  }
  if (!dest.startsWith("/")) {
    throw new TypeError(`invalid volume specification: '${spec}': destination must be absolute`);
  }
  const destination = normalizePath(dest);
  if (destination === "/") throw new TypeError(`invalid volume specification: '${spec}'`);
  const opts = ["rbind"];
  let propagation = "rprivate";
  for (const m of mode.split(",").filter(Boolean)) {
    if (m === "ro" || m === "rw") opts.push(m);
    else if (/^r?(private|shared|slave)$/.test(m)) propagation = m;
    else throw new TypeError(`invalid mode: ${m}`);
  }
  try {
    Deno.statSync(source);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new NotFoundError(`bind source path does not exist: ${source}`);
    }
    throw e;
  }
  return {
    destination,
    type: "bind",
    source: normalizePath(source),
    options: [...opts, propagation],
  };
}

const TMPFS_FLAG_PAIRS = [
  ["ro", "rw"],
  ["nosuid", "suid"],
  ["nodev", "dev"],
  ["noexec", "exec"],
  ["sync", "async"],
  ["noatime", "atime"],
  ["nodiratime", "diratime"],
  ["relatime", "norelatime"],
  ["strictatime", "nostrictatime"],
];

/** docker's mount.MergeTmpfsOptions: a later flag cancels its opposite, a later key=value wins. */
function mergeTmpfsOptions(options: readonly string[]): string[] {
  const out: string[] = [];
  for (const o of options) {
    const pair = TMPFS_FLAG_PAIRS.find((p) => p.includes(o));
    const key = o.split("=", 1)[0];
    const i = out.findIndex((x) =>
      pair ? pair.includes(x) : x.includes("=") && x.split("=", 1)[0] === key
    );
    if (i >= 0) out.splice(i, 1);
    if (!out.includes(o)) out.push(o);
  }
  return out;
}

function tmpfsMount(spec: string): SpecMount {
  const colon = spec.indexOf(":");
  const dest = colon < 0 ? spec : spec.slice(0, colon);
  const data = colon < 0 ? "" : spec.slice(colon + 1);
  if (!dest.startsWith("/")) {
    throw new TypeError(`invalid tmpfs specification: '${spec}': path must be absolute`);
  }
  const destination = normalizePath(dest);
  if (destination === "/") throw new TypeError(`invalid tmpfs specification: '${spec}'`);
  const opts = ["noexec", "nosuid", "nodev", "rprivate", ...data.split(",").filter(Boolean)];
  return { destination, type: "tmpfs", source: "tmpfs", options: mergeTmpfsOptions(opts) };
}

/** Parses docker's memory units (`RAMInBytes`): `6m`, `1.5g`, `512kb`, `1GiB`, plain bytes. */
export function parseMemory(value: string | number): number {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`invalid size: ${value}`);
    }
    return value;
  }
  const m = /^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(value.trim());
  if (!m) throw new TypeError(`invalid size: '${value}'`);
  const unit = { k: 1, m: 2, g: 3, t: 4, p: 5 }[(m[2] ?? "").toLowerCase() as "k"] ?? 0;
  return Math.floor(Number(m[1]) * 1024 ** unit);
}

function resources(options: RunOptions): SpecResources {
  const r: SpecResources = { devices: DEVICE_RULES.map((d) => ({ ...d })) };
  if (options.memory !== undefined) {
    const limit = parseMemory(options.memory);
    if (limit > 0) {
      if (limit < MIN_MEMORY) throw new RangeError("Minimum memory limit allowed is 6MB");
      r.memory = { limit, swap: limit };
    }
  }
  if (options.cpus !== undefined) {
    const cpus = Number(options.cpus);
    const host = options.hostCpus ?? navigator.hardwareConcurrency;
    if (!Number.isFinite(cpus) || cpus < 0) throw new TypeError(`invalid cpus: ${options.cpus}`);
    if (cpus > 0) {
      if (cpus < 0.01 || cpus > host) {
        throw new RangeError(
          `range of CPUs is from 0.01 to ${
            host.toFixed(2)
          }, as there are only ${host} CPUs available`,
        );
      }
      r.cpu = { quota: Math.round(cpus * CPU_PERIOD), period: CPU_PERIOD };
    }
  }
  if (options.pidsLimit !== undefined) {
    const p = options.pidsLimit;
    if (!Number.isInteger(p) || p < -1) throw new RangeError(`invalid pids limit: ${p}`);
    if (p > 0) r.pids = { limit: p };
  }
  return r;
}
