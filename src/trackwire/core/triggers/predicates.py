"""Conditions on one event: label specs (``match``/``match_related``) and payload predicates.

Label specs follow Prefect's shape, made stricter. A spec maps a dotted path of the event (``entity.type``,
``project.name``, ``attribute``, ``data.sg_status_list``) to a glob or a list of globs; a leading ``!`` negates.
Every path must hold (AND). Within a list the positive globs are alternatives (OR) and every negative glob
must fail (AND NOT), so ``["Shot*", "!Shot_test*"]`` means "a Shot, but not a test one" — in Prefect a list of
negations OR'ed together matches almost everything.

Payload predicates follow StackStorm's operators on dotted paths, combinable with ``all``/``any``/``not``:
``{path = "new", op = "in", value = ["apr", "fin"]}``, ``{any = [..., ...]}``, ``{not = {...}}``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trackwire.core.event import Event, Ref
from trackwire.core.matching import _MISSING, lookup_path

__all__ = [
    "OPERATORS",
    "All",
    "Any_",
    "Compare",
    "LabelSpec",
    "Not",
    "Predicate",
    "PredicateError",
    "parse_predicate",
    "related_resources",
    "resolve",
]


class PredicateError(ValueError):
    """A condition in an automation definition is malformed."""


_REF_FIELDS = frozenset(("type", "id", "name"))


def resolve(event: Event, path: str) -> Any:
    """:func:`lookup_path` with a fast path for ``entity.id``-style paths (no dict built per call)."""
    head, dot, rest = path.partition(".")
    if dot and rest in _REF_FIELDS and head in ("entity", "project", "user"):
        ref = getattr(event, head)
        return _MISSING if ref is None else getattr(ref, rest)
    return lookup_path(event, path)


def _glob(value: str, pattern: str) -> bool:
    return value == pattern or fnmatch.fnmatchcase(value, pattern)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Ref):
        return str(value)
    return str(value)


@dataclass(frozen=True, slots=True)
class _Patterns:
    positive: tuple[str, ...]
    negative: tuple[str, ...]

    @classmethod
    def of(cls, value: str | Sequence[str]) -> _Patterns:
        items = [value] if isinstance(value, str) else list(value)
        if not items or not all(isinstance(i, str) for i in items):
            raise PredicateError(f"a label pattern must be a string or a non-empty list of strings, got {value!r}")
        pos = tuple(i for i in items if not i.startswith("!"))
        neg = tuple(i[1:] for i in items if i.startswith("!"))
        return cls(pos, neg)

    def test(self, value: str) -> bool:
        if self.positive and not any(_glob(value, p) for p in self.positive):
            return False
        return not any(_glob(value, n) for n in self.negative)


@dataclass(frozen=True, slots=True)
class LabelSpec:
    """``{path: glob | [globs]}``; every path must match. An empty spec matches everything."""

    items: tuple[tuple[str, _Patterns], ...] = ()

    @classmethod
    def parse(cls, spec: Mapping[str, Any] | None) -> LabelSpec:
        if not spec:
            return cls()
        if not isinstance(spec, Mapping):
            raise PredicateError(f"a match spec must be a table of path = pattern, got {spec!r}")
        return cls(tuple((str(k), _Patterns.of(v)) for k, v in spec.items()))

    def why_not(self, get: Callable[[str], Any]) -> str | None:
        """``None`` when the spec holds, else the first path that does not."""
        for path, patterns in self.items:
            value = get(path)
            text = "" if value is _MISSING else _text(value)
            if not patterns.test(text):
                return f"{path}={text!r} does not match {_show(patterns)}"
        return None

    def matches_event(self, event: Event) -> bool:
        for path, patterns in self.items:
            value = resolve(event, path)
            if not patterns.test("" if value is _MISSING else _text(value)):
                return False
        return True


def _show(patterns: _Patterns) -> str:
    return repr([*patterns.positive, *(f"!{n}" for n in patterns.negative)])


def related_resources(event: Event) -> list[dict[str, Any]]:
    """The resources an event relates to, each with a ``role``: its project, its user, and ``data.related``."""
    out: list[dict[str, Any]] = []
    for role in ("project", "user"):
        ref = getattr(event, role)
        if ref is not None:
            out.append({"role": role, "type": ref.type, "id": ref.id, "name": ref.name})
    extra = event.data.get("related") if isinstance(event.data, dict) else None
    if isinstance(extra, list):
        out.extend(r for r in extra if isinstance(r, dict) and "role" in r)
    return out


def _getter(resource: Mapping[str, Any]) -> Callable[[str], Any]:
    return lambda key: resource.get(key, _MISSING)


def related_why_not(specs: Sequence[LabelSpec], event: Event) -> str | None:
    """Each spec needs some related resource satisfying its positive globs; its negative-only paths must fail
    for every related resource in the spec's role (so "not tagged dev" means no dev tag at all)."""
    if not specs:
        return None
    related = related_resources(event)
    for spec in specs:
        roles = dict(spec.items).get("role")
        pool = [r for r in related if roles is None or roles.test(_text(r.get("role")))]
        positive = tuple((p, pat) for p, pat in spec.items if pat.positive or p == "role")
        negative = tuple((p, pat) for p, pat in spec.items if not pat.positive and p != "role")
        if positive and not any(LabelSpec(positive).why_not(_getter(r)) is None for r in pool):
            return f"no related resource matches {dict((p, _show(v)) for p, v in positive)}"
        for resource in pool:
            problem = LabelSpec(negative).why_not(_getter(resource))
            if problem is not None:
                return f"related {resource.get('role')} {problem}"
    return None


# -- payload predicates -----------------------------------------------------------------------------


def _num(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("booleans are not numbers")
    return float(value)


def _age(value: Any, now: float) -> float:
    if isinstance(value, datetime):
        stamp = value.timestamp()
    elif isinstance(value, int | float):
        stamp = float(value)
    else:
        stamp = datetime.fromisoformat(str(value)).timestamp()
    return now - stamp


def _lower(value: Any) -> str:
    return _text(value).lower()


Op = Callable[[Any, Any, float], bool]

OPERATORS: dict[str, Op] = {
    "equals": lambda v, x, _: v == x,
    "nequals": lambda v, x, _: v != x,
    "iequals": lambda v, x, _: _lower(v) == _lower(x),
    "contains": lambda v, x, _: x in v if isinstance(v, list | dict) else _text(x) in _text(v),
    "ncontains": lambda v, x, _: not (x in v if isinstance(v, list | dict) else _text(x) in _text(v)),
    "icontains": lambda v, x, _: _lower(x) in _lower(v),
    "incontains": lambda v, x, _: _lower(x) not in _lower(v),
    "startswith": lambda v, x, _: _text(v).startswith(_text(x)),
    "istartswith": lambda v, x, _: _lower(v).startswith(_lower(x)),
    "endswith": lambda v, x, _: _text(v).endswith(_text(x)),
    "iendswith": lambda v, x, _: _lower(v).endswith(_lower(x)),
    "lt": lambda v, x, _: _num(v) < _num(x),
    "le": lambda v, x, _: _num(v) <= _num(x),
    "gt": lambda v, x, _: _num(v) > _num(x),
    "ge": lambda v, x, _: _num(v) >= _num(x),
    "matchwildcard": lambda v, x, _: fnmatch.fnmatchcase(_text(v), _text(x)),
    "regex": lambda v, x, _: x.search(_text(v)) is not None,
    "iregex": lambda v, x, _: x.search(_text(v)) is not None,
    "in": lambda v, x, _: v in x,
    "nin": lambda v, x, _: v not in x,
    "timediff_lt": lambda v, x, now: _age(v, now) < _num(x),
    "timediff_gt": lambda v, x, now: _age(v, now) > _num(x),
    "exists": lambda v, x, _: True,
    "nexists": lambda v, x, _: False,
}
_ALIASES = {
    "eq": "equals",
    "neq": "nequals",
    "ieq": "iequals",
    "lessthan": "lt",
    "greaterthan": "gt",
    "inside": "in",
    "ninside": "nin",
    "td_lt": "timediff_lt",
    "td_gt": "timediff_gt",
    "glob": "matchwildcard",
}


_UNSET = object()


class Predicate:
    """A condition on an event at a time ``now`` (seconds since the epoch, for ``timediff_*``).

    ``values`` memoises resolved paths for one event, so many automations testing the same path of the same
    event resolve it once (the evaluator passes one dict per event).
    """

    def holds(self, event: Event, now: float, values: dict[str, Any] | None = None) -> bool:
        raise NotImplementedError

    def why_not(self, event: Event, now: float) -> str | None:
        return None if self.holds(event, now) else f"{self} is false"


@dataclass(frozen=True, slots=True)
class Compare(Predicate):
    path: str
    op: str
    value: Any = None

    def holds(self, event: Event, now: float, values: dict[str, Any] | None = None) -> bool:
        if values is None:
            found = resolve(event, self.path)
        else:
            found = values.get(self.path, _UNSET)
            if found is _UNSET:
                found = values[self.path] = resolve(event, self.path)
        if found is _MISSING:
            return self.op == "nexists"
        try:
            return OPERATORS[self.op](found, self.value, now)
        except (TypeError, ValueError):
            return False

    def __str__(self) -> str:
        shown = self.value.pattern if isinstance(self.value, re.Pattern) else self.value
        return f"{self.path} {self.op} {shown!r}" if self.op not in ("exists", "nexists") else f"{self.op} {self.path}"


@dataclass(frozen=True, slots=True)
class All(Predicate):
    parts: tuple[Predicate, ...]

    def holds(self, event: Event, now: float, values: dict[str, Any] | None = None) -> bool:
        return all(p.holds(event, now, values) for p in self.parts)

    def why_not(self, event: Event, now: float) -> str | None:
        for part in self.parts:
            problem = part.why_not(event, now)
            if problem is not None:
                return problem
        return None

    def __str__(self) -> str:
        return "(" + " and ".join(map(str, self.parts)) + ")"


@dataclass(frozen=True, slots=True)
class Any_(Predicate):
    parts: tuple[Predicate, ...]

    def holds(self, event: Event, now: float, values: dict[str, Any] | None = None) -> bool:
        return any(p.holds(event, now, values) for p in self.parts)

    def __str__(self) -> str:
        return "(" + " or ".join(map(str, self.parts)) + ")"


@dataclass(frozen=True, slots=True)
class Not(Predicate):
    part: Predicate

    def holds(self, event: Event, now: float, values: dict[str, Any] | None = None) -> bool:
        return not self.part.holds(event, now, values)

    def __str__(self) -> str:
        return f"not {self.part}"


def parse_predicate(raw: Any, where: str = "where") -> Predicate:
    """Build a predicate from its TOML/JSON form; errors name the position (``where.all[1].op``)."""
    if isinstance(raw, list):
        return All(tuple(parse_predicate(r, f"{where}[{i}]") for i, r in enumerate(raw)))
    if not isinstance(raw, Mapping):
        raise PredicateError(f"{where}: a condition must be a table, got {raw!r}")
    keys = set(raw)
    if keys == {"all"} or keys == {"and"}:
        items = raw.get("all", raw.get("and"))
        return All(tuple(parse_predicate(r, f"{where}.all[{i}]") for i, r in enumerate(_list(items, where))))
    if keys == {"any"} or keys == {"or"}:
        items = raw.get("any", raw.get("or"))
        return Any_(tuple(parse_predicate(r, f"{where}.any[{i}]") for i, r in enumerate(_list(items, where))))
    if keys == {"not"}:
        return Not(parse_predicate(raw["not"], f"{where}.not"))
    unknown = keys - {"path", "op", "value"}
    if unknown or "path" not in raw or "op" not in raw:
        raise PredicateError(f"{where}: expected {{path, op, value}} or one of all/any/not, got keys {sorted(keys)}")
    op = _ALIASES.get(str(raw["op"]), str(raw["op"]))
    if op not in OPERATORS:
        raise PredicateError(f"{where}.op: unknown operator {raw['op']!r}; known: {', '.join(sorted(OPERATORS))}")
    value = raw.get("value")
    if op not in ("exists", "nexists") and "value" not in raw:
        raise PredicateError(f"{where}: operator {op!r} needs a value")
    if op in ("regex", "iregex"):
        try:
            value = re.compile(str(value), re.IGNORECASE if op == "iregex" else 0)
        except re.error as exc:
            raise PredicateError(f"{where}.value: not a valid regular expression: {exc}") from exc
    if op in ("in", "nin") and not isinstance(value, list):
        raise PredicateError(f"{where}.value: operator {op!r} needs a list")
    return Compare(str(raw["path"]), op, tuple(value) if isinstance(value, list) and op in ("in", "nin") else value)


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise PredicateError(f"{where}: all/any need a non-empty list of conditions")
    return value
