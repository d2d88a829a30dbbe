"""OpenAI Chat Completions: POST /v1/chat/completions (and /chat/completions)."""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

from ..dispatch import runner
from ..errors import ProxyError
from ..http_server.request import Request
from ..http_server.response import Responder
from ..http_server.router import Router
from ..translate import client_errors, openai_chat_request, openai_chat_stream
from ..translate.upstream_request import Translated
from . import media
from .common import accepted, conversation_key, translated_generations

if TYPE_CHECKING:
    from ..app import App

SESSION_HEADER = b"session-id"  # Codex and some gateways; otherwise the conversation's start


def register(router: Router, app: App) -> None:
    for path in ("/v1/chat/completions", "/chat/completions"):
        router.add("POST", path, lambda request, response: _completions(app, request, response))


async def _completions(app: App, request: Request, response: Responder) -> None:
    def machine(translated: Translated) -> openai_chat_stream.ChatStream:
        options = body.get("stream_options") if isinstance(body.get("stream_options"), dict) else {}
        return openai_chat_stream.ChatStream(
            completion_id="chatcmpl-" + secrets.token_hex(12),
            model=body["model"],  # echo the client's name, not the upstream's
            created=int(time.time()),
            reasoning=translated.show_thoughts,
            include_usage=not translated.stream or options.get("include_usage") is True,  # a completion always has usage
            tool_names=translated.tool_names,
            new_call_id=lambda: "call_" + secrets.token_hex(12),
        )

    try:
        request_ok = await accepted(app, request)
        body = request_ok.body
        await media.inline_openai_urls(app, body)
        generations = translated_generations(app, request, request_ok, openai_chat_request.parse(body), session_key(request, body),
                                             machine, openai_chat_stream, client_errors.openai)
    except ProxyError as error:
        response.respond(*client_errors.openai(error, request.request_id))
        return
    await runner.run(app, generations, response)


def session_key(request: Request, body: dict[str, Any]) -> str:
    key = body.get("prompt_cache_key") or body.get("user")
    if isinstance(key, str) and key:
        return key
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    return conversation_key(request, header=SESSION_HEADER, fallback=messages[:2])
