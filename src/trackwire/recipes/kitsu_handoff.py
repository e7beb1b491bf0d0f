"""Recipe: when a task reaches a hand-off status, the next task's assignees are told (Slack or email).

``rules`` lists the hand-offs: when a ``task_type`` task of an entity reaches ``status``, the
assignees of the same entity's ``next`` task are notified. The default follows the studio handbook:
animation "done" -> lighting, lighting "done" -> compositing. ``channel`` is ``"slack"`` (``slack_webhook``)
or ``"email"`` (``smtp_host``, ``smtp_port``, ``sender``; the person's Kitsu email). Each (event, person)
is recorded in ``state_dir``/handoff-sent.jsonl, so a retried event notifies nobody twice.

    [[plugins]]
    path = "…/trackwire/recipes/kitsu_handoff.py"
    options = { url = "http://kitsu/api", email = "bot@studio", channel = "slack",
                slack_webhook = "https://hooks.slack.com/services/…", state_dir = "/var/lib/trackwire",
                rules = [{ task_type = "Animation", status = "done", next = "Lighting" },
                         { task_type = "Lighting", status = "done", next = "Compositing" }] }
"""

from __future__ import annotations

from pathlib import Path

from trackwire.core.event import Event
from trackwire.plugins.kitsu import Kitsu, KitsuCall
from trackwire.recipes.logic import SentLedger, handoff_for, parse_rules, send_email, send_slack

kitsu = Kitsu()

DEFAULT_RULES = [
    {"task_type": "Animation", "status": "done", "next": "Lighting"},
    {"task_type": "Lighting", "status": "done", "next": "Compositing"},
]


@kitsu.on("task:status-changed")
def notify_next_task(event: Event, k: KitsuCall) -> None:
    status = k.get("TaskStatus", str(event.new), max_age=300)
    task = k.entity()
    task_type = k.get("TaskType", task["task_type_id"], max_age=300)
    rule = handoff_for(parse_rules(k.options.get("rules", DEFAULT_RULES)), task_type["name"], status["short_name"])
    if rule is None:
        return
    gazu, client = k.gazu, k.client
    next_type = gazu.task.get_task_type_by_name(rule.next, client=client)
    next_task = gazu.task.get_task_by_entity(task["entity_id"], next_type, client=client) if next_type else None
    if not next_task:
        k.log.info("no %s task after %s %s: nobody to tell", rule.next, task_type["name"], task["id"])
        return
    next_task = gazu.task.get_task(next_task["id"], client=client)  # the full record lists the assignees
    entity = k.get("Entity", task["entity_id"])
    ledger = SentLedger(Path(k.options.get("state_dir", ".")) / "handoff-sent.jsonl")
    text = f"{entity['name']}: {task_type['name']} is {status['name']}. Your {rule.next} task can start."
    for person_id in next_task.get("assignees") or []:
        key = f"{event.source_id}:{person_id}"
        if ledger.sent(key):
            continue
        person = k.get("Person", person_id, max_age=300)
        if k.options.get("channel", "slack") == "email":
            send_email(
                str(k.options.get("smtp_host", "localhost")),
                int(k.options.get("smtp_port", 25)),
                str(k.options.get("sender", "trackwire@localhost")),
                person["email"],
                f"[{entity['name']}] {rule.next} can start",
                text,
            )
        else:
            send_slack(str(k.options["slack_webhook"]), f"{person.get('full_name') or person['email']}: {text}")
        ledger.mark(key, person=person_id, task=next_task["id"])
        k.log.info("told %s that %s can start", person["email"], next_task["id"])
