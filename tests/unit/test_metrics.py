"""The metrics and their Prometheus text exposition, read back by prometheus_client's own
parser (an independent implementation of the format)."""

from __future__ import annotations

import math
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from daemon import metrics
from daemon.accounts.model import Account, AccountState
from daemon.metrics import BUCKETS, OUTCOMES, Histogram, Metrics, escape_label, outcome_of
from daemon.pool.state import AccountLoad, FamilyQuota
from daemon.upstream.events import Usage
from daemon.upstream.failures import FailureKind

pytestmark = pytest.mark.unit

FAMILIES = {"agproxy_requests", "agproxy_request_duration_seconds", "agproxy_ttfb_seconds",
            "agproxy_upstream_attempts", "agproxy_tokens", "agproxy_open_streams", "agproxy_accounts",
            "agproxy_quota_remaining_ratio"}


def account(id: str, state: AccountState = AccountState.ACTIVE) -> Account:
    return Account(id=id, email=f"{id}@example.com", refresh_token="1//refresh-" + id, client_id="client",
                   project_id="proj", state=state)


def parse(text: str) -> dict[str, dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    """family name → {(sample name, labels): value}; also checks each family is declared once."""
    families: dict[str, dict[tuple[str, frozenset[tuple[str, str]]], float]] = {}
    for family in text_string_to_metric_families(text):
        assert family.name not in families, f"{family.name} declared twice"
        families[family.name] = {(sample.name, frozenset(sample.labels.items())): sample.value
                                 for sample in family.samples}
    return families


def value(families, family: str, sample: str | None = None, **labels: str) -> float:  # type: ignore[no-untyped-def]
    return families[family][(sample or family, frozenset(labels.items()))]


_LINE = re.compile(r'# (HELP|TYPE) agproxy_\w+ .+'
                   r'|agproxy_\w+(\{\w+="(?:[^"\\\n]|\\[\\"n])*"(,\w+="(?:[^"\\\n]|\\[\\"n])*")*\})?'
                   r' (-?[0-9.]+(e[+-]?[0-9]+)?|\+Inf|-Inf|NaN)')


def check_lines(text: str) -> None:
    """The 0.0.4 line grammar, more strictly than the parser reads it."""
    assert text.endswith("\n") and not text.endswith("\n\n")
    for line in text.splitlines():
        assert _LINE.fullmatch(line), line


def render(m: Metrics, accounts: list[Account] | None = None, loads: dict[str, AccountLoad] | None = None) -> str:
    return m.render(accounts or [], loads or {})


def test_an_empty_registry_declares_every_family_with_help_and_type() -> None:
    text = render(Metrics())
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert set(families) == FAMILIES
    kinds = {name: family.type for name, family in families.items()}
    assert kinds["agproxy_requests"] == "counter" and kinds["agproxy_open_streams"] == "gauge"
    assert kinds["agproxy_request_duration_seconds"] == kinds["agproxy_ttfb_seconds"] == "histogram"
    assert all(family.documentation for family in families.values())
    check_lines(text)
    assert value(parse(text), "agproxy_open_streams") == 0


def test_requests_are_counted_by_protocol_model_and_status() -> None:
    m = Metrics()
    for _ in range(3):
        m.observe_request(protocol="anthropic", model="claude-sonnet-4-6", status=200, duration=1.0, ttfb=0.2, usage=None)
    m.observe_request(protocol="anthropic", model="claude-sonnet-4-6", status=429, duration=0.01, ttfb=0.01, usage=None)
    m.observe_request(protocol="gemini", model="gemini-3-flash", status=200, duration=0.5, ttfb=None, usage=None)
    families = parse(render(m))
    requests = families["agproxy_requests"]
    assert requests == {
        ("agproxy_requests_total", frozenset({("protocol", "anthropic"), ("model", "claude-sonnet-4-6"),
                                              ("status", "200")})): 3,
        ("agproxy_requests_total", frozenset({("protocol", "anthropic"), ("model", "claude-sonnet-4-6"),
                                              ("status", "429")})): 1,
        ("agproxy_requests_total", frozenset({("protocol", "gemini"), ("model", "gemini-3-flash"),
                                              ("status", "200")})): 1,
    }
    assert value(families, "agproxy_request_duration_seconds", "agproxy_request_duration_seconds_count",
                 protocol="anthropic") == 4
    assert value(families, "agproxy_ttfb_seconds", "agproxy_ttfb_seconds_count", protocol="gemini") == 0  # no head
    assert value(families, "agproxy_request_duration_seconds", "agproxy_request_duration_seconds_sum",
                 protocol="anthropic") == pytest.approx(3.01)


def test_histogram_buckets_are_cumulative_with_inclusive_bounds() -> None:
    m = Metrics()
    for seconds in (0.01, 0.05, 0.07, 3.0, 3.0, 119.9, 500.0):
        m.observe_request(protocol="openai-chat", model="m", status=200, duration=seconds, ttfb=seconds, usage=None)
    families = parse(render(m))
    name = "agproxy_request_duration_seconds"
    buckets = {float(le): value(families, name, name + "_bucket", protocol="openai-chat", le=le)
               for le in [*(repr(b) for b in BUCKETS), "+Inf"]}
    assert list(buckets) == [*BUCKETS, math.inf]
    assert buckets[0.05] == 2 and buckets[0.1] == 3 and buckets[2.5] == 3 and buckets[5.0] == 5
    assert buckets[60.0] == 5 and buckets[120.0] == 6 and buckets[math.inf] == 7
    counts = list(buckets.values())
    assert counts == sorted(counts)  # cumulative: never decreasing
    assert value(families, name, name + "_count", protocol="openai-chat") == 7
    assert value(families, name, name + "_sum", protocol="openai-chat") == pytest.approx(626.03)
    # every protocol has its series from the start, so dashboards see zeros rather than gaps
    assert value(families, name, name + "_bucket", protocol="responses", le="+Inf") == 0


def test_buckets_suit_llm_latencies() -> None:
    assert BUCKETS[0] == 0.05 and BUCKETS[-1] == 120.0 and list(BUCKETS) == sorted(set(BUCKETS))
    histogram = Histogram()
    histogram.observe(120.0)
    histogram.observe(120.5)
    assert histogram.counts[-1] == 1 and histogram.count == 2


@pytest.mark.parametrize("model", ['say "hi"', "back\\slash", "new\nline", 'all\\"of\n"them\\', "ünïcödé"])
def test_label_values_are_escaped(model: str) -> None:
    m = Metrics()
    m.observe_request(protocol="anthropic", model=model, status=200, duration=1, ttfb=1, usage=None)
    text = render(m)
    check_lines(text)
    assert "\n" not in escape_label(model)
    assert value(parse(text), "agproxy_requests", "agproxy_requests_total", protocol="anthropic", model=model,
                 status="200") == 1


def test_escape_label_follows_the_format() -> None:
    assert escape_label('a\\b"c\nd') == 'a\\\\b\\"c\\nd'


def test_every_failure_kind_counts_as_an_outcome() -> None:
    assert {outcome_of(kind) for kind in FailureKind} <= set(OUTCOMES)
    assert outcome_of(FailureKind.QUOTA_EXHAUSTED) == "quota" and outcome_of(FailureKind.FORBIDDEN) == "refused"
    assert outcome_of(FailureKind.CAPACITY) == "capacity" and outcome_of(FailureKind.INVALID_REQUEST) == "invalid"


def test_upstream_attempts_and_tokens() -> None:
    m = Metrics()
    for outcome in ("ok", "ok", "quota", "connection"):
        m.upstream_attempt(outcome)
    m.observe_request(protocol="responses", model="m", status=200, duration=1, ttfb=1,
                      usage=Usage(prompt=100, candidates=20, thoughts=5, cached=60))
    m.observe_request(protocol="responses", model="m", status=200, duration=1, ttfb=1,
                      usage=Usage(prompt=10, candidates=2))
    families = parse(render(m))
    attempts = {dict(labels)["outcome"]: v for (_, labels), v in families["agproxy_upstream_attempts"].items()}
    assert attempts == {**dict.fromkeys(OUTCOMES, 0), "ok": 2, "quota": 1, "connection": 1}
    tokens = {dict(labels)["kind"]: v for (_, labels), v in families["agproxy_tokens"].items()}
    assert tokens == {"input": 110, "output": 22, "thinking": 5, "cached": 60}


def test_open_streams_go_up_and_down() -> None:
    m = Metrics()
    m.stream_opened()
    m.stream_opened()
    m.stream_closed()
    assert value(parse(render(m)), "agproxy_open_streams") == 1


def test_accounts_by_state_and_quota_by_account_id_and_family() -> None:
    accounts = [account("acc001"), account("acc002"), account("acc003", AccountState.NEEDS_LOGIN)]
    loads = {
        "acc001": AccountLoad(quota={"claude": FamilyQuota(0.25, 1e9), "gemini-flash": FamilyQuota(1.0, None),
                                     "gemini-pro": FamilyQuota(None, None)}),
        "acc003": AccountLoad(quota={"claude": FamilyQuota(0.0, 1e9)}),
        "gone": AccountLoad(quota={"claude": FamilyQuota(0.5, None)}),  # no longer an account: not shown
    }
    text = render(Metrics(), accounts, loads)
    families = parse(text)
    states = {dict(labels)["state"]: v for (_, labels), v in families["agproxy_accounts"].items()}
    assert states == {**{state.value: 0 for state in AccountState}, "active": 2, "needs_login": 1}
    quota = {(dict(labels)["account"], dict(labels)["family"]): v
             for (_, labels), v in families["agproxy_quota_remaining_ratio"].items()}
    assert quota == {("acc001", "claude"): 0.25, ("acc001", "gemini-flash"): 1.0, ("acc003", "claude"): 0.0}
    assert "example.com" not in text and "refresh" not in text.replace("Remaining", "")


def test_series_beyond_the_cap_are_folded_into_other(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "MAX_REQUEST_SERIES", 3)
    m = Metrics()
    for index in range(5):
        m.observe_request(protocol="gemini", model=f"m{index}", status=200, duration=1, ttfb=1, usage=None)
    m.observe_request(protocol="gemini", model="m0", status=200, duration=1, ttfb=1, usage=None)  # known: kept
    models = {dict(labels)["model"]: v for (_, labels), v in parse(render(m))["agproxy_requests"].items()}
    assert models == {"m0": 2, "m1": 1, "m2": 1, "(other)": 2}


def test_an_unknown_protocol_gets_its_own_histograms() -> None:
    m = Metrics()
    m.observe_request(protocol="other", model="m", status=500, duration=0.2, ttfb=0.2, usage=None)
    families = parse(render(m))
    assert value(families, "agproxy_ttfb_seconds", "agproxy_ttfb_seconds_count", protocol="other") == 1
