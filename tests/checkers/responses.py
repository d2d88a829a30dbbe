"""OpenAI Responses stream checker (client-protocols.md 1.1, 4.3, 4.4, 4.5.5, 6, 7.11, 7.12)."""

from __future__ import annotations

from typing import Any

from . import GrammarError, guarded, is_int, load_json, one_of, parse_args_object, parse_sse, want

P = "response."
TERMINAL = {P + "completed": "completed", P + "incomplete": "incomplete", P + "failed": "failed"}
ID_PREFIX = {"message": "msg_", "function_call": "fc_", "reasoning": "rs_", "custom_tool_call": "ctc_"}
# sub-event -> item type it belongs to
OWNER = {P + "content_part.added": "message", P + "output_text.delta": "message", P + "output_text.done": "message",
         P + "content_part.done": "message", P + "function_call_arguments.delta": "function_call",
         P + "function_call_arguments.done": "function_call", P + "reasoning_summary_part.added": "reasoning",
         P + "reasoning_summary_text.delta": "reasoning", P + "reasoning_summary_text.done": "reasoning",
         P + "reasoning_summary_part.done": "reasoning", P + "reasoning_text.delta": "reasoning",
         P + "reasoning_text.done": "reasoning", P + "custom_tool_call_input.delta": "custom_tool_call",
         P + "custom_tool_call_input.done": "custom_tool_call"}


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


def _response(i: int, data: dict, out: dict, status: str) -> dict:
    resp = data.get("response")
    want(i, isinstance(resp, dict), "response-object", "event needs a response object")
    want(i, resp.get("object") == "response", "response-object", "response.object must be 'response'")
    want(i, isinstance(resp.get("id"), str) and resp["id"].startswith("resp_"), "response-id",
         f"response id {resp.get('id')!r} must start with resp_")
    want(i, out["id"] in (None, resp["id"]), "response-id", f"response id changed to {resp['id']!r}")
    want(i, out["model"] in (None, resp.get("model")), "response-model", "response model changed")
    want(i, resp.get("status") == status, "response-status", f"status {resp.get('status')!r}, expected {status!r}")
    out["id"], out["model"] = resp["id"], resp.get("model")
    return resp


def _usage(i: int, usage: Any) -> dict:
    want(i, isinstance(usage, dict), "usage", "terminal response needs usage")
    for key in ("input_tokens", "output_tokens", "total_tokens"):
        want(i, is_int(usage.get(key)), "usage", f"usage.{key} must be a non-negative integer")
    want(i, usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"], "usage",
         "total_tokens != input_tokens + output_tokens")
    return usage


def _added(i: int, data: dict, items: list[dict]) -> dict:
    item = data.get("item")
    want(i, data.get("output_index") == len(items), "output-index",
         f"output_item.added output_index {data.get('output_index')!r}, expected {len(items)}")
    want(i, isinstance(item, dict) and one_of(item.get("type"), set(ID_PREFIX)), "item-type",
         f"unknown item type {item.get('type') if isinstance(item, dict) else item!r}")
    kind, item_id = item["type"], item.get("id")
    want(i, isinstance(item_id, str) and item_id.startswith(ID_PREFIX[kind]), "item-id",
         f"{kind} item id {item_id!r} must start with {ID_PREFIX[kind]}")
    want(i, item_id not in {it["id"] for it in items}, "item-id", f"item id {item_id!r} reused")
    want(i, item.get("status", "in_progress") == "in_progress", "item-status", "added item status must be in_progress")
    opened: dict[str, Any] = {"type": kind, "id": item_id}
    if kind == "message":
        want(i, item.get("role") == "assistant" and item.get("content") == [], "item-shape",
             "added message needs role assistant and content []")
        opened.update(text="", _parts=0, _part_open=False, _done=False)
    elif kind == "reasoning":
        want(i, item.get("summary") == [], "item-shape", "added reasoning item needs summary []")
        opened.update(summary=[], content=[], encrypted_content=None, _part_open=False, _done=False)
    else:
        want(i, isinstance(item.get("call_id"), str) and item["call_id"], "item-shape", f"{kind} needs call_id")
        want(i, isinstance(item.get("name"), str) and item["name"], "item-shape", f"{kind} needs name")
        key = "arguments" if kind == "function_call" else "input"
        want(i, item.get(key) == "", "item-shape", f"added {kind} must have {key} \"\"")
        opened.update(call_id=item["call_id"], name=item["name"], _key=key, _done=False)
        opened[key] = ""
    return opened


def _sub(i: int, name: str, data: dict, it: dict) -> None:
    """A delta/done/part event inside the open item."""
    short = name[len(P):]
    if it["type"] == "message":
        want(i, data.get("content_index") == (it["_parts"] if short == "content_part.added" else it["_parts"] - 1),
             "content-index", f"{short} content_index {data.get('content_index')!r}")
        if short == "content_part.added":
            want(i, not it["_part_open"] and it["_parts"] == 0, "part-order", "a message item has one content part")
            part = data.get("part")
            want(i, isinstance(part, dict) and part.get("type") == "output_text" and part.get("text") == "",
                 "part-shape", "content_part.added part must be output_text with text \"\"")
            it.update(_parts=1, _part_open=True)
            return
        want(i, it["_part_open"], "part-order", f"{short} with no open content part")
        if short == "output_text.delta":
            want(i, not it["_done"] and isinstance(data.get("delta"), str), "delta-order", "output_text.delta invalid")
            it["text"] += data["delta"]
        elif short == "output_text.done":
            want(i, not it["_done"], "delta-order", "second output_text.done")
            want(i, data.get("text") == it["text"], "done-text", "output_text.done text != concatenated deltas")
            it["_done"] = True
        else:
            part = data.get("part")
            want(i, it["_done"], "delta-order", "content_part.done before output_text.done")
            want(i, isinstance(part, dict) and part.get("text") == it["text"], "done-text",
                 "content_part.done part.text != concatenated deltas")
            it["_part_open"] = False
    elif it["type"] == "reasoning" and short.startswith("reasoning_text"):
        n = len(it["content"])
        want(i, is_int(data.get("content_index")) and data["content_index"] in (n, n - 1), "content-index",
             f"reasoning_text content_index {data.get('content_index')!r}")
        if data["content_index"] == len(it["content"]):
            it["content"].append("")
        if short.endswith("delta"):
            want(i, isinstance(data.get("delta"), str), "delta-order", "reasoning_text.delta needs delta")
            it["content"][-1] += data["delta"]
        else:
            want(i, data.get("text") == it["content"][-1], "done-text", "reasoning_text.done text mismatch")
    elif it["type"] == "reasoning":
        summary, added = it["summary"], short == "reasoning_summary_part.added"
        want(i, data.get("summary_index") == (len(summary) if added else len(summary) - 1), "summary-index",
             f"{short} summary_index {data.get('summary_index')!r}")
        if added:
            want(i, not it["_part_open"], "part-order", "summary part added while another is open")
            part = data.get("part")
            want(i, isinstance(part, dict) and part.get("type") == "summary_text" and part.get("text") == "",
                 "part-shape", "summary part must start as summary_text with text \"\"")
            summary.append("")
            it.update(_part_open=True, _done=False)
            return
        want(i, it["_part_open"], "part-order", f"{short} with no open summary part")
        if short.endswith("text.delta"):
            want(i, not it["_done"] and isinstance(data.get("delta"), str), "delta-order", "summary delta invalid")
            summary[-1] += data["delta"]
        elif short.endswith("text.done"):
            want(i, not it["_done"], "delta-order", "second reasoning_summary_text.done")
            want(i, data.get("text") == summary[-1], "done-text", "summary text.done != concatenated deltas")
            it["_done"] = True
        else:
            want(i, it["_done"], "delta-order", "summary part done before its text.done")
            part = data.get("part")
            want(i, isinstance(part, dict) and part.get("text") == summary[-1], "done-text",
                 "summary part.done text != concatenated deltas")
            it["_part_open"] = False
    else:
        key = it["_key"]
        want(i, not it["_done"], "delta-order", f"{short} after its .done")
        if short.endswith(".delta"):
            want(i, isinstance(data.get("delta"), str), "delta-order", f"{short} needs a string delta")
            it[key] += data["delta"]
            return
        want(i, data.get(key) == it[key], "done-text", f"{short} {key} != concatenated deltas")
        want(i, data.get("name", it["name"]) == it["name"], "done-text", f"{short} name changed")
        if key == "arguments":
            it["parsed"] = parse_args_object(i, it[key], "tool-json")
        it["_done"] = True


def _item_done(i: int, data: dict, it: dict, index: int) -> None:
    item = data.get("item")
    want(i, data.get("output_index") == index and isinstance(item, dict) and item.get("id") == it["id"],
         "item-mismatch", "output_item.done does not match the open item")
    want(i, item.get("type") == it["type"], "item-mismatch", "output_item.done changed the item type")
    want(i, item.get("status", "completed") == "completed" and ("status" in item or it["type"] == "reasoning"),
         "item-status", "done item must have status completed")
    if it["type"] == "message":
        want(i, it["_parts"] == 1 and not it["_part_open"], "part-order", "message done without a closed content part")
        content = item.get("content")
        want(i, isinstance(content, list) and [_get(c, "text") for c in content] == [it["text"]], "done-text",
             "done message content != streamed text")
    elif it["type"] == "reasoning":
        want(i, not it["_part_open"], "part-order", "reasoning done with an open summary part")
        summary = item.get("summary")
        texts = [_get(s, "text") for s in summary] if isinstance(summary, list) else None
        want(i, texts == it["summary"], "done-text", "done reasoning summary != streamed summary parts")
        enc = item.get("encrypted_content")
        want(i, enc is None or isinstance(enc, str), "item-shape", "encrypted_content must be a string or null")
        it["encrypted_content"] = enc
    else:
        key = it["_key"]
        want(i, it["_done"], "delta-order", f"{it['type']} done without its {key} .done event")
        for k in (key, "name", "call_id"):
            want(i, item.get(k) == it[k], "done-text", f"done {it['type']}.{k} != streamed value")
    for k in [k for k in it if k.startswith("_")]:
        del it[k]


@guarded
def check_responses_stream(body: bytes) -> dict[str, Any]:
    """Check one Responses SSE body; return a summary dict."""
    events = parse_sse(body, fields=("event", "data"), comments=True)
    out: dict[str, Any] = {"id": None, "model": None, "status": None, "items": [], "text": "", "usage": None,
                           "incomplete_reason": None, "error": None, "events": 0, "heartbeats": 0}
    items: list[dict] = out["items"]
    open_item: dict | None = None
    ended = False
    for ev in events:
        i = ev.index
        want(i, not ended, "after-end", "event after the terminal/error event")
        if ev.heartbeat:
            out["heartbeats"] += 1
            continue
        want(i, ev.event is not None, "event-line", "every event needs an 'event:' line")
        data = load_json(i, ev.data)
        want(i, isinstance(data, dict) and data.get("type") == ev.event, "event-name",
             f"event name {ev.event!r} != data.type")
        name, seq = ev.event, out["events"]
        want(i, data.get("sequence_number") == seq and is_int(seq), "sequence-number",
             f"sequence_number {data.get('sequence_number')!r}, expected {seq}")
        out["events"] += 1
        if seq < 2 and name != "error":
            want(i, name == (P + "created", P + "in_progress")[seq], "stream-start",
                 f"event {seq} must be {(P + 'created', P + 'in_progress')[seq]}, got {name}")
            resp = _response(i, data, out, "in_progress")
            want(i, resp.get("output") == [], "response-object", "output must be [] before items")
            continue
        if name == "error":
            want(i, isinstance(data.get("message"), str), "error-shape", "error event needs message")
            want(i, data.get("code") is None or isinstance(data["code"], str), "error-shape", "code must be str|null")
            out["error"], ended = {"code": data.get("code"), "message": data["message"]}, True
        elif name in TERMINAL:
            want(i, open_item is None, "item-open", "terminal event while an item is open")
            resp = _response(i, data, out, TERMINAL[name])
            output = resp.get("output")
            want(i, isinstance(output, list) and [(_get(o, "type"), _get(o, "id")) for o in output]
                 == [(it["type"], it["id"]) for it in items], "output-list", "response.output != done items")
            if name == P + "failed":
                err = resp.get("error")
                want(i, isinstance(err, dict) and isinstance(err.get("code"), str)
                     and isinstance(err.get("message"), str), "error-shape", "failed response needs error.code/message")
                out["error"] = err
                if resp.get("usage") is not None:
                    out["usage"] = _usage(i, resp["usage"])
            else:
                out["usage"] = _usage(i, resp.get("usage"))
            if name == P + "incomplete":
                reason = (resp.get("incomplete_details") or {}).get("reason")
                want(i, reason in ("max_output_tokens", "content_filter"), "incomplete-reason", f"reason {reason!r}")
                out["incomplete_reason"] = reason
            out["status"], ended = TERMINAL[name], True
        elif name == P + "output_item.added":
            want(i, open_item is None, "item-open", "output_item.added while another item is open")
            open_item = _added(i, data, items)
            items.append(open_item)
        elif name == P + "output_item.done":
            want(i, open_item is not None, "item-open", "output_item.done with no open item")
            assert open_item is not None
            _item_done(i, data, open_item, len(items) - 1)
            open_item = None
        elif name in OWNER:
            want(i, open_item is not None, "item-open", f"{name} with no open item")
            assert open_item is not None
            want(i, data.get("output_index") == len(items) - 1 and data.get("item_id") == open_item["id"],
                 "item-mismatch", f"{name} output_index/item_id do not name the open item")
            want(i, OWNER[name] == open_item["type"], "item-kind", f"{name} inside a {open_item['type']} item")
            _sub(i, name, data, open_item)
        else:
            raise GrammarError(i, "event-type", f"unknown event {name!r}")
    want(events[-1].index if events else 0, ended, "truncated", "stream closed before response.completed")
    out["text"] = "".join(it["text"] for it in items if it["type"] == "message")
    return out
