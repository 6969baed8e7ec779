/**
 * Redirects followed by the registry client's `send`: a POST becomes a body-less GET on 301/302/303,
 * 307/308 keep it on the same origin, and neither a body (an OAuth2 refresh token) nor
 * `Authorization` ever reaches another origin. Two `Deno.serve` servers on loopback, no registry.
 */
import assert from "node:assert/strict";
import { send } from "../core/transport/remote/http.ts";
import { fetchToken } from "../core/transport/remote/auth.ts";
import { RegistryError } from "../core/transport/remote/errors.ts";

interface Seen {
  method: string;
  path: string;
  body: string;
  authorization: string | null;
  contentType: string | null;
}

/** A loopback server recording what it gets; `answer` decides the response (default 200). */
function server(answer: (req: Request, url: URL) => Response | undefined = () => undefined) {
  const seen: Seen[] = [];
  const srv = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    seen.push({
      method: req.method,
      path: url.pathname,
      body: await req.text(),
      authorization: req.headers.get("authorization"),
      contentType: req.headers.get("content-type"),
    });
    return answer(req, url) ?? Response.json({ token: "t0k3n", expires_in: 60 });
  });
  return {
    seen,
    url: `http://127.0.0.1:${srv.addr.port}`,
    [Symbol.asyncDispose]: () => srv.shutdown(),
  };
}

const redirect = (status: number, location: string) =>
  new Response(null, { status, headers: { location } });

Deno.test("redirects: a POST is not carried to another origin", async (t) => {
  await using other = server();
  for (const status of [307, 308]) {
    await t.step(`${status} to another origin: refused, nothing sent there`, async () => {
      other.seen.length = 0;
      await using realm = server(() => redirect(status, `${other.url}/token`));
      await assert.rejects(
        send(`${realm.url}/token`, {
          method: "POST",
          headers: { authorization: "Bearer secret", "content-type": "text/plain" },
          body: "refresh_token=secret",
          what: "x",
        }),
        (e: Error) => {
          assert.ok(e instanceof RegistryError, String(e));
          assert.match(
            e.message,
            new RegExp(`^x: 127\\.0\\.0\\.1:\\d+ answered ${status} to a POST`),
          );
          assert.ok(!e.message.includes("\n"));
          return true;
        },
      );
      assert.deepEqual(other.seen, []);
    });
  }

  for (const status of [301, 302, 303]) {
    await t.step(`${status}: the POST becomes a GET without body or credentials`, async () => {
      other.seen.length = 0;
      await using realm = server(() => redirect(status, `${other.url}/token`));
      const ex = await send(`${realm.url}/token`, {
        method: "POST",
        headers: { authorization: "Bearer secret", "content-type": "text/plain" },
        body: "refresh_token=secret",
      });
      await ex.cancel();
      assert.equal(ex.response.status, 200);
      assert.deepEqual(other.seen, [
        { method: "GET", path: "/token", body: "", authorization: null, contentType: null },
      ]);
    });
  }

  await t.step("307 on the same origin keeps method, body and credentials", async () => {
    await using realm = server((_, url) =>
      url.pathname === "/old" ? redirect(307, "/new") : undefined
    );
    const ex = await send(`${realm.url}/old`, {
      method: "POST",
      headers: { authorization: "Bearer secret", "content-type": "text/plain" },
      body: "a=b",
    });
    await ex.cancel();
    assert.deepEqual(realm.seen[1], {
      method: "POST",
      path: "/new",
      body: "a=b",
      authorization: "Bearer secret",
      contentType: "text/plain",
    });
  });

  await t.step(
    "a realm redirecting the refresh-token POST elsewhere gets nothing out",
    async () => {
      other.seen.length = 0;
      await using realm = server(() => redirect(307, `${other.url}/steal`));
      await assert.rejects(
        fetchToken(
          { scheme: "bearer", params: { realm: `${realm.url}/token`, service: "s" } },
          "repository:a:pull",
          { identityToken: "refresh-secret" },
          { what: "Cannot pull", host: "reg" },
        ),
        /redirect to another origin/,
      );
      assert.ok(realm.seen[0].body.includes("refresh_token=refresh-secret"));
      assert.deepEqual(other.seen, []);
    },
  );
});
