"""The ShotGrid webhook intake over HTTP (FastAPI's test client), with a real SQLite store."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import wait_for
from tests.fakes.shotgrid_server import FakeShotgrid
from trackwire.config import Settings
from trackwire.sources.shotgrid import ShotgridSource
from trackwire.store.sqlite import SqliteStore
from trackwire.web.backend import Backend
from trackwire.web.shotgrid_hooks import shotgrid_router

SECRET = "webhook-token"


def delivery(entry_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"119.110.{entry_id}",
        "event_log_entry_id": entry_id,
        "event_type": "Shotgun_Asset_Change",
        "operation": "update",
        "user": {"type": "HumanUser", "id": 24},
        "entity": {"type": "Asset", "id": 1419},
        "project": {"type": "Project", "id": 127},
        "meta": {"type": "attribute_change", "attribute_name": "code", "new_value": "Bunny", "old_value": "Rabbit"},
        "created_at": "2024-05-01 10:00:00.202136",
        "attribute_name": "code",
        "session_uuid": "abc-123",
        **extra,
    }


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "tw.db")


class Client:
    """Posts to the ASGI app in-process through httpx's ASGI transport."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def post(self, path: str, *, content: bytes, headers: dict[str, str]) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://sg.test") as client:
                return await client.post(path, content=content, headers=headers)

        return asyncio.run(send())


def make_client(store: SqliteStore, site: str | None = None) -> Client:
    settings = Settings(shotgrid={"webhook_secret": SECRET, "site": site, "script_name": "trackwire"})
    daemon = SimpleNamespace(settings=settings, store=store, tail=None)
    app = FastAPI()
    app.include_router(shotgrid_router(Backend(lambda: store, daemon)))  # type: ignore[arg-type]
    return Client(app)


def post(client: Client, payload: Any, signature: str | None = "good", raw: bytes | None = None) -> Any:
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {"content-type": "application/json"}
    if signature == "good":
        headers["X-SG-SIGNATURE"] = sign(body)
    elif signature is not None:
        headers["X-SG-SIGNATURE"] = signature
    return client.post("/hooks/shotgrid", content=body, headers=headers)


def test_a_delivery_with_a_good_signature_is_stored_as_the_eventlogentry_dict(store: SqliteStore) -> None:
    response = post(make_client(store), {"data": delivery(479004), "timestamp": "2024-05-01T10:00:03Z"})
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 1, "new": 1}
    [record] = store.read_after(0, 10)
    event = record.event
    assert (event.source, event.source_id, event.type, event.attribute) == (
        "shotgrid",
        "479004",
        "Shotgun_Asset_Change",
        "code",
    )
    assert event.data["type"] == "EventLogEntry"
    assert event.data["id"] == 479004
    assert event.data["created_at"] == datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
    assert set(event.data) == {
        "type", "id", "event_type", "attribute_name", "meta", "entity", "user", "project", "session_uuid", "created_at"
    }  # fmt: skip


@pytest.mark.parametrize("signature", [None, "sha1=" + "0" * 40, "md5=abc", "sha1=", "forged"])
def test_a_forged_or_missing_signature_is_refused_with_401_and_nothing_is_stored(
    store: SqliteStore, signature: str | None
) -> None:
    response = post(make_client(store), {"data": delivery(1)}, signature=signature)
    assert response.status_code == 401
    assert store.read_after(0, 10) == []


def test_a_signature_made_with_another_secret_is_refused(store: SqliteStore) -> None:
    body = json.dumps({"data": delivery(1)}).encode()
    response = post(make_client(store), None, signature=sign(body, "other"), raw=body)
    assert response.status_code == 401


def test_a_batched_payload_is_split_into_one_event_per_delivery_in_order(store: SqliteStore) -> None:
    payload = {"data": {"deliveries": [delivery(10), delivery(11), delivery(12)]}, "timestamp": "x"}
    response = post(make_client(store), payload)
    assert response.json() == {"received": 3, "new": 3}
    assert [r.event.source_id for r in store.read_after(0, 10)] == ["10", "11", "12"]


def test_a_delivery_sent_twice_is_stored_once(store: SqliteStore) -> None:
    client = make_client(store)
    assert post(client, {"data": delivery(5)}).json() == {"received": 1, "new": 1}
    assert post(client, {"data": delivery(5)}).json() == {"received": 1, "new": 0}
    assert len(store.read_after(0, 10)) == 1


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", '"data" object'),
        (b'{"data": {"deliveries": 5}}', "must be a list"),
        (b'{"data": {"event_type": "Shotgun_Shot_New"}}', "event_log_entry_id"),
        (b'{"data": {"deliveries": [{"event_log_entry_id": 3}]}}', "delivery 0: a delivery needs an event_type"),
        (b'{"data": {"event_log_entry_id": 3, "event_type": "X", "created_at": "yesterday"}}', "not a date-time"),
        (b'{"data": {"event_log_entry_id": "3", "event_type": "X"}}', "positive integer"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_a_malformed_body_is_answered_400_with_the_reason_never_500(
    store: SqliteStore, raw: bytes, reason: str
) -> None:
    response = post(make_client(store), None, raw=raw)
    assert response.status_code == 400
    assert reason in response.json()["error"]


def test_an_event_seen_by_the_webhook_and_the_poller_is_stored_once(store: SqliteStore) -> None:
    with FakeShotgrid() as fake:
        first = fake.add_event("Shotgun_Shot_Change", entity={"type": "Shot", "id": 1}, attribute_name="code")
        client = make_client(store, fake.url)
        assert post(client, {"data": delivery(first + 1)}).json()["new"] == 1  # the webhook is faster
        fake.add_event("Shotgun_Asset_Change", entity={"type": "Asset", "id": 1419}, attribute_name="code")
        settings = Settings(
            shotgrid={"site": fake.url, "script_name": "trackwire", "script_key": "secret", "start": 1}
        ).shotgrid

        async def poll_until_caught_up() -> None:
            source = ShotgridSource(settings)
            stop = asyncio.Event()
            task = asyncio.create_task(source.run(store, stop, asyncio.Event()))
            while source.backlog is None or source.backlog.last_id < first + 1:
                await asyncio.sleep(0.02)
            stop.set()
            await task

        asyncio.run(asyncio.wait_for(poll_until_caught_up(), 30))
    ids = [r.event.source_id for r in store.read_after(0, 10)]
    assert sorted(ids) == [str(first), str(first + 1)]
    wait_for(lambda: store.get_cursor("shotgrid")["last_id"] == first + 1, 5, what="the poller's cursor")
