// Read-only access to PocketBase's database: its SQLite file, or the
// PostgreSQL database of a fork. PocketBase is the only writer: write
// through its API so that rules, hooks and realtime events apply.

import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { existsSync, statSync } from "node:fs";

/** What installs PostgreSQL support (node-postgres, an optional peer dependency). */
export const POSTGRES_PACKAGE = "npm install pg";
/** What installs SQLite support on Node < 22.5 (better-sqlite3, an optional peer dependency). */
export const SQLITE_PACKAGE = "npm install better-sqlite3";

/**
 * Which database processman told this process about (PB_DB_DRIVER, DB_DSN,
 * PB_DB_PATH): { driver: "sqlite", target: file } or
 * { driver: "postgres", target: url }. Throws an Error naming the variable
 * that is missing or names a database this SDK cannot open.
 */
export function database(env = process.env) {
  const dsn = (env.DB_DSN ?? "").trim();
  const driver = (env.PB_DB_DRIVER ?? "").trim().toLowerCase();
  const path = (env.PB_DB_PATH ?? "").trim();
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(dsn)?.[1].toLowerCase() ?? "";
  const postgres = scheme === "postgres" || scheme === "postgresql";
  if (driver === "postgres" || postgres) {
    if (!postgres) {
      throw new Error("PB_DB_DRIVER is postgres but DB_DSN is not a postgres:// URL (run under processman, or set DB_DSN to the database's URL)");
    }
    return { driver: "postgres", target: dsn };
  }
  if (driver !== "" && driver !== "sqlite") {
    throw new Error(`PB_DB_DRIVER is ${JSON.stringify(env.PB_DB_DRIVER)}: connectReadonly opens sqlite and postgres; open DB_DSN with that database's own driver`);
  }
  if (path) return { driver: "sqlite", target: path };
  if (scheme === "file") return { driver: "sqlite", target: fileURLToPath(dsn) };
  throw new Error("no database: DB_DSN and PB_DB_PATH are not set (run under processman, or pass the path)");
}

/**
 * Opens PocketBase's database read-only.
 *  - PostgreSQL: a connected pg.Client whose session has
 *    default_transaction_read_only on (writes fail with SQLSTATE 25006);
 *    `await client.query("SELECT ... WHERE id = $1", [id])`, then `client.end()`.
 *  - SQLite: node:sqlite's DatabaseSync (Node 22.5+) or else better-sqlite3,
 *    opened read-only; `db.prepare("SELECT ... WHERE id = ?").get(id)`, then
 *    `db.close()`.
 * `options.path` opens that SQLite file instead; `options.env` replaces
 * process.env.
 */
export async function connectReadonly(options = {}) {
  const db = options.path !== undefined ? { driver: "sqlite", target: String(options.path) } : database(options.env ?? process.env);
  if (db.driver === "postgres") return connectPostgres(db.target, options);
  return openSQLite(db.target);
}

async function connectPostgres(url, options) {
  let pg;
  try {
    pg = await import("pg");
  } catch (err) {
    throw missing(`DB_DSN is a PostgreSQL database, which needs node-postgres: ${POSTGRES_PACKAGE}`, err);
  }
  const Client = pg.default?.Client ?? pg.Client;
  const client = new Client({
    connectionString: url,
    options: "-c default_transaction_read_only=on",
    connectionTimeoutMillis: options.timeoutMs ?? 5000,
  });
  await client.connect();
  return client;
}

async function openSQLite(file) {
  if (!existsSync(file) || !statSync(file).isFile()) {
    throw Object.assign(new Error(`PocketBase's database ${file} does not exist (has PocketBase run with this pb_data?)`), { code: "ENOENT" });
  }
  const sqlite = await import("node:sqlite").catch(() => null);
  if (sqlite?.DatabaseSync) return new sqlite.DatabaseSync(file, { readOnly: true });
  let Database;
  try {
    Database = createRequire(import.meta.url)("better-sqlite3");
  } catch (err) {
    throw missing(`SQLite on Node ${process.versions.node} needs better-sqlite3 (node:sqlite needs Node 22.5): ${SQLITE_PACKAGE}`, err);
  }
  return new Database(file, { readonly: true, fileMustExist: true });
}

function missing(message, cause) {
  return Object.assign(new Error(message, { cause }), { code: "ERR_MODULE_NOT_FOUND" });
}
