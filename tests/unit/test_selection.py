"""Properties of the pure account selection (daemon/pool/selection.py).

Each property is checked against a small independent oracle written from the rules in the
module docstring and the issue: an account can serve a family when it is active with a
project, not cooling down for that family, not tried by this request and under the
concurrency cap; accounts at or below the reserve serve only when nothing above it can.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from daemon.accounts.model import Account, AccountState
from daemon.dispatch.opening import _nothing_serves
from daemon.errors import ErrorKind
from daemon.pool.selection import STRATEGIES, NoAccount, Pick, Request, select
from daemon.pool.state import FAMILIES, FamilyQuota, PoolState

NOW = 1_800_000_000.0
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def account(index: int, *, state: AccountState = AccountState.ACTIVE, project: str | None = "proj") -> Account:
    return Account(id=f"acc{index}", email=f"User{index}@Example.com", refresh_token="1//r", client_id="cid",
                   project_id=project, state=state)


# --- the pools hypothesis draws --------------------------------------------------------------


@dataclass
class Pool:
    accounts: list[Account]
    state: PoolState
    family: str
    reserve: float  # percent
    max_in_flight: int


@st.composite
def pools(draw: st.DrawFn, *, min_size: int = 1, all_usable: bool = False) -> Pool:
    size = draw(st.integers(min_size, 6))
    family = draw(st.sampled_from(FAMILIES))
    state = PoolState()
    accounts = []
    for index in range(size):
        if all_usable:
            accounts.append(account(index))
        else:
            status = draw(st.sampled_from([AccountState.ACTIVE] * 5 + list(AccountState)))
            project = draw(st.sampled_from(["proj", "proj", "proj", None, ""]))
            accounts.append(account(index, state=status, project=project))
        if draw(st.integers(0, 5)) == 0:
            continue  # the pool has never looked at this account: no load at all
        load = state.load(f"acc{index}")
        load.last_used = draw(st.floats(NOW - 10_000, NOW, allow_nan=False))
        load.in_flight = draw(st.integers(0, 3))
        for fam in FAMILIES:
            if draw(st.booleans()):
                remaining = draw(st.one_of(st.none(), st.sampled_from([0.0, 0.05, 0.1, 0.2, 1.0]),
                                           st.floats(0, 1, allow_nan=False)))
                load.quota[fam] = FamilyQuota(remaining, NOW + 3600)
            if not all_usable and draw(st.integers(0, 2)) == 0:
                # a cooldown in the past has ended; one exactly at `now` has too
                state.cool_down(f"acc{index}", fam, NOW + draw(st.sampled_from([-60.0, 0.0, 0.5, 30.0, 3600.0, 86400.0])),
                                f"429 on acc{index}")
    reserve = draw(st.sampled_from([0.0, 0.0, 5.0, 10.0, 20.0, 100.0]))
    max_in_flight = 0 if all_usable else draw(st.sampled_from([0, 0, 1, 2, 3]))
    return Pool(accounts, state, family, reserve, max_in_flight)


@st.composite
def requests(draw: st.DrawFn, pool: Pool) -> Request:
    ids = [a.id for a in pool.accounts]
    tried = draw(st.sets(st.sampled_from(ids))) if draw(st.booleans()) else set()
    prefer = draw(st.sampled_from(["", *ids]))
    allowed: tuple[str, ...] = ()
    if draw(st.integers(0, 3)) == 0:  # a route target's accounts, by id or e-mail in any case
        chosen = draw(st.lists(st.sampled_from(pool.accounts), min_size=1, unique_by=lambda a: a.id))
        allowed = tuple(draw(st.sampled_from([a.id, a.email, a.email.upper()])) for a in chosen)
    return Request(pool.family, session="", tried=frozenset(tried), prefer=prefer, allowed=allowed)


# --- the oracle ------------------------------------------------------------------------------


def matches(acc: Account, key: str) -> bool:
    return acc.id == key or acc.email.lower() == key.lower()


def candidates(pool: Pool, request: Request) -> list[Account]:
    """The accounts this request may use at all: the pinned one, within a route's accounts."""
    found = [a for a in pool.accounts if matches(a, request.pinned)] if request.pinned else pool.accounts
    return [a for a in found if any(matches(a, key) for key in request.allowed)] if request.allowed else found


def cooling_until(pool: Pool, account_id: str) -> float | None:
    load = pool.state.loads.get(account_id)
    cooldown = load.cooldowns.get(pool.family) if load is not None else None
    return cooldown.until if cooldown is not None and cooldown.until > NOW else None


def can_serve(pool: Pool, request: Request, acc: Account) -> bool:
    load = pool.state.loads.get(acc.id)
    in_flight = load.in_flight if load is not None else 0
    return (acc.state is AccountState.ACTIVE and bool(acc.project_id) and acc.id not in request.tried
            and cooling_until(pool, acc.id) is None and not (pool.max_in_flight and in_flight >= pool.max_in_flight))


def remaining(pool: Pool, acc: Account) -> float | None:
    load = pool.state.loads.get(acc.id)
    quota = load.quota.get(pool.family) if load is not None else None
    return quota.remaining if quota is not None else None


def above_reserve(pool: Pool, acc: Account) -> bool:
    value = remaining(pool, acc)
    return value is None or value > pool.reserve / 100


def servers(pool: Pool, request: Request) -> list[Account]:
    """Who the selection may pick: the ones above the reserve if any, else all that can serve."""
    ready = [a for a in candidates(pool, request) if can_serve(pool, request, a)]
    above = [a for a in ready if above_reserve(pool, a)]
    return above or ready


def choose(pool: Pool, request: Request, strategy: str = "sticky") -> Pick | NoAccount:
    return select(pool.accounts, pool.state, request, now=NOW, strategy=strategy, reserve=pool.reserve,
                  max_in_flight=pool.max_in_flight)


# --- eligibility -----------------------------------------------------------------------------


@PROPERTY
@given(data=st.data(), strategy=st.sampled_from(STRATEGIES))
def test_a_pick_is_always_an_account_that_can_serve(data: st.DataObject, strategy: str) -> None:
    pool = data.draw(pools())
    request = data.draw(requests(pool))
    choice = choose(pool, request, strategy)
    allowed = servers(pool, request)
    if isinstance(choice, Pick):
        picked = choice.account
        assert picked.state is AccountState.ACTIVE and picked.project_id, "picked a disabled/needs_login/no-project account"
        assert picked.id not in request.tried, "picked an account this request already tried"
        assert cooling_until(pool, picked.id) is None, "picked an account cooling down for this family"
        assert picked in allowed, "picked a below-reserve or busy account while another could serve"
    else:
        assert not allowed, f"NoAccount although {[a.id for a in allowed]} can serve"


@PROPERTY
@given(data=st.data(), strategy=st.sampled_from(STRATEGIES))
def test_never_a_below_reserve_account_while_one_above_can_serve(data: st.DataObject, strategy: str) -> None:
    pool = data.draw(pools())
    request = data.draw(requests(pool))
    ready = [a for a in candidates(pool, request) if can_serve(pool, request, a)]
    assume(any(above_reserve(pool, a) for a in ready))
    choice = choose(pool, request, strategy)
    assert isinstance(choice, Pick) and above_reserve(pool, choice.account)


@PROPERTY
@given(data=st.data())
def test_below_reserve_accounts_serve_when_nothing_else_can(data: st.DataObject) -> None:
    pool = data.draw(pools())
    pool.reserve = 20.0
    for acc in pool.accounts:  # everyone known to be at or below the reserve
        pool.state.load(acc.id).quota[pool.family] = FamilyQuota(data.draw(st.sampled_from([0.0, 0.1, 0.2])), NOW + 60)
    request = data.draw(requests(pool))
    ready = [a for a in candidates(pool, request) if can_serve(pool, request, a)]
    choice = choose(pool, request)
    if ready:
        assert isinstance(choice, Pick) and choice.account in ready
    else:
        assert isinstance(choice, NoAccount)


def test_each_kind_of_unusable_account_is_skipped_for_the_one_that_can_serve() -> None:
    state = PoolState()
    broken = [account(0, state=AccountState.DISABLED), account(1, state=AccountState.NEEDS_LOGIN),
              account(2, state=AccountState.NO_PROJECT, project=None), account(3, project=None),
              account(4, state=AccountState.VERIFICATION_REQUIRED), account(5, state=AccountState.FORBIDDEN),
              account(6), account(7), account(8)]
    state.cool_down("acc6", "claude", NOW + 60, "quota")
    state.load("acc7").quota["claude"] = FamilyQuota(0.05, NOW + 60)  # below a 10 % reserve
    good = account(9)
    for strategy in STRATEGIES:
        choice = select([*broken, good], state, Request("claude", tried={"acc8"}), now=NOW, strategy=strategy,
                        reserve=10)
        assert isinstance(choice, Pick) and choice.account.id == "acc9", strategy
    # without the good one, the below-reserve account is the last resort
    choice = select(broken, state, Request("claude", tried={"acc8"}), now=NOW, reserve=10)
    assert isinstance(choice, Pick) and choice.account.id == "acc7"


def test_a_cooldown_is_per_family() -> None:
    state = PoolState()
    state.cool_down("acc0", "claude", NOW + 3600, "quota")
    accounts = [account(0), account(1)]
    assert select(accounts, state, Request("claude"), now=NOW).account.id == "acc1"  # type: ignore[union-attr]
    for family in ("gemini-pro", "gemini-flash"):
        assert select(accounts, state, Request(family), now=NOW).account.id == "acc0"  # type: ignore[union-attr]


def test_a_cooldown_ends_at_its_time() -> None:
    state = PoolState()
    state.cool_down("acc0", "claude", NOW + 10, "quota")
    assert isinstance(select([account(0)], state, Request("claude"), now=NOW + 9.99), NoAccount)
    assert isinstance(select([account(0)], state, Request("claude"), now=NOW + 10), Pick)


# --- NoAccount -------------------------------------------------------------------------------


def blocked(data: st.DataObject, pool: Pool, request: Request) -> Request:
    """The request again, after every account that could serve it was made unable to (tried,
    cooling down, or at a concurrency cap), so the selection must say NoAccount."""
    tried = set(request.tried)
    for acc in candidates(pool, request):
        if not can_serve(pool, request, acc):
            continue
        how = data.draw(st.sampled_from(["tried", "cooling", "cap"]))
        if how == "tried":
            tried.add(acc.id)
        elif how == "cooling":
            pool.state.cool_down(acc.id, pool.family, NOW + data.draw(st.sampled_from([0.5, 60.0, 7200.0])), "429")
        else:
            pool.max_in_flight = pool.max_in_flight or 1
            pool.state.load(acc.id).in_flight = max(pool.state.load(acc.id).in_flight, pool.max_in_flight)
    return Request(request.family, tried=frozenset(tried), prefer=request.prefer, allowed=request.allowed)


@PROPERTY
@given(data=st.data())
def test_no_account_retry_at_is_the_earliest_cooldown(data: st.DataObject) -> None:
    pool = data.draw(pools())
    request = blocked(data, pool, data.draw(requests(pool)))
    choice = choose(pool, request)
    assert isinstance(choice, NoAccount)
    # Accounts this request already tried count too: their resets are what the client waits for.
    waiting = {a.id: until for a in candidates(pool, request)
               if a.state is AccountState.ACTIVE and a.project_id
               and (until := cooling_until(pool, a.id)) is not None}
    assert {a.id for a, _ in choice.cooling} == set(waiting)
    assert choice.retry_at == min(waiting.values(), default=None)
    if choice.retry_at is not None:
        assert choice.retry_at > NOW


@PROPERTY
@given(data=st.data())
def test_no_account_says_busy_only_when_an_account_is_at_its_cap(data: st.DataObject) -> None:
    pool = data.draw(pools())
    request = blocked(data, pool, data.draw(requests(pool)))
    choice = choose(pool, request)
    assert isinstance(choice, NoAccount)
    at_cap = [a for a in candidates(pool, request)
              if a.state is AccountState.ACTIVE and a.project_id and a.id not in request.tried
              and cooling_until(pool, a.id) is None]  # can serve but for the cap
    assert choice.busy == bool(at_cap)
    assert choice.message


def test_no_account_retry_at_concrete() -> None:
    state = PoolState()
    state.cool_down("acc0", "claude", NOW + 7200, "quota")
    state.cool_down("acc1", "claude", NOW + 3600, "quota")
    state.cool_down("acc2", "claude", NOW + 5400, "quota")
    state.cool_down("acc3", "claude", NOW + 60, "quota")  # tried by this request, yet the first back
    state.cool_down("acc1", "gemini-flash", NOW + 10, "another family")
    choice = select([account(i) for i in range(4)], state, Request("claude", tried={"acc3"}), now=NOW)
    assert isinstance(choice, NoAccount)
    assert choice.retry_at == NOW + 60 and not choice.busy
    assert "rate-limited" in choice.message


def test_no_account_at_all() -> None:
    choice = select([], PoolState(), Request("claude"), now=NOW)
    assert isinstance(choice, NoAccount) and choice.retry_at is None and choice.cooling == ()
    assert "accounts add" in choice.message


# --- pinning ---------------------------------------------------------------------------------


@PROPERTY
@given(data=st.data(), strategy=st.sampled_from(STRATEGIES), by_email=st.booleans())
def test_pinned_only_ever_gives_that_account(data: st.DataObject, strategy: str, by_email: bool) -> None:
    pool = data.draw(pools())
    target = data.draw(st.sampled_from(pool.accounts))
    pinned = target.email.swapcase() if by_email else target.id
    request = Request(pool.family, pinned=pinned, tried=data.draw(st.sets(st.sampled_from([a.id for a in pool.accounts]))),
                      prefer=data.draw(st.sampled_from(["", *(a.id for a in pool.accounts)])))
    choice = choose(pool, request, strategy)
    if isinstance(choice, Pick):
        assert choice.account.id == target.id
    else:
        assert not can_serve(pool, request, target)
        assert all(a.id == target.id for a, _ in choice.cooling)
        until = cooling_until(pool, target.id)
        if until is not None and target.id not in request.tried and target.usable:
            assert choice.retry_at == until  # the pinned account's own reset, no one else's


def test_an_unknown_pinned_account_is_no_account_with_a_message_naming_it() -> None:
    choice = select([account(0)], PoolState(), Request("claude", pinned="nobody@example.com"), now=NOW)
    assert isinstance(choice, NoAccount) and choice.cooling == () and not choice.busy
    assert "nobody@example.com" in choice.message
    assert _nothing_serves(choice, None, "claude").kind is ErrorKind.NOT_FOUND


def test_an_unknown_pinned_account_with_an_apostrophe_is_not_found() -> None:
    choice = select([account(0)], PoolState(), Request("claude", pinned="o'brien@example.com"), now=NOW)
    assert isinstance(choice, NoAccount)
    assert _nothing_serves(choice, None, "claude").kind is ErrorKind.NOT_FOUND


# --- prefer ----------------------------------------------------------------------------------


@PROPERTY
@given(data=st.data(), strategy=st.sampled_from(STRATEGIES))
def test_prefer_wins_when_it_can_serve(data: st.DataObject, strategy: str) -> None:
    pool = data.draw(pools())
    request = data.draw(requests(pool))
    allowed = servers(pool, request)
    assume(allowed)
    prefer = data.draw(st.sampled_from(allowed)).id
    # a sticky session elsewhere must not beat it either
    other = next((a.id for a in pool.accounts if a.id != prefer), "")
    pool.state.stick("conversation", other)
    request = Request(request.family, session="conversation", tried=request.tried, prefer=prefer,
                      allowed=request.allowed)
    choice = choose(pool, request, strategy)
    assert isinstance(choice, Pick) and choice.account.id == prefer


@PROPERTY
@given(data=st.data())
def test_prefer_that_cannot_serve_falls_back_to_another(data: st.DataObject) -> None:
    pool = data.draw(pools())
    request = data.draw(requests(pool))
    allowed = servers(pool, request)
    unable = [a for a in pool.accounts if a not in allowed]  # cannot serve, outside the route, or below the reserve
    assume(unable and allowed)
    request = Request(request.family, tried=request.tried, prefer=data.draw(st.sampled_from(unable)).id,
                      allowed=request.allowed)
    choice = choose(pool, request)
    assert isinstance(choice, Pick) and choice.account.id != request.prefer


# --- strategies ------------------------------------------------------------------------------


def begin(state: PoolState, account_id: str, session: str, now: float) -> None:
    """What AccountPool.begin (then end) leaves behind after one request."""
    load = state.load(account_id)
    load.last_used = now
    if session:
        state.stick(session, account_id)


@PROPERTY
@given(pool=pools(all_usable=True), others=st.lists(st.integers(0, 3), min_size=100, max_size=100))
def test_sticky_keeps_a_conversation_on_one_account_for_100_requests(pool: Pool, others: list[int]) -> None:
    """Between the conversation's turns other conversations come and go (moving last_used
    around); nothing fails, so the conversation never moves."""
    served = []
    now = NOW
    for turn, interleaved in enumerate(others):
        choice = select(pool.accounts, pool.state, Request(pool.family, session="main"), now=now,
                        reserve=pool.reserve)
        assert isinstance(choice, Pick)
        served.append(choice.account.id)
        begin(pool.state, choice.account.id, "main", now)
        for other in range(interleaved):
            now += 0.01
            session = f"other-{turn}-{other}"
            side = select(pool.accounts, pool.state, Request(pool.family, session=session), now=now, reserve=pool.reserve)
            assert isinstance(side, Pick)
            begin(pool.state, side.account.id, session, now)
        now += 1
    assert len(served) == 100 and len(set(served)) == 1, served


def test_sticky_moves_a_conversation_when_its_account_cools_down_then_stays() -> None:
    state = PoolState()
    accounts = [account(i) for i in range(3)]
    first = select(accounts, state, Request("claude", session="s"), now=NOW)
    assert isinstance(first, Pick)
    begin(state, first.account.id, "s", NOW)
    state.cool_down(first.account.id, "claude", NOW + 3600, "quota")
    moved = []
    for turn in range(10):
        choice = select(accounts, state, Request("claude", session="s"), now=NOW + 1 + turn)
        assert isinstance(choice, Pick)
        moved.append(choice.account.id)
        begin(state, choice.account.id, "s", NOW + 1 + turn)
    assert first.account.id not in moved and len(set(moved)) == 1


def test_sticky_new_conversations_go_where_the_most_quota_is_left() -> None:
    state = PoolState()
    for index, left in enumerate([0.3, 0.9, 0.6]):
        state.load(f"acc{index}").quota["gemini-pro"] = FamilyQuota(left, NOW + 3600)
    choice = select([account(i) for i in range(3)], state, Request("gemini-pro", session="new"), now=NOW)
    assert isinstance(choice, Pick) and choice.account.id == "acc1"


@PROPERTY
@given(pool=pools(), rounds=st.integers(1, 4))
def test_round_robin_gives_every_account_with_quota_its_turn(pool: Pool, rounds: int) -> None:
    request = Request(pool.family)
    eligible = {a.id for a in servers(pool, request)}
    assume(eligible and not pool.max_in_flight)
    picks = []
    now = NOW
    for _ in range(rounds * len(eligible)):
        now += 0.001  # no cooldown ends meanwhile
        choice = select(pool.accounts, pool.state, request, now=now, strategy="round-robin", reserve=pool.reserve)
        assert isinstance(choice, Pick)
        picks.append(choice.account.id)
        begin(pool.state, choice.account.id, "", now)
    for start in range(0, len(picks), len(eligible)):  # each window of len(eligible) picks covers everyone
        assert set(picks[start:start + len(eligible)]) == eligible, picks


@PROPERTY
@given(data=st.data())
def test_quota_first_picks_the_most_remaining(data: st.DataObject) -> None:
    pool = data.draw(pools())
    request = Request(pool.family, tried=data.draw(st.sets(st.sampled_from([a.id for a in pool.accounts]))))
    allowed = servers(pool, request)
    assume(allowed)
    choice = choose(pool, request, "quota-first")
    assert isinstance(choice, Pick)

    def left(acc: Account) -> float:
        value = remaining(pool, acc)
        return 1.0 if value is None else value  # not read yet: assumed full

    assert left(choice.account) == max(left(a) for a in allowed)


def test_quota_first_concrete() -> None:
    state = PoolState()
    for index, left in enumerate([0.4, 0.8, None, 0.95]):
        state.load(f"acc{index}").quota["claude"] = FamilyQuota(left, NOW + 3600)
    state.cool_down("acc3", "claude", NOW + 60, "quota")
    accounts = [account(i) for i in range(4)]
    # acc2's quota was never reported: counted as full, so it beats acc1's 80 %
    assert select(accounts, state, Request("claude"), now=NOW, strategy="quota-first").account.id == "acc2"  # type: ignore[union-attr]
    state.load("acc2").quota["claude"] = FamilyQuota(0.5, NOW + 3600)
    assert select(accounts, state, Request("claude"), now=NOW, strategy="quota-first").account.id == "acc1"  # type: ignore[union-attr]
