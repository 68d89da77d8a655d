"""Restart policy: a process that keeps crashing is restarted with an
exponential backoff, then marked errored after max_restarts."""

from __future__ import annotations

import e2e_helpers as h
from e2e_helpers import FIXTURES

RESTART_DELAY = 0.1
FACTOR = 2
MAX_RESTARTS = 3


def test_crash_loop_backs_off_then_errors(pocketbase, tmp_path):
    starts_file = tmp_path / "starts"
    pb = pocketbase([
        {
            "name": "crasher",
            "script": str(FIXTURES / "crash.sh"),
            "env": {"STARTS_FILE": str(starts_file)},
            "restart": "always",
            "restart_delay": "100ms",
            "backoff_factor": FACTOR,
            "max_restarts": MAX_RESTARTS,
            "min_uptime": "5s",
        },
    ])

    def starts() -> list[float]:
        return [float(x) for x in starts_file.read_text().split()] if starts_file.exists() else []

    want = 1 + MAX_RESTARTS
    h.wait_until(lambda: len(starts()) >= want, 30, lambda: f"{len(starts())} starts, want {want}\n{pb.logs()}")

    # Errored: no further start.
    assert h.stays_true(lambda: len(starts()) == want, 3.0), f"{len(starts())} starts, want exactly {want}"
    times = starts()
    gaps = [b - a for a, b in zip(times, times[1:])]
    print(f"restart gaps: {[round(g, 3) for g in gaps]}")
    nominal = [RESTART_DELAY * FACTOR**i for i in range(MAX_RESTARTS)]  # 0.1, 0.2, 0.4
    for i, (gap, delay) in enumerate(zip(gaps, nominal)):
        # A restart never comes before its delay...
        assert gap >= delay * 0.95, f"gap {i + 1} is {gap:.3f}s, shorter than the {delay:.1f}s backoff delay: {gaps}"
        # ...and not much later either.
        assert gap < delay + 2.0, f"gap {i + 1} is {gap:.3f}s for a {delay:.1f}s backoff delay: {gaps}"
    for i in range(1, len(gaps)):
        # Each gap grows by about the factor (0.1 s allowed for scheduling noise).
        assert gaps[i] >= 1.5 * gaps[i - 1] - 0.1, f"gaps do not grow by ~x{FACTOR}: {gaps}"

    # The log file has each run's line.
    runs = [line for line in pb.process_log_lines("crasher") if "crash: start at" in line]
    assert len(runs) == want, pb.process_log("crasher")
    assert all(" stdout crash: start at " in line for line in runs), runs

    # PocketBase's logs tell the story: 3 restarts with growing delays, then
    # the errored state.
    def story():
        exits = pb.api_logs("data.process='crasher' && message='processman: process exited, restarting'")
        errored = pb.api_logs("data.process='crasher' && message~'processman: process errored'")
        return (exits, errored) if len(exits) >= MAX_RESTARTS and errored else None

    exits, errored = pb.wait_for_logs(story, 40, "no errored log for crasher")
    assert [e["data"]["delay"] for e in exits] == ["100ms", "200ms", "400ms"], [e["data"] for e in exits]
    assert all(e["data"]["code"] == 1 and e["level"] == 4 for e in exits), exits
    assert len(errored) == 1 and errored[0]["level"] == 8, errored
    assert errored[0]["data"]["state"] == "errored" and errored[0]["data"]["code"] == 1, errored
    assert f"max_restarts {MAX_RESTARTS}" in errored[0]["message"], errored
    assert pb.marker_pids() == {}, h.describe(pb.marker_pids())
