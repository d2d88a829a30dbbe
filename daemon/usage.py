"""The usage book: requests, errors and tokens per client key and per account (and per model
inside each), counted in memory and kept in usage.json across restarts.

`record()` is pure bookkeeping (a few dict look-ups and additions, no I/O); `flush()` writes
the whole book to usage.json through a temp file and a rename, so the file is always either
the old or the new one. Flushes are not fsynced: these are statistics, rewritten every flush
interval, and the page cache outlives a crashed or killed daemon, so only a power loss or
kernel crash can lose the latest flushes (or, on some filesystems, leave an empty file, which
`load()` sets aside and counts from zero). An fsync per flush would cost a disk round trip
and wear for data that is cheap to lose; the final flush at shutdown is fsynced
(`durable=True`).

Not thread-safe: call record(), snapshot() and flush() from the event loop. Several
daemons sharing one data dir each write their own book; the last flush wins.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from .data_file import ensure_private_directory, replace_file
from .upstream.events import Usage

log = logging.getLogger(__name__)

FILE_NAME = "usage.json"
SCHEMA = "antigravity-proxy/usage"
VERSION = 1
NONE = "(none)"  # the key name of requests served without client keys; the account of requests no account took
OTHER = "(other)"  # models beyond MAX_MODELS in one entry
MAX_MODELS = 200  # distinct model names kept per key/account, so the book stays bounded

FIELDS = ("requests", "errors", "input_tokens", "output_tokens", "thinking_tokens", "cached_tokens")
_REQUESTS, _ERRORS, _INPUT, _OUTPUT, _THINKING, _CACHED = range(len(FIELDS))

Counts = list[int]  # one int per FIELDS entry


class _Entry:
    """The counts of one key or one account: a total and one row per model."""

    __slots__ = ("models", "total")

    def __init__(self) -> None:
        self.total: Counts = [0] * len(FIELDS)
        self.models: dict[str, Counts] = {}

    def row(self, model: str) -> Counts:
        row = self.models.get(model)
        if row is None:
            if len(self.models) >= MAX_MODELS and model != OTHER:
                return self.row(OTHER)
            row = self.models[model] = [0] * len(FIELDS)
        return row

    def as_json(self) -> dict[str, Any]:
        return {**_named(self.total), "models": {model: _named(row) for model, row in sorted(self.models.items())}}


class UsageBook:
    def __init__(self, data_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.directory = data_dir
        self.path = data_dir / FILE_NAME
        self._clock = clock
        self.since = clock()  # epoch seconds: when counting started (kept across restarts)
        self._keys: dict[str, _Entry] = {}
        self._accounts: dict[str, _Entry] = {}
        self._dirty = False

    def record(self, key: str, account: str, model: str, *, ok: bool, usage: Usage | None) -> None:
        """Count one request. `key` is the client key's name ("" without client keys),
        `account` the account id that served it ("" when none did), `model` the upstream model."""
        self._dirty = True
        for book, name in ((self._keys, key or NONE), (self._accounts, account or NONE)):
            entry = book.get(name)
            if entry is None:
                entry = book[name] = _Entry()
            for counts in (entry.total, entry.row(model or NONE)):
                counts[_REQUESTS] += 1
                if not ok:
                    counts[_ERRORS] += 1
                if usage is not None:
                    counts[_INPUT] += usage.prompt
                    counts[_OUTPUT] += usage.candidates
                    counts[_THINKING] += usage.thoughts
                    counts[_CACHED] += usage.cached

    def snapshot(self) -> dict[str, Any]:
        """The book, JSON-ready: {"keys": {name: counts}, "accounts": {id: counts}, "totals": counts};
        counts are FIELDS plus "models": {model: FIELDS}. input_tokens includes cached_tokens."""
        totals = [0] * len(FIELDS)
        for entry in self._keys.values():  # every request is counted under exactly one key
            totals = [a + b for a, b in zip(totals, entry.total)]
        return {
            "keys": {name: entry.as_json() for name, entry in sorted(self._keys.items())},
            "accounts": {name: entry.as_json() for name, entry in sorted(self._accounts.items())},
            "totals": _named(totals),
        }

    def load(self) -> None:
        """Start from usage.json when there is one. A file that cannot be read back is moved
        aside (usage.json.corrupt-TIME, never overwritten) and counting starts from zero."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        try:
            since, keys, accounts = _parse(raw)
        except ValueError as exc:
            aside = self.path.with_name(f"{FILE_NAME}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
            os.replace(self.path, aside)
            log.error("%s is not usable (%s): moved to %s; usage is counted from zero", self.path, exc, aside.name)
            return
        self.since, self._keys, self._accounts = since, keys, accounts
        self._dirty = False

    def flush(self, *, durable: bool = False) -> bool:
        """Write the book to usage.json when it changed since the last flush; True when written."""
        if not self._dirty:
            return False
        body = orjson.dumps({"schema": SCHEMA, "version": VERSION, "since": self.since, **self.snapshot()})
        ensure_private_directory(self.directory)
        replace_file(self.path, body, durable=durable)  # also removes temps of a daemon killed mid-flush
        self._dirty = False
        return True


def _named(counts: Counts) -> dict[str, int]:
    return dict(zip(FIELDS, counts))


def _parse(raw: bytes) -> tuple[float, dict[str, _Entry], dict[str, _Entry]]:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA or document.get("version") != VERSION:
        raise ValueError(f"not an {SCHEMA} version {VERSION} document")
    since = document.get("since")
    if not isinstance(since, (int, float)) or isinstance(since, bool):
        raise ValueError('"since" is not a number')
    return float(since), _parse_book(document.get("keys")), _parse_book(document.get("accounts"))


def _parse_book(value: Any) -> dict[str, _Entry]:
    if not isinstance(value, dict):
        raise ValueError("a book is not an object")
    book = {}
    for name, data in value.items():
        if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
            raise ValueError(f"entry {name!r} is not an object with models")
        entry = _Entry()
        entry.total = _parse_counts(data)
        entry.models = {model: _parse_counts(row) for model, row in data["models"].items()}
        book[name] = entry
    return book


def _parse_counts(value: Any) -> Counts:
    if not isinstance(value, dict):
        raise ValueError("counts are not an object")
    counts = [value.get(field, 0) for field in FIELDS]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts):
        raise ValueError("a count is not a non-negative integer")
    return counts
