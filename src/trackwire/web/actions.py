"""Hosted actions over HTTP: ShotGrid action menu items and Kitsu custom actions.

- ``POST /actions/shotgrid/{identifier}``: the action menu item's URL. ShotGrid posts the selection
  form-encoded; with *light payload* it posts only ``event_log_entry_id``, and the payload is read back
  through shotgun-api3 from that ``EventLogEntry``'s ``meta["ami_payload"]`` (the key ShotGrid's
  developer guide names; the name of the posted field is not documented). An action with a form answers with
  an HTML form that posts back here (the original fields hidden, inputs named ``value.<name>``); then,
  or at once without a form, it runs and answers with an HTML result page.
- ``POST /actions/kitsu/{identifier}``: Kitsu's custom action. Kitsu's web client posts its hidden form
  (``personid``, ``personemail``, ``projectid``, ``currentpath``, ``currentserver``, ``selection`` of
  task ids, ``entitytype``) into a new tab, answered like ShotGrid's (an HTML form or result page); or,
  for an action registered ``is_ajax``, JSON (``userid``, ``useremail``, ``productionid``, ``originurl``,
  ``originserver``, ``selection``, ``entitytype``), answered ``{"success", "message"}`` or ``{"form"}``.

A post that cannot be understood is answered 400 with the reason, never 500. Every run is recorded in
the log as a ``trackwire.action.invoked`` event (who, what, selection, values, result).
"""

from __future__ import annotations

import asyncio
import html
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from trackwire.actions.hosted import Action, ActionError, Invocation, from_kitsu, from_shotgrid
from trackwire.actions.jobs import INVOKED_TYPE, JobRunner
from trackwire.actions.loading import load_actions
from trackwire.config import HostedActionsSettings
from trackwire.core.event import Event, Ref
from trackwire.core.jobs import Job
from trackwire.web.action_auth import ActionGate
from trackwire.web.action_jobs import job_json, job_url

if TYPE_CHECKING:
    from trackwire.web.backend import Backend

__all__ = ["INVOKED_TYPE", "actions_router"]

log = logging.getLogger("trackwire.actions")

TICKET_FIELD = "trackwire_ticket"
LIGHT_PAYLOAD_SOURCE = "actions:shotgrid-light-payload"
LIGHT_PAYLOAD_TYPE = "trackwire.action.light_payload_used"
ShotgridReader = Callable[[int], Mapping[str, Any] | None]


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<link rel='stylesheet' href='/static/app.css'></head><body><main class='action'>"
        f"<h1>{html.escape(title)}</h1>{body}</main></body></html>",
        status_code=status,
    )


def _form_page(act: Action, post_to: str, fields: list[tuple[str, str]], ticket: str | None) -> HTMLResponse:
    hidden = "".join(
        f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v)}'>"
        for k, v in fields
        if not k.startswith("value.") and k not in ("submitted", TICKET_FIELD)
    )
    if ticket is not None:
        hidden += f"<input type='hidden' name='{TICKET_FIELD}' value='{html.escape(ticket)}'>"
    inputs = []
    for f in act.form or ():
        name, label = html.escape("value." + f.name), html.escape(f.label or f.name)
        default = "" if f.value is None else html.escape(str(f.value))
        if f.type == "enumerator":
            options = "".join(
                f"<option value='{html.escape(v)}'{' selected' if v == f.value else ''}>{html.escape(lbl)}</option>"
                for lbl, v in f.choices
            )
            control = f"<select id='{name}' name='{name}'>{options}</select>"
        elif f.type == "boolean":
            control = f"<input id='{name}' type='checkbox' name='{name}' value='true'{' checked' if f.value else ''}>"
        elif f.type == "textarea":
            control = f"<textarea id='{name}' name='{name}'>{default}</textarea>"
        else:
            kind = {"number": "number", "hidden": "hidden"}.get(f.type, "text")
            required = " required" if f.required else ""
            control = f"<input id='{name}' type='{kind}' name='{name}' value='{default}'{required}>"
        inputs.append(f"<p><label for='{name}'>{label}</label> {control}</p>")
    body = (
        f"<p>{html.escape(act.description)}</p>"
        f"<form method='post' action='{html.escape(post_to)}'>{hidden}"
        f"<input type='hidden' name='submitted' value='1'>{''.join(inputs)}"
        f"<p><button type='submit'>Run</button></p></form>"
    )
    return _page(act.label, body)


def actions_router(
    backend: Backend,
    actions: Mapping[str, Action] | None = None,
    shotgrid_reader: ShotgridReader | None = None,
    settings: HostedActionsSettings | None = None,
) -> APIRouter:
    """The routes; ``actions`` and ``settings`` default to the daemon's ``[hosted_actions]``."""
    router = APIRouter()
    loaded: dict[str, Mapping[str, Action]] = {}
    if settings is None:
        settings = backend.daemon.settings.hosted_actions if backend.daemon is not None else HostedActionsSettings()
    gate = ActionGate(settings)
    loading = threading.Lock()

    def registry() -> Mapping[str, Action]:
        if actions is not None:
            return actions
        with loading:  # the job runner's threads and requests may ask first at the same time
            if "all" not in loaded:
                daemon = backend.daemon
                path = None if daemon is None else daemon.settings.hosted_actions.path
                loaded["all"] = load_actions(daemon.settings.resolve(path)) if daemon is not None and path else {}
            return loaded["all"]

    def reader() -> ShotgridReader:
        if shotgrid_reader is not None:
            return shotgrid_reader
        daemon = backend.daemon
        if daemon is None or not daemon.settings.shotgrid.site:
            raise ActionError("a light-payload post needs shotgrid.site to read the EventLogEntry")
        return _shotgrid_reader(daemon.settings.shotgrid)

    runners: list[JobRunner] = []
    lock = threading.Lock()

    def runner() -> JobRunner:
        """The job runner, started on first use (at once when the daemon serves configured actions)."""
        with lock:
            if not runners:
                made = JobRunner(
                    backend.jobs,
                    registry,
                    lambda event: backend.store.append([event]),
                    workers=settings.job_workers,
                    timeout=settings.job_timeout,
                    heartbeat=settings.job_heartbeat,
                    retention=settings.job_retention_days * 86400,
                )
                grace = backend.daemon.settings.engine.shutdown_grace if backend.daemon is not None else 5.0
                backend.closers.append(lambda: made.stop(grace))
                made.start()
                runners.append(made)
            return runners[0]

    if backend.daemon is not None and settings.path is not None:
        runner()  # queued jobs run, and jobs a crash cut off are settled, without waiting for a request

    async def run(act: Action, invocation: Invocation) -> Job:
        """Run the action (or queue it, when it is a background one) as a job; a bad value is a 400."""
        invocation = act.prepare(invocation)
        jobs = await asyncio.to_thread(runner)
        if act.background:
            return await asyncio.to_thread(jobs.submit, act, invocation)
        return await asyncio.to_thread(jobs.run_now, act, invocation)

    @router.post("/actions/shotgrid/{identifier}", response_model=None, tags=["actions"])
    async def shotgrid_action(identifier: str, request: Request) -> Response:
        try:
            form = await request.form()
            fields: list[tuple[str, str]] | None = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
        except Exception:  # not a form: refused below, or answered 400 once the caller is known
            fields = None
        ticket = next((v for k, v in fields or () if k == TICKET_FIELD), None)
        refusal = gate.check("shotgrid", request, ticket, identifier)
        if refusal is not None:
            return _page("Not allowed", f"<p class='error'>{html.escape(refusal.message)}</p>", refusal.status)
        act = registry().get(identifier)
        if act is None:
            return _page("Unknown action", f"<p>No action {html.escape(identifier)!s} here.</p>", 404)
        try:
            if fields is None:
                raise ActionError("the body is not a form (application/x-www-form-urlencoded)")
            fields = [(k, v) for k, v in fields if k != TICKET_FIELD]
            keys = {k for k, _ in fields}
            if "event_log_entry_id" in keys and "entity_type" not in keys:
                entry_id = dict(fields)["event_log_entry_id"]
                fields = await asyncio.to_thread(_light_payload, reader(), entry_id)
                if not await asyncio.to_thread(_first_use, backend, identifier, entry_id):
                    message = f"this menu call (EventLogEntry {entry_id}) was handled already: pick the action again"
                    return _page("Already handled", f"<p class='error'>{html.escape(message)}</p>", 409)
            invocation = from_shotgrid(identifier, fields)
            if not act.applies_to(invocation.entity_type, len(invocation.selected)):
                raise ActionError(f"{act.label} does not apply to {invocation.entity_type} with this selection")
            if act.needs_form(invocation):
                return _form_page(act, f"/actions/shotgrid/{identifier}", fields, gate.ticket("shotgrid", identifier))
            job = await run(act, invocation)
        except ActionError as exc:
            return _page("Cannot run this action", f"<p class='error'>{html.escape(str(exc))}</p>", 400)
        if job.background:  # the job's page shows its progress; a reload does not post again
            return RedirectResponse(job_url(job), status_code=303)
        if job.result is None:
            return _page(act.label, f"<p class='error'>The action failed: {html.escape(job.error or '')}</p>", 500)
        state = "succeeded" if job.result["success"] else "failed"
        return _page(act.label, f"<p class='result {state}'>{html.escape(job.result['message'] or state)}</p>")

    @router.post("/actions/kitsu/{identifier}", response_model=None, tags=["actions"])
    async def kitsu_action(identifier: str, request: Request) -> Response:
        """Kitsu's custom action: its web client's hidden form (is_ajax false: answered with an HTML
        page in the new tab it opens, or our form that posts back here) or its JSON post (is_ajax true:
        answered with JSON, which Kitsu does not show)."""
        as_json = request.headers.get("content-type", "").split(";")[0].strip() == "application/json"
        fields: list[tuple[str, str]] | None = None
        if not as_json:
            try:
                form = await request.form()
                fields = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
            except Exception:  # not a form: answered 400 once the caller is known
                fields = None
        ticket = next((v for k, v in fields or () if k == TICKET_FIELD), None)
        refusal = gate.check("kitsu", request, ticket, identifier)
        if refusal is not None:
            if as_json:
                return JSONResponse({"error": refusal.message}, refusal.status)
            return _page("Not allowed", f"<p class='error'>{html.escape(refusal.message)}</p>", refusal.status)
        act = registry().get(identifier)
        if act is None:
            if as_json:
                return JSONResponse({"error": f"no action {identifier}"}, 404)
            return _page("Unknown action", f"<p>No action {html.escape(identifier)!s} here.</p>", 404)
        try:
            if as_json:
                try:
                    body = await request.json()
                except ValueError:
                    raise ActionError("the body is not JSON") from None
                if not isinstance(body, Mapping):
                    raise ActionError("the body must be a JSON object")
                invocation = from_kitsu(identifier, body)
            else:
                if fields is None:
                    raise ActionError("the body is neither a form nor JSON")
                fields = [(k, v) for k, v in fields if k != TICKET_FIELD]
                invocation = from_kitsu(identifier, fields)
            if not act.applies_to(invocation.entity_type, len(invocation.selected)):
                raise ActionError(f"{act.label} does not apply to {len(invocation.selected)} selected task(s)")
            if act.needs_form(invocation):
                if not as_json:
                    return _form_page(
                        act, f"/actions/kitsu/{identifier}", fields or [], gate.ticket("kitsu", identifier)
                    )
                items = [{"name": f.name, "label": f.label, "type": f.type, "value": f.value} for f in act.form or ()]
                return JSONResponse({"form": items})
            job = await run(act, invocation)
        except ActionError as exc:
            if as_json:
                return JSONResponse({"error": str(exc)}, 400)
            return _page("Cannot run this action", f"<p class='error'>{html.escape(str(exc))}</p>", 400)
        if job.background:
            if not as_json:  # the job's page shows its progress in the tab Kitsu opened
                return RedirectResponse(job_url(job), status_code=303)
            url = str(request.base_url).rstrip("/") + job_url(job)
            message = f"{act.label} started; follow it at {url}"
            return JSONResponse({"success": True, "message": message, "job": job_json(job, request)}, 202)
        if as_json:
            if job.result is None:
                return JSONResponse({"success": False, "message": job.error}, 500)
            return JSONResponse({"success": job.result["success"], "message": job.result["message"]})
        if job.result is None:
            return _page(act.label, f"<p class='error'>The action failed: {html.escape(job.error or '')}</p>", 500)
        state = "succeeded" if job.result["success"] else "failed"
        return _page(act.label, f"<p class='result {state}'>{html.escape(job.result['message'] or state)}</p>")

    return router


def _light_payload(read: ShotgridReader, entry_id: str) -> list[tuple[str, str]]:
    """The fields of a light-payload post, from the ``meta`` of the ``EventLogEntry`` it names."""
    try:
        number = int(entry_id)
    except ValueError:
        raise ActionError(f"event_log_entry_id must be an id, got {entry_id!r}") from None
    entry = read(number)
    if not entry:
        raise ActionError(f"EventLogEntry {number} does not exist")
    meta = entry.get("meta")
    payload = meta.get("ami_payload") if isinstance(meta, Mapping) else None
    if not isinstance(payload, Mapping):
        raise ActionError(f"EventLogEntry {number} has no meta.ami_payload: it is not an action menu item's payload")
    fields: list[tuple[str, str]] = []
    for key, value in payload.items():
        for item in value if isinstance(value, list) else [value]:
            fields.append((str(key), "" if item is None else str(item)))
    return fields


def _first_use(backend: Backend, identifier: str, entry_id: str) -> bool:
    """Record that a light-payload ``EventLogEntry`` was used; ``False`` if it was before (a replayed post).

    The log's (source, source_id) dedupe makes this once-only, across restarts and processes.
    """
    event = Event(
        source=LIGHT_PAYLOAD_SOURCE,
        source_id=entry_id,
        type=LIGHT_PAYLOAD_TYPE,
        entity=Ref("EventLogEntry", int(entry_id)),
        attribute=identifier,
        data={"action": identifier, "event_log_entry_id": int(entry_id)},
    )
    return backend.store.append([event]).ids[0] is not None


def _shotgrid_reader(settings: Any) -> ShotgridReader:
    def read(entry_id: int) -> Mapping[str, Any] | None:
        from shotgun_api3.shotgun import Shotgun

        key = settings.script_key.get_secret_value() if settings.script_key else None
        sg = Shotgun(settings.site, settings.script_name, key, http_proxy=settings.proxy or None)
        try:
            found: Mapping[str, Any] | None = sg.find_one("EventLogEntry", [["id", "is", entry_id]], ["meta"])
            return found
        finally:
            sg.close()

    return read
