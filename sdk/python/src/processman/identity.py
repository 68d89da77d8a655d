"""The caller's identity, as signed by processman's gateway.

The gateway removes every client-sent ``X-PB-*`` header, then sets the
caller's record id, collection and superuser flag, the signing time and a
proof: a lower-case hex HMAC-SHA256, keyed with the bytes of the hex string
``PB_GATEWAY_SECRET``, of::

    v1
    <X-PB-Gateway-Time>
    <METHOD>
    <path with query, as the sidecar receives it>
    <X-PB-Auth-Id>
    <X-PB-Auth-Collection>
    <X-PB-Auth-Superuser>

:func:`verify` checks it in the contract's order (processman's
docs/gateway.md) and returns the :class:`User`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time as _time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

__all__ = [
    "GUEST",
    "HEADER_AUTH_COLLECTION",
    "HEADER_AUTH_ID",
    "HEADER_AUTH_SUPERUSER",
    "HEADER_GATEWAY_PROOF",
    "HEADER_GATEWAY_TIME",
    "MAX_SKEW",
    "MAX_SKEW_SECONDS",
    "HeadersLike",
    "IdentityError",
    "User",
    "bearer_token",
    "canonical",
    "canonical_string",
    "sign",
    "sign_headers",
    "signed_headers",
    "verify",
]

MAX_SKEW_SECONDS = 60
"""Seconds a proof's time may be away from this machine's clock, either way."""

HEADER_AUTH_ID = "x-pb-auth-id"
HEADER_AUTH_COLLECTION = "x-pb-auth-collection"
HEADER_AUTH_SUPERUSER = "x-pb-auth-superuser"
HEADER_GATEWAY_TIME = "x-pb-gateway-time"
HEADER_GATEWAY_PROOF = "x-pb-gateway-proof"
_SIGNED = (HEADER_AUTH_ID, HEADER_AUTH_COLLECTION, HEADER_AUTH_SUPERUSER, HEADER_GATEWAY_TIME, HEADER_GATEWAY_PROOF)

_INT64_MAX = 2**63 - 1
# Exactly as the gateway writes the time: ASCII digits, no sign, no leading
# zero. int() alone would also take "+1", " 1", "1_0" and non-ASCII digits.
_TIME_RE = re.compile(r"0|[1-9][0-9]{0,18}")

HeadersLike = Mapping[str, str | Sequence[str]] | Iterable[tuple[str | bytes, str | bytes]]
"""A mapping of names (any case) to a value or a list of values (a header
sent more than once), such as ``request.headers``; or name/value pairs, such
as an ASGI scope's ``headers``."""


@dataclass(frozen=True)
class User:
    """Who called, as PocketBase authenticated them. A guest has an empty id.

    It is also a Starlette user (``is_authenticated``, ``display_name``,
    ``identity``), so ``request.user`` and ``starlette.authentication.requires``
    work behind :class:`~processman.IdentityMiddleware`.
    """

    id: str = ""
    """The auth record's id; empty for a guest."""
    collection: str = ""
    """The auth record's collection (``users``, ``_superusers``, ...)."""
    superuser: bool = False
    """True for a superuser, and for calls PocketBase itself signs (which have no record)."""
    token: str = field(default="", repr=False)
    """The caller's PocketBase token, as forwarded in ``Authorization``
    (without a ``Bearer`` prefix); empty for a guest. Calls to PocketBase with
    it run under the caller's API rules. Never printed."""

    @property
    def is_guest(self) -> bool:
        """True when nobody signed in (no record)."""
        return not self.id

    @property
    def is_authenticated(self) -> bool:
        """Starlette's name for ``not is_guest``."""
        return not self.is_guest

    @property
    def display_name(self) -> str:
        """``collection/id``, or empty for a guest."""
        return f"{self.collection}/{self.id}" if self.id else ""

    @property
    def identity(self) -> str:
        """The record id (Starlette's ``BaseUser.identity``)."""
        return self.id

    @property
    def scopes(self) -> list[str]:
        """The scopes Starlette's ``requires`` checks: ``authenticated`` for
        a signed-in caller, ``superuser`` for a superuser, and
        ``collection:<name>``."""
        scopes = []
        if self.id:
            scopes += ["authenticated", f"collection:{self.collection}"]
        if self.superuser:
            scopes.append("superuser")
        return scopes


GUEST = User()


class IdentityError(Exception):
    """A request whose identity cannot be trusted; answer it with 401.

    ``code`` is ``"missing"`` (not signed by the gateway), ``"bad_proof"``
    (tampered, malformed or signed with another secret) or ``"expired"``
    (signed more than :data:`MAX_SKEW_SECONDS` seconds away from now).
    """

    MESSAGES: ClassVar[dict[str, str]] = {
        "missing": "The request carries no gateway identity proof; call this service through PocketBase.",
        "bad_proof": "The request's gateway identity proof is invalid.",
        "expired": "The request's gateway identity proof has expired; check that the clocks agree.",
    }

    def __init__(self, code: Literal["missing", "bad_proof", "expired"]) -> None:
        super().__init__(self.MESSAGES[code])
        self.code = code


def _ascii_upper(s: str) -> str:
    # str.upper() also maps non-ASCII ("ß" -> "SS"); the contract is ASCII only.
    return s.translate(_UPPER)


_UPPER = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}


def canonical_string(time: str | int, method: str, path: str, id: str, collection: str, superuser: str) -> str:
    """The string the proof signs; every argument as the headers carry it."""
    return "\n".join(("v1", str(time), _ascii_upper(method), path, id, collection, superuser))


canonical = canonical_string
"""Deprecated spelling of :func:`canonical_string`."""


def sign(secret: str, message: str) -> str:
    """Lower-case hex HMAC-SHA256 of ``message``, keyed with the bytes of the
    hex string ``secret`` itself (not its decoding)."""
    return hmac.new(_bytes(secret), _bytes(message), hashlib.sha256).hexdigest()


def sign_headers(user: User, method: str, path: str, secret: str, now: int | None = None) -> dict[str, str]:
    """The identity headers the gateway would set for ``user`` calling
    ``method path``: for tests, and for calling a sidecar over its socket
    from another local program that holds the secret."""
    t = str(int(_time.time()) if now is None else now)
    superuser = "true" if user.superuser else "false"
    return {
        "X-PB-Auth-Id": user.id,
        "X-PB-Auth-Collection": user.collection,
        "X-PB-Auth-Superuser": superuser,
        "X-PB-Gateway-Time": t,
        "X-PB-Gateway-Proof": sign(secret, canonical_string(t, method, path, user.id, user.collection, superuser)),
    }


def signed_headers(secret: str, method: str, path: str, user: User = GUEST, now: int | None = None) -> dict[str, str]:
    """Deprecated: :func:`sign_headers` with the arguments in the order of
    :func:`verify` and of the Node SDK's ``signHeaders``."""
    return sign_headers(user, method, path, secret, now)


def verify(headers: HeadersLike, method: str, path: str, secret: str, now: float | None = None) -> User:
    """Checks the gateway's identity headers of one request and returns the caller.

    ``method`` and ``path`` (with its query string, exactly as received) are
    the request as this process sees it; ``now`` is Unix time (default: the
    clock). The ``Authorization`` header, if any, becomes :attr:`User.token`
    of a signed-in caller (a guest has none).
    Raises :class:`IdentityError`. Checks, in order:

    1. proof or time absent or empty: ``missing``;
    2. a signed header sent more than once, a time that is not a plain
       decimal integer, or an empty secret: ``bad_proof``;
    3. the proof does not match (constant-time): ``bad_proof``;
    4. superuser neither ``true`` nor ``false``: ``bad_proof``;
    5. time more than 60 s away from ``now``: ``expired``.
    """
    values = _collect(headers)

    def first(name: str) -> str:
        found = values.get(name)
        return found[0] if found else ""

    id_, collection = first(HEADER_AUTH_ID), first(HEADER_AUTH_COLLECTION)
    superuser = first(HEADER_AUTH_SUPERUSER)
    signed_at, proof = first(HEADER_GATEWAY_TIME), first(HEADER_GATEWAY_PROOF)

    if not proof or not signed_at:
        raise IdentityError("missing")
    if any(len(values.get(name, ())) > 1 for name in _SIGNED):
        raise IdentityError("bad_proof")
    if not _TIME_RE.fullmatch(signed_at) or int(signed_at) > _INT64_MAX:
        raise IdentityError("bad_proof")
    if not secret:
        raise IdentityError("bad_proof")
    expected = sign(secret, canonical_string(signed_at, method, path, id_, collection, superuser))
    if not hmac.compare_digest(_bytes(proof), _bytes(expected)):
        raise IdentityError("bad_proof")
    if superuser not in ("true", "false"):
        raise IdentityError("bad_proof")
    if abs((_time.time() if now is None else now) - int(signed_at)) > MAX_SKEW_SECONDS:
        raise IdentityError("expired")
    token = bearer_token(first("authorization")) if id_ else ""  # a guest has no token
    return User(id=id_, collection=collection, superuser=superuser == "true", token=token)


def bearer_token(authorization: str) -> str:
    """The token of an ``Authorization`` value (PocketBase takes it bare or
    after ``Bearer``); empty when there is none."""
    value = authorization.strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        value = rest.strip()
    return value


MAX_SKEW = MAX_SKEW_SECONDS
"""Deprecated spelling of :data:`MAX_SKEW_SECONDS`."""


def _collect(headers: HeadersLike) -> dict[str, list[str]]:
    """Lower-cased names to every value received under them."""
    items: Iterable[tuple[str | bytes, object]]
    items = headers.items() if isinstance(headers, Mapping) else headers
    values: dict[str, list[str]] = {}
    for name, value in items:
        found = values.setdefault(_text(name).lower(), [])
        if isinstance(value, (str, bytes)):
            found.append(_text(value))
        else:
            found.extend(_text(v) for v in value)
    return values


def _text(value: str | bytes) -> str:
    # Raw header bytes survive the round trip to _bytes() unchanged, whatever
    # their encoding, so the proof covers exactly what was received.
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def _bytes(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")
