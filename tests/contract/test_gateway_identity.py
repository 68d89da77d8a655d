"""Contract test for the gateway identity headers (docs/gateway.md,
"Request to the sidecar").

Independently of the Go code, this recomputes every canonical string and
proof in testdata/gateway-identity.json with Python's stdlib ``hmac``, and
checks every verify case against ``reference_verify`` below: the
reference that the Python SDK's verifier follows, rule for rule.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path
from typing import Any

import pytest

VECTORS_FILE = Path(__file__).resolve().parents[2] / "testdata" / "gateway-identity.json"
VECTORS = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))

MAX_SKEW = 60  # seconds, either way
INT64_MAX = 2**63 - 1
# The time exactly as the gateway writes it: digits, no sign, no leading zero.
# Python's int() would also take "+1", " 1", "1_0" and non-ASCII digits.
TIME_RE = re.compile(r"0|[1-9][0-9]{0,18}")

H_ID = "x-pb-auth-id"
H_COLLECTION = "x-pb-auth-collection"
H_SUPERUSER = "x-pb-auth-superuser"
H_TIME = "x-pb-gateway-time"
H_PROOF = "x-pb-gateway-proof"


class VerifyError(Exception):
    """``code`` is "missing", "bad_proof" or "expired"; the sidecar answers 401."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def ascii_upper(s: str) -> str:
    # str.upper() maps non-ASCII too ("ß" -> "SS"); the contract is ASCII only.
    return "".join(chr(ord(c) - 32) if "a" <= c <= "z" else c for c in s)


def canonical(time: str, method: str, path: str, id_: str, collection: str, superuser: str) -> str:
    return "\n".join(["v1", time, ascii_upper(method), path, id_, collection, superuser])


def sign(secret: str, message: str) -> str:
    # Keyed with the bytes of the hex string itself, not its decoding.
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def reference_verify(
    headers: dict[str, str | list[str]], secret: str, now: int, method: str, path: str
) -> dict[str, Any]:
    """Verify the identity headers of a request as a sidecar receives it.

    ``headers`` maps names (any case) to a value, or to a list of values for
    a header sent more than once. ``method`` and ``path`` (with query, as
    received) are the sidecar's view of the request. Returns the identity or
    raises :class:`VerifyError`.
    """
    values: dict[str, list[str]] = {}
    for name, value in headers.items():
        values.setdefault(name.lower(), []).extend([value] if isinstance(value, str) else value)

    def first(name: str) -> str:
        vs = values.get(name)
        return vs[0] if vs else ""

    id_, collection, superuser = first(H_ID), first(H_COLLECTION), first(H_SUPERUSER)
    time, proof = first(H_TIME), first(H_PROOF)

    # 1. Proof and time are required.
    if not proof or not time:
        raise VerifyError("missing")
    # 2. No repeats, a canonical time, a secret to verify with.
    if any(len(values.get(n, [])) > 1 for n in (H_ID, H_COLLECTION, H_SUPERUSER, H_TIME, H_PROOF)):
        raise VerifyError("bad_proof")
    if not TIME_RE.fullmatch(time) or int(time) > INT64_MAX:
        raise VerifyError("bad_proof")
    if not secret:
        raise VerifyError("bad_proof")
    # 3. The proof over the received values verbatim, constant-time.
    expected = sign(secret, canonical(time, method, path, id_, collection, superuser))
    if not hmac.compare_digest(proof.encode("utf-8"), expected.encode("utf-8")):
        raise VerifyError("bad_proof")
    # 4. A signed superuser flag must still be exactly true or false.
    if superuser not in ("true", "false"):
        raise VerifyError("bad_proof")
    # 5. Within MAX_SKEW of the sidecar's clock, either way.
    if abs(now - int(time)) > MAX_SKEW:
        raise VerifyError("expired")
    return {"id": id_, "collection": collection, "superuser": superuser == "true"}


def test_file_shape() -> None:
    secret = VECTORS["secret"]
    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    assert VECTORS["vectors"] and VECTORS["verify"]
    names = [v["name"] for v in VECTORS["vectors"]] + [c["name"] for c in VECTORS["verify"]]
    assert len(names) == len(set(names)), "vector names must be unique"
    for c in VECTORS["verify"]:
        if c["valid"]:
            assert c["error"] is None and c["identity"] is not None, c["name"]
        else:
            assert c["error"] in ("missing", "bad_proof", "expired") and c["identity"] is None, c["name"]


@pytest.mark.parametrize("v", VECTORS["vectors"], ids=lambda v: v["name"])
def test_vector(v: dict[str, Any]) -> None:
    got = canonical(
        str(v["time"]),
        v["method"],
        v["path"],
        v["id"],
        v["collection"],
        "true" if v["superuser"] else "false",
    )
    assert got == v["canonical"]
    assert not got.endswith("\n")
    proof = sign(VECTORS["secret"], got)
    assert re.fullmatch(r"[0-9a-f]{64}", proof)
    assert proof == v["proof"]

    # The headers a gateway would set for this vector verify to its identity.
    headers = {
        "X-PB-Auth-Id": v["id"],
        "X-PB-Auth-Collection": v["collection"],
        "X-PB-Auth-Superuser": "true" if v["superuser"] else "false",
        "X-PB-Gateway-Time": str(v["time"]),
        "X-PB-Gateway-Proof": v["proof"],
    }
    assert reference_verify(headers, VECTORS["secret"], v["time"], v["method"], v["path"]) == {
        "id": v["id"],
        "collection": v["collection"],
        "superuser": v["superuser"],
    }


@pytest.mark.parametrize("c", VECTORS["verify"], ids=lambda c: c["name"])
def test_verify_case(c: dict[str, Any]) -> None:
    secret = c.get("secret", VECTORS["secret"])
    if c["valid"]:
        assert reference_verify(c["headers"], secret, c["now"], c["method"], c["path"]) == c["identity"]
    else:
        with pytest.raises(VerifyError) as e:
            reference_verify(c["headers"], secret, c["now"], c["method"], c["path"])
        assert e.value.code == c["error"]


def test_required_cases_present() -> None:
    """The vectors cover what the contract calls out."""
    paths = {v["path"] for v in VECTORS["vectors"]}
    assert "/" in paths
    assert "/run?stream=1&x=%2F" in paths
    assert any(v["superuser"] for v in VECTORS["vectors"])
    assert any("%C3%A9" in v["path"] for v in VECTORS["vectors"])
    errors = {c["error"] for c in VECTORS["verify"]}
    assert errors == {None, "missing", "bad_proof", "expired"}
    lower = [c for c in VECTORS["verify"] if c["valid"] and all(k == k.lower() for k in c["headers"])]
    upper = [c for c in VECTORS["verify"] if c["valid"] and all(k == k.upper() for k in c["headers"])]
    assert lower and upper
