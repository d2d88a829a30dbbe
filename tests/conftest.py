"""Shared test plumbing.

- `async def` tests run on a fresh event loop, once on asyncio's and once on uvloop's;
  anything that reaches the loop's exception handler ("Task exception was never
  retrieved", a failing callback) fails the test, as does a task left running.
- `make_settings(**env)` builds real Settings from environment-style strings, with a
  temporary data dir and every upstream URL pointing at an unroutable loopback port, so
  no test can reach the internet by accident.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvloop

from daemon import config
from daemon.dispatch import runner
from daemon.translate import anthropic_stream, gemini_stream, openai_chat_stream, responses_stream
from tests.checkers import GrammarError
from tests.checkers.anthropic import check_anthropic_stream
from tests.checkers.gemini import check_gemini_stream
from tests.checkers.openai_chat import check_openai_chat_stream
from tests.checkers.responses import check_responses_stream
from tests.fakes import FakeUpstream
from tests.support import seed_account

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}

# Port 9 (discard) on loopback: nothing listens there, so a stray request fails fast.
UNREACHABLE = "http://127.0.0.1:9"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if inspect.iscoroutinefunction(metafunc.function) and "event_loop_kind" not in metafunc.fixturenames:
        metafunc.fixturenames.append("event_loop_kind")
        metafunc.parametrize("event_loop_kind", list(LOOPS))


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    kind = pyfuncitem.callspec.params["event_loop_kind"]
    names = inspect.signature(pyfuncitem.obj).parameters
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    loop = LOOPS[kind]()
    problems: list[str] = []
    loop.set_exception_handler(lambda _loop, context: problems.append(str(context.get("exception") or context)))
    try:
        loop.run_until_complete(asyncio.wait_for(pyfuncitem.obj(**kwargs), timeout=60))
        leftover = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in leftover:
            task.cancel()
        if leftover:
            loop.run_until_complete(asyncio.wait(leftover, timeout=5))
            problems.append(f"{len(leftover)} task(s) still running after the test: {leftover!r}")
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
    if problems:
        pytest.fail("event loop problems:\n" + "\n".join(problems))
    return True


# Credentials as the fake upstream mints them, and the OAuth client secret: no log record
# of any test may contain one (the daemon logs ids, never tokens).
_SECRET_SHAPES = ("ya29.", "1//", "GOCSPX-")


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level("DEBUG")
    yield
    records = caplog.get_records("setup") + caplog.get_records("call")
    texts = [r.getMessage() for r in records]
    texts += [logging.Formatter().formatException(r.exc_info) for r in records if r.exc_info]
    leaked = [text for text in texts if any(shape in text for shape in _SECRET_SHAPES)]
    assert not leaked, f"a log record carries a credential: {leaked[0][:200]}"


# Every stream the daemon writes in a test goes through the independent checker of its protocol.
_STREAM_CHECKERS = {
    anthropic_stream: check_anthropic_stream, openai_chat_stream: check_openai_chat_stream,
    responses_stream: check_responses_stream, gemini_stream: check_gemini_stream,
}


class _RecordingResponder:
    """A Responder that also keeps what was written to the body."""

    def __init__(self, responder: object) -> None:
        self._responder = responder
        self.written: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.written.append(data)
        await self._responder.write(data)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._responder, name)


@pytest.fixture(autouse=True)
def streams_follow_their_grammar(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Wraps the runner's stream writer: each stream that ran to its end (not cancelled by a
    client that went away) must satisfy its protocol's grammar checker."""
    failures: list[str] = []
    stream = runner._stream

    async def checked(app, generation, response, responder):  # type: ignore[no-untyped-def]
        recorder = _RecordingResponder(responder)
        answered = await stream(app, generation, response, recorder)
        body = b"".join(recorder.written)
        if body:
            try:
                _STREAM_CHECKERS[generation.wire](body)
            except GrammarError as exc:
                failures.append(f"{generation.wire.__name__}: {exc}")
        return answered

    monkeypatch.setattr(runner, "_stream", checked)
    yield
    assert not failures, "a stream broke its protocol's grammar:\n" + "\n".join(failures)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., config.Settings]:
    def build(**env: str) -> config.Settings:
        base = {
            "AGPROXY_HOST": "127.0.0.1",
            "AGPROXY_PORT": "0",
            "AGPROXY_DATA_DIR": str(tmp_path / "data"),
            "AGPROXY_UPSTREAM_URLS": UNREACHABLE,
            "AGPROXY_OAUTH_AUTH_URL": UNREACHABLE + "/auth",
            "AGPROXY_OAUTH_TOKEN_URL": UNREACHABLE + "/token",
            "AGPROXY_USERINFO_URL": UNREACHABLE + "/userinfo",
            "AGPROXY_ACCESS_LOG": "off",
        }
        base.update(env)
        return config.load(base)

    return build


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    """A plain-http fake upstream that fails the test if the daemon sent it anything malformed."""
    with FakeUpstream() as upstream:
        yield upstream
        upstream.assert_no_violations()


@pytest.fixture
def upstream_settings(make_settings: Callable[..., config.Settings], fake: FakeUpstream) -> config.Settings:
    """Settings pointing every upstream URL at `fake`, with its default account stored."""
    settings = make_settings(
        AGPROXY_UPSTREAM_URLS=fake.base_url, AGPROXY_OAUTH_TOKEN_URL=fake.token_url,
        AGPROXY_USERINFO_URL=fake.userinfo_url, AGPROXY_OAUTH_AUTH_URL=fake.auth_url, AGPROXY_STREAM_HEARTBEAT="0.2",
    )
    seed_account(settings.data_dir, fake)
    return settings
