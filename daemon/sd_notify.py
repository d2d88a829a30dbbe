"""The systemd notification protocol (sd_notify(3)) with the standard library: READY=1 once
listening, RELOADING=1 around a reload, STOPPING=1 on shutdown, WATCHDOG=1 keep-alives when
the unit sets WatchdogSec. Without NOTIFY_SOCKET (not under systemd) every call does nothing."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time

log = logging.getLogger(__name__)


def notify(*states: str) -> bool:
    """Send `states` (e.g. "READY=1") to systemd; False when there is no one to tell."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto("\n".join(states).encode(), address)
    except OSError as exc:
        log.warning("cannot notify systemd at %s: %s", os.environ["NOTIFY_SOCKET"], exc)
        return False
    return True


def reloading() -> bool:
    return notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")


def watchdog_interval() -> float | None:
    """Half the unit's WatchdogSec, when systemd asked this process for keep-alives."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6


async def keep_alive(interval: float) -> None:
    """Tell systemd the daemon is alive while its event loop is: a stuck loop stops these."""
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)
