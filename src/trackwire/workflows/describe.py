"""Read Python flow files in a throwaway process and print their definitions as JSON.

``python -m trackwire.workflows.describe FILE...``: the daemon never imports user code itself. A file
defines flows as module-level :class:`~trackwire.workflows.Workflow` (or ``FlowBuilder``) objects, or
with a ``flows()`` function returning them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from trackwire.plugins.loader import import_plugin
from trackwire.workflows.definition import FlowBuilder, flow_to_json


def describe(path: Path) -> list[dict[str, Any]]:
    module = import_plugin(f"flowdef_{path.stem}", path)
    found: list[FlowBuilder] = [v for v in vars(module).values() if isinstance(v, FlowBuilder)]
    factory = getattr(module, "flows", None)
    if callable(factory):
        found.extend(factory())
    return [flow_to_json(builder.spec()) | {"pools": dict(builder.pools)} for builder in found]


def main(argv: list[str]) -> int:
    out: dict[str, Any] = {}
    for arg in argv:
        try:
            out[arg] = {"flows": describe(Path(arg))}
        except BaseException as exc:  # user code: report anything, SystemExit included
            out[arg] = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
