"""Plumbing of the browser tests: the daemon as a subprocess over the fake upstream with two
accounts, and real headless Chromium (Debian's `chromium` + `chromium-driver`) driven by
Selenium through the system chromedriver.

- Without chromium, chromedriver or the selenium package the tests skip with the reason; when
  the environment variable CI is set they fail instead (.ci/run installs chromium).
- Basic auth: the Authorization header is added to every request the page makes (navigation,
  form posts, fetch) through the DevTools protocol (Network.setExtraHTTPHeaders).
- A failing test leaves a screenshot and the page's HTML in tests/artifacts/screenshots/failures/.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.e2e.pool_support import seed_pool
from tests.fakes import FakeUpstream

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"
PASSWORD = "browser-test-password"
ACCOUNT_IDS = ("acc001", "acc002")
WINDOW = (1280, 900)


# ---------------------------------------------------------------- chromium + chromedriver


@dataclass(frozen=True)
class ChromeTools:
    chromium: str
    chromedriver: str


def _find_tools() -> ChromeTools | str:
    """The browser and its driver, or why they cannot be used. BROWSER_TESTS_CHROMIUM and
    BROWSER_TESTS_CHROMEDRIVER override the paths found on PATH."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (tests/run.sh installs the test extra)"
    chromium = os.environ.get("BROWSER_TESTS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("BROWSER_TESTS_CHROMEDRIVER") or shutil.which("chromedriver")
    missing = [name for name, path in (("chromium", chromium), ("chromedriver", driver))
               if not path or not os.access(path, os.X_OK)]
    if missing:
        return (f"{' and '.join(missing)} not found: install the Debian packages chromium and chromium-driver "
                "(apt-get install chromium chromium-driver; .ci/run does)")
    assert chromium and driver
    return ChromeTools(chromium, driver)


@pytest.fixture(autouse=True)
def quiet_webdriver_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Selenium logs every WebDriver call at DEBUG (page sources, base64 screenshots): keep
    those out of the captured log that a failure prints."""
    for name in ("selenium", "urllib3"):
        caplog.set_level("WARNING", logger=name)


@pytest.fixture(scope="session")
def chrome_tools() -> ChromeTools:
    found = _find_tools()
    if isinstance(found, str):
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {found}", pytrace=False)
        pytest.skip(found)
    assert isinstance(found, ChromeTools)
    shutil.rmtree(SCREENSHOTS / "failures", ignore_errors=True)  # only this run's failures
    return found


@pytest.fixture(autouse=True)
def browser_available(chrome_tools: ChromeTools) -> None:
    """Skip (or fail under CI) before any daemon is started."""


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def open_browser(chrome_tools: ChromeTools, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """`open_browser(authorization=None, performance_log=False)` starts a fresh headless Chromium
    (own profile, no shared cookies) sending `authorization` with every request. All are quit
    at the end; the first one's window is saved when the test failed."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    drivers: list[Any] = []

    def start(authorization: str | None = None, performance_log: bool = False) -> Any:
        options = webdriver.ChromeOptions()
        options.binary_location = chrome_tools.chromium
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         f"--window-size={WINDOW[0]},{WINDOW[1]}", "--no-first-run", "--no-default-browser-check",
                         "--disable-extensions", "--disable-background-networking", "--password-store=basic"):
            options.add_argument(argument)
        options.unhandled_prompt_behavior = "ignore"  # the tests answer window.confirm themselves
        if performance_log:
            options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
        service = Service(executable_path=chrome_tools.chromedriver)
        driver = webdriver.Chrome(options=options, service=service)
        drivers.append(driver)
        # The page's viewport is exactly WINDOW (--window-size counts the browser's own frame).
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": WINDOW[0], "height": WINDOW[1], "deviceScaleFactor": 1, "mobile": False})
        driver.set_page_load_timeout(15)
        driver.set_script_timeout(10)
        if authorization is not None:
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": authorization}})
        return driver

    yield start
    report = getattr(request.node, "rep_call", None)
    if drivers and report is not None and report.failed:
        _save_failure(drivers[0], request.node.name)
    for driver in drivers:
        with contextlib.suppress(Exception):
            driver.quit()


def _save_failure(driver: Any, test_name: str) -> None:
    target = SCREENSHOTS / "failures"
    target.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
    with contextlib.suppress(Exception):
        # A confirm left open would block both.
        driver.switch_to.alert.dismiss()
    with contextlib.suppress(Exception):
        driver.save_screenshot(str(target / f"{name}.png"))
        (target / f"{name}.html").write_text(f"<!-- {driver.current_url} -->\n" + driver.page_source)
        print(f"failure screenshot: {target / name}.png (url {driver.current_url})")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None],
                               ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


# ---------------------------------------------------------------- the daemon


@dataclass
class Daemon:
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    routes_file: Path  # where the page saves routes
    log_path: Path
    fake: FakeUpstream

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """One API request as a client makes it; (status, body)."""
        data = orjson.dumps(body) if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"content-type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=15) as reply:
                return reply.status, reply.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def chat(self, model: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        return self.call("POST", "/v1/chat/completions",
                         {"model": model, "messages": [{"role": "user", "content": "hi"}]}, headers)


def _daemon_env(tmp_path: Path, fake: FakeUpstream) -> dict[str, str]:
    # Nothing of the developer's own configuration or proxies may leak into the daemon.
    inherited = {name: value for name, value in os.environ.items()
                 if not name.startswith("AGPROXY_") and name.lower() not in ("http_proxy", "https_proxy", "no_proxy")}
    return {
        **inherited,
        "AGPROXY_HOST": "127.0.0.1",
        "AGPROXY_PORT": "0",
        "AGPROXY_DATA_DIR": str(tmp_path / "data"),
        "AGPROXY_UPSTREAM_URLS": fake.base_url,
        "AGPROXY_OAUTH_TOKEN_URL": fake.token_url,
        "AGPROXY_USERINFO_URL": fake.userinfo_url,
        "AGPROXY_OAUTH_AUTH_URL": fake.auth_url,
        "AGPROXY_ADMIN_PASSWORD": PASSWORD,
    }


@pytest.fixture
def daemon(tmp_path: Path, fake: FakeUpstream, request: pytest.FixtureRequest) -> Iterator[Daemon]:
    """`python -m daemon serve` over the fake upstream with two stored accounts (acc001, acc002;
    acc002 has a quarter of its claude quota left) and an admin password; no AGPROXY_ROUTES_FILE,
    so routes saved in the page go to routes.json in the data dir. The pool reads both
    accounts' quota when it starts."""
    data_dir = tmp_path / "data"
    seed_pool(data_dir, fake, ACCOUNT_IDS)
    fake.set_quota("acc002@example.com", "claude-sonnet-4-6", 0.25)
    routes_file = data_dir / "routes.json"
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen([sys.executable, "-m", "daemon", "serve"], cwd=ROOT,
                                   env=_daemon_env(tmp_path, fake),
                                   stdout=subprocess.DEVNULL, stderr=log_file)
    try:
        port = _wait_for_port(process, log_path)
        yield Daemon(process, port, data_dir, routes_file, log_path, fake)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        report = getattr(request.node, "rep_call", None)
        if report is None or report.failed:
            print("---- daemon log ----\n" + log_path.read_text(errors="replace")[-20000:])


def _wait_for_port(process: subprocess.Popen[bytes], log_path: Path) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log_path.read_text(errors="replace"))
        if match:
            return int(match.group(1))
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError("the daemon did not start:\n" + log_path.read_text(errors="replace")[-5000:])
