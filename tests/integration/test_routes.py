"""Routes (AGPROXY_ROUTES_FILE): parsing, fallback to the next target when one cannot serve,
a target's account list, and a SIGHUP reload that leaves a running stream alone."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import threading
import time
from pathlib import Path

import orjson
import pytest

from daemon.config import Settings
from daemon.routes import Route, RoutesError, Target, parse
from tests.fakes import FakeUpstream
from tests.fakes import scripts as s
from tests.integration.test_process import start
from tests.support import one_request, running_daemon, seed_account

pytestmark = pytest.mark.integration

FAST = {"fast": {"targets": [{"model": "gemini-3-flash"}, {"model": "claude-sonnet-4-6"}]}}


def test_a_routes_file_parses_into_ordered_targets() -> None:
    routes = parse(orjson.dumps({**FAST, "pinned": {"strategy": "random", "targets": [
        {"model": "gemini-3-flash", "accounts": ["me@example.com"]}]}}))
    assert routes.find("fast") == routes.find("route:fast") == Route(
        "fast", "priority", (Target("gemini-3-flash"), Target("claude-sonnet-4-6")))
    assert routes.find("pinned").targets[0].accounts == ("me@example.com",)  # type: ignore[union-attr]
    assert routes.find("gemini-3-flash") is None


@pytest.mark.parametrize(("document", "words"), [
    (b"[", "not valid JSON"), (b"[]", "JSON object"), (b'{"a": {"targets": []}}', "non-empty"),
    (b'{"a": {"strategy": "fastest", "targets": [{"model": "m"}]}}', "strategy"),
    (b'{"a": {"targets": [{"accounts": []}]}}', "model name"),
    (b'{"a": {"targets": [{"model": "m", "accounts": "x"}]}}', "accounts"),
    (b'{"route:a": {"targets": [{"model": "m"}]}}', "prefix"),
])
def test_a_bad_routes_file_says_where_and_why(document: bytes, words: str) -> None:
    with pytest.raises(RoutesError, match=words):
        parse(document, "routes.json")


def write_routes(settings: Settings, routes: dict) -> Settings:
    path = settings.data_dir.parent / "routes.json"
    path.write_bytes(orjson.dumps(routes))
    return dataclasses.replace(settings, routes_file=path)


async def chat(listener, model: str, messages: list | None = None) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    reply = await one_request(listener, "POST", "/v1/chat/completions", orjson.dumps(
        {"model": model, "messages": messages or [{"role": "user", "content": "hi"}]}), [("content-type", "application/json")])
    return reply.status, orjson.loads(reply.body)


async def test_the_next_target_serves_when_the_first_cannot(upstream_settings, fake):
    settings = write_routes(upstream_settings, FAST)
    fake.script(s.error("429.QUOTA_EXHAUSTED"), model="gemini-3-flash")
    fake.script(s.stream_reply(s.text("from claude")), model="claude-sonnet-4-6")
    async with running_daemon(settings) as (listener, app, _routes):
        status, body = await chat(listener, "route:fast")
        listed = [m["id"] for m in (await models(listener))["data"]]
    assert status == 200 and body["choices"][0]["message"]["content"] == "from claude"
    assert body["model"] == "route:fast"
    assert [r.json["model"] for r in fake.generation_requests] == ["gemini-3-flash", "claude-sonnet-4-6"]
    assert app.pool.state.loads["acc001"].cooling("gemini-flash", time.time()) is not None
    assert "fast" in listed


async def models(listener, path: str = "/v1/models") -> dict:  # type: ignore[no-untyped-def]
    return orjson.loads((await one_request(listener, "GET", path)).body)


async def test_a_route_is_a_model_for_the_openai_models_endpoints(upstream_settings):
    async with running_daemon(write_routes(upstream_settings, FAST)) as (listener, _app, _routes):
        listed = [m["id"] for m in (await models(listener))["data"]]
        one = await models(listener, "/v1/models/fast")
        missing = await models(listener, "/v1/models/slow")
    assert "fast" in listed and one["id"] == "fast" and one["object"] == "model"
    assert missing["error"]["code"] == "model_not_found" and "slow" in missing["error"]["message"]


PREFILLED = [{"role": "user", "content": "a poem"},
             {"role": "assistant", "content": "Sure, here it is:"}]  # a prefill: Claude refuses it, Gemini takes it


async def test_a_target_that_cannot_take_the_request_gives_way_to_the_next(upstream_settings, fake):
    routes = {"mixed": {"targets": [{"model": "claude-sonnet-4-6"}, {"model": "gemini-3-flash"}]},
              "claude": {"targets": [{"model": "claude-sonnet-4-6"}]}}
    fake.script(s.stream_reply(s.text("from gemini")))
    async with running_daemon(write_routes(upstream_settings, routes)) as (listener, _app, _routes):
        served_status, served = await chat(listener, "mixed", PREFILLED)
        refused_status, refused = await chat(listener, "claude", PREFILLED)
    assert served_status == 200 and served["choices"][0]["message"]["content"] == "from gemini"
    assert [r.json["model"] for r in fake.generation_requests] == ["gemini-3-flash"]
    assert refused_status == 400 and "prefill" in refused["error"]["message"]  # no target could: the first's reason


async def test_a_target_limited_to_unknown_accounts_falls_through(upstream_settings, fake):
    routes = {"fast": {"targets": [{"model": "gemini-3-flash", "accounts": ["someone@else.com"]},
                                   {"model": "gemini-3-flash"}]}}
    fake.script(s.stream_reply(s.text("served")))
    async with running_daemon(write_routes(upstream_settings, routes)) as (listener, _app, _routes):
        status, body = await chat(listener, "fast")
    assert status == 200 and len(fake.generation_requests) == 1


async def test_a_route_target_naming_an_unknown_model_is_the_clients_404(upstream_settings, fake):
    routes = {"odd": {"targets": [{"model": "no-such-model"}]}}
    async with running_daemon(write_routes(upstream_settings, routes)) as (listener, _app, _routes):
        status, body = await chat(listener, "odd")
    assert status == 404 and "no-such-model" in body["error"]["message"] and not fake.generation_requests


def test_sighup_reloads_routes_without_cutting_a_running_stream(make_settings, fake: FakeUpstream, tmp_path: Path) -> None:
    data = tmp_path / "data"
    seed_account(data, fake)
    routes = tmp_path / "routes.json"
    routes.write_bytes(orjson.dumps({"fast": {"targets": [{"model": "gemini-3-flash"}]}}))
    release, reached = threading.Event(), threading.Event()
    fake.script(s.stream_reply(s.text("first half "), s.gate(release, reached=reached), s.text("second half")))
    fake.script(s.stream_reply(s.text("after reload")))
    process, port = start(["daemon", "serve"], {
        "AGPROXY_UPSTREAM_URLS": fake.base_url, "AGPROXY_OAUTH_TOKEN_URL": fake.token_url,
        "AGPROXY_USERINFO_URL": fake.userinfo_url, "AGPROXY_ROUTES_FILE": str(routes),
    }, tmp_path)
    try:
        streaming = socket.create_connection(("127.0.0.1", port), timeout=10)
        body = orjson.dumps({"model": "fast", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
        streaming.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
                          b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
        assert reached.wait(10)
        routes.write_bytes(orjson.dumps({"fast": {"targets": [{"model": "claude-sonnet-4-6"}]}}))
        os.kill(process.pid, signal.SIGHUP)
        time.sleep(0.3)  # the reload happens on the daemon's loop
        release.set()
        received = b""
        while chunk := streaming.recv(65536):
            received += chunk
        assert b"first half" in received and b"second half" in received and b"data: [DONE]" in received
        again = socket.create_connection(("127.0.0.1", port), timeout=10)
        body = orjson.dumps({"model": "fast", "messages": [{"role": "user", "content": "hi"}]})
        again.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
                      b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
        reply = b""
        while chunk := again.recv(65536):
            reply += chunk
        assert b"after reload" in reply
        assert [r.json["model"] for r in fake.generation_requests] == ["gemini-3-flash", "claude-sonnet-4-6"]
        assert process.poll() is None  # SIGHUP did not stop the daemon
    finally:
        process.terminate()
        process.wait(10)
