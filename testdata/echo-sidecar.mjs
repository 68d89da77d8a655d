// A sidecar for the gateway tests: it listens where processman says
// (PB_SOCKET or PORT) and answers with what it received.
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const started = Date.now();
if (process.env.CRASH_FILE && fs.existsSync(process.env.CRASH_FILE)) {
  console.error("crashing as asked");
  process.exit(3);
}
const readyAfter = Number(process.env.READY_AFTER_MS ?? 0);

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, "http://sidecar");
  if (url.pathname === "/health") {
    // Health checks come from PocketBase itself, signed like any request
    // of the gateway (docs/gateway.md): an unsigned one is refused.
    if (!signedBySystem(req)) {
      res.writeHead(401);
      return res.end("unsigned health check");
    }
    const failing = process.env.HEALTH_FAIL_FILE && fs.existsSync(process.env.HEALTH_FAIL_FILE);
    const ok = !failing && Date.now() - started >= readyAfter;
    res.writeHead(ok ? 200 : 503);
    return res.end(ok ? "ok" : "not yet");
  }
  if (url.pathname === "/sse") {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    const n = Number(url.searchParams.get("n") ?? 5);
    for (let i = 0; i < n; i++) {
      res.write(`data: ${i}\n\n`);
      await sleep(Number(url.searchParams.get("gap") ?? 200));
    }
    return res.end();
  }
  let bytes = 0;
  for await (const chunk of req) bytes += chunk.length;
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({
    method: req.method,
    url: req.url,
    bytes,
    headers: req.headers,
    trailers: req.trailers,
    secret: process.env.PB_GATEWAY_SECRET,
    pid: process.pid,
    env: {
      PB_SOCKET: process.env.PB_SOCKET ?? "", PORT: process.env.PORT ?? "", PB_ROUTE: process.env.PB_ROUTE ?? "",
      PB_INSTANCE: process.env.PB_INSTANCE ?? "", NODE_APP_INSTANCE: process.env.NODE_APP_INSTANCE ?? "",
    },
  }));
});

server.listen(process.env.PB_SOCKET ?? Number(process.env.PORT), () => console.log("ready"));
process.on("SIGTERM", () => server.close(() => process.exit(0)));

function signedBySystem(req) {
  const h = req.headers;
  const canonical = ["v1", h["x-pb-gateway-time"], req.method, req.url,
    h["x-pb-auth-id"] ?? "", h["x-pb-auth-collection"] ?? "", h["x-pb-auth-superuser"]].join("\n");
  const want = crypto.createHmac("sha256", process.env.PB_GATEWAY_SECRET ?? "").update(canonical).digest("hex");
  return h["x-pb-gateway-proof"] === want && h["x-pb-auth-superuser"] === "true";
}
