/**
 * Detached containers and their lifecycle as a user drives them from the CLI: run -d, ps, logs,
 * exec, stop, kill, wait, start, rm, inspect, container prune, restart policies; state truthful
 * after a supervisor is killed; nothing left behind.
 */
import assert from "node:assert/strict";
import { berth, tempDir } from "./_berth.ts";
import { fixtures } from "./_fixtures.ts";
import { cgroupDirs } from "./_runtime_helpers.ts";

const fx = await fixtures();
const BB = "fixture/busybox";

async function store(): Promise<{ path: string } & AsyncDisposable> {
  const root = await tempDir();
  assert.equal((await berth(root.path, ["load", "-i", fx.dockerArchive])).code, 0);
  return {
    path: root.path,
    async [Symbol.asyncDispose]() {
      // Whatever a failed test left running goes first.
      const ids = (await berth(root.path, ["ps", "-aq", "--no-trunc"])).stdout.split("\n").filter(
        Boolean,
      );
      if (ids.length) await berth(root.path, ["rm", "-f", ...ids]);
      await root[Symbol.asyncDispose]();
    },
  };
}

const exists = (p: string) => Deno.lstat(p).then(() => true, () => false);

async function until(what: string, fn: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function inspect(root: string, name: string) {
  const r = await berth(root, ["inspect", name]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout)[0];
}

Deno.test("lifecycle: run -d survives the CLI; ps, logs, stop (SIGTERM recorded), start, rm", async () => {
  await using root = await store();
  const r = await berth(root.path, [
    "run",
    "-d",
    "--name",
    "web",
    BB,
    "sh",
    "-c",
    "trap 'echo bye; exit 3' TERM; echo out; echo err >&2; while true; do sleep 0.1; done",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  // The CLI has exited; the container runs on.
  const ps = await berth(root.path, ["ps"]);
  assert.match(
    ps.stdout.split("\n")[0],
    /^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$/,
  );
  assert.match(
    ps.stdout,
    new RegExp(
      `^${id.slice(0, 12)}\\s+${BB}\\s+"sh -c trap 'echo by…"\\s+.* ago\\s+Up .*\\s+web$`,
      "m",
    ),
  );
  await until("logs", async () => (await berth(root.path, ["logs", "web"])).stdout === "out\n");
  const logs = await berth(root.path, ["logs", "web"]);
  assert.equal(logs.stdout, "out\n");
  assert.equal(logs.stderr, "err\n");
  const ts = await berth(root.path, ["logs", "-t", "--tail", "2", "web"]);
  assert.match(ts.stdout, /^\d{4}-\d\d-\d\dT[\d:.]+Z out\n$/);
  assert.match(ts.stderr, /^\d{4}-\d\d-\d\dT[\d:.]+Z err\n$/);
  const last = await berth(root.path, ["logs", "--tail", "1", "web"]);
  assert.equal(last.stdout + last.stderr, "err\n", "--tail counts both streams");
  const state = (await inspect(root.path, "web")).State;
  assert.equal(state.Status, "running");
  assert.ok(state.Pid > 0);
  const stop = await berth(root.path, ["stop", "-t", "5", "web"]);
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal(stop.stdout, "web\n");
  const after = await inspect(root.path, id.slice(0, 12));
  assert.equal(after.State.Status, "exited");
  assert.equal(after.State.ExitCode, 3);
  assert.equal((await berth(root.path, ["logs", "web"])).stdout, "out\nbye\n");
  assert.equal((await berth(root.path, ["wait", "web"])).stdout, "3\n");
  assert.match((await berth(root.path, ["ps", "-a"])).stdout, /Exited \(3\) .* ago\s+web$/m);
  assert.equal((await berth(root.path, ["ps", "-q"])).stdout, "");
  // start brings it back (same container, same upper dir), rm -f removes it for good.
  assert.equal((await berth(root.path, ["start", "web"])).code, 0);
  assert.equal((await inspect(root.path, "web")).State.Status, "running");
  const refused = await berth(root.path, ["rm", "web"]);
  assert.equal(refused.code, 125);
  assert.match(refused.stderr, /cannot remove a running container/);
  assert.equal((await berth(root.path, ["rm", "-f", "web"])).code, 0);
  assert.equal(await exists(`${root.path}/containers/${id}`), false);
  assert.equal((await berth(root.path, ["ps", "-aq"])).stdout, "");
  const gone = await berth(root.path, ["logs", "web"]);
  assert.equal(gone.code, 125);
  assert.equal(gone.stderr, "Error: No such container: web\n");
});

Deno.test("lifecycle: kill -s, wait, logs -f ends with the container; inspect shape", async () => {
  await using root = await store();
  const id = (await berth(root.path, [
    "run",
    "-d",
    BB,
    "sh",
    "-c",
    "for i in 1 2 3; do echo $i; sleep 0.2; done; sleep 30",
  ])).stdout.trim();
  const follow = berth(root.path, ["logs", "-f", id.slice(0, 12)]);
  await until("3 lines", async () => (await berth(root.path, ["logs", id])).stdout === "1\n2\n3\n");
  assert.equal((await berth(root.path, ["kill", "-s", "KILL", id.slice(0, 6)])).code, 0);
  assert.equal((await berth(root.path, ["wait", id])).stdout, "137\n");
  const f = await follow;
  assert.equal(f.stdout, "1\n2\n3\n", "logs -f returned once the container exited");
  const info = await inspect(root.path, id);
  for (
    const k of [
      "Id",
      "Created",
      "Path",
      "Args",
      "State",
      "Image",
      "Name",
      "HostConfig",
      "GraphDriver",
      "Config",
    ]
  ) {
    assert.ok(k in info, k);
  }
  assert.equal(info.Id, id);
  assert.equal(info.Path, "sh");
  assert.equal(info.Image, fx.expected.dockerArchive.configDigest);
  assert.equal(info.State.ExitCode, 137);
  assert.equal(info.GraphDriver.Name, "overlay");
  const notRunning = await berth(root.path, ["kill", id]);
  assert.equal(notRunning.code, 125);
  assert.match(notRunning.stderr, /is not running/);
});

Deno.test("lifecycle: kill -9 of the supervisor is detected; rm -f leaves no process, mount or cgroup", async () => {
  await using root = await store();
  const id = (await berth(root.path, ["run", "-d", "--name", "victim", BB, "sleep", "300"])).stdout
    .trim();
  const rec = JSON.parse(await Deno.readTextFile(`${root.path}/containers/${id}/container.json`));
  const { pid, monitorPid } = rec.state;
  assert.ok(pid > 0 && monitorPid > 0, JSON.stringify(rec.state));
  const cgroups: string[] = rec.cgroupDirs;
  assert.ok(cgroups.length > 0 && cgroups.every((d) => d.includes(`/berth/${id}`)));
  Deno.kill(monitorPid, "SIGKILL");
  // The container dies with its supervisor; ps tells the truth.
  await until("the container's death", async () => !(await exists(`/proc/${pid}`)));
  const ps = await berth(root.path, ["ps", "-a", "--format", "{{.Names}} {{.State}} {{.Status}}"]);
  assert.match(ps.stdout, /^victim exited Exited \(137\) .* ago$/m);
  assert.match(
    (await inspect(root.path, "victim")).State.Error,
    new RegExp(`the berth process watching it \\(pid ${monitorPid}\\) died`),
  );
  assert.equal((await berth(root.path, ["rm", "-f", "victim"])).code, 0);
  for (const d of cgroups) assert.equal(await exists(d), false, `cgroup ${d} removed`);
  assert.ok(!(await Deno.readTextFile("/proc/self/mountinfo")).includes(id));
  assert.equal(await exists(`${root.path}/containers/${id}`), false);
});

Deno.test("lifecycle: --restart on-failure:2 restarts twice; always restarts until stop", async () => {
  await using root = await store();
  const id = (await berth(root.path, [
    "run",
    "-d",
    "--restart",
    "on-failure:2",
    BB,
    "sh",
    "-c",
    "echo run; exit 1",
  ])).stdout.trim();
  await until("two restarts then exit", async () => {
    const s = await inspect(root.path, id);
    return s.State.Status === "exited" && s.RestartCount === 2;
  });
  assert.equal((await berth(root.path, ["logs", id])).stdout, "run\nrun\nrun\n");
  const always =
    (await berth(root.path, ["run", "-d", "--restart", "always", BB, "sh", "-c", "sleep 0.2"]))
      .stdout.trim();
  await until("a restart", async () => (await inspect(root.path, always)).RestartCount >= 1);
  assert.equal((await berth(root.path, ["stop", "-t", "1", always])).code, 0);
  const count = (await inspect(root.path, always)).RestartCount;
  await new Promise((r) => setTimeout(r, 800));
  const s = await inspect(root.path, always);
  assert.equal(s.State.Status, "exited", "stopped containers are not restarted");
  assert.equal(s.RestartCount, count);
  const bad = await berth(root.path, ["run", "-d", "--restart", "sometimes", BB, "true"]);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /invalid restart policy "sometimes"/);
});

Deno.test("lifecycle: run -d --rm goes away by itself; container prune removes stopped ones", async () => {
  await using root = await store();
  const id = (await berth(root.path, ["run", "-d", "--rm", BB, "true"])).stdout.trim();
  await until("removal", async () => !(await exists(`${root.path}/containers/${id}`)));
  const a = (await berth(root.path, ["run", "-d", BB, "true"])).stdout.trim();
  const b = (await berth(root.path, ["run", "-d", BB, "sleep", "30"])).stdout.trim();
  await berth(root.path, ["wait", a]);
  const prune = await berth(root.path, ["container", "prune", "-f"]);
  assert.equal(prune.code, 0, prune.stderr);
  assert.match(prune.stdout, new RegExp(`^Deleted Containers:\\n${a}\\n`));
  assert.deepEqual(
    (await berth(root.path, ["ps", "-aq", "--no-trunc"])).stdout.trim().split("\n"),
    [b],
  );
  const missing = await berth(root.path, ["run", "-d", "--pull", "never", "no/such", "true"]);
  assert.equal(missing.code, 125);
  assert.equal(missing.stderr, "Error: No such image: no/such\n");
  const noExec = await berth(root.path, ["run", "-d", BB, "no-such-cmd"]);
  assert.equal(noExec.code, 127);
  assert.match(noExec.stderr, /"no-such-cmd": executable file not found/);
});

Deno.test("lifecycle: exec joins the container (PID namespace, cgroup, caps, no_new_privs), -u -e -w, codes", async () => {
  await using root = await store();
  const id = (await berth(root.path, [
    "run",
    "-d",
    "--name",
    "box",
    "--pids-limit",
    "50",
    BB,
    "sh",
    "-c",
    "echo hi > /tmp/from-run; sleep 300",
  ])).stdout.trim();
  await until(
    "the file",
    async () => (await berth(root.path, ["exec", "box", "cat", "/tmp/from-run"])).stdout === "hi\n",
  );
  const r = await berth(root.path, [
    "exec",
    "box",
    "sh",
    "-c",
    "cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split("\n");
  assert.equal(
    lines[0],
    "sleep 300 ",
    "PID 1 is the container's command (sh exec'd its last one)",
  );
  assert.equal(lines[1], id.slice(0, 12));
  assert.equal(lines[2], "CapEff:\t00000000a80425fb");
  assert.equal(lines[3], "NoNewPrivs:\t1");
  assert.equal(lines[4], "50", "the exec'd process is in the container's cgroup");
  const u = await berth(root.path, [
    "exec",
    "-u",
    "app",
    "-e",
    "X=1",
    "-w",
    "/tmp",
    "box",
    "sh",
    "-c",
    "id -u; echo $X; pwd",
  ]);
  assert.equal(u.stdout, "1000\n1\n/tmp\n");
  assert.equal((await berth(root.path, ["exec", "box", "sh", "-c", "exit 3"])).code, 3);
  const missing = await berth(root.path, ["exec", "box", "nosuch"]);
  assert.equal(missing.code, 127);
  assert.match(missing.stderr, /"nosuch": executable file not found in \$PATH/);
  assert.equal((await berth(root.path, ["exec", "box", "/etc/passwd"])).code, 126);
  await berth(root.path, ["stop", "-t", "1", "box"]);
  const stopped = await berth(root.path, ["exec", "box", "true"]);
  assert.equal(stopped.code, 125);
  assert.match(stopped.stderr, /is not running/);
});

Deno.test("lifecycle: two starts at once run one supervisor; stop and wait on a --rm container", async () => {
  await using root = await store();
  const id = (await berth(root.path, ["run", "-d", "--name", "twice", BB, "sleep", "300"])).stdout
    .trim();
  assert.equal((await berth(root.path, ["stop", "-t", "1", "twice"])).code, 0);
  const starts = await Promise.all([
    berth(root.path, ["start", "twice"]),
    berth(root.path, ["start", "twice"]),
  ]);
  for (const s of starts) assert.equal(s.code, 0, s.stderr);
  const state = (await inspect(root.path, id)).State;
  assert.equal(state.Status, "running", JSON.stringify(state));
  const monitors = [...Deno.readDirSync("/proc")].filter((e) => /^\d+$/.test(e.name)).filter(
    (e) => {
      try {
        return Deno.readTextFileSync(`/proc/${e.name}/cmdline`).includes(
          `__monitor\0${root.path}\0${id}`,
        );
      } catch {
        return false;
      }
    },
  );
  assert.equal(monitors.length, 1, "one supervisor");
  const rm = (await berth(root.path, ["run", "-d", "--rm", BB, "sleep", "300"])).stdout.trim();
  const stop = await berth(root.path, ["stop", "-t", "1", rm]);
  assert.equal(stop.code, 0, stop.stderr);
  await until("removal", async () => !(await exists(`${root.path}/containers/${rm}`)));
});

Deno.test("lifecycle: a name a crash left behind is taken over; an existing --cidfile creates nothing", async () => {
  await using root = await store();
  await Deno.mkdir(`${root.path}/containers/names`, { recursive: true });
  await Deno.writeTextFile(`${root.path}/containers/names/ghost`, "0".repeat(63) + "1");
  const r = await berth(root.path, ["run", "--name", "ghost", BB, "true"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await berth(root.path, ["rm", "ghost"])).code, 0);
  const cid = `${root.path}/cid`;
  await Deno.writeTextFile(cid, "taken");
  for (
    const args of [["run", "-d", "--cidfile", cid, BB, "true"], [
      "run",
      "--cidfile",
      cid,
      BB,
      "true",
    ]]
  ) {
    const c = await berth(root.path, args);
    assert.equal(c.code, 125);
    assert.match(c.stderr, /container ID file found/);
  }
  assert.equal((await berth(root.path, ["ps", "-aq"])).stdout, "", "no container was made");
});

Deno.test("lifecycle: system prune removes stopped containers and then their images", async () => {
  await using root = await store();
  await berth(root.path, ["run", "--name", "old", BB, "true"]);
  await berth(root.path, ["rmi", "-f", BB]);
  const r = await berth(root.path, ["system", "prune", "-a", "-f"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Deleted Containers:\n[0-9a-f]{64}\n/);
  assert.match(r.stdout, /^Deleted Images:$/m);
  assert.equal((await berth(root.path, ["ps", "-aq"])).stdout, "");
  assert.equal((await berth(root.path, ["images", "-q"])).stdout, "");
});

Deno.test("lifecycle: exec from berth's own thread gives the process what the init process gives it", async () => {
  await using root = await store();
  assert.equal(
    (await berth(root.path, ["run", "-d", "--name", "box", BB, "sleep", "300"])).code,
    0,
  );
  const probe = "cat /proc/$$/cmdline | tr '\\0' ' '; echo; id; umask; pwd; " +
    "grep -E '^(Cap|NoNewPrivs|Sig(Blk|Ign)|Groups)' /proc/self/status; cat /proc/self/cgroup; " +
    "readlink /proc/self/ns/pid /proc/self/ns/mnt /proc/self/ns/net /proc/self/ns/cgroup; " +
    // the tasks in the pids cgroup once the engine's thread has left (a pipeline would race its
    // own fork)
    "sleep 0.2; wc -l < /sys/fs/cgroup/pids/tasks";
  const exec = (env: Record<string, string>) =>
    berth(root.path, ["exec", "-u", "app", "-w", "/tmp", "box", "sh", "-c", probe], { env });
  const direct = await exec({});
  const init = await exec({ BERTH_START: "init" });
  assert.equal(direct.code, 0, direct.stderr);
  assert.equal(init.code, 0, init.stderr);
  assert.equal(direct.stdout.split("\n")[0], `sh -c ${probe} `);
  // the one visible difference: on a hybrid host the cgroup2 hierarchy (placement only, no
  // controllers): a thread cannot join it alone, so the process stays in the engine's there
  // (limits and kills are v1's)
  const hybrid = (l: string) => !/^0::/.test(l);
  assert.deepEqual(
    direct.stdout.split("\n").filter(hybrid),
    init.stdout.split("\n").filter(hybrid),
  );
  assert.match(direct.stdout, /uid=1000\(app\) gid=1000\(app\) groups=50\(staff\),1001\(extra\)/);
  // the container's sleep and wc (the shell execs its last command): not the engine's thread
  assert.match(direct.stdout, /\n\s*2\n$/, direct.stdout);
  assert.match(direct.stdout, /CapEff:\t0000000000000000\nCapBnd:\t00000000a80425fb/);
  assert.match(direct.stdout, /NoNewPrivs:\t1/);
  // without -i, stdin is at its end at once (a pipe closed, not the container's /dev/null)
  const cat = await berth(root.path, ["exec", "box", "cat"]);
  assert.equal(cat.code, 0, cat.stderr);
  assert.equal(cat.stdout, "");
});

Deno.test("lifecycle: a foreground container started by berth's own thread outlives a killed engine; ps and rm -f", async () => {
  await using root = await store();
  const MAIN = new URL("../main.ts", import.meta.url).pathname;
  const engine = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "--root", root.path, "run", "--rm", "--name", "fg"]
      .concat([BB, "sleep", "300"]),
    stdout: "null",
    stderr: "null",
  }).spawn();
  let rec:
    | { state: { pid?: number; status?: string }; cgroupDirs: string[]; id: string }
    | undefined;
  await until("the container's start", async () => {
    const ids = (await berth(root.path, ["ps", "-q", "--no-trunc"])).stdout.trim();
    if (!ids) return false;
    rec = JSON.parse(await Deno.readTextFile(`${root.path}/containers/${ids}/container.json`));
    return rec!.state.pid !== undefined;
  });
  const pid = rec!.state.pid!;
  engine.kill("SIGKILL");
  await engine.status;
  await new Promise((r) => setTimeout(r, 300));
  // as a docker or podman container outlives its CLI: running, and said so
  // (through the init process it would die with the engine: its parent-death signal)
  assert.ok(await exists(`/proc/${pid}`), "the container runs on (started by the engine's thread)");
  const ps = await berth(root.path, ["ps", "--format", "{{.Names}} {{.State}}"]);
  assert.equal(ps.stdout, "fg running\n");
  assert.equal((await berth(root.path, ["rm", "-f", "fg"])).code, 0);
  await until("the container's death", async () => !(await exists(`/proc/${pid}`)));
  // every hierarchy's (also a hybrid host's cgroup2, where the container has none)
  for (const d of [...rec!.cgroupDirs, ...cgroupDirs(rec!.id)]) {
    assert.equal(await exists(d), false, `cgroup ${d} removed`);
  }
  assert.ok(!(await Deno.readTextFile("/proc/self/mountinfo")).includes(rec!.id));
  assert.equal(await exists(`${root.path}/containers/${rec!.id}`), false);
});
