"""Pure upstream cores: error classification on the real fixtures, OAuth replies, discovery shapes."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from daemon.accounts.model import AccountState, state_for_failure
from daemon.upstream import discovery, oauth
from daemon.dispatch.translating import parse_document
from daemon.errors import ErrorKind, ProxyError
from daemon.upstream.failures import FailureKind, classify, classify_in_answer, parse_duration

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parent.parent / "fixtures" / "upstream"


@pytest.mark.parametrize(
    ("fixture", "status", "kind", "retry_after"),
    [
        ("error.429.QUOTA_EXHAUSTED.claude-opus-4-6-thinking.json", 429, FailureKind.QUOTA_EXHAUSTED, 91226.179915352),
        ("error.429.MODEL_CAPACITY_EXHAUSTED.array-wrapped.gemini-3.1-pro-preview.json", 429, FailureKind.CAPACITY, None),
        ("error.503.MODEL_CAPACITY_EXHAUSTED.claude-opus-4-6-thinking.json", 503, FailureKind.CAPACITY, None),
        ("error.429.RESOURCE_EXHAUSTED.bare-no-details.json", 429, FailureKind.RATE_LIMITED, None),
        ("error.400.INVALID_ARGUMENT.claude-prefill-not-supported.json", 400, FailureKind.INVALID_REQUEST, None),
        ("error.400.INVALID_ARGUMENT.thought-signature-not-valid.array-wrapped.json", 400, FailureKind.INVALID_REQUEST, None),
        ("error.500.INTERNAL.empty-project.json", 500, FailureKind.SERVER_ERROR, None),
    ],
)
def test_real_error_bodies_are_classified(fixture: str, status: int, kind: FailureKind, retry_after: float | None) -> None:
    failure = classify(status, (FIXTURES / fixture).read_bytes())
    assert failure.kind is kind
    assert failure.status == status
    assert failure.message and not failure.message.startswith("HTTP ")
    if retry_after is None:
        assert failure.retry_after is None
    else:
        assert failure.retry_after == pytest.approx(retry_after)


def test_verification_required_keeps_its_link_and_marks_the_account() -> None:
    body = orjson.dumps({"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "Verify your account to continue.",
                                   "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                                "reason": "VALIDATION_REQUIRED", "domain": "cloudcode-pa.googleapis.com",
                                                "metadata": {"validation_url": "https://accounts.google.com/signin/continue?x=1"}}]}})
    failure = classify(403, body)
    assert failure.kind is FailureKind.VERIFICATION_REQUIRED
    assert failure.verify_url == "https://accounts.google.com/signin/continue?x=1"
    assert state_for_failure(failure) is AccountState.VERIFICATION_REQUIRED


@pytest.mark.parametrize(("error", "kind", "status"), [
    ({"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}, FailureKind.RATE_LIMITED, 429),
    ({"code": 503, "message": "busy"}, FailureKind.SERVER_ERROR, 503),
    ({"code": "UNAVAILABLE", "message": "busy"}, FailureKind.SERVER_ERROR, 500),  # a code that is not a status
    ({"code": True}, FailureKind.SERVER_ERROR, 500),
    ("the backend went away", FailureKind.SERVER_ERROR, 500),  # not an object at all
    (None, FailureKind.SERVER_ERROR, 500),
])
def test_an_error_inside_an_answer_is_classified_whatever_its_shape(error, kind, status) -> None:
    failure = classify_in_answer(error)
    assert (failure.kind, failure.status) == (kind, status)
    if isinstance(error, str):
        assert failure.message == error


@pytest.mark.parametrize("document", [
    b'{"error": "the backend went away"}', b'{"error": {"code": "UNAVAILABLE"}}', b'[{"error": {"code": 429}}]',
    b'{"error": null}', b'{"error": []}',
])
def test_an_error_document_on_a_200_answer_is_a_client_error_never_a_crash(document: bytes) -> None:
    with pytest.raises(ProxyError) as raised:
        parse_document(document)
    assert raised.value.kind in (ErrorKind.UPSTREAM, ErrorKind.RATE_LIMITED, ErrorKind.UNAVAILABLE, ErrorKind.OVERLOADED)


def test_only_account_level_403s_change_the_account() -> None:
    banned = classify(403, orjson.dumps({"error": {"code": 403, "message": "This account has been disabled for violation of Terms of Service."}}))
    licence = classify(403, orjson.dumps({"error": {"code": 403, "message": "lack a licence", "details": [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SUBSCRIPTION_REQUIRED"}]}}))
    model_not_here = classify(403, orjson.dumps({"error": {"code": 403, "message": "model not available"}}))
    assert state_for_failure(banned) is AccountState.FORBIDDEN
    assert state_for_failure(licence) is AccountState.FORBIDDEN
    assert state_for_failure(model_not_here) is None
    assert state_for_failure(classify(429, b"{}")) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("25h20m26.179915352s", 91226.179915352), ("576.244211ms", 0.576244211), ("3.957525076s", 3.957525076),
     ("42s", 42.0), ("2h1m1s", 7261.0), ("", None), ("soon", None), ("5x", None)],
)
def test_go_durations(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_authorization_url_has_every_required_parameter() -> None:
    pkce = oauth.PKCE.new()
    url = oauth.authorization_url("https://accounts.example/auth", "cid", "http://localhost:51121/oauth-callback", "st", pkce)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["scope"].split() == list(oauth.SCOPES)
    assert query["access_type"] == "offline" and query["prompt"] == "consent"
    assert query["code_challenge_method"] == "S256" and query["code_challenge"] == pkce.challenge
    assert query["state"] == "st" and query["response_type"] == "code"
    assert len(pkce.verifier) >= 43  # RFC 7636 minimum


def test_token_replies() -> None:
    grant = oauth.parse_token_reply(200, b'{"access_token": "ya29.x", "expires_in": 3599, "refresh_token": "1//r"}')
    assert grant == oauth.TokenGrant("ya29.x", 3599.0, "1//r")
    revoked = (FIXTURES / "oauth.token.400.invalid_grant.json").read_bytes()
    with pytest.raises(oauth.OAuthError) as info:
        oauth.parse_token_reply(400, revoked)
    assert info.value.permanent and "invalid_grant" in str(info.value)
    with pytest.raises(oauth.OAuthError) as info:
        oauth.parse_token_reply(503, b"<html>busy</html>")
    assert not info.value.permanent
    with pytest.raises(oauth.OAuthError) as info:
        oauth.parse_token_reply(401, b'{"error": "unauthorized_client", "error_description": "Unauthorized"}')
    assert info.value.permanent


@pytest.mark.parametrize(
    ("pasted", "code", "state"),
    [
        ("http://localhost:51121/oauth-callback?state=abc&code=4/0AX&scope=x", "4/0AX", "abc"),
        ("  4/0AXbare-code \n", "4/0AXbare-code", None),
        ("?code=4%2F0AX&state=s", "4/0AX", "s"),
    ],
)
def test_pasted_callbacks(pasted: str, code: str, state: str | None) -> None:
    assert oauth.parse_callback(pasted) == oauth.Callback(code, state)


def test_a_pasted_error_is_refused() -> None:
    with pytest.raises(oauth.OAuthError, match="access_denied"):
        oauth.parse_callback("http://localhost/oauth-callback?error=access_denied&state=x")


def test_load_code_assist_shapes() -> None:
    as_string = discovery.parse_load_code_assist(orjson.dumps({
        "cloudaicompanionProject": "helpful-perigee-2nnd9",
        "currentTier": {"id": "free-tier"}, "paidTier": {"id": "g1-pro-tier"},
        "allowedTiers": [{"id": "free-tier", "isDefault": True}],
    }))
    assert as_string == discovery.CodeAssistStatus("helpful-perigee-2nnd9", "g1-pro-tier", "free-tier")
    as_object = discovery.parse_load_code_assist(orjson.dumps({"cloudaicompanionProject": {"id": "p-1", "name": "n"}}))
    assert as_object.project_id == "p-1" and as_object.onboard_tier == "free-tier"
    nothing = discovery.parse_load_code_assist(orjson.dumps({"allowedTiers": [{"id": "standard-tier"}]}))
    assert nothing.project_id is None and nothing.onboard_tier == "standard-tier"


def test_onboarding_operation_shapes() -> None:
    pending = discovery.parse_operation(b'{"name": "operations/1", "done": false}')
    assert pending == discovery.Operation("operations/1", False, None)
    done = discovery.parse_operation(b'{"name": "operations/1", "done": true, "response": {"cloudaicompanionProject": {"id": "p"}}}')
    assert done.done and done.project_id == "p"
