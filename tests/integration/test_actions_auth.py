"""Who may invoke a hosted action: the tracker's token in the URL, form tickets, clear 401/403, never 500."""

from __future__ import annotations

import logging
import re

import httpx
import pytest

from tests.integration.test_actions_hosted import AMI_FIELDS, KITSU_TOKEN, SG_TOKEN, Client
from trackwire.config import HostedActionsSettings
from trackwire.store.memory import MemoryStore
from trackwire.web.action_auth import ActionGate
from trackwire.web.actions import INVOKED_TYPE

SG_URL = "/actions/shotgrid/loco.update-rv-component"
KITSU_URL = "/actions/kitsu/loco.clear-job-queue"
VERSION_AMI = {**dict(AMI_FIELDS), "entity_type": "Version"}
KITSU_BODY = {  # what Kitsu posts for an is_ajax custom action (see tests/integration/test_actions_kitsu.py)
    "entitytype": "shot",
    "selection": ["0e4f8d52-1c5e-4c39-9b8e-6d3a1f2b7c10"],
    "userid": "3f6b8a2c-9d1e-4f70-8a5b-2c3d4e5f6a7b",
    "useremail": "jane@locovfx.com",
}


def _recorded(store: MemoryStore) -> int:
    return sum(1 for r in store.read_after(0, 100) if r.event.type == INVOKED_TYPE)


def test_an_ami_post_with_the_right_token_runs_and_without_or_with_a_wrong_one_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    store = MemoryStore()
    client = Client(store)
    missing = client.post(SG_URL, token=None, data=VERSION_AMI)
    wrong = client.post(SG_URL, token="sg-guess", data=VERSION_AMI)
    ok = client.post(SG_URL, data=VERSION_AMI)
    assert missing.status_code == 401 and "needs its token" in missing.text
    assert "hosted_actions.shotgrid_token" in missing.text
    assert wrong.status_code == 403 and "token of this shotgrid action URL is wrong" in wrong.text
    assert ok.status_code == 200 and "movie component added" in ok.text
    assert _recorded(store) == 1
    for response in (missing, wrong, ok):
        assert SG_TOKEN not in response.text
    ours = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("trackwire"))  # httpx is the client
    assert SG_TOKEN not in ours and "sg-guess" not in ours


def test_a_refused_caller_learns_nothing_about_which_actions_exist_or_what_is_malformed() -> None:
    client = Client(MemoryStore())
    unknown = client.post("/actions/shotgrid/no-such-action", token=None, data=VERSION_AMI)
    garbage = client.post(SG_URL, token="x", content=b"\xff\xfe", headers={"content-type": "multipart/form-data"})
    assert (unknown.status_code, garbage.status_code) == (401, 403)
    known_garbage = client.post(SG_URL, content=b"\xff\xfe", headers={"content-type": "multipart/form-data"})
    assert known_garbage.status_code == 400


def test_the_token_may_come_as_a_header_or_a_bearer_token_for_scripts() -> None:
    store = MemoryStore()
    client = Client(store)
    header = client.post(SG_URL, token=None, data=VERSION_AMI, headers={"X-Trackwire-Token": SG_TOKEN})
    bearer = client.post(SG_URL, token=None, data=VERSION_AMI, headers={"Authorization": f"Bearer {SG_TOKEN}"})
    other_tracker = client.post(SG_URL, token=KITSU_TOKEN, data=VERSION_AMI)
    assert (header.status_code, bearer.status_code, other_tracker.status_code) == (200, 200, 403)
    assert _recorded(store) == 2


def test_with_no_token_configured_the_endpoints_are_closed_unless_explicitly_opened() -> None:
    closed = Client(MemoryStore(), settings=HostedActionsSettings())
    sg = closed.post(SG_URL, token=None, data=VERSION_AMI)
    kitsu = closed.post(KITSU_URL, token=None, json=KITSU_BODY)
    assert sg.status_code == 403 and "shotgrid actions are closed: set hosted_actions.shotgrid_token" in sg.text
    assert kitsu.status_code == 403 and "kitsu actions are closed" in kitsu.json()["error"]
    opened = Client(MemoryStore(), settings=HostedActionsSettings(allow_without_token=True))
    assert opened.post(SG_URL, token=None, data=VERSION_AMI).status_code == 200
    assert opened.post(KITSU_URL, token=None, json=KITSU_BODY).status_code == 200


def test_our_form_posts_back_with_a_ticket_not_the_token_and_a_forged_ticket_is_refused() -> None:
    store = MemoryStore()
    client = Client(store)
    url = "/actions/shotgrid/loco.batch-create-shots"
    form = client.post(url, data=dict(AMI_FIELDS))
    assert form.status_code == 200 and SG_TOKEN not in form.text
    ticket = re.search(r"name='trackwire_ticket' value='([^']+)'", form.text)
    assert ticket is not None
    assert re.search(r"<form method='post' action='/actions/shotgrid/loco.batch-create-shots'>", form.text)
    values = [("submitted", "1"), ("value.pattern", "sh{:04d}"), ("value.first", "1"), ("value.last", "2")]
    back = [*AMI_FIELDS, ("trackwire_ticket", ticket.group(1)), *values]
    body = str(httpx.QueryParams(tuple(back)))
    headers = {"content-type": "application/x-www-form-urlencoded"}
    ran = client.post(url, token=None, content=body, headers=headers)
    assert ran.status_code == 200 and "would create 1 shots" in ran.text
    expires, _, signature = ticket.group(1).partition(".")
    forged = [*AMI_FIELDS, ("trackwire_ticket", f"{int(expires) + 3600}.{signature}"), *values]
    refused = client.post(url, token=None, content=str(httpx.QueryParams(tuple(forged))), headers=headers)
    elsewhere = client.post(
        "/actions/shotgrid/loco.clear-job-queue",
        token=None,
        content=str(httpx.QueryParams([*AMI_FIELDS, ("trackwire_ticket", ticket.group(1))])),
        headers=headers,
    )
    assert refused.status_code == 403 and "this form has expired or was not issued here" in refused.text
    assert elsewhere.status_code == 403
    assert _recorded(store) == 1


def test_a_form_ticket_expires_after_an_hour() -> None:
    gate = ActionGate(HostedActionsSettings(shotgrid_token="t"))
    ticket = gate.ticket("shotgrid", "a", now=1_000_000.0)
    assert ticket is not None
    assert gate.ticket_ok("shotgrid", "a", ticket, now=1_000_000.0 + 3599)
    assert not gate.ticket_ok("shotgrid", "a", ticket, now=1_000_000.0 + 3601)
    assert not gate.ticket_ok("shotgrid", "b", ticket, now=1_000_000.0)
    assert not gate.ticket_ok("kitsu", "a", ticket, now=1_000_000.0)
    assert not gate.ticket_ok("shotgrid", "a", "not-a-ticket", now=1_000_000.0)


def test_a_kitsu_custom_action_needs_its_token_and_odd_tokens_are_refused_not_crashed() -> None:
    store = MemoryStore()
    client = Client(store)
    assert client.post(KITSU_URL, token=None, json=KITSU_BODY).status_code == 401
    assert client.post(KITSU_URL, token="é\u2603" * 40, json=KITSU_BODY).status_code == 403
    assert client.post(KITSU_URL, token=SG_TOKEN, json=KITSU_BODY).status_code == 403
    ok = client.post(KITSU_URL, json=KITSU_BODY)
    assert ok.status_code == 200 and ok.json()["success"] is True
    assert _recorded(store) == 1
