"""OpenAI Chat Completions: POST /v1/chat/completions (and /chat/completions)."""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

from ..dispatch import runner
from ..dispatch.translating import Translating
from ..errors import ProxyError
from ..http_server.request import Request
from ..http_server.response import Responder
from ..http_server.router import Router
from ..translate import client_errors, openai_chat_request, openai_chat_stream
from ..translate.upstream_request import build
from . import media
from .common import authenticate, conversation_key, json_body, resolve_model

if TYPE_CHECKING:
    from ..app import App

SESSION_HEADER = b"session-id"  # Codex and some gateways; otherwise the conversation's start


def register(router: Router, app: App) -> None:
    for path in ("/v1/chat/completions", "/chat/completions"):
        router.add("POST", path, lambda request, response: _completions(app, request, response))


async def _completions(app: App, request: Request, response: Responder) -> None:
    try:
        authenticate(app, request)
        body = json_body(request)
        model = resolve_model(app, body["model"])
        await media.inline_openai_urls(app, body)
        translated = build(openai_chat_request.parse(body), model=model, session_key=session_key(request, body),
                           signatures=app.signatures,
                           rewrites=app.settings.identity_rewrites)
    except ProxyError as error:
        response.respond(*client_errors.openai(error, request.request_id))
        return
    options = body.get("stream_options") if isinstance(body.get("stream_options"), dict) else {}
    machine = openai_chat_stream.ChatStream(
        completion_id="chatcmpl-" + secrets.token_hex(12),
        model=body["model"],  # echo the client's name, not the upstream's
        created=int(time.time()),
        reasoning=translated.show_thoughts,
        include_usage=translated.stream and options.get("include_usage") is True,
        tool_names=translated.tool_names,
        new_call_id=lambda: "call_" + secrets.token_hex(12),
    )
    generation = runner.Generation(
        model=translated.model,
        request=translated.request,
        stream=translated.stream,
        reader=Translating(machine, translated.stop_sequences),
        encode=openai_chat_stream.encode,
        accumulator=openai_chat_stream.CompletionAccumulator,
        result=lambda accumulator: _with_usage(accumulator, machine),
        ping=openai_chat_stream.KEEP_ALIVE,
        render_error=lambda error: client_errors.openai(error, request.request_id),
    )
    await runner.run(app, generation, response)


def _with_usage(accumulator: openai_chat_stream.CompletionAccumulator, machine: openai_chat_stream.ChatStream) -> Any:
    """A non-stream completion always reports usage (the stream only when asked)."""
    return {**accumulator.completion, "usage": machine.usage_body()}


def session_key(request: Request, body: dict[str, Any]) -> str:
    key = body.get("prompt_cache_key") or body.get("user")
    if isinstance(key, str) and key:
        return key
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    return conversation_key(request, body, header=SESSION_HEADER, fallback=messages[:2])
