// Integration tests of `exec` into a running container on the real kernel (root required): a
// busybox container started with runContainer (its PID 1 a `sleep`), processes joined into it
// with execInContainer through berth's init, asserting what a user of `docker exec` notices:
// the container's PID namespace, hostname, mounts, files, cgroup and limits; docker's
// capabilities and no_new_privs; -u, -e, -w, -t; exit codes 0/3/126/127, 125 for a container
// that is not running. After every container: no exec'd process, mount, cgroup or bundle left.
import assert from "node:assert/strict";
import { detectCgroupLayout } from "../core/runtime/cgroups.ts";
import { type ContainerResult, runContainer, type StartInfo } from "../core/runtime/run.ts";
import { createSpec, type RunOptions } from "../core/runtime/spec.ts";
import type { RuntimeSpec } from "../core/runtime/spec_types.ts";
import {
  discardExec,
  execInContainer,
  type ExecInContainerOptions,
  prepareExec,
} from "../core/runtime/exec.ts";
import { execProcess, type ExecProcessOptions } from "../core/runtime/exec_spec.ts";
import { processAlive } from "../core/runtime/process_info.ts";
import { ContainerStartError } from "../core/runtime/start_error.ts";
import { NotFoundError } from "../core/errors.ts";

import { cgroupDirs, exists, newId, rootfsBase } from "./_runtime_helpers.ts";

const root = Deno.uid() === 0;
/** A running container. */
interface Running {
  id: string;
  spec: RuntimeSpec;
  target: StartInfo & { name: string };
  /** Host pids of the processes exec'd into it (checked gone at the end). */
  execPids: number[];
  /** docker exec: the process from flags, run; stdout/stderr collected. */
  exec(
    command: string[],
    flags?: Partial<ExecProcessOptions>,
    options?: ExecInContainerOptions,
  ): Promise<{ result: ContainerResult; out: string; err: string }>;
}

const dec = new TextDecoder();

/**
 * Starts a container running `cmd` (default: writes /tmp/written, then `exec sleep 60`), calls
 * `fn` with it, then kills it and checks that nothing is left.
 */
async function withContainer(
  fn: (c: Running) => Promise<void>,
  options: Partial<RunOptions> = {},
  cmd = ["sh", "-c", "echo written-by-the-container > /tmp/written; exec sleep 60"],
): Promise<ContainerResult> {
  const dir = await rootfsBase();
  const id = newId();
  const bundle = `${dir}/bundles/${id}`;
  const layer = `${dir}/layers/${id}`;
  Deno.mkdirSync(`${layer}/upper`, { recursive: true });
  Deno.mkdirSync(`${layer}/work`);
  const spec = createSpec(
    { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] }, config: {} },
    { id, bundleDir: bundle, rootfs: `${dir}/rootfs`, callerEnv: {}, command: cmd, ...options },
  );
  const ac = new AbortController();
  let started!: (info: StartInfo) => void;
  const start = new Promise<StartInfo>((r) => started = r);
  const run = runContainer(spec, {
    bundleDir: bundle,
    rootfs: { lowerdirs: [`${dir}/rootfs`], upperdir: `${layer}/upper`, workdir: `${layer}/work` },
    stdout: "piped",
    stderr: "piped",
    removeBundle: true,
    signal: ac.signal,
    onStart: (_pid, info) => started(info),
  });
  const execPids: number[] = [];
  let result: ContainerResult;
  try {
    const info = await Promise.race([start, run.then(() => assert.fail("the container exited"))]);
    // the container's own setup (the file it writes) is done once its PID 1 is `sleep`
    for (let i = 0; i < 500; i++) {
      if (Deno.readTextFileSync(`/proc/${info.pid}/comm`).trim() === "sleep") break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const target = { ...info, name: id.slice(0, 12) };
    await fn({
      id,
      spec,
      target,
      execPids,
      async exec(command, flags = {}, opts = {}) {
        const process = execProcess(spec, { command, pid: target.pid, callerEnv: {}, ...flags });
        const result = await execInContainer(target, process, {
          stdout: "piped",
          stderr: "piped",
          ...opts,
          onStart: (pid) => {
            execPids.push(pid);
            opts.onStart?.(pid);
          },
        });
        return {
          result,
          out: dec.decode(result.stdout ?? new Uint8Array()),
          err: dec.decode(result.stderr ?? new Uint8Array()),
        };
      },
    });
  } finally {
    ac.abort();
    result = await run;
    const mountinfo = Deno.readTextFileSync("/proc/self/mountinfo");
    assert.ok(
      !mountinfo.includes(await rootfsBase()),
      `a berth mount is left on the host:\n${mountinfo}`,
    );
    for (const d of cgroupDirs(id)) assert.ok(!exists(d), `cgroup left: ${d}`);
    assert.ok(!exists(bundle), "bundle left");
    Deno.removeSync(layer, { recursive: true });
  }
  // exec'd processes die with the container's PID 1 (and were reaped by their engine)
  for (const pid of execPids) {
    for (let i = 0; i < 200 && exists(`/proc/${pid}`); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(!exists(`/proc/${pid}`), `exec'd process ${pid} left`);
  }
  return result;
}

function test(name: string, fn: () => Promise<void>) {
  Deno.test({ name, ignore: !root, fn, sanitizeResources: false, sanitizeOps: false });
}

test("exec: the container's PID namespace, hostname, mounts and files", async () => {
  await withContainer(async (c) => {
    const { result, out } = await c.exec([
      "sh",
      "-c",
      "ps -o pid,args; echo ---; ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '; echo; " +
      "hostname; cat /tmp/written; echo $$; echo ---; cat /proc/self/mountinfo",
    ]);
    assert.equal(result.exitCode, 0);
    const [ps, rest, mountinfo] = out.split("---\n");
    const psLines = ps.trim().split("\n").slice(1).map((l) => l.trim());
    assert.match(psLines[0], /^1 sleep 60$/, ps); // the container's command is PID 1
    assert.ok(psLines.length <= 4, `only the container's processes:\n${ps}`);
    const [pids, hostname, written, self] = rest.trim().split("\n");
    assert.equal(pids.trim().split(" ")[0], "1");
    assert.ok(
      Number(self) > 1 && Number(self) < 100,
      `a pid of the container's namespace: ${self}`,
    );
    assert.equal(hostname, c.id.slice(0, 12));
    assert.equal(written, "written-by-the-container");
    const mountpoints = mountinfo.trim().split("\n").map((l) => l.split(" ")[4]);
    assert.ok(mountpoints.includes("/") && mountpoints.includes("/proc"));
    for (const m of mountpoints) {
      assert.match(
        m,
        /^\/($|proc|dev|sys|etc\/(hosts|hostname|resolv\.conf)$)/,
        `host mount: ${m}`,
      );
    }
    // and a file the exec writes is the container's
    await c.exec(["sh", "-c", "echo from-exec > /tmp/from-exec"]);
    const seen = Deno.readTextFileSync(`/proc/${c.target.pid}/root/tmp/from-exec`);
    assert.equal(seen, "from-exec\n");
  });
});

test("exec: docker's capabilities and no_new_privs, not the engine's", async () => {
  await withContainer(async (c) => {
    const { out } = await c.exec([
      "grep",
      "-E",
      "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)",
      "/proc/self/status",
    ]);
    assert.equal(
      out,
      "CapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\n" +
        "CapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\n",
    );
    // no signal ignored or blocked (the init's Deno runtime ignores SIGPIPE)
    const { out: sig } = await c.exec(["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]);
    assert.equal(sig, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
    // what a process joined by setns alone could do, this one cannot
    const { out: mount } = await c.exec(["sh", "-c", "mount -t tmpfs x /tmp 2>&1; echo $?"]);
    assert.match(mount, /denied|not permitted/i);
    assert.doesNotMatch(mount, /^0$/m);
  });
});

test("exec: joins the container's cgroup; its pids limit applies", async () => {
  await withContainer(async (c) => {
    // from the host: the exec'd process is in the container's cgroups (read while it runs: an
    // exited process, a zombie, shows the root of every v1 hierarchy)
    let hostView = "";
    const { out } = await c.exec(["sh", "-c", "cat /proc/self/cgroup; sleep 1"], {}, {
      onStart: (pid) => {
        try {
          const view = Deno.readTextFileSync(`/proc/${pid}/cgroup`);
          const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
          if (!/^\d+ \(.*\) [ZX] /.test(stat)) hostView = view;
        } catch { /* exited already: checked below */ }
      },
    });
    assert.ok(hostView, "the exec'd process was seen running");
    // inside: the container's cgroup namespace, whose root is its cgroup
    for (const line of out.trim().split("\n")) assert.match(line, /:\/$/, out);
    const container = Deno.readTextFileSync(`/proc/${c.target.pid}/cgroup`);
    assert.equal(hostView, container);
    assert.match(hostView, new RegExp(`/berth/${c.id}$`, "m"));
    // pids.max 10: the exec'd shell cannot fork past it
    const layout = detectCgroupLayout();
    const pidsDir = layout.version === "v2"
      ? `${layout.mountpoint}/berth/${c.id}`
      : `${
        layout.hierarchies.find((h) => h.controllers.includes("pids"))!.mountpoint
      }/berth/${c.id}`;
    let peak = 0;
    const poll = setInterval(() => {
      try {
        peak = Math.max(peak, Number(Deno.readTextFileSync(`${pidsDir}/pids.current`)));
      } catch { /* gone */ }
    }, 5);
    const forks = await c.exec(["sh", "-c", "for i in $(seq 1 30); do sleep 1 & done; wait"])
      .finally(() => clearInterval(poll));
    assert.match(forks.err, /can't fork/);
    assert.ok(peak > 2 && peak <= 10, `pids.current peaked at ${peak}`);
  }, { pidsLimit: 10 });
});

test("exec: works when the container's pids are nearly used up", async () => {
  await withContainer(async (c) => {
    // the init (a Deno process with its threads) joins a cgroup with 1 pid to spare
    const { result, out } = await c.exec(["echo", "ok"]);
    assert.equal(result.exitCode, 0);
    assert.equal(out, "ok\n");
  }, { pidsLimit: 2 });
});

test("exec: -u, -e, -w and the container's environment", async () => {
  await withContainer(async (c) => {
    const self = await c.exec(["sh", "-c", 'id; grep CapEff /proc/self/status; echo "$HOME"']);
    assert.equal(self.out, "uid=0(root) gid=0(root)\nCapEff:\t00000000a80425fb\n/root\n");
    for (const user of ["1000", "app"]) {
      const { out } = await c.exec(
        ["sh", "-c", 'id; grep CapEff /proc/self/status; echo "$HOME"'],
        {
          user,
        },
      );
      assert.equal(
        out,
        "uid=1000(app) gid=1000(app) groups=50(staff),1001(extra)\nCapEff:\t0000000000000000\n" +
          "/home/app\n",
      );
    }
    assert.equal((await c.exec(["id"], { user: "4242:50" })).out, "uid=4242 gid=50(staff)\n");
    const missing = await c.exec(["id"], { user: "nosuch" }).catch((e) => e);
    assert.ok(missing instanceof NotFoundError, String(missing));
    assert.match(missing.message, /unable to find user nosuch/);

    const { out } = await c.exec(["sh", "-c", 'pwd; echo "$FOO|$RUN|$PATH|$HOSTNAME"'], {
      env: ["FOO=bar baz"],
      workdir: "/tmp",
    });
    assert.equal(
      out,
      `/tmp\nbar baz|from-run|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:` +
        `/sbin:/bin|${c.id.slice(0, 12)}\n`,
    );
    const noWd = await c.exec(["pwd"], { workdir: "/nonexistent" }).catch((e) => e);
    assert.ok(noWd instanceof ContainerStartError, String(noWd));
    assert.equal(noWd.exitCode, 126);
    assert.match(noWd.message, /^chdir to cwd \("\/nonexistent"\) set in config.json failed: /);
  }, { env: ["RUN=from-run"] });
});

test("exec: -u is resolved inside the container's root, symlinks included", async () => {
  // an absolute symlink is followed inside the container's root
  await withContainer(
    async (c) => {
      const { out } = await c.exec(["id", "-u"], { user: "app2" });
      assert.equal(out, "1002\n");
    },
    {},
    [
      "sh",
      "-c",
      "cp /etc/passwd /etc/passwd.real && echo app2:x:1002:1002::/:/bin/sh >> /etc/passwd.real && " +
      "rm /etc/passwd && ln -s /etc/passwd.real /etc/passwd && exec sleep 60",
    ],
  );
  // the container points its /etc/passwd at a host path: read naively through /proc/PID/root,
  // the absolute symlink would resolve on the host
  const hostFile = `/tmp/berth-exec-passwd-${newId()}`;
  Deno.writeTextFileSync(hostFile, "intruder:x:4321:4321::/:/bin/sh\n");
  try {
    await withContainer(
      async (c) => {
        const naive = Deno.readTextFileSync(`/proc/${c.target.pid}/root/etc/passwd`);
        assert.match(naive, /^intruder:/, "the hazard this test is about");
        const e = await c.exec(["id"], { user: "intruder" }).catch((e) => e);
        assert.ok(e instanceof NotFoundError, String(e));
      },
      {},
      ["sh", "-c", `rm /etc/passwd && ln -s ${hostFile} /etc/passwd && exec sleep 60`],
    );
  } finally {
    Deno.removeSync(hostFile);
  }
});

test("exec: exit statuses 0 and 3; 126 not executable, 127 not found; signals", async () => {
  await withContainer(async (c) => {
    assert.equal((await c.exec(["true"])).result.exitCode, 0);
    assert.equal((await c.exec(["sh", "-c", "exit 3"])).result.exitCode, 3);
    const notFound = await c.exec(["nosuch"]).catch((e) => e);
    assert.ok(notFound instanceof ContainerStartError, String(notFound));
    assert.equal(notFound.exitCode, 127);
    assert.equal(notFound.message, 'exec: "nosuch": executable file not found in $PATH');
    const noFile = await c.exec(["/nonexistent"]).catch((e) => e);
    assert.equal(noFile.exitCode, 127);
    const notExec = await c.exec(["/etc/passwd"]).catch((e) => e);
    assert.ok(notExec instanceof ContainerStartError);
    assert.equal(notExec.exitCode, 126);
    assert.equal(notExec.message, 'exec: "/etc/passwd": permission denied');
    // killed: 128+9; aborted: killed too
    const killed = await c.exec(["sleep", "30"], {}, {
      onStart: (pid) => Deno.kill(pid, "SIGKILL"),
    });
    assert.equal(killed.result.exitCode, 137);
    assert.equal(killed.result.signal, "SIGKILL");
    const ac = new AbortController();
    const aborted = await c.exec(["sleep", "30"], {}, {
      signal: ac.signal,
      onStart: () => setTimeout(() => ac.abort(), 50),
    });
    assert.equal(aborted.result.exitCode, 137);
    // piped stdin
    const cat = await c.exec(["cat"], {}, { stdin: "piped", input: "hello\n" });
    assert.equal(cat.out, "hello\n");
    // a large environment and command line: one config message of about 1.5 MiB (a single
    // string is limited to 128 KiB by the kernel)
    const env = Array.from({ length: 20 }, (_, i) => `BIG${i}=${"x".repeat(50_000)}`);
    const args = Array(1000).fill("y".repeat(500));
    const large = await c.exec(["sh", "-c", "echo ${#BIG19} $#", "sh", ...args], { env });
    assert.equal(large.out, "50000 1000\n");
  });
});

test("exec: -t gives a terminal from the container's devpts", async () => {
  await withContainer(async (c) => {
    const { result, out } = await c.exec(["sh", "-c", "tty; stty size; echo $TERM"], {
      tty: true,
      consoleSize: { rows: 30, columns: 100 },
    });
    assert.equal(result.exitCode, 0);
    assert.equal(out, "/dev/pts/0\r\n30 100\r\nxterm\r\n");
    const typed = await c.exec(["sh"], { tty: true }, {
      stdin: "piped",
      input: "echo hi; exit 7\n",
    });
    assert.equal(typed.result.exitCode, 7);
    assert.match(typed.out, /\r\nhi\r\n/);
  });
});

test("exec: -t -i on a real terminal (script): raw relay and the window size", async () => {
  await withContainer(async (c) => {
    const dir = Deno.makeTempDirSync({ prefix: "berth-exec-tty-" });
    try {
      const exec = new URL("../core/runtime/exec.ts", import.meta.url).href;
      const helper = `${dir}/engine.ts`;
      Deno.writeTextFileSync(`${dir}/args.json`, JSON.stringify([c.target, c.spec]));
      Deno.writeTextFileSync(
        helper,
        `import { execInContainer } from ${JSON.stringify(exec)};
         import { execProcess } from ${
          JSON.stringify(new URL("../core/runtime/exec_spec.ts", import.meta.url).href)
        };
         const [target, spec] = JSON.parse(Deno.readTextFileSync(${
          JSON.stringify(`${dir}/args.json`)
        }));
         const { rows, columns } = Deno.consoleSize();
         const process = execProcess(spec, { command: ["sh"], tty: true, interactive: true,
           consoleSize: { rows, columns } });
         const r = await execInContainer(target, process, { stdin: "inherit", stdout: "inherit",
           stderr: "inherit" });
         Deno.exit(r.exitCode);`,
      );
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
          text += dec.decode(value);
        }
      };
      await until(/\/ # /);
      await w.write(new TextEncoder().encode("tty; stty size; cat /tmp/written; exit 5\r"));
      await until(/\/dev\/pts\/\d+\r+\n22 77\r+\nwritten-by-the-container\r+\n/);
      await w.close();
      r.releaseLock();
      await script.stdout.cancel();
      assert.equal((await script.status).code, 5);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });
});

test("exec: a container that is not running gives 125", async () => {
  let target: StartInfo & { name: string } | undefined;
  let spec: RuntimeSpec | undefined;
  await withContainer(async (c) => {
    target = c.target;
    spec = c.spec;
    // a pid reused by another process: the recorded start time does not match
    const reused = await execInContainer(
      { ...c.target, startTime: "1" },
      execProcess(c.spec, { command: ["true"] }),
    ).catch((e) => e);
    assert.ok(reused instanceof ContainerStartError, String(reused));
    assert.equal(reused.exitCode, 125);
    assert.equal(reused.message, `container ${c.target.name} is not running`);
  });
  assert.ok(!processAlive(target!.pid, target!.startTime));
  const e = await execInContainer(target!, execProcess(spec!, { command: ["true"] })).catch((
    e,
  ) => e);
  assert.ok(e instanceof ContainerStartError, String(e));
  assert.equal(e.exitCode, 125);
  assert.equal(e.message, `container ${target!.name} is not running`);
  // a zombie (exited, not reaped yet) is not running either: a child of a `sleep` (which never
  // reaps) that exits at once
  const parent = new Deno.Command("sh", { args: ["-c", "true & exec sleep 2"] }).spawn();
  try {
    let zombie: number | undefined;
    for (let i = 0; i < 200 && zombie === undefined; i++) {
      await new Promise((r) => setTimeout(r, 5));
      const kids = Deno.readTextFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`);
      const pid = Number(kids.trim().split(" ")[0]);
      if (pid && /\) Z /.test(Deno.readTextFileSync(`/proc/${pid}/stat`))) zombie = pid;
    }
    assert.ok(zombie, "no zombie");
    const start = Deno.readTextFileSync(`/proc/${zombie}/stat`).split(") ")[1].split(" ")[19];
    assert.equal(processAlive(zombie, start), false);
    const z = await execInContainer(
      { pid: zombie, startTime: start },
      execProcess(spec!, { command: ["true"] }),
    ).catch((e) => e);
    assert.ok(z instanceof ContainerStartError, String(z));
    assert.equal(z.exitCode, 125);
  } finally {
    parent.kill("SIGKILL");
    await parent.status;
  }
});

test("exec: a prepared init; the engine's namespaces and cwd are unchanged", async () => {
  const ns = ["mnt", "uts", "ipc", "net", "pid_for_children", "cgroup"];
  const links = () => ns.map((n) => Deno.readLinkSync(`/proc/thread-self/ns/${n}`));
  const before = links();
  const cwd = Deno.cwd();
  await withContainer(async (c) => {
    const stdio = { stdin: "null", stdout: "piped", stderr: "piped" } as const;
    const init = prepareExec(c.target, stdio);
    await new Promise((r) => setTimeout(r, 30)); // the caller's work meanwhile
    const r = await execInContainer(c.target, execProcess(c.spec, { command: ["hostname"] }), {
      ...stdio,
      init,
    });
    assert.equal(dec.decode(r.stdout), `${c.id.slice(0, 12)}\n`);
    // a prepared init that is not used
    await discardExec(prepareExec(c.target, stdio));
    // the engine's descriptors are not inherited
    const { out } = await c.exec(["ls", "/proc/self/fd"]);
    assert.deepEqual(out.trim().split(/\s+/).sort(), ["0", "1", "2", "3"]);
    // the network namespace is the container's: only lo
    const link = await c.exec(["ip", "-o", "link"]);
    assert.match(link.out, /^1: lo: <LOOPBACK,UP,LOWER_UP>[^\n]*\n$/);
  });
  assert.deepEqual(links(), before);
  assert.equal(Deno.cwd(), cwd);
});

test("exec: output streamed to sinks, kept apart, as it comes", async () => {
  await withContainer(async (c) => {
    // the process goes on only once the test has received its first lines (or gives up)
    const got: string[] = [];
    const sink = (name: string) =>
      new WritableStream<Uint8Array>({
        write(chunk) {
          for (const line of dec.decode(chunk).trim().split("\n")) got.push(`${name}:${line}`);
          if (got.includes("out:one") && got.includes("err:two")) {
            Deno.writeTextFileSync(`/proc/${c.target.pid}/root/tmp/go`, "");
          }
        },
      });
    const script = "echo one; echo two >&2; i=0; " +
      "while [ ! -e /tmp/go ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; " +
      "[ -e /tmp/go ] && echo three || echo timeout";
    const { result } = await c.exec(["sh", "-c", script], {}, {
      stdout: sink("out"),
      stderr: sink("err"),
    });
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout, undefined);
    assert.deepEqual(got.sort(), ["err:two", "out:one", "out:three"]);
  });
});

test("exec: a process run as non-root dies with its engine", async () => {
  await withContainer(async (c) => {
    const process = execProcess(c.spec, {
      command: ["sleep", "30"],
      user: "1000",
      pid: c.target.pid,
      callerEnv: {},
    });
    const script = `
      import { execInContainer } from ${
      JSON.stringify(new URL("../core/runtime/exec.ts", import.meta.url).href)
    };
      const [target, process] = JSON.parse(Deno.args[0]);
      await execInContainer(target, process, {
        stdin: "null", stdout: "null", stderr: "null", onStart: (pid) => console.log(pid),
      });`;
    const engine = new Deno.Command(Deno.execPath(), {
      args: ["eval", script, JSON.stringify([c.target, process])],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = engine.stdout.getReader();
    const { value } = await reader.read();
    const pid = Number(dec.decode(value).trim());
    assert.ok(pid > 1);
    assert.match(Deno.readTextFileSync(`/proc/${pid}/status`), /^Uid:\s+1000\s/m);
    engine.kill("SIGKILL");
    await engine.status;
    reader.releaseLock();
    await engine.stdout.cancel();
    // dead: gone, or a zombie the container's PID 1 (a sleep) never reaps
    const alive = () => {
      try {
        return !/^\d+ \(.*\) Z /.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 200 && alive(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(!alive(), "the exec'd process outlived its engine");
  });
});

test("exec: the bounding set does not trust the container's cap_last_cap", async () => {
  // container root with CAP_SYS_ADMIN fakes the kernel's last capability for the next exec
  await withContainer(
    async (c) => {
      const { out } = await c.exec([
        "sh",
        "-c",
        "cat /proc/sys/kernel/cap_last_cap; grep CapBnd /proc/self/status",
      ]);
      assert.equal(out, "5\nCapBnd:\t00000000a82425fb\n");
    },
    { capAdd: ["SYS_ADMIN"] },
    [
      "sh",
      "-c",
      "echo 5 > /tmp/c && mount --bind /tmp/c /proc/sys/kernel/cap_last_cap && exec sleep 60",
    ],
  );
});

test("exec: the init has none of the engine's environment (its /proc/PID/environ)", async () => {
  Deno.env.set("BERTH_TEST_SECRET", "hunter2");
  try {
    await withContainer(async (c) => {
      const stdio = { stdin: "null", stdout: "piped", stderr: "piped" } as const;
      const init = prepareExec(c.target, stdio);
      try {
        let environ = "";
        for (let i = 0; i < 500 && !environ.includes("DENO_NO_UPDATE_CHECK"); i++) {
          if (Deno.readTextFileSync(`/proc/${init.pid}/cmdline`).includes("__init")) {
            environ = Deno.readTextFileSync(`/proc/${init.pid}/environ`);
          } else await new Promise((r) => setTimeout(r, 2));
        }
        // in the container's pid namespace: its root could read this while Deno starts
        assert.ok(environ.includes("DENO_NO_UPDATE_CHECK=1"), environ);
        assert.ok(!environ.includes("BERTH_TEST_SECRET"), environ);
        assert.ok(!/(^|\0)PATH=/.test(environ), environ);
      } finally {
        await discardExec(init);
      }
    });
  } finally {
    Deno.env.delete("BERTH_TEST_SECRET");
  }
});

test("exec: -u never opens a device the container put at /etc/passwd", async () => {
  // a character device without a driver: opening it fails with ENXIO, so an open shows
  const used = new Set(
    Deno.readTextFileSync("/proc/devices").split("Block devices:")[0].split("\n")
      .map((l) => parseInt(l)).filter((n) => !isNaN(n)),
  );
  const major = [240, 241, 242, 243, 244, 231, 232, 233, 234].find((m) => !used.has(m));
  assert.ok(major, "no free character major");
  await withContainer(
    async (c) => {
      const { result, out } = await c.exec(["id", "-u"], { user: "1000" });
      assert.equal(result.exitCode, 0);
      assert.equal(out, "1000\n");
      const named = await c.exec(["id"], { user: "app" }).catch((e) => e);
      assert.ok(named instanceof NotFoundError, String(named));
    },
    {},
    ["sh", "-c", `rm /etc/passwd && mknod /etc/passwd c ${major} 0 && exec sleep 60`],
  );
});
