"""Serve the web app inside the daemon's event loop (uvicorn, signal handling left to the daemon)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from typing import TYPE_CHECKING

import uvicorn

from trackwire.config import WebSettings
from trackwire.web.app import create_app

if TYPE_CHECKING:
    from trackwire.runtime.daemon import Daemon

__all__ = ["serve", "serve_store"]

log = logging.getLogger("trackwire.web")

GRACE = 1  # seconds open connections (live streams) get when the server stops


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon (or ``serve_store``) owns signals."""

    def install_signal_handlers(self) -> None:  # older uvicorn
        pass

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # newer uvicorn
        yield


async def serve(daemon: Daemon, settings: WebSettings, stop: asyncio.Event) -> None:
    app = create_app(daemon, settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        timeout_graceful_shutdown=GRACE,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(), name="uvicorn")
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        # also when the daemon cancels us: let uvicorn close its sockets rather than abandon it
        server.should_exit = True
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, 3.0)
        # uvicorn closes its listening sockets in its shutdown; when that was cut short (a stop within its
        # start-up, or the 3 s above ran out) they would be left to the garbage collector
        for listening in getattr(server, "servers", ()):
            listening.close()
        await asyncio.to_thread(app.state.backend.close)  # background actions: grace, then interrupted


def serve_store(store_url: str, settings: WebSettings, *, shotgrid_site: str | None = None) -> None:
    """``trackwire web``: serve the app against a store alone until SIGINT/SIGTERM."""
    from trackwire.store import open_store
    from trackwire.web.app import create_store_app

    store = open_store(store_url)
    app = create_store_app(store, settings, shotgrid_site=shotgrid_site)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        timeout_graceful_shutdown=GRACE,
    )
    server = _Server(config)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = app.state.backend.stop

        def on_signal() -> None:
            server.should_exit = True
            stop.set()  # end the live streams so the server can stop

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        await server.serve()

    try:
        asyncio.run(main())
    finally:
        app.state.backend.close()
        store.close()
