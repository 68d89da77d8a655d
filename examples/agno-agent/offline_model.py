"""A scripted agno model for running the example without a model API.

It follows one script, whatever it is asked: it streams a short preamble,
calls ``add_note`` with the user's message, calls ``list_notes``, then streams
an answer built from the tool results, a few words at a time. The tools run
for real, so the notes land in PocketBase exactly as with a real model.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from agno.models.base import Model
from agno.models.message import Message
from agno.models.response import ModelResponse

__all__ = ["OfflineModel"]


@dataclass
class OfflineModel(Model):
    id: str = "offline-scripted"
    name: str = "OfflineModel"
    provider: str = "processman-example"
    # Pause between streamed words, so a client sees them arrive one by one.
    delay: float = 0.08

    # -- the script ------------------------------------------------------------

    def _turn(self, messages: list[Message]) -> tuple[list[str], list[dict[str, Any]]]:
        """The words to stream and the tool calls to make at this point of
        the conversation (after the last user message)."""
        last_user = max(i for i, m in enumerate(messages) if m.role == "user")
        tool_results = [m for m in messages[last_user + 1 :] if m.role == "tool"]
        request = messages[last_user].get_content_string().strip() or "(empty note)"
        if not tool_results:
            return _words("Sure, I'll save that as a note for you."), [_call("add_note", {"text": request})]
        if len(tool_results) == 1:
            return [], [_call("list_notes", {"limit": 5})]
        saved, listed = _json(tool_results[0]), _json(tool_results[1])
        if "error" in saved:
            return _words(f"I could not save the note: {saved['error']}"), []
        count = len(listed.get("notes", [])) if isinstance(listed, dict) else 0
        return _words(f'Saved "{saved.get("text", request)}". Your latest notes: {count}.'), []

    # -- agno's Model interface -------------------------------------------------

    def invoke(self, messages: list[Message], **kwargs: Any) -> ModelResponse:
        words, calls = self._turn(messages)
        return ModelResponse(role="assistant", content="".join(words) or None, tool_calls=calls)

    async def ainvoke(self, messages: list[Message], **kwargs: Any) -> ModelResponse:
        return self.invoke(messages, **kwargs)

    def invoke_stream(self, messages: list[Message], **kwargs: Any) -> Iterator[ModelResponse]:
        words, calls = self._turn(messages)
        for word in words:
            time.sleep(self.delay)
            yield ModelResponse(role="assistant", content=word)
        if calls:
            yield ModelResponse(role="assistant", tool_calls=calls)

    async def ainvoke_stream(self, messages: list[Message], **kwargs: Any) -> AsyncIterator[ModelResponse]:
        words, calls = self._turn(messages)
        for word in words:
            await asyncio.sleep(self.delay)
            yield ModelResponse(role="assistant", content=word)
        if calls:
            yield ModelResponse(role="assistant", tool_calls=calls)

    def _parse_provider_response(self, response: Any, **kwargs: Any) -> ModelResponse:
        return response

    def _parse_provider_response_delta(self, response: Any) -> ModelResponse:
        return response


_call_ids = itertools.count(1)


def _call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"call_{next(_call_ids)}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


def _words(text: str) -> list[str]:
    parts = text.split(" ")
    return [p + " " for p in parts[:-1]] + parts[-1:]


def _json(message: Message) -> Any:
    try:
        return json.loads(message.get_content_string())
    except ValueError:
        return {"error": message.get_content_string()}
