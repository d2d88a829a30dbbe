"""bench/ stays runnable: its scripts import what the daemon still has (they are not part of
the package, so nothing else would notice a rename). Nothing here measures speed."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("*.py")))
def test_a_bench_script_loads(script: str) -> None:
    namespace = runpy.run_path(str(BENCH / script), run_name="bench_import_check")  # top level only, no main()
    assert namespace["__name__"] == "bench_import_check"


def test_the_translator_bench_runs_every_reader() -> None:
    done = subprocess.run([sys.executable, str(BENCH / "translator_bench.py"), "--events", "3", "--repeat", "1",
                           "--rounds", "1"], capture_output=True, text=True, timeout=60, cwd=BENCH.parent)
    assert done.returncode == 0, done.stderr
    assert all(f"  {name}" in done.stdout for name in ("anthropic", "openai-chat", "responses", "gemini-passthrough"))
