"""Classify upstream error replies into the few kinds the daemon acts on, and say what each
means for the client (pure).

The catalogue is the upstream doc §7: Google RPC error bodies, sometimes wrapped in a
JSON array, with ErrorInfo / RetryInfo / Help details.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import ErrorKind, ProxyError


class FailureKind(enum.StrEnum):
    INVALID_REQUEST = "invalid_request"  # 400: the request itself is wrong; never rotate
    AUTH = "auth"  # 401: the access token is not accepted; refresh once
    VERIFICATION_REQUIRED = "verification_required"  # 403 VALIDATION_REQUIRED: user must open a link
    FORBIDDEN = "forbidden"  # 403 ToS ban, missing licence, disabled service, other refusals
    NOT_FOUND = "not_found"  # 404
    QUOTA_EXHAUSTED = "quota_exhausted"  # 429 with a reset time for this account and model
    RATE_LIMITED = "rate_limited"  # 429 short limit, or bare 429 without details
    CAPACITY = "capacity"  # 429/503 MODEL_CAPACITY_EXHAUSTED: the server's, not the account's
    SERVER_ERROR = "server_error"  # 5xx


@dataclass(frozen=True, slots=True)
class UpstreamFailure:
    kind: FailureKind
    status: int
    message: str
    reason: str = ""  # ErrorInfo.reason, e.g. QUOTA_EXHAUSTED
    retry_after: float | None = None  # seconds, when the upstream said
    verify_url: str = ""


_VERIFY_URL = re.compile(r"https://accounts\.google\.com/signin/continue\?[^\s\"']+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def classify(status: int, body: bytes) -> UpstreamFailure:
    """An error reply: its HTTP status and body."""
    return classify_error(status, _error_object(body))


def classify_in_answer(error: object) -> UpstreamFailure:
    """The `error` member of a document inside a 200 answer (a stream event or a unary body):
    its `code` stands for the HTTP status; an error of another shape is a server error."""
    if not isinstance(error, dict):
        error = {"message": str(error)[:500]} if error else {}
    code = error.get("code")
    status = code if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599 else 500
    return classify_error(status, error)


def classify_error(status: int, error: dict[str, Any]) -> UpstreamFailure:
    """A Google RPC error object (`{"code", "message", "status", "details"}`) with its status."""
    message = str(error.get("message") or f"HTTP {status}")
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    info = next((d for d in details if str(d.get("@type", "")).endswith("google.rpc.ErrorInfo")), {})
    reason = str(info.get("reason") or "")
    metadata = info.get("metadata") if isinstance(info.get("metadata"), dict) else {}
    retry_after = _retry_after(details, metadata)

    if reason == "MODEL_CAPACITY_EXHAUSTED":
        kind = FailureKind.CAPACITY
    elif status == 429:
        kind = FailureKind.QUOTA_EXHAUSTED if reason == "QUOTA_EXHAUSTED" else FailureKind.RATE_LIMITED
    elif status == 401:
        kind = FailureKind.AUTH
    elif status == 403:
        kind = FailureKind.VERIFICATION_REQUIRED if reason == "VALIDATION_REQUIRED" else FailureKind.FORBIDDEN
    elif status == 404:
        kind = FailureKind.NOT_FOUND
    elif status >= 500:
        kind = FailureKind.SERVER_ERROR
    else:
        kind = FailureKind.INVALID_REQUEST
    verify_url = _verify_url(details, metadata, message) if kind is FailureKind.VERIFICATION_REQUIRED else ""
    return UpstreamFailure(kind, status, message, reason, retry_after, verify_url)


def error_in_answer(document: object) -> ProxyError | None:
    """The client error that an upstream document inside a 200 answer stands for: an error
    object, alone or first in an array (a stream event or a unary body); None for an answer."""
    if isinstance(document, list) and document:
        document = document[0]
    if isinstance(document, dict) and "error" in document and "response" not in document:
        return client_error(classify_in_answer(document["error"]))
    return None


# --- what a failure means for the client -------------------------------------------------------


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


def parse_duration(text: str) -> float | None:
    """A Go duration ("25h20m26.17s", "576.2ms", "3.95s") in seconds."""
    parts = _DURATION_PART.findall(text.strip())
    if not parts or "".join(number + unit for number, unit in parts) != text.strip():
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def _error_object(body: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    if isinstance(document, list) and document:  # the stream endpoint wraps errors in an array
        document = document[0]
    error = document.get("error") if isinstance(document, dict) else None
    return error if isinstance(error, dict) else {}


def _retry_after(details: list[dict[str, Any]], metadata: dict[str, Any]) -> float | None:
    delay = metadata.get("quotaResetDelay")
    if isinstance(delay, str) and (seconds := parse_duration(delay)) is not None:
        return seconds
    for detail in details:
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            value = detail.get("retryDelay")
            if isinstance(value, str) and (seconds := parse_duration(value)) is not None:
                return seconds
    return None


def _verify_url(details: list[dict[str, Any]], metadata: dict[str, Any], message: str) -> str:
    if isinstance(metadata.get("validation_url"), str):
        return str(metadata["validation_url"])
    for detail in details:
        for link in detail.get("links") or []:
            if isinstance(link, dict) and isinstance(link.get("url"), str):
                return str(link["url"])
    match = _VERIFY_URL.search(message)
    return match.group(0) if match else ""
