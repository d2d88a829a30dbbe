"""What disable, enable and remove change on an account: one rule for the CLI and the admin page."""

from __future__ import annotations

import pytest

from daemon.accounts.model import Account, AccountState, switch_changes, without

pytestmark = pytest.mark.unit


def account(account_id: str = "acc001", state: AccountState = AccountState.ACTIVE, **fields: str) -> Account:
    return Account(id=account_id, email=f"{account_id}@example.com", refresh_token="rt", client_id="c",
                   state=state, **fields)


@pytest.mark.parametrize("state", list(AccountState))
def test_disable_always_works_and_clears_the_verify_url(state: AccountState) -> None:
    target = account(state=state, reason="why", verify_url="https://verify")
    changes = switch_changes(target, enable=False)
    assert changes == {"state": AccountState.DISABLED, "reason": "disabled by the user", "verify_url": ""}
    assert target.with_changes(**changes).state is AccountState.DISABLED


@pytest.mark.parametrize("state", [s for s in AccountState if s is not AccountState.NEEDS_LOGIN])
def test_enable_makes_the_account_active_again(state: AccountState) -> None:
    target = account(state=state, reason="why", verify_url="https://verify")
    assert switch_changes(target, enable=True) == {"state": AccountState.ACTIVE, "reason": "", "verify_url": ""}


def test_enable_refuses_an_account_that_needs_a_new_login() -> None:
    assert switch_changes(account(state=AccountState.NEEDS_LOGIN), enable=True) is None


def test_without_drops_only_that_account() -> None:
    first, second, third = account("acc001"), account("acc002"), account("acc003")
    assert without([first, second, third], "acc002") == [first, third]
    assert without([first], "acc009") == [first]
