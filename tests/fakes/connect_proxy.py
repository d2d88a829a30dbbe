"""A loopback HTTP CONNECT proxy in a background thread: it tunnels bytes and counts tunnels.

Only loopback targets are allowed, so a misconfigured test can never reach further.
"""

from __future__ import annotations

import base64
import select
import socket
import socketserver
import threading


class _TunnelHandler(socketserver.BaseRequestHandler):
    server: _ProxyServer

    def handle(self) -> None:
        client: socket.socket = self.request
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        request_line, *header_lines = head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        method, authority, _ = request_line.split(b" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in header_lines)}
        owner = self.server.owner
        with owner.lock:
            owner.requests.append((method.decode(), authority.decode(), headers))
        if owner.required_auth and headers.get(b"proxy-authorization") != owner.required_auth:
            client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n")
            return
        host, _, port = authority.decode().rpartition(":")
        if method != b"CONNECT" or host not in ("127.0.0.1", "localhost"):
            client.sendall(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
            return
        try:
            upstream = socket.create_connection((host, int(port)), timeout=5)
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            return
        with owner.lock:
            owner.tunnels += 1
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self._pump(client, upstream)

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        sockets = [client, upstream]
        try:
            while not self.server.owner.stopping.is_set():
                readable, _, _ = select.select(sockets, [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)
        except OSError:
            return
        finally:
            upstream.close()


class _ProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: ConnectProxy


class ConnectProxy:
    def __init__(self, username: str | None = None, password: str = "") -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str, dict[bytes, bytes]]] = []
        self.tunnels = 0
        self.stopping = threading.Event()
        self.required_auth = (
            b"Basic " + base64.b64encode(f"{username}:{password}".encode()) if username is not None else None
        )
        self._server = _ProxyServer(("127.0.0.1", 0), _TunnelHandler)
        self._server.owner = self
        self.url = "http://127.0.0.1:%d" % self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="connect-proxy", daemon=True)

    def __enter__(self) -> ConnectProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
