"""Helpers for tests that talk to a real daemon listener over loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from daemon.accounts.model import Account
from daemon.accounts.store import AccountStore
from daemon.app import App
from daemon.config import Settings
from daemon.http_server.request import Request
from daemon.http_server.response import SSE_HEADERS, Responder
from daemon.serve import Listener


ANTIGRAVITY_CLIENT_ID = "1071006060591-tmhssin2h21lcre235vtolojh4g403ep.apps.googleusercontent.com"


def seed_account(data_dir, fake, **fields) -> Account:  # type: ignore[no-untyped-def]
    """Store the fake's default account (as `accounts add` would) in `data_dir`."""
    from tests.fakes.upstream import DEFAULT_EMAIL, DEFAULT_PROJECT

    account = Account(id="acc001", email=DEFAULT_EMAIL, refresh_token=fake.account(DEFAULT_EMAIL).refresh_token,
                      client_id=ANTIGRAVITY_CLIENT_ID, project_id=DEFAULT_PROJECT, **fields)
    AccountStore(data_dir).update(lambda accounts: [account])
    return account


class TestRoutes:
    """Extra handlers the tests mount beside the daemon's own routes."""

    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self.release = asyncio.Event()  # /test/wait and /test/stream?gated block until set
        self.started = asyncio.Event()  # set when a stream has sent its head
        self.finished: list[str] = []  # request ids of streams that ran to the end

    def mount(self, app: App) -> None:
        app.router.add("POST", "/test/echo", self.echo)
        app.router.add("GET", "/test/stream", self.stream)
        app.router.add("GET", "/test/wait", self.wait)
        app.router.add("GET", "/test/boom", self.boom)
        app.router.add("GET", "/test/pixel.png", self.pixel)

    PIXEL = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                          "1f15c4890000000d4944415478da63f8cfc0f01f0005000201ffa65c1b0d0000000049454e44ae426082")

    async def pixel(self, request: Request, response: Responder) -> None:
        response.respond(200, [(b"content-type", b"image/png")], self.PIXEL)

    async def echo(self, request: Request, response: Responder) -> None:
        response.respond(200, [(b"content-type", b"application/octet-stream")], request.body)

    async def stream(self, request: Request, response: Responder) -> None:
        params = dict(item.split("=", 1) for item in request.query.split("&") if "=" in item)
        count = int(params.get("n", "5"))
        delay = float(params.get("delay", "0"))
        size = int(params.get("size", "16"))
        response.start(200, SSE_HEADERS)
        self.started.set()
        for index in range(count):
            if "gated" in params and index == 1:
                await self.release.wait()
            await response.write(b"data: " + (b"%d:" % index) + b"x" * size + b"\n\n")
            if delay:
                await asyncio.sleep(delay)
        response.end()
        self.finished.append(request.request_id)

    async def wait(self, request: Request, response: Responder) -> None:
        await self.release.wait()
        response.respond_json(200, {"released": True})

    async def boom(self, request: Request, response: Responder) -> None:
        raise RuntimeError("handler bug")


@contextlib.asynccontextmanager
async def running_daemon(settings: Settings, drain_timeout: float = 5.0) -> AsyncIterator[tuple[Listener, App, TestRoutes]]:
    app = App(settings)
    routes = TestRoutes()
    routes.mount(app)
    listener = await Listener.start(app)
    try:
        yield listener, app, routes
    finally:
        routes.release.set()
        await listener.stop(drain_timeout)
        await app.aclose()


@dataclass
class Reply:
    status: int
    headers: dict[bytes, bytes]
    body: bytes
    chunks: list[bytes] = field(default_factory=list)


class RawClient:
    """A loopback client that writes raw bytes and parses replies with its own small reader.

    The reader is independent of h11, so the server is checked against a second implementation.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, address: tuple[str, int]) -> RawClient:
        reader, writer = await asyncio.open_connection(*address)
        return cls(reader, writer)

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    def send_request(self, method: str, target: str, body: bytes = b"", headers: list[tuple[str, str]] | None = None) -> None:
        headers = headers or []
        # A loopback name, as curl sends it: the management endpoints refuse other Host names
        # without a password (DNS rebinding).
        lines = [f"{method} {target} HTTP/1.1", *([] if any(n.lower() == "host" for n, _ in headers) else ["host: 127.0.0.1"])]
        lines += [f"{name}: {value}" for name, value in headers]
        if body:
            lines.append(f"content-length: {len(body)}")
        self.writer.write("\r\n".join(lines).encode() + b"\r\n\r\n" + body)

    async def read_reply(self, timeout: float = 10) -> Reply:
        async with asyncio.timeout(timeout):
            while True:
                head = await self.reader.readuntil(b"\r\n\r\n")
                status_line, *header_lines = head[:-4].split(b"\r\n")
                status = int(status_line.split(b" ")[1])
                headers = {}
                for line in header_lines:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip()
                if status >= 200:
                    break
            chunks: list[bytes] = []
            if headers.get(b"transfer-encoding") == b"chunked":
                while True:
                    size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    if size == 0:
                        await self.reader.readuntil(b"\r\n")
                        break
                    chunks.append(await self.reader.readexactly(size))
                    await self.reader.readexactly(2)
            elif b"content-length" in headers:
                chunks.append(await self.reader.readexactly(int(headers[b"content-length"])))
            else:
                chunks.append(await self.reader.read())
            return Reply(status, headers, b"".join(chunks), chunks)

    async def read_raw_until_close(self, timeout: float = 10) -> bytes:
        async with asyncio.timeout(timeout):
            return await self.reader.read()

    async def closed_by_server(self, timeout: float = 10) -> bool:
        async with asyncio.timeout(timeout):
            return await self.reader.read() == b""

    def close(self) -> None:
        self.writer.close()


async def one_request(listener, method: str, path: str, body: bytes = b"",  # type: ignore[no-untyped-def]
                      headers: list[tuple[str, str]] | None = None) -> Reply:
    """One request on a fresh RawClient connection to `listener`, and its reply."""
    client = await RawClient.connect(listener.address)
    try:
        client.send_request(method, path, body, headers)
        return await client.read_reply()
    finally:
        client.close()
