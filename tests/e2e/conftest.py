"""Fixtures for the processman end-to-end tests.

- ``pb_binary`` (session) builds bin/pocketbase once with ``go build``.
- ``pocketbase`` is a factory: it writes pb_processes.json into a fresh
  temporary directory, runs ``pocketbase serve`` there on a free loopback
  port, waits for /api/health, and returns a :class:`PocketBase`. At
  teardown it kills everything it started, grandchildren included.

Every process entry given as a dict gets ``E2E_MARKER=<uuid of this
server>`` in its ``env``: descendants inherit it, so
``PocketBase.marker_pids()`` finds the whole tree even after reparenting.
PocketBase itself runs with ``E2E_OWNER=<another uuid>``, which every
process it starts inherits (the watchdog too); teardown kills by that.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import pytest

import e2e_helpers as h
from e2e_helpers import REPO_ROOT, free_port, http_request, run_pb

PB_BIN = REPO_ROOT / "bin" / "pocketbase"

SUPERUSER_EMAIL = "test@example.com"
SUPERUSER_PASSWORD = "1234567890"

HEALTH_TIMEOUT = 30.0
# See PocketBase.wait_for_logs.
LOGS_POLL_INTERVAL = 3.5
WATCHDOG_NAME = "processman-watchdog"


# ---------------------------------------------------------------------------
# build


@pytest.fixture(scope="session")
def pb_binary() -> Path:
    """Builds bin/pocketbase once per session; fails every test using it
    with the compiler output when the build fails.

    E2E_PB_BIN=/path/to/pocketbase skips the build and tests that binary
    instead (e.g. a deliberately broken build, to see the tests fail)."""
    override = os.environ.get("E2E_PB_BIN")
    if override:
        path = Path(override).resolve()
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(f"E2E_PB_BIN={override} is not an executable file", pytrace=False)
        return path
    go = shutil.which("go")
    if go is None:
        pytest.fail("the `go` toolchain is not on PATH: cannot build bin/pocketbase", pytrace=False)
    try:
        res = subprocess.run(
            [go, "build", "-o", str(PB_BIN), "./cmd/pocketbase"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=900,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("`go build ./cmd/pocketbase` took more than 15 minutes", pytrace=False)
    if res.returncode != 0:
        pytest.fail(
            f"`go build -o bin/pocketbase ./cmd/pocketbase` failed (exit {res.returncode}):\n"
            f"{res.stdout}\n{res.stderr}",
            pytrace=False,
        )
    assert PB_BIN.is_file(), f"go build succeeded but {PB_BIN} is missing"
    return PB_BIN


# ---------------------------------------------------------------------------
# the server under test

_server_ids = itertools.count(1)


class PocketBase:
    """One `pocketbase serve` run. Use the ``pocketbase`` fixture to get one."""

    def __init__(self, binary: Path, base_dir: Path, processes_file: Path | None, extra_args: tuple[str, ...], marker: str):
        self.binary = binary
        self.base_dir = base_dir
        self.data_dir = base_dir / "pb_data"
        self.processes_file = processes_file
        self.extra_args = extra_args
        self.marker = marker  # E2E_MARKER given to every configured process
        self.owner = uuid.uuid4().hex  # E2E_OWNER inherited by all PocketBase starts
        self.port = 0
        self.url = ""
        self.proc: subprocess.Popen | None = None
        self.recorded_pgids: set[int] = set()
        self._token: str | None = None
        self._files: list = []
        self._run = 0
        self._id = next(_server_ids)
        self.stdout_path = base_dir / f"pocketbase-{self._id}.stdout"
        self.stderr_path = base_dir / f"pocketbase-{self._id}.stderr"

    # -- life cycle --------------------------------------------------------

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, wait_healthy: bool = True) -> None:
        for attempt in range(3):
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self._run += 1
            suffix = "" if self._run == 1 else f".{self._run}"
            self.stdout_path = self.base_dir / f"pocketbase-{self._id}.stdout{suffix}"
            self.stderr_path = self.base_dir / f"pocketbase-{self._id}.stderr{suffix}"
            out = open(self.stdout_path, "wb")
            err = open(self.stderr_path, "wb")
            self._files += [out, err]
            # --dev=false: a binary under the temp dir (a checkout in /tmp)
            # would be in PocketBase's dev mode, which prints every log
            # record and SQL statement on stdout.
            args = [str(self.binary), "serve", "--dir", str(self.data_dir), "--http", f"127.0.0.1:{self.port}", "--dev=false"]
            if self.processes_file is not None:
                args += ["--processes", str(self.processes_file)]
            args += list(self.extra_args)
            env = dict(os.environ)
            env["E2E_OWNER"] = self.owner
            self.proc = subprocess.Popen(
                args,
                cwd=self.base_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,  # a terminal's Ctrl-C must not hit it
            )
            if not wait_healthy:
                return
            try:
                self.wait_healthy()
                return
            except AssertionError:
                if self.proc.poll() is not None and "address already in use" in self.stderr() and attempt < 2:
                    continue  # lost the race for the port: try another
                raise

    def wait_healthy(self, timeout: float = HEALTH_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"pocketbase serve exited with {self.proc.returncode} before answering /api/health\n{self.logs()}"
                )
            try:
                status, body = http_request("GET", self.url + "/api/health", timeout=5)
                if status == 200:
                    return
                last = f"status {status}: {body}"
            except OSError as e:
                last = repr(e)
            if time.monotonic() >= deadline:
                raise AssertionError(f"/api/health did not answer 200 within {timeout:g}s ({last})\n{self.logs()}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Sends sig to PocketBase and waits for it to exit; returns its
        exit status (negative: killed by that signal)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.record_pgids()
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"pocketbase did not exit within {timeout:g}s of {signal.Signals(sig).name}\n{self.logs()}"
            ) from None

    def kill_all(self) -> None:
        """Kills PocketBase and everything it started (by the E2E_OWNER and
        E2E_MARKER variables, by /proc descendants and by the process groups
        seen during the test). Safe to call at any time, many times."""
        own_pgid = os.getpgrp()
        deadline = time.monotonic() + 10
        while True:
            pids = set(h.pids_with_env("E2E_OWNER", self.owner))
            pids |= set(h.pids_with_env("E2E_MARKER", self.marker))
            if self.proc is not None and self.proc.poll() is None:
                pids |= set(h.descendants(self.proc.pid))
                pids.add(self.proc.pid)
            pgids = set(self.recorded_pgids)
            for pid in pids:
                st = h.stat(pid)
                if st is not None:
                    pgids.add(st.pgid)
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            for pgid in pgids:
                if pgid > 1 and pgid != own_pgid:
                    try:
                        os.killpg(pgid, signal.SIGKILL)
                    except OSError:
                        pass
            if not pids or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for f in self._files:
            f.close()
        self._files.clear()

    # -- output ---------------------------------------------------------------

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def logs(self) -> str:
        """PocketBase's own stdout and stderr, for assertion messages."""
        return f"--- pocketbase stdout ---\n{self.stdout()}--- pocketbase stderr ---\n{self.stderr()}"

    def log_file(self, name: str) -> Path:
        return self.data_dir / "processman" / "logs" / f"{name}.log"

    def process_log(self, name: str) -> str:
        """The per-process log file's contents ('' if it does not exist)."""
        path = self.log_file(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def process_log_lines(self, name: str) -> list[str]:
        return self.process_log(name).splitlines()

    # -- processes --------------------------------------------------------------

    def record_pgids(self, pids=None) -> None:
        for pid in pids if pids is not None else list(self.marker_pids()):
            st = h.stat(pid)
            if st is not None and st.pgid > 1:
                self.recorded_pgids.add(st.pgid)

    def marker_pids(self) -> dict[int, dict[str, str]]:
        """Live processes carrying this server's E2E_MARKER, with their env."""
        found = h.pids_with_env("E2E_MARKER", self.marker)
        for pid in found:
            st = h.stat(pid)
            if st is not None and st.pgid > 1:
                self.recorded_pgids.add(st.pgid)
        return found

    def marker_counts(self) -> dict[str, int]:
        """How many live marker processes each PB_PROCESS_NAME has."""
        counts: dict[str, int] = {}
        for env in self.marker_pids().values():
            name = env.get("PB_PROCESS_NAME", "?")
            counts[name] = counts.get(name, 0) + 1
        return counts

    def descendants(self) -> list[int]:
        pids = h.descendants(self.pid)
        self.record_pgids(pids)
        return pids

    def watchdog_pids(self) -> list[int]:
        """Live children of PocketBase that are the processman watchdog."""
        return sorted(
            st.pid
            for st in h.all_stats().values()
            if st.ppid == self.pid and st.alive and WATCHDOG_NAME in h.cmdline(st.pid)
        )

    # -- HTTP API -------------------------------------------------------------

    def get(self, path: str, **kw) -> tuple[int, Any]:
        return http_request("GET", self.url + path, **kw)

    def token(self) -> str:
        if self._token is None:
            status, body = http_request(
                "POST",
                self.url + "/api/collections/_superusers/auth-with-password",
                body={"identity": SUPERUSER_EMAIL, "password": SUPERUSER_PASSWORD},
            )
            assert status == 200 and isinstance(body, dict) and body.get("token"), (
                f"superuser auth failed: {status} {body}"
            )
            self._token = body["token"]
        return self._token

    def api(self, method: str, path: str) -> Any:
        """A call of the control API as the test superuser; it must answer 200."""
        status, body = http_request(method, self.url + path, headers={"Authorization": self.token()})
        assert status == 200, f"{method} {path}: {status} {body}"
        return body

    def api_logs_page(self, filter: str | None = None, per_page: int = 1000, page: int = 1, sort: str | None = None) -> dict:
        params = {"perPage": str(per_page), "page": str(page)}
        if filter:
            params["filter"] = filter
        if sort:
            params["sort"] = sort
        status, body = http_request(
            "GET",
            self.url + "/api/logs?" + urllib.parse.urlencode(params),
            headers={"Authorization": self.token()},
        )
        assert status == 200 and isinstance(body, dict), f"GET /api/logs failed: {status} {body}"
        return body

    def api_logs(self, filter: str | None = None, sort: str = "created") -> list[dict]:
        """Every log matching filter (all pages)."""
        items: list[dict] = []
        page = 1
        while True:
            body = self.api_logs_page(filter, per_page=1000, page=page, sort=sort)
            items += body["items"]
            if page >= body.get("totalPages", 1) or not body["items"]:
                return items
            page += 1

    def api_logs_count(self, filter: str | None = None) -> int:
        return self.api_logs_page(filter, per_page=1, sort=None)["totalItems"]

    def wait_for_logs(self, check, timeout: float = 40, message="", interval: float = LOGS_POLL_INTERVAL):
        """Polls GET /api/logs until check() (which queries it) returns a
        truthy value, and returns that value.

        PocketBase keeps logs in memory and writes them to its database
        either 3 s after the last log was added or once 200 are pending.
        Every request, these polls included, adds a log: polling faster
        than every 3 s would keep postponing the write. Hence the interval.
        """
        return h.wait_until(check, timeout, lambda: f"{message() if callable(message) else message}\n{self.logs()}", interval=interval)


def add_marker(processes: list[dict], marker: str) -> list[dict]:
    out = []
    for p in processes:
        if isinstance(p, dict):
            p = dict(p)
            env = dict(p.get("env") or {})
            env.setdefault("E2E_MARKER", marker)
            p["env"] = env
        out.append(p)
    return out


@pytest.fixture
def pocketbase(pb_binary, tmp_path):
    """Factory: ``pocketbase(processes=[...])`` starts a server and returns a
    :class:`PocketBase`.

    Arguments (all keyword except ``processes``):
      processes      list of process entries; written as pb_processes.json
                     beside pb_data (each dict entry gets E2E_MARKER).
      raw_config     text written as pb_processes.json as is (e.g. bad JSON).
      processes_file pass ``--processes FILE`` (nothing is written then,
                     unless processes/raw_config are given too).
      base_dir       reuse a directory (and its pb_data) of an earlier run.
      files          {relative path: text} written beside pb_data first.
      superuser      create the test superuser first (default True).
      wait_healthy   wait for /api/health (default True).
    """
    started: list[PocketBase] = []
    counter = itertools.count()

    def factory(
        processes: list[dict] | None = None,
        *,
        raw_config: str | None = None,
        processes_file: Path | None = None,
        base_dir: Path | None = None,
        marker: str | None = None,
        superuser: bool = True,
        extra_args: tuple[str, ...] = (),
        wait_healthy: bool = True,
        files: dict[str, str] | None = None,
    ) -> PocketBase:
        if base_dir is None:
            base_dir = tmp_path / f"pb{next(counter)}"
        base_dir.mkdir(parents=True, exist_ok=True)
        for name, text in (files or {}).items():
            (base_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (base_dir / name).write_text(text)
        marker = marker or uuid.uuid4().hex
        config_path = base_dir / "pb_processes.json"
        if raw_config is not None:
            config_path.write_text(raw_config)
        elif processes is not None:
            config_path.write_text(json.dumps({"processes": add_marker(processes, marker)}, indent=2))
        pb = PocketBase(pb_binary, base_dir, processes_file, tuple(extra_args), marker)
        started.append(pb)
        if superuser:
            res = run_pb(pb_binary, "superuser", "upsert", SUPERUSER_EMAIL, SUPERUSER_PASSWORD, "--dir", str(pb.data_dir))
            assert res.returncode == 0, f"superuser upsert failed:\n{res.stdout}\n{res.stderr}"
        pb.start(wait_healthy=wait_healthy)
        return pb

    yield factory

    for pb in reversed(started):
        pb.kill_all()
