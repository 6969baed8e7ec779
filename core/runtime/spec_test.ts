// Unit tests of createSpec (image config + docker run flags -> OCI runtime spec) and the pure
// helpers it uses. No root, no kernel: only temp files for /etc/passwd and volume sources.
import assert from "node:assert/strict";
import type { ImageConfig } from "../oci/types.ts";
import { InvalidInputError, NotFoundError, UnsupportedError } from "../errors.ts";
import {
  createSpec,
  DEFAULT_MASKED_PATHS,
  DEFAULT_PATH,
  DEFAULT_READONLY_PATHS,
  parseEnvFile,
  parseMemory,
  type RunOptions,
} from "./spec.ts";
import { capabilityMask } from "./_capabilities.ts";
import { mergeEnv } from "./_env.ts";
import { resolveUser } from "./_user.ts";
import { parseMountOptions } from "./_mount_options.ts";
import {
  MS_BIND,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
} from "../../ffi/constants.ts";

const ID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

function image(config: ImageConfig["config"] = {}): ImageConfig {
  return { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] }, config };
}

const PASSWD = "root:x:0:0:root:/root:/bin/sh\n" +
  "app:x:1000:1000:app:/home/app:/bin/sh\n" +
  "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP = "root:x:0:root\nwheel:x:10:root,app\nstaff:x:50:app\napp:x:1000:\n" +
  "extra:x:1001:app\nnogroup:x:65534:\n";

function rootfs(files: Record<string, string> = { "etc/passwd": PASSWD, "etc/group": GROUP }) {
  const dir = Deno.makeTempDirSync({ prefix: "berth-spec-" });
  for (const [p, text] of Object.entries(files)) {
    Deno.mkdirSync(`${dir}/${p}`.replace(/\/[^/]*$/, ""), { recursive: true });
    Deno.writeTextFileSync(`${dir}/${p}`, text);
  }
  return dir;
}

function spec(config: ImageConfig["config"], options: Partial<RunOptions> = {}) {
  return createSpec(image(config), { id: ID, callerEnv: {}, nofileHardLimit: 1 << 30, ...options });
}

Deno.test("createSpec: docker's defaults", () => {
  const s = spec({ Entrypoint: ["/ep"], Cmd: ["a", "b"] }, { bundleDir: "/b" });
  assert.equal(s.ociVersion, "1.0.2");
  assert.deepEqual(s.process.args, ["/ep", "a", "b"]);
  assert.deepEqual(s.process.env, [`PATH=${DEFAULT_PATH}`, "HOSTNAME=0123456789ab", "HOME=/"]);
  assert.equal(s.process.cwd, "/");
  assert.equal(s.hostname, "0123456789ab");
  assert.deepEqual(s.process.user, { uid: 0, gid: 0 });
  assert.equal(s.process.terminal, false);
  assert.equal(s.process.noNewPrivileges, true);
  const caps = s.process.capabilities!;
  assert.equal(capabilityMask(caps.bounding), 0xa80425fbn);
  assert.deepEqual(caps.effective, caps.bounding);
  assert.deepEqual(caps.permitted, caps.bounding);
  assert.equal(caps.inheritable, undefined);
  assert.deepEqual(s.process.rlimits, [{ type: "RLIMIT_NOFILE", hard: 1048576, soft: 1048576 }]);
  assert.deepEqual(s.root, { path: "rootfs", readonly: false });
  assert.deepEqual(s.linux!.namespaces!.map((n) => n.type), [
    "pid",
    "ipc",
    "uts",
    "mount",
    "network",
    "cgroup",
  ]);
  assert.deepEqual(s.linux!.maskedPaths, [
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
  ]);
  assert.deepEqual(s.linux!.maskedPaths, [...DEFAULT_MASKED_PATHS]);
  assert.deepEqual(s.linux!.readonlyPaths, [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
  ]);
  assert.deepEqual(s.linux!.readonlyPaths, [...DEFAULT_READONLY_PATHS]);
  assert.equal(s.linux!.cgroupsPath, `berth/${ID}`);
  assert.deepEqual(s.mounts!.map((m) => [m.destination, m.type, m.source]), [
    ["/proc", "proc", "proc"],
    ["/dev", "tmpfs", "tmpfs"],
    ["/dev/pts", "devpts", "devpts"],
    ["/sys", "sysfs", "sysfs"],
    ["/sys/fs/cgroup", "cgroup", "cgroup"],
    ["/dev/mqueue", "mqueue", "mqueue"],
    ["/dev/shm", "tmpfs", "shm"],
    ["/etc/resolv.conf", "bind", "/b/resolv.conf"],
    ["/etc/hostname", "bind", "/b/hostname"],
    ["/etc/hosts", "bind", "/b/hosts"],
  ]);
  const pts = s.mounts!.find((m) => m.destination === "/dev/pts")!;
  assert.deepEqual(pts.options, [
    "nosuid",
    "noexec",
    "newinstance",
    "ptmxmode=0666",
    "mode=0620",
    "gid=5",
  ]);
  assert.ok(
    s.mounts!.find((m) => m.destination === "/dev/shm")!.options!.includes("size=67108864"),
  );
  assert.ok(s.mounts!.find((m) => m.destination === "/sys")!.options!.includes("ro"));
  const r = s.linux!.resources!;
  assert.deepEqual(r.devices![0], { allow: false, access: "rwm" });
  assert.ok(r.devices!.some((d) => d.allow && d.type === "c" && d.major === 1 && d.minor === 3));
  assert.equal(r.memory, undefined);
  assert.equal(r.cpu, undefined);
  assert.equal(r.pids, undefined);
  // no bundle dir: no /etc binds
  assert.ok(!spec({ Cmd: ["x"] }).mounts!.some((m) => m.destination.startsWith("/etc")));
});

Deno.test("createSpec: RLIMIT_NOFILE is the host's hard limit when lower", () => {
  const s = spec({ Cmd: ["x"] }, { nofileHardLimit: 20000 });
  assert.deepEqual(s.process.rlimits, [{ type: "RLIMIT_NOFILE", hard: 20000, soft: 20000 }]);
  const host = createSpec(image({ Cmd: ["x"] }), { id: "x" });
  assert.ok(host.process.rlimits![0].hard <= 1048576);
});

Deno.test("createSpec: command, entrypoint and their docker overrides", () => {
  const cfg = { Entrypoint: ["/ep", "-x"], Cmd: ["default"] };
  assert.deepEqual(spec(cfg, { command: ["c1", "c2"] }).process.args, ["/ep", "-x", "c1", "c2"]);
  assert.deepEqual(spec(cfg, { entrypoint: "sh -c" }).process.args, ["sh -c"]); // one word
  assert.deepEqual(spec(cfg, { entrypoint: "sh", command: ["-c", "x"] }).process.args, [
    "sh",
    "-c",
    "x",
  ]);
  assert.deepEqual(spec(cfg, { entrypoint: "", command: ["ls"] }).process.args, ["ls"]);
  assert.deepEqual(spec(cfg, { entrypoint: ["a", "b"] }).process.args, ["a", "b"]);
  assert.deepEqual(spec({ Cmd: ["sh"] }, {}).process.args, ["sh"]);
  assert.deepEqual(spec({ Entrypoint: null, Cmd: null }, { command: ["x"] }).process.args, ["x"]);
  assert.throws(() => spec(cfg, { entrypoint: "" }), InvalidInputError);
  assert.throws(() => spec({}, {}), /no command specified/);
});

Deno.test("createSpec: environment merge order and -e K from the caller", () => {
  const cfg = { Cmd: ["x"], Env: ["PATH=/img/bin", "A=image", "B=image", "GONE=1"] };
  const s = spec(cfg, {
    env: ["B=flag", "C", "GONE", "D=x=y"],
    envFile: ["A=file", "E=file"],
    callerEnv: { C: "from-caller" },
    tty: true,
  });
  assert.deepEqual(s.process.env, [
    "PATH=/img/bin",
    "HOSTNAME=0123456789ab",
    "TERM=xterm",
    "A=file",
    "B=flag",
    "E=file",
    "C=from-caller",
    "D=x=y",
    "HOME=/",
  ]);
  assert.ok(spec({ Cmd: ["x"], Env: ["HOME=/h"] }).process.env!.includes("HOME=/h"));
  assert.throws(() => spec(cfg, { env: ["=x"] }), TypeError);
});

Deno.test("createSpec: env file given by path", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/env`, "\uFEFF# comment\n\n  X=1\nY= spaced \nZ\nW\n");
    const s = spec({ Cmd: ["x"] }, { envFile: `${dir}/env`, callerEnv: { Z: "z" } });
    assert.deepEqual(s.process.env!.slice(2, 5), ["X=1", "Y= spaced ", "Z=z"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("parseEnvFile and mergeEnv follow docker", () => {
  assert.deepEqual(parseEnvFile("A=1\r\n#c\n\tB=2\nC\n", (k) => (k === "C" ? "3" : undefined)), [
    "A=1",
    "B=2",
    "C=3",
  ]);
  assert.deepEqual(parseEnvFile("MISSING\n"), []);
  assert.throws(() => parseEnvFile("BAD KEY=1\n"), /variable 'BAD KEY' contains whitespaces/);
  assert.deepEqual(mergeEnv(["A=1", "B=2"], ["B=3", "A", "C=4"]), ["B=3", "C=4"]);
});

Deno.test("createSpec: working directory", () => {
  assert.equal(spec({ Cmd: ["x"], WorkingDir: "/app" }).process.cwd, "/app");
  assert.equal(
    spec({ Cmd: ["x"], WorkingDir: "/app" }, { workdir: "/w//x/../y/" }).process.cwd,
    "/w/y",
  );
  assert.throws(() => spec({ Cmd: ["x"] }, { workdir: "rel" }), /needs to be an absolute path/);
});

Deno.test("createSpec: users and groups from the rootfs", () => {
  const dir = rootfs();
  try {
    const user = (u: string | undefined, cfgUser?: string) =>
      spec({ Cmd: ["x"], User: cfgUser }, { rootfs: dir, ...(u === undefined ? {} : { user: u }) });
    const root = user(undefined);
    assert.deepEqual(root.process.user, { uid: 0, gid: 0, additionalGids: [0, 10] });
    assert.ok(root.process.env!.includes("HOME=/root"));
    const app = user("app");
    assert.deepEqual(app.process.user, { uid: 1000, gid: 1000, additionalGids: [10, 50, 1001] });
    assert.ok(app.process.env!.includes("HOME=/home/app"));
    assert.deepEqual(user("1000").process.user, app.process.user);
    assert.deepEqual(user(undefined, "app").process.user, app.process.user);
    assert.deepEqual(user("app:50").process.user, { uid: 1000, gid: 50 });
    assert.deepEqual(user("app:extra").process.user, { uid: 1000, gid: 1001 });
    assert.deepEqual(user("1000:4242").process.user, { uid: 1000, gid: 4242 });
    assert.deepEqual(user("4242").process.user, { uid: 4242, gid: 0 });
    assert.ok(user("4242").process.env!.includes("HOME=/"));
    assert.throws(() => user("nosuch"), NotFoundError);
    assert.throws(() => user("app:nosuch"), /unable to find group nosuch/);
    assert.throws(() => user("99999999999"), RangeError);
    // no rootfs: numeric ids only
    assert.deepEqual(spec({ Cmd: ["x"] }, { user: "7:8" }).process.user, { uid: 7, gid: 8 });
    assert.throws(() => spec({ Cmd: ["x"] }, { user: "app" }), NotFoundError);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("createSpec: /etc/passwd is read inside the rootfs, through layers and symlinks", () => {
  const lower = rootfs();
  const upper = rootfs({ "etc/passwd": "root:x:0:0::/r:/bin/sh\napp:x:2000:2000::/a:/bin/sh\n" });
  const hostile = rootfs({ "real/passwd": "app:x:3000:3000::/z:/bin/sh\n" });
  try {
    assert.equal(
      spec({ Cmd: ["x"] }, { rootfs: [upper, lower], user: "app" }).process.user.uid,
      2000,
    );
    // a whiteout in the upper layer hides the lower file
    const wh = Deno.makeTempDirSync();
    Deno.mkdirSync(`${wh}/etc`);
    if (Deno.uid() === 0) {
      new Deno.Command("mknod", { args: [`${wh}/etc/passwd`, "c", "0", "0"] }).outputSync();
      assert.throws(
        () => spec({ Cmd: ["x"] }, { rootfs: [wh, lower], user: "app" }),
        NotFoundError,
      );
    }
    Deno.removeSync(wh, { recursive: true });
    // /etc -> / and /etc/passwd -> ../real/passwd resolve inside the rootfs, never on the host
    Deno.symlinkSync("/", `${hostile}/etc`);
    assert.throws(() => spec({ Cmd: ["x"] }, { rootfs: hostile, user: "root" }), NotFoundError);
    Deno.removeSync(`${hostile}/etc`);
    Deno.mkdirSync(`${hostile}/etc`);
    Deno.symlinkSync("../../../../real/passwd", `${hostile}/etc/passwd`);
    assert.equal(spec({ Cmd: ["x"] }, { rootfs: hostile, user: "app" }).process.user.uid, 3000);
  } finally {
    for (const d of [lower, upper, hostile]) Deno.removeSync(d, { recursive: true });
  }
});

Deno.test("createSpec: a lower layer's symlink is never followed out of the rootfs", () => {
  // stands for the host's /etc: a file the engine must not read
  const host = rootfs({ "etc/passwd": "evil:x:0:0::/root:/bin/sh\n" });
  const lower = rootfs({});
  const upper = rootfs({ "etc/group": GROUP });
  const other = rootfs({ "etc/passwd": PASSWD });
  try {
    // layer 1: etc -> <host>/etc; layer 2: etc/ (merged over it: the link is hidden, not followed)
    Deno.symlinkSync(`${host}/etc`, `${lower}/etc`);
    assert.throws(
      () => spec({ Cmd: ["x"] }, { rootfs: [upper, lower], user: "evil" }),
      NotFoundError,
    );
    // below the link nothing merges either
    assert.throws(
      () => spec({ Cmd: ["x"] }, { rootfs: [upper, lower, other], user: "app" }),
      NotFoundError,
    );
    assert.equal(
      spec({ Cmd: ["x"] }, { rootfs: [upper, other], user: "app" }).process.user.uid,
      1000,
    );
    // a FIFO as /etc/passwd is not opened (that would hang)
    Deno.removeSync(`${other}/etc/passwd`);
    new Deno.Command("mkfifo", { args: [`${other}/etc/passwd`] }).outputSync();
    assert.throws(() => spec({ Cmd: ["x"] }, { rootfs: [other], user: "app" }), NotFoundError);
    if (Deno.uid() === 0) {
      // an opaque directory hides the lower layers' entries
      const opaque = rootfs({ "etc/group": GROUP });
      const lowerPasswd = rootfs({ "etc/passwd": PASSWD });
      new Deno.Command("setfattr", {
        args: ["-n", "trusted.overlay.opaque", "-v", "y", `${opaque}/etc`],
      }).outputSync();
      assert.throws(
        () => spec({ Cmd: ["x"] }, { rootfs: [opaque, lowerPasswd], user: "app" }),
        NotFoundError,
      );
      for (const d of [opaque, lowerPasswd]) Deno.removeSync(d, { recursive: true });
    }
  } finally {
    for (const d of [host, lower, upper, other]) Deno.removeSync(d, { recursive: true });
  }
});

Deno.test("resolveUser: ids are decimal 0..2^31-1 (runc's rule), never -1", () => {
  const passwd = "neg:x:-1:-1::/:/bin/sh\nempty:x::::/:/bin/sh\nexp:x:1e3:1e3::/:/bin/sh\n" +
    "big:x:4294967295:0::/:/bin/sh\nok:x:7:8::/h:/bin/sh\n";
  const group = "bad:x:-5:ok\ngood:x:9:ok\n";
  for (const u of ["neg", "empty", "exp", "big"]) {
    assert.throws(() => resolveUser(u, { passwd }), RangeError, u);
  }
  // "1e3" is not uid 1000, "" is not uid 0
  assert.deepEqual(resolveUser("1000", { passwd }).uid, 1000);
  assert.deepEqual(resolveUser("1000", { passwd: "x:x:1e3:5::/x:/\n" }).gid, 0);
  assert.deepEqual(resolveUser("", { passwd: "x:x::5::/x:/\n" }).gid, 0);
  assert.throws(() => resolveUser("-1", { passwd }), NotFoundError);
  assert.throws(() => resolveUser("ok", { passwd, group }), RangeError); // member of "bad"
  assert.throws(() => resolveUser("ok:bad", { passwd, group }), RangeError);
  assert.deepEqual(resolveUser("ok:good", { passwd, group }), {
    uid: 7,
    gid: 9,
    additionalGids: [],
    home: "/h",
  });
});

Deno.test("createSpec: memory, cpus, pids limits", () => {
  const r = (o: Partial<RunOptions>) =>
    spec({ Cmd: ["x"] }, { hostCpus: 2, ...o }).linux!.resources!;
  assert.deepEqual(r({ memory: "32m" }).memory, { limit: 33554432, swap: 33554432 });
  assert.deepEqual(r({ memory: 8 << 20 }).memory, { limit: 8 << 20, swap: 8 << 20 });
  assert.equal(r({ memory: "0" }).memory, undefined);
  assert.throws(() => r({ memory: "5m" }), /Minimum memory limit allowed is 6MB/);
  assert.throws(() => r({ memory: "lots" }), TypeError);
  assert.deepEqual(r({ cpus: 0.5 }).cpu, { quota: 50000, period: 100000 });
  assert.deepEqual(r({ cpus: "1.25" }).cpu, { quota: 125000, period: 100000 });
  assert.throws(() => r({ cpus: 3 }), /range of CPUs is from 0.01 to 2.00/);
  assert.throws(() => r({ cpus: "x" }), TypeError);
  assert.deepEqual(r({ pidsLimit: 10 }).pids, { limit: 10 });
  assert.equal(r({ pidsLimit: 0 }).pids, undefined);
  assert.equal(r({ pidsLimit: -1 }).pids, undefined);
  assert.throws(() => r({ pidsLimit: -5 }), RangeError);
});

Deno.test("parseMemory: docker units", () => {
  assert.equal(parseMemory("100"), 100);
  assert.equal(parseMemory("100b"), 100);
  assert.equal(parseMemory("2k"), 2048);
  assert.equal(parseMemory("2KB"), 2048);
  assert.equal(parseMemory("1.5g"), 1.5 * 2 ** 30);
  assert.equal(parseMemory("1GiB"), 2 ** 30);
  assert.equal(parseMemory("64M"), 64 * 2 ** 20);
  assert.throws(() => parseMemory("1x"), TypeError);
  assert.throws(() => parseMemory(-1), RangeError);
});

Deno.test("createSpec: --cap-add / --cap-drop with docker names and ALL", () => {
  const caps = (add: string[], drop: string[]) =>
    spec({ Cmd: ["x"] }, { capAdd: add, capDrop: drop }).process.capabilities!.bounding!;
  const mask = (add: string[], drop: string[]) => capabilityMask(caps(add, drop));
  assert.equal(mask(["sys_admin"], ["CAP_NET_RAW"]), (0xa80425fbn | (1n << 21n)) & ~(1n << 13n));
  assert.deepEqual(caps(["chown"], ["ALL"]), ["CAP_CHOWN"]);
  assert.deepEqual(caps([], ["all"]), []);
  assert.equal(mask(["ALL"], ["mknod"]), ((1n << 41n) - 1n) & ~(1n << 27n));
  assert.equal(mask(["KILL"], ["kill"]), 0xa80425fbn); // add wins, as in docker
  assert.throws(() => caps(["CAP_FOO"], []), /unknown capability: "CAP_FOO"/);
});

Deno.test("createSpec: network, hostname, tty, read-only, cgroup parent", () => {
  const host = spec({ Cmd: ["x"] }, { network: "host" });
  assert.ok(!host.linux!.namespaces!.some((n) => n.type === "network"));
  assert.throws(() => spec({ Cmd: ["x"] }, { network: "bridge" as "host" }), UnsupportedError);
  const s = spec({ Cmd: ["x"] }, {
    hostname: "web",
    tty: true,
    consoleSize: { rows: 24, columns: 80 },
    readOnly: true,
    cgroupParent: "/mine",
  });
  assert.equal(s.hostname, "web");
  assert.ok(s.process.env!.includes("HOSTNAME=web"));
  assert.equal(s.process.terminal, true);
  assert.deepEqual(s.process.consoleSize, { height: 24, width: 80 });
  assert.equal(s.root.readonly, true);
  assert.equal(s.linux!.cgroupsPath, `/mine/${ID}`);
  assert.throws(() => spec({ Cmd: ["x"] }, { hostname: "a b" }), TypeError);
  assert.throws(() => createSpec(image({ Cmd: ["x"] }), { id: "../x" }), TypeError);
});

Deno.test("createSpec: --tmpfs merges docker's default options", () => {
  const s = spec({ Cmd: ["x"] }, { tmpfs: ["/run:size=1m,exec", "/tmp"] });
  const run = s.mounts!.find((m) => m.destination === "/run")!;
  assert.deepEqual(run, {
    destination: "/run",
    type: "tmpfs",
    source: "tmpfs",
    options: ["nosuid", "nodev", "rprivate", "size=1m", "exec"],
  });
  const tmp = s.mounts!.find((m) => m.destination === "/tmp")!;
  assert.deepEqual(tmp.options, ["noexec", "nosuid", "nodev", "rprivate"]);
  assert.throws(() => spec({ Cmd: ["x"] }, { tmpfs: ["run"] }), TypeError);
  const shm = spec({ Cmd: ["x"] }, { tmpfs: ["/dev/shm:size=1m"] }).mounts!;
  assert.equal(shm.filter((m) => m.destination === "/dev/shm").length, 1);
  assert.equal(shm.find((m) => m.destination === "/dev/shm")!.source, "tmpfs");
});

Deno.test("createSpec: -v bind mounts", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const s = spec({ Cmd: ["x"] }, {
      volumes: [`${dir}:/data/deep:ro`, `${dir}/:/data`, `${dir}:/other:rw,rslave`],
    });
    const user = s.mounts!.filter((m) => m.type === "bind");
    assert.deepEqual(user, [
      { destination: "/data", type: "bind", source: dir, options: ["rbind", "rprivate"] },
      { destination: "/other", type: "bind", source: dir, options: ["rbind", "rw", "rslave"] },
      {
        destination: "/data/deep",
        type: "bind",
        source: dir,
        options: ["rbind", "ro", "rprivate"],
      },
    ]);
    assert.throws(
      () => spec({ Cmd: ["x"] }, { volumes: [`${dir}/nope:/d`] }),
      /bind source path does not exist/,
    );
    assert.throws(() => spec({ Cmd: ["x"] }, { volumes: ["named:/d"] }), UnsupportedError);
    assert.throws(() => spec({ Cmd: ["x"] }, { volumes: [`${dir}:rel`] }), TypeError);
    assert.throws(() => spec({ Cmd: ["x"] }, { volumes: [`${dir}:/`] }), TypeError);
    assert.throws(() => spec({ Cmd: ["x"] }, { volumes: [`${dir}:/d:zz`] }), /invalid mode: zz/);
    assert.throws(() => spec({ Cmd: ["x"] }, { volumes: ["nocolon"] }), TypeError);
    assert.throws(() => spec({ Cmd: ["x"] }, { volumes: [`${dir}:/d`, `${dir}:/d`] }), /Duplicate/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("parseMountOptions: flags, propagation and data", () => {
  assert.deepEqual(parseMountOptions(["nosuid", "noexec", "nodev", "mode=755", "size=1m"]), {
    flags: MS_NOSUID | MS_NOEXEC | MS_NODEV,
    propagation: [],
    data: "mode=755,size=1m",
  });
  assert.deepEqual(parseMountOptions(["rbind", "ro", "rprivate"]), {
    flags: MS_BIND | MS_REC | MS_RDONLY,
    propagation: [MS_PRIVATE | MS_REC],
    data: "",
  });
  assert.equal(parseMountOptions(["ro", "rw", "noexec", "exec"]).flags, 0);
  assert.deepEqual(parseMountOptions(undefined), { flags: 0, propagation: [], data: "" });
});
