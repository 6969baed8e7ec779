// Unit tests of cgroups.ts: layout detection from mountinfo texts, and the v2 (and v1) file writes
// against an in-memory fake of the cgroup filesystems. The real v1 hierarchies and the real v2
// placement are exercised by tests/runtime_test.ts.
import assert from "node:assert/strict";
import { UnsupportedError } from "../errors.ts";
import {
  Cgroup,
  type CgroupFs,
  cgroupMountsFor,
  detectCgroupLayout,
  realCgroupFs,
} from "./cgroups.ts";
import { compileDeviceFilter } from "./_device_filter.ts";

const HYBRID = `
30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
35 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
36 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
37 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
`;
const HYBRID_SELF = "3:cpu,cpuacct:/user.slice\n2:memory:/process/x\n1:name=systemd:/init.scope\n" +
  "4:pids:/\n0::/init.scope\n";
const V2 =
  "29 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";

Deno.test("detectCgroupLayout: hybrid, v1, pure v2, none", () => {
  const hybrid = detectCgroupLayout({ mountinfo: HYBRID, cgroup: HYBRID_SELF });
  assert.equal(hybrid.version, "hybrid" as string);
  if (hybrid.version === "v2") throw new Error("unreachable");
  assert.deepEqual(hybrid.hierarchies.map((h) => [h.mountpoint, h.controllers, h.own]), [
    ["/sys/fs/cgroup/cpu,cpuacct", ["cpu", "cpuacct"], "/user.slice"],
    ["/sys/fs/cgroup/memory", ["memory"], "/process/x"],
    ["/sys/fs/cgroup/pids", ["pids"], "/"],
    ["/sys/fs/cgroup/systemd", ["name=systemd"], "/init.scope"],
  ]);
  assert.deepEqual(hybrid.unified, { mountpoint: "/sys/fs/cgroup/unified", own: "/init.scope" });
  assert.deepEqual(cgroupMountsFor(hybrid).map((m) => [m.dir, m.fstype, m.data]), [
    ["cpu,cpuacct", "cgroup", "cpu,cpuacct"],
    ["memory", "cgroup", "memory"],
    ["pids", "cgroup", "pids"],
    ["systemd", "cgroup", "name=systemd"],
    ["unified", "cgroup2", ""],
  ]);
  const v1 = detectCgroupLayout({
    mountinfo: HYBRID.split("\n").filter((l) => !l.includes("cgroup2")).join("\n"),
    cgroup: HYBRID_SELF,
  });
  assert.equal(v1.version, "v1");
  const v2 = detectCgroupLayout({ mountinfo: V2, cgroup: "0::/user.slice/session-1.scope\n" });
  assert.deepEqual(v2, {
    version: "v2",
    mountpoint: "/sys/fs/cgroup",
    own: "/user.slice/session-1.scope",
  });
  assert.deepEqual(cgroupMountsFor(v2), [{ dir: "", fstype: "cgroup2", data: "" }]);
  assert.throws(() => detectCgroupLayout({ mountinfo: "", cgroup: "" }), UnsupportedError);
  // the real host parses
  detectCgroupLayout();
});

/** An in-memory cgroup2 (or v1) filesystem: directories get their interface files on mkdir. */
class FakeCgroupFs implements CgroupFs {
  files = new Map<string, string>();
  dirs = new Set<string>();
  killed: number[] = [];
  filters: [string, number][] = [];
  busy = 0;
  constructor(readonly kind: "v2" | "v1", readonly root: string, controllers: string[]) {
    this.dirs.add(root);
    this.#populate(root, controllers);
  }
  #populate(dir: string, controllers: string[]): void {
    this.files.set(`${dir}/cgroup.procs`, "");
    if (this.kind === "v2") {
      this.files.set(`${dir}/cgroup.controllers`, controllers.join(" "));
      this.files.set(`${dir}/cgroup.subtree_control`, "");
      this.files.set(`${dir}/cgroup.kill`, "");
      const per: Record<string, string[]> = {
        memory: ["memory.max", "memory.swap.max", "memory.events"],
        cpu: ["cpu.max"],
        pids: ["pids.max"],
      };
      for (const c of controllers) for (const f of per[c] ?? []) this.files.set(`${dir}/${f}`, "");
      if (controllers.includes("memory")) {
        this.files.set(`${dir}/memory.events`, "oom 0\noom_kill 0\n");
      }
    } else {
      this.files.set(`${dir}/tasks`, "");
      for (const f of ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "pids.max"]) {
        this.files.set(`${dir}/${f}`, "");
      }
      this.files.set(`${dir}/memory.oom_control`, "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
    }
  }
  read(path: string) {
    return this.files.get(path);
  }
  write(path: string, value: string) {
    if (!this.files.has(path)) throw new Deno.errors.NotFound(path);
    if (path.endsWith("/cgroup.subtree_control")) {
      const dir = path.slice(0, path.lastIndexOf("/"));
      const available = this.files.get(`${dir}/cgroup.controllers`)!.split(" ");
      const enabled = new Set(this.files.get(path)!.split(" ").filter(Boolean));
      for (const op of value.split(" ")) {
        if (!available.includes(op.slice(1))) throw new Deno.errors.NotFound(op);
        if (op[0] === "+") enabled.add(op.slice(1));
        else enabled.delete(op.slice(1));
      }
      this.files.set(path, [...enabled].join(" "));
    } else this.files.set(path, value);
  }
  exists(path: string) {
    return this.files.has(path) || this.dirs.has(path);
  }
  mkdir(path: string) {
    if (this.dirs.has(path)) throw new Deno.errors.AlreadyExists(path);
    const parent = path.slice(0, path.lastIndexOf("/"));
    if (!this.dirs.has(parent)) throw new Deno.errors.NotFound(parent);
    this.dirs.add(path);
    const enabled = this.kind === "v2"
      ? this.files.get(`${parent}/cgroup.subtree_control`)!.split(" ").filter(Boolean)
      : [];
    this.#populate(path, enabled);
  }
  rmdir(path: string) {
    if (this.busy-- > 0) throw new Deno.errors.Busy(path);
    if ([...this.dirs].some((d) => d.startsWith(path + "/"))) throw new Deno.errors.Busy(path);
    this.dirs.delete(path);
    for (const f of [...this.files.keys()]) if (f.startsWith(path + "/")) this.files.delete(f);
  }
  attachDeviceFilter(dir: string, rules: readonly unknown[]) {
    this.filters.push([dir, rules.length]);
  }
  /** Thread ids per pid (default: the pid alone). */
  threadsOf = new Map<number, string[]>();
  threads(pid: number) {
    return this.threadsOf.get(pid) ?? [String(pid)];
  }
  /** Runs once the processes are pinned, before membership is read (a test's pid is reused). */
  pinned?: () => void;
  kill(pids: readonly number[], members: () => ReadonlySet<number>) {
    this.pinned?.();
    const now = members();
    for (const pid of pids.filter((p) => now.has(p))) {
      this.killed.push(pid);
      this.exit(pid);
    }
  }
  exit(pid: number) {
    for (const [k, v] of this.files) {
      if (k.endsWith("/cgroup.procs")) {
        this.files.set(k, v.split("\n").filter((l) => l && l !== String(pid)).join("\n"));
      }
    }
  }
}

const RES = {
  memory: { limit: 32 << 20, swap: 32 << 20 },
  cpu: { quota: 50000, period: 100000 },
  pids: { limit: 10 },
};

Deno.test("Cgroup v2: enables controllers down the tree and writes the limits", async () => {
  const fs = new FakeCgroupFs("v2", "/cg", ["cpuset", "cpu", "io", "memory", "pids"]);
  fs.dirs.add("/cg/init.scope");
  const layout = { version: "v2" as const, mountpoint: "/cg", own: "/init.scope" };
  const devices = [{ allow: false, access: "rwm" }, { allow: true, type: "c", major: 1, minor: 3 }];
  const cg = Cgroup.create("berth/c1", { ...RES, devices }, { layout, fs });
  assert.deepEqual(fs.filters, [["/cg/berth/c1", 2]]);
  // relative to the parent of the engine's own cgroup (runc's rule for cgroup2)
  assert.deepEqual(cg.dirs, ["/cg/berth/c1"]);
  assert.equal(fs.read("/cg/cgroup.subtree_control"), "memory cpu pids");
  assert.equal(fs.read("/cg/berth/cgroup.subtree_control"), "memory cpu pids");
  assert.equal(fs.read("/cg/berth/c1/memory.max"), String(32 << 20));
  assert.equal(fs.read("/cg/berth/c1/memory.swap.max"), "0"); // swap = memory+swap - memory
  assert.equal(fs.read("/cg/berth/c1/cpu.max"), "50000 100000");
  assert.equal(fs.read("/cg/berth/c1/pids.max"), "10");
  assert.deepEqual(cg.procsFiles, ["/cg/berth/c1/cgroup.procs"]);
  cg.place(4242);
  assert.deepEqual(cg.pids(), [4242]);
  assert.equal(cg.oomKills(), 0);
  fs.files.set("/cg/berth/c1/memory.events", "oom 1\noom_kill 1\n");
  assert.equal(cg.oomKills(), 1);
  fs.busy = 3; // EBUSY three times, then it goes
  await cg.remove();
  assert.deepEqual(fs.killed, [4242]);
  assert.ok(!fs.dirs.has("/cg/berth/c1"));
  assert.ok(!fs.dirs.has("/cg/berth")); // the parent it added goes when empty...
  // ...and stays while another container uses it
  const a = Cgroup.create("berth/a", undefined, { layout, fs });
  const b = Cgroup.create("berth/b", undefined, { layout, fs });
  await a.remove();
  assert.ok(fs.dirs.has("/cg/berth") && fs.dirs.has("/cg/berth/b"));
  await b.remove();
  assert.ok(!fs.dirs.has("/cg/berth"));
  // absolute path; a second create of the same cgroup conflicts and leaves the first alone
  const abs = Cgroup.create("/abs/c2", undefined, { layout, fs });
  assert.deepEqual(abs.dirs, ["/cg/abs/c2"]);
  assert.throws(() => Cgroup.create("/abs/c2", undefined, { layout, fs }), /already exists/);
  assert.ok(fs.dirs.has("/cg/abs/c2"));
  await abs.remove();
  assert.ok(!fs.dirs.has("/cg/abs"));
});

Deno.test("Cgroup v2: a missing controller fails and leaves nothing behind", () => {
  const fs = new FakeCgroupFs("v2", "/cg", ["cpu", "pids"]);
  const layout = { version: "v2" as const, mountpoint: "/cg", own: "/" };
  assert.throws(
    () => Cgroup.create("berth/c3", { memory: { limit: 1 << 24 } }, { layout, fs }),
    /cgroup controller not available: memory/,
  );
  assert.ok(!fs.dirs.has("/cg/berth/c3"));
  const cg = Cgroup.create("berth/c4", { pids: { limit: 5 } }, { layout, fs });
  assert.equal(fs.read("/cg/berth/c4/pids.max"), "5");
  assert.throws(() => Cgroup.create("../x", undefined, { layout, fs }), TypeError);
  void cg;
});

Deno.test("Cgroup v1: limits per controller hierarchy, OOM kills from memory.oom_control", async () => {
  const fs = new FakeCgroupFs("v1", "/v1", []);
  for (const h of ["memory", "pids"]) {
    fs.dirs.add(`/v1/${h}`);
    fs.files.set(`/v1/${h}/cgroup.procs`, "");
  }
  fs.dirs.add("/v1/memory/own");
  const layout = {
    version: "v1" as const,
    hierarchies: [
      { mountpoint: "/v1/memory", controllers: ["memory"], own: "/own" },
      { mountpoint: "/v1/pids", controllers: ["pids"], own: "/" },
    ],
  };
  const cg = Cgroup.create("berth/c5", { ...RES, cpu: undefined }, { layout, fs });
  assert.deepEqual(cg.dirs, ["/v1/memory/own/berth/c5", "/v1/pids/berth/c5"]);
  assert.equal(fs.read("/v1/memory/own/berth/c5/memory.limit_in_bytes"), String(32 << 20));
  assert.equal(fs.read("/v1/memory/own/berth/c5/memory.memsw.limit_in_bytes"), String(32 << 20));
  assert.equal(fs.read("/v1/pids/berth/c5/pids.max"), "10");
  assert.equal(cg.oomKills(), 2);
  await cg.remove();
  assert.ok(!fs.dirs.has("/v1/pids/berth/c5"));
});

Deno.test("Cgroup v2 without swap accounting: -m works (no memory.swap.max to write)", async () => {
  const fs = new FakeCgroupFs("v2", "/cg", ["memory", "pids"]);
  const layout = { version: "v2" as const, mountpoint: "/cg", own: "/" };
  const orig = fs.mkdir.bind(fs);
  fs.mkdir = (path: string) => {
    orig(path);
    fs.files.delete(`${path}/memory.swap.max`); // swapaccount=0
  };
  const cg = Cgroup.create("berth/noswap", { memory: { limit: 32 << 20, swap: 32 << 20 } }, {
    layout,
    fs,
  });
  assert.equal(fs.read("/cg/berth/noswap/memory.max"), String(32 << 20));
  assert.equal(fs.read("/cg/berth/noswap/memory.swap.max"), undefined);
  await cg.remove();
});

Deno.test("Cgroup.remove kills only processes still in the cgroup (a pid reused is spared)", async () => {
  const fs = new FakeCgroupFs("v1", "/v1", []);
  fs.dirs.add("/v1/pids");
  fs.files.set("/v1/pids/cgroup.procs", "");
  const layout = {
    version: "v1" as const,
    hierarchies: [{ mountpoint: "/v1/pids", controllers: ["pids"], own: "/" }],
  };
  const cg = Cgroup.create("berth/reuse", undefined, { layout, fs });
  fs.files.set("/v1/pids/berth/reuse/cgroup.procs", "4242\n4343\n");
  // 4343 exits after the pids are read; a host process gets its pid
  fs.pinned = () => {
    fs.pinned = undefined;
    fs.exit(4343);
  };
  await cg.remove();
  assert.deepEqual(fs.killed, [4242]);
});

Deno.test("realCgroupFs.kill: signals a pinned process only while it is a member", async () => {
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    realCgroupFs.kill([child.pid], () => new Set());
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(Deno.readTextFileSync(`/proc/${child.pid}/stat`).split(" ")[2] !== "Z");
    realCgroupFs.kill([child.pid, 2 ** 22 + 1], () => new Set([child.pid]));
    assert.equal((await child.status).signal, "SIGKILL");
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
  }
});

Deno.test("compileDeviceFilter: last match decides, nothing after a catch-all", () => {
  const deny = { allow: false, access: "rwm" };
  const nullDev = { allow: true, type: "c", major: 1, minor: 3, access: "rwm" };
  const mknod = { allow: true, type: "b", access: "m" };
  const prog = compileDeviceFilter([deny, nullDev, mknod]);
  // prologue (6), mknod block: type, access test (3), r0, exit; null block: type, major, minor,
  // r0, exit; the catch-all deny: r0, exit, and no default after it (unreachable for the verifier)
  assert.equal(prog.length, 6 + 6 + 5 + 2);
  assert.deepEqual(prog.at(-2), [0xb7, 0, 0, 0, 0]);
  assert.deepEqual(prog.slice(6, 8), [[0x55, 2, 0, 5, 1], [0xbf, 1, 3, 0, 0]]);
  assert.deepEqual(prog[8], [0x57, 1, 0, 0, 6]); // requested & ~m must be 0
  // without a catch-all, no match denies
  const open = compileDeviceFilter([nullDev]);
  assert.deepEqual(open.slice(-2), [[0xb7, 0, 0, 0, 0], [0x95, 0, 0, 0, 0]]);
  assert.equal(open.length, 6 + 5 + 2);
});

Deno.test("Cgroup.remove spares a process with threads outside the cgroup (an engine's thread in it)", async () => {
  const fs = new FakeCgroupFs("v1", "/v1", []);
  fs.dirs.add("/v1/pids");
  fs.files.set("/v1/pids/cgroup.procs", "");
  const layout = {
    version: "v1" as const,
    hierarchies: [{ mountpoint: "/v1/pids", controllers: ["pids"], own: "/" }],
  };
  const cg = Cgroup.create("berth/transit", undefined, { layout, fs });
  // 4242 and its thread 4244: the container's; 5000: a berth engine whose main thread is in the
  // cgroup for a direct start, its other threads (5001, 5002) not
  fs.files.set("/v1/pids/berth/transit/cgroup.procs", "4242\n5000\n");
  fs.files.set("/v1/pids/berth/transit/tasks", "4242\n4244\n5000\n");
  fs.threadsOf.set(4242, ["4242", "4244"]);
  fs.threadsOf.set(5000, ["5000", "5001", "5002"]);
  await cg.remove();
  assert.deepEqual(fs.killed, [4242]);
});
