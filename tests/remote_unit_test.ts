/**
 * Pure logic of the registry client: WWW-Authenticate parsing, Retry-After and backoff, reference →
 * registry endpoints (Docker Hub's API host, loopback and insecure over HTTP, mirrors), the
 * registries.json checks, and the progress display.
 */
import assert from "node:assert/strict";
import { parseChallenges } from "../core/transport/remote/_challenge.ts";
import { basicAuthorization, pickChallenge } from "../core/transport/remote/auth.ts";
import { backoffDelay, parseRetryAfter } from "../core/transport/remote/_retry.ts";
import {
  checkRegistryConfig,
  isInsecure,
  isLoopback,
  registryEndpoints,
} from "../core/transport/remote/config.ts";
import { parseReference } from "../core/reference.ts";
import { progressBar, PullProgress } from "../core/cli/_progress.ts";
import type { PullEvent } from "../core/store/pull.ts";

Deno.test("WWW-Authenticate: Bearer, Basic, quoted commas and escapes, several challenges", () => {
  assert.deepEqual(
    parseChallenges(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
    ),
    [{
      scheme: "bearer",
      params: {
        realm: "https://auth.docker.io/token",
        service: "registry.docker.io",
        scope: "repository:library/busybox:pull",
      },
    }],
  );
  assert.deepEqual(parseChallenges('Basic realm="Registry Realm"'), [
    { scheme: "basic", params: { realm: "Registry Realm" } },
  ]);
  assert.deepEqual(
    parseChallenges(
      'Basic realm="a, b", Bearer realm="x\\"y", error="insufficient_scope",scope="repository:a:pull,push"',
    ),
    [
      { scheme: "basic", params: { realm: "a, b" } },
      {
        scheme: "bearer",
        params: { realm: 'x"y', error: "insufficient_scope", scope: "repository:a:pull,push" },
      },
    ],
  );
  assert.deepEqual(parseChallenges("Negotiate abc==, BASIC"), [
    { scheme: "negotiate", params: { token68: "abc==" } },
    { scheme: "basic", params: {} },
  ]);
  assert.deepEqual(parseChallenges("bearer Realm=https://t/token , Service=reg"), [
    { scheme: "bearer", params: { realm: "https://t/token", service: "reg" } },
  ]);
  assert.deepEqual(parseChallenges(""), []);
  // Bearer is preferred when both are offered; a Bearer without realm is not usable.
  assert.equal(pickChallenge('Basic realm="r", Bearer realm="https://t"')?.scheme, "bearer");
  assert.equal(pickChallenge('Bearer service="x", Basic realm="r"')?.scheme, "basic");
  assert.equal(pickChallenge("Digest realm=x"), undefined);
  assert.equal(pickChallenge(null), undefined);
});

Deno.test("Retry-After: seconds, HTTP dates, garbage; backoff doubles with jitter, capped", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  assert.equal(parseRetryAfter("1", now), 1000);
  assert.equal(parseRetryAfter(" 120 ", now), 120_000);
  assert.equal(parseRetryAfter("Thu, 01 Jan 2026 00:00:05 GMT", now), 5000);
  assert.equal(parseRetryAfter("Wed, 31 Dec 2025 23:00:00 GMT", now), 0);
  assert.equal(parseRetryAfter("999999", now), 5 * 60_000);
  assert.equal(parseRetryAfter("soon", now), undefined);
  assert.equal(parseRetryAfter("-1", now), undefined);
  assert.equal(parseRetryAfter("", now), undefined);
  assert.equal(parseRetryAfter(null, now), undefined);
  const mid = () => 0.5;
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, { random: mid })), [
    500,
    1000,
    2000,
    4000,
    8000,
    10000,
  ]);
  assert.equal(backoffDelay(1, { random: () => 0 }), 400);
  assert.equal(backoffDelay(1, { random: () => 0.999999 }), 600);
  assert.equal(backoffDelay(3, { baseMs: 10, random: mid }), 40);
  assert.throws(() => backoffDelay(0), RangeError);
});

Deno.test("reference → registry endpoints: Docker Hub, loopback over HTTP, insecure, mirrors", () => {
  const ep = (ref: string, config = {}) => registryEndpoints(parseReference(ref).domain, config);
  assert.deepEqual(ep("busybox"), [
    { base: "https://registry-1.docker.io", host: "registry-1.docker.io", mirror: false },
  ]);
  assert.deepEqual(ep("index.docker.io/user/app"), ep("docker.io/user/app"));
  assert.equal(ep("quay.io/org/app:1")[0].base, "https://quay.io");
  assert.equal(ep("localhost:5000/app")[0].base, "http://localhost:5000");
  assert.equal(ep("localhost/app")[0].base, "http://localhost");
  assert.equal(ep("127.0.0.1:5000/app")[0].base, "http://127.0.0.1:5000");
  assert.equal(ep("127.1.2.3:5000/app")[0].base, "http://127.1.2.3:5000");
  assert.equal(ep("[::1]:5000/app")[0].base, "http://[::1]:5000");
  assert.equal(ep("128.0.0.1:5000/app")[0].base, "https://128.0.0.1:5000");
  assert.equal(ep("myreg:5000/app", { insecure: ["myreg:5000"] })[0].base, "http://myreg:5000");
  assert.equal(ep("myreg:5001/app", { insecure: ["myreg:5000"] })[0].base, "https://myreg:5001");
  assert.equal(ep("myreg:5001/app", { insecure: ["myreg"] })[0].base, "http://myreg:5001");
  assert.equal(
    ep("10.1.2.3:5000/app", { insecure: ["10.0.0.0/8"] })[0].base,
    "http://10.1.2.3:5000",
  );
  assert.equal(
    ep("11.1.2.3:5000/app", { insecure: ["10.0.0.0/8"] })[0].base,
    "https://11.1.2.3:5000",
  );
  assert.deepEqual(
    ep("busybox", {
      mirrors: {
        "docker.io": ["http://127.0.0.1:5001", "mirror.example/cache/", "localhost:5002"],
      },
    }),
    [
      { base: "http://127.0.0.1:5001", host: "127.0.0.1:5001", mirror: true },
      { base: "https://mirror.example/cache", host: "mirror.example", mirror: true },
      { base: "http://localhost:5002", host: "localhost:5002", mirror: true },
      { base: "https://registry-1.docker.io", host: "registry-1.docker.io", mirror: false },
    ],
  );
  assert.ok(isLoopback("localhost:1"));
  assert.ok(isLoopback("::1"));
  assert.ok(!isLoopback("localhost.example.com"));
  assert.ok(!isInsecure("a:1", {}));
});

Deno.test("loopback by name is `localhost` only: `*.localhost` is HTTPS", () => {
  assert.ok(isLoopback("localhost"));
  assert.ok(isLoopback("127.0.0.53:53"));
  assert.ok(isLoopback("[0:0:0:0:0:0:0:1]:5000"));
  assert.ok(!isLoopback("app.localhost:5000"));
  assert.equal(registryEndpoints("app.localhost:5000")[0].base, "https://app.localhost:5000");
});

Deno.test("Basic authorization: one encoder, UTF-8 like docker", () => {
  assert.equal(basicAuthorization("me", "pw"), "Basic bWU6cHc=");
  assert.equal(basicAuthorization("zoë", "p:ß"), `Basic ${btoa("zo\xc3\xab:p:\xc3\x9f")}`);
});

Deno.test("registries.json: checked, with errors naming the file", () => {
  assert.deepEqual(checkRegistryConfig({}, "f"), {});
  const ok = {
    mirrors: { "docker.io": ["http://127.0.0.1:5001"] },
    insecure: ["a:1"],
    timeouts: { response: 5, idle: 10 },
    retries: 3,
  };
  assert.deepEqual(checkRegistryConfig(ok, "f"), ok);
  const bad: [unknown, RegExp][] = [
    [[], /f: not a JSON object/],
    [{ mirrors: ["x"] }, /"mirrors" must map registry names/],
    [{ mirrors: { "docker.io": "http://x" } }, /"mirrors" of "docker.io" must be a list/],
    [{ mirrors: { "docker.io": ["ftp://x"] } }, /not http or https/],
    [{ mirrors: { "docker.io": ["http://u:p@x"] } }, /must not carry a query or userinfo/],
    [{ insecure: "a" }, /"insecure" must be a list/],
    [{ timeouts: { idle: -1 } }, /"timeouts.idle" must be a positive number/],
    [{ retries: 0 }, /"retries" must be a positive integer/],
  ];
  for (const [doc, re] of bad) assert.throws(() => checkRegistryConfig(doc, "f"), re);
});

Deno.test("progress: docker's bar, plain lines into a pipe, redraws on a terminal", () => {
  assert.equal(progressBar(0, 100), `[>${" ".repeat(49)}]`);
  assert.equal(progressBar(50, 100), `[${"=".repeat(25)}>${" ".repeat(24)}]`);
  assert.equal(progressBar(100, 100), `[${"=".repeat(50)}>]`);
  const digest = `sha256:${"ab".repeat(32)}` as const;
  const id = digest.slice(7, 19);
  const events: PullEvent[] = [
    { type: "start", reference: "latest", repository: "library/busybox" },
    { type: "layer", id, digest, status: "Pulling fs layer" },
    { type: "layer", id, digest, status: "Downloading", current: 0, total: 2_000_000 },
    { type: "layer", id, digest, status: "Downloading", current: 1_000_000, total: 2_000_000 },
    {
      type: "retry",
      id,
      what: `layer ${digest}`,
      reason: "connection reset by peer",
      delayMs: 1000,
      attempt: 1,
      retryAfter: false,
      resumeAt: 1_000_000,
    },
    { type: "layer", id, digest, status: "Retrying", retryInSeconds: 1 },
    { type: "layer", id, digest, status: "Downloading", current: 2_000_000, total: 2_000_000 },
    { type: "layer", id, digest, status: "Verifying Checksum" },
    { type: "layer", id, digest, status: "Download complete" },
    { type: "layer", id, digest, status: "Extracting", current: 2_000_000, total: 2_000_000 },
    { type: "layer", id, digest, status: "Pull complete" },
    {
      type: "retry",
      what: "manifest latest",
      reason: "manifest latest from 127.0.0.1:5000/app: 429 Too Many Requests",
      delayMs: 2000,
      attempt: 1,
      retryAfter: true,
    },
  ];
  let plain = "";
  const p = new PullProgress({ out: (t) => plain += t, tty: false });
  for (const e of events) p.handle(e);
  assert.equal(
    plain,
    [
      "latest: Pulling from library/busybox",
      `${id}: Pulling fs layer`,
      `${id}: Retrying in 1 second (connection reset by peer; resuming at byte 1000000)`,
      `${id}: Verifying Checksum`,
      `${id}: Download complete`,
      `${id}: Pull complete`,
      "manifest latest from 127.0.0.1:5000/app: 429 Too Many Requests: the registry asks to wait 2 seconds before retrying",
      "",
    ].join("\n"),
  );
  let tty = "";
  const q = new PullProgress({ out: (t) => tty += t, tty: true, columns: 120 });
  for (const e of events.slice(0, 4)) q.handle(e);
  assert.ok(tty.startsWith(`latest: Pulling from library/busybox\n${id}: Pulling fs layer\n`));
  assert.ok(tty.includes(`\x1b[1A\r\x1b[2K${id}: Downloading [${"=".repeat(25)}>`), tty);
  assert.ok(tty.includes("   1MB/2MB"), tty);
});
