#!/usr/bin/env python3
"""Install benchmark of `make dist`'s packages: the size of each wheel and
npm tarball, the time to install the Linux wheel from its file into a
fresh virtualenv (and the npm packages into a fresh project), and the time
from `pocketbase serve` to its first answer after that install: the health
endpoint, and a routed sidecar (a stdlib Python HTTP server on PB_SOCKET).

Run `make dist` first. Standard library only.
"""

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import venv
from pathlib import Path

sys.dont_write_bytecode = True

from gateway import fmt, markdown  # noqa: E402
from supervisor import free_port, http_ok, wait_for  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SIDECAR = '''
import http.server, os, socketserver
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"hi")
    def log_message(self, *a): pass
class S(socketserver.UnixStreamServer):
    def get_request(self):
        conn, _ = self.socket.accept(); return conn, ("local", 0)
S(os.environ["PB_SOCKET"], H).serve_forever()
'''


def timed(argv, **kw):
    t0 = time.monotonic()
    subprocess.run([str(a) for a in argv], check=True, capture_output=True, **kw)
    return time.monotonic() - t0


def first_answer(pocketbase, workdir):
    """Seconds from starting `serve` to /api/health answering, and to the
    routed sidecar answering."""
    (workdir / "side.py").write_text(SIDECAR)
    (workdir / "pb_processes.json").write_text(json.dumps(
        [{"name": "side", "script": "side.py", "interpreter": sys.executable, "route": "/api/side", "auth": "public"}]))
    port = free_port()
    t0 = time.monotonic()
    proc = subprocess.Popen([*pocketbase, "serve", "--dir", str(workdir / "pb_data"), "--http", f"127.0.0.1:{port}"],
                            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/api/health"), 60, "health", 0.005)
        health = time.monotonic() - t0
        wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/api/side/"), 60, "the sidecar", 0.005)
        side = time.monotonic() - t0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return health, side


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dist", type=Path, default=REPO / "dist")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    version = (REPO / "VERSION").read_text().strip()
    arch = {"x86_64": ("x86_64", "x64"), "aarch64": ("aarch64", "arm64")}[platform.machine()]
    wheel = next(args.dist.glob(f"processman_server-{version}-py3-none-*manylinux*{arch[0]}*.whl"))
    tgz_main = args.dist / f"processman-server-{version}.tgz"
    tgz_bin = args.dist / f"processman-server-linux-{arch[1]}-{version}.tgz"

    sizes = [[p.name, fmt(p.stat().st_size / 2**20, ".1f")] for p in sorted(args.dist.iterdir())
             if p.suffix in (".whl", ".tgz")]
    pip_times, npm_times, pip_answers, npm_answers = [], [], [], []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="pmbench-dist-") as tmp:
            tmp = Path(tmp)
            venv.create(tmp / "venv", with_pip=True)
            pip_times.append(timed([tmp / "venv" / "bin" / "python", "-m", "pip", "install", "--quiet",
                                    "--disable-pip-version-check", "--no-deps", wheel]))
            (tmp / "a").mkdir()
            pip_answers.append(first_answer([str(tmp / "venv" / "bin" / "pocketbase")], tmp / "a"))
            project = tmp / "project"
            project.mkdir()
            (project / "package.json").write_text('{"name": "b", "private": true}')
            npm_times.append(timed(["npm", "install", "--no-audit", "--no-fund", "--offline", tgz_bin, tgz_main],
                                   cwd=project))
            npm_answers.append(first_answer([str(project / "node_modules" / ".bin" / "processman")], project))

    med = statistics.median
    print(f"\n- processman {version}; {os.cpu_count()} cores; median of {args.rounds} rounds\n")
    print(markdown(["package", "MB"], sizes))
    print()
    print(markdown(["step", "pip (wheel)", "npm (tarballs)"], [
        ["install from the local file(s)", fmt(med(pip_times), ".2f") + " s", fmt(med(npm_times), ".2f") + " s"],
        ["`serve` → /api/health answers", fmt(med(a[0] for a in pip_answers) * 1000, ".0f") + " ms",
         fmt(med(a[0] for a in npm_answers) * 1000, ".0f") + " ms"],
        ["`serve` → the routed sidecar answers", fmt(med(a[1] for a in pip_answers) * 1000, ".0f") + " ms",
         fmt(med(a[1] for a in npm_answers) * 1000, ".0f") + " ms"],
    ]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
