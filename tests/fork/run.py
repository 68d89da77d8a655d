#!/usr/bin/env python3
"""make test-fork: the plugin, its tests and the ready binary against a
PostgreSQL fork of PocketBase, on a real PostgreSQL 17.

    run.py FORK_SRC

1. Writes build/fork/fork.mod (modfile.py): this module against the fork's
   source, with the fork's own replace lines (its dbx).
2. Starts PostgreSQL 17 with ICU on 127.0.0.1 (postgres.py), stopped at the end.
3. go vet and go test ./... against the fork, each test app on databases of
   its own (internal/testutil).
4. Builds the ready binary against the fork (build/fork/pocketbase) and runs
   tests/fork (serve, children on DB_DSN, logs in _logs, pm, replicas) and the
   SDKs' PostgreSQL tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = ROOT / "build" / "fork"
sys.path.insert(0, str(HERE))

import postgres  # noqa: E402


def step(title: str, argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> None:
    print(f"\n== test-fork: {title}\n$ {' '.join(argv)}", flush=True)
    started = time.monotonic()
    result = subprocess.run(argv, cwd=cwd, env=env)
    if result.returncode != 0:
        raise SystemExit(f"test-fork: {title} failed (exit {result.returncode})")
    print(f"== test-fork: {title}: ok in {time.monotonic() - started:.0f} s", flush=True)


def main() -> None:
    if len(sys.argv) != 2 or not sys.argv[1]:
        raise SystemExit(
            "usage: run.py FORK_SRC (a fork's source directory or .tar.gz), e.g. make test-fork FORK_SRC=../pocketbase-postgres"
        )
    source = Path(sys.argv[1])
    env = dict(os.environ)
    step("go.mod against the fork", [sys.executable, str(HERE / "modfile.py"), str(source), str(OUT)], env)
    modfile = f"-modfile={OUT / 'fork.mod'}"
    server = OUT / "postgres"
    print(f"\n== test-fork: PostgreSQL 17 in {server}", flush=True)
    env["POSTGRES_URL"] = postgres.start(server, postgres.free_port())
    try:
        step("go vet", ["go", "vet", modfile, "./..."], env)
        step("go test", ["go", "test", "-count=1", modfile, "./..."], env)
        binary = OUT / "pocketbase"
        version = (ROOT / "VERSION").read_text().strip()
        ldflags = f"-X main.version={version} -X main.commit=fork"
        step(
            "the ready binary",
            ["go", "build", modfile, "-ldflags", ldflags, "-o", str(binary), "./cmd/pocketbase"],
            env,
        )
        env["FORK_PB_BIN"] = str(binary)
        step("end-to-end on the fork", [str(ROOT / ".venv" / "bin" / "pytest"), "-q", "tests/fork"], env)
        step(
            "Python SDK on PostgreSQL",
            [str(ROOT / "sdk/python/.venv/bin/pytest"), "-q", "sdk/python/tests/test_db.py"],
            env,
        )
        step("Node SDK on PostgreSQL", ["node", "--test", "test/db.test.js"], env, cwd=ROOT / "sdk" / "node")
    finally:
        postgres.stop(server)
        print(f"== test-fork: PostgreSQL stopped, {server} removed", flush=True)


if __name__ == "__main__":
    main()
