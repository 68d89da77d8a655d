// verify() and the canonical string against the shared contract vectors
// (testdata/gateway-identity.json), plus the input shapes verify() takes.

import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { verify, canonicalString, sign, signHeaders, IdentityError } from "@processman/sidecar";
import { REPO_ROOT, signedHeaders } from "./helpers.js";

const VECTORS = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "testdata", "gateway-identity.json"), "utf8"));

test("the vector file has both kinds of cases", () => {
  assert.ok(VECTORS.vectors.length >= 5, "signing vectors");
  assert.ok(VECTORS.verify.length >= 30, "verify cases");
  assert.deepEqual(new Set(VECTORS.verify.map((c) => c.error)), new Set([null, "missing", "bad_proof", "expired"]));
});

for (const v of VECTORS.vectors) {
  test(`vector: ${v.name}`, () => {
    const canonical = canonicalString(v.time, v.method, v.path, v.id, v.collection, v.superuser ? "true" : "false");
    assert.equal(canonical, v.canonical);
    assert.equal(sign(VECTORS.secret, canonical), v.proof);
    const headers = {
      "X-PB-Auth-Id": v.id,
      "X-PB-Auth-Collection": v.collection,
      "X-PB-Auth-Superuser": v.superuser ? "true" : "false",
      "X-PB-Gateway-Time": String(v.time),
      "X-PB-Gateway-Proof": v.proof,
    };
    assert.deepEqual(verify(headers, v.method, v.path, VECTORS.secret, v.time), {
      id: v.id,
      collection: v.collection,
      superuser: v.superuser,
    });
    assert.deepEqual(signHeaders(v, v.method, v.path, VECTORS.secret, v.time), headers);
  });
}

for (const c of VECTORS.verify) {
  test(`verify: ${c.name}`, () => {
    const secret = c.secret ?? VECTORS.secret;
    if (c.valid) {
      assert.deepEqual(verify(c.headers, c.method, c.path, secret, c.now), c.identity);
      return;
    }
    assert.throws(
      () => verify(c.headers, c.method, c.path, secret, c.now),
      (err) => err instanceof IdentityError && err.code === c.error && err.message.length > 0,
    );
  });
}

test("verify takes fetch Headers and [name, value] pairs", () => {
  const secret = "ab".repeat(32);
  const now = 1700000000;
  const headers = signedHeaders(secret, "POST", "/x?y=1", { id: "u1", collection: "users" }, now);
  const want = { id: "u1", collection: "users", superuser: false };
  assert.deepEqual(verify(new Headers(headers), "POST", "/x?y=1", secret, now), want);
  assert.deepEqual(verify(Object.entries(headers), "POST", "/x?y=1", secret, now), want);
  // A repeat among pairs is a repeat.
  const pairs = [...Object.entries(headers), ["x-pb-auth-id", "u1"]];
  assert.throws(() => verify(pairs, "POST", "/x?y=1", secret, now), { code: "bad_proof" });
});

test("verify uses this machine's clock by default", () => {
  const secret = "cd".repeat(32);
  const fresh = signedHeaders(secret, "GET", "/", { id: "u1", collection: "users" });
  assert.equal(verify(fresh, "GET", "/", secret).id, "u1");
  const old = signedHeaders(secret, "GET", "/", { id: "u1", collection: "users" }, Math.floor(Date.now() / 1000) - 120);
  assert.throws(() => verify(old, "GET", "/", secret), { code: "expired" });
});

test("verify never accepts a missing secret", () => {
  const headers = signedHeaders("", "GET", "/", {}, 1700000000);
  assert.throws(() => verify(headers, "GET", "/", "", 1700000000), { code: "bad_proof" });
  assert.throws(() => verify(headers, "GET", "/", undefined, 1700000000), { code: "bad_proof" });
});
