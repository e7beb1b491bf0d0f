"""What the hosted-action tests share: ShotGrid's action menu item post, and a long action driven step by step."""

from __future__ import annotations

import threading

from trackwire.actions.hosted import Invocation, Outcome

SEQUENCE_AMI = {  # what ShotGrid posts for an action menu item on a Sequence page
    "entity_type": "Sequence",
    "selected_ids": "88",
    "ids": "88,89",
    "project_id": "70",
    "user_id": "42",
    "user_login": "jane.doe",
    "title": "Sequences",
}


class Steps:
    """A long action released step by step by the test (no sleeping: each step waits for its gate)."""

    def __init__(self, count: int) -> None:
        self.gates = [threading.Event() for _ in range(count)]

    def handler(self, inv: Invocation) -> Outcome:
        for number, gate in enumerate(self.gates):
            inv.progress(number / len(self.gates), f"uploading item {number + 1} of {len(self.gates)}")
            gate.wait(60)
        return Outcome(True, f"review session {inv.selected[0]} synced: {len(self.gates)} items")
