"""Quota: fetchAvailableModels → per-family quota (pool/quota.py), and what /quota shows of
it as JSON and as a table (pool/quota_view.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pytest

from daemon.accounts.model import Account, AccountState
from daemon.config import Settings
from daemon.handlers.quota import daemon_url
from daemon.pool.quota import merge, parse_quota, parse_rfc3339
from daemon.pool.quota_view import bar, duration, iso, quota_json, quota_table
from daemon.pool.state import FAMILIES, AccountLoad, Cooldown, FamilyQuota
from tests.fakes import scripts
from tests.fakes.catalog import FETCH_MODELS_FIXTURE, model_catalog
from tests.unit.test_layering import DAEMON, IO_IMPORTS, IO_MODULES, imports_of

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent.parent / "data" / "golden" / "quota_table.txt"
NOW = 1_786_000_000.0  # 2026-08-06T07:06:40Z
FIXTURE_RESET = dt.datetime(2026, 8, 14, 17, 50, 2, tzinfo=dt.UTC).timestamp()


def body(models: dict) -> bytes:
    return orjson.dumps({"models": models})


def row(fraction: float | None = None, reset: str | None = None, **extra: object) -> dict:
    info: dict = {}
    if fraction is not None:
        info["remainingFraction"] = fraction
    if reset is not None:
        info["resetTime"] = reset
    return {"quotaInfo": info, **extra}


def at(seconds: float) -> str:
    """RFC3339 text `seconds` after NOW."""
    return dt.datetime.fromtimestamp(NOW + seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- parse_quota -------------------------------------------------------------------------


def test_the_real_catalogue_excerpt():
    catalogue = scripts.fixture_json(FETCH_MODELS_FIXTURE)["response"]
    assert parse_quota(orjson.dumps(catalogue)) == {
        "gemini-flash": FamilyQuota(1.0, FIXTURE_RESET),  # gemini-2.5-flash-lite
        "gemini-pro": FamilyQuota(1.0, FIXTURE_RESET),  # gemini-2.5-pro
    }  # tab_jump_flash_lite_preview and chat_23310 (internal) are not served: no family


def test_internal_and_unserved_models_do_not_count_even_when_empty():
    catalogue = scripts.fixture_json(FETCH_MODELS_FIXTURE)["response"]
    catalogue["models"]["chat_23310"]["quotaInfo"] = {"resetTime": at(60)}
    catalogue["models"]["tab_jump_flash_lite_preview"]["quotaInfo"] = {"remainingFraction": 0, "resetTime": at(60)}
    catalogue["models"]["gemini-internal-flash"] = row(0.0, at(60), isInternal=True)
    catalogue["models"]["claude-internal"] = row(0.0, at(60), isInternal=True)
    assert parse_quota(orjson.dumps(catalogue)) == {
        "gemini-flash": FamilyQuota(1.0, FIXTURE_RESET), "gemini-pro": FamilyQuota(1.0, FIXTURE_RESET)}


def test_an_absent_fraction_with_a_reset_time_means_exhausted():
    assert parse_quota(body({"claude-opus-4-6-thinking": row(reset=at(3600))})) == {
        "claude": FamilyQuota(0.0, NOW + 3600)}


def test_a_family_is_its_emptiest_model_and_resets_at_its_earliest_reset():
    quota = parse_quota(body({
        "claude-sonnet-4-6": row(0.8, at(2 * 3600)),
        "claude-opus-4-6-thinking": row(0.3, at(5 * 3600)),
        "gpt-oss-120b-medium": row(0.9, at(3600)),
        "gemini-3.1-pro-low": row(0.6, at(600)),
        "gemini-pro-agent": row(reset=at(7200)),  # exhausted
        "gemini-3-flash": row(1, at(900)),
        "gemini-2.5-flash": row(0.25),  # no reset reported
    }))
    assert quota == {
        "claude": FamilyQuota(0.3, NOW + 3600),
        "gemini-pro": FamilyQuota(0.0, NOW + 600),
        "gemini-flash": FamilyQuota(0.25, NOW + 900),
    }
    assert all(isinstance(q.remaining, float) for q in quota.values())


@pytest.mark.parametrize("entry", [
    {"displayName": "no quotaInfo"},
    {"quotaInfo": {}},
    {"quotaInfo": None},
    {"quotaInfo": []},
    {"quotaInfo": {"remainingFraction": "0.5", "resetTime": "2026-08-06T09:00:00Z"}},
    {"quotaInfo": {"remainingFraction": True}},
    {"quotaInfo": {"remainingFraction": None, "resetTime": "2026-08-06T09:00:00Z"}},
    {"quotaInfo": {"resetTime": ""}},
    {"quotaInfo": {"resetTime": 1786000000}},
])
def test_a_row_without_readable_quota_says_nothing(entry):
    assert parse_quota(body({"claude-sonnet-4-6": entry, "gemini-3-flash": row(0.5)})) == {
        "gemini-flash": FamilyQuota(0.5, None)}


def test_fractions_are_clamped_and_integers_accepted():
    quota = parse_quota(body({"claude-sonnet-4-6": row(1.5), "gemini-3-flash": row(-0.2), "gemini-3.1-pro-low": row(1)}))
    assert quota == {"claude": FamilyQuota(1.0, None), "gemini-flash": FamilyQuota(0.0, None),
                     "gemini-pro": FamilyQuota(1.0, None)}


@pytest.mark.parametrize("raw", [
    b"", b"not json", b"\xff\xfe", b"[]", b"null", b'"models"', b"{}", b'{"models": []}', b'{"models": null}',
    b'{"models": {"claude-sonnet-4-6": "row"}}', b'{"models": {"claude-sonnet-4-6": ["row"]}}',
    b'{"response": {"models": {"claude-sonnet-4-6": {"quotaInfo": {"remainingFraction": 1}}}}}',
    b"[" * 100_000,
])
def test_malformed_bodies_give_nothing(raw):
    assert parse_quota(raw) == {}


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-08-06T07:06:40Z", NOW),
    ("2026-08-06t07:06:40z", NOW),
    ("2026-08-06T07:06:40.5Z", NOW + 0.5),
    ("2026-08-06T07:06:40.123456789Z", NOW + 0.123456),
    ("2026-08-06T09:06:40+02:00", NOW),
    ("2026-08-06T07:06:40", None),  # no offset: not RFC3339
    ("2026-08-06", None),
    ("tomorrow", None),
    ("2026-13-06T07:06:40Z", None),
    (" 2026-08-06T07:06:40Z", None),
    (1786000000, None),
    (None, None),
])
def test_rfc3339(text, expected):
    parsed = parse_rfc3339(text)
    assert parsed == pytest.approx(expected) if expected is not None else parsed is None


def test_an_exhausted_row_with_an_unreadable_reset_is_still_exhausted():
    assert parse_quota(body({"claude-sonnet-4-6": row(reset="soon")})) == {"claude": FamilyQuota(0.0, None)}


def test_merge_ignores_what_was_not_reported():
    assert merge(FamilyQuota(None, 5.0), FamilyQuota(0.5, None)) == FamilyQuota(0.5, 5.0)
    assert merge(FamilyQuota(None, None), FamilyQuota(None, None)) == FamilyQuota(None, None)


def test_the_fake_upstreams_per_account_overrides_come_through():
    catalogue = model_catalog({"claude-opus-4-6-thinking": (None, "2099-01-01T00:00:00Z"),
                               "claude-sonnet-4-6": (0.25, "2098-01-01T00:00:00Z"),
                               "gemini-3-flash": (0.4, None)})
    quota = parse_quota(orjson.dumps(catalogue))
    assert quota["claude"] == FamilyQuota(0.0, parse_rfc3339("2098-01-01T00:00:00Z"))
    assert quota["gemini-flash"].remaining == 0.4


@pytest.mark.parametrize("module", ["pool/quota.py", "pool/quota_view.py", "pool/state.py"])
def test_the_quota_cores_are_pure(module):
    imported = imports_of(DAEMON / module)
    assert not {name.split(".")[0] for name in imported} & (IO_IMPORTS | {"time", "urllib"}), imported
    assert not any(name == io or name.startswith(io + ".") for name in imported for io in IO_MODULES), imported


# --- the view --------------------------------------------------------------------------


def account(id_: str, email: str, state: AccountState = AccountState.ACTIVE) -> Account:
    return Account(id=id_, email=email, refresh_token="1//secret-refresh", client_id="client", project_id="p",
                   state=state)


ALICE = account("acc001", "alice@example.com")
BOB = account("acc002", "bob.builder@example.org")
CAROL = account("acc003", "carol@example.net", AccountState.NEEDS_LOGIN)


def golden_rows() -> list[tuple[Account, AccountLoad | None]]:
    """Active with mixed quota; Claude cooling for an hour; needs_login and never read."""
    alice = AccountLoad(quota={"claude": FamilyQuota(0.5, NOW + 2 * 3600 + 5 * 60),
                               "gemini-pro": FamilyQuota(1.0, NOW + 161 * 3600),
                               "gemini-flash": FamilyQuota(0.03, NOW + 45 * 60)},
                        quota_checked_at=NOW - 120, in_flight=2)
    bob = AccountLoad(quota={"claude": FamilyQuota(0.0, NOW + 3600), "gemini-pro": FamilyQuota(0.8, None)},
                      quota_checked_at=NOW - 60,
                      cooldowns={"claude": Cooldown(NOW + 3600, "no quota left (fetchAvailableModels)")})
    return [(ALICE, alice), (BOB, bob), (CAROL, None)]


def test_the_table_matches_the_golden_file():
    assert quota_table(golden_rows(), NOW) == GOLDEN.read_text(encoding="utf-8")


def test_the_golden_file_is_what_it_claims():
    text = GOLDEN.read_bytes()
    lines = text.decode("ascii").split("\n")
    assert len(lines) == 5 and lines[-1] == "" and text.endswith(b"\n")  # header, 3 accounts, final newline
    assert all(line == line.rstrip() for line in lines)


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "-"), (0, "0m"), (1, "1m"), (60, "1m"), (61, "2m"), (45 * 60, "45m"), (3599, "1h00m"), (3600, "1h00m"),
    (7500, "2h05m"), (86399, "1d00h"), (86400, "1d00h"), (161 * 3600, "6d17h"),
])
def test_duration(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize(("remaining", "text"), [
    (0.0, "----------   0%"), (0.03, "----------   3%"), (0.1, "#---------  10%"), (0.5, "#####-----  50%"),
    (0.994, "#########-  99%"), (0.999, "########## 100%"), (1.0, "########## 100%"), (1.7, "########## 100%"),
])
def test_bar(remaining, text):
    assert bar(remaining) == text


def test_iso():
    assert iso(NOW) == "2026-08-06T07:06:40Z" and iso(0) == "1970-01-01T00:00:00Z" and iso(None) is None
    assert iso(NOW + 0.6) == "2026-08-06T07:06:41Z"


def test_the_json_document():
    load = AccountLoad(quota={"claude": FamilyQuota(0.25, NOW + 90.5), "gemini-flash": FamilyQuota(None, None)},
                       quota_checked_at=NOW - 30, in_flight=3,
                       cooldowns={"gemini-pro": Cooldown(NOW + 600, "rate limited"),
                                  "claude": Cooldown(NOW - 1, "over")})  # an expired cooldown is not shown
    document = quota_json([(ALICE, load), (CAROL, None)], NOW)
    nothing = {"remaining": None, "resets_at": None, "resets_in_s": None, "cooling_until": None,
               "cooling_reason": None}
    assert document == {
        "generated_at": "2026-08-06T07:06:40Z",
        "accounts": [
            {"id": "acc001", "email": "al***e@example.com", "state": "active", "in_flight": 3,
             "quota_checked_at": "2026-08-06T07:06:10Z",
             "families": {
                 "claude": {**nothing, "remaining": 0.25, "resets_at": "2026-08-06T07:08:10Z", "resets_in_s": 91},
                 "gemini-pro": {**nothing, "cooling_until": "2026-08-06T07:16:40Z", "cooling_reason": "rate limited"},
                 "gemini-flash": nothing,
             }},
            {"id": "acc003", "email": "ca***l@example.net", "state": "needs_login", "in_flight": 0,
             "quota_checked_at": None, "families": {family: nothing for family in FAMILIES}},
        ],
    }
    assert list(document["accounts"][0]["families"]) == list(FAMILIES)


def test_a_passed_reset_is_zero_seconds_away():
    document = quota_json([(ALICE, AccountLoad(quota={"claude": FamilyQuota(0.5, NOW - 100)}))], NOW)
    assert document["accounts"][0]["families"]["claude"]["resets_in_s"] == 0


def test_no_full_email_or_secret_is_shown():
    rows = golden_rows()
    shown = quota_table(rows, NOW) + orjson.dumps(quota_json(rows, NOW)).decode()
    for secret in ("alice@", "bob.builder", "carol@", "1//secret-refresh"):
        assert secret not in shown


def test_the_table_shape():
    rows = golden_rows()
    text = quota_table(rows, NOW)
    assert text == quota_table(rows, NOW) and text.endswith("\n") and text.isascii()
    header, *lines = text.rstrip("\n").split("\n")
    assert header.split() == ["ACCOUNT", "STATE", "CLAUDE", "GEMINI-PRO", "GEMINI-FLASH"]
    assert len(lines) == 3 and all(line == line.rstrip() for line in [header, *lines])
    starts = [header.index(name) for name in ("STATE", "CLAUDE", "GEMINI-PRO", "GEMINI-FLASH")]
    for line in lines:  # every cell starts under its heading, after a gap of spaces
        for start in starts:
            assert line[start - 2:start] == "  " and line[start] != " ", (line, start)


def test_an_expired_cooldown_shows_the_bar_again():
    load = AccountLoad(quota={"claude": FamilyQuota(0.0, NOW + 60)}, cooldowns={"claude": Cooldown(NOW, "over")})
    line = quota_table([(ALICE, load)], NOW).split("\n")[1]
    assert "cooling" not in line and "----------   0%     1m" in line


def test_an_empty_pool_is_a_header():
    assert quota_table([], NOW) == "ACCOUNT  STATE  CLAUDE  GEMINI-PRO  GEMINI-FLASH\n"
    assert quota_json([], NOW) == {"accounts": [], "generated_at": "2026-08-06T07:06:40Z"}


# --- the CLI's address of the daemon ----------------------------------------------------


@pytest.mark.parametrize(("host", "url"), [
    ("127.0.0.1", "http://127.0.0.1:9045"), ("0.0.0.0", "http://127.0.0.1:9045"), ("::", "http://127.0.0.1:9045"),
    ("::1", "http://[::1]:9045"), ("localhost", "http://localhost:9045"), ("192.168.1.5", "http://192.168.1.5:9045"),
])
def test_the_cli_asks_the_daemon_on_loopback(host, url, make_settings):
    settings: Settings = make_settings(AGPROXY_HOST=host, AGPROXY_PORT="9045")
    assert daemon_url(settings) == url
