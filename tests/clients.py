"""Locating and running the real CLIs the e2e tests drive (installed by tests/run.sh), and the zipapp."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.fakes import FakeUpstream

ROOT = Path(__file__).parent.parent
CLIENTS = ROOT / "tests" / ".clients"
ZIPAPP = ROOT / "dist" / "antigravity-proxy.pyz"

CODEX_KEY_VARIABLE = "AGPROXY_API_KEY"  # the provider's env_key: Codex sends it as Authorization: Bearer


def cli(name: str) -> Path:
    """The CLI's path; skipped outside CI when tests/run.sh has not installed it yet."""
    path = CLIENTS / "node_modules" / ".bin" / name
    if path.exists():
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{path} is missing: tests/run.sh installs the client CLIs")
    pytest.skip(f"{name} is not installed (run tests/run.sh)")


def reference_tokenizer() -> Path:
    """The Claude tokenizer file tests/run.sh extracts from an older anthropic SDK release."""
    path = CLIENTS / "claude-tokenizer.json"
    if path.exists():
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{path} is missing: tests/run.sh extracts it")
    pytest.skip("the reference tokenizer is not installed (run tests/run.sh)")


@functools.cache
def build_zipapp() -> Path:
    """Build dist/antigravity-proxy.pyz from this checkout (the way users run the daemon), once per session."""
    if shutil.which("bash") is None:
        pytest.skip("bash is needed to run build.sh")
    subprocess.run(["bash", str(ROOT / "build.sh")], check=True, capture_output=True, timeout=600)
    return ZIPAPP


@dataclass
class ZipappDaemon:
    url: str  # http://127.0.0.1:<port>
    log: list[str] = field(default_factory=list)  # its stderr lines, collected in the background

    def log_tail(self, lines: int = 40) -> str:
        return "".join(self.log[-lines:])


@contextlib.contextmanager
def zipapp_daemon(zipapp: Path, fake: FakeUpstream, workdir: Path, api_keys: str) -> Iterator[ZipappDaemon]:
    """`python antigravity-proxy.pyz serve` on a free loopback port, with the fake's default account
    and every upstream URL pointing at `fake`; checks that it exits cleanly on SIGTERM."""
    from tests.support import seed_account

    data = workdir / "data"
    seed_account(data, fake)
    env = {**os.environ, "AGPROXY_PORT": "0", "AGPROXY_DATA_DIR": str(data), "AGPROXY_API_KEYS": api_keys,
           "AGPROXY_UPSTREAM_URLS": fake.base_url, "AGPROXY_OAUTH_TOKEN_URL": fake.token_url,
           "AGPROXY_USERINFO_URL": fake.userinfo_url, "SHIV_ROOT": str(workdir / "shiv")}
    process = subprocess.Popen([sys.executable, str(zipapp), "serve"], env=env, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    stderr = process.stderr
    daemon = ZipappDaemon("")
    drain = threading.Thread(target=lambda: daemon.log.extend(stderr), name="zipapp-stderr", daemon=True)
    try:
        deadline = time.monotonic() + 60
        while not daemon.url and time.monotonic() < deadline:
            line = stderr.readline()
            daemon.log.append(line)
            match = re.search(r"listening on (http://[\d.]+:\d+)", line)
            if match:
                daemon.url = match.group(1)
            elif not line and process.poll() is not None:
                pytest.fail(f"the zipapp exited with {process.returncode} before listening:\n{daemon.log_tail()}")
        if not daemon.url:
            pytest.fail("the zipapp did not start")
        drain.start()  # keep reading, so a chatty daemon never blocks on a full pipe
        yield daemon
    except BaseException:
        process.kill()  # the test already failed: do not hide that behind a shutdown check
        process.wait(timeout=30)
        raise
    process.terminate()
    try:
        code = process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)
        pytest.fail(f"the zipapp did not stop within 30 s of SIGTERM:\n{daemon.log_tail()}")
    drain.join(timeout=5)
    assert code == 0, f"the zipapp exited with {code}:\n{daemon.log_tail()}"


def codex_config(base_url: str, model: str, extra: str = "") -> str:
    """A CODEX_HOME/config.toml that points Codex at `base_url` (the daemon's .../v1) and turns off
    everything that would leave loopback (shared/fixtures/clients/README.md). Retries are off, so a
    bad answer fails the run at once instead of silently replaying the turn. `extra`: more top-level
    keys (TOML lines), e.g. `developer_instructions = "..."`."""
    return f"""{extra}
model = "{model}"
model_provider = "agproxy"
check_for_update_on_startup = false

[analytics]
enabled = false

[features]
plugins = false

[model_providers.agproxy]
name = "agproxy"
base_url = "{base_url}"
env_key = "{CODEX_KEY_VARIABLE}"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
"""


def run_codex(base_url: str, workdir: Path, home: Path, task: str, *, api_key: str, proxy_url: str,
              model: str = "gemini-3-flash", extra_config: str = "",
              timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`codex exec` on `task` in `workdir`, non-interactively: a clean environment, a fresh HOME
    and CODEX_HOME under `home`, every non-loopback connection sent to `proxy_url`, stdin closed.
    Fails the test (after killing Codex) when it runs longer than `timeout` seconds."""
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(codex_config(base_url, model, extra_config))
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "TERM": "dumb", "HOME": str(home),
        "CODEX_HOME": str(codex_home), CODEX_KEY_VARIABLE: api_key,
        "HTTPS_PROXY": proxy_url, "HTTP_PROXY": proxy_url, "NO_PROXY": "127.0.0.1,localhost",
        "https_proxy": proxy_url, "http_proxy": proxy_url, "no_proxy": "127.0.0.1,localhost",
    }
    command = [str(cli("codex")), "exec", "--skip-git-repo-check", "--sandbox", "workspace-write", "--color", "never",
               task]
    # Its own session: codex.js starts the native binary as a child, which a timeout must end too.
    process = subprocess.Popen(command, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"codex exec did not finish within {timeout} s; stderr:\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
