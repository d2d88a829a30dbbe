"""The pool's policy for one upstream refusal (daemon/pool/policy.py), per failure kind, with
and without a retry delay, at the AGPROXY_MAX_WAIT boundary and over repeated retries; and
the real upstream error fixtures through classify → decide."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.pool import policy
from daemon.pool.policy import Action, Decision, decide
from daemon.upstream.failures import FailureKind, UpstreamFailure, classify
from tests.fakes import scripts as s

MAX_WAIT = 10.0
RATE = (FailureKind.QUOTA_EXHAUSTED, FailureKind.RATE_LIMITED)


def failure(kind: FailureKind, retry_after: float | None = None, status: int = 429) -> UpstreamFailure:
    return UpstreamFailure(kind, status, f"{kind.value} from the upstream", retry_after=retry_after)


def run(kind: FailureKind, retry_after: float | None = None, *, retries: int = 0, max_wait: float = MAX_WAIT,
        status: int = 429) -> Decision:
    return decide(failure(kind, retry_after, status), same_account_retries=retries, max_wait=max_wait)


# --- quota exhausted and short rate limits with a reset time ---------------------------------


@pytest.mark.parametrize("kind", RATE)
def test_a_reset_within_the_wait_is_waited_out_on_the_same_account(kind: FailureKind) -> None:
    assert run(kind, 3.5) == Decision(Action.RETRY_SAME, 3.5, None)
    assert run(kind, 0.0) == Decision(Action.RETRY_SAME, 0.0, None)


@pytest.mark.parametrize("kind", RATE)
def test_a_reset_beyond_the_wait_cools_the_account_down_until_it(kind: FailureKind) -> None:
    assert run(kind, 3600.0) == Decision(Action.NEXT_ACCOUNT, 0.0, 3600.0)
    assert run(kind, 91226.179915352) == Decision(Action.NEXT_ACCOUNT, 0.0, 91226.179915352)


@pytest.mark.parametrize("kind", RATE)
def test_the_max_wait_boundary_is_inclusive(kind: FailureKind) -> None:
    assert run(kind, MAX_WAIT) == Decision(Action.RETRY_SAME, MAX_WAIT, None)
    just_over = run(kind, MAX_WAIT + 0.001)
    assert just_over.action is Action.NEXT_ACCOUNT and just_over.cooldown == MAX_WAIT + 0.001
    assert run(kind, 0.25, max_wait=0.2).action is Action.NEXT_ACCOUNT
    assert run(kind, 0.2, max_wait=0.2).action is Action.RETRY_SAME


@pytest.mark.parametrize("kind", RATE)
def test_after_the_same_account_retries_a_short_reset_moves_on_with_a_cooldown(kind: FailureKind) -> None:
    for retries in range(policy.SAME_ACCOUNT_RETRIES):
        assert run(kind, 2.0, retries=retries).action is Action.RETRY_SAME
    for retries in (policy.SAME_ACCOUNT_RETRIES, policy.SAME_ACCOUNT_RETRIES + 3):
        assert run(kind, 2.0, retries=retries) == Decision(Action.NEXT_ACCOUNT, 0.0, 2.0)


def test_quota_exhausted_without_a_reset_time_cools_down_for_the_default() -> None:
    for retries in (0, 1, 5):
        assert run(FailureKind.QUOTA_EXHAUSTED, None, retries=retries) == \
            Decision(Action.NEXT_ACCOUNT, 0.0, policy.QUOTA_COOLDOWN)


# --- the bare 429 ---------------------------------------------------------------------------


def test_a_bare_429_is_retried_once_on_the_same_account_then_moves_on() -> None:
    assert run(FailureKind.RATE_LIMITED, None) == Decision(Action.RETRY_SAME, policy.BARE_429_BACKOFF, None)
    for retries in (1, 2, 7):
        assert run(FailureKind.RATE_LIMITED, None, retries=retries) == Decision(Action.NEXT_ACCOUNT, 0.0, None)


@settings(max_examples=200, deadline=None)
@given(retries=st.integers(0, 20), max_wait=st.floats(0.01, 3600, allow_nan=False))
def test_a_bare_429_never_cools_an_account_down(retries: int, max_wait: float) -> None:
    decision = run(FailureKind.RATE_LIMITED, None, retries=retries, max_wait=max_wait)
    assert decision.cooldown is None and decision.action is not Action.GIVE_UP


def test_the_real_bare_429_fixture_is_a_rate_limit_without_a_delay() -> None:
    reply = s.error("bare-no-details")
    classified = classify(reply.status, reply.body)
    assert classified.kind is FailureKind.RATE_LIMITED and classified.retry_after is None
    for retries in range(4):
        assert decide(classified, same_account_retries=retries, max_wait=MAX_WAIT).cooldown is None


# --- capacity, server errors, account refusals, request errors -------------------------------


def test_capacity_backs_off_on_the_same_account_without_a_penalty() -> None:
    assert run(FailureKind.CAPACITY, None, status=503) == Decision(Action.RETRY_SAME, policy.CAPACITY_BACKOFF, None)
    assert run(FailureKind.CAPACITY, 4.0, status=503) == Decision(Action.RETRY_SAME, 4.0, None)
    assert run(FailureKind.CAPACITY, 40.0, status=503) == Decision(Action.RETRY_SAME, MAX_WAIT, None)  # capped
    assert run(FailureKind.CAPACITY, None, max_wait=0.5) == Decision(Action.RETRY_SAME, 0.5, None)
    moved = run(FailureKind.CAPACITY, None, retries=policy.SAME_ACCOUNT_RETRIES)
    assert moved.action is Action.NEXT_ACCOUNT and moved.cooldown is None


@pytest.mark.parametrize("delay", [None, 1.0, 3600.0])
def test_a_server_error_moves_on_after_a_short_backoff(delay: float | None) -> None:
    for retries in (0, 3):
        assert run(FailureKind.SERVER_ERROR, delay, status=500, retries=retries) == \
            Decision(Action.NEXT_ACCOUNT, policy.SERVER_BACKOFF, None)


@pytest.mark.parametrize("kind", [FailureKind.AUTH, FailureKind.VERIFICATION_REQUIRED, FailureKind.FORBIDDEN])
@pytest.mark.parametrize("delay", [None, 5.0])
def test_account_refusals_move_on_at_once(kind: FailureKind, delay: float | None) -> None:
    assert run(kind, delay, status=403) == Decision(Action.NEXT_ACCOUNT, 0.0, None)


@pytest.mark.parametrize("kind", [FailureKind.INVALID_REQUEST, FailureKind.NOT_FOUND])
@pytest.mark.parametrize("delay", [None, 5.0, 3600.0])
def test_request_errors_are_not_retried(kind: FailureKind, delay: float | None) -> None:
    for retries in (0, 1):
        assert run(kind, delay, status=400, retries=retries) == Decision(Action.GIVE_UP, 0.0, None)


# --- properties over every kind -------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(kind=st.sampled_from(list(FailureKind)), delay=st.one_of(st.none(), st.floats(0, 200_000, allow_nan=False)),
       retries=st.integers(0, 10), max_wait=st.floats(0.01, 600, allow_nan=False))
def test_every_decision_keeps_the_rules(kind: FailureKind, delay: float | None, retries: int, max_wait: float) -> None:
    decision = run(kind, delay, retries=retries, max_wait=max_wait)
    assert decision.delay >= 0
    if decision.action is Action.RETRY_SAME:
        assert retries < policy.SAME_ACCOUNT_RETRIES, "waited on one account more often than allowed"
        assert decision.cooldown is None, "an account that is waited on is not also cooled down"
        if kind is not FailureKind.RATE_LIMITED or delay is not None:
            assert decision.delay <= max_wait, "a wait beyond AGPROXY_MAX_WAIT"
    if decision.cooldown is not None:
        assert kind in RATE, f"{kind} put a cooldown on the account"
        assert decision.action is Action.NEXT_ACCOUNT
        assert decision.cooldown == (delay if delay is not None else policy.QUOTA_COOLDOWN)
    if kind in (FailureKind.INVALID_REQUEST, FailureKind.NOT_FOUND):
        assert decision.action is Action.GIVE_UP
    else:
        assert decision.action is not Action.GIVE_UP


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(list(FailureKind)), delay=st.one_of(st.none(), st.floats(0, 100, allow_nan=False)),
       max_wait=st.floats(0.01, 100, allow_nan=False))
def test_the_same_failure_over_and_over_leaves_the_account_within_the_retry_bound(
        kind: FailureKind, delay: float | None, max_wait: float) -> None:
    """What open_upstream does with one account: count the waits until the policy moves on."""
    waits = 0
    while True:
        decision = run(kind, delay, retries=waits, max_wait=max_wait)
        if decision.action is not Action.RETRY_SAME:
            break
        waits += 1
        assert waits <= policy.SAME_ACCOUNT_RETRIES
    bound = 1 if kind is FailureKind.RATE_LIMITED and delay is None else policy.SAME_ACCOUNT_RETRIES
    assert waits <= bound


# --- the real and fixture-shaped upstream errors, classified --------------------------------


@pytest.mark.parametrize(("reply", "action", "cooldown"), [
    (s.error("429.QUOTA_EXHAUSTED"), Action.NEXT_ACCOUNT, 91226.179915352),
    (s.quota_exhausted(3600), Action.NEXT_ACCOUNT, 3600.0),
    (s.quota_exhausted(4), Action.RETRY_SAME, None),
    (s.rate_limited(0.5), Action.RETRY_SAME, None),
    (s.rate_limited(30), Action.NEXT_ACCOUNT, 30.0),
    (s.error("bare-no-details"), Action.RETRY_SAME, None),
    (s.error("429.MODEL_CAPACITY"), Action.RETRY_SAME, None),
    (s.error("503.MODEL_CAPACITY"), Action.RETRY_SAME, None),
    (s.error("500.INTERNAL"), Action.NEXT_ACCOUNT, None),
    (s.error("claude-prefill"), Action.GIVE_UP, None),
    (s.validation_required(), Action.NEXT_ACCOUNT, None),
    (s.tos_disabled(), Action.NEXT_ACCOUNT, None),
], ids=["quota-fixture", "quota-1h", "quota-4s", "rate-0.5s", "rate-30s", "bare", "capacity-429", "capacity-503",
        "internal", "invalid", "validation", "tos"])
def test_upstream_errors_lead_to(reply: s.ErrorReply, action: Action, cooldown: float | None) -> None:
    decision = decide(classify(reply.status, reply.body), same_account_retries=0, max_wait=MAX_WAIT)
    assert decision.action is action
    if cooldown is None:
        assert decision.cooldown is None
    else:
        assert decision.cooldown == pytest.approx(cooldown, abs=1e-6)
