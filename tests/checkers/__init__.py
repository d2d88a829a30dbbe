"""Independent grammar checkers for the SSE bodies the daemon emits.

Written from `client-protocols.md` (sections 1.1, 1.2, 2.5, 3.4, 4.4-4.5, 5.4, 6) only, not
from the daemon's translators, so that a translator bug cannot hide in a shared assumption.

Each protocol module exposes one `check_*(body: bytes, **options) -> dict` that returns a small
summary of what the stream said, or raises `GrammarError` naming the event index and the rule.
This module holds the shared SSE line parser and JSON helpers.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["Event", "GrammarError", "guarded", "is_int", "load_json", "one_of", "parse_args_object", "parse_sse",
           "want"]


class GrammarError(AssertionError):
    """A stream broke a protocol rule. `index` is the 0-based SSE event index (None: framing
    problem that precedes any event), `rule` a short stable slug tests can assert on."""

    def __init__(self, index: int | None, rule: str, detail: str = "") -> None:
        self.index, self.rule, self.detail = index, rule, detail
        where = "stream" if index is None else f"event {index}"
        super().__init__(f"{where}: [{rule}] {detail}".rstrip())


@dataclass
class Event:
    """One blank-line-terminated SSE event as a client parser would see it."""

    index: int
    event: str | None = None
    data: str | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def heartbeat(self) -> bool:
        return self.event is None and self.data is None


_LINE_END = re.compile(r"\r\n|\n")


def parse_sse(
    body: bytes,
    *,
    fields: tuple[str, ...] = ("data",),
    comments: bool = True,
    allow_unterminated: bool = False,
) -> list[Event]:
    """Split a body into events (section 1.1 framing).

    Lines end in CRLF or LF (a bare CR is an error: no JSON document contains one raw). Every
    field line must be `<name>: <value>` with exactly one space after the colon, `<name>` one of
    `fields`, each at most once per event; `:`-comments only when `comments`. A blank line ends
    an event; extra blank lines are allowed (Gemini heartbeats). The body must end right after
    a blank line unless `allow_unterminated` (some SDK test fixtures lack the last one; real
    client parsers then never dispatch that final event).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GrammarError(None, "utf8", str(exc)) from None
    if text.startswith("\ufeff"):
        raise GrammarError(None, "bom", "body starts with a byte-order mark")
    lines = _LINE_END.split(text)
    tail = lines.pop()  # "" when the body ends with a line terminator
    events: list[Event] = []
    current: Event | None = None
    for line in lines + ([tail] if tail else []):
        idx = len(events)
        if "\r" in line:
            raise GrammarError(idx, "bare-cr", "carriage return not followed by line feed")
        if line == "":
            if current is not None:
                events.append(current)
                current = None
            continue
        if current is None:
            current = Event(idx)
        if line.startswith(":"):
            if not comments:
                raise GrammarError(idx, "comment", f"comment line not allowed here: {line[:40]!r}")
            current.comments.append(line[1:])
            continue
        name, sep, value = line.partition(":")
        if not sep or name not in fields:
            raise GrammarError(idx, "field", f"line is not one of {fields}: {line[:60]!r}")
        if not value.startswith(" ") or value.startswith("  "):
            raise GrammarError(idx, "field-space", f"{name!r} must be followed by ': ' (one space)")
        if getattr(current, name) is not None:
            raise GrammarError(idx, "one-field", f"more than one {name!r} line in one event")
        setattr(current, name, value[1:])
    if current is not None:
        if not allow_unterminated:
            raise GrammarError(current.index, "unterminated", "body ends inside an event (no blank line)")
        events.append(current)
    return events


def _no_constants(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def load_json(index: int, text: str | None, rule: str = "json") -> Any:
    """Parse one data payload as strict JSON (no NaN/Infinity)."""
    if text is None:
        raise GrammarError(index, "no-data", "event has no data line")
    try:
        return json.loads(text, parse_constant=_no_constants)
    except ValueError as exc:
        raise GrammarError(index, rule, f"invalid JSON: {exc}") from None


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def one_of(value: Any, choices: set[str]) -> bool:
    return isinstance(value, str) and value in choices


def want(index: int, ok: Any, rule: str, detail: str = "") -> None:
    """Raise GrammarError(index, rule, detail) unless `ok`."""
    if not ok:
        raise GrammarError(index, rule, detail)


def parse_args_object(index: int, text: str, rule: str, *, empty_ok: bool = False) -> dict:
    """Concatenated tool-argument fragments must be the JSON text of an object."""
    if empty_ok and text == "":
        return {}
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except ValueError as exc:
        raise GrammarError(index, rule, f"arguments {text[:60]!r} are not JSON: {exc}") from None
    want(index, isinstance(value, dict), rule, f"arguments are not a JSON object: {text[:60]!r}")
    return value


F = TypeVar("F", bound=Callable[..., Any])


def guarded(check: F) -> F:
    """Keep the contract "summary or GrammarError" when a payload has a shape no rule foresaw
    (a list where an object belongs, ...): such a TypeError/KeyError/... becomes GrammarError
    rule "shape", at the event index held in the innermost checker frame's local `i` (every
    checker function names the current event index `i`)."""

    @functools.wraps(check)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return check(*args, **kwargs)
        except (TypeError, KeyError, AttributeError, IndexError, ValueError) as exc:
            index, tb = None, exc.__traceback__
            while tb is not None:
                if isinstance(tb.tb_frame.f_locals.get("i"), int):
                    index = tb.tb_frame.f_locals["i"]
                tb = tb.tb_next
            raise GrammarError(index, "shape", f"unexpected payload shape ({type(exc).__name__}: {exc})") from None

    return wrapper  # type: ignore[return-value]
