"""A local stand-in for ftrack's event server: the socket.io 0.9 handshake and websocket packets it speaks.

``ftrack_api.event.hub.EventHub`` connects with ``GET /socket.io/1/`` (answer ``sid:heartbeat:close:transports``),
then opens ``ws://host/socket.io/1/websocket/<sid>``. Packets are ``code:id:path:data`` text frames: the server
greets with ``1::``, pushes events as ``5:::{"name": "ftrack.event", "args": [event]}``, and acknowledges the
client's ``5:N+::...`` publishes with ``6:::N+[{"success": true}]``. Subscriptions arrive as published
``ftrack.meta.subscribe`` events. Only what the client uses is implemented; no ftrack semantics beyond that.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import socketserver
import struct
import threading
from typing import Any

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _recv_frame(conn: socket.socket) -> tuple[int, bytes] | None:
    def exact(n: int) -> bytes:
        chunks = b""
        while len(chunks) < n:
            chunk = conn.recv(n - len(chunks))
            if not chunk:
                raise ConnectionError("closed")
            chunks += chunk
        return chunks

    try:
        first, second = exact(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack(">H", exact(2))
        elif length == 127:
            (length,) = struct.unpack(">Q", exact(8))
        mask = exact(4) if second & 0x80 else b"\0\0\0\0"
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(exact(length)))
    except (ConnectionError, OSError):
        return None
    return first & 0x0F, payload


def _frame(text: str) -> bytes:
    payload = text.encode()
    head = bytes([0x81])
    if len(payload) < 126:
        head += bytes([len(payload)])
    elif len(payload) < 65536:
        head += bytes([126]) + struct.pack(">H", len(payload))
    else:
        head += bytes([127]) + struct.pack(">Q", len(payload))
    return head + payload


class FakeFtrackServer:
    """Serves the event hub endpoint on 127.0.0.1; records subscriptions and published events."""

    def __init__(self) -> None:
        self.subscriptions: list[dict[str, Any]] = []
        self.published: list[dict[str, Any]] = []
        self.connections = 0
        self._clients: list[socket.socket] = []
        self._lock = threading.Lock()
        self.refuse = False
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer._serve(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeFtrackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.drop_clients()
        self._server.shutdown()
        self._server.server_close()

    def emit(self, event: dict[str, Any]) -> None:
        """Push an event to every connected client, as ftrack's server does for matching subscribers."""
        packet = _frame("5:::" + json.dumps({"name": "ftrack.event", "args": [event]}))
        with self._lock:
            for client in list(self._clients):
                client.sendall(packet)

    def drop_clients(self) -> None:
        """An outage: close every websocket (the clients see the connection end)."""
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            client.close()

    @property
    def client_count(self) -> int:
        with self._lock:
            return len(self._clients)

    def _serve(self, conn: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                return
            request += chunk
        head = request.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        line, *header_lines = head.split("\r\n")
        path = line.split(" ")[1]
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
        if self.refuse:
            conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        if path.rstrip("/") == "/socket.io/1":
            if not headers.get("ftrack-user") or not headers.get("ftrack-api-key"):
                conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            body = b"fakesid:60:60:websocket"
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
            return
        if path.startswith("/socket.io/1/websocket/") and "sec-websocket-key" in headers:
            accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + _GUID).encode()).digest())
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            with self._lock:
                self._clients.append(conn)
                self.connections += 1
                conn.sendall(_frame("1::"))
            self._packets(conn)
            return
        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def _packets(self, conn: socket.socket) -> None:
        while True:
            frame = _recv_frame(conn)
            if frame is None or frame[0] == 0x8:
                return
            code, ident, _path, data = [*frame[1].decode().split(":", 3), "", "", ""][:4]
            if code == "5":
                event = json.loads(data)["args"][0]
                with self._lock:
                    if event.get("topic") == "ftrack.meta.subscribe":
                        self.subscriptions.append(event["data"])
                    else:
                        self.published.append(event)
                    if ident:
                        conn.sendall(_frame(f"6:::{ident.rstrip('+')}+" + json.dumps([{"success": True}])))
