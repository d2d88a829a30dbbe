"""The systemd unit: `systemd-analyze verify` is clean, and its ExecStart, run with the unit's
environment under a fake NOTIFY_SOCKET, speaks the notify protocol (READY=1 once the port
answers, RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 on SIGTERM) and keeps its data in
the StateDirectory."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.clients import build_zipapp

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parent.parent.parent
UNIT = ROOT / "systemd" / "antigravity-proxy.service"


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_systemd_analyze_verify_is_clean() -> None:
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing in CI (.ci/run installs systemd)")
        pytest.skip("systemd-analyze is not installed")
    result = subprocess.run(["systemd-analyze", "verify", str(UNIT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_the_unit_runs_the_zipapp_as_a_notify_service(tmp_path: Path) -> None:
    unit = unit_settings()
    assert unit["Type"] == ["notify"] and unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    command = shlex.split(unit["ExecStart"][0])
    assert command[1] == "/usr/local/lib/antigravity-proxy/antigravity-proxy.pyz" and command[2:] == ["serve"]
    interpreter = command[0] if Path(command[0]).exists() else "python3"
    specifiers = {"%S": str(tmp_path / "state"), "%C": str(tmp_path / "cache")}
    environment = {}
    for assignment in unit["Environment"]:
        key, _, value = assignment.partition("=")
        environment[key] = re.sub(r"%[SC]", lambda m: specifiers[m.group(0)], value)
    assert environment["AGPROXY_DATA_DIR"] == str(tmp_path / "state" / unit["StateDirectory"][0])
    assert environment["SHIV_ROOT"] == str(tmp_path / "cache" / unit["CacheDirectory"][0])

    notify_path = tmp_path / "notify.sock"
    notifications = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notifications.bind(str(notify_path))
    notifications.settimeout(30)
    port_probe = socket.socket()
    port_probe.bind(("127.0.0.1", 0))
    port = port_probe.getsockname()[1]
    port_probe.close()
    env = {"PATH": os.environ["PATH"], **environment, "NOTIFY_SOCKET": str(notify_path), "AGPROXY_PORT": str(port)}
    process = subprocess.Popen([interpreter, str(build_zipapp()), "serve"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def next_message() -> str:
            return notifications.recv(4096).decode()

        ready = next_message()
        assert ready.startswith("READY=1") and f":{port}" in ready
        socket.create_connection(("127.0.0.1", port), timeout=5).close()  # it listens by the time it says so

        process.send_signal(signal.SIGHUP)
        reloading = next_message().split("\n")
        assert reloading[0] == "RELOADING=1" and reloading[1].startswith("MONOTONIC_USEC=")
        assert next_message() == "READY=1"
        socket.create_connection(("127.0.0.1", port), timeout=5).close()

        process.send_signal(signal.SIGTERM)
        assert next_message() == "STOPPING=1"
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        notifications.close()
    log = process.stderr.read().decode() if process.stderr else ""
    assert f"(data in {environment['AGPROXY_DATA_DIR']})" in log
    assert (tmp_path / "cache" / "antigravity-proxy").is_dir()  # shiv unpacked into the CacheDirectory
