"""processman's sidecar SDK: serve an ASGI app behind PocketBase's gateway.

    import processman
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/hello")
    async def hello():
        user = processman.current_user()
        return {"user": user.id or "guest"}

    processman.serve(app)

:func:`serve` listens where the gateway expects (``PB_SOCKET``, ``PB_PORT``)
and checks every request's identity proof; :func:`current_user` (or
``request.state.user``) is the caller; :class:`PocketBase` and
:class:`AsyncPocketBase` call PocketBase as that caller.
"""

from .client import AsyncCollection, AsyncPocketBase, Collection, ListResult, PocketBase, PocketBaseError, Record
from .db import connect_readonly
from .env import Environment
from .identity import GUEST, IdentityError, User, canonical, sign, signed_headers, verify
from .middleware import IdentityMiddleware, current_user
from .serve import serve

__all__ = [
    "AsyncCollection",
    "AsyncPocketBase",
    "Collection",
    "Environment",
    "GUEST",
    "IdentityError",
    "IdentityMiddleware",
    "ListResult",
    "PocketBase",
    "PocketBaseError",
    "Record",
    "User",
    "canonical",
    "connect_readonly",
    "current_user",
    "serve",
    "sign",
    "signed_headers",
    "verify",
]
