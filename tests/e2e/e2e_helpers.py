"""Process and polling helpers for the end-to-end tests (Linux /proc based).

Everything here reads /proc directly, so it also sees processes that were
reparented after their parent died. A zombie (state Z) or a dead process
(state X) is treated as gone: on this kind of machine PID 1 may not reap
orphans, so a killed orphan can linger as a zombie that holds nothing.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"

DEAD_STATES = ("Z", "X")


@dataclass(frozen=True)
class Stat:
    pid: int
    comm: str
    state: str
    ppid: int
    pgid: int
    sid: int

    @property
    def alive(self) -> bool:
        return self.state not in DEAD_STATES


def stat(pid: int) -> Stat | None:
    """Parses /proc/<pid>/stat, or returns None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # "pid (comm) state ppid pgrp session ..."; comm may hold spaces and parens.
    open_, close = raw.find("("), raw.rfind(")")
    if open_ < 0 or close < 0:
        return None
    fields = raw[close + 2 :].split()
    try:
        return Stat(
            pid=pid,
            comm=raw[open_ + 1 : close],
            state=fields[0],
            ppid=int(fields[1]),
            pgid=int(fields[2]),
            sid=int(fields[3]),
        )
    except (IndexError, ValueError):
        return None


def is_alive(pid: int) -> bool:
    """True if pid exists and is neither a zombie nor dead."""
    st = stat(pid)
    return st is not None and st.alive


def alive(pids: Iterable[int]) -> list[int]:
    return [p for p in pids if is_alive(p)]


def all_pids() -> list[int]:
    return [int(n) for n in os.listdir("/proc") if n.isdigit()]


def all_stats() -> dict[int, Stat]:
    out = {}
    for pid in all_pids():
        st = stat(pid)
        if st is not None:
            out[pid] = st
    return out


def descendants(root: int, include_dead: bool = False) -> list[int]:
    """Every process below root, following ppid links in /proc."""
    stats = all_stats()
    children: dict[int, list[int]] = {}
    for st in stats.values():
        children.setdefault(st.ppid, []).append(st.pid)
    out, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid == root or pid in out:
            continue
        out.append(pid)
        todo.extend(children.get(pid, []))
    if not include_dead:
        out = [p for p in out if stats[p].alive]
    return sorted(out)


def environ(pid: int) -> dict[str, str] | None:
    """The environment of pid (as it was at exec), or None if unreadable."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    env = {}
    for item in raw.split(b"\0"):
        if b"=" in item:
            k, _, v = item.partition(b"=")
            env[k.decode("utf-8", "replace")] = v.decode("utf-8", "replace")
    return env


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def pids_with_env(key: str, value: str) -> dict[int, dict[str, str]]:
    """Every live, non-zombie process (but this one) whose environment has
    key=value, with its environment. Finds grandchildren after reparenting."""
    me = os.getpid()
    found = {}
    for pid in all_pids():
        if pid == me:
            continue
        env = environ(pid)
        if not env or env.get(key) != value:
            continue
        if is_alive(pid):
            found[pid] = env
    return found


def describe(pids: Iterable[int]) -> str:
    """One line per pid: state, ppid, pgid and command line, for messages."""
    lines = []
    for pid in pids:
        st = stat(pid)
        if st is None:
            lines.append(f"  {pid}: gone")
        else:
            lines.append(
                f"  {pid}: state={st.state} ppid={st.ppid} pgid={st.pgid} "
                f"cmd={' '.join(cmdline(pid)) or st.comm!r}"
            )
    return "\n".join(lines) or "  (none)"


class Timeout(AssertionError):
    pass


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    message: str | Callable[[], str] = "condition not met",
    interval: float = 0.05,
) -> T:
    """Polls predicate until it returns a truthy value, which is returned.
    Raises an AssertionError with message (a string or a callable giving
    one, evaluated at the deadline) when timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise Timeout(f"timed out after {timeout:g}s: {text}")
        time.sleep(interval)


def stays_true(predicate: Callable[[], bool], duration: float, interval: float = 0.05) -> bool:
    """True if predicate holds at every poll for duration seconds (used for
    negative checks: 'nothing else happens for a while')."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        if not predicate():
            return False
        time.sleep(interval)
    return bool(predicate())


# ---------------------------------------------------------------------------
# network and commands


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def http_request(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    """Sends a request; returns (status, parsed JSON or text). Connection
    errors raise OSError."""
    data = None
    hdrs = {"Accept": "application/json", "Connection": "close"}
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def run_pb(binary: Path, *args: str, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Runs a short pocketbase command (not serve) and returns its result."""
    return subprocess.run(
        [str(binary), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )
