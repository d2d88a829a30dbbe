"""Native Gemini: POST /v1beta/models/{model}:generateContent, :streamGenerateContent and
:countTokens, GET /v1beta/models/{model} (also under /v1, client-protocols.md §5.1)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ..dispatch import runner
from ..errors import ErrorKind, ProxyError
from ..http_server.request import Request
from ..http_server.response import Responder
from ..http_server.router import Router
from ..translate import client_errors, gemini_request, gemini_stream
from ..translate.count_tokens import estimate_tokens
from ..upstream.catalog import describe
from .common import (
    Target,
    authenticate,
    conversation_key,
    json_body,
    pinned_account,
    targets,
)
from .models import gemini_model, is_gemini_client, openai_model

if TYPE_CHECKING:
    from ..app import App

METHODS = ("generateContent", "streamGenerateContent", "countTokens")


def register(router: Router, app: App) -> None:
    for prefix in ("/v1beta", "/v1"):
        router.add("POST", prefix + "/models/{model}", lambda request, response: _call(app, request, response))
    router.add("GET", "/v1beta/models/{model}", lambda request, response: _model(app, request, response))
    router.add("GET", "/v1/models/{model}", lambda request, response: _one_model(app, request, response))


async def _call(app: App, request: Request, response: Responder) -> None:
    name, _, method = request.params["model"].removeprefix("models/").partition(":")
    try:
        client = authenticate(app, request)
        if method not in METHODS:
            raise ProxyError(ErrorKind.NOT_FOUND, f"models/{name}:{method} is not a supported method "
                             f"({', '.join(METHODS)})")
        body = json_body(request, model_required=False)
        served_by = await _targets(app, name)
        if method == "countTokens":
            body = body.get("generateContentRequest") or body  # the REST form nests the request
        session = _session_key(request, body)
        prepared = [(target, gemini_request.prepare(body, model=target.model, session_key=session,
                                                    rewrites=app.settings.identity_rewrites)) for target in served_by]
    except ProxyError as error:
        response.respond(*client_errors.gemini(error, request.request_id))
        return
    if method == "countTokens":
        response.respond_json(200, {"totalTokens": estimate_tokens(prepared[0][1])})
        return
    sse = method == "streamGenerateContent" and "alt=sse" in request.query
    generations = [runner.Generation(
        model=target.model, request=upstream_request, stream=sse, reader=gemini_stream.GeminiPassthrough(),
        wire=gemini_stream if method == "generateContent" else _ChunkList,
        render_error=lambda error: client_errors.gemini(error, request.request_id),
        session=session, pinned=pinned_account(request), accounts=target.accounts, client=client,
    ) for target, upstream_request in prepared]
    await runner.run(app, generations, response)


class _ChunkList:
    """streamGenerateContent without `alt=sse` answers one JSON array of the chunks."""

    PROTOCOL = gemini_stream.PROTOCOL
    HEARTBEAT = gemini_stream.HEARTBEAT
    encode = staticmethod(gemini_stream.encode)

    class Accumulator:
        def __init__(self) -> None:
            self.body: list[Any] = []

        def apply(self, events: list[bytes]) -> None:
            self.body += [orjson.loads(event) for event in events]


async def _one_model(app: App, request: Request, response: Responder) -> None:
    """/v1/models/{model} is OpenAI's single-model route too."""
    if is_gemini_client(request):
        await _model(app, request, response)
    else:
        await openai_model(app, request, response)


async def _model(app: App, request: Request, response: Responder) -> None:
    name = request.params["model"].removeprefix("models/")
    try:
        authenticate(app, request)
        model = (await _targets(app, name))[0].model
    except ProxyError as error:
        response.respond(*client_errors.gemini(error, request.request_id))
        return
    catalogue = await app.models.catalogue()
    response.respond_json(200, gemini_model(name, catalogue.get(model) or describe(model)))


async def _targets(app: App, name: str) -> list[Target]:
    try:
        return await targets(app, name)
    except ProxyError as error:  # the wording the real API uses (client-protocols.md §5.5)
        raise ProxyError(ErrorKind.NOT_FOUND, f"models/{name} is not found for API version v1beta, or is not "
                         f"supported for generateContent. {error.message}") from None


def _session_key(request: Request, body: dict[str, Any]) -> str:
    contents = body.get("contents") if isinstance(body.get("contents"), list) else []
    return conversation_key(request, header=b"x-session-id", fallback=contents[:2])
