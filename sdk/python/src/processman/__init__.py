"""processman's sidecar SDK: serve an ASGI app behind PocketBase's gateway.

    import processman
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/hello")
    async def hello():
        user = processman.current_user()
        return {"user": user.id or "guest"}

    processman.serve(app)

:func:`serve` listens where the gateway expects (``PB_SOCKET``, or ``PORT``)
and checks every request's identity proof; :func:`current_user` (or
``request.state.user``) is the caller; :class:`PocketBase` and
:class:`AsyncPocketBase` call PocketBase as that caller.
"""

from .client import (
    AsyncCollection,
    AsyncPocketBase,
    Collection,
    ListResult,
    PocketBase,
    PocketBaseError,
    Record,
    user_from_token,
)
from .db import POSTGRES_EXTRA, Database, connect_readonly, database
from .env import DEFAULT_DEV_PORT, DEFAULT_SHUTDOWN_TIMEOUT, Environment, instance
from .identity import (
    GUEST,
    HEADER_AUTH_COLLECTION,
    HEADER_AUTH_ID,
    HEADER_AUTH_SUPERUSER,
    HEADER_GATEWAY_PROOF,
    HEADER_GATEWAY_TIME,
    MAX_SKEW_SECONDS,
    IdentityError,
    User,
    canonical,
    canonical_string,
    sign,
    sign_headers,
    signed_headers,
    verify,
)
from .middleware import DevUser, IdentityMiddleware, current_user
from .serve import serve

__all__ = [
    "DEFAULT_DEV_PORT",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "GUEST",
    "HEADER_AUTH_COLLECTION",
    "HEADER_AUTH_ID",
    "HEADER_AUTH_SUPERUSER",
    "HEADER_GATEWAY_PROOF",
    "HEADER_GATEWAY_TIME",
    "MAX_SKEW_SECONDS",
    "POSTGRES_EXTRA",
    "AsyncCollection",
    "AsyncPocketBase",
    "Collection",
    "Database",
    "DevUser",
    "Environment",
    "IdentityError",
    "IdentityMiddleware",
    "ListResult",
    "PocketBase",
    "PocketBaseError",
    "Record",
    "User",
    "canonical",
    "canonical_string",
    "connect_readonly",
    "current_user",
    "database",
    "instance",
    "serve",
    "sign",
    "sign_headers",
    "signed_headers",
    "user_from_token",
    "verify",
]
