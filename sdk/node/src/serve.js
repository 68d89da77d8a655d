// serve(): runs a node or fetch handler where processman's gateway expects
// it, verifies the caller of every request, and shuts down gracefully.

import http from "node:http";
import fs from "node:fs";
import { toRequest, writeResponse } from "./fetch-adapter.js";
import { verify, VerifyError } from "./identity.js";
import { GUEST, setUser, tokenFrom } from "./user.js";
import { userFromToken } from "./client.js";

/** Below processman's default kill_timeout (5 s), leaving time to exit. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 4000;
/** The port of development mode when PORT is not set. */
export const DEFAULT_DEV_PORT = 3000;

const PREFIX = "processman:";

/**
 * Where to listen and whether the gateway is in front, from the options and
 * the environment processman gives a routed child (docs/gateway.md):
 *   PB_SOCKET                  -> the Unix socket, gateway mode
 *   PB_GATEWAY_SECRET + port   -> 127.0.0.1:PB_PORT (listen: "tcp"), gateway mode
 *   neither                    -> development mode on 127.0.0.1:PORT (default 3000)
 */
export function resolveListen(options = {}, env = process.env) {
  const secret = options.secret ?? env.PB_GATEWAY_SECRET ?? "";
  const socket = options.socket ?? env.PB_SOCKET;
  if (socket) return { kind: "unix", path: socket, gateway: true, secret };
  const host = options.host ?? "127.0.0.1";
  if (env.PB_GATEWAY_SECRET || options.secret !== undefined) {
    const port = parsePort(options.port ?? env.PB_PORT ?? env.PORT, "PB_PORT");
    return { kind: "tcp", host, port, gateway: true, secret };
  }
  const port = parsePort(options.port ?? env.PORT ?? DEFAULT_DEV_PORT, "PORT");
  return { kind: "tcp", host, port, gateway: false, secret: "" };
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

function removeStaleSocket(path) {
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
  fs.unlinkSync(path);
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
  const shutdownTimeout = options.shutdownTimeout ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
  const devAuth = options.devAuth ?? "guest";
  if (!listen.gateway && devAuth !== "guest" && devAuth !== "pocketbase" && typeof devAuth !== "object") {
    throw new TypeError(`serve: devAuth must be "guest", "pocketbase" or a user object`);
  }
  if (!listen.gateway && devAuth === "pocketbase" && !process.env.PB_URL) {
    throw new Error(`serve: devAuth "pocketbase" asks PocketBase who a token belongs to; set PB_URL (e.g. http://127.0.0.1:8090)`);
  }

  // The caller of a request, or a 401 message.
  const identify = async (req) => {
    if (listen.gateway) {
      try {
        const identity = verify(req.headersDistinct, req.method, req.url, listen.secret);
        const token = identity.id ? tokenFrom(req.headers.authorization) : "";
        return { user: { ...identity, token } };
      } catch (err) {
        if (err instanceof VerifyError) return { error: err.message };
        throw err;
      }
    }
    // Development mode: nothing signs the identity headers, so they are
    // never read; who the caller is comes from devAuth alone.
    if (devAuth === "pocketbase") {
      const user = await userFromToken(tokenFrom(req.headers.authorization));
      return { user: user ?? GUEST };
    }
    if (typeof devAuth === "object" && devAuth !== null) return { user: { ...GUEST, ...devAuth } };
    return { user: GUEST };
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
      setUser(req, result.user);
      try {
        await handler(req, res);
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
    setUser(request, result.user);
    let response;
    try {
      response = await fetchHandler(request, { incoming: req, outgoing: res, user: result.user });
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
        setUser(req, result.user);
        upgraded.add(socket);
        socket.once("close", () => upgraded.delete(socket));
        emit.call(this, event, ...args);
      },
      (err) => {
        log(`${PREFIX} could not identify the caller: ${err?.message ?? err}`);
        rejectUpgrade(socket, 500, "Could not identify the caller.");
      },
    );
    return true;
  };

  if (listen.kind === "unix") removeStaleSocket(listen.path);
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
      devAuth === "pocketbase"
        ? `callers are who PocketBase at ${process.env.PB_URL ?? "(PB_URL not set)"} says their token belongs to`
        : typeof devAuth === "object"
          ? `every request acts as ${devAuth.collection || "?"}/${devAuth.id || "?"} (devAuth)`
          : "every request is a guest (no PB_GATEWAY_SECRET)";
    log(`${PREFIX} development mode: not started by PocketBase's gateway; ${who}`);
  } else if (!listen.secret) {
    log(`${PREFIX} PB_GATEWAY_SECRET is not set: every request will be refused with 401`);
  }
  log(`${PREFIX} ready on ${address}`);

  return { server, address, mode: listen.gateway ? "gateway" : "development", shutdown, closing: closingController.signal };
}
