"""The shotgunEventDaemon.conf with which the baselines run shotgunEvents' own daemon against the fake site.

Used by ``benchmarks/shotgrid_catchup.py`` and ``scripts/compare_shotgunevents.py``: its log in ``folder``,
its id file ``folder/sed.id``, no emails, no session uuids, fetching every second 500 at a time.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["shotgunevents_conf"]

_CONF = """[daemon]
pidFile = {folder}/sed.pid
eventIdFile = {folder}/sed.id
logMode = 0
logPath = {folder}
logFile = sed.log
logging = {level}
timing_log = off
conn_retry_sleep = 60
max_conn_retries = 5
fetch_interval = 1
max_event_batch_size = 500
[shotgun]
server = {url}
name = {name}
key = {key}
proxy_server =
use_session_uuid = False
[plugins]
paths = {plugins}
[emails]
enabled = False
"""


def shotgunevents_conf(folder: Path, url: str, plugins: str, *, name: str, key: str, level: int) -> str:
    """``plugins``: the folders, comma-separated; ``level``: the logging level as a number (20 = INFO)."""
    return _CONF.format(folder=folder, url=url, plugins=plugins, name=name, key=key, level=level)
