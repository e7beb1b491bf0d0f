"""ftrack's subscription expression language, as pure data: parse once, match many events.

The grammar ftrack plugins pass to ``session.event_hub.subscribe``::

    expression := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | primary
    primary    := condition | "(" expression ")"
    condition  := field op value
    field      := [A-Za-z0-9_.]+          a dotted path into the event (``data.user.name``)
    op         := "=" | "!=" | ">=" | "<=" | ">" | "<"
    value      := bare word [A-Za-z0-9-_,./*@+]+ | 'quoted' | "quoted"

Keywords are case-insensitive. Semantics follow ``ftrack_api.event.expression``:

- a path that is missing (or walks into something that is not a mapping) makes the condition false;
- values are strings, compared as they are (``data.count=1`` never equals the integer ``1``);
- ``=`` with a value ending in ``*`` is a *substring* test (``value[:-1] in candidate``), not a prefix
  test: ``topic=ftrack.*`` matches ``ftrack.update``, and ``topic=*update*`` never matches anything
  that lacks ``update*``;
- ``!=`` and the ordering operators never treat ``*`` specially.

One deliberate difference: where ftrack would raise ``TypeError`` (``<`` between a string and a
number, a wildcard test against a number), the condition is simply false, so one odd event cannot
stop a daemon's delivery loop.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trackwire.core.event import Event as TwEvent
from trackwire.errors import TrackwireError

__all__ = [
    "All",
    "AnyOf",
    "Condition",
    "Expression",
    "ExpressionError",
    "FtrackMatcher",
    "Not",
    "ftrack_candidate",
    "parse",
]

_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<op>!=|>=|<=|=|>|<)
  | (?P<quoted>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<word>[A-Za-z0-9\-_,./*@+]+)
    """,
    re.VERBOSE,
)
_FIELD = re.compile(r"[A-Za-z0-9_.]+")
_VALUE = re.compile(r"[A-Za-z0-9\-_,./*@+]+")
_KEYWORDS = ("and", "or", "not")


class ExpressionError(TrackwireError, ValueError):
    """A subscription expression that does not parse; the message names the position and the reason."""


class Expression:
    """The root of a parsed expression. ``match`` takes the event as a mapping (ftrack's shape)."""

    def match(self, candidate: Mapping[str, Any]) -> bool:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Condition(Expression):
    path: tuple[str, ...]
    op: str
    value: str

    def match(self, candidate: Mapping[str, Any]) -> bool:
        found: Any = candidate
        for part in self.path:
            if not isinstance(found, Mapping) or part not in found:
                return False
            found = found[part]
        try:
            if self.op == "=" and self.value.endswith("*"):
                return self.value[:-1] in found
            return bool(_OPERATORS[self.op](found, self.value))
        except TypeError:
            return False

    def __str__(self) -> str:
        return f"{'.'.join(self.path)}{self.op}{self.value}"


@dataclass(frozen=True, slots=True)
class All(Expression):
    parts: tuple[Expression, ...]

    def match(self, candidate: Mapping[str, Any]) -> bool:
        return all(part.match(candidate) for part in self.parts)

    def __str__(self) -> str:
        return "(" + " and ".join(map(str, self.parts)) + ")"


@dataclass(frozen=True, slots=True)
class AnyOf(Expression):
    parts: tuple[Expression, ...]

    def match(self, candidate: Mapping[str, Any]) -> bool:
        return any(part.match(candidate) for part in self.parts)

    def __str__(self) -> str:
        return "(" + " or ".join(map(str, self.parts)) + ")"


@dataclass(frozen=True, slots=True)
class Not(Expression):
    part: Expression

    def match(self, candidate: Mapping[str, Any]) -> bool:
        return not self.part.match(candidate)

    def __str__(self) -> str:
        return f"not {self.part}"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    at: int


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(text):
        found = _TOKEN.match(text, pos)
        if found is None:
            raise ExpressionError(f"unexpected {text[pos]!r} at position {pos} in {text!r}")
        kind = found.lastgroup or ""
        if kind != "space":
            out.append(_Token(kind, found.group(), pos))
        pos = found.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def fail(self, reason: str) -> ExpressionError:
        where = self.tokens[self.pos].at if self.pos < len(self.tokens) else len(self.text)
        return ExpressionError(f"{reason} at position {where} in {self.text!r}")

    def peek(self, offset: int = 0) -> _Token | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is None or token.kind != "word" or token.text.lower() != word:
            return False
        follower = self.peek(1)
        return follower is None or follower.kind != "op"  # ``not=1`` is a condition on a field named "not"

    def parse(self) -> Expression:
        if not self.tokens:
            raise ExpressionError("an empty subscription expression")
        result = self.parse_or()
        if self.pos != len(self.tokens):
            raise self.fail("unexpected text")
        return result

    def parse_joined(self, word: str, inner: Callable[[], Expression]) -> Sequence[Expression]:
        parts = [inner()]
        while self.keyword(word):
            self.pos += 1
            parts.append(inner())
        return parts

    def parse_or(self) -> Expression:
        parts = self.parse_joined("or", self.parse_and)
        return parts[0] if len(parts) == 1 else AnyOf(tuple(parts))

    def parse_and(self) -> Expression:
        parts = self.parse_joined("and", self.parse_not)
        return parts[0] if len(parts) == 1 else All(tuple(parts))

    def parse_not(self) -> Expression:
        if self.keyword("not"):
            self.pos += 1
            return Not(self.parse_not())
        token = self.peek()
        if token is not None and token.kind == "lparen":
            self.pos += 1
            inner = self.parse_or()
            closing = self.peek()
            if closing is None or closing.kind != "rparen":
                raise self.fail("a missing ')'")
            self.pos += 1
            return inner
        return self.parse_condition()

    def parse_condition(self) -> Expression:
        field, op, value = self.peek(), self.peek(1), self.peek(2)
        if field is None or field.kind != "word" or not _FIELD.fullmatch(field.text):
            raise self.fail("expected a field such as topic or data.user.name")
        if field.text.lower() in _KEYWORDS and (op is None or op.kind != "op"):
            raise self.fail(f"a misplaced {field.text!r}")
        if op is None or op.kind != "op":
            raise ExpressionError(f"expected an operator after {field.text!r} in {self.text!r}")
        if (
            value is None
            or value.kind not in ("word", "quoted")
            or (value.kind == "word" and not _VALUE.fullmatch(value.text))
        ):
            raise ExpressionError(f"expected a value after {field.text}{op.text} in {self.text!r}")
        self.pos += 3
        text = value.text[1:-1] if value.kind == "quoted" else value.text
        return Condition(tuple(field.text.split(".")), op.text, text)


def parse(text: str) -> Expression:
    """Parse an ftrack subscription expression, or raise :class:`ExpressionError` saying where it failed."""
    return _Parser(text.strip()).parse()


def _glob_literal(text: str) -> str:
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in text)


def _topic_patterns(expression: Expression) -> tuple[str, ...] | None:
    """Event type globs an expression can only match within (``None``: it constrains no topic)."""
    if isinstance(expression, Condition):
        if expression.path != ("topic",) or expression.op != "=":
            return None
        value = expression.value
        return (f"*{_glob_literal(value[:-1])}*",) if value.endswith("*") else (_glob_literal(value),)
    if isinstance(expression, All):
        for part in expression.parts:
            patterns = _topic_patterns(part)
            if patterns is not None:
                return patterns
        return None
    if isinstance(expression, AnyOf):
        found: list[str] = []
        for part in expression.parts:
            patterns = _topic_patterns(part)
            if patterns is None:
                return None
            found.extend(patterns)
        return tuple(found)
    return None


def ftrack_candidate(event: TwEvent) -> Mapping[str, Any]:
    """What an expression is matched against: the original ftrack event, or a look-alike for other events."""
    original = event.data.get("ftrack")
    if isinstance(original, Mapping):
        return original
    return {
        "id": str(event.id) if event.id is not None else event.source_id,
        "topic": event.type,
        "data": event.data,
        "source": {"id": event.source, "user": event.user.to_json() if event.user else {}},
    }


@dataclass(frozen=True, slots=True)
class FtrackMatcher:
    """A consumer matcher from subscription expressions; an ftrack event matches once, not per entity."""

    expressions: tuple[Expression, ...]

    def type_patterns(self) -> tuple[str, ...] | None:
        found: list[str] = []
        for expression in self.expressions:
            patterns = _topic_patterns(expression)
            if patterns is None:
                return None
            found.extend(patterns)
        return tuple(dict.fromkeys(found))

    def matches(self, event: TwEvent) -> bool:
        if event.data.get("index", 0) != 0:
            return False
        candidate = ftrack_candidate(event)
        return any(expression.match(candidate) for expression in self.expressions)
