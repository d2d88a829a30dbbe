"""/admin: the admin page (accounts, keys, routes, requests, log) and its JSON.

Every answer (errors included) carries the security headers of admin/security.py. Access:
basic auth (user admin) with AGPROXY_ADMIN_PASSWORD; without one, loopback clients of a
loopback daemon only. Failed logins are rate-limited per address. A POST must be a form of
this origin with the CSRF token of the path it posts to. /admin/static/* (the stylesheet
and the script, public package files) needs no login.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, parse_qsl

import orjson

from ..accounts.login import Login, LoginError
from ..admin import actions, pages, render, security
from ..admin.logins import Logins
from ..data_file import StoreError
from ..errors import ErrorKind, ProxyError
from ..http_server.request import Request
from ..http_server.response import Headers, Responder
from ..http_server.router import Router
from ..keys_store import KeysError
from ..pool.quota_view import quota_json
from ..redact import mask_email
from ..routes import RoutesError
from .common import BASIC_CHALLENGE, require_admin

if TYPE_CHECKING:
    from ..app import App

log = logging.getLogger(__name__)

HTML = b"text/html; charset=utf-8"
JSON = b"application/json"
REQUESTS_SHOWN = 100  # rows on the requests page and in requests.json (?limit= up to MONITOR_MAX)
MONITOR_MAX = 500
LOG_LINES = 300
MAX_FORM_FIELDS = 32

CROSS_ORIGIN = ("Refused: this request did not come from the admin page itself (its Origin or Referer does not "
                "match the Host it was sent to).")
BAD_CSRF = ("Refused: the form's CSRF token is missing or wrong (the daemon may have restarted since the page "
            "was loaded). Reload the page and try again.")


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes = b""
    content_type: bytes = HTML
    headers: Headers = field(default_factory=list)


Form = dict[str, str]
PageHandler = Callable[[Request, Form], Awaitable[Reply]]


def register(router: Router, app: App) -> None:
    AdminSite(app).mount(router)


class AdminSite:
    def __init__(self, app: App) -> None:
        self.app = app
        self.secret = security.new_secret()
        self.limiter = security.LoginLimiter()
        # An answered login's task belongs to the App, which cancels it on close (it never
        # raises: it ends with an Outcome).
        self.logins = Logins(lambda: Login(app.settings, app.calls, app.accounts.store), app.adopt)

    def mount(self, router: Router) -> None:
        get, post = self._guarded_get, self._guarded_post
        router.add("GET", "/admin", get(self.home))
        router.add("GET", "/admin/", get(self.home))
        router.add("GET", "/admin/accounts", get(self.accounts_page))
        router.add("POST", pages.ACCOUNT_ACTION, post(self.account_action))
        router.add("POST", pages.ADD_ACCOUNT, post(self.add_account))
        router.add("POST", pages.FINISH_LOGIN, post(self.finish_login))
        router.add("GET", "/admin/keys", get(self.keys_page))
        router.add("POST", pages.CREATE_KEY, post(self.create_key))
        router.add("POST", pages.REVOKE_KEY, post(self.revoke_key))
        router.add("GET", "/admin/routes", get(self.routes_page))
        router.add("POST", pages.SAVE_ROUTES, post(self.save_routes))
        router.add("GET", "/admin/requests", get(self.requests_page))
        router.add("GET", "/admin/requests.json", get(self.requests_json))
        router.add("GET", "/admin/log", get(self.log_page))
        router.add("GET", "/admin/static/{name}", self.static)
        router.add("GET", "/admin/{page}", get(self.not_found))
        router.add("POST", "/admin/{page}", get(self.not_found))

    # --- access --------------------------------------------------------------------------------

    def refusal(self, request: Request) -> Reply | None:
        """Why this request may not use the admin page; None when it may."""
        app, now = self.app, time.monotonic()
        wait = self.limiter.retry_after(request.peer, now)
        if wait is not None:
            return self.error(request, 429, f"Too many failed logins from your address; try again in {wait} s.",
                              [(b"retry-after", b"%d" % wait)])
        try:
            require_admin(app, request)
        except ProxyError as error:
            if error.kind is not ErrorKind.AUTH:
                return self.error(request, error.status, error.message)
            if request.header(b"authorization") is not None:  # a browser's first try carries none
                self.limiter.failed(request.peer, now)
                log.warning("admin page: failed login from %s", request.peer or "an unknown address")
            return self.error(request, 401, "Admin credentials required: user admin and AGPROXY_ADMIN_PASSWORD.",
                              [BASIC_CHALLENGE])
        self.limiter.succeeded(request.peer)
        return None

    def post_refusal(self, request: Request) -> tuple[Reply | None, Form]:
        if not security.same_origin(request.header(b"host"), request.header(b"origin"), request.header(b"referer")):
            log.warning("admin page: cross-origin POST to %s refused", request.path)
            return self.error(request, 403, CROSS_ORIGIN), {}
        form = _form(request)
        if form is None:
            return self.error(request, 415, "The form must be sent as application/x-www-form-urlencoded (UTF-8)."), {}
        if not security.csrf_valid(self.secret, request.path, form.get(security.CSRF_FIELD)):
            log.warning("admin page: POST to %s without a valid CSRF token refused", request.path)
            return self.error(request, 403, BAD_CSRF), {}
        return None, form

    def token(self, path: str) -> str:
        return security.csrf_token(self.secret, path)

    # --- plumbing --------------------------------------------------------------------------------

    def _guarded_get(self, handler: PageHandler) -> Callable[[Request, Responder], Awaitable[None]]:
        return self._guarded(handler, post=False)

    def _guarded_post(self, handler: PageHandler) -> Callable[[Request, Responder], Awaitable[None]]:
        return self._guarded(handler, post=True)

    def _guarded(self, handler: PageHandler, *, post: bool) -> Callable[[Request, Responder], Awaitable[None]]:
        async def guarded(request: Request, response: Responder) -> None:
            reply, form = self.refusal(request), {}
            if reply is None and post:
                reply, form = self.post_refusal(request)
            if reply is None:
                try:
                    reply = await handler(request, form)
                except Exception:
                    log.exception("admin page: %s %s failed", request.method, request.path)
                    reply = self.error(request, 500, "The admin page failed; the daemon's log has the details.")
            send(response, reply)

        return guarded

    def error(self, request: Request, status: int, message: str, headers: Headers | None = None) -> Reply:
        if request.path.endswith(".json"):
            body = orjson.dumps({"error": {"code": status, "message": message}})
            return Reply(status, body, JSON, headers or [])
        return Reply(status, render.error_page(status, message, home=status not in (401, 403, 429)), HTML,
                     headers or [])

    def page(self, status: int, path: str, title: str, body: str) -> Reply:
        return Reply(status, render.page(path, title, body))

    async def static(self, request: Request, response: Responder) -> None:
        found = render.asset(request.params.get("name", ""))
        if found is None:
            send(response, self.error(request, 404, "No such file."))
            return
        content_type, body = found
        send(response, Reply(200, body, content_type))

    async def not_found(self, request: Request, form: Form) -> Reply:
        return self.error(request, 404, f"There is no admin page at {request.path}.")

    async def home(self, request: Request, form: Form) -> Reply:
        return Reply(303, headers=[(b"location", b"/admin/accounts")])

    # --- accounts ----------------------------------------------------------------------------------

    def accounts_reply(self, status: int = 200, *, login_id: str = "", message: str = "", error: str = "") -> Reply:
        app = self.app
        try:
            app.accounts.reload_if_changed()
        except StoreError as exc:
            error = error or str(exc)
        now = time.time()
        accounts = app.accounts.all()
        loads = app.pool.state.loads
        quota = quota_json([(a, loads.get(a.id)) for a in accounts], now)
        panel = ""
        pending = self.logins.get(login_id) if login_id else None
        if pending is not None:
            target = app.accounts.get(pending.account_id) if pending.account_id else None
            relogin_of = mask_email(target.email) if target is not None else ""
            panel = pages.login_panel(pending.id, pending.url, relogin_of, self.token)
        elif login_id and not error:
            error = "That login is no longer open (it timed out or was finished); start a new one."
        body = pages.accounts_body(accounts, quota, loads, app.usage.snapshot()["accounts"], now, self.token,
                                   login=panel, message=message, error=error)
        return self.page(status, "/admin/accounts", "Accounts", body)

    async def accounts_page(self, request: Request, form: Form) -> Reply:
        return self.accounts_reply(login_id=_query(request, "login"))

    async def account_action(self, request: Request, form: Form) -> Reply:
        action, account_id = form.get("action", ""), form.get("account", "")
        if action not in actions.ACCOUNT_ACTIONS:
            return self.accounts_reply(400, error=f"Unknown action {action!r}.")
        try:
            if action == "relogin":
                actions.account(self.app, account_id)
                return self.start_login(account_id)
            message = await actions.change_account(self.app, account_id, action)
        except actions.ActionError as exc:
            return self.accounts_reply(409, error=str(exc))
        return self.accounts_reply(message=message)

    async def add_account(self, request: Request, form: Form) -> Reply:
        return self.start_login("")

    def start_login(self, account_id: str) -> Reply:
        pending = self.logins.start(account_id)
        return Reply(303, headers=[(b"location", f"/admin/accounts?login={pending.id}#login".encode())])

    async def finish_login(self, request: Request, form: Form) -> Reply:
        login_id, pasted = form.get("login", ""), form.get("redirect_url", "")
        if not pasted.strip():
            return self.accounts_reply(400, login_id=login_id, error="Paste the address the browser ended up at.")
        try:
            outcome = await self.logins.finish(login_id, pasted)
        except LoginError as exc:
            return self.accounts_reply(400, error=str(exc))
        if outcome is None:
            return self.accounts_reply(202, message="The login is still being set up (code exchange and project discovery); "
                                                    "reload this page in a minute.")
        if outcome.added is None:
            return self.accounts_reply(400, error=f"The login failed: {outcome.error}")
        self.app.pool.read_soon(outcome.added.account.id)
        return self.accounts_reply(message=outcome.message)

    # --- keys -----------------------------------------------------------------------------------------

    def keys_reply(self, status: int = 200, *, new_key: tuple[str, str] | None = None, message: str = "",
                   error: str = "") -> Reply:
        app = self.app
        try:
            keys = app.keys.store.read()
        except StoreError as exc:
            keys, error = [], error or str(exc)
        env_names = [name for name, _ in app.settings.api_keys]
        body = pages.keys_body(keys, app.usage.snapshot()["keys"], env_names, self.token, new_key=new_key,
                               message=message, error=error)
        return self.page(status, "/admin/keys", "Keys", body)

    async def keys_page(self, request: Request, form: Form) -> Reply:
        return self.keys_reply()

    async def create_key(self, request: Request, form: Form) -> Reply:
        name = form.get("name", "").strip()
        try:
            key = await actions.create_key(self.app, name)
        except (KeysError, StoreError) as exc:
            return self.keys_reply(400, error=str(exc))
        return self.keys_reply(new_key=(name, key))

    async def revoke_key(self, request: Request, form: Form) -> Reply:
        name = form.get("name", "")
        try:
            revoked = await actions.revoke_key(self.app, name)
        except (KeysError, StoreError) as exc:
            return self.keys_reply(409, error=str(exc))
        message = f"Revoked the key {name} (fingerprint {revoked.fingerprint}); clients using it are refused now."
        if not self.app.keys and not self.app.settings.api_keys:
            message += " No client keys are left, so the daemon serves requests without a key again."
        return self.keys_reply(message=message)

    # --- routes -----------------------------------------------------------------------------------------

    def routes_reply(self, status: int = 200, *, text: str | None = None, saved: bool = False,
                     error: str = "") -> Reply:
        shown = actions.routes_text(self.app.routes) if text is None else text
        body = pages.routes_body(shown, str(self.app.routes_path), self.token, saved=saved, error=error)
        return self.page(status, "/admin/routes", "Routes", body)

    async def routes_page(self, request: Request, form: Form) -> Reply:
        return self.routes_reply(saved=_query(request, "saved") == "1")

    async def save_routes(self, request: Request, form: Form) -> Reply:
        text = form.get("routes", "")
        try:
            await actions.save_routes(self.app, text, self.app.routes_path)
        except (RoutesError, actions.ActionError) as exc:
            return self.routes_reply(400, text=text, error=str(exc))
        # Post/redirect/get: reloading the page afterwards does not post the routes again.
        return Reply(303, headers=[(b"location", b"/admin/routes?saved=1")])

    # --- requests and log ---------------------------------------------------------------------------------

    def recent_requests(self, limit: int) -> list[dict[str, object]]:
        return [{name: entry.get(name) for name in REQUEST_FIELDS} for entry in self.app.monitor.recent(limit)]

    async def requests_page(self, request: Request, form: Form) -> Reply:
        limit = _limit(request)
        body = pages.requests_body(self.recent_requests(limit), limit)
        return self.page(200, "/admin/requests", "Requests", body)

    async def requests_json(self, request: Request, form: Form) -> Reply:
        return Reply(200, orjson.dumps({"requests": self.recent_requests(_limit(request))}), JSON)

    async def log_page(self, request: Request, form: Form) -> Reply:
        return self.page(200, "/admin/log", "Log", pages.log_body(self.app.log_tail.lines(LOG_LINES), LOG_LINES))


# What requests.json and the requests page show of a monitor entry, and nothing else: an allow-list,
# so a field the monitor gains later is not shown before someone decides it may be.
REQUEST_FIELDS = ("time", "client", "protocol", "model", "account", "status", "complete", "ttfb_ms", "duration_ms",
                  "input_tokens", "output_tokens", "thinking_tokens", "cached_tokens", "attempts")


def send(response: Responder, reply: Reply) -> None:
    headers = [*security.SECURITY_HEADERS, *reply.headers]
    if reply.body or reply.status != 303:
        headers.insert(0, (b"content-type", reply.content_type))
    response.respond(reply.status, headers, reply.body)


def _form(request: Request) -> Form | None:
    """The fields of a urlencoded form body (first value of each name); None when it is not one."""
    content_type = (request.header(b"content-type") or b"").split(b";")[0].strip().lower()
    if content_type != b"application/x-www-form-urlencoded":
        return None
    try:
        pairs = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS,
                          errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None
    form: Form = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


def _query(request: Request, name: str) -> str:
    return parse_qs(request.query).get(name, [""])[0]


def _limit(request: Request) -> int:
    try:
        return max(1, min(MONITOR_MAX, int(_query(request, "limit") or REQUESTS_SHOWN)))
    except ValueError:
        return REQUESTS_SHOWN
