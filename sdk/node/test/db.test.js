// database() against the shared cases (testdata/sidecar-sdk.json), and
// connectReadonly on a real SQLite file and, when POSTGRES_URL names one, a
// real PostgreSQL (make test-fork starts one).

import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { connectReadonly, database, POSTGRES_PACKAGE, SQLITE_PACKAGE } from "@processman/sidecar";
import { REPO_ROOT, tempDir } from "./helpers.js";

const SHARED = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "testdata", "sidecar-sdk.json"), "utf8")).database;

for (const c of SHARED.cases) {
  test(`database(${JSON.stringify(c.env)})`, () => {
    if (c.error) {
      assert.throws(() => database(c.env), new RegExp(c.error));
      return;
    }
    assert.deepEqual(database(c.env), { driver: c.driver, target: c.target });
  });
}

test("the install hints are the shared ones", () => {
  assert.equal(POSTGRES_PACKAGE, SHARED.missing_postgres.node);
  assert.equal(SQLITE_PACKAGE, SHARED.missing_sqlite_node);
});

test("connectReadonly opens SQLite read-only", async () => {
  const file = path.join(tempDir(), "data.db");
  const writer = new Database(file);
  writer.exec("CREATE TABLE notes (id TEXT PRIMARY KEY, text TEXT); INSERT INTO notes VALUES ('n1', 'read me directly')");
  writer.close();
  const db = await connectReadonly({ env: { PB_DB_DRIVER: "sqlite", DB_DSN: `file://${file}?mode=ro`, PB_DB_PATH: file } });
  try {
    assert.equal(db.prepare("SELECT text FROM notes WHERE id = ?").get("n1").text, "read me directly");
    assert.throws(() => db.prepare("DELETE FROM notes").run(), /readonly|read-only/i);
  } finally {
    db.close();
  }
  await assert.rejects(connectReadonly({ path: path.join(path.dirname(file), "nope.db") }), /does not exist/);
});

test("connectReadonly opens PostgreSQL in a read-only session", { skip: !process.env.POSTGRES_URL && "POSTGRES_URL is not set (make test-fork runs this on PostgreSQL 17)" }, async () => {
  const server = process.env.POSTGRES_URL;
  const name = `sdk_node_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  const url = new URL(server);
  url.pathname = `/${name}`;
  try {
    const writer = new pg.Client({ connectionString: url.href });
    await writer.connect();
    await writer.query("CREATE TABLE notes (id text PRIMARY KEY, text text); INSERT INTO notes VALUES ('n1', 'read me directly')");
    await writer.end();
    const db = await connectReadonly({ env: { PB_DB_DRIVER: "postgres", DB_DSN: url.href } });
    try {
      const { rows } = await db.query("SELECT text FROM notes WHERE id = $1", ["n1"]);
      assert.deepEqual(rows, [{ text: "read me directly" }]);
      await assert.rejects(db.query("DELETE FROM notes"), (err) => err.code === "25006");
    } finally {
      await db.end();
    }
  } finally {
    await admin.query(`DROP DATABASE "${name}" WITH (FORCE)`);
    await admin.end();
  }
});
