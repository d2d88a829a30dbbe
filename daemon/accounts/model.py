"""The account record, its states, and the accounts.json document format (pure)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from ..upstream.failures import FailureKind, UpstreamFailure

SCHEMA = "antigravity-proxy/accounts"
SCHEMA_VERSION = 1


class AccountState(enum.StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"  # by the user
    NEEDS_LOGIN = "needs_login"  # refresh token revoked or expired: only a new login helps
    VERIFICATION_REQUIRED = "verification_required"  # Google wants the user to open `verify_url`
    FORBIDDEN = "forbidden"  # licence, terms-of-service or other permanent refusal
    NO_PROJECT = "no_project"  # discovery found no Cloud Code project for the account


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    email: str
    refresh_token: str = field(repr=False)
    client_id: str
    project_id: str | None = None
    tier: str | None = None
    state: AccountState = AccountState.ACTIVE
    reason: str = ""  # why the state is not active, in the upstream's own words
    verify_url: str = ""
    access_token: str = field(default="", repr=False)
    access_expires_at: float = 0.0  # epoch seconds
    last_error: str = ""
    next_retry_at: float = 0.0  # epoch seconds before which a failed refresh is not retried
    added_at: float = 0.0
    updated_at: float = 0.0

    @property
    def usable(self) -> bool:
        return self.state is AccountState.ACTIVE and bool(self.project_id)

    def with_changes(self, **changes: Any) -> Account:
        return replace(self, **changes)


class DocumentError(ValueError):
    """accounts.json cannot be used as it is; the message says why."""


_REQUIRED = ("id", "email", "refresh_token", "client_id")


def parse_document(raw: bytes) -> list[Account]:
    """The accounts in an accounts.json body; DocumentError when it is not one we can trust."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DocumentError(f"not valid JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise DocumentError(f"not an antigravity-proxy accounts file (no \"schema\": \"{SCHEMA}\")")
    version = document.get("version")
    if version != SCHEMA_VERSION:
        raise DocumentError(f"schema version {version!r} is not {SCHEMA_VERSION}: written by another release")
    entries = document.get("accounts")
    if not isinstance(entries, list):
        raise DocumentError('"accounts" is not a list')
    accounts = [account_from_dict(entry, f"accounts[{index}]") for index, entry in enumerate(entries)]
    ids = [a.id for a in accounts]
    if len(set(ids)) != len(ids):
        raise DocumentError("two accounts share an id")
    return accounts


def render_document(accounts: list[Account]) -> bytes:
    document = {"schema": SCHEMA, "version": SCHEMA_VERSION, "accounts": [account_to_dict(a) for a in accounts]}
    return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"


def account_to_dict(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "email": account.email,
        "refresh_token": account.refresh_token,
        "client_id": account.client_id,
        "project_id": account.project_id,
        "tier": account.tier,
        "state": account.state.value,
        "reason": account.reason,
        "verify_url": account.verify_url,
        "access_token": account.access_token,
        "access_expires_at": account.access_expires_at,
        "last_error": account.last_error,
        "next_retry_at": account.next_retry_at,
        "added_at": account.added_at,
        "updated_at": account.updated_at,
    }


def account_from_dict(entry: Any, where: str = "account") -> Account:
    if not isinstance(entry, dict):
        raise DocumentError(f"{where} is not an object")
    missing = [key for key in _REQUIRED if not isinstance(entry.get(key), str) or not entry.get(key)]
    if missing:
        raise DocumentError(f"{where} lacks {', '.join(missing)}")
    try:
        state = AccountState(entry.get("state", "active"))
        timestamps = [float(entry.get(key) or 0.0)
                      for key in ("access_expires_at", "added_at", "updated_at", "next_retry_at")]
    except (ValueError, TypeError):
        raise DocumentError(f"{where} has an invalid state or timestamp") from None
    return Account(
        id=entry["id"],
        email=entry["email"],
        refresh_token=entry["refresh_token"],
        client_id=entry["client_id"],
        project_id=entry.get("project_id") or None,
        tier=entry.get("tier") or None,
        state=state,
        reason=str(entry.get("reason") or ""),
        verify_url=str(entry.get("verify_url") or ""),
        access_token=str(entry.get("access_token") or ""),
        access_expires_at=timestamps[0],
        last_error=str(entry.get("last_error") or ""),
        added_at=timestamps[1],
        updated_at=timestamps[2],
        next_retry_at=timestamps[3],
    )


def find(accounts: list[Account], key: str) -> Account | None:
    """An account by id or (case-insensitive) e-mail."""
    lowered = key.lower()
    for account in accounts:
        if account.id == key or account.email.lower() == lowered:
            return account
    return None


def switch_changes(account: Account, *, enable: bool) -> dict[str, Any] | None:
    """The changes that enable or disable `account` (for `with_changes`); None when enabling
    cannot help: a revoked refresh token needs a new login, which each caller words its own way."""
    if not enable:
        return {"state": AccountState.DISABLED, "reason": "disabled by the user", "verify_url": ""}
    if account.state is AccountState.NEEDS_LOGIN:
        return None
    return {"state": AccountState.ACTIVE, "reason": "", "verify_url": ""}


def without(accounts: list[Account], account_id: str) -> list[Account]:
    """`accounts` less the one with `account_id`: what removing an account writes."""
    return [a for a in accounts if a.id != account_id]


def counts_by_state(accounts: list[Account]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for account in accounts:
        counts[account.state.value] = counts.get(account.state.value, 0) + 1
    return counts


# ErrorInfo reasons and message words that mean the account itself is refused for good.
_ACCOUNT_REFUSALS = ("SUBSCRIPTION_REQUIRED", "SERVICE_DISABLED")
_BAN_WORDS = ("has been disabled", "terms of service")


def state_for_failure(failure: UpstreamFailure) -> AccountState | None:
    """The account state an upstream refusal puts an account in; None when it is not about the account."""
    if failure.kind is FailureKind.VERIFICATION_REQUIRED:
        return AccountState.VERIFICATION_REQUIRED
    if failure.kind is FailureKind.FORBIDDEN:
        message = failure.message.lower()
        if failure.reason in _ACCOUNT_REFUSALS or all(word in message for word in _BAN_WORDS):
            return AccountState.FORBIDDEN
    return None
