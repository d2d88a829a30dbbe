"""The HTTP/1.1 server over real loopback sockets: keep-alive, pipelining, bodies, limits, timeouts."""

from __future__ import annotations

import asyncio
import socket

import orjson
import pytest

from tests.support import RawClient, running_daemon

pytestmark = pytest.mark.integration


async def test_health_answers_json_with_no_account(make_settings):
    async with running_daemon(make_settings()) as (listener, _app, _routes):
        client = await RawClient.connect(listener.address)
        client.send_request("GET", "/health")
        reply = await client.read_reply()
        client.close()
    assert reply.status == 200
    assert reply.headers[b"content-type"] == b"application/json"
    body = orjson.loads(reply.body)
    assert body["status"] == "ok"
    assert body["accounts"]["total"] == 0
    assert isinstance(body["uptime_s"], float)


async def test_keep_alive_serves_many_requests_on_one_connection(make_settings):
    async with running_daemon(make_settings()) as (listener, _app, _routes):
        client = await RawClient.connect(listener.address)
        for index in range(5):
            client.send_request("POST", "/test/echo", b"ping %d" % index)
            reply = await client.read_reply()
            assert reply.status == 200
            assert reply.body == b"ping %d" % index
        assert len(listener.state.connections) == 1
        client.close()


async def test_pipelined_requests_are_answered_in_order(make_settings):
    async with running_daemon(make_settings()) as (listener, _app, routes):
        client = await RawClient.connect(listener.address)
        # The first request blocks until released; the next two arrive in the same write.
        requests = (
            b"GET /test/wait HTTP/1.1\r\nhost: t\r\n\r\n"
            b"POST /test/echo HTTP/1.1\r\nhost: t\r\ncontent-length: 6\r\n\r\nsecond"
            b"POST /test/echo HTTP/1.1\r\nhost: t\r\ncontent-length: 5\r\n\r\nthird"
        )
        client.send_raw(requests)
        await asyncio.sleep(0.1)
        routes.release.set()
        replies = [await client.read_reply() for _ in range(3)]
        client.close()
    assert [r.status for r in replies] == [200, 200, 200]
    assert orjson.loads(replies[0].body) == {"released": True}
    assert [r.body for r in replies[1:]] == [b"second", b"third"]


async def test_chunked_request_body_is_reassembled(make_settings):
    async with running_daemon(make_settings()) as (listener, _app, _routes):
        client = await RawClient.connect(listener.address)
        client.send_raw(
            b"POST /test/echo HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n"
        )
        reply = await client.read_reply()
        client.close()
    assert reply.status == 200
    assert reply.body == b"hello world"


async def test_expect_100_continue_gets_an_interim_response(make_settings):
    async with running_daemon(make_settings()) as (listener, _app, _routes):
        reader, writer = await asyncio.open_connection(*listener.address)
        writer.write(b"POST /test/echo HTTP/1.1\r\nhost: t\r\ncontent-length: 4\r\nexpect: 100-continue\r\n\r\n")
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.write(b"body")
        final = await asyncio.wait_for(reader.readuntil(b"body"), 5)
        writer.close()
    assert interim.startswith(b"HTTP/1.1 100 ")
    assert final.startswith(b"HTTP/1.1 200 ")


async def test_streamed_response_is_chunked_and_flushed_per_event(make_settings):
    async with running_daemon(make_settings()) as (listener, _app, _routes):
        client = await RawClient.connect(listener.address)
        client.send_request("GET", "/test/stream?n=3&size=4")
        reply = await client.read_reply()
        client.close()
    assert reply.headers[b"transfer-encoding"] == b"chunked"
    assert reply.headers[b"x-accel-buffering"] == b"no"
    assert reply.chunks == [b"data: 0:xxxx\n\n", b"data: 1:xxxx\n\n", b"data: 2:xxxx\n\n"]


async def test_oversized_head_gets_431_and_close(make_settings):
    async with running_daemon(make_settings(AGPROXY_MAX_HEADER_BYTES="2KiB")) as (listener, _app, _routes):
        client = await RawClient.connect(listener.address)
        client.send_raw(b"GET /health HTTP/1.1\r\nhost: t\r\nx-big: " + b"a" * 4096 + b"\r\n\r\n")
        raw = await client.read_raw_until_close()
    assert raw.startswith(b"HTTP/1.1 431 ")
    assert b"connection: close" in raw.lower()
    assert b"AGPROXY_MAX_HEADER_BYTES" in raw


async def test_declared_oversized_body_gets_413_before_it_is_sent(make_settings):
    async with running_daemon(make_settings(AGPROXY_MAX_BODY_BYTES="1KiB")) as (listener, _app, _routes):
        client = await RawClient.connect(listener.address)
        client.send_raw(b"POST /test/echo HTTP/1.1\r\nhost: t\r\ncontent-length: 5000\r\n\r\n")
        raw = await client.read_raw_until_close()
    assert raw.startswith(b"HTTP/1.1 413 ")
    assert b"AGPROXY_MAX_BODY_BYTES" in raw


async def test_chunked_body_beyond_the_limit_gets_413(make_settings):
    async with running_daemon(make_settings(AGPROXY_MAX_BODY_BYTES="1KiB")) as (listener, _app, _routes):
        client = await RawClient.connect(listener.address)
        chunk = b"400\r\n" + b"z" * 1024 + b"\r\n"
        client.send_raw(b"POST /test/echo HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n" + chunk * 2)
        raw = await client.read_raw_until_close()
    assert raw.startswith(b"HTTP/1.1 413 ")


async def test_slowloris_head_gets_408_and_close(make_settings):
    settings = make_settings(AGPROXY_HEADER_TIMEOUT="0.5")
    async with running_daemon(settings) as (listener, _app, _routes):
        loop = asyncio.get_running_loop()
        sock = socket.create_connection(listener.address)
        sock.setblocking(False)
        started = loop.time()
        # One header byte every 0.1 s: progress never resets the head deadline.
        for byte in b"GET /health HTTP/1.1\r\nhost: t\r\n"[:20]:
            try:
                sock.send(bytes([byte]))
            except OSError:
                break  # the server has closed the connection
            await asyncio.sleep(0.1)
        raw = b""
        while chunk := await asyncio.wait_for(loop.sock_recv(sock, 65536), 5):
            raw += chunk
        elapsed = loop.time() - started
        sock.close()
    assert raw.startswith(b"HTTP/1.1 408 ")
    assert elapsed < 3


async def test_idle_keep_alive_connection_is_closed(make_settings):
    async with running_daemon(make_settings(AGPROXY_KEEPALIVE_TIMEOUT="0.3")) as (listener, _app, _routes):
        client = await RawClient.connect(listener.address)
        client.send_request("GET", "/health")
        assert (await client.read_reply()).status == 200
        assert await client.closed_by_server(timeout=3)
        assert not listener.state.connections


async def test_connections_beyond_the_limit_get_503(make_settings):
    async with running_daemon(make_settings(AGPROXY_MAX_CONNECTIONS="2")) as (listener, _app, _routes):
        first = await RawClient.connect(listener.address)
        second = await RawClient.connect(listener.address)
        await asyncio.sleep(0.05)
        third = await RawClient.connect(listener.address)
        raw = await third.read_raw_until_close()
        assert raw.startswith(b"HTTP/1.1 503 ")
        first.send_request("GET", "/health")
        assert (await first.read_reply()).status == 200
        for client in (first, second):
            client.close()


@pytest.mark.parametrize(
    "garbage",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /health HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET /health HTTP/1.1\r\nhost: t\r\ncontent-length: nope\r\n\r\n",
        b"GET /he alth HTTP/1.1\r\nhost: t\r\n\r\n",
        b"GET /health HTTP/9.9\r\nhost: t\r\n\r\n",
        b"GET /health HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
    ],
)
async def test_malformed_requests_get_400_and_close(make_settings, garbage):
    async with running_daemon(make_settings()) as (listener, _app, _routes):
        client = await RawClient.connect(listener.address)
        client.send_raw(garbage)
        raw = await client.read_raw_until_close()
    status = 505 if b"HTTP/9.9" in garbage else 400
    assert raw.startswith(b"HTTP/1.1 %d " % status)
    assert b"Traceback" not in raw
    body = orjson.loads(raw.split(b"\r\n\r\n", 1)[1])
    expected = "HTTP/9.9 is not supported" if status == 505 else "malformed HTTP request"
    assert body["error"]["message"].startswith(expected)


async def test_unknown_path_404_and_wrong_method_405_with_allow(make_settings):
    async with running_daemon(make_settings()) as (listener, _app, _routes):
        client = await RawClient.connect(listener.address)
        client.send_request("GET", "/nope")
        missing = await client.read_reply()
        client.send_request("DELETE", "/health")
        wrong = await client.read_reply()
        client.close()
    assert missing.status == 404
    assert wrong.status == 405
    assert wrong.headers[b"allow"] == b"GET"


async def test_handler_bug_gets_500_and_the_connection_survives(make_settings):
    async with running_daemon(make_settings()) as (listener, _app, _routes):
        client = await RawClient.connect(listener.address)
        client.send_request("GET", "/test/boom")
        reply = await client.read_reply()
        client.send_request("GET", "/health")
        after = await client.read_reply()
        client.close()
    assert reply.status == 500
    assert b"handler bug" not in reply.body  # no exception text leaks to the client
    assert after.status == 200


async def test_client_disconnect_cancels_the_handler(make_settings):
    async with running_daemon(make_settings()) as (listener, _app, routes):
        client = await RawClient.connect(listener.address)
        client.send_request("GET", "/test/stream?n=3&gated=1")
        await asyncio.wait_for(routes.started.wait(), 5)
        assert len(listener.state.tasks) == 1
        client.writer.transport.abort()
        for _ in range(300):  # up to 3 s on a loaded machine
            if not listener.state.tasks:
                break
            await asyncio.sleep(0.01)
        assert not listener.state.tasks
        assert routes.finished == []


async def test_slow_reader_applies_backpressure_instead_of_buffering(make_settings):
    async with running_daemon(make_settings()) as (listener, _app, routes):
        sock = socket.create_connection(listener.address)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        sock.send(b"GET /test/stream?n=4000&size=1000 HTTP/1.1\r\nhost: t\r\n\r\n")
        await asyncio.wait_for(routes.started.wait(), 5)
        await asyncio.sleep(0.3)  # the client reads nothing: the writer must be parked
        (connection,) = listener.state.connections
        assert connection.flow.write_paused
        buffered = connection.transport.get_write_buffer_size()
        assert buffered < 1024 * 1024, buffered  # bounded by the high-water mark, not 4 MB
        assert routes.finished == []
        sock.close()


async def test_one_access_line_per_request_without_query_or_credentials(make_settings, caplog):
    caplog.set_level("INFO", logger="daemon.access")
    async with running_daemon(make_settings(AGPROXY_ACCESS_LOG="on")) as (listener, _app, _routes):
        client = await RawClient.connect(listener.address)
        client.send_request("GET", "/health?key=AIzaSecretKey123", headers=[("authorization", "Bearer ya29.secret")])
        await client.read_reply()
        client.close()
    lines = [record.getMessage() for record in caplog.records if record.name == "daemon.access"]
    assert len(lines) == 1
    method, path, status, duration, ttfb, size, request_id = lines[0].split()
    assert (method, path, status) == ("GET", "/health", "200")
    assert duration.endswith("ms") and ttfb.startswith("ttfb=") and size.startswith("bytes=")
    assert "AIzaSecretKey123" not in caplog.text and "ya29.secret" not in caplog.text
