"""GET /usage through a real daemon: admin-only, counts real requests per client key, account
and model, and keeps them across a restart. Managed keys (keys.json) authenticate requests
and stop doing so once revoked.

Relies on the App wiring: `app.usage` (a UsageBook loaded at start, flushed on aclose),
`app.keys` (ManagedKeys), handlers.usage registered, the runner calling `app.usage.record`,
and `authenticate` accepting managed keys.
"""

from __future__ import annotations

import base64
import dataclasses

import orjson
import pytest

from daemon.config import Settings
from daemon.keys_store import KeyStore
from daemon.redact import Secret
from tests.fakes import FakeUpstream
from tests.fakes import scripts as s
from tests.support import Reply, one_request, running_daemon

pytestmark = pytest.mark.e2e

ENV_KEY = "team-key-0123456789"
PASSWORD = "s3cret-admin-pw"
CHAT = orjson.dumps({"model": "gemini-3-flash", "messages": [{"role": "user", "content": "hi"}]})


def basic(user: str, password: str) -> tuple[str, str]:
    return ("authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())


async def call(listener, method: str, path: str, headers: list[tuple[str, str]] | None = None,  # type: ignore[no-untyped-def]
               body: bytes = b"") -> Reply:
    return await one_request(listener, method, path, body, headers)


async def chat(listener, key: str) -> Reply:  # type: ignore[no-untyped-def]
    return await call(listener, "POST", "/v1/chat/completions",
                      [("content-type", "application/json"), ("authorization", f"Bearer {key}")], CHAT)


async def test_usage_on_loopback_needs_no_password(upstream_settings: Settings) -> None:
    async with running_daemon(upstream_settings) as (listener, _app, _routes):
        reply = await call(listener, "GET", "/usage")
    assert reply.status == 200, reply
    body = orjson.loads(reply.body)
    assert set(body) >= {"since", "keys", "accounts", "totals"}
    assert body["since"].endswith("Z") and body["totals"]["requests"] == 0
    assert reply.headers[b"content-type"] == b"application/json"


async def test_usage_asks_for_admin_credentials_when_a_password_is_set(upstream_settings: Settings) -> None:
    settings = dataclasses.replace(upstream_settings, admin_password=Secret(PASSWORD))
    async with running_daemon(settings) as (listener, _app, _routes):
        missing = await call(listener, "GET", "/usage")
        wrong = await call(listener, "GET", "/usage", [basic("admin", "nope")])
        wrong_user = await call(listener, "GET", "/usage", [basic("root", PASSWORD)])
        right = await call(listener, "GET", "/usage", [basic("admin", PASSWORD)])
    for reply in (missing, wrong, wrong_user):
        assert reply.status == 401, reply
        assert reply.headers[b"www-authenticate"] == b'Basic realm="antigravity-proxy"'
        error = orjson.loads(reply.body)["error"]
        assert error["code"] == 401 and "admin" in error["message"]
        assert b"keys" not in reply.body
    assert right.status == 200 and b"www-authenticate" not in right.headers
    assert "totals" in orjson.loads(right.body)


async def test_requests_are_counted_per_key_account_and_model(upstream_settings: Settings, fake: FakeUpstream) -> None:
    settings = dataclasses.replace(upstream_settings, api_keys=(("team", Secret(ENV_KEY)),))
    fake.script(s.stream_reply(s.text("hello"), s.usage(prompt=10, candidates=2, thoughts=3)))
    async with running_daemon(settings) as (listener, _app, _routes):
        ok = await chat(listener, ENV_KEY)
        rejected = await chat(listener, "not-a-key-at-all")
        body = orjson.loads((await call(listener, "GET", "/usage")).body)
    assert ok.status == 200 and rejected.status == 401
    team = body["keys"]["team"]
    assert (team["requests"], team["errors"], team["input_tokens"], team["output_tokens"], team["thinking_tokens"]) \
        == (1, 0, 10, 2, 3)
    assert list(team["models"]) == ["gemini-3-flash"]
    assert body["accounts"]["acc001"]["models"]["gemini-3-flash"]["requests"] == 1
    assert body["totals"]["requests"] == 1  # a request turned away at authentication is no one's usage


async def test_counts_survive_a_restart(upstream_settings: Settings, fake: FakeUpstream) -> None:
    fake.script(s.stream_reply(s.text("hello"), s.usage(prompt=10, candidates=2, thoughts=3)))
    async with running_daemon(upstream_settings) as (listener, _app, _routes):
        assert (await chat(listener, "anything")).status == 200
        first = orjson.loads((await call(listener, "GET", "/usage")).body)
    assert (upstream_settings.data_dir / "usage.json").exists()  # flushed on shutdown
    async with running_daemon(upstream_settings) as (listener, _app, _routes):
        again = orjson.loads((await call(listener, "GET", "/usage")).body)
    assert again["keys"]["(none)"]["requests"] == 1 and again["keys"]["(none)"]["output_tokens"] == 2
    assert again["since"] == first["since"]


async def test_a_managed_key_works_until_it_is_revoked(upstream_settings: Settings, fake: FakeUpstream) -> None:
    store = KeyStore(upstream_settings.data_dir)
    key = store.add("laptop")  # before the start: loaded with the app
    fake.script(s.stream_reply(s.text("one")))
    async with running_daemon(upstream_settings) as (listener, app, _routes):
        assert (await chat(listener, key)).status == 200
        assert (await chat(listener, "agp-" + "x" * 40)).status == 401  # managed keys make keys required
        late = store.add("phone")  # as `keys add` does while the daemon runs
        store.revoke("laptop")
        app.keys.reload_if_changed()  # what the 2 s watcher does
        fake.script(s.stream_reply(s.text("two")))
        assert (await chat(listener, late)).status == 200
        assert (await chat(listener, key)).status == 401
        body = orjson.loads((await call(listener, "GET", "/usage")).body)
    assert body["keys"]["laptop"]["requests"] == 1 and body["keys"]["phone"]["requests"] == 1
