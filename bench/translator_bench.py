#!/usr/bin/env python3
"""Micro-benchmark of the sans-I/O streaming path: CPU microseconds per upstream event.

Feeds one synthetic upstream stream (the upstream's envelope, upstream doc §4.10: N text events
of B bytes, then a finishing event with usage; CRLF framing, all in one read) through
exactly what the runner does per protocol: the SSE decoder, the protocol's Reader
(dispatch/translating.py for translated protocols, the byte-level Gemini passthrough for
native Gemini clients) and the frame encoder, many times over, and reports process CPU
time per upstream event for each protocol, plus the Gemini passthrough's cost as a share
of the OpenAI Chat translation's. No sockets, no clock inside the measured code; the
numbers are for comparing changes on one machine, in one run.

    python bench/translator_bench.py [--events 200] [--bytes 40] [--repeat 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.dispatch.translating import Translating  # noqa: E402
from daemon.sse import SSEDecoder  # noqa: E402
from daemon.translate import anthropic_stream, gemini_stream, openai_chat_stream, responses_stream  # noqa: E402


def new_call_id() -> str:
    return "call_bench"


PROTOCOLS = {
    "anthropic": (lambda: Translating(anthropic_stream.AnthropicStream(
        message_id="msg_bench", model="claude-sonnet-4-6", thinking=False, tool_names={}, new_tool_id=new_call_id), ()),
        anthropic_stream.encode),
    "openai-chat": (lambda: Translating(openai_chat_stream.ChatStream(
        completion_id="chatcmpl-bench", model="claude-sonnet-4-6", created=0, reasoning=False, include_usage=True,
        tool_names={}, new_call_id=new_call_id), ()), openai_chat_stream.encode),
    "responses": (lambda: Translating(responses_stream.ResponsesStream(
        response_id="resp_bench", model="claude-sonnet-4-6", created=0, reasoning=False, tools={},
        new_call_id=new_call_id, new_item_id=lambda prefix: prefix + "_bench", echo={}), ()), responses_stream.encode),
    "gemini-passthrough": (gemini_stream.GeminiPassthrough, gemini_stream.encode),
}


WRAPPER = {"traceId": "ea302a9a71cac620", "metadata": {}}  # the envelope of every upstream event (upstream doc §4.10)


def upstream_stream(events: int, size: int) -> bytes:
    usage = {"promptTokenCount": 12, "candidatesTokenCount": 0, "totalTokenCount": 12}
    frames = []
    for index in range(events):
        chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": ("x%03d " % index).ljust(size, "y")}]},
                                 "index": 0}], "usageMetadata": usage, "modelVersion": "claude-sonnet-4-6",
                 "responseId": "msg_vrtx_01AbCdEfGhIjKlMnOpQrStUv"}
        frames.append(b"data: " + orjson.dumps({"response": chunk, **WRAPPER}) + b"\r\n\r\n")
    final = {"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP", "index": 0}],
             "usageMetadata": {**usage, "candidatesTokenCount": events}}
    frames.append(b"data: " + orjson.dumps({"response": final, **WRAPPER}) + b"\r\n\r\n")
    return b"".join(frames)


def run_once(protocol: str, raw: bytes) -> int:
    new_reader, encode = PROTOCOLS[protocol]
    reader = new_reader()
    sse = SSEDecoder()
    events, _ = reader.step(event.data for event in sse.feed(raw))  # what runner._pump does
    return len(encode(events + reader.end()))


def cpu_per_event(protocol: str, raw: bytes, events: int, repeat: int) -> float:
    for _ in range(20):
        run_once(protocol, raw)  # warm-up
    started = time.process_time()
    for _ in range(repeat):
        run_once(protocol, raw)
    return (time.process_time() - started) / (repeat * (events + 1)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--bytes", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; the median is reported")
    args = parser.parse_args()
    raw = upstream_stream(args.events, args.bytes)
    samples: dict[str, list[float]] = {name: [] for name in PROTOCOLS}
    for _ in range(args.rounds):
        for name in PROTOCOLS:
            samples[name].append(cpu_per_event(name, raw, args.events, args.repeat))
    median = {name: statistics.median(values) for name, values in samples.items()}
    print(f"{args.events} events x {args.bytes} B, {args.repeat} streams x {args.rounds} rounds (median):")
    for name, value in median.items():
        print(f"  {name:20} {value:6.2f} us CPU per upstream event")
    share = median["gemini-passthrough"] / median["openai-chat"]
    print(f"  gemini passthrough / openai-chat translation: {share:.0%}")


if __name__ == "__main__":
    main()
