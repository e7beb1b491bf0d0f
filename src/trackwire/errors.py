"""Trackwire's exceptions, one tree, each docstring its default message.

    TrackwireError
    ├── ConfigError            a configuration file or value is wrong (carries path and key)
    ├── StoreError             the event store cannot be opened or written
    │   └── MigrationError     the store's schema is newer than this Trackwire, or a migration failed
    ├── PluginError            a plugin file failed to load (carries path and line)
    └── SourceError            a tracker cannot be read (carries the source name)

Plugin authors say what should happen next by raising an outcome (these are not errors of ours):

    Retry(after=30)   try this event again in 30 s (counts as an attempt)
    Fail("reason")    give up now: dead-letter this event without retrying
    Skip("reason")    this event is not for me: count it as handled
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "Fail",
    "MigrationError",
    "Outcome",
    "PluginError",
    "Retry",
    "Skip",
    "SourceError",
    "StoreError",
    "TrackwireError",
]


class TrackwireError(Exception):
    """Trackwire failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigError(TrackwireError):
    """The configuration is not valid."""

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        where = ", ".join(part for part in (path, f"key {key}" if key else None) if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.key = key


class StoreError(TrackwireError):
    """The event store failed."""


class MigrationError(StoreError):
    """The event store's schema cannot be brought up to date."""


class PluginError(TrackwireError):
    """A plugin failed to load."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        where = f"{path}:{line}" if path and line else path
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.line = line


class SourceError(TrackwireError):
    """A tracker could not be read."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(f"source {source}: {message}" if source else message)
        self.source = source


class Outcome(Exception):
    """Base of the outcomes a plugin callback can raise to steer its delivery."""


class Retry(Outcome):
    """Run this event again later."""

    def __init__(self, reason: str = "retry requested", *, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


class Fail(Outcome):
    """Dead-letter this event now, without further attempts."""


class Skip(Outcome):
    """Count this event as handled without doing anything."""
