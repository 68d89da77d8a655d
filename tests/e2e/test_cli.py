"""`pocketbase pm` verbs against a running PocketBase: list, describe,
logs (and -f), start, stop, restart, with the server found through the
data dir and credentials made from it, given as a token, or as a
superuser's email and password."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from conftest import SUPERUSER_EMAIL, SUPERUSER_PASSWORD
from e2e_helpers import run_pb, wait_until

TICKER = {
    "name": "ticker",
    "script": "sh",
    "args": ["-c", 'i=0; while :; do i=$((i+1)); echo "tick $i"; echo "warn $i" >&2; sleep 0.3; done'],
    "env": {"OPENAI_API_KEY": "sk-cli-secret", "MODE": "demo"},
}
CRASHY = {
    "name": "crashy",
    "script": "sh",
    "args": ["-c", "echo 'about to fail'; exit 7"],
    "max_restarts": 1,
    "restart_delay": "10ms",
}


def pm(pb, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Runs `pocketbase pm ARGS --dir <the server's pb_data>`, without the
    credentials of the test's environment. --dev=false: a binary under the
    temp dir looks like `go run` to PocketBase, whose dev mode prints every
    SQL statement to stdout."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PB_")}
    full_env.update(env or {})
    return subprocess.run(
        [str(pb.binary), "pm", *args, "--dir", str(pb.data_dir), "--dev=false"],
        capture_output=True, text=True, timeout=timeout, env=full_env, stdin=subprocess.DEVNULL,
    )


def pm_json(pb, *args: str, **kw):
    res = pm(pb, *args, "--json", **kw)
    assert res.returncode == 0, f"pm {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
    return json.loads(res.stdout)


@pytest.fixture
def server(pocketbase):
    pb = pocketbase([TICKER, CRASHY])
    wait_until(lambda: {p["name"]: p["state"] for p in pm_json(pb, "list")} == {"ticker": "online", "crashy": "errored"},
               timeout=30, message="ticker online and crashy errored")
    return pb


def test_list_table_and_json(server):
    res = pm(server, "list")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "PID", "UPTIME", "RESTARTS", "CPU", "MEMORY", "READY", "ROUTE"]
    ticker = next(line.split() for line in lines if line.startswith("ticker"))
    assert ticker[1] == "online" and ticker[2].isdigit() and ticker[-2] == "yes" and ticker[-1] == "-"
    assert "\x1b[" not in res.stdout, "colour codes in output that is not a terminal"
    assert any(line.startswith("errored crashy: exited 2 times") for line in lines), res.stdout

    items = {p["name"]: p for p in pm_json(server, "list")}
    assert items["ticker"]["memory"] > 0 and items["ticker"]["tree_size"] >= 2
    assert items["crashy"]["last_exit"]["code"] == 7


def test_describe_redacts_and_shows_the_crash(server):
    res = pm(server, "describe", "ticker")
    assert res.returncode == 0, res.stderr
    assert "sk-cli-secret" not in res.stdout
    assert any(line.split()[:2] == ["OPENAI_API_KEY", "********"] for line in res.stdout.splitlines()), res.stdout
    assert any(line.split()[:2] == ["MODE", "demo"] for line in res.stdout.splitlines()), res.stdout

    detail = pm_json(server, "describe", "crashy")
    assert detail["state"] == "errored" and "max_restarts 1" in detail["error"]
    assert [line["text"] for line in detail["last_crash"]["last_lines"]] == ["about to fail"]
    text = pm(server, "describe", "crashy").stdout
    assert "last crash: code 7" in text and "about to fail" in text


def test_restart_stop_start(server):
    before = {p["name"]: p for p in pm_json(server, "list")}["ticker"]["pid"]
    after = pm_json(server, "restart", "ticker")
    assert after["state"] == "online" and after["pid"] not in (0, before) and after["restarts"] == 1

    stopped = pm_json(server, "stop", "ticker")
    assert stopped["state"] == "stopped" and stopped["pid"] == 0 and stopped["last_exit"]["requested"]
    res = pm(server, "start", "ticker")
    assert res.returncode == 0 and "online" in res.stdout, res.stdout + res.stderr


def test_logs_and_follow(server):
    wait_until(lambda: len(pm(server, "logs", "ticker", "-n", "9").stdout.splitlines()) >= 6,
               timeout=15, message="the ticker's first 6 lines")
    res = pm(server, "logs", "ticker", "-n", "4")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 4 and all(" ticker | " in line for line in lines), res.stdout
    assert {line.split(" | ")[1].split()[0] for line in lines} == {"tick", "warn"}

    follow = subprocess.Popen(
        [str(server.binary), "pm", "logs", "ticker", "-f", "-n", "0", "--json", "--dir", str(server.data_dir), "--dev=false"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("PB_")},
    )
    try:
        started = time.monotonic()
        first = json.loads(follow.stdout.readline())
        second = json.loads(follow.stdout.readline())
        assert time.monotonic() - started < 15
        assert first["text"].split()[0] in ("tick", "warn") and second["pid"] == first["pid"]
    finally:
        follow.terminate()
        assert follow.wait(timeout=10) == 0, follow.stderr.read()


def test_credentials(server):
    token = server.token()
    # A token or a password login, with the server given by URL.
    assert pm(server, "list", "--url", server.url, env={"PB_TOKEN": token}).returncode == 0
    res = pm(server, "list", "--url", server.url, "--email", SUPERUSER_EMAIL, "--password", SUPERUSER_PASSWORD)
    assert res.returncode == 0, res.stderr

    res = pm(server, "list", "--token", "not-a-token")
    assert res.returncode == 1 and "401" in res.stderr and "--token" in res.stderr, res.stderr
    res = pm(server, "list", "--email", SUPERUSER_EMAIL, "--password", "wrong-password")
    assert res.returncode == 1 and "superuser login as test@example.com failed" in res.stderr, res.stderr
    res = pm(server, "restart", "nope")
    assert res.returncode == 1 and 'No process named "nope"' in res.stderr, res.stderr


def test_no_superuser_yet(pocketbase):
    pb = pocketbase([], superuser=False)
    res = pm(pb, "list")
    assert res.returncode == 1 and "pocketbase superuser upsert EMAIL PASSWORD" in res.stderr, res.stderr


def test_not_running(pocketbase, tmp_path):
    pb = pocketbase([])
    pb.stop()
    res = pm(pb, "list")
    assert res.returncode == 1
    assert "PocketBase is not running at http://127.0.0.1:8090" in res.stderr, res.stderr
    res = run_pb(pb.binary, "pm", "list", "--url", "http://127.0.0.1:9", "--dir", str(tmp_path / "pb_data"))
    assert res.returncode == 1 and "not running at http://127.0.0.1:9" in res.stderr, res.stderr
