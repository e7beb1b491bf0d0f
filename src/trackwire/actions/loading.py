"""Loading action files: every ``*.py`` in a folder (or one file), their ``@action`` functions by identifier."""

from __future__ import annotations

from pathlib import Path

from trackwire.actions.hosted import Action, ActionError, collect
from trackwire.plugins.loader import import_plugin

__all__ = ["load_actions"]


def load_actions(path: Path) -> dict[str, Action]:
    files = [path] if path.is_file() else sorted(p for p in path.glob("*.py") if not p.name.startswith(("_", ".")))
    found: dict[str, Action] = {}
    for file in files:
        module = import_plugin(f"actions_{file.stem}", file)
        for identifier, act in collect(vars(module)).items():
            if identifier in found:
                raise ActionError(f"two actions are both called {identifier!r} ({file})")
            found[identifier] = act
    return found
