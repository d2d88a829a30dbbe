"""OpenAI Responses (Codex CLI): POST /v1/responses, and the WebSocket probe Codex makes first."""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

from ..dispatch import runner
from ..errors import ErrorKind, ProxyError
from ..http_server.request import Request
from ..http_server.response import Responder
from ..http_server.router import Router
from ..translate import client_errors, responses_request, responses_stream
from ..translate.upstream_request import Translated
from . import media
from .common import accepted, conversation_key, translated_generations

if TYPE_CHECKING:
    from ..app import App

SESSION_HEADER = b"session-id"  # Codex: the same id on every turn of one conversation
ECHOED = ("instructions", "tools", "tool_choice", "parallel_tool_calls", "reasoning", "store", "temperature", "top_p",
          "text", "truncation", "metadata", "previous_response_id", "max_output_tokens")
ITEM_PREFIXES = {"msg": "msg_", "fc": "fc_", "rs": "rs_", "ctc": "ctc_", "lsc": "lsc_"}


def register(router: Router, app: App) -> None:
    router.add("POST", "/v1/responses", lambda request, response: _create(app, request, response))
    router.add("GET", "/v1/responses", lambda request, response: _websocket_probe(request, response))
    router.add("GET", "/v1/responses/{response_id}", lambda request, response: _unsupported(request, response))
    router.add("POST", "/v1/responses/compact", lambda request, response: _unsupported(request, response))


async def _create(app: App, request: Request, response: Responder) -> None:
    response_id = "resp_" + secrets.token_hex(16)

    def machine(translated: Translated) -> responses_stream.ResponsesStream:
        reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else {}
        return responses_stream.ResponsesStream(
            response_id=response_id,
            model=body["model"],  # echo the client's name, not the upstream's
            created=int(time.time()),
            reasoning=translated.show_thoughts and reasoning.get("summary") is not None,
            tools={upstream: (client, kinds.get(client, "function")) for upstream, client in translated.tool_names.items()},
            new_call_id=lambda: "call_" + secrets.token_hex(12),
            new_item_id=lambda prefix: ITEM_PREFIXES.get(prefix, prefix + "_") + secrets.token_hex(12),
            echo={key: body[key] for key in ECHOED if key in body},
        )

    try:
        request_ok = await accepted(app, request)
        body = request_ok.body
        history = _history(app, body.get("previous_response_id"))
        await media.inline_openai_urls(app, body)
        conversation, kinds = responses_request.parse(body, history)
        generations = translated_generations(app, request, request_ok, conversation, session_key(request, body), machine,
                                             responses_stream, client_errors.openai)
    except ProxyError as error:
        response.respond(*client_errors.openai(error, request.request_id))
        return
    served = await runner.run(app, generations, response)
    final = served.reader.machine.response if served is not None else None  # type: ignore[attr-defined]
    if body.get("store") is not False and final is not None and final.get("status") != "failed":
        items = body["input"] if isinstance(body["input"], list) else [{"role": "user", "content": body["input"]}]
        app.responses.remember(final["id"], [*history, *items, *final["output"]])


def _history(app: App, previous: Any) -> list[Any]:
    if previous is None:
        return []
    items = app.responses.items(previous) if isinstance(previous, str) else None
    if items is None:
        raise ProxyError(ErrorKind.INVALID_REQUEST, f"previous_response_id: no stored response {str(previous)[:80]!r} "
                         "(responses are kept in memory, only recent ones, and only when store is not false)",
                         param="previous_response_id")
    return items


def session_key(request: Request, body: dict[str, Any]) -> str:
    key = body.get("prompt_cache_key")
    if isinstance(key, str) and key:
        return key
    items = body.get("input") if isinstance(body.get("input"), list) else [body.get("input")]
    return conversation_key(request, header=SESSION_HEADER, fallback=[body.get("instructions"), *items[:3]])


async def _websocket_probe(request: Request, response: Responder) -> None:
    """New Codex versions try the WebSocket transport first; 426 makes them fall back to
    HTTP at once (a 404 costs a warning, a timeout costs retries: client-protocols.md §4.1)."""
    error = ProxyError(ErrorKind.INVALID_REQUEST, "this server speaks the Responses API over HTTP POST only, "
                       "not WebSocket")
    _, headers, payload = client_errors.openai(error, request.request_id)
    status = 426 if request.header(b"upgrade") else 405
    response.respond(status, [*headers, (b"connection", b"close")], payload)


async def _unsupported(request: Request, response: Responder) -> None:
    error = ProxyError(ErrorKind.NOT_FOUND, f"{request.path} is not supported here")
    response.respond(*client_errors.openai(error, request.request_id))
