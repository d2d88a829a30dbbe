"""Anthropic Messages endpoints: /v1/messages, /v1/messages/count_tokens, /v1/models."""

from __future__ import annotations

import hashlib
import itertools
import secrets
from typing import TYPE_CHECKING, Any

import orjson

from ..client_keys import key_name, presented_key
from ..dispatch import runner
from ..dispatch.translating import Translating
from ..errors import ErrorKind, ProxyError
from ..http_server.request import Request
from ..http_server.response import Responder
from ..http_server.router import Router
from ..translate import anthropic_request, anthropic_stream, client_errors
from ..translate.count_tokens import estimate_tokens
from ..upstream import models
from . import media

if TYPE_CHECKING:
    from ..app import App

PREFIXES = ("", "/anthropic")


def register(router: Router, app: App) -> None:
    for prefix in PREFIXES:
        router.add("POST", prefix + "/v1/messages", lambda request, response: _messages(app, request, response))
        router.add("POST", prefix + "/v1/messages/count_tokens",
                   lambda request, response: _count_tokens(app, request, response))
        router.add("GET", prefix + "/v1/models", lambda request, response: _models(app, request, response))


async def _messages(app: App, request: Request, response: Responder) -> None:
    try:
        authenticate(app, request)
        body = _json_body(request)
        model = _resolve_model(app, body)
        await media.inline_anthropic_urls(app, body)
        translated = anthropic_request.translate(body, model=model, session_key=session_key(request, body),
                                                 signatures=app.signatures)
    except ProxyError as error:
        _error(response, error, request)
        return
    counter = itertools.count()
    machine = anthropic_stream.AnthropicStream(
        message_id="msg_" + secrets.token_hex(12),
        model=str(body["model"]),  # echo the client's name, not the upstream's
        thinking=translated.show_thoughts,
        tool_names=translated.tool_names,
        new_tool_id=lambda: "toolu_%s%02d" % (secrets.token_hex(11), next(counter) % 100),
    )
    generation = runner.Generation(
        model=translated.model,
        request=translated.request,
        stream=translated.stream,
        reader=Translating(machine, translated.stop_sequences),
        encode=anthropic_stream.encode,
        accumulator=anthropic_stream.MessageAccumulator,
        result=lambda accumulator: accumulator.message,
        ping=anthropic_stream.PING,
        render_error=lambda error: client_errors.anthropic(error, request.request_id),
    )
    await runner.run(app, generation, response)


async def _count_tokens(app: App, request: Request, response: Responder) -> None:
    try:
        authenticate(app, request)
        body = _json_body(request)
        model = _resolve_model(app, body)
        counted = {**body, "max_tokens": 1}  # count_tokens bodies carry no max_tokens
        translated = anthropic_request.translate(counted, model=model, session_key="count", signatures=app.signatures)
    except ProxyError as error:
        _error(response, error, request)
        return
    response.respond_json(200, {"input_tokens": estimate_tokens(translated.request)})


async def _models(app: App, request: Request, response: Responder) -> None:
    try:
        authenticate(app, request)
    except ProxyError as error:
        _error(response, error, request)
        return
    served = sorted(models.KNOWN_MODELS)
    if request.header(b"anthropic-version") is not None:
        data = [{"type": "model", "id": name, "display_name": name, "created_at": "2026-01-01T00:00:00Z"} for name in served]
        response.respond_json(200, {"data": data, "has_more": False, "first_id": served[0], "last_id": served[-1]})
    else:
        data = [{"id": name, "object": "model", "created": 1767225600, "owned_by": "antigravity"} for name in served]
        response.respond_json(200, {"object": "list", "data": data})


def authenticate(app: App, request: Request) -> str:
    """The client key's name ("" when the daemon runs without keys); ProxyError(AUTH) otherwise."""
    if not app.settings.api_keys:
        return ""
    name = key_name(presented_key(request), app.settings.api_keys)
    if name is None:
        raise ProxyError(ErrorKind.AUTH, "invalid or missing API key (x-api-key or Authorization: Bearer)")
    return name


def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise ProxyError(ErrorKind.INVALID_REQUEST, f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ProxyError(ErrorKind.INVALID_REQUEST, "the request body must be a JSON object")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise ProxyError(ErrorKind.INVALID_REQUEST, "model: a model name is required")
    return body


def _resolve_model(app: App, body: dict[str, Any]) -> str:
    try:
        return models.resolve(body["model"], models.KNOWN_MODELS, app.settings.model_map)
    except models.UnknownModel as exc:
        raise ProxyError(ErrorKind.NOT_FOUND, f"model: {body['model']} (served here: {', '.join(exc.served)})") from None


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
    first = orjson.dumps([body.get("system"), (body.get("messages") or [None])[0]])
    return hashlib.sha256(first).hexdigest()


def _error(response: Responder, error: ProxyError, request: Request) -> None:
    status, headers, body = client_errors.anthropic(error, request.request_id)
    response.respond(status, headers, body)
