// serve(): runs a node or fetch handler where processman's gateway expects
// it, verifies the caller of every request, and shuts down gracefully.

import http from "node:http";
import fs from "node:fs";
import net from "node:net";
import { toRequest, writeResponse } from "./fetch-adapter.js";
import { verify, IdentityError, HEADER_GATEWAY_PROOF } from "./identity.js";
import { GUEST, runAs, setUser, tokenFrom } from "./user.js";
import { userFromToken } from "./client.js";

/** Below processman's default kill_timeout (5 s), leaving time to exit. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 3000;
/** The port of development mode when PORT is not set. */
export const DEFAULT_DEV_PORT = 3000;

const PREFIX = "processman:";

/**
 * The index of this instance of its process (PB_INSTANCE, else
 * NODE_APP_INSTANCE, which PM2 sets too), 0 when neither is set: which of
 * the copies of `"instances": N` this one is.
 */
export function instance(env = process.env) {
  for (const name of ["PB_INSTANCE", "NODE_APP_INSTANCE"]) {
    const raw = (env[name] ?? "").trim();
    if (raw) {
      if (!/^\d+$/.test(raw)) throw new Error(`${name}=${JSON.stringify(raw)} is not an instance index (0, 1, ...)`);
      return Number(raw);
    }
  }
  return 0;
}

/**
 * Where to listen and whether the gateway is in front, from the options and
 * the environment processman gives a routed child (docs/gateway.md):
 *   PB_SOCKET                  -> the Unix socket, gateway mode
 *   PB_GATEWAY_SECRET + PORT   -> 127.0.0.1:PORT (listen: "tcp"), gateway mode
 *   neither                    -> development mode on 127.0.0.1:PORT (default 3000)
 * (PB_PORT is PocketBase's own port, not this process's.)
 */
export function resolveListen(options = {}, env = process.env) {
  const secret = options.secret ?? env.PB_GATEWAY_SECRET ?? "";
  const socket = options.socket ?? env.PB_SOCKET;
  if (socket) return { kind: "unix", path: socket, gateway: true, secret };
  const host = options.host ?? "127.0.0.1";
  if (env.PB_GATEWAY_SECRET || options.secret !== undefined) {
    const port = parsePort(options.port ?? env.PORT, "PORT");
    return { kind: "tcp", host, port, gateway: true, secret };
  }
  const port = parsePort(options.port ?? env.PORT ?? DEFAULT_DEV_PORT, "PORT");
  return { kind: "tcp", host, port, gateway: false, secret: "" };
}

/**
 * Who requests are in development mode, from the devUser option or
 * PROCESSMAN_DEV_USER: "guest" (or empty), "pocketbase" (the owner of the
 * request's token, as PocketBase at PB_URL confirms it), "collection/id"
 * ("id" alone is in users), or a user object. Returns "pocketbase" or a user.
 */
export function parseDevUser(spec) {
  if (spec !== null && typeof spec === "object") return { ...GUEST, ...spec };
  if (spec !== undefined && typeof spec !== "string") {
    throw new TypeError(`serve: devUser must be "guest", "pocketbase", "collection/id" or a user object`);
  }
  const text = (spec ?? "").trim();
  if (text === "" || text === "guest") return GUEST;
  if (text === "pocketbase") return "pocketbase";
  const slash = text.lastIndexOf("/");
  const collection = slash < 0 ? "users" : text.slice(0, slash) || "users";
  const id = text.slice(slash + 1);
  if (id === "") throw new Error(`${PREFIX} PROCESSMAN_DEV_USER=${JSON.stringify(text)}: write guest, pocketbase, collection/id or id`);
  return { ...GUEST, id, collection, superuser: collection === "_superusers" };
}

/** PROCESSMAN_SHUTDOWN_TIMEOUT (seconds) in ms, or undefined when unset. */
function shutdownTimeoutFromEnv(env) {
  const raw = (env.PROCESSMAN_SHUTDOWN_TIMEOUT ?? "").trim();
  if (raw === "") return undefined;
  const seconds = Number(raw);
  if (!(seconds >= 0)) {
    throw new Error(`${PREFIX} PROCESSMAN_SHUTDOWN_TIMEOUT=${JSON.stringify(raw)} is not a number of seconds (e.g. 3 or 0.5)`);
  }
  return seconds * 1000;
}

function parsePort(value, name) {
  const port = Number(value);
  if (value === undefined || value === "" || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${PREFIX} ${name}=${JSON.stringify(value)} is not a port number (0-65535)`);
  }
  return port;
}

/** fetch-style (`(Request) => Response`, or an object with `.fetch`) or node-style `(req, res)`. */
function handlerKind(handler, type) {
  if (type === "node" || type === "fetch") return type;
  if (type !== undefined) throw new TypeError(`serve: type must be "node" or "fetch", not ${JSON.stringify(type)}`);
  if (handler && typeof handler.fetch === "function") return "fetch";
  if (typeof handler !== "function") {
    throw new TypeError("serve: the handler must be a (req, res) function, an Express app, or a fetch handler / Hono app");
  }
  return handler.length === 1 ? "fetch" : "node";
}

function errorBody(status, message) {
  return JSON.stringify({ status, message, data: {} });
}

function sendError(res, status, message) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(status, message);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

function rejectUpgrade(socket, status, message) {
  const body = errorBody(status, message);
  const reason = http.STATUS_CODES[status] ?? "Error";
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Removes a socket file nothing listens on any more; refuses a live one or a file that is not a socket. */
async function removeStaleSocket(path) {
  let stat;
  try {
    stat = fs.lstatSync(path);
  } catch (err) {
    if (err.code === "ENOENT") return;
    throw err;
  }
  if (!stat.isSocket()) {
    throw new Error(`${PREFIX} ${path} exists and is not a socket; refusing to replace it (remove it or set another PB_SOCKET)`);
  }
  const live = await new Promise((resolve, reject) => {
    const probe = net.connect(path);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", (err) => (err.code === "ECONNREFUSED" || err.code === "ENOENT" ? resolve(false) : reject(err)));
  });
  if (live) throw new Error(`${PREFIX} another process is listening on ${path}; stop it first`);
  fs.rmSync(path, { force: true });
}

function removeSocketFile(path) {
  try {
    if (fs.lstatSync(path).isSocket()) fs.unlinkSync(path);
  } catch {
    // Already gone.
  }
}

/**
 * Serves `handler` for processman's gateway. See index.d.ts for the options.
 * Resolves once listening, to { server, address, mode, shutdown, closing }.
 */
export async function serve(handler, options = {}) {
  const kind = handlerKind(handler, options.type);
  const listen = resolveListen(options);
  const log = options.log === false ? () => {} : (options.log ?? ((line) => console.log(line)));
  const shutdownTimeout = options.shutdownTimeout ?? shutdownTimeoutFromEnv(process.env) ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
  const devUser = parseDevUser(options.devUser ?? options.devAuth ?? process.env.PROCESSMAN_DEV_USER);
  if (!listen.gateway && devUser === "pocketbase" && !process.env.PB_URL) {
    throw new Error(`serve: devUser "pocketbase" asks PocketBase who a token belongs to; set PB_URL (e.g. http://127.0.0.1:8090)`);
  }
  const allowUnsigned = new Set(options.allowUnsigned ?? []);

  // The caller of a request, or a 401 message.
  const identify = async (req) => {
    if (listen.gateway) {
      if (allowUnsigned.size > 0 && allowUnsigned.has(req.url.split("?")[0]) && !(HEADER_GATEWAY_PROOF in req.headers)) {
        return { user: GUEST };
      }
      try {
        const identity = verify(req.headersDistinct, req.method, req.url, listen.secret);
        const token = identity.id ? tokenFrom(req.headers.authorization) : "";
        return { user: { ...identity, token } };
      } catch (err) {
        if (err instanceof IdentityError) return { error: err.message };
        throw err;
      }
    }
    // Development mode: nothing signs the identity headers, so they are
    // never read; who the caller is comes from devUser alone. A guest has
    // no token; a fixed user has its own, else the request's.
    const token = tokenFrom(req.headers.authorization);
    if (devUser === "pocketbase") {
      const user = token ? await userFromToken(token) : null;
      return { user: user ?? GUEST };
    }
    if (!devUser.id) return { user: GUEST };
    return { user: { ...devUser, token: devUser.token || token } };
  };

  const fetchHandler = kind === "fetch" ? (typeof handler === "function" ? handler : handler.fetch.bind(handler)) : null;

  const handle = async (req, res) => {
    let result;
    try {
      result = await identify(req);
    } catch (err) {
      log(`${PREFIX} could not identify the caller: ${err?.message ?? err}`);
      sendError(res, 500, "Could not identify the caller.");
      return;
    }
    if (result.error) {
      sendError(res, 401, result.error);
      return;
    }
    if (kind === "node") {
      const user = setUser(req, result.user);
      try {
        await runAs(user, () => handler(req, res));
      } catch (err) {
        console.error(err);
        sendError(res, 500, "Something went wrong while processing your request.");
      }
      return;
    }
    const abort = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) abort.abort();
    });
    const request = toRequest(req, abort.signal);
    const user = setUser(request, result.user);
    let response;
    try {
      response = await runAs(user, () => fetchHandler(request, { incoming: req, outgoing: res, user }));
    } catch (err) {
      console.error(err);
      sendError(res, 500, "Something went wrong while processing your request.");
      return;
    }
    if (!(response instanceof Response)) {
      console.error(new TypeError(`${PREFIX} the fetch handler returned ${typeof response}, not a Response`));
      sendError(res, 500, "Something went wrong while processing your request.");
      return;
    }
    await writeResponse(response, req, res);
  };

  const server = http.createServer({ requestTimeout: 0 }, (req, res) => {
    handle(req, res).catch((err) => {
      console.error(err);
      sendError(res, 500, "Something went wrong while processing your request.");
    });
  });

  // Upgrades (WebSockets) are verified before any 'upgrade' listener sees
  // them, including listeners added later by a WebSocket library.
  const upgraded = new Set();
  const emit = server.emit;
  server.emit = function (event, ...args) {
    if (event !== "upgrade") return emit.call(this, event, ...args);
    const [req, socket] = args;
    identify(req).then(
      (result) => {
        if (result.error) {
          rejectUpgrade(socket, 401, result.error);
          return;
        }
        const user = setUser(req, result.user);
        upgraded.add(socket);
        socket.once("close", () => upgraded.delete(socket));
        runAs(user, () => emit.call(this, event, ...args));
      },
      (err) => {
        log(`${PREFIX} could not identify the caller: ${err?.message ?? err}`);
        rejectUpgrade(socket, 500, "Could not identify the caller.");
      },
    );
    return true;
  };

  if (listen.kind === "unix") await removeStaleSocket(listen.path);
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    const onListening = () => {
      server.off("error", reject);
      resolve();
    };
    if (listen.kind === "unix") server.listen(listen.path, onListening);
    else server.listen(listen.port, listen.host, onListening);
  });

  const address =
    listen.kind === "unix" ? `unix:${listen.path}` : `http://${listen.host}:${server.address().port}`;

  // Shutdown: stop accepting, let open requests and streams finish, then
  // close what is left once shutdownTimeout has passed.
  const closingController = new AbortController();
  let shutdownPromise = null;
  const shutdown = () => {
    if (shutdownPromise) return shutdownPromise;
    closingController.abort();
    shutdownPromise = new Promise((resolve) => {
      const idleSweep = setInterval(() => server.closeIdleConnections(), 50);
      const deadline = setTimeout(() => {
        server.closeAllConnections();
        for (const socket of upgraded) socket.destroy();
      }, shutdownTimeout);
      server.close(() => {
        clearInterval(idleSweep);
        clearTimeout(deadline);
        if (listen.kind === "unix") removeSocketFile(listen.path);
        resolve();
      });
      server.closeIdleConnections();
    });
    return shutdownPromise;
  };

  if (options.signals !== false) {
    const onSignal = (signal) => {
      if (shutdownPromise) {
        // A second signal: stop waiting.
        if (listen.kind === "unix") removeSocketFile(listen.path);
        process.exit(1);
      }
      const stopped = shutdown();
      log(`${PREFIX} ${signal}: finishing open requests (at most ${shutdownTimeout} ms)`);
      stopped.then(() => {
        log(`${PREFIX} stopped`);
        process.exit(0);
      });
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  }

  if (!listen.gateway) {
    const who =
      devUser === "pocketbase"
        ? `the owner of its token, as PocketBase at ${process.env.PB_URL} confirms it`
        : devUser.id
          ? `${devUser.collection}/${devUser.id}`
          : "a guest";
    log(
      `${PREFIX} development mode: PB_GATEWAY_SECRET is not set, so identity headers are ignored ` +
        `and every request is ${who} (set PROCESSMAN_DEV_USER to collection/id or pocketbase to act as a user)`,
    );
  } else if (!listen.secret) {
    log(`${PREFIX} PB_GATEWAY_SECRET is not set: every request will be refused with 401`);
  }
  log(`${PREFIX} ready on ${address}`);

  return { server, address, mode: listen.gateway ? "gateway" : "development", shutdown, closing: closingController.signal };
}
