"""The ShotGrid poller's gap backlog, as pure decisions (no I/O, explicit times)."""

from __future__ import annotations

from trackwire.core.sg_backlog import Backlog, id_ranges

NOW = 1_000_000.0


def entries(*ids: int, created: float = NOW) -> list[tuple[int, float]]:
    return [(i, created) for i in ids]


def test_consecutive_ids_advance_the_position_without_awaiting_anything() -> None:
    backlog = Backlog(last_id=10)
    seen = backlog.observe(entries(11, 12, 13), NOW)
    assert seen.accepted == (11, 12, 13)
    assert backlog.last_id == 13
    assert backlog.missing == {}


def test_a_gap_is_awaited_while_newer_ids_are_accepted_at_once() -> None:
    backlog = Backlog(last_id=10, timeout=300)
    seen = backlog.observe(entries(11, 14, 15), NOW)
    assert seen.accepted == (11, 14, 15)
    assert backlog.last_id == 15
    assert backlog.missing == {12: NOW + 300, 13: NOW + 300}
    assert seen.waiting == 2


def test_a_gap_id_found_late_is_accepted_once_and_no_longer_awaited() -> None:
    backlog = Backlog(last_id=10)
    backlog.observe(entries(12), NOW)
    assert backlog.found([11, 12]) == [11]
    assert backlog.found([11]) == []
    assert backlog.missing == {}


def test_a_gap_id_that_never_comes_expires_once_after_the_timeout() -> None:
    backlog = Backlog(last_id=10, timeout=60)
    backlog.observe(entries(12), NOW)
    assert backlog.expire(NOW + 59) == []
    assert backlog.expire(NOW + 60) == [11]
    assert backlog.expire(NOW + 600) == []


def test_a_gap_before_an_entry_older_than_the_timeout_is_history_and_not_awaited() -> None:
    backlog = Backlog(last_id=10, timeout=300)
    seen = backlog.observe(entries(20, created=NOW - 301), NOW)
    assert seen.lost == tuple(range(11, 20))
    assert backlog.missing == {}
    assert backlog.last_id == 20


def test_a_gap_larger_than_the_backlog_limit_awaits_only_what_fits_and_reports_the_rest() -> None:
    backlog = Backlog(last_id=0, max_missing=3)
    seen = backlog.observe(entries(10), NOW)
    assert sorted(backlog.missing) == [1, 2, 3]
    assert seen.lost == (4, 5, 6, 7, 8, 9)


def test_wanted_asks_for_the_oldest_awaited_ids_first() -> None:
    backlog = Backlog(last_id=0)
    backlog.observe(entries(6), NOW)
    assert backlog.wanted(2) == [1, 2]


def test_the_cursor_round_trips_position_and_awaited_ids() -> None:
    backlog = Backlog(last_id=10, timeout=5)
    backlog.observe(entries(13), NOW)
    again = Backlog.from_cursor(backlog.to_cursor(), timeout=5, max_missing=100)
    assert again.last_id == 13
    assert again.missing == backlog.missing
    assert again.next_expiry() == NOW + 5


def test_lost_ids_are_written_as_ranges() -> None:
    assert id_ranges([7, 1, 2, 3, 9, 10]) == "1-3, 7, 9-10"
    assert id_ranges([]) == ""
