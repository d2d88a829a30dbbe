"""The daemon's in-memory view of accounts.json, reloaded when another process changes it."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ..upstream.failures import UpstreamFailure
from .model import Account, state_for_failure
from .store import AccountStore, Signature

log = logging.getLogger(__name__)


class AccountRegistry:
    def __init__(self, store: AccountStore) -> None:
        self.store = store
        self._accounts: dict[str, Account] = {}
        self._signature: Signature = None

    def load(self) -> None:
        """Read the file now (StoreError when it is unusable)."""
        signature = self.store.signature()
        self._set(self.store.read())
        self._signature = signature

    def reload_if_changed(self) -> bool:
        """Pick up changes made by the CLI or another daemon; a cheap stat() when nothing changed."""
        signature = self.store.signature()
        if signature == self._signature:
            return False
        self.load()
        log.info("accounts.json changed on disk: %d accounts", len(self._accounts))
        return True

    def all(self) -> list[Account]:
        return list(self._accounts.values())

    def get(self, account_id: str) -> Account | None:
        return self._accounts.get(account_id)

    async def update(self, account_id: str, **changes: Any) -> Account | None:
        """Change one account on disk (under the store's lock) and here."""
        changes["updated_at"] = time.time()

        def change(accounts: list[Account]) -> list[Account]:
            return [a.with_changes(**changes) if a.id == account_id else a for a in accounts]

        self._set(await asyncio.to_thread(self.store.update, change))
        self._signature = None  # re-read once: another writer may have come in after us
        return self._accounts.get(account_id)

    async def record_failure(self, account_id: str, failure: UpstreamFailure) -> None:
        """Mark the account when an upstream refusal is about the account itself."""
        state = state_for_failure(failure)
        if state is None:
            return
        log.warning("account %s is now %s: %s", account_id, state.value, failure.message)
        await self.update(account_id, state=state, reason=failure.message, verify_url=failure.verify_url,
                          last_error=failure.message)

    def _set(self, accounts: list[Account]) -> None:
        self._accounts = {account.id: account for account in accounts}
