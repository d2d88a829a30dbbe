"""The upstream client against real loopback servers: TLS pool reuse, CONNECT, timeouts, cancellation."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator

import orjson
import pytest
import trustme

from daemon.http_client.dial import ProxyConfig
from daemon.http_client.errors import (
    ConnectError,
    ProxyError,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
)
from daemon.http_client.pool import ConnectionPool
from tests.fakes import FakeUpstream
from tests.fakes import scripts as s
from tests.fakes.connect_proxy import ConnectProxy
from tests.fakes.upstream import DEFAULT_PROJECT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_fake(ca: trustme.CA) -> Iterator[FakeUpstream]:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    with FakeUpstream(server_context) as fake:
        yield fake
        fake.assert_no_violations()


@pytest.fixture
def plain_fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake
        fake.assert_no_violations()


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def make_pool(ca: trustme.CA, proxies: ProxyConfig | None = None) -> ConnectionPool:
    return ConnectionPool(
        ssl_context=client_context(ca),
        proxies=proxies or ProxyConfig(None, None, ()),
        connect_timeout=5,
        max_idle_per_origin=4,
    )


def generation(fake: FakeUpstream) -> tuple[list[tuple[bytes, bytes]], bytes]:
    headers = [
        (b"authorization", b"Bearer " + fake.mint_access_token().encode()),
        (b"content-type", b"application/json"),
        (b"user-agent", b"antigravity/ide/2.5.5 darwin/arm64"),
    ]
    body = orjson.dumps({
        "project": DEFAULT_PROJECT, "model": "gemini-3-flash", "userAgent": "antigravity",
        "requestType": "agent", "requestId": "agent-test",
        "request": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    })
    return headers, body


async def stream_events(pool: ConnectionPool, fake: FakeUpstream, idle_timeout: float = 5) -> list[bytes]:
    headers, body = generation(fake)
    response = await pool.request("POST", fake.base_url + "/v1internal:streamGenerateContent?alt=sse", headers, body,
                                  first_byte_timeout=5, idle_timeout=idle_timeout)
    try:
        assert response.status == 200
        return [chunk async for chunk in response]
    finally:
        response.close()


async def test_twenty_sequential_requests_cost_one_tls_handshake(ca, tls_fake):
    pool = make_pool(ca)
    for _ in range(20):
        response = await pool.request("GET", tls_fake.base_url + "/health", [], first_byte_timeout=5, idle_timeout=5)
        assert response.status == 200
        assert await response.read(1024) == b"ok"
    assert pool.connections_opened == 1
    assert tls_fake.tls_handshakes == 1
    assert pool.idle_count() == 1
    await pool.aclose()


async def test_a_streamed_body_arrives_in_pieces_and_the_connection_is_reused(ca, tls_fake):
    pool = make_pool(ca)
    tls_fake.script(s.stream_reply(s.text("a", "b", "c"), s.finish()))
    body = b"".join(await stream_events(pool, tls_fake))
    assert body.count(b"data: ") >= 3
    assert b'"finishReason":"STOP"' in body
    await stream_events(pool, tls_fake)
    assert pool.connections_opened == 1
    await pool.aclose()


async def test_an_unfinished_response_is_never_reused(ca, tls_fake):
    pool = make_pool(ca)
    tls_fake.script(s.stream_reply(s.text("a"), s.pause(0.2), s.text("b"), s.finish()))
    headers, body = generation(tls_fake)
    response = await pool.request("POST", tls_fake.base_url + "/v1internal:streamGenerateContent?alt=sse",
                                  headers, body, first_byte_timeout=5, idle_timeout=5)
    await response.__anext__()
    response.close()  # stopped half way: the connection is aborted, not pooled
    assert pool.idle_count() == 0 and pool.active_count == 0
    await stream_events(pool, tls_fake)
    assert pool.connections_opened == 2
    await pool.aclose()


async def test_silence_inside_a_body_raises_read_timeout(ca, tls_fake):
    pool = make_pool(ca)
    tls_fake.script(s.stream_reply(s.text("a"), s.pause(2), s.text("b"), s.finish()))
    with pytest.raises(ReadTimeout):
        await stream_events(pool, tls_fake, idle_timeout=0.3)
    assert pool.active_count == 0
    await pool.aclose()


async def test_a_stream_cut_mid_event_is_an_error_not_an_end(ca, tls_fake):
    pool = make_pool(ca)
    tls_fake.script(s.stream_reply(s.text("a"), s.cut_mid_event()))
    with pytest.raises((RemoteProtocolError, ReadError)):
        await stream_events(pool, tls_fake)
    assert pool.idle_count() == 0
    await pool.aclose()


async def test_no_response_head_in_time_raises_read_timeout(ca):
    done = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await done.wait()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = make_pool(ca)
    with pytest.raises(ReadTimeout):
        await pool.request("GET", f"http://127.0.0.1:{port}/", [], first_byte_timeout=0.3, idle_timeout=1)
    assert pool.active_count == 0
    await pool.aclose()
    done.set()
    server.close()
    await server.wait_closed()


async def test_cancelling_the_caller_closes_the_upstream_socket(ca, tls_fake):
    pool = make_pool(ca)
    release = threading.Event()
    tls_fake.script(s.stream_reply(s.text("first"), s.gate(release), s.text("never"), s.finish()))
    task = asyncio.create_task(stream_events(pool, tls_fake))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pool.active_count == 0 and pool.idle_count() == 0
    release.set()
    await pool.aclose()


async def test_connection_refused_is_a_connect_error(ca):
    pool = make_pool(ca)
    with pytest.raises(ConnectError):
        await pool.request("GET", "http://127.0.0.1:9/", [], first_byte_timeout=1, idle_timeout=1)
    await pool.aclose()


async def test_a_keep_alive_connection_the_server_closed_is_replaced_transparently(ca, plain_fake):
    plain_fake.idle_timeout = 0.2  # the fake closes idle keep-alive connections
    pool = make_pool(ca)
    for _ in range(3):
        response = await pool.request("GET", plain_fake.base_url + "/health", [], first_byte_timeout=5, idle_timeout=5)
        assert await response.read(1024) == b"ok"
        await asyncio.sleep(0.4)
    assert pool.connections_opened == 3
    await pool.aclose()


async def test_https_through_a_connect_proxy_keeps_one_tunnel(ca, tls_fake):
    with ConnectProxy() as proxy:
        pool = make_pool(ca, ProxyConfig(proxy.url, None, ()))
        for _ in range(5):
            response = await pool.request("GET", tls_fake.base_url + "/health", [], first_byte_timeout=5, idle_timeout=5)
            assert await response.read(1024) == b"ok"
        await pool.aclose()
    assert proxy.tunnels == 1
    assert proxy.requests[0][:2] == ("CONNECT", f"127.0.0.1:{tls_fake.port}")
    assert tls_fake.tls_handshakes == 1  # TLS runs end to end through the tunnel


async def test_proxy_credentials_from_the_url_are_sent(ca, tls_fake):
    with ConnectProxy(username="me", password="p@ss") as proxy:
        pool = make_pool(ca, ProxyConfig(proxy.url.replace("http://", "http://me:p%40ss@"), None, ()))
        response = await pool.request("GET", tls_fake.base_url + "/health", [], first_byte_timeout=5, idle_timeout=5)
        assert await response.read(1024) == b"ok"
        await pool.aclose()
    assert proxy.tunnels == 1


async def test_a_refused_connect_is_a_proxy_error(ca, tls_fake):
    with ConnectProxy(username="me", password="right") as proxy:
        pool = make_pool(ca, ProxyConfig(proxy.url, None, ()))  # no credentials: 407
        with pytest.raises(ProxyError, match="407"):
            await pool.request("GET", tls_fake.base_url + "/health", [], first_byte_timeout=5, idle_timeout=5)
        await pool.aclose()


async def test_no_proxy_hosts_are_reached_directly(ca, tls_fake):
    with ConnectProxy() as proxy:
        pool = make_pool(ca, ProxyConfig(proxy.url, None, ("localhost", "127.0.0.1")))
        response = await pool.request("GET", tls_fake.base_url + "/health", [], first_byte_timeout=5, idle_timeout=5)
        assert await response.read(1024) == b"ok"
        await pool.aclose()
    assert proxy.tunnels == 0


def test_proxy_config_follows_curl_rules() -> None:
    from daemon.http_client.dial import Origin

    config = ProxyConfig("http://p:1", "http://q:2", (".corp.example", "exact.host"))
    assert config.for_origin(Origin.of("https://api.example.com")).origin.port == 1
    assert config.for_origin(Origin.of("http://api.example.com")).origin.port == 2
    assert config.for_origin(Origin.of("https://a.corp.example")) is None
    assert config.for_origin(Origin.of("https://corp.example")) is None
    assert config.for_origin(Origin.of("https://exact.host")) is None
    assert config.for_origin(Origin.of("https://notexact.host")) is not None
    assert ProxyConfig("http://p:1", None, ("*",)).for_origin(Origin.of("https://x")) is None
