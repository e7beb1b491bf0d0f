"""The daemon's side of a worker process: spawn, feed, watch, kill and explain.

One long-lived process per ordering group (``python -m trackwire.runtime.child``), started with
``spawn`` semantics (a fresh interpreter, never a fork of the threaded daemon). The process reports
hung callbacks itself; if it stops answering heartbeats the daemon kills it. When it dies, the slot
file tells which events were running, so only those are charged an attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import os
import signal
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trackwire.plugins.discovery import GroupSpec
from trackwire.plugins.loader import LoadFailure
from trackwire.runtime.protocol import ConsumerInfo, Result, RunItem, WorkerInit, encode, read_frame

__all__ = ["Death", "WorkerProcess"]

log = logging.getLogger("trackwire.worker")
_SLOT = struct.Struct("!qd")
HEARTBEAT_GRACE = 15.0


@dataclass(frozen=True)
class Death:
    """Why a worker process ended, and which events were running in it."""

    reason: str
    culprits: tuple[int, ...]
    traceback: str | None = None
    expected: bool = False


@dataclass
class WorkerProcess:
    group: GroupSpec
    store_url: str | None
    log_level: str
    on_results: Callable[[list[Result]], None]
    on_death: Callable[[Death], None]
    slots: int = 0
    on_values: Callable[[list[tuple[int, Any]]], None] | None = None  # callbacks that return values

    proc: asyncio.subprocess.Process | None = field(default=None, init=False)
    rss: int = field(default=0, init=False)
    consumers: list[ConsumerInfo] = field(default_factory=list, init=False)
    failures: list[LoadFailure] = field(default_factory=list, init=False)
    _writer: asyncio.StreamWriter | None = field(default=None, init=False)
    _reader_task: asyncio.Task[None] | None = field(default=None, init=False)
    _slots_path: str = field(default="", init=False)
    _last_beat: float = field(default=0.0, init=False)
    _stopping: bool = field(default=False, init=False)
    _hung: tuple[int, float, str] | None = field(default=None, init=False)
    _loaded: asyncio.Future[None] | None = field(default=None, init=False)

    async def start(self, load_timeout: float = 120.0) -> None:
        """Spawn the process and wait until it has loaded its plugins."""
        slots = max(self.slots, self.group.concurrency) + 1
        fd, self._slots_path = tempfile.mkstemp(prefix="trackwire-slots-")
        os.write(fd, b"\0" * _SLOT.size * slots)
        os.close(fd)
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "trackwire.runtime.child",
                str(child.fileno()),
                pass_fds=(child.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,  # a terminal's Ctrl-C reaches the daemon only; it stops workers
            )
        finally:
            child.close()
        reader, self._writer = await asyncio.open_unix_connection(sock=parent)
        self._loaded = asyncio.get_running_loop().create_future()
        self._last_beat = time.monotonic()
        self._write(("init", WorkerInit(self.group, self.store_url, self.log_level, self._slots_path)))
        self._reader_task = asyncio.create_task(self._read(reader), name=f"worker-read:{self.group.name}")
        try:
            await asyncio.wait_for(asyncio.shield(self._loaded), load_timeout)
        except TimeoutError:
            await self.kill()
            raise

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None and not self._stopping

    def _write(self, message: object) -> None:
        if self._writer is None or self._writer.is_closing():
            return
        self._writer.write(encode(message))

    def submit(self, items: list[RunItem]) -> None:
        self._write(("run", items))

    def resume(self) -> None:
        """After a deactivation: run what is sent from now on (see ``Worker.run_guarded``)."""
        self._write(("resume",))

    async def drain(self) -> None:
        if self._writer is not None and not self._writer.is_closing():
            with contextlib.suppress(ConnectionError):
                await self._writer.drain()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                message = await read_frame(reader)
                kind = message[0]
                if kind == "results":
                    self.on_results(message[1])
                elif kind == "values":
                    if self.on_values is not None:
                        self.on_values(message[1])
                elif kind == "hb":
                    self._last_beat = time.monotonic()
                    self.rss = int(message[1])
                elif kind == "log":
                    for record in message[1]:
                        _replay_log(record)
                elif kind == "loaded":
                    self.consumers, self.failures = list(message[1]), list(message[2])
                    if self._loaded is not None and not self._loaded.done():
                        self._loaded.set_result(None)
                elif kind == "hung":
                    self._hung = (int(message[1]), float(message[2]), str(message[3]))
        except (asyncio.IncompleteReadError, ConnectionError, EOFError):
            pass
        await self._reap()

    async def _reap(self) -> None:
        assert self.proc is not None
        returncode = await self.proc.wait()
        culprits = self._read_slots()
        if self._writer is not None:
            self._writer.close()
        with contextlib.suppress(OSError):
            os.unlink(self._slots_path)
        if self._loaded is not None and not self._loaded.done():
            self._loaded.set_exception(RuntimeError(f"worker process exited ({_describe(returncode)}) while loading"))
        if self._hung is not None:
            event_id, elapsed, stack = self._hung
            death = Death(
                f"timed out: the callback ran {elapsed:.1f} s, longer than the {self.group.timeout:g} s timeout",
                (event_id,),
                f"Stack of the hung callback:\n{stack}",
            )
        else:
            death = Death(
                f"the worker process died ({_describe(returncode)}) while handling this event",
                culprits,
                expected=self._stopping,
            )
        self.on_death(death)

    def _read_slots(self) -> tuple[int, ...]:
        try:
            with (
                open(self._slots_path, "rb") as handle,
                mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as m,
            ):
                ids = [_SLOT.unpack_from(m, i * _SLOT.size)[0] for i in range(len(m) // _SLOT.size)]
        except (OSError, ValueError):
            return ()
        return tuple(i for i in ids if i)

    def check(self) -> None:
        """Kill a process that stopped sending heartbeats (a callback holding the GIL in C code)."""
        if self.alive and time.monotonic() - self._last_beat > self.group.timeout + HEARTBEAT_GRACE:
            log.error("worker of group %s stopped answering: killing it", self.group.name)
            self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    async def stop(self, grace: float) -> None:
        """Ask the process to finish what it runs; after ``grace`` seconds SIGINT, then SIGKILL."""
        if self.proc is None or self.proc.returncode is not None:
            self._stopping = True
            return
        self._stopping = True
        self._write(("stop",))
        for sig, wait in ((None, grace), (signal.SIGINT, 0.5), (signal.SIGKILL, 5.0)):
            if sig is not None:
                self._signal(sig)
            try:
                await asyncio.wait_for(asyncio.shield(self.proc.wait()), wait)
                break
            except TimeoutError:
                continue
        if self._reader_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader_task, 5.0)

    async def kill(self) -> None:
        self._stopping = True
        self._signal(signal.SIGKILL)
        if self.proc is not None:
            await self.proc.wait()


def _describe(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def _replay_log(record: dict[str, object]) -> None:
    name = str(record.get("name") or "trackwire.plugin")
    logger = logging.getLogger(name)
    levelno = int(record.get("levelno") or logging.INFO)  # type: ignore[call-overload]
    if not logger.isEnabledFor(levelno):
        return
    created = record.get("created")
    when = float(created) if isinstance(created, int | float) else time.time()
    made = logging.makeLogRecord(
        {
            "name": name,
            "levelno": levelno,
            "levelname": record.get("levelname"),
            "msg": record.get("msg"),
            "args": None,
            # The worker's clock, milliseconds included: a record made here would print the time it was
            # received in its milliseconds field, so a line could show a time before the one above it.
            "created": when,
            "msecs": int((when - int(when)) * 1000) + 0.0,
            "exc_text": record.get("exc_text"),
            "plugin": record.get("plugin"),
            "event_id": record.get("event_id"),
        }
    )
    logger.handle(made)
