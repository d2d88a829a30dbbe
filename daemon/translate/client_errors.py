"""ProxyError → each client protocol's error status, headers and body (pure)."""

from __future__ import annotations

import orjson

from ..errors import ErrorKind, ProxyError

Headers = list[tuple[bytes, bytes]]
JSON = (b"content-type", b"application/json")
SDK_RETRY_LIMIT = 60.0  # seconds: SDKs honour retry-after up to about this; beyond it, tell them not to retry


# Anthropic error `type` per kind (client-protocols.md §2.6).
ANTHROPIC_TYPES = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.AUTH: "authentication_error",
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.NOT_FOUND: "not_found_error",
    ErrorKind.TOO_LARGE: "request_too_large",
    ErrorKind.RATE_LIMITED: "rate_limit_error",
    ErrorKind.INTERNAL: "api_error",
    ErrorKind.UPSTREAM: "api_error",
    ErrorKind.UNAVAILABLE: "overloaded_error",
    ErrorKind.OVERLOADED: "overloaded_error",
}


def retry_headers(error: ProxyError) -> Headers:
    if error.retry_after is None:
        return []
    seconds = max(1, round(error.retry_after))
    headers = [(b"retry-after", b"%d" % seconds)]
    if error.retry_after > SDK_RETRY_LIMIT:
        headers.append((b"x-should-retry", b"false"))  # Stainless SDKs would hammer otherwise
    return headers


def anthropic_error(error: ProxyError) -> dict[str, str]:
    """The `error` object, in a body and in an `error` stream event."""
    return {"type": ANTHROPIC_TYPES[error.kind], "message": error.message}


def anthropic(error: ProxyError, request_id: str) -> tuple[int, Headers, bytes]:
    body = {"type": "error", "error": anthropic_error(error), "request_id": request_id}
    return error.status, [JSON, *retry_headers(error)], orjson.dumps(body)


# OpenAI error `type` per kind (client-protocols.md §3.5); the SDK picks its exception from the status.
OPENAI_TYPES = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.AUTH: "invalid_request_error",
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.NOT_FOUND: "invalid_request_error",
    ErrorKind.TOO_LARGE: "invalid_request_error",
    ErrorKind.RATE_LIMITED: "rate_limit_exceeded",
    ErrorKind.INTERNAL: "server_error",
    ErrorKind.UPSTREAM: "server_error",
    ErrorKind.UNAVAILABLE: "server_error",
    ErrorKind.OVERLOADED: "server_error",
}
OPENAI_CODES = {ErrorKind.AUTH: "invalid_api_key", ErrorKind.NOT_FOUND: "model_not_found",
                ErrorKind.RATE_LIMITED: "rate_limit_exceeded", ErrorKind.OVERLOADED: "server_is_overloaded"}
# 529 is Anthropic's own; OpenAI and Gemini clients know 503 for "overloaded, retry".
PLAIN_STATUS = {ErrorKind.OVERLOADED: 503}

# Google RPC status names (client-protocols.md §5.5).
GEMINI_STATUS = {
    ErrorKind.INVALID_REQUEST: "INVALID_ARGUMENT",
    ErrorKind.AUTH: "UNAUTHENTICATED",
    ErrorKind.PERMISSION: "PERMISSION_DENIED",
    ErrorKind.NOT_FOUND: "NOT_FOUND",
    ErrorKind.TOO_LARGE: "INVALID_ARGUMENT",
    ErrorKind.RATE_LIMITED: "RESOURCE_EXHAUSTED",
    ErrorKind.INTERNAL: "INTERNAL",
    ErrorKind.UPSTREAM: "INTERNAL",
    ErrorKind.UNAVAILABLE: "UNAVAILABLE",
    ErrorKind.OVERLOADED: "UNAVAILABLE",
}


def openai_error(error: ProxyError) -> dict[str, object]:
    """The `{"error": …}` object, as a body and as an in-stream chunk. A rate limit that lasts
    beyond what SDKs wait is Codex's `usage_limit_reached`, whose `resets_at` it shows the user."""
    body: dict[str, object] = {"message": error.message, "type": OPENAI_TYPES[error.kind], "param": error.param,
                               "code": OPENAI_CODES.get(error.kind)}
    if error.kind is ErrorKind.RATE_LIMITED and error.resets_at is not None and (error.retry_after or 0) > SDK_RETRY_LIMIT:
        body["type"], body["resets_at"] = "usage_limit_reached", int(error.resets_at)
    return {"error": body}


def openai(error: ProxyError, request_id: str) -> tuple[int, Headers, bytes]:
    status = PLAIN_STATUS.get(error.kind, error.status)
    return status, [JSON, *retry_headers(error)], orjson.dumps(openai_error(error))


def gemini_error(error: ProxyError) -> dict[str, object]:
    status = PLAIN_STATUS.get(error.kind, error.status)
    return {"error": {"code": status, "message": error.message, "status": GEMINI_STATUS[error.kind]}}


def gemini(error: ProxyError, request_id: str) -> tuple[int, Headers, bytes]:
    status = PLAIN_STATUS.get(error.kind, error.status)
    return status, [JSON, *retry_headers(error)], orjson.dumps(gemini_error(error))
