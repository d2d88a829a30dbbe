"""Request translation, checked once per client protocol (pure functions, no I/O).

A small protocol-neutral script (system text, user messages, assistant replies with tool
calls, tool results) is rendered into an Anthropic Messages, an OpenAI Chat Completions and
an OpenAI Responses body, parsed by that protocol's parser and built by
upstream_request.build; the upstream (Gemini-shaped) request is then checked against
client-protocols.md §7 and upstream-cloudcode.md §4.2/§4.6. Every built request also goes
through `assert_well_formed` (alternating roles, a user turn first, no empty part or text,
every call answered once, in call order, by the next content).

Protocol-only details are in test_request_{anthropic,openai_chat,responses,gemini}.py,
which import the helpers defined here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.accounts.signatures import Remembered, SignatureStore
from daemon.errors import ErrorKind, ProxyError
from daemon.translate import anthropic_request, openai_chat_request, responses_request
from daemon.translate.conversation import Conversation
from daemon.translate.upstream_request import (
    INTERRUPTED,
    SKIP_SIGNATURE,
    Translated,
    build,
    session_id,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).parent.parent.parent
# Real client requests, copied verbatim from the team's captures (shared/fixtures/clients/):
# codex.exec-responses.00{1,2}.json ← codex/exec-responses/00{1,2}-POST-v1_responses.json (Codex 0.169.0),
# claude-code.sonnet-thinking.002.json ← claude-code/sonnet-4-5-auth-token-thinking/002-POST-v1_messages.json
# (Claude Code 2.1.330); header secrets were masked by the recorder.
CLIENTS = ROOT / "tests/data/clients"
PROTOCOLS = ("anthropic", "openai_chat", "responses")
GEMINI = "gemini-3-flash"
CLAUDE = "claude-sonnet-4-6"
CLAUDE_THINKING = "claude-opus-4-6-thinking"


def client_body(name: str) -> dict[str, Any]:
    """The body of a real client request copied into tests/data/clients/."""
    return json.loads((CLIENTS / name).read_text())["body"]


# --- signatures -----------------------------------------------------------------------------


@dataclass
class FakeSignatures:
    """The SignatureLookup protocol over two dicts."""

    tools: dict[str, Remembered] = field(default_factory=dict)
    families: dict[str, str] = field(default_factory=dict)

    def for_tool(self, tool_id: str) -> Remembered | None:
        return self.tools.get(tool_id)

    def family_of(self, signature: str) -> str | None:
        return self.families.get(signature)


# --- the neutral script ---------------------------------------------------------------------


@dataclass(frozen=True)
class Sys:
    text: str


@dataclass(frozen=True)
class User:
    text: str


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    raw: str | None = None  # an OpenAI/Responses `arguments` string other than json.dumps(args)


@dataclass(frozen=True)
class Assistant:
    text: str = ""
    calls: tuple[ToolCall, ...] = ()
    signature: str = ""  # the turn's signature, in the protocol's own carrier (see module doc)
    thinking: str = "I should call the tool."


@dataclass(frozen=True)
class Results:
    results: tuple[tuple[str, str], ...]  # (call id, output) in the order the client sends them
    text: str = ""  # user text sent after the results


Step = Sys | User | Assistant | Results


@dataclass(frozen=True)
class Tool:
    name: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {"x": {"type": "string"}}})
    description: str = "a tool"


def _arguments(call: ToolCall) -> str:
    return call.raw if call.raw is not None else json.dumps(call.args)


def anthropic_body(script: list[Step], tools: tuple[Tool, ...] = (), **fields: Any) -> dict[str, Any]:
    """Signature carrier: a signed thinking block first in the assistant message."""
    system: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    for step in script:
        if isinstance(step, Sys):
            system.append({"type": "text", "text": step.text})
        elif isinstance(step, User):
            messages.append({"role": "user", "content": [{"type": "text", "text": step.text}]})
        elif isinstance(step, Assistant):
            blocks: list[dict[str, Any]] = []
            if step.signature:
                blocks.append({"type": "thinking", "thinking": step.thinking, "signature": step.signature})
            if step.text:
                blocks.append({"type": "text", "text": step.text})
            blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.args} for c in step.calls]
            messages.append({"role": "assistant", "content": blocks})
        else:
            blocks = [{"type": "tool_result", "tool_use_id": i, "content": out} for i, out in step.results]
            if step.text:
                blocks.append({"type": "text", "text": step.text})
            messages.append({"role": "user", "content": blocks})
    body: dict[str, Any] = {"model": "m", "max_tokens": 4096, "messages": messages}
    if system:
        body["system"] = system
    if tools:
        body["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.schema} for t in tools]
    return body | fields


def openai_chat_body(script: list[Step], tools: tuple[Tool, ...] = (), **fields: Any) -> dict[str, Any]:
    """Signature carrier: `extra_content.google.thought_signature` on the first tool call."""
    messages: list[dict[str, Any]] = []
    for step in script:
        if isinstance(step, Sys):
            messages.append({"role": "system", "content": step.text})
        elif isinstance(step, User):
            messages.append({"role": "user", "content": step.text})
        elif isinstance(step, Assistant):
            message: dict[str, Any] = {"role": "assistant", "content": step.text or None}
            if step.calls:
                message["tool_calls"] = [{"id": c.id, "type": "function",
                                          "function": {"name": c.name, "arguments": _arguments(c)}}
                                         for c in step.calls]
                if step.signature:
                    message["tool_calls"][0]["extra_content"] = {"google": {"thought_signature": step.signature}}
            messages.append(message)
        else:
            messages += [{"role": "tool", "tool_call_id": i, "content": out} for i, out in step.results]
            if step.text:
                messages.append({"role": "user", "content": step.text})
    body: dict[str, Any] = {"model": "m", "messages": messages}
    if tools:
        body["tools"] = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                           "parameters": t.schema}} for t in tools]
    return body | fields


def responses_body(script: list[Step], tools: tuple[Tool, ...] = (), **fields: Any) -> dict[str, Any]:
    """Signature carrier: a reasoning item's `encrypted_content` before the calls."""
    items: list[dict[str, Any]] = []
    for step in script:
        if isinstance(step, Sys):
            items.append({"type": "message", "role": "developer", "content": [{"type": "input_text", "text": step.text}]})
        elif isinstance(step, User):
            items.append({"type": "message", "role": "user", "content": [{"type": "input_text", "text": step.text}]})
        elif isinstance(step, Assistant):
            if step.signature:
                items.append({"type": "reasoning", "summary": [{"type": "summary_text", "text": step.thinking}],
                              "encrypted_content": step.signature})
            if step.text:
                items.append({"type": "message", "role": "assistant",
                              "content": [{"type": "output_text", "text": step.text}]})
            items += [{"type": "function_call", "call_id": c.id, "name": c.name, "arguments": _arguments(c)}
                      for c in step.calls]
        else:
            items += [{"type": "function_call_output", "call_id": i, "output": out} for i, out in step.results]
            if step.text:
                items.append({"type": "message", "role": "user", "content": [{"type": "input_text", "text": step.text}]})
    body: dict[str, Any] = {"model": "m", "input": items}
    if tools:
        body["tools"] = [{"type": "function", "name": t.name, "description": t.description, "parameters": t.schema}
                         for t in tools]
    return body | fields


RENDER = {"anthropic": anthropic_body, "openai_chat": openai_chat_body, "responses": responses_body}


def parse(protocol: str, body: dict[str, Any]) -> Conversation:
    if protocol == "anthropic":
        return anthropic_request.parse(body)
    if protocol == "openai_chat":
        return openai_chat_request.parse(body)
    conversation, _kinds = responses_request.parse(body, [])
    return conversation


def build_body(protocol: str, body: dict[str, Any], *, model: str = GEMINI,
               signatures: Any = None) -> Translated:
    translated = build(parse(protocol, body), model=model, session_key="session-1",
                       signatures=signatures if signatures is not None else FakeSignatures())
    assert_well_formed(translated.request)
    return translated


def translate(protocol: str, script: list[Step], *, model: str = GEMINI, tools: tuple[Tool, ...] = (),
              signatures: Any = None, **fields: Any) -> Translated:
    return build_body(protocol, RENDER[protocol](script, tools, **fields), model=model, signatures=signatures)


# --- reading the upstream request -----------------------------------------------------------


def contents(t: Translated) -> list[dict[str, Any]]:
    return t.request["contents"]


def roles(t: Translated) -> list[str]:
    return [c["role"] for c in contents(t)]


def calls_of(content: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in content["parts"] if "functionCall" in p]


def responses_of(content: dict[str, Any]) -> list[dict[str, Any]]:
    return [p["functionResponse"] for p in content["parts"] if "functionResponse" in p]


def texts_of(content: dict[str, Any]) -> list[str]:
    return [p["text"] for p in content["parts"] if "text" in p and not p.get("thought")]


def system_texts(t: Translated) -> list[str]:
    return [p["text"] for p in t.request.get("systemInstruction", {}).get("parts", [])]


def generation(t: Translated) -> dict[str, Any]:
    return t.request["generationConfig"]


def assert_well_formed(request: dict[str, Any]) -> None:
    """The upstream's rules for `contents` (upstream doc §4.2, client-protocols.md §7.1/§7.6)."""
    items = request["contents"]
    assert items and items[0]["role"] == "user"
    for before, after in pairwise(items):
        assert before["role"] != after["role"], "consecutive contents of one role must be merged"
    for index, content in enumerate(items):
        assert content["role"] in ("user", "model")
        assert content["parts"], "no content may have an empty parts array"
        for part in content["parts"]:
            assert part, "no part may be empty"
            if "text" in part:
                assert isinstance(part["text"], str) and part["text"], "no empty text part"
        calls = [p["functionCall"] for p in calls_of(content)]
        if content["role"] == "model" and calls and index + 1 < len(items):
            answers = items[index + 1]["parts"][:len(calls)]
            assert all("functionResponse" in p for p in answers), "results come first in the next content"
            assert [p["functionResponse"]["id"] for p in answers] == [c["id"] for c in calls]
            assert [p["functionResponse"]["name"] for p in answers] == [c["name"] for c in calls]
        if content["role"] == "user" and index and responses_of(content):
            previous = [p["functionCall"]["id"] for p in calls_of(items[index - 1])]
            assert [r["id"] for r in responses_of(content)] == previous, "exactly one response per call"
    system = request.get("systemInstruction")
    if system is not None:
        assert system["role"] == "user" and system["parts"]
        assert all(p.get("text") for p in system["parts"])


def raises_invalid(fn: Any, *args: Any, **kwargs: Any) -> ProxyError:
    with pytest.raises(ProxyError) as caught:
        fn(*args, **kwargs)
    assert caught.value.kind is ErrorKind.INVALID_REQUEST
    assert caught.value.status == 400
    return caught.value


WRITE = ToolCall("call_w", "write", {"path": "a.txt"})
READ = ToolCall("call_r", "read", {"path": "b.txt"})
LIST = ToolCall("call_l", "list", {})
TOOLS = (Tool("write"), Tool("read"), Tool("list"))


# --- roles and turns (§7.1) -------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_roles_map_to_user_and_model_and_consecutive_turns_merge(protocol: str) -> None:
    script: list[Step] = [User("one"), User("two"), Assistant("three"), Assistant("four"), User("five")]
    t = translate(protocol, script)
    assert roles(t) == ["user", "model", "user"]
    assert [texts_of(c) for c in contents(t)] == [["one", "two"], ["three", "four"], ["five"]]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("model", [GEMINI, CLAUDE])
def test_a_conversation_starting_with_the_assistant_gets_a_user_turn_first(protocol: str, model: str) -> None:
    t = translate(protocol, [Assistant("hello, how can I help?"), User("fix it")], model=model)
    assert roles(t) == ["user", "model", "user"]
    assert texts_of(contents(t)[0]) == ["."]  # a non-empty placeholder (Claude rejects empty text)
    assert texts_of(contents(t)[1]) == ["hello, how can I help?"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_empty_texts_and_turns_left_empty_never_reach_the_upstream(protocol: str) -> None:
    t = translate(protocol, [User("a"), Assistant(""), User(""), User("b"), Assistant("c"), User("d")])
    assert roles(t) == ["user", "model", "user"]
    assert [texts_of(c) for c in contents(t)] == [["a", "b"], ["c"], ["d"]]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_conversation_with_nothing_to_send_is_refused(protocol: str) -> None:
    raises_invalid(translate, protocol, [User("")])


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("model", [CLAUDE, CLAUDE_THINKING])
def test_claude_prefill_is_refused_as_an_invalid_request(protocol: str, model: str) -> None:
    error = raises_invalid(translate, protocol, [User("write json"), Assistant("{")], model=model)
    assert "prefill" in error.message


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_gemini_accepts_a_conversation_ending_with_the_model(protocol: str) -> None:
    t = translate(protocol, [User("write json"), Assistant("{")], model=GEMINI)
    assert roles(t) == ["user", "model"] and texts_of(contents(t)[-1]) == ["{"]


# --- system prompts (§7.2) --------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_system_text_goes_to_system_instruction_in_order_with_role_user(protocol: str) -> None:
    t = translate(protocol, [Sys("first"), User("hi"), Sys("second"), Assistant("yo"), Sys("third"), User("ok")])
    assert t.request["systemInstruction"]["role"] == "user"
    assert system_texts(t) == ["first", "second", "third"]
    assert all("first" not in text for c in contents(t) for text in texts_of(c))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_codex_identity_sentence_is_reworded_and_the_rest_kept(protocol: str) -> None:
    prompt = "You are Codex, an agent based on GPT-5. You are running as a coding agent."
    t = translate(protocol, [Sys(prompt), User("hi")])
    (text,) = system_texts(t)
    assert "You are Codex, an agent based on GPT-5." not in text
    assert text.endswith("You are running as a coding agent.") and text.startswith("You are a coding agent.")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_blank_system_text_and_the_billing_header_are_dropped(protocol: str) -> None:
    header = "x-anthropic-billing-header: cc_version=2.1.330.4f7; cc_entrypoint=sdk-cli;"
    t = translate(protocol, [Sys(header), Sys("   "), Sys("real"), User("hi")])
    assert system_texts(t) == ["real"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_without_system_text_there_is_no_system_instruction(protocol: str) -> None:
    t = translate(protocol, [User("hi")])
    assert "systemInstruction" not in t.request


# --- tool definitions (§7.5) ------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tool_names_are_sanitised_and_deduplicated_with_a_reverse_map(protocol: str) -> None:
    tools = (Tool("mcp__fs.read/file"), Tool("mcp__fs_read_file"), Tool("9lives"), Tool("x" * 80))
    t = translate(protocol, [User("hi")], tools=tools)
    names = [d["name"] for d in t.request["tools"][0]["functionDeclarations"]]
    assert names == ["mcp__fs_read_file", "mcp__fs_read_file_2", "_9lives", "x" * 64]
    assert t.tool_names == {"mcp__fs_read_file": "mcp__fs.read/file", "mcp__fs_read_file_2": "mcp__fs_read_file",
                            "_9lives": "9lives", "x" * 64: "x" * 80}
    assert all(len(n) <= 64 and (n[0].isalpha() or n[0] == "_") for n in names)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("model", [GEMINI, CLAUDE])
def test_tool_schemas_are_sanitised(protocol: str, model: str) -> None:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "additionalProperties": False,
              "properties": {"path": {"type": "string", "default": "a", "x-mcp-header": "p"},
                             "mode": {"const": "fast"}, "tags": {"type": ["array", "null"]}},
              "required": ["path", "tags", "ghost"]}
    t = translate(protocol, [User("hi")], tools=(Tool("edit", schema, "Edit a file"),), model=model)
    (declaration,) = t.request["tools"][0]["functionDeclarations"]
    assert declaration["description"] == "Edit a file"
    parameters = declaration["parameters"]
    assert set(parameters) <= {"type", "description", "properties", "required"}
    assert parameters["required"] == ["path"]
    assert parameters["properties"]["mode"]["enum"] == ["fast"]
    assert parameters["properties"]["tags"]["items"] == {"type": "string"}
    text = json.dumps(parameters)
    for keyword in ("$schema", "additionalProperties", "default", "x-mcp-header", "const"):
        assert f'"{keyword}"' not in text


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tool_choice_maps_to_function_calling_config(protocol: str) -> None:
    choices = {
        "anthropic": ({"type": "auto"}, {"type": "any"}, {"type": "tool", "name": "my.tool"}, {"type": "none"}),
        "openai_chat": ("auto", "required", {"type": "function", "function": {"name": "my.tool"}}, "none"),
        "responses": ("auto", "required", {"type": "function", "name": "my.tool"}, "none"),
    }[protocol]
    configs = [translate(protocol, [User("hi")], tools=(Tool("my.tool"),), tool_choice=choice).request["toolConfig"]
               for choice in choices]
    assert [c["functionCallingConfig"] for c in configs] == [
        {"mode": "AUTO"}, {"mode": "ANY"}, {"mode": "ANY", "allowedFunctionNames": ["my_tool"]}, {"mode": "NONE"}]
    claude = translate(protocol, [User("hi")], tools=(Tool("my.tool"),), model=CLAUDE)
    assert claude.request["toolConfig"] == {"functionCallingConfig": {"mode": "VALIDATED"}}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tool_choice_none_keeps_the_tools_declared(protocol: str) -> None:
    choice = {"type": "none"} if protocol == "anthropic" else "none"
    t = translate(protocol, [User("hi"), Assistant(calls=(WRITE,)), Results((("call_w", "ok"),))],
                  tools=TOOLS, tool_choice=choice)
    assert len(t.request["tools"][0]["functionDeclarations"]) == 3
    assert t.request["toolConfig"]["functionCallingConfig"]["mode"] == "NONE"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_no_tools_means_no_tools_and_no_tool_config(protocol: str) -> None:
    t = translate(protocol, [User("hi")])
    assert "tools" not in t.request and "toolConfig" not in t.request and t.tool_names == {}


# --- tool calls and results (§7.6) ------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_calls_of_one_turn_go_in_one_model_content_in_order(protocol: str) -> None:
    t = translate(protocol, [User("go"), Assistant("working", calls=(WRITE, READ, LIST)),
                             Results((("call_w", "w"), ("call_r", "r"), ("call_l", "l")))], tools=TOOLS)
    assert roles(t) == ["user", "model", "user"]
    model = contents(t)[1]
    assert texts_of(model) == ["working"]
    assert [p["functionCall"] for p in calls_of(model)] == [
        {"name": "write", "args": {"path": "a.txt"}, "id": "call_w"},
        {"name": "read", "args": {"path": "b.txt"}, "id": "call_r"},
        {"name": "list", "args": {}, "id": "call_l"}]
    assert responses_of(contents(t)[2]) == [
        {"id": "call_w", "name": "write", "response": {"result": "w"}},
        {"id": "call_r", "name": "read", "response": {"result": "r"}},
        {"id": "call_l", "name": "list", "response": {"result": "l"}}]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_results_arriving_out_of_order_follow_call_order(protocol: str) -> None:
    t = translate(protocol, [User("go"), Assistant(calls=(WRITE, READ, LIST)),
                             Results((("call_l", "l"), ("call_w", "w"), ("call_r", "r")), text="and then?")],
                  tools=TOOLS)
    last = contents(t)[-1]
    assert [r["id"] for r in responses_of(last)] == ["call_w", "call_r", "call_l"]
    assert [r["response"]["result"] for r in responses_of(last)] == ["w", "r", "l"]
    assert last["parts"][-1] == {"text": "and then?"}  # user text after the contiguous responses


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_call_without_a_result_gets_an_interrupted_result(protocol: str) -> None:
    t = translate(protocol, [User("go"), Assistant(calls=(WRITE, READ)), Results((("call_r", "r"),)),
                             Assistant("next"), User("stop that"), Assistant(calls=(LIST,)), User("never mind")],
                  tools=TOOLS)
    assert roles(t) == ["user", "model", "user", "model", "user", "model", "user"]
    assert responses_of(contents(t)[2]) == [
        {"id": "call_w", "name": "write", "response": {"result": INTERRUPTED}},
        {"id": "call_r", "name": "read", "response": {"result": "r"}}]
    assert responses_of(contents(t)[4]) == [] and texts_of(contents(t)[4]) == ["stop that"]
    assert responses_of(contents(t)[6]) == [{"id": "call_l", "name": "list", "response": {"result": INTERRUPTED}}]
    assert texts_of(contents(t)[6]) == ["never mind"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_result_without_a_call_becomes_user_text(protocol: str) -> None:
    t = translate(protocol, [User("go"), Assistant("sure"), Results((("call_unknown", "stray output"),))], tools=TOOLS)
    assert roles(t) == ["user", "model", "user"]
    assert responses_of(contents(t)[2]) == []
    assert texts_of(contents(t)[2]) == ["stray output"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_function_response_name_is_the_sanitised_function_name_never_the_id(protocol: str) -> None:
    call = ToolCall("toolu_01ABC", "mcp__git.status", {"short": True})
    t = translate(protocol, [User("go"), Assistant(calls=(call,)), Results((("toolu_01ABC", "clean"),))],
                  tools=(Tool("mcp__git.status"),))
    (response,) = responses_of(contents(t)[2])
    assert response == {"id": "toolu_01ABC", "name": "mcp__git_status", "response": {"result": "clean"}}
    assert calls_of(contents(t)[1])[0]["functionCall"]["name"] == "mcp__git_status"
    assert t.tool_names["mcp__git_status"] == "mcp__git.status"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_call_to_an_undeclared_tool_still_gets_a_valid_name(protocol: str) -> None:
    call = ToolCall("c1", "old/tool", {})
    t = translate(protocol, [User("go"), Assistant(calls=(call,)), Results((("c1", "done"),))])
    assert calls_of(contents(t)[1])[0]["functionCall"]["name"] == "old_tool"
    assert responses_of(contents(t)[2])[0]["name"] == "old_tool"


@pytest.mark.parametrize("protocol", ["openai_chat", "responses"])
@pytest.mark.parametrize(("raw", "args"), [
    ('{"a": 1}', {"a": 1}),
    ("{not json", {"raw": "{not json"}),
    ("[1, 2]", {"raw": "[1, 2]"}),
    ("", {}),
])
def test_call_arguments_strings_are_parsed_or_wrapped(protocol: str, raw: str, args: dict[str, Any]) -> None:
    call = ToolCall("c1", "write", raw=raw)
    t = translate(protocol, [User("go"), Assistant(calls=(call,)), Results((("c1", "ok"),))], tools=TOOLS)
    assert calls_of(contents(t)[1])[0]["functionCall"]["args"] == args


# --- signatures (§7.8 replay side, upstream doc §4.6) ----------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_gemini_first_call_carries_the_clients_signature_and_siblings_none(protocol: str) -> None:
    t = translate(protocol, [User("go"), Assistant(calls=(WRITE, READ), signature="gemini-sig-1"),
                             Results((("call_w", "w"), ("call_r", "r")))], tools=TOOLS)
    first, second = calls_of(contents(t)[1])
    assert first["thoughtSignature"] == "gemini-sig-1"
    assert "thoughtSignature" not in second
    assert all("thought" not in p for p in contents(t)[1]["parts"])  # Gemini thinking is not replayed as text


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_gemini_first_call_signature_comes_from_the_store(protocol: str) -> None:
    store = FakeSignatures(tools={"call_w": Remembered("gemini", "stored-sig")})
    t = translate(protocol, [User("go"), Assistant(calls=(WRITE, READ)), Results((("call_w", "w"), ("call_r", "r")))],
                  tools=TOOLS, signatures=store)
    first, second = calls_of(contents(t)[1])
    assert first["thoughtSignature"] == "stored-sig" and "thoughtSignature" not in second


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_gemini_calls_with_a_lost_signature_get_the_sentinel_per_turn(protocol: str) -> None:
    t = translate(protocol, [User("go"), Assistant(calls=(WRITE, READ)), Results((("call_w", "w"), ("call_r", "r"))),
                             Assistant(calls=(LIST,)), Results((("call_l", "l"),))], tools=TOOLS)
    first_turn, second_turn = contents(t)[1], contents(t)[3]
    assert [p.get("thoughtSignature") for p in calls_of(first_turn)] == [SKIP_SIGNATURE, None]
    assert [p.get("thoughtSignature") for p in calls_of(second_turn)] == [SKIP_SIGNATURE]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_claude_signature_never_goes_to_gemini(protocol: str) -> None:
    store = FakeSignatures(tools={"call_w": Remembered("claude", "claude-sig", "thought")},
                           families={"claude-sig": "claude"})
    t = translate(protocol, [User("go"), Assistant(calls=(WRITE,), signature="claude-sig"), Results((("call_w", "w"),))],
                  tools=TOOLS, signatures=store)
    assert calls_of(contents(t)[1])[0]["thoughtSignature"] == SKIP_SIGNATURE
    assert "claude-sig" not in json.dumps(t.request)


def test_the_real_signature_store_without_a_data_dir_works_as_the_lookup() -> None:
    store = SignatureStore()
    store.remember("gemini", "real-gemini-sig", "call_w")
    store.remember("claude", "real-claude-sig")
    for protocol in PROTOCOLS:
        t = translate(protocol, [User("go"), Assistant(calls=(WRITE,), signature="real-claude-sig"),
                                 Results((("call_w", "w"),))], tools=TOOLS, signatures=store)
        assert calls_of(contents(t)[1])[0]["thoughtSignature"] == "real-gemini-sig"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_claude_gets_signed_thinking_restored_from_the_store_first(protocol: str) -> None:
    store = FakeSignatures(tools={"call_w": Remembered("claude", "claude-sig", "Let me write it.")},
                           families={"claude-sig": "claude"})
    t = translate(protocol, [User("go"), Assistant("Writing.", calls=(WRITE, READ)),
                             Results((("call_w", "w"), ("call_r", "r")))],
                  tools=TOOLS, signatures=store, model=CLAUDE_THINKING)
    parts = contents(t)[1]["parts"]
    assert parts[0] == {"text": "Let me write it.", "thought": True, "thoughtSignature": "claude-sig"}
    assert parts[1] == {"text": "Writing."}
    assert [p["functionCall"]["id"] for p in parts[2:]] == ["call_w", "call_r"]
    assert all("thoughtSignature" not in p for p in parts[1:])  # the sentinel never goes to Claude


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_claude_never_gets_a_gemini_signature_or_the_sentinel(protocol: str) -> None:
    store = FakeSignatures(tools={"call_w": Remembered("gemini", "gemini-sig", "gemini thought")},
                           families={"gemini-sig": "gemini"})
    t = translate(protocol, [User("go"), Assistant(calls=(WRITE,), signature="gemini-sig"), Results((("call_w", "w"),))],
                  tools=TOOLS, signatures=store, model=CLAUDE)
    text = json.dumps(t.request)
    assert "gemini-sig" not in text and SKIP_SIGNATURE not in text and "thoughtSignature" not in text


@pytest.mark.parametrize("protocol", ["anthropic", "responses"])
def test_claude_replays_the_clients_signed_thinking_first(protocol: str) -> None:
    t = translate(protocol, [User("go"), Assistant("Writing.", calls=(WRITE,), signature="claude-sig",
                                                   thinking="I will write."), Results((("call_w", "w"),))],
                  tools=TOOLS, model=CLAUDE_THINKING, signatures=FakeSignatures(families={"claude-sig": "claude"}))
    parts = contents(t)[1]["parts"]
    assert parts[0] == {"text": "I will write.", "thought": True, "thoughtSignature": "claude-sig"}
    assert parts[1] == {"text": "Writing."} and "functionCall" in parts[2]


# --- thinking, shared rules (§7.7, §7.8) -------------------------------------------------------


def _forced(protocol: str) -> Any:
    return {"anthropic": {"type": "any"}, "openai_chat": "required", "responses": "required"}[protocol]


def _thinking_on(protocol: str) -> dict[str, Any]:
    return {"anthropic": {"thinking": {"type": "enabled", "budget_tokens": 4096}},
            "openai_chat": {"reasoning_effort": "high"},
            "responses": {"reasoning": {"effort": "high"}}}[protocol]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("model", [CLAUDE_THINKING, "gemini-2.5-pro"])
def test_forced_tool_choice_turns_thinking_off(protocol: str, model: str) -> None:
    on = translate(protocol, [User("hi")], tools=TOOLS, model=model, **_thinking_on(protocol))
    assert "thinkingConfig" in generation(on) and on.show_thoughts
    forced = translate(protocol, [User("hi")], tools=TOOLS, model=model, tool_choice=_forced(protocol),
                       **_thinking_on(protocol))
    assert "thinkingConfig" not in generation(forced) and not forced.show_thoughts
    assert forced.request["toolConfig"]["functionCallingConfig"]["mode"] == "ANY"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_claude_thinking_drops_temperature_top_k_and_a_low_top_p(protocol: str) -> None:
    sampling = {"temperature": 0.5, "top_p": 0.9} | ({"top_k": 40} if protocol == "anthropic" else {})
    t = translate(protocol, [User("hi")], model=CLAUDE_THINKING, **_thinking_on(protocol), **sampling)
    assert {"temperature", "topK", "topP"}.isdisjoint(generation(t))
    high = translate(protocol, [User("hi")], model=CLAUDE_THINKING, **_thinking_on(protocol), top_p=0.97)
    assert generation(high)["topP"] == 0.97
    plain = translate(protocol, [User("hi")], model=CLAUDE, **sampling)  # thinking off: all kept
    assert generation(plain)["temperature"] == 0.5 and generation(plain)["topP"] == 0.9
    assert generation(plain).get("topK") == sampling.get("top_k")


# --- sampling and limits (§7.10) --------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(("model", "cap"), [(GEMINI, 65535), (CLAUDE, 64000)])
def test_max_output_tokens_passes_and_is_capped(protocol: str, model: str, cap: int) -> None:
    key = {"anthropic": "max_tokens", "openai_chat": "max_tokens", "responses": "max_output_tokens"}[protocol]
    assert generation(translate(protocol, [User("hi")], model=model, **{key: 1234}))["maxOutputTokens"] == 1234
    assert generation(translate(protocol, [User("hi")], model=model, **{key: 10**6}))["maxOutputTokens"] == cap


@pytest.mark.parametrize("protocol", ["openai_chat", "responses"])
def test_without_a_limit_the_models_own_limit_is_sent(protocol: str) -> None:
    assert generation(translate(protocol, [User("hi")], model=GEMINI))["maxOutputTokens"] == 65535
    assert generation(translate(protocol, [User("hi")], model=CLAUDE))["maxOutputTokens"] == 64000


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_sampling_values_pass_through_for_gemini(protocol: str) -> None:
    t = translate(protocol, [User("hi")], temperature=0.3, top_p=0.8)
    assert generation(t)["temperature"] == 0.3 and generation(t)["topP"] == 0.8


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("field_", ["temperature", "top_p"])
def test_out_of_range_sampling_is_an_invalid_request(protocol: str, field_: str) -> None:
    raises_invalid(translate, protocol, [User("hi")], **{field_: 5})
    raises_invalid(translate, protocol, [User("hi")], **{field_: True})


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_session_id_is_stable_per_key_and_shaped_like_the_native_clients(protocol: str) -> None:
    t = translate(protocol, [User("hi")])
    assert t.request["sessionId"] == session_id("session-1")
    assert t.request["sessionId"].startswith("-") and t.request["sessionId"][1:].isdigit()
    assert session_id("session-1") != session_id("session-2")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_upstream_request_holds_only_gemini_field_names(protocol: str) -> None:
    t = translate(protocol, [Sys("s"), User("hi")], tools=TOOLS, temperature=0.2, stream=True)
    assert set(t.request) <= {"contents", "systemInstruction", "generationConfig", "tools", "toolConfig", "sessionId"}
    assert t.stream is True
    assert translate(protocol, [User("hi")]).stream is False


# --- images (§7.4) ----------------------------------------------------------------------------


def _image_message(protocol: str, url_or_data: str, mime: str = "image/png") -> dict[str, Any]:
    if protocol == "anthropic":
        source = {"type": "base64", "media_type": mime, "data": url_or_data} if not url_or_data.startswith(
            ("data:", "http")) else {"type": "url", "url": url_or_data}
        return {"role": "user", "content": [{"type": "text", "text": "see"}, {"type": "image", "source": source}]}
    if protocol == "openai_chat":
        return {"role": "user", "content": [{"type": "text", "text": "see"},
                                            {"type": "image_url", "image_url": {"url": url_or_data}}]}
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "see"},
                                                           {"type": "input_image", "image_url": url_or_data}]}


def _with_message(protocol: str, message: dict[str, Any]) -> dict[str, Any]:
    body = RENDER[protocol]([], ())
    body["input" if protocol == "responses" else "messages"] = [message]
    return body


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_base64_images_become_inline_data(protocol: str) -> None:
    payload = "iVBORw0KGgo=" if protocol == "anthropic" else "data:image/png;base64,iVBORw0KGgo="
    t = build_body(protocol, _with_message(protocol, _image_message(protocol, payload)))
    assert contents(t)[0]["parts"] == [{"text": "see"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]


@pytest.mark.parametrize("protocol", ["openai_chat", "responses"])
@pytest.mark.parametrize("url", ["data:image/png,iVBORw0KGgo=", "data:image/png;base64,", "image/png;base64,AAAA",
                                 "https://example.com/cat.png", ""])
def test_a_malformed_or_unfetched_image_url_is_an_invalid_request(protocol: str, url: str) -> None:
    raises_invalid(build_body, protocol, _with_message(protocol, _image_message(protocol, url)))


def test_an_anthropic_image_without_usable_source_is_an_invalid_request() -> None:
    raises_invalid(build_body, "anthropic", _with_message("anthropic", _image_message("anthropic", "https://x/y.png")))
    body = _with_message("anthropic", {"role": "user", "content": [{"type": "image", "source": {"type": "base64"}}]})
    raises_invalid(build_body, "anthropic", body)


# --- property: any Chat history builds into well-formed contents ------------------------------

_NAMES = ("write", "read", "a.b", "a_b")
_OPS = st.lists(st.one_of(
    st.tuples(st.just("user"), st.sampled_from(["", " ", "hi", "look"])),
    st.tuples(st.just("assistant"), st.sampled_from(["", "ok"]),
              st.lists(st.sampled_from(_NAMES), max_size=3)),
    st.tuples(st.just("tool"), st.integers(0, 4), st.sampled_from(["", "out"])),
    st.tuples(st.just("system"), st.sampled_from(["", "be brief"])),
), min_size=1, max_size=14)


def _chat_history(ops: list[tuple[Any, ...]]) -> tuple[list[dict[str, Any]], dict[str, tuple[str, str]]]:
    """Ops → Chat messages; tool messages answer a still-unanswered call of the latest assistant
    message (in any order) or, past the end of that list, no call at all. Returns the messages
    and what each answered call id got (name, output)."""
    messages: list[dict[str, Any]] = []
    unanswered: list[tuple[str, str]] = []
    answered: dict[str, tuple[str, str]] = {}
    counter = 0
    for op in ops:
        if op[0] == "user":
            messages.append({"role": "user", "content": op[1]})
        elif op[0] == "system":
            messages.append({"role": "system", "content": op[1]})
        elif op[0] == "assistant":
            calls = []
            for name in op[2]:
                counter += 1
                calls.append({"id": f"call_{counter}", "type": "function",
                              "function": {"name": name, "arguments": json.dumps({"n": counter})}})
            messages.append({"role": "assistant", "content": op[1] or None, **({"tool_calls": calls} if calls else {})})
            unanswered = [(c["id"], c["function"]["name"]) for c in calls]
        elif op[1] < len(unanswered):
            call_id, name = unanswered.pop(op[1])
            messages.append({"role": "tool", "tool_call_id": call_id, "content": op[2]})
            answered[call_id] = (name, op[2])
        else:
            counter += 1
            messages.append({"role": "tool", "tool_call_id": f"orphan_{counter}", "content": op[2]})
    if not messages or messages[-1]["role"] in ("assistant", "system"):
        messages.append({"role": "user", "content": "continue"})
    return messages, answered


@settings(max_examples=300, deadline=None, derandomize=True)
@given(ops=_OPS, model=st.sampled_from([GEMINI, CLAUDE]))
def test_any_chat_history_builds_alternating_contents_with_every_call_answered_once(
        ops: list[tuple[Any, ...]], model: str) -> None:
    messages, answered = _chat_history(ops)
    body = {"model": "m", "messages": messages,
            "tools": [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}} for n in _NAMES]}
    try:
        t = build(openai_chat_request.parse(body), model=model, session_key="k", signatures=FakeSignatures())
    except ProxyError as error:  # only when no message had anything to send
        assert error.kind is ErrorKind.INVALID_REQUEST
        assert not any(m["role"] == "tool" or m.get("tool_calls") or (m["role"] != "system" and m["content"])
                       for m in messages)
        return
    assert_well_formed(t.request)  # alternation, user first, no empty part or text, pairing in call order
    items = contents(t)
    upstream = {v: k for k, v in t.tool_names.items()}
    sent_calls = [c["function"] for m in messages for c in m.get("tool_calls") or ()]
    built_calls = [p["functionCall"] for c in items for p in calls_of(c)]
    assert [(c["name"], c["args"]) for c in built_calls] == [(upstream[f["name"]], json.loads(f["arguments"]))
                                                           for f in sent_calls]
    for index, content in enumerate(items):
        calls = calls_of(content)
        if content["role"] != "model" or not calls:
            continue
        if model == GEMINI:
            assert [p.get("thoughtSignature") for p in calls] == [SKIP_SIGNATURE] + [None] * (len(calls) - 1)
        else:
            assert all("thoughtSignature" not in p for p in content["parts"])
        for response in responses_of(items[index + 1]):
            expected = answered.get(response["id"], (None, INTERRUPTED))[1]
            assert response["response"] == {"result": expected}
    orphans = [m["content"] or "(tool result)" for m in messages
               if m["role"] == "tool" and m["tool_call_id"].startswith("orphan_")]
    user_texts = [text for c in items if c["role"] == "user" for text in texts_of(c)]
    for orphan in orphans:
        assert orphan in user_texts
    systems = [m["content"] for m in messages if m["role"] == "system" and m["content"].strip()]
    assert system_texts(t) == systems
