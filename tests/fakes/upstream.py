"""A faithful, scriptable fake of Google's Antigravity Cloud Code `v1internal` API, Google
OAuth and userinfo, served by a real loopback HTTP/1.1 server (optionally TLS).

Protocol facts follow shared/docs/upstream-cloudcode.md (cited as "doc §N"); real payloads are
replayed from tests/fixtures/upstream/ (found relative to this package). Standard library only,
plus orjson. Nothing here imports the daemon.

    with FakeUpstream() as fake:                       # http://127.0.0.1:<port>
        fake.script(scripts.stream_reply(scripts.text("Hi")))
        ... point the daemon at fake.base_url / fake.token_url / fake.userinfo_url ...
        fake.assert_no_violations()

This module holds `FakeUpstream`: its knobs, lifecycle, accounts, script queue, records and
routing. The endpoints are in oauth.py and cloudcode.py, the request checks in checks.py, the
HTTP plumbing in server.py and exchange.py (see tests/fakes/README.md).

Threads: one accept thread plus one thread per TCP connection (keep-alive is honoured, so
one connection serves many requests). `stop()` shuts every client socket down, wakes paused
or gated streams, and joins every thread.

Violations. The fake checks what it receives. A request the daemon must never send
(malformed envelope, missing header, wrong client secret, reused auth code, PKCE mismatch,
unknown path, ...) is answered the way Google would answer it (a Google-shaped 400 unless the
real answer is known to differ) AND recorded in `fake.violations` as
"[<check name>] <METHOD> <path>: <what is wrong>". Answers that are legitimate upstream
behaviour (expired/revoked access token -> 401, revoked refresh token -> invalid_grant,
refresh with the wrong client -> unauthorized_client, unknown auth code) are not violations.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

# `import X as X` marks a re-export: X stays importable from tests.fakes.upstream.
from . import scripts
from .accounts import (
    ANTIGRAVITY_CLIENT_ID,
    DEFAULT_EMAIL,
    DEFAULT_PROJECT,
    KNOWN_CLIENTS,
    AccountBook,
    FakeAccount,
    new_refresh_token,
)
from .accounts import ANTIGRAVITY_CLIENT_SECRET as ANTIGRAVITY_CLIENT_SECRET
from .accounts import IDE_CLIENT_ID as IDE_CLIENT_ID
from .accounts import IDE_CLIENT_SECRET as IDE_CLIENT_SECRET
from .catalog import rfc3339
from .checks import GENERATION_CHECKS as GENERATION_CHECKS
from .checks import Rejection
from .checks import parse_client_version as parse_client_version
from .checks import validate_generation as validate_generation
from .checks import version_too_old as version_too_old
from .cloudcode import CloudCodeEndpoints
from .exchange import POLL_INTERVAL, Exchange
from .oauth import ACCESS_TOKEN_LIFETIME, OAuthEndpoints
from .oauth import SCOPE as SCOPE
from .oauth import SCOPES as SCOPES
from .records import Headers, RecordedRequest, decode_body
from .scripts import ErrorReply, StreamReply
from .server import ACCEPT_POLL_INTERVAL, Conn, ConnectionTable, Handler, Server

STOP_JOIN_TIMEOUT = 5.0  # seconds stop() waits for the fake's threads


class FakeUpstream(OAuthEndpoints, CloudCodeEndpoints):
    """The fake upstream. See the module docstring and tests/fakes/README.md."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext | None = None,
        *,
        default_account: bool = True,
        min_client_version: str | Sequence[int] | None = None,
        sse_eol: str = "\r\n",
        strict_project: bool = True,
    ) -> None:
        if sse_eol not in ("\r\n", "\n"):
            raise ValueError("sse_eol must be '\\r\\n' or '\\n'")
        self.ssl_context = ssl_context
        self.min_client_version = min_client_version  # generation below it gets version_unsupported()
        self.sse_eol = sse_eol  # CRLF like Google front ends; "\n" for LF framing
        self.split_events = False  # True: every SSE event goes out as two transfer chunks
        self.strict_project = strict_project  # envelope project must be the account's project
        self.idle_timeout: float | None = None  # close keep-alive connections idle this long
        self.token_delay = 0.0  # seconds the token endpoint waits before answering
        self.gzip_json = True  # gzip 200 JSON bodies when the request accepts gzip (doc §6.1)
        self.access_token_lifetime = ACCESS_TOKEN_LIFETIME
        self.next_login_email: str | None = None  # who "logs in" at /o/oauth2/v2/auth
        self.next_login_error: str | None = None  # e.g. "access_denied": redirect with ?error=
        self.default_reply: scripts.Reply = scripts.default_reply()
        # A client identity line in systemInstruction (Claude Code's billing header, Codex's
        # "You are Codex, an agent based on GPT-5.") gets the real bare 429 and a violation.
        self.reject_client_identity = True

        self.connections = 0
        self.tls_handshakes = 0
        self.tls_handshake_failures = 0
        self.token_calls = 0
        self.token_calls_by_grant: Counter[str] = Counter()
        self.idle_closes = 0

        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._book = AccountBook(self._lock)
        self._conn_table = ConnectionTable(self._lock)
        self._queue: list[scripts.ScriptEntry] = []
        self._requests: list[RecordedRequest] = []
        self._violations: list[str] = []
        self._identity_rejections: list[tuple[int, str]] = []
        self._server_errors: list[str] = []
        self._server: Server | None = None
        self._port: int | None = None
        self._serve_thread: threading.Thread | None = None
        self._routes: dict[tuple[str, str], Callable[[Exchange], None]] = {
            ("GET", "/o/oauth2/v2/auth"): self._h_auth,
            ("POST", "/token"): self._h_token,
            ("GET", "/oauth2/v1/userinfo"): self._h_userinfo,
            ("GET", "/oauth2/v2/userinfo"): self._h_userinfo,
            ("POST", "/v1internal:loadCodeAssist"): self._h_load_code_assist,
            ("POST", "/v1internal:onboardUser"): self._h_onboard_user,
            ("POST", "/v1internal:fetchAvailableModels"): self._h_fetch_models,
            ("POST", "/v1internal:countTokens"): self._h_count_tokens,
            ("POST", "/v1internal:generateContent"): functools.partial(self._h_generate, stream=False),
            ("POST", "/v1internal:streamGenerateContent"): functools.partial(self._h_generate, stream=True),
        }
        if default_account:
            self.add_account(DEFAULT_EMAIL, project=DEFAULT_PROJECT)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> FakeUpstream:
        """Bind 127.0.0.1:0 and serve in background threads."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = Server(self)
        self._port = self._server.server_address[1]
        self._serve_thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": ACCEPT_POLL_INTERVAL},
            name="fake-upstream-accept", daemon=True,
        )
        self._serve_thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every client socket, wake paused/gated streams, join all
        threads. Raises RuntimeError if a thread refuses to finish."""
        server = self._server
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        threads = self._conn_table.shut_down_all()
        deadline = time.monotonic() + STOP_JOIN_TIMEOUT
        assert self._serve_thread is not None
        self._serve_thread.join(max(0.0, deadline - time.monotonic()))
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        leaked = [t.name for t in threads if t.is_alive()]
        self._server = None
        self._serve_thread = None
        if leaked:
            raise RuntimeError(f"fake upstream threads did not finish: {leaked}")

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- addresses

    @property
    def port(self) -> int:
        """The bound port (still readable after stop(), e.g. to test "connection refused")."""
        if self._port is None:
            raise RuntimeError("the fake upstream was never started")
        return self._port

    @property
    def base_url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return self.base_url + "/token"

    @property
    def auth_url(self) -> str:
        return self.base_url + "/o/oauth2/v2/auth"

    @property
    def userinfo_url(self) -> str:
        return self.base_url + "/oauth2/v1/userinfo"

    # ----------------------------------------------------------------- accounts & tokens

    _DEFAULT = object()

    def add_account(
        self,
        email: str,
        *,
        refresh_token: str | None = None,
        project: Any = _DEFAULT,
        tier: str = "standard-tier",
        client_id: str = ANTIGRAVITY_CLIENT_ID,
        paid_tier: str | None = None,
        onboard_project: str | None = None,
        onboard_polls: int = 1,
        name: str | None = None,
    ) -> FakeAccount:
        """Add a Google account. `project` defaults to "proj-<slug>"; None means the account
        needs onboardUser, which then assigns `onboard_project` (default "proj-<slug>";
        "" = onboarding completes without a project). Returns the account; its
        `refresh_token` is the one the token endpoint accepts (for `client_id`)."""
        if client_id not in KNOWN_CLIENTS:
            raise ValueError(f"unknown OAuth client {client_id!r}")
        slug = re.sub(r"[^a-z0-9]+", "-", email.split("@")[0].lower()).strip("-") or "user"
        user_id = str(int(hashlib.sha256(email.encode()).hexdigest(), 16))[:21]
        account = FakeAccount(
            email=email,
            refresh_token=refresh_token or new_refresh_token(),
            project=f"proj-{slug}" if project is self._DEFAULT else project,
            tier=tier,
            client_id=client_id,
            paid_tier=paid_tier,
            onboard_project=f"proj-{slug}" if onboard_project is None else onboard_project,
            onboard_polls=onboard_polls,
            name=name or slug.replace("-", " ").title(),
            user_id=user_id,
            picture=f"https://lh3.googleusercontent.com/a/fake-{user_id}",
        )
        self._book.add(account)
        return account

    def account(self, email: str) -> FakeAccount:
        return self._book.get(email)

    @property
    def accounts(self) -> list[FakeAccount]:
        return self._book.all()

    def mint_access_token(self, email: str = DEFAULT_EMAIL) -> str:
        """An access token for `email` without the OAuth dance (for tests that call the API directly)."""
        with self._lock:
            account = self._book.get(email)
            return self._book.mint_access(account.email, account.client_id, self.access_token_lifetime)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is expired from now on (-> 401 UNAUTHENTICATED)."""
        self._book.expire_access_tokens()

    def revoke(self, email: str) -> None:
        """Revoke the account's refresh tokens (-> invalid_grant) and its access tokens."""
        self._book.revoke(email)

    def set_quota(
        self, email: str, model: str, remaining_fraction: float | None, reset_time: str | dt.datetime | float | None = None
    ) -> None:
        """Override one fetchAvailableModels row's quotaInfo for one account.
        remaining_fraction None drops the key (the real "exhausted" shape, doc §6.1);
        reset_time is RFC3339 text, a datetime, or seconds from now (None keeps the row's)."""
        with self._lock:
            self._book.get(email).quota[model] = (
                remaining_fraction,
                None if reset_time is None else rfc3339(reset_time),
            )

    # ----------------------------------------------------------------- scripting

    def script(self, reply: Any, *, model: str | None = None, account: str | FakeAccount | None = None) -> None:
        """Queue a reply (a scripts.Reply, or steps for scripts.stream_reply) for the next
        generation call matching `model` and `account` (FIFO among matches)."""
        if not isinstance(reply, (StreamReply, ErrorReply)):
            reply = scripts.stream_reply(reply)
        email = account.email if isinstance(account, FakeAccount) else account
        with self._lock:
            self._queue.append(scripts.ScriptEntry(reply, model, email))

    @property
    def pending_scripts(self) -> int:
        with self._lock:
            return len(self._queue)

    def _next_reply(self, model: str, email: str | None) -> scripts.Reply:
        with self._lock:
            for index, entry in enumerate(self._queue):
                if entry.matches(model, email):
                    del self._queue[index]
                    return entry.reply
            return self.default_reply

    # ----------------------------------------------------------------- inspection

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received (except GET /health), in arrival order."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """Recorded requests whose path (without query) equals `path`."""
        return [r for r in self.requests if r.path == path]

    @property
    def generation_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith(("GenerateContent", ":generateContent"))]

    def wait_for_requests(self, count: int, *, path: str | None = None, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait until at least `count` requests (to `path`, if given) arrived; return them."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.requests_to(path) if path else self.requests
            if len(found) >= count or time.monotonic() >= deadline:
                if len(found) < count:
                    raise AssertionError(f"expected {count} requests{' to ' + path if path else ''}, got {len(found)}")
                return found
            time.sleep(POLL_INTERVAL)

    @property
    def identity_rejections(self) -> list[tuple[int, str]]:
        """(request seq, marker) of every generation answered with the identity-line 429."""
        with self._lock:
            return list(self._identity_rejections)

    @property
    def violations(self) -> list[str]:
        with self._lock:
            return list(self._violations)

    def assert_no_violations(self, *, ignore: Iterable[str] = ()) -> None:
        """Raise AssertionError listing every violation (except checks named in `ignore`)
        and any unexpected exception inside the fake itself."""
        skipped = tuple(f"[{name}]" for name in ignore)
        with self._lock:
            problems = [v for v in self._violations if not v.startswith(skipped)] if skipped else list(self._violations)
            problems += [f"[fake internal error] {e}" for e in self._server_errors]
        if problems:
            raise AssertionError("fake upstream saw malformed requests:\n  " + "\n  ".join(problems))

    def clear_violations(self) -> None:
        with self._lock:
            self._violations.clear()

    def reset(self) -> None:
        """Forget recorded requests, violations, queued scripts and counters (not accounts or tokens)."""
        with self._lock:
            self._requests.clear()
            self._violations.clear()
            self._identity_rejections.clear()
            self._server_errors.clear()
            self._queue.clear()
            self.connections = self.tls_handshakes = self.tls_handshake_failures = 0
            self.token_calls = self.idle_closes = 0
            self.token_calls_by_grant.clear()

    @property
    def open_connections(self) -> int:
        return self._conn_table.open_count()

    # ----------------------------------------------------------------- called by server.py and exchange.py

    def _on_accept(self, sock: socket.socket) -> Conn:
        with self._lock:
            self.connections += 1
            return self._conn_table.add(self.connections, sock)

    def _violation(self, ex: Exchange | None, check: str, message: str) -> None:
        where = f"{ex.record.method} {ex.record.path}: " if ex is not None else ""
        with self._lock:
            self._violations.append(f"[{check}] {where}{message}")

    def _internal_error(self, text: str) -> None:
        with self._lock:
            self._server_errors.append(text)

    def _record(self, handler: Handler, body: bytes) -> RecordedRequest:
        split = urllib.parse.urlsplit(handler.path)
        headers = Headers(handler.headers.items())
        parsed_json, form = decode_body(headers, body)
        with self._lock:
            record = RecordedRequest(
                seq=len(self._requests) + 1,
                method=handler.command,
                target=handler.path,
                path=split.path,
                query=dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True)),
                headers=headers,
                body=body,
                json=parsed_json,
                form=form,
                connection_id=handler.conn.id,
                tls=handler.conn.tls,
            )
            self._requests.append(record)
        return record

    def _route(self, method: str, path: str) -> Callable[[Exchange], None]:
        if method == "GET" and path.startswith("/v1internal/operations/"):
            return self._h_operation
        return self._routes.get((method, path), self._h_not_found)

    def _h_not_found(self, ex: Exchange) -> None:
        ex.reject(Rejection(f"The requested URL {ex.record.path} was not found (method {ex.record.method}).",
                            404, check="check_known_path"))
