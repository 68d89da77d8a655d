"""``python -m processman ARGS``: runs the ready ``pocketbase`` binary with
ARGS (``python -m processman serve``), as installed by the ``server``
extra: ``pip install "processman[server]"``."""

from __future__ import annotations

import os
import subprocess
import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        from processman_server import binary  # type: ignore[import-not-found]
    except ImportError:
        print(
            'processman: the pocketbase binary is not installed; install it with pip install "processman[server]"',
            file=sys.stderr,
        )
        return 1
    try:
        path = binary()
    except FileNotFoundError as err:
        print(f"processman: {err}", file=sys.stderr)
        return 1
    if os.name == "nt":
        return subprocess.call([path, *args])
    os.execv(path, [path, *args])  # the binary takes over: signals reach it directly
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
