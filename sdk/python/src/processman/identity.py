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
from typing import Literal

__all__ = [
    "User",
    "GUEST",
    "IdentityError",
    "HeadersLike",
    "MAX_SKEW",
    "canonical",
    "sign",
    "signed_headers",
    "verify",
    "bearer_token",
]

MAX_SKEW = 60
"""Seconds a proof's time may be away from this machine's clock, either way."""

H_ID = "x-pb-auth-id"
H_COLLECTION = "x-pb-auth-collection"
H_SUPERUSER = "x-pb-auth-superuser"
H_TIME = "x-pb-gateway-time"
H_PROOF = "x-pb-gateway-proof"
_SIGNED = (H_ID, H_COLLECTION, H_SUPERUSER, H_TIME, H_PROOF)

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
    """Who called, as PocketBase authenticated them. A guest has an empty id."""

    id: str = ""
    """The auth record's id; empty for a guest."""
    collection: str = ""
    """The auth record's collection (``users``, ``_superusers``, ...)."""
    superuser: bool = False
    token: str | None = field(default=None, repr=False)
    """The caller's PocketBase token, as forwarded in ``Authorization``
    (without a ``Bearer`` prefix); calls to PocketBase with it run under the
    caller's API rules. Never printed."""

    @property
    def is_guest(self) -> bool:
        return not self.id


GUEST = User()


class IdentityError(Exception):
    """A request whose identity cannot be trusted; answer it with 401.

    ``code`` is ``"missing"`` (not signed by the gateway), ``"bad_proof"``
    (tampered, malformed or signed with another secret) or ``"expired"``
    (signed more than :data:`MAX_SKEW` seconds away from now).
    """

    MESSAGES = {
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


def canonical(time: str, method: str, path: str, id: str, collection: str, superuser: str) -> str:
    """The string the proof signs; every argument as the headers carry it."""
    return "\n".join(("v1", time, _ascii_upper(method), path, id, collection, superuser))


def sign(secret: str, message: str) -> str:
    """Lower-case hex HMAC-SHA256 of ``message``, keyed with the bytes of the
    hex string ``secret`` itself (not its decoding)."""
    return hmac.new(_bytes(secret), _bytes(message), hashlib.sha256).hexdigest()


def signed_headers(secret: str, method: str, path: str, user: User = GUEST, now: int | None = None) -> dict[str, str]:
    """The identity headers the gateway would set for ``user`` calling
    ``method path``: for tests, and for a sidecar calling another one."""
    t = str(int(_time.time()) if now is None else now)
    superuser = "true" if user.superuser else "false"
    return {
        "X-PB-Auth-Id": user.id,
        "X-PB-Auth-Collection": user.collection,
        "X-PB-Auth-Superuser": superuser,
        "X-PB-Gateway-Time": t,
        "X-PB-Gateway-Proof": sign(secret, canonical(t, method, path, user.id, user.collection, superuser)),
    }


def verify(headers: HeadersLike, method: str, path: str, secret: str, now: float | None = None) -> User:
    """Checks the gateway's identity headers of one request and returns the caller.

    ``method`` and ``path`` (with its query string, exactly as received) are
    the request as this process sees it; ``now`` is Unix time (default: the
    clock). The ``Authorization`` header, if any, becomes :attr:`User.token`.
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

    id_, collection, superuser = first(H_ID), first(H_COLLECTION), first(H_SUPERUSER)
    signed_at, proof = first(H_TIME), first(H_PROOF)

    if not proof or not signed_at:
        raise IdentityError("missing")
    if any(len(values.get(name, ())) > 1 for name in _SIGNED):
        raise IdentityError("bad_proof")
    if not _TIME_RE.fullmatch(signed_at) or int(signed_at) > _INT64_MAX:
        raise IdentityError("bad_proof")
    if not secret:
        raise IdentityError("bad_proof")
    expected = sign(secret, canonical(signed_at, method, path, id_, collection, superuser))
    if not hmac.compare_digest(_bytes(proof), _bytes(expected)):
        raise IdentityError("bad_proof")
    if superuser not in ("true", "false"):
        raise IdentityError("bad_proof")
    if abs((_time.time() if now is None else now) - int(signed_at)) > MAX_SKEW:
        raise IdentityError("expired")
    return User(
        id=id_, collection=collection, superuser=superuser == "true", token=bearer_token(first("authorization"))
    )


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization`` value (PocketBase takes it bare or
    after ``Bearer``); None when empty."""
    value = authorization.strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        value = rest.strip()
    return value or None


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
