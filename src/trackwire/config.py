"""One validated configuration: a TOML file, with ``TRACKWIRE_*`` environment overrides.

Unknown keys and wrong types stop start-up with the file, the key path and the reason.
Relative paths in the file are relative to the file's folder.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from trackwire.errors import ConfigError

__all__ = [
    "AutomationSettings",
    "DemoSettings",
    "EngineSettings",
    "FtrackSettings",
    "HookSettings",
    "HostedActionsSettings",
    "KitsuSettings",
    "LogSettings",
    "PluginPathSettings",
    "Settings",
    "ShotgridEmailSettings",
    "ShotgridSettings",
    "StoreSettings",
    "WebSettings",
    "WorkflowSettings",
    "http_origin",
    "load_settings",
]

CONFIG_ENV = "TRACKWIRE_CONFIG"
DEFAULT_FILE = "trackwire.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_HOST = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}\.?|\[[0-9a-f:.]+\]")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_list(value: tuple[str, ...]) -> tuple[str, ...]:
    """Each entry as its origin (see :func:`http_origin`), in order, each once; a bad entry named by index."""
    origins: list[str] = []
    for index, item in enumerate(value):
        try:
            origin = http_origin(item)
        except ValueError as exc:
            raise ValueError(f"entry {index}: {exc}") from None
        if origin not in origins:
            origins.append(origin)
    return tuple(origins)


def http_origin(url: str, *, whole: bool = True) -> str:
    """The origin ``scheme://host[:port]`` of an http(s) URL, lower-cased, a default port left out.

    With ``whole`` the URL must be an origin and nothing more (a trailing ``/`` is accepted); without it
    a path, query and fragment are dropped (a site URL). ``ValueError`` says what is wrong.
    """
    text = url.strip()
    example = "write scheme://host[:port], e.g. https://studio.shotgrid.autodesk.com"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{url!r} is not an origin ({exc}): {example}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc:
        raise ValueError(f"{url!r} is not an http(s) origin: {example}")
    if "@" in parts.netloc:
        raise ValueError(f"{url!r} carries a user name or password: {example}")
    hostname = parts.hostname or ""
    host = f"[{hostname}]" if ":" in hostname else hostname
    if host == "*" or host.startswith("*."):
        raise ValueError(f"{url!r} has a wildcard: name each origin ({example})")
    if not _HOST.fullmatch(host):
        raise ValueError(f"{url!r} does not name a host: {example}")
    if whole and (parts.path not in ("", "/") or parts.query or parts.fragment or text.endswith(("?", "#"))):
        raise ValueError(f"{url!r} has more than an origin (a path, query or fragment): {example}")
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


class StoreSettings(_Section):
    url: str = Field("sqlite:///trackwire.db", description="sqlite:///path (relative to the config file)")


class EngineSettings(_Section):
    max_attempts: int = Field(5, ge=1, description="attempts before a delivery is dead-lettered")
    backoff_base: float = Field(1.0, gt=0, description="first retry waits up to this many seconds")
    backoff_cap: float = Field(300.0, gt=0, description="no retry waits longer than this")
    timeout: float = Field(60.0, gt=0, description="a callback running longer is killed")
    checkpoint_interval: float = Field(0.05, gt=0, description="seconds between durable progress writes")
    persist_after: float = Field(1.0, ge=0, description="unfinished deliveries older than this get a row")
    poll_interval: float = Field(0.005, gt=0, description="how often the log is checked for new events")
    batch_size: int = Field(500, ge=1, description="events handed to a worker process at once")
    max_outstanding: int = Field(20_000, ge=1, description="events a group holds in memory at most")
    shutdown_grace: float = Field(2.5, ge=0, description="seconds running callbacks get on stop (keep it under 4)")
    gc_threshold: int = Field(
        10_000, ge=0, description="allocations between young garbage collections in the daemon (0: leave Python's 700)"
    )


class PluginPathSettings(_Section):
    path: Path = Field(description="a plugin file or a folder of them (*.py, sorted by name)")
    kind: Literal["native", "shotgunevents", "ftrack"] = "native"
    group: str | None = Field(None, description="ordering group; default: one per file (native)")
    policy: Literal["retry", "deactivate"] | None = Field(
        None, description="on failure: retry then dead-letter, or deactivate until the file changes"
    )
    timeout: float | None = Field(None, gt=0)
    max_attempts: int | None = Field(None, ge=1)
    concurrency: int = Field(
        1,
        ge=1,
        le=256,
        description="most callbacks of this group running at once (threads are added while callbacks block)",
    )
    start: Literal["now", "beginning"] | int = Field("now", description="where a new group starts")
    max_memory_mb: int | None = Field(1024, ge=16, description="recycle the worker process above this RSS")
    options: dict[str, Any] = Field(default_factory=dict, description="passed to the plugin as ctx.options")


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    file: Path | None = Field(Path("trackwire.log"), description="rotating log file; empty to disable")
    max_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    backups: int = Field(5, ge=0)
    format: Literal["text", "json"] = "text"

    @field_validator("file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value


class HookSettings(_Section):
    """One generic webhook endpoint: ``POST /hooks/<name>`` appends the JSON body as an event."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="the URL path segment")
    secret: SecretStr | None = Field(None, description="HMAC-SHA256 key; the body's signature is checked")
    token: SecretStr | None = Field(None, description="or a bearer token the sender puts in Authorization")
    secret_env: str | None = Field(None, description="read the HMAC key from this environment variable")
    token_env: str | None = Field(None, description="read the bearer token from this environment variable")
    signature_header: str = Field("X-Hub-Signature-256", description="header carrying sha256=<hex of HMAC>")
    id_field: str | None = Field("id", description="dotted path to the sender's id (idempotency); none: body hash")
    type_field: str | None = Field("type", description="dotted path to the event type")
    default_type: str = Field("webhook", description="event type when the body has none")
    entity_field: str | None = Field(None, description="dotted path to a {type,id} object or 'Type:id' string")
    project_field: str | None = Field(None, description="dotted path to a {type,id} object or 'Type:id' string")
    source: str | None = Field(None, description="the events' source (default: hook:<name>)")

    @model_validator(mode="after")
    def _needs_a_credential(self) -> HookSettings:
        if not (self.secret or self.token or self.secret_env or self.token_env):
            raise ValueError(f"hook {self.name!r} needs secret, token, secret_env or token_env")
        return self


class WebSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8787, ge=0, le=65535)
    token: SecretStr | None = Field(None, description="API/dashboard token (or TRACKWIRE_WEB__TOKEN)")
    tokens: tuple[SecretStr, ...] = Field((), description="more accepted tokens (one per client)")
    username: str = Field("admin", description="dashboard login name")
    password: SecretStr | None = Field(None, description="dashboard password (or TRACKWIRE_WEB__PASSWORD)")
    session_secret: SecretStr | None = Field(None, description="signs login cookies; default: random per start")
    session_hours: float = Field(12.0, gt=0, description="a login lasts this long")
    secure_cookies: bool = Field(False, description="mark cookies Secure (serve behind HTTPS)")
    max_body_bytes: int = Field(1024 * 1024, ge=1, description="larger webhook bodies get 413")
    frame_ancestors: tuple[str, ...] = Field(
        (),
        description="origins (https://host[:port]) that may show the action pages in a frame (ShotGrid's "
        "'Open in Modal Overlay'), besides shotgrid.site's origin",
    )
    hooks: tuple[HookSettings, ...] = ()

    @field_validator("frame_ancestors")
    @classmethod
    def _origins_only(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _origin_list(value)


class WorkflowSettings(_Section):
    paths: tuple[Path, ...] = Field(
        (), description="flow files (*.toml, *.yaml, *.yml, *.py) or folders of them; reloaded when they change"
    )
    workers: int = Field(8, ge=1, le=256, description="workflow steps running at once in the worker process")
    max_concurrent: int = Field(0, ge=0, description="steps running at once over all flows; 0: no limit")
    pools: dict[str, int] = Field(default_factory=dict, description="resource pools and their capacities")
    timeout: float = Field(3600.0, gt=0, description="default step timeout, seconds")


class DemoSettings(_Section):
    enabled: bool = False
    rate: float = Field(5.0, gt=0, description="demo events per second")
    shots: int = Field(12, ge=1)


class ShotgridEmailSettings(_Section):
    """Error emails for shotgunEvents plugins (``reg.setEmails``), as the old daemon sent them."""

    enabled: bool = False
    server: str = Field("localhost", description="SMTP host")
    port: int = Field(25, ge=1, le=65535)
    use_tls: bool = Field(False, description="STARTTLS before logging in")
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field("trackwire@localhost", description="the From address")
    to: tuple[str, ...] = Field((), description="default recipients (reg.setEmails(True))")
    subject: str = Field("[SG]", description="subject prefix")
    min_interval: float = Field(60.0, ge=0, description="at most one email per plugin per this many seconds")


class ShotgridSettings(_Section):
    """The ShotGrid site: EventLogEntry polling, webhooks, and the shotgunEvents plugin host."""

    site: str | None = Field(None, description="https://yourstudio.shotgrid.autodesk.com; empty: no poller")
    script_name: str | None = Field(None, description="the API script the poller reads EventLogEntry with")
    script_key: SecretStr | None = Field(None, description="its key (or TRACKWIRE_SHOTGRID__SCRIPT_KEY)")
    proxy: str | None = Field(None, description="http proxy for every ShotGrid connection")
    source: str = Field("shotgrid", description="source name of the events in the log (poller and webhooks)")
    fetch_interval: float = Field(1.0, gt=0, description="seconds between polls when caught up")
    batch_size: int = Field(500, ge=1, le=5000, description="EventLogEntry rows per read")
    start: Literal["now"] | int = Field("now", description="first run: 'now' (newest id) or an EventLogEntry id")
    backlog_timeout: float = Field(300.0, gt=0, description="seconds a missing id is waited for")
    max_backlog: int = Field(10_000, ge=0, description="missing ids waited for at most (larger gaps are logged)")
    timeout: float = Field(30.0, gt=0, description="socket timeout of one ShotGrid call")
    retry_base: float = Field(1.0, gt=0, description="first wait after a connection error")
    retry_cap: float = Field(60.0, gt=0, description="longest wait between connection attempts")
    use_session_uuid: bool = Field(True, description="plugins' connections call set_session_uuid per event")
    log_dir: Path | None = Field(None, description="one log file per shotgunEvents plugin here (logMode 1)")
    emails: ShotgridEmailSettings = Field(default_factory=ShotgridEmailSettings)
    webhook_secret: SecretStr | None = Field(None, description="secret token of the ShotGrid webhook(s)")


class AutomationSettings(_Section):
    enabled: bool = Field(True, description="evaluate automations (when a folder of definitions is configured)")
    path: Path | None = Field(None, description="folder of automation files (*.toml), reloaded when they change")
    lateness: float = Field(60.0, ge=0, description="seconds a late event may still count; proactive windows wait it")
    sweep_interval: float = Field(1.0, gt=0, description="seconds between proactive window checks")
    max_depth: int = Field(8, ge=1, description="recursion guard: events this many firings deep are not evaluated")
    follow_bound: float = Field(900.0, ge=0, description="seconds an event waits for the event it follows")
    checkpoint_interval: float = Field(
        10.0, gt=0, description="seconds between writes of the whole trigger state (a restart replays the rest)"
    )
    checkpoint_chunk: int = Field(
        2000, ge=1, description="trigger-state rows per transaction of a checkpoint write (other commits go between)"
    )
    action_timeout: float = Field(30.0, gt=0, description="default timeout of one action attempt")
    action_attempts: int = Field(3, ge=1, description="default attempts of an action before it is recorded failed")
    action_backoff: float = Field(1.0, ge=0, description="first retry of an action waits this long (doubling)")
    action_concurrency: int = Field(16, ge=1, description="actions running at once")
    smtp_host: str = "localhost"
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    mail_from: str = "trackwire@localhost"
    slack_token: SecretStr | None = Field(None, description="Slack bot token (or TRACKWIRE_AUTOMATIONS__SLACK_TOKEN)")
    slack_base_url: str = "https://slack.com/api/"


class KitsuSettings(_Section):
    """The Kitsu (zou) event source. Secrets come from here, the environment or a file; they are never logged."""

    enabled: bool = False
    name: str = Field("kitsu", description="the source name stored with each event")
    url: str = Field("http://127.0.0.1:5000", description="zou's API root (with /api behind nginx)")
    event_url: str | None = Field(None, description="socket.io event stream root (default: the API host)")
    token: SecretStr | None = Field(None, description="a bot's token (or TRACKWIRE_KITSU__TOKEN)")
    email: str | None = Field(None, description="log in as this user instead of a token")
    password: SecretStr | None = Field(None, description="the user's password (or TRACKWIRE_KITSU__PASSWORD)")
    secrets_file: Path | None = Field(None, description="a file with KITSU_TOKEN= or KITSU_PASSWORD= lines")
    poll_interval: float = Field(1.0, gt=0, description="seconds between polls of the event log")
    overlap: float = Field(10.0, ge=1, description="seconds of the log re-read each poll to catch late commits")
    page_size: int = Field(1000, ge=1, le=1000, description="events per request (zou caps it at 1000)")
    wakeup: bool = Field(True, description="poll at once when the socket.io event stream says something happened")
    start: Literal["now", "beginning"] = Field("now", description="where a new source starts in zou's log")


class FtrackSettings(_Section):
    """The ftrack event hub: a live subscription (no replay), stored before anything acts on it."""

    server_url: str | None = Field(None, description="https://yourstudio.ftrackapp.com; empty: no ftrack source")
    api_user: str | None = Field(None, description="the user the event hub connects as")
    api_key: SecretStr | None = Field(None, description="its API key (or TRACKWIRE_FTRACK__API_KEY)")
    subscription: str = Field("topic=ftrack.update", description="what the source stores (expression language)")
    source: str = Field("ftrack", description="source name of the events in the log")
    gap_event: bool = Field(True, description="append a trackwire.ftrack.gap event after an outage or a restart")
    plugin_session: Literal["connect", "offline"] = Field(
        "connect", description="ftrack plugins get a connected ftrack_api.Session, or an offline one (no queries)"
    )


class HostedActionsSettings(_Section):
    """Hosted actions (ShotGrid action menu items, ftrack actions, Kitsu custom actions)."""

    path: Path | None = Field(None, description="a file or folder of @action files served under /actions/")
    shotgrid_token: SecretStr | None = Field(
        None, description="secret that ShotGrid action menu item URLs carry as ?token="
    )
    kitsu_token: SecretStr | None = Field(None, description="secret that Kitsu custom action URLs carry as ?token=")
    kitsu_origins: tuple[str, ...] = Field(
        (), description="origins of Kitsu's web client allowed to post is_ajax custom actions (CORS)"
    )
    allow_without_token: bool = Field(
        False, description="serve a tracker's actions with no token set (only on a trusted network)"
    )

    @field_validator("kitsu_origins")
    @classmethod
    def _kitsu_origins_only(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # a browser's Origin header is exactly scheme://host[:port]: an entry with a path or a default port
        # written out would never match it, and every custom action from Kitsu would be refused
        return _origin_list(value)

    job_workers: int = Field(4, ge=1, le=64, description="background actions run at most this many at once")
    job_timeout: float = Field(3600.0, gt=0, description="a background action still running after this many s fails")
    job_retention_days: float = Field(
        30.0, gt=0, description="ended jobs are deleted after this many days (their log events stay)"
    )
    job_heartbeat: float = Field(
        5.0, gt=0, description="running jobs are marked alive this often; 3 missed beats mean the process died"
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRACKWIRE_", env_nested_delimiter="__", extra="forbid", frozen=True)

    store: StoreSettings = Field(default_factory=StoreSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    plugins: tuple[PluginPathSettings, ...] = ()
    log: LogSettings = Field(default_factory=LogSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    demo: DemoSettings = Field(default_factory=DemoSettings)
    workflows: WorkflowSettings = Field(default_factory=WorkflowSettings)
    shotgrid: ShotgridSettings = Field(default_factory=ShotgridSettings)
    automations: AutomationSettings = Field(default_factory=AutomationSettings)
    kitsu: KitsuSettings = Field(default_factory=KitsuSettings)
    ftrack: FtrackSettings = Field(default_factory=FtrackSettings)
    hosted_actions: HostedActionsSettings = Field(default_factory=HostedActionsSettings)
    base_dir: Path = Field(Path("."), exclude=True, description="folder relative paths are resolved in")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file: the file's values arrive as init arguments.
        return (env_settings, init_settings)

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self.base_dir / path

    @property
    def store_url(self) -> str:
        """The store URL with a relative SQLite path made absolute (relative to the config file)."""
        url = self.store.url
        if url.startswith("sqlite:///"):
            return "sqlite:///" + str(self.resolve(Path(url.removeprefix("sqlite:///"))))
        if "://" not in url:
            return "sqlite:///" + str(self.resolve(Path(url)))
        return url


def _format_location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_settings(path: Path | None = None, *, overrides: dict[str, Any] | None = None) -> Settings:
    """Read and validate the configuration.

    ``path`` defaults to ``$TRACKWIRE_CONFIG``, then ``./trackwire.toml``; with no file at all the
    defaults apply (SQLite in the current folder).
    """
    if path is None:
        env = os.environ.get(CONFIG_ENV)
        path = Path(env) if env else Path(DEFAULT_FILE)
        explicit = bool(env)
    else:
        explicit = True
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", path=str(path)) from exc
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc}", path=str(path)) from exc
    elif explicit:
        raise ConfigError("no such file", path=str(path))
    for key, value in (overrides or {}).items():
        section, _, name = key.partition(".")
        if name:
            data.setdefault(section, {})[name] = value
        else:
            data[key] = value
    data["base_dir"] = path.resolve().parent if path.exists() else Path.cwd()
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = "; ".join(f"{_format_location(e['loc'])}: {e['msg']}" for e in exc.errors())
        first = exc.errors()[0]
        raise ConfigError(problems, path=str(path), key=_format_location(first["loc"])) from exc
