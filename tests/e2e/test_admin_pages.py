"""The admin page through a real daemon: access (basic auth, loopback rule, failed-login
limit), CSRF and same-origin checks on every POST, the DOM contract of each page, the
actions (accounts, keys, routes, the headless login), and that no page or JSON ever shows a
token, the client secret, a stored key or the admin password. Also: the zipapp ships and
serves the page's assets."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import html.parser
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from daemon import log as daemon_log
from daemon.accounts.model import AccountState
from daemon.accounts.store import AccountStore
from daemon.app import App
from daemon.config import Settings
from daemon.log_tail import TAIL
from daemon.redact import Secret
from tests.clients import build_zipapp, zipapp_daemon
from tests.fakes import FakeUpstream
from tests.support import RawClient, Reply, running_daemon
from tests.unit.test_admin_security import Parsed, assert_admin_headers

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"
NAV = ("/admin/accounts", "/admin/keys", "/admin/routes", "/admin/requests", "/admin/log")
MESSAGES = orjson.dumps({"model": "claude-sonnet-4-6", "max_tokens": 64,
                         "messages": [{"role": "user", "content": "hi"}]})


class Admin:
    """A browser stand-in: basic auth (when given a password), same-origin POSTs with the
    CSRF token read from the page that holds the form, from a chosen loopback address."""

    def __init__(self, listener, password: str | None = None, *, local: str = "127.0.0.1") -> None:  # type: ignore[no-untyped-def]
        self.listener = listener
        self.password = password
        self.local = local
        self.host = f"127.0.0.1:{listener.address[1]}"
        self.origin = f"http://{self.host}"

    def auth(self, password: str | None) -> list[tuple[str, str]]:
        if password is None:
            return []
        return [("authorization", "Basic " + base64.b64encode(f"admin:{password}".encode()).decode())]

    async def call(self, method: str, path: str, *, headers: list[tuple[str, str]] | None = None,
                   body: bytes = b"", host: str | None = None, password: str | None = ...) -> Reply:  # type: ignore[assignment]
        chosen = self.password if password is ... else password
        reader, writer = await asyncio.open_connection(*self.listener.address, local_addr=(self.local, 0))
        client = RawClient(reader, writer)
        try:
            lines = [f"{method} {path} HTTP/1.1", f"host: {host or self.host}"]
            lines += [f"{name}: {value}" for name, value in [*self.auth(chosen), *(headers or [])]]
            if body or method == "POST":
                lines.append(f"content-length: {len(body)}")
            client.send_raw("\r\n".join(lines).encode() + b"\r\n\r\n" + body)
            return await client.read_reply()
        finally:
            client.close()

    async def get(self, path: str, **options: object) -> Reply:
        return await self.call("GET", path, **options)  # type: ignore[arg-type]

    async def token(self, page: str, action: str) -> str:
        reply = await self.get(page)
        assert reply.status == 200, reply
        return csrf_of(reply.body, action)

    async def post(self, path: str, fields: dict[str, str], *, page: str | None = None, csrf: str | None = None,
                   origin: str | None = ..., referer: str | None = None) -> Reply:  # type: ignore[assignment]
        if csrf is None:  # read from the page that holds the form (by default the path itself)
            csrf = await self.token(page or path, path)
        headers = [("content-type", "application/x-www-form-urlencoded")]
        chosen_origin = self.origin if origin is ... else origin
        if chosen_origin is not None:
            headers.append(("origin", chosen_origin))
        if referer is not None:
            headers.append(("referer", referer))
        body = urllib.parse.urlencode({**fields, "csrf": csrf}).encode()
        return await self.call("POST", path, headers=headers, body=body)


class Forms(html.parser.HTMLParser):
    """Each form's action and fields (name → value), in order."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[dict[str, str | None], dict[str, str | None]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form":
            self.forms.append((dict(attrs), {}))
        elif tag in ("input", "button", "textarea") and self.forms and dict(attrs).get("name"):
            self.forms[-1][1][dict(attrs)["name"] or ""] = dict(attrs).get("value")


def csrf_of(page: bytes, action: str) -> str:
    tokens = {fields["csrf"] for attrs, fields in Forms(page.decode()).forms if attrs.get("action") == action}
    assert len(tokens) == 1, f"no single form posting to {action}"
    return tokens.pop() or ""


def element(page: bytes, tag: str, **wanted: str) -> dict[str, str | None]:
    found = [attrs for name, attrs in Parsed(page.decode()).elements
             if name == tag and all(attrs.get(key.replace("_", "-")) == value for key, value in wanted.items())]
    assert len(found) == 1, (tag, wanted, len(found))
    return found[0]


def text_of(page: bytes) -> str:
    return " ".join(Parsed(page.decode()).text)


def stored_accounts(settings: Settings) -> dict[str, AccountState]:
    return {account.id: account.state for account in AccountStore(settings.data_dir).read()}


@pytest.fixture
def protected(upstream_settings: Settings) -> Settings:
    return dataclasses.replace(upstream_settings, admin_password=Secret(PASSWORD))


# --- access ------------------------------------------------------------------------------------


async def test_every_page_has_the_navigation_and_the_security_headers(upstream_settings: Settings) -> None:
    async with running_daemon(upstream_settings) as (listener, _app, _routes):
        admin = Admin(listener)
        home = await admin.get("/admin")
        pages = {path: await admin.get(path) for path in NAV}
        extra = [await admin.get("/admin/requests.json"), await admin.get("/admin/static/admin.css"),
                 await admin.get("/admin/static/admin.js"), await admin.get("/admin/nothing-here"),
                 await admin.get("/admin/static/layout.html")]
    assert home.status == 303 and home.headers[b"location"] == b"/admin/accounts"
    assert_admin_headers(home.headers)
    for path, reply in pages.items():
        assert reply.status == 200 and reply.headers[b"content-type"] == b"text/html; charset=utf-8", path
        assert_admin_headers(reply.headers)
        links = {attrs.get("href") for name, attrs in Parsed(reply.body.decode()).elements if name == "a"}
        assert set(NAV) <= links, path
        assert not [a for n, a in Parsed(reply.body.decode()).elements if n == "script" and a.get("src") is None]
    json_reply, css, js, missing, template = extra
    assert json_reply.status == 200 and json_reply.headers[b"content-type"] == b"application/json"
    assert css.status == 200 and css.headers[b"content-type"].startswith(b"text/css") and b"quota-bar" in css.body
    assert js.status == 200 and js.headers[b"content-type"].startswith(b"text/javascript")
    assert missing.status == 404 and template.status == 404
    for reply in extra:
        assert_admin_headers(reply.headers)
    element(pages["/admin/accounts"].body, "table", id="accounts")
    element(pages["/admin/accounts"].body, "form", id="add-account")
    element(pages["/admin/keys"].body, "form", id="create-key-form")
    element(pages["/admin/keys"].body, "table", id="keys")
    element(pages["/admin/routes"].body, "form", id="routes-form")
    element(pages["/admin/requests"].body, "table", id="requests")
    element(pages["/admin/log"].body, "pre", id="log")


async def test_a_wrong_password_gets_401_and_five_of_them_429_for_that_address_only(protected: Settings) -> None:
    async with running_daemon(protected) as (listener, _app, _routes):
        admin = Admin(listener, PASSWORD)
        other = Admin(listener, PASSWORD, local="127.0.0.2")
        missing = await admin.get("/admin/accounts", password=None)  # a browser's first try: not a failure
        wrong = [await admin.get("/admin/accounts", password=f"guess {n}") for n in range(5)]
        blocked = await admin.get("/admin/accounts")  # even the right password now
        blocked_json = await admin.get("/admin/requests.json")
        elsewhere = await other.get("/admin/accounts")
    for reply in [missing, *wrong]:
        assert reply.status == 401, reply
        assert reply.headers[b"www-authenticate"] == b'Basic realm="antigravity-proxy"'
        assert_admin_headers(reply.headers)
    assert blocked.status == 429 and 55 <= int(blocked.headers[b"retry-after"]) <= 60
    assert b"Too many failed logins" in blocked.body
    assert blocked_json.status == 429 and orjson.loads(blocked_json.body)["error"]["code"] == 429
    assert_admin_headers(blocked.headers)
    assert elsewhere.status == 200  # 127.0.0.2 is another address


async def test_the_right_password_opens_every_page(protected: Settings) -> None:
    async with running_daemon(protected) as (listener, _app, _routes):
        admin = Admin(listener, PASSWORD)
        replies = [await admin.get(path) for path in NAV]
        wrong_user = await admin.call("GET", "/admin/keys", password=None,
                                      headers=[("authorization", "Basic " + base64.b64encode(
                                          f"root:{PASSWORD}".encode()).decode())])
    assert [reply.status for reply in replies] == [200] * len(NAV)
    assert wrong_user.status == 401


async def test_without_a_password_beyond_loopback_it_is_refused_with_how_to_set_one(upstream_settings: Settings) -> None:
    async with running_daemon(upstream_settings) as (listener, app, _routes):
        # Bound to loopback; the daemon is told it listens on every address.
        app.settings = dataclasses.replace(app.settings, host="0.0.0.0")
        admin = Admin(listener)
        page = await admin.get("/admin/accounts")
        data = await admin.get("/admin/requests.json")
        post = await admin.post("/admin/keys/create", {"name": "x"}, csrf="whatever")
        css = await admin.get("/admin/static/admin.css")  # public package files
    for reply in (page, data, post):
        assert reply.status == 403, reply
        assert b"AGPROXY_ADMIN_PASSWORD" in reply.body and b"www-authenticate" not in reply.headers
        assert_admin_headers(reply.headers)
    assert css.status == 200
    assert not (upstream_settings.data_dir / "keys.json").exists()


@pytest.mark.parametrize(("host", "headers"), [
    ("evil.example:9045", []),  # DNS rebinding: a foreign name that resolves to 127.0.0.1
    (None, [("x-forwarded-for", "203.0.113.9")]),  # through a reverse proxy
])
async def test_without_a_password_only_loopback_names_and_direct_clients_are_served(
        upstream_settings: Settings, host: str | None, headers: list[tuple[str, str]]) -> None:
    async with running_daemon(upstream_settings) as (listener, _app, _routes):
        admin = Admin(listener)
        replies = [await admin.get(path, host=host, headers=headers)
                   for path in ("/admin/accounts", "/quota", "/usage", "/metrics")]  # one rule for all of them
        direct = await admin.get("/quota")
    for reply in replies:
        assert reply.status == 403 and b"AGPROXY_ADMIN_PASSWORD" in reply.body, reply
    assert direct.status == 200


# --- CSRF and origin ----------------------------------------------------------------------------------


async def test_a_post_without_a_valid_csrf_token_is_refused(upstream_settings: Settings) -> None:
    async with running_daemon(upstream_settings) as (listener, _app, _routes):
        admin = Admin(listener)
        other_form = await admin.token("/admin/accounts", "/admin/accounts/action")
        replies = [
            await admin.post("/admin/keys/create", {"name": "a"}, csrf=""),
            await admin.post("/admin/keys/create", {"name": "b"}, csrf=other_form),  # another action's token
            await admin.post("/admin/keys/create", {"name": "c"}, csrf="x" * 43),
            await admin.call("POST", "/admin/keys/create", headers=[("origin", admin.origin), (
                "content-type", "application/x-www-form-urlencoded")], body=b"name=d"),  # no field at all
        ]
        accepted = await admin.post("/admin/keys/create", {"name": "e"}, page="/admin/keys")
    for reply in replies:
        assert reply.status == 403 and b"CSRF" in reply.body, reply
        assert_admin_headers(reply.headers)
    assert accepted.status == 200
    assert [k["name"] for k in orjson.loads((upstream_settings.data_dir / "keys.json").read_bytes())["keys"]] == ["e"]


async def test_a_post_from_another_origin_is_refused(upstream_settings: Settings) -> None:
    async with running_daemon(upstream_settings) as (listener, _app, _routes):
        admin = Admin(listener)
        csrf = await admin.token("/admin/accounts", "/admin/accounts/action")
        fields = {"account": "acc001", "action": "disable"}
        foreign = await admin.post("/admin/accounts/action", fields, csrf=csrf, origin="http://evil.example")
        null = await admin.post("/admin/accounts/action", fields, csrf=csrf, origin="null")
        silent = await admin.post("/admin/accounts/action", fields, csrf=csrf, origin=None)
        foreign_referer = await admin.post("/admin/accounts/action", fields, csrf=csrf, origin=None,
                                           referer="http://evil.example/admin/accounts")
        state_before = stored_accounts(upstream_settings)
        by_referer = await admin.post("/admin/accounts/action", fields, csrf=csrf, origin=None,
                                      referer=f"{admin.origin}/admin/accounts")
    for reply in (foreign, null, silent, foreign_referer):
        assert reply.status == 403 and b"did not come from the admin page" in reply.body, reply
        assert_admin_headers(reply.headers)
    assert state_before == {"acc001": AccountState.ACTIVE}
    assert by_referer.status == 200 and stored_accounts(upstream_settings) == {"acc001": AccountState.DISABLED}


async def test_a_post_that_is_not_a_form_is_refused(upstream_settings: Settings) -> None:
    async with running_daemon(upstream_settings) as (listener, _app, _routes):
        admin = Admin(listener)
        csrf = await admin.token("/admin/keys", "/admin/keys/create")
        reply = await admin.call("POST", "/admin/keys/create", headers=[
            ("origin", admin.origin), ("content-type", "application/json")],
            body=orjson.dumps({"name": "x", "csrf": csrf}))
    assert reply.status == 415 and not (upstream_settings.data_dir / "keys.json").exists()


# --- keys ------------------------------------------------------------------------------------------------


async def test_a_created_key_is_shown_once_works_and_stops_working_when_revoked(upstream_settings: Settings) -> None:
    async with running_daemon(upstream_settings) as (listener, _app, _routes):
        admin = Admin(listener)
        created = await admin.post("/admin/keys/create", {"name": "laptop"}, page="/admin/keys")
        key_element = [t for t in Parsed(created.body.decode()).elements if t[0] == "code"]
        key = text_of(created.body).split("Copy it now: it is not stored and is shown only this once.")[1].split()[0]
        second = await admin.post("/admin/keys/create", {"name": "phone"}, page="/admin/keys")
        listing = await admin.get("/admin/keys")
        models_with_key = await admin.call("GET", "/v1/models", headers=[("x-api-key", key)])
        models_without = await admin.call("GET", "/v1/models")
        duplicate = await admin.post("/admin/keys/create", {"name": "laptop"}, page="/admin/keys")
        revoked = await admin.post("/admin/keys/revoke", {"name": "laptop"}, page="/admin/keys")
        models_revoked = await admin.call("GET", "/v1/models", headers=[("x-api-key", key)])
    assert created.status == 200 and {"id": "new-key"} in [attrs for _, attrs in key_element]
    assert key.startswith("agp-") and len(key) == 44
    assert key.encode() not in listing.body and key.encode() not in second.body
    assert b'id="new-key"' not in listing.body
    rows = [attrs for name, attrs in Parsed(listing.body.decode()).elements if name == "tr" and attrs.get("class") == "key"]
    assert [row["data-key-name"] for row in rows] == ["laptop", "phone"]
    assert len([f for f, _ in Forms(listing.body.decode()).forms if f.get("class") == "revoke-key"]) == 2
    assert models_with_key.status == 200 and models_without.status == 401
    assert duplicate.status == 400 and b"already exists" in duplicate.body
    assert revoked.status == 200 and b"Revoked the key laptop" in revoked.body
    assert models_revoked.status == 401


# --- routes ------------------------------------------------------------------------------------------------


ROUTE = {"fast": {"strategy": "priority", "targets": [{"model": "gemini-3-flash"},
                                                     {"model": "claude-sonnet-4-6", "accounts": ["acc001"]}]}}


async def test_routes_are_validated_saved_applied_and_loaded_at_the_next_start(upstream_settings: Settings) -> None:
    path = upstream_settings.data_dir / "routes.json"
    async with running_daemon(upstream_settings) as (listener, app, _routes):
        admin = Admin(listener)
        before = await admin.get("/admin/routes")
        posted = await admin.post("/admin/routes", {"routes": orjson.dumps(ROUTE).decode()})
        saved = await admin.get(posted.headers[b"location"].decode())
        in_use = app.routes.find("route:fast")
        broken_text = '{"slow": {"targets": [], "note": "<script>"}}'
        invalid = await admin.post("/admin/routes", {"routes": broken_text})
        not_json = await admin.post("/admin/routes", {"routes": "{"})
        still = app.routes.find("fast")
        answer = await admin.call("POST", "/v1/messages", headers=[("content-type", "application/json")],
                                  body=MESSAGES.replace(b"claude-sonnet-4-6", b"fast"))
    assert element(before.body, "textarea", name="routes") is not None and "{}" in text_of(before.body)
    assert posted.status == 303 and posted.headers[b"location"] == b"/admin/routes?saved=1"  # post/redirect/get
    assert saved.status == 200 and b'id="routes-saved"' in saved.body and b"routes-error" not in saved.body
    assert in_use is not None and [t.model for t in in_use.targets] == ["gemini-3-flash", "claude-sonnet-4-6"]
    assert orjson.loads(path.read_bytes()) == ROUTE and path.stat().st_mode & 0o777 == 0o600
    assert '"fast"' in text_of(saved.body)  # the textarea shows what is in use
    assert invalid.status == 400 and b'id="routes-error"' in invalid.body
    assert "targets must be a non-empty list" in text_of(invalid.body)
    assert broken_text in text_of(invalid.body) and b"<script>" not in invalid.body  # kept, escaped
    assert not_json.status == 400 and "not valid JSON" in text_of(not_json.body)
    assert still is in_use and orjson.loads(path.read_bytes()) == ROUTE
    assert answer.status == 200, answer  # the route serves
    restarted = App(upstream_settings)
    try:
        assert restarted.routes.find("fast") is not None  # $AGPROXY_DATA_DIR/routes.json is read at start
    finally:
        await restarted.aclose()


async def test_routes_go_to_the_routes_file_when_one_is_set(upstream_settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "my-routes.json"
    path.parent.mkdir()
    path.write_text("{}")
    settings = dataclasses.replace(upstream_settings, routes_file=path)
    async with running_daemon(settings) as (listener, app, _routes):
        admin = Admin(listener)
        posted = await admin.post("/admin/routes", {"routes": orjson.dumps(ROUTE).decode()})
        saved = await admin.get(posted.headers[b"location"].decode())
    assert posted.status == 303 and saved.status == 200 and str(path) in text_of(saved.body)
    assert orjson.loads(path.read_bytes()) == ROUTE and not (upstream_settings.data_dir / "routes.json").exists()


# --- accounts ------------------------------------------------------------------------------------------------


async def test_accounts_are_disabled_enabled_and_removed(upstream_settings: Settings, fake: FakeUpstream) -> None:
    fake.set_quota("user@example.com", "claude-sonnet-4-6", 0.25, 3600)
    async with running_daemon(upstream_settings) as (listener, app, _routes):
        await app.pool.read_quota("acc001")
        admin = Admin(listener)
        page = await admin.get("/admin/accounts")
        disabled = await admin.post("/admin/accounts/action", {"account": "acc001", "action": "disable"},
                                    page="/admin/accounts")
        state_disabled = stored_accounts(upstream_settings)
        enabled = await admin.post("/admin/accounts/action", {"account": "acc001", "action": "enable"},
                                   page="/admin/accounts")
        state_enabled = stored_accounts(upstream_settings), app.accounts.get("acc001").state  # type: ignore[union-attr]
        unknown = await admin.post("/admin/accounts/action", {"account": "nope", "action": "disable"},
                                   page="/admin/accounts")
        removed = await admin.post("/admin/accounts/action", {"account": "acc001", "action": "remove"},
                                   page="/admin/accounts")
        in_memory = app.accounts.all()
    row = element(page.body, "tr", data_account_id="acc001")
    assert row["class"] == "account"
    bars = {attrs["data-family"]: attrs["data-remaining"] for name, attrs in Parsed(page.body.decode()).elements
            if name == "div" and attrs.get("class") == "quota-bar"}
    assert bars == {"claude": "0.25", "gemini-pro": "1", "gemini-flash": "1"}
    assert "us***@example.com" in text_of(page.body) and "resets in 1h00m" in text_of(page.body)
    assert element(page.body, "button", **{"class": "reveal"})["data-email"] == "user@example.com"
    assert element(page.body, "form", data_confirm="Remove us***@example.com?") is not None
    buttons = {fields["action"] for attrs, fields in Forms(page.body.decode()).forms
               if attrs.get("class") == "account-action"}
    assert buttons == {"disable", "relogin", "remove"}
    assert disabled.status == 200 and state_disabled == {"acc001": AccountState.DISABLED}
    assert b"Disabled us***@example.com." in disabled.body
    assert "enable" in {f["action"] for a, f in Forms(disabled.body.decode()).forms if a.get("class") == "account-action"}
    assert enabled.status == 200 and state_enabled == ({"acc001": AccountState.ACTIVE}, AccountState.ACTIVE)
    assert unknown.status == 409 and b"no account with id" in unknown.body
    assert removed.status == 200 and stored_accounts(upstream_settings) == {} and in_memory == []
    assert b'data-account-id="acc001"' not in removed.body


async def test_an_account_that_needs_a_login_is_not_simply_enabled(upstream_settings: Settings) -> None:
    async with running_daemon(upstream_settings) as (listener, app, _routes):
        await app.accounts.update("acc001", state=AccountState.NEEDS_LOGIN, reason="token revoked <b>")
        admin = Admin(listener)
        page = await admin.get("/admin/accounts")
        refused = await admin.post("/admin/accounts/action", {"account": "acc001", "action": "enable"},
                                   page="/admin/accounts")
    assert "token revoked <b>" in text_of(page.body) and b"<b>" not in page.body
    assert refused.status == 409 and b"needs a new login" in refused.body
    assert stored_accounts(upstream_settings) == {"acc001": AccountState.NEEDS_LOGIN}


def follow_consent(url: str) -> str:
    """Open the consent URL as the person's browser would; where Google sends it back."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return None

    opener = urllib.request.build_opener(NoRedirect, urllib.request.ProxyHandler({}))
    try:
        opener.open(url, timeout=10)
    except urllib.error.HTTPError as exc:
        assert exc.code == 302, exc
        return exc.headers["Location"]
    raise AssertionError("the consent page did not redirect")


async def start_login(admin: Admin, fields: dict[str, str], action: str) -> tuple[str, str, bytes]:
    """(login id, consent URL, the page showing them) after posting to `action`."""
    started = await admin.post(action, fields, page="/admin/accounts")
    assert started.status == 303, started
    location = started.headers[b"location"].decode()
    assert location.startswith("/admin/accounts?login=")
    page = await admin.get(location.partition("#")[0])
    url = element(page.body, "a", id="login-url")["href"] or ""
    form = element(page.body, "form", id="redirect-form")
    assert form["method"] == "post"
    element(page.body, "input", name="redirect_url")
    login_id = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["login"][0]
    return login_id, url, page.body


async def test_an_account_is_added_through_the_headless_login(upstream_settings: Settings, fake: FakeUpstream) -> None:
    fake.add_account("second@example.com")
    fake.next_login_email = "second@example.com"
    async with running_daemon(upstream_settings) as (listener, app, _routes):
        admin = Admin(listener)
        login_id, url, page = await start_login(admin, {}, "/admin/accounts/add")
        csrf = csrf_of(page, "/admin/accounts/login")
        redirect = await asyncio.to_thread(follow_consent, url)
        finished = await admin.post("/admin/accounts/login", {"login": login_id, "redirect_url": redirect}, csrf=csrf)
        again = await admin.post("/admin/accounts/login", {"login": login_id, "redirect_url": redirect}, csrf=csrf)
        in_memory = sorted(account.email for account in app.accounts.all())
    assert url.startswith(fake.auth_url + "?") and "code_challenge=" in url
    assert finished.status == 200, finished
    assert "Added se***d@example.com" in text_of(finished.body)
    assert in_memory == ["second@example.com", "user@example.com"]
    assert b'id="login-url"' not in finished.body
    assert again.status == 400 and "no longer open" in text_of(again.body)


async def test_relogin_logs_the_account_in_again_and_a_foreign_paste_is_refused(upstream_settings: Settings,
                                                                               fake: FakeUpstream) -> None:
    async with running_daemon(upstream_settings) as (listener, _app, _routes):
        admin = Admin(listener)
        first_id, first_url, page = await start_login(admin, {"account": "acc001", "action": "relogin"},
                                                      "/admin/accounts/action")
        other_id, _other_url, _ = await start_login(admin, {}, "/admin/accounts/add")
        redirect = await asyncio.to_thread(follow_consent, first_url)
        csrf = csrf_of(page, "/admin/accounts/login")
        foreign = await admin.post("/admin/accounts/login", {"login": other_id, "redirect_url": redirect},
                                   csrf=csrf)  # another login's state
        relogin_id, relogin_url, _ = await start_login(admin, {"account": "acc001", "action": "relogin"},
                                                       "/admin/accounts/action")
        redirect = await asyncio.to_thread(follow_consent, relogin_url)
        finished = await admin.post("/admin/accounts/login", {"login": relogin_id, "redirect_url": redirect},
                                    csrf=csrf)
    assert "sign in with the account us***@example.com" in text_of(page)
    assert foreign.status == 400 and "state mismatch" in text_of(foreign.body)
    assert finished.status == 200 and "Logged in again: us***@example.com" in text_of(finished.body)
    assert list(stored_accounts(upstream_settings)) == ["acc001"]
    assert first_id != relogin_id


# --- requests and log ------------------------------------------------------------------------------------------


async def test_the_requests_page_and_its_json_show_recent_requests_without_bodies(upstream_settings: Settings) -> None:
    async with running_daemon(upstream_settings) as (listener, _app, _routes):
        admin = Admin(listener)
        answer = await admin.call("POST", "/v1/messages", headers=[("content-type", "application/json")],
                                  body=MESSAGES)
        page = await admin.get("/admin/requests")
        data = await admin.get("/admin/requests.json?limit=5")
    assert answer.status == 200, answer
    document = orjson.loads(data.body)
    [entry] = document["requests"]
    assert entry["protocol"] == "anthropic" and entry["status"] == 200 and entry["account"] == "acc001"
    assert set(entry) <= {"time", "client", "protocol", "model", "account", "status", "complete", "ttfb_ms",
                          "duration_ms", "input_tokens", "output_tokens", "thinking_tokens", "cached_tokens",
                          "attempts"}
    rows = [attrs for name, attrs in Parsed(page.body.decode()).elements if name == "tr" and "request" in
            (attrs.get("class") or "").split()]
    assert len(rows) == 1 and "anthropic" in text_of(page.body)
    assert b'"hi"' not in data.body and b">hi<" not in page.body


@pytest.fixture
def log_tail() -> Iterator[None]:
    """The daemon's log tail, installed as log.setup() does (beside pytest's own capture)."""
    previous = TAIL.formatter
    TAIL.setFormatter(daemon_log._PlainFormatter())
    TAIL.clear()
    root = logging.getLogger()
    root.addHandler(TAIL)
    try:
        yield
    finally:
        root.removeHandler(TAIL)
        TAIL.setFormatter(previous)
        TAIL.clear()


async def test_the_log_page_shows_the_daemons_redacted_lines(upstream_settings: Settings, log_tail: None) -> None:
    async with running_daemon(upstream_settings) as (listener, _app, _routes):
        logging.getLogger("daemon.test").warning("marker <b>line</b> with api_key=sk-leak-0123456789")
        page = await Admin(listener).get("/admin/log")
    shown = element(page.body, "pre", id="log")
    assert shown == {"id": "log"}
    assert "marker <b>line</b> with api_key=***" in text_of(page.body)
    assert b"<b>line" not in page.body and b"sk-leak" not in page.body


# --- secrets -------------------------------------------------------------------------------------------------------


async def test_no_page_or_json_ever_shows_a_token_the_client_secret_a_key_or_the_password(
        protected: Settings, fake: FakeUpstream, log_tail: None) -> None:
    fake.add_account("second@example.com")
    fake.next_login_email = "second@example.com"
    collected: list[Reply] = []
    async with running_daemon(protected) as (listener, app, _routes):
        admin = Admin(listener, PASSWORD)
        collected.append(await admin.call("POST", "/v1/messages", headers=[("content-type", "application/json")],
                                          body=MESSAGES))
        login_id, url, page = await start_login(admin, {}, "/admin/accounts/add")
        redirect = await asyncio.to_thread(follow_consent, url)
        collected.append(await admin.post("/admin/accounts/login", {"login": login_id, "redirect_url": redirect},
                                          csrf=csrf_of(page, "/admin/accounts/login")))
        collected.append(await admin.post("/admin/keys/create", {"name": "laptop"}, page="/admin/keys"))
        key = text_of(collected[-1].body).split("shown only this once.")[1].split()[0]
        collected.append(await admin.post("/admin/routes", {"routes": orjson.dumps(ROUTE).decode()}))
        collected.append(await admin.get("/admin/accounts", password="wrong " + PASSWORD))
        collected.append(await admin.post("/admin/keys/revoke", {"name": "laptop"}, csrf="bad"))
        for path in (*NAV, "/admin", "/admin/requests.json", "/admin/static/admin.js", "/admin/missing",
                     f"/admin/accounts?login={login_id}"):
            collected.append(await admin.get(path))
        stored = AccountStore(protected.data_dir).read()
    secrets_ = {PASSWORD, protected.oauth_client_secret.reveal(), key}
    for account in stored:
        secrets_ |= {account.refresh_token, account.access_token}
    secrets_ |= {fake.account(email).refresh_token for email in ("user@example.com", "second@example.com")}
    secrets_.discard("")
    assert len(secrets_) >= 6 and all(len(secret) > 8 for secret in secrets_)
    shapes = ("ya29.", "1//", "GOCSPX-", "4/0A")  # any access token, refresh token, client secret, auth code
    assert len(collected) > 15
    shown_once = collected[2]  # the one answer that shows the new key
    assert key.encode() in shown_once.body
    for reply in collected[1:]:  # [0] is the model's answer
        assert reply.status in (200, 303, 401, 403, 404), reply
        everything = reply.body.decode() + repr(reply.headers)
        for secret in secrets_ - ({key} if reply is shown_once else set()):
            assert secret not in everything, (secret[:6], reply.status, everything[:300])
        for shape in shapes:
            assert shape not in everything, (shape, reply.status)
    [log_page] = [reply for reply in collected if b'<pre id="log">' in reply.body]
    assert b"admin page: account" in log_page.body and b"admin page: key laptop created" in log_page.body


# --- the zipapp ---------------------------------------------------------------------------------------------------


def test_the_zipapp_ships_and_serves_the_assets(fake: FakeUpstream, tmp_path: Path) -> None:
    zipapp = build_zipapp()
    package = Path(__file__).resolve().parents[2] / "daemon" / "admin"
    with zipapp_daemon(zipapp, fake, tmp_path, "") as running:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        bodies = {name: opener.open(f"{running.url}/admin/static/{name}", timeout=10).read()
                  for name in ("admin.css", "admin.js")}
        with opener.open(f"{running.url}/admin/accounts", timeout=10) as reply:
            page, policy = reply.read(), reply.headers["content-security-policy"]
    for name, body in bodies.items():
        assert body == (package / "static" / name).read_bytes(), name
    assert b'<table id="accounts">' in page and b'data-account-id="acc001"' in page and "'self'" in policy


async def test_a_login_nobody_finishes_is_given_up(upstream_settings: Settings,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from daemon.admin import logins

    monkeypatch.setattr(logins, "LOGIN_TIMEOUT", 0.2)
    async with running_daemon(upstream_settings) as (listener, _app, _routes):
        admin = Admin(listener)
        login_id, _url, page = await start_login(admin, {}, "/admin/accounts/add")
        await asyncio.sleep(0.5)
        shown = await admin.get(f"/admin/accounts?login={login_id}")
        late = await admin.post("/admin/accounts/login", {"login": login_id, "redirect_url": "http://x/?code=4"},
                                csrf=csrf_of(page, "/admin/accounts/login"))
    assert b'id="login-url"' not in shown.body and "no longer open" in text_of(shown.body)
    assert late.status == 400 and "no longer open" in text_of(late.body)


async def test_at_most_a_few_logins_are_open_at_once(upstream_settings: Settings) -> None:
    from daemon.admin import logins

    async with running_daemon(upstream_settings) as (listener, _app, _routes):
        admin = Admin(listener)
        opened = [await start_login(admin, {}, "/admin/accounts/add") for _ in range(logins.MAX_PENDING + 1)]
        first = await admin.get(f"/admin/accounts?login={opened[0][0]}")
        last = await admin.get(f"/admin/accounts?login={opened[-1][0]}")
    assert "no longer open" in text_of(first.body)  # the oldest gave way
    assert element(last.body, "a", id="login-url")["href"] == opened[-1][1]
