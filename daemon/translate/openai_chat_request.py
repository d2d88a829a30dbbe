"""OpenAI Chat Completions request → Conversation (pure).

Only the wire format is read here (client-protocols.md §3.2, §7); upstream_request.py
builds the upstream request. System and developer messages may come anywhere and join the
system text in order; `tool` messages become results matched by id (the builder orders
them by call); legacy `functions`/`function_call` are read as tools.
"""

from __future__ import annotations

from typing import Any

from .conversation import (
    Call,
    Conversation,
    Media,
    Part,
    Result,
    Text,
    Tool,
    call_arguments,
    data_url,
    effort_thinking,
    invalid,
    number,
    positive_int,
    text_of,
)


def parse(body: dict[str, Any]) -> Conversation:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages: must be a non-empty array", "messages")
    n = body.get("n")
    if n is not None and n != 1:
        raise invalid("n: only one choice per request is supported (n must be 1)", "n")
    max_tokens = positive_int(body, "max_completion_tokens") or positive_int(body, "max_tokens")
    conversation = Conversation(max_tokens=max_tokens, stream=body.get("stream") is True,
                                stop_sequences=_stop(body.get("stop")))
    legacy_calls: dict[str, str] = {}  # function name → id of its latest legacy call
    for index, message in enumerate(messages):
        _message(conversation, message, f"messages.{index}", legacy_calls)
    conversation.tools = _tools(body)
    conversation.tool_choice, conversation.forced_tool = _tool_choice(body.get("tool_choice", body.get("function_call")))
    conversation.thinking = effort_thinking(body.get("reasoning_effort"), "reasoning_effort")
    conversation.temperature = number(body, "temperature", 0, 2)
    conversation.top_p = number(body, "top_p", 0, 1)
    conversation.presence_penalty = number(body, "presence_penalty", -2, 2)
    conversation.frequency_penalty = number(body, "frequency_penalty", -2, 2)
    seed = body.get("seed")
    conversation.seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else None
    _response_format(conversation, body.get("response_format"))
    return conversation


def _message(conversation: Conversation, message: Any, where: str, legacy_calls: dict[str, str]) -> None:
    if not isinstance(message, dict):
        raise invalid(f"{where}: must be an object", where)
    role, content = message.get("role"), message.get("content")
    if role in ("system", "developer"):
        conversation.system.append(text_of(content, f"{where}.content"))
    elif role == "user":
        conversation.add("user", _user_content(content, f"{where}.content"))
    elif role == "assistant":
        parts: list[Part] = [Text(text_of(content, f"{where}.content"))]
        for position, call in enumerate(message.get("tool_calls") or ()):
            parts.append(_call(call, f"{where}.tool_calls.{position}"))
        legacy = message.get("function_call")
        if isinstance(legacy, dict) and legacy.get("name"):
            call_id = legacy_calls[str(legacy["name"])] = f"call_{where.replace('.', '_')}"
            parts.append(Call(call_id, str(legacy["name"]), call_arguments(legacy.get("arguments"))))
        conversation.add("model", parts)
    elif role == "tool":
        text = text_of(content, f"{where}.content")
        conversation.add("user", [Result(str(message.get("tool_call_id") or ""), text)])
    elif role == "function":
        call_id = legacy_calls.get(str(message.get("name")), "")
        conversation.add("user", [Result(call_id, text_of(content, f"{where}.content"))])
    else:
        raise invalid(f"{where}.role: must be system, developer, user, assistant or tool", f"{where}.role")


def _call(call: Any, where: str) -> Call:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not function.get("name"):
        raise invalid(f"{where}: a tool call needs a function with a name", where)
    google = ((call.get("extra_content") or {}).get("google") or {}) if isinstance(call.get("extra_content"), dict) else {}
    return Call(str(call.get("id") or ""), str(function["name"]), call_arguments(function.get("arguments")),
                str(google.get("thought_signature") or "") if isinstance(google, dict) else "")


def _user_content(content: Any, where: str) -> list[Part]:
    if isinstance(content, str):
        return [Text(content)]
    if not isinstance(content, list):
        raise invalid(f"{where}: must be a string or an array of parts", where)
    parts: list[Part] = []
    for position, part in enumerate(content):
        here = f"{where}.{position}"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append(Text(str(part.get("text") or "")))
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            parts.append(data_url(str(url or ""), f"{here}.image_url.url"))
        elif kind == "input_audio":
            audio = part.get("input_audio") if isinstance(part.get("input_audio"), dict) else {}
            parts.append(Media(f"audio/{audio.get('format') or 'wav'}", str(audio.get("data") or "")))
        elif kind == "file":
            file = part.get("file") if isinstance(part.get("file"), dict) else {}
            if not file.get("file_data"):
                raise invalid(f"{here}.file: only inline file_data is supported (no uploaded file ids)", here)
            parts.append(data_url(str(file["file_data"]), f"{here}.file.file_data"))
        else:
            raise invalid(f"{here}.type: unsupported content part {kind!r}", here)
    return parts


def _tools(body: dict[str, Any]) -> list[Tool]:
    tools: list[Tool] = []
    for position, tool in enumerate(body.get("tools") or ()):
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if function is None:
            continue  # custom and other tool types have no upstream equivalent
        tools.append(_tool(function, f"tools.{position}.function"))
    for position, function in enumerate(body.get("functions") or ()):
        tools.append(_tool(function, f"functions.{position}"))
    return tools


def _tool(function: Any, where: str) -> Tool:
    if not isinstance(function, dict) or not function.get("name"):
        raise invalid(f"{where}: must be an object with a name", where)
    schema = function.get("parameters")
    return Tool(str(function["name"]), str(function.get("description") or ""),
                schema if isinstance(schema, dict) else {"type": "object"})


def _tool_choice(choice: Any) -> tuple[str, str]:
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "allowed_tools":  # a subset of tools: the upstream can only force all or one
            allowed = choice.get("allowed_tools") if isinstance(choice.get("allowed_tools"), dict) else {}
            return ("any" if allowed.get("mode") == "required" else "auto"), ""
        function = choice.get("function") if isinstance(choice.get("function"), dict) else choice  # legacy function_call
        if kind in ("function", None) and function.get("name"):
            return "tool", str(function["name"])
        return "auto", ""
    return {"required": "any", "none": "none"}.get(str(choice), "auto"), ""


def _response_format(conversation: Conversation, response_format: Any) -> None:
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_object":
        conversation.json_output = True
    elif kind == "json_schema":
        spec = response_format.get("json_schema") if isinstance(response_format.get("json_schema"), dict) else {}
        schema = spec.get("schema")
        if not isinstance(schema, dict):
            raise invalid("response_format.json_schema.schema: must be a JSON schema object", "response_format")
        conversation.response_schema = schema


def _stop(stop: Any) -> tuple[str, ...]:
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,) if stop else ()
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise invalid("stop: must be a string or an array of strings", "stop")
    return tuple(s for s in stop if s)
