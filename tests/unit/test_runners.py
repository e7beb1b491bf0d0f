"""ElasticRunners: quick chains stay on one thread, blocking ones spread to more, nothing is lost or reordered."""

from __future__ import annotations

import threading
import time

import pytest

from trackwire.runtime.runners import ElasticRunners


class Recorder:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.ran: list[tuple[str, int]] = []
        self.threads: set[int] = set()
        self.at_once = 0
        self.most_at_once = 0
        self.flushes = 0
        self.done = threading.Event()
        self.expected = 0

    def run(self, chain: list[tuple[str, int]]) -> None:
        with self.lock:
            self.at_once += 1
            self.most_at_once = max(self.most_at_once, self.at_once)
            self.threads.add(threading.get_ident())
        for item in chain:
            if self.delay:
                time.sleep(self.delay)
            with self.lock:
                self.ran.append(item)
        with self.lock:
            self.at_once -= 1
            if len(self.ran) >= self.expected:
                self.done.set()

    def flush(self) -> None:
        with self.lock:
            self.flushes += 1


def chains(keys: int, per_key: int) -> list[list[tuple[str, int]]]:
    return [[(f"k{k}", n) for n in range(per_key)] for k in range(keys)]


def test_quick_chains_run_on_a_single_thread_and_are_flushed_when_it_goes_idle() -> None:
    rec = Recorder()
    rec.expected = 500 * 3
    runners: ElasticRunners[list[tuple[str, int]]] = ElasticRunners(rec.run, rec.flush, 64, patience=0.5)
    runners.submit(chains(500, 3))
    assert rec.done.wait(10)
    runners.stop(10)
    assert len(rec.ran) == 1500
    assert len(rec.threads) == 1
    assert runners.peak == 1
    assert rec.flushes >= 1


def test_blocking_chains_wake_more_runners_up_to_the_limit() -> None:
    rec = Recorder(delay=0.02)
    rec.expected = 40
    runners: ElasticRunners[list[tuple[str, int]]] = ElasticRunners(rec.run, rec.flush, 8, patience=0.002)
    runners.submit(chains(40, 1))
    assert rec.done.wait(30)
    runners.stop(10)
    assert len(rec.ran) == 40
    assert runners.peak == 8
    assert rec.most_at_once == 8  # never more than the limit at once


def test_each_chain_runs_in_order_and_every_item_runs_exactly_once() -> None:
    rec = Recorder(delay=0.001)
    rec.expected = 30 * 5 * 2
    runners: ElasticRunners[list[tuple[str, int]]] = ElasticRunners(rec.run, rec.flush, 4, patience=0.001)
    runners.submit(chains(30, 5))
    runners.submit([[(f"k{k}", n) for n in range(5, 10)] for k in range(30)])
    assert rec.done.wait(30)
    runners.stop(10)
    assert sorted(rec.ran) == sorted((f"k{k}", n) for k in range(30) for n in range(10))
    for k in range(30):
        # each chain's items in their order (the daemon never has two chains of one key out at once; these
        # two could overlap here, which is why only each chain's own order is checked)
        seen = [n for key, n in rec.ran if key == f"k{k}"]
        assert [n for n in seen if n < 5] == [0, 1, 2, 3, 4]
        assert [n for n in seen if n >= 5] == [5, 6, 7, 8, 9]


def test_stop_runs_what_is_pending_first_and_ends_the_threads() -> None:
    rec = Recorder(delay=0.005)
    runners: ElasticRunners[list[tuple[str, int]]] = ElasticRunners(rec.run, rec.flush, 2, patience=0.001)
    runners.submit(chains(10, 1))
    runners.stop(30)
    assert len(rec.ran) == 10
    assert runners.running == 0
    with pytest.raises(RuntimeError, match="stopping"):
        runners.submit(chains(1, 1))


def test_a_chain_that_raises_does_not_lose_its_runner() -> None:
    ran: list[int] = []
    done = threading.Event()

    def run(chain: list[int]) -> None:
        if chain[0] == 0:
            raise ValueError("boom")
        ran.append(chain[0])
        if len(ran) == 3:
            done.set()

    runners: ElasticRunners[list[int]] = ElasticRunners(run, lambda: None, 4, patience=0.5)
    runners.submit([[0], [1], [2], [3]])
    assert done.wait(10)
    runners.stop(10)
    assert ran == [1, 2, 3]


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ElasticRunners(lambda chain: None, lambda: None, 0)


def test_after_a_blocking_spell_quick_chains_shrink_back_to_one_runner() -> None:
    lock = threading.Lock()
    quick_threads: list[int] = []
    running_then: list[int] = []
    done = threading.Event()
    holder: list[ElasticRunners[list[tuple[str, int]]]] = []

    def run(chain: list[tuple[str, int]]) -> None:
        kind = chain[0][0]
        if kind == "slow":
            time.sleep(0.1)
            return
        sum(range(300))  # a few microseconds of work
        running = holder[0].running
        with lock:
            quick_threads.append(threading.get_ident())
            running_then.append(running)
            if len(quick_threads) == 40_000:
                done.set()

    runners: ElasticRunners[list[tuple[str, int]]] = ElasticRunners(run, lambda: None, 8, patience=0.005)
    holder.append(runners)
    runners.submit([[("slow", n)] for n in range(8)] + [[("quick", n)] for n in range(40_000)])
    assert done.wait(30)
    runners.stop(10)
    assert runners.peak == 8  # the slow chains spread to every runner
    # once they were done, the runners that freed up did not all stay on the quick ones: one was enough
    # (at most 2: on a loaded machine a runner descheduled for 5 ms looks stuck and may wake one more)
    assert max(running_then[-5000:]) <= 2
