"""Hot reload: watch the plugin paths, check a changed file compiles, then reload its group.

A file with a syntax error is reported with its line and the previous version keeps running.
Set ``WATCHFILES_FORCE_POLLING=1`` where plugins live on NFS (inotify misses other hosts' writes).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import watchfiles

if TYPE_CHECKING:
    from trackwire.runtime.daemon import Daemon

__all__ = ["check_syntax", "watch"]

log = logging.getLogger("trackwire.reload")


def check_syntax(path: str) -> str | None:
    """``None`` if the file compiles, else a message naming the file and line."""
    try:
        source = Path(path).read_bytes()
        compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return f"{path}:{exc.lineno}: SyntaxError: {exc.msg}"
    except OSError as exc:
        return f"{path}: cannot read: {exc}"
    return None


async def watch(daemon: Daemon) -> None:
    roots = []
    for entry in daemon.settings.plugins:
        root = daemon.settings.resolve(entry.path)
        if root.exists():
            roots.append(root)
    if not roots:
        return
    async for changes in watchfiles.awatch(
        *roots, stop_event=daemon.stop_event, watch_filter=watchfiles.PythonFilter(), debounce=300
    ):
        changed = {str(Path(path).resolve()) for _, path in changes}
        try:
            await daemon.apply_plugin_changes(changed)
        except Exception:
            log.exception("reloading plugins failed")
