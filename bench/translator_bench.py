#!/usr/bin/env python3
"""Micro-benchmark of the sans-I/O streaming path: CPU microseconds per upstream event.

Feeds one synthetic upstream stream (the shape the peer bench's fake sends: N text events
of B bytes, then a finishing event with usage; CRLF framing, all in one read) through the
SSE decoder, the upstream decoder, the Anthropic state machine and its frame encoder,
many times over, and reports process CPU time per upstream event. No sockets, no clock
inside the measured code; the numbers are for comparing changes on one machine.

    python bench/translator_bench.py [--events 200] [--bytes 40] [--repeat 500]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.sse import SSEDecoder  # noqa: E402
from daemon.translate.anthropic_stream import AnthropicStream, encode  # noqa: E402
from daemon.upstream.decode import StreamDecoder  # noqa: E402


def upstream_stream(events: int, size: int) -> bytes:
    usage = {"promptTokenCount": 12, "candidatesTokenCount": 0, "totalTokenCount": 12}
    frames = []
    for index in range(events):
        chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": ("x%03d " % index).ljust(size, "y")}]},
                                 "index": 0}], "usageMetadata": usage, "modelVersion": "claude-sonnet-4-6"}
        frames.append(b"data: " + orjson.dumps({"response": chunk, "traceId": "0"}) + b"\r\n\r\n")
    final = {"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP", "index": 0}],
             "usageMetadata": {**usage, "candidatesTokenCount": events}}
    frames.append(b"data: " + orjson.dumps({"response": final, "traceId": "0"}) + b"\r\n\r\n")
    return b"".join(frames)


def translate_once(raw: bytes) -> int:
    ids = itertools.count()
    machine = AnthropicStream(message_id="msg_bench", model="claude-sonnet-4-6", thinking=False, tool_names={},
                              new_tool_id=lambda: f"toolu_{next(ids)}")
    sse, decoder = SSEDecoder(), StreamDecoder()
    out: list[dict] = []
    for event in sse.feed(raw):
        for neutral in decoder.feed(orjson.loads(event.data)):
            out += machine.feed(neutral)
    out += machine.feed(decoder.end())
    return len(encode(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--bytes", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=500)
    args = parser.parse_args()
    raw = upstream_stream(args.events, args.bytes)
    for _ in range(20):
        translate_once(raw)  # warm-up
    started = time.process_time()
    for _ in range(args.repeat):
        translate_once(raw)
    spent = time.process_time() - started
    per_event = spent / (args.repeat * (args.events + 1)) * 1e6
    print(f"{args.events} events x {args.bytes} B, {args.repeat} streams: "
          f"{per_event:.2f} us CPU per upstream event, {spent / args.repeat * 1000:.3f} ms per stream")


if __name__ == "__main__":
    main()
