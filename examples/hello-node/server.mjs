// A tiny Node sidecar: answers on 127.0.0.1:$PORT with what PocketBase told it.
import http from "node:http";

const port = Number(process.env.PORT ?? 8092);

const server = http.createServer((req, res) => {
  console.log(`${req.method} ${req.url}`);
  res.writeHead(200, { "content-type": "application/json" });
  res.end(
    JSON.stringify({
      process: process.env.PB_PROCESS_NAME,
      runtime: `node ${process.version}`,
      pocketbase: process.env.PB_URL,
      pid: process.pid,
    }),
  );
});

process.on("SIGTERM", () => {
  console.log("stopping");
  server.close(() => process.exit(0));
});

server.listen(port, "127.0.0.1", () => {
  console.log(`hello-node listening on http://127.0.0.1:${port}, PocketBase at ${process.env.PB_URL}`);
});
