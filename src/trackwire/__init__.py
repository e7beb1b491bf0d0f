"""Trackwire: the event daemon for VFX and animation production trackers."""

from __future__ import annotations

from trackwire.__about__ import __version__
from trackwire.core.event import Event, Ref
from trackwire.errors import Fail, Retry, Skip, TrackwireError
from trackwire.plugins.api import Context, on

__all__ = ["Context", "Event", "Fail", "Ref", "Retry", "Skip", "TrackwireError", "__version__", "on"]
