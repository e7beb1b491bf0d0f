"""The JSON API: the dashboard's data and actions, described by the app's OpenAPI schema (/openapi.json).

Reads need a login cookie or ``Authorization: Bearer <token>``; writes are POSTs, and with a cookie
they also need the session's CSRF token (``X-CSRF-Token``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from trackwire.web import views
from trackwire.web.auth import Auth
from trackwire.web.backend import Backend, UnknownGroup

__all__ = ["ReplayRange", "api_router"]


class ReplayRange(BaseModel):
    first: int = Field(ge=1, description="first event id")
    last: int | None = Field(None, ge=1, description="last event id (default: the newest)")
    consumer: str | None = Field(None, description="only this consumer of the group")


class Changed(BaseModel):
    changed: int


class EventIds(BaseModel):
    event_ids: list[int] | None = Field(None, description="these dead letters (default: all of the group's)")


def parse_after(text: str | None) -> tuple[str, int] | None:
    if not text:
        return None
    group, _, event_id = text.rpartition(":")
    if not group or not event_id.isdigit():
        raise HTTPException(400, "after must look like 'group:event_id'")
    return group, int(event_id)


def api_router(backend: Backend, auth: Auth) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["api"], dependencies=[Depends(auth.api_user)])

    async def writer(request: Request) -> None:
        await auth.check_write(request, request.state.principal)

    write = [Depends(writer)]

    async def act(fn: Any, *args: Any) -> Any:
        try:
            return await backend.call(fn, *args)
        except UnknownGroup as exc:
            raise HTTPException(404, f"no group called {exc.args[0]!r}") from None

    @router.get("/overview", summary="Events per minute, sources, consumers, recent failures")
    async def overview() -> dict[str, Any]:
        return await views.overview(backend)

    @router.get("/events", summary="Search the log, newest first; page with next_before")
    async def events(
        source: str | None = None,
        type: str | None = None,
        entity: Annotated[str | None, Query(description="Type:id")] = None,
        project: Annotated[str | None, Query(description="project id or Project:id")] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before: Annotated[int | None, Query(ge=1, description="page key: events with smaller ids")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        filters = views.EventFilters(source, type, entity, project, since, until, before, limit)
        return await views.events_page(backend, filters)

    @router.get("/events/{event_id}", summary="One event and, per group, what happened to it")
    async def event(event_id: int) -> dict[str, Any]:
        found = await views.event_detail(backend, event_id)
        if found is None:
            raise HTTPException(404, f"no event {event_id}")
        return found

    @router.get("/groups", summary="Consumers (ordering groups): state, lag, deliveries")
    async def groups() -> list[dict[str, Any]]:
        return await views.groups(backend)

    @router.get("/groups/{name}", summary="One group: state, last error with traceback, unfinished deliveries")
    async def group(name: str, after: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
        found = await views.group_detail(backend, name, after)
        if found is None:
            raise HTTPException(404, f"no group called {name!r}")
        return found

    @router.post("/groups/{name}/reactivate", summary="Reactivate a deactivated group", dependencies=write)
    async def reactivate(name: str) -> dict[str, str]:
        await act(backend.reactivate, name)
        return {"group": name, "state": "active"}

    @router.post("/groups/{name}/replay", summary="Deliver a range of the log again to a group", dependencies=write)
    async def replay(name: str, body: ReplayRange) -> Changed:
        return Changed(changed=await act(backend.replay_range, name, body.first, body.last, body.consumer))

    @router.get("/deadletters", summary="Dead letters, by (group, event id); page with next_after")
    async def deadletters(
        group: str | None = None,
        after: Annotated[str | None, Query(description="page key 'group:event_id'")] = None,
    ) -> dict[str, Any]:
        return await views.dead_letters(backend, group, parse_after(after))

    @router.get("/deadletters/{group}/{event_id}", summary="One dead letter: error, traceback, event")
    async def deadletter(group: str, event_id: int) -> dict[str, Any]:
        found = await views.dead_letter(backend, group, event_id)
        if found is None:
            raise HTTPException(404, f"no dead letter for event {event_id} in {group!r}")
        return found

    @router.post("/deadletters/{group}/{event_id}/replay", summary="Replay one dead letter", dependencies=write)
    async def replay_one(group: str, event_id: int) -> Changed:
        return Changed(changed=await act(backend.replay_dead, group, [event_id]))

    @router.post("/deadletters/{group}/{event_id}/discard", summary="Discard one dead letter", dependencies=write)
    async def discard_one(group: str, event_id: int) -> Changed:
        return Changed(changed=await act(backend.discard_dead, group, [event_id]))

    @router.post(
        "/deadletters/{group}/replay", summary="Replay a group's dead letters (all, or event_ids)", dependencies=write
    )
    async def replay_many(group: str, body: EventIds | None = None) -> Changed:
        ids = body.event_ids if body is not None else None
        return Changed(changed=await act(backend.replay_dead, group, ids))

    @router.post(
        "/deadletters/{group}/discard", summary="Discard a group's dead letters (all, or event_ids)", dependencies=write
    )
    async def discard_many(group: str, body: EventIds | None = None) -> Changed:
        ids = body.event_ids if body is not None else None
        return Changed(changed=await act(backend.discard_dead, group, ids))

    return router
