"""The request monitor (the admin page's last requests), the log tail, and how the runner
names a generation's protocol."""

from __future__ import annotations

import inspect
import logging
import sys
import threading

import orjson
import pytest

from daemon import log, log_tail, metrics
from daemon.handlers import gemini as gemini_handler
from daemon.log_tail import LogTail
from daemon.monitor import RequestMonitor
from daemon.translate import anthropic_stream, gemini_stream, openai_chat_stream, responses_stream
from daemon.upstream.events import Usage
from tests.unit.test_layering import DAEMON, IO_IMPORTS, IO_MODULES, imports_of

pytestmark = pytest.mark.unit

FIELDS = {"time", "client", "protocol", "model", "account", "status", "complete", "ttfb_ms", "duration_ms",
          "input_tokens", "output_tokens", "thinking_tokens", "cached_tokens", "attempts"}


def record(monitor: RequestMonitor, index: int, **changes) -> None:  # type: ignore[no-untyped-def]
    fields = dict(at=1_767_225_600.0 + index, client="team", protocol="anthropic", model=f"m{index}",
                  account="acc001", status=200, ttfb=0.25, duration=1.5, usage=None, attempts=1)
    fields.update(changes)
    monitor.record(**fields)


def test_the_ring_keeps_the_newest_entries_newest_first() -> None:
    monitor = RequestMonitor(capacity=5)
    for index in range(7):
        record(monitor, index)
    assert len(monitor) == 5
    assert [entry["model"] for entry in monitor.recent()] == ["m6", "m5", "m4", "m3", "m2"]
    assert [entry["model"] for entry in monitor.recent(2)] == ["m6", "m5"]
    assert monitor.recent(0) == [] and monitor.recent(-3) == []


def test_a_fresh_monitor_is_empty_and_needs_room() -> None:
    assert RequestMonitor().recent() == [] and RequestMonitor().capacity == 500
    with pytest.raises(ValueError):
        RequestMonitor(capacity=0)


def test_recent_entries_are_json_ready_with_times_in_ms_and_tokens() -> None:
    monitor = RequestMonitor()
    record(monitor, 0, at=1_767_225_600.1234, client="", protocol="openai-chat", model="gemini-3-flash",
           status=429, ttfb=0.0125, duration=2.34567, usage=Usage(prompt=120, candidates=30, thoughts=7, cached=100),
           attempts=3, complete=False)
    (entry,) = monitor.recent()
    assert set(entry) == FIELDS
    assert entry == {
        "time": "2026-01-01T00:00:00.123Z", "client": "", "protocol": "openai-chat", "model": "gemini-3-flash",
        "account": "acc001", "status": 429, "complete": False, "ttfb_ms": 12.5, "duration_ms": 2345.7,
        "input_tokens": 120, "output_tokens": 30, "thinking_tokens": 7, "cached_tokens": 100, "attempts": 3,
    }
    assert orjson.loads(orjson.dumps(monitor.recent())) == [entry]


def test_an_unanswered_request_has_no_ttfb_and_no_token_counts() -> None:
    monitor = RequestMonitor()
    record(monitor, 0, account="", status=499, ttfb=None, usage=None, complete=False)
    (entry,) = monitor.recent()
    assert entry["ttfb_ms"] is None and entry["account"] == "" and entry["status"] == 499
    assert [entry[k] for k in ("input_tokens", "output_tokens", "thinking_tokens", "cached_tokens")] == [None] * 4


def test_nothing_but_names_ids_and_numbers_can_be_recorded() -> None:
    """No parameter could carry a body, an e-mail or a credential, and no field shows one."""
    parameters = set(inspect.signature(RequestMonitor.record).parameters) - {"self"}
    assert parameters == {"at", "client", "protocol", "model", "account", "status", "ttfb", "duration", "usage",
                          "attempts", "complete"}
    monitor = RequestMonitor()
    record(monitor, 0)
    forbidden = ("email", "body", "request", "messages", "token", "key", "secret", "password", "prompt", "content")
    assert not [name for name in monitor.recent()[0] if any(word in name and not name.endswith("_tokens")
                                                            for word in forbidden)]


@pytest.mark.parametrize("module", ["monitor.py", "metrics.py"])
def test_the_monitor_and_metrics_are_pure(module: str) -> None:
    imported = imports_of(DAEMON / module)
    assert not {name.split(".")[0] for name in imported} & IO_IMPORTS, imported
    assert not any(name == io or name.startswith(io + ".") for name in imported for io in IO_MODULES), imported
    assert "time.time" not in (DAEMON / module).read_text() and "monotonic" not in (DAEMON / module).read_text()


# --- the protocol a generation's wire writes ---------------------------------------------


@pytest.mark.parametrize(("wire", "protocol"), [
    (anthropic_stream, "anthropic"), (openai_chat_stream, "openai-chat"), (responses_stream, "responses"),
    (gemini_stream, "gemini"), (gemini_handler._ChunkList, "gemini"),
])
def test_every_wire_names_its_protocol(wire, protocol) -> None:  # type: ignore[no-untyped-def]
    assert wire.PROTOCOL == protocol and protocol in metrics.PROTOCOLS


# --- the log tail ----------------------------------------------------------------------------


def make_record(message: str, *args: object, name: str = "daemon.test", level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, args, None)


def plain_tail(capacity: int = 500) -> LogTail:
    tail = LogTail(capacity)
    tail.setFormatter(log._PlainFormatter())
    return tail


def test_the_tail_keeps_the_last_lines_oldest_first() -> None:
    tail = plain_tail(capacity=3)
    for index in range(5):
        tail.handle(make_record("line %d", index))
    lines = tail.lines()
    assert len(lines) == 3 and [line.rsplit(" ", 1)[1] for line in lines] == ["2", "3", "4"]
    assert tail.lines(1)[0].endswith("line 4") and tail.lines(0) == [] and tail.lines(-1) == []
    assert " INFO daemon.test: line 4" in lines[-1]
    tail.clear()
    assert tail.lines() == []


def test_the_tail_keeps_lines_redacted_as_the_log_formats_them() -> None:
    """Records handed to the handler directly: a credential in a logged record would (rightly)
    fail the suite's own no-secret-in-logs check."""
    tail = plain_tail()
    secret = "ya29.a0AfB_byC-secret-token-value"
    tail.handle(make_record("refreshed with %s", secret))
    tail.handle(make_record("authorization: Bearer %s", "agp-0123456789abcdef"))
    try:
        raise RuntimeError("upstream said refresh_token=1//0gsecret-refresh")
    except RuntimeError:
        failed = make_record("boom")
        failed.exc_info = sys.exc_info()
    tail.handle(failed)
    lines = tail.lines()
    text = "\n".join(lines)
    assert "ya29." not in text and "1//" not in text and "agp-0123456789abcdef" not in text
    assert len(lines) == 3 and all("***" in line for line in lines) and "Traceback" in lines[2]


def test_a_record_that_cannot_be_formatted_does_not_break_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    errors: list[logging.LogRecord] = []
    tail = plain_tail()
    monkeypatch.setattr(tail, "handleError", errors.append)
    tail.handle(make_record("%d apples", "not a number"))
    tail.handle(make_record("fine"))
    assert len(errors) == 1 and tail.lines()[-1].endswith("fine") and len(tail.lines()) == 1


def test_threads_logging_at_once_lose_no_line_and_never_break() -> None:
    tail = plain_tail(capacity=10_000)
    logger = logging.getLogger("daemon.tail-threads")
    logger.addHandler(tail)
    logger.propagate = False
    try:
        def work(worker: int) -> None:
            for index in range(500):
                logger.info("worker %d line %d", worker, index)
                tail.lines(5)

        threads = [threading.Thread(target=work, args=(worker,)) for worker in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        logger.removeHandler(tail)
        logger.propagate = True
    lines = tail.lines(100_000)
    assert len(lines) == 4000 and len(set(lines)) == 4000


def test_log_setup_installs_the_tail_beside_stderr() -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    log_tail.TAIL.clear()
    try:
        log.setup("info", "json")
        assert log_tail.TAIL in root.handlers and len(root.handlers) == 2
        logging.getLogger("daemon.serve").info("listening on %s", "127.0.0.1")
        logging.getLogger("daemon.serve").debug("below the level")
        lines = log_tail.TAIL.lines()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        log_tail.TAIL.clear()
    assert len(lines) == 1 and lines[0].endswith(" INFO daemon.serve: listening on 127.0.0.1")  # plain, not JSON
