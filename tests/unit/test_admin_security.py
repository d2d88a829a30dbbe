"""The admin page's pure defences: CSRF tokens, the same-origin and loopback checks, the
failed-login limiter, the headers on every response, and escaping in the rendered pages."""

from __future__ import annotations

import html.parser

import pytest

from daemon.accounts.model import Account, AccountState
from daemon.admin import pages, render, security
from daemon.handlers.admin import Reply, send
from daemon.keys_store import ManagedKey

pytestmark = pytest.mark.unit

SECRET = b"k" * 32


# --- CSRF ------------------------------------------------------------------------------------


def test_a_token_verifies_for_its_own_path_only() -> None:
    token = security.csrf_token(SECRET, "/admin/keys/create")
    assert security.csrf_valid(SECRET, "/admin/keys/create", token)
    assert not security.csrf_valid(SECRET, "/admin/keys/revoke", token)  # wrong path
    assert not security.csrf_valid(b"x" * 32, "/admin/keys/create", token)  # another process's secret
    assert security.csrf_token(SECRET, "/admin/keys/create") == token  # stable within a process
    assert len(token) == 43 and token.isascii()


@pytest.mark.parametrize("given", [None, "", "x", "A" * 43, "é" * 43, "\udcff"])
def test_a_missing_or_wrong_token_is_refused(given: str | None) -> None:
    assert not security.csrf_valid(SECRET, "/admin/routes", given)


def test_a_token_with_one_character_changed_is_refused() -> None:
    token = security.csrf_token(SECRET, "/admin/routes")
    changed = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert not security.csrf_valid(SECRET, "/admin/routes", changed)


def test_new_secrets_differ() -> None:
    first, second = security.new_secret(), security.new_secret()
    assert first != second and len(first) == security.SECRET_BYTES


# --- same origin ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("host", "origin", "referer", "expected"), [
    (b"127.0.0.1:9045", b"http://127.0.0.1:9045", None, True),
    (b"proxy.example", b"https://proxy.example", None, True),  # TLS ends at a reverse proxy
    (b"Proxy.Example:8443", b"https://proxy.example:8443", None, True),
    (b"127.0.0.1:9045", None, b"http://127.0.0.1:9045/admin/keys?x=1", True),
    (b"127.0.0.1:9045", b"http://evil.example", None, False),
    (b"127.0.0.1:9045", b"http://127.0.0.1:9046", None, False),  # another port is another origin
    (b"127.0.0.1:9045", b"http://localhost:9045", None, False),
    (b"127.0.0.1:9045", b"null", b"http://127.0.0.1:9045/admin", False),  # an opaque origin never matches
    (b"127.0.0.1:9045", b"http://evil.example", b"http://127.0.0.1:9045/admin", False),  # Origin decides
    (b"127.0.0.1:9045", None, b"http://evil.example/admin", False),
    (b"127.0.0.1:9045", None, b"http://127.0.0.1:9045.evil.example/", False),
    (b"127.0.0.1:9045", b"http://user@127.0.0.1:9045", None, False),
    (b"127.0.0.1:9045", b"ftp://127.0.0.1:9045", None, False),
    (b"127.0.0.1:9045", None, None, False),  # says nothing: refused
    (None, b"http://127.0.0.1:9045", None, False),
    (b"", b"http://127.0.0.1:9045", None, False),
])
def test_same_origin(host: bytes | None, origin: bytes | None, referer: bytes | None, expected: bool) -> None:
    assert security.same_origin(host, origin, referer) is expected


@pytest.mark.parametrize(("host", "peer", "headers", "expected"), [
    (b"127.0.0.1:9045", "127.0.0.1", [], True),
    (b"localhost:9045", "127.0.0.1", [], True),
    (b"localhost", "::1", [], True),
    (b"[::1]:9045", "::1", [], True),
    (b"127.0.0.2", "::ffff:127.0.0.1", [], True),
    (b"admin.localhost:9045", "127.0.0.1", [], True),
    (b"evil.example:9045", "127.0.0.1", [], False),  # DNS rebinding: a foreign name resolved to us
    (b"192.168.1.5:9045", "127.0.0.1", [], False),
    (b"127.0.0.1:9045", "192.168.1.7", [], False),
    (b"127.0.0.1:9045", "", [], False),
    (None, "127.0.0.1", [], False),
    (b"127.0.0.1:9045", "127.0.0.1", [(b"x-forwarded-for", b"203.0.113.9")], False),  # a reverse proxy's
    (b"127.0.0.1:9045", "127.0.0.1", [(b"forwarded", b"for=203.0.113.9")], False),
])
def test_loopback_request(host: bytes | None, peer: str, headers: list[tuple[bytes, bytes]], expected: bool) -> None:
    assert security.loopback_request(host, peer, headers) is expected


# --- failed logins -------------------------------------------------------------------------------------


def test_five_failures_in_a_minute_block_that_address_only() -> None:
    limiter = security.LoginLimiter(max_failures=5, window=60)
    for second in range(5):
        assert limiter.retry_after("203.0.113.9", 100 + second) is None
        limiter.failed("203.0.113.9", 100 + second)
    assert limiter.retry_after("203.0.113.9", 105) == 55  # until the first failure is a minute old
    assert limiter.retry_after("203.0.113.10", 105) is None
    assert limiter.retry_after("203.0.113.9", 159.5) == 1
    assert limiter.retry_after("203.0.113.9", 160) is None  # the oldest one expired: 4 left in the window
    limiter.failed("203.0.113.9", 160)
    assert limiter.retry_after("203.0.113.9", 160) == 1  # 101..104 and 160: five in the last minute again


def test_failures_spread_over_more_than_the_window_do_not_block() -> None:
    limiter = security.LoginLimiter(max_failures=5, window=60)
    for minute in range(20):
        limiter.failed("198.51.100.1", minute * 20.0)
        assert limiter.retry_after("198.51.100.1", minute * 20.0) is None


def test_a_success_forgets_the_failures() -> None:
    limiter = security.LoginLimiter(max_failures=2, window=60)
    limiter.failed("198.51.100.1", 0)
    limiter.succeeded("198.51.100.1")
    limiter.failed("198.51.100.1", 1)
    assert limiter.retry_after("198.51.100.1", 1) is None


def test_an_ipv6_client_counts_by_its_64() -> None:
    limiter = security.LoginLimiter(max_failures=2, window=60)
    limiter.failed("2001:db8:1:2::1", 0)
    limiter.failed("2001:db8:1:2:ffff::9", 1)  # the same /64: the same client
    assert limiter.retry_after("2001:db8:1:2::77", 2) == 58
    assert limiter.retry_after("2001:db8:1:3::1", 2) is None
    assert security.limiter_key("::ffff:192.0.2.1") == "192.0.2.1"


def test_the_limiter_remembers_a_bounded_number_of_addresses() -> None:
    limiter = security.LoginLimiter(max_failures=1, window=60, max_addresses=3)
    for last in range(10):
        limiter.failed(f"192.0.2.{last}", 0)
    assert len(limiter) == 3
    assert limiter.retry_after("192.0.2.9", 1) == 59 and limiter.retry_after("192.0.2.0", 1) is None


@pytest.mark.parametrize("arguments", [(0, 60), (5, 0), (5, -1)])
def test_the_limiter_refuses_nonsense(arguments: tuple[int, float]) -> None:
    with pytest.raises(ValueError):
        security.LoginLimiter(*arguments)


# --- headers ----------------------------------------------------------------------------------------------


class RecordingResponder:
    def __init__(self) -> None:
        self.sent: list[tuple[int, list[tuple[bytes, bytes]], bytes]] = []

    def respond(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> None:
        self.sent.append((status, headers, body))


REQUIRED_HEADERS = {
    b"x-frame-options": b"DENY",
    b"cache-control": b"no-store",
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"same-origin",
}


def assert_admin_headers(headers: dict[bytes, bytes]) -> None:
    for name, value in REQUIRED_HEADERS.items():
        assert headers.get(name) == value, (name, headers)
    policy = headers[b"content-security-policy"].decode()
    directives = dict(part.strip().partition(" ")[::2] for part in policy.split(";"))
    assert directives["default-src"] == "'self'" and directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


@pytest.mark.parametrize("reply", [
    Reply(200, b"<p>page</p>"),
    Reply(303, headers=[(b"location", b"/admin/accounts")]),
    Reply(401, b"no", headers=[(b"www-authenticate", b'Basic realm="x"')]),
    Reply(429, b"{}", b"application/json", [(b"retry-after", b"60")]),
    Reply(200, b"body{}", b"text/css; charset=utf-8"),
])
def test_every_reply_carries_the_security_headers(reply: Reply) -> None:
    responder = RecordingResponder()
    send(responder, reply)  # type: ignore[arg-type]
    [(status, headers, body)] = responder.sent
    assert status == reply.status and body == reply.body
    names = [name for name, _ in headers]
    assert len(names) == len(set(names)), "a header is sent twice"
    assert_admin_headers(dict(headers))
    for name, value in reply.headers:
        assert (name, value) in headers


# --- escaping ----------------------------------------------------------------------------------------------

EVIL = '<script>alert("x")</script>'


class Parsed(html.parser.HTMLParser):
    """What a browser would build: elements (tag, attributes) and text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def tags(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.elements if tag == name]


def token(path: str) -> str:
    return security.csrf_token(SECRET, path)


def account(**changes: object) -> Account:
    fields: dict[str, object] = {"id": "acc001", "email": "user@example.com", "refresh_token": "1//secret",
                                 "client_id": "client", "project_id": "p1"}
    fields.update(changes)
    return Account(**fields)  # type: ignore[arg-type]


def test_an_account_reason_with_a_script_is_rendered_as_text() -> None:
    evil = account(state=AccountState.FORBIDDEN, reason=EVIL, last_error=EVIL, tier=EVIL, project_id='"><b>x',
                   verify_url="javascript:alert(1)", email='a"><script>@example.com')
    text = pages.accounts_body([evil], {"accounts": []}, {}, {}, 0.0, token)
    parsed = Parsed(text)
    assert not parsed.tags("script") and not parsed.tags("b")
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert EVIL in "".join(parsed.text)  # shown, as text
    assert not [a for a in parsed.tags("a") if (a.get("href") or "").startswith("javascript:")]
    [reveal] = [b for b in parsed.tags("button") if b.get("class") == "reveal"]
    assert reveal["data-email"] == 'a"><script>@example.com'  # an attribute value, intact
    assert "1//secret" not in text


def test_a_verification_link_is_a_link_only_when_it_is_https() -> None:
    text = pages.accounts_body([account(state=AccountState.VERIFICATION_REQUIRED, reason="verify",
                                        verify_url="https://accounts.google.com/x?a=1&b=2")],
                               {"accounts": []}, {}, {}, 0.0, token)
    links = [a for a in Parsed(text).tags("a") if a.get("href", "").startswith("https://accounts.google.com")]
    assert links == [{"href": "https://accounts.google.com/x?a=1&b=2", "target": "_blank",
                      "rel": "noopener noreferrer"}]


def test_every_form_posts_with_the_csrf_token_of_its_own_action() -> None:
    bodies = [
        pages.accounts_body([account(), account(id="acc002", state=AccountState.DISABLED)], {"accounts": []}, {}, {},
                            0.0, token, login=pages.login_panel("L1", "https://accounts.google.com/o", "", token)),
        pages.keys_body([ManagedKey("laptop", "0" * 64, 0.0)], {}, [], token, new_key=("laptop", "agp-x")),
        pages.routes_body("{}", "/tmp/routes.json", token, saved=True),
    ]
    seen = []
    for body in bodies:
        action = None
        for tag, attrs in Parsed(body).elements:
            if tag == "form":
                assert action is None, "a form without a csrf field"
                assert attrs["method"] == "post"
                action = attrs["action"]
            elif tag == "input" and attrs.get("name") == "csrf":
                assert action is not None and attrs["type"] == "hidden"
                assert attrs["value"] == token(action)
                seen.append(action)
                action = None
        assert action is None
    # accounts: 3 actions on each row, add, finish login; keys: create, revoke; routes: save
    assert sorted(seen) == sorted([pages.ACCOUNT_ACTION] * 6 + [pages.ADD_ACCOUNT, pages.FINISH_LOGIN,
                                   pages.CREATE_KEY, pages.REVOKE_KEY, pages.SAVE_ROUTES])


def test_the_remove_form_asks_first_with_the_masked_address() -> None:
    parsed = Parsed(pages.accounts_body([account()], {"accounts": []}, {}, {}, 0.0, token))
    confirming = [attrs for tag, attrs in parsed.elements if tag == "form" and "data-confirm" in attrs]
    assert [f["data-confirm"] for f in confirming] == ["Remove us***@example.com?"]
    assert "user@example.com" not in "".join(parsed.text)  # masked until revealed


def test_other_pages_escape_what_they_show() -> None:
    routes = pages.routes_body(EVIL, "/tmp/<x>.json", token, error=EVIL)
    log = pages.log_body([EVIL, "plain"], 10)
    requests = pages.requests_body([{"time": EVIL, "model": EVIL, "status": 200}], 10)
    keys = pages.keys_body([], {}, [EVIL], token, new_key=(EVIL, EVIL), error=EVIL)
    login = pages.login_panel('"><script>', 'https://accounts.google.com/o?a="><script>', EVIL, token)
    for text in (routes, log, requests, keys, login):
        parsed = Parsed(text)
        assert not parsed.tags("script"), text
        assert EVIL in "".join(parsed.text), text  # shown, as text
    [textarea] = [t for t in Parsed(routes).elements if t[0] == "textarea"]
    assert textarea[1]["name"] == "routes"


def test_a_quota_bar_says_what_is_left_and_when_it_resets() -> None:
    cell = Parsed(pages.quota_cell("claude", {"remaining": 0.25, "resets_in_s": 3600, "cooling_until": None}))
    [bar] = [attrs for tag, attrs in cell.elements if tag == "div"]
    assert bar == {"class": "quota-bar", "data-family": "claude", "data-remaining": "0.25"}
    assert "".join(cell.text) == "25%, resets in 1h00m"
    passed = Parsed(pages.quota_cell("claude", {"remaining": 1.0, "resets_in_s": 0, "cooling_until": None}))
    assert "".join(passed.text) == "100%, reset due"
    unknown = Parsed(pages.quota_cell("gemini-pro", {"remaining": None}))
    assert unknown.elements[0][1]["data-remaining"] == "" and not unknown.tags("meter")


def test_only_the_two_assets_are_served() -> None:
    assert render.asset("admin.css") is not None and render.asset("admin.js") is not None
    for name in ("layout.html", "../templates/layout.html", "__init__.py", ""):
        assert render.asset(name) is None
