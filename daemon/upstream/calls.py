"""The only I/O in upstream/: OAuth, userinfo and Cloud Code account calls over the pool.

Each call returns parsed data or raises: OAuthError for the token endpoint,
UpstreamCallError (carrying the classified failure) for Cloud Code, and the http_client
errors for transport problems. Nothing here logs a token or a body.
"""

from __future__ import annotations

import asyncio

import orjson

from ..config import Settings
from ..http_client.errors import HTTPClientError
from ..http_client.pool import ConnectionPool, UpstreamResponse
from . import discovery, endpoints, oauth
from .failures import UpstreamFailure, classify

_MAX_REPLY_BYTES = 8 * 1024 * 1024  # account calls answer small JSON documents
_FORM = b"application/x-www-form-urlencoded"


class UpstreamCallError(Exception):
    def __init__(self, failure: UpstreamFailure) -> None:
        super().__init__(f"{failure.status} {failure.message}")
        self.failure = failure


class UpstreamCalls:
    def __init__(self, settings: Settings, pool: ConnectionPool) -> None:
        self.settings = settings
        self.pool = pool

    # --- OAuth -----------------------------------------------------------------------

    async def exchange_code(self, code: str, redirect_uri: str, pkce: oauth.PKCE) -> oauth.TokenGrant:
        s = self.settings
        form = oauth.code_exchange_form(s.oauth_client_id, s.oauth_client_secret.reveal(), code, redirect_uri, pkce)
        return await self._token_call(form)

    async def refresh(self, refresh_token: str, client_id: str) -> oauth.TokenGrant:
        # The secret belongs to the configured client; a token minted by another client
        # fails with unauthorized_client, which is reported as needing a new login.
        form = oauth.refresh_form(client_id, self.settings.oauth_client_secret.reveal(), refresh_token)
        return await self._token_call(form)

    async def userinfo(self, access_token: str) -> str:
        status, body = await self._send("GET", self.settings.userinfo_url, access_token, None)
        if status != 200:
            raise oauth.OAuthError(f"userinfo answered HTTP {status}", permanent=status in (401, 403))
        return oauth.parse_userinfo(body)

    # --- Cloud Code ------------------------------------------------------------------

    async def discover_project(self, access_token: str, poll_interval: float = 5.0, polls: int = 12) -> discovery.CodeAssistStatus:
        """loadCodeAssist; when it names no project, onboardUser and poll until done."""
        base = endpoints.discovery_order(self.settings.upstream_urls)[0]
        reply = await self._cloud_code(base, endpoints.LOAD_CODE_ASSIST, access_token, discovery.load_code_assist_body())
        status = discovery.parse_load_code_assist(reply)
        if status.project_id:
            return status
        body = discovery.onboard_user_body(status.onboard_tier)
        operation = discovery.parse_operation(await self._cloud_code(base, endpoints.ONBOARD_USER, access_token, body))
        for _ in range(polls):
            if operation.done or not operation.name:
                break
            await asyncio.sleep(poll_interval)
            reply = await self._cloud_code(base, endpoints.operation_path(operation.name), access_token, None)
            operation = discovery.parse_operation(reply)
        return discovery.CodeAssistStatus(operation.project_id, status.tier or status.onboard_tier, status.onboard_tier)

    async def fetch_available_models(self, access_token: str, project_id: str | None) -> bytes:
        """The model catalogue with quota; also the cheapest "does this account work" probe."""
        body = orjson.dumps({"project": project_id} if project_id else {})
        return await self._cloud_code(self.settings.upstream_urls[0], endpoints.FETCH_AVAILABLE_MODELS, access_token, body)

    # --- plumbing --------------------------------------------------------------------

    async def _token_call(self, form: bytes) -> oauth.TokenGrant:
        headers = [(b"content-type", _FORM), (b"accept", b"application/json")]
        try:
            status, body = await self._request("POST", self.settings.oauth_token_url, headers, form)
        except HTTPClientError as exc:
            raise oauth.OAuthError(f"token endpoint unreachable: {exc}", permanent=False) from exc
        return oauth.parse_token_reply(status, body)

    async def _cloud_code(self, base: str, path: str, access_token: str, body: bytes | None) -> bytes:
        status, reply = await self._send("POST" if body is not None else "GET", base + path, access_token, body)
        if status != 200:
            raise UpstreamCallError(classify(status, reply))
        return reply

    async def _send(self, method: str, url: str, access_token: str, body: bytes | None) -> tuple[int, bytes]:
        headers = endpoints.json_headers(access_token, self.settings.user_agent)
        return await self._request(method, url, headers, body or b"")

    async def _request(self, method: str, url: str, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, bytes]:
        s = self.settings
        response: UpstreamResponse = await self.pool.request(
            method, url, headers, body,
            first_byte_timeout=s.upstream_first_byte_timeout, idle_timeout=s.upstream_idle_timeout,
        )
        try:
            return response.status, await response.read(_MAX_REPLY_BYTES)
        finally:
            response.close()
