// Trivial upstream for bench/gateway.py: the same program answers directly,
// behind nginx and behind the processman gateway.
//
// Listens on the Unix socket in PB_SOCKET if set, else on 127.0.0.1:$PORT.
//   GET /json              small JSON body (about 50 bytes), keep-alive
//   GET /sse?n=200&gap=10  text/event-stream: n events `data: <i> <ms>\n\n`,
//                          one every gap ms; <ms> is the wall-clock time of
//                          the write in ms with µs decimals, so a client on
//                          the same machine can compare it with its own clock
//                          (Python: time.time() * 1000).
import http from "node:http";
import { performance } from "node:perf_hooks";

const body = Buffer.from(
  JSON.stringify({ ok: true, service: "gateway-upstream", pid: process.pid }),
);
const jsonHeaders = {
  "content-type": "application/json",
  "content-length": String(body.length),
};

// Wall clock with µs decimals: Date.now() has whole ms, and
// performance.timeOrigin can be a fraction of a ms off the wall clock (and
// differently in each process), so each stream anchors performance.now() at
// the instant Date.now() ticks to the next ms.
function wallClock() {
  const start = Date.now();
  let wall = start;
  while (wall === start) wall = Date.now(); // at most 1 ms of spinning
  const mono = performance.now();
  return () => (wall + performance.now() - mono).toFixed(3);
}

function intParam(params, name, fallback, max) {
  const value = Number.parseInt(params.get(name) ?? "", 10);
  return Number.isFinite(value) && value >= 0 ? Math.min(value, max) : fallback;
}

function sse(req, res, params) {
  const n = intParam(params, "n", 200, 100000);
  const gap = intParam(params, "gap", 10, 60000);
  res.writeHead(200, {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
  });
  res.flushHeaders();
  const wallMs = wallClock();
  let i = 0;
  const timer = setInterval(() => {
    res.write(`data: ${i} ${wallMs()}\n\n`);
    i += 1;
    if (i >= n) {
      clearInterval(timer);
      res.end();
    }
  }, gap);
  res.on("close", () => clearInterval(timer));
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://upstream");
  if (req.method === "GET" && url.pathname === "/json") {
    res.writeHead(200, jsonHeaders);
    res.end(body);
  } else if (req.method === "GET" && url.pathname === "/sse") {
    sse(req, res, url.searchParams);
  } else {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found\n");
  }
});

const where = process.env.PB_SOCKET || { host: "127.0.0.1", port: Number(process.env.PORT) };
if (!process.env.PB_SOCKET && !(where.port > 0)) {
  console.error("gateway-upstream: set PB_SOCKET or PORT");
  process.exit(2);
}
server.listen(where, () => {
  console.log(`gateway-upstream listening on ${process.env.PB_SOCKET || `127.0.0.1:${where.port}`}`);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
