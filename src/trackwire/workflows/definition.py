"""Defining flows: eventor's vocabulary in Python, and the same model as TOML files.

Python::

    wf = Workflow("comp-prep")
    go = wf.add_event("run_step1")
    s1 = wf.add_step("s1", func=prog, kwargs={"progname": "prog1"}, triggers={StepStatus.SUCCESS: (done,)})
    wf.add_assoc(go, s1, delay=0)

TOML or YAML files (``event``, ``step``, ``assoc``, ``start`` tables; see :mod:`trackwire.workflows.files`).
Step functions must live at module level so a worker process can import them; arguments and
results are JSON.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trackwire.core.workflows.spec import (
    All,
    AnyOf,
    Assoc,
    Ev,
    Expr,
    FlowSpec,
    Replay,
    StepSpec,
    StepStatus,
    expr_from_json,
    expr_to_json,
)
from trackwire.errors import ConfigError

__all__ = [
    "FlowBuilder",
    "ResourcePool",
    "StepRef",
    "and_",
    "flow_from_json",
    "flow_to_json",
    "load_toml_flow",
    "or_",
    "placeholder",
    "target_of",
]


@dataclass(frozen=True, slots=True)
class StepRef:
    name: str


@dataclass(frozen=True, slots=True)
class ResourcePool:
    """A named pool with a capacity; steps ``acquires=[(pool, amount)]`` before they start."""

    name: str
    capacity: int


def or_(*parts: Ev | tuple[Any, ...] | All | AnyOf) -> AnyOf:
    return AnyOf(tuple(_expr(p) for p in parts))


def and_(*parts: Ev | tuple[Any, ...] | All | AnyOf) -> All:
    return All(tuple(_expr(p) for p in parts))


def _expr(value: Any) -> Expr:
    if isinstance(value, Ev | All | AnyOf):
        return value
    if isinstance(value, str):
        return Ev(value)
    if isinstance(value, tuple | list):
        return All(tuple(_expr(v) for v in value))
    raise TypeError(f"not an event expression: {value!r}")


def target_of(func: Any) -> dict[str, Any]:
    """Where a worker process finds ``func``: its module (and file) and qualified name."""
    qualname = getattr(func, "__qualname__", None)
    module_name = getattr(func, "__module__", None)
    if not qualname or not module_name:
        raise ConfigError(f"step function {func!r} has no module and name a worker process could import")
    if "<locals>" in qualname or "<lambda>" in qualname:
        raise ConfigError(
            f"step function {qualname} is defined inside a function: define it at module level so the "
            "worker process can import it"
        )
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    target: dict[str, Any] = {"module": module_name, "qualname": qualname}
    if file:
        path = Path(file).resolve()
        target["file"] = str(path)
        parts = module_name.split(".")
        root = path.parent if path.name == "__init__.py" else path.with_suffix("")
        if module_name != "__main__" and root.parts[-len(parts) :] == tuple(parts):
            # the folder the module is importable from, for the worker process's sys.path
            target["root"] = str(Path(*root.parts[: -len(parts)]))
    return target


def _json_ready(value: Any, what: str) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} must be JSON (they are stored in the log): {exc}") from exc
    return value


def _pool_amounts(items: Iterable[Any] | None, pools: dict[str, int]) -> tuple[tuple[str, int], ...]:
    out: list[tuple[str, int]] = []
    for item in items or ():
        pool, amount = (item, 1) if not isinstance(item, tuple | list) else (item[0], int(item[1]))
        if isinstance(pool, ResourcePool):
            pools.setdefault(pool.name, pool.capacity)
            pool = pool.name
        out.append((str(pool), amount))
    return tuple(out)


class FlowBuilder:
    """Collects events, steps and associations; :meth:`spec` freezes them into a :class:`FlowSpec`."""

    def __init__(self, name: str, *, max_concurrent: int = 0, stop_on_exception: bool = True) -> None:
        self.name = name
        self.max_concurrent = max_concurrent
        self.stop_on_exception = stop_on_exception
        self.pools: dict[str, int] = {}
        self._events: dict[str, Expr | None] = {}
        self._steps: dict[str, StepSpec] = {}
        self._assocs: list[Assoc] = []
        self._starts: list[Mapping[str, Any]] = []

    def add_event(self, name: str, expr: Any = None) -> Ev:
        if name in self._events:
            raise ConfigError(f"flow {self.name}: event {name!r} is defined twice")
        self._events[name] = None if expr is None else _expr(expr)
        return Ev(name)

    def add_step(
        self,
        name: str,
        func: Any = None,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        triggers: Mapping[Any, Iterable[Ev | str]] | None = None,
        acquires: Iterable[Any] | None = None,
        releases: Iterable[Any] | None = None,
        recovery: Mapping[Any, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        *,
        command: str | list[str] | None = None,
        max_attempts: int | None = None,
        backoff: tuple[float, float] | None = None,
        timeout: float | None = None,
    ) -> StepRef:
        if name in self._steps:
            raise ConfigError(f"flow {self.name}: step {name!r} is defined twice")
        if (func is None) == (command is None):
            raise ConfigError(f"flow {self.name}: step {name!r} needs either func or command")
        options = dict(config or {})
        target = _target(func) if func is not None else {"command": command}
        self._steps[name] = StepSpec(
            name=name,
            target=target,
            args=tuple(_json_ready(list(args), f"step {name} args")),
            kwargs=dict(_json_ready(dict(kwargs or {}), f"step {name} kwargs")),
            triggers={
                StepStatus(str(getattr(k, "value", k))): tuple(_name(e) for e in v) for k, v in (triggers or {}).items()
            },
            acquires=_pool_amounts(acquires, self.pools),
            releases=None if releases is None else _pool_amounts(releases, self.pools),
            recovery={
                StepStatus(str(getattr(k, "value", k))): Replay(str(getattr(v, "value", v)))
                for k, v in (recovery or {}).items()
            },
            max_attempts=int(max_attempts or options.pop("max_attempts", 1)),
            backoff=_pair(backoff or options.pop("backoff", (1.0, 60.0))),
            timeout=timeout if timeout is not None else options.pop("timeout", None),
            stop_on_exception=options.pop("stop_on_exception", None),
        )
        if options:
            raise ConfigError(f"flow {self.name}: step {name!r} has unknown config keys {sorted(options)}")
        return StepRef(name)

    def add_assoc(self, event: Ev | str, *assocs: Ev | StepRef | str, delay: float = 0) -> None:
        source = _name(event)
        for target in assocs:
            kind = "step" if isinstance(target, StepRef) else "event"
            if isinstance(target, str):
                kind = "step" if target in self._steps and target not in self._events else "event"
            self._assocs.append(Assoc(source, _name(target), kind, float(delay)))

    def add_start(self, event: Ev | str, *, types: Iterable[str], sequence: str = "{entity}", **where: Any) -> None:
        """Start a run when a tracker event of ``types`` (and ``where`` fields) arrives."""
        self._starts.append({"event": _name(event), "types": list(types), "sequence": sequence, "where": where})

    def spec(self) -> FlowSpec:
        flow = FlowSpec(
            name=self.name,
            events=dict(self._events),
            steps=dict(self._steps),
            assocs=tuple(self._assocs),
            max_concurrent=self.max_concurrent,
            stop_on_exception=self.stop_on_exception,
            starts=tuple(self._starts),
        )
        problems = flow.problems(self.pools or None)
        if problems:
            raise ConfigError(f"flow {self.name}: " + "; ".join(problems))
        return flow


def _pair(value: Any) -> tuple[float, float]:
    first, second = value
    return (float(first), float(second))


def _name(value: Ev | StepRef | str) -> str:
    return value if isinstance(value, str) else value.name


# -- JSON (stored with each run) and TOML ---------------------------------------------------------


def flow_to_json(flow: FlowSpec) -> dict[str, Any]:
    return {
        "name": flow.name,
        "events": {n: (None if e is None else expr_to_json(e)) for n, e in flow.events.items()},
        "steps": [
            {
                "name": s.name,
                "target": dict(s.target),
                "args": list(s.args),
                "kwargs": dict(s.kwargs),
                "triggers": {k.value: list(v) for k, v in s.triggers.items()},
                "acquires": [list(a) for a in s.acquires],
                "releases": None if s.releases is None else [list(a) for a in s.releases],
                "recovery": {k.value: v.value for k, v in s.recovery.items()},
                "max_attempts": s.max_attempts,
                "backoff": list(s.backoff),
                "timeout": s.timeout,
                "stop_on_exception": s.stop_on_exception,
            }
            for s in flow.steps.values()
        ],
        "assocs": [[a.source, a.target, a.kind, a.delay] for a in flow.assocs],
        "max_concurrent": flow.max_concurrent,
        "stop_on_exception": flow.stop_on_exception,
        "starts": [dict(s) for s in flow.starts],
    }


def flow_from_json(raw: Mapping[str, Any]) -> FlowSpec:
    steps = {}
    for s in raw.get("steps", ()):
        steps[s["name"]] = StepSpec(
            name=s["name"],
            target=dict(s["target"]),
            args=tuple(s.get("args", ())),
            kwargs=dict(s.get("kwargs", {})),
            triggers={StepStatus(k): tuple(v) for k, v in dict(s.get("triggers", {})).items()},
            acquires=tuple((str(p), int(n)) for p, n in s.get("acquires", ())),
            releases=None if s.get("releases") is None else tuple((str(p), int(n)) for p, n in s["releases"]),
            recovery={StepStatus(k): Replay(v) for k, v in dict(s.get("recovery", {})).items()},
            max_attempts=int(s.get("max_attempts", 1)),
            backoff=(float(s.get("backoff", (1.0, 60.0))[0]), float(s.get("backoff", (1.0, 60.0))[1])),
            timeout=s.get("timeout"),
            stop_on_exception=s.get("stop_on_exception"),
        )
    return FlowSpec(
        name=str(raw["name"]),
        events={n: (None if e is None else expr_from_json(e)) for n, e in dict(raw.get("events", {})).items()},
        steps=steps,
        assocs=tuple(Assoc(str(a[0]), str(a[1]), str(a[2]), float(a[3])) for a in raw.get("assocs", ())),
        max_concurrent=int(raw.get("max_concurrent", 0)),
        stop_on_exception=bool(raw.get("stop_on_exception", True)),
        starts=tuple(raw.get("starts", ())),
    )


def load_toml_flow(path: Path, pools: Mapping[str, int] | None = None) -> FlowSpec:
    """Read a TOML (or YAML) flow file; see :mod:`trackwire.workflows.files`."""
    from trackwire.workflows.files import load_flow_file

    return load_flow_file(path, pools)


def placeholder(target: dict[str, Any]) -> Any:
    """A stand-in for a file's ``func = "module:qualname"``: add_step records it without importing it."""
    return _Placeholder(target)


class _Placeholder:
    """Stands for a TOML ``func = "module:qualname"`` so add_step records it without importing it."""

    def __init__(self, target: dict[str, Any]) -> None:
        self.target = target


def _target(func: Any) -> dict[str, Any]:
    return dict(func.target) if isinstance(func, _Placeholder) else target_of(func)
