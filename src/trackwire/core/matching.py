"""What a consumer matches, as data, and the index from event type to consumers.

Filters are plain data so the daemon can evaluate them without importing user code: a plugin's
worker process reports its filters, and the daemon decides which events to hand it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from trackwire.core.event import Event

__all__ = ["Filter", "MatchEventsFilter", "Matcher", "TypeIndex", "lookup_path"]

_MISSING = object()


def lookup_path(event: Event, path: str) -> Any:
    """Resolve a dotted path (``entity.type``, ``data.meta.new_value``) on an event, or ``_MISSING``."""
    head, _, rest = path.partition(".")
    if head == "data":
        value: Any = event.data
    elif head in ("entity", "project", "user"):
        ref = getattr(event, head)
        value = None if ref is None else ref.to_json()
    elif head in Event.__slots__:
        value = getattr(event, head)
    else:
        return _MISSING
    for part in rest.split(".") if rest else ():
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _is_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


class Matcher(Protocol):
    """Anything that decides, from an event alone, whether a consumer wants it."""

    def type_patterns(self) -> tuple[str, ...] | None:
        """Event type globs the matcher can ever accept; ``None`` for all types."""

    def matches(self, event: Event) -> bool: ...


def _type_only(matcher: Matcher) -> bool:
    """Whether the event type alone decides (so the event need not be decoded to match it)."""
    probe = getattr(matcher, "type_only", None)
    return bool(probe()) if callable(probe) else False


@dataclass(frozen=True, slots=True)
class Filter:
    """The native filter: event type globs, then optional attribute, entity type, project and field tests.

    ``attributes`` and ``entity_types`` accept globs; ``where`` maps dotted paths to the value they must
    equal (a list, tuple or set of values means "any of"; a missing path never matches).
    """

    types: tuple[str, ...] = ("*",)
    attributes: tuple[str, ...] | None = None
    entity_types: tuple[str, ...] | None = None
    projects: tuple[str, ...] | None = None
    where: tuple[tuple[str, Any], ...] = ()

    def type_patterns(self) -> tuple[str, ...] | None:
        return None if "*" in self.types else self.types

    def type_only(self) -> bool:
        return self.attributes is None and self.entity_types is None and self.projects is None and not self.where

    def matches(self, event: Event) -> bool:
        if self.types != ("*",) and not _any_glob(event.type, self.types):
            return False
        if self.attributes is not None and (event.attribute is None or not _any_glob(event.attribute, self.attributes)):
            return False
        if self.entity_types is not None and (
            event.entity is None or not _any_glob(event.entity.type, self.entity_types)
        ):
            return False
        if self.projects is not None:
            project = event.project
            if project is None:
                return False
            names = {str(project.id)} if project.name is None else {str(project.id), project.name}
            if not names.intersection(self.projects):
                return False
        for path, expected in self.where:
            value = lookup_path(event, path)
            if value is _MISSING:
                return False
            if isinstance(expected, list | tuple | set | frozenset):
                if not any(value == choice for choice in expected):
                    return False
            elif value != expected:
                return False
        return True


def _any_glob(value: str, patterns: Iterable[str]) -> bool:
    return any(value == p or (_is_glob(p) and fnmatch.fnmatchcase(value, p)) for p in patterns)


@dataclass(frozen=True, slots=True)
class MatchEventsFilter:
    """shotgunEvents' ``matchEvents``, evaluated exactly as its daemon does.

    ``None`` or ``{}`` matches everything. Keys are event types (``'*'`` matches any type and, when
    present, is the only key consulted), values are ``None``/``'*'`` (any attribute), a list of attribute
    names, or a string (shotgunEvents tests ``attribute in value``, a substring test).
    """

    match_events: tuple[tuple[str, Any], ...] | None = None

    @classmethod
    def from_mapping(cls, value: Any) -> MatchEventsFilter:
        """Check a plugin's ``matchEvents`` once, at registration.

        Anything falsy (``None``, ``{}``) matches every event, as in shotgunEvents. What shotgunEvents
        would only trip over later, in its main loop (a list instead of a dict, a key that is not a
        string, an attribute spec that is a number), raises :class:`TypeError` here instead.
        """
        if not value:
            return cls(None)
        if not isinstance(value, Mapping):
            raise TypeError(f"matchEvents must be a dict or None, got {type(value).__name__}: {value!r}")
        items: list[tuple[str, Any]] = []
        for key, attrs in value.items():
            if not isinstance(key, str):
                raise TypeError(f"matchEvents keys must be event type strings, got {key!r}")
            if attrs is None or isinstance(attrs, str):
                items.append((key, attrs))
            elif isinstance(attrs, list | tuple | set | frozenset | Mapping):
                # kept as they behave under ``in``: a dict by its keys
                items.append((key, tuple(attrs)))
            else:
                raise TypeError(
                    f"matchEvents[{key!r}] must be None, '*', a list of attribute names or a string,"
                    f" got {type(attrs).__name__}"
                )
        return cls(tuple(items))

    def type_patterns(self) -> tuple[str, ...] | None:
        if not self.match_events:
            return None
        keys = tuple(k for k, _ in self.match_events)
        if "*" in keys:
            return None
        # shotgunEvents compares event types exactly: a key like "Shotgun_*_Change" is not a pattern.
        return tuple(_literal(k) for k in keys)

    def type_only(self) -> bool:
        return not self.match_events or all(attrs is None or attrs == "*" for _, attrs in self.match_events)

    def matches(self, event: Event) -> bool:
        """``Callback.canProcess``: a ``'*'`` key wins, then the event's own type; ``'*' in spec`` matches
        any attribute (for a string spec that is a substring test too), else the event needs a non-empty
        attribute that is ``in`` the spec."""
        if not self.match_events:
            return True
        table = dict(self.match_events)
        if "*" in table:
            attrs = table["*"]
        elif event.type in table:
            attrs = table[event.type]
        else:
            return False
        if attrs is None or "*" in attrs:
            return True
        attribute = event.attribute
        return bool(attribute) and attribute in attrs


def _literal(text: str) -> str:
    """A glob that matches exactly ``text``."""
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in text)


@dataclass(slots=True)
class TypeIndex:
    """Which consumers (by position) can want an event of a given type.

    Built once per set of consumers; the answer for each event type is computed on first sight and
    cached, so dispatch never scans every consumer for every event.
    """

    matchers: Sequence[Matcher]
    _cache: dict[str, tuple[int, ...]] = field(default_factory=dict)
    _exact: dict[str, list[int]] = field(default_factory=dict)
    _globbed: list[tuple[int, tuple[str, ...] | None]] = field(default_factory=list)
    _needs_event: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._needs_event = [not _type_only(m) for m in self.matchers]
        for position, matcher in enumerate(self.matchers):
            patterns = matcher.type_patterns()
            if patterns is not None and not any(_is_glob(p) for p in patterns):
                for pattern in patterns:
                    self._exact.setdefault(pattern, []).append(position)
            else:
                self._globbed.append((position, patterns))

    def candidates(self, event_type: str) -> tuple[int, ...]:
        found = self._cache.get(event_type)
        if found is None:
            hits = set(self._exact.get(event_type, ()))
            for position, patterns in self._globbed:
                if patterns is None or _any_glob(event_type, patterns):
                    hits.add(position)
            found = tuple(sorted(hits))
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[event_type] = found
        return found

    def match(self, event: Event) -> tuple[int, ...]:
        """Positions of the consumers that want ``event``, in registration order."""
        return tuple(p for p in self.candidates(event.type) if self.matchers[p].matches(event))

    def needs_event(self, event_type: str) -> bool:
        """Whether matching this type needs more than the type (so answers cannot be cached per type)."""
        needs = self._needs_event
        return any(needs[p] for p in self.candidates(event_type))

    def match_lazy(self, event_type: str, load: Callable[[], Event]) -> tuple[int, ...]:
        """Like :meth:`match`, decoding the event (``load()``) only if some candidate needs more than its type."""
        candidates = self.candidates(event_type)
        if not candidates:
            return candidates
        needs = self._needs_event
        if not any(needs[p] for p in candidates):
            return candidates
        event = load()
        return tuple(p for p in candidates if not needs[p] or self.matchers[p].matches(event))
