"""OpenAI Responses request → Conversation (pure).

Only the wire format is read here (client-protocols.md §4.2, §7); upstream_request.py
builds the upstream request. `instructions` comes first in the system text, then every
system/developer message (Codex 0.169 sends its prompt that way); a reasoning item's
`encrypted_content` is the thought signature the daemon handed out; freeform (`custom`)
and `local_shell` tools become functions, and their kinds are returned so the answer can
be given back in the same shape. Other tool types (web search, namespaces) are dropped:
the upstream cannot combine them with functions.
"""

from __future__ import annotations

from typing import Any

from .conversation import (
    Call,
    Conversation,
    Part,
    Result,
    Text,
    Thought,
    Tool,
    call_arguments,
    data_url,
    effort_thinking,
    invalid,
    number,
    positive_int,
    text_of,
)

DEFAULT_EFFORT = "medium"  # OpenAI's own default for reasoning models
CUSTOM_INPUT = "input"  # the one string property a freeform tool is declared with
LOCAL_SHELL = "local_shell"
_LOCAL_SHELL_SCHEMA = {
    "type": "object",
    "properties": {
        "command": {"type": "array", "items": {"type": "string"}, "description": "the program and its arguments"},
        "workdir": {"type": "string", "description": "the working directory"},
        "timeout_ms": {"type": "integer", "description": "how long the command may run"},
    },
    "required": ["command"],
}


def parse(body: dict[str, Any], history: list[Any]) -> tuple[Conversation, dict[str, str]]:
    """The conversation (with `history`: the items of a previous response, prepended), and
    each declared tool's kind by client name ("function", "custom" or "local_shell")."""
    conversation = Conversation(max_tokens=positive_int(body, "max_output_tokens"), stream=body.get("stream") is True)
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid("instructions: must be a string", "instructions")
    if instructions:
        conversation.system.append(instructions)
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    if not isinstance(items, list):
        raise invalid("input: must be a string or an array of items", "input")
    for index, item in enumerate([*history, *items]):
        _item(conversation, item, f"input.{index}")
    if not conversation.turns:
        raise invalid("input: there is nothing to answer", "input")
    kinds = _tools(conversation, body.get("tools"))
    _tool_choice(conversation, body.get("tool_choice"))
    reasoning = body.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    if effort is None and isinstance(reasoning, dict) and reasoning.get("summary") is not None:
        effort = DEFAULT_EFFORT  # summaries asked for without an effort (Codex's default): think
    conversation.thinking = effort_thinking(effort, "reasoning.effort")
    conversation.temperature = number(body, "temperature", 0, 2)
    conversation.top_p = number(body, "top_p", 0, 1)
    _text_format(conversation, body.get("text"))
    return conversation, kinds


def _item(conversation: Conversation, item: Any, where: str) -> None:
    if not isinstance(item, dict):
        raise invalid(f"{where}: must be an object", where)
    kind = item.get("type", "message")
    if kind == "message":
        _message(conversation, item, where)
    elif kind == "function_call":
        conversation.add("model", [Call(str(item.get("call_id") or ""), str(item.get("name") or ""),
                                        call_arguments(item.get("arguments")))])
    elif kind == "custom_tool_call":
        conversation.add("model", [Call(str(item.get("call_id") or ""), str(item.get("name") or ""),
                                        {CUSTOM_INPUT: str(item.get("input") or "")})])
    elif kind == "local_shell_call":
        action = item.get("action") if isinstance(item.get("action"), dict) else {}
        args = {"command": action.get("command") or [], "workdir": action.get("working_directory"),
                "timeout_ms": action.get("timeout_ms")}
        conversation.add("model", [Call(str(item.get("call_id") or ""), LOCAL_SHELL,
                                        {k: v for k, v in args.items() if v is not None})])
    elif kind in ("function_call_output", "custom_tool_call_output", "local_shell_call_output"):
        conversation.add("user", [_result(item, where)])
    elif kind == "reasoning" and item.get("encrypted_content"):
        summary = "".join(str(p.get("text") or "") for p in item.get("summary") or () if isinstance(p, dict))
        conversation.add("model", [Thought(summary, str(item["encrypted_content"]))])
    # other items (unsigned reasoning, web search calls, compaction, references) carry nothing to replay


def _message(conversation: Conversation, item: dict[str, Any], where: str) -> None:
    role, content = item.get("role"), item.get("content")
    if role in ("system", "developer"):
        conversation.system.append(text_of(content, f"{where}.content"))
    elif role in ("user", "assistant"):
        conversation.add("user" if role == "user" else "model", _content(content, f"{where}.content"))
    else:
        raise invalid(f"{where}.role: must be user, assistant, system or developer", f"{where}.role")


def _content(content: Any, where: str) -> list[Part]:
    if isinstance(content, str):
        return [Text(content)]
    if not isinstance(content, list):
        raise invalid(f"{where}: must be a string or an array of parts", where)
    parts: list[Part] = []
    for position, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            parts.append(Text(str(part.get("text") or "")))
        elif kind == "input_image":
            image = part.get("image_url")
            parts.append(data_url(str(image.get("url") if isinstance(image, dict) else image or ""),
                                  f"{where}.{position}.image_url"))
        elif kind == "input_file" and part.get("file_data"):
            parts.append(data_url(str(part["file_data"]), f"{where}.{position}.file_data"))
        elif kind != "refusal":
            raise invalid(f"{where}.{position}.type: unsupported content part {kind!r}", f"{where}.{position}")
    return parts


def _result(item: dict[str, Any], where: str) -> Result:
    output = item.get("output")
    if isinstance(output, list):  # text and images
        parts = _content(output, f"{where}.output")
        text = "".join(p.text for p in parts if isinstance(p, Text))
        return Result(str(item.get("call_id") or ""), text, media=tuple(p for p in parts if not isinstance(p, Text)))
    return Result(str(item.get("call_id") or ""), output if isinstance(output, str) else text_of(output, where))


def _tools(conversation: Conversation, tools: Any) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for position, tool in enumerate(tools or ()):
        kind = tool.get("type") if isinstance(tool, dict) else None
        name = str(tool.get("name") or "") if isinstance(tool, dict) else ""
        if kind == "local_shell":
            conversation.tools.append(Tool(LOCAL_SHELL, "Run a command on the user's machine.", _LOCAL_SHELL_SCHEMA))
            kinds[LOCAL_SHELL] = LOCAL_SHELL
            continue
        if kind not in ("function", "custom"):
            continue
        if not name:
            raise invalid(f"tools.{position}: a {kind} tool needs a name", f"tools.{position}")
        description = str(tool.get("description") or "")
        if kind == "custom":
            schema = {"type": "object", "properties": {CUSTOM_INPUT: {"type": "string", "description": "the raw input"}},
                      "required": [CUSTOM_INPUT]}
        else:
            parameters = tool.get("parameters")
            schema = parameters if isinstance(parameters, dict) else {"type": "object"}
        conversation.tools.append(Tool(name, description, schema))
        kinds[name] = kind
    return kinds


def _tool_choice(conversation: Conversation, choice: Any) -> None:
    if isinstance(choice, dict) and choice.get("name"):
        conversation.tool_choice, conversation.forced_tool = "tool", str(choice["name"])
    else:
        conversation.tool_choice = {"required": "any", "none": "none"}.get(str(choice), "auto")


def _text_format(conversation: Conversation, text: Any) -> None:
    spec = text.get("format") if isinstance(text, dict) and isinstance(text.get("format"), dict) else {}
    if spec.get("type") == "json_object":
        conversation.json_output = True
    elif spec.get("type") == "json_schema":
        if not isinstance(spec.get("schema"), dict):
            raise invalid("text.format.schema: must be a JSON schema object", "text.format")
        conversation.response_schema = spec["schema"]
