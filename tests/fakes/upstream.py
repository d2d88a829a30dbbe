"""A faithful, scriptable fake of Google's Antigravity Cloud Code `v1internal` API, Google
OAuth and userinfo, served by a real loopback HTTP/1.1 server (optionally TLS).

Protocol facts follow shared/docs/upstream-cloudcode.md (cited as "doc §N"); real payloads are
replayed from tests/fixtures/upstream/ (found relative to this file). Standard library only,
plus orjson. Nothing here imports the daemon.

    with FakeUpstream() as fake:                       # http://127.0.0.1:<port>
        fake.script(scripts.stream_reply(scripts.text("Hi")))
        ... point the daemon at fake.base_url / fake.token_url / fake.userinfo_url ...
        fake.assert_no_violations()

Threads: one accept thread plus one thread per TCP connection (keep-alive is honoured, so
one connection serves many requests). `stop()` shuts every client socket down, wakes paused
or gated streams, and joins every thread.

Violations. The fake checks what it receives. A request the daemon must never send
(malformed envelope, missing header, wrong client secret, reused auth code, PKCE mismatch,
unknown path, ...) is answered the way Google would answer it (a Google-shaped 400 unless the
real answer is known to differ) AND recorded in `fake.violations` as
"[<check name>] <METHOD> <path>: <what is wrong>". Answers that are legitimate upstream
behaviour (expired/revoked access token -> 401, revoked refresh token -> invalid_grant,
refresh with the wrong client -> unauthorized_client, unknown auth code) are not violations.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import functools
import gzip
import hashlib
import http.server
import math
import re
import secrets
import select
import socket
import socketserver
import ssl
import struct
import threading
import time
import traceback
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, overload

import orjson

from . import scripts
from .scripts import CutMidEvent, ErrorReply, FlushHeaders, Gate, Pause, RenderContext, StreamReply

# --------------------------------------------------------------------------- constants (doc §1)

ANTIGRAVITY_CLIENT_ID = "1071006060591-tmhssin2h21lcre235vtolojh4g403ep.apps.googleusercontent.com"
# Public installed-app secret, kept split so secret scanners do not flag it (doc §1.1).
ANTIGRAVITY_CLIENT_SECRET = "GOCSPX" + "-" + "K58FWR486LdLJ1mLB8sXC4z6qDAf"
# The second ("ide"/"legacy") client embedded in newer Antigravity builds (doc §1.1).
IDE_CLIENT_ID = "884354919052-36trc1jjb3tguiac32ov6cod268c5blh.apps.googleusercontent.com"
IDE_CLIENT_SECRET = "GOCSPX" + "-" + "9YQWpF7RWDC0QTdj-YxKMwR0ZtsX"
KNOWN_CLIENTS = {ANTIGRAVITY_CLIENT_ID: ANTIGRAVITY_CLIENT_SECRET, IDE_CLIENT_ID: IDE_CLIENT_SECRET}

SCOPES = (
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
    "https://www.googleapis.com/auth/cclog",
    "https://www.googleapis.com/auth/experimentsandconfigs",
)
SCOPE = " ".join(SCOPES)

DEFAULT_EMAIL = "user@example.com"
DEFAULT_PROJECT = "fake-project-1"

SECONDS = 1.0
ACCESS_TOKEN_LIFETIME = 3599 * SECONDS  # what Google's token endpoint reports
AUTH_CODE_LIFETIME = 600 * SECONDS
HANDSHAKE_TIMEOUT = 10 * SECONDS
STOP_JOIN_TIMEOUT = 5 * SECONDS
POLL_INTERVAL = 0.02 * SECONDS  # how often paused/gated streams look at stop and peer EOF
ACCEPT_POLL_INTERVAL = 0.05 * SECONDS
MAX_BODY_BYTES = 64 * 1024 * 1024

TRACE_HEADER = "x-cloudaicompanion-trace-id"
JSON_TYPE = "application/json; charset=UTF-8"
SSE_TYPE = "text/event-stream"

FETCH_MODELS_FIXTURE = "fetchAvailableModels.response.excerpt.real.json"
PREFILL_FIXTURE = "error.400.INVALID_ARGUMENT.claude-prefill-not-supported.json"
EMPTY_PROJECT_FIXTURE = "error.500.INTERNAL.empty-project.json"
INVALID_GRANT_FIXTURE = "oauth.token.400.invalid_grant.json"


# --------------------------------------------------------------------------- records


class Headers(Sequence[tuple[str, str]]):
    """Request headers as received: (name, value) pairs in wire order, plus
    case-insensitive lookup by name (`h["user-agent"]`, `h.get(...)`, `"Host" in h`)."""

    __slots__ = ("_pairs",)

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._pairs = tuple((str(k), str(v)) for k, v in pairs)

    @overload
    def __getitem__(self, key: int) -> tuple[str, str]: ...
    @overload
    def __getitem__(self, key: slice) -> Sequence[tuple[str, str]]: ...
    @overload
    def __getitem__(self, key: str) -> str: ...
    def __getitem__(self, key):  # type: ignore[no-untyped-def]
        if isinstance(key, str):
            value = self.get(key)
            if value is None:
                raise KeyError(key)
            return value
        return self._pairs[key]

    def __len__(self) -> int:
        return len(self._pairs)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._pairs)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            return self.get(item) is not None
        return item in self._pairs

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._pairs == other._pairs
        if isinstance(other, (list, tuple)):
            return list(self._pairs) == [tuple(p) for p in other]
        return NotImplemented

    def __repr__(self) -> str:
        return f"Headers({list(self._pairs)!r})"

    def get(self, name: str, default: str | None = None) -> str | None:
        lowered = name.lower()
        for key, value in self._pairs:
            if key.lower() == lowered:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        lowered = name.lower()
        return [v for k, v in self._pairs if k.lower() == lowered]

    def names(self) -> list[str]:
        return [k for k, _ in self._pairs]


@dataclass(eq=False)
class RecordedRequest:
    """One request as the fake received it."""

    seq: int
    method: str
    target: str  # raw request target, with the query string
    path: str
    query: dict[str, str]
    headers: Headers
    body: bytes
    json: Any = None  # parsed JSON body (None if not JSON)
    form: dict[str, str] | None = None  # parsed form body (token endpoint)
    account: str | None = None  # email the bearer token (or token grant) belongs to
    status: int | None = None  # status the fake answered
    outcome: str = "pending"  # complete | cut | client_closed | aborted
    connection_id: int = 0
    tls: bool = False
    received_at: float = field(default_factory=time.monotonic)

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)


@dataclass(eq=False)
class FakeAccount:
    """A Google account the fake knows. `project=None` means it needs onboardUser first."""

    email: str
    refresh_token: str
    project: str | None
    tier: str = "standard-tier"
    client_id: str = ANTIGRAVITY_CLIENT_ID
    paid_tier: str | None = None
    onboard_project: str = ""  # what onboarding assigns ("" = done without a project, doc §3.3)
    onboard_polls: int = 1  # LRO answers with done:false this many times first
    name: str = ""
    user_id: str = ""
    picture: str = ""
    quota: dict[str, tuple[float | None, str | None]] = field(default_factory=dict)

    @property
    def needs_onboarding(self) -> bool:
        return self.project is None


@dataclass(eq=False)
class _AccessGrant:
    email: str
    client_id: str
    expires_at: float
    revoked: bool = False


@dataclass(eq=False)
class _RefreshGrant:
    email: str
    client_id: str
    revoked: bool = False


@dataclass(eq=False)
class _AuthCode:
    email: str
    client_id: str
    redirect_uri: str
    challenge: str | None
    issued_at: float
    used: bool = False


@dataclass(eq=False)
class _Operation:
    name: str
    email: str
    polls: int = 0


@dataclass(eq=False)
class _Conn:
    id: int
    sock: socket.socket
    tls: bool = False
    closed: bool = False


class _Aborted(Exception):
    """The exchange cannot continue (fake stopping, peer gone, connection cut on purpose)."""


# --------------------------------------------------------------------------- validation

_EMPTY_PROJECT_BODY = functools.partial(scripts.fixture_bytes, EMPTY_PROJECT_FIXTURE)


@dataclass(frozen=True)
class Rejection:
    """Why a request is refused: the check that failed, a message, and the answer to send
    (a Google-shaped error with `message` unless `body` is given)."""

    message: str
    status: int = 400
    body: bytes | None = None
    check: str = ""

    def body_bytes(self) -> bytes:
        if self.body is not None:
            return self.body
        status = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 500: "INTERNAL"}
        return orjson.dumps(scripts.google_error(self.status, status.get(self.status, "UNKNOWN"), self.message))


def _bad(message: str, status: int = 400, body: bytes | None = None) -> Rejection:
    return Rejection(message, status, body)


def unknown_name(key: str, at: str | None = None) -> str:
    """Proto-JSON's answer to a field it does not know."""
    where = f" at '{at}'" if at else ""
    return f'Invalid JSON payload received. Unknown name "{key}"{where}: Cannot find field.'


def _invalid_value(path: str, value: Any) -> str:
    shown = orjson.dumps(value).decode()[:60]
    return f"Invalid value at '{path}', {shown}"


ENVELOPE_KEYS = frozenset({"project", "model", "userAgent", "requestType", "requestId", "request", "enabledCreditTypes"})
# VertexGenerateContentRequest fields (gemini-cli converter.ts); proto-JSON takes both spellings.
REQUEST_KEYS = frozenset(
    {
        "contents",
        "systemInstruction", "system_instruction",
        "generationConfig", "generation_config",
        "tools",
        "toolConfig", "tool_config",
        "safetySettings", "safety_settings",
        "sessionId", "session_id",
        "labels",
        "cachedContent", "cached_content",
    }
)
ROLES = frozenset({"user", "model"})
_PART_DATA = {
    "text": "text",
    "inlineData": "inlineData", "inline_data": "inlineData",
    "fileData": "fileData", "file_data": "fileData",
    "functionCall": "functionCall", "function_call": "functionCall",
    "functionResponse": "functionResponse", "function_response": "functionResponse",
}
_PART_EXTRA = {"thought": "thought", "thoughtSignature": "thoughtSignature", "thought_signature": "thoughtSignature"}
_FUNCTION_CALL_KEYS = frozenset({"name", "args", "id"})
_FUNCTION_RESPONSE_KEYS = frozenset({"name", "response", "id", "parts", "willContinue", "will_continue", "scheduling"})
_INLINE_DATA_KEYS = frozenset({"mimeType", "mime_type", "data", "displayName", "display_name"})
_FILE_DATA_KEYS = frozenset({"mimeType", "mime_type", "fileUri", "file_uri", "displayName", "display_name"})
_SNAKE = {"inlineData": "inline_data", "fileData": "file_data", "functionCall": "function_call",
          "functionResponse": "function_response"}


def _request(env: dict[str, Any]) -> dict[str, Any]:
    return env["request"]


def _either(obj: dict[str, Any], camel: str, snake: str) -> Any:
    return obj.get(camel, obj.get(snake))


def check_top_level_keys(env: dict[str, Any]) -> Rejection | None:
    """Only envelope keys at the root; client-API fields (messages, max_tokens,
    anthropic_version, system, snake-case system_instruction) are unknown names (doc §8)."""
    for key in env:
        if key not in ENVELOPE_KEYS:
            return _bad(unknown_name(key))
    return None


def check_project_type(env: dict[str, Any]) -> Rejection | None:
    """`project` is present and a string (emptiness is check_project_not_empty's job)."""
    if "project" not in env:
        return _bad("project is required in the v1internal envelope")
    if not isinstance(env["project"], str):
        return _bad(_invalid_value("project", env["project"]))
    return None


def check_model(env: dict[str, Any]) -> Rejection | None:
    """`model` is a non-empty string."""
    model = env.get("model")
    if not isinstance(model, str) or not model:
        return _bad(f"model must be a non-empty string, got {model!r}")
    return None


def check_user_agent_field(env: dict[str, Any]) -> Rejection | None:
    """The envelope's `userAgent` is the literal "antigravity" (not the HTTP UA, doc §4.1)."""
    if env.get("userAgent") != "antigravity":
        return _bad(f'userAgent must be "antigravity", got {env.get("userAgent")!r}')
    return None


def check_request_id(env: dict[str, Any]) -> Rejection | None:
    """`requestId` is a non-empty string."""
    rid = env.get("requestId")
    if not isinstance(rid, str) or not rid:
        return _bad(f"requestId must be a non-empty string, got {rid!r}")
    return None


def check_optional_fields(env: dict[str, Any]) -> Rejection | None:
    """`requestType` a non-empty string and `enabledCreditTypes` a list of strings, if present."""
    if "requestType" in env and (not isinstance(env["requestType"], str) or not env["requestType"]):
        return _bad(_invalid_value("request_type", env["requestType"]))
    credits = env.get("enabledCreditTypes")
    if "enabledCreditTypes" in env and not (isinstance(credits, list) and all(isinstance(c, str) for c in credits)):
        return _bad(_invalid_value("enabled_credit_types", credits))
    return None


def check_request_object(env: dict[str, Any]) -> Rejection | None:
    """`request` is an object holding only GenerateContentRequest fields."""
    req = env.get("request")
    if not isinstance(req, dict):
        return _bad(f"request must be an object, got {type(req).__name__}")
    for key in req:
        if key not in REQUEST_KEYS:
            return _bad(unknown_name(key, "request"))
    return None


def check_contents(env: dict[str, Any]) -> Rejection | None:
    """`request.contents`: a non-empty list of {role: user|model, parts: [valid part, ...]}."""
    contents = _request(env).get("contents")
    if not isinstance(contents, list) or not contents:
        return _bad("Unable to submit request because it must include at least one contents field.")
    for i, content in enumerate(contents):
        path = f"request.contents[{i}]"
        if not isinstance(content, dict):
            return _bad(_invalid_value(path, content))
        for key in content:
            if key not in ("role", "parts"):
                return _bad(unknown_name(key, path))
        if content.get("role") not in ROLES:
            return _bad(f"Please use a valid role: user, model. ({path}.role = {content.get('role')!r})")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return _bad(
                "Unable to submit request because it must include at least one parts field, "
                f"which describes the prompt input. ({path})"
            )
        for j, part in enumerate(parts):
            problem = check_part(part, f"{path}.parts[{j}]")
            if problem:
                return problem
    return None


def check_part(part: Any, path: str) -> Rejection | None:
    """Exactly one of text/inlineData/fileData/functionCall/functionResponse, plus optional
    `thought` and `thoughtSignature`; the signature never inside functionCall (doc §4.2)."""
    if not isinstance(part, dict):
        return _bad(_invalid_value(path, part))
    data_keys = []
    for key in part:
        if key in _PART_DATA:
            data_keys.append(key)
        elif key not in _PART_EXTRA:
            return _bad(unknown_name(key, path))
    if not data_keys:
        # wording ours: a Part whose `data` oneof is unset
        return _bad(f"{path}: a part needs exactly one of text, inlineData, fileData, functionCall, functionResponse")
    if len(data_keys) > 1:
        # modelled on proto-JSON's oneof error
        return _bad(f"Invalid JSON payload received. Oneof field 'data' is already set. Cannot set '{data_keys[1]}' ({path})")
    if "thought" in part and not isinstance(part["thought"], bool):
        return _bad(_invalid_value(f"{path}.thought", part["thought"]))
    signature = _either(part, "thoughtSignature", "thought_signature")
    if signature is not None and not isinstance(signature, str):
        return _bad(_invalid_value(f"{path}.thought_signature", signature))
    key = data_keys[0]
    kind, value = _PART_DATA[key], part[key]
    sub = f"{path}.{_SNAKE.get(kind, kind)}"
    if kind == "text":
        if not isinstance(value, str):
            return _bad(_invalid_value(sub, value))
        return None
    if not isinstance(value, dict):
        return _bad(_invalid_value(sub, value))
    allowed = {
        "functionCall": _FUNCTION_CALL_KEYS,
        "functionResponse": _FUNCTION_RESPONSE_KEYS,
        "inlineData": _INLINE_DATA_KEYS,
        "fileData": _FILE_DATA_KEYS,
    }[kind]
    for inner in value:
        if inner not in allowed:
            return _bad(unknown_name(inner, sub))  # e.g. thoughtSignature inside functionCall
    if kind in ("functionCall", "functionResponse"):
        if not isinstance(value.get("name"), str) or not value.get("name"):
            return _bad(f"{sub}.name must be a non-empty string")
        if kind == "functionCall" and "args" in value and not isinstance(value["args"], dict):
            return _bad(_invalid_value(f"{sub}.args", value["args"]))
        if kind == "functionResponse" and not isinstance(value.get("response"), dict):
            return _bad(f"{sub}.response must be an object")
    elif kind == "inlineData":
        if not isinstance(_either(value, "mimeType", "mime_type"), str) or not isinstance(value.get("data"), str):
            return _bad(f"{sub} needs string mimeType and data")
    elif not isinstance(_either(value, "fileUri", "file_uri"), str):
        return _bad(f"{sub}.file_uri must be a string")
    return None


def check_system_instruction(env: dict[str, Any]) -> Rejection | None:
    """`systemInstruction`, if present, is a Content object with parts; a plain string is a
    400 (doc §4.1)."""
    req = _request(env)
    if "systemInstruction" not in req and "system_instruction" not in req:
        return None
    value = _either(req, "systemInstruction", "system_instruction")
    path = "request.system_instruction"
    if not isinstance(value, dict):
        # modelled on proto-JSON's type error for a Content field
        return _bad(f"Invalid value at '{path}' (type.googleapis.com/google.cloud.aiplatform.v1.Content), "
                    f"{orjson.dumps(value).decode()[:60]}")
    for key in value:
        if key not in ("role", "parts"):
            return _bad(unknown_name(key, path))
    parts = value.get("parts")
    if not isinstance(parts, list) or not parts:
        return _bad(f"{path}.parts must be a non-empty list")
    for j, part in enumerate(parts):
        problem = check_part(part, f"{path}.parts[{j}]")
        if problem:
            return problem
    return None


def check_cache_control(env: dict[str, Any]) -> Rejection | None:
    """No Anthropic `cache_control` anywhere (doc §4.2, ACP). Free-form payloads
    (functionCall.args, functionResponse.response) and property names inside a schema's
    `properties` are the user's data, not fields, so they are not searched."""
    path = _find_field(env, "cache_control", "")
    if path:
        return _bad(f"{path}: Extra inputs are not permitted")
    return None


def _find_field(obj: Any, target: str, path: str) -> str | None:
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            found = _find_field(item, target, f"{path}[{i}]")
            if found:
                return found
        return None
    if not isinstance(obj, dict):
        return None
    for key, value in obj.items():
        sub = f"{path}.{key}" if path else key
        if key == target:
            return sub
        if key in ("functionCall", "function_call", "functionResponse", "function_response") and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in ("args", "response")}
        if key == "properties" and isinstance(value, dict):
            for name, schema in value.items():
                found = _find_field(schema, target, f"{sub}.{name}")
                if found:
                    return found
            continue
        found = _find_field(value, target, sub)
        if found:
            return found
    return None


def check_project_not_empty(env: dict[str, Any]) -> Rejection | None:
    """`"project": ""` gets the real 500 INTERNAL for every model (doc §3.3); a violation too,
    because the daemon must never send it."""
    if env["project"] == "":
        return _bad('project is "" (the real upstream answers 500 INTERNAL)', 500, _EMPTY_PROJECT_BODY())
    return None


def _is_claude(env: dict[str, Any]) -> bool:
    return env["model"].startswith("claude")


def check_claude_prefill(env: dict[str, Any]) -> Rejection | None:
    """Claude rejects a conversation whose last content is `model` (real fixture body)."""
    if _is_claude(env) and _request(env)["contents"][-1]["role"] == "model":
        return _bad("Claude conversation ends with a model turn (prefill)", 400, scripts.fixture_bytes(PREFILL_FIXTURE))
    return None


def check_claude_thinking_budget(env: dict[str, Any]) -> Rejection | None:
    """Claude with a thinking budget needs maxOutputTokens > budget. This mirrors the
    Anthropic rule (doc §4.3); the message wording is ours, shaped like the real prefill
    error (Anthropic error JSON stringified inside `message`)."""
    if not _is_claude(env):
        return None
    config = _either(_request(env), "generationConfig", "generation_config") or {}
    thinking = _either(config, "thinkingConfig", "thinking_config") if isinstance(config, dict) else None
    if not isinstance(thinking, dict):
        return None
    budget = _either(thinking, "thinkingBudget", "thinking_budget")
    max_out = _either(config, "maxOutputTokens", "max_output_tokens")
    if isinstance(budget, int) and budget > 0 and isinstance(max_out, int) and max_out <= budget:
        inner = {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "message": f"`max_tokens` must be greater than `thinking.budget_tokens` ({max_out} <= {budget})",
            },
            "request_id": "req_vrtx_fake" + secrets.token_hex(8),
        }
        body = orjson.dumps(scripts.google_error(400, "INVALID_ARGUMENT", orjson.dumps(inner).decode()))
        return _bad(f"maxOutputTokens {max_out} <= thinking budget {budget}", 400, body)
    return None


# Order: proto-level parse errors first, then the empty-project 500, then Claude-backend rules.
GENERATION_CHECKS: tuple[Callable[[dict[str, Any]], Rejection | None], ...] = (
    check_top_level_keys,
    check_project_type,
    check_model,
    check_user_agent_field,
    check_request_id,
    check_optional_fields,
    check_request_object,
    check_contents,
    check_system_instruction,
    check_cache_control,
    check_project_not_empty,
    check_claude_prefill,
    check_claude_thinking_budget,
)


def validate_generation(env: Any) -> Rejection | None:
    """The first problem with a generation envelope, or None."""
    if not isinstance(env, dict):
        return Rejection("the generation body must be a JSON object", check="check_envelope_is_object")
    for check in GENERATION_CHECKS:
        problem = check(env)
        if problem is not None:
            return replace(problem, check=check.__name__)
    return None


# ClientMetadata enums (doc §2.4, gemini-cli types.ts). "WINDOWS"/"MACOS" are what OC sends and
# reportedly works; "LINUX" is reported rejected.
IDE_TYPES = frozenset({"IDE_UNSPECIFIED", "VSCODE", "INTELLIJ", "VSCODE_CLOUD_WORKSTATION",
                       "INTELLIJ_CLOUD_WORKSTATION", "CLOUD_SHELL", "GEMINI_CLI", "ANTIGRAVITY"})
PLATFORMS = frozenset({"PLATFORM_UNSPECIFIED", "DARWIN_AMD64", "DARWIN_ARM64", "LINUX_AMD64", "LINUX_ARM64",
                       "WINDOWS_AMD64", "WINDOWS", "MACOS"})
PLUGIN_TYPES = frozenset({"PLUGIN_UNSPECIFIED", "CLOUD_CODE", "GEMINI", "AIPLUGIN_INTELLIJ", "AIPLUGIN_STUDIO"})
_METADATA_ENUMS = {"ideType": IDE_TYPES, "ide_type": IDE_TYPES, "platform": PLATFORMS,
                   "pluginType": PLUGIN_TYPES, "plugin_type": PLUGIN_TYPES}
_METADATA_KEYS = frozenset(_METADATA_ENUMS) | {"ideVersion", "ide_version", "pluginVersion", "plugin_version",
                                               "updateChannel", "update_channel", "duetProject", "duet_project",
                                               "ideName", "ide_name"}


def check_client_metadata(metadata: Any, path: str = "metadata") -> Rejection | None:
    """ClientMetadata: an object with known keys and valid enum values (names or numbers)."""
    if not isinstance(metadata, dict):
        return _bad(_invalid_value(path, metadata))
    for key, value in metadata.items():
        if key not in _METADATA_KEYS:
            return _bad(unknown_name(key, path))
        allowed = _METADATA_ENUMS.get(key)
        if allowed is not None and not (isinstance(value, int) or value in allowed):
            return _bad(f"Invalid value at '{path}.{key}' (enum), {orjson.dumps(value).decode()}")
    return None


def check_load_code_assist(body: dict[str, Any]) -> Rejection | None:
    """loadCodeAssist body: {metadata?, cloudaicompanionProject?, mode?} (doc §3.1)."""
    for key in body:
        if key not in ("metadata", "cloudaicompanionProject", "cloudaicompanion_project", "mode"):
            return _bad(unknown_name(key))
    if "metadata" in body:
        return check_client_metadata(body["metadata"])
    return None


def check_onboard_user(body: dict[str, Any], allowed_tiers: Sequence[str]) -> Rejection | None:
    """onboardUser body: tierId from allowedTiers and a metadata object (doc §3.2)."""
    for key in body:
        if key not in ("tierId", "tier_id", "metadata", "cloudaicompanionProject", "cloudaicompanion_project"):
            return _bad(unknown_name(key))
    tier = _either(body, "tierId", "tier_id")
    if tier not in allowed_tiers:
        return _bad(f"tierId {tier!r} is not one of the allowedTiers {list(allowed_tiers)}")
    if "metadata" not in body:
        return _bad("metadata is required")
    return check_client_metadata(body["metadata"])


def count_text_tokens(obj: Any) -> int:
    """A crude, deterministic token estimate: ceil(characters of every `text` / 4) plus 258
    per inline image (Gemini's per-image count). Not what the real tokenizer says."""
    chars = images = 0
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "text" and isinstance(value, str):
                    chars += len(value)
                elif key in ("inlineData", "inline_data"):
                    images += 1
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return math.ceil(chars / 4) + 258 * images


_UA_VERSION = re.compile(r"\bantigravity/(?:[a-z_]+/)?(\d+(?:\.\d+)*)", re.IGNORECASE)


def parse_client_version(user_agent: str | None) -> tuple[int, ...] | None:
    """Version in an Antigravity UA: 'antigravity/1.15.8 darwin/arm64',
    'antigravity/ide/2.1.1 darwin/arm64', 'antigravity/ide/2.5.5 (aidev_client; ...)'."""
    match = _UA_VERSION.search(user_agent or "")
    return tuple(int(x) for x in match.group(1).split(".")) if match else None


def _version_tuple(version: str | Sequence[int]) -> tuple[int, ...]:
    if isinstance(version, str):
        return tuple(int(x) for x in version.split("."))
    return tuple(version)


def version_too_old(user_agent: str | None, minimum: str | Sequence[int] | None) -> bool:
    """True when a minimum is set and the UA's version is below it. A UA without a
    recognisable version counts as too old (the upstream cannot know it is new)."""
    if minimum is None:
        return False
    found = parse_client_version(user_agent)
    if found is None:
        return True
    want = _version_tuple(minimum)
    width = max(len(found), len(want))
    return found + (0,) * (width - len(found)) < want + (0,) * (width - len(want))


# --------------------------------------------------------------------------- model catalog

# Rows for model ids the tests use, SYNTHESIZED in the shape of the real fixture's rows (the
# excerpt holds only 4 of 28 real rows). Values come from the real catalog's summary table
# (cddchen/antigravityide2api docs/fetch-available-models.md); `vertexModelId` and the
# omitted modelExperiments/supportedMimeTypes are ours. quotaInfo.resetTime is set per call.
_GEMINI = {"apiProvider": "API_PROVIDER_GOOGLE_GEMINI", "modelProvider": "MODEL_PROVIDER_GOOGLE"}
_CLAUDE = {"apiProvider": "API_PROVIDER_ANTHROPIC_VERTEX", "modelProvider": "MODEL_PROVIDER_ANTHROPIC"}
SYNTHESIZED_MODEL_ROWS: dict[str, dict[str, Any]] = {
    "claude-sonnet-4-6": {
        "displayName": "Claude Sonnet 4.6 (Thinking)", "supportsImages": True, "supportsThinking": True,
        "thinkingBudget": 1024, "recommended": True, "maxTokens": 250000, "maxOutputTokens": 64000,
        "model": "MODEL_PLACEHOLDER_M35", **_CLAUDE, "vertexModelId": "claude-sonnet-4-6@default",
    },
    "claude-opus-4-6-thinking": {
        "displayName": "Claude Opus 4.6 (Thinking)", "supportsImages": True, "supportsThinking": True,
        "thinkingBudget": 1024, "recommended": True, "maxTokens": 250000, "maxOutputTokens": 64000,
        "model": "MODEL_PLACEHOLDER_M26", **_CLAUDE, "vertexModelId": "claude-opus-4-6@default",
    },
    "gemini-3-flash": {
        "displayName": "Gemini 3 Flash", "supportsImages": True, "supportsVideo": True, "supportsThinking": True,
        "thinkingBudget": -1, "recommended": True, "maxTokens": 1048576, "maxOutputTokens": 65536,
        "model": "MODEL_PLACEHOLDER_M18", **_GEMINI,
    },
    "gemini-3.1-pro-low": {
        "displayName": "Gemini 3.1 Pro (Low)", "supportsImages": True, "supportsVideo": True,
        "supportsThinking": True, "thinkingBudget": 1001, "recommended": True, "maxTokens": 1048576,
        "maxOutputTokens": 65535, "model": "MODEL_PLACEHOLDER_M36", **_GEMINI,
    },
    "gemini-pro-agent": {
        "displayName": "Gemini 3.1 Pro (High)", "supportsImages": True, "supportsVideo": True,
        "supportsThinking": True, "thinkingBudget": 10001, "recommended": True, "maxTokens": 1048576,
        "maxOutputTokens": 65535, "model": "MODEL_PLACEHOLDER_M16", **_GEMINI,
    },
}


def _rfc3339(value: str | dt.datetime | float) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        value = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


# loadCodeAssist tier objects. SYNTHESIZED: no complete real Antigravity capture exists (doc
# §3.1, §9.7); field names follow gemini-cli's typed LoadCodeAssistResponse, texts are ours.
_TIER_TEXT = {
    "free-tier": ("Gemini Code Assist for individuals", False),
    "standard-tier": ("Gemini Code Assist", True),
    "legacy-tier": ("Gemini Code Assist (legacy)", True),
}


def tier_object(tier_id: str, *, is_default: bool | None = None) -> dict[str, Any]:
    name, user_defined = _TIER_TEXT.get(tier_id, (tier_id, False))
    tier: dict[str, Any] = {"id": tier_id, "name": name, "description": f"{name} (fake upstream)"}
    if is_default is not None:
        tier["isDefault"] = is_default
    tier["userDefinedCloudaicompanionProject"] = user_defined
    tier["privacyNotice"] = {}
    return tier


# --------------------------------------------------------------------------- the fake


class FakeUpstream:
    """The fake upstream. See the module docstring and tests/fakes/README.md."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext | None = None,
        *,
        default_account: bool = True,
        min_client_version: str | Sequence[int] | None = None,
        sse_eol: str = "\r\n",
        strict_project: bool = True,
    ) -> None:
        if sse_eol not in ("\r\n", "\n"):
            raise ValueError("sse_eol must be '\\r\\n' or '\\n'")
        self.ssl_context = ssl_context
        self.min_client_version = min_client_version  # generation below it gets version_unsupported()
        self.sse_eol = sse_eol  # CRLF like Google front ends; "\n" for LF framing
        self.split_events = False  # True: every SSE event goes out as two transfer chunks
        self.strict_project = strict_project  # envelope project must be the account's project
        self.idle_timeout: float | None = None  # close keep-alive connections idle this long
        self.token_delay = 0.0  # seconds the token endpoint waits before answering
        self.gzip_json = True  # gzip 200 JSON bodies when the request accepts gzip (doc §6.1)
        self.access_token_lifetime = ACCESS_TOKEN_LIFETIME
        self.next_login_email: str | None = None  # who "logs in" at /o/oauth2/v2/auth
        self.next_login_error: str | None = None  # e.g. "access_denied": redirect with ?error=
        self.default_reply: scripts.Reply = scripts.default_reply()

        self.connections = 0
        self.tls_handshakes = 0
        self.tls_handshake_failures = 0
        self.token_calls = 0
        self.token_calls_by_grant: Counter[str] = Counter()
        self.idle_closes = 0

        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._accounts: dict[str, FakeAccount] = {}
        self._refresh: dict[str, _RefreshGrant] = {}
        self._access: dict[str, _AccessGrant] = {}
        self._codes: dict[str, _AuthCode] = {}
        self._operations: dict[str, _Operation] = {}
        self._queue: list[scripts.ScriptEntry] = []
        self._requests: list[RecordedRequest] = []
        self._violations: list[str] = []
        self._server_errors: list[str] = []
        self._conns: dict[int, _Conn] = {}
        self._threads: list[threading.Thread] = []
        self._server: _Server | None = None
        self._port: int | None = None
        self._serve_thread: threading.Thread | None = None
        self._routes: dict[tuple[str, str], Callable[[_Exchange], None]] = {
            ("GET", "/o/oauth2/v2/auth"): self._h_auth,
            ("POST", "/token"): self._h_token,
            ("GET", "/oauth2/v1/userinfo"): self._h_userinfo,
            ("GET", "/oauth2/v2/userinfo"): self._h_userinfo,
            ("POST", "/v1internal:loadCodeAssist"): self._h_load_code_assist,
            ("POST", "/v1internal:onboardUser"): self._h_onboard_user,
            ("POST", "/v1internal:fetchAvailableModels"): self._h_fetch_models,
            ("POST", "/v1internal:countTokens"): self._h_count_tokens,
            ("POST", "/v1internal:generateContent"): functools.partial(self._h_generate, stream=False),
            ("POST", "/v1internal:streamGenerateContent"): functools.partial(self._h_generate, stream=True),
        }
        if default_account:
            self.add_account(DEFAULT_EMAIL, project=DEFAULT_PROJECT)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> FakeUpstream:
        """Bind 127.0.0.1:0 and serve in background threads."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self)
        self._port = self._server.server_address[1]
        self._serve_thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": ACCEPT_POLL_INTERVAL},
            name="fake-upstream-accept", daemon=True,
        )
        self._serve_thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every client socket, wake paused/gated streams, join all
        threads. Raises RuntimeError if a thread refuses to finish."""
        server = self._server
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            for conn in self._conns.values():
                if not conn.closed:
                    try:  # the base method: on an SSLSocket, skip its own shutdown bookkeeping
                        socket.socket.shutdown(conn.sock, socket.SHUT_RDWR)
                    except OSError:
                        pass
            threads = list(self._threads)
        deadline = time.monotonic() + STOP_JOIN_TIMEOUT
        assert self._serve_thread is not None
        self._serve_thread.join(max(0.0, deadline - time.monotonic()))
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        leaked = [t.name for t in threads if t.is_alive()]
        self._server = None
        self._serve_thread = None
        if leaked:
            raise RuntimeError(f"fake upstream threads did not finish: {leaked}")

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- addresses

    @property
    def port(self) -> int:
        """The bound port (still readable after stop(), e.g. to test "connection refused")."""
        if self._port is None:
            raise RuntimeError("the fake upstream was never started")
        return self._port

    @property
    def base_url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return self.base_url + "/token"

    @property
    def auth_url(self) -> str:
        return self.base_url + "/o/oauth2/v2/auth"

    @property
    def userinfo_url(self) -> str:
        return self.base_url + "/oauth2/v1/userinfo"

    # ----------------------------------------------------------------- accounts & tokens

    _DEFAULT = object()

    def add_account(
        self,
        email: str,
        *,
        refresh_token: str | None = None,
        project: Any = _DEFAULT,
        tier: str = "standard-tier",
        client_id: str = ANTIGRAVITY_CLIENT_ID,
        paid_tier: str | None = None,
        onboard_project: str | None = None,
        onboard_polls: int = 1,
        name: str | None = None,
    ) -> FakeAccount:
        """Add a Google account. `project` defaults to "proj-<slug>"; None means the account
        needs onboardUser, which then assigns `onboard_project` (default "proj-<slug>";
        "" = onboarding completes without a project). Returns the account; its
        `refresh_token` is the one the token endpoint accepts (for `client_id`)."""
        if client_id not in KNOWN_CLIENTS:
            raise ValueError(f"unknown OAuth client {client_id!r}")
        slug = re.sub(r"[^a-z0-9]+", "-", email.split("@")[0].lower()).strip("-") or "user"
        token = refresh_token or "1//fake-" + secrets.token_urlsafe(24)
        user_id = str(int(hashlib.sha256(email.encode()).hexdigest(), 16))[:21]
        account = FakeAccount(
            email=email,
            refresh_token=token,
            project=f"proj-{slug}" if project is self._DEFAULT else project,
            tier=tier,
            client_id=client_id,
            paid_tier=paid_tier,
            onboard_project=f"proj-{slug}" if onboard_project is None else onboard_project,
            onboard_polls=onboard_polls,
            name=name or slug.replace("-", " ").title(),
            user_id=user_id,
            picture=f"https://lh3.googleusercontent.com/a/fake-{user_id}",
        )
        with self._lock:
            if email in self._accounts:
                raise ValueError(f"account {email} exists")
            self._accounts[email] = account
            self._refresh[token] = _RefreshGrant(email, client_id)
        return account

    def account(self, email: str) -> FakeAccount:
        with self._lock:
            return self._accounts[email]

    @property
    def accounts(self) -> list[FakeAccount]:
        with self._lock:
            return list(self._accounts.values())

    def mint_access_token(self, email: str = DEFAULT_EMAIL) -> str:
        """An access token for `email` without the OAuth dance (for tests that call the API directly)."""
        with self._lock:
            account = self._accounts[email]
            return self._mint_access(account.email, account.client_id)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is expired from now on (-> 401 UNAUTHENTICATED)."""
        with self._lock:
            now = time.monotonic()
            for grant in self._access.values():
                grant.expires_at = min(grant.expires_at, now - 1)

    def revoke(self, email: str) -> None:
        """Revoke the account's refresh tokens (-> invalid_grant) and its access tokens."""
        with self._lock:
            for grant in list(self._refresh.values()) + list(self._access.values()):
                if grant.email == email:
                    grant.revoked = True

    def set_quota(
        self, email: str, model: str, remaining_fraction: float | None, reset_time: str | dt.datetime | float | None = None
    ) -> None:
        """Override one fetchAvailableModels row's quotaInfo for one account.
        remaining_fraction None drops the key (the real "exhausted" shape, doc §6.1);
        reset_time is RFC3339 text, a datetime, or seconds from now (None keeps the row's)."""
        with self._lock:
            self._accounts[email].quota[model] = (
                remaining_fraction,
                None if reset_time is None else _rfc3339(reset_time),
            )

    def _mint_access(self, email: str, client_id: str) -> str:
        token = "ya29.fake-" + secrets.token_urlsafe(32)
        self._access[token] = _AccessGrant(email, client_id, time.monotonic() + self.access_token_lifetime)
        return token

    # ----------------------------------------------------------------- scripting

    def script(self, reply: Any, *, model: str | None = None, account: str | FakeAccount | None = None) -> None:
        """Queue a reply (a scripts.Reply, or steps for scripts.stream_reply) for the next
        generation call matching `model` and `account` (FIFO among matches)."""
        if not isinstance(reply, (StreamReply, ErrorReply)):
            reply = scripts.stream_reply(reply)
        email = account.email if isinstance(account, FakeAccount) else account
        with self._lock:
            self._queue.append(scripts.ScriptEntry(reply, model, email))

    @property
    def pending_scripts(self) -> int:
        with self._lock:
            return len(self._queue)

    def _next_reply(self, model: str, email: str | None) -> scripts.Reply:
        with self._lock:
            for index, entry in enumerate(self._queue):
                if entry.matches(model, email):
                    del self._queue[index]
                    return entry.reply
            return self.default_reply

    # ----------------------------------------------------------------- inspection

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received (except GET /health), in arrival order."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """Recorded requests whose path (without query) equals `path`."""
        return [r for r in self.requests if r.path == path]

    @property
    def generation_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith(("GenerateContent", ":generateContent"))]

    def wait_for_requests(self, count: int, *, path: str | None = None, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait until at least `count` requests (to `path`, if given) arrived; return them."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.requests_to(path) if path else self.requests
            if len(found) >= count or time.monotonic() >= deadline:
                if len(found) < count:
                    raise AssertionError(f"expected {count} requests{' to ' + path if path else ''}, got {len(found)}")
                return found
            time.sleep(POLL_INTERVAL)

    @property
    def violations(self) -> list[str]:
        with self._lock:
            return list(self._violations)

    def assert_no_violations(self, *, ignore: Iterable[str] = ()) -> None:
        """Raise AssertionError listing every violation (except checks named in `ignore`)
        and any unexpected exception inside the fake itself."""
        skipped = tuple(f"[{name}]" for name in ignore)
        with self._lock:
            problems = [v for v in self._violations if not v.startswith(skipped)] if skipped else list(self._violations)
            problems += [f"[fake internal error] {e}" for e in self._server_errors]
        if problems:
            raise AssertionError("fake upstream saw malformed requests:\n  " + "\n  ".join(problems))

    def clear_violations(self) -> None:
        with self._lock:
            self._violations.clear()

    def reset(self) -> None:
        """Forget recorded requests, violations, queued scripts and counters (not accounts or tokens)."""
        with self._lock:
            self._requests.clear()
            self._violations.clear()
            self._server_errors.clear()
            self._queue.clear()
            self.connections = self.tls_handshakes = self.tls_handshake_failures = 0
            self.token_calls = self.idle_closes = 0
            self.token_calls_by_grant.clear()

    @property
    def open_connections(self) -> int:
        with self._lock:
            return sum(1 for c in self._conns.values() if not c.closed)

    # ----------------------------------------------------------------- connection bookkeeping

    def _on_accept(self, sock: socket.socket) -> _Conn:
        with self._lock:
            self.connections += 1
            conn = _Conn(self.connections, sock)
            self._conns[conn.id] = conn
            return conn

    def _track_thread(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)

    def _close_conn(self, conn: _Conn, *, reset: bool = False) -> None:
        """Close a client socket exactly once (under the lock, so stop() never touches a reused fd)."""
        with self._lock:
            if conn.closed:
                return
            conn.closed = True
            self._conns.pop(conn.id, None)
            sock = conn.sock
            try:
                if reset:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    socket.socket.shutdown(sock, socket.SHUT_WR)
            except OSError:
                pass
            try:
                sock.close()
            except OSError:
                pass

    def _violation(self, ex: _Exchange | None, check: str, message: str) -> None:
        where = f"{ex.record.method} {ex.record.path}: " if ex is not None else ""
        with self._lock:
            self._violations.append(f"[{check}] {where}{message}")

    def _internal_error(self, text: str) -> None:
        with self._lock:
            self._server_errors.append(text)

    def _record(self, handler: _Handler, body: bytes) -> RecordedRequest:
        split = urllib.parse.urlsplit(handler.path)
        headers = Headers(handler.headers.items())
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        parsed_json = form = None
        if content_type == "application/x-www-form-urlencoded":
            form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        elif body:
            try:
                parsed_json = orjson.loads(body)
            except orjson.JSONDecodeError:
                parsed_json = None
        with self._lock:
            record = RecordedRequest(
                seq=len(self._requests) + 1,
                method=handler.command,
                target=handler.path,
                path=split.path,
                query=dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True)),
                headers=headers,
                body=body,
                json=parsed_json,
                form=form,
                connection_id=handler.conn.id,
                tls=handler.conn.tls,
            )
            self._requests.append(record)
        return record

    def _route(self, method: str, path: str) -> Callable[[_Exchange], None]:
        if method == "GET" and path.startswith("/v1internal/operations/"):
            return self._h_operation
        return self._routes.get((method, path), self._h_not_found)

    # ----------------------------------------------------------------- shared request steps

    def _authenticate(self, ex: _Exchange) -> FakeAccount | None:
        """The bearer's account, or None after answering 401. A missing or non-Bearer
        Authorization header is also a violation; an unknown/expired/revoked token is not."""
        auth = ex.record.header("Authorization")
        match = re.fullmatch(r"[Bb]earer +(\S+)", auth or "")
        if match is None:
            self._violation(ex, "check_authorization", f"Authorization header missing or not Bearer: {auth!r}")
            ex.send_error_reply(scripts.unauthenticated())
            return None
        with self._lock:
            grant = self._access.get(match.group(1))
            valid = grant is not None and not grant.revoked and grant.expires_at > time.monotonic()
            account = self._accounts.get(grant.email) if grant is not None else None
        if not valid or account is None:
            ex.send_error_reply(scripts.unauthenticated())
            return None
        ex.record.account = account.email
        return account

    def _api_preamble(self, ex: _Exchange) -> tuple[FakeAccount, dict[str, Any]] | None:
        """Auth, User-Agent, Content-Type and a JSON object body, for v1internal POSTs."""
        account = self._authenticate(ex)
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
        return account, ex.record.json

    def _check_project_owner(self, ex: _Exchange, account: FakeAccount, project: Any) -> bool:
        """With strict_project, a project in the body must be the account's own. The real
        answer for a foreign project is not documented; we send a 403 PERMISSION_DENIED."""
        if not self.strict_project or project is None or project == account.project:
            return True
        ex.reject(Rejection(
            f"Permission denied on resource project {project} (account {account.email} has project "
            f"{account.project!r})", 403, check="check_project_owner"))
        return False

    # ----------------------------------------------------------------- handlers

    def _h_not_found(self, ex: _Exchange) -> None:
        ex.reject(Rejection(f"The requested URL {ex.record.path} was not found (method {ex.record.method}).",
                            404, check="check_known_path"))

    def _h_auth(self, ex: _Exchange) -> None:
        q = ex.record.query
        problem = _check_auth_query(q)
        if problem is not None:
            error, detail = problem
            self._violation(ex, "check_auth_request", f"{error}: {detail}")
            page = f"<!DOCTYPE html><html><body><h1>Error 400: {error}</h1><p>{detail}</p></body></html>"
            ex.send(400, page.encode(), "text/html; charset=utf-8")
            return
        with self._lock:
            email = self.next_login_email or next(iter(self._accounts), None)
            known = email in self._accounts
        if not known:
            self._violation(ex, "fake_configuration", f"next_login_email {email!r} is not an account")
            ex.send(500, b"no such fake account", "text/plain")
            return
        with self._lock:
            if self.next_login_error:
                params = {"error": self.next_login_error, "state": q["state"]}
            else:
                code = "4/0A" + secrets.token_urlsafe(32)
                self._codes[code] = _AuthCode(email, q["client_id"], q["redirect_uri"], q.get("code_challenge"),
                                              time.monotonic())
                params = {"code": code, "state": q["state"], "scope": SCOPE}
        redirect = q["redirect_uri"]
        location = redirect + ("&" if "?" in redirect else "?") + urllib.parse.urlencode(
            params, safe="/:", quote_via=urllib.parse.quote)
        ex.record.account = email
        ex.send(302, b"", "text/html; charset=utf-8", headers=[("Location", location)])

    def _h_token(self, ex: _Exchange) -> None:
        form = ex.record.form or {}
        grant_type = form.get("grant_type", "")
        with self._lock:
            self.token_calls += 1
            self.token_calls_by_grant[grant_type] += 1
        if self.token_delay:
            ex.wait(seconds=self.token_delay)

        def oauth_error(status: int, error: str, description: str, check: str | None = None) -> None:
            if check:
                self._violation(ex, check, f"{error}: {description}")
            ex.send_json(status, {"error": error, "error_description": description}, content_type="application/json; charset=utf-8")

        if ex.record.form is None:
            return oauth_error(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded",
                               "check_token_content_type")
        if not grant_type:
            return oauth_error(400, "invalid_request", "Missing required parameter: grant_type", "check_token_request")
        if grant_type not in ("authorization_code", "refresh_token"):
            return oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}", "check_token_request")
        client_id = form.get("client_id")
        if not client_id:
            return oauth_error(400, "invalid_request", "Could not determine client ID from request.", "check_token_client")
        if client_id not in KNOWN_CLIENTS:
            return oauth_error(401, "invalid_client", "The OAuth client was not found.", "check_token_client")
        if "client_secret" not in form or not form["client_secret"]:
            return oauth_error(400, "invalid_request", "client_secret is missing.", "check_token_client")
        if not hmac_equal(form["client_secret"], KNOWN_CLIENTS[client_id]):
            return oauth_error(401, "invalid_client", "Unauthorized", "check_token_client")

        if grant_type == "refresh_token":
            token = form.get("refresh_token")
            if not token:
                return oauth_error(400, "invalid_request", "Missing required parameter: refresh_token", "check_token_request")
            with self._lock:
                grant = self._refresh.get(token)
                usable = grant is not None and not grant.revoked
                same_client = usable and grant.client_id == client_id  # type: ignore[union-attr]
                access = self._mint_access(grant.email, client_id) if same_client else None  # type: ignore[union-attr]
            if not usable:
                ex.send(400, scripts.fixture_bytes(INVALID_GRANT_FIXTURE), "application/json; charset=utf-8")
                return None
            ex.record.account = grant.email  # type: ignore[union-attr]
            if access is None:  # a refresh token only works with the client that minted it
                return oauth_error(401, "unauthorized_client", "Unauthorized")
            return ex.send_json(200, {"access_token": access, "expires_in": int(self.access_token_lifetime),
                                      "scope": SCOPE, "token_type": "Bearer"},
                                content_type="application/json; charset=utf-8")

        code = form.get("code")
        if not code:
            return oauth_error(400, "invalid_request", "Missing required parameter: code", "check_token_request")
        with self._lock:
            entry = self._codes.get(code)
            verifier = form.get("code_verifier")
            failure: tuple[int, str, str, str | None] | None = None
            if entry is None or time.monotonic() - entry.issued_at > AUTH_CODE_LIFETIME:
                failure = (400, "invalid_grant", "Malformed auth code.", None)
            elif entry.used:
                failure = (400, "invalid_grant", "Bad Request", "check_code_reuse")
            elif entry.client_id != client_id:
                failure = (400, "invalid_grant", "Bad Request", "check_code_client")
            elif form.get("redirect_uri") != entry.redirect_uri:
                failure = (400, "redirect_uri_mismatch", "Bad Request", "check_code_redirect_uri")
            elif entry.challenge is not None and not verifier:
                failure = (400, "invalid_grant", "Missing code verifier.", "check_pkce")
            elif entry.challenge is not None and s256(verifier or "") != entry.challenge:
                failure = (400, "invalid_grant", "Invalid code verifier.", "check_pkce")
            elif entry.challenge is None and verifier:
                failure = (400, "invalid_request", "code_verifier or verifier is not needed.", "check_pkce")
            if failure is None:
                assert entry is not None
                entry.used = True
                account = self._accounts[entry.email]
                current = self._refresh.get(account.refresh_token)
                if current is None or current.revoked or current.client_id != client_id:
                    # re-consent after a revocation (or another client) mints a fresh refresh token
                    account.refresh_token = "1//fake-" + secrets.token_urlsafe(24)
                    self._refresh[account.refresh_token] = _RefreshGrant(account.email, client_id)
                body = {
                    "access_token": self._mint_access(account.email, client_id),
                    "expires_in": int(self.access_token_lifetime),
                    "refresh_token": account.refresh_token,
                    "scope": SCOPE,
                    "token_type": "Bearer",
                    "id_token": _id_token(account, client_id),
                }
        if failure is not None:
            return oauth_error(*failure)
        ex.record.account = account.email
        ex.send_json(200, body, content_type="application/json; charset=utf-8")
        return None

    def _h_userinfo(self, ex: _Exchange) -> None:
        account = self._authenticate(ex)
        if account is None:
            return
        ex.send_json(200, {"id": account.user_id, "email": account.email, "verified_email": True,
                           "name": account.name, "picture": account.picture})

    def _h_load_code_assist(self, ex: _Exchange) -> None:
        pre = self._api_preamble(ex)
        if pre is None:
            return
        account, body = pre
        problem = check_load_code_assist(body)
        if problem:
            ex.reject(replace(problem, check="check_load_code_assist"))
            return
        with self._lock:
            reply: dict[str, Any] = {}
            if account.project:
                reply["currentTier"] = tier_object(account.tier)
            reply["allowedTiers"] = [tier_object(account.tier, is_default=True)]
            if account.project:
                reply["cloudaicompanionProject"] = account.project
            if account.paid_tier:
                reply["paidTier"] = tier_object(account.paid_tier)
            reply["gcpManaged"] = False
        ex.send_json(200, reply)

    def _h_onboard_user(self, ex: _Exchange) -> None:
        pre = self._api_preamble(ex)
        if pre is None:
            return
        account, body = pre
        problem = check_onboard_user(body, [account.tier])
        if problem:
            ex.reject(replace(problem, check="check_onboard_user"))
            return
        with self._lock:
            op = next((o for o in self._operations.values() if o.email == account.email), None)
            if op is None:
                op = _Operation(f"operations/onboard-{secrets.token_hex(6)}", account.email)
                self._operations[op.name] = op
            reply = self._poll(op)
        ex.send_json(200, reply)

    def _h_operation(self, ex: _Exchange) -> None:
        account = self._authenticate(ex)
        if account is None:
            return
        name = ex.record.path.removeprefix("/v1internal/")
        with self._lock:
            op = self._operations.get(name)
            reply = self._poll(op) if op is not None and op.email == account.email else None
        if reply is None:
            ex.reject(Rejection(f"operation {name} not found", 404, check="check_operation_name"))
        else:
            ex.send_json(200, reply)

    def _poll(self, op: _Operation) -> dict[str, Any]:
        """One look at the onboarding LRO: done:false for the first onboard_polls looks."""
        account = self._accounts[op.email]
        op.polls += 1
        if account.project is None and op.polls <= account.onboard_polls:
            return {"name": op.name, "done": False}
        if account.project is None and account.onboard_project:
            account.project = account.onboard_project
        response: dict[str, Any] = {}
        if account.project:
            response["cloudaicompanionProject"] = {"id": account.project, "name": account.project}
        return {"name": op.name, "done": True, "response": response}

    def _h_fetch_models(self, ex: _Exchange) -> None:
        pre = self._api_preamble(ex)
        if pre is None:
            return
        account, body = pre
        for key in body:
            if key != "project":
                ex.reject(Rejection(unknown_name(key), check="check_fetch_models"))
                return
        if "project" in body and not isinstance(body["project"], str):
            ex.reject(Rejection(_invalid_value("project", body["project"]), check="check_fetch_models"))
            return
        if not self._check_project_owner(ex, account, body.get("project")):
            return
        ex.send_json(200, self._models_for(account))

    def _models_for(self, account: FakeAccount) -> dict[str, Any]:
        """The real fixture's inner `response` (verbatim; its resetTimes are the capture's),
        plus the synthesized rows, plus this account's quota overrides."""
        catalog = scripts.fixture_json(FETCH_MODELS_FIXTURE)["response"]
        models = catalog["models"]
        reset = _rfc3339(5 * 3600)
        for model_id, row in SYNTHESIZED_MODEL_ROWS.items():
            if model_id not in models:
                row = copy.deepcopy(row)
                row["quotaInfo"] = {"remainingFraction": 1, "resetTime": reset}
                models[model_id] = row
        with self._lock:
            overrides = dict(account.quota)
        for model_id, (fraction, reset_time) in overrides.items():
            row = models.setdefault(model_id, {"displayName": model_id, "model": "MODEL_UNSPECIFIED", **_GEMINI})
            info = row.get("quotaInfo", {})
            new_info: dict[str, Any] = {}
            if fraction is not None:
                new_info["remainingFraction"] = fraction
            if reset_time is not None:
                new_info["resetTime"] = reset_time
            elif "resetTime" in info:
                new_info["resetTime"] = info["resetTime"]
            row["quotaInfo"] = new_info
        return catalog

    def _h_count_tokens(self, ex: _Exchange) -> None:
        pre = self._api_preamble(ex)
        if pre is None:
            return
        _account, body = pre
        if not isinstance(body.get("request"), dict):
            ex.reject(Rejection("countTokens needs a `request` object", check="check_count_tokens"))
            return
        # A crude deterministic estimate (see count_text_tokens), not the real tokenizer.
        ex.send_json(200, {"totalTokens": count_text_tokens(body["request"])})

    def _h_generate(self, ex: _Exchange, *, stream: bool) -> None:
        ex.stream_endpoint = stream
        pre = self._api_preamble(ex)
        if pre is None:
            return
        account, env = pre
        if stream and ex.record.query.get("alt", ex.record.query.get("$alt")) != "sse":
            ex.reject(Rejection("streamGenerateContent must be called with ?alt=sse", check="check_alt_sse"))
            return
        problem = validate_generation(env)
        if problem is not None:
            ex.reject(problem)
            return
        if not self._check_project_owner(ex, account, env["project"]):
            return
        request = env["request"]
        prompt = count_text_tokens(request.get("contents")) + count_text_tokens(
            _either(request, "systemInstruction", "system_instruction"))
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


def hmac_equal(a: str, b: str) -> bool:
    return secrets.compare_digest(a.encode(), b.encode())


def s256(verifier: str) -> str:
    """PKCE S256: base64url(sha256(verifier)) without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


_PKCE_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")


def _check_auth_query(q: dict[str, str]) -> tuple[str, str] | None:
    """What Google's consent page would refuse in an authorization request (doc §1.3)."""
    for param in ("client_id", "redirect_uri", "response_type", "scope", "state"):
        if not q.get(param):
            return "invalid_request", f"Missing required parameter: {param}"
    if q["client_id"] not in KNOWN_CLIENTS:
        return "invalid_client", "The OAuth client was not found."
    target = urllib.parse.urlsplit(q["redirect_uri"])
    if target.scheme not in ("http", "https") or not target.hostname:
        return "invalid_request", f"Invalid parameter value for redirect_uri: {q['redirect_uri']}"
    if q["response_type"] != "code":
        return "unsupported_response_type", f"Invalid response_type: {q['response_type']}"
    if q["scope"] != SCOPE:
        return "invalid_scope", f"scope must be exactly the five Antigravity scopes in order, got {q['scope']!r}"
    if q.get("access_type") != "offline":
        return "invalid_request", f"access_type must be offline, got {q.get('access_type')!r}"
    if q.get("prompt") != "consent":
        return "invalid_request", f"prompt must be consent, got {q.get('prompt')!r}"
    challenge, method = q.get("code_challenge"), q.get("code_challenge_method")
    if challenge is None and method is not None:
        return "invalid_request", "code_challenge_method without code_challenge"
    if challenge is not None:
        if method != "S256":
            return "invalid_request", f"code_challenge_method must be S256, got {method!r}"
        if not _PKCE_CHALLENGE.fullmatch(challenge):
            return "invalid_request", "code_challenge must be base64url(sha256(verifier)) without padding (43 chars)"
    return None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _id_token(account: FakeAccount, client_id: str) -> str:
    """An id_token-shaped JWT with a fake signature (nobody should verify it)."""
    now = int(time.time())
    header = {"alg": "RS256", "kid": "fake-upstream", "typ": "JWT"}
    claims = {"iss": "https://accounts.google.com", "azp": client_id, "aud": client_id, "sub": account.user_id,
              "email": account.email, "email_verified": True, "name": account.name, "picture": account.picture,
              "iat": now, "exp": now + 3599}
    return ".".join([_b64url(orjson.dumps(header)), _b64url(orjson.dumps(claims)), _b64url(b"fake-signature")])


# --------------------------------------------------------------------------- HTTP plumbing


class _Exchange:
    """One request/response on a connection: the sending side of the handlers."""

    def __init__(self, handler: _Handler, record: RecordedRequest) -> None:
        self.h = handler
        self.record = record
        self.fake: FakeUpstream = handler.server.fake  # type: ignore[attr-defined]
        self.stream_endpoint = False
        self.trace_id = secrets.token_hex(8)

    # plain responses

    def _start(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        self.record.status = status  # set before any byte leaves, so a fast client never sees it stale
        self.h.send_response(status)
        for name, value in headers:
            self.h.send_header(name, value)
        self.h.end_headers()

    def send(self, status: int, body: bytes, content_type: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers]
        if not body:
            self.record.outcome = "complete"
        self._start(status, headers)
        self.record.outcome = "complete"  # before the last write; a failing write turns it into client_closed
        self.write(body)

    def send_json(self, status: int, obj: Any, *, content_type: str = JSON_TYPE) -> None:
        body = orjson.dumps(obj)
        headers: list[tuple[str, str]] = []
        if self.record.path.startswith("/v1internal"):
            headers.append((TRACE_HEADER, self.trace_id))
        accepts = (self.record.header("Accept-Encoding") or "").lower()
        if status == 200 and self.fake.gzip_json and "gzip" in accepts:
            body = gzip.compress(body, mtime=0)
            headers.append(("Content-Encoding", "gzip"))
        self.send(status, body, content_type, headers)

    def error_content_type(self) -> str:
        # Non-200 answers on the stream endpoint are plain JSON labelled text/event-stream (doc §4.11).
        return SSE_TYPE if self.stream_endpoint else JSON_TYPE

    def send_error_reply(self, reply: ErrorReply) -> None:
        headers = [*reply.headers]
        if self.record.path.startswith("/v1internal"):
            headers.append((TRACE_HEADER, self.trace_id))
        self.send(reply.status, reply.body, self.error_content_type(), headers)

    def reject(self, rejection: Rejection) -> None:
        """Record a violation and answer with the rejection's body."""
        self.fake._violation(self, rejection.check or "check", rejection.message)
        self.send_error_reply(ErrorReply(rejection.status, rejection.body_bytes()))

    # streaming

    def write(self, data: bytes) -> None:
        if self.h.command == "HEAD" or not data:
            return
        try:
            self.h.wfile.write(data)
        except OSError as exc:
            self.record.outcome = "client_closed"
            raise _Aborted("client went away") from exc

    def write_chunk(self, data: bytes) -> None:
        self.write(b"%x\r\n%b\r\n" % (len(data), data))

    def event_bytes(self, response: dict[str, Any]) -> bytes:
        envelope = {"response": response, "traceId": self.trace_id, "metadata": {}}
        eol = self.fake.sse_eol.encode()
        return b"data: " + orjson.dumps(envelope) + eol + eol

    def send_sse(self, items: list[scripts.RenderItem]) -> None:
        started = False

        def start() -> None:
            nonlocal started
            if not started:
                started = True
                self._start(200, [("Content-Type", SSE_TYPE), ("Transfer-Encoding", "chunked"),
                                  (TRACE_HEADER, self.trace_id)])

        for index, item in enumerate(items):
            if isinstance(item, Pause):
                self.wait(seconds=item.seconds)
            elif isinstance(item, Gate):
                if item.reached is not None:
                    item.reached.set()
                self.wait(event=item.release)
            elif isinstance(item, FlushHeaders):
                start()
            elif isinstance(item, CutMidEvent):
                start()
                following = next((i for i in items[index + 1:] if isinstance(i, dict)), None)
                line = self.event_bytes(following or {"candidates": [{"content": {"role": "model",
                                                                                  "parts": [{"text": "cut"}]}}]})
                self.write_chunk(line[: len(line) // 2])
                self.abort()
            else:
                start()
                data = self.event_bytes(item)
                if self.fake.split_events:
                    half = len(data) // 2
                    self.write_chunk(data[:half])
                    self.write_chunk(data[half:])
                else:
                    self.write_chunk(data)
        start()
        self.record.outcome = "complete"  # before the last write; a failing write turns it into client_closed
        self.write(b"0\r\n\r\n")

    def send_unary(self, items: list[scripts.RenderItem]) -> None:
        chunks: list[dict[str, Any]] = []
        cut = False
        for item in items:
            if isinstance(item, Pause):
                self.wait(seconds=item.seconds)
            elif isinstance(item, Gate):
                if item.reached is not None:
                    item.reached.set()
                self.wait(event=item.release)
            elif isinstance(item, CutMidEvent):
                cut = True
            elif isinstance(item, dict):
                chunks.append(item)
        body = orjson.dumps({"response": scripts.aggregate(chunks), "traceId": self.trace_id, "metadata": {}})
        if cut:
            self._start(200, [("Content-Type", JSON_TYPE), ("Content-Length", str(len(body))),
                              (TRACE_HEADER, self.trace_id)])
            self.write(body[: len(body) // 2])
            self.abort()
        self.send(200, body, JSON_TYPE, [(TRACE_HEADER, self.trace_id)])

    def abort(self) -> None:
        """Reset the TCP connection now (SO_LINGER 0): no terminating chunk, no FIN."""
        self.h.close_connection = True
        self.record.outcome = "cut"
        try:
            self.h.rfile.close()  # drop makefile's reference so close() really closes the fd
        except OSError:
            pass
        self.fake._close_conn(self.h.conn, reset=True)
        raise _Aborted("connection cut on purpose")

    def wait(self, *, seconds: float | None = None, event: threading.Event | None = None) -> None:
        """Sleep until `seconds` pass or `event` is set; give up if the fake stops or the peer
        closes (peer EOF is only visible on plain TCP: under TLS we cannot peek below the
        record layer, so a gone TLS client is noticed at the next write)."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            if event is not None and event.is_set():
                return
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return
            if self.fake._stopping.is_set():
                self.record.outcome = "aborted"
                raise _Aborted("fake stopping")
            if self._peer_closed():
                self.record.outcome = "client_closed"
                raise _Aborted("client went away")
            step = POLL_INTERVAL if deadline is None else min(POLL_INTERVAL, deadline - now)
            if event is not None:
                event.wait(step)
            else:
                time.sleep(step)

    def _peer_closed(self) -> bool:
        sock = self.h.connection
        if isinstance(sock, ssl.SSLSocket):
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            return sock.recv(1, socket.MSG_PEEK) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except (OSError, ValueError):
            return True


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ESF"
    disable_nagle_algorithm = True
    server: _Server

    def __init__(self, request: socket.socket, client_address: Any, server: _Server, conn: _Conn) -> None:
        self.conn = conn
        super().__init__(request, client_address, server)

    def version_string(self) -> str:
        return "ESF"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except (_Aborted, OSError):
            self.close_connection = True

    def handle_one_request(self) -> None:
        fake = self.server.fake
        try:
            self.connection.settimeout(fake.idle_timeout)
            self.raw_requestline = self.rfile.readline(65537)
            self.connection.settimeout(None)
        except TimeoutError:
            with fake._lock:
                fake.idle_closes += 1
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if not self.parse_request():
            return
        self._dispatch()
        self.wfile.flush()

    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = bytearray()
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    self.send_error(400, "bad chunk size")
                    self.close_connection = True
                    return None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline(3)
                if len(body) > MAX_BODY_BYTES:
                    self.send_error(413)
                    self.close_connection = True
                    return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.send_error(400 if length < 0 else 413)
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            return
        fake = self.server.fake
        if urllib.parse.urlsplit(self.path).path == "/health":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            return
        record = fake._record(self, body)
        exchange = _Exchange(self, record)
        try:
            fake._route(self.command, record.path)(exchange)
        except _Aborted:
            self.close_connection = True
            raise
        except OSError:  # the client went away while we wrote (e.g. the status line)
            if record.outcome != "cut":
                record.outcome = "client_closed"
            self.close_connection = True
        except Exception:
            fake._internal_error(f"{record.method} {record.path}: {traceback.format_exc()}")
            if record.status is None:
                exchange.send(500, b'{"error":{"code":500,"message":"fake upstream bug","status":"INTERNAL"}}',
                              JSON_TYPE)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, fake: FakeUpstream) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)  # type: ignore[arg-type]

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # skip HTTPServer's getfqdn (slow reverse DNS)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        return self.fake._on_accept(sock), address

    def process_request(self, request: Any, client_address: Any) -> None:
        conn: _Conn = request
        thread = threading.Thread(target=self._serve_connection, args=(conn, client_address),
                                  name=f"fake-upstream-conn-{conn.id}", daemon=True)
        self.fake._track_thread(thread)
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        self.fake._close_conn(request)

    def _serve_connection(self, conn: _Conn, client_address: Any) -> None:
        fake = self.fake
        try:
            if fake.ssl_context is not None:
                with fake._lock:
                    if conn.closed:
                        return
                    conn.sock.settimeout(HANDSHAKE_TIMEOUT)
                    conn.sock = fake.ssl_context.wrap_socket(conn.sock, server_side=True,
                                                             do_handshake_on_connect=False)
                    conn.tls = True
                try:
                    conn.sock.do_handshake()  # type: ignore[attr-defined]
                except (OSError, ValueError):
                    with fake._lock:
                        fake.tls_handshake_failures += 1
                    return
                conn.sock.settimeout(None)
                with fake._lock:
                    fake.tls_handshakes += 1
            _Handler(conn.sock, client_address, self, conn)
        except Exception:
            fake._internal_error(traceback.format_exc())
        finally:
            fake._close_conn(conn)
