/**
 * The network paths around the registry: `HTTP_PROXY` (a tiny forward proxy) with `NO_PROXY` and
 * loopback's exemption, `HTTPS_PROXY` (a CONNECT tunnel) to an HTTPS registry whose certificate a
 * test CA signed, trusted through `SSL_CERT_FILE` and refused without it.
 *
 * Proxy variables are read when Deno makes its HTTP clients, so every pull here runs in a child
 * process with the environment under test.
 */
import assert from "node:assert/strict";
import { pushFixtures, startRegistry } from "./_registry.ts";
import { tempDir } from "./_berth.ts";

const ROOT = Deno.uid() === 0;
const STORE = new URL("../core/store/store.ts", import.meta.url).href;
const PULL = new URL("../core/store/pull.ts", import.meta.url).href;
const LOGIN = new URL("../core/transport/remote/login.ts", import.meta.url).href;

/** A child that pulls each `[ref, registries]` of argv[0] (JSON) and prints one JSON line each. */
const CHILD = `
import { Store } from "${STORE}";
import { pullImage } from "${PULL}";
import { verifyLogin } from "${LOGIN}";
const jobs = JSON.parse(Deno.args[0]);
const root = Deno.args[1];
for (const job of jobs) {
  try {
    if (job.verify) {
      await verifyLogin(job.verify, {}, {});
      console.log(JSON.stringify({ ok: true }));
      continue;
    }
    const store = await Store.open({ root: root + "/" + crypto.randomUUID() });
    const image = await pullImage(store, job.ref, {
      registries: job.registries ?? {},
      credentials: () => Promise.resolve(undefined),
      attempts: 1,
      timeouts: { responseMs: 5000 },
    });
    console.log(JSON.stringify({ ok: true, id: image.id }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: e.message }));
  }
}
`;

async function child(
  dir: string,
  jobs: unknown[],
  env: Record<string, string>,
): Promise<{ ok: boolean; id?: string; error?: string }[]> {
  const script = `${dir}/child.ts`;
  await Deno.writeTextFile(script, CHILD);
  const clean: Record<string, string> = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" };
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "--no-check", script, JSON.stringify(jobs), `${dir}/stores`],
    env: { ...clean, HOME: dir, DOCKER_CONFIG: `${dir}/docker`, ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return text.trim().split("\n").map((l) => JSON.parse(l));
}

/** A forward proxy for plain HTTP (absolute-form requests); `registry.test` is `127.0.0.1`. */
function forwardProxy(log: string[]): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    log.push(`${req.method} ${req.url}`);
    const target = `http://${
      url.hostname === "registry.test" ? "127.0.0.1" : url.hostname
    }:${url.port}${url.pathname}${url.search}`;
    const headers = new Headers(req.headers);
    headers.delete("proxy-connection");
    const res = await fetch(target, { method: req.method, headers, redirect: "manual" });
    return new Response(res.body, { status: res.status, headers: res.headers });
  });
}

/** A CONNECT proxy (HTTPS_PROXY); `registry.test` is `127.0.0.1`. */
function connectProxy(log: string[]): { port: number; close: () => void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        const buf = new Uint8Array(8192);
        let head = "";
        while (!head.includes("\r\n\r\n")) {
          const n = await conn.read(buf);
          if (n === null) return conn.close();
          head += new TextDecoder().decode(buf.subarray(0, n));
        }
        const [method, target] = head.split(" ");
        log.push(`${method} ${target}`);
        if (method !== "CONNECT") {
          await conn.write(new TextEncoder().encode("HTTP/1.1 405 Not Allowed\r\n\r\n"));
          return conn.close();
        }
        const [host, port] = target.split(":");
        const upstream = await Deno.connect({
          hostname: host === "registry.test" ? "127.0.0.1" : host,
          port: Number(port),
        });
        conns.add(upstream);
        await conn.write(new TextEncoder().encode("HTTP/1.1 200 Connection established\r\n\r\n"));
        await Promise.all([
          conn.readable.pipeTo(upstream.writable).catch(() => {}),
          upstream.readable.pipeTo(conn.writable).catch(() => {}),
        ]);
      })().catch(() => {});
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close: () => {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** A test CA and a server certificate for registry.test, localhost and 127.0.0.1. */
async function certificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  await openssl(dir, [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=berth test CA",
  ]);
  await openssl(dir, [
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "srv.key",
    "-out",
    "srv.csr",
    "-subj",
    "/CN=registry.test",
  ]);
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    "subjectAltName=DNS:registry.test,DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n" +
      "extendedKeyUsage=serverAuth\n",
  );
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    "srv.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "srv.pem",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
  ]);
  return { ca: `${dir}/ca.pem`, cert: `${dir}/srv.pem`, key: `${dir}/srv.key` };
}

Deno.test({
  name: "proxy: HTTP_PROXY is used, NO_PROXY and loopback bypass it",
  ignore: !ROOT,
  async fn() {
    await using reg = await startRegistry();
    const pushed = await pushFixtures(reg, ["oci"]);
    await using dir = await tempDir();
    const log: string[] = [];
    const proxy = forwardProxy(log);
    try {
      const port = reg.host.split(":")[1];
      const far = `registry.test:${port}`;
      const registries = { insecure: [far] };
      const proxyUrl = `http://127.0.0.1:${proxy.addr.port}`;
      const [viaProxy, loopback] = await child(dir.path, [
        { ref: `${far}/${pushed.oci!.ref}`, registries },
        { ref: `${reg.host}/${pushed.oci!.ref}` },
      ], { HTTP_PROXY: proxyUrl });
      assert.ok(viaProxy.ok, viaProxy.error);
      assert.ok(loopback.ok, loopback.error);
      assert.ok(log.includes(`GET http://${far}/v2/`), log.join("\n"));
      assert.ok(log.some((l) => l.includes(`${far}/v2/library/busybox/blobs/sha256:`)));
      assert.ok(!log.some((l) => l.includes("127.0.0.1")), "loopback never went through the proxy");
      log.length = 0;
      const [direct] = await child(dir.path, [{ ref: `${far}/${pushed.oci!.ref}`, registries }], {
        HTTP_PROXY: proxyUrl,
        NO_PROXY: "registry.test",
      });
      assert.equal(direct.ok, false);
      assert.match(direct.error!, new RegExp(`cannot reach ${far}`));
      assert.deepEqual(log, []);
    } finally {
      await proxy.shutdown();
    }
  },
});

Deno.test({
  name: "proxy: HTTPS through HTTPS_PROXY (CONNECT), certificate trusted by SSL_CERT_FILE only",
  ignore: !ROOT,
  async fn() {
    await using reg = await startRegistry();
    const pushed = await pushFixtures(reg, ["oci"]);
    await using dir = await tempDir();
    const certs = await certificates(dir.path);
    // An HTTPS front of the registry.
    const tls = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      cert: await Deno.readTextFile(certs.cert),
      key: await Deno.readTextFile(certs.key),
      onListen() {},
    }, async (req) => {
      const url = new URL(req.url);
      const res = await fetch(`${reg.url}${url.pathname}${url.search}`, {
        method: req.method,
        headers: req.headers,
        redirect: "manual",
      });
      return new Response(res.body, { status: res.status, headers: res.headers });
    });
    const log: string[] = [];
    const connect = connectProxy(log);
    try {
      const far = `registry.test:${tls.addr.port}`;
      const ref = `${far}/${pushed.oci!.ref}`;
      const env = { HTTPS_PROXY: `http://127.0.0.1:${connect.port}` };
      const [trusted] = await child(dir.path, [{ ref }], { ...env, SSL_CERT_FILE: certs.ca });
      assert.ok(trusted.ok, trusted.error);
      assert.ok(log.includes(`CONNECT ${far}`), log.join("\n"));
      const [untrusted] = await child(dir.path, [{ ref }], env);
      assert.equal(untrusted.ok, false);
      assert.match(
        untrusted.error!,
        new RegExp(`cannot reach ${far}: TLS certificate not trusted`),
      );
      // A mirror given as an https:// URL on loopback, without a proxy.
      const mirror = { mirrors: { "registry.invalid:1": [`https://127.0.0.1:${tls.addr.port}`] } };
      const [viaMirror, verify] = await child(dir.path, [
        { ref: `registry.invalid:1/${pushed.oci!.ref}`, registries: mirror },
        {
          verify: {
            base: `https://127.0.0.1:${tls.addr.port}`,
            host: `127.0.0.1:${tls.addr.port}`,
            mirror: false,
          },
        },
      ], { SSL_CERT_FILE: certs.ca });
      assert.ok(viaMirror.ok, viaMirror.error);
      assert.ok(verify.ok, verify.error);
    } finally {
      connect.close();
      await tls.shutdown();
    }
  },
});
