"""One action API for every tracker, and the adapters that read each tracker's invocation.

An action is plain data plus a handler::

    from trackwire.actions.hosted import Field, Invocation, Outcome, action

    @action("loco.batch-create", label="Batch Create", entity_types=("Project", "Sequence", "show"),
            form=(Field("pattern", "Naming pattern", value="sh{:04d}"), Field("first", "First", "number", 10)))
    def batch_create(inv: Invocation) -> Outcome:
        ...
        return Outcome(True, f"created {n} shots")

The adapters turn what a tracker sends into an :class:`Invocation` (ShotGrid's form-encoded action
menu item POST, ftrack's ``ftrack.action.launch`` event, Kitsu's custom-action POST), and an action's
answer back into what that tracker expects (an HTML page or form; an ftrack reply or form; JSON).
Everything here is pure: the web layer and the ftrack plugin host do the I/O.
"""

from __future__ import annotations

import fnmatch
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

from trackwire.errors import TrackwireError

__all__ = [
    "ACTIONS_ATTRIBUTE",
    "KITSU_FIELDS",
    "Action",
    "ActionError",
    "Field",
    "Invocation",
    "JobCancelled",
    "Outcome",
    "action",
    "collect",
    "from_ftrack",
    "from_kitsu",
    "from_shotgrid",
    "ftrack_discover_items",
    "ftrack_reply",
    "ftrack_subscribe",
]

ACTIONS_ATTRIBUTE = "__trackwire_action__"
Selection = Literal["any", "one", "many"]
F = TypeVar("F", bound=Callable[..., Any])


class ActionError(TrackwireError, ValueError):
    """An invocation that cannot be understood (a malformed post): the caller answers 400."""


class JobCancelled(TrackwireError):
    """This job is no longer running (it timed out, or its runner stopped): the handler should return now."""


@dataclass(frozen=True)
class Field:
    """One form input: ``text``, ``number``, ``boolean``, ``enumerator`` (with ``choices``), ``hidden``."""

    name: str
    label: str = ""
    type: Literal["text", "textarea", "number", "boolean", "enumerator", "hidden"] = "text"
    value: Any = None
    choices: tuple[tuple[str, str], ...] = ()  # (label, value)
    required: bool = False

    def coerce(self, raw: Any) -> Any:
        """The submitted value in this field's type, or :class:`ActionError`."""
        if raw is None or raw == "":
            if self.required:
                raise ActionError(f"{self.label or self.name} is required")
            return self.value if raw is None else raw
        if self.type == "number":
            try:
                number = float(raw)
            except (TypeError, ValueError):
                raise ActionError(f"{self.label or self.name} must be a number, got {raw!r}") from None
            return int(number) if number.is_integer() else number
        if self.type == "boolean":
            return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "on", "yes")
        if self.type == "enumerator" and self.choices and str(raw) not in {v for _, v in self.choices}:
            raise ActionError(f"{self.label or self.name}: {raw!r} is not one of the choices")
        return raw


@dataclass(frozen=True)
class Invocation:
    """Who invoked which action on what, in one shape for every tracker."""

    tracker: Literal["shotgrid", "ftrack", "kitsu"]
    action: str
    entity_type: str
    selected: tuple[str | int, ...]
    user_id: str | int | None = None
    user_login: str | None = None
    project_id: str | int | None = None
    values: Mapping[str, Any] | None = None  # None: the form was not submitted yet
    payload: Mapping[str, Any] = field(default_factory=dict)
    reporter: Callable[[float, str], None] | None = field(default=None, compare=False, repr=False)

    def progress(self, fraction: float, message: str = "") -> None:
        """Tell the user how far the action is (0..1) and what it does now.

        Shown on the job's page while a background action runs. Raises :class:`JobCancelled` once the
        job timed out or its runner stops: let it propagate (or return). Does nothing for an action
        run inline.
        """
        if self.reporter is not None:
            self.reporter(fraction, message)

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any]) -> Invocation:
        """The invocation :meth:`summary` describes (how a queued job is run again from the store)."""
        user = summary.get("user") or {}
        values = summary.get("values")
        return cls(
            summary["tracker"],
            str(summary["action"]),
            str(summary.get("entity_type") or ""),
            tuple(summary.get("selected") or ()),
            user.get("id"),
            user.get("login"),
            summary.get("project_id"),
            dict(values) if isinstance(values, Mapping) else None,
            dict(summary.get("payload") or {}),
        )

    def summary(self) -> dict[str, Any]:
        """What is recorded in the log (the event's ``data``)."""
        return {
            "tracker": self.tracker,
            "action": self.action,
            "entity_type": self.entity_type,
            "selected": list(self.selected),
            "user": {"id": self.user_id, "login": self.user_login},
            "project_id": self.project_id,
            "values": dict(self.values) if self.values is not None else None,
            "payload": dict(self.payload),
        }


@dataclass(frozen=True)
class Outcome:
    success: bool
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


Handler = Callable[[Invocation], Outcome | str | None]


@dataclass(frozen=True)
class Action:
    identifier: str
    label: str
    handler: Handler
    description: str = ""
    icon: str | None = None
    entity_types: tuple[str, ...] = ("*",)  # names or globs, compared case-insensitively
    selection: Selection = "any"
    form: tuple[Field, ...] | None = None
    background: bool = False  # a long action: answered at once, run as a job with progress
    timeout: float | None = None  # a background job still running after this many s fails (default: settings)
    rerun_interrupted: bool = False  # safe to repeat: a job cut off by a crash runs again (at most 3 times)

    def applies_to(self, entity_type: str, count: int) -> bool:
        typed = any(fnmatch.fnmatch(entity_type.lower(), p.lower()) for p in self.entity_types)
        sized = self.selection == "any" or (self.selection == "one" and count == 1) or (self.selection == "many")
        return typed and sized and (count > 0 or self.selection == "any")

    def needs_form(self, invocation: Invocation) -> bool:
        return bool(self.form) and invocation.values is None

    def prepare(self, invocation: Invocation) -> Invocation:
        """The invocation with its form values in their fields' types, or :class:`ActionError`."""
        values = invocation.values
        if not self.form or values is None:
            return invocation
        return replace(invocation, values={f.name: f.coerce(values.get(f.name)) for f in self.form})

    def run(self, invocation: Invocation) -> Outcome:
        """Coerce the form values, call the handler, and turn what it returns into an :class:`Outcome`."""
        result = self.handler(self.prepare(invocation))
        if isinstance(result, Outcome):
            return result
        return Outcome(True, "" if result is None else str(result))


def action(
    identifier: str,
    *,
    label: str,
    description: str = "",
    icon: str | None = None,
    entity_types: Sequence[str] = ("*",),
    selection: Selection = "any",
    form: Sequence[Field] | None = None,
    background: bool = False,
    timeout: float | None = None,
    rerun_interrupted: bool = False,
) -> Callable[[F], F]:
    """Declare the decorated function an action (found by :func:`collect` when its file is loaded).

    ``background=True`` marks a long action: the tracker is answered at once with a link to the job's
    page, the handler runs as a job and reports with ``inv.progress(fraction, message)``; ``timeout``
    bounds it and ``rerun_interrupted=True`` lets a job cut off by a crash run again.
    """

    def decorate(fn: F) -> F:
        spec = Action(
            identifier,
            label,
            fn,
            description,
            icon,
            tuple(entity_types),
            selection,
            tuple(form or ()) or None,
            background=background,
            timeout=timeout,
            rerun_interrupted=rerun_interrupted,
        )
        setattr(fn, ACTIONS_ATTRIBUTE, spec)
        return fn

    return decorate


def collect(namespace: Mapping[str, Any]) -> dict[str, Action]:
    """The actions declared in a module's namespace, by identifier."""
    found: dict[str, Action] = {}
    for value in namespace.values():
        spec = getattr(value, ACTIONS_ATTRIBUTE, None)
        if isinstance(spec, Action):
            if spec.identifier in found:
                raise ActionError(f"two actions are both called {spec.identifier!r}")
            found[spec.identifier] = spec
    return found


# -- ShotGrid action menu items ---------------------------------------------------------------------

_SG_VALUE_PREFIX = "value."


def _ints(text: str, name: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ActionError(f"{name} must be comma-separated ids, got {text!r}") from None


def from_shotgrid(identifier: str, form: Iterable[tuple[str, str]]) -> Invocation:
    """Read an action menu item POST (``application/x-www-form-urlencoded``).

    The fields are those of ShotGrid's developer guide ("Custom Action Menu Items", Payload contents):
    ``user_id``, ``user_login``, ``entity_type``, ``selected_ids``, ``ids``, ``title``, ``page_id``,
    ``server_hostname``, ``referrer_path``, ``session_uuid``, ``cols``, ``column_display_names``,
    ``view``, ``sort_*``, ``grouping_*``, and ``project_id``/``project_name`` when all the page's
    entities share a project. All of them are kept in the payload. ``cols`` arrives once per column
    (python-api's ``ShotgunAction`` example) or comma-separated (the guide): both give one list.

    Form values submitted back from our own form page are the fields named ``value.<name>``.
    """
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    for key, value in form:
        if key.startswith(_SG_VALUE_PREFIX):
            values[key[len(_SG_VALUE_PREFIX) :]] = value
        elif key == "cols":  # one field per column (python-api's example) or comma-separated (the guide)
            multi.setdefault(key, []).extend(c.strip() for c in value.split(",") if c.strip())
        elif key == "column_display_names":  # display names may hold commas: never split
            multi.setdefault(key, []).append(value)
        else:
            single[key] = value
    entity_type = single.get("entity_type", "").strip()
    if not entity_type:
        raise ActionError("entity_type is missing")
    if "user_id" not in single and "user_login" not in single:
        raise ActionError("user_id and user_login are missing")
    selected = _ints(single.get("selected_ids", ""), "selected_ids")
    user_id = _ints(single["user_id"], "user_id")[0] if single.get("user_id") else None
    project_id = _ints(single["project_id"], "project_id")[0] if single.get("project_id") else None
    payload: dict[str, Any] = {**single, **multi}
    submitted = values if values or single.get("submitted") == "1" else None
    return Invocation(
        "shotgrid", identifier, entity_type, selected, user_id, single.get("user_login"), project_id, submitted, payload
    )


# -- ftrack actions ---------------------------------------------------------------------------------


def _ftrack_selection(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    selection = data.get("selection")
    if selection is None:
        selection = (data.get("context") or {}).get("selection")  # older clients
    return [s for s in selection or () if isinstance(s, Mapping)]


def ftrack_discover_items(actions: Iterable[Action], event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The reply to ``ftrack.action.discover``: the items that apply to the selection (or ``None``)."""
    selection = _ftrack_selection(event.get("data") or {})
    kind = str(selection[0].get("entityType", "")) if selection else ""
    items = [
        {"label": a.label, "description": a.description, "icon": a.icon, "actionIdentifier": a.identifier}
        for a in actions
        if a.applies_to(kind, len(selection))
    ]
    return {"items": items} if items else None


def from_ftrack(event: Mapping[str, Any]) -> Invocation:
    data = event.get("data") or {}
    selection = _ftrack_selection(data)
    user = (event.get("source") or {}).get("user") or {}
    values = data.get("values")
    return Invocation(
        "ftrack",
        str(data.get("actionIdentifier") or ""),
        str(selection[0].get("entityType", "")) if selection else "",
        tuple(str(s.get("entityId")) for s in selection),
        user.get("id"),
        user.get("username"),
        None,
        dict(values) if isinstance(values, Mapping) else None,
        {"id": event.get("id"), "topic": event.get("topic")},
    )


Submit = Callable[[Action, Invocation], str]  # queue a background action; returns its job page's URL


def ftrack_reply(act: Action, invocation: Invocation, submit: Submit | None = None) -> dict[str, Any]:
    """Run the action for an ``ftrack.action.launch``: a form first if it has one, then the result.

    A background action is queued with ``submit`` (see :class:`trackwire.actions.jobs.JobQueue`) and
    answered at once with its job page's URL; without ``submit`` it runs here, inline.
    """
    if act.needs_form(invocation):
        items = [
            {"type": f.type, "label": f.label or f.name, "name": f.name, "value": f.value}
            | ({"data": [{"label": lbl, "value": v} for lbl, v in f.choices]} if f.choices else {})
            for f in act.form or ()
        ]
        return {"title": act.label, "items": items}
    try:
        if act.background and submit is not None:
            url = submit(act, act.prepare(invocation))
            return {"success": True, "message": f"{act.label} started in the background; its progress: {url}"}
        outcome = act.run(invocation)
    except ActionError as exc:
        return {"success": False, "message": str(exc)}
    return {"success": outcome.success, "message": outcome.message}


# -- Kitsu custom actions ---------------------------------------------------------------------------


# The fields Kitsu's web client posts (cgwire/kitsu, src/components/tops/ActionPanel.vue): a custom
# action registered with is_ajax false is a hidden HTML form posted form-encoded into a new tab; with
# is_ajax true the same facts are posted as JSON (superagent, with credentials) under other names, and
# the answer is not shown to the user. (form name, JSON name, what it holds)
KITSU_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("personid", "userid", "the invoking person's id"),
    ("personemail", "useremail", "the person's email"),
    ("projectid", "productionid", "the current production's id"),
    ("currentpath", "originurl", "the web client's route, /productions/<id>/shots for example"),
    ("currentserver", "originserver", "the web client's host (window.location.host)"),
    ("selection", "selection", "the selected task ids: comma-separated in the form, a list in JSON"),
    ("entitytype", "entitytype", "the page's kind of entity: asset, shot, sequence, edit or episode"),
)


def _kitsu_ids(raw: Any) -> tuple[str, ...]:
    parts = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(parts, list | tuple):
        raise ActionError(f"selection must be task ids, got {raw!r}")
    ids = []
    for part in parts:
        if not isinstance(part, str):
            raise ActionError(f"selection must be task ids, got {part!r}")
        if not part.strip():
            continue
        try:
            uuid.UUID(part.strip())
        except ValueError:
            raise ActionError(f"selection must be Kitsu task ids (UUIDs), got {part.strip()!r}") from None
        ids.append(part.strip())
    return tuple(ids)


def from_kitsu(identifier: str, body: Mapping[str, Any] | Iterable[tuple[str, str]]) -> Invocation:
    """Read a Kitsu custom-action post: the form fields (a mapping or ``(name, value)`` pairs) or the JSON object.

    The selection is always **tasks** (Kitsu offers custom actions on selected tasks), so the
    invocation's ``entity_type`` is ``Task``; the page's kind of entity (``shot``, ``asset``, ...) is
    kept in the payload as ``entitytype``. Values of our own form, posted back, are the fields named
    ``value.<name>`` (or a JSON object ``values``).
    """
    if isinstance(body, Mapping):
        fields: dict[str, Any] = dict(body)
    else:
        fields = {}
        for key, value in body:
            fields[key] = value
    if not fields:
        raise ActionError("the post is empty: Kitsu sends personid, selection and entitytype")
    values: dict[str, Any] = {
        k[len(_SG_VALUE_PREFIX) :]: v for k, v in fields.items() if k.startswith(_SG_VALUE_PREFIX)
    }
    payload = {
        k: v for k, v in fields.items() if not k.startswith(_SG_VALUE_PREFIX) and k not in ("submitted", "values")
    }

    def pick(form_name: str, json_name: str) -> Any:
        value = fields.get(form_name)
        return fields.get(json_name) if value is None else value

    person, email, project = (
        pick("personid", "userid"),
        pick("personemail", "useremail"),
        pick("projectid", "productionid"),
    )
    if not person and not email:
        raise ActionError("personid (userid) and personemail (useremail) are missing: who invoked the action?")
    if "selection" not in fields:
        raise ActionError("selection is missing")
    if not str(fields.get("entitytype") or "").strip():
        raise ActionError("entitytype is missing")
    for name, value in (("personid", person), ("personemail", email), ("projectid", project)):
        if value is not None and not isinstance(value, str):
            raise ActionError(f"{name} must be text, got {value!r}")
    submitted = fields.get("values")
    if submitted is not None and not isinstance(submitted, Mapping):
        raise ActionError("values must be an object")
    if isinstance(submitted, Mapping):
        values.update(submitted)
    form_sent = bool(values) or fields.get("submitted") in ("1", 1, True)
    return Invocation(
        "kitsu",
        identifier,
        "Task",
        _kitsu_ids(fields["selection"]),
        person or None,
        email or None,
        project or None,
        values if form_sent else None,
        payload,
    )


def ftrack_subscribe(
    session: Any, actions: Mapping[str, Action], username: str | None = None, submit: Submit | None = None
) -> None:
    """Serve ``actions`` to ftrack from a plugin's ``register(session)``: discover and launch, as ftrack does.

    With ``username`` the subscriptions carry ftrack's usual ``source.user.username=`` condition; with
    ``submit`` background actions are queued as jobs for the daemon's job runner.
    """
    who = f" and source.user.username={username}" if username else ""

    def discover(event: Mapping[str, Any]) -> dict[str, Any] | None:
        return ftrack_discover_items(actions.values(), event)

    def launch(event: Mapping[str, Any]) -> dict[str, Any] | None:
        invocation = from_ftrack(event)
        act = actions.get(invocation.action)
        return None if act is None else ftrack_reply(act, invocation, submit)

    session.event_hub.subscribe("topic=ftrack.action.discover" + who, discover)
    session.event_hub.subscribe("topic=ftrack.action.launch" + who, launch)
