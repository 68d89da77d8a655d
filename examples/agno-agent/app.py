"""An agno AgentOS behind PocketBase: one agent that keeps notes in
PocketBase's `notes` collection as the user who is talking to it.

processman starts it (pb_processes.json: route /api/agno, auth user) and
signs each request with the caller's identity; processman.serve checks the
signature, and the tools write through PocketBase's API with the caller's
own token, so the collection's rules decide what they may do.

Sessions (each run's messages, so a continued session_id has its history)
live in PocketBase's own database when that is PostgreSQL (schema `agno`),
where every PocketBase replica on that database shares them; on SQLite, in
sessions.db beside this file. A signed-in user reads only their own.

With OPENAI_API_KEY set the agent uses OpenAI (OPENAI_MODEL, default
gpt-4o-mini); without it, a scripted offline model that still calls the
tools and streams its answer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("AGNO_TELEMETRY", "false")

from agno.agent import Agent  # noqa: E402
from agno.os import AgentOS  # noqa: E402

import processman  # noqa: E402
from processman import AsyncPocketBase, PocketBaseError  # noqa: E402

AGENT_ID = "notes"
HERE = Path(__file__).resolve().parent


async def add_note(text: str) -> str:
    """Save a note for the user you are talking to.

    Args:
        text: The note, in the user's words.
    """
    user = processman.current_user()
    if user.is_guest:
        return json.dumps({"error": "only signed-in users can save notes"})
    try:
        async with AsyncPocketBase(user=user) as pb:
            note = await pb.collection("notes").create({"text": text, "owner": user.id, "source": "agno"})
    except PocketBaseError as e:
        return json.dumps({"error": e.message, "details": e.data})
    return json.dumps({"id": note["id"], "text": note["text"]})


async def list_notes(limit: int = 10) -> str:
    """List the latest notes of the user you are talking to, newest first.

    Args:
        limit: How many notes to return (at most 100).
    """
    user = processman.current_user()
    if user.is_guest:
        return json.dumps({"error": "only signed-in users have notes"})
    try:
        async with AsyncPocketBase(user=user) as pb:
            page = await pb.collection("notes").get_list(1, max(1, min(limit, 100)), sort="-created")
    except PocketBaseError as e:
        return json.dumps({"error": e.message})
    return json.dumps({"notes": [{"id": n["id"], "text": n["text"], "created": n["created"]} for n in page.items]})


def model():
    if os.environ.get("OPENAI_API_KEY"):
        from agno.models.openai import OpenAIChat

        return OpenAIChat(id=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
    from offline_model import OfflineModel

    return OfflineModel()


def session_db():
    """Where the agent keeps its sessions.

    On a PostgreSQL PocketBase (PB_DB_DRIVER=postgres, DB_DSN its data
    database), the schema `agno` of that same database: PocketBase never
    reads that schema and this agent is its only writer there, so it does not
    go around PocketBase's rules or hooks; and every replica on the database
    sees the same sessions. AgentOS creates the schema and its tables when it
    starts (so the database user needs CREATE on the database).

    Otherwise (SQLite, or outside processman) a file beside this app, not
    pb_data: PocketBase's SQLite file is PocketBase's alone.
    """
    try:
        db = processman.database()
    except ValueError:  # not started by processman
        db = None
    if db is not None and db.driver == "postgres":
        from agno.db.postgres import PostgresDb

        # SQLAlchemy picks psycopg 3 (the processman[postgres] extra) by this scheme.
        url = "postgresql+psycopg://" + db.target.split("://", 1)[1]
        return PostgresDb(db_url=url, db_schema="agno")
    from agno.db.sqlite import SqliteDb

    return SqliteDb(db_file=str(HERE / "sessions.db"))


agent = Agent(
    id=AGENT_ID,
    name="Notes",
    model=model(),
    tools=[add_note, list_notes],
    instructions=[
        "You keep notes for the user. Save what they ask you to remember with add_note,",
        "and use list_notes to answer questions about their notes. Be brief.",
    ],
    db=session_db(),
    # A continued session_id sends the model its last runs' messages.
    add_history_to_context=True,
    num_history_runs=5,
    telemetry=False,
)

agent_os = AgentOS(id="processman-agno", agents=[agent], telemetry=False)


def own_sessions_only(app):
    """Scopes AgentOS's session, run and memory reads to the signed-in caller.

    The SDK sets request.state.user_id (and authenticated) from the identity
    the gateway signed; agno only filters by it when user isolation is on,
    which its own auth middlewares would switch on. Without this, any
    signed-in user could list and read everyone's sessions.
    """

    async def scoped(scope, receive, send):
        state = scope.get("state") or {}
        if scope["type"] in ("http", "websocket") and state.get("user_id"):
            state["user_isolation_enabled"] = True
        await app(scope, receive, send)

    return scoped


app = own_sessions_only(agent_os.get_app())

if __name__ == "__main__":
    processman.serve(app)
