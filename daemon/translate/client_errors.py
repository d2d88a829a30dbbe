"""ProxyError → each client protocol's error status, headers and body (pure)."""

from __future__ import annotations

import orjson

from ..errors import ProxyError
from .anthropic_stream import ERROR_TYPES as ANTHROPIC_TYPES

Headers = list[tuple[bytes, bytes]]
JSON = (b"content-type", b"application/json")
SDK_RETRY_LIMIT = 60.0  # seconds: SDKs honour retry-after up to about this; beyond it, tell them not to retry


def retry_headers(error: ProxyError) -> Headers:
    if error.retry_after is None:
        return []
    seconds = max(1, round(error.retry_after))
    headers = [(b"retry-after", b"%d" % seconds)]
    if error.retry_after > SDK_RETRY_LIMIT:
        headers.append((b"x-should-retry", b"false"))  # Stainless SDKs would hammer otherwise
    return headers


def anthropic(error: ProxyError, request_id: str) -> tuple[int, Headers, bytes]:
    body = {"type": "error", "error": {"type": ANTHROPIC_TYPES[error.kind], "message": error.message},
            "request_id": request_id}
    return error.status, [JSON, *retry_headers(error)], orjson.dumps(body)
