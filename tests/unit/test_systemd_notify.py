"""The systemd notify protocol: datagrams on $NOTIFY_SOCKET, nothing without it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from trackwire.runtime.systemd import notify, watchdog_interval


def test_notify_sends_the_states_as_one_datagram(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert notify("READY=1", "STATUS=running 3 groups")
        assert server.recv(1024) == b"READY=1\nSTATUS=running 3 groups"


def test_notify_does_nothing_outside_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False


def test_the_watchdog_is_pinged_at_half_its_timeout_only_for_our_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "60000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert watchdog_interval() is None
    monkeypatch.delenv("WATCHDOG_USEC")
    assert watchdog_interval() is None
