"""GET /quota on a running daemon whose pool read the fake account's quota, its admin
gate, and `antigravity-proxy quota` (the real CLI, as a subprocess) asking that daemon."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import sys
import time
from pathlib import Path

import orjson
import pytest

from daemon.config import Settings
from daemon.redact import Secret
from tests.conftest import free_port
from tests.fakes import FakeUpstream
from tests.support import Reply, one_request, running_daemon

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EMAIL = "user@example.com"  # the fake's default account, stored as acc001
PASSWORD = "correct horse"


def basic(user: str, password: str) -> tuple[str, str]:
    return ("authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())


async def get(listener, path: str, headers: list[tuple[str, str]] | None = None) -> Reply:  # type: ignore[no-untyped-def]
    return await one_request(listener, "GET", path, headers=headers)


@pytest.fixture
def settings(upstream_settings: Settings, fake: FakeUpstream) -> Settings:
    fake.set_quota(EMAIL, "claude-sonnet-4-6", None, 3600)  # exhausted: no fraction, resets in an hour
    fake.set_quota(EMAIL, "claude-opus-4-6-thinking", 0.25, 7200)
    fake.set_quota(EMAIL, "gemini-3-flash", 0.4, 1800)
    return upstream_settings


async def read_quota(app) -> None:  # type: ignore[no-untyped-def]
    await app.pool.read_quota("acc001")


async def test_quota_as_json(settings, fake):
    async with running_daemon(settings) as (listener, app, _routes):
        await read_quota(app)
        reply = await get(listener, "/quota")
    assert reply.status == 200 and reply.headers[b"content-type"] == b"application/json"
    assert reply.headers[b"cache-control"] == b"no-store"
    document = orjson.loads(reply.body)
    [entry] = document["accounts"]
    assert entry["id"] == "acc001" and entry["email"] == "us***@example.com" and entry["state"] == "active"
    assert entry["in_flight"] == 0 and entry["quota_checked_at"].endswith("Z")
    claude = entry["families"]["claude"]
    assert claude["remaining"] == 0.0 and 3590 <= claude["resets_in_s"] <= 3601  # the earliest reset of the family
    assert claude["cooling_until"] == claude["resets_at"] and "no quota left" in claude["cooling_reason"]
    assert entry["families"]["gemini-flash"]["remaining"] == 0.4
    assert entry["families"]["gemini-pro"]["remaining"] == 1.0 and entry["families"]["gemini-pro"]["cooling_until"] is None
    assert abs(time.time() - _epoch(document["generated_at"])) < 60
    assert len(fake.requests_to("/v1internal:fetchAvailableModels")) == 1


def _epoch(text: str) -> float:
    from daemon.pool.quota import parse_rfc3339

    value = parse_rfc3339(text)
    assert value is not None
    return value


async def test_quota_as_a_table(settings):
    async with running_daemon(settings) as (listener, app, _routes):
        await read_quota(app)
        reply = await get(listener, "/quota?format=table")
    assert reply.status == 200 and reply.headers[b"content-type"] == b"text/plain; charset=utf-8"
    text = reply.body.decode("ascii")
    header, line = text.rstrip("\n").split("\n")
    assert text.endswith("\n") and header.split() == ["ACCOUNT", "STATE", "CLAUDE", "GEMINI-PRO", "GEMINI-FLASH"]
    assert line.startswith("us***@example.com  active  ") and "cooling 1h00m" in line
    assert "####------  40%" in line


async def test_an_unknown_format_is_refused(settings):
    async with running_daemon(settings) as (listener, _app, _routes):
        reply = await get(listener, "/quota?format=yaml")
    assert reply.status == 400 and orjson.loads(reply.body)["error"]["type"] == "invalid_request_error"


async def test_beyond_loopback_without_an_admin_password_it_is_refused(settings):
    async with running_daemon(settings) as (listener, app, _routes):
        # Bound to loopback; the daemon is told it listens on every address (what require_admin reads).
        app.settings = dataclasses.replace(app.settings, host="0.0.0.0")
        refused = await get(listener, "/quota")
        also_with_credentials = await get(listener, "/quota?format=table", [basic("admin", "anything")])
    for reply in (refused, also_with_credentials):
        assert reply.status == 403 and b"www-authenticate" not in reply.headers
        error = orjson.loads(reply.body)["error"]
        assert error["type"] == "permission_error" and "AGPROXY_ADMIN_PASSWORD" in error["message"]


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
async def test_with_an_admin_password_basic_auth_is_required(settings, host):
    protected = dataclasses.replace(settings, admin_password=Secret(PASSWORD))
    async with running_daemon(protected) as (listener, app, _routes):
        app.settings = dataclasses.replace(app.settings, host=host)
        missing = await get(listener, "/quota")
        wrong = await get(listener, "/quota?format=table", [basic("admin", "wrong")])
        wrong_user = await get(listener, "/quota", [basic("root", PASSWORD)])
        bearer = await get(listener, "/quota", [("authorization", f"Bearer {PASSWORD}")])
        right = await get(listener, "/quota?format=table", [basic("admin", PASSWORD)])
    for reply in (missing, wrong, wrong_user, bearer):
        assert reply.status == 401, reply
        assert reply.headers[b"www-authenticate"] == b'Basic realm="antigravity-proxy"'
        assert orjson.loads(reply.body)["error"]["type"] == "authentication_error"
        assert PASSWORD.encode() not in reply.body
    assert right.status == 200 and right.body.startswith(b"ACCOUNT ")


# --- `antigravity-proxy quota` -----------------------------------------------------------


async def run_cli(*args: str, port: int, data_dir: Path, **env: str) -> tuple[int, str, str]:
    environ = {key: value for key, value in os.environ.items()
               if not key.startswith("AGPROXY_") and not key.lower().endswith("_proxy")}
    environ.update({"AGPROXY_HOST": "0.0.0.0", "AGPROXY_PORT": str(port), "AGPROXY_DATA_DIR": str(data_dir),
                    "HTTP_PROXY": "http://127.0.0.1:9", **env})  # a proxy the CLI must not use for loopback
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "daemon", "quota", *args, cwd=ROOT, env=environ,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_the_cli_prints_the_table_and_the_json(settings):
    protected = dataclasses.replace(settings, admin_password=Secret(PASSWORD))
    async with running_daemon(protected) as (listener, app, _routes):
        await read_quota(app)
        port = listener.address[1]
        table = await run_cli(port=port, data_dir=settings.data_dir, AGPROXY_ADMIN_PASSWORD=PASSWORD)
        as_json = await run_cli("--json", port=port, data_dir=settings.data_dir, AGPROXY_ADMIN_PASSWORD=PASSWORD)
        refused = await run_cli(port=port, data_dir=settings.data_dir, AGPROXY_ADMIN_PASSWORD="wrong")
    code, out, err = table
    assert code == 0 and err == "" and out.startswith("ACCOUNT ") and "us***@example.com" in out
    assert out.endswith("\n") and "cooling 1h00m" in out
    code, out, err = as_json
    assert code == 0 and err == "" and orjson.loads(out)["accounts"][0]["id"] == "acc001"
    code, out, err = refused
    assert code == 1 and out == "" and "401" in err and "admin credentials required" in err
    assert len(err.strip().splitlines()) == 1


async def test_the_cli_says_so_when_the_daemon_is_not_running(tmp_path):
    code, out, err = await run_cli(port=free_port(), data_dir=tmp_path)
    assert code == 1 and out == ""
    assert "cannot reach the daemon at http://127.0.0.1:" in err and "is it running?" in err
    assert len(err.strip().splitlines()) == 1
