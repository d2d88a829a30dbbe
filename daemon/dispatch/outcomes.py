"""What an upstream refusal means for the client and for the next attempt (pure)."""

from __future__ import annotations

import orjson

from ..errors import ErrorKind, ProxyError
from ..upstream.failures import FailureKind, UpstreamFailure

def client_error(failure: UpstreamFailure) -> ProxyError:
    kind = failure.kind
    if kind is FailureKind.INVALID_REQUEST:
        return ProxyError(ErrorKind.INVALID_REQUEST, _inner_message(failure.message))
    if kind in (FailureKind.QUOTA_EXHAUSTED, FailureKind.RATE_LIMITED):
        return ProxyError(ErrorKind.RATE_LIMITED, f"upstream rate limit: {failure.message}", retry_after=failure.retry_after)
    if kind is FailureKind.CAPACITY:
        return ProxyError(ErrorKind.OVERLOADED, f"upstream capacity: {failure.message}", retry_after=failure.retry_after)
    if kind is FailureKind.NOT_FOUND:
        return ProxyError(ErrorKind.NOT_FOUND, f"upstream: {failure.message}")
    if kind in (FailureKind.VERIFICATION_REQUIRED, FailureKind.FORBIDDEN):
        return ProxyError(ErrorKind.UNAVAILABLE, f"no account can serve: {failure.message}")
    return ProxyError(ErrorKind.UPSTREAM, f"upstream error {failure.status}: {failure.message}")


def _inner_message(message: str) -> str:
    """Claude errors arrive as Anthropic JSON stringified inside the Google message (upstream doc §7.2)."""
    if message.startswith("{"):
        try:
            inner = orjson.loads(message)
        except orjson.JSONDecodeError:
            return message
        error = inner.get("error") if isinstance(inner, dict) else None
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
    return message
