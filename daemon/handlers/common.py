"""What every protocol handler does first: authenticate, read the JSON body, resolve the model."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ..admin.security import loopback_request
from ..client_keys import key_name, keys_required, presented_key
from ..dispatch import runner
from ..dispatch.translating import Machine, Translating
from ..errors import ErrorKind, ProxyError
from ..http_server.request import Request
from ..http_server.response import Responder
from ..translate.client_errors import ANTHROPIC_TYPES
from ..translate.conversation import Conversation
from ..translate.upstream_request import Translated, build
from ..upstream import models

if TYPE_CHECKING:
    from ..app import App


def authenticate(app: App, request: Request) -> str:
    """The client key's name ("" when the daemon runs without keys); ProxyError(AUTH) otherwise."""
    if not keys_required(app.settings, app.keys):
        return ""
    name = key_name(presented_key(request), app.settings.api_keys, app.keys)
    if name is None:
        raise ProxyError(ErrorKind.AUTH, "invalid or missing API key (x-api-key, Authorization: Bearer, "
                         "x-goog-api-key or ?key=)")
    return name


ADMIN_USER = "admin"
BASIC_CHALLENGE = (b"www-authenticate", b'Basic realm="antigravity-proxy"')
NO_STORE = (b"cache-control", b"no-store")


NO_PASSWORD = ("The admin page and the management endpoints need a password when the daemon listens beyond "
               "loopback. Set AGPROXY_ADMIN_PASSWORD (in the daemon's environment or its AGPROXY_ENV_FILE) and "
               "restart it or send it SIGHUP; then log in as user \"admin\" with that password.")
LOOPBACK_ONLY = ("Without AGPROXY_ADMIN_PASSWORD the admin page and the management endpoints answer only this "
                 "machine, addressed as localhost, 127.0.0.1 or [::1], and never through a reverse proxy. Set "
                 "AGPROXY_ADMIN_PASSWORD (in the daemon's environment or its AGPROXY_ENV_FILE) to use them from "
                 "elsewhere.")


def require_admin(app: App, request: Request) -> None:
    """Management endpoints (/quota, /usage, /metrics, the admin page): basic auth with
    AGPROXY_ADMIN_PASSWORD when it is set; without one, only requests from this machine to
    a loopback name (no DNS-rebound Host, nothing relayed by a reverse proxy)."""
    password = app.settings.admin_password
    if password is None:
        if not app.settings.is_loopback:
            raise ProxyError(ErrorKind.PERMISSION, NO_PASSWORD)
        if not loopback_request(request.header(b"host"), request.peer, request.headers):
            raise ProxyError(ErrorKind.PERMISSION, LOOPBACK_ONLY)
        return
    header = request.header(b"authorization") or b""
    scheme, _, encoded = header.partition(b" ")
    try:
        user, _, given = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        user, given = "", ""
    valid = password.matches(given) & hmac.compare_digest(user.encode(), ADMIN_USER.encode())  # both, always
    if scheme.lower() != b"basic" or not valid:
        raise ProxyError(ErrorKind.AUTH, "admin credentials required (basic auth, user admin)")


Handler = Callable[[Request, Responder], Awaitable[None]]


def management(app: App, handler: Handler) -> Handler:
    """A management endpoint (/quota, /usage, /metrics): `handler` runs once require_admin
    lets the caller in; a refusal, or a ProxyError the handler raises, is a JSON error."""

    async def guarded(request: Request, response: Responder) -> None:
        try:
            require_admin(app, request)
            await handler(request, response)
        except ProxyError as error:
            body = {"error": {"type": ANTHROPIC_TYPES[error.kind], "message": error.message, "code": error.status}}
            response.respond_json(error.status, body, [NO_STORE, *([BASIC_CHALLENGE] if error.status == 401 else [])])

    return guarded


def json_body(request: Request, *, model_required: bool = True) -> dict[str, Any]:
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise ProxyError(ErrorKind.INVALID_REQUEST, f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ProxyError(ErrorKind.INVALID_REQUEST, "the request body must be a JSON object")
    if model_required and (not isinstance(body.get("model"), str) or not body["model"]):
        raise ProxyError(ErrorKind.INVALID_REQUEST, "model: a model name is required", param="model")
    return body


async def resolve_model(app: App, name: str) -> str:
    """The upstream id serving a client's model name; ProxyError(NOT_FOUND) listing the served ones.
    A name the cached catalogue lacks is looked up again in a refreshed one (when due)."""
    try:
        return models.resolve(name, app.models.served(), app.settings.model_map)
    except models.UnknownModel:
        await app.models.catalogue()
    try:
        return models.resolve(name, app.models.served(), app.settings.model_map)
    except models.UnknownModel as exc:
        raise ProxyError(ErrorKind.NOT_FOUND, f"model {name!r} is not served here; available: {', '.join(exc.served)}",
                         param="model") from None


def conversation_key(request: Request, *, header: bytes, fallback: object) -> str:
    """What identifies one conversation, for the upstream sessionId: the client's session
    header, else a hash of how the conversation starts."""
    value = request.header(header)
    if value:
        return value.decode("latin-1")
    return hashlib.sha256(orjson.dumps(fallback, option=orjson.OPT_NON_STR_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class Target:
    model: str  # upstream id
    accounts: tuple[str, ...] = ()  # the accounts a route allows, () for any


@dataclass(frozen=True, slots=True)
class Accepted:
    body: dict[str, Any]
    targets: list[Target]  # the upstream model of its name, or a route's targets in the order to try
    client: str  # the client key's name, "" without keys


async def accepted(app: App, request: Request) -> Accepted:
    """An authenticated request's JSON body and what may serve it."""
    client = authenticate(app, request)
    body = json_body(request)
    return Accepted(body, await targets(app, body["model"]), client)


async def targets(app: App, name: str) -> list[Target]:
    route = app.routes.find(name)
    if route is None:
        return [Target(await resolve_model(app, name))]
    return [Target(await resolve_model(app, t.model), t.accounts) for t in route.ordered(_shuffle)]


_shuffle = random.Random()  # for "random" routes: no need for a secure source


def translate(app: App, conversation: Conversation, model: str, session_key: str) -> Translated:
    return build(conversation, model=model, session_key=session_key, signatures=app.signatures,
                 rewrites=app.settings.identity_rewrites)


def translated_generations(app: App, request: Request, accepted: Accepted, conversation: Conversation, session: str,
                           machine: Callable[[Translated], Machine], wire: runner.Wire,
                           render: Callable[[ProxyError, str], tuple[int, runner.Headers, bytes]]) -> list[runner.Generation]:
    """A translated protocol's generation per target: upstream events through a new machine
    onto the protocol's wire. A target whose model cannot take the request (say, a prefill
    for Claude) is left out; the ProxyError of the first one is raised when none can."""
    generations, refusals = [], []
    for target in accepted.targets:
        try:
            translated = translate(app, conversation, target.model, session)
        except ProxyError as error:
            refusals.append(error)
            continue
        generations.append(runner.Generation(
            model=translated.model, request=translated.request, stream=translated.stream,
            reader=Translating(machine(translated), translated.stop_sequences), wire=wire,
            render_error=lambda error: render(error, request.request_id),
            session=session, pinned=pinned_account(request), accounts=target.accounts, client=accepted.client,
        ))
    if not generations:
        raise refusals[0]
    return generations


def pinned_account(request: Request) -> str:
    """The account a client asks for by id or e-mail (header X-Account), "" for any."""
    value = request.header(b"x-account")
    return value.decode("latin-1").strip() if value else ""
