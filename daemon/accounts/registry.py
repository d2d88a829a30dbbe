"""The daemon's in-memory view of accounts.json, reloaded when another process changes it."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ..upstream.failures import UpstreamFailure
from .model import Account, state_for_failure
from ..data_file import FileView
from .store import AccountStore

log = logging.getLogger(__name__)


class AccountRegistry(FileView[list[Account]]):
    def __init__(self, store: AccountStore) -> None:
        super().__init__(store)
        self._accounts: dict[str, Account] = {}

    def all(self) -> list[Account]:
        return list(self._accounts.values())

    def get(self, account_id: str) -> Account | None:
        return self._accounts.get(account_id)

    async def update(self, account_id: str, **changes: Any) -> Account | None:
        """Change one account on disk (under the store's lock) and here."""
        changes["updated_at"] = time.time()

        def change(accounts: list[Account]) -> list[Account]:
            return [a.with_changes(**changes) if a.id == account_id else a for a in accounts]

        self._take(await asyncio.to_thread(self.store.update, change))
        self.forget_signature()  # re-read once: another writer may have come in after us
        return self._accounts.get(account_id)

    async def record_failure(self, account_id: str, failure: UpstreamFailure) -> None:
        """Mark the account when an upstream refusal is about the account itself."""
        state = state_for_failure(failure)
        if state is None:
            return
        log.warning("account %s is now %s: %s", account_id, state.value, failure.message)
        await self.update(account_id, state=state, reason=failure.message, verify_url=failure.verify_url,
                          last_error=failure.message)

    def _take(self, accounts: list[Account]) -> None:
        self._accounts = {account.id: account for account in accounts}
