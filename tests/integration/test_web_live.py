"""The web app embedded in a running daemon: live fates, metrics, webhooks waking the engine."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import wait_for
from tests.integration.daemon_support import live_daemon
from tests.integration.web_support import HOOK_SECRET, TOKEN, fill_store, serve_app, web_settings
from trackwire.config import HookSettings
from trackwire.web.app import create_store_app


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_fates_and_webhooks_with_a_running_daemon(tmp_path: Path) -> None:
    hook = HookSettings(name="farm", secret=HOOK_SECRET, type_field="event", entity_field="shot")
    with live_daemon(tmp_path, hooks=[hook.model_dump()]) as live:
        api = live.api()
        wait_for(lambda: api.get("/api/groups/audit").json()["lag"] == 0, timeout=60, what="audit to catch up")
        wait_for(lambda: len(live.store.dead_letters("farm")) >= 1, timeout=60, what="a dead letter in farm")

        body = json.dumps({"id": "job-7", "event": "Shotgun_Render_Done", "shot": "Shot:1013"}).encode()
        signature = "sha256=" + hmac.new(HOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        posted = api.post("/hooks/farm", content=body, headers={"X-Hub-Signature-256": signature})
        assert posted.status_code == 202
        (hook_event,) = posted.json()["ids"]

        def fates() -> dict[str, str]:
            return {f["group"]: f["state"] for f in api.get(f"/api/events/{hook_event}").json()["fates"]}

        # audit matches Shotgun_*, the others do not: the live matchers tell delivered from skipped
        wait_for(lambda: fates()["audit"] == "delivered", timeout=30, what="audit to handle the hook event")
        assert fates() == {"audit": "delivered", "farm": "skipped by filter", "notify": "skipped by filter"}

        text = api.get("/metrics").text
        samples = _samples(text)
        assert samples[("trackwire_events_appended_total", (("source", "hook:farm"),))] == 1
        assert samples[("trackwire_deliveries_total", (("group", "audit"), ("outcome", "delivered")))] >= 40
        assert samples[("trackwire_deliveries_total", (("group", "farm"), ("outcome", "dead")))] >= 1
        assert samples[("trackwire_deliveries_waiting", (("group", "farm"), ("state", "dead")))] >= 1
        assert ("trackwire_consumer_lag_events", (("group", "audit"),)) in samples
        assert samples[("trackwire_callback_duration_seconds_count", (("group", "audit"),))] >= 40
        assert samples[("trackwire_webhook_requests_total", (("hook", "farm"), ("result", "stored")))] == 1
        assert TOKEN not in text and HOOK_SECRET not in text

        group = api.get("/api/groups/farm").json()
        assert group["live"] is True and group["worker"] == "running"
        assert "render farm unreachable" in group["last_error"]
        assert group["spec"]["max_attempts"] == 2
        assert re.search(r"ConnectionError", group["last_traceback"] or "")


def test_each_app_has_its_own_metrics_registry(tmp_path: Path) -> None:
    store = fill_store(tmp_path / "m.db")
    try:
        with (
            serve_app(create_store_app(store, web_settings())) as one,
            serve_app(create_store_app(store, web_settings())) as two,
        ):
            first = _samples(one.client().get("/metrics").text)
            second = _samples(two.client().get("/metrics").text)
            assert first[("trackwire_last_event_id", ())] == second[("trackwire_last_event_id", ())] == 120
            assert one.app.state.metrics.registry is not two.app.state.metrics.registry
            waiting = ("trackwire_deliveries_waiting", (("group", "notify"), ("state", "dead")))
            assert first[waiting] == second[waiting] == 1
    finally:
        store.close()
