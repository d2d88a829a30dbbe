"""The fake upstream's HTTP/1.1 server on 127.0.0.1: one accept thread plus one thread per
TCP connection (keep-alive is honoured), optional TLS, request-body reading (Content-Length
or chunked), idle timeouts, and the table of open connections that `stop()` shuts down.
Each request goes to `FakeUpstream._record` and the handler `FakeUpstream._route` picks.
"""

from __future__ import annotations

import http.server
import socket
import socketserver
import struct
import threading
import traceback
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .exchange import JSON_TYPE, Aborted, Exchange

if TYPE_CHECKING:
    from .upstream import FakeUpstream

HANDSHAKE_TIMEOUT = 10.0  # seconds
ACCEPT_POLL_INTERVAL = 0.05  # seconds
MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass(eq=False)
class Conn:
    """One accepted client connection."""

    id: int
    sock: socket.socket
    tls: bool = False
    closed: bool = False


class ConnectionTable:
    """The open client connections and the threads serving them, under the fake's lock."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._conns: dict[int, Conn] = {}
        self._threads: list[threading.Thread] = []

    def add(self, conn_id: int, sock: socket.socket) -> Conn:
        with self._lock:
            conn = Conn(conn_id, sock)
            self._conns[conn.id] = conn
            return conn

    def track(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)

    def open_count(self) -> int:
        with self._lock:
            return sum(1 for c in self._conns.values() if not c.closed)

    def close(self, conn: Conn, *, reset: bool = False) -> None:
        """Close a client socket exactly once (under the lock, so shut_down_all never touches a
        reused fd). `reset`: SO_LINGER 0, so the peer sees a TCP reset instead of a FIN."""
        with self._lock:
            if conn.closed:
                return
            conn.closed = True
            self._conns.pop(conn.id, None)
            sock = conn.sock
            try:
                if reset:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    socket.socket.shutdown(sock, socket.SHUT_WR)
            except OSError:
                pass
            try:
                sock.close()
            except OSError:
                pass

    def shut_down_all(self) -> list[threading.Thread]:
        """Shut every open client socket down (which wakes its thread); the threads to join."""
        with self._lock:
            for conn in self._conns.values():
                if not conn.closed:
                    try:  # the base method: on an SSLSocket, skip its own shutdown bookkeeping
                        socket.socket.shutdown(conn.sock, socket.SHUT_RDWR)
                    except OSError:
                        pass
            return list(self._threads)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ESF"
    disable_nagle_algorithm = True
    server: Server

    def __init__(self, request: socket.socket, client_address: Any, server: Server, conn: Conn) -> None:
        self.conn = conn
        super().__init__(request, client_address, server)

    def version_string(self) -> str:
        return "ESF"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except (Aborted, OSError):
            self.close_connection = True

    def handle_one_request(self) -> None:
        fake = self.server.fake
        try:
            self.connection.settimeout(fake.idle_timeout)
            self.raw_requestline = self.rfile.readline(65537)
            self.connection.settimeout(None)
        except TimeoutError:
            with fake._lock:
                fake.idle_closes += 1
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if not self.parse_request():
            return
        self._dispatch()
        self.wfile.flush()

    def _refuse_body(self, status: int, message: str | None = None) -> None:
        self.send_error(status, message)
        self.close_connection = True

    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked_body()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self._refuse_body(400 if length < 0 else 413)
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked_body(self) -> bytes | None:
        body = bytearray()
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                self._refuse_body(400, "bad chunk size")
                return None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(body)
            body += self.rfile.read(size)
            self.rfile.readline(3)
            if len(body) > MAX_BODY_BYTES:
                self._refuse_body(413)
                return None

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            return
        fake = self.server.fake
        if urllib.parse.urlsplit(self.path).path == "/health":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            return
        record = fake._record(self, body)
        exchange = Exchange(self, record)
        try:
            fake._route(self.command, record.path)(exchange)
        except Aborted:
            self.close_connection = True
            raise
        except OSError:  # the client went away while we wrote (e.g. the status line)
            if record.outcome != "cut":
                record.outcome = "client_closed"
            self.close_connection = True
        except Exception:
            fake._internal_error(f"{record.method} {record.path}: {traceback.format_exc()}")
            if record.status is None:
                exchange.send(500, b'{"error":{"code":500,"message":"fake upstream bug","status":"INTERNAL"}}',
                              JSON_TYPE)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, fake: FakeUpstream) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), Handler)  # type: ignore[arg-type]

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # skip HTTPServer's getfqdn (slow reverse DNS)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        return self.fake._on_accept(sock), address

    def process_request(self, request: Any, client_address: Any) -> None:
        conn: Conn = request
        thread = threading.Thread(target=self._serve_connection, args=(conn, client_address),
                                  name=f"fake-upstream-conn-{conn.id}", daemon=True)
        self.fake._conn_table.track(thread)
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        self.fake._conn_table.close(request)

    def _serve_connection(self, conn: Conn, client_address: Any) -> None:
        fake = self.fake
        try:
            if fake.ssl_context is not None and not self._handshake(conn):
                return
            Handler(conn.sock, client_address, self, conn)
        except Exception:
            fake._internal_error(traceback.format_exc())
        finally:
            fake._conn_table.close(conn)

    def _handshake(self, conn: Conn) -> bool:
        """Wrap the socket in TLS and shake hands; False if that failed (or stop() came first)."""
        fake = self.fake
        assert fake.ssl_context is not None
        with fake._lock:
            if conn.closed:
                return False
            conn.sock.settimeout(HANDSHAKE_TIMEOUT)
            conn.sock = fake.ssl_context.wrap_socket(conn.sock, server_side=True, do_handshake_on_connect=False)
            conn.tls = True
        try:
            conn.sock.do_handshake()
        except (OSError, ValueError):
            with fake._lock:
                fake.tls_handshake_failures += 1
            return False
        conn.sock.settimeout(None)
        with fake._lock:
            fake.tls_handshakes += 1
        return True
