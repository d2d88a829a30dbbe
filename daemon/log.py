"""Logging for a service: one line per record on stderr, plain or JSON, secrets masked.

Call sites log ids, lengths and hashes, never credentials; the redaction here is the
second line of defence and covers the message, its arguments and any traceback.
"""

from __future__ import annotations

import logging
import sys
import time

import orjson

from .log_tail import TAIL
from .redact import redact


class _PlainFormatter(logging.Formatter):
    """`2026-11-21T19:58:49Z INFO daemon.serve: message`, timestamps formatted once a second."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
        line = f"{self._stamp} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        if record.exc_info:
            line["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(line).decode()


def setup(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _PlainFormatter())
    TAIL.setFormatter(_PlainFormatter())  # the admin page's tail: plain lines, whatever the format
    root = logging.getLogger()
    root.handlers[:] = [handler, TAIL]
    root.setLevel(level.upper())
