"""Google OAuth for installed apps: PKCE, the consent URL, token bodies and replies (pure).

Facts from the upstream doc §1: the five scopes in this order, `access_type=offline` and
`prompt=consent` (they guarantee a refresh token), the client secret is required even
with PKCE, and these error words mean the grant is gone for good.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson

SCOPES = (
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
    "https://www.googleapis.com/auth/cclog",
    "https://www.googleapis.com/auth/experimentsandconfigs",
)
CALLBACK_PATH = "/oauth-callback"
DEFAULT_EXPIRES_IN = 3600  # what Google reports (~1 h) when a reply omits expires_in

_PERMANENT_MARKERS = (
    "invalid_grant",
    "invalid_client",
    "unauthorized_client",
    "token has been expired or revoked",
    "token revoked",
    "token_revoked",
    "credentials are invalid",
)


class OAuthError(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent  # True: only a new login helps; False: worth retrying


@dataclass(frozen=True, slots=True)
class PKCE:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> PKCE:
        verifier = _b64url(secrets.token_bytes(32))
        return cls(verifier, _b64url(hashlib.sha256(verifier.encode()).digest()))


@dataclass(frozen=True, slots=True)
class TokenGrant:
    access_token: str
    expires_in: float
    refresh_token: str | None  # only on the first exchange (refreshes keep the old one)


@dataclass(frozen=True, slots=True)
class Callback:
    code: str
    state: str | None  # None when the user pasted a bare code


def new_state() -> str:
    return secrets.token_hex(16)


def authorization_url(auth_url: str, client_id: str, redirect_uri: str, state: str, pkce: PKCE) -> str:
    query = {
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": " ".join(SCOPES),
        "access_type": "offline",
        "prompt": "consent",
        "state": state,
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
    }
    return auth_url + ("&" if "?" in auth_url else "?") + urlencode(query)


def code_exchange_form(client_id: str, client_secret: str, code: str, redirect_uri: str, pkce: PKCE) -> bytes:
    return urlencode({
        "client_id": client_id,
        "client_secret": client_secret,
        "code": code,
        "grant_type": "authorization_code",
        "redirect_uri": redirect_uri,
        "code_verifier": pkce.verifier,
    }).encode()


def refresh_form(client_id: str, client_secret: str, refresh_token: str) -> bytes:
    return urlencode({
        "client_id": client_id,
        "client_secret": client_secret,
        "refresh_token": refresh_token,
        "grant_type": "refresh_token",
    }).encode()


def parse_token_reply(status: int, body: bytes) -> TokenGrant:
    """A token endpoint reply → TokenGrant, or OAuthError saying whether retrying can help."""
    try:
        document = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        document = {}
    if status == 200 and isinstance(document, dict) and isinstance(document.get("access_token"), str):
        refresh = document.get("refresh_token")
        return TokenGrant(
            access_token=document["access_token"],
            expires_in=float(document.get("expires_in") or DEFAULT_EXPIRES_IN),
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        )
    description = _error_text(document) or f"HTTP {status} from the token endpoint"
    permanent = any(marker in description.lower() for marker in _PERMANENT_MARKERS)
    raise OAuthError(description, permanent=permanent)


def parse_callback(text: str) -> Callback:
    """What the browser was sent back with: a full redirect URL, its query, or a bare code."""
    text = text.strip()
    if not text:
        raise OAuthError("nothing was pasted", permanent=False)
    query = urlsplit(text).query if "://" in text else text.lstrip("?")
    if "=" not in query:
        return Callback(code=text, state=None)  # a bare code, e.g. "4/0AX4Xf…"
    params = {key: values[0] for key, values in parse_qs(query).items()}
    if "error" in params:
        raise OAuthError(f"Google refused the login: {params['error']}", permanent=True)
    if not params.get("code"):
        raise OAuthError("the pasted URL has no `code` parameter", permanent=False)
    return Callback(code=params["code"], state=params.get("state"))


def parse_userinfo(body: bytes) -> str:
    try:
        email = orjson.loads(body).get("email")
    except (orjson.JSONDecodeError, AttributeError):
        email = None
    if not isinstance(email, str) or "@" not in email:
        raise OAuthError("the userinfo endpoint did not return an e-mail address", permanent=False)
    return email


def _error_text(document: object) -> str:
    if not isinstance(document, dict):
        return ""
    error = document.get("error")
    if isinstance(error, dict):  # nested Google shape {"error": {"code", "status", "message"}}
        return " ".join(str(error.get(key, "")) for key in ("status", "message")).strip()
    if isinstance(error, str):
        description = document.get("error_description")
        return f"{error}: {description}" if description else error
    return ""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
