"""processman.serve in a real subprocess: where it listens, the identity
check in front of the app, graceful stops with open streams, development mode."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import free_port, gateway_headers
from websockets.exceptions import InvalidStatus
from websockets.sync.client import unix_connect

USER = ("k3v1t9x2m8q4z7a", "users")


def test_unix_socket_ready_line_and_identity(sidecar) -> None:
    car = sidecar()
    path = car.env["PB_SOCKET"]
    assert car.address == f"unix:{path}"
    assert Path(path).is_socket()

    r = car.request("GET", "/whoami", user=USER, headers={"Authorization": "Bearer tok"})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "id": USER[0],
        "collection": "users",
        "superuser": False,
        "has_token": True,
        "state_user_id": USER[0],
        "authenticated": True,
        "contextvar_id": USER[0],
        "path": "/whoami",
    }

    guest = car.request("GET", "/whoami?x=%2F&y=1").json()
    assert guest["id"] == "" and guest["state_user_id"] is None and guest["authenticated"] is False

    r = car.request("GET", "/me")
    assert r.status_code == 401, "require_user must refuse a guest"
    assert car.request("GET", "/me", user=USER).json() == {"id": USER[0]}

    admin = car.request("GET", "/whoami", user=("s9u8p7e6r5u4s3r", "_superusers")).json()
    assert admin["superuser"] is True


@pytest.mark.parametrize(
    "case",
    ["unsigned", "forged id", "forged superuser", "other path", "other method", "expired", "wrong secret"],
)
def test_refused_with_pocketbase_error(sidecar, case: str) -> None:
    car = sidecar()
    headers = gateway_headers(car.secret, "GET", "/whoami", *USER)
    if case == "unsigned":
        headers = {"X-PB-Auth-Id": USER[0], "X-PB-Auth-Collection": "users", "X-PB-Auth-Superuser": "false"}
    elif case == "forged id":
        headers["X-PB-Auth-Id"] = "someoneelse0000"
    elif case == "forged superuser":
        headers["X-PB-Auth-Superuser"] = "true"
    elif case == "other path":
        headers = gateway_headers(car.secret, "GET", "/whoami?admin=1", *USER)
    elif case == "other method":
        headers = gateway_headers(car.secret, "POST", "/whoami", *USER)
    elif case == "expired":
        headers = gateway_headers(car.secret, "GET", "/whoami", *USER, at=int(time.time()) - 120)
    elif case == "wrong secret":
        headers = gateway_headers("0" * 64, "GET", "/whoami", *USER)
    r = car.request("GET", "/whoami", signed=False, headers=headers)
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["status"] == 401 and body["data"] == {} and body["message"]
    assert ("expired" in body["message"]) == (case == "expired")


def test_websocket_signed_and_refused(sidecar) -> None:
    car = sidecar()
    path = car.env["PB_SOCKET"]
    headers = gateway_headers(car.secret, "GET", "/ws", *USER)
    with unix_connect(path, "ws://sidecar/ws", additional_headers=headers, open_timeout=10) as ws:
        assert ws.recv(timeout=10) == USER[0]
        ws.send("hi")
        assert ws.recv(timeout=10) == "echo: hi"

    forged = dict(headers, **{"X-PB-Auth-Id": "someoneelse0000"})
    for hdrs in ({}, forged):
        with (
            pytest.raises(InvalidStatus) as e,
            unix_connect(path, "ws://sidecar/ws", additional_headers=hdrs, open_timeout=10),
        ):
            pass
        assert e.value.response.status_code == 401
        assert json.loads(e.value.response.body)["status"] == 401


def test_allow_unsigned_paths(sidecar) -> None:
    car = sidecar({"SERVE_ALLOW_UNSIGNED": "/health"})
    assert car.request("GET", "/health", signed=False).json() == {"ok": True}
    assert car.request("GET", "/whoami", signed=False).status_code == 401
    # A proof sent to an allowed path is still checked.
    forged = gateway_headers(car.secret, "GET", "/health", *USER)
    forged["X-PB-Auth-Id"] = "someoneelse0000"
    assert car.request("GET", "/health", signed=False, headers=forged).status_code == 401


def test_root_path(sidecar) -> None:
    """With root_path=PB_ROUTE the app sees its URLs under the route, and
    the proof still covers the path as the gateway forwarded it."""
    car = sidecar({"SERVE_ROOT_PATH": "/api/test", "SERVE_ALLOW_UNSIGNED": "/health"})
    body = car.request("GET", "/whoami?x=1", user=USER).json()
    assert body["id"] == USER[0] and body["path"] == "/api/test/whoami"
    assert car.request("GET", "/health", signed=False).json() == {"ok": True}
    assert car.request("GET", "/whoami", signed=False).status_code == 401


def test_stale_socket_is_removed(sidecar, tmp_path: Path) -> None:
    sockdir = tmp_path / "stale"
    sockdir.mkdir(mode=0o700)
    path = sockdir / "s.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))  # bound, never listening, closed: what a killed server leaves
    stale.close()
    assert path.is_socket()
    car = sidecar({"PB_SOCKET": str(path)})
    assert car.request("GET", "/health").status_code == 200


def test_refuses_a_path_that_is_not_a_socket(sidecar, tmp_path: Path) -> None:
    path = tmp_path / "not-a-socket"
    path.write_text("keep me")
    car = sidecar({"PB_SOCKET": str(path)}, wait=False)
    assert car.wait_exit(30) != 0
    assert "exists and is not a socket" in car.output()
    assert path.read_text() == "keep me"


def test_tcp_listen(sidecar) -> None:
    port = free_port()
    car = sidecar({"PB_SOCKET": "", "PORT": str(port), "PB_PORT": "8090"})
    assert car.address == f"http://127.0.0.1:{port}"
    assert car.request("GET", "/whoami", user=USER).json()["id"] == USER[0]
    assert car.request("GET", "/whoami", signed=False).status_code == 401


def test_gateway_without_socket_or_port_says_so(sidecar) -> None:
    car = sidecar({"PB_SOCKET": "", "PB_PORT": "8090"}, wait=False)
    assert car.wait_exit(30) != 0
    assert "neither PB_SOCKET nor PORT" in car.output()


def test_sigterm_lets_an_open_stream_finish(sidecar) -> None:
    car = sidecar({"PROCESSMAN_SHUTDOWN_TIMEOUT": "4"})
    events: list[tuple[float, str]] = []
    with car.client(timeout=20) as c:
        headers = gateway_headers(car.secret, "GET", "/sse?n=8&gap=0.25", *USER)
        with c.stream("GET", "/sse?n=8&gap=0.25", headers=headers) as r:
            assert r.status_code == 200
            lines = r.iter_lines()
            first = next(line for line in lines if line)
            car.proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            events.append((signalled, first))
            for line in lines:
                if line:
                    events.append((time.monotonic(), line))
    assert [e for _, e in events] == [f"data: {i}" for i in range(8)], "the stream must run to its end"
    assert events[-1][0] - signalled > 1.0, "the events after SIGTERM came as written, not all at once"
    # New connections are refused while the stream finishes; then it exits.
    code = car.wait_exit(5)
    assert code in (0, -signal.SIGTERM), car.output()
    assert time.monotonic() - signalled < 5.0


def test_sigterm_cuts_an_endless_stream_after_the_timeout(sidecar) -> None:
    car = sidecar({"PROCESSMAN_SHUTDOWN_TIMEOUT": "1"})
    got: list[str] = []
    ended = threading.Event()

    def read() -> None:
        try:
            with car.client(timeout=20) as c:
                headers = gateway_headers(car.secret, "GET", "/forever", *USER)
                with c.stream("GET", "/forever", headers=headers) as r:
                    for line in r.iter_lines():
                        if line:
                            got.append(line)
        except httpx.HTTPError:
            pass  # the connection is closed under the stream: also an end
        finally:
            ended.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    from conftest import wait_until

    wait_until(lambda: len(got) >= 3, 10, "no events")
    car.proc.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    assert ended.wait(10), "the client's stream never ended"
    code = car.wait_exit(10)
    took = time.monotonic() - signalled
    assert code in (0, -signal.SIGTERM), car.output()
    assert 0.8 < took < 4.5, f"exit {took:.1f}s after SIGTERM: expected the 1 s grace, well under a 5 s kill_timeout"
    assert "Cancel 1 running task" in car.output()


def test_development_mode(sidecar) -> None:
    port = free_port()
    car = sidecar({"PORT": str(port)}, gateway=False)
    assert car.address == f"http://127.0.0.1:{port}"
    assert "development mode" in car.output() and "every request is a guest" in car.output()
    # Identity headers from a client are not believed without a secret.
    r = car.request("GET", "/whoami", signed=False, headers={"X-PB-Auth-Id": USER[0], "Authorization": "tok"})
    body = r.json()
    assert body["id"] == "" and body["authenticated"] is False and body["has_token"] is False, "a guest has no token"


def test_development_user(sidecar) -> None:
    car = sidecar({"PORT": str(free_port()), "PROCESSMAN_DEV_USER": "users/devuser0000001"}, gateway=False)
    assert "every request is users/devuser0000001" in car.output()
    body = car.request("GET", "/whoami", signed=False).json()
    assert body["id"] == "devuser0000001" and body["state_user_id"] == "devuser0000001"


def test_starlette_request_user_and_requires(sidecar) -> None:
    car = sidecar()
    r = car.request("GET", "/starlette", user=USER)
    assert r.status_code == 200, r.text
    assert r.json() == {"user": f"users/{USER[0]}", "scopes": ["authenticated", "collection:users"]}
    assert car.request("GET", "/starlette").status_code == 403, "requires('authenticated') must refuse a guest"
    assert car.request("GET", "/admin", user=USER).status_code == 403
    admin = car.request("GET", "/admin", user=("s9u8p7e6r5u4s3r", "_superusers"))
    assert admin.status_code == 200 and admin.json() == {"user": "_superusers/s9u8p7e6r5u4s3r"}


def test_development_user_from_pocketbase(sidecar, pocketbase) -> None:
    token, uid = pocketbase.create_user()
    car = sidecar(
        {"PORT": str(free_port()), "PROCESSMAN_DEV_USER": "pocketbase", "PB_URL": pocketbase.url}, gateway=False
    )
    assert "the owner of its token" in car.output()
    body = car.request("GET", "/whoami", signed=False, headers={"Authorization": token}).json()
    assert (body["id"], body["collection"], body["has_token"]) == (uid, "users", True)
    forged = car.request("GET", "/whoami", signed=False, headers={"Authorization": token[:-4] + "AAAA"}).json()
    assert forged["id"] == "", "a token PocketBase refuses is a guest"
    assert car.request("GET", "/whoami", signed=False).json()["id"] == ""


def test_secret_is_never_printed(sidecar) -> None:
    car = sidecar()
    car.request("GET", "/whoami", signed=False)
    car.request("GET", "/whoami", user=USER)
    car.proc.send_signal(signal.SIGTERM)
    car.wait_exit(10)
    assert car.secret not in car.output()
