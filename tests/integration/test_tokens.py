"""Token manager and account calls against the fake upstream: single-flight refresh,
invalid_grant, 401 retry, account-level refusals, onboarding, and the daemon's reload."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from daemon.accounts.login import Login
from daemon.accounts.model import Account, AccountState
from daemon.accounts.registry import AccountRegistry
from daemon.accounts.store import AccountStore
from daemon.accounts.tokens import AccountUnavailable, TokenManager, with_access_token
from daemon.app import App
from daemon.upstream.calls import UpstreamCallError, UpstreamCalls
from daemon.upstream.failures import classify
from tests.fakes import FakeUpstream
from tests.fakes import scripts as s
from tests.fakes.upstream import DEFAULT_EMAIL, DEFAULT_PROJECT
from tests.support import RawClient, running_daemon, seed_account

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parent.parent.parent


@pytest.fixture
def settings(make_settings, fake: FakeUpstream):
    return make_settings(
        AGPROXY_UPSTREAM_URLS=fake.base_url,
        AGPROXY_OAUTH_TOKEN_URL=fake.token_url,
        AGPROXY_USERINFO_URL=fake.userinfo_url,
        AGPROXY_OAUTH_AUTH_URL=fake.auth_url,
    )


def seed(settings, fake: FakeUpstream, *, access_token: str = "", expires_at: float = 0.0) -> Account:
    return seed_account(settings.data_dir, fake, access_token=access_token, access_expires_at=expires_at)


def tokens_for(settings, app_http) -> tuple[AccountRegistry, UpstreamCalls, TokenManager]:
    registry = AccountRegistry(AccountStore(settings.data_dir))
    registry.load()
    calls = UpstreamCalls(settings, app_http)
    return registry, calls, TokenManager(registry, calls, retry_delays=(0.01, 0.01))


async def test_a_burst_of_100_requests_on_an_expired_token_makes_one_refresh(settings, fake, caplog):
    seed(settings, fake)
    fake.token_delay = 0.2  # the refresh is slow: everyone arrives while it is in flight
    app = App(settings)
    registry, _, tokens = tokens_for(settings, app.http)
    results = await asyncio.gather(*(tokens.access_token("acc001") for _ in range(100)))
    assert len(set(results)) == 1 and results[0].startswith("ya29.")
    assert fake.token_calls == 1
    on_disk = AccountStore(settings.data_dir).read()[0]
    assert on_disk.access_token == results[0] and on_disk.access_expires_at > time.time() + 3000
    assert await tokens.access_token("acc001") == results[0]  # fresh: no second refresh
    assert fake.token_calls == 1
    await tokens.aclose()
    await app.aclose()
    assert results[0] not in caplog.text and fake.account(DEFAULT_EMAIL).refresh_token not in caplog.text


async def test_invalid_grant_marks_the_account_needs_login_for_good(settings, fake):
    seed(settings, fake)
    fake.revoke(DEFAULT_EMAIL)
    app = App(settings)
    registry, _, tokens = tokens_for(settings, app.http)
    with pytest.raises(AccountUnavailable) as info:
        await tokens.access_token("acc001")
    assert info.value.state is AccountState.NEEDS_LOGIN
    stored = AccountStore(settings.data_dir).read()[0]
    assert stored.state is AccountState.NEEDS_LOGIN
    assert "invalid_grant" in stored.reason
    calls_before = fake.token_calls
    with pytest.raises(AccountUnavailable):
        await tokens.access_token("acc001")  # terminal: no further refresh attempts
    assert fake.token_calls == calls_before == 1
    await tokens.aclose()
    await app.aclose()


async def test_an_unreachable_token_endpoint_is_retried_and_leaves_the_account_active(make_settings, fake):
    settings = make_settings(AGPROXY_UPSTREAM_URLS=fake.base_url, AGPROXY_OAUTH_TOKEN_URL="http://127.0.0.1:9/token")
    seed(settings, fake)
    app = App(settings)
    _, _, tokens = tokens_for(settings, app.http)
    with pytest.raises(AccountUnavailable) as info:
        await tokens.access_token("acc001")
    assert info.value.state is AccountState.ACTIVE
    stored = AccountStore(settings.data_dir).read()[0]
    assert stored.state is AccountState.ACTIVE and "token refresh failed" in stored.last_error
    assert stored.next_retry_at > time.time() + 30  # the endpoint is left alone for a while
    with pytest.raises(AccountUnavailable):
        await tokens.access_token("acc001")  # answered at once, without another round of attempts
    await tokens.aclose()
    await app.aclose()


async def test_a_401_refreshes_once_and_retries_once(settings, fake):
    seed(settings, fake, access_token=fake.mint_access_token(), expires_at=time.time() + 3000)
    fake.expire_access_tokens()  # the stored token now gets 401
    app = App(settings)
    _, calls, tokens = tokens_for(settings, app.http)
    body = await with_access_token(tokens, "acc001", lambda token: calls.fetch_available_models(token, DEFAULT_PROJECT))
    assert b"models" in body
    assert fake.token_calls == 1
    assert len(fake.requests_to("/v1internal:fetchAvailableModels")) == 2
    await tokens.aclose()
    await app.aclose()


async def test_a_second_401_is_raised_not_looped(settings, fake):
    seed(settings, fake, access_token=fake.mint_access_token(), expires_at=time.time() + 3000)
    fake.expire_access_tokens()
    fake.access_token_lifetime = 0  # every refreshed token is already expired
    app = App(settings)
    _, calls, tokens = tokens_for(settings, app.http)
    with pytest.raises(UpstreamCallError) as info:
        await with_access_token(tokens, "acc001", lambda token: calls.fetch_available_models(token, DEFAULT_PROJECT))
    assert info.value.failure.status == 401
    assert fake.token_calls == 1
    assert len(fake.requests_to("/v1internal:fetchAvailableModels")) == 2
    await tokens.aclose()
    await app.aclose()


async def test_a_verification_refusal_marks_the_account_with_its_link(settings, fake):
    seed(settings, fake)
    registry = AccountRegistry(AccountStore(settings.data_dir))
    registry.load()
    failure = classify(403, s.validation_required().body)
    await registry.record_failure("acc001", failure)
    stored = AccountStore(settings.data_dir).read()[0]
    assert stored.state is AccountState.VERIFICATION_REQUIRED
    assert stored.verify_url.startswith("https://accounts.google.com/")
    await registry.record_failure("acc001", classify(403, s.tos_disabled().body))
    assert AccountStore(settings.data_dir).read()[0].state is AccountState.FORBIDDEN


async def test_import_onboards_an_account_without_a_project(settings, fake):
    newcomer = fake.add_account("new@example.com", project=None, onboard_project="proj-onboarded", onboard_polls=2)
    app = App(settings)
    login = Login(settings, UpstreamCalls(settings, app.http), AccountStore(settings.data_dir), onboard_poll=0.01)
    added = await login.import_refresh_token(newcomer.refresh_token)
    assert added.created
    assert added.account.email == "new@example.com"
    assert added.account.project_id == "proj-onboarded"
    assert added.account.state is AccountState.ACTIVE
    assert len(fake.requests_to("/v1internal:onboardUser")) == 1
    again = await login.import_refresh_token(newcomer.refresh_token)
    assert not again.created and again.account.id == added.account.id
    assert len(AccountStore(settings.data_dir).read()) == 1
    await app.aclose()


async def test_the_daemon_sees_an_account_added_by_another_process(settings, fake):
    async with running_daemon(settings) as (listener, app, _routes):
        app.start()
        client = await RawClient.connect(listener.address)
        client.send_request("GET", "/health")
        assert orjson.loads((await client.read_reply()).body)["accounts"]["total"] == 0
        token_file = settings.data_dir.parent / "token.txt"
        token_file.write_text(fake.account(DEFAULT_EMAIL).refresh_token)
        env = {**os.environ, "AGPROXY_DATA_DIR": str(settings.data_dir), "AGPROXY_UPSTREAM_URLS": fake.base_url,
               "AGPROXY_OAUTH_TOKEN_URL": fake.token_url, "AGPROXY_USERINFO_URL": fake.userinfo_url}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "daemon", "accounts", "add", "--refresh-token-file", str(token_file),
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await process.communicate()
        assert process.returncode == 0, err
        for _ in range(50):
            client.send_request("GET", "/health")
            health = orjson.loads((await client.read_reply()).body)
            if health["accounts"]["total"] == 1:
                break
            await asyncio.sleep(0.1)
        client.close()
    assert health["accounts"] == {"total": 1, "by_state": {"active": 1}}


def test_a_corrupt_accounts_file_stops_the_daemon_with_a_clear_message(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "accounts.json").write_text('{"schema": "antigravity-proxy/accounts", "version": 1, "accounts": []}}')
    before = (data / "accounts.json").read_bytes()
    result = subprocess.run([sys.executable, "-m", "daemon", "serve"], cwd=ROOT, capture_output=True, timeout=30,
                            env={**os.environ, "AGPROXY_PORT": "0", "AGPROXY_DATA_DIR": str(data)})
    assert result.returncode == 2
    message = result.stderr.decode()
    assert str(data / "accounts.json") in message and "accounts doctor" in message
    assert (data / "accounts.json").read_bytes() == before


async def test_oauth_and_cloud_code_calls_go_through_https_proxy(make_settings):
    import ssl

    import trustme

    from tests.fakes.connect_proxy import ConnectProxy

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    with FakeUpstream(server_context) as tls_fake, ConnectProxy() as proxy:
        settings = make_settings(
            AGPROXY_UPSTREAM_URLS=tls_fake.base_url, AGPROXY_OAUTH_TOKEN_URL=tls_fake.token_url,
            AGPROXY_USERINFO_URL=tls_fake.userinfo_url, HTTPS_PROXY=proxy.url,
        )
        app = App(settings, ssl_context=client_context)
        login = Login(settings, app.calls, AccountStore(settings.data_dir))
        added = await login.import_refresh_token(tls_fake.account(DEFAULT_EMAIL).refresh_token)
        await app.aclose()
        tls_fake.assert_no_violations()
    assert added.account.project_id == DEFAULT_PROJECT
    assert proxy.tunnels >= 1
    assert {method for method, _, _ in proxy.requests} == {"CONNECT"}
    assert tls_fake.token_calls == 1 and tls_fake.requests_to("/v1internal:loadCodeAssist")
