"""Codex CLI itself (npm @openai/codex, pinned in tests/run.sh) against the zipapp daemon and the
fake upstream, over the Responses API: it runs a shell command through its own exec_command tool
and prints the answer, with no network but loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients import ZipappDaemon, build_zipapp, run_codex, zipapp_daemon
from tests.fakes import FakeUpstream
from tests.fakes import scripts as s
from tests.fakes.connect_proxy import ConnectProxy

pytestmark = pytest.mark.e2e

API_KEY = "sk-e2e-codex-0123456789"
CODEX_IDENTITY = "You are Codex, an agent based on GPT-5."


@pytest.fixture(scope="module")
def zipapp() -> Path:
    return build_zipapp()


@pytest.fixture
def daemon(zipapp: Path, fake: FakeUpstream, tmp_path: Path) -> Iterator[ZipappDaemon]:
    with zipapp_daemon(zipapp, fake, tmp_path, f"codex={API_KEY}") as running:
        yield running


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    """Where every non-loopback connection Codex tries ends up: recorded, and refused."""
    with ConnectProxy() as recording:
        yield recording


def dirs(tmp_path: Path) -> tuple[Path, Path]:
    workdir, home = tmp_path / "project", tmp_path / "home"
    workdir.mkdir()
    home.mkdir()
    return workdir, home


def system_text(request) -> str:
    return "".join(p.get("text", "") for p in request.json["request"]["systemInstruction"]["parts"])


def test_codex_runs_a_command_through_the_daemon(daemon: ZipappDaemon, fake: FakeUpstream, proxy: ConnectProxy,
                                                 tmp_path: Path) -> None:
    workdir, home = dirs(tmp_path)
    signature = "codex-gemini-sig-" + "z" * 60
    fake.script(s.stream_reply(s.thinking("I will write the file with printf."),
                               s.function_call("exec_command", {"cmd": "printf hi > out.txt"}, id="k3x9q2ab",
                                               signature=signature)))
    fake.script(s.stream_reply(s.text("Wrote out.txt for you.")))
    result = run_codex(daemon.url + "/v1", workdir, home, "Create out.txt containing hi", api_key=API_KEY,
                       proxy_url=proxy.url)
    failure = f"codex stderr:\n{result.stderr[-3000:]}\ndaemon log:\n{daemon.log_tail()}"
    assert result.returncode == 0, failure
    assert (workdir / "out.txt").read_text() == "hi"
    assert "Wrote out.txt for you." in result.stdout
    assert proxy.requests == []  # nothing tried to leave loopback
    first, second = fake.generation_requests  # no retries, no side calls
    assert first.json["model"] == "gemini-3-flash"
    assert "You are a coding agent running in the Codex CLI" in system_text(first)  # Codex's developer messages
    declared = [d["name"] for t in first.json["request"]["tools"] for d in t.get("functionDeclarations", [])]
    assert "exec_command" in declared
    model_turns = [c for c in second.json["request"]["contents"] if c["role"] == "model"]
    call_part = next(p for p in model_turns[-1]["parts"] if "functionCall" in p)
    assert call_part["functionCall"]["name"] == "exec_command"
    assert call_part["functionCall"]["args"] == {"cmd": "printf hi > out.txt"}
    assert call_part["thoughtSignature"] == signature  # kept across Codex's round trip
    results = [p["functionResponse"] for c in second.json["request"]["contents"] for p in c["parts"]
               if "functionResponse" in p]
    assert len(results) == 1 and results[0]["name"] == "exec_command"
    assert results[0]["id"] == call_part["functionCall"]["id"]
    assert "exited with code 0" in str(results[0]["response"])
    assert fake.identity_rejections == []


def test_codex_identity_sentence_never_reaches_upstream(daemon: ZipappDaemon, fake: FakeUpstream,
                                                        proxy: ConnectProxy, tmp_path: Path) -> None:
    workdir, home = dirs(tmp_path)
    fake.script(s.stream_reply(s.text("Hello from the fake.")))
    result = run_codex(daemon.url + "/v1", workdir, home, "Say hello", api_key=API_KEY, proxy_url=proxy.url,
                       extra_config=f'developer_instructions = "{CODEX_IDENTITY} Keep answers short."')
    assert result.returncode == 0, f"{result.stderr[-3000:]}\ndaemon log:\n{daemon.log_tail()}"
    assert "Hello from the fake." in result.stdout
    assert proxy.requests == []
    (request,) = fake.generation_requests
    assert fake.identity_rejections == []  # the fake answers a bare 429 to the sentence itself
    system = system_text(request)
    assert CODEX_IDENTITY not in system and "Keep answers short." in system
