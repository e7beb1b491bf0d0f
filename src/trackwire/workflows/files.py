"""Flow definition files: TOML and YAML, one schema, one validator.

Both formats are parsed into the same plain mapping, which :func:`flow_from_mapping` checks key by key
before building the flow, so a mistake is reported with the file, the key path (``step[2].max_attempts``)
and the reason, whichever format it was written in. YAML is read with PyYAML's safe loader (no tags, no
objects: data only).

The schema (see docs/workflows.md)::

    name, max_concurrent, stop_on_exception
    [[start]]  event, types, sequence, where
    [[event]]  name, expr
    [[step]]   name, func | command, file, args, kwargs, triggers, acquires, releases, recovery,
               max_attempts, backoff, timeout, stop_on_exception
    [[assoc]]  event, steps, events, delay
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from trackwire.core.workflows.spec import Ev, FlowSpec, Replay, StepStatus, expr_from_json
from trackwire.errors import ConfigError
from trackwire.workflows.definition import FlowBuilder, StepRef, placeholder

__all__ = ["FLOW_SUFFIXES", "flow_from_mapping", "load_flow_file", "read_flow_file"]

FLOW_SUFFIXES = (".toml", ".yaml", ".yml")

_TOP = {"name", "max_concurrent", "stop_on_exception", "start", "event", "step", "assoc"}
_STEP = {
    "name", "func", "command", "file", "args", "kwargs", "triggers", "acquires", "releases", "recovery",
    "max_attempts", "backoff", "timeout", "stop_on_exception",
}  # fmt: skip
_EVENT = {"name", "expr"}
_ASSOC = {"event", "steps", "events", "delay"}
_START = {"event", "types", "sequence", "where"}
_STATUSES = {s.value for s in StepStatus}
_REPLAYS = {r.value for r in Replay}


def read_flow_file(path: Path) -> dict[str, Any]:
    """The file's contents as a mapping (TOML or YAML by suffix); unreadable files name the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the flow: {exc}", path=str(path)) from exc
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", path=str(path)) from exc
    if path.suffix in (".yaml", ".yml"):
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(f"not valid YAML{where}: {problem}", path=str(path)) from exc
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"a flow file must be a mapping at the top, not {_kind(raw)}", path=str(path))
        return raw
    raise ConfigError(f"not a flow file: expected one of {', '.join(FLOW_SUFFIXES)} or .py", path=str(path))


def load_flow_file(path: Path, pools: Mapping[str, int] | None = None) -> FlowSpec:
    """Read and check one TOML or YAML flow file."""
    return flow_from_mapping(read_flow_file(path), path, pools)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {
        bool: "true/false",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


class _Checker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(reason, path=str(self.path), key=key)

    def table(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table, not {_kind(value)}")
        return value

    def tables(self, raw: Mapping[str, Any], key: str, allowed: set[str]) -> list[dict[str, Any]]:
        value = raw.get(key, [])
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            raise self.fail(key, f"must be a list of tables, not {_kind(value)}")
        out = []
        for i, item in enumerate(value):
            item = self.table(item, f"{key}[{i}]")
            unknown = sorted(set(item) - allowed)
            if unknown:
                raise self.fail(f"{key}[{i}].{unknown[0]}", f"unknown key (known: {', '.join(sorted(allowed))})")
            out.append(item)
        return out

    def text(self, item: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
        if key not in item or item[key] is None:
            if required:
                raise self.fail(f"{where}.{key}", "is required")
            return None
        value = item[key]
        if not isinstance(value, str) or not value:
            raise self.fail(f"{where}.{key}", f"must be a non-empty string, not {_kind(value)}")
        return value

    def names(self, item: Mapping[str, Any], key: str, where: str) -> list[str]:
        value = item.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(f"{where}.{key}", f"must be a list of names, not {_kind(value)}")
        return list(value)

    def number(self, item: Mapping[str, Any], key: str, where: str, *, whole: bool = False, least: float = 0) -> Any:
        value = item[key]
        ok = isinstance(value, int) if whole else isinstance(value, int | float)
        if isinstance(value, bool) or not ok:
            raise self.fail(f"{where}.{key}", f"must be a {'whole ' if whole else ''}number, not {_kind(value)}")
        if value < least:
            raise self.fail(f"{where}.{key}", f"must be {least:g} or more, got {value}")
        return value

    def flag(self, item: Mapping[str, Any], key: str, where: str) -> bool:
        value = item[key]
        if not isinstance(value, bool):
            raise self.fail(f"{where}.{key}", f"must be true or false, not {_kind(value)}")
        return value

    def amounts(self, item: Mapping[str, Any], key: str, where: str) -> list[tuple[str, int]]:
        value = item[key]
        if not isinstance(value, list):
            raise self.fail(f"{where}.{key}", f"must be a list of [pool, amount] pairs, not {_kind(value)}")
        out = []
        for i, pair in enumerate(value):
            if isinstance(pair, str):
                pair = [pair, 1]
            good = isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)
            if not good or isinstance(pair[1], bool) or not isinstance(pair[1], int) or pair[1] < 1:
                raise self.fail(f"{where}.{key}[{i}]", "must be a [pool, amount] pair with a whole amount of 1 or more")
            out.append((pair[0], pair[1]))
        return out

    def statuses(
        self, item: Mapping[str, Any], key: str, where: str, check: Callable[[str, Any], Any]
    ) -> dict[str, Any]:
        value = self.table(item[key], f"{where}.{key}")
        for status, target in value.items():
            if status not in _STATUSES:
                raise self.fail(f"{where}.{key}.{status}", f"not a step status (one of {', '.join(sorted(_STATUSES))})")
            check(f"{where}.{key}.{status}", target)
        return value


def flow_from_mapping(raw: Mapping[str, Any], path: Path, pools: Mapping[str, int] | None = None) -> FlowSpec:
    """Check a flow file's mapping key by key and build the flow; errors name the file and key path."""
    c = _Checker(path)
    unknown = sorted(set(raw) - _TOP)
    if unknown:
        raise c.fail(unknown[0], f"unknown key (known: {', '.join(sorted(_TOP))})")
    name = c.text(raw, "name", "flow", required=False) or path.stem
    builder = FlowBuilder(
        name,
        max_concurrent=int(c.number(raw, "max_concurrent", "flow", whole=True)) if "max_concurrent" in raw else 0,
        stop_on_exception=c.flag(raw, "stop_on_exception", "flow") if "stop_on_exception" in raw else True,
    )
    for i, event in enumerate(c.tables(raw, "event", _EVENT)):
        where = f"event[{i}]"
        event_name = c.text(event, "name", where)
        assert event_name is not None
        expr = None
        if event.get("expr") is not None:
            try:
                expr = expr_from_json(event["expr"])
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                reason = f"not an event expression ({{all = [...]}} or {{any = [...]}}): {exc}"
                raise c.fail(f"{where}.expr", reason) from exc
        _build(c, f"{where}.name", builder.add_event, event_name, expr)
    for i, step in enumerate(c.tables(raw, "step", _STEP)):
        _add_step(c, builder, step, f"step[{i}]")
    for i, assoc in enumerate(c.tables(raw, "assoc", _ASSOC)):
        where = f"assoc[{i}]"
        source = c.text(assoc, "event", where)
        assert source is not None
        targets: list[Ev | StepRef] = [StepRef(t) for t in c.names(assoc, "steps", where)]
        targets += [Ev(t) for t in c.names(assoc, "events", where)]
        if not targets:
            raise c.fail(where, "names no steps and no events")
        delay = float(c.number(assoc, "delay", where)) if "delay" in assoc else 0.0
        _build(c, where, builder.add_assoc, source, *targets, delay=delay)
    for i, start in enumerate(c.tables(raw, "start", _START)):
        where = f"start[{i}]"
        event_name = c.text(start, "event", where)
        assert event_name is not None
        types = c.names(start, "types", where)
        if not types:
            raise c.fail(f"{where}.types", "is required: the tracker event types that start a run")
        sequence = c.text(start, "sequence", where, required=False) or "{entity}"
        filters = c.table(start.get("where", {}), f"{where}.where")
        _build(c, where, builder.add_start, event_name, types=types, sequence=sequence, **filters)
    try:
        return builder.spec()
    except ConfigError as exc:
        raise ConfigError(str(exc), path=str(path)) from exc


def _build(c: _Checker, key: str, action: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    try:
        action(*args, **kwargs)
    except ConfigError as exc:
        raise c.fail(key, str(exc)) from exc


def _add_step(c: _Checker, builder: FlowBuilder, step: dict[str, Any], where: str) -> None:
    name = c.text(step, "name", where)
    assert name is not None
    func = c.text(step, "func", where, required=False)
    command = step.get("command")
    shell = isinstance(command, str) and bool(command)
    argv = isinstance(command, list) and bool(command) and all(isinstance(a, str) for a in command)
    if command is not None and not (shell or argv):
        raise c.fail(f"{where}.command", f"must be a string or a list of strings, not {_kind(command)}")
    if (func is None) == (command is None):
        raise c.fail(where, 'needs either func ("package.module:function") or command')
    target = None
    if func is not None:
        module, colon, qualname = func.partition(":")
        if not colon or not module or not qualname:
            raise c.fail(f"{where}.func", f'must be "package.module:function", got {func!r}')
        target = {"module": module, "qualname": qualname}
        file = c.text(step, "file", where, required=False)
        if file:
            target["file"] = str((c.path.parent / file).resolve())
    elif "file" in step:
        raise c.fail(f"{where}.file", "only goes with func")
    args = step.get("args", [])
    if not isinstance(args, list):
        raise c.fail(f"{where}.args", f"must be a list, not {_kind(args)}")
    kwargs = c.table(step.get("kwargs", {}), f"{where}.kwargs")

    def events(key: str, value: Any) -> None:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise c.fail(key, f"must be a list of event names, not {_kind(value)}")

    def replay(key: str, value: Any) -> None:
        if value not in _REPLAYS:
            raise c.fail(key, f"must be one of {', '.join(sorted(_REPLAYS))}, not {value!r}")

    triggers = c.statuses(step, "triggers", where, events) if "triggers" in step else None
    recovery = c.statuses(step, "recovery", where, replay) if "recovery" in step else None
    acquires = c.amounts(step, "acquires", where) if "acquires" in step else None
    releases = c.amounts(step, "releases", where) if "releases" in step else None
    config: dict[str, Any] = {}
    if "max_attempts" in step:
        config["max_attempts"] = c.number(step, "max_attempts", where, whole=True, least=1)
    if "timeout" in step:
        config["timeout"] = float(c.number(step, "timeout", where))
        if config["timeout"] <= 0:
            raise c.fail(f"{where}.timeout", "must be more than 0 seconds")
    if "backoff" in step:
        backoff = step["backoff"]
        if (
            not isinstance(backoff, list)
            or len(backoff) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in backoff)
        ):
            raise c.fail(f"{where}.backoff", "must be [base, cap] in seconds")
        config["backoff"] = (float(backoff[0]), float(backoff[1]))
    if "stop_on_exception" in step:
        config["stop_on_exception"] = c.flag(step, "stop_on_exception", where)
    _build(
        c, f"{where}.name", builder.add_step, name, func=placeholder(target) if target else None, command=command,
        args=args, kwargs=kwargs, triggers=triggers, acquires=acquires, releases=releases, recovery=recovery,
        config=config,
    )  # fmt: skip
