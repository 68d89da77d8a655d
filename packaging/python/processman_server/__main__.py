"""``python -m processman_server ARGS``: runs the installed pocketbase binary."""

from __future__ import annotations

import os
import subprocess
import sys

from processman_server import binary


def main() -> int:
    path = binary()
    args = [path, *sys.argv[1:]]
    if os.name == "nt":
        return subprocess.call(args)
    os.execv(path, args)  # the binary takes over this process: signals reach it directly
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
