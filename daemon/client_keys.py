"""Client API keys: which key a request presents and whether it is one of ours (pure).

Every route accepts every form clients use (client-protocols.md §1.4): `x-api-key`,
`Authorization: Bearer`, `x-goog-api-key` and `?key=`. Two sources of keys are accepted:
AGPROXY_API_KEYS (Settings.api_keys) and the managed keys of keys.json (keys_store.py).
The presented key is hashed once and its SHA-256 digest compared in constant time against
the digest of every key of both sources, with no early exit: timing says nothing about
which key nearly matched, nor how long the keys are.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from .http_server.request import Request
from .redact import Secret

if TYPE_CHECKING:
    from .config import Settings
    from .keys_store import ManagedKeys

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


def key_name(presented: str | None, env_keys: ClientKeys, managed: ManagedKeys | None = None) -> str | None:
    """The name of the matching key (an AGPROXY_API_KEYS one wins over a managed one of the
    same value); None when nothing matches."""
    if presented is None:
        return None
    digest = hashlib.sha256(presented.encode()).digest()
    found = managed.match_digest(digest) if managed is not None else None
    for name, key in env_keys:
        if hmac.compare_digest(hashlib.sha256(key.reveal().encode()).digest(), digest):  # no early exit
            found = name
    return found


def keys_required(settings: Settings, managed: ManagedKeys | None) -> bool:
    """Whether clients must present a key: any AGPROXY_API_KEYS key or managed key exists."""
    return bool(settings.api_keys) or bool(managed)
