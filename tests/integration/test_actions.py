"""Each built-in action against a real local peer, with retries, timeouts and recorded outcomes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from trackwire.automations.executor import ActionExecutor
from trackwire.automations.state import FiringRecord, MemoryAutomationState, StateBatch
from trackwire.config import AutomationSettings
from trackwire.core.event import Event, Ref
from trackwire.core.triggers import Automation, EventTrigger, Firing

TRIGGER_EVENT = Event(
    source="sg",
    source_id="1",
    type="Shotgun_Shot_Change",
    entity=Ref("Shot", 1234, "sh010"),
    project=Ref("Project", 7, "demo"),
    attribute="sg_status_list",
    new="apr",
    occurred=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    id=41,
)


def run_actions(
    actions: list[dict[str, Any]], settings: AutomationSettings | None = None, emitted: list[Event] | None = None
) -> FiringRecord:
    settings = settings or AutomationSettings(action_backoff=0.01, action_timeout=5)
    automation = Automation("approve", EventTrigger(expect=("Shotgun_*",)), actions=tuple(actions))
    state = MemoryAutomationState()
    firing = Firing("f1", "approve", "t", "", 0.0, "threshold reached", (41,), 1, (0.0, 0.0), 41)
    state.commit(StateBatch(firings=(firing,)))

    async def get_events(ids: Sequence[int]) -> list[Event]:
        return [TRIGGER_EVENT]

    async def emit(events: Sequence[Event]) -> Sequence[int | None]:
        assert emitted is not None
        fresh = [e for e in events if e.source_id not in {x.source_id for x in emitted}]
        emitted.extend(fresh)
        return [100 if fresh else None]

    executor = ActionExecutor(lambda: {"approve": automation}, state, settings, get_events, emit)
    record = asyncio.run(executor.execute("f1"))
    assert record is not None
    return record


def test_a_webhook_posts_the_rendered_body_with_the_idempotency_key(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_json({"ok": True})
    record = run_actions(
        [
            {
                "type": "webhook",
                "url": httpserver.url_for("/hook"),
                "body": {"text": "{{ event.entity.name }} is {{ event.new }} ({{ count }} event)", "shot": "{{ key }}"},
            }
        ]
    )
    assert record.status == "succeeded"
    assert record.outcomes[0]["status"] == "succeeded" and record.outcomes[0]["attempts"] == 1
    (request, _response), *_ = httpserver.log
    assert json.loads(request.data) == {"text": "sh010 is apr (1 event)", "shot": ""}
    assert request.headers["Idempotency-Key"] == "f1:0"


def test_a_failing_webhook_is_retried_with_the_same_key_then_recorded_as_failed(httpserver: HTTPServer) -> None:
    keys: list[str] = []

    def handler(request: Request) -> Response:
        keys.append(request.headers["Idempotency-Key"])
        return Response("down", status=503)

    httpserver.expect_request("/flaky").respond_with_handler(handler)
    record = run_actions([{"type": "webhook", "url": httpserver.url_for("/flaky"), "attempts": 3}])
    assert record.status == "failed"
    outcome = record.outcomes[0]
    assert outcome["status"] == "failed" and outcome["attempts"] == 3
    assert "HTTP 503" in outcome["error"]
    assert keys == ["f1:0", "f1:0", "f1:0"]


def test_a_webhook_that_recovers_succeeds_on_a_later_attempt(httpserver: HTTPServer) -> None:
    calls: list[int] = []

    def handler(request: Request) -> Response:
        calls.append(1)
        return Response("busy", status=503) if len(calls) < 2 else Response("ok", status=200)

    httpserver.expect_request("/recover").respond_with_handler(handler)
    record = run_actions([{"type": "webhook", "url": httpserver.url_for("/recover")}])
    assert record.status == "succeeded" and record.outcomes[0]["attempts"] == 2
    assert "HTTP 503" in record.outcomes[0]["errors"][0]


def test_a_client_error_is_not_retried(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/gone").respond_with_data("no", status=404)
    record = run_actions([{"type": "webhook", "url": httpserver.url_for("/gone"), "attempts": 5}])
    assert record.status == "failed" and record.outcomes[0]["attempts"] == 1


def test_a_template_that_escapes_the_sandbox_fails_without_retrying(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/x").respond_with_data("ok")
    record = run_actions(
        [{"type": "webhook", "url": httpserver.url_for("/x"), "body": {"t": "{{ event.__class__.__mro__ }}"}}]
    )
    assert record.status == "failed" and record.outcomes[0]["attempts"] == 1
    assert "template" in record.outcomes[0]["error"]
    assert not httpserver.log


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[_Inbox, int]]:
    inbox = _Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def test_an_email_reaches_a_real_smtp_server_with_a_message_id_from_the_idempotency_key(
    smtp: tuple[_Inbox, int],
) -> None:
    inbox, port = smtp
    settings = AutomationSettings(smtp_host="127.0.0.1", smtp_port=port, mail_from="tw@studio.test")
    record = run_actions(
        [
            {
                "type": "email",
                "to": ["sup@studio.test"],
                "subject": "{{ event.entity.name }} approved",
                "body": "{{ reason }}",
            }
        ],
        settings,
    )
    assert record.status == "succeeded"
    (envelope,) = inbox.messages
    text = envelope.content.decode()
    assert envelope.rcpt_tos == ["sup@studio.test"]
    assert "Subject: sh010 approved" in text and "threshold reached" in text
    assert "Message-ID: <f1.0@trackwire>" in text


def test_an_unreachable_smtp_server_is_retried_then_recorded_as_failed() -> None:
    settings = AutomationSettings(smtp_host="127.0.0.1", smtp_port=1, action_backoff=0.01, action_attempts=2)
    record = run_actions([{"type": "email", "to": "a@b.test", "subject": "x"}], settings)
    assert record.status == "failed" and record.outcomes[0]["attempts"] == 2


def test_a_slack_message_is_posted_through_slack_sdk_to_a_recorded_fake_of_its_api(httpserver: HTTPServer) -> None:
    seen: list[dict[str, Any]] = []

    def chat_post_message(request: Request) -> Response:
        seen.append({"auth": request.headers.get("Authorization"), "body": json.loads(request.data)})
        # A response recorded from Slack's chat.postMessage, trimmed.
        body = {"ok": True, "channel": "C024BE91L", "ts": "1503435956.000247", "message": {"text": "x"}}
        return Response(json.dumps(body), content_type="application/json; charset=utf-8")

    httpserver.expect_request("/api/chat.postMessage", method="POST").respond_with_handler(chat_post_message)
    settings = AutomationSettings(slack_token="xoxb-test", slack_base_url=httpserver.url_for("/api/"))
    record = run_actions(
        [{"type": "slack", "channel": "#dailies", "text": "{{ event.entity.name }} approved"}], settings
    )
    assert record.status == "succeeded", record.outcomes
    assert "1503435956.000247" in record.outcomes[0]["detail"]
    assert seen[0]["auth"] == "Bearer xoxb-test"
    assert seen[0]["body"]["channel"] == "#dailies" and seen[0]["body"]["text"] == "sh010 approved"


def test_a_slack_api_error_is_recorded_and_not_retried(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/chat.postMessage").respond_with_json({"ok": False, "error": "channel_not_found"})
    settings = AutomationSettings(slack_token="xoxb-test", slack_base_url=httpserver.url_for("/api/"))
    record = run_actions([{"type": "slack", "channel": "#nope", "text": "hi"}], settings)
    assert record.status == "failed" and "channel_not_found" in record.outcomes[0]["error"]
    assert record.outcomes[0]["attempts"] == 1


def test_a_shell_command_runs_as_an_argument_list_without_a_shell(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    script = "import os,sys; open(sys.argv[1],'w').write(sys.argv[2] + '|' + os.environ['TRACKWIRE_IDEMPOTENCY_KEY'])"
    record = run_actions(
        [{"type": "shell", "command": [sys.executable, "-c", script, str(out), "$(echo no); {{ event.new }}"]}]
    )
    assert record.status == "succeeded", record.outcomes
    assert out.read_text() == "$(echo no); apr|f1:0"


def test_a_shell_command_that_hangs_is_timed_out_and_retried() -> None:
    record = run_actions(
        [
            {
                "type": "shell",
                "command": [sys.executable, "-c", "import time; time.sleep(30)"],
                "timeout": 0.5,
                "attempts": 2,
            }
        ]
    )
    assert record.status == "failed" and record.outcomes[0]["attempts"] == 2
    assert "timed out" in record.outcomes[0]["error"]


def test_emit_appends_an_event_that_follows_the_trigger_and_carries_its_depth() -> None:
    emitted: list[Event] = []
    record = run_actions(
        [{"type": "emit", "event_type": "trackwire.shot.approved", "data": {"shot": "{{ event.entity.name }}"}}],
        emitted=emitted,
    )
    assert record.status == "succeeded"
    (event,) = emitted
    assert event.type == "trackwire.shot.approved" and event.follows == 41
    assert event.entity == Ref("Shot", 1234, "sh010")
    assert event.data == {"shot": "sh010", "trackwire": {"automation": "approve", "firing": "f1", "depth": 1}}
    assert event.source_id == "f1:0"


def test_a_plugin_function_is_called_with_the_firing(tmp_path: Path) -> None:
    plugin = tmp_path / "hooks.py"
    plugin.write_text(
        "CALLS = []\n"
        "def notify(context, who):\n"
        "    import pathlib\n"
        f"    pathlib.Path({str(tmp_path / 'called')!r}).write_text(who + ':' + str(context['count']))\n"
        "    return 'done'\n"
    )
    record = run_actions([{"type": "plugin", "function": f"{plugin}:notify", "args": {"who": "{{ event.user }}"}}])
    assert record.status == "succeeded", record.outcomes
    assert (tmp_path / "called").read_text() == "None:1"


def test_actions_run_in_order_and_a_resumed_firing_skips_finished_actions(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/a").respond_with_data("ok")
    httpserver.expect_request("/b").respond_with_data("ok")
    record = run_actions(
        [{"type": "webhook", "url": httpserver.url_for("/a")}, {"type": "webhook", "url": httpserver.url_for("/b")}]
    )
    assert [o["status"] for o in record.outcomes] == ["succeeded", "succeeded"]
    assert [r.path for r, _ in httpserver.log] == ["/a", "/b"]


def _gone(pid: int) -> bool:
    """The process no longer runs (it is reaped, or a zombie waiting for its reaper)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.02)
    return False


def test_a_timed_out_shell_action_leaves_no_process_behind(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # the command starts a grandchild and both hang: the timeout must kill the whole process group
    script = (
        "import subprocess, sys, time, os\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "time.sleep(60)\n"
    )
    record = run_actions([{"type": "shell", "command": [sys.executable, "-c", script], "timeout": 2, "attempts": 1}])
    assert record.status == "failed" and "timed out after 2 s" in record.outcomes[0]["error"]
    parent, grandchild = (int(p) for p in pids.read_text().split())
    assert _wait_gone(parent), f"the command {parent} still runs"
    assert _wait_gone(grandchild), f"the process {grandchild} it started still runs"


def test_an_isolated_plugin_function_that_hangs_is_killed_at_its_timeout(tmp_path: Path) -> None:
    plugin = tmp_path / "slow.py"
    plugin.write_text(
        "import os, pathlib, time\n"
        "def hang(context, marker):\n"
        "    pathlib.Path(marker).write_text(str(os.getpid()))\n"
        "    time.sleep(60)\n"
        "def quick(context, who):\n"
        "    return who + ':' + str(context['count'])\n"
    )
    marker = tmp_path / "pid"
    record = run_actions(
        [{"type": "plugin", "function": f"{plugin}:hang", "args": {"marker": str(marker)}, "isolate": True,
          "timeout": 3, "attempts": 1}]
    )  # fmt: skip
    assert record.status == "failed" and "timed out after 3 s" in record.outcomes[0]["error"]
    assert _wait_gone(int(marker.read_text())), "the plugin function's process still runs"
    ok = run_actions([{"type": "plugin", "function": f"{plugin}:quick", "args": {"who": "x"}, "isolate": True}])
    assert ok.status == "succeeded", ok.outcomes
    assert ok.outcomes[0]["detail"].endswith("returned 'x:1'")


def test_an_smtp_server_that_never_answers_is_disconnected_at_the_timeout() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted: list[socket.socket] = []
    closed = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        accepted.append(conn)
        # a greeting trickled a byte at a time: no single read waits long enough for the socket timeout
        with contextlib.suppress(OSError):
            conn.sendall(b"220 ")
            for _ in range(200):
                time.sleep(0.2)
                conn.sendall(b"x")
                if not select.select([conn], [], [], 0)[0]:
                    continue
                if not conn.recv(1024):
                    break
        closed.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    settings = AutomationSettings(smtp_host="127.0.0.1", smtp_port=port, action_timeout=30)
    started = time.monotonic()
    record = run_actions(
        [{"type": "email", "to": "a@b.c", "subject": "s", "body": "b", "timeout": 1, "attempts": 1}], settings
    )
    assert record.status == "failed" and "timed out after 1 s" in record.outcomes[0]["error"]
    # the client's connection is shut at the timeout (the trickle would have kept it for 40 s)
    assert closed.wait(10), "the SMTP connection stayed open after the timeout"
    assert time.monotonic() - started < 15
    server.close()
    for conn in accepted:
        conn.close()
