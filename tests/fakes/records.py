"""What the fake upstream records about each request it receives: `RecordedRequest`, with
its `Headers` in wire order. Read through `fake.requests`, `fake.requests_to(path)`, ...
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import orjson


class Headers(Sequence[tuple[str, str]]):
    """Request headers as received: (name, value) pairs in wire order, plus
    case-insensitive lookup by name (`h["user-agent"]`, `h.get(...)`, `"Host" in h`)."""

    __slots__ = ("_pairs",)

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._pairs = tuple((str(k), str(v)) for k, v in pairs)

    @overload
    def __getitem__(self, key: int) -> tuple[str, str]: ...
    @overload
    def __getitem__(self, key: slice) -> Sequence[tuple[str, str]]: ...
    @overload
    def __getitem__(self, key: str) -> str: ...
    def __getitem__(self, key):  # type: ignore[no-untyped-def]
        if isinstance(key, str):
            value = self.get(key)
            if value is None:
                raise KeyError(key)
            return value
        return self._pairs[key]

    def __len__(self) -> int:
        return len(self._pairs)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._pairs)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            return self.get(item) is not None
        return item in self._pairs

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._pairs == other._pairs
        if isinstance(other, (list, tuple)):
            return list(self._pairs) == [tuple(p) for p in other]
        return NotImplemented

    def __repr__(self) -> str:
        return f"Headers({list(self._pairs)!r})"

    def get(self, name: str, default: str | None = None) -> str | None:
        lowered = name.lower()
        for key, value in self._pairs:
            if key.lower() == lowered:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        lowered = name.lower()
        return [v for k, v in self._pairs if k.lower() == lowered]

    def names(self) -> list[str]:
        return [k for k, _ in self._pairs]


@dataclass(eq=False)
class RecordedRequest:
    """One request as the fake received it."""

    seq: int
    method: str
    target: str  # raw request target, with the query string
    path: str
    query: dict[str, str]
    headers: Headers
    body: bytes
    json: Any = None  # parsed JSON body (None if not JSON)
    form: dict[str, str] | None = None  # parsed form body (token endpoint)
    account: str | None = None  # email the bearer token (or token grant) belongs to
    status: int | None = None  # status the fake answered
    outcome: str = "pending"  # complete | cut | client_closed | aborted
    connection_id: int = 0
    tls: bool = False
    received_at: float = field(default_factory=time.monotonic)

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)


def decode_body(headers: Headers, body: bytes) -> tuple[Any, dict[str, str] | None]:
    """(parsed JSON or None, parsed form or None): a form for a form content type, else JSON if
    the body parses."""
    content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        return None, dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if body:
        try:
            return orjson.loads(body), None
        except orjson.JSONDecodeError:
            pass
    return None, None
