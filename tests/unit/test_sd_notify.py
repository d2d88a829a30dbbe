"""The systemd notification protocol: datagrams to NOTIFY_SOCKET (path or abstract), and the
watchdog interval systemd asks for."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from daemon import sd_notify

pytestmark = pytest.mark.unit


def test_without_systemd_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sd_notify.notify("READY=1") is False


@pytest.mark.parametrize("abstract", [False, True])
def test_states_reach_the_socket_as_one_datagram(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, abstract: bool) -> None:
    name = f"\0agproxy-test-{os.getpid()}" if abstract else str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(name)
        listener.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name[1:] if abstract else name)
        assert sd_notify.notify("READY=1", "STATUS=listening") is True
        assert listener.recv(1024) == b"READY=1\nSTATUS=listening"
        assert sd_notify.reloading() is True
        reloading, monotonic = listener.recv(1024).decode().split("\n")
        assert reloading == "RELOADING=1" and int(monotonic.removeprefix("MONOTONIC_USEC=")) > 0


def test_a_dead_socket_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert sd_notify.notify("READY=1") is False


@pytest.mark.parametrize(("usec", "pid", "expected"), [
    ("30000000", "", 15.0), ("30000000", "self", 15.0), ("30000000", "1", None), ("0", "", None), ("", "", None),
    ("abc", "", None),
])
def test_the_watchdog_interval_is_half_of_what_systemd_asks(monkeypatch: pytest.MonkeyPatch, usec: str, pid: str,
                                                             expected: float | None) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", usec)
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()) if pid == "self" else pid)
    assert sd_notify.watchdog_interval() == expected
