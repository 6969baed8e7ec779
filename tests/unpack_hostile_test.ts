/**
 * Hostile layers against the snapshotter (overlay mode) and `flattenImage` (flatten mode), run
 * inside the sandbox of `_sandbox.ts` so that a traversal bug could only write into a throwaway
 * overlay. The layer tars are made by python3's tarfile, never by berth. Each case says whether the
 * layer must land safely inside or be rejected, and what docker/containerd do with it; afterwards
 * the test checks that nothing outside the target dirs changed and that the host's /etc is
 * untouched.
 *
 * This file is also the script that runs inside the sandbox (`import.meta.main`).
 */
import assert from "node:assert/strict";
import { fingerprint, runSandboxed, unexpectedChanges } from "./_sandbox.ts";

/** One tar member as the python writer takes it. */
interface Member {
  name: string;
  type?: "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo";
  link?: string;
  data?: string;
  major?: number;
  minor?: number;
  /** PAX records to write (e.g. a `path` that differs from the ustar name). */
  pax?: Record<string, string>;
  /** Permission bits (default 0755 for a directory, 0644 otherwise). */
  mode?: number;
}

/** Expected description of a path (see `describe`), or "absent". */
type Expect = Record<string, string>;

interface Case {
  name: string;
  layers: Member[][];
  /** "ok" or "reject" (the top layer), for both modes unless `flattenResult` says otherwise. */
  result: "ok" | "reject";
  flattenResult?: "ok" | "reject";
  /** Overlay mode: `"<layer index>:<path>"` → description. */
  overlay?: Expect;
  /** Flatten mode: path → description. */
  flatten?: Expect;
  /** What docker / containerd do (documentation of the expectation). */
  why: string;
  /** Run with `chmodNoFollow`'s fallback forced, as on a kernel without fchmodat2 (< 6.6). */
  noFchmodat2?: boolean;
}

const DEEP_BAD = "a/".repeat(4096) + "x";
const DEEP_OK = "a/".repeat(1500) + "x";
/** A file the sandboxed script creates 0600 (outside the targets): no layer may change it. */
const VICTIM = "/tmp/berth-victim";

const CASES: Case[] = [
  {
    name: "dotdot",
    layers: [[{ name: "../../etc/berth-hostile" }]],
    result: "reject",
    why: 'docker rejects ("breakout"); containerd clamps to the root. We reject, never clamp.',
  },
  {
    name: "absolute",
    layers: [[{ name: "/etc/berth-hostile", data: "abs" }]],
    result: "ok",
    overlay: { "0:etc/berth-hostile": "f:abs" },
    flatten: { "etc/berth-hostile": "f:abs" },
    why: "docker and containerd drop the leading / : lands inside.",
  },
  {
    name: "symlink-abs-parent",
    layers: [[
      { name: "evil", type: "symlink", link: "/etc" },
      { name: "evil/berth-hostile", data: "in" },
    ]],
    result: "ok",
    overlay: { "0:evil": "l:/etc", "0:etc/berth-hostile": "f:in" },
    flatten: { "evil": "l:/etc", "etc/berth-hostile": "f:in" },
    why: "containerd resolves the symlink inside the root (RootPath); docker in a chroot: inside.",
  },
  {
    name: "symlink-dotdot-parent",
    layers: [[
      { name: "evil", type: "symlink", link: "../../.." },
      { name: "evil/tmp/berth-hostile", data: "in" },
    ]],
    result: "ok",
    overlay: { "0:tmp/berth-hostile": "f:in" },
    flatten: { "tmp/berth-hostile": "f:in" },
    why: "`..` in a symlink stops at the root (RESOLVE_IN_ROOT), as in a chroot.",
  },
  {
    name: "symlink-chain",
    layers: [[
      { name: "a", type: "symlink", link: "b" },
      { name: "b", type: "symlink", link: "/etc" },
      { name: "a/berth-hostile", data: "in" },
    ]],
    result: "ok",
    overlay: { "0:etc/berth-hostile": "f:in" },
    flatten: { "etc/berth-hostile": "f:in" },
    why: "each hop is resolved inside the root.",
  },
  {
    name: "earlier-layer-symlink",
    layers: [
      [{ name: "evil", type: "symlink", link: "/etc" }],
      [{ name: "evil/berth-hostile", data: "in" }],
    ],
    result: "ok",
    overlay: { "0:evil": "l:/etc", "1:evil": "d", "1:evil/berth-hostile": "f:in" },
    flatten: { "evil": "l:/etc", "etc/berth-hostile": "f:in" },
    why: "docker overlay2 unpacks each layer alone (no symlink to follow); flattened, the lower " +
      "symlink is followed inside the root.",
  },
  {
    name: "hardlink-abs",
    layers: [[{ name: "x", type: "hardlink", link: "/etc/passwd" }]],
    result: "reject",
    why: "the target must be in this layer; docker fails the link (ENOENT), containerd too.",
  },
  {
    name: "hardlink-dotdot",
    layers: [[{ name: "x", type: "hardlink", link: "../../etc/passwd" }]],
    result: "reject",
    why: 'docker: "breakout"; containerd: target outside the root is an error.',
  },
  {
    name: "hardlink-via-symlink",
    layers: [[
      { name: "evil", type: "symlink", link: "/etc" },
      { name: "x", type: "hardlink", link: "evil/passwd" },
    ]],
    result: "reject",
    why: "resolved inside the root, evil/passwd is <root>/etc/passwd, which the layer lacks.",
  },
  {
    name: "hardlink-via-symlink-inside",
    layers: [[
      { name: "etc/passwd", data: "mine" },
      { name: "evil", type: "symlink", link: "/etc" },
      { name: "x", type: "hardlink", link: "evil/passwd" },
    ]],
    result: "ok",
    overlay: { "0:x": "f:mine#2", "0:etc/passwd": "f:mine#2" },
    flatten: { "x": "f:mine#2", "etc/passwd": "f:mine#2" },
    why: "containerd resolves link targets inside the root: the layer's own etc/passwd.",
  },
  {
    name: "hardlink-lower-layer",
    layers: [[{ name: "a", data: "lower" }], [{ name: "b", type: "hardlink", link: "a" }]],
    result: "reject",
    why: "docker overlay2 fails (a is not in the layer's dir); the tar format allows only " +
      "earlier members of the same archive. The unpack is all or nothing: layer 0 does not " +
      "commit either.",
  },
  {
    name: "hardlink-dir",
    layers: [[{ name: "d", type: "dir" }, { name: "x", type: "hardlink", link: "d" }]],
    result: "reject",
    why: "link(2) cannot link directories.",
  },
  {
    name: "hardlink-self",
    layers: [[{ name: "x", type: "hardlink", link: "./x" }]],
    result: "reject",
    why: "a link to itself names nothing (docker fails: it removes x, then link() finds no x).",
  },
  {
    name: "hardlink-to-outward-symlink",
    layers: [[
      { name: "s", type: "symlink", link: "/etc/passwd" },
      { name: "x", type: "hardlink", link: "s" },
    ]],
    result: "ok",
    overlay: { "0:x": "l:/etc/passwd", "0:s": "l:/etc/passwd" },
    flatten: { "x": "l:/etc/passwd", "s": "l:/etc/passwd" },
    why: "link(2) without AT_SYMLINK_FOLLOW links the symlink itself; nothing is followed.",
  },
  {
    name: "whiteout-through-symlink",
    layers: [[
      { name: "evil", type: "symlink", link: "/etc" },
      { name: "evil/.wh.passwd" },
    ]],
    result: "ok",
    overlay: { "0:etc/passwd": "c:0,0" },
    flatten: { "etc": "absent" },
    why: "the whiteout lands inside the root (never on the host's /etc/passwd).",
  },
  {
    name: "whiteout-through-earlier-symlink",
    layers: [
      [{ name: "etc/passwd", data: "lower" }, { name: "evil", type: "symlink", link: "/etc" }],
      [{ name: "evil/.wh.passwd" }],
    ],
    result: "ok",
    overlay: { "1:evil/passwd": "c:0,0", "0:etc/passwd": "f:lower" },
    flatten: { "etc/passwd": "absent", "etc": "d" },
    why: "flattened, the whiteout deletes <root>/etc/passwd (inside); in overlay mode it is a " +
      "whiteout in the layer's own evil/ dir.",
  },
  {
    name: "opaque-through-symlink",
    layers: [[
      { name: "evil", type: "symlink", link: "/etc" },
      { name: "evil/.wh..wh..opq" },
    ]],
    result: "ok",
    overlay: { "0:etc": "d:opaque" },
    flatten: { "etc": "absent" },
    why: "the opaque marker applies to <root>/etc, never the host's.",
  },
  {
    name: "file-replaces-symlink",
    layers: [[
      { name: "evil", type: "symlink", link: "/etc/passwd" },
      { name: "evil", data: "pwned" },
    ]],
    result: "ok",
    overlay: { "0:evil": "f:pwned" },
    flatten: { "evil": "f:pwned" },
    why: "docker and containerd remove what is there and create a new file: the link is replaced.",
  },
  {
    name: "file-replaces-earlier-symlink",
    layers: [
      [{ name: "evil", type: "symlink", link: "/etc/passwd" }],
      [{ name: "evil", data: "pwned" }],
    ],
    result: "ok",
    overlay: { "0:evil": "l:/etc/passwd", "1:evil": "f:pwned" },
    flatten: { "evil": "f:pwned" },
    why: "the final component is never followed.",
  },
  {
    name: "dir-replaces-symlink",
    layers: [[
      { name: "evil", type: "symlink", link: "/etc" },
      { name: "evil", type: "dir" },
      { name: "evil/x", data: "in" },
    ]],
    result: "ok",
    overlay: { "0:evil": "d", "0:evil/x": "f:in" },
    flatten: { "evil": "d", "evil/x": "f:in" },
    why: "a directory entry over a non-directory replaces it (docker: RemoveAll unless both dirs).",
  },
  {
    name: "device-nodes",
    layers: [[
      { name: "dev/sda", type: "char", major: 8, minor: 0 },
      { name: "dev/loop0", type: "block", major: 7, minor: 0 },
      { name: "dev/fifo", type: "fifo" },
    ]],
    result: "ok",
    overlay: { "0:dev/sda": "c:8,0", "0:dev/loop0": "b:7,0", "0:dev/fifo": "p" },
    flatten: { "dev/sda": "c:8,0", "dev/loop0": "b:7,0", "dev/fifo": "p" },
    why: "device nodes are data; they are created under the target dir only.",
  },
  {
    name: "pax-path-dotdot",
    layers: [[{ name: "safe", pax: { path: "../../../etc/berth-hostile" } }]],
    result: "reject",
    why: "the PAX path is the name; it escapes.",
  },
  {
    name: "pax-path-inner-dotdot",
    layers: [[{ name: "safe", pax: { path: "a/../../berth-hostile" } }]],
    result: "reject",
    why: "a/../.. climbs above the root.",
  },
  {
    name: "pax-linkpath-dotdot",
    layers: [[{
      name: "s",
      type: "symlink",
      link: "x",
      pax: { linkpath: "../../../../etc/shadow" },
    }]],
    result: "ok",
    overlay: { "0:s": "l:../../../../etc/shadow" },
    flatten: { "s": "l:../../../../etc/shadow" },
    why: "symlink targets are data (containerd keeps them; docker rejects escaping ones).",
  },
  {
    name: "deep-4096",
    layers: [[{ name: DEEP_BAD }]],
    result: "reject",
    why: "8193 bytes: longer than PATH_MAX; docker and containerd fail with ENAMETOOLONG.",
  },
  {
    name: "deep-1500",
    layers: [[{ name: DEEP_OK, data: "deep" }]],
    result: "ok",
    overlay: { [`0:${DEEP_OK}`]: "f:deep" },
    flatten: { [DEEP_OK]: "f:deep" },
    why: "deep but within PATH_MAX: created inside.",
  },
  {
    name: "dangling-symlink-parent",
    layers: [[
      { name: "evil", type: "symlink", link: "/berth-nonexistent/sub" },
      { name: "evil/x", data: "in" },
    ]],
    result: "ok",
    overlay: { "0:berth-nonexistent/sub/x": "f:in" },
    flatten: { "berth-nonexistent/sub/x": "f:in" },
    why: "containerd creates the symlink's target inside the root (RootPath + MkdirAll).",
  },
  {
    name: "symlink-loop-parent",
    layers: [[{ name: "a", type: "symlink", link: "a" }, { name: "a/x" }]],
    result: "reject",
    why: "ELOOP, as in docker and containerd.",
  },
  {
    name: "whiteout-dotdot",
    layers: [[{ name: "d/.wh..." }]],
    result: "reject",
    why: "a whiteout naming .. would delete its own parent (containerd would); rejected.",
  },
  {
    name: "forged-overlay-xattr",
    layers: [[{ name: "d", type: "dir", pax: { "SCHILY.xattr.trusted.overlay.opaque": "y" } }]],
    result: "ok",
    overlay: { "0:d": "d" },
    flatten: { "d": "d" },
    why: "trusted.overlay.* from the archive is skipped: only .wh..wh..opq makes a dir opaque.",
  },
  ...[false, true].flatMap((noFchmodat2): Case[] => {
    const suffix = noFchmodat2 ? "-no-fchmodat2" : "";
    const lower: Member[] = [{ name: "a", type: "dir", mode: 0o4777 }];
    return [{
      name: `implicit-parent-then-symlink${suffix}`,
      layers: [lower, [{ name: "a/x" }, { name: "a", type: "symlink", link: VICTIM }]],
      noFchmodat2,
      result: "ok",
      overlay: { "0:a": "d", "1:a": `l:${VICTIM}` },
      flatten: { "a": `l:${VICTIM}` },
      why:
        "a/x made `a` an implicit dir that inherits the lower a's attributes; the symlink that " +
        "replaced it must not pass them on to its target (chmod used to follow it before 6.6).",
    }, {
      name: `implicit-parent-then-symlink-via-alias${suffix}`,
      layers: [lower, [
        { name: "a/x" },
        { name: "s", type: "symlink", link: "." },
        { name: "s/a", type: "symlink", link: VICTIM },
      ]],
      noFchmodat2,
      result: "ok",
      overlay: { "0:a": "d", "1:a": `l:${VICTIM}`, "1:s": "l:." },
      flatten: { "a": `l:${VICTIM}`, "s": "l:." },
      why: "the same, with the replacing symlink named through another symlink.",
    }];
  }),
];

const PY_WRITER = `
import io, json, sys, tarfile
for t in json.load(open(sys.argv[1])):
    with tarfile.open(t["path"], "w", format=tarfile.PAX_FORMAT) as tf:
        for e in t["members"]:
            ti = tarfile.TarInfo(e["name"])
            ty = e.get("type", "file")
            ti.mtime = 1704067200
            ti.mode = e.get("mode", 0o755 if ty == "dir" else 0o644)
            if "pax" in e:
                ti.pax_headers = dict(e["pax"])
            data = None
            if ty == "file":
                data = e.get("data", "x").encode()
                ti.size = len(data)
            elif ty == "dir":
                ti.type = tarfile.DIRTYPE
            elif ty == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e["link"]
            elif ty == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = e["link"]
            elif ty in ("char", "block"):
                ti.type = tarfile.CHRTYPE if ty == "char" else tarfile.BLKTYPE
                ti.devmajor, ti.devminor = e["major"], e["minor"]
            elif ty == "fifo":
                ti.type = tarfile.FIFOTYPE
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
`;

interface Outcome {
  ok: boolean;
  error?: string;
  errorClass?: string;
  /** Overlay: which layers have a snapshot; flatten: unused. */
  snapshots?: boolean[];
  /** Overlay: entries left in snapshots/tmp. */
  tmpLeft?: string[];
  /** `"<layer>:<path>"` (overlay) or path (flatten) → description. */
  tree: Record<string, string>;
  /** Mode of {@linkcode VICTIM} afterwards, in octal. */
  victim?: string;
}

interface Report {
  [caseAndMode: string]: Outcome;
}

// -----------------------------------------------------------------------------------------------
// Inside the sandbox

async function inside(specPath: string): Promise<void> {
  const { Snapshotter } = await import("../core/snapshot/snapshotter.ts");
  const { flattenImage } = await import("../core/snapshot/flatten.ts");
  const { readFileChunks } = await import("../core/content/read_file.ts");
  const { statx, lgetxattr } = await import("../ffi/fs.ts");
  const { AT_SYMLINK_NOFOLLOW, AT_FDCWD } = await import("../ffi/constants.ts");
  const { _simulateNoFchmodat2ForTesting } = await import("../ffi/fs_native.ts");
  type Layer = import("../core/image/image.ts").Layer;

  const describe = (root: string, prefix: string, out: Record<string, string>) => {
    const walk = (dir: string, rel: string) => {
      for (const e of Deno.readDirSync(dir)) {
        const path = `${dir}/${e.name}`;
        const r = rel ? `${rel}/${e.name}` : e.name;
        const st = statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW);
        const fmt = st.mode & 0o170000;
        let d: string;
        if (fmt === 0o100000) {
          d = `f:${Deno.readTextFileSync(path).slice(0, 40)}${st.nlink > 1 ? `#${st.nlink}` : ""}`;
        } else if (fmt === 0o040000) {
          let opaque = false;
          try {
            opaque = new TextDecoder().decode(lgetxattr(path, "trusted.overlay.opaque")) === "y";
          } catch { /* none */ }
          d = opaque ? "d:opaque" : "d";
          walk(path, r);
        } else if (fmt === 0o120000) d = `l:${Deno.readLinkSync(path)}`;
        else if (fmt === 0o020000) d = `c:${st.rdev.major},${st.rdev.minor}`;
        else if (fmt === 0o060000) d = `b:${st.rdev.major},${st.rdev.minor}`;
        else if (fmt === 0o010000) d = "p";
        else d = `?${fmt.toString(8)}`;
        out[prefix + r] = d;
      }
    };
    walk(root, "");
  };

  const spec = JSON.parse(Deno.readTextFileSync(specPath)) as {
    name: string;
    layers: { path: string; digest: string; size: number }[];
    noFchmodat2: boolean;
  }[];
  Deno.writeTextFileSync(VICTIM, "victim", { mode: 0o600 });
  /** Mode the last run left on VICTIM (reset for the next run). */
  const victimMode = () => {
    const mode = (statx(AT_FDCWD, VICTIM, AT_SYMLINK_NOFOLLOW).mode & 0o7777).toString(8);
    Deno.chmodSync(VICTIM, 0o600);
    return mode;
  };
  const report: Report = {};
  for (const c of spec) {
    _simulateNoFchmodat2ForTesting(c.noFchmodat2);
    const sources = c.layers.map((l) => ({
      layer: {
        digest: l.digest,
        diffID: l.digest,
        size: l.size,
        mediaType: "application/vnd.oci.image.layer.v1.tar",
        compression: "none",
      } as Layer,
      open: () => readFileChunks(l.path),
    }));
    const base = `/tmp/hostile/${c.name}`;
    // overlay mode, through the snapshotter
    {
      const s = new Snapshotter(`${base}/store`);
      await s.init();
      const outcome: Outcome = { ok: true, tree: {} };
      try {
        await s.unpack(sources, { what: c.name });
      } catch (e) {
        outcome.ok = false;
        outcome.error = e instanceof Error ? e.message : String(e);
        outcome.errorClass = e instanceof Error ? e.name : typeof e;
        // Lower layers still count: unpack them one by one to see which committed.
      }
      const chain = Snapshotter.chainIDs(sources.map((x) => x.layer.diffID));
      outcome.snapshots = [];
      for (let i = 0; i < chain.length; i++) {
        const has = await s.has(chain[i]);
        outcome.snapshots.push(has);
        if (has) describe(s.path(chain[i]), `${i}:`, outcome.tree);
      }
      outcome.tmpLeft = [...Deno.readDirSync(`${base}/store/snapshots/tmp`)].map((e) => e.name);
      outcome.victim = victimMode();
      report[`${c.name} overlay`] = outcome;
    }
    // flatten mode
    {
      const dir = `${base}/flat`;
      Deno.mkdirSync(dir, { recursive: true });
      const outcome: Outcome = { ok: true, tree: {} };
      try {
        await flattenImage(sources, dir, { what: c.name });
      } catch (e) {
        outcome.ok = false;
        outcome.error = e instanceof Error ? e.message : String(e);
        outcome.errorClass = e instanceof Error ? e.name : typeof e;
      }
      describe(dir, "", outcome.tree);
      outcome.victim = victimMode();
      report[`${c.name} flatten`] = outcome;
    }
  }
  console.log(JSON.stringify(report));
}

if (import.meta.main) {
  await inside(Deno.args[0]);
}

// -----------------------------------------------------------------------------------------------
// The test

const isRoot = Deno.uid() === 0;
const HOST_FILES = [
  "/etc/passwd",
  "/etc/shadow",
  "/etc/berth-hostile",
  "/tmp/berth-hostile",
  VICTIM,
];

async function sha256Hex(path: string): Promise<string> {
  const data = await Deno.readFile(path);
  const d = await crypto.subtle.digest("SHA-256", data);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function makeTars(dir: string): Promise<string> {
  const jobs: { path: string; members: Member[] }[] = [];
  const spec: {
    name: string;
    layers: { path: string; digest: string; size: number }[];
    noFchmodat2: boolean;
  }[] = [];
  for (const c of CASES) {
    const layers = c.layers.map((members, i) => {
      const path = `${dir}/${c.name}-${i}.tar`;
      jobs.push({ path, members });
      return { path, digest: "", size: 0 };
    });
    spec.push({ name: c.name, layers, noFchmodat2: c.noFchmodat2 ?? false });
  }
  await Deno.writeTextFile(`${dir}/members.json`, JSON.stringify(jobs));
  const out = await new Deno.Command("python3", {
    args: ["-c", PY_WRITER, `${dir}/members.json`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`python3 tar writer: ${new TextDecoder().decode(out.stderr)}`);
  for (const c of spec) {
    for (const l of c.layers) {
      l.digest = `sha256:${await sha256Hex(l.path)}`;
      l.size = (await Deno.stat(l.path)).size;
    }
  }
  await Deno.writeTextFile(`${dir}/spec.json`, JSON.stringify(spec));
  return `${dir}/spec.json`;
}

Deno.test({
  name: "unpack: hostile layers land inside or are rejected, in a sandbox",
  ignore: !isRoot,
  async fn() {
    const before = await fingerprint(HOST_FILES);
    const dir = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "berth-hostile-" });
    try {
      const spec = await makeTars(dir);
      const result = await runSandboxed(new URL(import.meta.url), { args: [spec] });
      assert.equal(result.code, 0, `sandboxed script failed:\n${result.stderr}`);
      assert.deepEqual(
        unexpectedChanges(result, ["/tmp/hostile/", VICTIM]),
        [],
        "writes outside target",
      );
      assert.deepEqual(await fingerprint(HOST_FILES), before, "host files unchanged");
      const report = JSON.parse(result.stdout) as Report;
      if (Deno.env.get("BERTH_TEST_VERBOSE")) {
        for (const [k, v] of Object.entries(report)) {
          console.log(k, JSON.stringify(v).slice(0, 300));
        }
        console.log("sandbox changes:", result.rootChanges.length, result.tmpEntries.length);
      }
      checkReport(report);
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

function checkReport(report: Report): void {
  const failures: string[] = [];
  for (const c of CASES) {
    for (const mode of ["overlay", "flatten"] as const) {
      const o = report[`${c.name} ${mode}`];
      const label = `${c.name} (${mode}; ${c.why})`;
      if (!o) {
        failures.push(`${label}: no outcome`);
        continue;
      }
      if (o.victim !== "600") failures.push(`${label}: ${VICTIM} is now mode ${o.victim}`);
      const want = mode === "flatten" ? (c.flattenResult ?? c.result) : c.result;
      if (want === "ok" && !o.ok) failures.push(`${label}: rejected: ${o.error}`);
      if (want === "reject") {
        if (o.ok) failures.push(`${label}: accepted, tree ${JSON.stringify(o.tree)}`);
        else if (o.errorClass !== "InvalidInputError") {
          failures.push(`${label}: ${o.errorClass} instead of InvalidInputError: ${o.error}`);
        } else if (!o.error?.includes("entry")) {
          failures.push(`${label}: error does not name the entry: ${o.error}`);
        }
      }
      if (mode === "overlay") {
        const top = c.layers.length - 1;
        if (o.snapshots?.[top] !== (want === "ok")) {
          failures.push(`${label}: top snapshot ${o.snapshots?.[top] ? "exists" : "missing"}`);
        }
        if (o.tmpLeft?.length) failures.push(`${label}: left in snapshots/tmp: ${o.tmpLeft}`);
      }
      const expect = mode === "overlay" ? c.overlay : c.flatten;
      for (const [path, d] of Object.entries(expect ?? {})) {
        const got = o.tree[path] ?? "absent";
        if (got !== d) failures.push(`${label}: ${path.slice(0, 80)} is ${got}, expected ${d}`);
      }
    }
  }
  assert.deepEqual(failures, []);
}
