// serve() in real child processes on real sockets: node handlers, Express,
// Hono and bare fetch handlers; identity verification; streaming; the
// listen modes; graceful shutdown.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import {
  currentUser,
  parseDevUser,
  instance,
  IdentityError,
  VerifyError,
  GUEST,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  DEFAULT_DEV_PORT,
  MAX_SKEW_SECONDS,
} from "@processman/sidecar";
import { FIXTURE, REPO_ROOT, json, killAll, request, signedHeaders, spawnWatched, startSidecar, tempDir } from "./helpers.js";

after(killAll);

const USER = { id: "k3v1t9x2m8q4z7a", collection: "users", superuser: false };

function signed(sidecar, method, target, identity = USER, extra = {}) {
  return { ...signedHeaders(sidecar.secret, method, target, identity), ...extra };
}

/** Waits until the stream has `n` chunks, then gives the arrival times (ms). */
function assertChunksApart(response, n, gapMs) {
  const lines = response.body.split("\n").filter(Boolean);
  assert.deepEqual(lines, Array.from({ length: n }, (_, i) => `chunk ${i}`), response.body);
  assert.ok(response.chunks.length >= n, `${n} chunks written ${gapMs} ms apart arrived in ${response.chunks.length} reads`);
  const spread = response.chunks.at(-1).at - response.chunks[0].at;
  assert.ok(spread >= 0.5 * gapMs * (n - 1), `chunks arrived within ${spread} ms: buffered (${JSON.stringify(response.chunks)})`);
}

for (const kind of ["node", "express", "hono", "fetch"]) {
  describe(`${kind} handler on a Unix socket`, () => {
    let sidecar;
    before(async () => {
      sidecar = await startSidecar(kind);
    });

    test("prints the ready line and listens on PB_SOCKET", () => {
      assert.match(sidecar.output(), new RegExp(`processman: ready on unix:${sidecar.socketPath}`));
      assert.ok(fs.lstatSync(sidecar.socketPath).isSocket());
    });

    test("a signed request reaches the handler with the caller", async () => {
      const target = "/whoami?x=%2F&y=1";
      const r = await request(sidecar.target, {
        path: target,
        headers: signed(sidecar, "GET", target, USER, { Authorization: "Bearer the-token" }),
      });
      assert.equal(r.status, 200, r.body);
      const body = json(r);
      assert.deepEqual(body.user, { ...USER, token: "the-token" });
      assert.equal(body.path, target);
      if (kind === "hono" || kind === "fetch") assert.deepEqual(body.envUser, body.user);
    });

    test("a superuser and a guest", async () => {
      const su = { id: "s9u8p7e6r5u4s3r", collection: "_superusers", superuser: true };
      let r = await request(sidecar.target, { path: "/whoami", headers: signed(sidecar, "GET", "/whoami", su, { Authorization: "tok" }) });
      assert.deepEqual(json(r).user, { ...su, token: "tok" });
      // A guest's Authorization header is no token of anyone's.
      r = await request(sidecar.target, { path: "/whoami", headers: signed(sidecar, "GET", "/whoami", {}, { Authorization: "junk" }) });
      assert.deepEqual(json(r).user, { id: "", collection: "", superuser: false, token: "" });
    });

    test("unsigned, forged, tampered and expired requests get a 401 in PocketBase's format", async () => {
      const cases = {
        "no proof": { "X-PB-Auth-Id": USER.id, "X-PB-Auth-Collection": "users", "X-PB-Auth-Superuser": "false" },
        "forged proof": { ...signed(sidecar, "GET", "/whoami"), "X-PB-Gateway-Proof": "00".repeat(32) },
        "id changed after signing": { ...signed(sidecar, "GET", "/whoami"), "X-PB-Auth-Id": "someone-else" },
        "signed for another path": signed(sidecar, "GET", "/other"),
        "signed with another secret": signedHeaders("ff".repeat(32), "GET", "/whoami", USER),
        expired: signedHeaders(sidecar.secret, "GET", "/whoami", USER, Math.floor(Date.now() / 1000) - 300),
      };
      for (const [name, headers] of Object.entries(cases)) {
        const r = await request(sidecar.target, { path: "/whoami", headers });
        assert.equal(r.status, 401, `${name}: ${r.body}`);
        const body = json(r);
        assert.equal(body.status, 401, name);
        assert.ok(typeof body.message === "string" && body.message.length > 0, name);
        assert.deepEqual(body.data, {}, name);
        assert.match(r.headers["content-type"], /application\/json/);
      }
    });

    test("a header sent twice is refused even with a valid proof", async () => {
      const headers = Object.entries(signed(sidecar, "GET", "/whoami"));
      const send = (extra) =>
        rawRequest(sidecar.target, [
          "GET /whoami HTTP/1.1",
          "Host: sidecar",
          "Connection: close",
          ...[...headers, ...extra].map(([name, value]) => `${name}: ${value}`),
        ]);
      // The same request without the repeat is accepted: the repeat alone is refused.
      assert.match(await send([]), /^HTTP\/1\.1 200 /);
      assert.match(await send([["x-pb-auth-id", USER.id]]), /^HTTP\/1\.1 401 /);
      assert.match(await send([["X-PB-Gateway-Time", headers[3][1]]]), /^HTTP\/1\.1 401 /);
    });

    test("a request body streams to the handler and back", async () => {
      const body = Buffer.alloc(3 * 1024 * 1024, "abc");
      const r = await request(sidecar.target, { method: "POST", path: "/echo", headers: signed(sidecar, "POST", "/echo"), body });
      assert.equal(r.status, 200);
      assert.equal(r.body.length, body.length);
      assert.equal(r.body, body.toString());
    });

    test("a streamed answer arrives chunk by chunk", async () => {
      const target = "/stream?n=5&gap=250";
      const r = await request(sidecar.target, { path: target, headers: signed(sidecar, "GET", target) });
      assert.equal(r.status, 200);
      assert.equal(r.headers["content-length"], undefined);
      assertChunksApart(r, 5, 250);
    });

    if (kind === "hono" || kind === "fetch") {
      test("a client going away cancels the response body and aborts request.signal", async () => {
        const target = "/forever?gap=50";
        await new Promise((resolve, reject) => {
          const req = http.request({ ...sidecar.target, path: target, headers: signed(sidecar, "GET", target) }, (res) => {
            res.once("data", () => {
              req.destroy();
              resolve();
            });
          });
          req.on("error", () => {});
          req.on("close", resolve);
          req.setTimeout(10000, () => reject(new Error("no first chunk")));
          req.end();
        });
        await sidecar.waitFor(/stream cancelled: \/forever/, 10000);
        await sidecar.waitFor(/request signal aborted/, 10000);
      });

      test("a client that leaves before the handler answers: the late body is cancelled at once", async () => {
        const target = "/slow-start?delay=600";
        const req = http.request({ ...sidecar.target, path: target, headers: signed(sidecar, "GET", target) });
        req.on("error", () => {});
        req.end();
        setTimeout(() => req.destroy(), 150);
        await sidecar.waitFor(/stream cancelled: \/slow-start/, 10000);
      });
    }

    test("SIGTERM during an open stream: the stream finishes, the socket file is removed, exit 0", async () => {
      const target = "/stream?n=8&gap=200";
      let signalled = false;
      const pending = request(sidecar.target, {
        path: target,
        headers: signed(sidecar, "GET", target),
        onChunk: () => {
          if (!signalled) {
            signalled = true;
            sidecar.child.kill("SIGTERM");
          }
        },
      });
      const r = await pending;
      assert.ok(signalled);
      assert.equal(r.complete, true, "the stream was cut");
      assertChunksApart(r, 8, 200);
      const exit = await sidecar.exited;
      assert.deepEqual(exit, { code: 0, signal: null }, sidecar.output());
      assert.equal(fs.existsSync(sidecar.socketPath), false, "the socket file is still there");
      assert.match(sidecar.output(), /closing signalled/);
    });
  });
}

describe("shutdown", () => {
  for (const [how, env] of [
    ["the shutdownTimeout option", { TEST_SHUTDOWN_TIMEOUT: "1000" }],
    ["PROCESSMAN_SHUTDOWN_TIMEOUT", { PROCESSMAN_SHUTDOWN_TIMEOUT: "1" }],
  ])
  test(`new connections are refused once SIGTERM arrives; an endless stream is closed after ${how}`, async () => {
    const sidecar = await startSidecar("hono", { env });
    const target = "/forever?gap=100";
    let signalledAt = 0;
    const pending = request(sidecar.target, {
      path: target,
      headers: signed(sidecar, "GET", target),
      onChunk: () => {
        if (!signalledAt) {
          signalledAt = performance.now();
          sidecar.child.kill("SIGTERM");
        }
      },
    });
    await sidecar.waitFor(/SIGTERM: finishing open requests/);
    await assert.rejects(request(sidecar.target, { path: "/whoami", headers: signed(sidecar, "GET", "/whoami") }), /ECONNREFUSED|ENOENT/);
    const r = await pending;
    const closedAfter = performance.now() - signalledAt;
    assert.ok(r.chunks.length >= 3, `the stream went on during the grace period: ${r.chunks.length} chunks`);
    assert.ok(closedAfter >= 800 && closedAfter < 4000, `closed ${closedAfter} ms after SIGTERM (timeout 1000 ms)`);
    assert.deepEqual(await sidecar.exited, { code: 0, signal: null }, sidecar.output());
    assert.equal(fs.existsSync(sidecar.socketPath), false);
  });

  test("an idle process exits at once on SIGTERM", async () => {
    const sidecar = await startSidecar("node");
    // A keep-alive connection left open must not hold the exit.
    const agent = new http.Agent({ keepAlive: true });
    const r = await new Promise((resolve, reject) => {
      http
        .get({ ...sidecar.target, agent, path: "/whoami", headers: signed(sidecar, "GET", "/whoami") }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode));
        })
        .on("error", reject);
    });
    assert.equal(r, 200);
    const started = performance.now();
    sidecar.child.kill("SIGTERM");
    assert.deepEqual(await sidecar.exited, { code: 0, signal: null });
    const took = performance.now() - started;
    agent.destroy();
    assert.ok(took < 2500, `took ${took} ms to exit`);
  });
});

describe("the socket file", () => {
  test("a stale socket file from a killed process is replaced", async () => {
    const dir = tempDir();
    const socketPath = path.join(dir, "stale.sock");
    // A process that listens on the path and is killed leaves the file behind.
    const holder = spawnWatched(process.execPath, [
      "-e",
      `require("net").createServer().listen(${JSON.stringify(socketPath)}, () => console.log("listening"))`,
    ]);
    await holder.waitFor(/listening/);
    holder.child.kill("SIGKILL");
    await holder.exited;
    assert.ok(fs.lstatSync(socketPath).isSocket(), "the stale socket file should exist");
    await assert.rejects(
      new Promise((resolve, reject) => net.connect(socketPath).on("connect", resolve).on("error", reject)),
      /ECONNREFUSED/,
    );
    const sidecar = await startSidecar("node", { socketPath });
    const r = await request(sidecar.target, { path: "/whoami", headers: signed(sidecar, "GET", "/whoami") });
    assert.equal(r.status, 200);
    sidecar.child.kill("SIGTERM");
    await sidecar.exited;
  });

  test("a socket another process listens on is not taken over", async () => {
    const first = await startSidecar("node");
    const proc = spawnWatched(process.execPath, [FIXTURE, "node"], {
      env: { ...process.env, PB_SOCKET: first.socketPath, PB_GATEWAY_SECRET: "ab".repeat(32) },
    });
    const exit = await proc.exited;
    assert.notEqual(exit.code, 0);
    assert.match(proc.output(), /another process is listening on .*; stop it first/);
    const r = await request(first.target, { path: "/whoami", headers: signed(first, "GET", "/whoami") });
    assert.equal(r.status, 200, "the first one still serves");
    first.child.kill("SIGTERM");
    await first.exited;
  });

  test("a regular file at PB_SOCKET is not deleted; the process says why and exits", async () => {
    const dir = tempDir();
    const socketPath = path.join(dir, "not-a-socket");
    fs.writeFileSync(socketPath, "keep me");
    const proc = spawnWatched(process.execPath, [FIXTURE, "node"], {
      env: { ...process.env, PB_SOCKET: socketPath, PB_GATEWAY_SECRET: "ab".repeat(32) },
    });
    const exit = await proc.exited;
    assert.notEqual(exit.code, 0);
    assert.match(proc.output(), /exists and is not a socket/);
    assert.equal(fs.readFileSync(socketPath, "utf8"), "keep me");
  });
});

describe("upgrades (WebSocket)", () => {
  function upgrade(sidecar, headers) {
    return new Promise((resolve, reject) => {
      const req = http.request({
        ...sidecar.target,
        path: "/ws",
        headers: { Connection: "Upgrade", Upgrade: "echo", ...headers },
      });
      req.on("upgrade", (res, socket) => {
        socket.write("ping");
        socket.once("data", (data) => {
          socket.destroy();
          resolve({ status: res.statusCode, user: res.headers["x-user-id"], echo: data.toString() });
        });
      });
      req.on("response", (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode, body }));
      });
      req.on("error", reject);
      req.end();
    });
  }

  test("a signed upgrade reaches the upgrade listener with the caller; an unsigned one gets 401", async () => {
    const sidecar = await startSidecar("node");
    const ok = await upgrade(sidecar, signed(sidecar, "GET", "/ws"));
    assert.deepEqual(ok, { status: 101, user: USER.id, echo: "ping" });
    const refused = await upgrade(sidecar, { "X-PB-Auth-Id": USER.id });
    assert.equal(refused.status, 401);
    assert.equal(JSON.parse(refused.body).status, 401);
    const forged = await upgrade(sidecar, { ...signed(sidecar, "GET", "/ws"), "X-PB-Auth-Id": "other" });
    assert.equal(forged.status, 401);
    sidecar.child.kill("SIGTERM");
    await sidecar.exited;
  });
});

describe("listen: tcp and development mode", () => {
  test("with PORT and a secret: 127.0.0.1:PORT, verified (PB_PORT is PocketBase's)", async () => {
    const sidecar = await startSidecar("express", { mode: "tcp" });
    assert.match(sidecar.output(), new RegExp(`ready on http://127\\.0\\.0\\.1:${sidecar.port}`));
    let r = await request(sidecar.target, { path: "/whoami", headers: signed(sidecar, "GET", "/whoami") });
    assert.equal(r.status, 200);
    assert.equal(json(r).user.id, USER.id);
    r = await request(sidecar.target, { path: "/whoami", headers: { "X-PB-Auth-Id": USER.id } });
    assert.equal(r.status, 401);
    sidecar.child.kill("SIGTERM");
    await sidecar.exited;
  });

  test("without the gateway: a banner, PORT, and every caller a guest whatever X-PB- headers say", async () => {
    const sidecar = await startSidecar("hono", { mode: "dev" });
    assert.match(sidecar.output(), /development mode: .*every request is a guest/);
    assert.match(sidecar.output(), new RegExp(`ready on http://127\\.0\\.0\\.1:${sidecar.port}`));
    const r = await request(sidecar.target, {
      path: "/whoami",
      headers: { ...signedHeaders("ab".repeat(32), "GET", "/whoami", { id: "x", collection: "_superusers", superuser: true }), Authorization: "tok" },
    });
    assert.equal(r.status, 200);
    assert.deepEqual(json(r).user, { id: "", collection: "", superuser: false, token: "" });
    sidecar.child.kill("SIGINT");
    assert.deepEqual(await sidecar.exited, { code: 0, signal: null });
  });

  test("devUser with a user object: every request acts as that user", async () => {
    const devUser = { id: "dev123", collection: "users", token: "dev-token" };
    const sidecar = await startSidecar("express", { mode: "dev", env: { TEST_DEV_USER: JSON.stringify(devUser) } });
    assert.match(sidecar.output(), /every request is users\/dev123/);
    const r = await request(sidecar.target, { path: "/whoami", headers: { "X-PB-Auth-Id": "someone-else" } });
    assert.deepEqual(json(r).user, { ...devUser, superuser: false });
    sidecar.child.kill("SIGTERM");
    await sidecar.exited;
  });

  test("PROCESSMAN_DEV_USER names the user; it carries the request's token", async () => {
    const sidecar = await startSidecar("node", { mode: "dev", env: { PROCESSMAN_DEV_USER: "members/m1" } });
    assert.match(sidecar.output(), /every request is members\/m1/);
    const r = await request(sidecar.target, { path: "/whoami", headers: { Authorization: "Bearer tok" } });
    assert.deepEqual(json(r).user, { id: "m1", collection: "members", superuser: false, token: "tok" });
    sidecar.child.kill("SIGTERM");
    await sidecar.exited;
  });

  test("the former devAuth option still works", async () => {
    const sidecar = await startSidecar("node", { mode: "dev", env: { TEST_DEV_AUTH: "guest" } });
    assert.match(sidecar.output(), /every request is a guest/);
    sidecar.child.kill("SIGTERM");
    await sidecar.exited;
  });

  test("PB_SOCKET without PB_GATEWAY_SECRET refuses every request", async () => {
    const dir = tempDir();
    const socketPath = path.join(dir, "s.sock");
    const env = { ...process.env, PB_SOCKET: socketPath };
    delete env.PB_GATEWAY_SECRET;
    const proc = spawnWatched(process.execPath, [FIXTURE, "node"], { env });
    await proc.waitFor(/ready on unix:/);
    assert.match(proc.output(), /PB_GATEWAY_SECRET is not set/);
    const r = await request({ socketPath }, { path: "/whoami", headers: signedHeaders("", "GET", "/whoami", USER) });
    assert.equal(r.status, 401);
    proc.child.kill("SIGTERM");
    await proc.exited;
  });
});

describe("currentUser()", () => {
  for (const kind of ["node", "hono"]) {
    test(`${kind}: the caller, deep in a call after awaits`, async () => {
      const sidecar = await startSidecar(kind);
      const r = await request(sidecar.target, { path: "/current", headers: signed(sidecar, "GET", "/current") });
      assert.equal(r.status, 200, r.body);
      assert.equal(json(r).user.id, USER.id);
      sidecar.child.kill("SIGTERM");
      await sidecar.exited;
    });
  }

  test("outside a request it throws, naming serve()", () => {
    assert.throws(() => currentUser(), /outside a request handled by serve\(\)/);
  });
});

test("allowUnsigned: the listed paths take unsigned requests as guests; a bad proof is still refused", async () => {
  const sidecar = await startSidecar("node", { env: { TEST_ALLOW_UNSIGNED: "/health" } });
  let r = await request(sidecar.target, { path: "/health" });
  assert.equal(r.status, 200, r.body);
  assert.deepEqual(json(r).user, GUEST);
  r = await request(sidecar.target, { path: "/health?x=1" });
  assert.equal(r.status, 200, "the query does not matter");
  r = await request(sidecar.target, { path: "/whoami" });
  assert.equal(r.status, 401, "other paths still need a proof");
  r = await request(sidecar.target, { path: "/health", headers: { ...signed(sidecar, "GET", "/health"), "X-PB-Auth-Id": "forged" } });
  assert.equal(r.status, 401, "a proof that is sent is checked");
  sidecar.child.kill("SIGTERM");
  await sidecar.exited;
});

test("the shared defaults and refusal messages (testdata/sidecar-sdk.json)", async () => {
  const shared = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "testdata", "sidecar-sdk.json"), "utf8"));
  assert.equal(DEFAULT_SHUTDOWN_TIMEOUT_MS, shared.shutdown_timeout_seconds * 1000);
  assert.equal(MAX_SKEW_SECONDS, shared.max_skew_seconds);
  assert.equal(DEFAULT_DEV_PORT, shared.dev_port.node);
  for (const [code, message] of Object.entries(shared.identity_errors)) {
    assert.equal(new IdentityError(code).message, message);
  }
  assert.equal(VerifyError, IdentityError, "the former name is an alias");
  for (const c of shared.dev_user) {
    if (c.error) {
      assert.throws(() => parseDevUser(c.spec), /PROCESSMAN_DEV_USER/, JSON.stringify(c.spec));
    } else if (c.pocketbase) {
      assert.equal(parseDevUser(c.spec), "pocketbase");
    } else {
      const { id, collection, superuser } = parseDevUser(c.spec);
      assert.deepEqual({ id, collection, superuser }, c.user, JSON.stringify(c.spec));
    }
  }
  for (const c of shared.instance) {
    if (c.error) {
      assert.throws(() => instance(c.env), /PB_INSTANCE/, JSON.stringify(c.env));
    } else {
      assert.equal(instance(c.env), c.instance, JSON.stringify(c.env));
    }
  }
  // an unsigned request is refused with the shared message
  const sidecar = await startSidecar("node");
  const r = await request(sidecar.target, { path: "/whoami" });
  assert.equal(json(r).message, shared.identity_errors.missing);
  sidecar.child.kill("SIGTERM");
  await sidecar.exited;
});

test("a handler that throws answers 500 in PocketBase's format", async () => {
  const dir = tempDir();
  const script = path.join(path.dirname(FIXTURE), "throws.mjs");
  const socketPath = path.join(dir, "t.sock");
  const secret = "ab".repeat(32);
  const proc = spawnWatched(process.execPath, [script], { env: { ...process.env, PB_SOCKET: socketPath, PB_GATEWAY_SECRET: secret }, cwd: dir });
  await proc.waitFor(/ready on/);
  const r = await request({ socketPath }, { path: "/", headers: signedHeaders(secret, "GET", "/", USER) });
  assert.equal(r.status, 500);
  assert.equal(json(r).status, 500);
  assert.match(proc.output(), /boom/);
  proc.child.kill("SIGTERM");
  await proc.exited;
});

/** Sends a request exactly as written (header lines, repeats and all); resolves with the raw answer. */
function rawRequest(target, lines) {
  return new Promise((resolve, reject) => {
    const socket = target.socketPath ? net.connect(target.socketPath) : net.connect(target.port, target.host);
    let answer = "";
    socket.on("data", (data) => (answer += data));
    socket.on("end", () => resolve(answer));
    socket.on("error", reject);
    socket.write(lines.join("\r\n") + "\r\n\r\n");
  });
}
