"""Running the daemon in-process (its worker processes are real) against the fake ShotGrid server."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

from tests.fakes.shotgrid_server import FakeShotgrid
from trackwire.config import Settings
from trackwire.runtime.daemon import Daemon

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sg_plugins"


def sg_settings(tmp_path: Path, fake: FakeShotgrid, plugins: Path, **shotgrid: Any) -> Settings:
    plugin: dict[str, Any] = {"path": plugins, "kind": "shotgunevents"}
    plugin.update(shotgrid.pop("plugin", {}))
    return Settings(
        store={"url": f"sqlite:///{tmp_path}/tw.db"},
        web={"enabled": False},
        log={"file": None},
        engine={"shutdown_grace": 1.0},
        shotgrid={
            "site": fake.url,
            "script_name": "trackwire",
            "script_key": "secret",
            "fetch_interval": 0.1,
            "start": 1,
            **shotgrid,
        },
        plugins=(plugin,),
        base_dir=tmp_path,
    )


class RunningDaemon:
    """``Daemon.run`` on its own event loop in a thread; ``stop()`` asks it to stop and waits."""

    def __init__(self, settings: Settings) -> None:
        self.daemon = Daemon(settings)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.loop.run_until_complete(self.daemon.run(install_signals=False, ready=lambda _: self.ready.set()))
        except BaseException as exc:
            self.error = exc
        finally:
            self.loop.close()

    def __enter__(self) -> RunningDaemon:
        self.thread.start()
        if not self.ready.wait(60):
            raise TimeoutError("the daemon did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.daemon.request_stop)
            self.thread.join(30)
        if self.error is not None:
            raise self.error


def records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
