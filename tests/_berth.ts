/**
 * Runs the berth CLI as a user would (`deno run -A main.ts …`) against a given store root.
 *
 * @module
 */
const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** Result of one CLI run. */
export interface BerthResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `berth --root ROOT args…`, optionally feeding `stdin` (bytes or a file path). */
export async function berth(
  root: string,
  args: string[],
  options: { stdin?: Uint8Array | { file: string }; env?: Record<string, string> } = {},
): Promise<BerthResult> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "--root", root, ...args],
    stdin: options.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    env: options.env ?? {},
  });
  const child = cmd.spawn();
  if (options.stdin) {
    const writer = child.stdin;
    if (options.stdin instanceof Uint8Array) {
      const w = writer.getWriter();
      await w.write(options.stdin).catch(() => {});
      await w.close().catch(() => {});
    } else {
      using f = await Deno.open(options.stdin.file);
      await f.readable.pipeTo(writer).catch(() => {});
    }
  }
  const { code, stdout, stderr } = await child.output();
  const dec = new TextDecoder();
  return { code, stdout: dec.decode(stdout), stderr: dec.decode(stderr) };
}

/** Runs a tool and returns stdout; throws with stderr when it fails. */
export async function sh(
  cmd: string,
  args: string[],
  options: { cwd?: string } = {},
): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", ...options })
    .output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}): ${dec.decode(out.stderr)}`);
  }
  return dec.decode(out.stdout);
}

/** A fresh empty directory, removed when disposed (`await using dir = await tempDir()`). */
export async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "berth-test-" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }).catch(() => {}),
  };
}

/** Every file under `dir` (relative paths), sorted: to assert a store was left unchanged. */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, prefix: string) => {
    for await (const e of Deno.readDir(d)) {
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      out.push(rel + (e.isDirectory ? "/" : ""));
      if (e.isDirectory) await walk(`${d}/${e.name}`, rel);
    }
  };
  await walk(dir, "");
  return out.sort();
}
