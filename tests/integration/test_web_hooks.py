"""Generic webhook intake: HMAC and bearer auth, 413, clear 400s, idempotency, and fuzzed bodies."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.web_support import HOOK_SECRET, HOOK_TOKEN, RunningServer, serve_app, web_settings
from trackwire.store.sqlite import SqliteStore
from trackwire.web.app import create_store_app


def sign(body: bytes, secret: str = HOOK_SECRET) -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


BEARER = {"Authorization": f"Bearer {HOOK_TOKEN}"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    s = SqliteStore(Path(tmp_path_factory.mktemp("hooks")) / "hooks.db")
    yield s
    s.close()


@pytest.fixture(scope="module")
def server(store: SqliteStore) -> Iterator[RunningServer]:
    with serve_app(create_store_app(store, web_settings(max_body_bytes=4096))) as running:
        yield running


def test_a_signed_body_becomes_an_event_with_its_entity_and_project(server: RunningServer, store: SqliteStore) -> None:
    body = json.dumps(
        {"id": "evt-1", "type": "render.finished", "entity": "Shot:1234", "project": {"type": "Project", "id": 70}}
    ).encode()
    response = server.client(token=None).post("/hooks/signed", content=body, headers=sign(body))
    assert response.status_code == 202, response.text
    (event_id,) = response.json()["ids"]
    event = store.get_event(event_id)
    assert event is not None
    assert (event.source, event.source_id, event.type) == ("hook:signed", "evt-1", "render.finished")
    assert str(event.entity) == "Shot:1234" and str(event.project) == "Project:70"
    assert event.data["id"] == "evt-1"


def test_the_same_id_twice_is_stored_once(server: RunningServer) -> None:
    client = server.client(token=None)
    body = json.dumps({"delivery": {"id": 991}, "kind": "build.done"}).encode()
    first = client.post("/hooks/bearer", content=body, headers=BEARER).json()
    again = client.post("/hooks/bearer", content=body, headers=BEARER).json()
    assert first["stored"] == 1 and first["duplicates"] == 0
    assert again["stored"] == 0 and again["duplicates"] == 1 and again["ids"] == [None]


def test_without_an_id_field_the_body_hash_dedupes(server: RunningServer) -> None:
    client = server.client(token=None)
    body = b'{"anything": [1, 2, 3]}'
    assert client.post("/hooks/hashed", content=body, headers=BEARER).json()["stored"] == 1
    assert client.post("/hooks/hashed", content=body, headers=BEARER).json()["duplicates"] == 1


def test_a_list_of_objects_appends_several_events(server: RunningServer, store: SqliteStore) -> None:
    body = json.dumps([{"id": f"batch-{i}", "type": "t"} for i in range(3)]).encode()
    response = server.client(token=None).post("/hooks/signed", content=body, headers=sign(body))
    assert response.status_code == 202 and response.json()["stored"] == 3


def test_bad_signatures_and_tokens_are_refused(server: RunningServer) -> None:
    client = server.client(token=None)
    body = b'{"id": "x"}'
    assert client.post("/hooks/signed", content=body).status_code == 401
    assert client.post("/hooks/signed", content=body, headers=sign(body, "wrong")).status_code == 401
    assert client.post("/hooks/signed", content=body + b" ", headers=sign(body)).status_code == 401
    assert client.post("/hooks/bearer", content=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    refused = client.post("/hooks/bearer", content=body, headers={"Authorization": "Bearer nope"})
    assert HOOK_TOKEN not in refused.text and HOOK_SECRET not in refused.text
    assert client.post("/hooks/unknown", content=body, headers=BEARER).status_code == 404


def test_a_body_over_the_limit_gets_413(server: RunningServer) -> None:
    body = json.dumps({"id": "big", "pad": "x" * 5000}).encode()
    response = server.client(token=None).post("/hooks/signed", content=body, headers=sign(body))
    assert response.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        for _ in range(10):
            yield b"x" * 1000

    streamed = server.client(token=None).post("/hooks/bearer", content=chunks(), headers=BEARER)
    assert streamed.status_code == 413


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[]", "one JSON object"),
        (b"42", "must be a JSON object"),
        (b'{"type": "t"}', "missing the id field 'id'"),
        (b'{"id": {"a": 1}}', "must be a string or a number"),
        (b'{"id": 1, "entity": "Shot"}', "entity"),
        (b'{"id": NaN}', "not valid JSON"),
        (b'{"id": "\\ud800"}', "cannot be stored"),
    ],
)
def test_malformed_bodies_get_a_clear_400(server: RunningServer, body: bytes, message: str) -> None:
    response = server.client(token=None).post("/hooks/signed", content=body, headers=sign(body))
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
objects = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values,
        "type": json_values,
        "entity": json_values,
        "project": json_values,
        "delivery": st.fixed_dictionaries({}, optional={"id": json_values}),
        "kind": json_values,
    },
).flatmap(lambda base: st.dictionaries(st.text(max_size=8), json_values, max_size=3).map(lambda extra: extra | base))
bodies = (
    st.binary(max_size=300)
    | objects.map(lambda o: json.dumps(o).encode())
    | st.lists(objects, max_size=3).map(lambda o: json.dumps(o).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
)


@pytest.fixture(scope="module")
def anonymous(server: RunningServer) -> httpx.Client:
    return server.client(token=None)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, hook=st.sampled_from(["signed", "bearer", "hashed"]))
def test_fuzzed_webhook_bodies_never_cause_a_server_error(anonymous: httpx.Client, body: bytes, hook: str) -> None:
    headers = sign(body) if hook == "signed" else BEARER
    response = anonymous.post(f"/hooks/{hook}", content=body, headers=headers)
    assert response.status_code in (202, 400, 413), (response.status_code, response.text, body)
    if response.status_code == 400:
        assert response.json()["error"]


def test_a_hook_without_a_secret_or_token_is_a_configuration_error(tmp_path: Path) -> None:
    from trackwire.config import load_settings
    from trackwire.errors import ConfigError

    config = tmp_path / "trackwire.toml"
    config.write_text('[[web.hooks]]\nname = "open"\n')
    with pytest.raises(ConfigError, match="needs secret, token"):
        load_settings(config)
