"""Which plugin files exist, in which order, and how they form ordering groups.

The documented order: plugin paths in configuration order, files in a folder sorted by name, then
callbacks in registration order. Native plugins get one ordering group per file unless the config
names a group; shotgunEvents plugins share one group (``shotgunevents``), which keeps their relative
order exactly as the old daemon ran them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from trackwire.config import PluginPathSettings, Settings
from trackwire.errors import ConfigError

__all__ = ["GroupSpec", "PluginSpec", "discover"]

LEGACY_GROUP = "shotgunevents"
FTRACK_GROUP = "ftrack"  # ftrack's hub runs every plugin's callbacks one after another: so does this group


@dataclass(frozen=True)
class PluginSpec:
    name: str
    path: Path
    kind: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupSpec:
    """An ordering group: its plugins in order, and the delivery policy they share."""

    name: str
    plugins: tuple[PluginSpec, ...]
    policy: Literal["retry", "deactivate"]
    timeout: float
    max_attempts: int
    concurrency: int
    start: str | int
    max_memory_mb: int | None

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(p.path for p in self.plugins)


def _files(entry: PluginPathSettings, settings: Settings) -> list[Path]:
    root = settings.resolve(entry.path)
    if root.is_file():
        return [root]
    if root.is_dir():
        return sorted(p for p in root.glob("*.py") if not p.name.startswith(("_", ".")))
    raise ConfigError(f"plugin path {root} does not exist", key="plugins.path")


def _legacy_host(settings: Settings, group: str, policy: str) -> dict[str, Any]:
    """What the shotgunEvents loader needs in the worker: the site, the store, the group's policy."""
    sg = settings.shotgrid
    emails = sg.emails.model_dump(mode="json")
    emails["password"] = sg.emails.password.get_secret_value() if sg.emails.password else None
    return {
        "group": group,
        "policy": policy,
        "store_url": settings.store_url,
        "shotgrid": {
            "site": sg.site,
            "proxy": sg.proxy,
            "use_session_uuid": sg.use_session_uuid,
            "log_dir": str(settings.resolve(sg.log_dir)) if sg.log_dir else None,
            "emails": emails,
        },
    }


def _ftrack_host(settings: Settings) -> dict[str, Any]:
    ft = settings.ftrack
    key = ft.api_key.get_secret_value() if ft.api_key else None
    offline = ft.plugin_session == "offline"
    return {"ftrack": {"server_url": ft.server_url, "api_user": ft.api_user, "api_key": key, "offline": offline}}


def _ftrack_env_paths() -> tuple[PluginPathSettings, ...]:
    """``FTRACK_EVENT_PLUGIN_PATH`` (os.pathsep list), as ftrack's own session reads it."""
    value = os.environ.get("FTRACK_EVENT_PLUGIN_PATH", "")
    return tuple(PluginPathSettings(path=Path(p), kind="ftrack") for p in value.split(os.pathsep) if p)


def discover(settings: Settings) -> list[GroupSpec]:
    """The ordering groups the configuration describes, in documented order."""
    order: list[str] = []
    members: dict[str, list[PluginSpec]] = {}
    policies: dict[str, PluginPathSettings] = {}
    seen: dict[str, Path] = {}
    for entry in (*settings.plugins, *_ftrack_env_paths()):
        for path in _files(entry, settings):
            name = path.stem
            if name in seen and seen[name] != path:
                name = f"{path.parent.name}/{path.stem}"
            if name in seen:
                raise ConfigError(f"two plugins are both called {name!r}: {seen[name]} and {path}")
            seen[name] = path
            group = entry.group or {"shotgunevents": LEGACY_GROUP, "ftrack": FTRACK_GROUP}.get(entry.kind, name)
            if group not in members:
                order.append(group)
                members[group] = []
                policies[group] = entry
            options = dict(entry.options)
            if entry.kind == "shotgunevents":
                options["_trackwire"] = _legacy_host(settings, group, entry.policy or "deactivate")
            if entry.kind == "ftrack":
                options["_trackwire"] = _ftrack_host(settings)
            members[group].append(PluginSpec(name, path, entry.kind, options))
    groups = []
    for name in order:
        entry = policies[name]
        # shotgunEvents plugins: "deactivate" (their default) is per plugin, inside the compatibility layer
        # (plugins/shotgunevents.py); what still reaches the engine (a hung or crashed worker) is retried.
        policy: Literal["retry", "deactivate"] = "retry" if entry.kind == "shotgunevents" else entry.policy or "retry"
        groups.append(
            GroupSpec(
                name=name,
                plugins=tuple(members[name]),
                policy=policy,
                timeout=entry.timeout or settings.engine.timeout,
                max_attempts=entry.max_attempts or settings.engine.max_attempts,
                concurrency=entry.concurrency,
                start=entry.start,
                max_memory_mb=entry.max_memory_mb,
            )
        )
    return groups
