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
    message = processman.canonical_string(str(v["time"]), v["method"], v["path"], v["id"], v["collection"], superuser)
    assert message == v["canonical"]
    assert processman.sign(SECRET, message) == v["proof"]
    user = processman.User(v["id"], v["collection"], v["superuser"])
    assert (
        processman.sign_headers(user, v["method"], v["path"], SECRET, now=v["time"])["X-PB-Gateway-Proof"] == v["proof"]
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
    for sent, token in [("Bearer abc.def", "abc.def"), ("abc.def", "abc.def"), ("bearer  x ", "x"), ("", "")]:
        headers = dict(c["headers"], Authorization=sent)
        assert processman.verify(headers, c["method"], c["path"], SECRET, now=c["now"]).token == token
    assert bearer_token("Bearer ") == ""
    guest = next(c for c in VECTORS["verify"] if c["name"] == "valid guest")
    headers = dict(guest["headers"], Authorization="Bearer a.b.c")
    assert processman.verify(headers, guest["method"], guest["path"], SECRET, now=guest["now"]).token == ""
    assert processman.GUEST.token == "" and processman.GUEST.is_guest


def test_now_defaults_to_the_clock() -> None:
    headers = processman.sign_headers(processman.User("abc", "users"), "GET", "/x", SECRET)
    assert processman.verify(headers, "GET", "/x", SECRET).id == "abc"
    old = processman.sign_headers(processman.User("abc", "users"), "GET", "/x", SECRET, now=1700000000)
    with pytest.raises(processman.IdentityError) as e:
        processman.verify(old, "GET", "/x", SECRET)
    assert e.value.code == "expired"


def test_deprecated_spellings_are_aliases() -> None:
    user = processman.User("abc", "users")
    assert processman.canonical is processman.canonical_string
    assert processman.identity.MAX_SKEW == processman.MAX_SKEW_SECONDS == 60
    assert processman.signed_headers(SECRET, "GET", "/x", user, now=1700000000) == processman.sign_headers(
        user, "GET", "/x", SECRET, now=1700000000
    )


def test_user_is_a_starlette_user() -> None:
    member = processman.User("abc", "members")
    assert (member.is_authenticated, member.display_name, member.identity) == (True, "members/abc", "abc")
    assert member.scopes == ["authenticated", "collection:members"]
    admin = processman.User("s1", "_superusers", superuser=True)
    assert admin.scopes == ["authenticated", "collection:_superusers", "superuser"]
    guest = processman.GUEST
    assert (guest.is_authenticated, guest.display_name, guest.scopes) == (False, "", [])


def test_secrets_are_not_printed() -> None:
    user = processman.User("abc", "users", token="tok-secret")
    assert "tok-secret" not in repr(user)
    env = processman.Environment.load({"PB_GATEWAY_SECRET": "s" * 64})
    assert "s" * 64 not in repr(env)


def test_environment_reads_the_contract() -> None:
    env = processman.Environment.load(
        {
            "PORT": "41234",
            "PB_PORT": "8090",
            "PB_URL": "http://127.0.0.1:8090/",
            "DB_DSN": "postgres://app:hunter2@db/app",
            "PB_DB_DRIVER": "postgres",
            "PB_PROCESS_NAME": "agent",
        }
    )
    assert (env.port, env.pb_port, env.pb_url) == (41234, 8090, "http://127.0.0.1:8090")
    assert (env.db_dsn, env.db_driver, env.process_name) == ("postgres://app:hunter2@db/app", "postgres", "agent")
    assert "hunter2" not in repr(env)


def test_environment_errors_name_the_variable() -> None:
    with pytest.raises(ValueError, match="PB_PORT"):
        processman.Environment.load({"PB_PORT": "http"})
    with pytest.raises(ValueError, match="PROCESSMAN_SHUTDOWN_TIMEOUT"):
        processman.Environment.load({"PROCESSMAN_SHUTDOWN_TIMEOUT": "-1"})


SDK = json.loads((Path(__file__).resolve().parents[3] / "testdata" / "sidecar-sdk.json").read_text())


def test_shared_defaults() -> None:
    """The defaults both SDKs share (testdata/sidecar-sdk.json)."""
    assert processman.DEFAULT_SHUTDOWN_TIMEOUT == SDK["shutdown_timeout_seconds"]
    assert processman.MAX_SKEW_SECONDS == SDK["max_skew_seconds"]
    assert processman.DEFAULT_DEV_PORT == SDK["dev_port"]["python"]
    for code, message in SDK["identity_errors"].items():
        assert str(processman.IdentityError(code)) == message


@pytest.mark.parametrize("c", SDK["instance"], ids=lambda c: repr(c["env"]))
def test_instance(c: dict[str, Any]) -> None:
    if c.get("error"):
        with pytest.raises(ValueError, match="PB_INSTANCE"):
            processman.instance(c["env"])
        return
    assert processman.instance(c["env"]) == c["instance"]
    assert processman.Environment.load(c["env"]).instance == c["instance"]


@pytest.mark.parametrize("c", SDK["dev_user"], ids=lambda c: repr(c["spec"]))
def test_dev_user_spec(c: dict[str, Any]) -> None:
    from processman.middleware import parse_dev_user

    if c.get("error"):
        with pytest.raises(ValueError, match="PROCESSMAN_DEV_USER"):
            parse_dev_user(c["spec"])
        return
    got = parse_dev_user(c["spec"])
    if c.get("pocketbase"):
        assert got == "pocketbase"
        return
    assert isinstance(got, processman.User)
    assert {"id": got.id, "collection": got.collection, "superuser": got.superuser} == c["user"]
