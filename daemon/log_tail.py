"""The daemon's latest log lines in memory, for the admin page.

`TAIL` is one process-wide handler: `log.setup()` installs it on the root logger beside the
stderr handler, with the daemon's own plain formatter, so every line it keeps is formatted
and redacted exactly as the log itself (a record with a traceback stays one entry, with
its newlines). `App.log_tail` is this same object.

Thread-safe for logging: a record is formatted and appended under the handler's own lock
(microseconds, no I/O), and `lines()` copies under that lock.
"""

from __future__ import annotations

import logging
from collections import deque

CAPACITY = 500  # lines kept, oldest out first


class LogTail(logging.Handler):
    def __init__(self, capacity: int = CAPACITY, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self._lines: deque[str] = deque(maxlen=capacity)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # as logging does: a broken record must not break the caller
            self.handleError(record)
            return
        self._lines.append(line)

    def lines(self, limit: int = 100) -> list[str]:
        """The last `limit` lines, oldest first (as a log file reads)."""
        if limit <= 0:
            return []
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            kept = list(self._lines)
        return kept[-limit:]

    def clear(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._lines.clear()


TAIL = LogTail()
