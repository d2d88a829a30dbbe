"""The few kinds of failure the daemon reports to clients (pure).

Every layer raises ProxyError with a kind; translate/client_errors.py alone turns it into
each protocol's status and body, before or after the first byte of a response.
"""

from __future__ import annotations

import enum


class ErrorKind(enum.Enum):
    INVALID_REQUEST = 400
    AUTH = 401
    PERMISSION = 403
    NOT_FOUND = 404
    TOO_LARGE = 413
    RATE_LIMITED = 429
    INTERNAL = 500
    UPSTREAM = 502  # the upstream failed or answered something unusable
    UNAVAILABLE = 503  # no account can serve at all (not a rate limit)
    OVERLOADED = 529  # upstream capacity: retry later


class ProxyError(Exception):
    def __init__(self, kind: ErrorKind, message: str, *, retry_after: float | None = None, param: str | None = None,
                 resets_at: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after  # seconds; becomes the retry-after header
        self.param = param  # the request field at fault, for protocols that report it (OpenAI)
        self.resets_at = resets_at  # epoch seconds when a rate limit ends, for protocols that show it (Codex)

    @property
    def status(self) -> int:
        return self.kind.value
