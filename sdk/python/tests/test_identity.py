"""processman.verify against the shared vectors (testdata/gateway-identity.json)
and the parts of the contract the vectors leave to each SDK."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import processman
from processman.identity import bearer_token

VECTORS = json.loads((Path(__file__).resolve().parents[3] / "testdata" / "gateway-identity.json").read_text())
SECRET = VECTORS["secret"]


@pytest.mark.parametrize("v", VECTORS["vectors"], ids=lambda v: v["name"])
def test_vector(v: dict[str, Any]) -> None:
    superuser = "true" if v["superuser"] else "false"
    message = processman.canonical(str(v["time"]), v["method"], v["path"], v["id"], v["collection"], superuser)
    assert message == v["canonical"]
    assert processman.sign(SECRET, message) == v["proof"]
    user = processman.User(v["id"], v["collection"], v["superuser"])
    assert (
        processman.signed_headers(SECRET, v["method"], v["path"], user, now=v["time"])["X-PB-Gateway-Proof"]
        == v["proof"]
    )
    got = processman.verify(
        {
            "X-PB-Auth-Id": v["id"],
            "X-PB-Auth-Collection": v["collection"],
            "X-PB-Auth-Superuser": superuser,
            "X-PB-Gateway-Time": str(v["time"]),
            "X-PB-Gateway-Proof": v["proof"],
        },
        v["method"],
        v["path"],
        SECRET,
        now=v["time"],
    )
    assert (got.id, got.collection, got.superuser) == (v["id"], v["collection"], v["superuser"])


@pytest.mark.parametrize("c", VECTORS["verify"], ids=lambda c: c["name"])
def test_verify_case(c: dict[str, Any]) -> None:
    secret = c.get("secret", SECRET)
    if c["valid"]:
        got = processman.verify(c["headers"], c["method"], c["path"], secret, now=c["now"])
        assert {"id": got.id, "collection": got.collection, "superuser": got.superuser} == c["identity"]
    else:
        with pytest.raises(processman.IdentityError) as e:
            processman.verify(c["headers"], c["method"], c["path"], secret, now=c["now"])
        assert e.value.code == c["error"]


@pytest.mark.parametrize("c", [c for c in VECTORS["verify"] if c["valid"]], ids=lambda c: c["name"])
def test_verify_asgi_headers(c: dict[str, Any]) -> None:
    """The same valid cases with headers as an ASGI server gives them: a
    list of (bytes, bytes) pairs with lower-case names."""
    pairs = [(k.lower().encode(), v.encode()) for k, v in c["headers"].items()]
    got = processman.verify(pairs, c["method"], c["path"], SECRET, now=c["now"])
    assert {"id": got.id, "collection": got.collection, "superuser": got.superuser} == c["identity"]


def test_repeated_header_as_pairs_is_bad_proof() -> None:
    c = next(c for c in VECTORS["verify"] if c["name"] == "valid user")
    pairs = [(k.lower().encode(), v.encode()) for k, v in c["headers"].items()]
    pairs.append((b"x-pb-gateway-time", c["headers"]["X-Pb-Gateway-Time"].encode()))
    with pytest.raises(processman.IdentityError) as e:
        processman.verify(pairs, c["method"], c["path"], SECRET, now=c["now"])
    assert e.value.code == "bad_proof"


def test_token_from_authorization() -> None:
    c = next(c for c in VECTORS["verify"] if c["name"] == "valid user")
    for sent, token in [("Bearer abc.def", "abc.def"), ("abc.def", "abc.def"), ("bearer  x ", "x"), ("", None)]:
        headers = dict(c["headers"], Authorization=sent)
        assert processman.verify(headers, c["method"], c["path"], SECRET, now=c["now"]).token == token
    assert bearer_token("Bearer ") is None


def test_now_defaults_to_the_clock() -> None:
    headers = processman.signed_headers(SECRET, "GET", "/x", processman.User("abc", "users"))
    assert processman.verify(headers, "GET", "/x", SECRET).id == "abc"
    old = processman.signed_headers(SECRET, "GET", "/x", processman.User("abc", "users"), now=1700000000)
    with pytest.raises(processman.IdentityError) as e:
        processman.verify(old, "GET", "/x", SECRET)
    assert e.value.code == "expired"


def test_secrets_are_not_printed() -> None:
    user = processman.User("abc", "users", token="tok-secret")
    assert "tok-secret" not in repr(user)
    env = processman.Environment.load({"PB_GATEWAY_SECRET": "s" * 64})
    assert "s" * 64 not in repr(env)


def test_environment_errors_name_the_variable() -> None:
    with pytest.raises(ValueError, match="PB_PORT"):
        processman.Environment.load({"PB_PORT": "http"})
    with pytest.raises(ValueError, match="PROCESSMAN_SHUTDOWN_TIMEOUT"):
        processman.Environment.load({"PROCESSMAN_SHUTDOWN_TIMEOUT": "-1"})
