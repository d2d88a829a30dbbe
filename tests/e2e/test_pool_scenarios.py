"""The account pool through the real daemon: three fake Google accounts a, b and c, the
official SDKs as clients, and the fake upstream's records as the witness of which account
served each attempt.

The daemon's background quota reader is not started by `running_daemon`, so nothing is read
unless a test reads it (`app.pool.read_quota`): with no quota known, no use yet and nothing
cooling, the pool takes a, then b, then c (least recently used, then id).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

import anthropic
import openai
import orjson
import pytest

from daemon.accounts.model import AccountState
from daemon.pool.quota import parse_rfc3339
from tests.e2e.pool_support import (
    CLAUDE,
    GEMINI,
    anthropic_client,
    ask,
    email,
    get,
    openai_client,
    pool_settings,
    seed_pool,
    served,
)
from tests.fakes import scripts as s
from tests.support import running_daemon

pytestmark = pytest.mark.e2e

HOUR = 3600.0


@pytest.fixture
def settings(make_settings, fake):  # type: ignore[no-untyped-def]
    settings = pool_settings(make_settings, fake)
    seed_pool(settings.data_dir, fake, "abc")
    return settings


def cooling_until(app, account_id: str, family: str) -> float | None:  # type: ignore[no-untyped-def]
    load = app.pool.state.loads.get(account_id)
    cooldown = load.cooling(family, time.time()) if load is not None else None
    return cooldown.until if cooldown is not None else None


def no_cooldowns(app) -> bool:  # type: ignore[no-untyped-def]
    return all(not load.cooldowns for load in app.pool.state.loads.values())


async def quota_document(listener) -> dict:  # type: ignore[no-untyped-def]
    """GET /quota as JSON (app.py mounts the route: a 404 is a failure, not a reason to skip the check)."""
    reply = await get(listener, "/quota")
    assert reply.status == 200, reply
    return orjson.loads(reply.body)


# --- 1. a quota 429 on one account -----------------------------------------------------------


async def test_a_quota_429_on_one_account_moves_claude_elsewhere_but_not_gemini(settings, fake):
    fake.script(s.quota_exhausted(HOUR, model=CLAUDE), model=CLAUDE, account=email("a"))
    async with running_daemon(settings) as (listener, app, _routes):
        async with anthropic_client(listener) as api:
            first = await api.messages.create(**ask("first"))
            assert first.content[0].text == s.DEFAULT_TEXT  # the client never saw the 429
            assert served(fake) == ["a", "b"]
            for turn in range(4):
                later = await api.messages.create(**ask(f"later conversation {turn}"))
                assert later.content[0].text == s.DEFAULT_TEXT
            assert sorted(set(served(fake, 2))) == ["b", "c"]  # a is out of Claude for the hour
        async with openai_client(listener) as chat:
            seen = len(fake.generation_requests)
            for turn in range(3):
                answer = await chat.chat.completions.create(
                    model=GEMINI, messages=[{"role": "user", "content": f"gemini conversation {turn}"}])
                assert answer.choices[0].message.content == s.DEFAULT_TEXT
            assert "a" in served(fake, seen)  # Gemini's quota is another family: a still serves it
        now = time.time()
        until = cooling_until(app, "a", "claude")
        assert until is not None and abs(until - (now + HOUR)) < 30
        assert cooling_until(app, "a", "gemini-flash") is None and cooling_until(app, "a", "gemini-pro") is None
        assert not app.pool.state.load("b").cooldowns and not app.pool.state.load("c").cooldowns
        assert all(load.in_flight == 0 for load in app.pool.state.loads.values())
        document = await quota_document(listener)
    entry = next(e for e in document["accounts"] if e["id"] == "a")
    shown = parse_rfc3339(entry["families"]["claude"]["cooling_until"])
    assert shown is not None and abs(shown - (now + HOUR)) < 30
    assert "exhausted" in entry["families"]["claude"]["cooling_reason"]
    assert entry["families"]["gemini-flash"]["cooling_until"] is None


# --- 2. a short retry delay ------------------------------------------------------------------


async def test_a_short_rate_limit_is_waited_out_on_the_same_account(settings, fake):
    fake.script(s.rate_limited(0.4, model=CLAUDE), model=CLAUDE, account=email("a"))  # RetryInfo 0.4s ≤ AGPROXY_MAX_WAIT
    async with running_daemon(settings) as (listener, app, _routes):
        async with anthropic_client(listener) as api:
            message = await api.messages.create(**ask("wait for me"))
        assert message.content[0].text == s.DEFAULT_TEXT
        assert served(fake) == ["a", "a"]
        first, second = fake.generation_requests
        assert first.status == 429 and second.status == 200
        assert second.received_at - first.received_at >= 0.4 * 0.75  # the delay, less the jitter
        assert no_cooldowns(app)


async def test_a_rate_limit_longer_than_the_max_wait_moves_on_and_cools_the_account(settings, fake):
    fake.script(s.rate_limited(30, model=CLAUDE), model=CLAUDE, account=email("a"))  # > AGPROXY_MAX_WAIT (10 s)
    async with running_daemon(settings) as (listener, app, _routes):
        async with anthropic_client(listener) as api:
            message = await api.messages.create(**ask("do not wait"))
        assert message.content[0].text == s.DEFAULT_TEXT
        assert served(fake) == ["a", "b"]
        until = cooling_until(app, "a", "claude")
        assert until is not None and 20 < until - time.time() <= 30


# --- 3. every account cooling ----------------------------------------------------------------

RESETS = {"a": HOUR, "b": 2 * HOUR, "c": 1.5 * HOUR}  # the earliest is a's


async def test_every_account_cooling_is_a_429_with_the_earliest_reset(settings, fake):
    for account_id, reset in RESETS.items():  # fetchAvailableModels says Claude is exhausted until then
        fake.set_quota(email(account_id), CLAUDE, None, reset)
    async with running_daemon(settings) as (listener, app, _routes):
        for account_id in RESETS:
            await app.pool.read_quota(account_id)
        assert all(cooling_until(app, account_id, "claude") for account_id in RESETS)
        async with anthropic_client(listener) as api:
            with pytest.raises(anthropic.RateLimitError) as refused:
                await api.messages.create(**ask("anyone?"))
            gemini = await api.messages.create(**ask("gemini still works", GEMINI))
        async with openai_client(listener) as chat:
            with pytest.raises(openai.RateLimitError) as codex_refused:
                await chat.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": "anyone?"}])
    now = time.time()
    response = refused.value.response
    assert response.status_code == 429 and abs(int(response.headers["retry-after"]) - HOUR) <= 5
    assert response.headers["x-should-retry"] == "false"  # an hour is beyond what SDKs wait
    assert response.json()["type"] == "error" and response.json()["error"]["type"] == "rate_limit_error"
    error = codex_refused.value.response.json()["error"]
    assert codex_refused.value.response.status_code == 429
    assert abs(int(codex_refused.value.response.headers["retry-after"]) - HOUR) <= 5
    assert error["type"] == "usage_limit_reached" and abs(error["resets_at"] - (now + HOUR)) <= 5
    assert gemini.content[0].text == s.DEFAULT_TEXT
    assert served(fake) == ["a"]  # only the Gemini request reached the upstream


async def test_once_three_quota_429s_cooled_every_account_the_next_request_gets_the_earliest_reset(settings, fake):
    for account_id, reset in RESETS.items():
        fake.script(s.quota_exhausted(reset, model=CLAUDE), model=CLAUDE, account=email(account_id))
    async with running_daemon(settings) as (listener, app, _routes):
        async with anthropic_client(listener) as api:
            with pytest.raises(anthropic.RateLimitError):
                await api.messages.create(**ask("first"))
            assert served(fake) == ["a", "b", "c"]
            with pytest.raises(anthropic.RateLimitError) as refused:
                await api.messages.create(**ask("second"))
        for account_id, reset in RESETS.items():
            until = cooling_until(app, account_id, "claude")
            assert until is not None and abs(until - (time.time() + reset)) < 30
    assert len(fake.generation_requests) == 3  # the second request did not knock on any account
    assert abs(int(refused.value.response.headers["retry-after"]) - HOUR) <= 5


async def test_the_request_that_cools_the_last_account_gets_the_earliest_reset(settings, fake):
    for account_id, reset in RESETS.items():
        fake.script(s.quota_exhausted(reset, model=CLAUDE), model=CLAUDE, account=email(account_id))
    async with running_daemon(settings) as (listener, _app, _routes):
        async with anthropic_client(listener) as api:
            with pytest.raises(anthropic.RateLimitError) as refused:
                await api.messages.create(**ask("first"))
    assert served(fake) == ["a", "b", "c"]
    assert abs(int(refused.value.response.headers["retry-after"]) - HOUR) <= 5  # a's reset; c's (1.5 h) is sent


# --- 4. every account needs a login ----------------------------------------------------------


@pytest.fixture
def logged_out_settings(make_settings, fake):  # type: ignore[no-untyped-def]
    settings = pool_settings(make_settings, fake)
    seed_pool(settings.data_dir, fake, "abc", {account_id: AccountState.NEEDS_LOGIN for account_id in "abc"})
    return settings


async def test_every_account_needing_a_login_is_a_503(logged_out_settings, fake):
    async with running_daemon(logged_out_settings) as (listener, _app, _routes):
        async with anthropic_client(listener) as api:
            with pytest.raises(anthropic.APIStatusError) as refused:
                await api.messages.create(**ask("hello?"))
        async with openai_client(listener) as chat:
            with pytest.raises(openai.APIStatusError) as chat_refused:
                await chat.chat.completions.create(model=GEMINI, messages=[{"role": "user", "content": "hello?"}])
    assert refused.value.status_code == 503 and refused.value.response.json()["error"]["type"] == "overloaded_error"
    assert "needs_login" in refused.value.response.json()["error"]["message"]
    assert "retry-after" not in refused.value.response.headers  # no reset to wait for
    assert chat_refused.value.status_code == 503 and chat_refused.value.response.json()["error"]["type"] == "server_error"
    assert fake.generation_requests == [] and fake.token_calls == 0


async def test_refresh_tokens_the_upstream_revoked_end_in_a_503(settings, fake):
    for account_id in "abc":
        fake.revoke(email(account_id))
    async with running_daemon(settings) as (listener, app, _routes):
        async with anthropic_client(listener) as api:
            with pytest.raises(anthropic.APIStatusError) as refused:
                await api.messages.create(**ask("hello?"))
        states = {account.id: account.state for account in app.accounts.all()}
    assert refused.value.status_code == 503 and refused.value.response.json()["error"]["type"] == "overloaded_error"
    assert states == {account_id: AccountState.NEEDS_LOGIN for account_id in "abc"}
    assert fake.generation_requests == []
    assert fake.token_calls_by_grant["refresh_token"] == 3  # each account's refresh tried once


# --- 5. a failure after the first streamed byte --------------------------------------------


async def test_a_stream_cut_after_its_first_event_is_not_retried(settings, fake):
    fake.script(s.stream_reply(s.text("Hel", "lo"), s.cut_mid_event(), s.text(" world")), model=CLAUDE,
                account=email("a"))
    async with running_daemon(settings) as (listener, app, _routes):
        async with anthropic_client(listener) as api:
            raw = await api.messages.with_raw_response.create(**ask("cut me"), stream=True)
            body = await raw.http_response.aread()
        assert raw.http_response.status_code == 200
        events = [line for line in body.split(b"\n") if line.startswith(b"event: ")]
        assert b'"text":"Hel"' in body.replace(b" ", b"") and b"event: error" in events
        assert events[-1] == b"event: error"  # the in-band error ends the stream
        assert served(fake) == ["a"]  # exactly one upstream request: nothing retried after the first byte
        await asyncio.sleep(0.2)  # anything the daemon would retry in the background would show by now
        assert len(fake.generation_requests) == 1
        assert no_cooldowns(app) and app.pool.state.load("a").in_flight == 0


async def test_a_stream_cut_before_any_event_is_a_clean_http_error(settings, fake):
    """Not retried: the 200 came, so the account answered (left for later: a fresh machine per retry)."""
    fake.script(s.stream_reply(s.flush_headers(), s.cut_mid_event(), s.text("never")), model=CLAUDE, account=email("a"))
    async with running_daemon(settings) as (listener, _app, _routes):
        async with anthropic_client(listener) as api:
            try:
                raw = await api.messages.with_raw_response.create(**ask("cut me early"), stream=True)
                status, body = raw.http_response.status_code, await raw.http_response.aread()
            except anthropic.APIStatusError as refused:
                status, body = refused.status_code, refused.response.content
    assert fake.generation_requests[0].outcome == "cut"
    assert (status, served(fake)) == (502, ["a"]), body
    assert b"the upstream stream broke" in body


# --- 6. a bare 429 ---------------------------------------------------------------------------


async def test_a_bare_429_is_retried_once_on_the_same_account_then_on_another(settings, fake):
    for _ in range(2):
        fake.script(s.error("bare-no-details"), model=CLAUDE, account=email("a"))
    async with running_daemon(settings) as (listener, app, _routes):
        async with anthropic_client(listener) as api:
            message = await api.messages.create(**ask("bare"))
        assert message.content[0].text == s.DEFAULT_TEXT
        assert served(fake) == ["a", "a", "b"]
        assert [r.status for r in fake.generation_requests] == [429, 429, 200]
        first, second, _third = fake.generation_requests
        assert second.received_at - first.received_at >= 0.75  # the bare-429 backoff (1 s ± 25 %)
        assert no_cooldowns(app)  # a bare 429 says nothing about quota
        assert all(account.state is AccountState.ACTIVE for account in app.accounts.all())
        async with anthropic_client(listener) as api:  # and a stays in the rotation
            await api.messages.create(**ask("next"))
            await api.messages.create(**ask("and next"))
        assert "a" in served(fake, 3)


# --- 7. X-Account ----------------------------------------------------------------------------


async def test_x_account_pins_a_request_to_one_account(settings, fake):
    async with running_daemon(settings) as (listener, _app, _routes):
        async with anthropic_client(listener) as api:
            for turn in range(3):
                await api.messages.create(**ask(f"pinned {turn}"), extra_headers={"X-Account": email("b")})
            await api.messages.create(**ask("pinned by id"), extra_headers={"X-Account": "c"})
            await api.messages.create(**ask("pinned, any case"), extra_headers={"X-Account": "B@Example.COM"})
            with pytest.raises(anthropic.NotFoundError) as unknown:
                await api.messages.create(**ask("nobody"), extra_headers={"X-Account": "nobody@example.com"})
    assert served(fake) == ["b", "b", "b", "c", "b"]
    assert unknown.value.status_code == 404
    error = unknown.value.response.json()["error"]
    assert error["type"] == "not_found_error" and "nobody@example.com" in error["message"]


async def test_a_pinned_account_that_cools_down_is_a_429_and_never_another_account(settings, fake):
    fake.script(s.quota_exhausted(HOUR, model=CLAUDE), model=CLAUDE, account=email("b"))
    pin = {"X-Account": email("b")}
    async with running_daemon(settings) as (listener, app, _routes):
        async with anthropic_client(listener) as api:
            with pytest.raises(anthropic.RateLimitError) as first:
                await api.messages.create(**ask("pinned"), extra_headers=pin)
            with pytest.raises(anthropic.RateLimitError) as second:
                await api.messages.create(**ask("pinned again"), extra_headers=pin)
            assert served(fake) == ["b"]  # no fallback to a or c, and b not asked again while cooling
            await api.messages.create(**ask("unpinned"))
        assert served(fake, 1) == ["a"]
        until = cooling_until(app, "b", "claude")
        assert until is not None and abs(until - (time.time() + HOUR)) < 30
    for refused in (first, second):
        assert refused.value.response.json()["error"]["type"] == "rate_limit_error"
        assert abs(int(refused.value.response.headers["retry-after"]) - HOUR) <= 5


# --- also: the concurrency cap ---------------------------------------------------------------


async def test_the_per_account_concurrency_cap_spreads_parallel_requests(make_settings, fake):
    settings = pool_settings(make_settings, fake)
    seed_pool(settings.data_dir, fake, "abc")
    settings = dataclasses.replace(settings, max_concurrent_per_account=1)
    for account_id in "abc":
        fake.script(s.stream_reply(s.pause(0.3), s.text("slow")), model=CLAUDE, account=email(account_id))
    async with running_daemon(settings) as (listener, app, _routes):
        async with anthropic_client(listener) as api:
            answers = await asyncio.gather(*(api.messages.create(**ask(f"parallel {n}")) for n in range(3)))
        assert [a.content[0].text for a in answers] == ["slow"] * 3
        assert sorted(served(fake)) == ["a", "b", "c"]  # one each: none went over its cap
        assert all(load.in_flight == 0 for load in app.pool.state.loads.values())


# --- also: a client that goes away before the upstream answers -------------------------------


async def test_a_client_gone_before_the_upstream_answered_leaves_no_request_in_flight(settings, fake):
    capped = dataclasses.replace(settings, max_concurrent_per_account=1, retry_deadline=0.5)
    fake.script(s.stream_reply(s.pause(0.5), s.text("too late")), model=CLAUDE, account=email("a"))
    async with running_daemon(capped) as (listener, app, _routes):
        async with anthropic_client(listener) as api:
            with pytest.raises(anthropic.APITimeoutError):
                await api.messages.create(**ask("impatient"), timeout=0.2)  # gives up and closes its connection
            await asyncio.sleep(0.6)  # past the upstream's answer: nothing of that request is left running
            assert fake.generation_requests[0].outcome != "complete"  # the daemon dropped the upstream request
            assert app.pool.state.load("a").in_flight == 0, "the cancelled attempt still counts against account a"
            answer = await api.messages.create(**ask("patient"), extra_headers={"X-Account": "a"})
    assert answer.content[0].text == s.DEFAULT_TEXT


# --- also: capacity and account refusals ----------------------------------------------------


async def test_server_capacity_is_retried_on_the_same_account_without_a_cooldown(settings, fake):
    fake.script(s.error("503.MODEL_CAPACITY"), model=CLAUDE, account=email("a"))
    quick = dataclasses.replace(settings, max_wait=0.3)  # the capacity backoff is capped by AGPROXY_MAX_WAIT
    async with running_daemon(quick) as (listener, app, _routes):
        async with anthropic_client(listener) as api:
            message = await api.messages.create(**ask("busy server"))
        assert message.content[0].text == s.DEFAULT_TEXT
        assert served(fake) == ["a", "a"]
        first, second = fake.generation_requests
        assert 0.3 * 0.75 <= second.received_at - first.received_at < 1.5
        assert no_cooldowns(app)


async def test_an_account_google_wants_verified_is_left_out_until_then(settings, fake):
    fake.script(s.validation_required(), model=CLAUDE, account=email("a"))
    async with running_daemon(settings) as (listener, app, _routes):
        async with anthropic_client(listener) as api:
            first = await api.messages.create(**ask("verify"))
            for turn in range(3):
                await api.messages.create(**ask(f"after {turn}", GEMINI))
        state = app.accounts.get("a").state
    assert first.content[0].text == s.DEFAULT_TEXT
    assert served(fake)[:2] == ["a", "b"] and "a" not in served(fake, 2)  # no family of a is used any more
    assert state is AccountState.VERIFICATION_REQUIRED
