"""Fixtures of the reliability suite: the end-to-end suite's real
PocketBase (``pocketbase``, ``pb_binary``), a prober of /api/health, and
the figures every case records, printed as one table at the end (and
written to test-output/reliability.md) with the targets of
docs/security.md."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

E2E = Path(__file__).resolve().parents[1] / "e2e"
sys.path.insert(0, str(E2E))

_spec = importlib.util.spec_from_file_location("e2e_conftest", E2E / "conftest.py")
e2e_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(e2e_conftest)

import e2e_helpers as h  # noqa: E402

pb_binary = e2e_conftest.pb_binary
pocketbase = e2e_conftest.pocketbase

REPO_ROOT = E2E.parents[1]


@dataclass
class Figure:
    case: str
    name: str
    value: float
    target: str  # such as "<= 50", "== 0"
    unit: str = ""

    @property
    def ok(self) -> bool:
        op, bound = self.target.split()
        bound_value = float(bound)
        return {"<=": self.value <= bound_value, "==": self.value == bound_value, ">=": self.value >= bound_value}[op]


_figures: list[Figure] = []


@pytest.fixture
def record():
    """record(case, name, value, target, unit): keeps a figure for the
    table; the test fails at its end when a figure missed its target."""
    mine: list[Figure] = []

    def add(case: str, name: str, value: float, target: str, unit: str = "") -> bool:
        figure = Figure(case, name, value, target, unit)
        _figures.append(figure)
        mine.append(figure)
        return figure.ok

    yield add
    missed = [f"{f.name}: {f.value} {f.unit}, target {f.target}" for f in mine if not f.ok]
    assert not missed, "missed targets: " + "; ".join(missed)


def pytest_terminal_summary(terminalreporter):
    if not _figures:
        return
    rows = ["| case | figure | value | target | |", "| --- | --- | ---: | --- | --- |"]
    for f in _figures:
        value = f"{f.value:,.1f}" if isinstance(f.value, float) and not f.value.is_integer() else f"{int(f.value):,}"
        rows.append(f"| {f.case} | {f.name} | {value} {f.unit} | {f.target} {f.unit} | {'ok' if f.ok else 'MISSED'} |")
    table = "\n".join(rows)
    terminalreporter.write_sep("=", "reliability figures")
    terminalreporter.write_line(table)
    out = REPO_ROOT / "test-output"
    out.mkdir(exist_ok=True)
    (out / "reliability.md").write_text(table + "\n")


PROBE = r"""
import sys, time, urllib.request
url, interval, out = sys.argv[1], float(sys.argv[2]), open(sys.argv[3], "w", buffering=1)
while True:
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url + "/api/health", timeout=10) as r:
            ok = r.status == 200
    except Exception:
        ok = False
    took = (time.perf_counter() - start) * 1000 if ok else 10000.0
    out.write(f"{took:.3f}\n")
    time.sleep(interval)
"""


class HealthProbe:
    """Asks /api/health every interval seconds while a case runs, from a
    process of its own (so that the test's own threads do not delay it),
    and keeps each answer's latency in ms (a failure counts as 10 s)."""

    def __init__(self, url: str, out: Path, interval: float = 0.02):
        self.url, self.out, self.interval = url, out, interval
        self.latencies: list[float] = []
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> HealthProbe:
        self._proc = subprocess.Popen([sys.executable, "-c", PROBE, self.url, str(self.interval), str(self.out)])
        deadline = time.monotonic() + 10
        while not (self.out.exists() and self.out.read_text()) and time.monotonic() < deadline:
            time.sleep(0.01)  # probing from the start of the case
        return self

    def __exit__(self, *exc) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=10)
        self.latencies = [float(x) for x in self.out.read_text().split()]

    def p99(self) -> float:
        values = sorted(self.latencies)
        if not values:
            return float("inf")
        return values[min(len(values) - 1, int(len(values) * 0.99))]


@pytest.fixture
def health(tmp_path):
    """health(pb) -> a HealthProbe context of that server."""
    return lambda pb: HealthProbe(pb.url, tmp_path / f"health-{time.monotonic_ns()}.txt")
