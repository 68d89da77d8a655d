// Types of @processman/sidecar (the implementation is src/*.js).

import type { IncomingMessage, Server, ServerResponse, IncomingHttpHeaders } from "node:http";
import type PocketBase from "pocketbase";

/** The caller of a request, as the gateway signed it. */
export interface User {
  /** The authenticated record's id; "" for a guest. */
  readonly id: string;
  /** Its collection name ("users", "_superusers", ...); "" for a guest. */
  readonly collection: string;
  /** Whether the caller is a superuser (also true for calls the gateway signs as the system, which have no record). */
  readonly superuser: boolean;
  /** The caller's PocketBase token, without "Bearer "; "" for a guest and for system calls. */
  readonly token: string;
}

/** The identity a valid proof vouches for (verify() does not read the token). */
export interface Identity {
  readonly id: string;
  readonly collection: string;
  readonly superuser: boolean;
}

/** A guest: no record, no token. */
export declare const GUEST: User;

/** Who requests are in development mode: see ServeOptions.devUser. */
export type DevUser = "guest" | "pocketbase" | string | Partial<User>;

/** The development identity of a spec: "pocketbase", or the user (GUEST for "guest" and ""). Throws for a spec without an id. */
export declare function parseDevUser(spec: DevUser | undefined): "pocketbase" | User;

/** A node:http handler; an Express app is one. */
export type NodeHandler = (req: IncomingMessage, res: ServerResponse) => unknown;

/** What serve() passes as the second argument of a fetch handler (Hono: `c.env`). */
export interface FetchEnv {
  incoming: IncomingMessage;
  outgoing: ServerResponse;
  user: User;
}

/** A fetch-style handler, such as `(request) => new Response(...)`. */
export type FetchHandler = (request: Request, env: FetchEnv) => Response | Promise<Response>;

/** Anything with a `fetch(request)` method, such as a Hono app. */
export interface FetchApp {
  fetch(request: Request, ...rest: any[]): Response | Promise<Response>;
}

export type Handler = NodeHandler | FetchHandler | FetchApp;

export interface ServeOptions {
  /**
   * "node" for (req, res) handlers, "fetch" for (request) => Response. By
   * default an object with a `fetch` method (Hono) and a function of one
   * parameter are fetch handlers, any other function a node handler.
   */
  type?: "node" | "fetch";
  /** Unix socket to listen on. Default: PB_SOCKET. */
  socket?: string;
  /** TCP port when there is no socket. Default: PORT (the gateway's, with listen: "tcp"; or development mode's), else 3000. */
  port?: number;
  /** TCP host. Default: "127.0.0.1". */
  host?: string;
  /** The gateway secret. Default: PB_GATEWAY_SECRET. Setting it turns on verification (gateway mode). */
  secret?: string;
  /**
   * Who the caller is in development mode (no PB_SOCKET and no
   * PB_GATEWAY_SECRET, so nothing signs identities). Default:
   * PROCESSMAN_DEV_USER, else "guest".
   * "guest": every request is a guest (no token);
   * "pocketbase": the owner of the Authorization token, as PocketBase at PB_URL confirms it (auth-refresh), else a guest;
   * "collection/id" ("id" alone is in users), or a user object: every request acts as that user, with its token or else the request's.
   * Ignored behind the gateway, where only a valid proof counts.
   */
  devUser?: DevUser;
  /** @deprecated The former name of devUser. */
  devAuth?: DevUser;
  /** Paths (without query) whose requests may come unsigned, as guests; a request that carries a proof is still verified. Default: none. */
  allowUnsigned?: Iterable<string>;
  /** How long open requests and streams may run on after SIGTERM/SIGINT, in ms. Default: PROCESSMAN_SHUTDOWN_TIMEOUT (seconds), else 3000 (processman's kill_timeout is 5 s). */
  shutdownTimeout?: number;
  /** Handle SIGTERM and SIGINT (graceful shutdown, then exit 0). Default: true. */
  signals?: boolean;
  /** Where the ready line and notices go (default console.log); false for none. */
  log?: ((line: string) => void) | false;
}

export interface Sidecar {
  /** The node:http server. */
  server: Server;
  /** "unix:/path/to.sock" or "http://127.0.0.1:3000". */
  address: string;
  /** "gateway" when identities are verified, "development" otherwise. */
  mode: "gateway" | "development";
  /** Stops accepting, waits for open requests up to shutdownTimeout, closes the rest, removes the socket file. */
  shutdown(): Promise<void>;
  /** Aborts when shutdown starts: long streams can wrap up early. */
  closing: AbortSignal;
}

/**
 * Serves a node handler, an Express app, a fetch handler or a Hono app on
 * the gateway's socket (PB_SOCKET), on 127.0.0.1:PORT (listen: "tcp"), or
 * in development mode on 127.0.0.1:PORT (default 3000). Every request and
 * WebSocket upgrade is verified first (401 otherwise). Prints
 * "processman: ready on <address>" once listening.
 */
export declare function serve(handler: Handler, options?: ServeOptions): Promise<Sidecar>;

export interface ListenTarget {
  kind: "unix" | "tcp";
  path?: string;
  host?: string;
  port?: number;
  gateway: boolean;
  secret: string;
}

/** Where serve() would listen, from the options and an environment. */
export declare function resolveListen(options?: ServeOptions, env?: NodeJS.ProcessEnv): ListenTarget;

/** The index of this instance of its process (PB_INSTANCE, else NODE_APP_INSTANCE), 0 when unset. */
export declare function instance(env?: NodeJS.ProcessEnv): number;

/** Which database processman told this process about (PB_DB_DRIVER, DB_DSN, PB_DB_PATH). */
export interface DatabaseTarget {
  driver: "sqlite" | "postgres";
  /** The SQLite file, or the PostgreSQL URL (it may hold a password). */
  target: string;
}

/** The database of PB_DB_DRIVER / DB_DSN / PB_DB_PATH; throws an Error naming a missing or unusable variable. */
export declare function database(env?: NodeJS.ProcessEnv): DatabaseTarget;

export interface ConnectReadonlyOptions {
  /** Open this SQLite file instead of the one processman names. */
  path?: string;
  /** Replaces process.env. */
  env?: NodeJS.ProcessEnv;
  /** How long connecting to PostgreSQL may take (default 5000). */
  timeoutMs?: number;
}

/** The part of pg.Client a read-only connection uses (placeholders $1, $2, ...). */
export interface PostgresReadonlyClient {
  query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  end(): Promise<void>;
}

/** The part of node:sqlite's DatabaseSync and better-sqlite3's Database it shares (placeholders ?). */
export interface SQLiteReadonlyDatabase {
  prepare(sql: string): { get(...params: unknown[]): unknown; all(...params: unknown[]): unknown[] };
  close(): void;
}

/**
 * Opens PocketBase's database read-only: a connected pg.Client with
 * default_transaction_read_only on (PostgreSQL; needs `npm install pg`), or
 * node:sqlite / better-sqlite3 opened read-only (SQLite; on Node < 22.5 needs
 * `npm install better-sqlite3`). Check `database().driver` to know which.
 */
export declare function connectReadonly(options?: ConnectReadonlyOptions): Promise<PostgresReadonlyClient | SQLiteReadonlyDatabase>;

/** What installs PostgreSQL support: "npm install pg". */
export declare const POSTGRES_PACKAGE: string;
/** What installs SQLite support on Node < 22.5: "npm install better-sqlite3". */
export declare const SQLITE_PACKAGE: string;

export declare const DEFAULT_SHUTDOWN_TIMEOUT_MS: number;
export declare const DEFAULT_DEV_PORT: number;

/**
 * The caller of a request served by serve(): the node request (Express:
 * `req`) or the fetch Request (Hono: `c.req.raw`). Throws a TypeError for
 * any other request.
 */
export declare function getUser(request: IncomingMessage | Request): User;

/**
 * The caller of the request being handled, for code that serve()'s handler
 * calls or awaits (tools, helpers), without passing the request around.
 * Throws outside a request.
 */
export declare function currentUser(): User;

/**
 * A PocketBase client acting as the caller (its token in the auth store),
 * at PB_URL or `url`. Server-side defaults: auto-cancellation off.
 */
export declare function pocketbaseFor(userOrRequest: User | IncomingMessage | Request, options?: { url?: string }): PocketBase;

/** The caller a token belongs to, as PocketBase confirms it, or null. */
export declare function userFromToken(token: string, options?: { url?: string }): Promise<User | null>;

/** Header values: a plain object (a list for a repeated header), fetch Headers, or [name, value] pairs. */
export type HeadersInput =
  | IncomingHttpHeaders
  | NodeJS.Dict<string | string[]>
  | Record<string, string | string[] | undefined>
  | Headers
  | Iterable<readonly [string, string]>;

export type IdentityErrorCode = "missing" | "bad_proof" | "expired";
/** @deprecated The former name of IdentityErrorCode. */
export type VerifyErrorCode = IdentityErrorCode;

/** Why verify() refused a request; its message is the 401's. */
export declare class IdentityError extends Error {
  readonly code: IdentityErrorCode;
  constructor(code: IdentityErrorCode, message?: string);
}

/** @deprecated The former name of IdentityError. */
export declare const VerifyError: typeof IdentityError;

/**
 * Verifies the gateway's identity headers in the contract's order
 * (docs/gateway.md). `method` and `path` (with query) as this sidecar
 * received them; `now` in Unix seconds. Pass `req.headersDistinct` so a
 * repeated header is seen as such.
 */
export declare function verify(
  headers: HeadersInput,
  method: string,
  path: string,
  secret: string,
  now?: number,
): Identity;

/** The headers a gateway would send for this identity and request. */
export declare function signHeaders(
  identity: Partial<Identity>,
  method: string,
  path: string,
  secret: string,
  now?: number,
): Record<string, string>;

/** The canonical string the gateway signs. */
export declare function canonicalString(
  time: string | number,
  method: string,
  path: string,
  id: string,
  collection: string,
  superuser: string,
): string;

/** Lower-case hex HMAC-SHA256 of a canonical string, keyed with the bytes of the hex secret. */
export declare function sign(secret: string, canonical: string): string;

export declare const MAX_SKEW_SECONDS: number;
export declare const HEADER_AUTH_ID: "x-pb-auth-id";
export declare const HEADER_AUTH_COLLECTION: "x-pb-auth-collection";
export declare const HEADER_AUTH_SUPERUSER: "x-pb-auth-superuser";
export declare const HEADER_GATEWAY_TIME: "x-pb-gateway-time";
export declare const HEADER_GATEWAY_PROOF: "x-pb-gateway-proof";
