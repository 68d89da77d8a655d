"""ASGI middleware that admits only requests signed by processman's gateway."""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import replace
from typing import Any, TypeAlias

from .client import PocketBaseError, user_from_token
from .env import Environment
from .identity import GUEST, IdentityError, User, bearer_token, verify

__all__ = ["DevUser", "IdentityMiddleware", "current_user", "parse_dev_user"]

DevUser: TypeAlias = User | str
"""Who a request is in development mode: a :class:`User`, or a spec as in
``PROCESSMAN_DEV_USER``: ``"guest"`` (or empty), ``"pocketbase"`` (the owner
of the request's token, as PocketBase at ``PB_URL`` confirms it), or
``"collection/id"`` (``"id"`` alone is in ``users``)."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_current_user: contextvars.ContextVar[User | None] = contextvars.ContextVar("processman_user", default=None)


def current_user() -> User:
    """The caller of the request being handled (set by :class:`IdentityMiddleware`).

    Code called while handling a request (tools, helpers, tasks started from
    it) reads the caller here without passing the request around. Outside a
    request it raises ``LookupError``.
    """
    user = _current_user.get()
    if user is None:
        raise LookupError("processman.current_user() was called outside a request handled by IdentityMiddleware")
    return user


def parse_dev_user(spec: DevUser | None) -> User | str:
    """The development identity of a spec (see :data:`DevUser`): a
    :class:`User`, or ``"pocketbase"``. ``"guest"`` and empty are
    :data:`GUEST`."""
    if isinstance(spec, User):
        return spec
    spec = (spec or "").strip()
    if spec in ("", "guest"):
        return GUEST
    if spec == "pocketbase":
        return spec
    collection, _, id_ = spec.rpartition("/")
    if not id_:
        raise ValueError(f"PROCESSMAN_DEV_USER={spec!r}: write guest, pocketbase, collection/id or id")
    return User(id=id_, collection=collection or "users", superuser=collection == "_superusers")


def describe_dev_user(dev: User | str, pb_url: str = "") -> str:
    """Who requests are in development mode, for the banner."""
    if dev == "pocketbase":
        return f"the owner of its token, as PocketBase at {pb_url or 'PB_URL'} confirms it"
    assert isinstance(dev, User)
    return dev.display_name if not dev.is_guest else "a guest"


class IdentityMiddleware:
    """Verifies the gateway's identity proof of every HTTP and WebSocket
    request and tells the app who called.

    With a gateway secret (``PB_GATEWAY_SECRET``, the default source), a
    request without a valid proof gets 401 in PocketBase's error format
    (``{"status": 401, "message": ..., "data": {}}``); a WebSocket is refused
    the same way before it is accepted. Paths in ``allow_unsigned`` (exact
    paths, e.g. ``{"/health"}`` for a ``health.http`` check, which the
    gateway does not sign) pass unsigned requests through as guests.

    Without a secret (development, outside PocketBase) no request is
    trusted to say who it is: identity headers are ignored and every request
    is ``dev_user`` (see :data:`DevUser`; a guest by default). ``secret`` and
    ``dev_user`` default (when None) to ``PB_GATEWAY_SECRET`` and
    ``PROCESSMAN_DEV_USER``.

    For an admitted request:

    - ``scope["user"]`` is the :class:`User` (``request.user`` in Starlette
      and FastAPI) and ``scope["auth"]`` its scopes, so Starlette's
      ``@requires("authenticated")`` (or ``"superuser"``) works;
    - ``scope["state"]["user"]`` is the :class:`User` too
      (``request.state.user``);
    - for a signed-in caller, ``scope["state"]["user_id"]`` is their record id
      and ``scope["state"]["authenticated"]`` is True (agno's AgentOS keys
      runs and sessions by ``request.state.user_id``);
    - :func:`current_user` returns the user while the request is handled.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        secret: str | None = None,
        dev_user: DevUser | None = None,
        allow_unsigned: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if secret is None or dev_user is None:
            env = Environment.load()
            secret = env.gateway_secret if secret is None else secret
            dev_user = env.dev_user if dev_user is None else dev_user
        self.app = app
        self.secret = secret
        self.dev_user = parse_dev_user(dev_user)
        self.allow_unsigned = frozenset(allow_unsigned)
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            user = self.identify(scope)
            if self.dev_user == "pocketbase" and not self.secret and user.token:
                user = await user_from_token(user.token) or GUEST
        except IdentityError as e:
            await _reject(scope, receive, send, 401, str(e))
            return
        except PocketBaseError as e:
            print(f"processman: could not identify the caller: {e}", flush=True)
            await _reject(scope, receive, send, 500, "Could not identify the caller.")
            return
        scope["user"] = user
        scope["auth"] = _Credentials(user.scopes)
        state = scope.setdefault("state", {})
        state["user"] = user
        if not user.is_guest:
            state["user_id"] = user.id
            state["authenticated"] = True
        reset = _current_user.set(user)
        try:
            await self.app(scope, receive, send)
        finally:
            _current_user.reset(reset)

    def identify(self, scope: Scope) -> User:
        """The caller of a request, or :class:`IdentityError`."""
        headers = scope.get("headers") or []
        if not self.secret:
            token = next((bearer_token(v.decode("latin-1")) for k, v in headers if k.lower() == b"authorization"), "")
            if self.dev_user == "pocketbase":
                return replace(GUEST, token=token)  # __call__ asks PocketBase whose it is
            assert isinstance(self.dev_user, User)
            if self.dev_user.is_guest:
                return GUEST  # a guest has no token
            return replace(self.dev_user, token=self.dev_user.token or token)
        if _route_path(scope) in self.allow_unsigned and not any(
            k.lower() == b"x-pb-gateway-proof" for k, _ in headers
        ):
            return GUEST
        method = scope.get("method", "GET")  # a WebSocket upgrade is a GET
        return verify(headers, method, _signed_path(scope), self.secret, now=self.clock())


class _Credentials:
    """Starlette's ``AuthCredentials`` without importing Starlette: what
    ``requires`` reads from ``request.auth``."""

    __slots__ = ("scopes",)

    def __init__(self, scopes: list[str]) -> None:
        self.scopes = scopes


def _route_path(scope: Scope) -> str:
    """The path the app routes on: without a root_path the server prepended."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _signed_path(scope: Scope) -> str:
    """The request target as received: raw path (without a root_path the
    server prepended) and query string."""
    raw: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
    root: bytes = scope.get("root_path", "").encode("utf-8")
    if root and raw.startswith(root):
        raw = raw[len(root) :]
    query: bytes = scope.get("query_string") or b""
    target = raw + b"?" + query if query else raw
    return target.decode("utf-8", "surrogateescape")


async def _reject(scope: Scope, receive: Receive, send: Send, status: int, reason: str) -> None:
    body = json.dumps({"status": status, "message": reason, "data": {}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    message = await receive()  # websocket.connect
    if message["type"] != "websocket.connect":
        return
    if "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": "unauthorized"})
