/**
 * The CLI's bundle (`deno task bundle`, what `deno task compile` builds the executable from)
 * works as main.ts does: load (digests checked by the bundled hashing code), run through the
 * direct start and through the init process, run -d (its supervisor re-runs the bundle, not
 * main.ts), exec, rm -f.
 */
import assert from "node:assert/strict";
import { tempDir } from "./_berth.ts";
import { fixtures } from "./_fixtures.ts";
import { bundle } from "../scripts/bundle.ts";
import { cgroupDirs } from "./_runtime_helpers.ts";

const fx = await fixtures();
const ROOT = new URL("..", import.meta.url).pathname;

Deno.test("bundle: the bundled CLI loads, runs, supervises and execs as main.ts does", async () => {
  await using out = await tempDir();
  await using root = await tempDir();
  const entry = await bundle(`${out.path}/js`);
  const files = [...Deno.readDirSync(`${out.path}/js`)].map((e) => e.name);
  assert.ok(files.length > 10, `split at the dynamic imports: ${files.length} files`);
  assert.ok(files.every((f) => f.endsWith(".js")), files.join(" "));
  const berth = async (args: string[], env: Record<string, string> = {}) => {
    const o = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", entry, "--root", root.path, ...args],
      cwd: ROOT,
      env,
      stdin: "null",
    }).output();
    const dec = new TextDecoder();
    return { code: o.code, stdout: dec.decode(o.stdout), stderr: dec.decode(o.stderr) };
  };
  assert.match((await berth(["--version"])).stdout, /^berth version /);
  const loaded = await berth(["load", "-i", fx.dockerArchive]);
  assert.equal(loaded.code, 0, loaded.stderr);
  assert.match(loaded.stdout, /Loaded image: fixture\/busybox:latest/);
  for (const env of [{}, { BERTH_START: "init" }] as Record<string, string>[]) {
    const r = await berth(["run", "--rm", "fixture/busybox", "sh", "-c", "echo $$; exit 3"], env);
    assert.deepEqual([r.code, r.stdout], [3, "1\n"], r.stderr);
  }
  const started = await berth(["run", "-d", "--name", "bg", "fixture/busybox", "sleep", "300"]);
  assert.equal(started.code, 0, started.stderr);
  const id = started.stdout.trim();
  try {
    const rec = JSON.parse(Deno.readTextFileSync(`${root.path}/containers/${id}/container.json`));
    const monitor = Deno.readTextFileSync(`/proc/${rec.state.monitorPid}/cmdline`).split("\0");
    assert.ok(monitor.includes(entry), `the supervisor runs the bundle: ${monitor.join(" ")}`);
    for (const env of [{}, { BERTH_START: "init" }] as Record<string, string>[]) {
      const e = await berth(["exec", "bg", "sh", "-c", "cat /proc/1/cmdline; echo"], env);
      assert.deepEqual([e.code, e.stdout], [0, "sleep\u0000300\u0000\n"], e.stderr);
    }
  } finally {
    assert.equal((await berth(["rm", "-f", "bg"])).code, 0);
  }
  for (const d of cgroupDirs(id)) assert.ok(!(await Deno.lstat(d).catch(() => false)), d);
  assert.equal((await berth(["ps", "-aq"])).stdout, "");
});
