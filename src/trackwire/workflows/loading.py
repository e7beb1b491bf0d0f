"""Finding the flows ``[workflows] paths`` names, and the daemon service that runs them (reloading
them when their files change, like plugins and automations)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from trackwire.config import Settings
from trackwire.core.workflows.spec import FlowSpec
from trackwire.errors import ConfigError, TrackwireError
from trackwire.workflows.definition import flow_from_json
from trackwire.workflows.files import FLOW_SUFFIXES, load_flow_file

if TYPE_CHECKING:
    from trackwire.runtime.daemon import Daemon, Service
    from trackwire.workflows.service import WorkflowService

__all__ = ["flow_files", "load_flows", "watch_flows", "workflow_service"]

log = logging.getLogger("trackwire.workflows")


def flow_files(settings: Settings) -> list[Path]:
    files: list[Path] = []
    for entry in settings.workflows.paths:
        path = settings.resolve(entry)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            suffixes = (*FLOW_SUFFIXES, ".py")
            found = (p for p in path.iterdir() if p.suffix in suffixes and not p.name.startswith(("_", ".")))
            files.extend(sorted(found))
        else:
            raise ConfigError(f"workflow path {path} does not exist", key="workflows.paths")
    return files


async def load_flows(settings: Settings) -> tuple[dict[str, FlowSpec], dict[str, int]]:
    """Every flow of the configured files, and the pools (configured, plus those the Python files declare)."""
    pools = dict(settings.workflows.pools)
    flows: dict[str, FlowSpec] = {}
    files = flow_files(settings)
    python = [p for p in files if p.suffix == ".py"]
    described: dict[str, dict[str, object]] = {}
    if python:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "trackwire.workflows.describe", *map(str, python),
            stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        out, _ = await proc.communicate()
        described = json.loads(out or b"{}")
    for path in files:
        found: list[FlowSpec] = []
        if path.suffix in FLOW_SUFFIXES:
            found.append(load_flow_file(path, pools))
        else:
            entry = described.get(str(path), {"error": "the describing process failed"})
            if "error" in entry:
                raise ConfigError(f"cannot load the flows: {entry['error']}", path=str(path))
            for raw in entry["flows"]:  # type: ignore[attr-defined]
                for name, capacity in dict(raw.get("pools", {})).items():
                    pools.setdefault(name, int(capacity))
                found.append(flow_from_json(raw))
        for flow in found:
            if flow.name in flows:
                raise ConfigError(f"two flows are called {flow.name!r}", path=str(path))
            flows[flow.name] = flow
    return flows, pools


def workflow_service(settings: Settings) -> Service:
    async def service(daemon: Daemon) -> None:
        from trackwire.workflows.service import WorkflowService

        flows, pools = await load_flows(settings)
        log.info("workflows: %d flows loaded (%s)", len(flows), ", ".join(sorted(flows)) or "none")
        running = WorkflowService(
            flows,
            pools=pools,
            max_concurrent=settings.workflows.max_concurrent,
            workers=settings.workflows.workers,
            timeout=settings.workflows.timeout,
        )
        daemon.workflows = running
        watcher = asyncio.create_task(watch_flows(settings, running, daemon.stop_event), name="workflows:reload")
        try:
            await running(daemon)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    return service


def _watch_roots(settings: Settings) -> list[Path]:
    roots: set[Path] = set()
    for entry in settings.workflows.paths:
        path = settings.resolve(entry)
        roots.add(path if path.is_dir() else path.parent)
    return sorted(r for r in roots if r.exists())


async def watch_flows(settings: Settings, service: WorkflowService, stop: asyncio.Event) -> None:
    """Reload the flows when their files change (added, changed, removed); a file that does not load
    is reported and the previous definitions keep running."""
    import watchfiles

    roots = _watch_roots(settings)
    if not roots:
        return
    await service.ready.wait()
    watched = (*FLOW_SUFFIXES, ".py")

    def relevant(_change: watchfiles.Change, path: str) -> bool:
        return path.endswith(watched) and not Path(path).name.startswith((".", "_"))

    async for changes in watchfiles.awatch(*roots, stop_event=stop, watch_filter=relevant, debounce=200, step=50):
        names = ", ".join(sorted({Path(p).name for _, p in changes}))
        try:
            flows, pools = await load_flows(settings)
            await service.reload(flows, pools)
        except TrackwireError as exc:
            log.error("workflows: %s changed but cannot be loaded; keeping the previous flows: %s", names, exc)
        except Exception:
            log.exception("workflows: reloading after %s changed failed; keeping the previous flows", names)
