"""Anthropic Messages endpoints: /v1/messages and /v1/messages/count_tokens."""

from __future__ import annotations

import itertools
import secrets
from typing import TYPE_CHECKING, Any

import orjson

from ..dispatch import runner
from ..errors import ProxyError
from ..http_server.request import Request
from ..http_server.response import Responder
from ..http_server.router import Router
from ..translate import anthropic_request, anthropic_stream, client_errors
from ..translate.count_tokens import estimate_tokens
from ..translate.upstream_request import Translated
from . import media
from .common import accepted, conversation_key, translate, translated_generations

if TYPE_CHECKING:
    from ..app import App

PREFIXES = ("", "/anthropic")


def register(router: Router, app: App) -> None:
    for prefix in PREFIXES:
        router.add("POST", prefix + "/v1/messages", lambda request, response: _messages(app, request, response))
        router.add("POST", prefix + "/v1/messages/count_tokens",
                   lambda request, response: _count_tokens(app, request, response))


async def _messages(app: App, request: Request, response: Responder) -> None:
    counter = itertools.count()

    def machine(translated: Translated) -> anthropic_stream.AnthropicStream:
        return anthropic_stream.AnthropicStream(
            message_id="msg_" + secrets.token_hex(12),
            model=str(body["model"]),  # echo the client's name, not the upstream's
            thinking=translated.show_thoughts,
            tool_names=translated.tool_names,
            new_tool_id=lambda: "toolu_%s%02d" % (secrets.token_hex(11), next(counter) % 100),
        )

    try:
        request_ok = await accepted(app, request)
        body = request_ok.body
        await media.inline_anthropic_urls(app, body)
        generations = translated_generations(app, request, request_ok, anthropic_request.parse(body), session_key(request, body),
                                             machine, anthropic_stream, client_errors.anthropic)
    except ProxyError as error:
        _error(response, error, request)
        return
    await runner.run(app, generations, response)


async def _count_tokens(app: App, request: Request, response: Responder) -> None:
    try:
        request_ok = await accepted(app, request)
        body = request_ok.body
        counted = {**body, "max_tokens": 1}  # count_tokens bodies carry no max_tokens
        translated = translate(app, anthropic_request.parse(counted), request_ok.targets[0].model, "count")
    except ProxyError as error:
        _error(response, error, request)
        return
    response.respond_json(200, {"input_tokens": estimate_tokens(translated.request)})


def session_key(request: Request, body: dict[str, Any]) -> str:
    """What identifies one conversation: Claude Code's session header, the metadata's
    session, else the start of the conversation itself."""
    header = request.header(b"x-claude-code-session-id")
    if header:
        return header.decode("latin-1")
    user_id = (body.get("metadata") or {}).get("user_id") if isinstance(body.get("metadata"), dict) else None
    if isinstance(user_id, str) and user_id:
        try:
            parsed = orjson.loads(user_id)
        except orjson.JSONDecodeError:
            parsed = None
        session = parsed.get("session_id") if isinstance(parsed, dict) else None
        return str(session or user_id)
    return conversation_key(request, header=b"x-claude-code-session-id",
                            fallback=[body.get("system"), (body.get("messages") or [None])[0]])


def _error(response: Responder, error: ProxyError, request: Request) -> None:
    status, headers, body = client_errors.anthropic(error, request.request_id)
    response.respond(status, headers, body)
