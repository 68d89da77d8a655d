"""Python sidecar of bench/reload.py and bench/instances.py: a bare ASGI app
under uvicorn, the same code however it is reached.

Listens on the Unix socket in PB_SOCKET if set, else on 127.0.0.1:$PORT.
  STARTUP_DELAY  seconds to sleep before listening (an agent's imports), 0
  WORK_ITERS     iterations of a pure-Python loop per request (CPU work), 0
  WORKERS        uvicorn worker processes (--workers), 1
Every request gets a small JSON body with the pid. No access log.
"""

import os
import sys
import time

time.sleep(float(os.environ.get("STARTUP_DELAY") or 0))

import uvicorn  # noqa: E402  (imported after the delay, as an agent's would be)

WORK_ITERS = int(os.environ.get("WORK_ITERS") or 0)


def work(iterations):
    """Pure-Python CPU work that holds the GIL: no C call does the loop."""
    total = 0
    for i in range(iterations):
        total = (total + i * i) % 1_000_003
    return total


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    result = work(WORK_ITERS) if WORK_ITERS else 0
    body = b'{"ok":true,"pid":%d,"work":%d}' % (os.getpid(), result)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def main():
    options = {"lifespan": "off", "access_log": False, "log_level": "warning"}
    if socket_path := os.environ.get("PB_SOCKET"):
        options["uds"] = socket_path
    else:
        options.update(host="127.0.0.1", port=int(os.environ["PORT"]))
    workers = int(os.environ.get("WORKERS") or 1)
    if workers > 1:  # uvicorn needs an import string to spawn workers
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        uvicorn.run("pyapp:app", workers=workers, **options)
    else:
        uvicorn.run(app, **options)


if __name__ == "__main__":
    main()
