"""Child processes of actions (shell commands, isolated plugin functions): each in its own process group,
so a timeout or a cancelled firing kills the command *and* whatever it started, and nothing is left behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence

__all__ = ["run_child"]


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the group's id is the child's pid (start_new_session)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


async def run_child(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    stdin: bytes | None = None,
) -> tuple[int, bytes]:
    """Run ``argv`` (never through a shell) in a new session; return its exit code and output (stdout and
    stderr together). On timeout or cancellation the whole process group is killed and reaped, then the
    exception propagates (``TimeoutError`` / ``CancelledError``). ``OSError`` if it cannot start."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except BaseException:
        _kill_group(proc)
        with contextlib.suppress(Exception):
            await asyncio.shield(proc.wait())
        raise
    assert proc.returncode is not None
    return proc.returncode, output
