"""Run every benchmark, one after another, printing their figures (``make bench``).

    .venv/bin/python benchmarks/run.py            # engine, ShotGrid catch-up, automations, workflows, Kitsu
    .venv/bin/python benchmarks/run.py --with-web # also the dashboard pages over 1M events (~15 min to fill)
    .venv/bin/python benchmarks/run.py engine     # only the named ones

Figures depend on the machine and on what else runs on it: run them on a quiet machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT = ["engine", "shotgrid_catchup", "automations", "workflows", "kitsu_ingest"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="benchmark modules to run (default: all but web_pages)")
    parser.add_argument("--with-web", action="store_true", help="also run web_pages (fills a 1M-event store)")
    args = parser.parse_args()
    names = args.names or DEFAULT + (["web_pages"] if args.with_web else [])
    failed = []
    for name in names:
        script = HERE / f"{name}.py"
        if not script.exists():
            print(f"## {name}: not in this checkout, skipped\n", flush=True)
            continue
        print(f"## {name}", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(script)])
        print(
            f"## {name}: {'ok' if code == 0 else f'exit code {code}'} in {time.perf_counter() - started:.0f} s\n",
            flush=True,
        )
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
