"""GET /quota: every account's quota and cooldowns per model family, for people and
monitors (JSON; `?format=table` for a plain-text table). A management endpoint: admin
basic auth when AGPROXY_ADMIN_PASSWORD is set, loopback only otherwise.

Also the client side, for `antigravity-proxy quota`: asks the running daemon for it.
"""

from __future__ import annotations

import base64
import sys
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import orjson

from ..errors import ErrorKind, ProxyError
from ..http_server.request import Request
from ..http_server.response import Responder
from ..http_server.router import Router
from ..pool.quota_view import quota_json, quota_table
from .common import ADMIN_USER, NO_STORE, management

if TYPE_CHECKING:
    from ..app import App
    from ..config import Settings

TEXT = b"text/plain; charset=utf-8"
FORMATS = ("json", "table")


def register(router: Router, app: App) -> None:
    async def quota(request: Request, response: Responder) -> None:
        wanted = parse_qs(request.query).get("format", ["json"])[-1]
        if wanted not in FORMATS:
            raise ProxyError(ErrorKind.INVALID_REQUEST, f"format must be one of {', '.join(FORMATS)}", param="format")
        now = time.time()
        rows = [(account, app.pool.state.loads.get(account.id)) for account in app.accounts.all()]
        if wanted == "table":
            response.respond(200, [(b"content-type", TEXT), NO_STORE], quota_table(rows, now).encode())
        else:
            response.respond_json(200, quota_json(rows, now), [NO_STORE])

    router.add("GET", "/quota", management(app, quota))


# --- `antigravity-proxy quota` ---------------------------------------------------------

TIMEOUT = 10.0  # seconds


def daemon_url(settings: Settings) -> str:
    """Where the running daemon answers on this machine (an any-address bind: loopback)."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def run_cli(settings: Settings, *, as_json: bool) -> int:
    """Print the running daemon's /quota table (or JSON); 1 with one line on stderr when it
    cannot be had."""
    base = daemon_url(settings)
    if settings.port == 0:
        print("antigravity-proxy: AGPROXY_PORT is 0, so the daemon's port is not known; set it to the daemon's port",
              file=sys.stderr)
        return 1
    request = urllib.request.Request(f"{base}/quota?format={'json' if as_json else 'table'}")
    if settings.admin_password is not None:
        pair = f"{ADMIN_USER}:{settings.admin_password.reveal()}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(pair).decode("ascii"))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via HTTP_PROXY
    try:
        with opener.open(request, timeout=TIMEOUT) as reply:
            body = reply.read()
    except urllib.error.HTTPError as exc:
        print(f"antigravity-proxy: {base}/quota answered {exc.code}: {_error_message(exc.read())}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        print(f"antigravity-proxy: cannot reach the daemon at {base} ({reason}); is it running?", file=sys.stderr)
        return 1
    if as_json:
        try:
            body = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2) + b"\n"
        except orjson.JSONDecodeError:
            print(f"antigravity-proxy: {base}/quota did not answer JSON", file=sys.stderr)
            return 1
    sys.stdout.write(body.decode("utf-8", "replace"))
    sys.stdout.flush()
    return 0


def _error_message(body: bytes) -> str:
    try:
        message = orjson.loads(body)["error"]["message"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return body.decode("utf-8", "replace").strip()[:200] or "no details"
    return str(message)
