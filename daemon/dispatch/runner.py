"""The one generation runner every client protocol goes through.

Open the upstream answer through the account pool (opening.py: refusals are retried there,
on the same or another account), then pump: upstream bytes → SSE events → the protocol's
Reader (translating.py, or a passthrough) → frames for the client. Before the first
meaningful event nothing is sent, so a stream that breaks that early is still a proper
HTTP error; after it, failures become an in-band error and a clean end. A heartbeat frame
goes out whenever the client has heard nothing for a while.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol


from ..errors import ErrorKind, ProxyError
from ..http_client.errors import HTTPClientError
from ..http_client.pool import UpstreamResponse
from ..http_server.response import SSE_HEADERS, Responder
from ..sse import SSEDecoder, SSEError
from ..upstream import models
from ..upstream.events import Usage
from .opening import open_upstream

if TYPE_CHECKING:
    from ..app import App

log = logging.getLogger(__name__)

_MAX_UNARY_BODY = 64 * 1024 * 1024  # a whole answer, images and their signatures included
Event = dict[str, Any]
Headers = list[tuple[bytes, bytes]]


class Reader(Protocol):
    """Upstream event documents (each SSE `data`, or one unary body) → client events."""

    done: bool  # no more upstream input is wanted (a stop sequence matched)
    signatures: list[tuple[str | None, str, str]]

    @property
    def usage(self) -> Usage | None:
        """The answer's token counts so far (the upstream's are cumulative)."""

    def step(self, documents: Iterable[bytes]) -> tuple[list[Any], bool]:
        """The client events, and whether any carried content (commits the response);
        raises ProxyError for an error document (upstream.failures.error_in_answer)."""

    def end(self) -> list[Any]:
        """The upstream body ended; raises ProxyError when that is not a real finish."""

    def fail(self, error: ProxyError) -> list[Any]: ...


class Accumulator(Protocol):
    body: Any  # the non-stream answer, once every event was applied

    def apply(self, events: list[Any]) -> None: ...


class Wire(Protocol):
    """How one client protocol writes answers: each translate/*_stream module is one."""

    PROTOCOL: str  # its name in the request monitor and the metrics (metrics.PROTOCOLS)
    HEARTBEAT: bytes  # what keeps a silent stream alive for that protocol's clients
    Accumulator: Callable[[], Accumulator]

    def encode(self, events: list[Any]) -> bytes: ...


@dataclass
class Generation:
    """One client request, translated, plus how its protocol reads and writes answers."""

    model: str  # upstream id
    request: dict[str, Any]  # the envelope's "request"
    stream: bool
    reader: Reader
    wire: Wire
    render_error: Callable[[ProxyError], tuple[int, Headers, bytes]]
    session: str = ""  # the conversation, for sticky account choice
    pinned: str = ""  # the account the client asked for (X-Account), "" for any
    accounts: tuple[str, ...] = ()  # the accounts a route target allows, () for any
    client: str = ""  # the client key's name, for the usage counts
    attempts: int = 0  # upstream requests made for it (open_upstream counts them)

    @property
    def unary(self) -> bool:
        """Ask the upstream for one body: a non-stream answer without thinking (thinking
        models are always streamed, as the native client does)."""
        return not self.stream and "thinkingConfig" not in self.request.get("generationConfig", {})


# Refusals after which a route's next target is tried: this target cannot serve now.
FALLBACK_KINDS = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.UNAVAILABLE, ErrorKind.OVERLOADED})


async def run(app: App, generations: list[Generation], responder: Responder) -> Generation | None:
    """Answer with the first generation an account can serve (a route's targets in order);
    returns it, or None when the client got an error before any answer. Every run is one
    entry in app.monitor and app.metrics, a cancelled one (client gone) included."""
    generation, account, crashed = (generations[0] if generations else None), "", False
    try:
        for index, generation in enumerate(generations):
            try:
                opened = await open_upstream(app, generation)
                break
            except ProxyError as error:
                if error.kind in FALLBACK_KINDS and index + 1 < len(generations):
                    log.info("route target %s cannot serve (%s): trying the next", generation.model, error.message)
                    continue
                _respond_error(generation, responder, error)
                app.usage.record(generation.client, "", generation.model, ok=False, usage=None)
                return None
        else:
            return None
        account = opened.account.id
        answered = False
        try:
            answer = _stream if generation.stream else _aggregate
            answered = await answer(app, generation, opened.response, responder)
        finally:
            opened.response.close()  # aborts the upstream connection unless it was read to the end
            app.pool.end(opened.account.id)
            app.usage.record(generation.client, opened.account.id, generation.model, ok=answered,
                             usage=generation.reader.usage)
            family = models.family(generation.model)
            for tool_id, signature, thinking in generation.reader.signatures:
                app.signatures.remember(family, signature, tool_id, thinking)
        return generation
    except Exception:
        crashed = True  # a bug: the server answers 500 unless a response started
        raise
    finally:
        if generation is not None:
            _observe(app, generations, generation, account, responder, crashed)


def _observe(app: App, generations: list[Generation], generation: Generation, account: str,
             responder: Responder, crashed: bool) -> None:
    """The request monitor's entry and the request metrics of one run; times from the Responder."""
    started = responder.created_at
    duration = time.monotonic() - started
    ttfb = responder.first_byte_at - started if responder.first_byte_at is not None else None
    status = responder.status if responder.started else 500 if crashed else 499  # 499: the client went away
    protocol = generation.wire.PROTOCOL
    usage = generation.reader.usage
    app.monitor.record(at=time.time() - duration, client=generation.client, protocol=protocol, model=generation.model,
                       account=account, status=status, ttfb=ttfb, duration=duration, usage=usage,
                       attempts=sum(g.attempts for g in generations), complete=responder.complete)
    app.metrics.observe_request(protocol=protocol, model=generation.model, status=status, duration=duration, ttfb=ttfb,
                                usage=usage)


def _respond_error(generation: Generation, responder: Responder, error: ProxyError) -> None:
    status, headers, body = generation.render_error(error)
    responder.respond(status, headers, body)


# --- pumping -----------------------------------------------------------------------------


async def _pump(app: App, generation: Generation, response: UpstreamResponse):  # type: ignore[no-untyped-def]
    """Per upstream read: the client events it produced, and whether any carried content.
    An async generator of (events, meaningful), shared by the stream and non-stream paths."""
    reader = generation.reader
    try:
        if generation.unary:
            events, _ = reader.step([await response.read(_MAX_UNARY_BODY)])
        else:
            sse = SSEDecoder(app.settings.sse_max_event_bytes)
            async for chunk in response:
                yield reader.step(event.data for event in sse.feed(chunk))
                if reader.done:
                    return  # a stop sequence matched: the rest of the upstream answer is not wanted
            events, _ = reader.step(event.data for event in sse.finish())
        yield events + reader.end(), True
    except HTTPClientError as exc:
        raise ProxyError(ErrorKind.UPSTREAM, f"the upstream stream broke: {exc}") from None
    except SSEError as exc:
        raise ProxyError(ErrorKind.UPSTREAM, f"the upstream stream is malformed: {exc}") from None


async def _aggregate(app: App, generation: Generation, response: UpstreamResponse, responder: Responder) -> bool:
    """The non-stream answer; whether it was one (False: the client got an error)."""
    accumulator = generation.wire.Accumulator()
    try:
        async for events, _ in _pump(app, generation, response):
            accumulator.apply(events)
    except ProxyError as error:
        _respond_error(generation, responder, error)
        return False
    responder.respond_json(200, accumulator.body)
    return True


async def _stream(app: App, generation: Generation, response: UpstreamResponse, responder: Responder) -> bool:
    """The streamed answer; whether it ended as one (False: an error, before or in the stream)."""
    writer = _StreamWriter(responder, generation.wire.HEARTBEAT, app.settings.stream_heartbeat)
    heartbeat = asyncio.get_running_loop().create_task(writer.heartbeat())
    answered = True
    app.metrics.stream_opened()
    try:
        async for events, meaningful in _pump(app, generation, response):
            await writer.send(generation.wire.encode(events), commit=meaningful)
    except ProxyError as error:
        answered = False
        if not writer.committed:
            heartbeat.cancel()
            _respond_error(generation, responder, error)
            return False
        log.warning("stream failed after its start: %s", error.message)
        await writer.send(generation.wire.encode(generation.reader.fail(error)), commit=True)
    finally:
        app.metrics.stream_closed()
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
    responder.end()
    return answered


class _StreamWriter:
    """Holds frames back until the first meaningful one, then writes; pings when idle."""

    def __init__(self, responder: Responder, ping: bytes, interval: float) -> None:
        self.responder = responder
        self.ping = ping
        self.interval = interval
        self.committed = False
        self.held: list[bytes] = []
        self.loop = asyncio.get_running_loop()
        self.last_write = self.loop.time()

    async def send(self, frames: bytes, *, commit: bool) -> None:
        if not frames:
            return
        if not self.committed:
            self.held.append(frames)
            if not commit:
                return
            await self._commit()
            return
        self.last_write = self.loop.time()
        await self.responder.write(frames)

    async def _commit(self) -> None:
        self.committed = True
        self.responder.start(200, SSE_HEADERS)
        held, self.held = b"".join(self.held), []
        self.last_write = self.loop.time()
        if held:
            await self.responder.write(held)

    async def heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self.loop.time() - self.last_write < self.interval:
                continue
            if not self.committed:
                await self._commit()  # waited long enough: start the response and keep it alive
            self.last_write = self.loop.time()
            await self.responder.write(self.ping)
