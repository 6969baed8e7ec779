import assert from "node:assert/strict";
import { familiarString, formatReference, parseReference } from "../core/reference.ts";

const D = "sha256:" + "ab".repeat(32);

Deno.test("reference: docker's normalisation", () => {
  const cases: [string, string, string][] = [
    ["busybox", "docker.io/library/busybox:latest", "busybox:latest"],
    ["busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"],
    ["user/app", "docker.io/user/app:latest", "user/app:latest"],
    ["docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"],
    ["index.docker.io/user/app:v1", "docker.io/user/app:v1", "user/app:v1"],
    ["localhost/app", "localhost/app:latest", "localhost/app:latest"],
    ["localhost:5000/a/b/c:t", "localhost:5000/a/b/c:t", "localhost:5000/a/b/c:t"],
    ["127.0.0.1:5000/app", "127.0.0.1:5000/app:latest", "127.0.0.1:5000/app:latest"],
    ["quay.io/x/y", "quay.io/x/y:latest", "quay.io/x/y:latest"],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`, `busybox@${D}`],
    [`busybox:1@${D}`, `docker.io/library/busybox:1@${D}`, `busybox:1@${D}`],
    ["a__b/c-d.e", "docker.io/a__b/c-d.e:latest", "a__b/c-d.e:latest"],
  ];
  for (const [input, full, familiar] of cases) {
    const ref = parseReference(input);
    assert.equal(formatReference(ref), full, input);
    assert.equal(familiarString(ref), familiar, input);
  }
});

Deno.test("reference: errors name the reference", () => {
  assert.throws(() => parseReference("Busybox"), /"Busybox".*must be lowercase/);
  assert.throws(() => parseReference("busybox:"), /invalid tag/);
  assert.throws(() => parseReference("a/-b"), /invalid repository name component "-b"/);
  assert.throws(() => parseReference("busybox@sha256:12"), /Invalid reference.*sha256/);
  assert.throws(() => parseReference("busybox@md5:" + "a".repeat(32)), /Unsupported digest/);
  assert.throws(() => parseReference(""), /empty/);
  assert.throws(() => parseReference("x/" + "a".repeat(260)), /longer than 255/);
  assert.throws(() => parseReference("busybox:" + "t".repeat(129)), /invalid tag/);
});

Deno.test("reference: defaultTag null keeps a bare name untagged", () => {
  const ref = parseReference("busybox", { defaultTag: null });
  assert.equal(ref.tag, undefined);
  assert.equal(formatReference(ref), "docker.io/library/busybox");
});
