"""The fake's Google OAuth side (doc §1): the consent page (`/o/oauth2/v2/auth`), the token
endpoint (`/token`: authorization_code with optional PKCE, refresh_token), userinfo, and the
bearer-token check every API call starts with. `OAuthEndpoints` is mixed into FakeUpstream.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
import urllib.parse
from collections import Counter
from typing import Any

import orjson

from . import scripts
from .accounts import KNOWN_CLIENTS, AccountBook, AuthCode, FakeAccount
from .exchange import Exchange

SCOPES = (
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
    "https://www.googleapis.com/auth/cclog",
    "https://www.googleapis.com/auth/experimentsandconfigs",
)
SCOPE = " ".join(SCOPES)

ACCESS_TOKEN_LIFETIME = 3599.0  # seconds; what Google's token endpoint reports
AUTH_CODE_LIFETIME = 600.0  # seconds
INVALID_GRANT_FIXTURE = "oauth.token.400.invalid_grant.json"
TOKEN_JSON_TYPE = "application/json; charset=utf-8"

_PKCE_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_BEARER = re.compile(r"[Bb]earer +(\S+)")


def authenticate(ex: Exchange, book: AccountBook) -> FakeAccount | None:
    """The bearer's account, or None after answering 401. A missing or non-Bearer
    Authorization header is also a violation; an unknown/expired/revoked token is not."""
    auth = ex.record.header("Authorization")
    match = _BEARER.fullmatch(auth or "")
    if match is None:
        ex.violation("check_authorization", f"Authorization header missing or not Bearer: {auth!r}")
        ex.send_error_reply(scripts.unauthenticated())
        return None
    account = book.bearer_account(match.group(1))
    if account is None:
        ex.send_error_reply(scripts.unauthenticated())
        return None
    ex.record.account = account.email
    return account


def hmac_equal(a: str, b: str) -> bool:
    return secrets.compare_digest(a.encode(), b.encode())


def s256(verifier: str) -> str:
    """PKCE S256: base64url(sha256(verifier)) without padding."""
    return _b64url(hashlib.sha256(verifier.encode()).digest())


def check_auth_query(q: dict[str, str]) -> tuple[str, str] | None:
    """(error, description) for what Google's consent page would refuse in an authorization
    request (doc §1.3), or None."""
    for param in ("client_id", "redirect_uri", "response_type", "scope", "state"):
        if not q.get(param):
            return "invalid_request", f"Missing required parameter: {param}"
    if q["client_id"] not in KNOWN_CLIENTS:
        return "invalid_client", "The OAuth client was not found."
    target = urllib.parse.urlsplit(q["redirect_uri"])
    if target.scheme not in ("http", "https") or not target.hostname:
        return "invalid_request", f"Invalid parameter value for redirect_uri: {q['redirect_uri']}"
    if q["response_type"] != "code":
        return "unsupported_response_type", f"Invalid response_type: {q['response_type']}"
    if q["scope"] != SCOPE:
        return "invalid_scope", f"scope must be exactly the five Antigravity scopes in order, got {q['scope']!r}"
    if q.get("access_type") != "offline":
        return "invalid_request", f"access_type must be offline, got {q.get('access_type')!r}"
    if q.get("prompt") != "consent":
        return "invalid_request", f"prompt must be consent, got {q.get('prompt')!r}"
    challenge, method = q.get("code_challenge"), q.get("code_challenge_method")
    if challenge is None and method is not None:
        return "invalid_request", "code_challenge_method without code_challenge"
    if challenge is not None:
        if method != "S256":
            return "invalid_request", f"code_challenge_method must be S256, got {method!r}"
        if not _PKCE_CHALLENGE.fullmatch(challenge):
            return "invalid_request", "code_challenge must be base64url(sha256(verifier)) without padding (43 chars)"
    return None


def check_token_client(form: dict[str, str]) -> tuple[int, str, str] | None:
    """(status, error, description) when the token request's client id/secret is wrong."""
    client_id = form.get("client_id")
    if not client_id:
        return 400, "invalid_request", "Could not determine client ID from request."
    if client_id not in KNOWN_CLIENTS:
        return 401, "invalid_client", "The OAuth client was not found."
    if "client_secret" not in form or not form["client_secret"]:
        return 400, "invalid_request", "client_secret is missing."
    if not hmac_equal(form["client_secret"], KNOWN_CLIENTS[client_id]):
        return 401, "invalid_client", "Unauthorized"
    return None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def id_token(account: FakeAccount, client_id: str) -> str:
    """An id_token-shaped JWT with a fake signature (nobody should verify it)."""
    now = int(time.time())
    header = {"alg": "RS256", "kid": "fake-upstream", "typ": "JWT"}
    claims = {"iss": "https://accounts.google.com", "azp": client_id, "aud": client_id, "sub": account.user_id,
              "email": account.email, "email_verified": True, "name": account.name, "picture": account.picture,
              "iat": now, "exp": now + 3599}
    return ".".join([_b64url(orjson.dumps(header)), _b64url(orjson.dumps(claims)), _b64url(b"fake-signature")])


def _oauth_error(ex: Exchange, status: int, error: str, description: str, check: str | None = None) -> None:
    """An OAuth error answer; with `check`, also a violation."""
    if check:
        ex.violation(check, f"{error}: {description}")
    ex.send_json(status, {"error": error, "error_description": description}, content_type=TOKEN_JSON_TYPE)


class OAuthEndpoints:
    """FakeUpstream's OAuth handlers. The attributes below are FakeUpstream's."""

    _lock: threading.RLock
    _book: AccountBook
    access_token_lifetime: float
    next_login_email: str | None
    next_login_error: str | None
    token_delay: float
    token_calls: int
    token_calls_by_grant: Counter[str]

    def _h_auth(self, ex: Exchange) -> None:
        q = ex.record.query
        problem = check_auth_query(q)
        if problem is not None:
            error, detail = problem
            ex.violation("check_auth_request", f"{error}: {detail}")
            page = f"<!DOCTYPE html><html><body><h1>Error 400: {error}</h1><p>{detail}</p></body></html>"
            ex.send(400, page.encode(), "text/html; charset=utf-8")
            return
        with self._lock:
            email = self.next_login_email or self._book.first_email()
            known = self._book.knows(email)
        if not known:
            ex.violation("fake_configuration", f"next_login_email {email!r} is not an account")
            ex.send(500, b"no such fake account", "text/plain")
            return
        assert email is not None
        with self._lock:
            if self.next_login_error:
                params = {"error": self.next_login_error, "state": q["state"]}
            else:
                code = self._book.issue_code(email, q["client_id"], q["redirect_uri"], q.get("code_challenge"))
                params = {"code": code, "state": q["state"], "scope": SCOPE}
        redirect = q["redirect_uri"]
        location = redirect + ("&" if "?" in redirect else "?") + urllib.parse.urlencode(
            params, safe="/:", quote_via=urllib.parse.quote)
        ex.record.account = email
        ex.send(302, b"", "text/html; charset=utf-8", headers=[("Location", location)])

    def _h_token(self, ex: Exchange) -> None:
        form = ex.record.form or {}
        grant_type = form.get("grant_type", "")
        with self._lock:
            self.token_calls += 1
            self.token_calls_by_grant[grant_type] += 1
        if self.token_delay:
            ex.wait(seconds=self.token_delay)
        if ex.record.form is None:
            return _oauth_error(ex, 400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded",
                                "check_token_content_type")
        if not grant_type:
            return _oauth_error(ex, 400, "invalid_request", "Missing required parameter: grant_type",
                                "check_token_request")
        if grant_type not in ("authorization_code", "refresh_token"):
            return _oauth_error(ex, 400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}",
                                "check_token_request")
        bad_client = check_token_client(form)
        if bad_client is not None:
            return _oauth_error(ex, *bad_client, "check_token_client")
        if grant_type == "refresh_token":
            return self._refresh_token_grant(ex, form)
        return self._authorization_code_grant(ex, form)

    def _refresh_token_grant(self, ex: Exchange, form: dict[str, str]) -> None:
        token = form.get("refresh_token")
        if not token:
            return _oauth_error(ex, 400, "invalid_request", "Missing required parameter: refresh_token",
                                "check_token_request")
        client_id = form["client_id"]
        access = None
        with self._lock:
            grant = self._book.usable_refresh_grant(token)
            if grant is not None and grant.client_id == client_id:
                access = self._book.mint_access(grant.email, client_id, self.access_token_lifetime)
        if grant is None:
            ex.send(400, scripts.fixture_bytes(INVALID_GRANT_FIXTURE), TOKEN_JSON_TYPE)
            return None
        ex.record.account = grant.email
        if access is None:  # a refresh token only works with the client that minted it
            return _oauth_error(ex, 401, "unauthorized_client", "Unauthorized")
        return ex.send_json(200, {"access_token": access, "expires_in": int(self.access_token_lifetime),
                                  "scope": SCOPE, "token_type": "Bearer"}, content_type=TOKEN_JSON_TYPE)

    def _authorization_code_grant(self, ex: Exchange, form: dict[str, str]) -> None:
        code = form.get("code")
        if not code:
            return _oauth_error(ex, 400, "invalid_request", "Missing required parameter: code", "check_token_request")
        client_id = form["client_id"]
        with self._lock:
            entry = self._book.auth_code(code)
            failure = _code_failure(entry, form)
            if failure is None:
                assert entry is not None
                entry.used = True
                account = self._book.get(entry.email)
                refresh_token = self._book.ensure_refresh_token(account, client_id)
                body: dict[str, Any] = {
                    "access_token": self._book.mint_access(account.email, client_id, self.access_token_lifetime),
                    "expires_in": int(self.access_token_lifetime),
                    "refresh_token": refresh_token,
                    "scope": SCOPE,
                    "token_type": "Bearer",
                    "id_token": id_token(account, client_id),
                }
        if failure is not None:
            return _oauth_error(ex, *failure)
        ex.record.account = account.email
        ex.send_json(200, body, content_type=TOKEN_JSON_TYPE)
        return None

    def _h_userinfo(self, ex: Exchange) -> None:
        account = authenticate(ex, self._book)
        if account is None:
            return
        ex.send_json(200, {"id": account.user_id, "email": account.email, "verified_email": True,
                           "name": account.name, "picture": account.picture})


def _code_failure(entry: AuthCode | None, form: dict[str, str]) -> tuple[int, str, str, str | None] | None:
    """(status, error, description, violated check or None) when an auth code cannot be redeemed."""
    verifier = form.get("code_verifier")
    if entry is None or time.monotonic() - entry.issued_at > AUTH_CODE_LIFETIME:
        return 400, "invalid_grant", "Malformed auth code.", None
    if entry.used:
        return 400, "invalid_grant", "Bad Request", "check_code_reuse"
    if entry.client_id != form["client_id"]:
        return 400, "invalid_grant", "Bad Request", "check_code_client"
    if form.get("redirect_uri") != entry.redirect_uri:
        return 400, "redirect_uri_mismatch", "Bad Request", "check_code_redirect_uri"
    if entry.challenge is not None and not verifier:
        return 400, "invalid_grant", "Missing code verifier.", "check_pkce"
    if entry.challenge is not None and s256(verifier or "") != entry.challenge:
        return 400, "invalid_grant", "Invalid code verifier.", "check_pkce"
    if entry.challenge is None and verifier:
        return 400, "invalid_request", "code_verifier or verifier is not needed.", "check_pkce"
    return None
