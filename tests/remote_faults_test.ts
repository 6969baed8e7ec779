/**
 * `pull` through a misbehaving network (tests/_fault_proxy.ts in front of a real registry):
 * truncated, corrupted and mis-sized bodies, 429 with Retry-After, 5xx, resets, hangs and stalls,
 * and blob redirects to another origin.
 */
import assert from "node:assert/strict";
import { fixtures } from "./_fixtures.ts";
import { type PushedFixtures, pushFixtures, type Registry, startRegistry } from "./_registry.ts";
import { type FaultRule, startFaultProxy } from "./_fault_proxy.ts";
import { listTree as listAll, tempDir } from "./_berth.ts";
import { Store } from "../core/store/store.ts";
import { type PullEvent, pullImage, type PullOptions } from "../core/store/pull.ts";
import { DigestMismatchError } from "../core/errors.ts";
import { RegistryAuthError, RegistryError } from "../core/transport/remote/errors.ts";
import { clearTokenCache } from "../core/transport/remote/auth.ts";

const fx = await fixtures();
const ROOT = Deno.uid() === 0;
/** The big layer of the busybox fixture (its first; ~1 MB gzip). */
const BIG = fx.expected.ociArchive.layerDigests[0] as `sha256:${string}`;

async function listTree(root: string): Promise<string[]> {
  return (await listAll(root)).filter((p) => !p.endsWith(".lock"));
}

interface Setup {
  reg: Registry;
  pushed: PushedFixtures;
}

async function withProxy(
  setup: Setup,
  rules: FaultRule[],
  fn: (
    proxy: Awaited<ReturnType<typeof startFaultProxy>>,
    store: Store,
    root: string,
  ) => Promise<void>,
): Promise<void> {
  await using proxy = await startFaultProxy(setup.reg.url, rules);
  await using dir = await tempDir();
  const store = await Store.open({ root: dir.path });
  await fn(proxy, store, dir.path);
}

function options(extra: PullOptions = {}): PullOptions & { events: PullEvent[] } {
  const events: PullEvent[] = [];
  return {
    credentials: () => Promise.resolve(undefined),
    backoffMs: 20,
    onProgress: (e) => events.push(e),
    events,
    ...extra,
  };
}

const blobPath = (digest: string) => new RegExp(`/blobs/${digest}$`);

Deno.test({
  name: "pull faults: resume, retry, refuse, time out",
  ignore: !ROOT,
  async fn(t) {
    clearTokenCache();
    await using reg = await startRegistry();
    const pushed = await pushFixtures(reg, ["oci"]);
    const setup = { reg, pushed };
    const ref = (host: string) => `${host}/${pushed.oci!.ref}`;

    await t.step("truncated layer: resumed with Range from the bytes already staged", async () => {
      await withProxy(setup, [
        {
          method: "GET",
          path: blobPath(BIG),
          times: 1,
          fault: { type: "truncate", after: 300_000 },
        },
      ], async (proxy, store) => {
        const o = options();
        const image = await pullImage(store, ref(proxy.host), o);
        assert.equal(image.id, fx.expected.ociArchive.configDigest);
        const gets = proxy.requests.filter((r) => r.path.endsWith(BIG));
        assert.equal(gets.length, 2, JSON.stringify(gets));
        assert.equal(gets[0].headers.range, undefined);
        assert.equal(gets[0].fault, "truncate");
        assert.equal(gets[1].headers.range, "bytes=300000-");
        assert.equal(gets[1].status, 206);
        const retry = o.events.find((e) => e.type === "retry");
        assert.ok(retry?.type === "retry" && retry.resumeAt === 300_000, JSON.stringify(retry));
        assert.ok(await store.content.has(BIG));
      });
    });

    await t.step(
      "a lying Content-Length: a short one resumes, a long one ends complete",
      async () => {
        for (const delta of [-1000, 1000]) {
          await withProxy(setup, [
            { method: "GET", path: blobPath(BIG), times: 1, fault: { type: "lieLength", delta } },
          ], async (proxy, store) => {
            await pullImage(store, ref(proxy.host), options());
            const gets = proxy.requests.filter((r) => r.path.endsWith(BIG));
            if (delta < 0) {
              assert.equal(gets.length, 2, `delta ${delta}: ${JSON.stringify(gets)}`);
              assert.equal(gets[1].headers.range, `bytes=${gets[0].bytesSent + delta}-`);
            } else {
              // Every byte came before the connection closed short of the promised length.
              assert.equal(gets.length, 1, `delta ${delta}: ${JSON.stringify(gets)}`);
            }
            assert.ok(await store.content.has(BIG));
          });
        }
      },
    );

    await t.step("connection reset and 5xx: retried", async () => {
      await withProxy(setup, [
        { method: "GET", path: blobPath(BIG), times: 1, fault: { type: "reset" } },
        { method: "GET", path: /\/manifests\//, times: 2, fault: { type: "status", status: 503 } },
      ], async (proxy, store) => {
        const o = options();
        await pullImage(store, ref(proxy.host), o);
        const retries = o.events.filter((e) => e.type === "retry");
        // Two for the 503s; the reset is retried by berth, or at once by Deno's HTTP client when
        // it hit a reused connection.
        assert.ok(retries.length >= 2, JSON.stringify(retries));
        assert.equal(proxy.requests.filter((r) => r.path.endsWith(BIG)).length, 2);
        assert.ok(await store.content.has(BIG));
      });
    });

    await t.step("429 with Retry-After: waits what the registry asks, says so", async () => {
      await withProxy(setup, [
        {
          method: "GET",
          path: /\/manifests\//,
          times: 1,
          fault: { type: "status", status: 429, retryAfter: "1" },
        },
      ], async (proxy, store) => {
        const o = options();
        const t0 = Date.now();
        await pullImage(store, ref(proxy.host), o);
        const manifests = proxy.requests.filter((r) => r.path.includes("/manifests/"));
        assert.equal(manifests[0].status, 429);
        assert.ok(manifests[1].at - manifests[0].at >= 950, "waited about 1 s");
        assert.ok(Date.now() - t0 >= 950);
        const retry = o.events.find((e) => e.type === "retry");
        assert.ok(retry?.type === "retry" && retry.retryAfter && retry.delayMs === 1000);
        assert.match(retry.reason, /429 Too Many Requests/);
      });
    });

    await t.step("429 for good: one line after the attempts", async () => {
      await withProxy(setup, [
        {
          method: "GET",
          path: /\/manifests\//,
          fault: { type: "status", status: 429, retryAfter: "0" },
        },
      ], async (proxy, store) => {
        await assert.rejects(
          pullImage(store, ref(proxy.host), options({ attempts: 2 })),
          (e: Error) => {
            assert.ok(e instanceof RegistryError);
            assert.match(
              e.message,
              /^Cannot pull ".*": manifest latest from 127\.0\.0\.1:\d+\/library\/busybox: 429 Too Many Requests/,
            );
            return true;
          },
        );
      });
    });

    await t.step(
      "wrong bytes for a layer: digest error naming registry, repository, digest; store unchanged",
      async () => {
        await withProxy(setup, [
          { method: "GET", path: blobPath(BIG), fault: { type: "corrupt" } },
        ], async (proxy, store, root) => {
          const before = await listTree(root);
          await assert.rejects(pullImage(store, ref(proxy.host), options()), (e: Error) => {
            assert.ok(e instanceof DigestMismatchError, String(e));
            assert.equal(
              e.message.replace(/got sha256:[0-9a-f]{64}/, "got X"),
              `Cannot pull "${
                ref(proxy.host)
              }": layer ${BIG} from ${proxy.host}/library/busybox does not match its digest (got X)`,
            );
            return true;
          });
          assert.deepEqual(await listTree(root), before);
          assert.deepEqual(await store.images(), []);
        });
      },
    );

    await t.step("a registry that never answers: a timeout error", async () => {
      await withProxy(setup, [
        { method: "GET", path: /\/manifests\//, fault: { type: "hang" } },
      ], async (proxy, store, root) => {
        const before = await listTree(root);
        const t0 = Date.now();
        await assert.rejects(
          pullImage(
            store,
            ref(proxy.host),
            options({ attempts: 2, timeouts: { responseMs: 1000 } }),
          ),
          (e: Error) => {
            assert.ok(e instanceof RegistryError && e.temporary);
            assert.match(
              e.message,
              /^Cannot pull ".*": manifest latest from 127\.0\.0\.1:\d+\/library\/busybox: no response from 127\.0\.0\.1:\d+ within 1 s$/,
            );
            return true;
          },
        );
        assert.ok(Date.now() - t0 < 10_000);
        assert.deepEqual(await listTree(root), before);
      });
    });

    await t.step("a body that stalls: idle timeout, then resumed with Range", async () => {
      await withProxy(setup, [
        { method: "GET", path: blobPath(BIG), times: 1, fault: { type: "stall", after: 200_000 } },
      ], async (proxy, store) => {
        await pullImage(store, ref(proxy.host), options({ timeouts: { idleMs: 1000 } }));
        const gets = proxy.requests.filter((r) => r.path.endsWith(BIG));
        assert.ok(gets.length >= 2, JSON.stringify(gets));
        assert.match(gets[1].headers.range ?? "", /^bytes=\d+-$/);
        assert.ok(Number(/\d+/.exec(gets[1].headers.range!)![0]) >= 100_000);
      });
    });

    await t.step("an abort signal stops the pull; the store is unchanged", async () => {
      await withProxy(setup, [
        { method: "GET", path: blobPath(BIG), fault: { type: "stall", after: 10_000 } },
      ], async (proxy, store, root) => {
        const before = await listTree(root);
        const abort = new AbortController();
        setTimeout(() => abort.abort(new Error("stop")), 300);
        await assert.rejects(
          pullImage(store, ref(proxy.host), options({ signal: abort.signal })),
          /stop/,
        );
        assert.deepEqual(await listTree(root), before);
      });
    });
  },
});

Deno.test({
  name: "pull faults: credentials are not sent to another origin on a blob redirect",
  ignore: !ROOT,
  async fn() {
    clearTokenCache();
    await using reg = await startRegistry({ auth: "basic" });
    const pushed = await pushFixtures(reg, ["oci"]);
    await using proxy = await startFaultProxy(reg.url, [
      { method: "GET", path: /\/blobs\/sha256:/, fault: { type: "redirect" } },
    ]);
    await using dir = await tempDir();
    const store = await Store.open({ root: dir.path });
    const creds = reg.credentials!;
    await pullImage(store, `${proxy.host}/${pushed.oci!.ref}`, {
      ...options(),
      credentials: (host) => Promise.resolve(host === proxy.host ? creds : undefined),
    });
    const toProxy = proxy.requests.filter((r) =>
      r.origin === "proxy" && r.path.includes("/blobs/")
    );
    assert.ok(toProxy.length >= 3);
    assert.ok(toProxy.every((r) => r.headers.authorization?.startsWith("Basic ")));
    assert.ok(proxy.redirectRequests.length >= 3, "the blobs came from the other origin");
    for (const r of proxy.redirectRequests) {
      assert.equal(
        r.headers.authorization,
        undefined,
        `sent to ${proxy.redirectHost}: ${r.target}`,
      );
    }
    // A resumed download after a redirect asks the registry again, then follows the redirect.
    proxy.rules.unshift({
      origin: "redirect",
      method: "GET",
      path: blobPath(BIG),
      times: 1,
      fault: { type: "truncate", after: 100_000 },
    });
    proxy.reset();
    await using d2 = await tempDir();
    const s2 = await Store.open({ root: d2.path });
    await pullImage(s2, `${proxy.host}/${pushed.oci!.ref}`, {
      ...options(),
      credentials: (host) => Promise.resolve(host === proxy.host ? creds : undefined),
    });
    const big = proxy.redirectRequests.filter((r) => r.path.endsWith(BIG));
    assert.equal(big.length, 2);
    assert.equal(big[1].headers.range, "bytes=100000-");
    assert.ok(big.every((r) => r.headers.authorization === undefined));
  },
});

Deno.test({
  name: "pull faults: wrong credentials and no credentials are one-line auth errors",
  ignore: !ROOT,
  async fn() {
    clearTokenCache();
    await using reg = await startRegistry({ auth: "basic" });
    const pushed = await pushFixtures(reg, ["oci"]);
    await using dir = await tempDir();
    const store = await Store.open({ root: dir.path });
    const before = await listTree(dir.path);
    const name = `${reg.host}/${pushed.oci!.ref}`;
    await assert.rejects(
      pullImage(store, name, {
        ...options(),
        credentials: () =>
          Promise.resolve({ username: reg.credentials!.username, password: "wrong" }),
      }),
      (e: Error) => {
        assert.ok(e instanceof RegistryAuthError && e.status === 401, String(e));
        assert.match(
          e.message,
          new RegExp(
            `^Cannot pull "${name}": manifest latest from ${reg.host}/library/busybox: unauthorized \\(401 Unauthorized.*\\); check the credentials \\('berth login ${reg.host}'\\)$`,
          ),
        );
        return true;
      },
    );
    await assert.rejects(pullImage(store, name, options()), (e: Error) => {
      assert.ok(e instanceof RegistryAuthError);
      assert.match(
        e.message,
        new RegExp(
          `pull access denied for ${reg.host}/library/busybox, repository does not exist or may require 'berth login'`,
        ),
      );
      return true;
    });
    assert.deepEqual(await listTree(dir.path), before);
  },
});
