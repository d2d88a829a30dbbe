"""Claude Code itself (npm @anthropic-ai/claude-code, pinned in tests/run.sh) against the
zipapp daemon and the fake upstream: it writes a file through its own tool and prints the
answer, with no network but loopback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients import build_zipapp, cli
from tests.support import seed_account
from tests.fakes import FakeUpstream
from tests.fakes import scripts as s

pytestmark = pytest.mark.e2e

API_KEY = "sk-e2e-claude-code-0123456789"


@pytest.fixture(scope="module")
def zipapp() -> Path:
    return build_zipapp()


@pytest.fixture
def daemon(zipapp: Path, fake: FakeUpstream, tmp_path: Path) -> Iterator[str]:
    data = tmp_path / "data"
    seed_account(data, fake)
    env = {**os.environ, "AGPROXY_PORT": "0", "AGPROXY_DATA_DIR": str(data), "AGPROXY_API_KEYS": f"cc={API_KEY}",
           "AGPROXY_UPSTREAM_URLS": fake.base_url, "AGPROXY_OAUTH_TOKEN_URL": fake.token_url,
           "AGPROXY_USERINFO_URL": fake.userinfo_url, "SHIV_ROOT": str(tmp_path / "shiv")}
    process = subprocess.Popen([sys.executable, str(zipapp), "serve"], env=env, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            match = re.search(r"listening on (http://[\d.]+:\d+)", process.stderr.readline())
            if match:
                yield match.group(1)
                break
        else:
            pytest.fail("the zipapp did not start")
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0


def run_claude(base_url: str, workdir: Path, home: Path, prompt: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "dumb", "HOME": str(home),
        "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": API_KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1",
        # Anything that tries to leave loopback hits a closed port.
        "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1,localhost",
    }
    return subprocess.run([str(cli("claude")), "-p", prompt, "--permission-mode", "acceptEdits", *extra],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


def test_claude_code_writes_a_file_through_the_daemon(daemon: str, fake: FakeUpstream, tmp_path: Path) -> None:
    workdir, home = tmp_path / "project", tmp_path / "home"
    workdir.mkdir()
    home.mkdir()
    target = workdir / "hello.txt"
    fake.script(s.stream_reply(s.text("I'll create the file."),
                               s.function_call("Write", {"file_path": str(target), "content": "hello from the fake\n"})))
    fake.script(s.stream_reply(s.text("Created hello.txt for you.")))
    result = run_claude(daemon, workdir, home, "Create hello.txt saying hello")
    assert result.returncode == 0, result.stderr[-2000:]
    assert target.read_text() == "hello from the fake\n"
    assert "Created hello.txt for you." in result.stdout
    first, second = fake.generation_requests[:2]
    assert first.json["model"] == "claude-opus-4-6-thinking"  # Claude Code's default name, mapped
    system = "".join(p.get("text", "") for p in first.json["request"]["systemInstruction"]["parts"])
    assert "x-anthropic-billing-header" not in system  # the fake-429 trigger never reaches upstream
    results = [p for c in second.json["request"]["contents"] for p in c["parts"] if "functionResponse" in p]
    assert results and results[0]["functionResponse"]["name"] == "Write"


def test_claude_code_with_a_thinking_model_over_two_tool_turns(daemon: str, fake: FakeUpstream, tmp_path: Path) -> None:
    workdir, home = tmp_path / "project", tmp_path / "home"
    workdir.mkdir()
    home.mkdir()
    first_file, second_file = workdir / "one.txt", workdir / "two.txt"
    fake.script(s.stream_reply(s.thinking("I should write the first file.", signature="sig-one-" + "x" * 60),
                               s.function_call("Write", {"file_path": str(first_file), "content": "1\n"})))
    fake.script(s.stream_reply(s.thinking("Now the second file.", signature="sig-two-" + "y" * 60),
                               s.function_call("Write", {"file_path": str(second_file), "content": "2\n"})))
    fake.script(s.stream_reply(s.text("Both files are written.")))
    result = run_claude(daemon, workdir, home, "Write one.txt and two.txt", "--model", "claude-sonnet-4-5")
    assert result.returncode == 0, result.stderr[-2000:]
    assert first_file.read_text() == "1\n" and second_file.read_text() == "2\n"
    assert "Both files are written." in result.stdout
    requests = fake.generation_requests
    assert len(requests) == 3
    assert requests[0].json["model"] == "claude-sonnet-4-6"
    assert requests[0].json["request"]["generationConfig"]["thinkingConfig"]["thinkingBudget"] > 0
    replayed = [p for c in requests[2].json["request"]["contents"] if c["role"] == "model" for p in c["parts"]]
    signatures = [p["thoughtSignature"] for p in replayed if p.get("thought")]
    assert signatures == ["sig-one-" + "x" * 60, "sig-two-" + "y" * 60]  # both turns replayed, in order
