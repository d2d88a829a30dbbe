"""The stream-grammar checkers in tests/checkers accept every real recorded stream and reject
each kind of breakage (mutation tests: a real stream with exactly one rule broken)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.checkers import GrammarError
from tests.checkers.anthropic import check_anthropic_stream
from tests.checkers.gemini import check_gemini_stream
from tests.checkers.openai_chat import check_openai_chat_stream
from tests.checkers.responses import check_responses_stream

pytestmark = pytest.mark.unit

FIX = Path(__file__).parent.parent / "fixtures" / "sdk-streams"
CHECKERS: dict[str, Callable[..., dict]] = {"anthropic": check_anthropic_stream,
                                            "openai-chat": check_openai_chat_stream,
                                            "openai-responses": check_responses_stream,
                                            "gemini": check_gemini_stream}
# The anthropic-sdk-python fixtures are hand-shipped SDK test data, not network captures: they
# lack the blank line after the last event, and the refusal one has an empty text block. Both
# are things the daemon must never do, so the checkers only accept them when told to.
LENIENT = {"sdk-python.basic_response.sse": {"allow_unterminated": True},
           "sdk-python.tool_use_response.sse": {"allow_unterminated": True},
           "sdk-python.refusal_response.sse": {"allow_unterminated": True, "allow_empty_text": True}}


def raw(proto: str, name: str) -> bytes:
    return (FIX / proto / name).read_bytes()


def load(proto: str, name: str) -> list[Any]:
    """A fixture as a list of data payloads (parsed JSON, or the string '[DONE]')."""
    text = raw(proto, name).decode().replace("\r\n", "\n")
    out = []
    for block in filter(str.strip, text.split("\n\n")):
        data = next(line[6:] for line in block.split("\n") if line.startswith("data: "))
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


def dump(proto: str, events: list[Any], *, renumber: bool = False) -> bytes:
    parts = []
    for n, data in enumerate(events):
        if renumber:
            data["sequence_number"] = n
        text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        head = f"event: {data['type']}\n" if proto in ("anthropic", "openai-responses") else ""
        parts.append(f"{head}data: {text}\n\n")
    body = "".join(parts)
    return (body.replace("\n", "\r\n") if proto == "gemini" else body).encode()


def pos(events: list[Any], pred: Callable[[Any], bool], n: int = 0) -> int:
    return [k for k, e in enumerate(events) if isinstance(e, dict) and pred(e)][n]


def typ(t: str, **kw: Any) -> Callable[[Any], bool]:
    return lambda e: e.get("type") == t and all(e.get(k) == v for k, v in kw.items())


def dtyp(t: str) -> Callable[[Any], bool]:  # anthropic content_block_delta of a delta type
    return lambda e: e.get("type") == "content_block_delta" and e["delta"]["type"] == t


# ---------------------------------------------------------------------------------------------
# Real fixtures pass


def fixtures(proto: str) -> list[str]:
    return sorted(p.name for p in (FIX / proto).glob("*.sse"))


@pytest.mark.parametrize("proto,name", [(p, n) for p in CHECKERS for n in fixtures(p)])
def test_every_real_fixture_passes(proto: str, name: str) -> None:
    summary = CHECKERS[proto](raw(proto, name), **LENIENT.get(name, {}))
    assert summary["error"] is None


@pytest.mark.parametrize("name", sorted(LENIENT))
def test_lenient_flags_are_needed_for_sdk_fixtures(name: str) -> None:
    with pytest.raises(GrammarError):
        check_anthropic_stream(raw("anthropic", name))


def test_fixture_copies_are_complete() -> None:
    assert (FIX / "SOURCES.md").is_file()
    assert {p: len(fixtures(p)) for p in CHECKERS} == {"anthropic": 7, "openai-chat": 7, "openai-responses": 8,
                                                       "gemini": 4}


def test_anthropic_summaries() -> None:
    s = check_anthropic_stream(raw("anthropic", "fantasy.thinking-tool.0.sse"))
    assert [b["type"] for b in s["blocks"]] == ["thinking", "tool_use"]
    assert s["blocks"][0]["thinking"].startswith("The user is asking for weather information for Florence")
    assert s["blocks"][0]["signature"].startswith("EtYDCkYICxgCKkAVHEWRYo6RgSMs")
    assert s["blocks"][1] == {"type": "tool_use", "id": "toolu_01Js4AMfx5qpTLhwTusnvT68", "name": "weather",
                              "input": {"location": "Florence, Italy"}}
    assert (s["stop_reason"], s["pings"], s["usage"]["input_tokens"], s["usage"]["output_tokens"]) == ("tool_use", 1, 424, 119)
    s = check_anthropic_stream(raw("anthropic", "fantasy.multi-tool.0.sse"))
    assert [(b.get("name"), b.get("input")) for b in s["blocks"][1:]] == [("add", {"a": 2, "b": 3}),
                                                                         ("multiply", {"a": 2, "b": 3})]
    assert s["blocks"][0]["text"] == "I'll add and multiply the numbers 2 and 3 for you."
    s = check_anthropic_stream(raw("anthropic", "sdk-python.basic_response.sse"), allow_unterminated=True)
    assert (s["blocks"], s["stop_reason"], s["usage"]) == ([{"type": "text", "text": "Hello there!"}], "end_turn",
                                                           {"input_tokens": 11, "output_tokens": 6})
    s = check_anthropic_stream(raw("anthropic", "sdk-python.refusal_response.sse"), **LENIENT["sdk-python.refusal_response.sse"])
    assert s["stop_reason"] == "refusal"


def test_openai_chat_summaries() -> None:
    s = check_openai_chat_stream(raw("openai-chat", "sdk-python.tool.parallel.sse"), include_usage=True)
    assert [(c["id"], c["name"], c["parsed"]) for c in s["tool_calls"]] == [
        ("call_JMW1whyEaYG438VE1OIflxA2", "GetWeatherArgs", {"city": "Edinburgh", "country": "GB", "units": "c"}),
        ("call_DNYTawLBoN8fj3KN6qU9N1Ou", "get_stock_price", {"ticker": "AAPL", "exchange": "NASDAQ"})]
    assert (s["finish_reason"], s["usage"]["total_tokens"], s["content"]) == ("tool_calls", 209, "")
    s = check_openai_chat_stream(raw("openai-chat", "fantasy.multi-tool.1.sse"))
    assert s["content"] == "The sum of 2 and 3 is 5, and the product is 6."
    assert (s["finish_reason"], s["id"], s["model"]) == ("stop", "chatcmpl-DuLdNvsdmTNPbya2tqjr8GbYubTqm", "gpt-4o-2024-08-06")
    s = check_openai_chat_stream(raw("openai-chat", "sdk-python.length.sse"))
    assert (s["content"], s["finish_reason"], s["usage"]["completion_tokens"]) == ('{"', "length", 1)


def test_responses_summaries() -> None:
    s = check_responses_stream(raw("openai-responses", "fantasy.gpt-5.tool.0.sse"))
    assert [it["type"] for it in s["items"]] == ["reasoning", "function_call"]
    call = s["items"][1]
    assert (call["name"], call["call_id"], call["parsed"]) == ("weather", "call_nYgMM3oZuxort2H8Ky4uP5RE",
                                                               {"location": "Florence, Italy"})
    assert (s["status"], s["usage"]["total_tokens"]) == ("completed", 140)
    s = check_responses_stream(raw("openai-responses", "fantasy.azure-gpt-5-mini.summary-thinking.1.sse"))
    assert len(s["items"][0]["summary"]) == 3 and s["items"][0]["summary"][1].startswith("**Conveying weather advice**")
    assert s["items"][0]["encrypted_content"].startswith("gAAAAA")
    assert s["text"].startswith("Current temperature in Florence, Italy: 40°C (104°F).")
    s = check_responses_stream(raw("openai-responses", "fantasy.gpt-4o.tool.1.sse"))
    assert s["text"] == "The current temperature in Florence, Italy is 40°C."


def test_gemini_summaries() -> None:
    s = check_gemini_stream(raw("gemini", "fantasy.gemini-3-pro-preview.multi-tool.0.sse"))
    assert [(c["name"], c["args"], c["id"]) for c in s["function_calls"]] == [("add", {"a": 2, "b": 3}, "8hd01vsf"),
                                                                            ("multiply", {"b": 3, "a": 2}, "k0srpqrc")]
    assert s["function_calls"][0]["thought_signature"].startswith("EsINCr8N") and not s["function_calls"][1]["thought_signature"]
    assert (s["finish_reason"], s["usage"]["thoughtsTokenCount"], s["chunks"]) == ("STOP", 438, 3)
    s = check_gemini_stream(raw("gemini", "fantasy.gemini-3-pro-preview.thinking.1.sse"))
    assert s["text"] == "The current weather in Florence, Italy is 40°C (104°F). Stay cool, it's quite hot!"
    assert len(s["thought_signatures"]) == 1 and s["response_id"] == "ywCzae2oL5ODz7IP29qJmQw"


# ---------------------------------------------------------------------------------------------
# Allowed variations: line endings, heartbeats, in-band errors

A_T, A_M = "fantasy.thinking-tool.0.sse", "fantasy.multi-tool.0.sse"
C_P, C_F = "sdk-python.tool.parallel.sse", "fantasy.multi-tool.1.sse"
R_1, R_2, R_3 = "fantasy.gpt-5.tool.0.sse", "fantasy.gpt-4o.tool.1.sse", "fantasy.azure-gpt-5-mini.summary-thinking.1.sse"
G_1, G_2 = "fantasy.gemini-3-pro-preview.thinking.1.sse", "fantasy.gemini-3-pro-preview.multi-tool.0.sse"


@pytest.mark.parametrize("proto,name", [("anthropic", A_T), ("openai-chat", C_P), ("openai-responses", R_3)])
def test_crlf_framing_is_accepted(proto: str, name: str) -> None:
    body = raw(proto, name)
    assert CHECKERS[proto](body.replace(b"\n", b"\r\n")) == CHECKERS[proto](body)


def test_gemini_lf_framing_and_blank_line_heartbeats() -> None:
    body = raw("gemini", G_1)
    assert check_gemini_stream(body.replace(b"\r\n", b"\n")) == check_gemini_stream(body)
    assert check_gemini_stream(b"\r\n\r\n" + body.replace(b"\r\n\r\n", b"\r\n\r\n\r\n\r\n")) == check_gemini_stream(body)


def test_anthropic_pings_anywhere_before_the_end() -> None:
    ping = {"type": "ping"}
    events = load("anthropic", A_M)
    for k in (len(events) - 1, 8, 3, 0):
        events.insert(k, ping)
    assert check_anthropic_stream(dump("anthropic", events))["pings"] == 5


def test_openai_comment_heartbeats() -> None:
    body = b": keep-alive\n\n" + raw("openai-chat", C_P).replace(b"\n\ndata: ", b"\n\n: keep-alive\n\ndata: ", 3)
    assert check_openai_chat_stream(body)["heartbeats"] == 4
    body = raw("openai-responses", R_2).replace(b"\n\nevent: ", b"\n\n: keep-alive\n\nevent: ", 5)
    assert check_responses_stream(b": keep-alive\n\n" + body)["heartbeats"] == 6


def test_in_band_errors_end_streams_cleanly() -> None:
    events = load("anthropic", A_M)[:6] + [{"type": "error", "error": {"type": "overloaded_error", "message": "x"}}]
    assert check_anthropic_stream(dump("anthropic", events))["error"] == {"type": "overloaded_error", "message": "x"}
    events = load("openai-chat", C_F)[:5] + [{"error": {"message": "boom", "type": "server_error", "param": None, "code": None}}]
    assert check_openai_chat_stream(dump("openai-chat", events))["error"]["message"] == "boom"
    events = load("openai-responses", R_2)[:6] + [{"type": "error", "code": "server_error", "message": "boom", "param": None}]
    assert check_responses_stream(dump("openai-responses", events, renumber=True))["error"]["message"] == "boom"
    events = load("openai-responses", R_2)
    failed = events[-1]
    failed.update(type="response.failed")
    failed["response"].update(status="failed", error={"code": "server_error", "message": "boom"}, usage=None)
    assert check_responses_stream(dump("openai-responses", events))["status"] == "failed"
    events = load("gemini", G_1)[:1] + [{"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}]
    assert check_gemini_stream(dump("gemini", events))["error"]["code"] == 503


# ---------------------------------------------------------------------------------------------
# Mutations: each breaks exactly one rule of a real stream and must raise GrammarError(rule)


def _set(e: list, k: int, **kw: Any) -> list:
    e[k].update(kw)
    return e


def _move(e: list, src: int, dst: int) -> list:
    e.insert(dst, e.pop(src))
    return e


def _a_delta_type(e: list, t: str, new: dict) -> list:
    e[pos(e, dtyp(t))]["delta"] = new
    return e


def _a_drop(e: list, pred: Callable[[Any], bool]) -> list:
    return [x for x in e if not pred(x)]


def _a_reindex(e: list) -> list:
    for x in e:
        if x.get("index") == 2:
            x["index"] = 3
    return e


def _a_json(e: list, fragments: list[str]) -> list:
    ks = [k for k, x in enumerate(e) if x.get("index") == 1 and x["type"] == "content_block_delta"]
    for k in ks:
        e[k]["delta"]["partial_json"] = ""
    e[ks[0]]["delta"]["partial_json"] = "".join(fragments)
    return e


ERR = {"type": "error", "error": {"type": "api_error", "message": "x"}}
A_MUTATIONS: list[tuple[str, str, Callable[[list], Any], str]] = [
    ("drop message_start", A_M, lambda e: e[1:], "message-start"),
    ("message_start twice", A_M, lambda e: e[:1] + e, "message-start"),
    ("skip a block index", A_M, _a_reindex, "index-order"),
    ("delta for a closed block", A_M, lambda e: e[:12] + [copy.deepcopy(e[3])] + e[12:], "delta-closed-block"),
    ("delta for a never-started index", A_M, lambda e: _set(e, pos(e, dtyp("input_json_delta")), index=7), "delta-closed-block"),
    ("two blocks open", A_M, lambda e: _a_drop(e, typ("content_block_stop", index=0)), "one-open-block"),
    ("text_delta into a thinking block", A_T, lambda e: _a_delta_type(e, "thinking_delta", {"type": "text_delta", "text": "x"}), "delta-kind"),
    ("input_json_delta into a text block", A_M, lambda e: _a_delta_type(e, "text_delta", {"type": "input_json_delta", "partial_json": "{}"}), "delta-kind"),
    ("signature after the block stop", A_T, lambda e: _move(e, pos(e, dtyp("signature_delta")), pos(e, typ("content_block_stop"))), "delta-closed-block"),
    ("thinking_delta after signature", A_T, lambda e: _move(e, pos(e, dtyp("signature_delta")), pos(e, dtyp("signature_delta")) - 1), "signature-order"),
    ("empty text block", A_M, lambda e: _a_drop(e, dtyp("text_delta")), "empty-text-block"),
    ("text block of empty deltas", A_M, lambda e: [x["delta"].update(text="") or x if dtyp("text_delta")(x) else x for x in e], "empty-text-block"),
    ("truncated tool JSON", A_M, lambda e: _a_json(e, ['{"a": 2', ', "b"']), "tool-json"),
    ("tool JSON not an object", A_M, lambda e: _a_json(e, ["[2, 3]"]), "tool-json"),
    ("message_delta twice", A_M, lambda e: e[:-1] + e[-2:], "message-delta-once"),
    ("invalid stop_reason", A_M, lambda e: e[-2]["delta"].update(stop_reason="stop") or e, "stop-reason"),
    ("end_turn with tool_use blocks", A_M, lambda e: e[-2]["delta"].update(stop_reason="end_turn") or e, "stop-reason"),
    ("stop_sequence reason without sequence", A_M, lambda e: e[-2]["delta"].update(stop_reason="stop_sequence") or e, "stop-sequence"),
    ("output_tokens not cumulative", A_M, lambda e: e[-2]["usage"].update(output_tokens=0) or e, "usage-cumulative"),
    ("message_delta with a block open", A_M, lambda e: e[:-3] + e[-2:], "one-open-block"),
    ("missing message_stop", A_M, lambda e: e[:-1], "truncated"),
    ("ping after message_stop", A_M, lambda e: e + [{"type": "ping"}], "after-end"),
    ("event after an error", A_M, lambda e: e[:5] + [ERR] + e[5:], "after-end"),
    ("unknown error type", A_M, lambda e: e[:5] + [{"type": "error", "error": {"type": "boom", "message": "x"}}], "error-shape"),
    ("event name differs from data.type", A_M, lambda e: dump("anthropic", e).replace(b"event: ping", b"event: pong"), "event-name"),
    ("event without event: line", A_M, lambda e: dump("anthropic", e).replace(b"event: message_delta\n", b""), "event-line"),
    ("SSE comment heartbeat", A_M, lambda e: dump("anthropic", e).replace(b"\n\n", b"\n\n: keep-alive\n\n", 1), "comment"),
    ("no blank line after the last event", A_M, lambda e: dump("anthropic", e)[:-1], "unterminated"),
    ("bare CR line end", A_M, lambda e: dump("anthropic", e).replace(b"\n", b"\r", 1), "bare-cr"),
]


@pytest.mark.parametrize("name,rule,mutate", [pytest.param(f, r, m, id=i) for i, f, m, r in A_MUTATIONS])
def test_anthropic_mutation_is_rejected(name: str, rule: str, mutate: Callable[[list], Any]) -> None:
    assert check_anthropic_stream(dump("anthropic", load("anthropic", name)))  # the unbroken stream passes
    body = mutate(load("anthropic", name))
    with pytest.raises(GrammarError) as exc:
        check_anthropic_stream(body if isinstance(body, bytes) else dump("anthropic", body))
    assert exc.value.rule == rule, str(exc.value)


def _c_tool(e: list, k: int, **entry: Any) -> list:
    """Rewrite the single tool_calls entry of chunk k."""
    e[k]["choices"][0]["delta"]["tool_calls"][0].update(entry)
    return e


def _c_call1(e: list) -> int:
    return pos(e, lambda x: bool(x["choices"]) and x["choices"][0]["delta"].get("tool_calls", [{}])[0].get("id") == "call_DNYTawLBoN8fj3KN6qU9N1Ou")


def _c_finish(e: list) -> int:
    return pos(e, lambda x: bool(x["choices"]) and x["choices"][0]["finish_reason"] is not None)


C_ERR = {"error": {"message": "boom", "type": "server_error", "param": None, "code": None}}
C_MUTATIONS: list[tuple[str, str, Callable[[list], Any], str, dict]] = [
    ("missing [DONE]", C_F, lambda e: e[:-1], "done-last", {}),
    ("[DONE] twice", C_F, lambda e: e + ["[DONE]"], "done-last", {}),
    ("chunk after [DONE]", C_F, lambda e: e + [e[1]], "done-last", {}),
    ("two finish_reason chunks", C_F, lambda e: e[:-2] + e[-3:], "finish-once", {}),
    ("no finish_reason chunk", C_F, lambda e: e[:-3] + e[-1:], "finish-once", {}),
    ("role repeated", C_F, lambda e: e[2]["choices"][0]["delta"].update(role="assistant") or e, "role-once", {}),
    ("first chunk without role", C_F, lambda e: e[0]["choices"][0]["delta"].pop("role") and e, "role-first", {}),
    ("id changes mid-stream", C_F, lambda e: _set(e, 3, id="chatcmpl-other"), "same-id", {}),
    ("model changes mid-stream", C_F, lambda e: _set(e, 3, model="gpt-4o"), "same-model", {}),
    ("wrong object", C_F, lambda e: _set(e, 2, object="chat.completion"), "object", {}),
    ("two choices", C_F, lambda e: e[2]["choices"].append(e[2]["choices"][0]) or e, "choices", {}),
    ("tool call index gap", C_P, lambda e: [_c_tool(e, k, index=2) for k in range(_c_call1(e), _c_finish(e))][0], "tool-call-index", {}),
    ("function.name repeated", C_P, lambda e: _c_tool(e, 3, function={"name": "GetWeatherArgs", "arguments": "ty"}), "tool-call-repeat", {}),
    ("first delta of a call without id", C_P, lambda e: e[_c_call1(e)]["choices"][0]["delta"]["tool_calls"][0].pop("id") and e, "tool-call-first", {}),
    ("arguments to an earlier call", C_P, lambda e: _c_tool(e, _c_call1(e) + 1, index=0), "tool-call-order", {}),
    ("truncated tool arguments", C_P, lambda e: e[:_c_finish(e) - 1] + e[_c_finish(e):], "tool-json", {}),
    ("stop with tool calls", C_P, lambda e: e[_c_finish(e)]["choices"][0].update(finish_reason="stop") or e, "finish-reason", {}),
    ("invalid finish_reason", C_F, lambda e: e[-3]["choices"][0].update(finish_reason="max_tokens") or e, "finish-reason", {}),
    ("finish chunk with content", C_F, lambda e: e[-3]["choices"][0].update(delta={"content": "x"}) or e, "finish-delta", {}),
    ("usage chunk not requested", C_F, lambda e: e, "usage-chunk", {"include_usage": False}),
    ("usage chunk missing", C_F, lambda e: e[:-2] + e[-1:], "usage-chunk", {"include_usage": True}),
    ("usage on a content chunk", C_F, lambda e: _set(e, 2, usage=e[-2]["usage"]), "usage-null", {}),
    ("usage totals inconsistent", C_F, lambda e: e[-2]["usage"].update(total_tokens=1) or e, "usage", {}),
    ("[DONE] after an error chunk", C_F, lambda e: e[:4] + [C_ERR, "[DONE]"], "after-error", {}),
    ("event: line in a chat stream", C_F, lambda e: b"event: chunk\n" + dump("openai-chat", e), "field", {}),
    ("data: without the space", C_F, lambda e: dump("openai-chat", e).replace(b"data: {", b"data:{", 1), "field-space", {}),
    ("two data lines in one event", C_F, lambda e: dump("openai-chat", e).replace(b"}\n\ndata: ", b"}\ndata: ", 1), "one-field", {}),
]


@pytest.mark.parametrize("name,rule,mutate,kwargs", [pytest.param(f, r, m, k, id=i) for i, f, m, r, k in C_MUTATIONS])
def test_openai_chat_mutation_is_rejected(name: str, rule: str, mutate: Callable[[list], Any], kwargs: dict) -> None:
    assert check_openai_chat_stream(dump("openai-chat", load("openai-chat", name)))
    body = mutate(load("openai-chat", name))
    with pytest.raises(GrammarError) as exc:
        check_openai_chat_stream(body if isinstance(body, bytes) else dump("openai-chat", body), **kwargs)
    assert exc.value.rule == rule, str(exc.value)


def _r(t: str) -> Callable[[Any], bool]:
    return typ("response." + t)


def _r_renumber(e: list) -> list:
    for n, x in enumerate(e):
        x["sequence_number"] = n
    return e


def _r_args_truncated(e: list) -> list:
    e = _a_drop(e, lambda x: x is e[pos(e, _r("function_call_arguments.delta"), -1)])
    text = "".join(x["delta"] for x in e if x["type"] == "response.function_call_arguments.delta")
    e[pos(e, _r("function_call_arguments.done"))]["arguments"] = text
    e[pos(e, _r("output_item.done"), 1)]["item"]["arguments"] = text
    return _r_renumber(e)


def _r_incomplete(e: list) -> list:
    e[-1]["type"] = "response.incomplete"
    e[-1]["response"]["status"] = "incomplete"
    return e


R_MUTATIONS: list[tuple[str, str, Callable[[list], Any], str]] = [
    ("sequence_number gap", R_2, lambda e: _set(e, 5, sequence_number=6), "sequence-number"),
    ("sequence_number repeated", R_2, lambda e: _set(e, 3, sequence_number=2), "sequence-number"),
    ("response.created not first", R_2, lambda e: _r_renumber(_move(e, 1, 0)), "stream-start"),
    ("in_progress missing", R_2, lambda e: _r_renumber(e[:1] + e[2:]), "stream-start"),
    ("output_text.done differs from deltas", R_2, lambda e: e[pos(e, _r("output_text.done"))].update(text="nope") or e, "done-text"),
    ("content_part.done differs", R_2, lambda e: e[pos(e, _r("content_part.done"))]["part"].update(text="nope") or e, "done-text"),
    ("output_item.done text differs", R_2, lambda e: e[pos(e, _r("output_item.done"))]["item"]["content"][0].update(text="x") or e, "done-text"),
    ("delta for another item id", R_2, lambda e: _set(e, pos(e, _r("output_text.delta")), item_id="msg_other"), "item-mismatch"),
    ("delta before its item is added", R_2, lambda e: _r_renumber(_move(e, pos(e, _r("output_text.delta")), 2)), "item-open"),
    ("delta of the wrong item kind", R_2, lambda e: _set(e, pos(e, _r("output_text.delta")), type="response.function_call_arguments.delta"), "item-kind"),
    ("output_index gap", R_1, lambda e: [x.update(output_index=2) for x in e[4:-1]] and e, "output-index"),
    ("item added while another is open", R_1, lambda e: _r_renumber(e[:3] + e[4:]), "item-open"),
    ("function_call_arguments.done differs", R_1, lambda e: e[pos(e, _r("function_call_arguments.done"))].update(arguments="{}") or e, "done-text"),
    ("truncated function arguments", R_1, _r_args_truncated, "tool-json"),
    ("args delta after .done", R_1, lambda e: _r_renumber(e[:14] + [dict(e[12], delta="")] + e[14:]), "delta-order"),
    ("summary_index wrong", R_3, lambda e: _set(e, pos(e, _r("reasoning_summary_text.delta")), summary_index=1), "summary-index"),
    ("summary text.done differs", R_3, lambda e: _set(e, pos(e, _r("reasoning_summary_text.done")), text="x"), "done-text"),
    ("missing response.completed", R_2, lambda e: e[:-1], "truncated"),
    ("completed without usage", R_2, lambda e: e[-1]["response"].update(usage=None) or e, "usage"),
    ("usage totals inconsistent", R_2, lambda e: e[-1]["response"]["usage"].update(total_tokens=1) or e, "usage"),
    ("completed with wrong status", R_2, lambda e: e[-1]["response"].update(status="in_progress") or e, "response-status"),
    ("completed output list differs", R_1, lambda e: e[-1]["response"]["output"].pop() and e, "output-list"),
    ("incomplete without a reason", R_2, _r_incomplete, "incomplete-reason"),
    ("event after response.completed", R_2, lambda e: _r_renumber(e + [copy.deepcopy(e[1])]), "after-end"),
    ("event name differs from data.type", R_2, lambda e: dump("openai-responses", e).replace(b"event: response.in_progress", b"event: response.created"), "event-name"),
]


@pytest.mark.parametrize("name,rule,mutate", [pytest.param(f, r, m, id=i) for i, f, m, r in R_MUTATIONS])
def test_responses_mutation_is_rejected(name: str, rule: str, mutate: Callable[[list], Any]) -> None:
    assert check_responses_stream(dump("openai-responses", load("openai-responses", name)))
    body = mutate(load("openai-responses", name))
    with pytest.raises(GrammarError) as exc:
        check_responses_stream(body if isinstance(body, bytes) else dump("openai-responses", body))
    assert exc.value.rule == rule, str(exc.value)


def _g_part(e: list, k: int, **kw: Any) -> list:
    e[k]["candidates"][0]["content"]["parts"][0].update(kw)
    return e


G_MUTATIONS: list[tuple[str, str, Callable[[list], Any], str]] = [
    ("SSE comment", G_1, lambda e: dump("gemini", e).replace(b"\r\n\r\n", b"\r\n\r\n: ping\r\n\r\n", 1), "comment"),
    ("event: line", G_1, lambda e: b"event: message\r\n" + dump("gemini", e), "field"),
    ("data: without the space", G_1, lambda e: dump("gemini", e).replace(b"data: {", b"data:{", 1), "field-space"),
    ("data: with two spaces", G_1, lambda e: dump("gemini", e).replace(b"data: {", b"data:  {", 1), "field-space"),
    ("[DONE] at the end", G_1, lambda e: e + ["[DONE]"], "no-done"),
    ("v1internal envelope leaked", G_1, lambda e: [{"response": e[0], "traceId": "t", "metadata": {}}] + e[1:], "envelope-leak"),
    ("no finishReason", G_1, lambda e: e[:-1], "truncated"),
    ("chunk after the finish", G_1, lambda e: e + [e[0]], "after-end"),
    ("usage goes down", G_1, lambda e: e[1]["usageMetadata"].update(candidatesTokenCount=1) or e, "usage-cumulative"),
    ("part with two data keys", G_1, lambda e: _g_part(e, 0, functionCall={"name": "f", "args": {}}), "part-shape"),
    ("functionCall without name", G_2, lambda e: e[0]["candidates"][0]["content"]["parts"][0]["functionCall"].pop("name") and e, "function-call"),
    ("role user", G_1, lambda e: e[0]["candidates"][0]["content"].update(role="user") or e, "content-shape"),
    ("invalid finishReason", G_1, lambda e: e[-1]["candidates"][0].update(finishReason="end_turn") or e, "finish-reason"),
    ("chunk after an error", G_1, lambda e: e[:1] + [{"error": {"code": 503, "message": "x", "status": "UNAVAILABLE"}}] + e[1:], "after-end"),
    ("two data lines in one event", G_1, lambda e: dump("gemini", e).replace(b"}\r\n\r\ndata: ", b"}\r\ndata: ", 1), "one-field"),
]


@pytest.mark.parametrize("name,rule,mutate", [pytest.param(f, r, m, id=i) for i, f, m, r in G_MUTATIONS])
def test_gemini_mutation_is_rejected(name: str, rule: str, mutate: Callable[[list], Any]) -> None:
    assert check_gemini_stream(dump("gemini", load("gemini", name)))
    body = mutate(load("gemini", name))
    with pytest.raises(GrammarError) as exc:
        check_gemini_stream(body if isinstance(body, bytes) else dump("gemini", body))
    assert exc.value.rule == rule, str(exc.value)


def test_error_message_names_event_index_and_rule() -> None:
    events = load("anthropic", A_M)
    with pytest.raises(GrammarError, match=r"^event 0: \[message-start\] content_block_start before message_start"):
        check_anthropic_stream(dump("anthropic", events[1:]))
    with pytest.raises(GrammarError) as exc:
        check_openai_chat_stream(dump("openai-chat", load("openai-chat", C_F)[:-1]))
    assert exc.value.index == 21 and exc.value.rule == "done-last"


def test_empty_and_undecodable_bodies() -> None:
    for checker in CHECKERS.values():
        with pytest.raises(GrammarError):
            checker(b"")
        with pytest.raises(GrammarError) as exc:
            checker(b"data: \xff\n\n")
        assert exc.value.rule == "utf8"


# ---------------------------------------------------------------------------------------------
# Whatever the damage, a checker answers with a summary or GrammarError, never a crash

JUNK = st.sampled_from([None, 0, -1, 1.5, "", "x", [], {}, [1], {"a": 1}, True])


def _paths(x: Any, path: tuple = ()) -> list[tuple]:
    items = x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, list) else []
    return [p for k, v in items for p in [(*path, k), *_paths(v, (*path, k))]]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.sampled_from([(p, n) for p in CHECKERS for n in fixtures(p)]), st.data())
def test_damaged_streams_only_raise_grammar_error(fixture: tuple[str, str], data: st.DataObject) -> None:
    proto, name = fixture
    events = load(proto, name)
    for _ in range(data.draw(st.integers(1, 3))):
        k = data.draw(st.integers(0, len(events) - 1))
        op = data.draw(st.sampled_from(["drop", "dup", "swap", "junk", "junk", "junk"]))
        if op == "drop" and len(events) > 1:
            del events[k]
        elif op == "dup":
            events.insert(k, copy.deepcopy(events[data.draw(st.integers(0, len(events) - 1))]))
        elif op == "swap":
            j = data.draw(st.integers(0, len(events) - 1))
            events[k], events[j] = events[j], events[k]
        elif isinstance(events[k], dict) and (paths := _paths(events[k])):
            *head, last = data.draw(st.sampled_from(paths))
            target = events[k]
            for key in head:
                target = target[key]
            target[last] = data.draw(JUNK)
    if proto in ("anthropic", "openai-responses"):  # keep the event: line writable
        events = [e if isinstance(e, dict) and isinstance(e.get("type"), str) else {"type": "junk"} for e in events]
    try:
        CHECKERS[proto](dump(proto, events), **LENIENT.get(name, {}))
    except GrammarError as exc:
        assert exc.rule != "shape", str(exc)  # every damage seen so far has a named rule
