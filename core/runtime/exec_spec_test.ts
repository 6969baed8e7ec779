// Unit tests of execProcess: docker exec's flags over a container's saved spec (no root needed:
// the container's /etc/passwd and /etc/group are given as texts).
import assert from "node:assert/strict";
import { execProcess } from "./exec_spec.ts";
import type { RuntimeSpec } from "./spec_types.ts";
import { NotFoundError } from "../errors.ts";

const passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n";
const group = "root:x:0:\nstaff:x:50:app\napp:x:1000:\nextra:x:1001:app\n";
const userFiles = { passwd, group };

function spec(env: string[], user = { uid: 0, gid: 0 }): RuntimeSpec {
  return {
    ociVersion: "1.0.2",
    root: { path: "rootfs" },
    process: {
      args: ["sleep", "60"],
      env,
      cwd: "/srv",
      user,
      capabilities: { bounding: ["CAP_CHOWN"], effective: ["CAP_CHOWN"], permitted: ["CAP_CHOWN"] },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
  };
}

const base = ["PATH=/usr/bin:/bin", "HOSTNAME=abc", "A=1", "HOME=/root"];

Deno.test("execProcess: the container's process, the command replaced", () => {
  const p = execProcess(spec(base), { command: ["ls", "-l"] });
  assert.deepEqual(p, {
    terminal: false,
    user: { uid: 0, gid: 0 },
    args: ["ls", "-l"],
    env: base,
    cwd: "/srv",
    capabilities: { bounding: ["CAP_CHOWN"], effective: ["CAP_CHOWN"], permitted: ["CAP_CHOWN"] },
    rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
    noNewPrivileges: true,
  });
  assert.throws(() => execProcess(spec(base), { command: [] }), TypeError);
  assert.throws(() => execProcess(spec(base), { command: [""] }), TypeError);
});

Deno.test("execProcess: -e over the container's env; -e K from the caller; --env-file", () => {
  const p = execProcess(spec(base), {
    command: ["env"],
    env: ["A=2", "B=3", "FROM_CALLER", "UNSET", "HOSTNAME"],
    envFile: ["C=4", "A=file"],
    callerEnv: { FROM_CALLER: "yes" },
  });
  // a later K=V replaces in place; a bare K the caller lacks removes K
  assert.deepEqual(p.env, [
    "PATH=/usr/bin:/bin",
    "A=2",
    "HOME=/root",
    "C=4",
    "B=3",
    "FROM_CALLER=yes",
  ]);
  assert.throws(() => execProcess(spec(base), { command: ["env"], env: ["=x"] }), TypeError);
});

Deno.test("execProcess: -t adds TERM=xterm unless set, and the console size", () => {
  const p = execProcess(spec(base), {
    command: ["sh"],
    tty: true,
    consoleSize: { rows: 30, columns: 100 },
  });
  assert.equal(p.terminal, true);
  assert.deepEqual(p.consoleSize, { height: 30, width: 100 });
  assert.deepEqual(p.env, [...base, "TERM=xterm"]);
  const kept = execProcess(spec([...base, "TERM=vt100"]), { command: ["sh"], tty: true });
  assert.deepEqual(kept.env, [...base, "TERM=vt100"]);
  assert.equal(execProcess(spec(base), { command: ["sh"] }).consoleSize, undefined);
});

Deno.test("execProcess: -w absolute (normalized), relative refused", () => {
  assert.equal(
    execProcess(spec(base), { command: ["pwd"], workdir: "/tmp//x/../y/" }).cwd,
    "/tmp/y",
  );
  assert.throws(
    () => execProcess(spec(base), { command: ["pwd"], workdir: "tmp" }),
    /needs to be an absolute path/,
  );
});

Deno.test("execProcess: -u resolved in the container's files; HOME follows a derived one", () => {
  const p = execProcess(spec(base), { command: ["id"], user: "app", userFiles });
  assert.deepEqual(p.user, { uid: 1000, gid: 1000, additionalGids: [50, 1001] });
  assert.ok(p.env!.includes("HOME=/home/app"));
  assert.deepEqual(
    execProcess(spec(base), { command: ["id"], user: "1000:50", userFiles }).user,
    { uid: 1000, gid: 50 },
  );
  assert.deepEqual(
    execProcess(spec(base), { command: ["id"], user: "4242", userFiles }).user,
    { uid: 4242, gid: 0 },
  );
  // a HOME the image or a flag set stays; -e HOME wins
  const own = execProcess(spec([...base.slice(0, 3), "HOME=/data"]), {
    command: ["id"],
    user: "app",
    userFiles,
  });
  assert.ok(own.env!.includes("HOME=/data"));
  const flag = execProcess(spec(base), {
    command: ["id"],
    user: "app",
    env: ["HOME=/x"],
    userFiles,
  });
  assert.ok(flag.env!.includes("HOME=/x"));
  assert.throws(
    () => execProcess(spec(base), { command: ["id"], user: "nosuch", userFiles }),
    NotFoundError,
  );
  // without -u: the container's user, groups and umask as they are
  const u = { uid: 7, gid: 8, additionalGids: [9], umask: 0o077 };
  assert.deepEqual(execProcess(spec(base, u), { command: ["id"] }).user, u);
  assert.throws(() => execProcess(spec(base), { command: ["id"], user: "app" }), /pid/);
});
