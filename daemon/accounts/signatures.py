"""Thought signatures the upstream issued, remembered so later turns can send them back.

Clients drop them (Claude Code strips unknown fields such as a signature on a tool_use
block, and a client may drop thinking blocks) or replay them without saying which model
family issued them; the upstream rejects a missing Gemini call signature, a Claude tool
loop without its signed thinking, and any cross-family signature (upstream doc §4.6).

Kept in memory (bounded, oldest first out) and appended to `signatures.jsonl` in the data
dir, so a daemon restart does not break a conversation in progress. The file is rewritten
from memory when it grows past twice the capacity; a torn last line is ignored.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from ..data_file import ensure_private_directory, replace_file

log = logging.getLogger(__name__)

CAPACITY = 4096  # remembered calls and thinking blocks
MAX_SIGNATURE = 64 * 1024  # image parts carry multi-MB signatures that no replay needs
FILE_NAME = "signatures.jsonl"


@dataclass(frozen=True, slots=True)
class Remembered:
    family: str  # "claude" or "gemini": who issued the signature
    signature: str
    thinking: str = ""  # the thinking text the signature seals (Claude checks the pair)


class SignatureStore:
    def __init__(self, data_dir: Path | None = None, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._by_tool: OrderedDict[str, Remembered] = OrderedDict()
        self._family: OrderedDict[bytes, str] = OrderedDict()
        self._path = data_dir / FILE_NAME if data_dir is not None else None
        self._file: IO[bytes] | None = None
        self._lines = 0

    def load(self) -> None:
        """Read what earlier runs remembered, then keep appending to the file."""
        if self._path is None:
            return
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError:
            raw = b""
        lines = raw.splitlines()
        for line in lines[-2 * self._capacity:]:
            try:
                entry = orjson.loads(line)
                self._keep(entry["f"], entry["s"], entry.get("t"), entry.get("k", ""))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue  # a torn last line after a crash, or a foreign line: skip it
        self._lines = len(lines)
        self._open()
        if raw and not raw.endswith(b"\n"):
            self._write(b"\n")  # end a line torn by a crash, so the next entry starts clean

    def remember(self, family: str, signature: str, tool_id: str | None = None, thinking: str = "") -> None:
        if not signature or len(signature) > MAX_SIGNATURE:
            return
        self._keep(family, signature, tool_id, thinking)
        if self._file is not None:
            self._write(orjson.dumps({"f": family, "s": signature, "t": tool_id, "k": thinking}) + b"\n")
            self._lines += 1
            if self._lines > 2 * self._capacity:
                self._compact()

    def for_tool(self, tool_id: str) -> Remembered | None:
        return self._by_tool.get(tool_id)

    def family_of(self, signature: str) -> str | None:
        return self._family.get(_digest(signature))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _write(self, data: bytes) -> None:
        assert self._file is not None
        self._file.write(data)
        self._file.flush()  # no fsync: losing the last entries to a power cut is acceptable

    def _keep(self, family: str, signature: str, tool_id: str | None, thinking: str) -> None:
        _put(self._family, _digest(signature), family, self._capacity)
        if tool_id:
            _put(self._by_tool, tool_id, Remembered(family, signature, thinking), self._capacity)

    def _open(self) -> None:
        assert self._path is not None
        ensure_private_directory(self._path.parent)
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)  # thinking text is private
        self._file = os.fdopen(fd, "ab")

    def _compact(self) -> None:
        # Only per-call entries are rewritten: family-only entries are kept as digests,
        # and an unknown signature is treated as the conversation's own family anyway.
        assert self._path is not None
        self.close()
        body = b"".join(orjson.dumps({"f": r.family, "s": r.signature, "t": tool_id, "k": r.thinking}) + b"\n"
                        for tool_id, r in self._by_tool.items())
        try:
            replace_file(self._path, body, durable=False)  # like the appends: a power cut may lose the latest
        except OSError as exc:
            log.warning("could not compact %s: %s", self._path, exc.strerror)
        self._lines = len(self._by_tool)
        self._open()


def _digest(signature: str) -> bytes:
    return hashlib.sha256(signature.encode()).digest()[:16]


def _put(table: OrderedDict, key: object, value: object, capacity: int) -> None:  # type: ignore[type-arg]
    table[key] = value
    table.move_to_end(key)
    while len(table) > capacity:
        table.popitem(last=False)
