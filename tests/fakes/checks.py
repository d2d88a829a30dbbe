"""What the fake upstream refuses in a Cloud Code request body, and why.

Each check is a small function that returns None or a `Rejection`: the message for
`fake.violations` plus the answer Google would send (doc §4, §8). The generation checks run in
`GENERATION_CHECKS` order; `validate_generation` names the failing one. Also here: the
loadCodeAssist / onboardUser / fetchAvailableModels body checks and the client-version gate.
Pure functions, no sockets.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from . import scripts

PREFILL_FIXTURE = "error.400.INVALID_ARGUMENT.claude-prefill-not-supported.json"
EMPTY_PROJECT_FIXTURE = "error.500.INTERNAL.empty-project.json"


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


# --------------------------------------------------------------------------- proto-JSON wording


def unknown_name(key: str, at: str | None = None) -> str:
    """Proto-JSON's answer to a field it does not know."""
    where = f" at '{at}'" if at else ""
    return f'Invalid JSON payload received. Unknown name "{key}"{where}: Cannot find field.'


def _invalid_value(path: str, value: Any) -> str:
    """Proto-JSON's answer to a value of the wrong type."""
    shown = orjson.dumps(value).decode()[:60]
    return f"Invalid value at '{path}', {shown}"


def _reject_unknown_keys(obj: dict[str, Any], allowed: Collection[str], at: str | None = None) -> Rejection | None:
    """The first key of `obj` that is not in `allowed`, as proto-JSON's unknown-name error."""
    for key in obj:
        if key not in allowed:
            return _bad(unknown_name(key, at))
    return None


def _either(obj: dict[str, Any], camel: str, snake: str) -> Any:
    """A field under either proto-JSON spelling."""
    return obj.get(camel, obj.get(snake))


def system_instruction(request: dict[str, Any]) -> Any:
    return _either(request, "systemInstruction", "system_instruction")


# --------------------------------------------------------------------------- generation envelope

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
_CONTENT_KEYS = ("role", "parts")
_PART_DATA = {
    "text": "text",
    "inlineData": "inlineData", "inline_data": "inlineData",
    "fileData": "fileData", "file_data": "fileData",
    "functionCall": "functionCall", "function_call": "functionCall",
    "functionResponse": "functionResponse", "function_response": "functionResponse",
}
_PART_EXTRA = {"thought": "thought", "thoughtSignature": "thoughtSignature", "thought_signature": "thoughtSignature"}
_PART_DATA_KEYS = {
    "functionCall": frozenset({"name", "args", "id"}),
    "functionResponse": frozenset(
        {"name", "response", "id", "parts", "willContinue", "will_continue", "scheduling"}),
    "inlineData": frozenset({"mimeType", "mime_type", "data", "displayName", "display_name"}),
    "fileData": frozenset({"mimeType", "mime_type", "fileUri", "file_uri", "displayName", "display_name"}),
}
_SNAKE = {"inlineData": "inline_data", "fileData": "file_data", "functionCall": "function_call",
          "functionResponse": "function_response"}


def _request(env: dict[str, Any]) -> dict[str, Any]:
    return env["request"]


def _require_non_empty_string(env: dict[str, Any], key: str) -> Rejection | None:
    value = env.get(key)
    if not isinstance(value, str) or not value:
        return _bad(f"{key} must be a non-empty string, got {value!r}")
    return None


def check_top_level_keys(env: dict[str, Any]) -> Rejection | None:
    """Only envelope keys at the root; client-API fields (messages, max_tokens,
    anthropic_version, system, snake-case system_instruction) are unknown names (doc §8)."""
    return _reject_unknown_keys(env, ENVELOPE_KEYS)


def check_project_type(env: dict[str, Any]) -> Rejection | None:
    """`project` is present and a string (emptiness is check_project_not_empty's job)."""
    if "project" not in env:
        return _bad("project is required in the v1internal envelope")
    if not isinstance(env["project"], str):
        return _bad(_invalid_value("project", env["project"]))
    return None


def check_model(env: dict[str, Any]) -> Rejection | None:
    """`model` is a non-empty string."""
    return _require_non_empty_string(env, "model")


def check_user_agent_field(env: dict[str, Any]) -> Rejection | None:
    """The envelope's `userAgent` is the literal "antigravity" (not the HTTP UA, doc §4.1)."""
    if env.get("userAgent") != "antigravity":
        return _bad(f'userAgent must be "antigravity", got {env.get("userAgent")!r}')
    return None


def check_request_id(env: dict[str, Any]) -> Rejection | None:
    """`requestId` is a non-empty string."""
    return _require_non_empty_string(env, "requestId")


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
    return _reject_unknown_keys(req, REQUEST_KEYS, "request")


def check_contents(env: dict[str, Any]) -> Rejection | None:
    """`request.contents`: a non-empty list of {role: user|model, parts: [valid part, ...]}."""
    contents = _request(env).get("contents")
    if not isinstance(contents, list) or not contents:
        return _bad("Unable to submit request because it must include at least one contents field.")
    for i, content in enumerate(contents):
        path = f"request.contents[{i}]"
        if not isinstance(content, dict):
            return _bad(_invalid_value(path, content))
        problem = _reject_unknown_keys(content, _CONTENT_KEYS, path)
        if problem:
            return problem
        if content.get("role") not in ROLES:
            return _bad(f"Please use a valid role: user, model. ({path}.role = {content.get('role')!r})")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return _bad(
                "Unable to submit request because it must include at least one parts field, "
                f"which describes the prompt input. ({path})"
            )
        problem = _check_parts(parts, path)
        if problem:
            return problem
    return None


def _check_parts(parts: list[Any], path: str) -> Rejection | None:
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
    problem = _reject_unknown_keys(value, _PART_DATA_KEYS[kind], sub)  # e.g. thoughtSignature inside functionCall
    if problem:
        return problem
    return _check_part_data(kind, value, sub)


def _check_part_data(kind: str, value: dict[str, Any], sub: str) -> Rejection | None:
    """The required fields of a non-text part's data object."""
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
    value = system_instruction(req)
    path = "request.system_instruction"
    if not isinstance(value, dict):
        # modelled on proto-JSON's type error for a Content field
        return _bad(f"Invalid value at '{path}' (type.googleapis.com/google.cloud.aiplatform.v1.Content), "
                    f"{orjson.dumps(value).decode()[:60]}")
    problem = _reject_unknown_keys(value, _CONTENT_KEYS, path)
    if problem:
        return problem
    parts = value.get("parts")
    if not isinstance(parts, list) or not parts:
        return _bad(f"{path}.parts must be a non-empty list")
    return _check_parts(parts, path)


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
        return _bad('project is "" (the real upstream answers 500 INTERNAL)', 500,
                    scripts.fixture_bytes(EMPTY_PROJECT_FIXTURE))
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


# --------------------------------------------------------------------------- client identity lines

IDENTITY_FIXTURE = "error.429.RESOURCE_EXHAUSTED.bare-no-details.json"
# System-text markers that make Antigravity answer a fake bare 429 (client-protocols.md §2.3, §7.2,
# §10): Claude Code's volatile billing line and Codex's identity sentence.
CLIENT_IDENTITY_MARKERS = (
    "x-anthropic-billing-header:",
    "You are Codex, an agent based on GPT-5.",
)


def client_identity(request: dict[str, Any]) -> str | None:
    """The first identity marker found in the text of `request`'s systemInstruction, or None."""
    value = system_instruction(request)
    parts = value.get("parts") if isinstance(value, dict) else None
    text = "\n".join(p["text"] for p in parts or () if isinstance(p, dict) and isinstance(p.get("text"), str))
    return next((marker for marker in CLIENT_IDENTITY_MARKERS if marker in text), None)


def identity_rejection(marker: str) -> Rejection:
    """The answer to a client identity line in systemInstruction: the real bare 429
    RESOURCE_EXHAUSTED (no details, so it looks like quota); the daemon must strip or rewrite it."""
    return Rejection(f"systemInstruction carries the client identity line {marker!r} (upstream answers a "
                     "fake bare 429)", 429, scripts.fixture_bytes(IDENTITY_FIXTURE), "check_client_identity")


# --------------------------------------------------------------------------- setup calls

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
    problem = _reject_unknown_keys(body, ("metadata", "cloudaicompanionProject", "cloudaicompanion_project", "mode"))
    if problem:
        return problem
    if "metadata" in body:
        return check_client_metadata(body["metadata"])
    return None


def check_onboard_user(body: dict[str, Any], allowed_tiers: Sequence[str]) -> Rejection | None:
    """onboardUser body: tierId from allowedTiers and a metadata object (doc §3.2)."""
    problem = _reject_unknown_keys(
        body, ("tierId", "tier_id", "metadata", "cloudaicompanionProject", "cloudaicompanion_project"))
    if problem:
        return problem
    tier = _either(body, "tierId", "tier_id")
    if tier not in allowed_tiers:
        return _bad(f"tierId {tier!r} is not one of the allowedTiers {list(allowed_tiers)}")
    if "metadata" not in body:
        return _bad("metadata is required")
    return check_client_metadata(body["metadata"])


def check_fetch_models(body: dict[str, Any]) -> Rejection | None:
    """fetchAvailableModels body: at most a string `project` (doc §6.1)."""
    problem = _reject_unknown_keys(body, ("project",))
    if problem:
        return problem
    if "project" in body and not isinstance(body["project"], str):
        return _bad(_invalid_value("project", body["project"]))
    return None


def check_count_tokens(body: dict[str, Any]) -> Rejection | None:
    """countTokens body: a `request` object."""
    if not isinstance(body.get("request"), dict):
        return _bad("countTokens needs a `request` object")
    return None


# --------------------------------------------------------------------------- version gate

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
