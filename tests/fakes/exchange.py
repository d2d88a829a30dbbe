"""How the fake upstream answers one request: `Exchange` is the sending side the endpoint
handlers use. Plain and JSON bodies (gzip when accepted), Google error replies, SSE framing
(chunked, CRLF or LF, optionally split events), the unary aggregate, deliberate TCP resets,
and waits that give up when the fake stops or the client leaves.
"""

from __future__ import annotations

import gzip
import secrets
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson

from . import scripts
from .checks import Rejection
from .records import RecordedRequest
from .scripts import CutMidEvent, ErrorReply, FlushHeaders, Gate, Pause

if TYPE_CHECKING:
    from .server import Handler
    from .upstream import FakeUpstream

TRACE_HEADER = "x-cloudaicompanion-trace-id"
JSON_TYPE = "application/json; charset=UTF-8"
SSE_TYPE = "text/event-stream"
POLL_INTERVAL = 0.02  # seconds: how often paused/gated streams look at stop and peer EOF


class Aborted(Exception):
    """The exchange cannot continue (fake stopping, peer gone, connection cut on purpose)."""


class Exchange:
    """One request/response on a connection: the sending side of the handlers."""

    def __init__(self, handler: Handler, record: RecordedRequest) -> None:
        self.h = handler
        self.record = record
        self.fake: FakeUpstream = handler.server.fake
        self.stream_endpoint = False
        self.trace_id = secrets.token_hex(8)

    # violations

    def violation(self, check: str, message: str) -> None:
        """Record that this request broke `check` (a line in fake.violations)."""
        self.fake._violation(self, check, message)

    def reject(self, rejection: Rejection) -> None:
        """Record a violation and answer with the rejection's body."""
        self.violation(rejection.check or "check", rejection.message)
        self.send_error_reply(ErrorReply(rejection.status, rejection.body_bytes()))

    def refuse(self, problem: Rejection | None, check: str = "") -> bool:
        """Reject with `problem` (recorded under `check`, if given) when there is one; True if it did."""
        if problem is None:
            return False
        self.reject(replace(problem, check=check) if check else problem)
        return True

    # plain responses

    def _start(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        self.record.status = status  # set before any byte leaves, so a fast client never sees it stale
        self.h.send_response(status)
        for name, value in headers:
            self.h.send_header(name, value)
        self.h.end_headers()

    def _trace_headers(self) -> list[tuple[str, str]]:
        return [(TRACE_HEADER, self.trace_id)] if self.record.path.startswith("/v1internal") else []

    def send(self, status: int, body: bytes, content_type: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers]
        if not body:
            self.record.outcome = "complete"
        self._start(status, headers)
        self.record.outcome = "complete"  # before the last write; a failing write turns it into client_closed
        self.write(body)

    def send_json(self, status: int, obj: Any, *, content_type: str = JSON_TYPE) -> None:
        body = orjson.dumps(obj)
        headers = self._trace_headers()
        accepts = (self.record.header("Accept-Encoding") or "").lower()
        if status == 200 and self.fake.gzip_json and "gzip" in accepts:
            body = gzip.compress(body, mtime=0)
            headers.append(("Content-Encoding", "gzip"))
        self.send(status, body, content_type, headers)

    def error_content_type(self) -> str:
        # Non-200 answers on the stream endpoint are plain JSON labelled text/event-stream (doc §4.11).
        return SSE_TYPE if self.stream_endpoint else JSON_TYPE

    def send_error_reply(self, reply: ErrorReply) -> None:
        self.send(reply.status, reply.body, self.error_content_type(), [*reply.headers, *self._trace_headers()])

    # streaming

    def write(self, data: bytes) -> None:
        if self.h.command == "HEAD" or not data:
            return
        try:
            self.h.wfile.write(data)
        except OSError as exc:
            self.record.outcome = "client_closed"
            raise Aborted("client went away") from exc

    def write_chunk(self, data: bytes) -> None:
        self.write(b"%x\r\n%b\r\n" % (len(data), data))

    def event_bytes(self, response: dict[str, Any]) -> bytes:
        envelope = {"response": response, "traceId": self.trace_id, "metadata": {}}
        eol = self.fake.sse_eol.encode()
        return b"data: " + orjson.dumps(envelope) + eol + eol

    def _wait_out(self, step: Pause | Gate) -> None:
        """Sleep through a Pause, or announce a Gate and wait until it is released."""
        if isinstance(step, Pause):
            self.wait(seconds=step.seconds)
            return
        if step.reached is not None:
            step.reached.set()
        self.wait(event=step.release)

    def send_sse(self, items: list[scripts.RenderItem]) -> None:
        started = False

        def start() -> None:
            nonlocal started
            if not started:
                started = True
                self._start(200, [("Content-Type", SSE_TYPE), ("Transfer-Encoding", "chunked"),
                                  (TRACE_HEADER, self.trace_id)])

        for index, item in enumerate(items):
            if isinstance(item, (Pause, Gate)):
                self._wait_out(item)
            elif isinstance(item, FlushHeaders):
                start()
            elif isinstance(item, CutMidEvent):
                start()
                following = next((i for i in items[index + 1:] if isinstance(i, dict)), None)
                line = self.event_bytes(following or {"candidates": [{"content": {"role": "model",
                                                                                  "parts": [{"text": "cut"}]}}]})
                self.write_chunk(line[: len(line) // 2])
                self.abort()
            else:
                start()
                data = self.event_bytes(item)
                if self.fake.split_events:
                    half = len(data) // 2
                    self.write_chunk(data[:half])
                    self.write_chunk(data[half:])
                else:
                    self.write_chunk(data)
        start()
        self.record.outcome = "complete"  # before the last write; a failing write turns it into client_closed
        self.write(b"0\r\n\r\n")

    def send_unary(self, items: list[scripts.RenderItem]) -> None:
        chunks: list[dict[str, Any]] = []
        cut = False
        for item in items:
            if isinstance(item, (Pause, Gate)):
                self._wait_out(item)
            elif isinstance(item, CutMidEvent):
                cut = True
            elif isinstance(item, dict):
                chunks.append(item)
        body = orjson.dumps({"response": scripts.aggregate(chunks), "traceId": self.trace_id, "metadata": {}})
        if cut:
            self._start(200, [("Content-Type", JSON_TYPE), ("Content-Length", str(len(body))),
                              (TRACE_HEADER, self.trace_id)])
            self.write(body[: len(body) // 2])
            self.abort()
        self.send(200, body, JSON_TYPE, [(TRACE_HEADER, self.trace_id)])

    def abort(self) -> None:
        """Reset the TCP connection now (SO_LINGER 0): no terminating chunk, no FIN."""
        self.h.close_connection = True
        self.record.outcome = "cut"
        try:
            self.h.rfile.close()  # drop makefile's reference so close() really closes the fd
        except OSError:
            pass
        self.fake._conn_table.close(self.h.conn, reset=True)
        raise Aborted("connection cut on purpose")

    def wait(self, *, seconds: float | None = None, event: threading.Event | None = None) -> None:
        """Sleep until `seconds` pass or `event` is set; give up if the fake stops or the peer
        closes (peer EOF is only visible on plain TCP: under TLS we cannot peek below the
        record layer, so a gone TLS client is noticed at the next write)."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            if event is not None and event.is_set():
                return
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return
            if self.fake._stopping.is_set():
                self.record.outcome = "aborted"
                raise Aborted("fake stopping")
            if self._peer_closed():
                self.record.outcome = "client_closed"
                raise Aborted("client went away")
            step = POLL_INTERVAL if deadline is None else min(POLL_INTERVAL, deadline - now)
            if event is not None:
                event.wait(step)
            else:
                time.sleep(step)

    def _peer_closed(self) -> bool:
        sock = self.h.connection
        if isinstance(sock, ssl.SSLSocket):
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            return sock.recv(1, socket.MSG_PEEK) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except (OSError, ValueError):
            return True
