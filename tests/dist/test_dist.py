"""The packages of `make dist`, installed the way users install them, outside
the repository, without Go: the linux wheel into a fresh virtualenv, the
linux npm packages into a fresh project. From each, the quick start without
Go: `pocketbase serve` with a routed FastAPI app and a routed Node sidecar
answering through the gateway, `pocketbase pm list`, a clean stop. The
installed binary must be the one built from this commit.

Needs dist/ (make dist) and a Linux machine; PyPI is used for FastAPI,
uvicorn and the SDK's dependencies.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

import pytest

E2E = Path(__file__).resolve().parent.parent / "e2e"
sys.path.insert(0, str(E2E))

import e2e_helpers as h  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DIST = REPO / "dist"
VERSION = (REPO / "VERSION").read_text().strip()
ARCH = {"x86_64": ("amd64", "x86_64", "x64"), "aarch64": ("arm64", "aarch64", "arm64")}.get(platform.machine())

pytestmark = pytest.mark.skipif(sys.platform != "linux" or ARCH is None, reason="the install check runs on Linux amd64/arm64")

FASTAPI_APP = '''
from fastapi import FastAPI
import processman

app = FastAPI()

@app.get("/")
def hello():
    return {"hello": "from FastAPI", "instance": processman.instance()}

processman.serve(app)
'''

NODE_APP = '''
import http from "node:http";
const server = http.createServer((req, res) => {
  res.writeHead(200, {"content-type": "application/json"});
  res.end(JSON.stringify({hello: "from Node", path: req.url}));
});
server.listen(process.env.PB_SOCKET);
process.on("SIGTERM", () => server.close(() => process.exit(0)));
'''

PROCESSES = [
    {"name": "api", "script": "main.py", "route": "/api/hello", "auth": "public"},
    {"name": "web", "script": "server.mjs", "route": "/api/web", "auth": "public"},
]


def commit() -> str:
    return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()


def one(pattern: str) -> Path:
    found = sorted(DIST.glob(pattern))
    assert len(found) == 1, f"want one dist/{pattern}, found {found}: run `make dist`"
    return found[0]


def quick_start(tmp: Path, pocketbase: list[str], env: dict[str, str], python: Path, serve_with: list[str] | None = None):
    """Serve the two sidecars with the installed binary; check them, pm list
    and a clean stop. python runs main.py (the venv's, with processman);
    serve_with, if given, is the command that serves (else pocketbase)."""
    app = tmp / "app"
    app.mkdir()
    (app / "main.py").write_text(FASTAPI_APP)
    (app / "server.mjs").write_text(NODE_APP)
    processes = [dict(p) for p in PROCESSES]
    processes[0]["interpreter"] = str(python)
    (app / "pb_processes.json").write_text(json.dumps(processes, indent=2))
    data = app / "pb_data"
    run = lambda *args, **kw: subprocess.run([*pocketbase, *args], cwd=app, env=env, capture_output=True,  # noqa: E731
                                             text=True, timeout=120, **kw)

    version = run("--version")
    assert version.returncode == 0, version
    assert f"processman {VERSION}, commit {commit()}" in version.stdout, \
        f"the installed binary is not the one built from this commit: {version.stdout!r}"

    res = run("superuser", "upsert", "dist@example.com", "dist-password-123", "--dir", str(data))
    assert res.returncode == 0, res
    port = h.free_port()
    log = (app / "serve.log").open("w")
    serve = subprocess.Popen([*(serve_with or pocketbase), "serve", "--dir", str(data), "--http", f"127.0.0.1:{port}"], cwd=app,
                             env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    logs = lambda: (app / "serve.log").read_text()  # noqa: E731
    try:
        url = f"http://127.0.0.1:{port}"
        answers = {}

        def answered(route):
            try:
                status, body = h.http_request("GET", url + route, timeout=5)
            except OSError as err:  # not listening yet
                answers[route] = (0, str(err))
                return False
            answers[route] = (status, body)
            return status == 200

        h.wait_until(lambda: answered("/api/hello/"), 90, lambda: f"{answers}\n{logs()}")
        h.wait_until(lambda: answered("/api/web/x"), 30, lambda: f"{answers}\n{logs()}")
        assert answers["/api/hello/"][1]["hello"] == "from FastAPI", answers
        assert answers["/api/web/x"][1] == {"hello": "from Node", "path": "/x"}, answers

        listed = run("pm", "list", "--dir", str(data), "--url", url)
        assert listed.returncode == 0, listed
        for name in ("api", "web"):
            assert any(line.split()[:2] == [name, "online"] for line in listed.stdout.splitlines()), listed.stdout

        children = h.descendants(serve.pid)
        assert children, "no children"
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(60) == 0, logs()
        h.wait_until(lambda: not h.alive(children), 10, lambda: f"left running: {h.describe(h.alive(children))}")
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait(10)
        log.close()


def test_the_linux_wheel_in_a_fresh_virtualenv(tmp_path):
    goarch, wheel_arch, _ = ARCH
    wheel = one(f"processman_server-{VERSION}-py3-none-*manylinux*{wheel_arch}*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = zf.read(f"processman_server-{VERSION}.dist-info/METADATA").decode()
    assert f"processman_server-{VERSION}.data/scripts/pocketbase" in names, names
    assert "PocketBase v" in meta and f"Version: {VERSION}" in meta, meta

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, str(wheel)], check=True, timeout=300)
    # The SDK from this repository, with FastAPI, as a user's requirements would have them.
    subprocess.run([*pip, str(REPO / "sdk" / "python"), "fastapi"], check=True, timeout=600)

    pocketbase = env_dir / "bin" / "pocketbase"
    assert pocketbase.is_file() and os.access(pocketbase, os.X_OK), "pip did not put pocketbase on PATH"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GO", "VIRTUAL_ENV"))}
    env["PATH"] = f"{env_dir / 'bin'}:{env.get('PATH', '')}"
    # python -m processman and python -m processman_server run the same binary.
    for module in ("processman", "processman_server"):
        res = subprocess.run([str(py), "-m", module, "--version"], capture_output=True, text=True, env=env, timeout=60)
        assert res.returncode == 0 and f"processman {VERSION}" in res.stdout, (module, res)
    quick_start(tmp_path, [str(pocketbase)], env, py)


def test_the_linux_npm_packages_in_a_fresh_project(tmp_path):
    _, _, npm_cpu = ARCH
    main = one(f"processman-server-{VERSION}.tgz")
    binary = one(f"processman-server-linux-{npm_cpu}-{VERSION}.tgz")
    project = tmp_path / "project"
    project.mkdir()
    (project / "package.json").write_text(json.dumps({"name": "quick-start", "private": True, "type": "module"}))
    res = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", str(binary), str(main)],
                         cwd=project, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res
    installed = project / "node_modules" / "@processman" / f"server-linux-{npm_cpu}" / "bin" / "pocketbase"
    assert installed.is_file() and os.access(installed, os.X_OK), res

    # A Python for the FastAPI sidecar: a virtualenv with the SDK, as before.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    str(REPO / "sdk" / "python"), "fastapi"], check=True, timeout=600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GO", "VIRTUAL_ENV"))}
    # The app lives in the project, so `npx processman` finds the installed
    # bin. npx itself dies of the SIGTERM it passes on, so the clean stop is
    # checked on the launcher it runs, which exits with the binary's status.
    quick_start(project, ["npx", "--no-install", "processman"], env, py,
                serve_with=[str(project / "node_modules" / ".bin" / "processman")])
