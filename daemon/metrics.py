"""Counters and histograms for GET /metrics, in the Prometheus text exposition format 0.0.4
(pure: nothing here reads a clock; durations are measured by the caller).

Counted as requests run: requests by protocol, upstream model and status; request duration
and time to first byte by protocol; upstream attempts by outcome; tokens by kind; open
streams. Computed when rendered, from what the caller passes in: accounts by state and the
remaining quota fraction per account (its id, never its e-mail) and quota family.

Not thread-safe: everything runs on the event loop.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping

from .accounts.model import Account, AccountState
from .pool.state import FAMILIES, AccountLoad
from .upstream.events import Usage
from .upstream.failures import FailureKind

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"

PROTOCOLS = ("anthropic", "openai-chat", "responses", "gemini")
# Seconds: LLM answers take from tens of milliseconds (an error, a cached reply) to minutes.
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
OUTCOMES = ("ok", "quota", "rate_limited", "capacity", "server_error", "auth", "refused", "invalid", "connection")
TOKEN_KINDS = ("input", "output", "thinking", "cached")  # input includes cached; output excludes thinking
MAX_REQUEST_SERIES = 1000  # distinct (protocol, model, status) kept; later ones count under model "(other)"
OTHER = "(other)"

_OUTCOME_OF_FAILURE = {
    FailureKind.QUOTA_EXHAUSTED: "quota",
    FailureKind.RATE_LIMITED: "rate_limited",
    FailureKind.CAPACITY: "capacity",
    FailureKind.SERVER_ERROR: "server_error",
    FailureKind.AUTH: "auth",
    FailureKind.VERIFICATION_REQUIRED: "refused",
    FailureKind.FORBIDDEN: "refused",
    FailureKind.INVALID_REQUEST: "invalid",
    FailureKind.NOT_FOUND: "invalid",
}


def outcome_of(kind: FailureKind) -> str:
    """The attempt outcome an upstream refusal counts as."""
    return _OUTCOME_OF_FAILURE[kind]


class Histogram:
    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds: tuple[float, ...] = BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)  # per bucket, not cumulative; above the last bound only in `count`
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.bounds, value)  # the first bound >= value: `le` is inclusive
        if index < len(self.counts):
            self.counts[index] += 1
        self.sum += value
        self.count += 1


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}
        self.duration: dict[str, Histogram] = {protocol: Histogram() for protocol in PROTOCOLS}
        self.ttfb: dict[str, Histogram] = {protocol: Histogram() for protocol in PROTOCOLS}
        self.attempts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        self.tokens: dict[str, int] = dict.fromkeys(TOKEN_KINDS, 0)
        self.open_streams = 0

    def observe_request(self, *, protocol: str, model: str, status: int, duration: float, ttfb: float | None,
                        usage: Usage | None) -> None:
        """One client request the runner answered (or that went away)."""
        key = (protocol, model, str(status))
        if key not in self.requests and len(self.requests) >= MAX_REQUEST_SERIES:
            key = (protocol, OTHER, str(status))
        self.requests[key] = self.requests.get(key, 0) + 1
        _histogram(self.duration, protocol).observe(duration)
        if ttfb is not None:
            _histogram(self.ttfb, protocol).observe(ttfb)
        if usage is not None:
            tokens = self.tokens
            tokens["input"] += usage.prompt
            tokens["output"] += usage.candidates
            tokens["thinking"] += usage.thoughts
            tokens["cached"] += usage.cached

    def upstream_attempt(self, outcome: str) -> None:
        self.attempts[outcome] = self.attempts.get(outcome, 0) + 1

    def stream_opened(self) -> None:
        self.open_streams += 1

    def stream_closed(self) -> None:
        self.open_streams -= 1

    def render(self, accounts: Iterable[Account], loads: Mapping[str, AccountLoad]) -> str:
        """The exposition text: what was counted, plus the gauges of `accounts` (every one the
        daemon knows) and their pool `loads` (PoolState.loads: quota per family)."""
        accounts = list(accounts)
        out: list[str] = []
        _family(out, "agproxy_requests_total", "counter",
                "Client requests answered through the account pool, by protocol, upstream model and status.")
        for (protocol, model, status), value in sorted(self.requests.items()):
            out.append(_sample("agproxy_requests_total", {"protocol": protocol, "model": model, "status": status},
                               value))
        _histograms(out, "agproxy_request_duration_seconds", "Time from the request to its last byte, by protocol.",
                    self.duration)
        _histograms(out, "agproxy_ttfb_seconds", "Time from the request to the response head, by protocol.",
                    self.ttfb)
        _family(out, "agproxy_upstream_attempts_total", "counter",
                "Upstream generation requests by outcome (retries and other accounts included).")
        for outcome, value in self.attempts.items():
            out.append(_sample("agproxy_upstream_attempts_total", {"outcome": outcome}, value))
        _family(out, "agproxy_tokens_total", "counter",
                "Tokens the upstream reported, by kind (input includes cached, output excludes thinking).")
        for kind, value in self.tokens.items():
            out.append(_sample("agproxy_tokens_total", {"kind": kind}, value))
        _family(out, "agproxy_open_streams", "gauge", "Streamed answers being written now.")
        out.append(_sample("agproxy_open_streams", {}, self.open_streams))
        _family(out, "agproxy_accounts", "gauge", "Accounts by state.")
        states = dict.fromkeys((state.value for state in AccountState), 0)
        for account in accounts:
            states[account.state.value] += 1
        for state, value in states.items():
            out.append(_sample("agproxy_accounts", {"state": state}, value))
        _family(out, "agproxy_quota_remaining_ratio", "gauge",
                "Remaining quota fraction (0..1) per account id and quota family, as last read.")
        for account in accounts:
            load = loads.get(account.id)
            if load is None:
                continue
            for family in (*FAMILIES, *sorted(set(load.quota) - set(FAMILIES))):
                quota = load.quota.get(family)
                if quota is not None and quota.remaining is not None:
                    out.append(_sample("agproxy_quota_remaining_ratio", {"account": account.id, "family": family},
                                       quota.remaining))
        out.append("")
        return "\n".join(out)


def _histogram(histograms: dict[str, Histogram], protocol: str) -> Histogram:
    histogram = histograms.get(protocol)
    if histogram is None:
        histogram = histograms[protocol] = Histogram()
    return histogram


def _histograms(out: list[str], name: str, help_text: str, histograms: dict[str, Histogram]) -> None:
    _family(out, name, "histogram", help_text)
    for protocol, histogram in histograms.items():
        cumulative = 0
        for bound, count in zip(histogram.bounds, histogram.counts, strict=True):
            cumulative += count
            out.append(_sample(name + "_bucket", {"protocol": protocol, "le": _number(bound)}, cumulative))
        out.append(_sample(name + "_bucket", {"protocol": protocol, "le": "+Inf"}, histogram.count))
        out.append(_sample(name + "_sum", {"protocol": protocol}, histogram.sum))
        out.append(_sample(name + "_count", {"protocol": protocol}, histogram.count))


def _family(out: list[str], name: str, kind: str, help_text: str) -> None:
    out.append(f"# HELP {name} {help_text.replace(chr(92), chr(92) * 2).replace(chr(10), chr(92) + 'n')}")
    out.append(f"# TYPE {name} {kind}")


def _sample(name: str, labels: dict[str, str], value: float) -> str:
    if not labels:
        return f"{name} {_number(value)}"
    pairs = ",".join(f'{label}="{escape_label(text)}"' for label, text in labels.items())
    return f"{name}{{{pairs}}} {_number(value)}"


def escape_label(value: str) -> str:
    """A label value as the text format wants it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
