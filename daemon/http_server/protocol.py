"""One client connection: h11 SERVER over an asyncio Protocol.

Policy, in h11's example-server spirit:
- a connection is idle, reading a head, reading a body, or answering one request;
  one timer covers whichever phase it is in (keep-alive idle, head read, body read);
- the head must arrive within `header_timeout` in total (slowloris gets 408); a body may
  take longer as long as bytes keep coming;
- pipelined requests are answered strictly in order; bytes that arrive meanwhile stay in
  h11's buffer, and reading pauses once that buffer passes a high-water mark;
- errors before a handler runs (400, 408, 413, 431, 503) are answered and the connection
  closed; a handler that fails before responding gets a 500, after responding a close;
- a lost connection cancels the handler's task, which cancels its upstream request.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from email.utils import formatdate
from typing import TYPE_CHECKING
from urllib.parse import unquote

import h11

from .. import limits
from .flow import FlowControl
from .request import Request
from .response import ClientDisconnected, Headers, Responder, raw_response
from .router import RouteError, Router

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)
access_log = logging.getLogger("daemon.access")

# (path or None when unknown, status, message) -> (content type, body)
ErrorRenderer = Callable[[str | None, int, str], tuple[bytes, bytes]]

_IDLE, _HEAD, _BODY = "idle", "head", "body"
_HEAD_TOO_LARGE = "request head is too large (AGPROXY_MAX_HEADER_BYTES)"


class ServerState:
    """What every connection shares: settings, routes, live connections and request tasks."""

    def __init__(self, settings: Settings, router: Router, render_error: ErrorRenderer) -> None:
        self.settings = settings
        self.router = router
        self.render_error = render_error
        self.connections: set[ServerConnection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.shutting_down = False
        self._id_prefix = secrets.token_hex(3)
        self._ids = itertools.count(1)
        self._date_second = -1
        self._date = b""

    def next_request_id(self) -> str:
        return "%s-%d" % (self._id_prefix, next(self._ids))

    def date(self) -> bytes:
        now = int(time.time())
        if now != self._date_second:  # formatted once a second, not per response
            self._date_second = now
            self._date = formatdate(now, usegmt=True).encode()
        return self._date

    def begin_shutdown(self) -> None:
        """Idle connections close now; busy ones close after their current response."""
        self.shutting_down = True
        for connection in list(self.connections):
            connection.shutdown()


class ServerConnection(asyncio.Protocol):
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.settings = state.settings
        self.loop = asyncio.get_running_loop()
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.settings.max_header_bytes)
        self.flow = FlowControl()
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.disconnected = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_phase = ""
        self._deadline = 0.0
        self._head: h11.Request | None = None
        self._body = bytearray()
        self._head_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._reading_paused = False

    # --- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else ""
        if self.state.shutting_down or len(self.state.connections) >= self.settings.max_connections:
            self._reject(503, "the server is at its connection limit or shutting down; retry later")
            return
        self.state.connections.add(self)
        transport.set_write_buffer_limits(high=limits.WRITE_HIGH_WATER)
        self._set_timer(_IDLE, self.settings.keepalive_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.disconnected = True
        self.state.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.flow.resume_writing()
        if self._task is not None:
            self._task.cancel()

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    def data_received(self, data: bytes) -> None:
        if self._timer_phase == _IDLE:
            self._set_timer(_HEAD, self.settings.header_timeout)
        elif self._timer_phase == _BODY:
            self._set_timer(_BODY, self.settings.header_timeout)  # progress re-arms it
        self.conn.receive_data(data)
        if self._task is not None:
            if len(self.conn.trailing_data[0]) > limits.PIPELINE_HIGH_WATER:
                self._pause_reading()
            return
        self._process()

    # --- reading requests ------------------------------------------------------------

    def _process(self) -> None:
        while self._task is None and not self.disconnected:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._reject(exc.error_status_hint, _protocol_error_message(exc))
                return
            kind = type(event)
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if kind is h11.Request:
                self._on_head(event)  # type: ignore[arg-type]
            elif kind is h11.Data:
                self._on_body(event.data)  # type: ignore[union-attr]
            elif kind is h11.EndOfMessage:
                self._on_request_complete()
            elif kind is h11.ConnectionClosed:
                self._close()
                return

    def _on_head(self, head: h11.Request) -> None:
        self._head = head
        self._head_at = time.monotonic()
        self._body = bytearray()
        self._set_timer(_BODY, self.settings.header_timeout)
        if head.http_version not in (b"1.1", b"1.0"):
            self._reject(505, "HTTP/%s is not supported; use HTTP/1.1" % head.http_version.decode("ascii"))
            return
        # h11 bounds only a head that is still incomplete; one that arrives whole in a
        # single read is measured here.
        if _head_size(head) > self.settings.max_header_bytes:
            self._reject(431, _HEAD_TOO_LARGE, _path_of(head.target))
            return
        length = _content_length(head.headers)
        if length is not None and length > self.settings.max_body_bytes:
            self._reject(413, self._too_large_message(), _path_of(head.target))
            return
        if self.conn.they_are_waiting_for_100_continue:
            self._write(self.conn.send(h11.InformationalResponse(status_code=100, headers=[])))

    def _on_body(self, data: bytes) -> None:
        self._body += data
        if len(self._body) > self.settings.max_body_bytes:
            assert self._head is not None
            self._reject(413, self._too_large_message(), _path_of(self._head.target))

    def _too_large_message(self) -> str:
        return "request body is larger than %d bytes (AGPROXY_MAX_BODY_BYTES)" % self.settings.max_body_bytes

    def _on_request_complete(self) -> None:
        self._cancel_timer()
        head = self._head
        assert head is not None
        target = head.target
        path_raw, _, query = target.partition(b"?")
        request = Request(
            method=head.method.decode("ascii", "replace"),
            path=unquote(path_raw.decode("latin-1")),
            query=query.decode("latin-1"),
            headers=list(head.headers),
            body=bytes(self._body),
            peer=self.peer,
            request_id=self.state.next_request_id(),
        )
        self._body = bytearray()
        responder = Responder(self)
        task = self.loop.create_task(self._run(request, responder))
        self._task = task
        self.state.tasks.add(task)
        task.add_done_callback(self.state.tasks.discard)

    # --- answering -------------------------------------------------------------------

    async def _run(self, request: Request, responder: Responder) -> None:
        try:
            try:
                handler, params = self.state.router.resolve(request.method, request.path)
            except RouteError as exc:
                allow = [(b"allow", ", ".join(exc.allowed).encode())] if exc.allowed else []
                self._respond_error(responder, request.path, exc.status, _route_message(exc, request), allow)
                return
            request.params.update(params)
            await handler(request, responder)
            if not responder.started:
                raise RuntimeError("handler returned without responding")
        except (asyncio.CancelledError, ClientDisconnected):
            pass  # the client went away or the server is stopping: nothing to answer
        except Exception:
            log.exception("unhandled error in %s %s [%s]", request.method, request.path, request.request_id)
            if not responder.started and not self.disconnected:
                self._respond_error(responder, request.path, 500, "internal error; see the daemon log for %s" % request.request_id)
        finally:
            self._task = None
            self._log_access(request, responder)
            if responder.complete and not self.disconnected:
                self._next_cycle()
            else:
                self._close()

    def _respond_error(
        self, responder: Responder, path: str, status: int, message: str, headers: Headers | None = None
    ) -> None:
        content_type, body = self.state.render_error(path, status, message)
        responder.respond(status, [(b"content-type", content_type), *(headers or ())], body)

    def _next_cycle(self) -> None:
        conn = self.conn
        if self.state.shutting_down or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
            self._close()
            return
        conn.start_next_cycle()
        if self._reading_paused:
            self._reading_paused = False
            assert self.transport is not None
            self.transport.resume_reading()
        if conn.trailing_data[0]:
            self._set_timer(_HEAD, self.settings.header_timeout)
            self._process()
        else:
            self._set_timer(_IDLE, self.settings.keepalive_timeout)

    # --- the connection interface Responder uses -------------------------------------

    def send_event(self, event: h11.Response | h11.EndOfMessage) -> None:
        if self.disconnected:
            raise ClientDisconnected
        self._write(self.conn.send(event))

    def send_data(self, data: bytes) -> None:
        if self.disconnected:
            raise ClientDisconnected
        pieces = self.conn.send_with_data_passthrough(h11.Data(data=data))
        assert self.transport is not None
        self.transport.writelines(pieces)  # type: ignore[arg-type]

    def send_complete(self, head: h11.Response, body: bytes) -> None:
        if self.disconnected:
            raise ClientDisconnected
        conn = self.conn
        pieces = [conn.send(head)]
        if body:
            pieces += conn.send_with_data_passthrough(h11.Data(data=body))
        pieces.append(conn.send(h11.EndOfMessage()))
        assert self.transport is not None
        self.transport.writelines(pieces)  # type: ignore[arg-type]

    def response_headers(self, headers: Headers) -> Headers:
        extra = [(b"date", self.state.date())]
        if self.state.shutting_down:
            extra.append((b"connection", b"close"))
        return [*headers, *extra]

    # --- lifecycle helpers -----------------------------------------------------------

    def shutdown(self) -> None:
        """Close now if idle; otherwise the current response is the last one."""
        if self._task is None:
            self._close()

    def _write(self, data: bytes | None) -> None:
        if data and self.transport is not None:
            self.transport.write(data)

    def _reject(self, status: int, message: str, path: str | None = None) -> None:
        content_type, body = self.state.render_error(path, status, message)
        self._write(raw_response(status, content_type, body, self.state.date()))
        if self.settings.access_log:
            method = self._head.method.decode("ascii", "replace") if self._head is not None else "-"
            access_log.info("%s %s %d rejected peer=%s", method, path or "-", status, self.peer)
        self._close()

    def _close(self) -> None:
        self._cancel_timer()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    # One timer per connection, re-armed lazily: a phase change only moves the deadline,
    # and the timer is rescheduled when the new deadline is earlier than the armed one or
    # when it fires early. That is about one timer operation per request instead of three.

    def _set_timer(self, phase: str, seconds: float) -> None:
        self._timer_phase = phase
        self._deadline = deadline = self.loop.time() + seconds
        if self._timer is None or self._timer.when() > deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _cancel_timer(self) -> None:
        self._timer_phase = ""  # the armed timer, when it fires, finds nothing to do

    def _on_timer(self) -> None:
        self._timer = None
        phase = self._timer_phase
        if not phase or self.disconnected:
            return
        if self.loop.time() < self._deadline:
            self._timer = self.loop.call_at(self._deadline, self._on_timer)
            return
        self._timer_phase = ""
        if phase == _IDLE:
            self._close()  # an idle keep-alive connection just closes
        else:
            path = _path_of(self._head.target) if phase == _BODY and self._head is not None else None
            self._reject(408, "the request was not received in time (AGPROXY_HEADER_TIMEOUT)", path)

    def _log_access(self, request: Request, responder: Responder) -> None:
        if not self.settings.access_log:
            return
        now = time.monotonic()
        ttfb = (responder.first_byte_at - self._head_at) * 1000 if responder.first_byte_at else -1.0
        access_log.info(
            "%s %s %d %.1fms ttfb=%.1fms bytes=%d id=%s%s",
            request.method,
            request.path,
            responder.status if responder.started else 499,
            (now - self._head_at) * 1000,
            ttfb,
            responder.bytes_sent,
            request.request_id,
            "" if responder.complete else " incomplete",
        )


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value)  # h11 has validated it
    return None


def _head_size(head: h11.Request) -> int:
    return len(head.method) + len(head.target) + 12 + sum(len(name) + len(value) + 4 for name, value in head.headers)


def _path_of(target: bytes) -> str:
    return unquote(target.partition(b"?")[0].decode("latin-1"))


def _protocol_error_message(exc: h11.RemoteProtocolError) -> str:
    # h11's messages name the broken part (at most a header *name*), never a header value.
    if exc.error_status_hint == 431:
        return _HEAD_TOO_LARGE
    return "malformed HTTP request: %s" % exc


def _route_message(exc: RouteError, request: Request) -> str:
    if exc.status == 405:
        return "method %s is not allowed on %s (allowed: %s)" % (request.method, request.path, ", ".join(exc.allowed))
    return "no route for %s %s" % (request.method, request.path)
