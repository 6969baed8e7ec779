/**
 * `berth run` as a user runs it, on images made by umoci/skopeo: the container's process model,
 * layers and whiteouts, flags, exit codes, records, and that nothing is left behind.
 */
import assert from "node:assert/strict";
import { berth, type BerthResult, tempDir } from "./_berth.ts";
import { fixtures, IMAGE_FACTS } from "./_fixtures.ts";
import { cgroupDirs } from "./_runtime_helpers.ts";
import { Snapshotter } from "../core/snapshot/snapshotter.ts";
import type { Digest } from "../core/digest.ts";

const fx = await fixtures();
const BB = "fixture/busybox";

const exists = (p: string) => Deno.lstat(p).then(() => true, () => false);

/** A store with the busybox and whiteout images loaded. */
async function store(): Promise<{ path: string } & AsyncDisposable> {
  const root = await tempDir();
  assert.equal((await berth(root.path, ["load", "-i", fx.dockerArchive])).code, 0);
  assert.equal((await berth(root.path, ["load", "-i", fx.whiteoutOciArchive])).code, 0);
  assert.equal(
    (await berth(root.path, ["tag", fx.expected.whiteoutOciArchive.configDigest, "fixture/wh"]))
      .code,
    0,
  );
  return root;
}

/** `berth run --cidfile … ARGS`; asserts afterwards that no mount or cgroup of it is left. */
async function run(
  root: string,
  args: string[],
  env?: Record<string, string>,
): Promise<BerthResult & { id: string }> {
  const cidfile = `${root}/cid-${crypto.randomUUID()}`;
  const r = await berth(root, ["run", "--cidfile", cidfile, ...args], env ? { env } : {});
  const id = await Deno.readTextFile(cidfile).catch(() => "");
  if (id) {
    const mountinfo = await Deno.readTextFile("/proc/self/mountinfo");
    assert.ok(!mountinfo.includes(id), "no mount of the container is left on the host");
    for (const d of cgroupDirs(id)) assert.ok(!(await exists(d)), `cgroup left: ${d}`);
  }
  return { ...r, id };
}

Deno.test("run: PID 1, own hostname, only its processes, host mounts invisible, exit code", async () => {
  await using root = await store();
  const r = await run(root.path, [
    "--rm",
    BB,
    "sh",
    "-c",
    "echo pid=$$; hostname; ls /proc | grep -c '^[0-9]'; cat /proc/self/mountinfo; exit 7",
  ]);
  assert.equal(r.code, 7, r.stderr);
  const lines = r.stdout.split("\n");
  assert.equal(lines[0], "pid=1");
  assert.equal(lines[1], r.id.slice(0, 12), "hostname is the short id");
  assert.ok(Number(lines[2]) <= 3, `only the container's processes: ${lines[2]}`);
  // mountinfo field 5 is the mount point: only the container's own mounts, none of the host's.
  const points = lines.slice(3).filter(Boolean).map((l) => l.split(" ")[4]);
  assert.ok(points.includes("/") && points.includes("/proc"), points.join(" "));
  for (const p of points) {
    assert.ok(!p.startsWith("/work") && !p.startsWith("/var/tmp") && !p.startsWith(root.path), p);
  }
  assert.equal(
    await exists(`${root.path}/containers/${r.id}`),
    false,
    "--rm removed the container",
  );
});

Deno.test("run: layers, overwrites, hardlinks, long names and whiteouts as the image says", async () => {
  await using root = await store();
  const f = IMAGE_FACTS;
  const r = await run(root.path, [
    "--rm",
    BB,
    "sh",
    "-c",
    `cat /etc/motd; stat -c '%u:%g %a' ${f.appFile.path}; ` +
    `stat -c %i ${f.hardlinks[0]} ${
      f.hardlinks[1]
    }; cat '${f.longPath}' >/dev/null && echo long-ok; ` +
    `readlink ${f.longSymlink.path}`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const [motd, owner, ino1, ino2, long, link] = r.stdout.split("\n");
  assert.equal(motd + "\n", f.motd);
  assert.equal(owner, "1000:1000 640");
  assert.equal(ino1, ino2, "hard links share an inode");
  assert.equal(long, "long-ok");
  assert.equal(link, f.longSymlink.target);
  const wh = await run(root.path, [
    "--rm",
    "fixture/wh",
    "sh",
    "-c",
    [
      ...f.whiteout.present.map((p) => `test -e ${p} && echo present ${p}`),
      ...f.whiteout.absent.map((p) => `test -e ${p} || echo absent ${p}`),
    ].join("; "),
  ]);
  assert.equal(wh.code, 0, wh.stderr);
  assert.deepEqual(wh.stdout.trim().split("\n"), [
    ...f.whiteout.present.map((p) => `present ${p}`),
    ...f.whiteout.absent.map((p) => `absent ${p}`),
  ]);
});

Deno.test("run: docker's capabilities and no_new_privs; -u; -e, -w, --env-file, -h", async () => {
  await using root = await store();
  await using tmp = await tempDir();
  await Deno.writeTextFile(`${tmp.path}/env`, "# comment\nFROM_FILE=1\nB=file\n");
  const r = await run(root.path, [
    "--rm",
    "-e",
    "B=flag",
    "--env-file",
    `${tmp.path}/env`,
    "-w",
    "/tmp",
    "-h",
    "box",
    BB,
    "sh",
    "-c",
    "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; echo $FROM_FILE $B; pwd; hostname",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "CapEff:\t00000000a80425fb\nNoNewPrivs:\t1\n1 flag\n/tmp\nbox\n");
  const u = await run(root.path, [
    "--rm",
    "-u",
    "app",
    BB,
    "sh",
    "-c",
    "id -u; id -G; grep CapEff /proc/self/status",
  ]);
  assert.equal(u.code, 0, u.stderr);
  assert.equal(u.stdout, "1000\n1000 50 1001\nCapEff:\t0000000000000000\n");
  const drop = await run(root.path, [
    "--rm",
    "--cap-drop",
    "ALL",
    "--cap-add",
    "chown",
    BB,
    "grep",
    "CapEff",
    "/proc/self/status",
  ]);
  assert.equal(drop.stdout, "CapEff:\t0000000000000001\n");
});

Deno.test("run: exit codes 127, 126, 125 and a killed container's 128+n", async () => {
  await using root = await store();
  const missing = await run(root.path, ["--rm", BB, "no-such-command"]);
  assert.equal(missing.code, 127);
  assert.match(missing.stderr, /"no-such-command": executable file not found in \$PATH/);
  const notExec = await run(root.path, ["--rm", BB, "/etc/motd"]);
  assert.equal(notExec.code, 126, notExec.stderr);
  const noImage = await run(root.path, ["--rm", "--pull", "never", "no/such-image", "true"]);
  assert.equal(noImage.code, 125);
  assert.equal(noImage.stderr, "Error: No such image: no/such-image\n");
  // Without --pull never, the image is looked for on its registry (unreachable here: one line).
  const pulled = await run(root.path, ["--rm", "no/such-image", "true"]);
  assert.equal(pulled.code, 125);
  assert.match(pulled.stderr, /^Unable to find image 'no\/such-image:latest' locally$/m);
  assert.match(pulled.stderr, /^Error: Cannot pull "no\/such-image": registry-1\.docker\.io: /m);
  const killed = await run(root.path, ["--rm", BB, "sh", "-c", "sh -c 'kill -9 $$'; exit $?"]);
  assert.equal(killed.code, 137);
  const badFlag = await berth(root.path, ["run", "--bogus", BB]);
  assert.equal(badFlag.code, 125);
  assert.match(badFlag.stderr, /unknown flag: --bogus/);
});

Deno.test("run: -v ro cannot be written, rw can; --read-only; --tmpfs", async () => {
  await using root = await store();
  await using vol = await tempDir();
  await Deno.writeTextFile(`${vol.path}/in`, "host file\n");
  const ro = await run(root.path, [
    "--rm",
    "-v",
    `${vol.path}:/data:ro`,
    BB,
    "sh",
    "-c",
    "cat /data/in; echo x > /data/out",
  ]);
  assert.notEqual(ro.code, 0);
  assert.match(ro.stdout, /host file/);
  assert.match(ro.stderr, /Read-only file system/);
  assert.equal(await exists(`${vol.path}/out`), false);
  const rw = await run(root.path, [
    "--rm",
    "-v",
    `${vol.path}:/data`,
    BB,
    "sh",
    "-c",
    "echo x > /data/out",
  ]);
  assert.equal(rw.code, 0, rw.stderr);
  assert.equal(await Deno.readTextFile(`${vol.path}/out`), "x\n");
  const rofs = await run(root.path, [
    "--rm",
    "--read-only",
    "--tmpfs",
    "/scratch",
    BB,
    "sh",
    "-c",
    "touch /x || echo denied; touch /scratch/y && echo tmpfs-ok",
  ]);
  assert.equal(rofs.stdout, "denied\ntmpfs-ok\n");
});

Deno.test("run: --memory OOM kill exits 137; --pids-limit contains a fork bomb", async () => {
  await using root = await store();
  const oom = await run(root.path, [
    "--rm",
    "-m",
    "16m",
    BB,
    "sh",
    "-c",
    "x=a; while true; do x=$x$x; done",
  ]);
  assert.equal(oom.code, 137, oom.stderr);
  // Forks until the limit refuses; then counts its processes with builtins only (no fork left).
  // The forking subshell dies at the limit (busybox sh exits when it cannot fork).
  const bomb = await run(root.path, [
    "--rm",
    "--pids-limit",
    "20",
    BB,
    "sh",
    "-c",
    "(i=0; while [ $i -lt 100 ]; do sleep 3 & i=$((i+1)); done) 2>/dev/null; " +
    "set -- /proc/[0-9]*; echo $#",
  ]);
  const count = Number(bomb.stdout.trim());
  assert.ok(count >= 10 && count <= 20, `processes capped at 20: ${bomb.stdout} ${bomb.stderr}`);
});

Deno.test("run: without --rm the record and upper dir stay; rmi refuses the image in use", async () => {
  await using root = await store();
  const r = await run(root.path, [
    "--name",
    "keep",
    BB,
    "sh",
    "-c",
    "echo data > /root/file; exit 4",
  ]);
  assert.equal(r.code, 4, r.stderr);
  const record = JSON.parse(
    await Deno.readTextFile(`${root.path}/containers/${r.id}/container.json`),
  );
  assert.equal(record.name, "keep");
  assert.equal(record.state.status, "exited");
  assert.equal(record.state.exitCode, 4);
  assert.equal(
    await Deno.readTextFile(`${root.path}/containers/${r.id}/upper/root/file`),
    "data\n",
  );
  const dup = await berth(root.path, ["run", "--name", "keep", BB, "true"]);
  assert.equal(dup.code, 125);
  assert.match(dup.stderr, /name "\/keep" is already in use/);
  const rmi = await berth(root.path, ["rmi", BB]);
  assert.equal(rmi.code, 125);
  assert.match(rmi.stderr, /container [0-9a-f]{12} is using its referenced image/);
  const prune = await berth(root.path, ["image", "prune", "-a", "-f"]);
  assert.equal(prune.code, 0);
  assert.equal(
    (await berth(root.path, ["run", "--rm", BB, "true"])).code,
    0,
    "image kept by prune",
  );
});

Deno.test("run: docker-archive:FILE and oci-archive:FILE load (verified) and run in one step", async () => {
  await using root = await tempDir();
  const d = await run(root.path, [
    "--rm",
    `docker-archive:${fx.dockerArchive}`,
    "cat",
    "/etc/motd",
  ]);
  assert.equal(d.code, 0, d.stderr);
  assert.equal(d.stdout, IMAGE_FACTS.motd);
  const o = await run(root.path, ["--rm", `oci-archive:${fx.ociArchive}`, "cat", "/etc/motd"]);
  assert.equal(o.code, 0, o.stderr);
  assert.equal(o.stdout, IMAGE_FACTS.motd);
  const bad = await run(root.path, ["--rm", "oci-archive:/nonexistent.tar", "true"]);
  assert.equal(bad.code, 125);
  assert.equal(bad.stderr, 'Error: Cannot load "/nonexistent.tar": no such file\n');
});

Deno.test("run: without overlayfs a flattened copy is used, and said so", async () => {
  await using root = await store();
  const r = await run(root.path, [
    "--rm",
    "fixture/wh",
    "sh",
    "-c",
    "cat /etc/motd; test -e /wh/file-to-delete || echo gone",
  ], {
    BERTH_STORAGE_DRIVER: "vfs",
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, IMAGE_FACTS.motd + "gone\n");
  assert.match(r.stderr, /overlayfs is not available: the container runs on a flattened copy/);
  assert.equal(await exists(`${root.path}/containers/${r.id}`), false);
});

Deno.test("run: SIGTERM to berth reaches the container; a container killed from outside exits 137", async () => {
  await using root = await store();
  const MAIN = new URL("../main.ts", import.meta.url).pathname;
  const start = (args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        MAIN,
        "--root",
        root.path,
        "run",
        "--name",
        args[0],
        BB,
        ...args.slice(1),
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  const pidOf = async (name: string) => {
    for (let i = 0; i < 200; i++) {
      const id = await Deno.readTextFile(`${root.path}/containers/names/${name}`).catch(() => "");
      const rec = id &&
        JSON.parse(
          await Deno.readTextFile(`${root.path}/containers/${id}/container.json`).catch(() => "{}"),
        );
      if (rec?.state?.pid) return rec.state.pid as number;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`container ${name} never ran`);
  };
  const trap = start(["trap", "sh", "-c", "trap 'echo got TERM; exit 42' TERM; sleep 100 & wait"]);
  await pidOf("trap");
  await new Promise((r) => setTimeout(r, 200));
  trap.kill("SIGTERM");
  const t = await trap.output();
  assert.equal(t.code, 42, new TextDecoder().decode(t.stderr));
  assert.equal(new TextDecoder().decode(t.stdout), "got TERM\n");
  const victim = start(["victim", "sleep", "100"]);
  Deno.kill(await pidOf("victim"), "SIGKILL");
  const v = await victim.output();
  assert.equal(v.code, 137, new TextDecoder().decode(v.stderr));
});

Deno.test("run -it: a real terminal inside, sized like the caller's, input relayed", async () => {
  await using root = await store();
  const MAIN = new URL("../main.ts", import.meta.url).pathname;
  // script(1) gives berth a real terminal (rows 30, cols 100) and types into it.
  const inner =
    `stty rows 30 cols 100; ${Deno.execPath()} run -A --quiet ${MAIN} --root ${root.path} ` +
    `run --rm -it ${BB} sh -c 'tty; stty size; read line; echo got:$line'`;
  const child = new Deno.Command("script", {
    args: ["-qec", inner, "/dev/null"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await new Promise((r) => setTimeout(r, 1500));
  await w.write(new TextEncoder().encode("hello\r"));
  await w.close();
  const out = await child.output();
  // deno itself clears its progress line on a terminal (ESC[0G ESC[2K ESC[J): not ours.
  const ansi = new RegExp(String.fromCharCode(27) + "\\[[0-9;]*[A-Za-z]", "g");
  const text = new TextDecoder().decode(out.stdout).replaceAll("\r", "").replace(ansi, "");
  assert.equal(out.code, 0, text + new TextDecoder().decode(out.stderr));
  assert.match(text, /^\/dev\/pts\/\d+$/m);
  assert.match(text, /^30 100$/m);
  assert.match(text, /^got:hello$/m);
});

Deno.test("run through the library: Store.run returns the exit status and the output", async () => {
  await using root = await store();
  const { Store } = await import("../mod.ts");
  const s = await Store.open({ root: root.path });
  const r = await s.run(BB, {
    command: ["sh", "-c", "cat; echo err >&2; exit 5"],
    stdin: "piped",
    input: "from stdin\n",
    stdout: "piped",
    stderr: "piped",
    rm: true,
  });
  assert.equal(r.exitCode, 5);
  assert.equal(new TextDecoder().decode(r.stdout), "from stdin\n");
  assert.equal(new TextDecoder().decode(r.stderr), "err\n");
  assert.match(r.id, /^[0-9a-f]{64}$/);
  await assert.rejects(() => s.run("no/such"), /No such image: no\/such/);
});

Deno.test("run (foreground, no --rm): output reaches the caller and stays in berth logs", async () => {
  await using root = await store();
  const r = await run(root.path, [
    "--name",
    "fg",
    BB,
    "sh",
    "-c",
    "echo out; echo err >&2; exit 2",
  ]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, "out\n");
  assert.equal(r.stderr, "err\n");
  const logs = await berth(root.path, ["logs", "fg"]);
  assert.equal(logs.code, 0, logs.stderr);
  assert.equal(logs.stdout, "out\n");
  assert.equal(logs.stderr, "err\n");
});

Deno.test("run: berth's own thread starts the command where it can; BERTH_START=init uses the init process", async () => {
  await using root = await store();
  // sh stays PID 1 (a lone last command would be exec'd in its place)
  const probe = ["--rm", BB, "sh", "-c", "echo $(tr '\\0' ' ' < /proc/1/cmdline); true"];
  const timing = (stderr: string) =>
    JSON.parse(/^timing: (\{.*\}); done at/m.exec(stderr)?.[1] ?? "null");
  const direct = await run(root.path, probe, { BERTH_TIMING: "1" });
  assert.equal(direct.code, 0, direct.stderr);
  assert.notEqual(timing(direct.stderr)?.directSpawn ?? null, null, direct.stderr);
  assert.match(direct.stdout, /^sh -c /, "argv[0] as given, as execve by the init gives it");
  const init = await run(root.path, probe, { BERTH_TIMING: "1", BERTH_START: "init" });
  assert.equal(init.code, 0, init.stderr);
  assert.equal(timing(init.stderr)?.directSpawn, null, init.stderr);
  assert.match(init.stdout, /^sh -c /);
  // the thread's pid slot (the limit is one higher while it is in the cgroup) is given back
  const pids = await run(root.path, [
    "--rm",
    "--pids-limit",
    "20",
    BB,
    "sh",
    "-c",
    "sleep 0.5; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
  ], { BERTH_TIMING: "1" });
  assert.equal(pids.code, 0, pids.stderr);
  assert.notEqual(timing(pids.stderr)?.directSpawn ?? null, null, pids.stderr);
  assert.equal(pids.stdout, "20\n");
});

Deno.test("run: the image's users and groups are read once per snapshot stack and kept beside it", async () => {
  await using root = await store();
  const id = async () => {
    const r = await run(root.path, ["--rm", "-u", "app", BB, "id"]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  const expected = "uid=1000(app) gid=1000(app) groups=50(staff),1001(extra)\n";
  assert.equal(await id(), expected);
  const layers: string[] = JSON.parse((await berth(root.path, ["image", "inspect", BB])).stdout)[0]
    .RootFS.Layers;
  const top = Snapshotter.chainIDs(layers as Digest[]).at(-1)!;
  const kept = `${root.path}/snapshots/${top.slice(7)}/user-files.json`;
  assert.match(JSON.parse(Deno.readTextFileSync(kept)).passwd, /^app:x:1000:1000:/m);
  // what is kept is what the next container gets (the layers are not walked again) ...
  Deno.writeTextFileSync(kept, JSON.stringify({ passwd: "app:x:1234:1234::/:/bin/sh\n" }));
  assert.equal(await id(), "uid=1234 gid=1234\n");
  // ... unless it is not readable as kept: then the layers are read again, and it is rewritten
  Deno.writeTextFileSync(kept, "{not json");
  assert.equal(await id(), expected);
  assert.match(JSON.parse(Deno.readTextFileSync(kept)).group, /^extra:x:1001:app$/m);
});
