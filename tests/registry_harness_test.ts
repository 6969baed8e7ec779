/**
 * The pull tests' registry harness, proved with real clients: skopeo pushes every fixture kind into
 * Debian's docker-registry (no auth, htpasswd Basic, token auth with the test issuer) and reads
 * them back; the fault proxy passes traffic through cleanly and breaks it on demand.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fixtures, runSkopeo } from "./_fixtures.ts";
import {
  DOCKER_LIST,
  DOCKER_MANIFEST,
  OCI_INDEX,
  OCI_MANIFEST,
  pushFixtures,
  type Registry,
  startRegistry,
} from "./_registry.ts";
import { startFaultProxy } from "./_fault_proxy.ts";
import { libtrustKeyId } from "./_token_issuer.ts";

const fx = await fixtures();
const ACCEPT = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(", ");

function sha256(data: string | Uint8Array): string {
  return "sha256:" + createHash("sha256").update(data).digest("hex");
}

/** `skopeo inspect --raw` through `host` (the registry or a proxy in front of it). */
async function rawManifest(reg: Registry, ref: string, host = reg.host): Promise<string> {
  return await runSkopeo(["inspect", "--raw", ...reg.skopeoFlags(), `docker://${host}/${ref}`]);
}

/** `skopeo copy docker://… dir:…` (no conversion); resolves with the copied manifest's digest. */
async function copyOut(reg: Registry, ref: string, host = reg.host): Promise<string> {
  const dir = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "berth-harness-" });
  try {
    await runSkopeo([
      "copy",
      "-q",
      "--retry-times",
      "0",
      ...reg.skopeoFlags("src"),
      `docker://${host}/${ref}`,
      `dir:${dir}/image`,
    ]);
    return sha256(await Deno.readFile(`${dir}/image/manifest.json`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function rejects(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.match(e.message, pattern);
    return true;
  });
}

Deno.test("registry without auth holds every fixture kind, pushed and read back by skopeo", async () => {
  await using reg = await startRegistry();
  assert.match(reg.host, /^127\.0\.0\.1:\d+$/);
  const res = await fetch(`${reg.url}/v2/`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("docker-distribution-api-version"), "registry/2.0");
  await res.body?.cancel();

  const pushed = await pushFixtures(reg);
  const e = fx.expected;
  // skopeo keeps the digests of what it copies unchanged.
  assert.equal(pushed.oci!.digest, e.ociArchive.manifestDigest);
  assert.equal(pushed.zstd!.digest, e.zstdOciArchive.manifestDigest);
  assert.equal(pushed.uncompressed!.digest, e.uncompressedOciArchive.manifestDigest);
  assert.equal(pushed.whiteout!.digest, e.whiteoutOciArchive.manifestDigest);
  assert.equal(pushed.index!.digest, e.multiArchOciArchive.indexDigest);
  if (fx.manifestListDockerArchive) {
    assert.equal(pushed.manifestList!.digest, e.manifestListDockerArchive.indexDigest);
  }

  const raws = await Promise.all(
    Object.values(pushed).map(async (p) => [p, await rawManifest(reg, p.ref)] as const),
  );
  for (const [p, raw] of raws) {
    assert.equal(sha256(raw), p.digest, p.ref);
    const m = JSON.parse(raw);
    assert.equal(m.mediaType ?? OCI_MANIFEST, p.mediaType, p.ref);
  }
  const manifest = (key: keyof typeof pushed) =>
    JSON.parse(raws.find(([p]) => p === pushed[key])![1]);
  const v2s2 = manifest("v2s2");
  assert.equal(v2s2.mediaType, DOCKER_MANIFEST);
  assert.deepEqual(
    v2s2.layers.map((l: { mediaType: string }) => l.mediaType),
    [
      "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "application/vnd.docker.image.rootfs.diff.tar.gzip",
    ],
  );
  assert.ok(
    manifest("zstd").layers.every((l: { mediaType: string }) => l.mediaType.endsWith("tar+zstd")),
  );
  assert.equal(manifest("whiteout").layers.length, 5);
  assert.deepEqual(
    manifest("index").manifests.map((m: { digest: string }) => m.digest),
    [
      e["multiArchOciArchive:linux/amd64"].manifestDigest,
      e["multiArchOciArchive:linux/arm64"].manifestDigest,
      e["multiArchOciArchive:linux/arm/v7"].manifestDigest,
    ],
  );
  if (pushed.manifestList) {
    const list = manifest("manifestList");
    assert.equal(list.manifests.length, 3);
    assert.ok(list.manifests.every((m: { mediaType: string }) => m.mediaType === DOCKER_MANIFEST));
  }

  // A plain HTTP client sees the same bytes; the registry negotiates on Accept.
  const got = await fetch(`${reg.url}/v2/library/multiarch/manifests/latest`, {
    headers: { accept: ACCEPT },
  });
  assert.equal(got.status, 200);
  assert.equal(got.headers.get("docker-content-digest"), pushed.index!.digest);
  assert.equal(sha256(new Uint8Array(await got.arrayBuffer())), pushed.index!.digest);

  // skopeo copies a whole image out: the OCI one and the platform skopeo picks from the index.
  assert.equal(await copyOut(reg, pushed.oci!.ref), pushed.oci!.digest);
  assert.equal(
    await copyOut(reg, pushed.index!.ref),
    e["multiArchOciArchive:linux/amd64"].manifestDigest,
  );
});

Deno.test("registry with htpasswd Basic auth: skopeo --creds works, anonymous and wrong ones fail", async () => {
  await using reg = await startRegistry({ auth: "basic", users: { alice: "wonderland" } });
  assert.deepEqual(reg.credentials, { username: "alice", password: "wonderland" });
  const pushed = await pushFixtures(reg, ["oci", "index"]);
  assert.equal(pushed.oci!.digest, fx.expected.ociArchive.manifestDigest);

  const anon = await fetch(`${reg.url}/v2/`);
  assert.equal(anon.status, 401);
  assert.match(anon.headers.get("www-authenticate") ?? "", /^Basic realm=/);
  await anon.body?.cancel();
  const basic = await fetch(`${reg.url}/v2/library/busybox/manifests/latest`, {
    headers: { authorization: `Basic ${btoa("alice:wonderland")}`, accept: ACCEPT },
  });
  assert.equal(basic.status, 200);
  await basic.body?.cancel();

  assert.equal(sha256(await rawManifest(reg, pushed.index!.ref)), pushed.index!.digest);
  assert.equal(await copyOut(reg, pushed.oci!.ref), pushed.oci!.digest);
  const url = `docker://${reg.host}/${pushed.oci!.ref}`;
  await rejects(
    runSkopeo(["inspect", "--raw", "--tls-verify=false", "--no-creds", url]),
    /unauthorized|authentication required/i,
  );
  await rejects(
    runSkopeo(["inspect", "--raw", "--tls-verify=false", "--creds", "alice:nope", url]),
    /unauthorized|authentication required|invalid username\/password/i,
  );
});

Deno.test("registry with token auth verifies the test issuer's JWTs", async (t) => {
  await using reg = await startRegistry({
    auth: "token",
    users: { bob: "builder" },
    token: { anonymousPull: ["library/public"] },
  });
  const issuer = reg.tokenIssuer!;
  const pushed = await pushFixtures(reg, ["oci", "v2s2", "manifestList", "index"]);
  await reg.push(`oci-archive:${fx.ociArchive}`, "library/public:latest");
  assert.ok(
    issuer.requests.some((r) =>
      r.user === "bob" && r.scopes.includes("repository:library/busybox:pull,push")
    ),
  );

  await t.step("the challenge names the issuer", async () => {
    const res = await fetch(`${reg.url}/v2/library/busybox/manifests/latest`);
    assert.equal(res.status, 401);
    assert.equal(
      res.headers.get("www-authenticate"),
      `Bearer realm="${issuer.realm}",service="${issuer.service}",` +
        `scope="repository:library/busybox:pull"`,
    );
    await res.body?.cancel();
  });

  await t.step("the kid is the libtrust ID of the certificate's key", async () => {
    const der = await new Deno.Command("openssl", {
      args: ["x509", "-in", issuer.certPath, "-noout", "-pubkey"],
      stdout: "piped",
    }).output().then(async (o) => {
      const pem = new TextDecoder().decode(o.stdout);
      const p = await new Deno.Command("openssl", {
        args: ["pkey", "-pubin", "-outform", "DER"],
        stdin: "piped",
        stdout: "piped",
      }).spawn();
      const w = p.stdin.getWriter();
      await w.write(new TextEncoder().encode(pem));
      await w.close();
      return (await p.output()).stdout;
    });
    assert.equal(issuer.kid, libtrustKeyId(der));
    assert.match(issuer.kid, /^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
  });

  await t.step("skopeo with --creds reads every kind back", async () => {
    const before = issuer.count;
    for (const p of Object.values(pushed)) {
      assert.equal(sha256(await rawManifest(reg, p.ref)), p.digest, p.ref);
    }
    assert.equal(await copyOut(reg, pushed.v2s2!.ref), pushed.v2s2!.digest);
    assert.ok(issuer.count > before);
    assert.ok(issuer.requests.slice(before).every((r) => r.user === "bob" && r.status === 200));
  });

  const token = async (scope: string, auth?: string) => {
    const res = await fetch(`${issuer.realm}?service=${issuer.service}&scope=${scope}`, {
      headers: auth ? { authorization: `Basic ${btoa(auth)}` } : {},
    });
    const body = await res.json();
    return { status: res.status, body };
  };
  const manifestWith = async (tok: string, repo = "library/busybox") => {
    const res = await fetch(`${reg.url}/v2/${repo}/manifests/latest`, {
      headers: { authorization: `Bearer ${tok}`, accept: ACCEPT },
    });
    await res.body?.cancel();
    return res.status;
  };

  await t.step("the registry really verifies: spoiled tokens get 401", async () => {
    const good = await token("repository:library/busybox:pull", "bob:builder");
    assert.equal(good.status, 200);
    assert.equal(good.body.token, good.body.access_token);
    assert.equal(good.body.expires_in, 300);
    assert.ok(!Number.isNaN(Date.parse(good.body.issued_at)));
    assert.equal(await manifestWith(good.body.token), 200);
    for (const kind of ["untrusted", "expired", "audience"] as const) {
      issuer.spoilNext = { count: 1, kind };
      const bad = await token("repository:library/busybox:pull", "bob:builder");
      assert.equal(bad.status, 200);
      assert.equal(await manifestWith(bad.body.token), 401, kind);
    }
    // A token for another repository does not open this one.
    const other = await token("repository:library/public:pull", "bob:builder");
    assert.equal(await manifestWith(other.body.token), 401);
    // A forged signature (last byte changed) is refused.
    const forged = good.body.token.slice(0, -2) + (good.body.token.endsWith("A") ? "BA" : "AA");
    assert.equal(await manifestWith(forged), 401);
  });

  await t.step("anonymous pull only where allowed; bad credentials and refusal", async () => {
    const anonPublic = await token("repository:library/public:pull");
    assert.equal(await manifestWith(anonPublic.body.token, "library/public"), 200);
    const anonPrivate = await token("repository:library/busybox:pull");
    assert.equal(anonPrivate.status, 200);
    assert.equal(await manifestWith(anonPrivate.body.token), 401);
    assert.equal((await token("repository:library/busybox:pull", "bob:wrong")).status, 401);
    await rejects(
      runSkopeo([
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--no-creds",
        `docker://${reg.host}/library/busybox:latest`,
      ]),
      /unauthorized|authentication required|denied/i,
    );
    assert.equal(
      sha256(
        await runSkopeo([
          "inspect",
          "--raw",
          "--tls-verify=false",
          "--no-creds",
          `docker://${reg.host}/library/public:latest`,
        ]),
      ),
      fx.expected.ociArchive.manifestDigest,
    );
    issuer.refuse = 403;
    assert.equal((await token("repository:library/busybox:pull", "bob:builder")).status, 403);
    await rejects(rawManifest(reg, "library/busybox:latest"), /./);
    issuer.refuse = false;
  });
});

Deno.test("fault proxy: clean passthrough for skopeo, then faults", async (t) => {
  await using reg = await startRegistry({ auth: "token" });
  const pushed = await pushFixtures(reg, ["oci"]);
  const ref = pushed.oci!.ref;
  await using proxy = await startFaultProxy(reg.url);
  const layer = fx.expected.ociArchive.layerDigests[0];
  const blobPath = `/v2/library/busybox/blobs/${layer}`;
  const blobRule = new RegExp(`/blobs/${layer}$`);

  await t.step("clean passthrough", async () => {
    assert.equal(await copyOut(reg, ref, proxy.host), pushed.oci!.digest);
    const paths = proxy.requests.map((r) => `${r.method} ${r.path} ${r.status}`);
    assert.ok(paths.includes(`GET ${blobPath} 200`), paths.join("\n"));
    const blob = proxy.requests.find((r) => r.path === blobPath)!;
    assert.match(blob.headers.authorization ?? "", /^Bearer /);
    assert.ok(blob.bytesSent > 1_000_000);
  });

  await t.step(
    "skopeo fails on a truncated blob, then succeeds once the rule is spent",
    async () => {
      proxy.rules.push({
        method: "GET",
        path: blobRule,
        times: 1,
        fault: { type: "truncate", after: 4096 },
      });
      await rejects(copyOut(reg, ref, proxy.host), /unexpected EOF/);
      assert.equal(proxy.rules[0].applied, 1);
      assert.equal(await copyOut(reg, ref, proxy.host), pushed.oci!.digest);
      proxy.rules.length = 0;
    },
  );

  await t.step("a corrupted blob fails skopeo's digest check", async () => {
    proxy.rules.push({ method: "GET", path: blobRule, times: 1, fault: { type: "corrupt" } });
    await rejects(copyOut(reg, ref, proxy.host), /digest did not match/i);
    proxy.rules.length = 0;
  });

  // Raw HTTP checks of the other faults, with a token the registry accepts.
  const issuer = reg.tokenIssuer!;
  const tok = await issuer.sign(reg.credentials!.username, [
    { type: "repository", name: "library/busybox", actions: ["pull"] },
  ]);
  const auth = { authorization: `Bearer ${tok}` };
  const blobUrl = `${proxy.url}${blobPath}`;
  const size = (await Deno.stat(`${fx.ociLayout}/blobs/sha256/${layer.slice(7)}`)).size;

  await t.step("Range passes through; 429, 503, reset, lying Content-Length", async () => {
    const part = await fetch(blobUrl, { headers: { ...auth, range: "bytes=100-199" } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get("content-range"), `bytes 100-199/${size}`);
    assert.equal((await part.arrayBuffer()).byteLength, 100);
    assert.equal(proxy.requests.at(-1)!.headers.range, "bytes=100-199");

    proxy.rules = [
      { path: /\/manifests\//, times: 1, fault: { type: "status", status: 429 } },
      { path: /\/manifests\//, times: 1, fault: { type: "status", status: 503 } },
      // Deno's fetch silently retries once when a reused keep-alive connection closes unanswered.
      { path: /\/manifests\//, times: 2, fault: { type: "reset" } },
    ];
    const m = `${proxy.url}/v2/library/busybox/manifests/latest`;
    const r429 = await fetch(m, { headers: auth });
    assert.equal(r429.status, 429);
    assert.equal(r429.headers.get("retry-after"), "1");
    await r429.body?.cancel();
    const r503 = await fetch(m, { headers: auth });
    assert.equal(r503.status, 503);
    await r503.body?.cancel();
    await assert.rejects(fetch(m, { headers: auth }));
    const ok = await fetch(m, { headers: { ...auth, accept: ACCEPT } });
    assert.equal(ok.status, 200);
    assert.equal(sha256(new Uint8Array(await ok.arrayBuffer())), pushed.oci!.digest);

    proxy.rules = [{ path: blobRule, times: 1, fault: { type: "lieLength", delta: 10 } }];
    const lie = await fetch(blobUrl, { headers: auth });
    assert.equal(lie.headers.get("content-length"), String(size + 10));
    await assert.rejects(lie.arrayBuffer());
  });

  await t.step("hang and stall hit the client's timeout", async () => {
    proxy.rules = [
      { path: /\/manifests\//, times: 1, fault: { type: "hang" } },
      { path: blobRule, times: 1, fault: { type: "stall", after: 1000 } },
    ];
    const m = `${proxy.url}/v2/library/busybox/manifests/latest`;
    await assert.rejects(fetch(m, { headers: auth, signal: AbortSignal.timeout(300) }));
    const ctl = new AbortController();
    const stalled = await fetch(blobUrl, { headers: auth, signal: ctl.signal });
    assert.equal(stalled.status, 200);
    const reader = stalled.body!.getReader();
    const first = await reader.read();
    assert.ok(first.value && first.value.length <= 1000);
    const timer = setTimeout(() => ctl.abort(), 300);
    await assert.rejects(
      (async () => {
        while (!(await reader.read()).done);
      })(),
    );
    clearTimeout(timer);
  });

  await t.step("skopeo pushes through the proxy (request bodies, upload Locations)", async () => {
    proxy.reset();
    proxy.rules = [];
    await runSkopeo([
      "copy",
      "-q",
      ...reg.skopeoFlags("dest"),
      `oci-archive:${fx.whiteoutOciArchive}`,
      `docker://${proxy.host}/library/via-proxy:latest`,
    ]);
    const methods = new Set(proxy.requests.map((r) => r.method));
    assert.ok(methods.has("PATCH") || methods.has("PUT"), [...methods].join(","));
    assert.ok(proxy.requests.every((r) => r.status < 500));
    assert.equal(
      sha256(await rawManifest(reg, "library/via-proxy:latest")),
      fx.expected.whiteoutOciArchive.manifestDigest,
    );
  });

  await t.step(
    "blob redirect to another host: skopeo follows without its credentials",
    async () => {
      proxy.reset();
      proxy.rules = [{ method: "GET", path: blobRule, fault: { type: "redirect" } }];
      assert.equal(await copyOut(reg, ref, proxy.host), pushed.oci!.digest);
      const redirected = proxy.redirectRequests;
      assert.equal(redirected.length, 1);
      assert.equal(redirected[0].path, blobPath);
      assert.equal(redirected[0].status, 200);
      assert.equal(redirected[0].headers.authorization, undefined);
      assert.notEqual(proxy.redirectHost.split(":")[0], "127.0.0.1");
      const hop = proxy.requests.find((r) => r.origin === "proxy" && r.path === blobPath)!;
      assert.equal(hop.status, 307);
      assert.match(hop.headers.authorization ?? "", /^Bearer /);
    },
  );
});

Deno.test("fault proxy re-frames chunked upstream bodies and still applies faults", async () => {
  const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const echo = req.method === "POST" ? await req.text() : "";
    const parts = ["hello ", "world", echo];
    return new Response(
      new ReadableStream({
        start(c) {
          for (const p of parts) c.enqueue(new TextEncoder().encode(p));
          c.close();
        },
      }),
    );
  });
  try {
    await using proxy = await startFaultProxy(`http://127.0.0.1:${upstream.addr.port}`);
    const url = `${proxy.url}/x`;
    const plain = await fetch(url);
    assert.equal(plain.headers.get("transfer-encoding"), "chunked");
    assert.equal(await plain.text(), "hello world");
    assert.equal(await (await fetch(url, { method: "POST", body: "!" })).text(), "hello world!");

    proxy.rules = [
      { path: /^\/x$/, times: 1, fault: { type: "corrupt", offset: 0 } },
      { path: /^\/x$/, times: 1, fault: { type: "lieLength", delta: -2 } },
      { path: /^\/x$/, times: 1, fault: { type: "truncate", after: 3 } },
    ];
    const corrupt = await fetch(url);
    assert.equal(corrupt.headers.get("content-length"), "11");
    assert.equal((await corrupt.text()).slice(1), "ello world");
    const short = await fetch(url);
    assert.equal(short.headers.get("content-length"), "9");
    assert.equal(await short.text(), "hello wor");
    const cut = await fetch(url);
    await assert.rejects(cut.text());
    assert.deepEqual(proxy.requests.map((r) => r.fault ?? "-"), [
      "-",
      "-",
      "corrupt",
      "lieLength",
      "truncate",
    ]);
  } finally {
    await upstream.shutdown();
  }
});
