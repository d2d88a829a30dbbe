"""The fake's Cloud Code `v1internal` endpoints: loadCodeAssist, onboardUser and its
operation, fetchAvailableModels, countTokens, and the two generation calls
(`:streamGenerateContent?alt=sse`, `:generateContent`). `CloudCodeEndpoints` is mixed into
FakeUpstream; each handler authenticates, checks the body (checks.py) and answers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from . import scripts
from .accounts import AccountBook, FakeAccount
from .catalog import count_text_tokens, load_code_assist_reply, model_catalog
from .checks import (
    Rejection,
    check_count_tokens,
    check_fetch_models,
    check_load_code_assist,
    check_onboard_user,
    client_identity,
    identity_rejection,
    system_instruction,
    validate_generation,
    version_too_old,
)
from .exchange import Exchange
from .oauth import authenticate
from .scripts import ErrorReply, RenderContext


class ApiRequest(NamedTuple):
    account: FakeAccount
    body: dict[str, Any]


class CloudCodeEndpoints:
    """FakeUpstream's v1internal handlers. The attributes below are FakeUpstream's."""

    _lock: threading.RLock
    _book: AccountBook
    strict_project: bool
    min_client_version: str | Sequence[int] | None
    reject_client_identity: bool
    _identity_rejections: list[tuple[int, str]]
    _next_reply: Callable[[str, str | None], scripts.Reply]

    # shared request steps

    def _api_request(self, ex: Exchange) -> ApiRequest | None:
        """Auth, User-Agent, Content-Type and a JSON object body, for v1internal POSTs;
        None once the request has been answered."""
        account = authenticate(ex, self._book)
        if account is None:
            return None
        if not ex.record.header("User-Agent"):
            ex.reject(Rejection("User-Agent header is missing", check="check_user_agent_header"))
            return None
        media = (ex.record.header("Content-Type") or "").split(";")[0].strip().lower()
        if media != "application/json":
            ex.reject(Rejection(f"Content-Type must be application/json, got {ex.record.header('Content-Type')!r}",
                                check="check_content_type"))
            return None
        if not isinstance(ex.record.json, dict):
            ex.reject(Rejection("Invalid JSON payload received. Expected a JSON object.", check="check_json_body"))
            return None
        return ApiRequest(account, ex.record.json)

    def _check_project_owner(self, ex: Exchange, account: FakeAccount, project: Any) -> bool:
        """With strict_project, a project in the body must be the account's own. The real
        answer for a foreign project is not documented; we send a 403 PERMISSION_DENIED."""
        if not self.strict_project or project is None or project == account.project:
            return True
        ex.reject(Rejection(
            f"Permission denied on resource project {project} (account {account.email} has project "
            f"{account.project!r})", 403, check="check_project_owner"))
        return False

    # setup calls

    def _h_load_code_assist(self, ex: Exchange) -> None:
        request = self._api_request(ex)
        if request is None or ex.refuse(check_load_code_assist(request.body), "check_load_code_assist"):
            return
        with self._lock:
            reply = load_code_assist_reply(request.account)
        ex.send_json(200, reply)

    def _h_onboard_user(self, ex: Exchange) -> None:
        request = self._api_request(ex)
        if request is None:
            return
        account = request.account
        if ex.refuse(check_onboard_user(request.body, [account.tier]), "check_onboard_user"):
            return
        ex.send_json(200, self._book.poll_onboarding(account.email))

    def _h_operation(self, ex: Exchange) -> None:
        account = authenticate(ex, self._book)
        if account is None:
            return
        name = ex.record.path.removeprefix("/v1internal/")
        reply = self._book.poll_operation(name, account.email)
        if reply is None:
            ex.reject(Rejection(f"operation {name} not found", 404, check="check_operation_name"))
        else:
            ex.send_json(200, reply)

    def _h_fetch_models(self, ex: Exchange) -> None:
        request = self._api_request(ex)
        if request is None or ex.refuse(check_fetch_models(request.body), "check_fetch_models"):
            return
        account = request.account
        if not self._check_project_owner(ex, account, request.body.get("project")):
            return
        with self._lock:
            quota = dict(account.quota)
        ex.send_json(200, model_catalog(quota))

    def _h_count_tokens(self, ex: Exchange) -> None:
        request = self._api_request(ex)
        if request is None or ex.refuse(check_count_tokens(request.body), "check_count_tokens"):
            return
        # A crude deterministic estimate (see count_text_tokens), not the real tokenizer.
        ex.send_json(200, {"totalTokens": count_text_tokens(request.body["request"])})

    # generation

    def _h_generate(self, ex: Exchange, *, stream: bool) -> None:
        ex.stream_endpoint = stream
        request = self._api_request(ex)
        if request is None:
            return
        account, env = request
        if stream and ex.record.query.get("alt", ex.record.query.get("$alt")) != "sse":
            ex.reject(Rejection("streamGenerateContent must be called with ?alt=sse", check="check_alt_sse"))
            return
        if ex.refuse(validate_generation(env)) or not self._check_project_owner(ex, account, env["project"]):
            return
        generation = env["request"]
        marker = client_identity(generation) if self.reject_client_identity else None
        if marker is not None:  # answered before any generation: the script queue is left alone
            with self._lock:
                self._identity_rejections.append((ex.record.seq, marker))
            ex.reject(identity_rejection(marker))
            return
        prompt = count_text_tokens(generation.get("contents")) + count_text_tokens(system_instruction(generation))
        ctx = RenderContext(env["model"], max(1, prompt))
        if version_too_old(ex.record.header("User-Agent"), self.min_client_version):
            reply: scripts.Reply = scripts.version_unsupported()  # the script queue is left alone
        else:
            reply = self._next_reply(env["model"], account.email)
        if isinstance(reply, ErrorReply):
            ex.send_error_reply(reply)
        elif stream:
            ex.send_sse(scripts.render(reply, ctx))
        else:
            ex.send_unary(scripts.render(reply, ctx))
