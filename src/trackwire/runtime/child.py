"""The worker process: loads one ordering group's plugins and runs their callbacks.

Started by :mod:`trackwire.runtime.worker` as ``python -m trackwire.runtime.child FD``. Everything
that can go wrong in user code happens here: an exception becomes a result, a callback running past
its timeout is reported with its stack and the process exits, and a crash (``os._exit``, a segfault)
ends only this process. Before each callback the process writes the event id into a slot file so
the daemon can tell which event was running when it died.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import mmap
import os
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from trackwire.core.event import Event, decode_event
from trackwire.errors import Fail, Retry, Skip
from trackwire.plugins.api import Context
from trackwire.plugins.loader import LoadedConsumer, LoadFailure, load_plugin, run_order
from trackwire.runtime.protocol import (
    ConsumerInfo,
    Result,
    RunItem,
    WorkerInit,
    failure_result,
    recv_frame,
    send_frame,
)
from trackwire.runtime.runners import ElasticRunners

_SLOT = struct.Struct("!qd")  # event id, start time (monotonic)


class _Context(threading.local):
    plugin: str = ""
    consumer: str = ""
    event_id: int | None = None


class _ForwardHandler(logging.Handler):
    """Ships log records to the daemon, which writes them with its own handlers."""

    def __init__(self, send: Callable[[Any], None], context: _Context) -> None:
        super().__init__()
        self._send = send
        self._context = context

    def emit(self, record: logging.LogRecord) -> None:
        try:
            exc = None
            if record.exc_info:
                exc = "".join(traceback.format_exception(*record.exc_info))
            self._send(
                (
                    "log",
                    [
                        {
                            "name": record.name,
                            "levelno": record.levelno,
                            "levelname": record.levelname,
                            "msg": record.getMessage(),
                            "created": record.created,
                            "exc_text": exc,
                            "plugin": getattr(record, "plugin", None) or self._context.plugin or None,
                            "event_id": self._context.event_id,
                        }
                    ],
                )
            )
        except Exception:
            self.handleError(record)


class Worker:
    def __init__(self, sock: socket.socket, init: WorkerInit) -> None:
        self.sock = sock
        self.init = init
        self.group = init.group
        self._send_lock = threading.Lock()
        self._context = _Context()
        self.consumers: list[LoadedConsumer] = []
        self.plugin_of: list[str] = []
        self.options_of: list[dict[str, Any]] = []
        self._slots_file = open(init.slots_path, "r+b")  # noqa: SIM115 - lives as long as the process
        self._slots = mmap.mmap(self._slots_file.fileno(), 0)
        self._slot_of_thread: dict[int, int] = {}
        self._slot_lock = threading.Lock()
        self._emit: Callable[[list[Event]], None] | None = None
        self._emit_ready = False
        self._loggers: dict[str, logging.Logger] = {}
        # per consumer position: (invoke, plugin, consumer name, stop on error, plugin options, returns a value,
        # timeout)
        self._table: list[tuple[Callable[[Event, Context], Any], str, str, bool, dict[str, Any], bool, float]] = []
        self.timeout = float(self.group.timeout)
        self._limit_of_slot: dict[int, float] = {}  # per-callback timeouts (workflow steps)
        self._values: dict[int, str] = {}  # return values of callbacks that report them
        self._results: list[Result] = []
        self._halted = False
        self._results_lock = threading.Lock()

    def send(self, message: Any) -> None:
        with self._send_lock:
            send_frame(self.sock, message)

    def report(self, result: Result) -> None:
        """A finished item: sent with the next flush (end of a batch or chain, or within 0.1 s)."""
        with self._results_lock:
            self._results.append(result)

    def flush(self) -> None:
        """Send the results gathered so far. The watchdog flushes too, so finished work is reported even
        while a long callback runs, and is not run again if the process is then stopped or killed."""
        with self._results_lock:
            if not self._results:
                return
            results, self._results = self._results, []
            self.send_results(results)

    # -- start-up ------------------------------------------------------------------------------

    def setup_logging(self) -> None:
        root = logging.getLogger()
        root.handlers[:] = [_ForwardHandler(self.send, self._context)]
        root.setLevel(self.init.log_level)

    def load(self) -> None:
        failures: list[LoadFailure] = []
        for spec in self.group.plugins:
            loaded = load_plugin(spec.kind, spec.name, spec.path, spec.options)
            if isinstance(loaded, LoadFailure):
                failures.append(loaded)
                continue
            for consumer in loaded.consumers:
                self.consumers.append(consumer)
                self.plugin_of.append(spec.name)
                self.options_of.append(spec.options)
        order = run_order(self.consumers)  # ftrack priorities order the whole group, across files
        self.consumers = [self.consumers[i] for i in order]
        self.plugin_of = [self.plugin_of[i] for i in order]
        self.options_of = [self.options_of[i] for i in order]
        infos = [ConsumerInfo(c.name, p, c.matcher) for c, p in zip(self.consumers, self.plugin_of, strict=True)]
        self._table = [
            (c.invoke, p, c.name, c.stop_on_error, o, c.returns, c.timeout or self.timeout)
            for c, p, o in zip(self.consumers, self.plugin_of, self.options_of, strict=True)
        ]
        self.send(("loaded", infos, failures))

    def _emitter(self) -> Callable[[list[Event]], None] | None:
        """Appends follow-up events to the log; the store is opened on the first emit only."""
        if self._emit_ready:
            return self._emit
        self._emit_ready = True
        url = self.init.store_url
        if url:
            from trackwire.ports import Store
            from trackwire.store import open_store

            opened: list[Store] = []

            def emit(events: list[Event]) -> None:
                if not opened:
                    opened.append(open_store(url))
                opened[0].append(events)

            self._emit = emit
        return self._emit

    # -- running -------------------------------------------------------------------------------

    def _slot(self) -> int:
        ident = threading.get_ident()
        slot = self._slot_of_thread.get(ident)
        if slot is None:
            with self._slot_lock:
                slot = len(self._slot_of_thread)
                self._slot_of_thread[ident] = slot
        return slot

    def _logger(self, plugin: str) -> logging.Logger:
        logger = self._loggers.get(plugin)
        if logger is None:
            logger = self._loggers[plugin] = logging.getLogger(f"trackwire.plugin.{plugin}")
        return logger

    def run_item(self, item: RunItem) -> Result:
        event_id, body, positions, attempt, _key = item
        started = time.monotonic()
        slot = self._slot()
        _SLOT.pack_into(self._slots, slot * _SLOT.size, event_id, started)
        context = self._context
        context.event_id = event_id
        ctx: Context | None = None
        try:
            event = decode_event(body, event_id)
            emitter = self._emitter()
            table = self._table
            for position in positions:
                invoke, plugin, name, stop_on_error, options, returns, limit = table[position]
                if ctx is None or ctx.plugin != plugin:
                    context.plugin = plugin
                    ctx = Context(plugin, name, self._logger(plugin), attempt, options, event, emitter)
                else:
                    ctx.consumer = name
                self._limit_of_slot[slot] = limit
                try:
                    value = invoke(event, ctx)
                    if returns:
                        self._values[event_id] = value
                except Skip:
                    continue
                except BaseException as exc:
                    if isinstance(exc, KeyboardInterrupt):
                        raise
                    if not stop_on_error and not isinstance(exc, Retry | Fail):
                        ctx.log.exception("callback %s failed (stopOnError is off: carrying on)", name)
                        continue
                    return failure_result(event_id, position, exc, started)
            return (event_id, "ok", -1, None, None, None, time.monotonic() - started)
        finally:
            context.event_id = None
            _SLOT.pack_into(self._slots, slot * _SLOT.size, 0, 0.0)

    def run_chain(self, chain: list[RunItem]) -> str | None:
        """Run one key's items in order, reporting each; after a failure the rest are not run.

        Returns the failure's status, if one failed."""
        for index, item in enumerate(chain):
            result = self.run_item(item)
            self.report(result)
            if result[1] != "ok":
                for later in chain[index + 1 :]:
                    self.report((later[0], "notrun", -1, None, None, None, 0.0))
                return result[1]
        return None

    def run_in_order(self, items: list[RunItem]) -> None:
        """Concurrency 1: the batch in log order, across keys, as shotgunEvents ran its events.

        The daemon sends a batch in id order. A key's items after its failure are not run (as in a chain);
        under the deactivate policy a failure halts the rest, as ``run_guarded`` does.
        """
        stopped: set[str] = set()
        for item in items:
            if self._halted or item[4] in stopped:
                self.report((item[0], "notrun", -1, None, None, None, 0.0))
                continue
            result = self.run_item(item)
            self.report(result)
            if result[1] != "ok":
                stopped.add(item[4])
                if result[1] in ("error", "fail") and self.group.policy == "deactivate":
                    self._halted = True

    def run_guarded(self, chain: list[RunItem]) -> None:
        """Under the deactivate policy a failure halts the process until the daemon says "resume": the
        group stops at the failed event (the shotgunEvents behaviour), and the items the daemon sent
        before it learned of the failure are handed back unrun."""
        if self._halted:
            for item in chain:
                self.report((item[0], "notrun", -1, None, None, None, 0.0))
            return
        if self.run_chain(chain) in ("error", "fail") and self.group.policy == "deactivate":
            self._halted = True

    def send_results(self, results: list[Result]) -> None:
        """Return values first (only callbacks that report them have any), then the results."""
        values = [(r[0], self._values.pop(r[0])) for r in results if r[0] in self._values]
        if values:
            self.send(("values", values))
        self.send(("results", results))

    def watchdog(self) -> None:
        """Heartbeats for the daemon; reports and exits when a callback runs past its timeout."""
        last_beat = 0.0
        while True:
            time.sleep(0.1)
            now = time.monotonic()
            for slot in range(len(self._slots) // _SLOT.size):
                event_id, started = _SLOT.unpack_from(self._slots, slot * _SLOT.size)
                if event_id and now - started > self._limit_of_slot.get(slot, self.timeout):
                    stack = self._stack_of_slot(slot)
                    try:
                        self.flush()
                        self.send(("hung", event_id, now - started, stack))
                    finally:
                        os._exit(70)
            try:
                self.flush()
                if now - last_beat >= 1.0:
                    last_beat = now
                    self.send(("hb", _rss_bytes()))
            except OSError:
                os._exit(0)  # the daemon is gone

    def _stack_of_slot(self, slot: int) -> str:
        for ident, index in self._slot_of_thread.items():
            if index == slot:
                frame = sys._current_frames().get(ident)
                if frame is not None:
                    return "".join(traceback.format_stack(frame))
        return "(stack not available)"

    def serve(self) -> None:
        threading.Thread(target=self.watchdog, name="watchdog", daemon=True).start()
        try:
            self._serve()
        except KeyboardInterrupt:
            # the daemon's stop grace ran out (SIGINT): report what finished; the rest runs again later
            self.flush()

    def _serve(self) -> None:
        concurrency = int(self.group.concurrency)
        pool = ElasticRunners(self.run_guarded, self.flush, concurrency) if concurrency > 1 else None
        while True:
            try:
                message = recv_frame(self.sock)
            except (EOFError, OSError):
                # The daemon is gone (a graceful stop says "stop" first): nobody can take results any
                # more, and a restarted daemon runs these events again, so stop at once.
                os._exit(0)
            if message[0] == "stop":
                if pool is not None:
                    pool.stop()
                return
            if message[0] == "resume":
                self._halted = False
                continue
            if message[0] != "run":
                continue
            if pool is None:
                try:
                    self.run_in_order(list(message[1]))  # not chain by chain: that would reorder keys
                finally:
                    self.flush()
                continue
            chains: dict[str, list[RunItem]] = {}
            for item in message[1]:
                chains.setdefault(item[4], []).append(item)
            pool.submit(chains.values())


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when the daemon dies, even by SIGKILL."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent or parent == 1:
        os._exit(0)


def main(argv: list[str]) -> int:
    _die_with_parent()
    sock = socket.socket(fileno=int(argv[1]))
    sock.setblocking(True)
    faulthandler.enable(file=sys.stderr, all_threads=True)
    message = recv_frame(sock)
    init: WorkerInit = message[1]
    os.environ.setdefault("TRACKWIRE_GROUP", init.group.name)
    worker = Worker(sock, init)
    worker.setup_logging()
    worker.load()
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
