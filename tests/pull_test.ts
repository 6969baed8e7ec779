/**
 * `pull` against a real registry (Debian's docker-registry, filled by skopeo from images made by
 * real tools): every image kind, platforms, whiteouts seen through `berth run`, mirrors, the CLI's
 * output, and bad manifests served through the fault proxy.
 */
import assert from "node:assert/strict";
import { fixtures, IMAGE_FACTS } from "./_fixtures.ts";
import { type PushedFixtures, pushFixtures, type Registry, startRegistry } from "./_registry.ts";
import { startFaultProxy } from "./_fault_proxy.ts";
import { berth, listTree as listAll, tempDir } from "./_berth.ts";
import { Store } from "../core/store/store.ts";
import { type PullEvent, pullImage, type PullOptions } from "../core/store/pull.ts";
import { DigestMismatchError, NotFoundError, UnsupportedError } from "../core/errors.ts";
import { clearTokenCache } from "../core/transport/remote/auth.ts";
import { Snapshotter } from "../core/snapshot/snapshotter.ts";

const fx = await fixtures();
const ROOT = Deno.uid() === 0;
const anonymous: PullOptions["credentials"] = () => Promise.resolve(undefined);

/** The store's files, lock files left out (taking a lock creates its file). */
async function listTree(root: string): Promise<string[]> {
  return (await listAll(root)).filter((p) => !p.endsWith(".lock"));
}

async function pull(store: Store, ref: string, options: PullOptions = {}) {
  const events: PullEvent[] = [];
  const image = await pullImage(store, ref, {
    credentials: anonymous,
    onProgress: (e) => events.push(e),
    ...options,
  });
  return { image, events };
}

function layerStatuses(events: PullEvent[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const e of events) {
    if (e.type !== "layer") continue;
    const list = out.get(e.id) ?? [];
    if (list.at(-1) !== e.status) list.push(e.status);
    out.set(e.id, list);
  }
  return out;
}

async function rejectsWith(
  p: Promise<unknown>,
  pattern: RegExp,
  type?: new (...args: never[]) => Error,
) {
  await assert.rejects(p, (e: Error) => {
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
    if (type) assert.ok(e instanceof type, `${e.constructor.name}: ${e.message}`);
    return true;
  });
}

Deno.test({
  name: "pull: every image kind from a real registry",
  ignore: !ROOT,
  async fn(t) {
    await using reg = await startRegistry();
    const pushed: PushedFixtures = await pushFixtures(reg);
    await using dir = await tempDir();
    const root = `${dir.path}/store`;
    const store = await Store.open({ root });
    const name = (key: keyof PushedFixtures) => `${reg.host}/${pushed[key]!.ref}`;

    await t.step("OCI manifest: digests, tags, RepoDigests, layers unpacked, run", async () => {
      const { image, events } = await pull(store, name("oci"));
      const expected = fx.expected.ociArchive;
      assert.equal(image.id, expected.configDigest);
      assert.equal(image.manifest, expected.manifestDigest);
      assert.equal(image.digest, pushed.oci!.digest);
      assert.equal(image.upToDate, false);
      assert.deepEqual(image.layers.map((l) => l.digest), expected.layerDigests);
      assert.ok(image.layers.every((l) => l.downloaded));
      const info = await store.inspect(name("oci"));
      assert.deepEqual(info.RepoTags, [name("oci")]);
      assert.deepEqual(info.RepoDigests, [`${reg.host}/library/busybox@${pushed.oci!.digest}`]);
      assert.deepEqual(info.RootFS.Layers, expected.diffIDs);
      for (const statuses of layerStatuses(events).values()) {
        assert.deepEqual(statuses.filter((s) => s !== "Waiting"), [
          "Pulling fs layer",
          "Downloading",
          "Verifying Checksum",
          "Download complete",
          "Extracting",
          "Pull complete",
        ]);
      }
      assert.equal(
        (await Array.fromAsync(Deno.readDir(`${root}/snapshots`))).filter((e) =>
          /^[0-9a-f]{64}$/.test(e.name)
        ).length,
        expected.diffIDs.length,
      );
      const run = await berth(root, ["run", "--rm", name("oci"), "cat", "/etc/motd"]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, IMAGE_FACTS.motd);
    });

    await t.step("a second pull: Already exists, up to date, nothing downloaded", async () => {
      const before = await listTree(root);
      const { image, events } = await pull(store, name("oci"));
      assert.equal(image.upToDate, true);
      assert.ok(image.layers.every((l) => !l.downloaded));
      for (const statuses of layerStatuses(events).values()) {
        assert.deepEqual(statuses, ["Already exists"]);
      }
      assert.deepEqual(await listTree(root), before);
    });

    await t.step("pinned digest: name@sha256 and name:tag@sha256", async () => {
      const digest = pushed.oci!.digest;
      const { image } = await pull(store, `${reg.host}/library/busybox@${digest}`);
      assert.equal(image.manifest, digest);
      assert.equal(image.name, `${reg.host}/library/busybox@${digest}`);
      const both = await pull(store, `${reg.host}/library/busybox:latest@${digest}`);
      assert.equal(both.image.digest, digest);
    });

    await t.step("Docker schema 2 manifest", async () => {
      const { image } = await pull(store, name("v2s2"));
      assert.equal(image.digest, pushed.v2s2!.digest);
      assert.equal(image.id, fx.expected.ociArchive.configDigest);
      // The same layers: already there.
      assert.ok(image.layers.every((l) => !l.downloaded));
      const info = await store.inspect(name("v2s2"));
      assert.deepEqual(info.RootFS.Layers, fx.expected.ociArchive.diffIDs);
    });

    await t.step("zstd layers, into a fresh store, then run", async () => {
      await using d2 = await tempDir();
      const s2 = await Store.open({ root: d2.path });
      const { image } = await pull(s2, name("zstd"));
      assert.deepEqual(image.layers.map((l) => l.digest), fx.expected.zstdOciArchive.layerDigests);
      const run = await berth(d2.path, ["run", "--rm", name("zstd"), "cat", "/etc/motd"]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, IMAGE_FACTS.motd);
    });

    await t.step("uncompressed layers", async () => {
      const { image } = await pull(store, name("uncompressed"));
      assert.equal(image.id, fx.expected.uncompressedOciArchive.configDigest);
    });

    await t.step("OCI index: the host platform, RepoDigests name the index", async () => {
      const { image } = await pull(store, name("index"));
      assert.equal(image.digest, pushed.index!.digest);
      assert.equal(image.manifest, fx.expected["multiArchOciArchive:linux/amd64"].manifestDigest);
      assert.equal(image.platform.architecture, "amd64");
      const info = await store.inspect(name("index"));
      assert.deepEqual(info.RepoDigests, [`${reg.host}/library/multiarch@${pushed.index!.digest}`]);
      const run = await berth(root, ["run", "--rm", name("index"), "cat", "/etc/berth-arch"]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /amd64/);
    });

    await t.step("OCI index: --platform linux/arm64 and a platform it lacks", async () => {
      await using d2 = await tempDir();
      const s2 = await Store.open({ root: d2.path });
      const { image } = await pull(s2, name("index"), {
        platform: { os: "linux", architecture: "arm64" },
      });
      assert.equal(image.manifest, fx.expected["multiArchOciArchive:linux/arm64"].manifestDigest);
      assert.equal((await s2.inspect(name("index"))).Architecture, "arm64");
      const before = await listTree(d2.path);
      await rejectsWith(
        pull(s2, name("index"), { platform: { os: "linux", architecture: "s390x" } }),
        /no image for platform linux\/s390x \(it has linux\/amd64\/v1, linux\/arm64\/v8, linux\/arm\/v7\)|no image for platform linux\/s390x \(it has linux\/amd64, linux\/arm64, linux\/arm\/v7\)/,
        UnsupportedError,
      );
      assert.deepEqual(await listTree(d2.path), before);
    });

    if (pushed.manifestList) {
      await t.step("Docker manifest list with --platform linux/arm/v7", async () => {
        const { image } = await pull(store, name("manifestList"), {
          platform: { os: "linux", architecture: "arm", variant: "v7" },
        });
        assert.equal(image.digest, pushed.manifestList!.digest);
        assert.equal(
          image.manifest,
          fx.expected["manifestListDockerArchive:linux/arm/v7"].manifestDigest,
        );
        const info = await store.inspect(name("manifestList"));
        assert.equal(info.Architecture, "arm");
      });
    }

    await t.step("a single-platform image and another --platform: a clear error", async () => {
      await rejectsWith(
        pull(store, name("oci"), { platform: { os: "linux", architecture: "arm64" } }),
        /its platform \(linux\/amd64\) does not match the specified platform \(linux\/arm64\)/,
      );
    });

    await t.step("whiteouts: berth run shows the deleted files absent", async () => {
      await pull(store, name("whiteout"));
      const paths = [...IMAGE_FACTS.whiteout.present, ...IMAGE_FACTS.whiteout.absent];
      const run = await berth(root, [
        "run",
        "--rm",
        name("whiteout"),
        "sh",
        "-c",
        paths.map((p) => `if [ -e ${p} ]; then echo "yes ${p}"; else echo "no ${p}"; fi`).join(";"),
      ]);
      assert.equal(run.code, 0, run.stderr);
      const lines = run.stdout.trim().split("\n");
      assert.deepEqual(lines, [
        ...IMAGE_FACTS.whiteout.present.map((p) => `yes ${p}`),
        ...IMAGE_FACTS.whiteout.absent.map((p) => `no ${p}`),
      ]);
    });

    await t.step(
      "missing tag, repository and digest: docker's 'manifest … not found'",
      async () => {
        const before = await listTree(root);
        await rejectsWith(
          pull(store, `${reg.host}/library/busybox:nope`),
          new RegExp(
            `^Cannot pull "${reg.host}/library/busybox:nope": manifest for ` +
              `${reg.host}/library/busybox:nope not found: manifest unknown \\(${reg.host}/library/busybox\\)$`,
          ),
          NotFoundError,
        );
        await rejectsWith(
          pull(store, `${reg.host}/library/nothere:1`),
          /manifest for .*nothere:1 not found: (manifest unknown|repository name not known)/,
          NotFoundError,
        );
        const missing = `sha256:${"0".repeat(64)}`;
        await rejectsWith(
          pull(store, `${reg.host}/library/busybox@${missing}`),
          new RegExp(`manifest for .*busybox@${missing} not found`),
        );
        await rejectsWith(pullImage(store, "UPPER/case"), /must be lowercase/, TypeError);
        assert.deepEqual(await listTree(root), before);
      },
    );

    await t.step("CLI: docker's plain output, then up to date, -q, errors", async () => {
      await using d2 = await tempDir();
      const first = await berth(d2.path, ["pull", name("oci")]);
      assert.equal(first.code, 0, first.stderr);
      const lines = first.stdout.trim().split("\n");
      assert.equal(lines[0], "latest: Pulling from library/busybox");
      const ids = fx.expected.ociArchive.layerDigests.map((d) => d.slice(7, 19));
      for (const id of ids) {
        assert.ok(lines.includes(`${id}: Pulling fs layer`), first.stdout);
        assert.ok(lines.includes(`${id}: Download complete`), first.stdout);
        assert.ok(lines.includes(`${id}: Pull complete`), first.stdout);
      }
      assert.ok(!first.stdout.includes("\x1b["), "no terminal escapes into a pipe");
      assert.deepEqual(lines.slice(-3), [
        `Digest: ${pushed.oci!.digest}`,
        `Status: Downloaded newer image for ${name("oci")}`,
        name("oci"),
      ]);
      const again = await berth(d2.path, ["pull", name("oci")]);
      assert.equal(again.code, 0, again.stderr);
      for (const id of ids) assert.ok(again.stdout.includes(`${id}: Already exists\n`));
      assert.ok(again.stdout.includes(`Status: Image is up to date for ${name("oci")}\n`));
      const quiet = await berth(d2.path, ["pull", "-q", name("v2s2")]);
      assert.equal(quiet.code, 0, quiet.stderr);
      assert.equal(quiet.stdout, `${name("v2s2")}\n`);
      const bad = await berth(d2.path, ["pull", `${reg.host}/library/busybox:nope`]);
      assert.equal(bad.code, 125);
      assert.match(
        bad.stderr,
        /^Error: Cannot pull ".*": manifest for .* not found: manifest unknown/,
      );
      assert.equal(bad.stderr.trim().split("\n").length, 1);
      const run = await berth(d2.path, ["run", "--rm", name("v2s2"), "cat", "/etc/motd"]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, IMAGE_FACTS.motd);
    });
  },
});

Deno.test({
  name: "pull: mirrors are tried in order, the registry itself last",
  ignore: !ROOT,
  async fn() {
    await using origin = await startRegistry();
    await using mirror = await startRegistry();
    const pushed = await pushFixtures(origin, ["oci", "zstd"]);
    await pushFixtures(mirror, ["oci"]);
    await using dir = await tempDir();
    const store = await Store.open({ root: dir.path });
    const dead = (() => {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (l.addr as Deno.NetAddr).port;
      l.close();
      return `http://127.0.0.1:${port}`;
    })();
    await using proxy = await startFaultProxy(origin.url, []);
    // The "registry" is the proxy in front of origin, so that its requests can be counted.
    const registries = { mirrors: { [proxy.host]: [dead, mirror.url] } };
    const { image, events } = await pull(store, `${proxy.host}/${pushed.oci!.ref}`, {
      registries,
      attempts: 1,
    });
    const resolved = events.find((e) => e.type === "resolved");
    assert.equal(
      resolved?.type === "resolved" && resolved.source,
      `${mirror.host}/library/busybox`,
    );
    assert.equal(image.digest, pushed.oci!.digest);
    assert.equal(proxy.requests.length, 0, "the origin was not asked");
    // Not on the mirror: falls back to the registry.
    const zstd = await pull(store, `${proxy.host}/${pushed.zstd!.ref}`, {
      registries,
      attempts: 1,
    });
    assert.equal(zstd.image.digest, pushed.zstd!.digest);
    assert.ok(proxy.requests.some((r) => r.path.includes("/manifests/zstd")));
    // The RepoTags name the registry, not the mirror.
    const tags = (await store.inspect(`${proxy.host}/${pushed.oci!.ref}`)).RepoTags;
    assert.ok(tags.includes(`${proxy.host}/${pushed.oci!.ref}`), tags.join());
    assert.ok(tags.every((t) => t.startsWith(proxy.host)), tags.join());
    // From the config file in the store root.
    await using d2 = await tempDir();
    await Deno.writeTextFile(`${d2.path}/registries.json`, JSON.stringify(registries));
    const s2 = await Store.open({ root: d2.path });
    proxy.reset();
    await pull(s2, `${proxy.host}/${pushed.oci!.ref}`, { attempts: 1 });
    assert.equal(proxy.requests.length, 0);
  },
});

/** A registry behind a fault proxy that answers the manifest request with `body`. */
async function servedManifest(
  reg: Registry,
  body: string,
  contentType: string,
  status = 200,
): Promise<{ host: string } & AsyncDisposable> {
  const proxy = await startFaultProxy(reg.url, [{
    method: "GET",
    path: /\/manifests\//,
    fault: { type: "status", status, body, headers: { "content-type": contentType } },
  }]);
  return { host: proxy.host, [Symbol.asyncDispose]: () => proxy.stop() };
}

Deno.test({
  name: "pull: bad manifests from the network are one-line errors, the store unchanged",
  ignore: !ROOT,
  async fn(t) {
    clearTokenCache();
    await using reg = await startRegistry();
    const pushed = await pushFixtures(reg, ["oci"]);
    await using dir = await tempDir();
    const store = await Store.open({ root: dir.path });
    const before = await listTree(dir.path);
    const options: PullOptions = { attempts: 2, backoffMs: 10 };
    const cases: [string, string, string, RegExp, number?][] = [
      [
        "schema 1",
        JSON.stringify({ schemaVersion: 1, name: "library/busybox", tag: "latest", fsLayers: [] }),
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        /manifest sha256:[0-9a-f]{64} from 127\.0\.0\.1:\d+\/library\/busybox is a Docker schema 1 manifest/,
      ],
      [
        "malformed JSON",
        '{"schemaVersion": 2, "config": ',
        "application/vnd.oci.image.manifest.v1+json",
        /manifest sha256:[0-9a-f]{64} from 127\.0\.0\.1:\d+\/library\/busybox is not valid JSON/,
      ],
      [
        "unknown media type",
        JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.example.thing+json" }),
        "application/vnd.example.thing+json",
        /has unsupported media type "application\/vnd\.example\.thing\+json"/,
      ],
      [
        "over 4 MiB",
        JSON.stringify({ schemaVersion: 2, pad: "x".repeat(4 << 20) }),
        "application/vnd.oci.image.manifest.v1+json",
        /manifest latest from 127\.0\.0\.1:\d+\/library\/busybox is \d+ bytes or more, more than the limit of 4194304/,
      ],
      [
        "403",
        JSON.stringify({
          errors: [{ code: "DENIED", message: "requested access to the resource is denied" }],
        }),
        "application/json",
        /manifest latest from 127\.0\.0\.1:\d+\/library\/busybox: access denied \(403 Forbidden: denied: requested access to the resource is denied\)/,
        403,
      ],
      [
        "500, after the retries",
        "oops",
        "text/plain",
        /manifest latest from 127\.0\.0\.1:\d+\/library\/busybox: 500 Internal Server Error: oops/,
        500,
      ],
    ];
    for (const [label, body, type, pattern, status] of cases) {
      await t.step(label, async () => {
        await using proxy = await servedManifest(reg, body, type, status);
        await rejectsWith(pull(store, `${proxy.host}/library/busybox:latest`, options), pattern);
        assert.deepEqual(await listTree(dir.path), before);
      });
    }
    await t.step("a pinned digest the served manifest does not match", async () => {
      await using proxy = await startFaultProxy(reg.url, [
        { method: "GET", path: /\/manifests\/sha256:/, fault: { type: "corrupt", offset: 20 } },
      ]);
      const digest = pushed.oci!.digest;
      await rejectsWith(
        pull(store, `${proxy.host}/library/busybox@${digest}`, options),
        new RegExp(
          `^Cannot pull "${proxy.host}/library/busybox@${digest}": manifest ${digest} from ` +
            `${proxy.host}/library/busybox does not match its digest \\(got sha256:[0-9a-f]{64}\\)$`,
        ),
        DigestMismatchError,
      );
      assert.deepEqual(await listTree(dir.path), before);
    });

    await t.step("a layer of an unknown media type", async () => {
      const real = await fetch(`${reg.url}/v2/library/busybox/manifests/latest`, {
        headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
      }).then((r) => r.json());
      real.layers[1].mediaType = "application/vnd.example.layer.v1";
      await using proxy = await servedManifest(
        reg,
        JSON.stringify(real),
        "application/vnd.oci.image.manifest.v1+json",
      );
      await rejectsWith(
        pull(store, `${proxy.host}/library/busybox:latest`, options),
        /layer sha256:[0-9a-f]{64} has unsupported media type "application\/vnd\.example\.layer\.v1"/,
        UnsupportedError,
      );
      assert.deepEqual(await listTree(dir.path), before);
    });

    await t.step("the tag's Docker-Content-Digest does not match the manifest", async () => {
      await using proxy = await startFaultProxy(reg.url, [
        { method: "GET", path: /\/manifests\/latest$/, fault: { type: "corrupt", offset: 20 } },
      ]);
      await rejectsWith(
        pull(store, `${proxy.host}/library/busybox:latest`, options),
        /manifest latest from 127\.0\.0\.1:\d+\/library\/busybox does not match the Docker-Content-Digest sha256:[0-9a-f]{64} the registry sent/,
      );
      assert.deepEqual(await listTree(dir.path), before);
    });
  },
});

Deno.test({
  name: "run pulls a missing image (--pull missing|always|never), progress on stderr",
  ignore: !ROOT,
  async fn() {
    await using reg = await startRegistry();
    const pushed = await pushFixtures(reg, ["oci"]);
    await using dir = await tempDir();
    const name = `${reg.host}/${pushed.oci!.ref}`;
    const never = await berth(dir.path, ["run", "--rm", "--pull", "never", name, "true"]);
    assert.equal(never.code, 125);
    assert.equal(never.stderr, `Error: No such image: ${name}\n`);
    const r = await berth(dir.path, ["run", "--rm", name, "cat", "/etc/motd"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, IMAGE_FACTS.motd, "the container's stdout is its own");
    assert.match(r.stderr, new RegExp(`^Unable to find image '${name}' locally$`, "m"));
    assert.match(r.stderr, /^Status: Downloaded newer image for /m);
    const again = await berth(dir.path, ["run", "--rm", "--pull", "always", name, "true"]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /^Status: Image is up to date for /m);
    assert.doesNotMatch(again.stderr, /Unable to find image/);
    const bad = await berth(dir.path, ["run", "--pull", "sometimes", name, "true"]);
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /invalid --pull "sometimes"/);
  },
});

/** This machine's first non-loopback IPv4 address, if it has one. */
function hostAddress(): string | undefined {
  for (const i of Deno.networkInterfaces()) {
    if (i.family === "IPv4" && !i.address.startsWith("127.")) return i.address;
  }
  return undefined;
}

Deno.test({
  name: "pull --insecure-registry: a non-loopback registry over plain HTTP only when told so",
  ignore: !ROOT || hostAddress() === undefined,
  async fn() {
    await using reg = await startRegistry();
    const pushed = await pushFixtures(reg, ["oci"]);
    // The registry listens on 127.0.0.1: a plain HTTP forwarder on this host's own address.
    const address = hostAddress()!;
    const server = Deno.serve({ hostname: address, port: 0, onListen() {} }, async (req) => {
      const url = new URL(req.url);
      const upstream = await fetch(`${reg.url}${url.pathname}${url.search}`, {
        method: req.method,
        headers: req.headers,
        redirect: "manual",
      });
      return new Response(upstream.body, { status: upstream.status, headers: upstream.headers });
    });
    try {
      const host = `${address}:${server.addr.port}`;
      await using dir = await tempDir();
      const name = `${host}/${pushed.oci!.ref}`;
      const refused = await berth(dir.path, ["pull", "-q", name]);
      assert.equal(refused.code, 125, "HTTPS is tried by default, and fails against plain HTTP");
      assert.match(
        refused.stderr,
        new RegExp(`^Error: Cannot pull "${name}": ${host}: .*--insecure-registry`),
      );
      const ok = await berth(dir.path, ["pull", "-q", "--insecure-registry", host, name]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(ok.stdout, `${name}\n`);
    } finally {
      await server.shutdown();
    }
  },
});

Deno.test({
  name: "pull: a failure once layers are unpacked commits no snapshot",
  ignore: !ROOT,
  async fn(t) {
    clearTokenCache();
    await using reg = await startRegistry();
    const pushed = await pushFixtures(reg, ["oci"]);
    const name = `${reg.host}/${pushed.oci!.ref}`;
    const snapshots = async (store: Store) => {
      const out: string[] = [];
      for await (const c of store.snapshots.list()) out.push(c);
      return out.sort();
    };

    await t.step("a corrupt image DB fails the pull before anything is unpacked", async () => {
      await using dir = await tempDir();
      const store = await Store.open({ root: dir.path });
      await Deno.writeTextFile(`${dir.path}/images.json`, "{");
      await rejectsWith(pull(store, name), /Store file .*images\.json is corrupt/);
      assert.deepEqual(await snapshots(store), []);
    });

    await t.step("a download failing for a layer whose snapshot exists", async () => {
      await using dir = await tempDir();
      const store = await Store.open({ root: dir.path });
      await pull(store, name);
      // The bottom snapshot stays but its blob goes; the top snapshot goes (its blob stays).
      const image = await store.image(await store.resolve(name));
      const chain = Snapshotter.chainIDs(image.layers.map((l) => l.diffID));
      await store.content.delete(image.layers[0].digest);
      await store.snapshots.remove(chain[1]);
      await using proxy = await startFaultProxy(reg.url, [{
        method: "GET",
        path: new RegExp(`/blobs/${image.layers[0].digest}$`),
        fault: { type: "status", status: 404 },
      }]);
      await rejectsWith(
        pull(store, `${proxy.host}/${pushed.oci!.ref}`, { attempts: 1 }),
        new RegExp(`layer ${image.layers[0].digest} from ${proxy.host}/library/busybox: 404`),
      );
      assert.deepEqual(await snapshots(store), [chain[0]], "the top layer's snapshot is not made");
    });
  },
});
