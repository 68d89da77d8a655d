"""An agno AgentOS behind PocketBase: one agent that keeps notes in
PocketBase's `notes` collection as the user who is talking to it.

processman starts it (pb_processes.json: route /api/agno, auth user) and
signs each request with the caller's identity; processman.serve checks the
signature, and the tools write through PocketBase's API with the caller's
own token, so the collection's rules decide what they may do.

With OPENAI_API_KEY set the agent uses OpenAI (OPENAI_MODEL, default
gpt-4o-mini); without it, a scripted offline model that still calls the
tools and streams its answer.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("AGNO_TELEMETRY", "false")

from agno.agent import Agent  # noqa: E402
from agno.os import AgentOS  # noqa: E402

import processman  # noqa: E402
from processman import AsyncPocketBase, PocketBaseError  # noqa: E402

AGENT_ID = "notes"


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


agent = Agent(
    id=AGENT_ID,
    name="Notes",
    model=model(),
    tools=[add_note, list_notes],
    instructions=[
        "You keep notes for the user. Save what they ask you to remember with add_note,",
        "and use list_notes to answer questions about their notes. Be brief.",
    ],
    telemetry=False,
)

agent_os = AgentOS(id="processman-agno", agents=[agent], telemetry=False)
app = agent_os.get_app()

if __name__ == "__main__":
    processman.serve(app)
