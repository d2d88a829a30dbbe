"""The last requests the daemon answered, for the admin page (pure: every time is passed in).

A bounded ring of small records: when, which client key, protocol and model, the account
that served it, the status, timings, token counts and how many upstream attempts it took.
Nothing of the request or answer body and no credential is ever kept: the key is its
name, the account its id (never the e-mail).

Not thread-safe: record() and recent() run on the event loop.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from .upstream.events import Usage

CAPACITY = 500  # requests kept, newest in, oldest out


@dataclass(frozen=True, slots=True)
class Entry:
    at: float  # epoch seconds the request was taken up
    client: str  # the client key's name, "" when the daemon runs without keys
    protocol: str  # "anthropic", "openai-chat", "responses" or "gemini"
    model: str  # the upstream model id that served (or was to serve) it
    account: str  # the account id that served it, "" when none did
    status: int  # the HTTP status the client got (499: it went away before any)
    ttfb: float | None  # seconds until the response head went out; None when it never did
    duration: float  # seconds
    usage: Usage | None
    attempts: int  # upstream requests made for it (retries and other accounts included)
    complete: bool  # the response went out to its end


class RequestMonitor:
    def __init__(self, capacity: int = CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._entries: deque[Entry] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self._entries)

    def record(self, *, at: float, client: str, protocol: str, model: str, account: str, status: int,
               ttfb: float | None, duration: float, usage: Usage | None, attempts: int,
               complete: bool = True) -> None:
        self._entries.append(Entry(at, client, protocol, model, account, status, ttfb, duration, usage, attempts,
                                   complete))

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        """Up to `limit` requests, newest first, as JSON-ready dicts (see `as_json`)."""
        entries = self._entries
        count = max(0, min(limit, len(entries)))
        return [as_json(entries[-1 - index]) for index in range(count)]


def as_json(entry: Entry) -> dict[str, Any]:
    """`model` is the upstream model id (what served the request, after routes and aliases);
    token counts are None when the upstream reported none. input_tokens includes
    cached_tokens; output_tokens excludes thinking_tokens."""
    usage = entry.usage
    return {
        "time": _iso(entry.at),
        "client": entry.client,
        "protocol": entry.protocol,
        "model": entry.model,
        "account": entry.account,
        "status": entry.status,
        "complete": entry.complete,
        "ttfb_ms": None if entry.ttfb is None else round(entry.ttfb * 1000, 1),
        "duration_ms": round(entry.duration * 1000, 1),
        "input_tokens": usage.prompt if usage is not None else None,
        "output_tokens": usage.candidates if usage is not None else None,
        "thinking_tokens": usage.thoughts if usage is not None else None,
        "cached_tokens": usage.cached if usage is not None else None,
        "attempts": entry.attempts,
    }


def _iso(epoch: float) -> str:
    """2026-11-21T19:58:49.123Z"""
    millis = int(round(epoch * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis // 1000)) + ".%03dZ" % (millis % 1000)
