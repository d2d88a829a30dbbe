"""Upstream client failures, one class per failure and phase (httpcore's scheme)."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator

import h11


class HTTPClientError(Exception):
    """Any failure talking to an upstream origin."""


class TimeoutException(HTTPClientError):
    pass


class ConnectTimeout(TimeoutException):
    pass


class ReadTimeout(TimeoutException):
    pass


class NetworkError(HTTPClientError):
    pass


class ConnectError(NetworkError):
    pass


class ProxyError(ConnectError):
    """The outbound proxy refused or failed the CONNECT tunnel."""


class ReadError(NetworkError):
    pass


class WriteError(NetworkError):
    pass


class RemoteProtocolError(HTTPClientError):
    """The origin broke HTTP/1.1 (or closed the connection mid-response)."""


class ResponseTooLarge(HTTPClientError):
    pass


@contextlib.contextmanager
def map_exceptions(phase: type[NetworkError]) -> Iterator[None]:
    """Convert socket, TLS and h11 errors into this package's classes, keeping the cause."""
    try:
        yield
    except h11.RemoteProtocolError as exc:
        raise RemoteProtocolError(str(exc)) from exc
    except (ssl.SSLError, OSError) as exc:
        raise phase(str(exc) or type(exc).__name__) from exc
