"""The automation service inside a real daemon on SQLite: firings recorded, actions run, files hot-reloaded."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
from pytest_httpserver import HTTPServer

from trackwire.automations.checkpoint import CheckpointBuilder
from trackwire.automations.replay import durable_evaluator
from trackwire.automations.service import AutomationService
from trackwire.automations.state import CheckpointWrite, StateBatch
from trackwire.config import load_settings
from trackwire.core.event import Event, Ref
from trackwire.core.triggers import Evaluator
from trackwire.runtime.daemon import Daemon
from trackwire.store.sqlite import SqliteStore
from trackwire.store.sqlite.automation_state import SqliteAutomationState

THRESHOLD = """
[[automation]]
name = "notes-burst"
[automation.trigger]
expect = ["Shotgun_Note_New"]
for_each = ["entity.id"]
threshold = 3
within = "10m"
[[automation.actions]]
type = "webhook"
url = "{url}"
body = {{ shot = "{{{{ key }}}}", count = "{{{{ count }}}}" }}
"""

EMITTER = """
[[automation]]
name = "echo"
allow_self = true
[automation.trigger]
expect = ["ping"]
[[automation.actions]]
type = "emit"
event_type = "ping"
"""


async def until(condition: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        await asyncio.sleep(0.02)


def with_daemon(
    tmp_path: Path,
    scenario: Callable[[Daemon, SqliteStore, AutomationService], Awaitable[None]],
    **automations: Any,
) -> None:
    folder = tmp_path / "automations"
    folder.mkdir(exist_ok=True)

    async def main() -> None:
        settings = load_settings(
            None,
            overrides={
                "store.url": f"sqlite:///{tmp_path / 'tw.db'}",
                "web.enabled": False,
                "log.file": "",
                "automations": {
                    "path": str(folder),
                    "sweep_interval": 0.05,
                    "action_backoff": 0.01,
                    "max_depth": 4,
                    **automations,
                },
            },
        )
        store = SqliteStore(tmp_path / "tw.db")
        daemon = Daemon(settings, store=store)
        runner = asyncio.create_task(daemon.run(install_signals=False))
        service: AutomationService = await until(lambda: daemon.automations)
        await asyncio.wait_for(service.ready.wait(), 30)
        try:
            await scenario(daemon, store, service)
        finally:
            daemon.request_stop()
            await asyncio.wait_for(runner, 30)

    asyncio.run(main())


def note(i: int, shot: int) -> Event:
    return Event(source="sg", source_id=f"n{i}", type="Shotgun_Note_New", entity=Ref("Shot", shot))


def test_a_threshold_automation_fires_per_shot_and_its_webhook_runs(tmp_path: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/notes").respond_with_data("ok")
    (tmp_path / "automations").mkdir()
    (tmp_path / "automations" / "notes.toml").write_text(THRESHOLD.format(url=httpserver.url_for("/notes")))

    async def scenario(daemon: Daemon, store: SqliteStore, service: AutomationService) -> None:
        store.append([note(i, shot=i % 2) for i in range(7)])
        daemon.notify_appended()
        assert service.state is not None
        await until(lambda: len(httpserver.log) == 2)
        state = service.state  # a local: mypy keeps no attribute narrowing inside a lambda
        await until(lambda: len([f for f in state.firings("notes-burst") if f.status == "succeeded"]) == 2)
        firings = service.state.firings("notes-burst")
        assert sorted(f.key for f in firings) == ["0", "1"]
        assert sorted(f.events for f in firings) == [(1, 3, 5), (2, 4, 6)]
        bodies = sorted(r.get_json()["shot"] for r, _ in httpserver.log)
        assert bodies == ["0", "1"]
        # the half-full bucket is durable: the checkpoint plus the journal replayed hold it
        durable, _ = durable_evaluator(
            service.state, service.evaluator.automations, lambda ids: [r.event for r in store.get_records(ids)]
        )
        half = [(k[1], k[2], len(v["times"])) for k, v in durable.state.items() if k[0] == "notes-burst"]
        assert half == [("t", "0", 1)]

    with_daemon(tmp_path, scenario)
    state = SqliteAutomationState(tmp_path / "tw.db")
    try:
        assert state.counts() == {"notes-burst": {"succeeded": 2}}
    finally:
        state.close()


def test_an_automation_file_is_loaded_changed_and_forgotten_without_restart(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/notes").respond_with_data("ok")

    async def scenario(daemon: Daemon, store: SqliteStore, service: AutomationService) -> None:
        assert not service.evaluator.by_name
        path = tmp_path / "automations" / "notes.toml"
        path.write_text(THRESHOLD.format(url=httpserver.url_for("/notes")))
        await until(lambda: "notes-burst" in service.evaluator.by_name)
        path.write_text("[[automation]]\nname = 'broken'\n[automation.trigger]\nposture = 'sideways'\n")
        await until(lambda: service.errors)
        assert "notes-burst" in service.evaluator.by_name, "a broken file keeps the previous version"
        assert "posture" in service.errors[0]
        path.unlink()
        await until(lambda: not service.evaluator.by_name)

    with_daemon(tmp_path, scenario)


def test_an_automation_that_emits_what_it_expects_stops_at_the_recursion_guard(tmp_path: Path) -> None:
    (tmp_path / "automations").mkdir()
    (tmp_path / "automations" / "echo.toml").write_text(EMITTER)

    async def scenario(daemon: Daemon, store: SqliteStore, service: AutomationService) -> None:
        store.append([Event(source="t", source_id="p0", type="ping")])
        daemon.notify_appended()
        assert service.state is not None
        state = service.state  # a local: mypy keeps no attribute narrowing inside a lambda
        await until(lambda: len([f for f in state.firings("echo") if f.status == "succeeded"]) == 4)
        await until(lambda: store.count_events() == 5)
        await asyncio.sleep(0.5)  # a loop would keep going: give it the chance to show itself
        assert store.count_events() == 5
        depths = [store.get_event(i).data.get("trackwire", {}).get("depth", 0) for i in range(1, 6)]  # type: ignore[union-attr]
        assert depths == [0, 1, 2, 3, 4]

    with_daemon(tmp_path, scenario)


def test_explain_tells_from_the_recorded_firings_and_state_why_each_event_fired_or_not(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    from typer.testing import CliRunner

    from trackwire.automations.commands import app

    httpserver.expect_request("/notes").respond_with_data("ok")
    (tmp_path / "automations").mkdir()
    (tmp_path / "automations" / "notes.toml").write_text(THRESHOLD.format(url=httpserver.url_for("/notes")))
    config = tmp_path / "trackwire.toml"
    config.write_text('[store]\nurl = "sqlite:///tw.db"\n[web]\nenabled = false\n[automations]\npath = "automations"\n')

    def explain(*args: str) -> str:
        result = CliRunner().invoke(
            app, ["explain", "notes-burst", *args, "--config", str(config)], env={"COLUMNS": "250"}
        )
        assert result.exit_code == 0, result.output
        return result.output

    async def scenario(daemon: Daemon, store: SqliteStore, service: AutomationService) -> None:
        store.append([note(i, shot=i % 2) for i in range(7)])
        store.append([Event(source="sg", source_id="v", type="Shotgun_Version_New", entity=Ref("Shot", 0))])
        daemon.notify_appended()
        assert service.state is not None
        state = service.state  # a local: mypy keeps no attribute narrowing inside a lambda
        await until(lambda: len([f for f in state.firings("notes-burst") if f.status == "succeeded"]) == 2)
        await until(lambda: 8 in service._applied)
        # while the daemon runs, event 7 is only in the journal (no checkpoint yet): explained from it
        live = await asyncio.to_thread(explain, "--event", "7")
        assert "waiting in t [0]: 1 of 3 within 600 s so far" in live
        assert "journal: notes-burst t [0]: event 7 counted, 1 of 3 within 600 s" in live

    with_daemon(tmp_path, scenario, checkpoint_interval=600)
    fired = explain("--event", "3")
    assert "trigger t: matches" in fired
    assert "with events 1 3 5; succeeded: webhook succeeded" in fired and "[0] (threshold reached)" in fired
    waiting = explain("--event", "7")  # after the stop, from the checkpoint
    assert "waiting in t [0]: 1 of 3 within 600 s so far" in waiting
    other = explain("--event", "8")
    assert "trigger t: does not match: type 'Shotgun_Version_New' is not in expect/after" in other
    assert "fired:" not in other and "waiting" not in other
    ranged = explain("--from", "1", "--to", "8")
    assert ranged.count("fired: firing") == 6 and ranged.count("waiting in t [0]") == 1
    assert "8 events, 2 firings of notes-burst caused by them" in ranged


def test_show_lists_the_buckets_that_only_the_journal_holds_yet(tmp_path: Path, httpserver: HTTPServer) -> None:
    from typer.testing import CliRunner

    from trackwire.automations.commands import app

    httpserver.expect_request("/notes").respond_with_data("ok")
    (tmp_path / "automations").mkdir()
    (tmp_path / "automations" / "notes.toml").write_text(THRESHOLD.format(url=httpserver.url_for("/notes")))
    config = tmp_path / "trackwire.toml"
    config.write_text('[store]\nurl = "sqlite:///tw.db"\n[web]\nenabled = false\n[automations]\npath = "automations"\n')

    def show() -> str:
        result = CliRunner().invoke(app, ["show", "notes-burst", "--config", str(config)], env={"COLUMNS": "250"})
        assert result.exit_code == 0, result.output
        return result.output

    async def scenario(daemon: Daemon, store: SqliteStore, service: AutomationService) -> None:
        store.append([note(i, shot=7) for i in range(2)] + [note(9, shot=8)])
        daemon.notify_appended()
        assert service.state is not None
        await until(lambda: 3 in service._applied)
        # no checkpoint since the start (checkpoint_interval = 600): the buckets are only in the journal
        assert service.state.state_of("notes-burst") == []
        live = await asyncio.to_thread(show)
        assert "open state entries: 2 (the last checkpoint and " in live
        assert "journaled evaluation steps replayed over it)" in live
        assert "t [7]: 2 pending" in live and "t [8]: 1 pending" in live

    with_daemon(tmp_path, scenario, checkpoint_interval=600)
    stopped = show()  # a clean stop checkpoints: the same buckets, nothing left to replay
    assert "open state entries: 2 (the last checkpoint)" in stopped, stopped
    assert "t [7]: 2 pending" in stopped and "t [8]: 1 pending" in stopped


COUNTER = """
[[automation]]
name = "notes-count"
[automation.trigger]
expect = ["Shotgun_Note_New"]
for_each = ["entity.id"]
threshold = 3
within = "10m"
"""


def test_an_event_arriving_while_a_large_checkpoint_is_built_is_committed_before_the_checkpoint_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "automations").mkdir()
    (tmp_path / "automations" / "count.toml").write_text(COUNTER)
    ops: list[tuple[str, object]] = []
    late: list[int] = []
    real_step = CheckpointBuilder.step

    async def scenario(daemon: Daemon, store: SqliteStore, service: AutomationService) -> None:
        assert service.state is not None
        store.append([note(i, shot=i) for i in range(4000)])  # 4,000 half-full buckets
        daemon.notify_appended()
        await until(lambda: 4000 in service._applied, 60)

        def step(build: CheckpointBuilder, evaluator: Evaluator, seconds: float, clock: Any = None) -> None:
            if late and ("evaluated", late[0]) not in ops:
                return  # the build waits here (no progress) until the event that arrived is evaluated
            ops.append(("slice", len(build.pending)))
            real_step(build, evaluator, 0.0)  # one slice: a few hundred keys
            if not late:  # an event arrives after the first slice
                (ident,) = store.append([note(5000, shot=1)]).ids
                assert ident is not None
                late.append(ident)
                daemon.notify_appended()

        evaluate, commit, start = service._evaluate, service.state.commit, service.state.start_checkpoint

        def evaluated(event: Event) -> None:
            evaluate(event)
            ops.append(("evaluated", event.id))

        def committed(batch: StateBatch) -> list[str]:
            new = commit(batch)
            ops.append(("commit", tuple(batch.applied)))
            return new

        def started(batch: StateBatch) -> tuple[list[str], CheckpointWrite]:
            taken = start(batch)
            ops.append(("checkpoint", tuple(batch.applied)))
            return taken

        monkeypatch.setattr(CheckpointBuilder, "step", step)
        monkeypatch.setattr(service, "_evaluate", evaluated)
        monkeypatch.setattr(service.state, "commit", committed)
        monkeypatch.setattr(service.state, "start_checkpoint", started)
        service._checkpoint_due = True  # as the sweeper does when the group is idle
        service._commit_later()
        # taken, then written and made current
        await until(lambda: any(op[0] == "checkpoint" for op in ops) and not service._writing, 60)

        names = [op[0] for op in ops]
        arrived = ops.index(("evaluated", late[0]))
        its_commit = next(i for i, op in enumerate(ops) if op[0] == "commit" and late[0] in op[1])  # type: ignore[operator]
        slices_after = [op for op in ops[arrived:] if op[0] == "slice"]
        assert names.index("slice") < arrived  # it arrived after the build had begun
        assert slices_after and all(isinstance(n, int) and n > 0 for _, n in slices_after)  # the build went on after
        assert its_commit < names.index("checkpoint")  # committed (its actions free to start) before the checkpoint
        # the checkpoint holds the state as of when it was taken: the late event counted, nothing to replay
        assert service.state.journal() == []
        assert service.state.state_of("notes-count")[1] == ("t", "1", {"times": [ANY, ANY], "wm": ANY, "v": ANY})
        durable, _ = durable_evaluator(
            service.state, service.evaluator.automations, lambda ids: [r.event for r in store.get_records(ids)]
        )
        assert durable.state == service.evaluator.state

    with_daemon(tmp_path, scenario, checkpoint_interval=600)
