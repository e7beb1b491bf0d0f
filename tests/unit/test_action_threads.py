"""Plain plugin functions run on their own threads: results and errors come back, a hung function does not
hold up the next call, and the template variables are read only when a template names them."""

from __future__ import annotations

import asyncio
import threading

import pytest

from trackwire.actions import ActionError
from trackwire.actions.base import ActionContext, TemplateVariables
from trackwire.actions.templating import render
from trackwire.actions.threads import FunctionThreads
from trackwire.core.event import Event, Ref


def test_calls_return_their_results_and_raise_their_errors_on_the_caller() -> None:
    threads = FunctionThreads(limit=4)

    def boom() -> None:
        raise ValueError("no")

    async def main() -> list[int]:
        results = await asyncio.gather(*(threads.call(lambda i=i: i * i) for i in range(200)))  # type: ignore[misc]
        with pytest.raises(ValueError, match="no"):
            await threads.call(boom)
        return list(results)

    try:
        assert asyncio.run(main()) == [i * i for i in range(200)]
    finally:
        threads.shutdown()


def test_a_function_that_hangs_does_not_hold_up_the_next_call() -> None:
    threads = FunctionThreads(limit=4)
    started, release = threading.Event(), threading.Event()

    def hang() -> None:
        started.set()
        release.wait(30)

    async def main() -> str:
        hung = asyncio.ensure_future(threads.call(hang))
        assert await asyncio.to_thread(started.wait, 10)
        quick = await asyncio.wait_for(threads.call(lambda: "quick"), 10)
        assert not hung.done()
        release.set()
        await hung
        return quick

    try:
        assert asyncio.run(main()) == "quick"
    finally:
        release.set()
        threads.shutdown()


def test_a_fast_burst_needs_few_threads() -> None:
    threads = FunctionThreads(limit=64)
    names: set[str] = set()

    async def main() -> None:
        await asyncio.gather(*(threads.call(lambda: names.add(threading.current_thread().name)) for _ in range(500)))

    try:
        asyncio.run(main())
    finally:
        threads.shutdown()
    assert 1 <= len(names) < 64


def test_a_template_that_does_not_name_the_events_does_not_encode_them() -> None:
    event = Event(source="t", source_id="1", type="Note", entity=Ref("Shot", 7), data={"frames": 3}, id=9)
    ctx = ActionContext("notify", {"id": "f1", "reason": "3 notes", "key": "7"}, (event,), event, "f1:0")
    variables = ctx.variables
    assert isinstance(variables, TemplateVariables)
    assert render({"text": "{{ automation }}: {{ reason }}"}, variables) == {"text": "notify: 3 notes"}
    assert "events" not in variables._values and "event" not in variables._values
    assert render("{{ event.entity.id }}/{{ count }}", variables) == "7/1"
    assert variables["event"] is variables["events"][0]
    full = ctx.template_vars()
    assert full["event"]["data"] == {"frames": 3} and full["key"] == "7"
    assert full["events"] is not ctx.template_vars()["events"]  # each plugin call gets its own copy


def test_an_unknown_template_name_still_fails_loudly() -> None:
    event = Event(source="t", source_id="1", type="Note", id=9)
    ctx = ActionContext("notify", {"id": "f1"}, (event,), event, "f1:0")
    with pytest.raises(ActionError, match="undefined"):
        render("{{ nope }}", ctx.variables)
