"""The environment processman gives a sidecar (docs/environment.md and
docs/gateway.md of processman), read in one place."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["DEFAULT_DEV_PORT", "DEFAULT_SHUTDOWN_TIMEOUT", "Environment", "instance"]

DEFAULT_DEV_PORT = 8000
# Below processman's default kill_timeout (5 s), so open streams get the
# time they can have before the process group is killed.
DEFAULT_SHUTDOWN_TIMEOUT = 3.0


@dataclass(frozen=True)
class Environment:
    """What processman told this process. Read it with :meth:`load`.

    Empty strings mean "not set".
    """

    socket: str = ""
    """``PB_SOCKET``: the Unix socket to listen on (``listen: "unix"``)."""
    port: int | None = None
    """``PORT``: the loopback port to listen on (``listen: "tcp"``), or of
    development runs outside PocketBase."""
    pb_port: int | None = None
    """``PB_PORT``: PocketBase's own port (the port of ``PB_URL``)."""
    route: str = ""
    """``PB_ROUTE``: the route prefix the gateway strips, e.g. ``/api/agent``."""
    gateway_secret: str = field(default="", repr=False)
    """``PB_GATEWAY_SECRET``: the per-boot key of the identity proof. Never printed."""
    pb_url: str = ""
    """``PB_URL``: where PocketBase answers, e.g. ``http://127.0.0.1:8090``."""
    data_dir: str = ""
    """``PB_DATA_DIR``: absolute path of ``pb_data``."""
    db_dsn: str = field(default="", repr=False)
    """``DB_DSN``: a connection string of PocketBase's main database (for
    SQLite a read-only ``file:`` URI); open it read-only. Not printed: it
    may hold a password."""
    db_driver: str = ""
    """``PB_DB_DRIVER``: the database behind ``DB_DSN``, e.g. ``sqlite``."""
    db_path: str = ""
    """``PB_DB_PATH``: the SQLite database file; open it read-only."""
    process_name: str = ""
    """``PB_PROCESS_NAME``: this process's name in ``pb_processes.json``."""
    instance: int = 0
    """``PB_INSTANCE`` (or ``NODE_APP_INSTANCE``): the index of this instance
    of a process with ``instances``, 0 to N-1; 0 for a process of one, and
    outside PocketBase."""
    dev_user: str = ""
    """``PROCESSMAN_DEV_USER``: in development mode only, who every request
    is: ``guest`` (or empty), ``pocketbase`` (the owner of its token, asked of
    PocketBase at ``PB_URL``), or ``collection/id`` (``id`` alone is in
    ``users``)."""
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    """``PROCESSMAN_SHUTDOWN_TIMEOUT``: seconds open requests get to finish
    after SIGTERM."""

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Environment:
        """Reads the variables from ``environ`` (default ``os.environ``).

        Raises ``ValueError`` naming the variable when a number is malformed.
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            return env.get(name, "").strip()

        return cls(
            socket=get("PB_SOCKET"),
            port=_port(get, "PORT"),
            pb_port=_port(get, "PB_PORT"),
            route=get("PB_ROUTE"),
            gateway_secret=get("PB_GATEWAY_SECRET"),
            pb_url=get("PB_URL").rstrip("/"),
            data_dir=get("PB_DATA_DIR"),
            db_dsn=get("DB_DSN"),
            db_driver=get("PB_DB_DRIVER"),
            db_path=get("PB_DB_PATH"),
            process_name=get("PB_PROCESS_NAME"),
            instance=_instance(get),
            dev_user=get("PROCESSMAN_DEV_USER"),
            shutdown_timeout=_seconds(get, "PROCESSMAN_SHUTDOWN_TIMEOUT", DEFAULT_SHUTDOWN_TIMEOUT),
        )

    @property
    def behind_gateway(self) -> bool:
        """True when the gateway signs requests (``PB_GATEWAY_SECRET`` set)."""
        return bool(self.gateway_secret)


def instance(environ: Mapping[str, str] | None = None) -> int:
    """The index of this instance of its process (``PB_INSTANCE``, else
    ``NODE_APP_INSTANCE``), 0 when neither is set: which of the copies of
    ``"instances": N`` this one is, e.g. to pick its share of work.

    Raises ``ValueError`` naming the variable when it is not an index.
    """
    env = os.environ if environ is None else environ
    return _instance(lambda name: env.get(name, "").strip())


def _instance(get: Callable[[str], str]) -> int:
    for name in ("PB_INSTANCE", "NODE_APP_INSTANCE"):
        raw = get(name)
        if raw:
            if not raw.isdigit():
                raise ValueError(f"{name}={raw!r} is not an instance index (0, 1, ...)")
            return int(raw)
    return 0


def _port(get: Callable[[str], str], name: str) -> int | None:
    raw = get(name)
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"{name}={raw!r} is not a port number (1-65535)")
    return int(raw)


def _seconds(get: Callable[[str], str], name: str, default: float) -> float:
    raw = get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ValueError(f"{name}={raw!r} is not a number of seconds (e.g. 3 or 0.5)")
    return value
