"""A native Gemini generateContent request → the upstream request (pure).

The upstream speaks this format already (client-protocols.md §5.3), so the body passes
through with only what the upstream refuses or the daemon must decide: system text is a
Content (a plain string is rejected) without client identity lines, function schemas go
through the sanitiser (`parametersJsonSchema` becomes `parameters`), a thinking config
keeps either a level or a budget, never both, output is capped at the model's limit, and
only known fields are copied.
"""

from __future__ import annotations

from typing import Any

from ..upstream import models
from .conversation import invalid
from .schema import sanitize_schema
from .thinking import MAX_OUTPUT
from .upstream_request import session_id, system_text

COPIED = ("contents", "tools", "toolConfig", "safetySettings", "generationConfig", "systemInstruction")
SNAKE_CASE = {"system_instruction": "systemInstruction", "generation_config": "generationConfig",
              "tool_config": "toolConfig", "safety_settings": "safetySettings"}


def prepare(body: dict[str, Any], *, model: str, session_key: str, rewrites: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    body = {SNAKE_CASE.get(key, key): value for key, value in body.items()}
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise invalid("contents: must be a non-empty array of Content")
    request = {key: body[key] for key in COPIED if body.get(key) is not None}
    family = models.family(model)
    system = _system(body.get("systemInstruction"), rewrites)
    if system:
        request["systemInstruction"] = system
    else:
        request.pop("systemInstruction", None)
    if "tools" in request:
        request["tools"] = _tools(request["tools"], family)
    request["generationConfig"] = _generation_config(request.get("generationConfig"), model)
    request["sessionId"] = session_id(session_key)
    return request


def _system(instruction: Any, rewrites: tuple[tuple[str, str], ...]) -> dict[str, Any] | None:
    if instruction is None:
        return None
    if isinstance(instruction, str):
        instruction = {"parts": [{"text": instruction}]}
    if not isinstance(instruction, dict) or not isinstance(instruction.get("parts"), list):
        raise invalid("systemInstruction: must be a Content with parts")
    parts = []
    for part in instruction["parts"]:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            text = system_text(part["text"], rewrites)
            if text:
                parts.append({**part, "text": text})
        elif isinstance(part, dict):
            parts.append(part)
    return {"role": "user", "parts": parts} if parts else None


def _tools(tools: Any, family: str) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise invalid("tools: must be an array of Tool")
    declarations = [d for tool in tools if isinstance(tool, dict) for d in tool.get("functionDeclarations") or ()]
    if not declarations:
        return tools  # search, code execution … go as they are
    cleaned = []
    for declaration in declarations:
        if not isinstance(declaration, dict) or not declaration.get("name"):
            raise invalid("tools.functionDeclarations: each needs a name")
        declaration = dict(declaration)
        schema = declaration.pop("parametersJsonSchema", None) or declaration.get("parameters")
        declaration["parameters"] = sanitize_schema(schema if isinstance(schema, dict) else {"type": "object"},
                                                    for_claude=family == "claude")
        cleaned.append(declaration)
    return [{"functionDeclarations": cleaned}]  # other tool kinds cannot be combined with functions upstream


def _generation_config(config: Any, model: str) -> dict[str, Any]:
    config = dict(config) if isinstance(config, dict) else {}
    cap = MAX_OUTPUT[models.family(model)]
    limit = config.get("maxOutputTokens")
    config["maxOutputTokens"] = min(limit, cap) if isinstance(limit, int) and limit > 0 else cap
    thinking = config.get("thinkingConfig")
    if isinstance(thinking, dict) and "thinkingLevel" in thinking and "thinkingBudget" in thinking:
        thinking = dict(thinking)
        del thinking["thinkingBudget" if models.is_gemini3(model) else "thinkingLevel"]  # the upstream takes one
        config["thinkingConfig"] = thinking
    return config
