"""The admin page's defences (pure: no I/O, every time is passed in).

- CSRF: each form carries an HMAC of a per-process random secret and the path it posts to,
  checked in constant time. The secret is born with the process, so a restart voids every
  open form (reload the page).
- Same origin: a POST must come from a page of this origin, as the browser says in Origin
  (or, lacking one, Referer); a request that says neither is refused.
- Loopback without a password: the Host header must name a loopback address, so a page
  elsewhere cannot reach the admin through DNS rebinding, and a request that came through a
  reverse proxy (Forwarded, X-Forwarded-For, X-Real-IP) is not a loopback client.
- Failed logins: a sliding window per client address (an IPv6 client by its /64).
- Headers on every admin response.

Referrer-Policy is `same-origin`, not `no-referrer`: under `no-referrer` browsers send
`Origin: null` and no Referer on a same-origin form POST (Fetch standard, "append a request
Origin header"), which would leave nothing to tell our own forms from a foreign page's.
`same-origin` still sends nothing to any other origin (the Google login URL, a
verification link).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import math
import secrets
from collections import OrderedDict, deque
from urllib.parse import urlsplit

CSRF_FIELD = "csrf"
SECRET_BYTES = 32

CONTENT_SECURITY_POLICY = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]

# Request headers a reverse proxy adds: such a request did not come from this machine.
PROXY_HEADERS = (b"forwarded", b"x-forwarded-for", b"x-real-ip", b"x-forwarded-host")

MAX_FAILURES = 5  # failed logins per address within WINDOW ...
WINDOW = 60.0  # seconds ... before the address gets 429 until the oldest one is that old
MAX_ADDRESSES = 4096  # addresses remembered; beyond it the least recently failing one is forgotten


# --- CSRF ------------------------------------------------------------------------------------


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def csrf_token(secret: bytes, path: str) -> str:
    """The token of forms that post to `path` (43 URL-safe characters)."""
    digest = hmac.new(secret, b"admin-form\x00" + path.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def csrf_valid(secret: bytes, path: str, given: str | None) -> bool:
    """Whether `given` is the token of `path`; constant time for any given value."""
    if not given:
        return False
    return hmac.compare_digest(csrf_token(secret, path).encode(), given.encode("utf-8", "surrogateescape"))


# --- origins -----------------------------------------------------------------------------------


def _authority(url: bytes) -> str | None:
    """'host[:port]' of an absolute http(s) URL, lower-cased; None for anything else."""
    try:
        parts = urlsplit(url.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return None
    return parts.netloc.lower()


def same_origin(host: bytes | None, origin: bytes | None, referer: bytes | None) -> bool:
    """Whether a request was sent by a page of the origin it was sent to.

    Origin decides when the browser sent one; `null` (an opaque origin: a sandboxed frame,
    a data: URL, a page under `no-referrer`) never matches. Without Origin, Referer decides.
    Neither: refused."""
    if not host:
        return False
    expected = host.decode("latin-1").strip().lower()
    if origin is not None:
        return _authority(origin) == expected
    if referer is not None:
        return _authority(referer) == expected
    return False


def _host_name(host: bytes) -> str:
    """The name in a Host header, without port or IPv6 brackets, lower-cased."""
    text = host.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    return text.rpartition(":")[0] if text.count(":") == 1 else text


def is_loopback_address(text: str) -> bool:
    if text == "localhost" or text.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def loopback_request(host: bytes | None, peer: str, headers: list[tuple[bytes, bytes]]) -> bool:
    """A request from this machine, to a loopback name: what the admin page serves without a
    password. Unknown peers ("") count as not loopback."""
    if not host or not is_loopback_address(_host_name(host)) or not is_loopback_address(peer):
        return False
    return not any(name in PROXY_HEADERS for name, _ in headers)


# --- failed logins -------------------------------------------------------------------------------


def limiter_key(peer: str) -> str:
    """Who a failure counts against: an IPv4 address, or an IPv6 client's /64 (one host
    usually holds a whole /64); unparsable peers count together."""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return "?"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class LoginLimiter:
    """At most `max_failures` failed logins per address in any `window` seconds; then that
    address waits until its oldest counted failure is `window` old. Other addresses are not
    affected. Time is a number passed in (monotonic seconds)."""

    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW,
                 max_addresses: int = MAX_ADDRESSES) -> None:
        if max_failures < 1 or window <= 0 or max_addresses < 1:
            raise ValueError("max_failures, window and max_addresses must be positive")
        self.max_failures = max_failures
        self.window = window
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, peer: str, now: float) -> int | None:
        """Whole seconds `peer` must wait (at least 1) when it is blocked, else None."""
        key = limiter_key(peer)
        times = self._failures.get(key)
        if times is None:
            return None
        self._expire(key, times, now)
        if len(times) < self.max_failures:
            return None
        return max(1, math.ceil(times[0] + self.window - now))

    def failed(self, peer: str, now: float) -> None:
        key = limiter_key(peer)
        times = self._failures.get(key)
        if times is None:
            times = self._failures[key] = deque(maxlen=self.max_failures)
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)
        else:
            self._failures.move_to_end(key)
        times.append(now)

    def succeeded(self, peer: str) -> None:
        self._failures.pop(limiter_key(peer), None)

    def _expire(self, key: str, times: deque[float], now: float) -> None:
        while times and times[0] + self.window <= now:
            times.popleft()
        if not times:
            del self._failures[key]

    def __len__(self) -> int:
        return len(self._failures)
