"""Adding accounts: the desktop login (loopback callback), the headless paste login, and
refresh-token import. All three end the same way: learn the e-mail, discover the Cloud
Code project (onboarding when needed) and store the account.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import secrets
import time
import webbrowser
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from ..config import Settings
from ..http_server.protocol import ServerConnection, ServerState
from ..http_server.request import Request
from ..http_server.response import Responder
from ..http_server.router import Router
from ..http_client.errors import HTTPClientError
from ..upstream import oauth
from ..upstream.calls import UpstreamCallError, UpstreamCalls
from .model import Account, AccountState, find
from .store import AccountStore

LOGIN_TIMEOUT = 300.0  # seconds to finish the browser part of a login
CALLBACK_PORT_TRIES = 10  # the callback port, then the next ones while they are busy

Say = Callable[[str], None]


class LoginError(Exception):
    """The login did not complete; the message says why, for the user."""


@dataclass(frozen=True, slots=True)
class Added:
    account: Account
    created: bool  # False when an existing account (same e-mail) was logged in again


@dataclass(frozen=True, slots=True)
class HeadlessLogin:
    """A headless login waiting for its paste: the URL shown and what checks the answer."""

    url: str
    redirect_uri: str
    state: str = field(repr=False)
    pkce: oauth.PKCE = field(repr=False)


class Login:
    def __init__(self, settings: Settings, calls: UpstreamCalls, store: AccountStore, *, onboard_poll: float = 5.0) -> None:
        self.settings = settings
        self.calls = calls
        self.store = store
        self.onboard_poll = onboard_poll

    async def desktop(self, *, open_browser: bool, say: Say, timeout: float = LOGIN_TIMEOUT) -> Added:
        """Wait for Google to redirect the browser to a loopback callback server."""
        pkce, state = oauth.PKCE.new(), oauth.new_state()
        loop = asyncio.get_running_loop()
        arrived: asyncio.Future[str] = loop.create_future()
        server, port = await self._callback_server(state, arrived)
        try:
            redirect_uri = self.settings.oauth_redirect_url or f"http://localhost:{port}{oauth.CALLBACK_PATH}"
            url = oauth.authorization_url(self.settings.oauth_auth_url, self.settings.oauth_client_id, redirect_uri, state, pkce)
            say(f"Open this URL in a browser and approve the access:\n\n  {url}\n\nWaiting for Google to send the browser back to {redirect_uri} …")
            if open_browser:
                webbrowser.open(url)
            try:
                code = await asyncio.wait_for(arrived, timeout)
            except TimeoutError:
                raise LoginError(f"no login arrived within {timeout:g} s") from None
        finally:
            server.close()
        return await self._finish_code(code, redirect_uri, pkce)

    async def headless(self, *, read_line: Callable[[], Awaitable[str]], say: Say) -> Added:
        """Print the URL; the user logs in elsewhere and pastes where the browser ended up."""
        begun = self.begin_headless()
        say(
            f"Open this URL in a browser on any machine and approve the access:\n\n  {begun.url}\n\n"
            f"The browser then goes to {begun.redirect_uri}, which may fail to load there. That is fine:\n"
            "copy the whole address from the address bar (or just the code) and paste it here:"
        )
        return await self.finish_headless(begun, await read_line())

    def begin_headless(self) -> HeadlessLogin:
        """The first half of a headless login: its consent URL (no I/O)."""
        pkce, state = oauth.PKCE.new(), oauth.new_state()
        redirect_uri = self.settings.oauth_redirect_url or (
            f"http://localhost:{self.settings.oauth_callback_port}{oauth.CALLBACK_PATH}"
        )
        url = oauth.authorization_url(self.settings.oauth_auth_url, self.settings.oauth_client_id, redirect_uri, state, pkce)
        return HeadlessLogin(url, redirect_uri, state, pkce)

    async def finish_headless(self, begun: HeadlessLogin, pasted: str) -> Added:
        """The second half: what the user pasted (the address the browser ended up at, or the code)."""
        try:
            callback = oauth.parse_callback(pasted)
        except oauth.OAuthError as exc:
            raise LoginError(str(exc)) from None
        if callback.state is not None and not secrets.compare_digest(callback.state, begun.state):
            raise LoginError("the pasted URL belongs to another login attempt (state mismatch)")
        return await self._finish_code(callback.code, begun.redirect_uri, begun.pkce)

    async def import_refresh_token(self, refresh_token: str, client_id: str | None = None) -> Added:
        client_id = client_id or self.settings.oauth_client_id
        with _login_step("the refresh token does not work"):
            grant = await self.calls.refresh(refresh_token, client_id)
        return await self._finish(grant, refresh_token, client_id)

    async def _finish_code(self, code: str, redirect_uri: str, pkce: oauth.PKCE) -> Added:
        with _login_step("Google did not accept the login code"):
            grant = await self.calls.exchange_code(code, redirect_uri, pkce)
        if not grant.refresh_token:
            raise LoginError("Google returned no refresh token; remove the app's access in your Google account and retry")
        return await self._finish(grant, grant.refresh_token, self.settings.oauth_client_id)

    async def _finish(self, grant: oauth.TokenGrant, refresh_token: str, client_id: str) -> Added:
        with _login_step("cannot read the account's e-mail"):
            email = await self.calls.userinfo(grant.access_token)
        with _login_step("Cloud Code project discovery failed"):
            status = await self.calls.discover_project(grant.access_token, poll_interval=self.onboard_poll)
        now = time.time()
        fields = {
            "email": email,
            "refresh_token": refresh_token,
            "client_id": client_id,
            "project_id": status.project_id,
            "tier": status.tier,
            "state": AccountState.ACTIVE if status.project_id else AccountState.NO_PROJECT,
            "reason": "" if status.project_id else "no Cloud Code project after onboarding",
            "verify_url": "",
            "access_token": grant.access_token,
            "access_expires_at": now + grant.expires_in,
            "last_error": "",
            "updated_at": now,
        }
        created = False

        def upsert(accounts: list[Account]) -> list[Account]:
            nonlocal created
            existing = find(accounts, email)
            if existing is not None:
                return [a.with_changes(**fields) if a.id == existing.id else a for a in accounts]
            created = True
            return [*accounts, Account(id=new_account_id(accounts), added_at=now, **fields)]

        accounts = await asyncio.to_thread(self.store.update, upsert)
        account = find(accounts, email)
        assert account is not None
        return Added(account, created)

    async def _callback_server(self, state: str, arrived: asyncio.Future[str]) -> tuple[asyncio.Server, int]:
        async def callback(request: Request, response: Responder) -> None:
            params = {key: values[0] for key, values in parse_qs(request.query).items()}
            if not secrets.compare_digest(params.get("state", ""), state):
                _page(response, 400, "This link does not belong to the login in progress (state mismatch).")
            elif "error" in params:
                _page(response, 400, "Google reported: %s. Run the login again." % params["error"])
                if not arrived.done():
                    arrived.set_exception(LoginError(f"Google refused the login: {params['error']}"))
            elif not params.get("code"):
                _page(response, 400, "The redirect carried no code.")
            else:
                _page(response, 200, "Login received. You can close this tab and return to the terminal.")
                if not arrived.done():
                    arrived.set_result(params["code"])

        router = Router()
        router.add("GET", oauth.CALLBACK_PATH, callback)
        server_state = ServerState(self.settings, router, _error_page)
        loop = asyncio.get_running_loop()
        first = self.settings.oauth_callback_port
        for port in range(first, first + CALLBACK_PORT_TRIES):
            try:
                server = await loop.create_server(lambda: ServerConnection(server_state), "127.0.0.1", port)
            except OSError:
                continue  # busy (or reserved, as Hyper-V does on Windows): try the next one
            return server, port
        raise LoginError(f"no free callback port in {first}-{first + CALLBACK_PORT_TRIES - 1}")


@contextlib.contextmanager
def _login_step(what: str) -> Iterator[None]:
    """Turn the ways a login step can fail into one readable LoginError."""
    try:
        yield
    except (oauth.OAuthError, UpstreamCallError, HTTPClientError) as exc:
        raise LoginError(f"{what}: {exc}") from None


def new_account_id(accounts: list[Account]) -> str:
    taken = {account.id for account in accounts}
    while (candidate := secrets.token_hex(3)) in taken:
        pass
    return candidate


def _page(response: Responder, status: int, message: str) -> None:
    body = f"<!doctype html><title>antigravity-proxy</title><p>{html.escape(message)}</p>".encode()
    response.respond(status, [(b"content-type", b"text/html; charset=utf-8")], body)


def _error_page(path: str | None, status: int, message: str) -> tuple[bytes, bytes]:
    return b"text/plain; charset=utf-8", message.encode()
