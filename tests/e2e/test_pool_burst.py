"""A burst through the real daemon: 200 concurrent requests over five fake accounts whose
upstream answers a seeded random share of them with 429s of every kind (short rate limits
waited out on the same account, quota exhaustion that cools an account down, bare 429s).

No request may be lost: each client gets a success or a protocol-shaped 429. The fake's
records show how many upstream attempts each request made, which must stay within
opening.MAX_ATTEMPTS."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import re
import time
from collections import Counter, defaultdict

import anthropic
import pytest

from daemon.dispatch.opening import MAX_ATTEMPTS
from tests.e2e.pool_support import CLAUDE, GEMINI, anthropic_client, ask, email, pool_settings, seed_pool
from tests.fakes import scripts as s
from tests.support import running_daemon

pytestmark = pytest.mark.e2e

ACCOUNTS = "abcde"
REQUESTS = 200
SEED = 20240611
SCRIPTED_PER_ACCOUNT = 40
ERROR_SHARE = 0.35
OK = "ok from the burst"
CONVERSATION = re.compile(rb'"burst (\d+)"')


@pytest.fixture
def settings(make_settings, fake):  # type: ignore[no-untyped-def]
    settings = pool_settings(make_settings, fake)
    seed_pool(settings.data_dir, fake, ACCOUNTS)
    return dataclasses.replace(settings, max_wait=0.5, retry_deadline=4.0)


def script_the_burst(fake, rng: random.Random) -> Counter[str]:  # type: ignore[no-untyped-def]
    """Per account, a seeded sequence of answers (any model); what is scripted, by kind."""
    kinds: Counter[str] = Counter()
    for account_id in ACCOUNTS:
        for _ in range(SCRIPTED_PER_ACCOUNT):
            if rng.random() >= ERROR_SHARE:
                reply, kind = s.stream_reply(s.text(OK)), "ok"
            else:
                kind = rng.choice(["short", "short", "quota", "bare"])
                if kind == "short":  # within AGPROXY_MAX_WAIT: waited out on the same account
                    reply = s.rate_limited(round(rng.uniform(0.02, 0.25), 3))
                elif kind == "quota":  # a reset within AGPROXY_MAX_WAIT is waited out; beyond, a cooldown
                    reply = s.quota_exhausted(round(rng.uniform(0.2, 2.0), 3))
                else:
                    reply = s.error("bare-no-details")
            kinds[kind] += 1
            fake.script(reply, account=email(account_id))
    return kinds


async def one(api: anthropic.AsyncAnthropic, index: int) -> tuple[int, str | None]:
    """(status, the answer's text or the 429's retry-after header)."""
    request = ask(f"burst {index}", CLAUDE if index % 2 else GEMINI)
    try:
        if index % 3 == 0:
            raw = await api.messages.with_raw_response.create(**request, stream=True)
            body = await raw.http_response.aread()
            text = OK if OK.encode() in body else s.DEFAULT_TEXT if s.DEFAULT_TEXT.encode() in body else "?"
            assert b"event: message_stop" in body, body
            return raw.http_response.status_code, text
        message = await api.messages.create(**request)
        return 200, message.content[0].text
    except anthropic.RateLimitError as refused:
        document = refused.response.json()
        assert document["type"] == "error" and document["error"]["type"] == "rate_limit_error", document
        retry_after = refused.response.headers.get("retry-after")
        assert retry_after is None or int(retry_after) >= 1
        return 429, retry_after


async def test_a_burst_of_200_requests_over_5_accounts_with_random_429s(settings, fake):
    scripted = script_the_burst(fake, random.Random(SEED))
    async with running_daemon(settings) as (listener, app, _routes):
        started = time.monotonic()
        async with anthropic_client(listener) as api:
            outcomes = await asyncio.gather(*(one(api, index) for index in range(REQUESTS)))
        elapsed = time.monotonic() - started
        assert all(load.in_flight == 0 for load in app.pool.state.loads.values())

    # no request lost: every one ended in a success or a protocol-shaped 429
    assert len(outcomes) == REQUESTS
    statuses = Counter(status for status, _ in outcomes)
    assert set(statuses) <= {200, 429}, statuses
    assert all(text in (OK, s.DEFAULT_TEXT) for status, text in outcomes if status == 200)
    assert statuses[200] >= 20, statuses

    # upstream attempts per request, from the fake's records
    attempts: dict[int, list] = defaultdict(list)
    for record in fake.generation_requests:
        match = CONVERSATION.search(record.body)
        assert match is not None, record.body[:200]
        attempts[int(match.group(1))].append(record)
    assert sum(map(len, attempts.values())) == len(fake.generation_requests)
    assert max(map(len, attempts.values())) <= MAX_ATTEMPTS
    for index, (status, got) in enumerate(outcomes):
        codes = [record.status for record in attempts.get(index, [])]
        if status == 200:  # exactly one attempt answered, and it was the last
            assert codes and codes[-1] == 200 and codes.count(200) == 1, (index, codes)
        else:
            assert 200 not in codes, (index, codes)
        if not codes:  # refused without an attempt: every account was cooling; the earliest reset is ≤ 2 s away
            assert status == 429 and got is not None and 1 <= int(got) <= 2, (index, got)

    # the 429s really happened, and were absorbed by retries
    refused_upstream = sum(1 for record in fake.generation_requests if record.status == 429)
    assert refused_upstream >= 20 and sum(scripted[k] for k in ("short", "quota", "bare")) >= 20
    rescued = [index for index, (status, _) in enumerate(outcomes) if status == 200 and len(attempts[index]) > 1]
    assert len(rescued) >= 5
    assert {record.account for record in fake.generation_requests} == {email(a) for a in ACCOUNTS}
    assert elapsed < 10, f"the burst took {elapsed:.1f} s"


# --- the bounds on one request ---------------------------------------------------------------


async def test_one_request_makes_at_most_max_attempts_upstream(settings, fake):
    """Every account answers short rate limits: each is waited on twice, then left; five
    accounts would make fifteen attempts, the bound stops them at MAX_ATTEMPTS."""
    for account_id in ACCOUNTS:
        for _ in range(3):
            fake.script(s.rate_limited(0.01, model=CLAUDE), model=CLAUDE, account=email(account_id))
    async with running_daemon(settings) as (listener, app, _routes):
        async with anthropic_client(listener) as api:
            with pytest.raises(anthropic.RateLimitError) as refused:
                await api.messages.create(**ask("never served"))
        assert all(load.in_flight == 0 for load in app.pool.state.loads.values())
    assert MAX_ATTEMPTS < 3 * len(ACCOUNTS)
    sequence = [(r.account or "?")[0] for r in fake.generation_requests]
    assert sequence == list("aaabbbcccddd"[:MAX_ATTEMPTS]), sequence
    assert refused.value.response.json()["error"]["type"] == "rate_limit_error"


async def test_the_retry_deadline_stops_a_wait_that_would_pass_it(settings, fake):
    """A bare 429 is retried on the same account after about a second, unless that wait
    would end beyond AGPROXY_RETRY_DEADLINE: then the client gets the 429 at once."""
    fake.script(s.error("bare-no-details"), model=CLAUDE, account=email("a"))
    short = dataclasses.replace(settings, retry_deadline=0.5)
    async with running_daemon(short) as (listener, _app, _routes):
        async with anthropic_client(listener) as api:
            started = time.monotonic()
            with pytest.raises(anthropic.RateLimitError) as refused:
                await api.messages.create(**ask("no time"))
            elapsed = time.monotonic() - started
    assert [(r.account, r.status) for r in fake.generation_requests] == [(email("a"), 429)]
    assert elapsed < 0.5
    assert refused.value.response.json()["error"]["type"] == "rate_limit_error"
