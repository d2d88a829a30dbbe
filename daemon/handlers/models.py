"""Model lists in each protocol's shape: Anthropic, OpenAI and Gemini on /v1/models (told
apart by the headers each SDK sends), Gemini on /v1beta/models too. Served ids come from the
upstream catalogue; the user's AGPROXY_MODEL_MAP names and routes are listed as aliases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ProxyError
from ..http_server.request import Request
from ..http_server.response import Responder
from ..http_server.router import Router
from ..translate import client_errors
from ..upstream.catalog import ModelInfo
from .common import authenticate, targets

if TYPE_CHECKING:
    from ..app import App

CREATED = 1767225600  # 2026-01-01: the catalogue has no dates; a fixed one keeps lists stable


def register(router: Router, app: App) -> None:
    for path in ("/v1/models", "/anthropic/v1/models", "/models"):
        router.add("GET", path, lambda request, response: _list(app, request, response))
    router.add("GET", "/v1beta/models", lambda request, response: _gemini_list(app, request, response))


async def entries(app: App) -> list[tuple[str, ModelInfo]]:
    """(listed name, the model serving it), served ids first, then aliases."""
    catalogue = await app.models.catalogue()
    listed = [(name, catalogue[name]) for name in sorted(catalogue)]
    for alias, target in app.settings.model_map:
        if "*" not in alias and "?" not in alias and target in catalogue and alias not in catalogue:
            listed.append((alias, catalogue[target]))
    for name, route in sorted(app.routes.by_name.items()):  # a route looks like its first target
        first = route.targets[0].model
        if name not in catalogue and first in catalogue:
            listed.append((name, catalogue[first]))
    return listed


def is_gemini_client(request: Request) -> bool:
    """google-genai (whose default API version may be v1) and Gemini REST callers."""
    return (request.header(b"x-goog-api-key") is not None or request.header(b"x-goog-api-client") is not None
            or "key=" in request.query)


async def _list(app: App, request: Request, response: Responder) -> None:
    if is_gemini_client(request):
        await _gemini_list(app, request, response)
        return
    anthropic = request.header(b"anthropic-version") is not None
    try:
        authenticate(app, request)
    except ProxyError as error:
        render = client_errors.anthropic if anthropic else client_errors.openai
        response.respond(*render(error, request.request_id))
        return
    listed = await entries(app)
    if anthropic:
        data = [{"type": "model", "id": name, "display_name": info.display_name, "created_at": "2026-01-01T00:00:00Z"}
                for name, info in listed]
        response.respond_json(200, {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]})
    else:
        response.respond_json(200, {"object": "list", "data": [_openai(name) for name, _ in listed]})


async def openai_model(app: App, request: Request, response: Responder) -> None:
    name = request.params["model"]
    try:
        authenticate(app, request)
        await targets(app, name)  # a route's name is a model here too, as in the list
    except ProxyError as error:
        response.respond(*client_errors.openai(error, request.request_id))
        return
    response.respond_json(200, _openai(name))


def _openai(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": CREATED, "owned_by": "antigravity"}


async def _gemini_list(app: App, request: Request, response: Responder) -> None:
    try:
        authenticate(app, request)
    except ProxyError as error:
        response.respond(*client_errors.gemini(error, request.request_id))
        return
    response.respond_json(200, {"models": [gemini_model(name, info) for name, info in await entries(app)]})


def gemini_model(name: str, info: ModelInfo) -> dict[str, Any]:
    return {
        "name": f"models/{name}", "version": "001", "displayName": info.display_name, "description": info.display_name,
        "inputTokenLimit": info.input_limit, "outputTokenLimit": info.output_limit,
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
        "thinking": info.thinking,
    }

