"""The real Kitsu (zou) the Kitsu tests run against, booted by ``scripts/kitsu-dev``.

Locally the tests skip with the reason when Kitsu cannot be booted (no PostgreSQL, no redis-server,
no PyPI for the first venv); under CI=true they fail.
"""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import skip_or_fail

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "kitsu-dev"


@dataclass(frozen=True)
class KitsuServer:
    url: str
    event_url: str
    email: str
    password: str

    def client(self) -> Any:
        """A gazu client logged in as the admin (its own session, safe to use from one thread)."""
        import gazu

        client = gazu.client.create_client(self.url)
        gazu.log_in(self.email, self.password, client=client)  # type: ignore[no-untyped-call]  # gazu is unannotated
        return client

    def options(self) -> dict[str, Any]:
        return {"url": self.url, "email": self.email, "password": self.password}


def boot() -> KitsuServer:
    try:
        done = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, timeout=840, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        skip_or_fail(f"scripts/kitsu-dev start could not boot Kitsu: {exc}")
        raise
    if done.returncode != 0:
        skip_or_fail(f"scripts/kitsu-dev start could not boot Kitsu: {done.stderr.strip()[-500:]}")
    values = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return KitsuServer(values["KITSU_URL"], values["KITSU_EVENT_URL"], values["KITSU_EMAIL"], values["KITSU_PASSWORD"])


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"
