/**
 * The demo: needs no internet and no image from anywhere. It assembles a tiny root filesystem
 * from this host's own /bin/sh and the libraries it links, imports it as an image, and shows the
 * air-gapped path: images, inspect, save, rmi, load, and runs it as a container (needs root).
 *
 * Usage: deno task demo [--keep]   (store in a temp dir unless BERTH_ROOT is set)
 *
 * @module
 */
const MAIN = new URL("../main.ts", import.meta.url).pathname;
const keep = Deno.args.includes("--keep");
const root = Deno.env.get("BERTH_ROOT") ?? await Deno.makeTempDir({ prefix: "berth-demo-" });
const work = await Deno.makeTempDir({ prefix: "berth-demo-work-" });

async function capture(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

async function berth(...args: string[]): Promise<void> {
  console.log(`\n$ berth ${args.map((a) => (/[\s"'$]/.test(a) ? `'${a}'` : a)).join(" ")}`);
  const status = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "--root", root, ...args],
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (!status.success) throw new Error(`berth ${args[0]} exited ${status.code}`);
}

/** Copies `path` (following symlinks) into the rootfs at the same path. */
async function copyIn(rootfs: string, path: string): Promise<void> {
  const target = `${rootfs}${path}`;
  await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
  await Deno.copyFile(await Deno.realPath(path), target);
  await Deno.chmod(target, (await Deno.stat(path)).mode! & 0o7777);
}

try {
  const rootfs = `${work}/rootfs`;
  const sh = await Deno.realPath("/bin/sh");
  await copyIn(rootfs, "/bin/sh");
  // The dynamic loader and every library /bin/sh links (from ldd), at their paths.
  const ldd = await capture("ldd", [sh]);
  for (const m of ldd.matchAll(/(\/\S+)/g)) await copyIn(rootfs, m[1]);
  await Deno.mkdir(`${rootfs}/tmp`, { recursive: true, mode: 0o1777 });
  await Deno.mkdir(`${rootfs}/etc`, { recursive: true });
  await Deno.writeTextFile(`${rootfs}/etc/passwd`, "root:x:0:0:root:/root:/bin/sh\n");
  const tarball = `${work}/rootfs.tar.gz`;
  await capture("tar", ["-C", rootfs, "--numeric-owner", "-czf", tarball, "."]);
  console.log(`Assembled ${tarball} from this host's /bin/sh (${sh}) and its libraries.`);
  console.log(`Store: ${root}`);

  await berth(
    "import",
    "--change",
    'CMD ["/bin/sh", "-c", "echo Hello from berth"]',
    "--message",
    "demo rootfs",
    tarball,
    "demo/hello:1.0",
  );
  await berth("images");
  await berth(
    "inspect",
    "--format",
    "{{.Id}} {{.Os}}/{{.Architecture}} {{json .Config.Cmd}}",
    "demo/hello:1.0",
  );
  await berth("save", "-o", `${work}/hello.tar`, "demo/hello:1.0");
  await berth("rmi", "demo/hello:1.0");
  await berth("load", "-i", `${work}/hello.tar`);
  await berth("images", "--digests");
  await berth("run", "--rm", "demo/hello:1.0");
  await berth(
    "run",
    "--rm",
    "--hostname",
    "demo",
    "--memory",
    "64m",
    "demo/hello:1.0",
    "/bin/sh",
    "-c",
    'read h < /etc/hostname; echo "I am pid $$ on host $h"; exit 3',
  ).catch((e) => console.log(`(exit status as expected: ${(e as Error).message})`));
  await berth("system", "df");
  console.log("\nDemo done.");
} finally {
  await Deno.remove(work, { recursive: true }).catch(() => {});
  if (!keep && !Deno.env.get("BERTH_ROOT")) {
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}
