/**
 * Cgroups of a container: detect the host's layout at run time (pure v2, hybrid, v1), create the
 * container's cgroup and write its limits, place processes, read OOM kills, remove it.
 *
 * Layouts: `v2` = a cgroup2 hierarchy with controllers (normally at /sys/fs/cgroup) and no v1
 * controller hierarchy; `hybrid` = v1 controller hierarchies plus a cgroup2 mount (placement only,
 * as systemd does); `v1` = v1 hierarchies only. Limits go to v1 controllers when there are any.
 *
 * Device rules: v1's devices.deny/devices.allow; without a v1 devices hierarchy, a
 * BPF_CGROUP_DEVICE program on the cgroup2 directory.
 *
 * A relative cgroups path is taken relative to the engine's own cgroup in each v1 hierarchy and
 * relative to the parent of its own cgroup in cgroup2 (runc's rules, which keep v2's "no internal
 * processes" rule satisfied); an absolute one is relative to the hierarchy's root.
 *
 * @module
 */
import { ConflictError, UnsupportedError } from "../errors.ts";
import type { SpecDeviceCgroup, SpecResources } from "./spec_types.ts";
import { attachDeviceFilter } from "./_device_filter.ts";
import { SIGKILL } from "../../ffi/constants.ts";
import { close } from "../../ffi/fs.ts";
import { pidfdOpen, pidfdSendSignal } from "../../ffi/process.ts";

/** A v1 hierarchy: where it is mounted and what it holds. */
export interface CgroupHierarchy {
  /** Mount point, e.g. `/sys/fs/cgroup/memory`. */
  mountpoint: string;
  /** Controllers (`["cpu", "cpuacct"]`) or a named hierarchy (`["name=systemd"]`). */
  controllers: string[];
  /** The engine's own cgroup in it, relative to the mount point (`/` = its root). */
  own: string;
}

/** The host's cgroup layout. */
export type CgroupLayout =
  | { version: "v2"; mountpoint: string; own: string }
  | {
    version: "v1" | "hybrid";
    hierarchies: CgroupHierarchy[];
    unified?: { mountpoint: string; own: string };
  };

/** A filesystem the container's init mounts under /sys/fs/cgroup (see `cgroupMountsFor`). */
export interface CgroupMountEntry {
  /** Sub-directory of /sys/fs/cgroup; `""` = /sys/fs/cgroup itself. */
  dir: string;
  /** `cgroup` or `cgroup2`. */
  fstype: "cgroup" | "cgroup2";
  /** Mount data: the controllers of a v1 hierarchy. */
  data: string;
}

const NOT_CONTROLLERS = new Set([
  "rw",
  "ro",
  "xattr",
  "noprefix",
  "clone_children",
  "cpuset_v2_mode",
]);

function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * Detects the cgroup layout from /proc/self/mountinfo and /proc/self/cgroup (or the given texts).
 * UnsupportedError when there is no cgroup filesystem at all.
 */
export function detectCgroupLayout(
  texts: { mountinfo?: string; cgroup?: string } = {},
): CgroupLayout {
  const mountinfo = texts.mountinfo ?? Deno.readTextFileSync("/proc/self/mountinfo");
  const cgroup = texts.cgroup ?? Deno.readTextFileSync("/proc/self/cgroup");
  const own = new Map<string, string>();
  for (const line of cgroup.split("\n")) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (m) own.set(m[2], m[3]);
  }
  const relative = (root: string, path: string) =>
    root === "/" ? path : path.startsWith(root) ? path.slice(root.length) || "/" : "/";
  const hierarchies: CgroupHierarchy[] = [];
  let unified: { mountpoint: string; own: string } | undefined;
  const seen = new Set<string>();
  for (const line of mountinfo.split("\n")) {
    const dash = line.indexOf(" - ");
    if (dash < 0) continue;
    const f = line.slice(0, dash).split(" ");
    const [fstype, , superOpts = ""] = line.slice(dash + 3).split(" ");
    const root = unescape(f[3]);
    const mountpoint = unescape(f[4]);
    if (fstype === "cgroup2") {
      unified ??= { mountpoint, own: relative(root, own.get("") ?? "/") };
    } else if (fstype === "cgroup") {
      const controllers = superOpts.split(",").filter((o) =>
        !NOT_CONTROLLERS.has(o) && !o.startsWith("release_agent=")
      );
      const key = controllers.join(",");
      if (!controllers.length || seen.has(key)) continue; // bind mounts of the same hierarchy
      seen.add(key);
      hierarchies.push({ mountpoint, controllers, own: relative(root, own.get(key) ?? "/") });
    }
  }
  if (hierarchies.some((h) => !h.controllers[0].startsWith("name="))) {
    return { version: unified ? "hybrid" : "v1", hierarchies, ...(unified ? { unified } : {}) };
  }
  if (unified) return { version: "v2", ...unified };
  throw new UnsupportedError("no cgroup filesystem mounted");
}

/** What the container's init mounts at /sys/fs/cgroup for `layout` (inside its cgroup namespace). */
export function cgroupMountsFor(layout: CgroupLayout): CgroupMountEntry[] {
  if (layout.version === "v2") return [{ dir: "", fstype: "cgroup2", data: "" }];
  const out: CgroupMountEntry[] = layout.hierarchies.map((h) => ({
    dir: h.mountpoint.split("/").pop()!,
    fstype: "cgroup",
    data: h.controllers.join(","),
  }));
  if (layout.unified) {
    out.push({ dir: layout.unified.mountpoint.split("/").pop()!, fstype: "cgroup2", data: "" });
  }
  return out;
}

/**
 * Moves thread `tid` of this process back to the engine's own cgroup in every v1 hierarchy of
 * `layout` (where it was before a direct start or exec had it join a container's).
 */
export function returnThread(tid: number, layout: CgroupLayout, fs: CgroupFs = realCgroupFs): void {
  if (layout.version === "v2") return;
  for (const h of layout.hierarchies) fs.write(join(h.mountpoint, h.own, "tasks"), String(tid));
}

/**
 * The `cgroup.procs` files of the cgroups process `pid` is in, one per hierarchy of the host's
 * layout (from /proc/PID/cgroup, as this process's cgroup namespace sees it): what a process
 * writes 0 to, to join that process's cgroups (e.g. `exec` into a container). Undefined when the
 * process is gone.
 */
export function cgroupProcsFilesOf(pid: number, cgroupText?: string): string[] | undefined {
  let text = cgroupText;
  if (text === undefined) {
    try {
      text = Deno.readTextFileSync(`/proc/${pid}/cgroup`);
    } catch {
      return undefined;
    }
  }
  // the layout as seen from `pid`: each hierarchy's `own` is then pid's cgroup in it
  const layout = detectCgroupLayout({ cgroup: text });
  if (layout.version === "v2") return [join(layout.mountpoint, layout.own, "cgroup.procs")];
  const files = layout.hierarchies.map((h) => join(h.mountpoint, h.own, "cgroup.procs"));
  if (layout.unified) {
    files.push(join(layout.unified.mountpoint, layout.unified.own, "cgroup.procs"));
  }
  return files;
}

function join(...parts: string[]): string {
  return parts.join("/").replace(/\/+/g, "/").replace(/(.)\/$/, "$1");
}

/**
 * The file operations cgroups need: the real cgroup filesystem by default, a fake in unit tests.
 * `mkdir` throws `Deno.errors.AlreadyExists` for an existing directory; `rmdir` throws
 * `Deno.errors.NotFound` for a missing one.
 */
export interface CgroupFs {
  /** A file's text, or undefined when it does not exist. */
  read(path: string): string | undefined;
  /** Writes an existing file (never creates). */
  write(path: string, value: string): void;
  /** Whether the path exists. */
  exists(path: string): boolean;
  /** Creates a directory. */
  mkdir(path: string): void;
  /** Removes a directory. */
  rmdir(path: string): void;
  /**
   * Sends SIGKILL to those of `pids` that are members of the cgroup when `members()` is read,
   * after each process is pinned (pidfd): a pid reused meanwhile by a process outside is spared.
   * Ignores processes that are gone.
   */
  kill(pids: readonly number[], members: () => ReadonlySet<number>): void;
  /** Attaches a device filter program for `rules` to the cgroup2 directory `dir`. */
  attachDeviceFilter(dir: string, rules: readonly SpecDeviceCgroup[]): void;
  /**
   * The ids of the live threads of process `pid` (/proc/PID/task, zombies left out: a leader
   * that has exited leaves its cgroup), undefined when it is gone.
   */
  threads(pid: number): string[] | undefined;
}

/** The real cgroup filesystem. */
export const realCgroupFs: CgroupFs = {
  read(path) {
    try {
      return Deno.readTextFileSync(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    }
  },
  write(path, value) {
    Deno.writeTextFileSync(path, value, { create: false });
  },
  exists(path) {
    try {
      Deno.statSync(path);
      return true;
    } catch {
      return false;
    }
  },
  mkdir(path) {
    Deno.mkdirSync(path);
  },
  rmdir(path) {
    Deno.removeSync(path);
  },
  kill(pids, members) {
    // a bounded number of descriptors at a time
    for (let i = 0; i < pids.length; i += 256) {
      const pinned: number[] = [];
      try {
        for (const pid of pids.slice(i, i + 256)) {
          try {
            pinned.push(pidfdOpen(pid), pid);
          } catch { /* exited */ }
        }
        const now = members();
        for (let j = 0; j < pinned.length; j += 2) {
          if (!now.has(pinned[j + 1])) continue;
          try {
            pidfdSendSignal(pinned[j], SIGKILL);
          } catch { /* exited */ }
        }
      } finally {
        for (let j = 0; j < pinned.length; j += 2) close(pinned[j]);
      }
    }
  },
  attachDeviceFilter,
  threads(pid) {
    try {
      return [...Deno.readDirSync(`/proc/${pid}/task`)].map((e) => e.name).filter((tid) => {
        try {
          const stat = Deno.readTextFileSync(`/proc/${pid}/task/${tid}/stat`);
          return !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3));
        } catch {
          return false; // gone meanwhile
        }
      });
    } catch {
      return undefined;
    }
  },
};

function deviceRule(d: SpecDeviceCgroup): string {
  const type = d.type ?? "a";
  if (type === "a") return "a";
  return `${type} ${d.major ?? "*"}:${d.minor ?? "*"} ${d.access ?? "rwm"}`;
}

interface Dir {
  base: string; // the hierarchy's mount point
  anchor: string; // the directory the cgroups path is relative to
  path: string;
  kind: "v1" | "v2";
  controllers: string[];
}

/** The cgroup of one container, in every hierarchy of the layout. */
export class Cgroup {
  /** The layout it was created in. */
  readonly layout: CgroupLayout;
  /** Directories this cgroup consists of (one per hierarchy). */
  readonly dirs: readonly string[];
  readonly #dirs: Dir[];
  readonly #created: string[];
  readonly #fs: CgroupFs;

  private constructor(layout: CgroupLayout, dirs: Dir[], created: string[], fs: CgroupFs) {
    this.layout = layout;
    this.#fs = fs;
    this.#dirs = dirs;
    this.dirs = dirs.map((d) => d.path);
    this.#created = created;
  }

  /**
   * Creates the cgroup `path` (absolute, or relative to the engine's cgroup, see the module doc)
   * in every hierarchy and writes `resources`. ConflictError if it exists; UnsupportedError when a
   * limit's controller is not available. Undoes what it did when it fails half way.
   */
  static create(
    path: string,
    resources: SpecResources | undefined,
    options: { layout?: CgroupLayout; fs?: CgroupFs } = {},
  ): Cgroup {
    if (!path || path.split("/").some((c) => c === "..")) {
      throw new TypeError(`Invalid cgroups path: ${JSON.stringify(path)}`);
    }
    const layout = options.layout ?? detectCgroupLayout();
    const dirs: Dir[] = [];
    const depth = path.split("/").filter(Boolean).length;
    const dir = (base: string, path: string, kind: Dir["kind"], controllers: string[]): Dir => {
      const anchor = path.split("/").slice(0, -depth).join("/") || "/";
      return { base, anchor, path, kind, controllers };
    };
    const v2Path = (own: string) => {
      if (path.startsWith("/")) return path;
      const parent = own === "/" || own.endsWith(".slice") ? own : own.replace(/\/[^/]*$/, "");
      return join(parent || "/", path);
    };
    if (layout.version === "v2") {
      dirs.push(dir(layout.mountpoint, join(layout.mountpoint, v2Path(layout.own)), "v2", []));
    } else {
      for (const h of layout.hierarchies) {
        const rel = path.startsWith("/") ? path : join(h.own, path);
        dirs.push(dir(h.mountpoint, join(h.mountpoint, rel), "v1", h.controllers));
      }
      if (layout.unified) {
        const { mountpoint } = layout.unified;
        dirs.push(dir(mountpoint, join(mountpoint, v2Path(layout.unified.own)), "v2", []));
      }
    }
    const created: string[] = [];
    const cgroup = new Cgroup(layout, dirs, created, options.fs ?? realCgroupFs);
    try {
      const needed = layout.version === "v2" ? controllersFor(resources) : [];
      for (const d of dirs) cgroup.#mkdirs(d, needed);
      cgroup.#writeLimits(resources);
    } catch (e) {
      cgroup.#rmdirsNow();
      throw e;
    }
    return cgroup;
  }

  // Creates every missing level below `base` down to d.path; for v2 enables `needed`
  // controllers in the subtree_control of each ancestor; for cpuset, copies cpus/mems down. A
  // parent removed meanwhile by another container's cleanup (empty `berth/`) is made again.
  #mkdirs(d: Dir, needed: string[]): void {
    for (let attempt = 0;; attempt++) {
      try {
        return this.#mkdirsOnce(d, needed);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound) || attempt >= 5) throw e;
      }
    }
  }

  #mkdirsOnce(d: Dir, needed: string[]): void {
    const rel = d.path.slice(d.base.length).split("/").filter(Boolean);
    if (!rel.length) throw new TypeError(`Invalid cgroups path: the root of ${d.base}`);
    let cur = d.base;
    for (let i = 0; i < rel.length; i++) {
      if (d.kind === "v2" && needed.length) enableControllers(this.#fs, cur, needed);
      const next = `${cur}/${rel[i]}`;
      const last = i === rel.length - 1;
      try {
        this.#fs.mkdir(next);
        this.#created.push(next);
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
        if (last) throw new ConflictError(`cgroup already exists: ${next}`);
        cur = next;
        continue;
      }
      if (d.controllers.includes("cpuset")) {
        for (const f of ["cpuset.cpus", "cpuset.mems"]) {
          if (!this.#fs.read(`${next}/${f}`)?.trim()) {
            this.#fs.write(`${next}/${f}`, this.#fs.read(`${cur}/${f}`) ?? "");
          }
        }
      }
      cur = next;
    }
  }

  #writeLimits(r: SpecResources | undefined): void {
    if (!r) return;
    for (const d of this.#dirs) {
      const has = (c: string) => d.controllers.includes(c);
      const need = (file: string, controller: string) => {
        if (!this.#fs.exists(`${d.path}/${file}`)) {
          throw new UnsupportedError(`cgroup controller not available: ${controller}`);
        }
        return `${d.path}/${file}`;
      };
      if (d.kind === "v1") {
        if (r.memory?.limit !== undefined && has("memory")) {
          this.#fs.write(need("memory.limit_in_bytes", "memory"), String(r.memory.limit));
          const memsw = `${d.path}/memory.memsw.limit_in_bytes`;
          if (r.memory.swap !== undefined && this.#fs.exists(memsw)) {
            this.#fs.write(memsw, String(r.memory.swap));
          }
        }
        if (r.cpu?.quota !== undefined && has("cpu")) {
          this.#fs.write(need("cpu.cfs_period_us", "cpu"), String(r.cpu.period ?? 100000));
          this.#fs.write(`${d.path}/cpu.cfs_quota_us`, String(r.cpu.quota));
        }
        if (r.pids && has("pids")) this.#fs.write(need("pids.max", "pids"), String(r.pids.limit));
        if (r.devices?.length && has("devices")) {
          for (const rule of r.devices) {
            this.#fs.write(`${d.path}/devices.${rule.allow ? "allow" : "deny"}`, deviceRule(rule));
          }
        }
      } else if (this.layout.version === "v2") {
        if (r.memory?.limit !== undefined) {
          this.#fs.write(need("memory.max", "memory"), String(r.memory.limit));
          // without swap accounting (swapaccount=0, or no swap) there is no file and no swap
          // to limit: as v1's memsw
          const swapMax = `${d.path}/memory.swap.max`;
          if (r.memory.swap !== undefined && this.#fs.exists(swapMax)) {
            this.#fs.write(swapMax, String(Math.max(0, r.memory.swap - r.memory.limit)));
          }
        }
        if (r.cpu?.quota !== undefined) {
          this.#fs.write(need("cpu.max", "cpu"), `${r.cpu.quota} ${r.cpu.period ?? 100000}`);
        }
        if (r.pids) this.#fs.write(need("pids.max", "pids"), String(r.pids.limit));
      }
      // cgroup2 has no device files: a BPF program filters (a hybrid layout has v1's files)
      if (d.kind === "v2" && r.devices?.length && !this.#v1Devices()) {
        this.#fs.attachDeviceFilter(d.path, r.devices);
      }
    }
    if (this.layout.version !== "v2") {
      const v1 = this.layout.hierarchies.flatMap((h) => h.controllers);
      const want = [
        [r.memory?.limit !== undefined, "memory"],
        [r.cpu?.quota !== undefined, "cpu"],
        [r.pids !== undefined, "pids"],
      ] as const;
      for (const [wanted, c] of want) {
        if (wanted && !v1.includes(c)) {
          throw new UnsupportedError(`cgroup controller not available: ${c}`);
        }
      }
    }
  }

  #v1Devices(): boolean {
    return this.layout.version !== "v2" &&
      this.layout.hierarchies.some((h) => h.controllers.includes("devices"));
  }

  /** The `cgroup.procs` files a process writes its pid (or 0) to, to join. */
  get procsFiles(): string[] {
    return this.#dirs.map((d) => `${d.path}/cgroup.procs`);
  }

  /** The v1 `tasks` files: a thread joins alone by writing its id there (the direct start). */
  get tasksFiles(): string[] {
    return this.#dirs.filter((d) => d.kind === "v1").map((d) => `${d.path}/tasks`);
  }

  /** Writes `pids.max` (v1 pids controller or cgroup2), when the cgroup has a pids limit. */
  setPidsMax(limit: number): void {
    for (const d of this.#dirs) {
      if ((d.kind === "v1" && d.controllers.includes("pids")) || this.layout.version === "v2") {
        if (this.#fs.exists(`${d.path}/pids.max`)) this.#fs.write(`${d.path}/pids.max`, `${limit}`);
      }
    }
  }

  /** Moves process `pid` into the cgroup (every hierarchy). */
  place(pid: number): void {
    for (const f of this.procsFiles) this.#fs.write(f, String(pid));
  }

  /** The pids in the cgroup (union over hierarchies). */
  pids(): number[] {
    const all = new Set<number>();
    for (const f of this.procsFiles) {
      for (const l of (this.#fs.read(f) ?? "").split("\n")) if (l) all.add(Number(l));
    }
    return [...all];
  }

  /** How many processes the kernel's OOM killer killed in the cgroup. */
  oomKills(): number {
    for (const d of this.#dirs) {
      const text = d.kind === "v1"
        ? (d.controllers.includes("memory")
          ? this.#fs.read(`${d.path}/memory.oom_control`)
          : undefined)
        : this.layout.version === "v2"
        ? this.#fs.read(`${d.path}/memory.events`)
        : undefined;
      const m = text && /^oom_kill (\d+)$/m.exec(text);
      if (m) return Number(m[1]);
    }
    return 0;
  }

  /**
   * Kills what is left in the cgroup and removes its directories (those it created, deepest
   * first), retrying while the kernel still reports them busy, up to `timeoutMs`. cgroup2's
   * `cgroup.kill` where there is one; else each pid read from `cgroup.procs` is pinned (pidfd)
   * and signalled only if it is still a member, so that a pid reused by a host process meanwhile
   * is never killed.
   */
  async remove(options: { timeoutMs?: number } = {}): Promise<void> {
    const deadline = Date.now() + (options.timeoutMs ?? 5000);
    for (;;) {
      this.#kill();
      const left = this.#rmdirsNow();
      if (!left.length) return;
      if (Date.now() > deadline) {
        throw new ConflictError(`cgroup busy, not removed: ${left[0]}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  #kill(): void {
    for (const d of this.#dirs) {
      if (d.kind === "v2" && this.#fs.exists(`${d.path}/cgroup.kill`)) {
        try {
          this.#fs.write(`${d.path}/cgroup.kill`, "1");
        } catch { /* gone already */ }
      }
    }
    // Not a process with a live thread outside the cgroup: a berth engine whose thread is in it
    // for a moment (a direct start or exec, this process's or another's) puts its pid in a v1
    // cgroup.procs; the container's own processes are wholly inside.
    const v1 = this.#dirs.filter((d) => d.kind === "v1");
    const tasks = () => {
      const all = new Set<string>();
      for (const d of v1) {
        for (const t of (this.#fs.read(`${d.path}/tasks`) ?? "").split("\n")) if (t) all.add(t);
      }
      return all;
    };
    const inside = (pids: number[]) => {
      const now = v1.length ? tasks() : new Set<string>();
      return pids.filter((pid) => {
        if (pid === Deno.pid) return false;
        if (!now.size) return true;
        const threads = this.#fs.threads(pid);
        return threads === undefined || threads.every((t) => now.has(t));
      });
    };
    const pids = inside(this.pids());
    if (pids.length) this.#fs.kill(pids, () => new Set(inside(this.pids())));
  }

  // rmdir of this cgroup's directories (only those it created); returns those that remain busy.
  // Then the parents its path added (`berth/` of `berth/<id>`), best effort: a parent another
  // container still uses is not empty, and rmdir leaves it.
  #rmdirsNow(): string[] {
    const left: string[] = [];
    for (const d of this.#dirs) {
      if (!this.#created.includes(d.path)) continue;
      try {
        this.#fs.rmdir(d.path);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) {
          left.push(d.path);
          continue;
        }
      }
      this.#created.splice(this.#created.indexOf(d.path), 1);
      for (
        let p = d.path.replace(/\/[^/]*$/, "");
        p.length > d.anchor.length;
        p = p.replace(/\/[^/]*$/, "")
      ) {
        try {
          this.#fs.rmdir(p);
        } catch {
          break;
        }
      }
    }
    return left;
  }
}

function controllersFor(r: SpecResources | undefined): string[] {
  const out: string[] = [];
  if (r?.memory?.limit !== undefined) out.push("memory");
  if (r?.cpu?.quota !== undefined) out.push("cpu");
  if (r?.pids) out.push("pids");
  return out;
}

// Enables `needed` in dir's cgroup.subtree_control (those not yet enabled); UnsupportedError when
// dir does not offer one of them.
function enableControllers(fs: CgroupFs, dir: string, needed: string[]): void {
  const available = (fs.read(`${dir}/cgroup.controllers`) ?? "").split(/\s+/);
  const enabled = (fs.read(`${dir}/cgroup.subtree_control`) ?? "").split(/\s+/);
  const missing = needed.filter((c) => !enabled.includes(c));
  for (const c of missing) {
    if (!available.includes(c)) throw new UnsupportedError(`cgroup controller not available: ${c}`);
  }
  if (missing.length) {
    fs.write(
      `${dir}/cgroup.subtree_control`,
      missing.map((c) => `+${c}`).join(" "),
    );
  }
}
