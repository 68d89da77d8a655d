// pocketbaseFor() and the development user "pocketbase" against a real PocketBase
// (this repository's bin/pocketbase, built here) with the examples'
// `notes` collection, whose API rules keep users to their own notes.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { getUser, pocketbaseFor, userFromToken } from "@processman/sidecar";
import { REPO_ROOT, freePort, json, killAll, request, signedHeaders, spawnWatched, startSidecar, tempDir } from "./helpers.js";

after(killAll);

const PASSWORD = "1234567890";
let pbURL;
let alice;
let bob;

/** bin/pocketbase, built from this repository unless POCKETBASE_BIN names one. */
function pocketbaseBinary() {
  if (process.env.POCKETBASE_BIN) return process.env.POCKETBASE_BIN;
  const bin = path.join(REPO_ROOT, "bin", "pocketbase");
  try {
    execFileSync("go", ["build", "-o", bin, "./cmd/pocketbase"], { cwd: REPO_ROOT, stdio: "pipe", timeout: 15 * 60 * 1000 });
  } catch (err) {
    throw new Error(
      `building PocketBase failed (cd ${REPO_ROOT} && go build -o bin/pocketbase ./cmd/pocketbase), ` +
        `or set POCKETBASE_BIN to a built binary:\n${err.stderr ?? err.message}`,
    );
  }
  return bin;
}

async function api(method, urlPath, { body, token } = {}) {
  const response = await fetch(pbURL + urlPath, {
    method,
    headers: { "content-type": "application/json", ...(token ? { Authorization: token } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json().catch(() => null) };
}

async function createUser(name) {
  const email = `${name}-${Date.now()}@example.com`;
  const created = await api("POST", "/api/collections/users/records", {
    body: { email, password: PASSWORD, passwordConfirm: PASSWORD },
  });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  const auth = await api("POST", "/api/collections/users/auth-with-password", { body: { identity: email, password: PASSWORD } });
  assert.equal(auth.status, 200, JSON.stringify(auth.body));
  return { id: created.body.id, collection: "users", superuser: false, token: auth.body.token };
}

before(async () => {
  const binary = pocketbaseBinary();
  const dir = tempDir("sidecar-pb-");
  const port = await freePort();
  pbURL = `http://127.0.0.1:${port}`;
  const pb = spawnWatched(
    binary,
    ["serve", "--dir", path.join(dir, "pb_data"), "--http", `127.0.0.1:${port}`, "--migrationsDir", path.join(REPO_ROOT, "examples", "pb_migrations")],
    { cwd: dir },
  );
  const deadline = Date.now() + 30000;
  for (;;) {
    try {
      if ((await fetch(`${pbURL}/api/health`)).ok) break;
    } catch {
      // not listening yet
    }
    if (pb.child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`PocketBase did not answer /api/health:\n${pb.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(fs.existsSync(path.join(dir, "pb_data")));
  alice = await createUser("alice");
  bob = await createUser("bob");
});

describe("pocketbaseFor in a sidecar behind the gateway", () => {
  let sidecar;
  before(async () => {
    sidecar = await startSidecar("hono", { env: { PB_URL: pbURL } });
  });

  const call = (method, target, user, body) =>
    request(sidecar.target, {
      method,
      path: target,
      headers: {
        ...signedHeaders(sidecar.secret, method, target, user),
        ...(user.token ? { Authorization: user.token } : {}),
        "content-type": "application/json",
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  test("a note created through the sidecar belongs to the caller", async () => {
    const r = await call("POST", "/notes", alice, { text: "from alice" });
    assert.equal(r.status, 200, r.body);
    const note = json(r);
    assert.equal(note.owner, alice.id);
    assert.equal(note.source, "sdk-test");
    // PocketBase itself, asked as each user.
    const own = await api("GET", `/api/collections/notes/records/${note.id}`, { token: alice.token });
    assert.equal(own.status, 200);
    const other = await api("GET", `/api/collections/notes/records/${note.id}`, { token: bob.token });
    assert.equal(other.status, 404);
  });

  test("each caller sees only their own notes through the sidecar", async () => {
    await call("POST", "/notes", bob, { text: "from bob" });
    const forAlice = json(await call("GET", "/notes", alice));
    const forBob = json(await call("GET", "/notes", bob));
    assert.deepEqual(forAlice.map((n) => n.text), ["from alice"]);
    assert.deepEqual(forBob.map((n) => n.text), ["from bob"]);
  });

  test("the client of a guest is a guest: PocketBase's rules refuse it", async () => {
    const r = await call("POST", "/notes", { id: "", collection: "", superuser: false }, { text: "anonymous" });
    assert.ok(r.status >= 400 && r.status < 500, `status ${r.status}: ${r.body}`);
    const list = json(await call("GET", "/notes", { id: "", collection: "", superuser: false }));
    assert.deepEqual(list, []);
  });

  test("a signed id that does not match the token changes nothing: PocketBase goes by the token", async () => {
    // The gateway never signs such a pair; should one appear, the token decides.
    const r = await call("GET", "/notes", { ...alice, token: bob.token });
    assert.deepEqual(json(r).map((n) => n.text), ["from bob"]);
  });
});

describe("pocketbaseFor in this process", () => {
  test("takes a user and sets the token, with auto-cancellation off", async () => {
    const pb = pocketbaseFor(alice, { url: pbURL });
    assert.equal(pb.authStore.token, alice.token);
    assert.equal(pb.authStore.record.id, alice.id);
    assert.equal(pb.authStore.isSuperuser, false);
    // Concurrent identical calls all complete (the SDK's default would cancel all but one).
    const results = await Promise.all([1, 2, 3].map(() => pb.collection("notes").getFullList()));
    for (const notes of results) assert.deepEqual(notes.map((n) => n.text), ["from alice"]);
  });

  test("says what to do when PB_URL is missing", () => {
    const saved = process.env.PB_URL;
    delete process.env.PB_URL;
    try {
      assert.throws(() => pocketbaseFor(alice), /PB_URL is not set/);
    } finally {
      if (saved !== undefined) process.env.PB_URL = saved;
    }
  });

  test("refuses a request that serve() did not accept", () => {
    assert.throws(() => pocketbaseFor(new Request("http://localhost/")), /did not come through serve\(\)/);
    assert.throws(() => getUser({}), TypeError);
  });

  test("userFromToken asks PocketBase", async () => {
    assert.deepEqual(await userFromToken(alice.token, { url: pbURL }), alice);
    assert.equal(await userFromToken("not-a-token", { url: pbURL }), null);
    const [head, , sig] = alice.token.split(".");
    const forged = Buffer.from(JSON.stringify({ id: bob.id, collectionId: "_pb_users_auth_", type: "auth", exp: 9999999999 })).toString("base64url");
    assert.equal(await userFromToken(`${head}.${forged}.${sig}`, { url: pbURL }), null);
  });
});

describe("development mode with PROCESSMAN_DEV_USER=pocketbase", () => {
  let sidecar;
  before(async () => {
    sidecar = await startSidecar("hono", { mode: "dev", env: { PB_URL: pbURL, PROCESSMAN_DEV_USER: "pocketbase" } });
  });

  test("the banner says who callers are", () => {
    assert.match(sidecar.output(), /development mode: .*PocketBase at http:\/\/127\.0\.0\.1/);
  });

  test("a caller is who PocketBase says the token belongs to; X-PB- headers are ignored", async () => {
    let r = await request(sidecar.target, { path: "/whoami", headers: { Authorization: `Bearer ${alice.token}` } });
    assert.deepEqual(json(r).user, alice);
    r = await request(sidecar.target, {
      path: "/whoami",
      headers: { ...signedHeaders("ab".repeat(32), "GET", "/whoami", { id: bob.id, collection: "users" }), Authorization: "junk" },
    });
    assert.deepEqual(json(r).user, { id: "", collection: "", superuser: false, token: "" });
  });

  test("notes written in development mode belong to the token's user", async () => {
    const r = await request(sidecar.target, {
      method: "POST",
      path: "/notes",
      headers: { Authorization: bob.token, "content-type": "application/json" },
      body: JSON.stringify({ text: "bob in dev mode" }),
    });
    assert.equal(r.status, 200, r.body);
    assert.equal(json(r).owner, bob.id);
  });
});
