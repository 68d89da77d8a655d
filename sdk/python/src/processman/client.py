"""A small PocketBase client that acts as the calling user.

Requests carry the caller's own token, so PocketBase applies its API rules
to them exactly as to the caller: a sidecar cannot read or write more than
the user who called it could.

    from processman import PocketBase, current_user

    with PocketBase(token=current_user().token) as pb:
        pb.collection("notes").create({"text": "hi", "owner": current_user().id})

:class:`AsyncPocketBase` has the same methods as coroutines.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from .env import Environment
from .identity import User

__all__ = [
    "AsyncCollection",
    "AsyncPocketBase",
    "Collection",
    "ListResult",
    "PocketBase",
    "PocketBaseError",
    "Record",
    "user_from_token",
]

Record = dict[str, Any]
"""A record as PocketBase returns it (``id``, ``collectionName``, fields...)."""

DEFAULT_TIMEOUT = 30.0
FULL_LIST_BATCH = 500


class PocketBaseError(Exception):
    """PocketBase answered with an error (or could not be reached: ``status`` 0).

    ``status``, ``message`` and ``data`` are PocketBase's JSON error
    (``data`` holds per-field errors such as
    ``{"text": {"code": "validation_required", "message": "..."}}``).
    """

    def __init__(self, status: int, message: str, data: Mapping[str, Any] | None = None, *, url: str = "") -> None:
        self.status = status
        self.message = message
        self.data: dict[str, Any] = dict(data or {})
        self.url = url
        text = f"PocketBase {status}: {message}" if status else f"PocketBase unreachable: {message}"
        if url:
            text += f" ({url})"
        if self.data:
            text += f" {self.data}"
        super().__init__(text)

    @classmethod
    def from_response(cls, response: httpx.Response) -> PocketBaseError:
        url = f"{response.request.method} {response.request.url.path}"
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            data = body.get("data") if isinstance(body.get("data"), dict) else {}
            return cls(response.status_code, str(body.get("message") or response.reason_phrase), data, url=url)
        return cls(response.status_code, response.text[:200] or response.reason_phrase, url=url)


@dataclass(frozen=True)
class ListResult:
    """One page of records."""

    page: int
    per_page: int
    total_items: int
    """-1 when asked with ``skip_total``."""
    total_pages: int
    items: list[Record] = field(default_factory=list)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ListResult:
        return cls(
            page=int(body.get("page", 1)),
            per_page=int(body.get("perPage", 0)),
            total_items=int(body.get("totalItems", -1)),
            total_pages=int(body.get("totalPages", -1)),
            items=list(body.get("items") or []),
        )


def _options(
    *,
    filter: str | None = None,
    sort: str | None = None,
    expand: str | None = None,
    fields: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    params = {"filter": filter, "sort": sort, "expand": expand, "fields": fields, **extra}
    return {k: v for k, v in params.items() if v is not None}


def _settings(url: str | None, token: str | None, user: User | None) -> tuple[str, dict[str, str]]:
    base = (url or Environment.load().pb_url).rstrip("/")
    if not base:
        raise ValueError("PocketBase's URL is unknown: PB_URL is not set (run under processman, or pass url=...)")
    if user is not None:
        token = token or user.token
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = token
    return base, headers


def _records_path(collection: str, id: str | None = None) -> str:
    path = f"/api/collections/{quote(collection, safe='')}/records"
    return f"{path}/{quote(id, safe='')}" if id is not None else path


def _result(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise PocketBaseError.from_response(response)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


def _record(body: Any) -> Record:
    if not isinstance(body, dict):
        raise PocketBaseError(200, f"expected a record, got {type(body).__name__}")
    return body


def _unreachable(e: httpx.TransportError, base: str) -> PocketBaseError:
    return PocketBaseError(0, f"{type(e).__name__}: {e}", url=base)


class PocketBase:
    """A synchronous client of PocketBase's records API.

    ``url`` defaults to ``PB_URL``; ``token`` (or ``user.token``) is sent as
    ``Authorization``. Without a token, requests are a guest's. Close it
    (or use ``with``) to release connections.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        user: User | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url, headers = _settings(url, token, user)
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    def collection(self, name: str) -> Collection:
        return Collection(self, name)

    def send(self, method: str, path: str, **kwargs: Any) -> Any:
        """Any other API call: ``path`` from the root (``/api/...``);
        ``kwargs`` go to ``httpx``. Returns the decoded JSON."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as e:
            raise _unreachable(e, self.url) from e
        return _result(response)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PocketBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Collection:
    """The records of one collection, through :class:`PocketBase`."""

    def __init__(self, client: PocketBase, name: str) -> None:
        self.client = client
        self.name = name

    def get_list(self, page: int = 1, per_page: int = 30, *, skip_total: bool = False, **options: Any) -> ListResult:
        """One page; ``options``: ``filter``, ``sort``, ``expand``, ``fields``."""
        params = _options(page=page, perPage=per_page, skipTotal=skip_total or None, **options)
        return ListResult.from_json(self.client.send("GET", _records_path(self.name), params=params))

    def get_full_list(self, *, batch: int = FULL_LIST_BATCH, **options: Any) -> list[Record]:
        """Every record the caller may list, fetched ``batch`` at a time."""
        items: list[Record] = []
        page = 1
        while True:
            result = self.get_list(page, batch, skip_total=True, **options)
            items += result.items
            if len(result.items) < batch:
                return items
            page += 1

    def get_one(self, id: str, **options: Any) -> Record:
        """One record by id; ``options``: ``expand``, ``fields``. A record the
        caller may not see is a 404 :class:`PocketBaseError`."""
        return _record(self.client.send("GET", _records_path(self.name, id), params=_options(**options)))

    def create(self, data: Mapping[str, Any], **options: Any) -> Record:
        return _record(self.client.send("POST", _records_path(self.name), json=dict(data), params=_options(**options)))

    def update(self, id: str, data: Mapping[str, Any], **options: Any) -> Record:
        return _record(
            self.client.send("PATCH", _records_path(self.name, id), json=dict(data), params=_options(**options))
        )

    def delete(self, id: str) -> None:
        self.client.send("DELETE", _records_path(self.name, id))


class AsyncPocketBase:
    """:class:`PocketBase` for asyncio: the same arguments and methods, awaited."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        user: User | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url, headers = _settings(url, token, user)
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    def collection(self, name: str) -> AsyncCollection:
        return AsyncCollection(self, name)

    async def send(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as e:
            raise _unreachable(e, self.url) from e
        return _result(response)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncPocketBase:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncCollection:
    """The records of one collection, through :class:`AsyncPocketBase`."""

    def __init__(self, client: AsyncPocketBase, name: str) -> None:
        self.client = client
        self.name = name

    async def get_list(
        self, page: int = 1, per_page: int = 30, *, skip_total: bool = False, **options: Any
    ) -> ListResult:
        params = _options(page=page, perPage=per_page, skipTotal=skip_total or None, **options)
        return ListResult.from_json(await self.client.send("GET", _records_path(self.name), params=params))

    async def get_full_list(self, *, batch: int = FULL_LIST_BATCH, **options: Any) -> list[Record]:
        items: list[Record] = []
        page = 1
        while True:
            result = await self.get_list(page, batch, skip_total=True, **options)
            items += result.items
            if len(result.items) < batch:
                return items
            page += 1

    async def get_one(self, id: str, **options: Any) -> Record:
        return _record(await self.client.send("GET", _records_path(self.name, id), params=_options(**options)))

    async def create(self, data: Mapping[str, Any], **options: Any) -> Record:
        return _record(
            await self.client.send("POST", _records_path(self.name), json=dict(data), params=_options(**options))
        )

    async def update(self, id: str, data: Mapping[str, Any], **options: Any) -> Record:
        body = await self.client.send(
            "PATCH", _records_path(self.name, id), json=dict(data), params=_options(**options)
        )
        return _record(body)

    async def delete(self, id: str) -> None:
        await self.client.send("DELETE", _records_path(self.name, id))


SUPERUSERS = "_superusers"


async def user_from_token(token: str, *, url: str | None = None) -> User | None:
    """The caller a PocketBase token belongs to, as PocketBase at ``url``
    (default ``PB_URL``) confirms it with an auth-refresh; None when
    PocketBase refuses the token. For development without the gateway
    (``PROCESSMAN_DEV_USER=pocketbase``); raises :class:`PocketBaseError`
    when PocketBase cannot be reached."""
    collection_id = _token_claims(token).get("collectionId")
    if not isinstance(collection_id, str) or not collection_id:
        return None
    async with AsyncPocketBase(url, token) as pb:
        try:
            body = await pb.send("POST", f"/api/collections/{quote(collection_id, safe='')}/auth-refresh")
        except PocketBaseError as e:
            if e.status in (400, 401, 403, 404):
                return None
            raise
    record = body.get("record") if isinstance(body, dict) else None
    if not isinstance(record, dict):
        return None
    collection = str(record.get("collectionName", ""))
    return User(id=str(record.get("id", "")), collection=collection, superuser=collection == SUPERUSERS, token=token)


def _token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (PocketBase verifies it on refresh)."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}
