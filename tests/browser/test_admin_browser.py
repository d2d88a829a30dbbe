"""The admin page in real headless Chromium: log in with basic auth, the accounts with their
quota bars, a new key shown once and then required by the API, a route edited in the page and
applied to the next API request, an account removed after a confirm, and a screenshot of each
page in tests/artifacts/screenshots/ for a human to look at."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from daemon.accounts.store import AccountStore
from tests.browser.conftest import ACCOUNT_IDS, PASSWORD, SCREENSHOTS, Daemon, basic_auth

pytestmark = pytest.mark.browser

PAGES = ("accounts", "keys", "routes", "requests", "log")
FAMILIES = ("claude", "gemini-pro", "gemini-flash")
CREDENTIAL_SHAPES = ("ya29.", "1//", "GOCSPX-")  # what the fake's tokens and the OAuth secret look like


def css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By
    return driver.find_elements(By.CSS_SELECTOR, selector)


def one(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By
    return driver.find_element(By.CSS_SELECTOR, selector)


def wait_for(driver: Any, condition: Any, timeout: float = 10, message: str = "") -> Any:
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition, message)


def wait_for_css(driver: Any, selector: str, timeout: float = 10) -> Any:
    return wait_for(driver, lambda d: (css(d, selector) or [None])[0], timeout,
                    f"{selector} did not appear on {driver.current_url}")


def submit(driver: Any, form: Any, button_selector: str = "") -> None:
    """Click the form's submit button (so its own handlers run) and wait for the next page."""
    selector = button_selector or 'button:not([type="button"]):not([type="reset"]), input[type="submit"]'
    buttons = css(form, selector)
    assert buttons, f"no submit button in {form.get_attribute('outerHTML')[:300]}"
    buttons[0].click()
    wait_for_next_page(driver, form)


def wait_for_next_page(driver: Any, element: Any) -> None:
    from selenium.webdriver.support import expected_conditions

    wait_for(driver, expected_conditions.staleness_of(element), 10, "the form did not lead to a new page")
    wait_for(driver, lambda d: d.execute_script("return document.readyState") == "complete", 10)


def open_page(driver: Any, daemon: Daemon, page: str) -> None:
    driver.get(f"{daemon.base}/admin/{page}")


def quota_bars(driver: Any) -> dict[str, dict[str, str | None]]:
    """account id → family → data-remaining, as the accounts page shows them."""
    return {row.get_attribute("data-account-id"): {bar.get_attribute("data-family"): bar.get_attribute("data-remaining")
                                                   for bar in css(row, "div.quota-bar")}
            for row in css(driver, "table#accounts tr.account")}


def wait_for_quota(driver: Any, daemon: Daemon) -> dict[str, dict[str, str | None]]:
    """The pool reads quota in the background once started: reload until both rows show a reading."""
    deadline = time.monotonic() + 15
    while True:
        bars = quota_bars(driver)
        if len(bars) == 2 and all(family.get("claude") for family in bars.values()):
            return bars
        assert time.monotonic() < deadline, f"no quota reading on the accounts page: {bars}"
        time.sleep(0.3)
        open_page(driver, daemon, "accounts")


def document_statuses(driver: Any) -> list[tuple[str, int]]:
    """(url, status) of each page load, from a browser opened with performance_log=True."""
    statuses = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.responseReceived" and message["params"].get("type") == "Document":
            response = message["params"]["response"]
            statuses.append((response["url"], response["status"]))
    return statuses


def stored_account_ids(daemon: Daemon) -> list[str]:
    return [account.id for account in AccountStore(daemon.data_dir).read()]


def served_model(daemon: Daemon, model: str, headers: dict[str, str] | None = None) -> str:
    """Ask the daemon for `model` as a client would; the model the upstream was asked for."""
    before = len(daemon.fake.generation_requests)
    status, body = daemon.chat(model, headers)
    assert status == 200, (status, body[:500])
    assert len(daemon.fake.generation_requests) == before + 1
    return str(daemon.fake.generation_requests[-1].json["model"])


def test_log_in_and_see_both_accounts_with_quota_bars(daemon: Daemon, open_browser: Any) -> None:
    driver = open_browser(basic_auth("admin", PASSWORD))
    driver.get(daemon.base + "/admin")
    assert driver.current_url == daemon.base + "/admin/accounts"  # GET /admin → 303 → accounts
    for page in PAGES:
        assert css(driver, f'a[href="/admin/{page}"]'), f"no nav link to /admin/{page}"

    bars = wait_for_quota(driver, daemon)
    assert set(bars) == set(ACCOUNT_IDS)
    for account_id, families in bars.items():
        assert set(families) == set(FAMILIES), (account_id, families)
        for family, remaining in families.items():
            assert remaining is not None and (remaining == "" or 0 <= float(remaining) <= 1), (account_id, family)
    assert float(bars["acc001"]["claude"] or "nan") == pytest.approx(1.0)
    assert float(bars["acc002"]["claude"] or "nan") == pytest.approx(0.25)  # the fake's reading for acc002

    # E-mails are masked until revealed; no credential is ever in the page.
    cell = one(driver, 'tr.account[data-account-id="acc001"] td.email')
    assert "acc001@example.com" not in cell.text
    one(cell, "button.reveal").click()
    wait_for(driver, lambda _: "acc001@example.com" in cell.text, 5, f"reveal did not show the e-mail: {cell.text!r}")
    for account in daemon.fake.accounts:
        assert account.refresh_token not in driver.page_source
    assert not any(shape in driver.page_source for shape in CREDENTIAL_SHAPES)
    assert PASSWORD not in driver.page_source


def test_a_wrong_password_or_none_shows_no_page(daemon: Daemon, open_browser: Any) -> None:
    for authorization in (basic_auth("admin", "not-the-password"), basic_auth("root", PASSWORD), None):
        intruder = open_browser(authorization, performance_log=True)
        intruder.get(daemon.base + "/admin/accounts")
        assert not css(intruder, "table#accounts") and not css(intruder, "tr.account")
        assert "acc001" not in intruder.page_source
        statuses = document_statuses(intruder)
        assert (daemon.base + "/admin/accounts", 401) in statuses, statuses
        intruder.quit()


def test_create_a_key_shown_once_then_required_by_the_api(daemon: Daemon, open_browser: Any) -> None:
    assert daemon.call("GET", "/v1/models")[0] == 200  # no key exists yet: loopback clients need none
    driver = open_browser(basic_auth("admin", PASSWORD))
    open_page(driver, daemon, "keys")
    form = one(driver, "form#create-key-form")
    assert one(form, 'input[name="csrf"]').get_attribute("value")
    one(form, 'input[name="name"]').send_keys("ci-key")
    submit(driver, form)

    key = wait_for_css(driver, "code#new-key").text.strip()
    assert len(key) >= 16, key
    row = one(driver, 'table#keys tr.key[data-key-name="ci-key"]')
    assert css(row, "form.revoke-key")
    assert key not in row.text

    open_page(driver, daemon, "keys")  # a fresh GET: the key is never shown again
    assert css(driver, 'table#keys tr.key[data-key-name="ci-key"]')
    assert not css(driver, "code#new-key")
    assert key not in driver.page_source

    # A managed key now exists, so the API wants one, and this one is accepted.
    deadline = time.monotonic() + 5
    while daemon.call("GET", "/v1/models")[0] != 401:
        assert time.monotonic() < deadline, "the API still answers without a key"
        time.sleep(0.2)
    assert daemon.call("GET", "/v1/models", headers={"x-api-key": key})[0] == 200
    assert daemon.call("GET", "/v1/models", headers={"authorization": f"Bearer {key}"})[0] == 200
    assert daemon.call("GET", "/v1/models", headers={"x-api-key": key[:-1] + ("A" if key[-1] != "A" else "B")})[0] == 401


def save_routes(driver: Any, daemon: Daemon, text: str) -> None:
    open_page(driver, daemon, "routes")
    form = one(driver, "form#routes-form")
    assert one(form, 'input[name="csrf"]').get_attribute("value")
    area = one(form, 'textarea[name="routes"]')
    area.clear()
    area.send_keys(text)
    submit(driver, form)


def test_a_route_edited_in_the_page_serves_the_next_request(daemon: Daemon, open_browser: Any) -> None:
    driver = open_browser(basic_auth("admin", PASSWORD))
    first = {"fast": {"strategy": "priority", "targets": [{"model": "gemini-3-flash"}]}}
    save_routes(driver, daemon, json.dumps(first, indent=2))
    wait_for_css(driver, "#routes-saved")
    assert not css(driver, "#routes-error")
    assert served_model(daemon, "fast") == "gemini-3-flash"

    second = {"fast": {"strategy": "priority", "targets": [{"model": "claude-sonnet-4-6"}, {"model": "gemini-3-flash"}]}}
    save_routes(driver, daemon, json.dumps(second))
    wait_for_css(driver, "#routes-saved")
    assert served_model(daemon, "fast") == "claude-sonnet-4-6"
    assert json.loads(daemon.routes_file.read_bytes()) == second  # kept for the next start
    open_page(driver, daemon, "routes")  # the page shows the routes in use
    assert json.loads(one(driver, 'form#routes-form textarea[name="routes"]').get_attribute("value")) == second

    save_routes(driver, daemon, '{"fast": {"targets": [')  # not JSON
    error = wait_for_css(driver, "#routes-error")
    assert error.is_displayed() and error.text.strip()
    assert not css(driver, "#routes-saved")
    assert served_model(daemon, "fast") == "claude-sonnet-4-6"  # the previous routes stay in use
    assert json.loads(daemon.routes_file.read_bytes()) == second


def test_remove_an_account_only_after_confirming(daemon: Daemon, open_browser: Any) -> None:
    from selenium.webdriver.support import expected_conditions

    driver = open_browser(basic_auth("admin", PASSWORD))
    remove = 'tr.account[data-account-id="acc002"] button[value="remove"], ' \
             'tr.account[data-account-id="acc002"] input[type="submit"][value="remove"]'
    open_page(driver, daemon, "accounts")
    button = one(driver, remove)
    form = button.find_element("xpath", "./ancestor::form[1]")
    assert "account-action" in form.get_attribute("class").split()
    question = form.get_attribute("data-confirm")
    assert question and question.startswith("Remove ") and "acc002@example.com" not in question

    button.click()
    alert = wait_for(driver, expected_conditions.alert_is_present(), 5, "no confirm before removing")
    assert alert.text == question
    alert.dismiss()
    time.sleep(0.5)  # a submission despite the answer would land meanwhile
    assert stored_account_ids(daemon) == list(ACCOUNT_IDS)
    open_page(driver, daemon, "accounts")
    assert css(driver, 'tr.account[data-account-id="acc002"]')

    button = one(driver, remove)
    button.click()
    wait_for(driver, expected_conditions.alert_is_present(), 5, "no confirm before removing").accept()
    wait_for_next_page(driver, button)
    wait_for(driver, lambda d: css(d, 'tr.account[data-account-id="acc001"]')
             and not css(d, 'tr.account[data-account-id="acc002"]'), 10, "acc002 is still listed")
    assert stored_account_ids(daemon) == ["acc001"]
    open_page(driver, daemon, "accounts")
    assert [row.get_attribute("data-account-id") for row in css(driver, "tr.account")] == ["acc001"]


def test_screenshots_of_every_page(daemon: Daemon, open_browser: Any) -> None:
    """tests/artifacts/screenshots/<page>.png, the 1280×900 viewport, for a human to review."""
    assert served_model(daemon, "claude-sonnet-4-6") == "claude-sonnet-4-6"  # something for requests and log
    driver = open_browser(basic_auth("admin", PASSWORD))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for stale in SCREENSHOTS.glob("*.png"):
        stale.unlink()

    def shoot(page: str) -> None:
        path = SCREENSHOTS / f"{page}.png"
        assert driver.save_screenshot(str(path))
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000, path

    def follow_nav(page: str) -> None:
        link = one(driver, f'a[href="/admin/{page}"]')
        link.click()
        wait_for_next_page(driver, link)
        assert driver.current_url == f"{daemon.base}/admin/{page}"

    open_page(driver, daemon, "accounts")
    wait_for_quota(driver, daemon)
    shoot("accounts")
    submit(driver, one(driver, "form#add-account"))  # the headless sign-in: a URL to open, a field to paste into
    login_url = wait_for_css(driver, "a#login-url")
    assert login_url.get_attribute("href").startswith(daemon.fake.auth_url + "?")
    one(driver, "#redirect-url").send_keys("http://localhost:51121/oauth-callback?state=…&code=…")
    shoot("accounts-login")

    follow_nav("routes")
    save_routes(driver, daemon, json.dumps({"fast": {"strategy": "priority", "targets": [
        {"model": "gemini-3-flash"}, {"model": "claude-sonnet-4-6"}]}}, indent=2))
    wait_for_css(driver, "#routes-saved")
    shoot("routes")

    follow_nav("requests")
    wait_for_css(driver, "table#requests tr.request")
    shown = len(css(driver, "table#requests tr.request"))
    assert served_model(daemon, "fast") == "gemini-3-flash"
    wait_for(driver, lambda d: len(css(d, "table#requests tr.request")) > shown, 6,
             "the requests table did not refresh by itself")
    shoot("requests")

    follow_nav("log")
    log = wait_for_css(driver, "pre#log")
    assert log.text.strip()
    for secret in (PASSWORD, *CREDENTIAL_SHAPES, *(account.refresh_token for account in daemon.fake.accounts)):
        assert secret not in log.text
    shoot("log")

    follow_nav("keys")  # last: once a key exists the API above would want one
    form = one(driver, "form#create-key-form")
    one(form, 'input[name="name"]').send_keys("build-server")
    submit(driver, form)
    wait_for_css(driver, "code#new-key")
    shoot("keys")  # with the new key shown once (a throwaway daemon's key)

    assert sorted(path.stem for path in SCREENSHOTS.glob("*.png")) == sorted([*PAGES, "accounts-login"])
