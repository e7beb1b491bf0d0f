"""systemd's notify protocol (``Type=notify``): READY, STOPPING, STATUS and the watchdog ping.

A datagram to the Unix socket named by ``$NOTIFY_SOCKET``; without it every call does nothing, so the
daemon behaves the same under supervisord, in a terminal or in tests.
"""

from __future__ import annotations

import os
import socket

__all__ = ["notify", "watchdog_interval"]


def notify(*states: str) -> bool:
    """Send ``states`` (e.g. ``"READY=1"``, ``"STATUS=12 groups"``); ``False`` when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall("\n".join(states).encode())
    except OSError:
        return False
    return True


def watchdog_interval() -> float | None:
    """Half the ``WatchdogSec`` systemd asks for (how often to ping), or ``None`` without a watchdog."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2_000_000
    except ValueError:
        return None
