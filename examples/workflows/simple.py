"""eventor's simple example on Trackwire: three steps, each started by the success of the one before.

Run it with ``python examples/workflows/simple.py``; the runs are kept in ``simple.trackwire.db``.
"""

from __future__ import annotations

import logging
import sys

import trackwire.workflows as evr

logger = logging.getLogger("simple")


def prog(progname: str) -> str:
    logger.info("doing what %s is doing", progname)
    return progname


def build_flow(store: str = "simple.trackwire.db") -> evr.Workflow:
    ev = evr.Workflow(name="simple", store=store)
    ev1s = ev.add_event("run_step1")
    ev2s = ev.add_event("run_step2")
    ev3s = ev.add_event("run_step3")
    s1 = ev.add_step("s1", func=prog, kwargs={"progname": "prog1"}, triggers={evr.StepStatus.SUCCESS: (ev2s,)})
    s2 = ev.add_step("s2", func=prog, kwargs={"progname": "prog2"}, triggers={evr.StepStatus.SUCCESS: (ev3s,)})
    s3 = ev.add_step("s3", func=prog, kwargs={"progname": "prog3"})
    ev.add_assoc(ev1s, s1)
    ev.add_assoc(ev2s, s2)
    ev.add_assoc(ev3s, s3)
    ev.trigger_event(ev1s, 1)
    return ev


def construct_and_run(store: str = "simple.trackwire.db") -> bool:
    ev = build_flow(store)
    ok = ev.run()
    ev.close()
    return ok


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="[ %(asctime)s ][ %(levelname)s ][ %(message)s ]")
    sys.exit(0 if construct_and_run(*sys.argv[1:]) else 1)
