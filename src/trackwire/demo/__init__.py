"""The bundled demo (example plugins for the demo source) and the starter files of ``trackwire init``."""

from __future__ import annotations

from pathlib import Path

from trackwire.config import PluginPathSettings

__all__ = ["STARTER_CONFIG", "STARTER_PLUGIN", "demo_plugin_paths"]

PLUGINS = Path(__file__).parent / "plugins"


def demo_plugin_paths() -> tuple[PluginPathSettings, ...]:
    return (PluginPathSettings(path=PLUGINS, options={"folder": "demo-dailies"}),)


STARTER_CONFIG = """\
# Trackwire configuration. Every key is optional; TRACKWIRE_<SECTION>__<KEY> environment variables
# override it (e.g. TRACKWIRE_WEB__PORT=9000). Relative paths are relative to this file.

[store]
# The embedded default: one SQLite file (WAL mode). Keep it on a local disk, not NFS.
url = "sqlite:///trackwire.db"

[engine]
max_attempts = 5          # attempts before a delivery is dead-lettered
backoff_base = 1.0        # first retry waits up to this many seconds...
backoff_cap = 300.0       # ...and no retry waits longer than this
timeout = 60.0            # a callback running longer is killed (its worker process restarts)
shutdown_grace = 2.5      # seconds running callbacks get when the daemon stops (then SIGINT)

# Plugin paths, processed in this order; files in a folder are processed sorted by name.
[[plugins]]
path = "plugins"
# kind = "native"         # or "shotgunevents" for existing shotgunEvents plugin folders
# policy = "retry"        # or "deactivate": stop the plugin until its file changes
# concurrency = 1         # callbacks of this group running at once (different entities)
# start = "now"           # where a new plugin starts: "now", "beginning" or an event id
# options = { folder = "/mnt/projects" }   # given to the plugin as ctx.options

[log]
level = "INFO"
file = "trackwire.log"    # rotating; "" to log to stdout only

[web]
enabled = true
host = "127.0.0.1"
port = 8787
# token = "..."           # or TRACKWIRE_WEB__TOKEN; required to use the dashboard and API

[demo]
enabled = false           # a demo source of ShotGrid-style events
"""

STARTER_PLUGIN = '''\
"""An example plugin: react when a task's status changes."""

from __future__ import annotations

from trackwire import Context, Event, Retry, on


@on("Shotgun_Task_Change", attribute="sg_status_list")
def task_status_changed(event: Event, ctx: Context) -> None:
    ctx.log.info("task %s: %s -> %s", event.entity, event.old, event.new)
    if event.new == "rev" and ctx.attempt == 1 and ctx.options.get("demo_retry"):
        raise Retry("the review room is busy", after=5)
'''
