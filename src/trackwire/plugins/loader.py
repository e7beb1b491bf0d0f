"""Turning a plugin file into consumers: import it, find its callbacks, report errors precisely.

Runs inside a worker process: user code is never imported by the daemon itself.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from trackwire.core.event import Event
from trackwire.core.matching import Matcher
from trackwire.plugins.api import CONSUMERS_ATTRIBUTE, Context

__all__ = [
    "DEFAULT_PRIORITY",
    "LoadFailure",
    "LoadedConsumer",
    "LoadedPlugin",
    "import_plugin",
    "load_plugin",
    "run_order",
]

Invoke = Callable[[Event, Context], Any]


@dataclass
class LoadedConsumer:
    name: str
    matcher: Matcher
    invoke: Invoke
    stop_on_error: bool = True
    returns: bool = False  # the callback's return value (JSON text) goes back to the daemon
    timeout: float | None = None  # overrides the group's timeout for this callback
    priority: float | None = None  # ftrack's subscription priority: orders the callbacks of a whole group


@dataclass
class LoadedPlugin:
    name: str
    path: Path
    consumers: list[LoadedConsumer]


@dataclass(frozen=True)
class LoadFailure:
    """Why a plugin file could not be loaded, with the line to look at."""

    plugin: str
    path: str
    line: int | None
    message: str
    traceback: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"plugin {self.plugin} ({where}) failed to load: {self.message}"


def import_plugin(name: str, path: Path) -> ModuleType:
    """Import ``path`` as a fresh module (never cached between loads)."""
    module_name = f"trackwire_plugin_{name.replace('/', '_').replace('-', '_').replace('.', '_')}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def failure_from(exc: BaseException, name: str, path: Path) -> LoadFailure:
    """The most useful line: the syntax error's, else the deepest frame inside the plugin file."""
    line: int | None = None
    if isinstance(exc, SyntaxError):
        line = exc.lineno
        message = f"SyntaxError: {exc.msg}"
    else:
        message = f"{type(exc).__name__}: {exc}"
        for frame in traceback.extract_tb(exc.__traceback__):
            if Path(frame.filename) == path:
                line = frame.lineno
    return LoadFailure(name, str(path), line, message, "".join(traceback.format_exception(exc)))


def _load_native(name: str, path: Path, options: Mapping[str, Any]) -> LoadedPlugin:
    module = import_plugin(name, path)
    consumers: list[LoadedConsumer] = []
    for value in list(vars(module).values()):
        for consumer_name, flt in getattr(value, CONSUMERS_ATTRIBUTE, ()):
            if getattr(value, "__module__", None) != module.__name__:
                continue
            consumers.append(LoadedConsumer(f"{name}.{consumer_name}", flt, value))
    return LoadedPlugin(name, path, consumers)


DEFAULT_PRIORITY = 100.0  # ftrack's default; what a callback without a priority counts as in a group that has some


def run_order(consumers: Sequence[LoadedConsumer]) -> list[int]:
    """The positions of a group's consumers in the order they run.

    Without priorities: as loaded (files in order, then registration order). When any consumer has one
    (ftrack subscriptions), the whole group is sorted by priority, lower first, as ftrack's hub sorts
    the subscribers of a session across all its plugins; the sort is stable, so equal priorities keep
    the loaded order. Consumers without a priority count as :data:`DEFAULT_PRIORITY`.
    """
    priorities = [DEFAULT_PRIORITY if c.priority is None else c.priority for c in consumers]
    if all(c.priority is None for c in consumers):
        return list(range(len(consumers)))
    return sorted(range(len(consumers)), key=priorities.__getitem__)


# Loaders by plugin kind, as "module:function" so a kind's dependencies load only when used.
LOADERS: Mapping[str, str] = {
    "native": "trackwire.plugins.loader:_load_native",
    "shotgunevents": "trackwire.plugins.shotgunevents:load_plugin",
    "ftrack": "trackwire.plugins.ftrack:load_plugin",
    "workflow": "trackwire.workflows.steps:load_steps",
}


def load_plugin(kind: str, name: str, path: Path, options: Mapping[str, Any]) -> LoadedPlugin | LoadFailure:
    module_name, _, function = LOADERS[kind].partition(":")
    loader = getattr(importlib.import_module(module_name), function)
    try:
        plugin: LoadedPlugin = loader(name, path, options)
    except BaseException as exc:  # a plugin may raise anything, SystemExit included
        return failure_from(exc, name, path)
    return plugin
