"""The poller's shotgun-api3 client: the real one, with a one-pass inbound conversion of date-times."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, TypeVar

from shotgun_api3.shotgun import Shotgun

__all__ = ["PollerShotgun"]

T = TypeVar("T")

_UNSEEN = object()


class _DateTimes:
    """shotgun-api3's inbound date-time rule, answered once per distinct string.

    shotgun-api3 turns every 20-character string matching its date-time pattern into a datetime
    (``strptime("%Y-%m-%dT%H:%M:%SZ")``, a string it cannot parse stays a string) and then moves it
    into its ``LocalTimezone``. Here the same strings become the same instants, kept in UTC: far
    cheaper (``LocalTimezone`` calls ``mktime`` for every offset) and what the log stores anyway;
    plugins get them back in local time (:func:`trackwire.plugins.shotgunevents.sg_event_dict`).
    """

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self._match = pattern.match
        self._known: dict[str, datetime | None] = {}

    def __call__(self, text: str) -> datetime | None:
        """The datetime for ``text`` (20 characters long), or None if shotgun-api3 leaves it a string."""
        known = self._known.get(text, _UNSEEN)
        if known is not _UNSEEN:
            return known  # type: ignore[return-value]
        value: datetime | None = None
        if self._match(text):
            try:
                value = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            except ValueError:
                value = None
        if len(self._known) >= 8192:
            self._known.clear()
        self._known[text] = value
        return value

    def convert(self, data: Any) -> None:
        """Convert, in place, every date-time string inside freshly decoded JSON (dicts, lists, scalars)."""
        if type(data) is dict:
            for key, value in data.items():
                kind = type(value)
                if kind is str:
                    if len(value) == 20:
                        moment = self(value)
                        if moment is not None:
                            data[key] = moment
                elif kind is dict or kind is list:
                    self.convert(value)
        elif type(data) is list:
            for index, value in enumerate(data):
                kind = type(value)
                if kind is str:
                    if len(value) == 20:
                        moment = self(value)
                        if moment is not None:
                            data[index] = moment
                elif kind is dict or kind is list:
                    self.convert(value)


class PollerShotgun(Shotgun):
    """The real shotgun-api3 client, with one change: answers' date-times come back in UTC, in one pass.

    Everything else (requests, authentication, errors, paging, ``_parse_records``) is shotgun-api3's
    own. Its generic inbound walk rebuilds every dict and list and converts each date-time through
    ``LocalTimezone``; at catch-up speed that walk was two thirds of the poller's time.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._datetimes = _DateTimes(self._DATE_TIME_PATTERN)

    def _transform_inbound(self, data: T) -> T:
        if not self.config.convert_datetimes_to_utc:
            return super()._transform_inbound(data)  # naive date-times: shotgun-api3's own rule
        if isinstance(data, str):
            moment = self._datetimes(data) if len(data) == 20 else None
            return data if moment is None else moment  # type: ignore[return-value]
        self._datetimes.convert(data)
        return data
