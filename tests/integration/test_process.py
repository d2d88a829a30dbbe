"""The daemon as a process: start-up line, config errors, SIGTERM drain and exit codes."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parent.parent.parent


def start(module_args: list[str], env: dict[str, str], tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    full_env = {**os.environ, "AGPROXY_HOST": "127.0.0.1", "AGPROXY_PORT": "0",
                "AGPROXY_DATA_DIR": str(tmp_path / "data"), **env}
    process = subprocess.Popen([sys.executable, "-m", *module_args], cwd=ROOT, env=full_env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stderr is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = process.stderr.readline().decode()
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if match:
            return process, int(match.group(1))
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError("daemon did not print its listening address")


def http_get(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nhost: t\r\n\r\n".encode())
    return sock


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_start_prints_the_address_and_health_answers(tmp_path: Path) -> None:
    process, port = start(["daemon", "serve"], {}, tmp_path)
    try:
        sock = http_get(port, "/health")
        reply = b""
        while b'"status":"ok"' not in reply and (chunk := sock.recv(65536)):
            reply += chunk  # head and body may come in separate segments
        assert reply.startswith(b"HTTP/1.1 200 ")
        assert b'"status":"ok"' in reply
        sock.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_a_bad_variable_stops_start_up_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "daemon", "serve"], cwd=ROOT, capture_output=True,
                            env={**os.environ, "AGPROXY_PORT": "abc"}, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert lines == ["antigravity-proxy: AGPROXY_PORT='abc' is not valid: expected a TCP port 1-65535 (0 picks a free one)"]


def test_a_busy_port_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "daemon", "serve"], cwd=ROOT, capture_output=True, timeout=30,
                                env={**os.environ, "AGPROXY_PORT": str(port), "AGPROXY_DATA_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr.decode()


def test_sigterm_drains_a_live_stream_then_exits_zero(tmp_path: Path) -> None:
    process, port = start(["tests.daemon_with_test_routes"], {}, tmp_path)
    try:
        stream = http_get(port, "/test/stream?n=20&delay=0.05&size=8")
        first = stream.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        process.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        with pytest.raises(OSError):  # no longer accepting
            socket.create_connection(("127.0.0.1", port), timeout=2).recv(1)
        rest = read_all(stream)
        body = first + rest
        assert body.count(b"data: ") == 20, body
        assert body.endswith(b"0\r\n\r\n")  # the chunked stream ended properly
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()


def test_drain_timeout_cuts_what_is_left_and_still_exits_zero(tmp_path: Path) -> None:
    process, port = start(["tests.daemon_with_test_routes"], {"AGPROXY_DRAIN_TIMEOUT": "0.3"}, tmp_path)
    try:
        stream = http_get(port, "/test/stream?n=3&gated=1")
        assert stream.recv(65536).startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
        assert not read_all(stream).endswith(b"0\r\n\r\n")  # cut, not completed
        assert b"drain timeout: cancelling 1 requests" in process.stderr.read()
    finally:
        process.kill()


def test_listening_beyond_loopback_without_keys_is_refused(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "daemon", "serve"], cwd=ROOT, capture_output=True, timeout=30,
                            env={**os.environ, "AGPROXY_HOST": "0.0.0.0", "AGPROXY_PORT": "0",
                                 "AGPROXY_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "AGPROXY_API_KEYS" in result.stderr.decode()


def test_an_env_file_configures_the_daemon_and_sighup_rereads_it(tmp_path: Path) -> None:
    env_path = tmp_path / "agproxy.env"
    env_path.write_text("AGPROXY_MODEL_MAP=house=gemini-3-flash\n")
    process, port = start(["daemon", "serve"], {"AGPROXY_ENV_FILE": str(env_path)}, tmp_path)
    try:
        assert b'"house"' in read_all(http_get_close(port, "/v1/models"))
        env_path.write_text("AGPROXY_MODEL_MAP=cottage=gemini-3-flash\n")
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while b'"cottage"' not in (listing := read_all(http_get_close(port, "/v1/models"))):
            assert time.monotonic() < deadline, listing
            time.sleep(0.1)
        assert b'"house"' not in listing
    finally:
        process.terminate()
        assert process.wait(10) == 0


def test_a_world_readable_env_file_with_a_secret_stops_the_start(tmp_path: Path) -> None:
    env_path = tmp_path / "agproxy.env"
    env_path.write_text("AGPROXY_API_KEYS=laptop=0123456789abcdef\n")
    os.chmod(env_path, 0o644)
    result = subprocess.run([sys.executable, "-m", "daemon", "serve"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "AGPROXY_ENV_FILE": str(env_path), "AGPROXY_PORT": "0",
                                 "AGPROXY_DATA_DIR": str(tmp_path / "data")}, timeout=30)
    assert result.returncode == 2
    assert "every user can read it" in result.stderr and "0123456789abcdef" not in result.stderr


def http_get_close(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n".encode())
    return sock
