"""Log records from worker processes are re-emitted in the daemon with the worker's own time."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from trackwire.runtime.worker import _replay_log


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> Iterator[_Keep]:
    logger = logging.getLogger("trackwire.plugin.replay_test")
    handler = _Keep()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)


def test_the_printed_time_is_the_worker_time_milliseconds_included(kept: _Keep) -> None:
    created = 1_795_000_000.25  # a quarter past the second, long before this test runs
    _replay_log({"name": "trackwire.plugin.replay_test", "levelno": logging.INFO, "levelname": "INFO",
                 "msg": "moved Shot MF_0010", "created": created, "plugin": "p", "event_id": 7})  # fmt: skip
    (record,) = kept.records
    formatted = logging.Formatter("%(asctime)s %(message)s").format(record)
    assert record.created == created
    assert record.msecs == 250
    assert formatted.split(" ")[1].endswith(",250"), formatted
    assert (record.plugin, record.event_id) == ("p", 7)  # type: ignore[attr-defined]


def test_a_record_without_a_time_gets_the_time_it_arrived(kept: _Keep) -> None:
    before = time.time()
    _replay_log({"name": "trackwire.plugin.replay_test", "levelno": logging.WARNING, "msg": "no time"})
    (record,) = kept.records
    assert before <= record.created <= time.time()
    assert record.msecs == int((record.created - int(record.created)) * 1000)
