"""Keeping secrets out of reprs, logs and error bodies (pure)."""

from __future__ import annotations

import hmac
import re


class Secret:
    """A string whose repr and str never show the value; read it with `reveal()`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def matches(self, candidate: str) -> bool:
        """Constant-time comparison, so response timing says nothing about the value."""
        return hmac.compare_digest(self._value.encode(), candidate.encode())

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and self.matches(other._value)

    def __hash__(self) -> int:
        return hash(Secret)


# Values that follow these names are credentials wherever they appear in a log line:
# headers ("authorization: Bearer x"), query strings ("?key=x"), JSON ('"refresh_token": "x"')
# and form bodies ("client_secret=x").
_SECRET_NAMES = (
    r"authorization|proxy-authorization|x-api-key|x-goog-api-key|api[_-]?key|key|"
    r"access_token|refresh_token|id_token|client_secret|code_verifier|code|password|token"
)
_SECRET_PATTERN = re.compile(
    rb"(?i)(?P<name>\b(?:" + _SECRET_NAMES.encode() + rb")\b)"
    rb"(?P<sep>\"?\s*[:=]\s*\"?(?:bearer\s+|basic\s+)?)"
    rb"(?P<value>[^\s\"&,;}]+)"
)
# Google credentials are recognisable by shape even without a name in front of them.
_TOKEN_SHAPES = re.compile(rb"\bya29\.[\w.-]+|\b1//[\w.-]+|\bGOCSPX-[\w-]+|\bAIza[\w-]{20,}")


# Every match of the two patterns contains one of these (lower-cased); a line without any
# of them is returned untouched, which keeps the per-line cost of logging small.
_TRIGGERS = ("auth", "key", "token", "secret", "code", "password", "ya29.", "1//", "gocspx", "aiza")


def redact_bytes(text: bytes) -> bytes:
    text = _SECRET_PATTERN.sub(rb"\g<name>\g<sep>***", text)
    return _TOKEN_SHAPES.sub(b"***", text)


def redact(text: str) -> str:
    """Mask credential values in free text (a second line of defence for log lines)."""
    lowered = text.lower()
    if not any(trigger in lowered for trigger in _TRIGGERS):
        return text
    return redact_bytes(text.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")


def mask_email(email: str) -> str:
    """'alice@example.com' -> 'al***e@example.com': enough to tell a pool's accounts apart
    (they often differ only at the end), too little to give the address away."""
    local, at, domain = email.partition("@")
    tail = local[-1] if len(local) > 4 else ""
    return local[:2] + "***" + tail + at + domain
