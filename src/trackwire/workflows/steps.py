"""Workflow steps inside a worker process: the ``workflow`` plugin kind.

The daemon starts one worker process (the engine's own, see :mod:`trackwire.runtime.worker`) whose
"plugins" are flows; each step is a callback that returns its result. A step runs as
``func(*args, **kwargs)``, or as a shell command (its stdout, stripped, is the result; a non-zero exit
fails the step). :func:`current` tells a running step which run, sequence and attempt it serves.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trackwire.core.event import Event, dumps
from trackwire.core.matching import Filter
from trackwire.plugins.api import Context
from trackwire.plugins.loader import LoadedConsumer, LoadedPlugin, import_plugin

__all__ = ["STEP_EVENT", "StepContext", "current", "load_steps", "resolve"]

STEP_EVENT = "trackwire.workflow.step.run"


@dataclass(frozen=True)
class StepContext:
    run_id: str
    flow: str
    step: str
    sequence: str
    attempt: int


class _Current(threading.local):
    value: StepContext | None = None


_CURRENT = _Current()


def current() -> StepContext | None:
    """The step this thread runs (inside a worker process), or None."""
    return _CURRENT.value


def resolve(target: Mapping[str, Any], flow: str) -> Callable[..., Any]:
    """Import the step's function: by module name when importable, else from its file."""
    module_name = str(target.get("module") or "")
    qualname = str(target["qualname"])
    module: Any = None
    root = target.get("root")
    if root and root not in sys.path:
        sys.path.append(str(root))
    if module_name and module_name != "__main__":
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            module = None
    if module is None:
        file = target.get("file")
        if not file:
            raise ImportError(f"cannot import module {module_name!r} for step function {qualname}")
        module = import_plugin(f"flow_{flow}_{Path(file).stem}", Path(file))
    value: Any = module
    for part in qualname.split("."):
        value = getattr(value, part)
    if not callable(value):
        raise TypeError(f"{module_name}:{qualname} is not callable")
    return value  # type: ignore[no-any-return]


def _run_command(command: str | list[str], ctx: StepContext, timeout: float | None) -> str:
    env = dict(os.environ)
    env.update(
        TRACKWIRE_RUN_ID=ctx.run_id,
        TRACKWIRE_FLOW=ctx.flow,
        TRACKWIRE_STEP=ctx.step,
        TRACKWIRE_STEP_SEQUENCE=ctx.sequence,
        TRACKWIRE_STEP_ATTEMPT=str(ctx.attempt),
    )
    done = subprocess.run(
        command,
        shell=isinstance(command, str),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"command exited with {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip()


def _invoker(flow: str, step: Mapping[str, Any]) -> Callable[[Event, Context], str]:
    target = dict(step["target"])
    args = list(step.get("args", ()))
    kwargs = dict(step.get("kwargs", {}))
    timeout = step.get("timeout")
    command = target.get("command")
    func: Callable[..., Any] | None = None
    problem: Exception | None = None
    if command is None:
        try:
            func = resolve(target, flow)
        except Exception as exc:  # reported when the step runs, so the other steps still load
            problem = exc

    def invoke(event: Event, ctx: Context) -> str:
        data = event.data
        step_ctx = StepContext(str(data["run"]), flow, str(data["step"]), str(data["seq"]), int(data["attempt"]))
        _CURRENT.value = step_ctx
        try:
            if command is not None:
                value: Any = _run_command(command, step_ctx, None if timeout is None else float(timeout) * 0.95)
            elif func is None:
                raise ImportError(f"step {step['name']} could not be loaded: {problem}")
            else:
                value = func(*args, **kwargs)
        finally:
            _CURRENT.value = None
        try:
            return dumps(value)
        except TypeError as exc:
            raise TypeError(f"the step's result must be JSON: {exc}") from exc

    return invoke


def load_steps(name: str, path: Path, options: Mapping[str, Any]) -> LoadedPlugin:
    """One consumer per step of the flow ``options["flow"]`` (its JSON form), named ``<key>/<step>``."""
    flow = dict(options["flow"])
    key = str(options.get("key") or flow["name"])  # name@version: each definition a run uses is loaded
    consumers: list[LoadedConsumer] = []
    matcher = Filter(types=(STEP_EVENT,))
    for step in flow["steps"]:
        consumers.append(
            LoadedConsumer(
                f"{key}/{step['name']}",
                matcher,
                _invoker(str(flow["name"]), step),
                returns=True,
                timeout=None if step.get("timeout") is None else float(step["timeout"]),
            )
        )
    return LoadedPlugin(name, path, consumers)
