/**
 * Registry authentication against the real registry: Basic (htpasswd) and the Docker token
 * protocol (the registry verifies the test issuer's tokens), token caching per scope, refresh on
 * expiry and on 401, OAuth2 refresh tokens, docker's config.json (`auths`, Docker Hub's key,
 * `DOCKER_CONFIG`), credential helpers (a real `docker-credential-test` executable on PATH), and
 * `berth login` / `berth logout`.
 */
import assert from "node:assert/strict";
import { pushFixtures, startRegistry } from "./_registry.ts";
import { startFaultProxy } from "./_fault_proxy.ts";
import { berth, tempDir } from "./_berth.ts";
import { Store } from "../core/store/store.ts";
import { pullImage } from "../core/store/pull.ts";
import { clearTokenCache } from "../core/transport/remote/auth.ts";
import { RegistryAuthError } from "../core/transport/remote/errors.ts";
import {
  CredentialHelperError,
  credentialKey,
  dockerCredentials,
  eraseCredentials,
  getCredentials,
  storeCredentials,
} from "../core/auth/credentials.ts";

const ROOT = Deno.uid() === 0;

const enc = new TextEncoder();
const anonymous = () => Promise.resolve(undefined);

/**
 * A real credential helper speaking docker's protocol (`get`/`store`/`erase`, JSON on stdio),
 * keeping its secrets under `$BERTH_TEST_HELPER_DIR` and logging each call to `calls.log` there.
 */
const HELPER = `#!/usr/bin/env python3
import json, os, sys
d = os.environ["BERTH_TEST_HELPER_DIR"]
name = os.path.basename(sys.argv[0])
action = sys.argv[1]
data = sys.stdin.read()
path = os.path.join(d, "secrets.json")
secrets = json.load(open(path)) if os.path.exists(path) else {}
with open(os.path.join(d, "calls.log"), "a") as log:
    log.write(f"{name} {action} {data.strip() if action != 'store' else json.loads(data)['ServerURL']}\\n")
if action == "get":
    server = data.strip()
    if server not in secrets:
        print("credentials not found in native keychain")
        sys.exit(1)
    user, secret = secrets[server]
    print(json.dumps({"ServerURL": server, "Username": user, "Secret": secret}))
elif action == "store":
    doc = json.loads(data)
    secrets[doc["ServerURL"]] = [doc["Username"], doc["Secret"]]
    json.dump(secrets, open(path, "w"))
elif action == "erase":
    server = data.strip()
    if server not in secrets:
        print("credentials not found in native keychain")
        sys.exit(1)
    del secrets[server]
    json.dump(secrets, open(path, "w"))
else:
    sys.exit(2)
`;

/** Puts `docker-credential-test` and `docker-credential-other` on this process's PATH. */
async function installHelpers(
  dir: string,
): Promise<{ bin: string; calls: () => Promise<string[]> }> {
  const bin = `${dir}/bin`;
  await Deno.mkdir(bin, { recursive: true });
  await Deno.writeTextFile(`${bin}/docker-credential-test`, HELPER, { mode: 0o755 });
  await Deno.chmod(`${bin}/docker-credential-test`, 0o755);
  await Deno.symlink(`${bin}/docker-credential-test`, `${bin}/docker-credential-other`);
  Deno.env.set("BERTH_TEST_HELPER_DIR", dir);
  const path = Deno.env.get("PATH") ?? "/usr/bin:/bin";
  if (!path.split(":").includes(bin)) Deno.env.set("PATH", `${bin}:${path}`);
  return {
    bin,
    calls: async () =>
      (await Deno.readTextFile(`${dir}/calls.log`).catch(() => "")).trim().split("\n").filter(
        Boolean,
      ),
  };
}

Deno.test({
  name: "auth: token flow, one token per scope cached until it expires, refreshed on 401",
  ignore: !ROOT,
  async fn(t) {
    await using reg = await startRegistry({ auth: "token" });
    const pushed = await pushFixtures(reg, ["oci", "zstd"]);
    const issuer = reg.tokenIssuer!;
    const creds = reg.credentials!;
    const name = `${reg.host}/${pushed.oci!.ref}`;
    const withCreds = { credentials: () => Promise.resolve(creds) };
    const fresh = async () => {
      const d = await tempDir();
      return { d, store: await Store.open({ root: d.path }) };
    };

    await t.step(
      "one token request for the whole pull, credentials sent to the realm",
      async () => {
        clearTokenCache();
        issuer.reset();
        const { d, store } = await fresh();
        await using _ = d;
        const image = await pullImage(store, name, withCreds);
        assert.equal(image.layers.length, 2);
        assert.equal(issuer.count, 1, JSON.stringify(issuer.requests));
        const [req] = issuer.requests;
        assert.equal(req.user, creds.username);
        assert.ok(req.withCredentials);
        assert.deepEqual(req.scopes, ["repository:library/busybox:pull"]);
        assert.equal(req.service, issuer.service);
      },
    );

    await t.step("a second pull within expires_in reuses the token", async () => {
      issuer.reset();
      const { d, store } = await fresh();
      await using _ = d;
      await pullImage(store, `${reg.host}/${pushed.zstd!.ref}`, withCreds);
      assert.equal(issuer.count, 0);
    });

    await t.step("another scope gets its own token", async () => {
      issuer.reset();
      await using other = await tempDir();
      const store = await Store.open({ root: other.path });
      await assert.rejects(pullImage(store, `${reg.host}/library/nothere:1`, withCreds));
      assert.equal(issuer.count, 1);
      assert.deepEqual(issuer.requests[0].scopes, ["repository:library/nothere:pull"]);
    });

    await t.step("an expired token is not used: a new one is asked for", async () => {
      clearTokenCache();
      issuer.reset();
      issuer.expiresIn = 2;
      try {
        const a = await fresh();
        await using _a = a.d;
        await pullImage(a.store, name, withCreds);
        assert.equal(issuer.count, 1);
        await new Promise((r) => setTimeout(r, 2100));
        const b = await fresh();
        await using _b = b.d;
        await pullImage(b.store, name, withCreds);
        assert.equal(issuer.count, 2);
      } finally {
        issuer.expiresIn = 300;
      }
    });

    await t.step("a token the registry rejects (401) is dropped and asked for again", async () => {
      clearTokenCache();
      issuer.reset();
      issuer.spoilNext = { count: 1, kind: "expired" };
      const { d, store } = await fresh();
      await using _ = d;
      await pullImage(store, name, withCreds);
      assert.equal(issuer.count, 2);
    });

    await t.step("wrong password: the token service's 401 is one line", async () => {
      clearTokenCache();
      const { d, store } = await fresh();
      await using _ = d;
      await assert.rejects(
        pullImage(store, name, {
          credentials: () => Promise.resolve({ username: creds.username, password: "nope" }),
        }),
        (e: Error) => {
          assert.ok(e instanceof RegistryAuthError, String(e));
          assert.match(
            e.message,
            new RegExp(
              `^Cannot pull "${name}": manifest latest: ${reg.host}: unauthorized: incorrect username or password \\(token service 127\\.0\\.0\\.1:\\d+ answered 401`,
            ),
          );
          assert.ok(!e.message.includes("\n"));
          return true;
        },
      );
    });

    await t.step("anonymous pull where the issuer allows it", async () => {
      clearTokenCache();
      issuer.reset();
      issuer.anonymousPull.add("library/busybox");
      try {
        const { d, store } = await fresh();
        await using _ = d;
        await pullImage(store, name, { credentials: anonymous });
        assert.equal(issuer.count, 1);
        assert.equal(issuer.requests[0].withCredentials, false);
      } finally {
        issuer.anonymousPull.delete("library/busybox");
      }
    });

    await t.step("an identitytoken (OAuth2 refresh token) from docker's config", async () => {
      clearTokenCache();
      issuer.reset();
      await using cfg = await tempDir();
      await Deno.writeTextFile(
        `${cfg.path}/config.json`,
        JSON.stringify({
          auths: { [reg.host]: { identitytoken: issuer.issueRefreshToken(creds.username) } },
        }),
      );
      const { d, store } = await fresh();
      await using _ = d;
      await pullImage(store, name, { credentials: dockerCredentials({ configDir: cfg.path }) });
      assert.equal(issuer.count, 1);
      assert.equal(issuer.requests[0].method, "POST");
      assert.equal(issuer.requests[0].user, creds.username);
    });

    await t.step(
      "a cached token goes only to its registry, not to another naming the same realm",
      async () => {
        clearTokenCache();
        issuer.reset();
        // Another origin whose challenge names the same realm, service and scope, where the user
        // has the same name (and another password, which the issuer refuses).
        await using other = await startFaultProxy(reg.url, []);
        const elsewhere = { username: creds.username, password: "another-password" };
        const perHost = {
          credentials: (host: string) =>
            Promise.resolve(
              host === reg.host ? creds : host === other.host ? elsewhere : undefined,
            ),
        };
        const a = await fresh();
        await using _a = a.d;
        await pullImage(a.store, name, perHost);
        assert.equal(issuer.count, 1);
        const b = await fresh();
        await using _b = b.d;
        await assert.rejects(
          pullImage(b.store, `${other.host}/${pushed.oci!.ref}`, perHost),
          RegistryAuthError,
        );
        assert.equal(issuer.count, 2, "the other registry needs its own token");
        assert.ok(issuer.requests[1].withCredentials);
        assert.equal(issuer.requests[1].status, 401);
        assert.ok(other.requests.every((r) => !r.headers.authorization?.startsWith("Bearer")));
      },
    );
  },
});

Deno.test("auth: docker's config.json: auths keys, Docker Hub's key, DOCKER_CONFIG", async () => {
  await using dir = await tempDir();
  const b64 = (s: string) => btoa(s);
  await Deno.writeTextFile(
    `${dir.path}/config.json`,
    JSON.stringify({
      auths: {
        "https://index.docker.io/v1/": { auth: b64("hubuser:hubpass") },
        "http://myreg.example:5000/v2/": { auth: b64("u:p:with:colons") },
        "plain.example": { username: "plainuser", password: "plainpass" },
        "tok.example": { auth: b64("x:y"), identitytoken: "refresh" },
      },
      psFormat: "kept",
    }),
  );
  const o = { configDir: dir.path };
  for (const hub of ["docker.io", "registry-1.docker.io", "index.docker.io"]) {
    assert.deepEqual(await getCredentials(hub, o), { username: "hubuser", password: "hubpass" });
  }
  assert.deepEqual(await getCredentials("myreg.example:5000", o), {
    username: "u",
    password: "p:with:colons",
  });
  assert.deepEqual(await getCredentials("plain.example", o), {
    username: "plainuser",
    password: "plainpass",
  });
  assert.equal((await getCredentials("tok.example", o))?.identityToken, "refresh");
  assert.equal(await getCredentials("myreg.example:5001", o), undefined);
  assert.equal(credentialKey("docker.io"), "https://index.docker.io/v1/");
  assert.equal(credentialKey("https://LocalHost:5000/"), "localhost:5000");
  // DOCKER_CONFIG is where the file is looked for.
  const saved = Deno.env.get("DOCKER_CONFIG");
  Deno.env.set("DOCKER_CONFIG", dir.path);
  try {
    assert.equal((await getCredentials("docker.io"))?.username, "hubuser");
  } finally {
    if (saved === undefined) Deno.env.delete("DOCKER_CONFIG");
    else Deno.env.set("DOCKER_CONFIG", saved);
  }
  // store and erase keep the other keys, and the file stays 0600.
  await storeCredentials("new.example:1", { username: "n", password: "q" }, o);
  const doc = JSON.parse(await Deno.readTextFile(`${dir.path}/config.json`));
  assert.equal(doc.psFormat, "kept");
  assert.equal(doc.auths["new.example:1"].auth, b64("n:q"));
  assert.equal(doc.auths["plain.example"].username, "plainuser");
  assert.equal((await Deno.stat(`${dir.path}/config.json`)).mode! & 0o777, 0o600);
  assert.ok(await eraseCredentials("myreg.example:5000", o));
  const after = JSON.parse(await Deno.readTextFile(`${dir.path}/config.json`));
  assert.equal(after.auths["http://myreg.example:5000/v2/"], undefined);
  assert.equal(after.psFormat, "kept");
  assert.equal(await eraseCredentials("myreg.example:5000", o), false);
  // Malformed files are one-line errors naming the file.
  await Deno.writeTextFile(`${dir.path}/config.json`, "{oops");
  await assert.rejects(getCredentials("x.example", o), /config\.json is not valid JSON/);
});

Deno.test({
  name: "auth: credsStore and credHelpers through a real docker-credential-<name> helper",
  ignore: !ROOT,
  async fn() {
    clearTokenCache();
    await using reg = await startRegistry({ auth: "basic" });
    const pushed = await pushFixtures(reg, ["oci"]);
    await using dir = await tempDir();
    const helpers = await installHelpers(dir.path);
    const creds = reg.credentials!;
    await Deno.writeTextFile(
      `${dir.path}/secrets.json`,
      JSON.stringify({ [reg.host]: [creds.username, creds.password] }),
    );
    const cfg = `${dir.path}/docker`;
    await Deno.mkdir(cfg);
    await Deno.writeTextFile(`${cfg}/config.json`, JSON.stringify({ credsStore: "test" }));
    await using sdir = await tempDir();
    const store = await Store.open({ root: sdir.path });
    const name = `${reg.host}/${pushed.oci!.ref}`;
    await pullImage(store, name, { credentials: dockerCredentials({ configDir: cfg }) });
    assert.deepEqual(await helpers.calls(), [`docker-credential-test get ${reg.host}`]);

    // credHelpers wins over credsStore for its registry; "not found" means anonymous.
    await Deno.writeTextFile(
      `${cfg}/config.json`,
      JSON.stringify({ credsStore: "test", credHelpers: { [reg.host]: "other" } }),
    );
    assert.deepEqual(await getCredentials(reg.host, { configDir: cfg }), {
      username: creds.username,
      password: creds.password,
    });
    assert.equal((await helpers.calls()).at(-1), `docker-credential-other get ${reg.host}`);
    assert.equal(await getCredentials("elsewhere.example", { configDir: cfg }), undefined);
    assert.equal((await helpers.calls()).at(-1), "docker-credential-test get elsewhere.example");

    // A helper that is not installed: a clear error.
    await Deno.writeTextFile(`${cfg}/config.json`, JSON.stringify({ credsStore: "absent" }));
    await assert.rejects(
      getCredentials(reg.host, { configDir: cfg }),
      (e: Error) =>
        e instanceof CredentialHelperError &&
        /docker-credential-absent is not in PATH/.test(e.message),
    );
  },
});

Deno.test({
  name: "auth: berth login / logout write docker's config.json (0600, other keys kept)",
  ignore: !ROOT,
  async fn(t) {
    clearTokenCache();
    await using reg = await startRegistry({ auth: "basic" });
    const pushed = await pushFixtures(reg, ["oci"]);
    await using dir = await tempDir();
    const helpers = await installHelpers(dir.path);
    const cfg = `${dir.path}/docker`;
    await Deno.mkdir(cfg);
    const file = `${cfg}/config.json`;
    await Deno.writeTextFile(
      file,
      JSON.stringify({ auths: { "other.example": { auth: btoa("a:b") } }, detachKeys: "ctrl-x" }),
    );
    const env = { DOCKER_CONFIG: cfg, PATH: `${helpers.bin}:${Deno.env.get("PATH")}` };
    const root = `${dir.path}/store`;
    const creds = reg.credentials!;

    await t.step("wrong password: refused, the file untouched", async () => {
      const before = await Deno.readTextFile(file);
      const r = await berth(root, ["login", "-u", creds.username, "--password-stdin", reg.host], {
        stdin: enc.encode("wrong\n"),
        env,
      });
      assert.equal(r.code, 125, r.stdout + r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `^Error: Cannot log in to ${reg.host}: unauthorized: incorrect username or password`,
        ),
      );
      assert.equal(r.stderr.trim().split("\n").length, 1);
      assert.equal(await Deno.readTextFile(file), before);
    });

    await t.step("login: verified, saved as docker does", async () => {
      const r = await berth(root, ["login", "-u", creds.username, "--password-stdin", reg.host], {
        stdin: enc.encode(`${creds.password}\n`),
        env,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "Login Succeeded\n");
      assert.match(r.stderr, /WARNING! Your password will be stored unencrypted in .*config\.json/);
      const doc = JSON.parse(await Deno.readTextFile(file));
      assert.equal(doc.auths[reg.host].auth, btoa(`${creds.username}:${creds.password}`));
      assert.equal(doc.auths["other.example"].auth, btoa("a:b"));
      assert.equal(doc.detachKeys, "ctrl-x");
      assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
      assert.match(await Deno.readTextFile(file), /^\{\n\t"auths"/);
    });

    await t.step("pull with the saved credentials; login again reuses them", async () => {
      const r = await berth(root, ["pull", "-q", `${reg.host}/${pushed.oci!.ref}`], { env });
      assert.equal(r.code, 0, r.stderr);
      const again = await berth(root, ["login", reg.host], { env });
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, "Authenticating with existing credentials...\nLogin Succeeded\n");
    });

    await t.step("logout, twice", async () => {
      const r = await berth(root, ["logout", reg.host], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `Removing login credentials for ${reg.host}\n`);
      const doc = JSON.parse(await Deno.readTextFile(file));
      assert.equal(doc.auths[reg.host], undefined);
      assert.equal(doc.detachKeys, "ctrl-x");
      const again = await berth(root, ["logout", reg.host], { env });
      assert.equal(again.stdout, `Not logged in to ${reg.host}\n`);
    });

    await t.step("no terminal and no -u: docker's error", async () => {
      const r = await berth(root, ["login", reg.host], { env });
      assert.equal(r.code, 125);
      assert.match(r.stderr, /Cannot perform an interactive login from a non TTY device/);
    });

    await t.step(
      "with credsStore: the secret goes to the helper, auths gets an empty entry",
      async () => {
        await Deno.writeTextFile(file, JSON.stringify({ credsStore: "test" }));
        const r = await berth(
          root,
          ["login", "-u", creds.username, "-p", creds.password, reg.host],
          { env },
        );
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /Using --password via the CLI is insecure/);
        assert.doesNotMatch(r.stderr, /stored unencrypted/);
        const doc = JSON.parse(await Deno.readTextFile(file));
        assert.deepEqual(doc.auths, { [reg.host]: {} });
        const secrets = JSON.parse(await Deno.readTextFile(`${dir.path}/secrets.json`));
        assert.deepEqual(secrets[reg.host], [creds.username, creds.password]);
        const out = await berth(root, ["logout", reg.host], { env });
        assert.equal(out.stdout, `Removing login credentials for ${reg.host}\n`);
        assert.deepEqual(JSON.parse(await Deno.readTextFile(`${dir.path}/secrets.json`)), {});
      },
    );
  },
});

Deno.test({
  name: "auth: berth login against a token-auth registry",
  ignore: !ROOT,
  async fn() {
    await using reg = await startRegistry({ auth: "token" });
    await using dir = await tempDir();
    const env = { DOCKER_CONFIG: dir.path };
    const creds = reg.credentials!;
    const ok = await berth(`${dir.path}/store`, [
      "login",
      "--username",
      creds.username,
      "--password-stdin",
      reg.host,
    ], { stdin: enc.encode(creds.password), env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, "Login Succeeded\n");
    const bad = await berth(`${dir.path}/store`, [
      "login",
      "-u",
      creds.username,
      "--password-stdin",
      reg.host,
    ], { stdin: enc.encode("nope"), env });
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /unauthorized: incorrect username or password/);
    assert.equal(bad.stderr.trim().split("\n").length, 1);
  },
});
