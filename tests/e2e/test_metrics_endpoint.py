"""GET /metrics, the request monitor and the log tail on a real daemon and the fake upstream.

The exposition is read back with prometheus_client's parser. Relies on the wiring: the
runner records every run in `app.monitor` and `app.metrics`, open_upstream counts attempts
by outcome, handlers.metrics is registered, and `log.setup()` installs `log_tail.TAIL`
(installed here by hand, beside pytest's own capture).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import threading
from collections.abc import Iterator

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from daemon import log
from daemon.config import Settings
from daemon.log_tail import TAIL, LogTail
from daemon.redact import Secret
from tests.conftest import _SECRET_SHAPES
from tests.fakes import FakeUpstream
from tests.fakes import scripts as s
from tests.fakes.upstream import DEFAULT_EMAIL
from tests.support import RawClient, Reply, one_request, running_daemon

pytestmark = pytest.mark.e2e

PASSWORD = "metrics-admin-pw"
JSON_HEADERS = [("content-type", "application/json")]
CHAT = orjson.dumps({"model": "gemini-3-flash", "messages": [{"role": "user", "content": "hi"}]})
MESSAGES = orjson.dumps({"model": "claude-sonnet-4-6", "max_tokens": 64, "stream": True,
                         "messages": [{"role": "user", "content": "hi"}]})
STREAMED_CHAT = orjson.dumps({"model": "gemini-3-flash", "stream": True,
                              "messages": [{"role": "user", "content": "hi"}]})


@pytest.fixture
def settings(upstream_settings: Settings) -> Settings:
    return dataclasses.replace(upstream_settings, access_log=True)


@pytest.fixture
def tail() -> Iterator[LogTail]:
    """The process-wide tail on the root logger, as log.setup() installs it."""
    root = logging.getLogger()
    TAIL.setFormatter(log._PlainFormatter())
    TAIL.clear()
    root.addHandler(TAIL)
    try:
        yield TAIL
    finally:
        root.removeHandler(TAIL)
        TAIL.clear()


async def call(listener, method: str, path: str, body: bytes = b"",  # type: ignore[no-untyped-def]
               headers: list[tuple[str, str]] | None = None) -> Reply:
    return await one_request(listener, method, path, body, headers)


def basic(user: str, password: str) -> tuple[str, str]:
    return ("authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(listener, headers: list[tuple[str, str]] | None = None) -> Samples:  # type: ignore[no-untyped-def]
    reply = await call(listener, "GET", "/metrics", headers=headers)
    assert reply.status == 200, reply
    assert reply.headers[b"content-type"] == b"text/plain; version=0.0.4; charset=utf-8"
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(reply.body.decode()) for sample in family.samples}


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def labelled(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(labels)[label]: v for (sample_name, labels), v in samples.items() if sample_name == name}


async def until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_requests_attempts_tokens_and_accounts_are_counted(settings: Settings, fake: FakeUpstream) -> None:
    fake.script(s.stream_reply(s.text("Hello"), s.usage(prompt=10, candidates=2, thoughts=3)))
    fake.script(s.stream_reply(s.text("Hi", " there"), s.usage(prompt=20, candidates=4)))
    async with running_daemon(settings) as (listener, app, _routes):
        chat = await call(listener, "POST", "/v1/chat/completions", CHAT, JSON_HEADERS)
        messages = await call(listener, "POST", "/v1/messages", MESSAGES, JSON_HEADERS)
        samples = await scrape(listener)
    assert chat.status == 200 and messages.status == 200 and b"there" in messages.body
    requests = {(dict(labels)["protocol"], dict(labels)["model"], dict(labels)["status"]): v
                for (name, labels), v in samples.items() if name == "agproxy_requests_total"}
    assert requests == {("openai-chat", "gemini-3-flash", "200"): 1, ("anthropic", "claude-sonnet-4-6", "200"): 1}
    for protocol in ("openai-chat", "anthropic"):
        assert sample(samples, "agproxy_request_duration_seconds_count", protocol=protocol) == 1
        assert sample(samples, "agproxy_ttfb_seconds_count", protocol=protocol) == 1
        assert sample(samples, "agproxy_request_duration_seconds_bucket", protocol=protocol, le="+Inf") == 1
        assert 0 < sample(samples, "agproxy_request_duration_seconds_sum", protocol=protocol) < 10
    assert sample(samples, "agproxy_request_duration_seconds_count", protocol="gemini") == 0
    assert labelled(samples, "agproxy_upstream_attempts_total", "outcome")["ok"] == 2
    assert sum(labelled(samples, "agproxy_upstream_attempts_total", "outcome").values()) == 2
    assert labelled(samples, "agproxy_tokens_total", "kind") == {"input": 30, "output": 6, "thinking": 3, "cached": 0}
    assert labelled(samples, "agproxy_accounts", "state")["active"] == 1
    assert sum(labelled(samples, "agproxy_accounts", "state").values()) == 1
    assert sample(samples, "agproxy_open_streams") == 0
    assert app.metrics.open_streams == 0


async def test_the_monitor_lists_the_last_requests_newest_first(settings: Settings, fake: FakeUpstream) -> None:
    fake.script(s.stream_reply(s.text("Hello"), s.usage(prompt=10, candidates=2, thoughts=3, cached=4)))
    fake.script(s.stream_reply(s.text("Hi")))
    async with running_daemon(settings) as (listener, app, _routes):
        assert (await call(listener, "POST", "/v1/chat/completions", CHAT, JSON_HEADERS)).status == 200
        assert (await call(listener, "POST", "/v1/messages", MESSAGES, JSON_HEADERS)).status == 200
        newest, oldest = app.monitor.recent(10)
    assert (newest["protocol"], newest["model"], newest["account"], newest["status"]) == \
        ("anthropic", "claude-sonnet-4-6", "acc001", 200)
    assert (oldest["protocol"], oldest["model"], oldest["account"], oldest["status"]) == \
        ("openai-chat", "gemini-3-flash", "acc001", 200)
    assert (oldest["input_tokens"], oldest["output_tokens"], oldest["thinking_tokens"], oldest["cached_tokens"]) == \
        (10, 2, 3, 4)
    for entry in (newest, oldest):
        assert entry["attempts"] == 1 and entry["complete"] is True and entry["client"] == ""
        assert 0 <= entry["ttfb_ms"] <= entry["duration_ms"] < 10_000
        assert entry["time"].endswith("Z") and newest["time"] >= oldest["time"]
    text = orjson.dumps([newest, oldest]).decode()
    assert DEFAULT_EMAIL not in text and "hi" not in text.replace("thinking", "") and "Hello" not in text


async def test_an_upstream_failure_before_any_answer_is_recorded(settings: Settings, fake: FakeUpstream) -> None:
    fake.script(s.error_status(500, s.google_error(500, "INTERNAL", "the backend fell over")))
    async with running_daemon(settings) as (listener, app, _routes):
        failed = await call(listener, "POST", "/v1/chat/completions", CHAT, JSON_HEADERS)
        samples = await scrape(listener)
        (entry,) = app.monitor.recent()
    assert failed.status >= 500
    assert (entry["status"], entry["account"], entry["attempts"], entry["protocol"]) == \
        (failed.status, "", 1, "openai-chat")
    assert entry["input_tokens"] is None and entry["ttfb_ms"] is not None
    attempts = labelled(samples, "agproxy_upstream_attempts_total", "outcome")
    assert attempts["server_error"] == 1 and attempts["ok"] == 0
    assert sample(samples, "agproxy_requests_total", protocol="openai-chat", model="gemini-3-flash",
                  status=str(failed.status)) == 1


async def test_quota_gauges_show_account_ids_after_a_quota_reading(settings: Settings, fake: FakeUpstream) -> None:
    fake.set_quota(DEFAULT_EMAIL, "gemini-3-flash", 0.4, 1800)
    fake.set_quota(DEFAULT_EMAIL, "claude-sonnet-4-6", None, 3600)  # exhausted
    async with running_daemon(settings) as (listener, app, _routes):
        before = await scrape(listener)
        await app.pool.read_quota("acc001")
        reply = await call(listener, "GET", "/metrics")
    after = {(sample.name, frozenset(sample.labels.items())): sample.value
             for family in text_string_to_metric_families(reply.body.decode()) for sample in family.samples}
    assert not labelled(before, "agproxy_quota_remaining_ratio", "family")
    assert sample(after, "agproxy_quota_remaining_ratio", account="acc001", family="gemini-flash") == 0.4
    assert sample(after, "agproxy_quota_remaining_ratio", account="acc001", family="claude") == 0.0
    assert {dict(labels)["account"] for (name, labels) in after if name == "agproxy_quota_remaining_ratio"} == \
        {"acc001"}
    assert DEFAULT_EMAIL.encode() not in reply.body and b"example.com" not in reply.body


async def test_a_stream_cut_by_its_client_closes_its_gauge(settings: Settings, fake: FakeUpstream) -> None:
    release, reached = threading.Event(), threading.Event()
    fake.script(s.stream_reply(s.text("Hello"), s.gate(release, reached=reached), s.text(" world")))
    async with running_daemon(settings) as (listener, app, _routes):
        try:
            client = await RawClient.connect(listener.address)
            client.send_request("POST", "/v1/chat/completions", STREAMED_CHAT, JSON_HEADERS)
            async with asyncio.timeout(10):
                await client.reader.readuntil(b"Hello")  # the stream started and is held at the gate
            during = await scrape(listener)
            client.close()  # the client goes away mid-stream: the daemon cancels the request
            await until(lambda: app.metrics.open_streams == 0 and len(app.monitor) == 1)
            after = await scrape(listener)
        finally:
            release.set()
        (entry,) = app.monitor.recent()
    assert sample(during, "agproxy_open_streams") == 1
    assert sample(after, "agproxy_open_streams") == 0
    assert entry["status"] == 200 and entry["complete"] is False and entry["account"] == "acc001"
    assert sample(after, "agproxy_requests_total", protocol="openai-chat", model="gemini-3-flash", status="200") == 1


async def test_metrics_need_admin_credentials_when_a_password_is_set(settings: Settings) -> None:
    settings = dataclasses.replace(settings, admin_password=Secret(PASSWORD))
    async with running_daemon(settings) as (listener, _app, _routes):
        missing = await call(listener, "GET", "/metrics")
        wrong = await call(listener, "GET", "/metrics", headers=[basic("admin", "nope")])
        samples = await scrape(listener, [basic("admin", PASSWORD)])
    for reply in (missing, wrong):
        assert reply.status == 401, reply
        assert reply.headers[b"www-authenticate"] == b'Basic realm="antigravity-proxy"'
        assert b"agproxy_" not in reply.body and orjson.loads(reply.body)["error"]["code"] == 401
    assert sample(samples, "agproxy_open_streams") == 0


async def test_metrics_are_refused_beyond_loopback_without_a_password(settings: Settings) -> None:
    async with running_daemon(settings) as (listener, app, _routes):
        # Bound to loopback; the daemon is told it listens on every address (what require_admin reads).
        app.settings = dataclasses.replace(app.settings, host="0.0.0.0")
        reply = await call(listener, "GET", "/metrics")
    assert reply.status == 403 and b"agproxy_" not in reply.body and b"www-authenticate" not in reply.headers
    assert "AGPROXY_ADMIN_PASSWORD" in orjson.loads(reply.body)["error"]["message"]


async def test_the_log_tail_has_the_access_lines_and_no_secret(settings: Settings, fake: FakeUpstream,
                                                                tail: LogTail) -> None:
    fake.script(s.stream_reply(s.text("Hello")))
    fake.script(s.stream_reply(s.text("Hi")))
    async with running_daemon(settings) as (listener, app, _routes):
        assert (await call(listener, "POST", "/v1/chat/completions", CHAT, JSON_HEADERS)).status == 200
        assert (await call(listener, "POST", "/v1/messages", MESSAGES, JSON_HEADERS)).status == 200
        await until(lambda: sum(" daemon.access: " in line for line in app.log_tail.lines(500)) == 2)
        lines = app.log_tail.lines(500)
    assert app.log_tail is tail
    access = [line for line in lines if " daemon.access: " in line]
    assert " INFO daemon.access: POST /v1/chat/completions 200 " in access[0]
    assert " INFO daemon.access: POST /v1/messages 200 " in access[1]
    assert app.log_tail.lines(1) == lines[-1:]
    secrets = [*_SECRET_SHAPES, fake.account(DEFAULT_EMAIL).refresh_token]
    assert not [line for line in lines if any(secret in line for secret in secrets)]
