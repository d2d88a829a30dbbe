"""Anthropic Messages request → Conversation (pure).

Only the wire format is read here (client-protocols.md §2.3); upstream_request.py builds
the upstream request. Claude Code's `role: "system"` messages join the system text,
`cache_control` and other client-only fields are never copied, server tools are dropped
(the upstream cannot combine them with functions), and redacted thinking is dropped.
"""

from __future__ import annotations

from typing import Any

from .conversation import Call, Conversation, Media, Part, Result, Text, Thinking, Thought, Tool, invalid, number


def parse(body: Any) -> Conversation:
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages: must be a non-empty array")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise invalid("max_tokens: must be a positive integer")
    conversation = Conversation(max_tokens=max_tokens, stream=body.get("stream") is True,
                                stop_sequences=_stop_sequences(body))
    conversation.system = _system(body.get("system"))
    for index, message in enumerate(messages):
        _message(conversation, message, index)
    _tools(conversation, body.get("tools"))
    choice = body.get("tool_choice") if isinstance(body.get("tool_choice"), dict) else {}
    conversation.tool_choice = {"any": "any", "tool": "tool", "none": "none"}.get(str(choice.get("type")), "auto")
    conversation.forced_tool = str(choice.get("name") or "")
    conversation.thinking = _thinking(body)
    _output_format(conversation, body.get("output_config"))
    conversation.temperature = number(body, "temperature", 0, 1)
    conversation.top_p = number(body, "top_p", 0, 1)
    top_k = body.get("top_k")
    conversation.top_k = top_k if isinstance(top_k, int) and not isinstance(top_k, bool) else None
    return conversation


def _thinking(body: dict[str, Any]) -> Thinking:
    thinking = body.get("thinking") if isinstance(body.get("thinking"), dict) else {}
    output_config = body.get("output_config") if isinstance(body.get("output_config"), dict) else {}
    budget = thinking.get("budget_tokens")
    return Thinking(str(thinking.get("type") or "disabled"), budget if isinstance(budget, int) else None,
                    output_config.get("effort"))


def _output_format(conversation: Conversation, output_config: Any) -> None:
    """Structured output: `output_config.format` of type json_schema."""
    spec = output_config.get("format") if isinstance(output_config, dict) else None
    if isinstance(spec, dict) and spec.get("type") == "json_schema":
        if not isinstance(spec.get("schema"), dict):
            raise invalid("output_config.format.schema: must be a JSON schema object")
        conversation.response_schema = spec["schema"]


def _system(system: Any) -> list[str]:
    if system is None:
        return []
    if isinstance(system, str):
        return [system]
    if not isinstance(system, list):
        raise invalid("system: must be a string or an array of text blocks")
    return [str(block.get("text") or "") for block in system if isinstance(block, dict) and block.get("type") == "text"]


def _message(conversation: Conversation, message: Any, index: int) -> None:
    if not isinstance(message, dict) or message.get("role") not in ("user", "assistant", "system"):
        raise invalid(f"messages.{index}.role: must be user or assistant")
    content = message.get("content")
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    if not isinstance(blocks, list):
        raise invalid(f"messages.{index}.content: must be a string or an array of blocks")
    if message["role"] == "system":  # Claude Code 2.1 sends these inside messages
        conversation.system += _system(blocks)
    elif message["role"] == "assistant":
        conversation.add("model", [part for block in blocks for part in _assistant_part(block)])
    else:
        conversation.add("user", [part for position, block in enumerate(blocks)
                                  for part in _user_part(block, f"messages.{index}.content.{position}")])


def _assistant_part(block: Any) -> list[Part]:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind == "text" and block.get("text"):
        return [Text(str(block["text"]))]
    if kind == "thinking" and block.get("signature"):
        return [Thought(str(block.get("thinking") or ""), str(block["signature"]))]
    if kind == "tool_use":
        arguments = block.get("input")
        return [Call(str(block.get("id") or ""), str(block.get("name") or ""), arguments if isinstance(arguments, dict) else {})]
    return []  # redacted thinking, server-tool blocks, unknown kinds


def _user_part(block: Any, where: str) -> list[Part]:
    if not isinstance(block, dict):
        raise invalid(f"{where}: must be an object")
    kind = block.get("type")
    if kind == "tool_result":
        text, media = _result_content(block.get("content"), where)
        return [Result(str(block.get("tool_use_id") or ""), text, bool(block.get("is_error")), tuple(media))]
    return _content_part(block, where)


def _result_content(content: Any, where: str) -> tuple[str, list[Media]]:
    if content is None or isinstance(content, str):
        return content or "", []
    if not isinstance(content, list):
        raise invalid(f"{where}.content: must be a string or an array")
    texts: list[str] = []
    media: list[Media] = []
    for block in content:
        for part in _content_part(block, where) if isinstance(block, dict) else ():
            if isinstance(part, Text):
                texts.append(part.text)
            elif isinstance(part, Media):
                media.append(part)
    return "\n".join(texts), media


def _content_part(block: dict[str, Any], where: str) -> list[Part]:
    kind = block.get("type")
    if kind == "text":
        return [Text(str(block["text"]))] if block.get("text") else []
    if kind in ("image", "document"):
        source = block.get("source") if isinstance(block.get("source"), dict) else {}
        if source.get("type") == "base64" and source.get("data"):
            return [Media(str(source.get("media_type") or ""), str(source["data"]))]
        if source.get("type") == "text" and source.get("data"):
            return [Text(str(source["data"]))]
        raise invalid(f"{where}.source: expected a base64, url or text source")
    if kind == "search_result":  # a tool's search hit: its title, source and text
        texts = [str(b.get("text") or "") for b in block.get("content") or () if isinstance(b, dict)]
        header = " — ".join(str(block[key]) for key in ("title", "source") if block.get(key))
        return [Text("\n".join(filter(None, [header, *texts])))]
    return []  # thinking and tool_use mean nothing in a user turn; server-tool blocks carry nothing


def _tools(conversation: Conversation, tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise invalid("tools: must be an array")
    for position, tool in enumerate(tools):
        if not isinstance(tool, dict) or not tool.get("name"):
            raise invalid(f"tools.{position}: must be an object with a name")
        if tool.get("type") in (None, "custom"):  # server tools (web search, bash …) cannot join functions upstream
            schema = tool.get("input_schema")
            conversation.tools.append(Tool(str(tool["name"]), str(tool.get("description") or ""),
                                           schema if isinstance(schema, dict) else {"type": "object"}))


def _stop_sequences(body: dict[str, Any]) -> tuple[str, ...]:
    stops = body.get("stop_sequences")
    if stops is None:
        return ()
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise invalid("stop_sequences: must be an array of strings")
    return tuple(s for s in stops if s)
