"""The FastAPI app the SDK's tests serve with processman.serve (see serve_app.py).

GET  /whoami          the caller as the app sees it: request.state.user,
                      request.state.user_id, processman.current_user() and
                      the FastAPI dependency
GET  /starlette       request.user and request.auth, behind Starlette's
                      @requires("authenticated")
GET  /admin           @requires("superuser")
GET  /me              require_user: 401 for a guest
GET  /health          answers {"ok": true}
GET  /sse?n=5&gap=0.2 text/event-stream, `data: <i>` every gap seconds
GET  /forever         an endless event stream (0.1 s apart)
POST /notes           creates a note in PocketBase as the caller ({"text": ...})
WS   /ws              sends the caller's id ("" for a guest), then echoes
"""

from __future__ import annotations

import asyncio
import itertools

from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.responses import StreamingResponse
from starlette.authentication import requires

import processman
from processman.fastapi import current_user, require_user

app = FastAPI()


@app.get("/whoami")
async def whoami(request: Request, user: processman.User = Depends(current_user)) -> dict:
    ctx = processman.current_user()
    return {
        "id": user.id,
        "collection": user.collection,
        "superuser": user.superuser,
        "has_token": bool(user.token),
        "state_user_id": getattr(request.state, "user_id", None),
        "authenticated": getattr(request.state, "authenticated", False),
        "contextvar_id": ctx.id,
        "path": request.url.path,
    }


@app.get("/starlette")
@requires("authenticated")
async def starlette_user(request: Request) -> dict:
    return {"user": request.user.display_name, "scopes": request.auth.scopes}


@app.get("/admin")
@requires("superuser")
async def admin(request: Request) -> dict:
    return {"user": request.user.display_name}


@app.get("/me")
async def me(user: processman.User = Depends(require_user)) -> dict:
    return {"id": user.id}


@app.get("/health")
async def health() -> dict:
    return {"ok": True}


@app.get("/sse")
async def sse(n: int = 5, gap: float = 0.2) -> StreamingResponse:
    async def events():
        for i in range(n):
            if i:
                await asyncio.sleep(gap)
            yield f"data: {i}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@app.get("/forever")
async def forever() -> StreamingResponse:
    async def events():
        for i in itertools.count():
            yield f"data: {i}\n\n"
            await asyncio.sleep(0.1)

    return StreamingResponse(events(), media_type="text/event-stream")


@app.post("/notes")
async def create_note(body: dict) -> dict:
    user = processman.current_user()
    async with processman.AsyncPocketBase(user=user) as pb:
        return await pb.collection("notes").create({"text": body["text"], "owner": user.id, "source": "sdk-test"})


@app.websocket("/ws")
async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(websocket.state.user.id)
    async for text in websocket.iter_text():
        await websocket.send_text(f"echo: {text}")
