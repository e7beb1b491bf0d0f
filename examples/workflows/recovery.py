"""eventor's recovery example: s2 fails on ``math.sqrt(-9)``; the recovery run skips s1 and reruns s2 with 9.

The first run ends in failure; the second, in ``RUN_RECOVER`` mode with the first run's id, keeps
s1's result (it succeeded, so it is skipped), runs s2 again and then s3, which waits for both
``done_step1`` and ``done_step2``.
"""

from __future__ import annotations

import logging
import math
import sys

import trackwire.workflows as evr

logger = logging.getLogger("recovery")


def square(x: float) -> float:
    y = x * x
    logger.info("Square of %s is %s", x, y)
    return y


def square_root(x: float) -> float:
    y = math.sqrt(x)
    logger.info("Square root of %s is %s", x, y)
    return y


def divide(x: float, y: float) -> float:
    z = x / y
    logger.info("dividing %s by %s is %s", x, y, z)
    return z


def build_flow(
    run_mode: evr.RunMode = evr.RUN_RESTART, param: float = 9, run_id: str | None = None,
    store: str = "recovery.trackwire.db",
) -> evr.Workflow:  # fmt: skip
    ev = evr.Workflow(name="recovery", store=store, run_mode=run_mode, run_id=run_id)
    ev1s = ev.add_event("run_step1")
    ev1d = ev.add_event("done_step1")
    ev2s = ev.add_event("run_step2")
    ev2d = ev.add_event("done_step2")
    ev3s = ev.add_event("run_step3", expr=(ev1d, ev2d))
    s1 = ev.add_step("s1", func=square, kwargs={"x": 3}, triggers={evr.STEP_SUCCESS: (ev1d, ev2s)})
    s2 = ev.add_step(
        "s2",
        square_root,
        kwargs={"x": param},
        triggers={evr.STEP_SUCCESS: (ev2d,)},
        recovery={evr.STEP_FAILURE: evr.STEP_RERUN, evr.STEP_SUCCESS: evr.STEP_SKIP},
    )
    s3 = ev.add_step("s3", divide, kwargs={"x": 9, "y": 3})
    ev.add_assoc(ev1s, s1)
    ev.add_assoc(ev2s, s2)
    ev.add_assoc(ev3s, s3)
    ev.trigger_event(ev1s, 3)
    return ev


def construct_and_run(store: str = "recovery.trackwire.db") -> tuple[bool, bool]:
    ev = build_flow(param=-9, store=store)  # fails in step 2
    first = ev.run()
    run_id = ev.run_id
    ev.close()
    ev = build_flow(evr.RUN_RECOVER, param=9, run_id=run_id, store=store)  # rerun in recovery
    second = ev.run()
    ev.close()
    return first, second


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="[ %(asctime)s ][ %(levelname)s ][ %(message)s ]")
    first, second = construct_and_run(*sys.argv[1:])
    sys.exit(0 if (not first and second) else 1)
