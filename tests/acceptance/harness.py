"""Running ``trackwire`` as a subprocess: a config in a temporary folder, start, kill, stop, look at the store."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import wait_for
from trackwire.core.event import Event, Ref
from trackwire.store import open_store
from trackwire.store.sqlite import SqliteStore

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
_SCRIPT = Path(sys.executable).with_name("trackwire")
TRACKWIRE = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-c", "from trackwire.cli import main; main()"]

RUNNING = "trackwire is running"  # logged once per start, when every group's worker is ready

# Small engine settings keep the tests fast: quick retries, short timeouts, frequent checkpoints.
FAST_ENGINE: dict[str, Any] = {
    "max_attempts": 3,
    "backoff_base": 0.05,
    "backoff_cap": 0.2,
    "timeout": 2.0,
    "checkpoint_interval": 0.05,
    "persist_after": 0.2,
    "shutdown_grace": 1.0,
}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path):
        return json.dumps(str(value))
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, Sequence):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def write_config(
    folder: Path,
    plugins: Sequence[Mapping[str, Any]],
    engine: Mapping[str, Any] | None = None,
    *,
    level: str = "INFO",
) -> Path:
    """A trackwire.toml in ``folder``: SQLite store there, web off, logs to ``trackwire.log`` there."""
    lines = ["[store]", 'url = "sqlite:///trackwire.db"', "", "[engine]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in {**FAST_ENGINE, **(engine or {})}.items()]
    lines += ["", "[log]", f'level = "{level}"', 'file = "trackwire.log"', "", "[web]", "enabled = false", ""]
    for entry in plugins:
        lines.append("[[plugins]]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in entry.items()]
        lines.append("")
    path = folder / "trackwire.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def run_cli(
    config: Path | None, *args: str, input: str | None = None, cwd: Path | None = None, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run one ``trackwire`` command to completion (with ``--config`` when one is given)."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [*TRACKWIRE, *args, *(["--config", str(config)] if config is not None else [])],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd or (config.parent if config is not None else None),
    )


@dataclass
class DaemonProcess:
    """``trackwire run`` in the background; each start is a new *life* (``$TRACKWIRE_TEST_LIFE``)."""

    config: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    life: int = 0
    _running_before: int = 0

    @property
    def folder(self) -> Path:
        return self.config.parent

    @property
    def db(self) -> Path:
        return self.folder / "trackwire.db"

    @property
    def log_path(self) -> Path:
        return self.folder / "trackwire.log"

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "the daemon is already running"
        self.life += 1
        self._running_before = self.log().count(RUNNING)
        env = {**os.environ, **self.env, "TRACKWIRE_TEST_LIFE": str(self.life)}
        with open(self.folder / f"stdout-{self.life}.txt", "wb") as out:
            self.proc = subprocess.Popen(
                [*TRACKWIRE, "run", "--config", str(self.config), "--no-web"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.folder,
            )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def wait_running(self, timeout: float = 60.0) -> None:
        """Until this life has logged that it is running."""
        wait_for(
            lambda: self.log().count(RUNNING) > self._running_before or self._died(),
            timeout,
            interval=0.05,
            what=f"life {self.life} of the daemon to start",
        )
        assert not self._died(), f"the daemon exited at start:\n{self.output()}"

    def _died(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def output(self) -> str:
        path = self.folder / f"stdout-{self.life}.txt"
        return path.read_text(encoding="utf-8", errors="replace")[-5000:] if path.exists() else ""

    def kill(self) -> float:
        """SIGKILL the daemon (never its workers: they must notice on their own); returns when it is gone."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        return time.time()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> tuple[int, float]:
        """Send ``sig`` and wait; returns the exit code and how long the daemon took to exit."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - started

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def lag(self, group: str) -> int:
        """Events the group still has to handle, from the store: past its position, or unfinished rows."""
        with self.store() as store:
            position, unfinished = self.durable_state(group)
            return store.last_id() - position + len(unfinished)

    @contextmanager
    def store(self) -> Iterator[SqliteStore]:
        store = open_store(f"sqlite:///{self.db}")
        assert isinstance(store, SqliteStore)  # what a sqlite:/// URL opens
        try:
            yield store
        finally:
            store.close()

    def durable_state(self, group: str) -> tuple[int, set[int]]:
        """The group's durable position and the events it has unfinished rows for."""
        with self.store() as store:
            record = next((g for g in store.groups() if g.name == group), None)
            rows = {r.event_id for r in store.load_rows(group, ("pending", "running", "retry"))}
        return (-1 if record is None else record.position), rows


@contextmanager
def daemon(config: Path, **env: str) -> Iterator[DaemonProcess]:
    process = DaemonProcess(config, dict(env))
    try:
        yield process
    finally:
        process.close()


def integrity(db: Path) -> str:
    with sqlite3.connect(db, timeout=30) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def event(number: int, entity: Ref, *, type: str = "Acceptance_Change", attribute: str | None = None) -> Event:
    return Event(
        source="test",
        source_id=str(number),
        type=type,
        entity=entity,
        attribute=attribute,
        old=None,
        new=number,
    )


def records(path: Path) -> list[tuple[int, str, int, str, str, float]]:
    """The lines a recording plugin wrote: (life, mark, event id, entity, consumer, time)."""
    out: list[tuple[int, str, int, str, str, float]] = []
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        life, mark, event_id, entity, consumer, stamp = line.split()
        out.append((int(life), mark, int(event_id), entity, consumer, float(stamp)))
    return out


def notes(path: Path) -> list[dict[str, Any]]:
    """The JSON lines the ``tests/fixtures/bad`` plugins wrote."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def append(db: Path, events: Sequence[Event]) -> list[int]:
    """Append events through the store API; returns their ids."""
    store = open_store(f"sqlite:///{db}")
    try:
        return list(store.append(events).new)
    finally:
        store.close()


def dead_letters(db: Path, group: str) -> dict[int, Any]:
    store = open_store(f"sqlite:///{db}")
    try:
        return {row.event_id: row for _, row in store.dead_letters(group, limit=1000)}
    finally:
        store.close()
