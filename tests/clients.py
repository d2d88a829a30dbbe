"""Locating the real CLIs the e2e tests drive (installed by tests/run.sh) and the zipapp."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
CLIENTS = ROOT / "tests" / ".clients"
ZIPAPP = ROOT / "dist" / "antigravity-proxy.pyz"


def cli(name: str) -> Path:
    """The CLI's path; skipped outside CI when tests/run.sh has not installed it yet."""
    path = CLIENTS / "node_modules" / ".bin" / name
    if path.exists():
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{path} is missing: tests/run.sh installs the client CLIs")
    pytest.skip(f"{name} is not installed (run tests/run.sh)")


def reference_tokenizer() -> Path:
    """The Claude tokenizer file tests/run.sh extracts from an older anthropic SDK release."""
    path = CLIENTS / "claude-tokenizer.json"
    if path.exists():
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{path} is missing: tests/run.sh extracts it")
    pytest.skip("the reference tokenizer is not installed (run tests/run.sh)")


def build_zipapp() -> Path:
    """Build dist/antigravity-proxy.pyz from this checkout (the way users run the daemon)."""
    if shutil.which("bash") is None:
        pytest.skip("bash is needed to run build.sh")
    subprocess.run(["bash", str(ROOT / "build.sh")], check=True, capture_output=True, timeout=600)
    return ZIPAPP
