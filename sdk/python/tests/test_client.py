"""The PocketBase client against a real PocketBase whose `notes` collection
lets users see and write only their own notes (examples/pb_migrations)."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from contextlib import closing

import pytest
from conftest import free_port

import processman
from processman import AsyncPocketBase, PocketBase, PocketBaseError, User


def test_crud_as_the_caller(pocketbase) -> None:
    token, uid = pocketbase.create_user()
    with PocketBase(pocketbase.url, token) as pb:
        notes = pb.collection("notes")
        created = notes.create({"text": "first", "owner": uid, "source": "test"})
        assert created["owner"] == uid and created["text"] == "first" and created["id"]
        assert notes.get_one(created["id"])["text"] == "first"
        updated = notes.update(created["id"], {"text": "second"})
        assert updated["text"] == "second"
        page = notes.get_list(1, 10, filter=f'id = "{created["id"]}"')
        assert page.total_items == 1 and page.items[0]["text"] == "second" and page.page == 1 and page.per_page == 10
        notes.delete(created["id"])
        with pytest.raises(PocketBaseError) as e:
            notes.get_one(created["id"])
        assert e.value.status == 404


def test_api_rules_apply_to_the_caller(pocketbase) -> None:
    token_a, uid_a = pocketbase.create_user()
    token_b, _uid_b = pocketbase.create_user()
    with PocketBase(pocketbase.url, user=User(uid_a, "users", token=token_a)) as a:
        note = a.collection("notes").create({"text": "private to a", "owner": uid_a})
    with PocketBase(pocketbase.url, token_b) as b:
        notes = b.collection("notes")
        assert notes.get_full_list() == []
        with pytest.raises(PocketBaseError) as e:
            notes.get_one(note["id"])
        assert e.value.status == 404
        # b cannot write a note owned by a (createRule: owner = @request.auth.id).
        with pytest.raises(PocketBaseError) as e:
            notes.create({"text": "forged", "owner": uid_a})
        assert e.value.status == 400 and e.value.message
    with PocketBase(pocketbase.url) as guest:
        assert guest.collection("notes").get_list().items == []
        with pytest.raises(PocketBaseError) as e:
            guest.collection("notes").create({"text": "anon", "owner": uid_a})
        assert e.value.status == 400


def test_error_carries_pocketbase_json(pocketbase) -> None:
    token, uid = pocketbase.create_user()
    with PocketBase(pocketbase.url, token) as pb, pytest.raises(PocketBaseError) as e:
        pb.collection("notes").create({"owner": uid})  # text is required
    err = e.value
    assert err.status == 400
    assert err.data["text"]["code"] == "validation_required"
    assert "POST /api/collections/notes/records" in str(err) and "400" in str(err)
    with PocketBase(pocketbase.url, token) as pb, pytest.raises(PocketBaseError) as e:
        pb.collection("no_such_collection").get_list()
    assert e.value.status == 404


def test_full_list_pages_through_everything(pocketbase) -> None:
    token, uid = pocketbase.create_user()
    with PocketBase(pocketbase.url, token) as pb:
        notes = pb.collection("notes")
        for i in range(5):
            notes.create({"text": f"n{i}", "owner": uid})
        got = notes.get_full_list(batch=2, sort="text")
        assert [n["text"] for n in got] == [f"n{i}" for i in range(5)]
        assert notes.get_list(1, 2, skip_total=True).total_items == -1


def test_async_client(pocketbase) -> None:
    token, uid = pocketbase.create_user()
    _, other = pocketbase.create_user()

    async def main() -> None:
        async with AsyncPocketBase(pocketbase.url, user=User(uid, "users", token=token)) as pb:
            notes = pb.collection("notes")
            note = await notes.create({"text": "async", "owner": uid, "source": "test"})
            assert (await notes.get_one(note["id"]))["text"] == "async"
            assert (await notes.update(note["id"], {"text": "async 2"}))["text"] == "async 2"
            assert [n["id"] for n in await notes.get_full_list(batch=1)] == [note["id"]]
            assert (await notes.get_list()).total_items == 1
            with pytest.raises(PocketBaseError) as e:
                await notes.create({"text": "x", "owner": other})
            assert e.value.status == 400
            await notes.delete(note["id"])
            assert (await notes.get_list()).items == []

    asyncio.run(main())


def test_url_from_pb_url(pocketbase, monkeypatch) -> None:
    monkeypatch.setenv("PB_URL", pocketbase.url + "/")
    with PocketBase() as pb:
        assert pb.url == pocketbase.url
        assert pb.send("GET", "/api/health")["code"] == 200
    monkeypatch.delenv("PB_URL")
    with pytest.raises(ValueError, match="PB_URL"):
        PocketBase()


def test_unreachable_is_a_pocketbase_error() -> None:
    with PocketBase(f"http://127.0.0.1:{free_port()}", timeout=2) as pb, pytest.raises(PocketBaseError) as e:
        pb.collection("notes").get_list()
    assert e.value.status == 0 and "unreachable" in str(e.value)


def test_sidecar_writes_as_the_signed_caller(pocketbase, sidecar) -> None:
    """A served app creates a note with AsyncPocketBase(user=current_user()):
    the note belongs to whoever the gateway said called."""
    token, uid = pocketbase.create_user()
    car = sidecar({"PB_URL": pocketbase.url})
    text = f"from the sidecar {uuid.uuid4().hex[:6]}"
    r = car.request("POST", "/notes", user=(uid, "users"), headers={"Authorization": token}, json={"text": text})
    assert r.status_code == 200, r.text
    assert r.json()["owner"] == uid
    with PocketBase(pocketbase.url, token) as pb:
        assert [n["text"] for n in pb.collection("notes").get_full_list(filter=f'text = "{text}"')] == [text]


def test_readonly_database(pocketbase, monkeypatch) -> None:
    token, uid = pocketbase.create_user()
    with PocketBase(pocketbase.url, token) as pb:
        note = pb.collection("notes").create({"text": "read me directly", "owner": uid})
    monkeypatch.setenv("PB_DB_PATH", str(pocketbase.data_dir / "data.db"))
    with closing(processman.connect_readonly()) as db:
        row = db.execute("SELECT text, owner FROM notes WHERE id = ?", (note["id"],)).fetchone()
        assert (row["text"], row["owner"]) == ("read me directly", uid)
        with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only"):
            db.execute("DELETE FROM notes")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        processman.connect_readonly(pocketbase.data_dir / "nope.db")
