#!/usr/bin/env python3
"""Server benchmark: the daemon's `GET /health` against the same handler under uvicorn (h11).

One process tree, one run: this driver starts both servers as subprocesses on free loopback
ports, waits until both answer /health, then runs bench/load.py (a separate process) against
each of them in ALTERNATING rounds (daemon, uvicorn, daemon, uvicorn, ...) so that drift on a
shared 2-core machine hits both alike.  Each round is N keep-alive requests at concurrency C
after an unmeasured warm-up.  Two configurations, each with freshly started servers:

  access log off   daemon AGPROXY_ACCESS_LOG=off          uvicorn --no-access-log --log-level warning
  access log on    daemon default (on, log level info)    uvicorn default access log, --log-level info
                   (uvicorn's access lines are INFO: with --log-level warning they would be
                   filtered out and the "on" case would silently be "off")

Server stdout/stderr always go to files under bench/results/ (never the terminal).  Printed at
the end and written to bench/results/server-<stamp>.md (+ .jsonl with every load.py result):
median req/s per server, the ratio daemon/uvicorn (the acceptance number, target >= 1.0),
latency p50/p99, and CPU-ms per request of each server process.

    cd /work/main && .venv/bin/python bench/server_bench.py            # full run
    .venv/bin/python bench/server_bench.py --quick                     # smoke run, a few seconds

Only 127.0.0.1, bounded: at most --rounds x (--requests + warm-up) requests per server and
configuration, and --max-seconds of wall time in total; both servers are stopped (SIGTERM,
then SIGKILL) in a `finally`, also on Ctrl-C / SIGTERM, and get SIGTERM from the kernel if
this driver dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LOAD = BENCH / "load.py"
DAEMON, UVICORN = "daemon", "uvicorn-h11"
SERVERS = (DAEMON, UVICORN)
CONFIGS = ("off", "on")  # access log
LOG_TRIM_BYTES = 1 << 20  # server logs larger than this are cut to their last 64 KiB afterwards


# --- processes -------------------------------------------------------------------------


def _die_with_parent() -> None:
    """preexec_fn: the kernel sends SIGTERM to the child if this driver dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_health(port: int, timeout: float = 1.0) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/health")
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@dataclass
class Server:
    name: str
    cmd: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    proc: subprocess.Popen | None = None
    log_file: object = None
    exit_code: int | None = None
    log_lines: int | None = None
    log_bytes: int | None = None
    probe: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, cpus: set[int] | None) -> None:
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.cmd, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=self.log_file,
            stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
        )
        if cpus:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self.proc.pid, cpus)

    def wait_ready(self, deadline: float) -> None:
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before answering; "
                                   f"see {self.log_path}:\n{tail(self.log_path)}")
            try:
                status, headers, body = get_health(self.port)
                if status == 200 and b'"status"' in body:
                    self.probe = {"status": status, "body_bytes": len(body), "headers": sorted(headers),
                                  "body": body.decode(errors="replace")}
                    return
                last = f"HTTP {status} {body[:100]!r}"
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer /health on port {self.port} in time ({last}); "
                           f"see {self.log_path}")

    def stop(self, timeout: float = 5.0) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout)
        self.exit_code = proc.returncode
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None
        self._trim_log()

    def _trim_log(self) -> None:
        with contextlib.suppress(OSError):
            data = self.log_path.read_bytes()
            self.log_bytes, self.log_lines = len(data), data.count(b"\n")
            if len(data) > LOG_TRIM_BYTES:
                cut = data[-65536:]
                cut = cut[cut.find(b"\n") + 1:]
                self.log_path.write_bytes(b"[... %d bytes, %d lines before; trimmed by server_bench.py ...]\n"
                                          % (len(data) - len(cut), self.log_lines - cut.count(b"\n")) + cut)


def tail(path: Path, n: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    return ""


def server_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGPROXY_")}
    env.pop("PYTHONUNBUFFERED", None)  # both servers keep their default stdio buffering
    env.update(extra)
    return env


def make_servers(config: str, run_dir: Path, data_dir: str, stamp: str) -> list[Server]:
    py = sys.executable
    p1, p2 = free_port(), free_port()
    while p2 == p1:
        p2 = free_port()
    denv = {"AGPROXY_HOST": "127.0.0.1", "AGPROXY_PORT": str(p1), "AGPROXY_DATA_DIR": data_dir}
    ucmd = [py, "-m", "uvicorn", "bench.health_asgi:app", "--http", "h11", "--loop", "uvloop",
            "--host", "127.0.0.1", "--port", str(p2)]
    if config == "off":
        denv["AGPROXY_ACCESS_LOG"] = "off"
        ucmd += ["--log-level", "warning", "--no-access-log"]
    else:
        ucmd += ["--log-level", "info"]  # the access log is INFO; 'warning' would filter it out
    return [
        Server(DAEMON, [py, "-m", "daemon", "serve"], server_env(denv), p1,
               run_dir / f"server-{stamp}-log-{config}-daemon.log"),
        Server(UVICORN, ucmd, server_env({}), p2, run_dir / f"server-{stamp}-log-{config}-uvicorn.log"),
    ]


def run_load(server: Server, a: argparse.Namespace, deadline: float, label: str, tag: str,
             cpus: set[int] | None) -> dict | None:
    """One load.py round against one server; None when the time budget is spent."""
    left = deadline - time.monotonic()
    if left < 5:
        return None
    cmd = [sys.executable, str(LOAD), "--url", f"http://127.0.0.1:{server.port}/health",
           "--method", "GET", "--expect", '"status"', "-n", str(a.requests), "-c", str(a.concurrency),
           "--warmup", str(a.warmup), "--timeout", "10", "--max-seconds", f"{max(1.0, left - 3):.1f}",
           "--pid", str(server.pid), "--label", label, "--tag", tag, "--json", "-", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    if cpus:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(proc.pid, cpus)
    try:
        out, err = proc.communicate(timeout=left + 5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"load.py against {server.name} overran the time budget")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"load.py against {server.name} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return json.loads(out.decode().strip().splitlines()[-1])


# --- reporting -----------------------------------------------------------------------


def med(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def f(v, nd: int = 1) -> str:
    if v is None:
        return "–"
    return f"{v:,.{nd}f}" if isinstance(v, float) else str(v)


def summarize(results: list[dict], servers_meta: dict, a: argparse.Namespace) -> tuple[str, dict]:
    lines: list[str] = []
    verdict: dict = {}
    lines.append(f"### `GET /health`, keep-alive, concurrency {a.concurrency}, {a.rounds} alternating rounds "
                 f"x {a.requests:,} requests (+{a.warmup:,} warm-up) per server\n")
    lines.append("| access log | server | req/s (median) | req/s per round | p50 ms | p99 ms | "
                 "CPU ms/req (server) | resp bytes | errors | client CPU util |")
    lines.append("|---|---|---:|---|---:|---:|---:|---:|---:|---:|")
    ratio_rows = []
    for config in CONFIGS:
        by = {s: [r for r in results if r["config"] == config and r["server"] == s] for s in SERVERS}
        if not any(by.values()):
            continue
        stats = {}
        for s in SERVERS:
            rs = by[s]
            proc = [next(iter(r["procs"].values()), {}) for r in rs]
            st = {
                "rps": med([r["rps"] for r in rs]),
                "rounds": [r["rps"] for r in rs],
                "p50": med([r["lat_ms"]["p50"] for r in rs]),
                "p99": med([r["lat_ms"]["p99"] for r in rs]),
                "cpu": med([p.get("cpu_ms_per_req") for p in proc]),
                "resp": med([r["raw_bytes"] / r["ok"] for r in rs if r["ok"]]),
                "errors": sum(r["errors"] for r in rs),
                "client": med([r.get("client_cpu_util") for r in rs]),
                "hit_limit": any(r.get("hit_time_limit") for r in rs),
            }
            stats[s] = st
            lines.append(
                f"| {config} | {s} | {f(st['rps'], 0)} | {', '.join(f(x, 0) for x in st['rounds'])} | "
                f"{f(st['p50'], 2)} | {f(st['p99'], 2)} | {f(st['cpu'], 3)} | {f(st['resp'], 0)} | "
                f"{st['errors']}{' (time limit hit)' if st['hit_limit'] else ''} | {f(st['client'], 2)} |")
        d, u = stats[DAEMON], stats[UVICORN]
        ratio = d["rps"] / u["rps"] if d["rps"] and u["rps"] else None
        pairs = [x / y for x, y in zip(d["rounds"], u["rounds"]) if y]
        cpu_ratio = u["cpu"] / d["cpu"] if d["cpu"] and u["cpu"] else None
        best = max(d["rounds"]) / max(u["rounds"]) if d["rounds"] and u["rounds"] and max(u["rounds"]) else None
        verdict[config] = {"ratio": ratio, "round_ratios": pairs, "median_round_ratio": med(pairs),
                           "best_round_ratio": best, "cpu_ratio": cpu_ratio, "daemon": d, "uvicorn": u}
        ratio_rows.append(
            f"| {config} | **{f(ratio, 2)}x** | {f(med(pairs), 2)}x | {', '.join(f(x, 2) for x in pairs)} | {f(best, 2)}x | "
            f"{f(cpu_ratio, 2)}x | {'yes' if ratio is not None and ratio >= 1.0 else 'NO'} |")
    lines.append("")
    lines.append("| access log | req/s daemon / uvicorn-h11 (ratio of medians) | median of per-round ratios | "
                 "per-round ratios | best round / best round | CPU-ms/req uvicorn / daemon (>1: daemon cheaper) | "
                 ">= 1.0x (ratio of medians) |")
    lines.append("|---|---:|---:|---|---:|---:|---|")
    lines += ratio_rows
    lines.append("")
    for config in CONFIGS:
        meta = servers_meta.get(config)
        if not meta:
            continue
        parts = []
        for s in SERVERS:
            m = meta.get(s, {})
            parts.append(f"{s}: {m.get('log_lines')} log lines, exit {m.get('exit_code')}")
        lines.append(f"- access log {config}: " + "; ".join(parts))
    return "\n".join(lines) + "\n", verdict


def source_digest() -> str:
    """sha256 of daemon/**/*.py: which daemon code was measured (the tree may have no commit)."""
    h = hashlib.sha256()
    for p in sorted((ROOT / "daemon").rglob("*.py")):
        h.update(str(p.relative_to(ROOT)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(open("/proc/loadavg").read().split()[:3])
    return "?"


def env_info(a: argparse.Namespace) -> str:
    def ver(mod: str) -> str:
        try:
            return __import__(mod).__version__
        except Exception:
            try:
                from importlib.metadata import version

                return version(mod)
            except Exception:
                return "?"

    cpu = ""
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (f"python {platform.python_version()} ({sys.executable}); uvicorn {ver('uvicorn')}, h11 {ver('h11')}, "
            f"uvloop {ver('uvloop')}, orjson {ver('orjson')}; {os.cpu_count()} CPUs ({cpu or platform.machine()}); "
            f"{platform.system()} {platform.release()}; pinning: {'load.py on CPU 0, servers on CPU 1' if a.pin else 'off'}\n"
            f"daemon source digest (sha256 of daemon/**/*.py): {source_digest()}\n"
            f"command: `{' '.join([Path(sys.executable).name] + sys.argv)}`")


# --- main ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--requests", type=int, default=20000, help="measured requests per round (20000)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds per server and configuration (5)")
    ap.add_argument("-c", "--concurrency", type=int, default=64, help="keep-alive connections (64)")
    ap.add_argument("--warmup", type=int, default=None, help="unmeasured requests before each round "
                    "(default: max(500, requests/10))")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2000 requests, 2 rounds")
    ap.add_argument("--configs", default="off,on", help="access-log configurations to run (off,on)")
    ap.add_argument("--max-seconds", type=float, default=600.0, help="wall-time bound for the whole run (600)")
    ap.add_argument("--pin", action="store_true", help="pin load.py to CPU 0 and both servers to CPU 1")
    ap.add_argument("--results-dir", default=str(BENCH / "results"))
    a = ap.parse_args(argv)
    if a.quick:
        a.requests, a.rounds = min(a.requests, 2000), min(a.rounds, 2)
    if a.warmup is None:
        a.warmup = max(500, a.requests // 10) if not a.quick else 200
    a.configs = [c.strip() for c in a.configs.split(",") if c.strip()]
    if not set(a.configs) <= set(CONFIGS) or not a.configs:
        ap.error("--configs takes off, on or off,on")
    if not (1 <= a.requests <= 1_000_000 and 1 <= a.rounds <= 50 and 1 <= a.concurrency <= 1024):
        ap.error("bounds: 1..1e6 requests, 1..50 rounds, 1..1024 connections")
    if not 10 <= a.max_seconds <= 3600:
        ap.error("--max-seconds must be within 10..3600")
    return a


def _sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    # Ctrl-C must stop the run even when started from a shell that ignores SIGINT in
    # background jobs; SIGTERM and SIGHUP take the same way out (the finally blocks).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGHUP, _sigterm)
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        print("server_bench: uvicorn is not installed in this interpreter; "
              "pip install -r bench/requirements.txt", file=sys.stderr)
        return 2
    started = time.monotonic()
    deadline = started + a.max_seconds
    run_dir = Path(a.results_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    raw_path = run_dir / f"server-{stamp}.jsonl"
    md_path = run_dir / f"server-{stamp}.md"
    ncpu = os.cpu_count() or 1
    load_cpus = {0} if a.pin and ncpu >= 2 else None
    server_cpus = {1} if a.pin and ncpu >= 2 else None
    info = env_info(a)
    load_start = loadavg()
    print(info + f"\nload average at start: {load_start}", flush=True)

    results: list[dict] = []
    servers_meta: dict = {}
    incomplete = ""
    try:
        for config in a.configs:
            with tempfile.TemporaryDirectory(prefix="agproxy-bench-") as data_dir:
                servers = make_servers(config, run_dir, data_dir, stamp)
                try:
                    for s in servers:
                        s.start(server_cpus)
                    for s in servers:
                        s.wait_ready(min(deadline, time.monotonic() + 30))
                    probe = "; ".join(f"{s.name} :{s.port} pid {s.pid} body {s.probe['body_bytes']} B "
                                      f"headers {','.join(s.probe['headers'])}" for s in servers)
                    print(f"\n== access log {config}: {probe}", flush=True)
                    for rnd in range(1, a.rounds + 1):
                        for s in servers:  # alternating: daemon, uvicorn, daemon, uvicorn, ...
                            res = run_load(s, a, deadline, s.name, f"log-{config}", load_cpus)
                            if res is None:
                                raise TimeoutError(f"time budget (--max-seconds {a.max_seconds:g}) spent")
                            res.update(config=config, server=s.name, round=rnd, server_pid=s.pid)
                            results.append(res)
                            with open(raw_path, "a") as fh:
                                fh.write(json.dumps(res) + "\n")
                            proc = next(iter(res["procs"].values()), {})
                            print(f"  round {rnd} {s.name:11s} {res['rps']:>9,.0f} req/s  p50 {res['lat_ms']['p50']:.2f} ms"
                                  f"  p99 {res['lat_ms']['p99']:.2f} ms  cpu {proc.get('cpu_ms_per_req')} ms/req"
                                  f"  errors {res['errors']}  client-cpu {res.get('client_cpu_util')}", flush=True)
                            if res["errors"]:
                                print(f"    errors: {res['error_kinds']} e.g. {res['example_error']!r}", flush=True)
                finally:
                    for s in servers:
                        s.stop()
                    servers_meta[config] = {s.name: {"exit_code": s.exit_code, "log_lines": s.log_lines,
                                                     "log_bytes": s.log_bytes, "log": str(s.log_path),
                                                     "port": s.port, "probe": s.probe} for s in servers}
    except TimeoutError as exc:
        incomplete = str(exc)
    except KeyboardInterrupt:
        incomplete = "interrupted"
        print("\nserver_bench: interrupted; servers stopped", file=sys.stderr)
    except RuntimeError as exc:
        incomplete = str(exc)
        print(f"\nserver_bench: {exc}", file=sys.stderr)

    table, verdict = summarize(results, servers_meta, a)
    wall = time.monotonic() - started
    report = (f"# antigravity-proxy vs uvicorn --http h11: GET /health\n\n{time.strftime('%Y-%m-%d %H:%M:%S %Z')}, "
              f"{wall:.0f} s wall; load average at start {load_start}, at end {loadavg()} "
              f"(other work on the machine shows up here)\n\n{info}\n\n{table}")
    if incomplete:
        report += f"\n**INCOMPLETE:** {incomplete}\n"
    report += (f"\nraw load.py results: `{raw_path}`\n")
    md_path.write_text(report)
    with open(raw_path, "a") as fh:
        fh.write(json.dumps({"summary": verdict, "servers": servers_meta, "incomplete": incomplete,
                             "args": {k: v for k, v in vars(a).items()}, "wall_s": round(wall, 1)},
                            default=str) + "\n")
    print("\n" + table + f"load average at start {load_start}, at end {loadavg()}")
    print(f"report: {md_path}\nraw:    {raw_path}")
    if incomplete:
        print(f"INCOMPLETE: {incomplete}", file=sys.stderr)
        return 130 if incomplete == "interrupted" else 1
    errors = sum(r["errors"] for r in results)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
