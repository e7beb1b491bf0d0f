"""Shared test helpers: servers that must be reachable, and waiting on conditions without sleeping blindly."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_service(name: str, host: str, port: int, timeout: float = 2.0) -> None:
    """Skip (locally) or fail (under CI=true) when a server the test needs is not reachable."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as exc:
        message = f"{name} is not reachable at {host}:{port} ({exc})"
        if IN_CI:
            pytest.fail(f"{message}; CI must run this test")
        pytest.skip(f"{message}; start it to run this test")


def skip_or_fail(reason: str) -> None:
    """A test that cannot run here: a skip locally, a failure under CI=true."""
    if IN_CI:
        pytest.fail(f"{reason}; CI must run this test")
    pytest.skip(reason)


def wait_for(condition: Callable[[], object], timeout: float = 30.0, interval: float = 0.02, what: str = "") -> object:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)
