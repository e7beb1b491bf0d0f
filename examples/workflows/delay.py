"""eventor's delay example: s2 starts 10 s after s1 succeeds, s3 10 s after s2.

The delays are durable timers: stop the program (or kill it) during a delay and run it again with
``continue``; the timer keeps its original due time and the flow carries on.
"""

from __future__ import annotations

import logging
import sys

import trackwire.workflows as evr

logger = logging.getLogger("delay")


def prog(progname: str) -> str:
    step = evr.current()
    logger.info("doing what %s is doing (sequence %s)", progname, step.sequence if step else "?")
    return progname


def build_flow(
    run_mode: evr.RunMode = evr.RUN_RESTART, delay: float = 10.0, store: str = "delay.trackwire.db",
    run_id: str | None = None,
) -> evr.Workflow:  # fmt: skip
    ev = evr.Workflow(name="delay", store=store, run_mode=run_mode, run_id=run_id)
    ev1s = ev.add_event("run_step1")
    ev2s = ev.add_event("run_step2")
    ev3s = ev.add_event("run_step3")
    s1 = ev.add_step("s1", func=prog, kwargs={"progname": "prog1"}, triggers={evr.STEP_SUCCESS: (ev2s,)})
    s2 = ev.add_step("s2", func=prog, kwargs={"progname": "prog2"}, triggers={evr.STEP_SUCCESS: (ev3s,)})
    s3 = ev.add_step("s3", func=prog, kwargs={"progname": "prog3"})
    ev.add_assoc(ev1s, s1, delay=0)
    ev.add_assoc(ev2s, s2, delay=delay)
    ev.add_assoc(ev3s, s3, delay=delay)
    if run_mode is evr.RUN_RESTART:
        ev.trigger_event(ev1s, 1)
    return ev


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="[ %(asctime)s ][ %(levelname)s ][ %(message)s ]")
    mode = evr.RunMode(sys.argv[1]) if len(sys.argv) > 1 else evr.RUN_RESTART
    flow = build_flow(mode)
    ok = flow.run()
    flow.close()
    sys.exit(0 if ok else 1)
