"""Run an ASGI app where processman's gateway expects it."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import sys
from collections.abc import Iterable
from typing import Any

import uvicorn

from .env import DEFAULT_DEV_PORT, Environment
from .identity import User
from .middleware import ASGIApp, DevUser, IdentityMiddleware, describe_dev_user, parse_dev_user

__all__ = ["remove_stale_socket", "serve"]

_BIND_OPTIONS = ("uds", "fd", "host", "port")


def serve(
    app: ASGIApp | str,
    *,
    identity: bool = True,
    allow_unsigned: Iterable[str] = (),
    dev_user: DevUser | None = None,
    **uvicorn_options: Any,
) -> None:
    """Serves ``app`` (any ASGI app: FastAPI, Starlette, agno's
    ``AgentOS.get_app()``) with uvicorn until SIGTERM or SIGINT.

    Where it listens:

    - under the gateway with ``listen: "unix"``: the Unix socket ``PB_SOCKET``
      (a stale socket file left by a killed run is removed first);
    - with ``listen: "tcp"``: ``127.0.0.1:$PORT``;
    - outside PocketBase (development): ``127.0.0.1:$PORT``, or port 8000.

    ``uds``, ``fd``, ``host`` or ``port`` in ``uvicorn_options`` override that.
    Once listening it prints ``processman: ready on <address>`` (usable as a
    ``health.line``).

    With ``identity`` (the default) the app is wrapped in
    :class:`~processman.IdentityMiddleware` (unless it is one already): under the gateway every request
    must carry a valid identity proof (else 401); in development (no
    ``PB_GATEWAY_SECRET``) every request is ``dev_user`` (default
    ``PROCESSMAN_DEV_USER``, else a guest; see :data:`~processman.DevUser`).

    On SIGTERM it stops accepting connections and gives open requests and
    streams ``timeout_graceful_shutdown`` seconds (default
    ``PROCESSMAN_SHUTDOWN_TIMEOUT``, else 3, under processman's 5 s
    ``kill_timeout``) to finish, then cancels them and exits.
    Other ``uvicorn_options`` go to ``uvicorn.Config`` as they are.
    """
    env = Environment.load()
    dev = parse_dev_user(env.dev_user if dev_user is None else dev_user)
    if dev == "pocketbase" and not env.behind_gateway and not env.pb_url:
        raise ValueError(
            'dev_user "pocketbase" asks PocketBase who a token belongs to; set PB_URL (e.g. http://127.0.0.1:8090)'
        )
    if identity and not isinstance(app, IdentityMiddleware):
        if isinstance(app, str):
            raise TypeError("serve(): pass the app object, not an import string, when identity=True")
        app = IdentityMiddleware(app, secret=env.gateway_secret, dev_user=dev, allow_unsigned=allow_unsigned)
    options: dict[str, Any] = {"timeout_graceful_shutdown": env.shutdown_timeout}
    if not any(key in uvicorn_options for key in _BIND_OPTIONS):
        options.update(_bind(env))
    if options.get("uds") and "forwarded_allow_ips" not in uvicorn_options:
        # Only processes that can enter the socket's private directory
        # connect, so the gateway's X-Forwarded-* headers are to be believed.
        options["forwarded_allow_ips"] = "*"
    options.update(uvicorn_options)
    if options.get("uds"):
        remove_stale_socket(options["uds"])

    _banner(env, identity, dev)
    server = _Server(uvicorn.Config(app, **options))
    server.run()
    if not server.started:
        sys.exit(3)


def _bind(env: Environment) -> dict[str, Any]:
    if env.socket:
        return {"uds": env.socket}
    if env.behind_gateway and not env.port:
        raise ValueError(
            "PB_GATEWAY_SECRET is set but neither PB_SOCKET nor PORT: processman gives one of them to a routed process"
        )
    return {"host": "127.0.0.1", "port": env.port or DEFAULT_DEV_PORT}


def remove_stale_socket(path: str) -> None:
    """Removes a Unix socket file nothing listens on any more.

    Raises ``RuntimeError`` if the path is not a socket, or a live server
    still accepts connections on it.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise RuntimeError(f"{path} exists and is not a socket; remove it or listen elsewhere")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError as e:
        if e.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise
    else:
        raise RuntimeError(f"another process is listening on {path}; stop it first")
    finally:
        probe.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _banner(env: Environment, identity: bool, dev: User | str) -> None:
    if not identity:
        _say("identity checks are off (serve(identity=False)): the app must verify requests itself")
    elif not env.behind_gateway:
        _say(
            "development mode: PB_GATEWAY_SECRET is not set, so identity headers are ignored "
            f"and every request is {describe_dev_user(dev, env.pb_url)} "
            "(set PROCESSMAN_DEV_USER to collection/id or pocketbase to act as a user)"
        )


def _say(text: str) -> None:
    print(f"processman: {text}", flush=True)


class _Server(uvicorn.Server):
    """uvicorn's server, printing one ready line once it listens."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            _say(f"ready on {self.address()}")

    def address(self) -> str:
        """Where the server listens, as bound (a port 0 resolved)."""
        for server in self.servers:
            for sock in server.sockets:
                name = sock.getsockname()
                if sock.family == socket.AF_UNIX:
                    return f"unix:{name}"
                host = f"[{name[0]}]" if sock.family == socket.AF_INET6 else name[0]
                return f"http://{host}:{name[1]}"
        return f"http://{self.config.host}:{self.config.port}"
