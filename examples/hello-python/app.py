"""A tiny Python sidecar: answers on 127.0.0.1:$PORT with what PocketBase told it."""

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(
            {
                "process": os.environ.get("PB_PROCESS_NAME"),
                "runtime": f"python {sys.version.split()[0]}",
                "pocketbase": os.environ.get("PB_URL"),
                "pid": os.getpid(),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        print(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else ''}")


def main() -> None:
    port = int(os.environ.get("PORT", "8091"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: (print("stopping"), sys.exit(0)))
    print(f"hello-python listening on http://127.0.0.1:{port}, PocketBase at {os.environ.get('PB_URL')}")
    server.serve_forever()


if __name__ == "__main__":
    main()
