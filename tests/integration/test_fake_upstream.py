"""The fake Cloud Code upstream (tests/fakes), exercised with the standard library only."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import secrets
import socket
import ssl
import threading
import time
import urllib.parse
from typing import Any

import orjson
import pytest
import trustme

from tests.fakes import (
    ANTIGRAVITY_CLIENT_ID,
    ANTIGRAVITY_CLIENT_SECRET,
    IDE_CLIENT_ID,
    IDE_CLIENT_SECRET,
    SCOPE,
    FakeUpstream,
)
from tests.fakes import scripts as s
from tests.fakes.upstream import parse_client_version, version_too_old

pytestmark = pytest.mark.integration

UA = "antigravity/1.15.8 darwin/arm64"
REDIRECT = "http://localhost:51121/oauth-callback"
STREAM = "/v1internal:streamGenerateContent?alt=sse"
UNARY = "/v1internal:generateContent"


# --------------------------------------------------------------------------- helpers


class Reply:
    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = {k.lower(): v for k, v in response.getheaders()}
        self.body = response.read()

    def json(self) -> Any:
        return orjson.loads(self.body)

    def events(self, eol: bytes = b"\r\n") -> list[dict[str, Any]]:
        assert self.headers["content-type"] == "text/event-stream"
        pieces = self.body.split(eol + eol)
        assert pieces[-1] == b"", "stream must end with a blank line"
        out = []
        for piece in pieces[:-1]:
            assert piece.startswith(b"data: ") and eol not in piece, piece[:80]
            out.append(orjson.loads(piece[len(b"data: "):]))
        return out


class Client:
    """One keep-alive http.client connection to the fake."""

    def __init__(self, fake: FakeUpstream, context: ssl.SSLContext | None = None) -> None:
        if context is None:
            self.conn: http.client.HTTPConnection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
        else:
            self.conn = http.client.HTTPSConnection("127.0.0.1", fake.port, timeout=5, context=context)

    def call(self, method: str, path: str, body: Any = None, *, token: str | None = None,
             headers: dict[str, str] | None = None, ua: str | None = UA) -> Reply:
        hdrs: dict[str, str] = {}
        if ua:
            hdrs["User-Agent"] = ua
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        data = None
        if isinstance(body, dict):
            data = orjson.dumps(body)
            hdrs["Content-Type"] = "application/json"
        elif body is not None:
            data = body
        hdrs.update(headers or {})
        self.conn.request(method, path, body=data, headers=hdrs)
        return Reply(self.conn.getresponse())

    def form(self, path: str, fields: dict[str, str]) -> Reply:
        return self.call("POST", path, urllib.parse.urlencode(fields).encode(),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})

    def close(self) -> None:
        self.conn.close()


def envelope(model: str = "gemini-3-flash", text: str = "hi there", **changes: Any) -> dict[str, Any]:
    env: dict[str, Any] = {
        "project": "fake-project-1",
        "model": model,
        "userAgent": "antigravity",
        "requestType": "agent",
        "requestId": "agent-" + secrets.token_hex(8),
        "request": {"contents": [{"role": "user", "parts": [{"text": text}]}], "sessionId": "-123"},
    }
    env.update(changes)
    return env


def raw_request(fake: FakeUpstream, path: str, body: dict[str, Any], token: str) -> socket.socket:
    data = orjson.dumps(body)
    sock = socket.create_connection(("127.0.0.1", fake.port), timeout=5)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {UA}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode()
    sock.sendall(head + data)
    return sock


def read_until_closed(sock: socket.socket) -> tuple[bytes, bool]:
    """Everything until EOF; True if the connection was reset."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        return data, True
    return data, False


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        assert chunk, f"EOF before {marker!r}: {data!r}"
        data += chunk
    return data


@pytest.fixture
def fake():
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture
def client(fake):
    c = Client(fake)
    yield c
    c.close()


@pytest.fixture
def token(fake):
    return fake.mint_access_token()


def pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def authorize(client: Client, fake: FakeUpstream, **overrides: str) -> tuple[Reply, dict[str, str]]:
    params = {"client_id": ANTIGRAVITY_CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code",
              "scope": SCOPE, "access_type": "offline", "prompt": "consent", "state": "st-123"}
    params.update(overrides)
    params = {k: v for k, v in params.items() if v is not None}
    reply = client.call("GET", "/o/oauth2/v2/auth?" + urllib.parse.urlencode(params), ua=None)
    query = {}
    if reply.status == 302:
        location = urllib.parse.urlsplit(reply.headers["location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
        query = dict(urllib.parse.parse_qsl(location.query))
    return reply, query


def exchange(client: Client, code: str, **overrides: str | None) -> Reply:
    fields = {"client_id": ANTIGRAVITY_CLIENT_ID, "client_secret": ANTIGRAVITY_CLIENT_SECRET, "code": code,
              "grant_type": "authorization_code", "redirect_uri": REDIRECT}
    fields.update(overrides)  # type: ignore[arg-type]
    return client.form("/token", {k: v for k, v in fields.items() if v is not None})


def refresh(client: Client, refresh_token: str, client_id: str = ANTIGRAVITY_CLIENT_ID,
            secret: str = ANTIGRAVITY_CLIENT_SECRET) -> Reply:
    return client.form("/token", {"client_id": client_id, "client_secret": secret,
                                  "refresh_token": refresh_token, "grant_type": "refresh_token"})


# --------------------------------------------------------------------------- basics


def test_health_needs_no_auth_and_is_not_recorded(fake, client):
    reply = client.call("GET", "/health", ua=None)
    assert (reply.status, reply.body) == (200, b"ok")
    assert fake.requests == []


def test_unknown_path_is_a_google_404_and_a_violation(fake, client, token):
    reply = client.call("POST", "/v1internal:noSuchMethod", {}, token=token)
    assert reply.status == 404
    assert reply.json()["error"]["status"] == "NOT_FOUND"
    assert [v.split("]")[0] for v in fake.violations] == ["[check_known_path"]
    with pytest.raises(AssertionError, match="noSuchMethod"):
        fake.assert_no_violations()


def test_requests_are_recorded_with_wire_order_headers(fake, client, token):
    client.call("POST", UNARY, envelope(), token=token, headers={"X-First": "1", "x-second": "2"})
    (req,) = fake.requests
    names = req.headers.names()
    assert names.index("X-First") < names.index("x-second")
    assert req.headers["x-first"] == "1" and req.header("X-SECOND") == "2"
    assert "authorization" in req.headers
    assert req.json["model"] == "gemini-3-flash"
    assert req.account == "user@example.com" and req.status == 200 and req.outcome == "complete"
    assert req.method == "POST" and req.path == UNARY and req.query == {}


# --------------------------------------------------------------------------- OAuth


def test_oauth_code_flow_with_pkce_issues_working_tokens(fake, client):
    verifier, challenge = pkce()
    reply, query = authorize(client, fake, code_challenge=challenge, code_challenge_method="S256")
    assert reply.status == 302
    assert query["state"] == "st-123" and query["scope"] == SCOPE and query["code"].startswith("4/")

    tokens = exchange(client, query["code"], code_verifier=verifier)
    assert tokens.status == 200, tokens.body
    body = tokens.json()
    assert set(body) == {"access_token", "expires_in", "refresh_token", "token_type", "scope", "id_token"}
    assert body["access_token"].startswith("ya29.fake-") and body["refresh_token"].startswith("1//fake-")
    assert (body["expires_in"], body["token_type"], body["scope"]) == (3599, "Bearer", SCOPE)
    claims = orjson.loads(base64.urlsafe_b64decode(body["id_token"].split(".")[1] + "=="))
    assert claims["email"] == "user@example.com" and claims["aud"] == ANTIGRAVITY_CLIENT_ID
    assert body["refresh_token"] == fake.account("user@example.com").refresh_token

    for path in ("/oauth2/v1/userinfo", "/oauth2/v2/userinfo?alt=json"):
        info = client.call("GET", path, token=body["access_token"])
        assert info.status == 200
        assert set(info.json()) == {"id", "email", "verified_email", "name", "picture"}
        assert info.json()["email"] == "user@example.com" and info.json()["verified_email"] is True

    renewed = refresh(client, body["refresh_token"])
    assert renewed.status == 200
    assert set(renewed.json()) == {"access_token", "expires_in", "token_type", "scope"}
    assert renewed.json()["access_token"] != body["access_token"]
    assert fake.token_calls == 2
    assert fake.token_calls_by_grant == {"authorization_code": 1, "refresh_token": 1}
    fake.assert_no_violations()


def test_oauth_without_pkce_is_accepted_and_next_login_email_picks_the_account(fake, client):
    other = fake.add_account("second@example.com")
    fake.next_login_email = other.email
    _, query = authorize(client, fake)
    tokens = exchange(client, query["code"])
    assert tokens.status == 200
    assert tokens.json()["refresh_token"] == other.refresh_token
    info = client.call("GET", "/oauth2/v1/userinfo", token=tokens.json()["access_token"])
    assert info.json()["email"] == "second@example.com"
    fake.assert_no_violations()


def test_next_login_error_redirects_with_the_error(fake, client):
    fake.next_login_error = "access_denied"
    reply, query = authorize(client, fake)
    assert reply.status == 302
    assert query == {"error": "access_denied", "state": "st-123"}


def test_wrong_pkce_verifier_is_invalid_grant_and_a_violation(fake, client):
    verifier, challenge = pkce()
    _, query = authorize(client, fake, code_challenge=challenge, code_challenge_method="S256")
    wrong = exchange(client, query["code"], code_verifier=pkce()[0])
    assert wrong.status == 400
    assert wrong.json() == {"error": "invalid_grant", "error_description": "Invalid code verifier."}
    missing = exchange(client, query["code"])
    assert missing.json()["error_description"] == "Missing code verifier."
    assert [v.split("]")[0] for v in fake.violations] == ["[check_pkce", "[check_pkce"]
    assert exchange(client, query["code"], code_verifier=verifier).status == 200  # code not burnt


def test_code_reuse_and_redirect_mismatch_are_violations(fake, client):
    _, query = authorize(client, fake)
    assert exchange(client, query["code"], redirect_uri="http://localhost:9999/cb").json()["error"] == "redirect_uri_mismatch"
    assert exchange(client, query["code"]).status == 200
    reused = exchange(client, query["code"])
    assert (reused.status, reused.json()["error"]) == (400, "invalid_grant")
    assert exchange(client, "4/not-a-code").json()["error_description"] == "Malformed auth code."
    checks = [v.split("]")[0][1:] for v in fake.violations]
    assert checks == ["check_code_redirect_uri", "check_code_reuse"]  # an unknown code is user input


def test_missing_client_secret_is_the_real_400(fake, client):
    _, query = authorize(client, fake)
    reply = exchange(client, query["code"], client_secret=None)
    assert reply.status == 400
    assert reply.json() == {"error": "invalid_request", "error_description": "client_secret is missing."}
    assert fake.violations and "client_secret is missing" in fake.violations[0]


def test_revoked_refresh_token_gets_the_real_invalid_grant_body(fake, client):
    account = fake.account("user@example.com")
    assert refresh(client, account.refresh_token).status == 200
    fake.revoke(account.email)
    reply = refresh(client, account.refresh_token)
    assert reply.status == 400
    assert reply.body == s.fixture_bytes("oauth.token.400.invalid_grant.json")
    assert refresh(client, "1//fake-unknown").status == 400
    fake.assert_no_violations()  # a revoked token is upstream state, not a daemon bug


def test_refresh_with_the_other_client_is_unauthorized_client(fake, client):
    account = fake.account("user@example.com")
    reply = refresh(client, account.refresh_token, IDE_CLIENT_ID, IDE_CLIENT_SECRET)
    assert reply.status == 401
    assert reply.json() == {"error": "unauthorized_client", "error_description": "Unauthorized"}
    ide = fake.add_account("ide@example.com", client_id=IDE_CLIENT_ID)
    assert refresh(client, ide.refresh_token, IDE_CLIENT_ID, IDE_CLIENT_SECRET).status == 200
    fake.assert_no_violations()


@pytest.mark.parametrize(
    "overrides, error",
    [
        ({"scope": "https://www.googleapis.com/auth/cloud-platform"}, "invalid_scope"),
        ({"client_id": "123.apps.googleusercontent.com"}, "invalid_client"),
        ({"prompt": None}, "invalid_request"),
        ({"state": None}, "invalid_request"),
        ({"code_challenge": "x" * 43, "code_challenge_method": "plain"}, "invalid_request"),
    ],
)
def test_bad_authorization_requests_are_refused(fake, client, overrides, error):
    reply, _ = authorize(client, fake, **overrides)
    assert reply.status == 400
    assert f"Error 400: {error}".encode() in reply.body
    assert fake.violations[0].startswith("[check_auth_request]")


def test_token_delay_holds_the_answer(fake, client):
    fake.token_delay = 0.2
    started = time.monotonic()
    assert refresh(client, fake.account("user@example.com").refresh_token).status == 200
    assert time.monotonic() - started >= 0.2


# --------------------------------------------------------------------------- auth & headers on the API


def test_expired_access_token_gets_401_without_violation(fake, client, token):
    assert client.call("POST", UNARY, envelope(), token=token).status == 200
    fake.expire_access_tokens()
    reply = client.call("POST", STREAM, envelope(), token=token)
    assert reply.status == 401
    assert reply.json()["error"]["status"] == "UNAUTHENTICATED"
    assert reply.json()["error"]["message"].startswith("Request had invalid authentication credentials.")
    assert reply.headers["content-type"] == "text/event-stream"  # stream endpoint, not SSE-framed
    fake.assert_no_violations()


def test_missing_authorization_user_agent_or_content_type_are_violations(fake, client, token):
    assert client.call("POST", UNARY, envelope()).status == 401
    assert client.call("POST", UNARY, envelope(), token=token, ua=None).status == 400
    reply = client.call("POST", UNARY, orjson.dumps(envelope()), token=token, headers={"Content-Type": "text/plain"})
    assert reply.status == 400 and reply.json()["error"]["status"] == "INVALID_ARGUMENT"
    checks = [v.split("]")[0][1:] for v in fake.violations]
    assert checks == ["check_authorization", "check_user_agent_header", "check_content_type"]


def test_chunked_request_bodies_are_accepted(fake, client, token):
    def body():
        data = orjson.dumps(envelope())
        yield data[:10]
        yield data[10:]

    client.conn.request("POST", STREAM, body=body(), encode_chunked=True,
                        headers={"User-Agent": UA, "Authorization": f"Bearer {token}",
                                 "Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    reply = Reply(client.conn.getresponse())
    assert reply.status == 200
    assert fake.requests[0].json["model"] == "gemini-3-flash"
    assert fake.requests[0].header("Transfer-Encoding") == "chunked"


# --------------------------------------------------------------------------- project discovery & models


def test_load_code_assist_returns_the_project(fake, client, token):
    reply = client.call("POST", "/v1internal:loadCodeAssist", {"metadata": {"ideType": "ANTIGRAVITY"}}, token=token)
    assert reply.status == 200
    body = reply.json()
    assert body["cloudaicompanionProject"] == "fake-project-1"
    assert body["currentTier"]["id"] == "standard-tier"
    assert [t["id"] for t in body["allowedTiers"]] == ["standard-tier"] and body["allowedTiers"][0]["isDefault"]
    assert reply.headers["x-cloudaicompanion-trace-id"]


def test_load_code_assist_rejects_bad_metadata(fake, client, token):
    reply = client.call("POST", "/v1internal:loadCodeAssist", {"metadata": {"platform": "LINUX"}}, token=token)
    assert reply.status == 400
    assert fake.violations[0].startswith("[check_load_code_assist]")


def test_onboarding_is_a_long_running_operation(fake, client):
    account = fake.add_account("new@example.com", project=None, onboard_polls=2)
    token = fake.mint_access_token(account.email)
    load = client.call("POST", "/v1internal:loadCodeAssist", {"metadata": {"ideType": "ANTIGRAVITY"}}, token=token)
    assert "cloudaicompanionProject" not in load.json() and "currentTier" not in load.json()
    tier = next(t["id"] for t in load.json()["allowedTiers"] if t.get("isDefault"))

    assert client.call("POST", "/v1internal:onboardUser", {"tierId": "g1-pro-tier", "metadata": {}},
                       token=token).status == 400
    first = client.call("POST", "/v1internal:onboardUser", {"tierId": tier, "metadata": {"ideType": "ANTIGRAVITY"}},
                        token=token).json()
    assert first["done"] is False and first["name"].startswith("operations/")
    poll = client.call("GET", f"/v1internal/{first['name']}", token=token).json()
    assert poll == {"name": first["name"], "done": False}
    done = client.call("GET", f"/v1internal/{first['name']}", token=token).json()
    assert done["done"] is True
    assert done["response"]["cloudaicompanionProject"]["id"] == "proj-new"
    again = client.call("POST", "/v1internal:loadCodeAssist", {}, token=token).json()
    assert again["cloudaicompanionProject"] == "proj-new" and again["currentTier"]["id"] == tier
    assert [v.split("]")[0] for v in fake.violations] == ["[check_onboard_user"]


def test_fetch_available_models_replays_the_fixture_and_overrides_quota(fake, client, token):
    other = fake.add_account("other@example.com")
    fake.set_quota("user@example.com", "claude-sonnet-4-6", 0.25, "2030-01-01T00:00:00Z")
    fake.set_quota("user@example.com", "gemini-2.5-pro", None)
    real = s.fixture_json("fetchAvailableModels.response.excerpt.real.json")["response"]

    body = client.call("POST", "/v1internal:fetchAvailableModels", {"project": "fake-project-1"}, token=token).json()
    assert "_source" not in body and "request" not in body and body["defaultAgentModelId"] == real["defaultAgentModelId"]
    for model_id in ("gemini-2.5-flash-lite", "tab_jump_flash_lite_preview", "chat_23310"):
        assert body["models"][model_id] == real["models"][model_id]
    for model_id in ("claude-sonnet-4-6", "claude-opus-4-6-thinking", "gemini-3-flash", "gemini-3.1-pro-low",
                     "gemini-pro-agent"):
        row = body["models"][model_id]
        assert {"displayName", "model", "apiProvider", "modelProvider", "quotaInfo"} <= set(row)
    assert body["models"]["claude-sonnet-4-6"]["quotaInfo"] == {"remainingFraction": 0.25,
                                                                "resetTime": "2030-01-01T00:00:00Z"}
    assert body["models"]["gemini-2.5-pro"]["quotaInfo"] == {"resetTime": "2026-08-14T17:50:02Z"}

    other_token = fake.mint_access_token(other.email)
    theirs = client.call("POST", "/v1internal:fetchAvailableModels", {}, token=other_token).json()
    assert theirs["models"]["claude-sonnet-4-6"]["quotaInfo"]["remainingFraction"] == 1
    fake.assert_no_violations()


def test_fetch_available_models_is_gzipped_when_accepted(fake, client, token):
    reply = client.call("POST", "/v1internal:fetchAvailableModels", {}, token=token,
                        headers={"Accept-Encoding": "gzip"})
    assert reply.headers["content-encoding"] == "gzip"
    assert "gemini-pro-agent" in orjson.loads(gzip.decompress(reply.body))["models"]


def test_foreign_project_is_refused_in_strict_mode(fake, client, token):
    reply = client.call("POST", UNARY, envelope(project="someone-elses"), token=token)
    assert reply.status == 403
    assert fake.violations[0].startswith("[check_project_owner]")


def test_count_tokens_is_a_deterministic_estimate(fake, client, token):
    body = {"request": {"model": "models/gemini-3-flash",
                        "contents": [{"role": "user", "parts": [{"text": "x" * 40}]}]}}
    first = client.call("POST", "/v1internal:countTokens", body, token=token).json()
    assert first == {"totalTokens": 10}
    assert client.call("POST", "/v1internal:countTokens", body, token=token).json() == first


# --------------------------------------------------------------------------- generation


def test_default_reply_stream_and_unary(fake, client, token):
    stream = client.call("POST", STREAM, envelope(), token=token)
    assert stream.status == 200
    assert stream.headers["transfer-encoding"] == "chunked"
    trace = stream.headers["x-cloudaicompanion-trace-id"]
    events = stream.events()
    assert b"[DONE]" not in stream.body
    assert all(e["traceId"] == trace and e["metadata"] == {} for e in events)
    final = events[-1]["response"]
    assert final["candidates"][0]["finishReason"] == "STOP"
    assert "".join(p["text"] for e in events for p in e["response"]["candidates"][0]["content"]["parts"]) == \
        "Hello from the fake upstream."
    assert final["usageMetadata"]["candidatesTokenCount"] > 0

    unary = client.call("POST", UNARY, envelope(), token=token)
    assert unary.headers["content-type"] == "application/json; charset=UTF-8"
    body = unary.json()
    assert set(body) == {"response", "traceId", "metadata"}
    candidate = body["response"]["candidates"][0]
    assert candidate["content"]["parts"] == [{"text": "Hello from the fake upstream."}]
    assert candidate["finishReason"] == "STOP"
    fake.assert_no_violations()


def test_scripted_stream_uses_every_step_builder(fake, client, token):
    fake.script(s.stream_reply(
        s.thinking("**Plan**\n\n", "think more", signature="sig-thought"),
        s.text("Hel", "lo"),
        s.function_call("read_file", {"path": "a.txt"}, id="call-1", signature="sig-call"),
        s.chunk(s.function_call("ls", {}), {"functionCall": {"name": "pwd", "args": {}}}),
        s.usage(prompt=100, candidates=40, thoughts=20, cached=60),
        s.finish("MAX_TOKENS"),
    ))
    events = client.call("POST", STREAM, envelope(), token=token).events()
    parts = [e["response"]["candidates"][0]["content"]["parts"] for e in events]
    assert parts[0] == [{"text": "**Plan**\n\n", "thought": True}]
    assert parts[1] == [{"text": "think more", "thought": True, "thoughtSignature": "sig-thought"}]
    assert parts[2:4] == [[{"text": "Hel"}], [{"text": "lo"}]]
    assert parts[4] == [{"functionCall": {"name": "read_file", "args": {"path": "a.txt"}, "id": "call-1"},
                         "thoughtSignature": "sig-call"}]
    assert [p["functionCall"]["name"] for p in parts[5]] == ["ls", "pwd"]
    assert [e["response"]["candidates"][0].get("finishReason") for e in events] == [None] * 5 + ["MAX_TOKENS"]
    usages = [e["response"]["usageMetadata"] for e in events]
    assert all(u["promptTokenCount"] == 100 and u["cachedContentTokenCount"] == 60 for u in usages)
    outs = [u.get("candidatesTokenCount", 0) for u in usages]
    assert outs == sorted(outs) and outs[-1] == 40  # cumulative, never deltas
    assert usages[-1]["thoughtsTokenCount"] == 20 and usages[-1]["totalTokenCount"] == 160


def test_usage_is_cumulative_on_every_event(fake, client, token):
    fake.script(s.stream_reply(s.text("a" * 40, "b" * 4, "c" * 4), s.usage(prompt=7, candidates=12)))
    events = client.call("POST", STREAM, envelope(), token=token).events()
    counts = [e["response"]["usageMetadata"].get("candidatesTokenCount") for e in events]
    assert counts == [10, 11, 12]  # running totals (40, 44, 48 characters), never per-event deltas
    assert [e["response"]["usageMetadata"]["promptTokenCount"] for e in events] == [7, 7, 7]


def test_unary_aggregates_the_same_script(fake, client, token):
    reply = s.stream_reply(s.thinking("a", "b", signature="sig"), s.text("x", "y", "z"),
                           s.function_call("f", {"k": 1}, signature="fsig"), s.finish("STOP", signature="tail"))
    fake.script(reply)
    body = client.call("POST", UNARY, envelope(), token=token).json()["response"]
    assert body["candidates"][0]["content"]["parts"] == [
        {"text": "ab", "thought": True, "thoughtSignature": "sig"},
        {"text": "xyz"},
        {"functionCall": {"name": "f", "args": {"k": 1}}, "thoughtSignature": "fsig"},
        {"text": "", "thoughtSignature": "tail"},
    ]
    assert body["candidates"][0]["finishReason"] == "STOP"


def test_signature_only_thinking_part_and_finish_event(fake, client, token):
    fake.script(s.stream_reply(s.thinking("t", signature="S", separate_signature=True), s.text("ok"),
                               s.finish(separate=True)))
    events = client.call("POST", STREAM, envelope(), token=token).events()
    parts = [e["response"]["candidates"][0]["content"]["parts"] for e in events]
    assert parts == [[{"text": "t", "thought": True}], [{"text": "", "thought": True, "thoughtSignature": "S"}],
                     [{"text": "ok"}], [{"text": ""}]]


def test_image_helper_replays_the_real_part(fake, client, token):
    fake.script(s.stream_reply(s.image(), s.usage(prompt=5, candidates=1213, thoughts=158)))
    body = client.call("POST", UNARY, envelope(model="gemini-3-pro-image"), token=token).json()["response"]
    real = s.fixture_json("generateContent.image.gemini-3-pro-image.real.json")["response"]
    assert body["candidates"][0]["content"]["parts"] == real["candidates"][0]["content"]["parts"]
    assert body["usageMetadata"]["totalTokenCount"] == real["usageMetadata"]["totalTokenCount"]


# Every recording in tests/fixtures/upstream: inner-stream.<name>.recorded.json
RECORDED = [n.removeprefix("inner-stream.").removesuffix(".recorded.json")
            for n in s.fixture_names("inner-stream.", ".recorded.json")]


@pytest.mark.parametrize("name", RECORDED)
def test_recorded_streams_replay_one_crlf_event_per_element(fake, client, token, name):
    fake.script(s.recorded(name))
    reply = client.call("POST", STREAM, envelope(), token=token)
    elements = s.fixture_json(f"inner-stream.{name}.recorded.json")["response"]
    assert reply.body.count(b"\r\n\r\n") == len(elements)
    assert [e["response"] for e in reply.events()] == elements


def test_recorded_stream_on_the_wire_is_chunked_crlf_sse(fake, token):
    fake.script(s.recorded("text-only.before-model"))
    sock = raw_request(fake, STREAM, envelope(), token)
    wire = read_until(sock, b"\r\n0\r\n\r\n")
    sock.close()
    head, _, chunked = wire.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head and b"Content-Length" not in head
    size_line, _, rest = chunked.partition(b"\r\n")
    first_event = rest[: int(size_line, 16)]
    assert first_event.startswith(b"data: {") and first_event.endswith(b"}\r\n\r\n")


def test_split_events_spreads_one_event_over_two_chunks(fake, token):
    fake.split_events = True
    sock = raw_request(fake, STREAM, envelope(), token)
    wire = read_until(sock, b"\r\n0\r\n\r\n")
    sock.close()
    chunked = wire.partition(b"\r\n\r\n")[2]
    size_line, _, rest = chunked.partition(b"\r\n")
    first_chunk = rest[: int(size_line, 16)]
    assert first_chunk.startswith(b"data: {") and not first_chunk.endswith(b"\r\n\r\n")


def test_lf_framing_option(token):
    with FakeUpstream(sse_eol="\n") as lf_fake:
        c = Client(lf_fake)
        reply = c.call("POST", STREAM, envelope(), token=lf_fake.mint_access_token())
        c.close()
    assert b"\r" not in reply.body
    assert reply.events(eol=b"\n")[-1]["response"]["candidates"][0]["finishReason"] == "STOP"


def test_scripts_match_by_model_and_account(fake, client, token):
    second = fake.add_account("b@example.com", project="fake-project-1")
    fake.script(s.stream_reply(s.text("for claude")), model="claude-sonnet-4-6")
    fake.script(s.stream_reply(s.text("for b")), account=second)
    fake.script([s.text("anyone")])

    def first_text(tok: str, model: str) -> str:
        body = client.call("POST", UNARY, envelope(model=model), token=tok).json()
        return body["response"]["candidates"][0]["content"]["parts"][0]["text"]

    assert first_text(token, "gemini-3-flash") == "anyone"
    assert first_text(fake.mint_access_token(second.email), "gemini-3-flash") == "for b"
    assert first_text(token, "claude-sonnet-4-6") == "for claude"
    assert fake.pending_scripts == 0
    assert first_text(token, "gemini-3-flash") == s.DEFAULT_TEXT


# --------------------------------------------------------------------------- errors


ERROR_FIXTURES = s.fixture_names("error.", ".json")  # every error.<status>.<...>.json fixture


@pytest.mark.parametrize("name", ERROR_FIXTURES)
def test_error_fixtures_are_sent_verbatim(fake, client, token, name):
    fake.script(s.error(name))
    fake.script(s.error(name))
    stream = client.call("POST", STREAM, envelope(), token=token)
    raw = s.fixture_bytes(name)
    assert stream.status == int(name.split(".")[1])
    assert stream.body == raw
    assert stream.headers["content-type"] == "text/event-stream"
    assert stream.headers["content-length"] == str(len(raw))
    assert "transfer-encoding" not in stream.headers
    unary = client.call("POST", UNARY, envelope(), token=token)
    assert (unary.status, unary.body) == (stream.status, raw)
    assert unary.headers["content-type"] == "application/json; charset=UTF-8"
    fake.assert_no_violations()


def test_error_names_resolve_by_unique_substring():
    assert s.error("bare-no-details").status == 429
    assert s.error("503.MODEL_CAPACITY").status == 503
    with pytest.raises(KeyError, match="ambiguous"):
        s.error("MODEL_CAPACITY_EXHAUSTED")


def test_error_builders_have_the_documented_shapes():
    limited = s.rate_limited(1.5).json()["error"]
    info = limited["details"][0]
    assert (limited["code"], limited["status"], info["reason"]) == (429, "RESOURCE_EXHAUSTED", "RATE_LIMIT_EXCEEDED")
    assert info["metadata"]["quotaResetDelay"] == "1.5s" and limited["details"][1]["retryDelay"] == "1.5s"
    assert s.rate_limited(0.5).json()["error"]["details"][0]["metadata"]["quotaResetDelay"] == "500.000000ms"

    quota = s.quota_exhausted(3725.5, model="gemini-3-flash").json()["error"]
    real = s.fixture_json("error.429.QUOTA_EXHAUSTED.claude-opus-4-6-thinking.json")["error"]
    assert [d["@type"] for d in quota["details"]] == [d["@type"] for d in real["details"]]
    assert set(quota["details"][0]["metadata"]) == set(real["details"][0]["metadata"])
    assert quota["details"][0]["metadata"]["quotaResetDelay"] == "1h2m5.5s"
    assert quota["details"][0]["metadata"]["model"] == "gemini-3-flash"
    assert quota["details"][1]["retryDelay"] == "3725.5s"
    assert quota["message"].endswith("reset after 1h2m5s.")

    assert s.unauthenticated().status == 401
    verify = s.validation_required("https://accounts.google.com/signin/continue?x=1").json()["error"]
    assert verify["status"] == "PERMISSION_DENIED"
    assert verify["details"][0]["reason"] == "VALIDATION_REQUIRED"
    assert verify["details"][0]["metadata"]["validation_url"] == "https://accounts.google.com/signin/continue?x=1"
    assert verify["details"][1]["links"][0]["url"] == "https://accounts.google.com/signin/continue?x=1"
    banned = s.tos_disabled().json()["error"]
    assert banned["code"] == 403 and "violation of Terms of Service" in banned["message"]
    assert s.error_status(418, "teapot").body == b"teapot"


def test_scripted_401_and_403_reach_the_client(fake, client, token):
    fake.script(s.unauthenticated())
    fake.script(s.validation_required())
    assert client.call("POST", STREAM, envelope(), token=token).status == 401
    forbidden = client.call("POST", STREAM, envelope(), token=token)
    assert forbidden.status == 403 and forbidden.json()["error"]["details"][0]["reason"] == "VALIDATION_REQUIRED"


# --------------------------------------------------------------------------- stream faults


def test_cut_mid_event_resets_without_the_last_chunk(fake, token):
    fake.script(s.stream_reply(s.text("first"), s.cut_mid_event(), s.text("never completed")))
    sock = raw_request(fake, STREAM, envelope(), token)
    wire, reset = read_until_closed(sock)
    sock.close()
    assert reset, "the connection must be aborted (RST), not closed cleanly"
    assert b'"text":"first"' in wire
    tail = wire.rsplit(b"data: ", 1)[1]
    assert b"never completed" in tail and not tail.rstrip().endswith(b"}")  # half the next line, no JSON end
    assert not wire.endswith(b"0\r\n\r\n")
    assert fake.requests[0].outcome == "cut"


@pytest.mark.parametrize("path", [STREAM, UNARY])
def test_cut_mid_event_breaks_an_http_client_read(fake, client, token, path):
    fake.script(s.stream_reply(s.text("a"), s.cut_mid_event(), s.text("b")))
    client.conn.request("POST", path, body=orjson.dumps(envelope()),
                        headers={"User-Agent": UA, "Authorization": f"Bearer {token}",
                                 "Content-Type": "application/json"})
    response = client.conn.getresponse()
    assert response.status == 200
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        response.read()


def test_end_without_finish_ends_cleanly_without_finish_reason(fake, client, token):
    fake.script(s.stream_reply(s.text("partial", "more"), s.end_without_finish()))
    reply = client.call("POST", STREAM, envelope(), token=token)
    events = reply.events()
    assert len(events) == 2
    assert all("finishReason" not in e["response"]["candidates"][0] for e in events)


def test_pause_puts_silence_between_events(fake, token):
    fake.script(s.stream_reply(s.text("a"), s.pause(0.3), s.text("b")))
    sock = raw_request(fake, STREAM, envelope(), token)
    read_until(sock, b'"text":"a"')
    started = time.monotonic()
    read_until(sock, b"\r\n0\r\n\r\n")
    sock.close()
    assert time.monotonic() - started >= 0.25


def test_gate_blocks_until_released(fake, token):
    release, reached = threading.Event(), threading.Event()
    fake.script(s.stream_reply(s.text("before"), s.gate(release, reached=reached), s.text("after")))
    sock = raw_request(fake, STREAM, envelope(), token)
    assert reached.wait(2)
    early = read_until(sock, b'"text":"before"')
    sock.settimeout(0.2)
    with pytest.raises(TimeoutError):
        sock.recv(65536)
    release.set()
    sock.settimeout(2)
    rest = read_until(sock, b"\r\n0\r\n\r\n")
    sock.close()
    assert b'"text":"after"' in rest and b"after" not in early


def test_a_client_leaving_during_a_pause_is_noticed(fake, token):
    fake.script(s.stream_reply(s.flush_headers(), s.pause(5), s.text("late")))
    sock = raw_request(fake, STREAM, envelope(), token)
    read_until(sock, b"\r\n\r\n")
    sock.close()
    deadline = time.monotonic() + 2
    while fake.open_connections and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.open_connections == 0
    assert fake.requests[0].outcome == "client_closed"


def test_version_gate_answers_with_the_unsupported_text(fake, client, token):
    fake.min_client_version = "1.16.0"
    fake.script(s.stream_reply(s.text("scripted")))
    old = client.call("POST", STREAM, envelope(), token=token).events()
    texts = [p["text"] for e in old for p in e["response"]["candidates"][0]["content"]["parts"]]
    assert "".join(texts) == s.VERSION_UNSUPPORTED_TEXT
    assert old[-1]["response"]["candidates"][0]["finishReason"] == "STOP"
    assert old[-1]["response"]["usageMetadata"].get("candidatesTokenCount", 0) == 0
    assert fake.pending_scripts == 1  # the scripted reply waits for a supported client
    new = client.call("POST", UNARY, envelope(), token=token, ua="antigravity/ide/2.1.1 darwin/arm64").json()
    assert new["response"]["candidates"][0]["content"]["parts"][0]["text"] == "scripted"
    fake.assert_no_violations()


def test_client_version_parsing():
    assert parse_client_version("antigravity/1.15.8 darwin/arm64") == (1, 15, 8)
    assert parse_client_version("antigravity/ide/2.1.1 darwin/arm64") == (2, 1, 1)
    assert parse_client_version("antigravity/ide/2.5.5 (aidev_client; os_type=darwin; arch=arm64)") == (2, 5, 5)
    assert parse_client_version("google-api-nodejs-client/9.15.1") is None
    assert version_too_old("antigravity/1.11.5 linux/x64", "1.15.8")
    assert not version_too_old("antigravity/1.15.8 linux/x64", "1.15.8")
    assert not version_too_old("anything", None)


# --------------------------------------------------------------------------- connections & TLS


def test_keep_alive_serves_many_requests_on_one_connection(fake, client, token):
    client.call("POST", "/v1internal:loadCodeAssist", {}, token=token)
    client.call("POST", "/v1internal:fetchAvailableModels", {}, token=token)
    client.call("POST", STREAM, envelope(), token=token)
    client.call("POST", UNARY, envelope(), token=token)
    client.call("GET", "/oauth2/v1/userinfo", token=token)
    assert fake.connections == 1
    assert {r.connection_id for r in fake.requests} == {1}
    assert fake.tls_handshakes == 0 and not fake.requests[0].tls


def test_tls_keep_alive_costs_one_handshake_for_twenty_requests():
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    with FakeUpstream(server_context) as fake:
        assert fake.base_url.startswith("https://127.0.0.1:")
        c = Client(fake, client_context)
        token = fake.mint_access_token()
        for i in range(20):
            path = STREAM if i % 2 else UNARY
            assert c.call("POST", path, envelope(), token=token).status == 200
        c.close()
        assert (fake.connections, fake.tls_handshakes) == (1, 1)
        assert all(r.tls for r in fake.requests) and len(fake.requests) == 20
        fake.assert_no_violations()


def test_idle_timeout_closes_keep_alive_connections(fake, token):
    fake.idle_timeout = 0.1
    sock = raw_request(fake, UNARY, envelope(), token)
    data, _ = read_until_closed(sock)
    sock.close()
    assert data.startswith(b"HTTP/1.1 200")
    assert fake.idle_closes == 1


def test_stop_is_prompt_with_idle_and_gated_connections():
    fake = FakeUpstream().start()
    token = fake.mint_access_token()
    idle = Client(fake)
    assert idle.call("GET", "/oauth2/v1/userinfo", token=token).status == 200
    never = threading.Event()
    reached = threading.Event()
    fake.script(s.stream_reply(s.text("x"), s.gate(never, reached=reached)))
    gated = raw_request(fake, STREAM, envelope(), token)
    assert reached.wait(2)
    threads_before = threading.active_count()
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 1.5
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", fake.port), timeout=1)
    assert threading.active_count() <= threads_before - 3  # accept thread + two connection threads
    assert fake.open_connections == 0
    data, _ = read_until_closed(gated)
    assert not data.endswith(b"0\r\n\r\n")
    gated.close()
    idle.close()


# --------------------------------------------------------------------------- envelope validation


def _with_request(**changes: Any) -> dict[str, Any]:
    env = envelope()
    env["request"].update(changes)
    return env


MALFORMED = [
    ("messages at the root", {**envelope(), "messages": []}, "check_top_level_keys", 'Unknown name "messages"'),
    ("max_tokens at the root", {**envelope(), "max_tokens": 10}, "check_top_level_keys", 'Unknown name "max_tokens"'),
    ("anthropic_version", {**envelope(), "anthropic_version": "x"}, "check_top_level_keys", "anthropic_version"),
    ("system_instruction at the root", {**envelope(), "system_instruction": {}}, "check_top_level_keys",
     "system_instruction"),
    ("system in request", _with_request(system="be nice"), "check_request_object", 'Unknown name "system"'),
    ("no model", {k: v for k, v in envelope().items() if k != "model"}, "check_model", "model"),
    ("wrong userAgent", envelope(userAgent="antigravity/1.15.8"), "check_user_agent_field", "userAgent"),
    ("empty requestId", envelope(requestId=""), "check_request_id", "requestId"),
    ("empty contents", _with_request(contents=[]), "check_contents", "contents"),
    ("assistant role", _with_request(contents=[{"role": "assistant", "parts": [{"text": "x"}]}]), "check_contents",
     "valid role"),
    ("no parts", _with_request(contents=[{"role": "user", "parts": []}]), "check_contents", "parts"),
    ("two data fields", _with_request(contents=[{"role": "user", "parts": [{"text": "x", "inlineData": {}}]}]),
     "check_contents", "Oneof"),
    ("unknown part field", _with_request(contents=[{"role": "user", "parts": [{"text": "x", "type": "text"}]}]),
     "check_contents", 'Unknown name "type"'),
    ("signature inside functionCall", _with_request(contents=[
        {"role": "user", "parts": [{"text": "x"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}, "thoughtSignature": "s"}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"output": "o"}}}]},
    ]), "check_contents", "function_call"),
    ("string systemInstruction", _with_request(systemInstruction="be nice"), "check_system_instruction",
     "system_instruction"),
    ("cache_control", _with_request(contents=[
        {"role": "user", "parts": [{"text": "x", "cache_control": {"type": "ephemeral"}}]}]), "check_contents",
     "cache_control"),
    ("cache_control in a tool", _with_request(tools=[{"functionDeclarations": [
        {"name": "f", "parameters": {"type": "object"}, "cache_control": {"type": "ephemeral"}}]}]),
     "check_cache_control", "Extra inputs are not permitted"),
]


@pytest.mark.parametrize("label, body, check, text", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_envelopes_are_400_and_violations(fake, client, token, label, body, check, text):
    reply = client.call("POST", STREAM, body, token=token)
    assert reply.status == 400
    error = reply.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert text in error["message"]
    assert reply.headers["content-type"] == "text/event-stream"
    (violation,) = fake.violations
    assert violation.startswith(f"[{check}] POST /v1internal:streamGenerateContent:")
    with pytest.raises(AssertionError, match=check):
        fake.assert_no_violations()
    fake.assert_no_violations(ignore=[check])


def test_well_formed_tool_turns_are_accepted(fake, client, token):
    env = _with_request(
        systemInstruction={"role": "user", "parts": [{"text": "You are Antigravity."}]},
        contents=[
            {"role": "user", "parts": [{"text": "list files"}, {"inlineData": {"mimeType": "image/png", "data": "AA=="}}]},
            {"role": "model", "parts": [{"text": "hm", "thought": True, "thoughtSignature": "s1"},
                                        {"functionCall": {"name": "ls", "args": {"cache_control": 1}, "id": "c1"},
                                         "thoughtSignature": "s2"}]},
            {"role": "model", "parts": [{"functionResponse": {"name": "ls", "id": "c1", "response": {"output": "a"}}}]},
            {"role": "user", "parts": [{"text": "thanks"}]},
        ],
        tools=[{"functionDeclarations": [{"name": "ls", "parameters": {
            "type": "OBJECT", "properties": {"cache_control": {"type": "STRING"}}}}]}],
        toolConfig={"functionCallingConfig": {"mode": "VALIDATED"}},
        generationConfig={"maxOutputTokens": 64000, "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1024}},
    )
    assert client.call("POST", STREAM, env, token=token).status == 200
    assert client.call("POST", UNARY, {**env, "model": "claude-sonnet-4-6"}, token=token).status == 200
    fake.assert_no_violations()


def test_empty_project_gets_the_real_500_and_a_violation(fake, client, token):
    reply = client.call("POST", STREAM, envelope(project=""), token=token)
    assert reply.status == 500
    assert reply.body == s.fixture_bytes("error.500.INTERNAL.empty-project.json")
    assert fake.violations[0].startswith("[check_project_not_empty]")


def test_claude_prefill_gets_the_real_fixture_body(fake, client, token):
    env = _with_request(contents=[{"role": "user", "parts": [{"text": "hi"}]},
                                  {"role": "model", "parts": [{"text": "Sure, "}]}])
    assert client.call("POST", UNARY, env, token=token).status == 200  # Gemini accepts a trailing model turn
    reply = client.call("POST", STREAM, {**env, "model": "claude-opus-4-6-thinking"}, token=token)
    assert reply.status == 400
    assert reply.body == s.fixture_bytes("error.400.INVALID_ARGUMENT.claude-prefill-not-supported.json")
    assert [v.split("]")[0] for v in fake.violations] == ["[check_claude_prefill"]


def test_claude_thinking_budget_must_stay_below_max_output(fake, client, token):
    env = _with_request(generationConfig={"maxOutputTokens": 8000,
                                          "thinkingConfig": {"include_thoughts": True, "thinking_budget": 8000}})
    assert client.call("POST", STREAM, env, token=token).status == 200  # not a Claude model
    reply = client.call("POST", STREAM, {**env, "model": "claude-sonnet-4-6"}, token=token)
    assert reply.status == 400
    inner = orjson.loads(reply.json()["error"]["message"])
    assert inner["error"]["type"] == "invalid_request_error" and "budget_tokens" in inner["error"]["message"]
    assert fake.violations[0].startswith("[check_claude_thinking_budget]")


def test_stream_endpoint_requires_alt_sse(fake, client, token):
    reply = client.call("POST", "/v1internal:streamGenerateContent", envelope(), token=token)
    assert reply.status == 400
    assert fake.violations[0].startswith("[check_alt_sse]")


IDENTITY_LINES = [
    ("claude-opus-4-6-thinking", "x-anthropic-billing-header: cc_version=2.1.330.a1b; cc_entrypoint=sdk-cli;"),
    ("gemini-3-flash", "You are Codex, an agent based on GPT-5. You and the user share the same workspace."),
]


@pytest.mark.parametrize("model, line", IDENTITY_LINES)
def test_a_client_identity_line_in_the_system_text_gets_the_bare_429(fake, client, token, model, line):
    system = {"role": "user", "parts": [{"text": "Be brief."}, {"text": line}]}
    fake.script(s.stream_reply(s.text("scripted")))
    for path in (STREAM, UNARY):
        reply = client.call("POST", path, {**_with_request(systemInstruction=system), "model": model}, token=token)
        assert reply.status == 429
        assert reply.body == s.fixture_bytes("error.429.RESOURCE_EXHAUSTED.bare-no-details.json")
    assert fake.pending_scripts == 1  # the scripted reply still waits
    seqs = [r.seq for r in fake.generation_requests]
    marker = line.split(" cc_version")[0] if "billing" in line else "You are Codex, an agent based on GPT-5."
    assert fake.identity_rejections == [(seqs[0], marker), (seqs[1], marker)]
    assert [v.split("]")[0] for v in fake.violations] == ["[check_client_identity"] * 2
    # the same words outside the system text, or a near miss in it, are fine
    near = {"role": "user", "parts": [{"text": "You are Codex, an agent based on GPT-5 (the model)."}]}
    moved = _with_request(contents=[{"role": "user", "parts": [{"text": line}]}], systemInstruction=near)
    assert client.call("POST", UNARY, {**moved, "model": model}, token=token).json()["response"]["candidates"][0][
        "content"]["parts"][0]["text"] == "scripted"
    assert len(fake.identity_rejections) == 2


def test_the_identity_rule_can_be_switched_off(fake, client, token):
    fake.reject_client_identity = False
    system = {"role": "user", "parts": [{"text": "x-anthropic-billing-header: cc_version=1; cc_entrypoint=cli;"}]}
    reply = client.call("POST", UNARY, _with_request(systemInstruction=system), token=token)
    assert reply.status == 200
    assert fake.identity_rejections == []
    fake.assert_no_violations()
    fake.reject_client_identity = True
    assert client.call("POST", UNARY, _with_request(systemInstruction=system), token=token).status == 429
    fake.reset()
    assert fake.identity_rejections == []
