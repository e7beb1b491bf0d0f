"""Automation files: TOML, validated, turned into core triggers and action specs.

A file holds one or more ``[[automation]]`` tables::

    [[automation]]
    name = "notes-burst"
    [automation.trigger]
    expect = ["Shotgun_Note_New"]
    for_each = ["entity.id"]
    threshold = 5
    within = "10m"
    [[automation.actions]]
    type = "webhook"
    url = "https://hooks.example/notes"
    body = { text = "{{ count }} notes on {{ event.entity }}" }

A trigger with ``triggers`` and ``require`` is compound, with ``triggers`` alone a sequence (or say
``type = "compound" | "sequence" | "event"``). Errors name the file and the key path.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trackwire.core.triggers import (
    Automation,
    CompoundTrigger,
    EventTrigger,
    LabelSpec,
    PredicateError,
    SequenceTrigger,
    Trigger,
    parse_predicate,
)
from trackwire.errors import ConfigError

__all__ = ["ActionSpec", "AutomationFile", "load_file", "load_folder", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as ``"90s"``, ``"10m"``, ``"1.5h"``, ``"2d"``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '10m'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (use seconds or '30s', '10m', '2h', '1d')")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


Duration = Annotated[float, Field(ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Timed(_Model):
    @field_validator("within", mode="before", check_fields=False)
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if value is not None else 0.0


class EventTriggerSpec(_Timed):
    type: Literal["event"] = "event"
    expect: list[str] = Field(default_factory=list)
    after: list[str] = Field(default_factory=list)
    match: dict[str, str | list[str]] = Field(default_factory=dict)
    match_related: dict[str, str | list[str]] | list[dict[str, str | list[str]]] = Field(default_factory=list)
    where: dict[str, Any] | list[Any] | None = None
    for_each: list[str] = Field(default_factory=list)
    posture: Literal["reactive", "proactive"] = "reactive"
    threshold: int = Field(1, ge=1)
    within: Duration = 0.0

    @model_validator(mode="after")
    def _check(self) -> EventTriggerSpec:
        if self.posture == "proactive" and self.within <= 0:
            raise ValueError("a proactive trigger needs a positive 'within'")
        if self.where is not None:
            try:
                parse_predicate(self.where)
            except PredicateError as exc:
                raise ValueError(str(exc)) from exc
        return self

    def build(self) -> EventTrigger:
        related = [self.match_related] if isinstance(self.match_related, dict) else self.match_related
        return EventTrigger(
            expect=tuple(self.expect),
            after=tuple(self.after),
            match=LabelSpec.parse(self.match),
            match_related=tuple(LabelSpec.parse(r) for r in related),
            where=None if self.where is None else parse_predicate(self.where),
            for_each=tuple(self.for_each),
            posture=self.posture,
            threshold=self.threshold,
            within=self.within,
        )


class CompositeSpec(_Timed):
    type: Literal["compound", "sequence"]
    triggers: list[TriggerSpec] = Field(min_length=1)
    require: int | Literal["all", "any"] | None = None
    within: Duration = 0.0

    @model_validator(mode="after")
    def _check(self) -> CompositeSpec:
        if self.type == "sequence" and self.require is not None:
            raise ValueError("a sequence has no 'require'")
        if isinstance(self.require, int) and not 1 <= self.require <= len(self.triggers):
            raise ValueError(f"require must be between 1 and {len(self.triggers)}")
        keys = {tuple(t.for_each) for t in self.triggers if isinstance(t, EventTriggerSpec)}
        if len(keys) > 1:
            raise ValueError("the triggers of a compound or sequence must share the same for_each")
        return self

    def build(self) -> Trigger:
        children = tuple(t.build() for t in self.triggers)
        if self.type == "sequence":
            return SequenceTrigger(children, self.within)
        require = {"all": len(children), "any": 1, None: len(children)}.get(self.require, self.require)  # type: ignore[arg-type]
        return CompoundTrigger(children, int(require or len(children)), self.within)


TriggerSpec = EventTriggerSpec | CompositeSpec


def _discriminate(raw: Any) -> Any:
    if isinstance(raw, dict) and "type" not in raw and "triggers" in raw:
        return {**raw, "type": "compound" if "require" in raw else "sequence"}
    return raw


class ActionSpec(_Model):
    """One action: ``type`` and its parameters (checked by the action itself), plus retry settings."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: Literal["webhook", "slack", "email", "shell", "emit", "plugin"]
    name: str | None = None
    timeout: float | None = Field(None, gt=0)
    attempts: int | None = Field(None, ge=1, le=20)

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class AutomationSpec(_Model):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    description: str = ""
    enabled: bool = True
    allow_self: bool = False
    trigger: TriggerSpec
    actions: list[ActionSpec] = Field(default_factory=list)

    @field_validator("trigger", mode="before")
    @classmethod
    def _infer(cls, value: Any) -> Any:
        def walk(raw: Any) -> Any:
            raw = _discriminate(raw)
            if isinstance(raw, dict) and isinstance(raw.get("triggers"), list):
                return {**raw, "triggers": [walk(t) for t in raw["triggers"]]}
            return raw

        return walk(value)


class AutomationFile(_Model):
    automation: list[AutomationSpec] = Field(default_factory=list)


CompositeSpec.model_rebuild()


def _check_actions(spec: AutomationSpec, path: Path) -> None:
    from trackwire.actions import check_params

    for index, action in enumerate(spec.actions):
        problem = check_params(action.type, action.params())
        if problem:
            raise ConfigError(problem, path=str(path), key=f"automation.{spec.name}.actions[{index}]")


def load_file(path: Path) -> list[Automation]:
    """Read and validate one automation file; raises :class:`ConfigError` naming the file and key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(path)) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc}", path=str(path)) from exc
    try:
        parsed = AutomationFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise ConfigError(problems, path=str(path), key=where) from exc
    out = []
    for spec in parsed.automation:
        _check_actions(spec, path)
        out.append(
            Automation(
                name=spec.name,
                trigger=spec.trigger.build(),
                actions=tuple(a.model_dump(exclude_none=True) for a in spec.actions),
                enabled=spec.enabled,
                description=spec.description,
                allow_self=spec.allow_self,
                source=str(path),
            )
        )
    return out


def load_folder(folder: Path) -> tuple[list[Automation], list[ConfigError]]:
    """Every ``*.toml`` file in ``folder`` (sorted by name). Broken files are reported, not fatal."""
    automations: list[Automation] = []
    errors: list[ConfigError] = []
    seen: dict[str, str] = {}
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
        try:
            loaded = load_file(path)
        except ConfigError as exc:
            errors.append(exc)
            continue
        for automation in loaded:
            if automation.name in seen:
                errors.append(ConfigError(f"automation {automation.name!r} is also defined in {seen[automation.name]}",
                                          path=str(path)))  # fmt: skip
                continue
            seen[automation.name] = str(path)
            automations.append(automation)
    return automations, errors
