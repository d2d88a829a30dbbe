"""Recent Responses-API answers, so a later request can continue one by
`previous_response_id` (in memory, bounded, oldest first out)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

CAPACITY = 256  # conversations; each holds its whole item history


class RecentResponses:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._items: OrderedDict[str, list[Any]] = OrderedDict()

    def remember(self, response_id: str, items: list[Any]) -> None:
        """The items a continuation starts from: the request's input (with its own history)
        followed by the response's output."""
        self._items[response_id] = items
        self._items.move_to_end(response_id)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)

    def items(self, response_id: str) -> list[Any] | None:
        return self._items.get(response_id)
