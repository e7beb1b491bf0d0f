"""Frames between the daemon and a worker process: a 4-byte length, then a pickle.

Daemon to worker: ``("init", WorkerInit)``, ``("run", [RunItem, ...])``, ``("resume",)`` (after a
deactivation), ``("stop",)``.
Worker to daemon: ``("loaded", [ConsumerInfo, ...], [LoadFailure, ...])``, ``("results", [Result, ...])``,
``("values", [(event id, value), ...])`` (sent just before the results it belongs to, only for callbacks
that return values: workflow steps),
``("log", [record dict, ...])``, ``("hb", rss_bytes)``, ``("hung", event_id, consumer, stack)``.
"""

from __future__ import annotations

import asyncio
import pickle
import socket
import struct
import time
import traceback
from dataclasses import dataclass
from typing import Any

from trackwire.core.matching import Matcher
from trackwire.errors import Fail, Retry

__all__ = [
    "ConsumerInfo",
    "Result",
    "RunItem",
    "WorkerInit",
    "failure_result",
    "read_frame",
    "recv_frame",
    "send_frame",
]

_HEADER = struct.Struct("!I")

# A run item: (event id, event body JSON, consumer positions to run, attempt number, ordering key)
RunItem = tuple[int, str, tuple[int, ...], int, str]
# A result: (event id, status, consumer position it stopped at, error, traceback, retry after, seconds)
# status: "ok" | "retry" | "error" | "fail" (dead-letter now) | "notrun" (a chain stopped before it)
Result = tuple[int, str, int, str | None, str | None, float | None, float]


@dataclass(frozen=True)
class ConsumerInfo:
    name: str
    plugin: str
    matcher: Matcher


@dataclass(frozen=True)
class WorkerInit:
    group: Any  # GroupSpec; typed loosely to keep this module import-light
    store_url: str | None
    log_level: str
    slots_path: str


def encode(message: Any) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


def send_frame(sock: socket.socket, message: Any) -> None:
    sock.sendall(encode(message))


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise EOFError("the daemon closed the connection")
        chunks.extend(chunk)
    return bytes(chunks)


def recv_frame(sock: socket.socket) -> Any:
    (size,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    return pickle.loads(_recv_exact(sock, size))


async def read_frame(reader: asyncio.StreamReader) -> Any:
    header = await reader.readexactly(_HEADER.size)
    (size,) = _HEADER.unpack(header)
    return pickle.loads(await reader.readexactly(size))


def failure_result(event_id: int, position: int, exc: BaseException, started: float) -> Result:
    """The result of a callback that raised ``exc`` (``Skip`` and carrying on are the caller's business).

    ``Retry`` asks for another attempt (after its delay), ``Fail`` dead-letters at once, anything else is a
    failure to retry with backoff; the traceback is kept for the dead letter.
    """
    elapsed = time.monotonic() - started
    if isinstance(exc, Retry):
        return (event_id, "retry", position, str(exc), None, exc.after, elapsed)
    text = "".join(traceback.format_exception(exc))
    if isinstance(exc, Fail):
        return (event_id, "fail", position, f"Fail: {exc}", text, None, elapsed)
    return (event_id, "error", position, f"{type(exc).__name__}: {exc}", text, None, elapsed)
