// Integration tests of the container runtime on the real kernel (root required): a busybox rootfs
// as the single overlay lowerdir, run through createSpec + runContainer, asserting what a user of
// `docker run` notices. After every run: no berth mount in the host's mountinfo, no cgroup left,
// nothing left in the bundle.
import assert from "node:assert/strict";
import * as ffi from "../ffi/mod.ts";
import { Cgroup, detectCgroupLayout } from "../core/runtime/cgroups.ts";
import {
  type ContainerResult,
  discardInit,
  prepareInit,
  processAlive,
  processStartTime,
  runContainer,
  type RunContainerOptions,
} from "../core/runtime/run.ts";
import {
  containerNamespaces,
  createSpec,
  DEFAULT_PATH,
  type RunOptions,
} from "../core/runtime/spec.ts";
import { ContainerStartError } from "../core/runtime/start_error.ts";
import { ConflictError } from "../core/errors.ts";
import { awaitExec } from "../core/runtime/_attach.ts";
import { SpawnedChild } from "../core/runtime/_child.ts";

import { cgroupDirs, exists, newId, rootfsBase } from "./_runtime_helpers.ts";

const root = Deno.uid() === 0;
interface Ran {
  result: ContainerResult;
  out: string;
  err: string;
  id: string;
}

async function prepare(cmd: string[], options: Partial<RunOptions> = {}) {
  const dir = await rootfsBase();
  const id = newId();
  const bundle = `${dir}/bundles/${id}`;
  const layer = `${dir}/layers/${id}`;
  Deno.mkdirSync(`${layer}/upper`, { recursive: true });
  Deno.mkdirSync(`${layer}/work`);
  const spec = createSpec(
    {
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [] },
      config: { Cmd: cmd },
    },
    { id, bundleDir: bundle, rootfs: `${dir}/rootfs`, callerEnv: {}, ...options },
  );
  const runOptions: RunContainerOptions = {
    bundleDir: bundle,
    rootfs: { lowerdirs: [`${dir}/rootfs`], upperdir: `${layer}/upper`, workdir: `${layer}/work` },
    stdout: "piped",
    stderr: "piped",
    removeBundle: true,
  };
  return { id, spec, runOptions, bundle, layer, dir };
}

async function assertClean(id: string, bundle: string, layer: string): Promise<void> {
  const mountinfo = Deno.readTextFileSync("/proc/self/mountinfo");
  assert.ok(
    !mountinfo.includes(await rootfsBase()),
    `a berth mount is left on the host:\n${mountinfo}`,
  );
  for (const d of cgroupDirs(id)) assert.ok(!exists(d), `cgroup left: ${d}`);
  if (exists(bundle)) {
    assert.fail(`bundle left: ${[...Deno.readDirSync(bundle)].map((e) => e.name)}`);
  }
  await Deno.remove(layer, { recursive: true });
}

async function run(
  cmd: string[],
  options: Partial<RunOptions> = {},
  extra: Partial<RunContainerOptions> | ((id: string) => Partial<RunContainerOptions>) = {},
): Promise<Ran> {
  const p = await prepare(cmd, options);
  try {
    const more = typeof extra === "function" ? extra(p.id) : extra;
    const result = await runContainer(p.spec, { ...p.runOptions, ...more });
    const dec = new TextDecoder();
    return {
      result,
      out: dec.decode(result.stdout ?? new Uint8Array()),
      err: dec.decode(result.stderr ?? new Uint8Array()),
      id: p.id,
    };
  } finally {
    await assertClean(p.id, p.bundle, p.layer);
  }
}

const sh = (script: string) => ["sh", "-c", script];

function test(name: string, fn: () => Promise<void>) {
  Deno.test({ name, ignore: !root, fn, sanitizeResources: false, sanitizeOps: false });
}

test("runtime: the command is PID 1 with its own hostname, /proc and mounts", async () => {
  const { result, out, id } = await run(
    sh("echo $$; hostname; ps; echo ---; cat /proc/self/mountinfo"),
  );
  assert.equal(result.exitCode, 0);
  assert.equal(result.oomKilled, false);
  const [head, mountinfo] = out.split("---\n");
  const [pid, hostname, ...psLines] = head.trim().split("\n");
  assert.equal(pid, "1");
  assert.equal(hostname, id.slice(0, 12));
  const pids = psLines.slice(1).map((l) => Number(l.trim().split(/\s+/)[0]));
  assert.equal(pids[0], 1);
  assert.equal(pids.length, 2, `only the container's processes (sh, ps):\n${psLines.join("\n")}`);
  const rest = mountinfo.trim().split("\n");
  const mountpoints = rest.filter((l) => l.includes(" - ")).map((l) => l.split(" ")[4]);
  assert.ok(mountpoints.includes("/") && mountpoints.includes("/proc"));
  for (const m of mountpoints) {
    assert.match(
      m,
      /^\/($|proc|dev|sys|etc\/(hosts|hostname|resolv\.conf)$)/,
      `host mount visible: ${m}`,
    );
  }
  assert.ok(!out.includes("/work/"), "no host path in the container's mountinfo mount points");
});

test("runtime: exit statuses 0 and 3; 127 not found, 126 not executable", async () => {
  assert.equal((await run(["true"])).result.exitCode, 0);
  assert.equal((await run(sh("exit 3"))).result.exitCode, 3);
  const notFound = await run(["nosuch"]).catch((e) => e);
  assert.ok(notFound instanceof ContainerStartError, String(notFound));
  assert.equal(notFound.exitCode, 127);
  assert.equal(notFound.message, 'exec: "nosuch": executable file not found in $PATH');
  const noFile = await run(["/nonexistent"]).catch((e) => e);
  assert.equal(noFile.exitCode, 127);
  assert.match(noFile.message, /no such file or directory/);
  const notExec = await run(["/etc/passwd"]).catch((e) => e);
  assert.ok(notExec instanceof ContainerStartError);
  assert.equal(notExec.exitCode, 126);
  assert.equal(notExec.message, 'exec: "/etc/passwd": permission denied');
});

test("runtime: killed by SIGKILL exits 137; abort kills", async () => {
  const killed = await run(["sleep", "30"], {}, { onStart: (pid) => Deno.kill(pid, "SIGKILL") });
  assert.equal(killed.result.exitCode, 137);
  assert.equal(killed.result.signal, "SIGKILL");
  const ac = new AbortController();
  const aborted = await run(["sleep", "30"], {}, {
    signal: ac.signal,
    onStart: () => setTimeout(() => ac.abort(), 50),
  });
  assert.equal(aborted.result.exitCode, 137);
});

test("runtime: docker's capabilities and no_new_privs", async () => {
  const { out } = await run(
    sh("grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status"),
  );
  assert.equal(
    out,
    "CapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\n" +
      "CapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\n",
  );
  const added = await run(sh("grep CapEff /proc/self/status"), {
    capAdd: ["SYS_ADMIN"],
    capDrop: ["NET_RAW"],
  });
  assert.equal(added.out, "CapEff:\t00000000a82405fb\n");
});

test("runtime: devices: mknod is allowed, using a block device is not", async () => {
  const { out } = await run(
    sh(
      "mknod /tmp/disk b 7 0 && echo made; head -c1 /tmp/disk >/dev/null 2>/tmp/err; cat /tmp/err; " +
        "head -c1 /dev/zero | wc -c",
    ),
  );
  assert.equal(out, "made\nhead: /tmp/disk: Operation not permitted\n1\n");
});

test("runtime: --memory 32m OOM-kills a memory hog: 137 and oomKilled", async () => {
  const { result } = await run(["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"], {
    memory: "32m",
  });
  assert.equal(result.exitCode, 137);
  assert.equal(result.oomKilled, true);
  const ok = await run(["dd", "if=/dev/zero", "of=/dev/null", "bs=4M", "count=1"], {
    memory: "32m",
  });
  assert.equal(ok.result.exitCode, 0);
  assert.equal(ok.result.oomKilled, false);
});

test("runtime: --cpus and --memory reach the container's cgroup", async () => {
  const { out } = await run(
    sh(
      "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us " +
        "/sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/memory.max",
    ),
    { cpus: 0.5, memory: "64m" },
  );
  assert.ok(out === "50000\n100000\n67108864\n" || out === "50000 100000\n67108864\n", out);
});

test("runtime: --pids-limit contains forks and a fork bomb", async () => {
  const layout = detectCgroupLayout();
  const pids = layout.version === "v2"
    ? layout.mountpoint
    : layout.hierarchies.find((h) => h.controllers.includes("pids"))!.mountpoint;
  const peak = (id: string) => Number(Deno.readTextFileSync(`${pids}/berth/${id}/pids.peak`));
  // forks until the kernel refuses: busybox sh then gives up with status 2
  let limit = "";
  let peaked = 0;
  let poll: ReturnType<typeof setInterval> | undefined;
  const forks = await run(sh("sleep 0.3; while :; do sleep 2 & done"), { pidsLimit: 10 }, (id) => ({
    onStart: () => {
      limit = Deno.readTextFileSync(`${pids}/berth/${id}/pids.max`).trim();
      poll = setInterval(() => {
        try {
          peaked = Math.max(peaked, peak(id));
        } catch { /* removed */ }
      }, 5);
    },
  })).finally(() => clearInterval(poll));
  assert.equal(limit, "10");
  assert.equal(forks.result.exitCode, 2);
  assert.match(forks.err, /can't fork: Resource temporarily unavailable/);
  assert.ok(peaked >= 2 && peaked <= 10, `pids.peak ${peaked}`); // sampled: never above the limit

  // a real fork bomb, stopped after a second
  const ac = new AbortController();
  let max = 0;
  let watch: ReturnType<typeof setInterval> | undefined;
  // The bomb runs in a subshell; PID 1 then lives on a second, so the cgroup (and its pids.peak
  // high-water mark) is still there to read even when the bomb dies out within milliseconds.
  const bomb = await run(
    sh("(f() { f | f & }; f; wait) 2>/dev/null; sleep 1"),
    { pidsLimit: 20 },
    (id) => ({
      signal: ac.signal,
      onStart: () => {
        const started = Date.now();
        watch = setInterval(() => {
          try {
            max = Math.max(max, peak(id));
          } catch { /* gone */ }
          if (Date.now() - started > 1000) ac.abort();
        }, 20);
      },
    }),
  ).finally(() => clearInterval(watch));
  // it dies out on its own (forks fail) or is stopped: either way it stayed in its limit
  assert.ok([0, 2, 137].includes(bomb.result.exitCode), String(bomb.result.exitCode));
  assert.ok(max > 1 && max <= 20, `pids.current peaked at ${max}`);
});

test("runtime: -v SRC:DST:ro cannot be written, rw writes through", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "berth-vol-" });
  try {
    Deno.writeTextFileSync(`${dir}/f`, "hello\n");
    const ro = await run(sh("cat /data/f; echo x > /data/f"), { volumes: [`${dir}:/data:ro`] });
    assert.equal(ro.result.exitCode, 1);
    assert.equal(ro.out, "hello\n");
    assert.match(ro.err, /Read-only file system/);
    assert.equal(Deno.readTextFileSync(`${dir}/f`), "hello\n");
    const rw = await run(sh("echo new > /deep/er/g"), { volumes: [`${dir}:/deep/er`] });
    assert.equal(rw.result.exitCode, 0);
    assert.equal(Deno.readTextFileSync(`${dir}/g`), "new\n");
    const file = await run(sh("cat /etc/x.conf"), { volumes: [`${dir}/f:/etc/x.conf:ro`] });
    assert.equal(file.out, "hello\n");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

test("runtime: -u 1000 and -u app switch user and groups", async () => {
  const expected = "uid=1000(app) gid=1000(app) groups=50(staff),1001(extra)\n";
  for (const user of ["1000", "app"]) {
    const { out } = await run(sh("id; grep CapEff /proc/self/status"), { user });
    assert.equal(out, expected + "CapEff:\t0000000000000000\n");
  }
  assert.equal(
    (await run(["id"], { user: "4242:50" })).out,
    "uid=4242 gid=50(staff)\n",
  );
  const { out } = await run(sh("touch /root/x"), { user: "app" }).then((r) => ({ out: r.err }));
  assert.match(out, /Permission denied/);
});

test("runtime: --read-only root, --tmpfs mounts", async () => {
  const { result, out, err } = await run(
    sh(
      "touch /x; echo a > /dev/shm/a && cat /dev/shm/a; echo b > /run/b && cat /run/b; " +
        "grep ' /run ' /proc/self/mountinfo",
    ),
    { readOnly: true, tmpfs: ["/run:size=1m"] },
  );
  assert.equal(result.exitCode, 0);
  assert.match(err, /touch: \/x: Read-only file system/);
  const [a, b, line] = out.trim().split("\n");
  assert.equal(a, "a");
  assert.equal(b, "b");
  assert.match(line, / \/run rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,size=1024k/);
});

test("runtime: environment and working directory", async () => {
  const { out } = await run(sh('pwd; echo "$FOO|$HOME|$HOSTNAME|$PATH"'), {
    env: ["FOO=bar baz"],
    workdir: "/work/dir",
    hostname: "box",
  });
  assert.equal(out, `/work/dir\nbar baz|/root|box|${DEFAULT_PATH}\n`);
});

test("runtime: descriptors the engine holds are not inherited", async () => {
  // opened without O_CLOEXEC, so a plain spawn would pass it on
  const fd = ffi.openat(ffi.AT_FDCWD, "/etc/hostname", ffi.O_RDONLY);
  try {
    const { out } = await run(["ls", "/proc/self/fd"]);
    assert.deepEqual(out.trim().split(/\s+/).sort(), ["0", "1", "2", "3"]); // 3: ls's own dir
    assert.ok(fd > 3);
  } finally {
    ffi.close(fd);
  }
});

test("runtime: network none has only lo (up); network host sees the host's links", async () => {
  const none = await run(sh("ip -o link"));
  const links = none.out.trim().split("\n");
  assert.equal(links.length, 1);
  assert.match(links[0], /^1: lo: <LOOPBACK,UP,LOWER_UP>/);
  const host = await run(sh("ip -o link"), { network: "host" });
  const hostLinks = Deno.readDirSync("/sys/class/net").toArray().length;
  assert.equal(host.out.trim().split("\n").length, hostLinks);
});

test("runtime: -t gives a real terminal from the container's devpts", async () => {
  const { result, out } = await run(sh("tty; stty size; echo done"), {
    tty: true,
    consoleSize: { rows: 30, columns: 100 },
  });
  assert.equal(result.exitCode, 0);
  assert.equal(out, "/dev/pts/0\r\n30 100\r\ndone\r\n");
  // input through the terminal
  const typed = await run(["sh"], { tty: true }, { stdin: "piped", input: "echo hi; exit 7\n" });
  assert.equal(typed.result.exitCode, 7);
  assert.match(typed.out, /\r\nhi\r\n/);
});

test("runtime: -t -i on a real terminal: raw relay, window size and SIGWINCH", async () => {
  const p = await prepare(["sh"], { tty: true, interactive: true });
  const helper = `${p.layer}/engine.ts`;
  const run = new URL("../core/runtime/run.ts", import.meta.url).href;
  const tty = new URL("../ffi/tty.ts", import.meta.url).href;
  // the engine, on the terminal `script` gives it; on SIGUSR1 it resizes its own terminal, which
  // sends it SIGWINCH
  Deno.writeTextFileSync(
    helper,
    `import { runContainer } from ${JSON.stringify(run)};
     import { ioctlSetWinsize } from ${JSON.stringify(tty)};
     const [spec, options] = JSON.parse(Deno.readTextFileSync(${
      JSON.stringify(`${p.layer}/args.json`)
    }));
     const { rows, columns } = Deno.consoleSize();
     spec.process.consoleSize = { height: rows, width: columns };
     Deno.writeTextFileSync(${JSON.stringify(`${p.layer}/pid`)}, String(Deno.pid));
     Deno.addSignalListener("SIGUSR1", () => ioctlSetWinsize(0, { rows: 40, columns: 100 }));
     const r = await runContainer(spec, { ...options, stdin: "inherit", stdout: "inherit", stderr: "inherit" });
     Deno.exit(r.exitCode);`,
  );
  Deno.writeTextFileSync(`${p.layer}/args.json`, JSON.stringify([p.spec, p.runOptions]));
  const script = new Deno.Command("script", {
    args: ["-qfec", `stty cols 77 rows 22; ${Deno.execPath()} run -A ${helper}`, "/dev/null"],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const w = script.stdin.getWriter();
  const r = script.stdout.getReader();
  let text = "";
  const until = async (re: RegExp) => {
    while (!re.test(text)) {
      const { value, done } = await r.read();
      if (done) assert.fail(`no ${re} in:\n${text}`);
      text += new TextDecoder().decode(value);
    }
  };
  const say = (line: string) => w.write(new TextEncoder().encode(line + "\r"));
  await until(/\/ # /); // the container's shell prompts
  await say("tty; stty size");
  // both terminals (the container's and script's) turn \n into \r\n
  await until(/\/dev\/pts\/0\r+\n22 77\r+\n/);
  Deno.kill(Number(Deno.readTextFileSync(`${p.layer}/pid`)), "SIGUSR1");
  await say("sleep 0.3; stty size; exit 5");
  await until(/40 100\r+\n/);
  await w.close();
  r.releaseLock();
  await script.stdout.cancel();
  assert.equal((await script.status).code, 5);
  await assertClean(p.id, p.bundle, p.layer);
});

test("runtime: piped stdin; SIGTERM forwarded to the container", async () => {
  const cat = await run(["cat"], {}, { stdin: "piped", input: "hello\n" });
  assert.equal(cat.out, "hello\n");
  const { result } = await run(sh('trap "exit 42" TERM; while :; do sleep 0.05; done'), {}, {
    onStart: () => setTimeout(() => Deno.kill(Deno.pid, "SIGTERM"), 200),
  });
  assert.equal(result.exitCode, 42);
});

test("runtime: cgroup2 placement (here: the hybrid's unified hierarchy)", async () => {
  const layout = detectCgroupLayout();
  let cgroup = "";
  const { result } = await run(["sleep", "10"], {}, {
    onStart: (pid) => {
      cgroup = Deno.readTextFileSync(`/proc/${pid}/cgroup`);
      Deno.kill(pid, "SIGKILL");
    },
  });
  assert.equal(result.exitCode, 137);
  const v2 = cgroup.split("\n").find((l) => l.startsWith("0::"));
  if (layout.version === "v1") return;
  assert.match(v2!, /^0::\/berth\/[0-9a-f]{64}$/);

  // a Cgroup made directly in a cgroup2 hierarchy: place, kill, remove
  const mountpoint = layout.version === "v2" ? layout.mountpoint : layout.unified!.mountpoint;
  const cg = Cgroup.create(`berth/v2-${newId()}`, undefined, {
    layout: { version: "v2", mountpoint, own: "/" },
  });
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  cg.place(child.pid);
  assert.match(Deno.readTextFileSync(`/proc/${child.pid}/cgroup`), /^0::\/berth\/v2-/m);
  assert.deepEqual(cg.pids(), [child.pid]);
  await cg.remove();
  assert.equal((await child.status).signal, "SIGKILL");
  assert.ok(!exists(cg.dirs[0]));
});

test("runtime: device rules on cgroup2 are enforced by a BPF filter", async () => {
  const layout = detectCgroupLayout();
  if (layout.version === "v1") return;
  const mountpoint = layout.version === "v2" ? layout.mountpoint : layout.unified!.mountpoint;
  const dir = Deno.makeTempDirSync({ prefix: "berth-dev-" });
  try {
    for (
      const [name, type, major, minor] of [["null", "c", 1, 3], ["zero", "c", 1, 5], [
        "blk",
        "b",
        7,
        0,
      ]]
    ) {
      new Deno.Command("mknod", { args: [`${dir}/${name}`, `${type}`, `${major}`, `${minor}`] })
        .outputSync();
    }
    const cg = Cgroup.create(`berth/dev-${newId()}`, {
      devices: [{ allow: false, access: "rwm" }, {
        allow: true,
        type: "c",
        major: 1,
        minor: 3,
        access: "rwm",
      }],
    }, { layout: { version: "v2", mountpoint, own: "/" } });
    try {
      const script =
        `read x; for d in null zero blk; do head -c1 ${dir}/$d >/dev/null 2>&1 && echo $d:ok || echo $d:denied; done`;
      const child = new Deno.Command("sh", {
        args: ["-c", script],
        stdin: "piped",
        stdout: "piped",
      }).spawn();
      cg.place(child.pid);
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode("go\n"));
      await w.close();
      const out = new TextDecoder().decode((await child.output()).stdout);
      assert.equal(out, "null:ok\nzero:denied\nblk:denied\n");
    } finally {
      await cg.remove();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

test("runtime: a failing init step cleans up (bind source gone, bad lowerdir)", async () => {
  const p = await prepare(["true"]);
  p.spec.mounts!.push({
    destination: "/data",
    type: "bind",
    source: `${p.dir}/gone`,
    options: ["rbind"],
  });
  const e = await runContainer(p.spec, p.runOptions).catch((e) => e);
  assert.ok(e instanceof ContainerStartError, String(e));
  assert.equal(e.exitCode, 125);
  assert.match(e.message, /mount ".*\/gone" to "\/data": ENOENT/);
  await assertClean(p.id, p.bundle, p.layer);

  const q = await prepare(["true"]);
  const bad = {
    ...q.runOptions,
    rootfs: {
      lowerdirs: [`${q.dir}/nope`],
      upperdir: `${q.layer}/upper`,
      workdir: `${q.layer}/work`,
    },
  };
  const e2 = await runContainer(q.spec, bad).catch((e) => e);
  assert.ok(e2 instanceof ContainerStartError);
  assert.equal(e2.exitCode, 125);
  assert.match(e2.message, /mount\("[^"]*rootfs"\): ENOENT/);
  await assertClean(q.id, q.bundle, q.layer);
});

test("runtime: a failing engine step undoes the earlier ones (cgroup exists)", async () => {
  const p = await prepare(["true"]);
  const taken = Cgroup.create(p.spec.linux!.cgroupsPath!, undefined);
  try {
    const e = await runContainer(p.spec, p.runOptions).catch((e) => e);
    assert.ok(e instanceof ConflictError, String(e));
    assert.ok(!exists(p.bundle), "bundle removed");
  } finally {
    await taken.remove();
  }
  await assertClean(p.id, p.bundle, p.layer);
});

test("runtime: the engine's cwd and namespaces are unchanged after runs", async () => {
  const ns = ["mnt", "uts", "ipc", "net", "pid_for_children"].map((n) =>
    Deno.readLinkSync(`/proc/thread-self/ns/${n}`)
  );
  const cwd = Deno.cwd();
  await run(["true"]);
  assert.equal(Deno.cwd(), cwd);
  assert.deepEqual(
    ["mnt", "uts", "ipc", "net", "pid_for_children"].map((n) =>
      Deno.readLinkSync(`/proc/thread-self/ns/${n}`)
    ),
    ns,
  );
});

test("runtime: a plain directory as the rootfs (bind, no overlay)", async () => {
  const p = await prepare(sh("cat /etc/motd; grep ' / ' /proc/self/mountinfo"), { readOnly: true });
  const copy = `${p.layer}/rootfs`;
  await new Deno.Command("cp", { args: ["-a", `${p.dir}/rootfs`, copy] }).output();
  const result = await runContainer(p.spec, { ...p.runOptions, rootfs: { dir: copy } });
  assert.equal(result.exitCode, 0);
  const [motd, line] = new TextDecoder().decode(result.stdout).trim().split("\n");
  assert.equal(motd, "berth fixture layer 1");
  assert.match(line, / \/ ro,/);
  assert.ok(exists(`${copy}/proc`), "mount points are made in the directory");
  await assertClean(p.id, p.bundle, p.layer);
});

test("runtime: an init prepared ahead of the spec runs it; a mismatched one is refused", async () => {
  const p = await prepare(sh("echo $$"));
  const stdio = { stdin: "null", stdout: "piped", stderr: "piped" } as const;
  const init = prepareInit(containerNamespaces("none"), stdio);
  await new Promise((r) => setTimeout(r, 50)); // the caller's own work meanwhile
  const result = await runContainer(p.spec, { ...p.runOptions, init });
  assert.equal(result.exitCode, 0);
  assert.equal(new TextDecoder().decode(result.stdout), "1\n");
  await assertClean(p.id, p.bundle, p.layer);

  const q = await prepare(["true"]);
  const wrong = prepareInit([{ type: "pid" }], stdio);
  const e = await runContainer(q.spec, { ...q.runOptions, init: wrong }).catch((e) => e);
  assert.ok(e instanceof TypeError, String(e));
  await assertClean(q.id, q.bundle, q.layer);
  await discardInit(prepareInit([{ type: "pid" }], stdio));
});

// Starts ["sleep", "30"] with `options` from an engine process of its own, kills that engine and
// asserts the container dies too.
async function diesWithEngine(options: Partial<RunOptions>): Promise<void> {
  const p = await prepare(["sleep", "30"], options);
  const script = `
    import { runContainer } from ${
    JSON.stringify(new URL("../core/runtime/run.ts", import.meta.url).href)
  };
    const [spec, options] = JSON.parse(Deno.args[0]);
    await runContainer(spec, { ...options, onStart: (pid) => console.log(pid) });`;
  const engine = new Deno.Command(Deno.execPath(), {
    args: ["eval", script, JSON.stringify([p.spec, p.runOptions])],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = engine.stdout.getReader();
  const { value } = await reader.read();
  const pid = Number(new TextDecoder().decode(value).trim());
  assert.ok(pid > 1);
  assert.ok(exists(`/proc/${pid}`));
  engine.kill("SIGKILL");
  await engine.status;
  reader.releaseLock();
  await engine.stdout.cancel();
  // dead: gone, or a zombie its new parent (the host's init) has not reaped yet
  const alive = () => {
    try {
      return !/^\d+ \(.*\) Z /.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 200 && alive(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(!alive(), "the container outlived its engine");
  // what the killed engine could not clean up: its (now empty) cgroup and bundle
  for (const d of cgroupDirs(p.id)) if (exists(d)) Deno.removeSync(d);
  Deno.removeSync(p.bundle, { recursive: true });
  await assertClean(p.id, p.bundle, p.layer);
}

test("runtime: the container dies with its engine (PR_SET_PDEATHSIG)", async () => {
  await diesWithEngine({});
});

test("runtime: a container run as non-root dies with its engine too", async () => {
  // setresuid to a non-root user clears the parent-death signal: the init sets it again
  await diesWithEngine({ user: "1000" });
});

test("runtime: stdout and stderr streamed to sinks, apart, as they come", async () => {
  // the container goes on only once the test has received its first lines (or gives up after
  // 10 s): proof that they came while it ran
  const got: string[] = [];
  let pid = 0;
  const sink = (name: string) =>
    new WritableStream<Uint8Array>({
      write(chunk) {
        for (const line of new TextDecoder().decode(chunk).trim().split("\n")) {
          got.push(`${name}:${line}`);
        }
        go();
      },
    });
  // the lines may come before onStart
  const go = () => {
    if (pid && got.includes("out:one") && got.includes("err:two")) {
      Deno.writeTextFileSync(`/proc/${pid}/root/tmp/go`, "");
    }
  };
  const script = "echo one; echo two >&2; i=0; " +
    "while [ ! -e /tmp/go ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; " +
    "[ -e /tmp/go ] && echo three || echo timeout";
  const { result } = await run(sh(script), {}, {
    stdout: sink("out"),
    stderr: sink("err"),
    onStart: (p) => {
      pid = p;
      go();
    },
  });
  assert.equal(result.exitCode, 0);
  assert.equal(result.stdout, undefined);
  assert.equal(result.stderr, undefined);
  assert.deepEqual(got.sort(), ["err:two", "out:one", "out:three"]);

  // with a terminal, its output goes to the stdout sink
  let tty = "";
  const t = await run(sh("echo hi; echo there >&2"), { tty: true }, {
    stdout: new WritableStream({ write: (c) => void (tty += new TextDecoder().decode(c)) }),
    stderr: new WritableStream({ write: () => assert.fail("stderr with a terminal") }),
  });
  assert.equal(t.result.exitCode, 0);
  assert.equal(tty, "hi\r\nthere\r\n");

  // a sink that fails is dropped: the container goes on (no SIGPIPE) and exits normally
  const failing = await run(
    sh("for i in $(seq 1 2000); do echo line $i; done; echo done >&2"),
    {},
    {
      stdout: new WritableStream({
        write: () => {
          throw new Error("disk full");
        },
      }),
    },
  );
  assert.equal(failing.result.exitCode, 0);
  assert.equal(failing.err, "done\n");
});

test("runtime: onStart gives the pid and its start time; processAlive", async () => {
  let info: { pid: number; startTime: string } | undefined;
  let aliveAtStart = false;
  const { result } = await run(["sleep", "0.2"], {}, {
    onStart: (pid, i) => {
      info = i;
      assert.equal(i.pid, pid);
      aliveAtStart = processAlive(pid, i.startTime);
    },
  });
  assert.equal(result.exitCode, 0);
  assert.ok(info && /^\d+$/.test(info.startTime), JSON.stringify(info));
  assert.ok(aliveAtStart);
  assert.equal(processAlive(info!.pid, info!.startTime), false);
});

test("runtime: processStartTime reads field 22 whatever the command's name", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "berth-comm-" });
  try {
    // comm "a) b (c d) 1 2": spaces and parentheses, and digits where fields would be
    const exe = `${dir}/a) b (c d) 1 2`;
    Deno.copyFileSync("/bin/sleep", exe);
    Deno.chmodSync(exe, 0o755);
    const child = new Deno.Command(exe, { args: ["5"] }).spawn();
    try {
      let stat = "";
      for (let i = 0; i < 100 && !stat.includes("(a) b (c d) 1 2)"); i++) {
        await new Promise((r) => setTimeout(r, 5));
        stat = Deno.readTextFileSync(`/proc/${child.pid}/stat`);
      }
      assert.ok(stat.includes("(a) b (c d) 1 2)"), stat);
      const start = processStartTime(child.pid);
      const expected = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
      assert.equal(start, expected);
      assert.notEqual(start, stat.split(" ")[21]); // a naive split is fooled
      assert.ok(Number(start) >= Number(processStartTime(Deno.pid)));
      assert.ok(processAlive(child.pid, start!));
      assert.equal(processAlive(child.pid, String(Number(start) + 1)), false);
      child.kill("SIGKILL");
      await child.status;
      assert.equal(processStartTime(child.pid), undefined);
      assert.equal(processAlive(child.pid, start!), false);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  assert.equal(processStartTime(-1), undefined);
  assert.equal(processStartTime(2 ** 40), undefined);
});

test("runtime: the command starts with no signal ignored or blocked (SIGPIPE kills)", async () => {
  // Deno's runtime ignores SIGPIPE; execve would pass that on to the container's command
  const { out } = await run(sh("grep -E '^Sig(Blk|Ign)' /proc/self/status; yes | head -c2"));
  assert.equal(out, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\ny\n");
});

test("runtime: image symlinks cannot move /proc, /dev or /sys away from their masks", async () => {
  // the reviewed attack: /dev/pts -> /a/b/c, /proc -> dev/pts/../../w put proc at /a/w, then the
  // /dev tmpfs changed what /proc resolved to, every mask was skipped (ENOENT) and
  // /a/w/sys/kernel was writable
  const hostDomain = Deno.readTextFileSync("/proc/sys/kernel/domainname");
  const cases: [string, (dir: string) => void, RegExp][] = [
    ["proc", (d) => {
      Deno.mkdirSync(`${d}/dev`);
      Deno.mkdirSync(`${d}/a/b/c`, { recursive: true });
      Deno.mkdirSync(`${d}/a/w`);
      // what /proc resolves to once /dev is mounted: a fake /proc (see cap_last_cap below)
      Deno.mkdirSync(`${d}/w/sys/kernel`, { recursive: true });
      Deno.writeTextFileSync(`${d}/w/sys/kernel/cap_last_cap`, "40\n");
      Deno.symlinkSync("/a/b/c", `${d}/dev/pts`);
      Deno.symlinkSync("dev/pts/../../w", `${d}/proc`);
    }, /^mount proc to "\/proc": a symlink in the image is on the way/],
    ["dev", (d) => {
      Deno.mkdirSync(`${d}/elsewhere`);
      Deno.symlinkSync("/elsewhere", `${d}/dev`);
    }, /^mount tmpfs to "\/dev": a symlink in the image is on the way/],
    ["sys", (d) => {
      Deno.mkdirSync(`${d}/s`);
      Deno.symlinkSync("s", `${d}/sys`);
    }, /^mount sysfs to "\/sys": a symlink in the image is on the way/],
  ];
  for (const [name, build, message] of cases) {
    const evil = Deno.makeTempDirSync({ prefix: `berth-evil-${name}-` });
    try {
      build(evil);
      const p = await prepare(
        sh(
          "echo x > /a/w/sys/kernel/domainname && echo unmasked; grep ' /proc ' /proc/self/mountinfo",
        ),
      );
      const rootfs = { ...p.runOptions.rootfs, lowerdirs: [evil, `${p.dir}/rootfs`] };
      const e = await runContainer(p.spec, { ...p.runOptions, rootfs } as RunContainerOptions)
        .catch((e) => e);
      const out = new TextDecoder().decode(e.stdout ?? new Uint8Array());
      assert.ok(e instanceof ContainerStartError, `${name}: started: ${out}`);
      assert.equal(e.exitCode, 125);
      assert.match(e.message, message);
      assert.ok(!e.message.includes("\n"), "one line");
      await assertClean(p.id, p.bundle, p.layer);
    } finally {
      Deno.removeSync(evil, { recursive: true });
    }
  }
  assert.equal(Deno.readTextFileSync("/proc/sys/kernel/domainname"), hostDomain);

  // a mount that lands on /proc through an image symlink (--tmpfs /run, /run -> /proc) hides
  // the masked paths: an error, not masks skipped
  const evil = Deno.makeTempDirSync({ prefix: "berth-evil-run-" });
  try {
    Deno.symlinkSync("/proc", `${evil}/run`);
    const p = await prepare(["true"], { tmpfs: ["/run"] });
    const rootfs = { ...p.runOptions.rootfs, lowerdirs: [evil, `${p.dir}/rootfs`] };
    const e = await runContainer(p.spec, { ...p.runOptions, rootfs } as RunContainerOptions)
      .catch((e) => e);
    assert.ok(e instanceof ContainerStartError, `started: ${JSON.stringify(e)}`);
    assert.equal(e.exitCode, 125);
    assert.match(e.message, /^\/proc\/\S+ is missing from the container's \/proc or \/sys$/);
    await assertClean(p.id, p.bundle, p.layer);
  } finally {
    Deno.removeSync(evil, { recursive: true });
  }
});

test("runtime: the bounding set does not trust the container's cap_last_cap", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "berth-caplast-" });
  try {
    Deno.writeTextFileSync(`${dir}/cap_last_cap`, "5\n");
    const { out } = await run(
      sh("cat /proc/sys/kernel/cap_last_cap; grep CapBnd /proc/self/status"),
      {
        volumes: [`${dir}/cap_last_cap:/proc/sys/kernel/cap_last_cap:ro`],
      },
    );
    assert.equal(out, "5\nCapBnd:\t00000000a80425fb\n");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

// Removes `dir`, again for a second if files still land in it (Deno's cache files from an init's
// start, seen under load).
async function removeSoon(dir: string): Promise<void> {
  for (let i = 0;; i++) {
    try {
      return Deno.removeSync(dir, { recursive: true });
    } catch (e) {
      if (i === 50) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

test("runtime: the init gets none of the engine's environment; DENO_DIR is kept", async () => {
  const denoDir = Deno.makeTempDirSync({ prefix: "berth-denodir-" });
  const saved = Deno.env.get("DENO_DIR");
  Deno.env.set("BERTH_TEST_SECRET", "hunter2");
  Deno.env.set("DENO_DIR", denoDir);
  try {
    const p = await prepare(sh("echo $$"));
    const stdio = { stdin: "null", stdout: "piped", stderr: "piped" } as const;
    const init = prepareInit(containerNamespaces("none"), stdio);
    let environ = "";
    for (let i = 0; i < 500 && !environ.includes("DENO_NO_UPDATE_CHECK"); i++) {
      if (Deno.readTextFileSync(`/proc/${init.pid}/cmdline`).includes("__init")) {
        environ = Deno.readTextFileSync(`/proc/${init.pid}/environ`);
      } else await new Promise((r) => setTimeout(r, 2));
    }
    const keys = environ.split("\0").filter(Boolean).map((e) => e.split("=")[0]);
    assert.ok(!keys.includes("BERTH_TEST_SECRET"), environ);
    assert.ok(!keys.includes("PATH"), environ);
    for (const k of keys) {
      assert.ok(
        ["DENO_DIR", "HOME", "XDG_CACHE_HOME", "NO_COLOR", "DENO_NO_UPDATE_CHECK"].includes(k),
        k,
      );
    }
    assert.ok(environ.includes(`DENO_DIR=${denoDir}\0`), environ);
    // Deno starts with it (its modules compiled into the caller's DENO_DIR) and runs the container
    const result = await runContainer(p.spec, { ...p.runOptions, init });
    assert.equal(result.exitCode, 0);
    assert.equal(new TextDecoder().decode(result.stdout), "1\n");
    assert.ok([...Deno.readDirSync(denoDir)].length > 0, "the init used the caller's DENO_DIR");
    await assertClean(p.id, p.bundle, p.layer);
  } finally {
    Deno.env.delete("BERTH_TEST_SECRET");
    if (saved === undefined) Deno.env.delete("DENO_DIR");
    else Deno.env.set("DENO_DIR", saved);
    await removeSoon(denoDir);
  }
});

test("runtime: uid or gid -1 in a spec is refused (it would keep root)", async () => {
  const p = await prepare(["id", "-u"]);
  p.spec.process.user = { uid: -1, gid: -1 };
  const e = await runContainer(p.spec, p.runOptions).catch((e) => e);
  assert.ok(e instanceof ContainerStartError, String(e));
  assert.equal(e.exitCode, 125);
  assert.equal(e.message, "invalid user or group id: -1");
  await assertClean(p.id, p.bundle, p.layer);
});

test("runtime: descriptors that come with a repeated or unexpected init message are closed", async () => {
  const [engine, init] = ffi.socketpair(ffi.AF_UNIX, ffi.SOCK_SEQPACKET | ffi.SOCK_CLOEXEC);
  const extra = ffi.openat(ffi.AT_FDCWD, "/dev/null", ffi.O_RDONLY | ffi.O_CLOEXEC);
  const open = () => [...Deno.readDirSync("/proc/self/fd")].length;
  const before = open();
  const msg = (m: unknown) => new TextEncoder().encode(JSON.stringify(m));
  ffi.sendmsg(init, msg({ t: "pty" }), [extra]);
  ffi.sendmsg(init, msg({ t: "pty" }), [extra]);
  ffi.sendmsg(init, msg({ t: "exec" }), [extra]);
  ffi.close(init);
  const { pty } = await awaitExec(
    engine,
    Promise.resolve({ success: true, code: 0, signal: null }),
  );
  assert.ok(pty !== undefined);
  ffi.close(pty);
  ffi.close(engine);
  ffi.close(extra);
  assert.equal(open(), before - 3);
});

// The direct start (the engine's thread spawns the command, no init process) in an engine
// process of its own: what the container gets, and that the thread gets its namespaces, root,
// cwd, umask, credentials and cgroups back (only the bounding set and no_new_privs stay the
// container's), also when the start fails. With `exec`, the command is exec'd directly into a
// container the engine started through the init process. `wrap` runs the engine under another
// command (e.g. `nohup`, which leaves SIGHUP ignored).
async function directRun(
  cmd: string[],
  options: Partial<RunOptions> = {},
  how: {
    exec?: string[];
    wrap?: string[];
    setUp?: (upper: string) => void;
    runOptions?: Partial<RunContainerOptions>;
  } = {},
) {
  const p = await prepare(cmd, options);
  Object.assign(p.runOptions, how.runOptions);
  how.setUp?.(`${p.layer}/upper`);
  const url = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);
  const script = `
    import { prepareInit, runContainer } from ${url("../core/runtime/run.ts")};
    import { execInContainer, prepareExec } from ${url("../core/runtime/exec.ts")};
    import { execProcess } from ${url("../core/runtime/exec_spec.ts")};
    import { umask } from ${url("../ffi/process.ts")};
    const [spec, options, execCmd] = JSON.parse(Deno.args[0]);
    const state = () => {
      const mask = umask(0o027);
      umask(mask);
      const status = Deno.readTextFileSync("/proc/thread-self/status").split("\\n")
        .filter((l) => /^(Uid|Gid|Groups|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|SigIgn):/.test(l));
      const ns = ["mnt", "uts", "ipc", "net", "pid_for_children", "cgroup", "pid"]
        .map((n) => Deno.readLinkSync("/proc/thread-self/ns/" + n));
      return {
        status,
        ns,
        root: Deno.readLinkSync("/proc/thread-self/root"),
        cwd: Deno.cwd(),
        umask: mask,
        cgroup: Deno.readTextFileSync("/proc/thread-self/cgroup"),
      };
    };
    umask(0o007);
    Deno.chdir("/usr");
    const stdio = { stdin: "null", stdout: "piped", stderr: "piped" };
    const dec = new TextDecoder();
    let before, after, init, r, error, box, target;
    try {
      if (execCmd) {
        // the target: started through the init process, as run -d does
        let started;
        const up = new Promise((ok) => started = ok);
        box = runContainer(spec, { ...options, stdout: "null", stderr: "null",
          onStart: (pid, info) => started(info) });
        target = await up;
        before = state();
        init = prepareExec(target, stdio, { direct: true });
        r = await execInContainer(target, execProcess(spec, { command: execCmd, pid: target.pid }),
          { ...stdio, init, timing: true });
      } else {
        before = state();
        init = prepareInit(spec.linux.namespaces, stdio, { direct: true });
        r = await runContainer(spec, { ...options, init, timing: true });
      }
    } catch (e) {
      error = { code: e.exitCode, message: e.message };
    }
    after = state();
    if (box) {
      Deno.kill(target.pid, "SIGKILL");
      await box;
    }
    console.log(JSON.stringify({
      kind: init?.kind, before, after, error, code: r?.exitCode, timing: r?.timing,
      out: r && dec.decode(r.stdout), err: r && dec.decode(r.stderr),
    }));
    Deno.exit(0);`;
  try {
    const out = await new Deno.Command(how.wrap?.[0] ?? Deno.execPath(), {
      args: [
        ...(how.wrap ? [...how.wrap.slice(1), Deno.execPath()] : []),
        "eval",
        script,
        JSON.stringify([p.spec, p.runOptions, how.exec]),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    assert.ok(out.success, "the engine process failed");
    return { ...JSON.parse(new TextDecoder().decode(out.stdout)), id: p.id };
  } finally {
    await assertClean(p.id, p.bundle, p.layer);
  }
}

const directKernel = (() => {
  const [major, minor] = Deno.osRelease().split(".").map(Number);
  return major > 6 || (major === 6 && minor >= 15);
})();

// the thread's state is back: everything but the bounding set and no_new_privs
function assertStateBack(d: { before: Record<string, unknown>; after: Record<string, unknown> }) {
  const keep = (s: unknown) => (s as string[]).filter((l) => !/^(CapBnd|NoNewPrivs):/.test(l));
  assert.deepEqual(keep(d.after.status), keep(d.before.status));
  assert.deepEqual(
    { ...d.after, status: undefined },
    { ...d.before, status: undefined },
    "namespaces, root, cwd, umask and cgroups",
  );
}

function directTest(name: string, fn: () => Promise<void>) {
  Deno.test({
    name,
    ignore: !root || !directKernel, // procfs pidns= needs Linux 6.15
    fn,
    sanitizeResources: false,
    sanitizeOps: false,
  });
}

const PROBE = "echo $$; hostname; id; umask; pwd; " +
  "grep -E '^(Cap|NoNewPrivs|Sig(Blk|Ign))' /proc/self/status; cat /proc/self/cgroup";

directTest(
  "runtime: a direct start gives the container what the init gives; the engine's thread gets its state back",
  async () => {
    for (const user of [undefined, "1000:1000"]) {
      const options: Partial<RunOptions> = user ? { user } : {};
      const d = await directRun(sh(PROBE), options);
      assert.equal(d.kind, "direct");
      assert.equal(d.code, 0, d.err);
      assert.notEqual(d.timing.directSpawn, null, "spawned by the engine's thread");
      // the same probe through the init process, in this process
      const i = await run(sh(PROBE), options);
      assert.equal(d.out.replace(d.id.slice(0, 12), "ID"), i.out.replace(i.id.slice(0, 12), "ID"));
      assert.match(d.out, /^1\n/);
      assertStateBack(d);
      assert.ok(d.after.status.includes("NoNewPrivs:\t1"));
      assert.ok(d.after.status.includes("CapBnd:\t00000000a80425fb"));
    }
  },
);

// Entries in binfmt_misc: the kernel may run foreign executables.
function binfmtMisc(): boolean {
  try {
    return [...Deno.readDirSync("/proc/sys/fs/binfmt_misc")]
      .some((e) => e.name !== "register" && e.name !== "status");
  } catch {
    return false;
  }
}

// The header of a 64-bit little-endian ELF executable for a machine this one is not (riscv or
// x86_64), padded: what execve refuses with ENOEXEC and glibc's execvp would run with /bin/sh.
function foreignElf(): Uint8Array {
  const h = new Uint8Array(64);
  h.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  h[16] = 2; // ET_EXEC
  h[18] = Deno.build.arch === "x86_64" ? 243 : 62; // EM_RISCV or EM_X86_64
  return h;
}

directTest(
  "runtime: a direct start that fails (127, 126, 125) leaves the engine's thread as it was",
  async () => {
    const cases: [string[], Partial<RunOptions>, number, RegExp][] = [
      [["nosuch"], {}, 127, /"nosuch": executable file not found/],
      // no "#!" and no ELF header: execve refuses it (glibc's execvp would run it with /bin/sh)
      [["/script"], {}, 126, /"\/script": exec format error/],
      [["true"], { tmpfs: ["/x:mode=notoctal"] }, 125, /mount tmpfs to "\/x"/],
      // after the change of user: a command its user may not execute
      [["/secret/true"], { user: "1000:1000", capDrop: ["ALL"] }, 126, /permission denied/],
    ];
    // an executable of another machine (ENOEXEC, unless binfmt_misc runs it)
    if (!binfmtMisc()) cases.push([["/foreign"], {}, 126, /"\/foreign": exec format error/]);
    const setUp = (upper: string) => {
      Deno.writeTextFileSync(`${upper}/script`, "echo hi\n", { mode: 0o755 });
      Deno.writeFileSync(`${upper}/foreign`, foreignElf(), { mode: 0o755 });
      Deno.mkdirSync(`${upper}/secret`, { mode: 0o700 });
      Deno.writeTextFileSync(`${upper}/secret/true`, "#!/bin/sh\n", { mode: 0o755 });
    };
    for (const [cmd, options, code, message] of cases) {
      const d = await directRun(cmd, options, { setUp });
      assert.equal(d.kind, "direct");
      assert.equal(d.error?.code, code, `${cmd}: ${JSON.stringify(d)}`);
      assert.match(d.error.message, message);
      assertStateBack(d);
    }
    // a working directory only root's capabilities can enter: entered before the change of
    // user, as the init (and runc) do
    const w = await directRun(
      ["pwd"],
      { user: "1000:1000", capDrop: ["ALL"], workdir: "/secret" },
      {
        setUp,
      },
    );
    assert.equal(w.code, 0, w.err);
    assert.equal(w.out, "/secret\n");
    assertStateBack(w);
    // the init process refuses the same files the same way (the kernel does)
    for (const file of binfmtMisc() ? ["/script"] : ["/script", "/foreign"]) {
      const p = await prepare([file]);
      setUp(`${p.layer}/upper`);
      const e = await runContainer(p.spec, p.runOptions).catch((e) => e);
      await assertClean(p.id, p.bundle, p.layer);
      assert.ok(e instanceof ContainerStartError && e.exitCode === 126, String(e));
    }
  },
);

directTest(
  "runtime: a direct start gives the command no ignored signal; the engine keeps its own",
  async () => {
    // (berth's signal forwarding would install a SIGHUP handler of its own)
    const d = await directRun(sh(PROBE), {}, {
      wrap: ["nohup"],
      runOptions: { forwardSignals: false },
    });
    assert.equal(d.code, 0, d.err);
    assert.match(d.out, /SigIgn:\t0000000000000000/);
    assert.ok(d.before.status.some((l: string) => /^SigIgn:\t[0-9a-f]*[13579bdf]$/.test(l)));
    assertStateBack(d); // SigIgn included: SIGHUP ignored again
  },
);

directTest(
  "runtime: a direct exec gives the process what the init gives; the engine's thread gets its state back",
  async () => {
    const probe = sh(PROBE.replace("echo $$; ", "") + "; readlink /proc/self/ns/pid");
    const d = await directRun(["sleep", "30"], {}, { exec: probe });
    assert.equal(d.kind, "direct");
    assert.equal(d.code, 0, d.err);
    assert.notEqual(d.timing.directSpawn, null, "spawned by the engine's thread");
    assertStateBack(d);
    assert.match(d.out, /CapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb/);
    assert.match(d.out, /NoNewPrivs:\t1/);
    assert.match(d.out, /SigIgn:\t0000000000000000/);
  },
);

Deno.test("runtime: a posix_spawn'd child: exit status, signals, piped stdio, reaped once", async () => {
  const spawn = (script: string, piped: boolean) => {
    const [inR, inW] = ffi.pipe2(ffi.O_CLOEXEC);
    const [outR, outW] = ffi.pipe2(ffi.O_CLOEXEC);
    const pid = ffi.posixSpawn("/bin/sh", ["sh", "-c", script], [], {
      dup2: piped ? [[inR, 0], [outW, 1]] : [],
    });
    ffi.close(inR);
    ffi.close(outW);
    if (!piped) {
      ffi.close(inW);
      ffi.close(outR);
    }
    return SpawnedChild.adopt(pid, piped ? { stdin: inW, stdout: outR } : {});
  };
  // stdin in, stdout out, the exit status
  const cat = spawn("/bin/cat; exit 3", true);
  const w = cat.stdin.getWriter();
  await w.write(new TextEncoder().encode("through\n"));
  await w.close();
  assert.equal(await new Response(cat.stdout).text(), "through\n");
  assert.deepEqual(await cat.status, { success: false, code: 3, signal: null });
  assert.throws(() => cat.kill(), /already terminated/);
  assert.throws(() => cat.stderr, TypeError);
  // a signal: 128+n with its name, as Deno.ChildProcess reports it
  const sleeper = spawn("exec /bin/sleep 30", false);
  sleeper.kill("SIGTERM");
  assert.deepEqual(await sleeper.status, { success: false, code: 143, signal: "SIGTERM" });
  assert.equal((await spawn("exit 0", false).status).success, true);
  // signals to the engine interrupt the wait (EINTR) as often as they come: it waits on
  const onUsr1 = () => {};
  Deno.addSignalListener("SIGUSR1", onUsr1);
  try {
    const sleeper2 = spawn("exec /bin/sleep 0.6", false);
    // the thread that waits for it: in ppoll (x86_64 271, aarch64 73)
    const ppoll = Deno.build.arch === "x86_64" ? "271" : "73";
    const waiting = () =>
      [...Deno.readDirSync("/proc/self/task")].map((t) => Number(t.name)).filter((tid) => {
        try {
          return Deno.readTextFileSync(`/proc/self/task/${tid}/syscall`).split(" ")[0] === ppoll;
        } catch {
          return false;
        }
      });
    let signalled = 0;
    for (let i = 0; i < 20 && signalled < 4; i++) {
      await new Promise((ok) => setTimeout(ok, 20));
      for (const tid of waiting()) {
        ffi.tgkill(Deno.pid, tid, ffi.SIGNALS.SIGUSR1);
        signalled++;
      }
    }
    assert.ok(signalled >= 4, `the waiting thread was interrupted ${signalled} times`);
    assert.deepEqual(await sleeper2.status, { success: true, code: 0, signal: null });
  } finally {
    Deno.removeSignalListener("SIGUSR1", onUsr1);
  }
  // a pid that cannot be opened (here: none has it) is not adopted; the error is thrown
  assert.throws(() => SpawnedChild.adopt(2 ** 22 + 1), ffi.SyscallError);
});
