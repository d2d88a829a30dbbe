"""The real `antigravity-proxy accounts …` CLI, run as a subprocess against a FakeUpstream.

Every upstream URL (OAuth consent page, token endpoint, userinfo, Cloud Code) points at a
fake on loopback over plain http; the test plays the browser with http.client (never
following redirects) and the user by writing to the CLI's stdin.

Not covered here:
- onboarding (onboardUser polls every 5 s);
- `verify` against a VALIDATION_REQUIRED 403: the fake's scripted replies (`fake.script`)
  are consumed by generation calls only (`_h_generate`), never by `:fetchAvailableModels`,
  which is what `verify` calls. A 403 that is not about the account (a foreign project) is
  covered instead.

Every stdout/stderr of every CLI run is collected in OUTPUTS; the last test checks that no
refresh token, access token, auth code, PKCE verifier or the OAuth client secret was printed.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import queue
import re
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest

from daemon import config
from daemon.accounts.model import parse_document
from tests.fakes import ANTIGRAVITY_CLIENT_ID, SCOPE, FakeAccount, FakeUpstream

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_EMAIL = "user@example.com"  # the FakeUpstream's default account
DEFAULT_PROJECT = "fake-project-1"
CALLBACK_PATH = "/oauth-callback"
TIER = "standard-tier"  # what the fake's accounts have unless told otherwise
ADDED = re.compile(r"(added|logged in again) (\S+) \(id ([0-9a-f]{6}), project (\S+), tier (\S+)\)")
FETCH_MODELS = "/v1internal:fetchAvailableModels"

# (command line, stdout, stderr) of every CLI run in this module, for the secrets check.
OUTPUTS: list[tuple[str, str, str]] = []
# Credentials the fakes handed out or received (refresh tokens, auth codes, PKCE verifiers).
SECRETS_SEEN: set[str] = set()
CLIENT_SECRET = config.load({}).oauth_client_secret.reveal()

_STRIPPED_ENV = {"DISPLAY", "WAYLAND_DISPLAY", "BROWSER", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"}


# --- plumbing ----------------------------------------------------------------------------


@dataclass
class Result:
    rc: int
    out: str
    err: str

    def added(self) -> re.Match[str]:
        lines = [line for line in self.out.splitlines() if ADDED.fullmatch(line)]
        assert len(lines) == 1, f"expected one added line:\n{self}"
        match = ADDED.fullmatch(lines[0])
        assert match is not None
        return match

    def __str__(self) -> str:
        return f"exit {self.rc}\n--- stdout\n{self.out}--- stderr\n{self.err}"


def _record(args: tuple[str, ...], out: str, err: str) -> None:
    OUTPUTS.append((" ".join(args), out, err))


class Live:
    """A CLI process we talk to while it runs: stdout is read line by line in a thread."""

    def __init__(self, args: tuple[str, ...], env: dict[str, str]) -> None:
        self.args = args
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daemon", *args], cwd=ROOT, env=env, text=True, bufsize=1,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.out_lines: list[str] = []
        self.err = ""
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._threads = [threading.Thread(target=self._pump_out, daemon=True),
                         threading.Thread(target=self._pump_err, daemon=True)]
        for thread in self._threads:
            thread.start()
        self._recorded = False

    def _pump_out(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.out_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _pump_err(self) -> None:
        assert self.process.stderr is not None
        self.err = self.process.stderr.read()

    def expect(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """The first further stdout line matching `pattern`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} within {timeout} s; stdout so far:\n"
                                     + "".join(self.out_lines)) from None
            if line is None:
                self.process.wait(5)
                self._join()
                raise AssertionError(f"the CLI ended before printing {pattern!r}:\n{self._result()}")
            match = re.search(pattern, line)
            if match:
                return match

    def auth_url(self) -> str:
        return self.expect(r"^\s*(http\S*/o/oauth2/v2/auth\?\S+)\s*$").group(1)

    def send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text)
        self.process.stdin.flush()

    def finish(self, timeout: float = 15.0) -> Result:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the CLI did not exit within {timeout} s:\n{self._result()}") from None
        self._join()
        return self._result()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self._join()

    def _join(self) -> None:
        for thread in self._threads:
            thread.join(5)
        if self.process.stdin is not None and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except BrokenPipeError:
                pass
        if not self._recorded:
            self._recorded = True
            _record(self.args, "".join(self.out_lines), self.err)

    def _result(self) -> Result:
        return Result(self.process.returncode, "".join(self.out_lines), self.err)


def free_port_pair() -> int:
    """A loopback port P with P + 1 free too (the login tries the next port when P is busy)."""
    for _ in range(100):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            if port >= 65535:
                continue
            try:
                with socket.socket() as second:
                    second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return int(port)
    raise RuntimeError("no pair of free ports")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str) -> tuple[int, dict[str, str], bytes]:
    """GET without following redirects (a browser's first hop)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", parts.path + ("?" + parts.query if parts.query else ""))
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode({**query_of(url), **changes})))


class CLI:
    def __init__(self, fake: FakeUpstream, data_dir: Path, callback_port: int) -> None:
        self.fake = fake
        self.data_dir = data_dir
        self.callback_port = callback_port
        self.live: list[Live] = []

    @property
    def accounts_file(self) -> Path:
        return self.data_dir / "accounts.json"

    def env(self, data_dir: Path | None = None, **overrides: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("AGPROXY_") and key.upper() not in _STRIPPED_ENV}
        env.update({
            "AGPROXY_DATA_DIR": str(data_dir or self.data_dir),
            "AGPROXY_UPSTREAM_URLS": self.fake.base_url,
            "AGPROXY_OAUTH_AUTH_URL": self.fake.auth_url,
            "AGPROXY_OAUTH_TOKEN_URL": self.fake.token_url,
            "AGPROXY_USERINFO_URL": self.fake.userinfo_url,
            "AGPROXY_OAUTH_CALLBACK_PORT": str(self.callback_port),
            "AGPROXY_LOG_LEVEL": "debug",  # the most the CLI can say, for the secrets check
            **overrides,
        })
        return env

    def run(self, *args: str, input: str | None = None, data_dir: Path | None = None,
            env: dict[str, str] | None = None, timeout: float = 20.0) -> Result:
        full = ("accounts", *args)
        done = subprocess.run(
            [sys.executable, "-m", "daemon", *full], cwd=ROOT, env=env or self.env(data_dir), text=True,
            input=input, stdin=None if input is not None else subprocess.DEVNULL, capture_output=True,
            timeout=timeout,
        )
        _record(full, done.stdout, done.stderr)
        return Result(done.returncode, done.stdout, done.stderr)

    def start(self, *args: str, env: dict[str, str] | None = None) -> Live:
        live = Live(("accounts", *args), env or self.env())
        self.live.append(live)
        return live

    def list_json(self, data_dir: Path | None = None) -> list[dict[str, Any]]:
        result = self.run("list", "--json", data_dir=data_dir)
        assert result.rc == 0, str(result)
        rows = json.loads(result.out)
        assert isinstance(rows, list)
        return rows

    def add_by_token(self, account: FakeAccount, data_dir: Path | None = None) -> str:
        """Import `account`'s refresh token through stdin; its id."""
        result = self.run("add", "--refresh-token-file", "-", input=account.refresh_token + "\n", data_dir=data_dir)
        assert result.rc == 0, str(result)
        match = result.added()
        assert match.group(2) == account.email
        return match.group(3)

    def stored(self, data_dir: Path | None = None) -> dict[str, Any]:
        """accounts.json as the daemon would read it, by e-mail."""
        path = (data_dir or self.data_dir) / "accounts.json"
        return {a.email: a for a in parse_document(path.read_bytes())}


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream
        for account in upstream.accounts:
            SECRETS_SEEN.add(account.refresh_token)
        for request in upstream.requests_to("/token"):
            form = request.form or {}
            SECRETS_SEEN.update(form[key] for key in ("code", "code_verifier", "refresh_token") if form.get(key))
        upstream.assert_no_violations()


@pytest.fixture
def cli(fake: FakeUpstream, tmp_path: Path) -> Iterator[CLI]:
    runner = CLI(fake, tmp_path / "data", free_port_pair())
    yield runner
    for live in runner.live:
        live.kill()


def play_consent(auth_url: str, redirect_uri: str) -> str:
    """The consent page's answer: the Location of its 302 (the callback with code and state)."""
    status, headers, body = http_get(auth_url)
    assert status == 302, body
    location = headers["location"]
    assert location.startswith(redirect_uri + "?"), location
    return location


# --- 1. desktop login --------------------------------------------------------------------


def test_desktop_login_by_playing_the_browser(cli: CLI, fake: FakeUpstream) -> None:
    login = cli.start("add", "--no-browser", "--timeout", "30")
    auth_url = login.auth_url()
    assert auth_url.startswith(fake.auth_url + "?")
    query = query_of(auth_url)
    redirect_uri = f"http://localhost:{cli.callback_port}{CALLBACK_PATH}"
    assert query["redirect_uri"] == redirect_uri
    assert query["code_challenge_method"] == "S256"
    assert query["access_type"] == "offline"
    assert query["prompt"] == "consent"
    assert query["response_type"] == "code"
    assert query["client_id"] == ANTIGRAVITY_CLIENT_ID
    assert query["scope"] == SCOPE
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", query["code_challenge"])
    assert len(query["state"]) >= 16
    login.expect(re.escape(f"Waiting for Google to send the browser back to {redirect_uri}"))

    location = play_consent(auth_url, redirect_uri)
    callback = query_of(location)
    assert callback["state"] == query["state"] and callback["code"]

    forged = with_query(location, state="0" * len(query["state"]))
    status, _, body = http_get(forged)
    assert status == 400
    assert b"state mismatch" in body
    time.sleep(0.3)
    assert login.process.poll() is None, "a callback with a foreign state must not end the login"
    assert fake.token_calls == 0

    status, _, body = http_get(location)
    assert status == 200, body
    assert b"Login received" in body
    result = login.finish()
    assert result.rc == 0, str(result)
    match = result.added()
    assert match.group(1, 2, 4, 5) == ("added", DEFAULT_EMAIL, DEFAULT_PROJECT, TIER)

    exchanges = fake.requests_to("/token")
    assert len(exchanges) == 1
    form = exchanges[0].form or {}
    assert form["grant_type"] == "authorization_code"
    assert form["code"] == callback["code"]
    assert form["redirect_uri"] == redirect_uri
    assert form.get("code_verifier"), "the code exchange must carry the PKCE verifier"
    assert s256(form["code_verifier"]) == query["code_challenge"]

    rows = cli.list_json()
    assert [(r["id"], r["email"], r["state"], r["project"], r["tier"]) for r in rows] == [
        (match.group(3), DEFAULT_EMAIL, "active", DEFAULT_PROJECT, TIER)]
    assert cli.stored()[DEFAULT_EMAIL].refresh_token == fake.account(DEFAULT_EMAIL).refresh_token
    assert stat.S_IMODE(cli.accounts_file.stat().st_mode) == 0o600


def test_desktop_login_refused_by_google(cli: CLI, fake: FakeUpstream) -> None:
    fake.next_login_error = "access_denied"
    login = cli.start("add", "--no-browser", "--timeout", "30")
    auth_url = login.auth_url()
    location = play_consent(auth_url, query_of(auth_url)["redirect_uri"])
    status, _, body = http_get(location)
    assert status == 400 and b"access_denied" in body
    result = login.finish()
    assert result.rc == 1, str(result)
    assert "access_denied" in result.err
    assert not cli.accounts_file.exists()
    assert fake.token_calls == 0


def test_desktop_login_times_out(cli: CLI, fake: FakeUpstream) -> None:
    login = cli.start("add", "--no-browser", "--timeout", "0.5")
    login.auth_url()
    result = login.finish()
    assert result.rc == 1, str(result)
    assert "no login arrived within 0.5 s" in result.err
    assert not cli.accounts_file.exists()


# --- 2. busy callback port ---------------------------------------------------------------


def test_busy_callback_port_moves_to_the_next_one(cli: CLI, fake: FakeUpstream) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", cli.callback_port))
        squatter.listen()
        login = cli.start("add", "--no-browser", "--timeout", "30")
        auth_url = login.auth_url()
        redirect_uri = f"http://localhost:{cli.callback_port + 1}{CALLBACK_PATH}"
        assert query_of(auth_url)["redirect_uri"] == redirect_uri
        login.expect(re.escape(f"send the browser back to {redirect_uri}"))
        location = play_consent(auth_url, redirect_uri)
        status, _, body = http_get(location)
        assert status == 200, body
        result = login.finish()
    assert result.rc == 0, str(result)
    assert result.added().group(1, 2) == ("added", DEFAULT_EMAIL)
    assert [r["email"] for r in cli.list_json()] == [DEFAULT_EMAIL]


# --- 3. headless paste -------------------------------------------------------------------


def test_headless_paste_login(cli: CLI, fake: FakeUpstream) -> None:
    login = cli.start("add", "--headless")
    auth_url = login.auth_url()
    redirect_uri = f"http://localhost:{cli.callback_port}{CALLBACK_PATH}"
    assert query_of(auth_url)["redirect_uri"] == redirect_uri
    assert query_of(auth_url)["code_challenge_method"] == "S256"
    login.expect(r"paste it here")
    location = play_consent(auth_url, redirect_uri)
    login.send(location + "\n")
    result = login.finish()
    assert result.rc == 0, str(result)
    assert result.added().group(1, 2, 4) == ("added", DEFAULT_EMAIL, DEFAULT_PROJECT)
    (exchange,) = fake.requests_to("/token")
    assert s256((exchange.form or {})["code_verifier"]) == query_of(auth_url)["code_challenge"]
    rows = cli.list_json()
    assert [(r["email"], r["state"], r["project"]) for r in rows] == [(DEFAULT_EMAIL, "active", DEFAULT_PROJECT)]


def test_headless_paste_with_a_foreign_state_is_refused(cli: CLI, fake: FakeUpstream) -> None:
    login = cli.start("add", "--headless")
    auth_url = login.auth_url()
    login.expect(r"paste it here")
    location = play_consent(auth_url, query_of(auth_url)["redirect_uri"])
    login.send(with_query(location, state="f" * 32) + "\n")
    result = login.finish()
    assert result.rc == 1, str(result)
    assert "state mismatch" in result.err
    assert "added" not in result.out
    assert fake.token_calls == 0, "the code must not be exchanged"
    assert not cli.accounts_file.exists()
    assert cli.list_json() == []


# --- 4. refresh-token import -------------------------------------------------------------


def test_refresh_token_import_from_file_and_stdin(cli: CLI, fake: FakeUpstream, tmp_path: Path) -> None:
    bob = fake.add_account("b@example.com", project="proj-b")
    token_file = tmp_path / "refresh-token.txt"
    token_file.write_text(bob.refresh_token + "\n")
    result = cli.run("add", "--refresh-token-file", str(token_file))
    assert result.rc == 0, str(result)
    bob_id = result.added().group(3)
    assert result.added().group(1, 2, 4, 5) == ("added", "b@example.com", "proj-b", TIER)

    carol = fake.add_account("c@example.com", project="proj-c")
    result = cli.run("add", "--refresh-token-file", "-", input=carol.refresh_token)
    assert result.rc == 0, str(result)
    assert result.added().group(1, 2, 4) == ("added", "c@example.com", "proj-c")

    result = cli.run("add", "--refresh-token-file", "-", input=bob.refresh_token + "\n")
    assert result.rc == 0, str(result)
    assert result.added().group(1, 2, 3) == ("logged in again", "b@example.com", bob_id)

    rows = cli.list_json()
    assert sorted((r["email"], r["state"], r["project"]) for r in rows) == [
        ("b@example.com", "active", "proj-b"), ("c@example.com", "active", "proj-c")]
    stored = cli.stored()
    assert stored["b@example.com"].refresh_token == bob.refresh_token
    assert stored["c@example.com"].refresh_token == carol.refresh_token
    assert fake.token_calls_by_grant["refresh_token"] == 3
    assert fake.token_calls_by_grant["authorization_code"] == 0


def test_revoked_refresh_token_is_refused(cli: CLI, fake: FakeUpstream, tmp_path: Path) -> None:
    gone = fake.add_account("r@example.com", project="proj-r")
    fake.revoke("r@example.com")
    token_file = tmp_path / "refresh-token.txt"
    token_file.write_text(gone.refresh_token)
    for args, stdin in ((("--refresh-token-file", str(token_file)), None), (("--refresh-token-file", "-"), gone.refresh_token)):
        result = cli.run("add", *args, input=stdin)
        assert result.rc == 1, str(result)
        assert "the refresh token does not work" in result.err
        assert "invalid_grant" in result.err
        assert "Traceback" not in result.err
        assert "added" not in result.out
    assert not cli.accounts_file.exists()
    assert cli.list_json() == []


def test_empty_refresh_token_file_is_refused(cli: CLI, fake: FakeUpstream, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    result = cli.run("add", "--refresh-token-file", str(empty))
    assert result.rc == 1, str(result)
    assert "the refresh token file is empty" in result.err
    assert fake.token_calls == 0
    assert not cli.accounts_file.exists()


def test_missing_refresh_token_file_is_a_clean_error(cli: CLI, fake: FakeUpstream, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-file.txt"
    result = cli.run("add", "--refresh-token-file", str(missing))
    assert result.rc == 1, str(result)
    assert "Traceback" not in result.err, str(result)
    assert str(missing) in result.err
    assert not cli.accounts_file.exists()


def test_add_with_cloud_code_unreachable_is_a_clean_error(cli: CLI, fake: FakeUpstream) -> None:
    env = cli.env(AGPROXY_UPSTREAM_URLS=f"http://127.0.0.1:{closed_port()}")
    result = cli.run("add", "--refresh-token-file", "-", input=fake.account(DEFAULT_EMAIL).refresh_token, env=env)
    assert result.rc == 1, str(result)
    assert "Traceback" not in result.err, str(result)
    assert result.err.strip().splitlines()[-1].startswith("antigravity-proxy: "), str(result)
    assert not cli.accounts_file.exists()


# --- 6. list, disable, enable, remove ----------------------------------------------------


def test_list_disable_enable_remove(cli: CLI, fake: FakeUpstream) -> None:
    result = cli.run("list")
    assert result.rc == 0 and "no accounts yet" in result.out

    user_id = cli.add_by_token(fake.account(DEFAULT_EMAIL))
    bob = fake.add_account("bob.smith@example.com", project="proj-bob")
    bob_id = cli.add_by_token(bob)

    result = cli.run("list")
    assert result.rc == 0, str(result)
    lines = result.out.splitlines()
    assert lines[0].split() == ["ID", "EMAIL", "STATE", "PROJECT", "TIER", "LAST", "ERROR", "NEXT", "RETRY"]
    assert lines[1].split() == [user_id, DEFAULT_EMAIL, "active", DEFAULT_PROJECT, TIER, "-", "-"]
    assert lines[2].split() == [bob_id, "bob.smith@example.com", "active", "proj-bob", TIER, "-", "-"]
    assert len(lines) == 3

    for args in (("list", "--mask"), ("list", "--mask", "--json")):
        result = cli.run(*args)
        assert result.rc == 0, str(result)
        assert "us***@example.com" in result.out and "bo***h@example.com" in result.out
        assert "user@" not in result.out and "bob.smith" not in result.out

    result = cli.run("disable", user_id)
    assert result.rc == 0, str(result)
    assert result.out.strip() == f"disabled {DEFAULT_EMAIL} (id {user_id})"
    result = cli.run("disable", "BOB.Smith@Example.com")
    assert result.rc == 0 and "disabled bob.smith@example.com" in result.out, str(result)
    rows = {r["id"]: r for r in cli.list_json()}
    assert rows[user_id]["state"] == rows[bob_id]["state"] == "disabled"
    assert rows[user_id]["reason"] == "disabled by the user"

    result = cli.run("enable", DEFAULT_EMAIL)
    assert result.rc == 0 and result.out.strip() == f"enabled {DEFAULT_EMAIL} (id {user_id})", str(result)
    result = cli.run("enable", bob_id)
    assert result.rc == 0, str(result)
    rows = {r["id"]: r for r in cli.list_json()}
    assert rows[user_id]["state"] == rows[bob_id]["state"] == "active"
    assert rows[user_id]["reason"] == ""

    for action in ("disable", "enable", "remove", "verify"):
        result = cli.run(action, "nobody@example.com")
        assert result.rc == 1, str(result)
        assert "no account with id or e-mail 'nobody@example.com'" in result.err, str(result)
        assert "Traceback" not in result.err
    assert len(cli.list_json()) == 2

    result = cli.run("remove", user_id)
    assert result.rc == 0 and result.out.strip() == f"removed {DEFAULT_EMAIL} (id {user_id})", str(result)
    assert [r["id"] for r in cli.list_json()] == [bob_id]
    result = cli.run("remove", "bob.smith@example.com")
    assert result.rc == 0, str(result)
    assert cli.list_json() == []
    result = cli.run("remove", bob_id)
    assert result.rc == 1 and "no account" in result.err


# --- 7. export / import ------------------------------------------------------------------


def test_export_then_import_into_a_fresh_data_dir(cli: CLI, fake: FakeUpstream, tmp_path: Path) -> None:
    cli.add_by_token(fake.account(DEFAULT_EMAIL))
    bob = fake.add_account("b@example.com", project="proj-b")
    cli.add_by_token(bob)

    export = tmp_path / "export.json"
    export.write_text("stale")
    export.chmod(0o644)  # an existing file must end up private too
    result = cli.run("export", str(export))
    assert result.rc == 0, str(result)
    assert "exported 2 accounts" in result.out
    assert "warning" in result.err and "refresh token" in result.err
    assert stat.S_IMODE(export.stat().st_mode) == 0o600
    document = json.loads(export.read_text())
    assert document["schema"] == "antigravity-proxy/export"
    tokens = {entry["email"]: entry["refresh_token"] for entry in document["accounts"]}
    assert tokens == {DEFAULT_EMAIL: fake.account(DEFAULT_EMAIL).refresh_token, "b@example.com": bob.refresh_token}
    assert "ya29." not in export.read_text(), "access tokens have no place in an export"

    fresh = tmp_path / "fresh"
    result = cli.run("import", str(export), data_dir=fresh)
    assert result.rc == 0, str(result)
    assert "imported 2 accounts" in result.out
    rows = cli.list_json(fresh)
    assert sorted((r["email"], r["state"], r["project"], r["tier"]) for r in rows) == [
        ("b@example.com", "active", "proj-b", TIER), (DEFAULT_EMAIL, "active", DEFAULT_PROJECT, TIER)]
    assert {email: a.refresh_token for email, a in cli.stored(fresh).items()} == tokens
    assert stat.S_IMODE((fresh / "accounts.json").stat().st_mode) == 0o600

    result = cli.run("import", str(export), data_dir=fresh)  # again: merged by e-mail, not duplicated
    assert result.rc == 0, str(result)
    assert sorted(r["email"] for r in cli.list_json(fresh)) == ["b@example.com", DEFAULT_EMAIL]

    result = cli.run("verify", data_dir=fresh)  # the imported refresh tokens work
    assert result.rc == 0, str(result)
    assert [line.split()[0] for line in result.out.splitlines()] == ["OK", "OK"]


@pytest.mark.parametrize("content", [None, b"[]", b"not json", b"accounts.json"],
                         ids=["missing-file", "json-list", "not-json", "accounts-file"])
def test_import_of_a_bad_file_is_a_clean_error(cli: CLI, fake: FakeUpstream, tmp_path: Path, content: bytes | None) -> None:
    source = tmp_path / "import.json"
    if content == b"accounts.json":
        cli.add_by_token(fake.account(DEFAULT_EMAIL))
        content = cli.accounts_file.read_bytes()  # the data file is not an export file
    if content is not None:
        source.write_bytes(content)
    fresh = tmp_path / "fresh"
    result = cli.run("import", str(source), data_dir=fresh)
    assert result.rc == 1, str(result)
    assert "Traceback" not in result.err, str(result)
    assert result.err.startswith(f"antigravity-proxy: {source}"), str(result)
    assert not (fresh / "accounts.json").exists()


def test_export_to_a_missing_directory_is_a_clean_error(cli: CLI, fake: FakeUpstream, tmp_path: Path) -> None:
    cli.add_by_token(fake.account(DEFAULT_EMAIL))
    target = tmp_path / "no-such-dir" / "export.json"
    result = cli.run("export", str(target))
    assert result.rc == 1, str(result)
    assert "Traceback" not in result.err, str(result)
    assert result.err.startswith("antigravity-proxy: ") and str(target) in result.err, str(result)


# --- 8. doctor ---------------------------------------------------------------------------


def corrupt_with_two_accounts(cli: CLI, fake: FakeUpstream) -> tuple[bytes, dict[str, str]]:
    user_id = cli.add_by_token(fake.account(DEFAULT_EMAIL))
    bob_id = cli.add_by_token(fake.add_account("b@example.com", project="proj-b"))
    bad = cli.accounts_file.read_bytes() + b"}"
    cli.accounts_file.write_bytes(bad)
    return bad, {user_id: DEFAULT_EMAIL, bob_id: "b@example.com"}


def test_doctor_checks_and_repairs(cli: CLI, fake: FakeUpstream) -> None:
    result = cli.run("doctor")
    assert result.rc == 0 and "no accounts file yet" in result.out, str(result)
    cli.add_by_token(fake.account(DEFAULT_EMAIL))
    cli.add_by_token(fake.add_account("b@example.com", project="proj-b"))
    result = cli.run("doctor")
    assert result.rc == 0, str(result)
    assert f"{cli.accounts_file}: OK, 2 accounts" in result.out

    before = cli.stored()
    bad = cli.accounts_file.read_bytes() + b"}"
    cli.accounts_file.write_bytes(bad)

    result = cli.run("list")  # everything else refuses the file and points at doctor
    assert result.rc == 1, str(result)
    assert "accounts doctor" in result.err and "Traceback" not in result.err

    token_calls = fake.token_calls
    result = cli.run("add", "--refresh-token-file", "-", input=fake.account(DEFAULT_EMAIL).refresh_token)
    assert result.rc == 1 and "accounts doctor" in result.err, str(result)
    assert cli.accounts_file.read_bytes() == bad, "a file that does not parse must never be overwritten"
    assert fake.token_calls == token_calls, "the file is refused before a login spends anything"

    result = cli.run("doctor")
    assert result.rc == 1, str(result)
    assert "not valid JSON" in result.out
    assert "salvageable: 2 accounts" in result.out
    assert "--repair" in result.out
    assert cli.accounts_file.read_bytes() == bad, "doctor without --repair must not touch the file"
    assert not list(cli.data_dir.glob("accounts.json.corrupt-*"))

    result = cli.run("doctor", "--repair")
    assert result.rc == 0, str(result)
    assert "repaired: kept 2 accounts" in result.out
    backups = list(cli.data_dir.glob("accounts.json.corrupt-*"))
    assert len(backups) == 1
    assert backups[0].read_bytes() == bad
    assert str(backups[0]) in result.out
    assert stat.S_IMODE(backups[0].stat().st_mode) == 0o600

    repaired = parse_document(cli.accounts_file.read_bytes())  # what the daemon reads
    assert {a.email: a for a in repaired} == before
    assert stat.S_IMODE(cli.accounts_file.stat().st_mode) == 0o600
    rows = cli.list_json()
    assert sorted((r["email"], r["state"]) for r in rows) == [("b@example.com", "active"), (DEFAULT_EMAIL, "active")]
    result = cli.run("doctor")
    assert result.rc == 0 and "OK, 2 accounts" in result.out, str(result)


def test_doctor_repair_when_the_backup_name_is_taken(cli: CLI, fake: FakeUpstream) -> None:
    """Two repairs within one second name their backups alike (accounts.json.corrupt-<epoch s>)."""
    bad, ids = corrupt_with_two_accounts(cli, fake)
    now = int(time.time())
    earlier = {cli.data_dir / f"accounts.json.corrupt-{t}": f"earlier backup {t}".encode() for t in range(now - 1, now + 60)}
    for path, body in earlier.items():
        path.write_bytes(body)
    result = cli.run("doctor", "--repair")
    assert result.rc == 0, str(result)
    assert "Traceback" not in result.err
    for path, body in earlier.items():
        assert path.read_bytes() == body, f"{path.name} was overwritten"
    assert [b for b in cli.data_dir.glob("accounts.json.corrupt-*") if b.read_bytes() == bad], "no backup of the bad file"
    assert {a.id: a.email for a in parse_document(cli.accounts_file.read_bytes())} == ids


# --- 9. verify ---------------------------------------------------------------------------


def verify_lines(result: Result) -> dict[str, list[str]]:
    """id -> [status, email, detail words…] from the plain `verify` output."""
    rows = {}
    for line in result.out.splitlines():
        status, account_id, email, *detail = line.split()
        rows[account_id] = [status, email, *detail]
    return rows


def test_verify_ok_then_revoked_then_logged_in_again(cli: CLI, fake: FakeUpstream) -> None:
    user_id = cli.add_by_token(fake.account(DEFAULT_EMAIL))
    bob_id = cli.add_by_token(fake.add_account("b@example.com", project="proj-b"))

    refreshes = fake.token_calls_by_grant["refresh_token"]
    result = cli.run("verify")
    assert result.rc == 0, str(result)
    rows = verify_lines(result)
    assert rows == {user_id: ["OK", DEFAULT_EMAIL], bob_id: ["OK", "b@example.com"]}
    assert fake.token_calls_by_grant["refresh_token"] == refreshes + 2, "verify always refreshes"
    probes = fake.requests_to(FETCH_MODELS)
    assert sorted((p.account, p.json.get("project")) for p in probes) == [
        ("b@example.com", "proj-b"), (DEFAULT_EMAIL, DEFAULT_PROJECT)]

    fake.revoke(DEFAULT_EMAIL)
    result = cli.run("verify")
    assert result.rc == 1, str(result)
    rows = verify_lines(result)
    assert rows[user_id][:2] == ["FAIL", DEFAULT_EMAIL]
    assert "needs_login:" in rows[user_id]
    assert rows[bob_id] == ["OK", "b@example.com"]
    states = {r["id"]: r for r in cli.list_json()}
    assert states[user_id]["state"] == "needs_login"
    assert "invalid_grant" in states[user_id]["reason"]
    assert states[bob_id]["state"] == "active"

    result = cli.run("enable", user_id)
    assert result.rc == 1 and "needs a new login" in result.err, str(result)
    calls = fake.token_calls
    result = cli.run("verify", DEFAULT_EMAIL)  # a needs_login account is not even tried
    assert result.rc == 1 and result.out.startswith("FAIL"), str(result)
    assert fake.token_calls == calls

    result = cli.run("disable", bob_id)
    assert result.rc == 0
    result = cli.run("verify", "--json")
    assert result.rc == 1, str(result)
    statuses = {r["id"]: r["status"] for r in json.loads(result.out)}
    assert statuses == {user_id: "FAIL", bob_id: "SKIP"}

    login = cli.start("add", "--headless")  # a new login brings the account back
    auth_url = login.auth_url()
    login.expect(r"paste it here")
    login.send(play_consent(auth_url, query_of(auth_url)["redirect_uri"]) + "\n")
    result = login.finish()
    assert result.rc == 0, str(result)
    assert result.added().group(1, 2, 3) == ("logged in again", DEFAULT_EMAIL, user_id)
    assert {r["id"]: r["state"] for r in cli.list_json()} == {user_id: "active", bob_id: "disabled"}
    assert cli.stored()[DEFAULT_EMAIL].refresh_token == fake.account(DEFAULT_EMAIL).refresh_token
    result = cli.run("verify", user_id)
    assert result.rc == 0 and verify_lines(result) == {user_id: ["OK", DEFAULT_EMAIL]}, str(result)


def test_verify_reports_a_cloud_code_refusal_without_blaming_the_account(cli: CLI, fake: FakeUpstream) -> None:
    """A 403 that is not about the account (here a project the account no longer owns)."""
    user_id = cli.add_by_token(fake.account(DEFAULT_EMAIL))
    fake.account(DEFAULT_EMAIL).project = "moved-elsewhere"
    result = cli.run("verify")
    assert result.rc == 1, str(result)
    assert fake.violations and all(v.startswith("[check_project_owner]") for v in fake.violations)
    fake.clear_violations()  # the fake counts a foreign project as a violation; here it is the point
    line = result.out.strip()
    assert line.startswith(f"FAIL {user_id}  {DEFAULT_EMAIL}  HTTP 403: "), str(result)
    assert {r["id"]: r["state"] for r in cli.list_json()} == {user_id: "active"}


def test_verify_with_cloud_code_unreachable_reports_fail(cli: CLI, fake: FakeUpstream) -> None:
    user_id = cli.add_by_token(fake.account(DEFAULT_EMAIL))
    env = cli.env(AGPROXY_UPSTREAM_URLS=f"http://127.0.0.1:{closed_port()}")
    result = cli.run("verify", env=env)
    assert result.rc == 1, str(result)
    assert "Traceback" not in result.err, str(result)
    assert verify_lines(result)[user_id][:2] == ["FAIL", DEFAULT_EMAIL]
    assert {r["id"]: r["state"] for r in cli.list_json()} == {user_id: "active"}


# --- 10. secrets -------------------------------------------------------------------------


def test_no_secret_in_any_cli_output() -> None:
    """Runs last: every stdout/stderr of the module's CLI runs (the export FILE is not among them)."""
    if not OUTPUTS:
        pytest.skip("no CLI output collected: run the whole module")
    assert len(SECRETS_SEEN) >= 5
    assert CLIENT_SECRET.startswith("GOCSPX-")
    shapes = re.compile(r"ya29\.|1//|GOCSPX-|4/0A")
    leaks = []
    for command, out, err in OUTPUTS:
        for name, text in (("stdout", out), ("stderr", err)):
            found = [s[:12] + "…" for s in (*SECRETS_SEEN, CLIENT_SECRET) if s in text]
            found += [m.group(0) for m in shapes.finditer(text)]
            if found:
                leaks.append(f"`{command}` {name}: {sorted(set(found))}")
    assert not leaks, "secrets printed:\n" + "\n".join(leaks)
