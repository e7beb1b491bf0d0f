"""`trackwire import-shotgunevents`: the old conf and id file become a Trackwire config and cursor."""

from __future__ import annotations

import pickle
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.fakes.shotgrid_server import FakeShotgrid
from tests.integration.sg_support import RunningDaemon, records
from trackwire.config import load_settings
from trackwire.store.sqlite import SqliteStore

TRACKWIRE = str(Path(sys.executable).parent / "trackwire")

PLUGIN = """
import json, os

def registerCallbacks(reg):
    reg.registerCallback("trackwire", "secret", seen, None)

def seen(sg, logger, event, args):
    with open(os.environ["SG_RECORD_FILE"], "a") as handle:
        handle.write(json.dumps({"what": __name__.rsplit("_", 1)[-1], "id": event["id"]}) + "\\n")
"""


def write_conf(tmp_path: Path, site: str, id_file: Path, folders: list[Path]) -> Path:
    conf = tmp_path / "shotgunEventDaemon.conf"
    conf.write_text(
        f"""[daemon]
pidFile = {tmp_path}/sed.pid
eventIdFile = {id_file}
logMode = 1
logPath = {tmp_path}/logs
logFile = shotgunEventDaemon
logging = 10
fetch_interval = 2
max_event_batch_size = 250
conn_retry_sleep = 60
max_conn_retries = 5

[shotgun]
server = {site}
name = trackwire
key = %(SG_ED_TEST_KEY)s
proxy_server =
use_session_uuid = False

[plugins]
paths = {", ".join(str(f) for f in folders)}

[emails]
enabled = True
server = smtp.example.com
from = daemon@example.com
to = a@example.com, b@example.com
subject = [SG]
"""
    )
    return conf


def make_plugins(tmp_path: Path) -> tuple[Path, Path]:
    first, second = tmp_path / "plugins1", tmp_path / "plugins2"
    for folder, stems in ((first, ("alpha", "beta")), (second, ("gamma",))):
        folder.mkdir()
        for stem in stems:
            (folder / f"{stem}.py").write_text(PLUGIN)
    return first, second


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TRACKWIRE, *args], capture_output=True, text=True, timeout=60, check=False)


def test_the_pickled_id_file_becomes_a_cursor_and_per_plugin_resume_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SG_ED_TEST_KEY", "from-env")
    first, second = make_plugins(tmp_path)
    expiry = datetime.now() + timedelta(minutes=3)
    id_file = tmp_path / "sed.id"
    state = {str(first): {"alpha": (120, {}), "beta": (100, {97: expiry})}, str(second): {"gamma": (110, {})}}
    id_file.write_bytes(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
    conf = write_conf(tmp_path, "https://studio.example.com", id_file, [first, second])
    result = run_cli("import-shotgunevents", str(conf), "-o", str(tmp_path / "trackwire.toml"))
    assert result.returncode == 0, result.stderr
    assert "resumes after EventLogEntry 96" in result.stdout

    settings = load_settings(tmp_path / "trackwire.toml")
    sg = settings.shotgrid
    assert (sg.site, sg.script_name, sg.script_key, sg.fetch_interval, sg.batch_size) == (
        "https://studio.example.com", "trackwire", None, 2.0, 250
    )  # fmt: skip
    assert sg.use_session_uuid is False and sg.log_dir == tmp_path / "logs"
    assert sg.emails.enabled and sg.emails.to == ("a@example.com", "b@example.com")
    assert settings.log.level == "DEBUG"
    assert [(p.path, p.kind) for p in settings.plugins] == [(first, "shotgunevents"), (second, "shotgunevents")]
    assert settings.plugins[0].options["resume"] == {
        "alpha": {"after": 120, "backlog": []},
        "beta": {"after": 100, "backlog": [97]},
    }
    assert settings.plugins[1].options["resume"] == {"gamma": {"after": 110, "backlog": []}}
    assert "TRACKWIRE_SHOTGRID__SCRIPT_KEY" in (tmp_path / "trackwire.toml").read_text()
    store = SqliteStore(tmp_path / "trackwire.db")
    cursor = store.get_cursor("shotgrid")
    store.close()
    assert cursor["last_id"] == 96
    assert list(cursor["backlog"]) == ["97"]


def test_each_plugin_resumes_exactly_where_it_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeShotgrid() as fake:
        ids = fake.add_events(12)  # 1..12
        first, second = make_plugins(tmp_path)
        id_file = tmp_path / "sed.id"
        state = {str(first): {"alpha": (8, {}), "beta": (5, {})}, str(second): {"gamma": (10, {4: datetime.now()})}}
        id_file.write_bytes(pickle.dumps(state, protocol=2))
        conf = write_conf(tmp_path, fake.url, id_file, [first, second])
        assert run_cli("import-shotgunevents", str(conf), "-o", str(tmp_path / "trackwire.toml")).returncode == 0
        monkeypatch.setenv("SG_RECORD_FILE", str(tmp_path / "record.jsonl"))
        monkeypatch.setenv("TRACKWIRE_SHOTGRID__SCRIPT_KEY", "secret")
        settings = load_settings(tmp_path / "trackwire.toml", overrides={"web.enabled": False, "log.file": ""})
        quiet = type(settings.shotgrid.emails)()  # no SMTP server here
        settings = settings.model_copy(
            update={"shotgrid": settings.shotgrid.model_copy(update={"fetch_interval": 0.1, "emails": quiet})}
        )
        with RunningDaemon(settings):
            wait_for(lambda: sum(1 for r in records(tmp_path / "record.jsonl") if r["id"] == ids[-1]) == 3, 60)
    got: dict[str, list[int]] = {}
    for r in records(tmp_path / "record.jsonl"):
        got.setdefault(r["what"], []).append(r["id"])
    got = {k: sorted(v) for k, v in got.items()}  # different shots run in parallel
    assert got["alpha"] == list(range(9, 13))
    assert got["beta"] == list(range(6, 13))
    assert got["gamma"] == [4, *range(11, 13)]  # its backlog id 4 is delivered again, as shotgunEvents would


@pytest.mark.parametrize(("content", "reason"), [(b"", "empty"), (b"\x80\x05garbage", "corrupt")])
def test_an_empty_or_corrupt_id_file_is_reported_and_the_user_chooses_where_to_start(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    first, second = make_plugins(tmp_path)
    id_file = tmp_path / "sed.id"
    id_file.write_bytes(content)
    conf = write_conf(tmp_path, "https://studio.example.com", id_file, [first, second])
    output = tmp_path / "trackwire.toml"
    result = run_cli("import-shotgunevents", str(conf), "-o", str(output))
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert reason in message and "--start now" in message
    assert not output.exists()

    chosen = run_cli("import-shotgunevents", str(conf), "-o", str(output), "--start", "4242")
    assert chosen.returncode == 0, chosen.stderr
    assert load_settings(output).shotgrid.start == 4242


def test_the_legacy_plain_integer_id_file_resumes_every_plugin_after_it(tmp_path: Path) -> None:
    first, second = make_plugins(tmp_path)
    id_file = tmp_path / "sed.id"
    id_file.write_text("31337\n")
    conf = write_conf(tmp_path, "https://studio.example.com", id_file, [first, second])
    result = run_cli("import-shotgunevents", str(conf), "-o", str(tmp_path / "trackwire.toml"))
    assert result.returncode == 0, result.stderr
    store = SqliteStore(tmp_path / "trackwire.db")
    assert store.get_cursor("shotgrid")["last_id"] == 31337
    store.close()


def test_a_conf_reading_an_unset_environment_variable_names_the_variable_and_the_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """shotgunEvents' own example conf reads ``server = %(SG_ED_SITE_URL)s`` from the environment."""
    first, second = make_plugins(tmp_path)
    conf = write_conf(tmp_path, "%(SG_ED_SITE_URL_UNSET_HERE)s", tmp_path / "sed.id", [first, second])
    monkeypatch.delenv("SG_ED_SITE_URL_UNSET_HERE", raising=False)
    result = run_cli("import-shotgunevents", str(conf), "-o", str(tmp_path / "trackwire.toml"), "--start", "now")
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert "[shotgun] server" in message, message
    assert "environment variable SG_ED_SITE_URL_UNSET_HERE" in message and "not set" in message, message

    monkeypatch.setenv("SG_ED_SITE_URL_UNSET_HERE", "https://studio.example.com")
    monkeypatch.setenv("SG_ED_TEST_KEY", "from-env")
    result = run_cli("import-shotgunevents", str(conf), "-o", str(tmp_path / "trackwire.toml"), "--start", "now")
    assert result.returncode == 0, result.stderr
    assert load_settings(tmp_path / "trackwire.toml").shotgrid.site == "https://studio.example.com"
