"""The ready ``pocketbase`` binary with the processman plugin.

Installing this distribution puts ``pocketbase`` on PATH (the scripts
directory of the environment). ``binary()`` returns its path, and
``python -m processman_server ARGS`` runs it with ARGS.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

__all__ = ["POCKETBASE_VERSION", "__version__", "binary"]

__version__ = "@VERSION@"
#: The PocketBase release the binary carries.
POCKETBASE_VERSION = "@POCKETBASE_VERSION@"

_NAME = "pocketbase.exe" if os.name == "nt" else "pocketbase"


def binary() -> str:
    """The path of the installed ``pocketbase`` binary."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / _NAME,
        Path(sysconfig.get_path("scripts", f"{os.name}_user")) / _NAME,
        Path(sys.prefix) / ("Scripts" if os.name == "nt" else "bin") / _NAME,
    ]
    for path in candidates:
        if path.is_file():
            return str(path)
    found = shutil.which(_NAME)
    if found:
        return found
    raise FileNotFoundError(
        f"the pocketbase binary of processman-server {__version__} is not installed in {candidates[0].parent}; "
        "reinstall it with `pip install --force-reinstall processman-server`"
    )
