// Node sidecar of bench/reload.py: a plain node:http server.
//
// Listens on the Unix socket in PB_SOCKET if set, else on 127.0.0.1:$PORT
// (under PM2's cluster mode the port is shared by its workers).
//   STARTUP_DELAY  seconds to wait before listening (an agent's imports), 0
// Every request gets a small JSON body with the pid. SIGTERM and SIGINT
// (PM2's reload signal) close the server: requests in flight finish, then
// the process exits.
import http from "node:http";

const body = Buffer.from(JSON.stringify({ ok: true, pid: process.pid }));
const server = http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "application/json", "content-length": String(body.length) });
  res.end(body);
});

function stop() {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 5000).unref();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

const delayMs = Number(process.env.STARTUP_DELAY || 0) * 1000;
setTimeout(() => {
  if (process.env.PB_SOCKET) server.listen(process.env.PB_SOCKET);
  else server.listen(Number(process.env.PORT), "127.0.0.1");
}, delayMs);
