"""The Reader of every translated protocol (pure): upstream JSON documents → neutral
events (with the daemon's own stop sequences) → one client protocol's state machine."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import orjson

from ..errors import ErrorKind, ProxyError
from ..translate.stops import StopSequences
from ..upstream.decode import StreamDecoder
from ..upstream.events import Usage
from ..upstream.failures import error_in_answer

Event = dict[str, Any]


class Machine(Protocol):
    """One client protocol's state machine over neutral model events."""

    signatures: list[tuple[str | None, str, str]]  # (tool id or None, signature, thinking text)

    def feed(self, event: object) -> list[Event]: ...
    def fail(self, error: ProxyError) -> list[Event]: ...


class Translating:
    """The Reader of every translated protocol: upstream JSON → neutral events (with the
    daemon's own stop sequences) → the protocol's machine."""

    def __init__(self, machine: Machine, stop_sequences: tuple[str, ...]) -> None:
        self.machine = machine
        self.decoder = StreamDecoder()
        self.stops = StopSequences(stop_sequences)
        self.done = False
        self.signatures = machine.signatures

    def step(self, documents: Iterable[bytes]) -> tuple[list[Event], bool]:
        out: list[Event] = []
        meaningful = False
        machine, stops, decoder = self.machine, self.stops, self.decoder
        for document in documents:
            events = decoder.feed(parse_document(document))
            for event in stops.feed(events) if stops.sequences else events:
                out += machine.feed(event)
                meaningful = meaningful or not isinstance(event, Usage)
            if stops.matched is not None:
                out += machine.feed(decoder.cut(stops.matched))
                self.done = True
                return out, True
        return out, meaningful

    @property
    def usage(self) -> Usage | None:
        return self.decoder.usage

    def end(self) -> list[Event]:
        if self.done:
            return []
        out: list[Event] = []
        for event in self.stops.feed([self.decoder.end()]):
            out += self.machine.feed(event)
        return out

    def fail(self, error: ProxyError) -> list[Event]:
        return self.machine.fail(error)


def parse_document(data: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ProxyError(ErrorKind.UPSTREAM, "the upstream sent an event that is not JSON") from None
    error = error_in_answer(document)  # an error can arrive on a 200 answer
    if error is not None:
        raise error
    if not isinstance(document, dict):
        raise ProxyError(ErrorKind.UPSTREAM, "the upstream sent an event that is not an object")
    return document
