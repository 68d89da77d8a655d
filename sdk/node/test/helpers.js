// Shared by the tests: child sidecars on real sockets, signed requests
// (the HMAC computed here from docs/gateway.md, not with the SDK), and
// cleanup of every process a test started.

import { spawn } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SDK_DIR = path.resolve(HERE, "..");
export const REPO_ROOT = path.resolve(SDK_DIR, "..", "..");
export const FIXTURE = path.join(HERE, "fixtures", "sidecar.mjs");

const children = new Set();

/** Stops every child still running (for after() hooks): SIGTERM, then SIGKILL after 5 s. */
export async function killAll() {
  await Promise.all(
    [...children].map(async (child) => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }
      children.delete(child);
    }),
  );
}

export function tempDir(prefix = "sidecar-test-") {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A child process whose output is kept and can be waited on. */
export function spawnWatched(command, args, options) {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
  children.add(child);
  child.once("exit", () => children.delete(child));
  let output = "";
  const waiters = [];
  const onData = (data) => {
    output += data.toString();
    for (const waiter of [...waiters]) waiter();
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  return {
    child,
    exited,
    output: () => output,
    /** Resolves with the match once the output matches `pattern`. */
    waitFor(pattern, timeoutMs = 20000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = output.match(pattern);
          if (match) {
            done();
            resolve(match);
          }
        };
        const onExit = () =>
          setImmediate(() => {
            check();
            done();
            reject(new Error(`process exited before printing ${pattern}; output:\n${output}`));
          });
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no ${pattern} within ${timeoutMs} ms; output:\n${output}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          const i = waiters.indexOf(check);
          if (i >= 0) waiters.splice(i, 1);
          child.off("exit", onExit);
        };
        waiters.push(check);
        child.once("exit", onExit);
        check();
      });
    },
  };
}

/**
 * Starts test/fixtures/sidecar.mjs in the given style. `mode`: "unix"
 * (PB_SOCKET and a secret, as the gateway does), "tcp" (PORT and a
 * secret) or "dev" (neither).
 */
export async function startSidecar(kind, { mode = "unix", env = {}, socketPath } = {}) {
  const dir = tempDir();
  const secret = randomBytes(32).toString("hex");
  const childEnv = { ...process.env, ...env };
  for (const name of ["PB_SOCKET", "PB_PORT", "PORT", "PB_GATEWAY_SECRET", "PROCESSMAN_DEV_USER", "PROCESSMAN_SHUTDOWN_TIMEOUT"]) {
    if (!(name in env)) delete childEnv[name];
  }
  let port;
  const sock = socketPath ?? path.join(dir, "sidecar.sock");
  if (mode === "unix") {
    childEnv.PB_SOCKET = sock;
    childEnv.PB_GATEWAY_SECRET = secret;
  } else {
    port = await freePort();
    childEnv.PORT = String(port);
    if (mode === "tcp") {
      childEnv.PB_PORT = "8090"; // PocketBase's port, which the sidecar does not listen on
      childEnv.PB_GATEWAY_SECRET = secret;
    }
  }
  const started = Date.now();
  const proc = spawnWatched(process.execPath, [FIXTURE, kind], { env: childEnv, cwd: dir });
  await proc.waitFor(/processman: ready on (\S+)/);
  return {
    ...proc,
    readyMs: Date.now() - started,
    secret,
    socketPath: mode === "unix" ? sock : undefined,
    port,
    target: mode === "unix" ? { socketPath: sock } : { host: "127.0.0.1", port },
  };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = http.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

/** The gateway's identity headers for a request, computed from the contract. */
export function signedHeaders(secret, method, target, { id = "", collection = "", superuser = false } = {}, now) {
  const time = String(now ?? Math.floor(Date.now() / 1000));
  const flag = superuser ? "true" : "false";
  const canonical = ["v1", time, method.toUpperCase(), target, id, collection, flag].join("\n");
  return {
    "X-PB-Auth-Id": id,
    "X-PB-Auth-Collection": collection,
    "X-PB-Auth-Superuser": flag,
    "X-PB-Gateway-Time": time,
    "X-PB-Gateway-Proof": createHmac("sha256", secret).update(canonical).digest("hex"),
  };
}

/**
 * One request on a fresh connection. Resolves with the status, headers,
 * body, and each chunk with the time (ms since the request) it arrived.
 * `onChunk(chunk, response)` runs as chunks come in.
 */
export function request(target, { method = "GET", path: reqPath = "/", headers = {}, body, onChunk, timeoutMs = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request({ ...target, method, path: reqPath, headers, agent: false }, (res) => {
      const chunks = [];
      const result = { status: res.statusCode, headers: res.headers, chunks, req, res };
      res.on("data", (data) => {
        const chunk = { at: performance.now() - started, data: data.toString() };
        chunks.push(chunk);
        onChunk?.(chunk, result);
      });
      res.on("end", () => resolve({ ...result, body: chunks.map((c) => c.data).join(""), complete: true }));
      res.on("error", (err) => resolve({ ...result, body: chunks.map((c) => c.data).join(""), complete: false, error: err }));
      res.on("aborted", () => {});
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

export function json(response) {
  try {
    return JSON.parse(response.body);
  } catch {
    throw new Error(`status ${response.status}: not JSON: ${response.body.slice(0, 500)}`);
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
