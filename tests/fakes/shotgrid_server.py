"""A stand-in ShotGrid server speaking the real JSON-RPC wire protocol (``POST /api3/json``).

Talks to the real ``shotgun_api3`` client: ``info``, ``read`` (filters incl. nested groups, sorts,
paging), ``create``, ``update``, ``delete``, ``batch`` (all or nothing), and errors as the real API
answers them (``{"exception": true, "message": ..., "error_code": N}``; 102 = authentication).
TCP_NODELAY is set on every accepted socket (without it each keep-alive call costs ~40 ms).

Tests drive it directly: insert ``EventLogEntry`` rows, leave id gaps and fill them later, take the
server down for a while (connections refused, open ones cut), count calls.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import socket
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeShotgrid", "sg_time"]


def sg_time(moment: datetime | None = None) -> str:
    """ShotGrid's wire format for date-times: ``YYYY-MM-DDTHH:MM:SSZ`` in UTC."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    def __init__(self, message: str, code: int = 103) -> None:
        super().__init__(message)
        self.code = code


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeShotgrid

    def process_request(self, request: Any, client_address: Any) -> None:
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.fake._track(request)
        super().process_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        if self.path.rstrip("/") != "/api3/json":
            self._reply(404, b"not found", "text/plain")
            return
        status, payload = self.server.fake.handle(body)
        self._reply(status, json.dumps(payload).encode(), "application/json; charset=utf-8")

    def _reply(self, status: int, data: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _values(condition: dict[str, Any]) -> list[Any]:
    values = condition.get("values", [])
    if len(values) == 1 and isinstance(values[0], list):
        return list(values[0])
    return list(values)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return bool(a.get("type") == b.get("type") and a.get("id") == b.get("id"))
    return bool(a == b)


class FakeShotgrid:
    """The site: tables of records by entity type, scripts allowed in, and test controls."""

    def __init__(self, scripts: dict[str, str] | None = None, *, log_events: bool = False) -> None:
        self.scripts = dict(scripts or {"trackwire": "secret"})
        self.log_events = log_events
        self.tables: dict[str, dict[int, dict[str, Any]]] = {}
        self.next_id: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.session_uuids: list[str | None] = []
        self.read_log: list[tuple[str, list[Any]]] = []  # (entity type, top-level conditions) of every read
        self._version = 0  # bumped on every insert or delete: the sorted id lists below are then rebuilt
        self._sorted_ids: dict[str, tuple[int, list[int]]] = {}
        self.lock = threading.RLock()
        self.port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self.responding = threading.Event()  # cleared: requests are accepted but never answered (a hung site)
        self.responding.set()

    # -- life cycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeShotgrid:
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.fake = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self.lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def go_down(self) -> None:
        """Refuse connections and cut open ones, until :meth:`come_up`."""
        self.stop()

    def come_up(self) -> None:
        self.start()

    def down_for(self, seconds: float) -> threading.Thread:
        self.go_down()
        timer = threading.Timer(seconds, self.come_up)
        timer.daemon = True
        timer.start()
        return timer

    def _track(self, sock: socket.socket) -> None:
        with self.lock:
            self._sockets.add(sock)

    def __enter__(self) -> FakeShotgrid:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls ---------------------------------------------------------------------------

    def _new_id(self, entity_type: str) -> int:
        self.next_id[entity_type] += 1
        return self.next_id[entity_type]

    def add_entity(self, entity_type: str, **fields: Any) -> dict[str, Any]:
        with self.lock:
            entity_id = int(fields.pop("id", 0)) or self._new_id(entity_type)
            self.next_id[entity_type] = max(self.next_id[entity_type], entity_id)
            record = {"type": entity_type, "id": entity_id, **fields}
            self.tables.setdefault(entity_type, {})[entity_id] = record
            self._version += 1
            return record

    def add_event(
        self,
        event_type: str = "Shotgun_Shot_Change",
        *,
        entity: dict[str, Any] | None = None,
        attribute_name: str | None = None,
        meta: dict[str, Any] | None = None,
        user: dict[str, Any] | None = None,
        project: dict[str, Any] | None = None,
        session_uuid: str | None = None,
        created_at: datetime | None = None,
        id: int | None = None,
    ) -> int:
        """Insert one ``EventLogEntry`` (next id, or the given one to fill a gap)."""
        fields: dict[str, Any] = {
            "event_type": event_type,
            "attribute_name": attribute_name,
            "meta": meta or {"type": "attribute_change", "attribute_name": attribute_name},
            "entity": entity,
            "user": user or {"type": "HumanUser", "id": 1, "name": "Ada"},
            "project": project or {"type": "Project", "id": 70, "name": "Moonfall"},
            "session_uuid": session_uuid,
            "created_at": sg_time(created_at),
            "description": f"{event_type} happened",
        }
        if id is not None:
            fields["id"] = id
        return int(self.add_entity("EventLogEntry", **fields)["id"])

    def add_events(self, count: int, event_type: str = "Shotgun_Shot_Change", entities: int = 50) -> list[int]:
        return [
            self.add_event(
                event_type,
                entity={"type": "Shot", "id": 1 + n % entities, "name": f"SH{1 + n % entities:04d}"},
                attribute_name="sg_status_list",
                meta={"type": "attribute_change", "attribute_name": "sg_status_list", "new_value": "ip"},
            )
            for n in range(count)
        ]

    def skip_ids(self, count: int, entity_type: str = "EventLogEntry") -> list[int]:
        """Leave a gap: the next ``count`` ids are handed out to nobody (yet)."""
        with self.lock:
            first = self.next_id[entity_type] + 1
            self.next_id[entity_type] += count
            return list(range(first, first + count))

    def last_event_id(self) -> int:
        with self.lock:
            return self.next_id["EventLogEntry"]

    # -- the protocol ----------------------------------------------------------------------------

    def handle(self, body: bytes) -> tuple[int, Any]:
        self.responding.wait()
        try:
            request = json.loads(body)
            method = request["method_name"]
            params = request.get("params") or []
        except (ValueError, KeyError, TypeError):
            return 400, {"exception": True, "message": "Malformed request body", "error_code": 103}
        self.calls[method] += 1
        try:
            if method == "info":
                return 200, {"version": [9, 0, 0], "api_max_entities_per_page": 500, "full_version": [9, 0, 0, 0]}
            auth = params[0] if params and isinstance(params[0], dict) else {}
            self._authenticate(auth)
            self.session_uuids.append(auth.get("session_uuid"))
            args: Any = params[1] if len(params) > 1 else {}  # JSON: each method checks its own shape
            with self.lock:
                if method == "read":
                    return 200, {"results": self._read(args)}
                if method == "create":
                    return 200, {"results": self._create(args)}
                if method == "update":
                    return 200, {"results": self._update(args)}
                if method == "delete":
                    return 200, {"results": self._delete(args)}
                if method == "batch":
                    return 200, {"results": self._batch(args)}
            raise ApiError(f"Unknown method: {method}", 103)
        except ApiError as exc:
            return 200, {"exception": True, "message": str(exc), "error_code": exc.code}

    def _authenticate(self, auth: dict[str, Any]) -> None:
        name = auth.get("script_name")
        if name is None or self.scripts.get(name) != auth.get("script_key"):
            raise ApiError(f"Can't authenticate script '{name}'", 102)

    def _table(self, entity_type: Any) -> dict[int, dict[str, Any]]:
        if not isinstance(entity_type, str) or not entity_type:
            raise ApiError(f"API read() invalid/missing string entity 'type':\n{entity_type!r}", 103)
        return self.tables.setdefault(entity_type, {})

    def _match(self, record: dict[str, Any], flt: dict[str, Any]) -> bool:
        results = []
        for condition in flt.get("conditions", []):
            if "conditions" in condition:
                results.append(self._match(record, condition))
                continue
            results.append(self._test(record, condition))
        if flt.get("logical_operator", "and") == "or":
            return any(results) if results else True
        return all(results)

    def _test(self, record: dict[str, Any], condition: dict[str, Any]) -> bool:
        path = condition["path"]
        relation = condition["relation"]
        values = _values(condition)
        value = record.get(path)
        first = values[0] if values else None
        try:
            if relation == "is":
                return _same(value, first)
            if relation == "is_not":
                return not _same(value, first)
            if relation == "in":
                return any(_same(value, v) for v in values)
            if relation == "not_in":
                return not any(_same(value, v) for v in values)
            if relation == "greater_than":
                return value is not None and value > first
            if relation == "less_than":
                return value is not None and value < first
            if relation == "between":
                return value is not None and values[0] <= value <= values[1]
            if relation == "contains":
                return value is not None and str(first) in str(value)
            if relation == "starts_with":
                return value is not None and str(value).startswith(str(first))
        except TypeError as exc:
            raise ApiError(f"Invalid filter value for {path}: {exc}", 103) from exc
        raise ApiError(f"Unknown relation '{relation}'", 103)

    def _shape(self, record: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        out = {"type": record["type"], "id": record["id"]}
        for name in fields:
            if name not in ("type", "id"):
                out[name] = record.get(name)
        return out

    def _read(self, args: dict[str, Any]) -> dict[str, Any]:
        entity_type = args.get("type")
        table = self._table(entity_type)
        flt = args.get("filters") or {"logical_operator": "and", "conditions": []}
        self.read_log.append((str(entity_type), list(flt.get("conditions", []))))
        paging = args.get("paging") or {}
        per_page = int(paging.get("entities_per_page", 500))
        page = int(paging.get("current_page", 1))
        window = self._id_window(str(entity_type), table, flt, args.get("sorts"))
        if window is not None:  # already in id order: only the asked page is looked at
            ids, start = window
            count = len(ids) - start
            first = start + (page - 1) * per_page
            chunk = [table[i] for i in ids[first : min(first + per_page, len(ids))]]
        else:
            rows = [r for r in table.values() if self._match(r, flt)]
            for sort in reversed(args.get("sorts") or [{"field_name": "id", "direction": "asc"}]):
                name = sort.get("field_name") or sort.get("column")

                def order(r: dict[str, Any], n: Any = name) -> tuple[bool, Any]:
                    return (r.get(n) is None, r.get(n))

                rows.sort(key=order, reverse=sort.get("direction") == "desc")
            count = len(rows)
            chunk = rows[(page - 1) * per_page : page * per_page]
        fields = list(args.get("return_fields") or [])
        return {
            "entities": [self._shape(r, fields) for r in chunk],
            "paging_info": {"entity_count": count, "has_next_page": page * per_page < count},
        }

    def _id_window(
        self,
        entity_type: str,
        table: dict[int, dict[str, Any]],
        flt: dict[str, Any],
        sorts: list[dict[str, Any]] | None,
    ) -> tuple[list[int], int] | None:
        """Fast path for the poller's read (``id > N`` in id order): the sorted ids and where ``> N`` starts.

        The sorted id list is kept between reads (rebuilt after an insert or delete), so a read costs
        a bisect and the page, not a sort of the whole table: the fake must never be what limits a
        catch-up benchmark, since the real site answers these reads from an index.
        """
        conditions = flt.get("conditions", [])
        if len(conditions) != 1 or conditions[0].get("path") != "id" or conditions[0].get("relation") != "greater_than":
            return None
        if sorts and [(x.get("field_name") or x.get("column"), x.get("direction")) for x in sorts] != [("id", "asc")]:
            return None
        after = _values(conditions[0])[0]
        if not isinstance(after, int):
            return None
        cached = self._sorted_ids.get(entity_type)
        if cached is None or cached[0] != self._version:
            cached = self._sorted_ids[entity_type] = (self._version, sorted(table))
        ids = cached[1]
        return ids, bisect.bisect_right(ids, after)

    def _fields(self, args: dict[str, Any]) -> dict[str, Any]:
        fields = args.get("fields") or []
        if not isinstance(fields, list):
            raise ApiError("fields must be a list of {field_name, value}", 103)
        return {f["field_name"]: f["value"] for f in fields}

    def _log(self, entity_type: str, entity_id: int, kind: str, attribute: str | None, old: Any, new: Any) -> None:
        if not self.log_events or entity_type == "EventLogEntry":
            return
        meta: dict[str, Any] = {
            "type": "new_entity" if kind == "New" else "attribute_change",
            "entity_type": entity_type,
        }
        meta.update({"entity_id": entity_id, "attribute_name": attribute, "old_value": old, "new_value": new})
        self.add_event(
            f"Shotgun_{entity_type}_{kind}",
            entity={"type": entity_type, "id": entity_id},
            attribute_name=attribute,
            meta=meta,
        )

    def _create(self, args: dict[str, Any]) -> dict[str, Any]:
        entity_type = args.get("type")
        self._table(entity_type)
        record = self.add_entity(str(entity_type), **self._fields(args))
        self._log(record["type"], record["id"], "New", None, None, None)
        return self._shape(record, list(args.get("return_fields") or []) + list(self._fields(args)))

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        table = self._table(args.get("type"))
        record = table.get(int(args.get("id") or 0))
        if record is None:
            raise ApiError(f"Entity {args.get('type')} {args.get('id')} not found", 103)
        changes = self._fields(args)
        for name, value in changes.items():
            old = record.get(name)
            record[name] = value
            if old != value:
                self._log(record["type"], record["id"], "Change", name, old, value)
        return self._shape(record, list(changes))

    def _delete(self, args: dict[str, Any]) -> bool:
        table = self._table(args.get("type"))
        if table.pop(int(args.get("id") or 0), None) is None:
            raise ApiError(f"Entity {args.get('type')} {args.get('id')} not found", 103)
        self._version += 1
        return True

    def _batch(self, requests: list[dict[str, Any]]) -> list[Any]:
        if not isinstance(requests, list):
            raise ApiError("batch expects a list of requests", 103)
        saved = json.dumps(self.tables), Counter(self.next_id)
        try:
            out: list[Any] = []
            for request in requests:
                kind = request.get("request_type")
                if kind == "create":
                    out.append(self._create(request))
                elif kind == "update":
                    out.append(self._update(request))
                elif kind == "delete":
                    out.append(self._delete(request))
                else:
                    raise ApiError(f"Unknown batch request_type {kind!r}", 103)
            return out
        except ApiError:
            tables, ids = saved
            self.tables = {k: {int(i): r for i, r in v.items()} for k, v in json.loads(tables).items()}
            self.next_id = ids
            self._version += 1
            raise


def wait_until_up(url: str, timeout: float = 10.0) -> None:
    host, port = url.removeprefix("http://").split(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(url)
