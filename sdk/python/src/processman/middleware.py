"""ASGI middleware that admits only requests signed by processman's gateway."""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import replace
from typing import Any

from .env import Environment
from .identity import GUEST, IdentityError, User, bearer_token, verify

__all__ = ["IdentityMiddleware", "current_user", "parse_dev_user"]

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


def parse_dev_user(spec: str) -> User | None:
    """The identity of ``PROCESSMAN_DEV_USER`` (``id`` or ``collection/id``;
    the collection defaults to ``users``); None for an empty spec."""
    spec = spec.strip()
    if not spec:
        return None
    collection, _, id_ = spec.rpartition("/")
    return User(id=id_, collection=collection or "users", superuser=collection == "_superusers")


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
    is a guest, or ``dev_user`` when set. ``secret`` and ``dev_user`` default
    (when None) to ``PB_GATEWAY_SECRET`` and ``PROCESSMAN_DEV_USER``.

    For an admitted request:

    - ``scope["state"]["user"]`` is the :class:`User`
      (``request.state.user`` in Starlette and FastAPI);
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
        dev_user: User | None = None,
        allow_unsigned: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if secret is None or dev_user is None:
            env = Environment.load()
            secret = env.gateway_secret if secret is None else secret
            dev_user = parse_dev_user(env.dev_user) if dev_user is None else dev_user
        self.app = app
        self.secret = secret
        self.dev_user = dev_user
        self.allow_unsigned = frozenset(allow_unsigned)
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            user = self.identify(scope)
        except IdentityError as e:
            await _reject(scope, receive, send, e)
            return
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
            token = next((bearer_token(v.decode("latin-1")) for k, v in headers if k.lower() == b"authorization"), None)
            return replace(self.dev_user or GUEST, token=token)
        if _route_path(scope) in self.allow_unsigned and not any(
            k.lower() == b"x-pb-gateway-proof" for k, _ in headers
        ):
            return GUEST
        method = scope.get("method", "GET")  # a WebSocket upgrade is a GET
        return verify(headers, method, _signed_path(scope), self.secret, now=self.clock())


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


async def _reject(scope: Scope, receive: Receive, send: Send, error: IdentityError) -> None:
    body = json.dumps({"status": 401, "message": str(error), "data": {}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    message = await receive()  # websocket.connect
    if message["type"] != "websocket.connect":
        return
    if "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": "unauthorized"})
