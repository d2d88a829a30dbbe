#!/usr/bin/env python3
"""Cold start: from spawning `python3 dist/antigravity-proxy.pyz serve` to the first `GET /health`
that answers, against the interpreter's own start (`python3 -c pass`) measured in the same run.

The acceptance target (the issue): after the first run (shiv has unpacked the dependencies into
SHIV_ROOT), the zipapp answers /health at most 0.3 s later than `python3 -c pass` exits:

    median(pyz serve -> /health) - median(python3 -c pass) <= 0.3 s

One untimed start first unpacks the zipapp into a fresh SHIV_ROOT (and warms the page cache);
then N rounds, each timing `python3 -c pass` and then one daemon start, alternately, so drift
on a shared machine hits both alike. Each daemon start: spawn with AGPROXY_PORT=0, read the
"listening on http://127.0.0.1:PORT" line from its stderr to learn the port, GET /health until
it answers 200 with "status":"ok" (the clock stops there), then SIGTERM (must exit 0). Both are
spawned the same way (same interpreter, environment, Popen arguments).

    cd /work/main && .venv/bin/python bench/cold_start.py              # 20 rounds, ~10 s
    .venv/bin/python bench/cold_start.py --rounds 50 --build           # rebuild the zipapp first

Only 127.0.0.1; bounded: --rounds starts, each given --start-timeout seconds, and --max-seconds
for the whole run; a daemon still running is killed in a `finally`, and gets SIGTERM from the
kernel if this driver dies (PR_SET_PDEATHSIG). Printed at the end and written to
bench/results/cold-start-<stamp>.md (+ .json with every sample). Exit code: 0 complete, 1 errors
or incomplete, 2 complete but the target missed with --enforce, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
ZIPAPP = ROOT / "dist" / "antigravity-proxy.pyz"
RESULTS = BENCH / "results"
TARGET_S = 0.3
LISTENING = re.compile(rb"listening on http://127\.0\.0\.1:(\d+)")


class BenchError(Exception):
    pass


def _die_with_parent() -> None:
    """preexec_fn: the kernel sends SIGTERM to the child if this driver dies (Linux)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # not Linux: no prctl
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # preexec_fn is safe here: this driver runs no threads.
    return subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, preexec_fn=_die_with_parent)  # noqa: PLW1509


def time_interpreter(python: str, env: dict[str, str]) -> float:
    """Seconds from spawning `python -c pass` to its exit."""
    started = time.perf_counter()
    process = spawn([python, "-c", "pass"], env)
    _, stderr = process.communicate(timeout=30)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise BenchError(f"{python} -c pass exited with {process.returncode}: {stderr.decode(errors='replace')}")
    return elapsed


def health_ok(port: int) -> bool:
    """One GET /health on a fresh connection: True when it answers 200 with "status":"ok"."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.1 200 ") and b'"status":"ok"' in reply


def time_daemon(command: list[str], env: dict[str, str], timeout: float) -> dict[str, float]:
    """Seconds from spawning the daemon to its "listening on" line and to the first /health
    that answers; then SIGTERM, which must end it with exit code 0."""
    started = time.perf_counter()
    process = spawn(command, env)
    assert process.stderr is not None
    output = b""
    try:
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(process.stderr, selectors.EVENT_READ)
            while not (match := LISTENING.search(output)):
                if time.monotonic() > deadline or not selector.select(max(0.0, deadline - time.monotonic())):
                    raise BenchError(f"no 'listening on' line within {timeout:g} s:\n"
                                     f"{output.decode(errors='replace')}")
                chunk = os.read(process.stderr.fileno(), 65536)
                if not chunk:
                    process.wait(timeout=5)
                    raise BenchError(f"exited with {process.returncode} before listening:\n"
                                     f"{output.decode(errors='replace')}")
                output += chunk
        listening = time.perf_counter() - started
        port = int(match.group(1))
        while not health_ok(port):
            if time.monotonic() > deadline:
                raise BenchError(f"/health on port {port} did not answer within {timeout:g} s")
            time.sleep(0.001)
        answered = time.perf_counter() - started
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=30)
        if process.returncode != 0:
            raise BenchError(f"exited with {process.returncode} after SIGTERM:\n"
                             f"{(output + rest).decode(errors='replace')}")
        return {"listening_s": listening, "health_s": answered}
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def private_copy(directory: Path) -> Path:
    """A copy of the zipapp that matches the .sha256 build.sh wrote beside it, so a test run
    rebuilding dist/ meanwhile can neither pull it from under the bench nor hand it half a file."""
    copy = directory / ZIPAPP.name
    for _ in range(20):
        try:
            expected = ZIPAPP.with_name(ZIPAPP.name + ".sha256").read_text().split()[0]
            shutil.copy2(ZIPAPP, copy)
        except (OSError, IndexError):
            expected = ""
        if expected and hashlib.sha256(copy.read_bytes()).hexdigest() == expected:
            return copy
        time.sleep(0.5)  # build.sh is writing it
    raise BenchError(f"{ZIPAPP} does not match {ZIPAPP.name}.sha256 (is a build running? try --build)")


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"median": statistics.median(ordered), "min": ordered[0],
            "p90": ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))], "max": ordered[-1]}


def report(result: dict) -> str:
    rows = [("`python3 -c pass`", result["interpreter"]), ("pyz serve → \"listening on\"", result["listening"]),
            ("pyz serve → /health answers", result["health"])]
    lines = [
        f"# Cold start — {result['stamp']}",
        "",
        (f"{result['rounds']} rounds, {result['python']} (Python {result['python_version']}), "
         f"{result['zipapp']} ({result['zipapp_bytes'] // 1024} KiB, sha256 {result['zipapp_sha256'][:12]}…), "
         f"{result['machine']}"),
        "",
        "| what | median s | min s | p90 s | max s |",
        "|---|---|---|---|---|",
    ]
    for name, stats in rows:
        lines.append(f"| {name} | {stats['median']:.3f} | {stats['min']:.3f} | {stats['p90']:.3f} "
                     f"| {stats['max']:.3f} |")
    verdict = "met" if result["difference_s"] <= TARGET_S else "MISSED"
    lines += [
        "",
        f"- **difference of the medians: {result['difference_s']:.3f} s** (target ≤ {TARGET_S} s: {verdict})",
        f"- median of the per-round differences: {result['per_round_difference_median_s']:.3f} s",
        f"- first start (shiv unpacking into an empty SHIV_ROOT, not counted): {result['first_start_s']:.3f} s",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="measured rounds (default 20)")
    parser.add_argument("--python", default="python3",
                        help="interpreter for both commands (default: python3 on PATH, which build.sh builds for)")
    parser.add_argument("--build", action="store_true",
                        help="run build.sh first (it also runs when the zipapp is missing)")
    parser.add_argument("--start-timeout", type=float, default=30.0, help="seconds one start may take (default 30)")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="bound for the whole run (default 300)")
    parser.add_argument("--enforce", action="store_true", help=f"exit 2 when the difference exceeds {TARGET_S} s")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    # The interpreter binary itself: a launcher in front of it (a pyenv shim is a shell script)
    # would add its own start-up to both commands and hide what is being compared.
    python = subprocess.run([args.python, "-c", "import sys; print(sys.executable)"], capture_output=True,
                            text=True, check=True, timeout=60).stdout.strip()
    if python != args.python:
        print(f"cold_start: {args.python} runs {python}; timing that directly", file=sys.stderr)

    if args.build or not ZIPAPP.exists():
        subprocess.run(["bash", str(ROOT / "build.sh")], check=True, env={**os.environ, "PYTHON": python})
    run_started = time.monotonic()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory(prefix="agproxy-cold-") as scratch:
        env = {key: value for key, value in os.environ.items() if not key.startswith("AGPROXY_") and key != "SHIV_ROOT"}
        env.update(AGPROXY_HOST="127.0.0.1", AGPROXY_PORT="0", AGPROXY_DATA_DIR=str(Path(scratch) / "data"),
                   SHIV_ROOT=str(Path(scratch) / "shiv"))
        try:
            zipapp = private_copy(Path(scratch))
        except BenchError as exc:
            print(f"cold_start: {exc}", file=sys.stderr)
            return 1
        zipapp_bytes = zipapp.read_bytes()
        command = [python, str(zipapp), "serve"]
        try:
            first = time_daemon(command, env, args.start_timeout)["health_s"]  # unpacks into SHIV_ROOT
            time_interpreter(python, env)
            interpreter: list[float] = []
            daemon: list[dict[str, float]] = []
            for number in range(args.rounds):
                if time.monotonic() - run_started > args.max_seconds:
                    raise BenchError(f"--max-seconds {args.max_seconds:g} reached after {number} rounds")
                interpreter.append(time_interpreter(python, env))
                daemon.append(time_daemon(command, env, args.start_timeout))
        except BenchError as exc:
            print(f"cold_start: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130

    health = [sample["health_s"] for sample in daemon]
    version = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True, check=True).stdout.strip()
    result = {
        "stamp": stamp, "rounds": args.rounds, "python": python, "python_version": version,
        "zipapp": str(ZIPAPP.relative_to(ROOT)), "zipapp_bytes": len(zipapp_bytes),
        "zipapp_sha256": hashlib.sha256(zipapp_bytes).hexdigest(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "first_start_s": first,
        "interpreter": summary(interpreter), "listening": summary([s["listening_s"] for s in daemon]),
        "health": summary(health),
        "difference_s": statistics.median(health) - statistics.median(interpreter),
        "per_round_difference_median_s": statistics.median(h - i for h, i in zip(health, interpreter, strict=True)),
        "target_s": TARGET_S,
        "samples": {"interpreter_s": interpreter, "daemon": daemon},
    }
    text = report(result)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"cold-start-{stamp}.md").write_text(text)
    (RESULTS / f"cold-start-{stamp}.json").write_text(json.dumps(result, indent=1) + "\n")
    print(text, end="")
    print(f"written to bench/results/cold-start-{stamp}.md and .json")
    return 2 if args.enforce and result["difference_s"] > TARGET_S else 0


if __name__ == "__main__":
    sys.exit(main())
