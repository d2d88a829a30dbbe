"""Thought signatures the upstream issued, remembered so later turns can send them back.

Clients drop them (Claude Code strips unknown fields such as a signature on a tool_use
block) or carry them without saying which model family issued them; the upstream rejects
a missing Gemini call signature and any cross-family one (upstream doc §4.6). Bounded:
the oldest entries go first.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

CAPACITY = 20_000  # entries; a signature is ~0.3-3 KB, image ones are skipped


class SignatureStore:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._by_tool: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._family: OrderedDict[bytes, str] = OrderedDict()

    def remember(self, family: str, signature: str, tool_id: str | None = None) -> None:
        _put(self._family, _digest(signature), family, self._capacity)
        if tool_id:
            _put(self._by_tool, tool_id, (family, signature), self._capacity)

    def for_tool(self, tool_id: str) -> tuple[str, str] | None:
        return self._by_tool.get(tool_id)

    def family_of(self, signature: str) -> str | None:
        return self._family.get(_digest(signature))


def _digest(signature: str) -> bytes:
    return hashlib.sha256(signature.encode()).digest()[:16]


def _put(table: OrderedDict, key: object, value: object, capacity: int) -> None:  # type: ignore[type-arg]
    table[key] = value
    table.move_to_end(key)
    while len(table) > capacity:
        table.popitem(last=False)
