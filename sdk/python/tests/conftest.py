"""Fixtures: a sidecar served by processman.serve in a subprocess, and a
real PocketBase (processman's bin/pocketbase with examples/pb_migrations).

The identity headers are signed here with hashlib/hmac straight from the
contract (processman's docs/gateway.md), not with the SDK's own signer.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

TESTS = Path(__file__).resolve().parent
REPO_ROOT = TESTS.parents[2]
SERVE_APP = TESTS / "apps" / "serve_app.py"
MIGRATIONS = REPO_ROOT / "examples" / "pb_migrations"
PB_BIN = Path(os.environ.get("PROCESSMAN_PB_BIN") or REPO_ROOT / "bin" / "pocketbase")

READY_TIMEOUT = 30.0
# Variables of the contract; the sidecar under test gets only what a test sets.
CONTRACT_VARS = (
    "PB_SOCKET", "PB_PORT", "PORT", "PB_ROUTE", "PB_GATEWAY_SECRET", "PB_URL", "PB_DATA_DIR", "DB_DSN", "PB_DB_DRIVER",
    "PB_DB_PATH", "PB_PROCESS_NAME", "PROCESSMAN_DEV_USER", "PROCESSMAN_SHUTDOWN_TIMEOUT",
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, message: Callable[[], str] | str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s: {message() if callable(message) else message}")
        time.sleep(0.05)


def gateway_headers(
    secret: str,
    method: str,
    path: str,
    id: str = "",
    collection: str = "",
    superuser: bool = False,
    at: int | None = None,
) -> dict[str, str]:
    """The five identity headers, as the gateway signs them."""
    t = str(int(time.time()) if at is None else at)
    su = "true" if superuser else "false"
    message = "\n".join(["v1", t, method.upper(), path, id, collection, su])
    proof = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return {
        "X-PB-Auth-Id": id,
        "X-PB-Auth-Collection": collection,
        "X-PB-Auth-Superuser": su,
        "X-PB-Gateway-Time": t,
        "X-PB-Gateway-Proof": proof,
    }


# ---------------------------------------------------------------------------
# the sidecar


@dataclass
class Sidecar:
    proc: subprocess.Popen
    log: Path
    env: dict[str, str]
    address: str = ""
    secret: str = field(default="", repr=False)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> str:
        def ready() -> str | None:
            for line in self.output().splitlines():
                if line.startswith("processman: ready on "):
                    return line.removeprefix("processman: ready on ")
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the sidecar exited with {self.proc.returncode} before it was ready:\n{self.output()}"
                )
            return None

        self.address = wait_until(ready, timeout, lambda: f"no ready line:\n{self.output()}")
        return self.address

    def client(self, **kw: Any) -> httpx.Client:
        if self.address.startswith("unix:"):
            transport = httpx.HTTPTransport(uds=self.address.removeprefix("unix:"))
            return httpx.Client(transport=transport, base_url="http://sidecar", **kw)
        return httpx.Client(base_url=self.address, **kw)

    def request(self, method: str, path: str, user: tuple[str, str] | None = None, signed: bool = True,
                headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:  # fmt: skip
        """One request; signed for ``user`` ((id, collection), or a guest)."""
        hdrs = {}
        if signed:
            id_, collection = user or ("", "")
            hdrs.update(gateway_headers(self.secret, method, path, id_, collection, collection == "_superusers"))
        hdrs.update(headers or {})
        with self.client(timeout=20) as c:
            return c.request(method, path, headers=hdrs, **kw)

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the sidecar did not exit within {timeout:g}s:\n{self.output()}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.fixture
def sidecar(tmp_path: Path) -> Iterator[Callable[..., Sidecar]]:
    """Factory: ``sidecar(env={...}, script=..., wait=True)`` starts the
    test app under processman.serve with exactly the contract variables
    given; ``gateway=True`` (default) also gives it a fresh secret and a
    socket path in a private directory."""
    started: list[Sidecar] = []

    def start(env: dict[str, str] | None = None, *, gateway: bool = True, wait: bool = True,
              script: Path = SERVE_APP) -> Sidecar:  # fmt: skip
        full = {k: v for k, v in os.environ.items() if k not in CONTRACT_VARS}
        secret = ""
        if gateway:
            secret = secrets.token_hex(32)
            sockdir = tmp_path / f"sock{len(started)}"
            sockdir.mkdir(mode=0o700)
            full.update({"PB_SOCKET": str(sockdir / "s.sock"), "PB_GATEWAY_SECRET": secret, "PB_ROUTE": "/api/test"})
        full.update(env or {})
        log = tmp_path / f"sidecar{len(started)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, str(script)],
                env=full,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        car = Sidecar(proc, log, full, secret=full.get("PB_GATEWAY_SECRET", ""))
        started.append(car)
        if wait:
            car.wait_ready()
        return car

    yield start
    for car in started:
        car.kill()


# ---------------------------------------------------------------------------
# PocketBase


@dataclass
class PocketBaseServer:
    url: str
    data_dir: Path
    proc: subprocess.Popen

    def create_user(self) -> tuple[str, str]:
        """Signs a new user up and logs them in; returns (token, id)."""
        email = f"u{uuid.uuid4().hex[:12]}@example.com"
        password = "pass-" + uuid.uuid4().hex[:12]
        r = httpx.post(
            f"{self.url}/api/collections/users/records",
            json={"email": email, "password": password, "passwordConfirm": password},
        )
        assert r.status_code == 200, f"sign-up failed: {r.status_code} {r.text}"
        r = httpx.post(
            f"{self.url}/api/collections/users/auth-with-password", json={"identity": email, "password": password}
        )
        assert r.status_code == 200, f"login failed: {r.status_code} {r.text}"
        body = r.json()
        return body["token"], body["record"]["id"]


@pytest.fixture(scope="session")
def pocketbase(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PocketBaseServer]:
    """A real `pocketbase serve` with the notes collection (one per session)."""
    if not PB_BIN.is_file():
        res = subprocess.run(
            ["go", "build", "-o", str(PB_BIN), "./cmd/pocketbase"], cwd=REPO_ROOT, capture_output=True, text=True
        )
        if res.returncode != 0:
            pytest.fail(f"`go build ./cmd/pocketbase` failed; build {PB_BIN} first:\n{res.stderr}", pytrace=False)
    base = tmp_path_factory.mktemp("pb")
    data_dir = base / "pb_data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(base / "pocketbase.log", "wb")  # noqa: SIM115 (closed after the session's last test)
    proc = subprocess.Popen(
        [
            str(PB_BIN),
            "serve",
            "--dir",
            str(data_dir),
            "--http",
            f"127.0.0.1:{port}",
            "--migrationsDir",
            str(MIGRATIONS),
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"pocketbase exited with {proc.returncode}:\n{(base / 'pocketbase.log').read_text()}")
        try:
            return httpx.get(f"{url}/api/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(healthy, 30, lambda: (base / "pocketbase.log").read_text())
        yield PocketBaseServer(url, data_dir, proc)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        log.close()
