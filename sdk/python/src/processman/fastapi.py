"""FastAPI dependencies for the caller's identity (needs ``processman[fastapi]``).

    from fastapi import Depends, FastAPI
    from processman import User
    from processman.fastapi import require_user

    app = FastAPI()

    @app.get("/me")
    def me(user: User = Depends(require_user)):
        return {"id": user.id}

They read what :class:`~processman.IdentityMiddleware` (installed by
:func:`processman.serve`) put on the request.
"""

from __future__ import annotations

from fastapi import HTTPException, Request

from .identity import User

__all__ = ["current_user", "require_superuser", "require_user"]


def current_user(request: Request) -> User:
    """The caller, a guest included. 500 if the middleware is missing."""
    user = getattr(request.state, "user", None)
    if not isinstance(user, User):
        raise HTTPException(
            status_code=500,
            detail="processman's IdentityMiddleware is not installed: run the app with processman.serve(app)",
        )
    return user


def require_user(request: Request) -> User:
    """The caller, who must be signed in (401 for a guest)."""
    user = current_user(request)
    if user.is_guest:
        raise HTTPException(status_code=401, detail="Sign in to use this endpoint.")
    return user


def require_superuser(request: Request) -> User:
    """The caller, who must be a superuser (401 for a guest, 403 for others)."""
    user = require_user(request)
    if not user.superuser:
        raise HTTPException(status_code=403, detail="Only superusers may use this endpoint.")
    return user
