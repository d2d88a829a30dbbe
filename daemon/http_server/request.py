"""The request record handed to handlers (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str  # decoded path, without the query string
    query: str  # raw query string, without "?"
    headers: list[tuple[bytes, bytes]]  # names lower-cased (h11 does it), wire order
    body: bytes
    peer: str  # client address, "" when unknown
    request_id: str
    params: dict[str, str] = field(default_factory=dict)  # path parameters from the router

    def header(self, name: bytes) -> bytes | None:
        """The first value of a header; `name` must be lower-case."""
        for key, value in self.headers:
            if key == name:
                return value
        return None
