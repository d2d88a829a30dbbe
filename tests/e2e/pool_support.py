"""Shared plumbing of the account-pool scenarios: a daemon over several fake Google accounts,
SDK clients, and who served what according to the fake upstream's records."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import anthropic
import openai

from daemon.accounts.model import Account, AccountState
from daemon.accounts.store import AccountStore
from daemon.config import Settings
from tests.fakes import FakeUpstream
from tests.support import ANTIGRAVITY_CLIENT_ID, Reply, one_request

CLAUDE = "claude-sonnet-4-6"  # quota family "claude"; a non-stream request is one unary generateContent
GEMINI = "gemini-3-flash"  # quota family "gemini-flash"


def email(account_id: str) -> str:
    return f"{account_id}@example.com"


def seed_pool(data_dir, fake: FakeUpstream, ids: Iterable[str], states: dict[str, AccountState] | None = None,
              ) -> list[Account]:  # type: ignore[no-untyped-def]
    """Add each account to the fake and store it for the daemon, as `accounts add` would.
    Ids sort in the order given, so with nothing else to choose by the pool takes them in it."""
    accounts = []
    for account_id in ids:
        known = fake.add_account(email(account_id))
        accounts.append(Account(id=account_id, email=known.email, refresh_token=known.refresh_token,
                                client_id=ANTIGRAVITY_CLIENT_ID, project_id=known.project, tier=known.tier,
                                state=(states or {}).get(account_id, AccountState.ACTIVE)))
    AccountStore(data_dir).update(lambda _: accounts)
    return accounts


def pool_settings(make_settings: Callable[..., Settings], fake: FakeUpstream, **env: str) -> Settings:
    """Settings pointing every upstream URL at `fake` (no account stored yet)."""
    return make_settings(
        AGPROXY_UPSTREAM_URLS=fake.base_url, AGPROXY_OAUTH_TOKEN_URL=fake.token_url,
        AGPROXY_USERINFO_URL=fake.userinfo_url, AGPROXY_OAUTH_AUTH_URL=fake.auth_url, AGPROXY_STREAM_HEARTBEAT="0.2",
        **env)


def served(fake: FakeUpstream, since: int = 0) -> list[str]:
    """The account id (the e-mail's local part) of every generation request the fake received."""
    return [(r.account or "?").split("@")[0] for r in fake.generation_requests[since:]]


def anthropic_client(listener, **kwargs) -> anthropic.AsyncAnthropic:  # type: ignore[no-untyped-def]
    host, port = listener.address
    return anthropic.AsyncAnthropic(base_url=f"http://{host}:{port}", api_key="test-key", max_retries=0,
                                    http_client=anthropic.DefaultAsyncHttpxClient(**kwargs))


def openai_client(listener) -> openai.AsyncOpenAI:  # type: ignore[no-untyped-def]
    host, port = listener.address
    return openai.AsyncOpenAI(base_url=f"http://{host}:{port}/v1", api_key="test-key", max_retries=0,
                              http_client=openai.DefaultAsyncHttpxClient())


def ask(text: str, model: str = CLAUDE) -> dict[str, object]:
    """A one-turn Anthropic request; distinct texts are distinct conversations."""
    return {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": text}]}


async def get(listener, path: str) -> Reply:  # type: ignore[no-untyped-def]
    return await one_request(listener, "GET", path)
