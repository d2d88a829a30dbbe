"""OpenAI Responses request → upstream request (client-protocols.md §4.2, §7; pure).

What every protocol shares is checked in test_request_translation.py; here: Responses' own
items and tools (instructions, custom / local_shell / namespace / web_search tools and their
kinds, reasoning items, custom and local-shell calls, output arrays, history, text.format)
and the real Codex 0.169 requests.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from daemon.accounts.signatures import Remembered, SignatureStore
from daemon.translate import responses_request
from daemon.translate.upstream_request import SKIP_SIGNATURE, build
from tests.unit.test_request_translation import (
    CLAUDE,
    CLAUDE_THINKING,
    GEMINI,
    FakeSignatures,
    assert_well_formed,
    calls_of,
    client_body,
    contents,
    generation,
    raises_invalid,
    responses_of,
    roles,
    system_texts,
    texts_of,
)

pytestmark = pytest.mark.unit


def respond(items: Any = "hi", model: str = GEMINI, history: list[Any] | None = None, signatures: Any = None,
            **fields: Any) -> tuple[Any, dict[str, str]]:
    conversation, kinds = responses_request.parse({"model": "m", "input": items} | fields, history or [])
    t = build(conversation, model=model, session_key="s",
              signatures=signatures if signatures is not None else FakeSignatures())
    assert_well_formed(t.request)
    return t, kinds


def message(role: str, text: str) -> dict[str, Any]:
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


def function_tool(name: str, **parameters: Any) -> dict[str, Any]:
    return {"type": "function", "name": name, "description": name, "strict": False,
            "parameters": {"type": "object", "properties": parameters, "additionalProperties": False}}


# --- the real Codex 0.169 requests ----------------------------------------------------------


CODEX_FUNCTIONS = ["exec_command", "write_stdin", "request_user_input", "view_image", "get_goal", "create_goal",
                   "update_goal"]


@pytest.mark.parametrize("model", [GEMINI, CLAUDE])
def test_codex_turn_one_builds(model: str) -> None:
    request = client_body("codex.exec-responses.001.json")
    t, kinds = respond(request["input"], model=model, tools=request["tools"], tool_choice=request["tool_choice"],
                       reasoning=request["reasoning"], stream=request["stream"],
                       parallel_tool_calls=request["parallel_tool_calls"], store=False, include=request["include"])
    assert kinds == dict.fromkeys(CODEX_FUNCTIONS, "function")  # the namespace and web_search tools are dropped
    assert [d["name"] for d in t.request["tools"][0]["functionDeclarations"]] == CODEX_FUNCTIONS
    developer = ["".join(part["text"] for part in m["content"]) for m in request["input"] if m.get("role") == "developer"]
    assert system_texts(t) == developer and system_texts(t)[0].startswith("You are a coding agent running in the Codex CLI")
    assert roles(t) == ["user"] and len(contents(t)[0]["parts"]) == 2
    assert texts_of(contents(t)[0])[1].startswith("Create the file hello.txt")
    assert t.stream is True
    assert "additionalProperties" not in json.dumps(t.request["tools"])


def test_codex_turn_two_pairs_the_call_with_its_output_by_call_id() -> None:
    request = client_body("codex.exec-responses.002.json")
    conversation, kinds = responses_request.parse(request, [])
    t = build(conversation, model=GEMINI, session_key=request["prompt_cache_key"], signatures=SignatureStore())
    assert_well_formed(t.request)
    assert kinds == dict.fromkeys(CODEX_FUNCTIONS, "function")
    call_item = next(i for i in request["input"] if i.get("type") == "function_call")
    output_item = next(i for i in request["input"] if i.get("type") == "function_call_output")
    assert call_item["call_id"] == output_item["call_id"] != call_item["id"]
    assert roles(t) == ["user", "model", "user"]
    (call,) = calls_of(contents(t)[1])
    assert call["functionCall"] == {"name": "exec_command", "args": json.loads(call_item["arguments"]),
                                    "id": call_item["call_id"]}
    assert call["thoughtSignature"] == SKIP_SIGNATURE  # Codex sent no reasoning item back
    assert responses_of(contents(t)[2]) == [{"id": call_item["call_id"], "name": "exec_command",
                                             "response": {"result": output_item["output"]}}]
    assert t.tool_names["exec_command"] == "exec_command"


def test_codex_turn_two_with_a_stored_signature_on_claude_restores_thinking() -> None:
    request = client_body("codex.exec-responses.002.json")
    call_id = next(i for i in request["input"] if i.get("type") == "function_call")["call_id"]
    store = SignatureStore()
    store.remember("claude", "claude-sig", call_id, "I will run printf.")
    conversation, _ = responses_request.parse(request, [])
    t = build(conversation, model=CLAUDE_THINKING, session_key="s", signatures=store)
    assert_well_formed(t.request)
    assert contents(t)[1]["parts"][0] == {"text": "I will run printf.", "thought": True, "thoughtSignature": "claude-sig"}


# --- instructions and input shapes --------------------------------------------------------------


def test_instructions_come_first_then_system_and_developer_messages() -> None:
    items = [message("developer", "dev one"), message("user", "hi"), message("system", "sys two"),
             message("assistant", "yo"), message("developer", "dev three"), message("user", "go")]
    t, _ = respond(items, instructions="instructions")
    assert system_texts(t) == ["instructions", "dev one", "sys two", "dev three"]
    assert roles(t) == ["user", "model", "user"]


def test_a_string_input_and_bare_role_items() -> None:
    t, _ = respond("just text")
    assert contents(t) == [{"role": "user", "parts": [{"text": "just text"}]}]
    t, _ = respond([{"role": "user", "content": "bare"}, {"role": "assistant", "content": "reply"},
                    {"role": "user", "content": "again"}])
    assert [texts_of(c) for c in contents(t)] == [["bare"], ["reply"], ["again"]]


def test_history_items_come_before_the_new_input() -> None:
    history = [message("user", "earlier"), message("assistant", "earlier answer"),
               {"type": "function_call", "call_id": "c0", "name": "f", "arguments": "{}"}]
    items = [{"type": "function_call_output", "call_id": "c0", "output": "out"}, message("user", "now")]
    t, _ = respond(items, history=history, tools=[function_tool("f")])
    assert roles(t) == ["user", "model", "user"]
    assert texts_of(contents(t)[0]) == ["earlier"] and texts_of(contents(t)[1]) == ["earlier answer"]
    assert responses_of(contents(t)[2]) == [{"id": "c0", "name": "f", "response": {"result": "out"}}]
    assert texts_of(contents(t)[2]) == ["now"]


def test_items_without_anything_to_replay_are_ignored() -> None:
    items = [message("user", "search"), {"type": "web_search_call", "id": "ws_1", "status": "completed"},
             {"type": "reasoning", "summary": [{"type": "summary_text", "text": "unsigned"}], "encrypted_content": None},
             {"type": "compaction", "encrypted_content": "zzz"}, {"type": "item_reference", "id": "msg_1"},
             {"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
             message("user", "well?")]
    t, _ = respond(items)
    assert contents(t) == [{"role": "user", "parts": [{"text": "search"}, {"text": "well?"}]}]


@pytest.mark.parametrize(("fields", "param"), [
    ({"input": 5}, "input"), ({"input": []}, "input"), ({"input": ["x"]}, "input.0"),
    ({"input": [{"role": "critic", "content": "x"}]}, "input.0.role"),
    ({"input": [{"role": "user", "content": [{"type": "input_video"}]}]}, "input.0.content.0"),
    ({"input": "hi", "instructions": ["a"]}, "instructions"), ({"input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
    ({"input": "hi", "reasoning": {"effort": "ultra"}}, "reasoning.effort"),
    ({"input": "hi", "text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format"),
    ({"input": "hi", "tools": [{"type": "function", "parameters": {}}]}, "tools.0"),
])
def test_malformed_requests_are_invalid_with_their_param(fields: dict[str, Any], param: str) -> None:
    assert raises_invalid(responses_request.parse, {"model": "m"} | fields, []).param == param


def test_parse_does_not_mutate_the_body_or_history() -> None:
    request = client_body("codex.exec-responses.002.json")
    history = [message("user", "old")]
    before = copy.deepcopy((request, history))
    responses_request.parse(request, history)
    assert (request, history) == before


# --- tools and their kinds (§7.5) --------------------------------------------------------------


def test_custom_and_local_shell_tools_become_functions_and_kinds_say_what_they_were() -> None:
    tools = [function_tool("exec_command", cmd={"type": "string"}),
             {"type": "custom", "name": "apply_patch", "description": "Patch files",
              "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"}},
             {"type": "local_shell"}, {"type": "web_search", "external_web_access": False},
             {"type": "namespace", "name": "multi_agent_v1", "tools": [function_tool("spawn_agent")]}]
    t, kinds = respond(tools=tools)
    assert kinds == {"exec_command": "function", "apply_patch": "custom", "local_shell": "local_shell"}
    declarations = {d["name"]: d for d in t.request["tools"][0]["functionDeclarations"]}
    assert list(declarations) == ["exec_command", "apply_patch", "local_shell"]
    patch = declarations["apply_patch"]
    assert patch["description"] == "Patch files"
    assert patch["parameters"]["properties"] == {"input": {"type": "string", "description": "the raw input"}}
    assert patch["parameters"]["required"] == ["input"]
    shell = declarations["local_shell"]["parameters"]
    assert shell["properties"]["command"] == {"type": "array", "items": {"type": "string"},
                                              "description": "the program and its arguments"}
    assert set(shell["properties"]) == {"command", "workdir", "timeout_ms"} and shell["required"] == ["command"]
    assert "grammar" not in json.dumps(t.request) and "spawn_agent" not in json.dumps(t.request)


def test_only_non_function_tools_mean_no_declarations() -> None:
    t, kinds = respond(tools=[{"type": "web_search"}, {"type": "file_search", "vector_store_ids": []}])
    assert kinds == {} and "tools" not in t.request and "toolConfig" not in t.request


def test_custom_and_local_shell_calls_replay_as_function_calls() -> None:
    items = [message("user", "patch it"),
             {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "*** Begin Patch\n"},
             {"type": "local_shell_call", "call_id": "c2", "status": "completed",
              "action": {"type": "exec", "command": ["ls", "-la"], "working_directory": "/tmp", "timeout_ms": 500}},
             {"type": "local_shell_call", "call_id": "c3", "action": {"type": "exec", "command": ["pwd"]}},
             {"type": "custom_tool_call_output", "call_id": "c1", "output": "patched"},
             {"type": "local_shell_call_output", "call_id": "c3", "output": "/"},
             {"type": "local_shell_call_output", "call_id": "c2", "output": "total 0"}]
    tools = [{"type": "custom", "name": "apply_patch"}, {"type": "local_shell"}]
    t, _ = respond(items, tools=tools)
    assert [p["functionCall"] for p in calls_of(contents(t)[1])] == [
        {"name": "apply_patch", "args": {"input": "*** Begin Patch\n"}, "id": "c1"},
        {"name": "local_shell", "args": {"command": ["ls", "-la"], "workdir": "/tmp", "timeout_ms": 500}, "id": "c2"},
        {"name": "local_shell", "args": {"command": ["pwd"]}, "id": "c3"}]
    assert [(r["id"], r["name"], r["response"]["result"]) for r in responses_of(contents(t)[2])] == [
        ("c1", "apply_patch", "patched"), ("c2", "local_shell", "total 0"), ("c3", "local_shell", "/")]


def test_function_call_output_arrays_give_text_and_images_after_the_responses() -> None:
    items = [message("user", "look"), {"type": "function_call", "call_id": "c1", "name": "view_image", "arguments": "{}"},
             {"type": "function_call_output", "call_id": "c1", "output": [
                 {"type": "input_text", "text": "here "}, {"type": "input_image", "image_url": "data:image/webp;base64,UklG"},
                 {"type": "input_text", "text": "it is"}]}]
    t, _ = respond(items, tools=[function_tool("view_image")])
    assert contents(t)[2]["parts"] == [
        {"functionResponse": {"id": "c1", "name": "view_image", "response": {"result": "here it is"}}},
        {"inlineData": {"mimeType": "image/webp", "data": "UklG"}}]


def test_a_forced_function_tool_choice_and_required() -> None:
    tools = [function_tool("do.it")]
    forced, _ = respond(tools=tools, tool_choice={"type": "function", "name": "do.it"})
    assert forced.request["toolConfig"]["functionCallingConfig"] == {"mode": "ANY", "allowedFunctionNames": ["do_it"]}
    assert respond(tools=tools, tool_choice={"type": "web_search"})[0].request["toolConfig"] == {
        "functionCallingConfig": {"mode": "AUTO"}}


# --- reasoning items and signatures (§7.8) -----------------------------------------------------


def _signed_turn(signature: str, summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [message("user", "go"), {"type": "reasoning", "id": "rs_1", "summary": summary, "encrypted_content": signature},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "1"},
            {"type": "function_call_output", "call_id": "c2", "output": "2"}]


def test_a_reasoning_items_encrypted_content_signs_the_first_gemini_call() -> None:
    t, _ = respond(_signed_turn("gem-sig", [{"type": "summary_text", "text": "thinking"}]), tools=[function_tool("f")])
    assert [c.get("thoughtSignature") for c in calls_of(contents(t)[1])] == ["gem-sig", None]
    assert all(not p.get("thought") for p in contents(t)[1]["parts"])


def test_a_reasoning_item_replays_to_claude_as_a_signed_thought_with_its_summary() -> None:
    summary = [{"type": "summary_text", "text": "First, "}, {"type": "summary_text", "text": "call f."}]
    t, _ = respond(_signed_turn("claude-sig", summary), tools=[function_tool("f")], model=CLAUDE_THINKING,
                   signatures=FakeSignatures(families={"claude-sig": "claude"}), reasoning={"effort": "low"})
    assert contents(t)[1]["parts"][0] == {"text": "First, call f.", "thought": True, "thoughtSignature": "claude-sig"}


def test_an_unsummarised_reasoning_item_replays_to_claude_with_the_sealed_thinking() -> None:
    store = FakeSignatures(tools={"c1": Remembered("claude", "claude-sig", "the sealed thinking")},
                           families={"claude-sig": "claude"})
    t, _ = respond(_signed_turn("claude-sig", []), tools=[function_tool("f")], model=CLAUDE_THINKING,
                   signatures=store, reasoning={"effort": "high"})
    assert contents(t)[1]["parts"][0] == {"text": "the sealed thinking", "thought": True, "thoughtSignature": "claude-sig"}


# --- reasoning effort, limits, text.format -----------------------------------------------------


@pytest.mark.parametrize(("effort", "budget"), [("minimal", 1024), ("low", 4096), ("medium", 16384), ("high", 32000),
                                                ("xhigh", 63999)])
def test_reasoning_effort_on_claude(effort: str, budget: int) -> None:
    t, _ = respond(model=CLAUDE, reasoning={"effort": effort, "summary": "auto"})
    assert generation(t)["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": budget} and t.show_thoughts


@pytest.mark.parametrize(("reasoning", "model", "on"), [
    ({"effort": "none"}, CLAUDE_THINKING, False), ({"summary": "auto"}, CLAUDE_THINKING, True), (None, CLAUDE_THINKING, True),
    ({"summary": "auto"}, CLAUDE, True), ({"effort": "medium"}, "gemini-2.5-pro", True), ({"effort": "none"}, "gemini-2.5-pro", False),
])
# Summaries asked for without an effort (what Codex sends by default) think at OpenAI's default effort.
def test_reasoning_on_and_off(reasoning: dict[str, Any] | None, model: str, on: bool) -> None:
    t, _ = respond(model=model, **({"reasoning": reasoning} if reasoning is not None else {}))
    assert t.show_thoughts is on and ("thinkingConfig" in generation(t)) is on


def test_reasoning_effort_gives_gemini_3_a_level() -> None:
    t, _ = respond(reasoning={"effort": "medium"})
    assert generation(t)["thinkingConfig"] == {"includeThoughts": True, "thinkingLevel": "medium"}


def test_max_output_tokens_and_sampling() -> None:
    t, _ = respond(max_output_tokens=777, temperature=1.5, top_p=0.5, model=CLAUDE)
    assert generation(t) == {"maxOutputTokens": 777, "temperature": 1.0, "topP": 0.5}


def test_text_format_json_schema_and_json_object() -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"], "additionalProperties": False}
    t, _ = respond(text={"verbosity": "low", "format": {"type": "json_schema", "name": "r", "strict": True, "schema": schema}})
    config = generation(t)
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"]["properties"] == {"ok": {"type": "boolean"}} and config["responseSchema"]["required"] == ["ok"]
    assert "additionalProperties" not in json.dumps(config)
    t, _ = respond(text={"format": {"type": "json_object"}})
    assert generation(t)["responseMimeType"] == "application/json" and "responseSchema" not in generation(t)
    t, _ = respond(text={"format": {"type": "text"}, "verbosity": "high"})
    assert "responseMimeType" not in generation(t) and "verbosity" not in json.dumps(t.request)


def test_responses_has_no_stop_sequences_and_client_only_fields_stay_home() -> None:
    t, _ = respond(store=False, include=["reasoning.encrypted_content"], prompt_cache_key="k", metadata={"a": "b"},
                   client_metadata={"x-codex-turn-metadata": "{}"}, truncation="auto", user="u", previous_response_id=None)
    assert t.stop_sequences == ()
    text = json.dumps(t.request)
    for leftover in ("include", "prompt_cache_key", "metadata", "truncation", "store"):
        assert f'"{leftover}"' not in text
