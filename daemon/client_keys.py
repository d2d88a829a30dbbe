"""Client API keys: which key a request presents and whether it is one of ours (pure).

Every route accepts every form clients use (client-protocols.md §1.4): `x-api-key`,
`Authorization: Bearer`, `x-goog-api-key` and `?key=`. Keys are compared in constant time
against every configured key, so timing says nothing about which one nearly matched.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs

from .http_server.request import Request
from .redact import Secret

ClientKeys = tuple[tuple[str, Secret], ...]  # (name, key)


def presented_key(request: Request) -> str | None:
    for name in (b"x-api-key", b"x-goog-api-key"):
        value = request.header(name)
        if value:
            return value.decode("latin-1").strip()
    authorization = request.header(b"authorization")
    if authorization and authorization[:7].lower() == b"bearer ":
        return authorization[7:].decode("latin-1").strip()
    if "key=" in request.query:
        values = parse_qs(request.query).get("key")
        if values:
            return values[0]
    return None


def key_name(presented: str | None, keys: ClientKeys) -> str | None:
    """The name of the matching key; None when nothing matches."""
    if presented is None:
        return None
    found = None
    candidate = presented.encode()
    for name, key in keys:
        if hmac.compare_digest(key.reveal().encode(), candidate):  # no early exit
            found = name
    return found
