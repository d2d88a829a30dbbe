#!/usr/bin/env python3
"""Small asyncio HTTP/1.1 load generator for the proxy benchmarks (stdlib; uvloop if present).

(Started from the team harness and adapted for this project; it is standalone: nothing here
reads anything outside this repository.)

Sends N requests at concurrency C (C keep-alive connections, one request in flight on each)
to one loopback URL, reads every response in full, and reports:
  requests/s, latency p50/p90/p99/max (send -> last body byte),
  TTFB p50/p99 (send -> first response byte, i.e. the status line),
  first-data p50/p99 (send -> first body byte; differs from TTFB for servers that flush
  headers before the upstream answered), bytes received, SSE data events per response,
  errors (by kind), and for each --pid: RSS before/peak(sampled)/after, VmHWM, and the CPU
  seconds the process used during the measured phase (CPU-ms per request is the least
  noisy overhead number on a shared 2-core box).

Bounded: at most N measured (+ --warmup) requests, at most --max-seconds wall time, each
request at most --timeout seconds.  Only loopback targets are accepted.

Examples
  load.py --url http://127.0.0.1:8080/v1/messages --preset anthropic --stream -n 1000 -c 16 --pid 1234
  load.py --url http://127.0.0.1:8701/v1internal:streamGenerateContent?alt=sse --preset cloudcode --stream
  load.py --url ... --body @req.json -H 'x-api-key: k' --expect message_stop
  load.py --url http://127.0.0.1:9045/health --method GET --expect '"status"' -n 20000 -c 64 --json -

GET and HEAD send no body (and no content-type/content-length) unless --body is given; without
--preset they default to no --expect marker.  POST without --body/--preset keeps the old
default (the anthropic preset).  `--json -` prints the JSON result line on stdout.
"""
from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import resource
import socket
import ssl
import sys
import time
from urllib.parse import urlsplit

perf = time.perf_counter

PROMPT = "Say hello."


def preset_body(preset: str, model: str, stream: bool, max_tokens: int) -> tuple[bytes, str, dict]:
    """(body, default --expect marker, extra headers) for a named request shape."""
    if preset == "anthropic":
        body = {"model": model, "max_tokens": max_tokens, "stream": stream,
                "messages": [{"role": "user", "content": PROMPT}]}
        return (json.dumps(body).encode(), "message_stop" if stream else '"end_turn"',
                {"anthropic-version": "2023-06-01", "x-api-key": "bench-key"})
    if preset == "openai":
        body = {"model": model, "max_tokens": max_tokens, "stream": stream,
                "messages": [{"role": "user", "content": PROMPT}]}
        return (json.dumps(body).encode(), "[DONE]" if stream else '"finish_reason"',
                {"authorization": "Bearer bench-key"})
    if preset == "cloudcode":  # the proxies' upstream request shape (what the fake receives)
        body = {"project": "fake-project", "model": model, "userAgent": "antigravity",
                "requestId": "agent-bench", "requestType": "agent",
                "request": {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
                            "generationConfig": {"maxOutputTokens": max_tokens},
                            "sessionId": "bench-session"}}
        return (json.dumps(body).encode(), '"STOP"',
                {"authorization": "Bearer ya29.fake", "user-agent": "antigravity/1.11.5 linux/amd64"})
    if preset == "gemini":  # Gemini API shape (generateContent / streamGenerateContent)
        body = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
                "generationConfig": {"maxOutputTokens": max_tokens}}
        return json.dumps(body).encode(), '"STOP"', {"x-goog-api-key": "bench-key"}
    raise SystemExit(f"unknown preset {preset}")


class Conn(asyncio.Protocol):
    """One keep-alive client connection; one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, head_only: bool = False) -> None:
        self.loop = loop
        self.head_only = head_only  # HEAD requests: responses never carry a body
        self.transport = None
        self.alive = False
        self.waiter: asyncio.Future | None = None
        self._reset()

    def _reset(self) -> None:
        self.buf = bytearray()
        self.pos = 0
        self.head_done = False
        self.status = 0
        self.clen = -1
        self.chunked = False
        self.close_after = False
        self.body_parts: list[bytes] = []
        self.body_len = 0
        self.t0 = 0.0
        self.t_first = 0.0
        self.t_data = 0.0
        self.raw_bytes = 0

    # protocol callbacks
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.alive = True
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def connection_lost(self, exc) -> None:
        self.alive = False
        w = self.waiter
        if w is not None and not w.done():
            if self.head_done and self.clen < 0 and not self.chunked:
                w.set_result(True)  # body delimited by close
            else:
                w.set_exception(ConnectionError("connection closed mid-response"))

    def data_received(self, data: bytes) -> None:
        now = perf()
        if not self.t_first:
            self.t_first = now
        self.raw_bytes += len(data)
        self.buf += data
        try:
            self._parse(now)
        except Exception as e:  # malformed response
            w = self.waiter
            if w is not None and not w.done():
                w.set_exception(e)
            self.transport.close()

    def send(self, req: bytes) -> asyncio.Future:
        self._reset()
        self.waiter = self.loop.create_future()
        self.t0 = perf()
        self.transport.write(req)
        return self.waiter

    def expire(self, now: float, timeout: float) -> None:
        """Called by the runner's watchdog (one timer for all connections, not one per request)."""
        w = self.waiter
        if w is not None and not w.done() and self.t0 and now - self.t0 > timeout:
            w.set_exception(asyncio.TimeoutError())
            if self.transport is not None:
                self.transport.close()

    # response parsing
    def _parse(self, now: float) -> None:
        buf = self.buf
        if not self.head_done:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(buf[:end]).split(b"\r\n")
            parts = lines[0].split(b" ", 2)
            self.status = int(parts[1])
            if 100 <= self.status < 200:  # interim response: drop it
                del buf[:end + 4]
                return self._parse(now)
            for line in lines[1:]:
                k, _, v = line.partition(b":")
                k = k.strip().lower()
                if k == b"content-length":
                    self.clen = int(v.strip())
                elif k == b"transfer-encoding" and b"chunked" in v.lower():
                    self.chunked = True
                elif k == b"connection" and v.strip().lower() == b"close":
                    self.close_after = True
            if parts[0] == b"HTTP/1.0":
                self.close_after = True
            self.head_done = True
            self.pos = end + 4
            if self.head_only or self.status in (204, 304) or (self.clen == 0 and not self.chunked):
                del buf[:self.pos]
                self.pos = 0
                return self._finish()
        if len(buf) > self.pos and not self.t_data:
            self.t_data = now
        if self.chunked:
            pos = self.pos
            while True:
                nl = buf.find(b"\r\n", pos)
                if nl < 0:
                    break
                size = int(bytes(buf[pos:nl]).split(b";", 1)[0], 16)
                if size == 0:
                    tend = buf.find(b"\r\n", nl + 2)
                    if tend < 0:
                        break
                    if tend != nl + 2:  # trailers: wait for the blank line
                        tend = buf.find(b"\r\n\r\n", nl)
                        if tend < 0:
                            break
                    self.pos = tend
                    return self._finish()
                if len(buf) < nl + 2 + size + 2:
                    break
                self.body_parts.append(bytes(buf[nl + 2:nl + 2 + size]))
                self.body_len += size
                pos = nl + 2 + size + 2
            if pos > 65536:  # compact occasionally
                del buf[:pos]
                pos = 0
            self.pos = pos
        elif self.clen >= 0:
            if len(buf) - self.pos >= self.clen:
                self.body_parts.append(bytes(buf[self.pos:self.pos + self.clen]))
                self.body_len = self.clen
                return self._finish()
        else:
            # read-until-close body: keep it all
            if len(buf) > self.pos:
                self.body_parts.append(bytes(buf[self.pos:]))
                self.body_len += len(buf) - self.pos
                del buf[:]
                self.pos = 0

    def _finish(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(True)
        if self.close_after and self.transport is not None:
            self.transport.close()


def read_proc(pid: int) -> dict:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0])  # kB
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
        fields = st[st.rfind(")") + 2:].split()
        tck = os.sysconf("SC_CLK_TCK")
        out["cpu_s"] = (int(fields[11]) + int(fields[12])) / tck
    except (OSError, ValueError, IndexError):
        pass
    return out


def pctl(sorted_vals: list[float], q: float) -> float:
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, int(round(q / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


class Runner:
    def __init__(self, args: argparse.Namespace, req: bytes, expect: bytes | None) -> None:
        self.a = args
        self.req = req
        self.expect = expect
        u = urlsplit(args.url)
        self.host = u.hostname
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.ssl = None
        if u.scheme == "https":
            self.ssl = ssl.create_default_context(cafile=args.cafile) if args.cafile else ssl.create_default_context()
        self.lat: list[float] = []
        self.ttfb: list[float] = []
        self.tdata: list[float] = []
        self.bytes_body = 0
        self.bytes_raw = 0
        self.events = 0
        self.errors: dict[str, int] = {}
        self.status_counts: dict[int, int] = {}
        self.example_error = ""
        self.next_i = 0
        self.total = 0
        self.deadline = 0.0
        self.connections_opened = 0
        self.conns: set[Conn] = set()
        self.head_only = args.method.upper() == "HEAD"

    def _err(self, kind: str, detail: str = "") -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if not self.example_error:
            self.example_error = f"{kind}: {detail}"[:300]

    async def _connect(self, loop) -> Conn:
        _, proto = await asyncio.wait_for(
            loop.create_connection(lambda: Conn(loop, self.head_only), self.host, self.port, ssl=self.ssl,
                                   server_hostname=self.a.sni or (self.host if self.ssl else None)),
            timeout=self.a.timeout)
        self.connections_opened += 1
        self.conns.add(proto)
        return proto

    async def watchdog(self, stop: asyncio.Event) -> None:
        """Per-request timeouts: a single periodic check instead of a timer per request."""
        every = max(0.05, min(1.0, self.a.timeout / 4))
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=every)
            except asyncio.TimeoutError:
                pass
            now = perf()
            for c in list(self.conns):
                if c.alive:
                    c.expire(now, self.a.timeout)
                else:
                    self.conns.discard(c)

    async def worker(self, record: bool) -> None:
        loop = asyncio.get_running_loop()
        conn: Conn | None = None
        while self.next_i < self.total and perf() < self.deadline:
            self.next_i += 1
            try:
                if conn is None or not conn.alive or self.a.no_keepalive:
                    if conn is not None and conn.transport is not None:
                        conn.transport.close()
                    conn = await self._connect(loop)
                await conn.send(self.req)
            except asyncio.TimeoutError:
                self._err("timeout")
                if conn is not None and conn.transport is not None:
                    conn.transport.close()
                conn = None
                continue
            except (OSError, ConnectionError, ValueError) as e:
                self._err(type(e).__name__, str(e))
                if conn is not None and conn.transport is not None:
                    conn.transport.close()
                conn = None
                continue
            t_end = perf()
            if not record:
                continue
            st = conn.status
            self.status_counts[st] = self.status_counts.get(st, 0) + 1
            body = b"".join(conn.body_parts)
            if not (200 <= st < 300):
                self._err(f"http_{st}", body[:200].decode(errors="replace"))
                continue
            if self.expect is not None and self.expect not in body:
                self._err("missing_expect", body[-200:].decode(errors="replace"))
                continue
            self.lat.append(t_end - conn.t0)
            self.ttfb.append(conn.t_first - conn.t0)
            self.tdata.append((conn.t_data or t_end) - conn.t0)
            self.bytes_body += conn.body_len
            self.bytes_raw += conn.raw_bytes
            self.events += body.count(b"data:")
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    async def phase(self, n: int, record: bool) -> float:
        self.next_i = 0
        self.total = n
        stop = asyncio.Event()
        dog = asyncio.ensure_future(self.watchdog(stop))
        t0 = perf()
        try:
            await asyncio.gather(*(self.worker(record) for _ in range(self.a.concurrency)))
            return perf() - t0
        finally:
            stop.set()
            await dog


async def sample_rss(pids: list[int], peaks: dict[int, int], stop: asyncio.Event, every: float) -> None:
    while not stop.is_set():
        for pid in pids:
            r = read_proc(pid).get("VmRSS")
            if r and r > peaks.get(pid, 0):
                peaks[pid] = r
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
        except asyncio.TimeoutError:
            pass


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        infos = {ai[4][0] for ai in socket.getaddrinfo(host, None)}
        if all(ipaddress.ip_address(i).is_loopback for i in infos):
            return
        raise SystemExit(f"load.py: {host} does not resolve to loopback only; refusing")
    if not ip.is_loopback:
        raise SystemExit(f"load.py: {host} is not a loopback address; refusing")


async def amain(a: argparse.Namespace) -> dict:
    check_loopback(a.url)
    method = a.method.upper()
    bodyless = method in ("GET", "HEAD")
    body: bytes | None = None
    expect, extra = None, {}
    if a.body:
        body = open(a.body[1:], "rb").read() if a.body.startswith("@") else a.body.encode()
        if a.preset:
            _, expect, extra = preset_body(a.preset, a.model, a.stream, a.max_tokens)
    elif a.preset or not bodyless:
        body, expect, extra = preset_body(a.preset or "anthropic", a.model, a.stream, a.max_tokens)
        if bodyless:
            body = None  # a preset on GET/HEAD only contributes its headers and --expect marker
    if a.expect is not None:
        expect = a.expect or None
    u = urlsplit(a.url)
    path = (u.path or "/") + (("?" + u.query) if u.query else "")
    headers = {"host": u.netloc, "accept": "text/event-stream" if a.stream else "application/json",
               "user-agent": "agproxy-bench-load/1"}
    if body is not None:
        headers["content-type"] = "application/json"
    headers.update({k.lower(): v for k, v in extra.items()})
    for h in a.header:
        k, _, v = h.partition(":")
        headers[k.strip().lower()] = v.strip()
    if body is not None:
        headers["content-length"] = str(len(body))
    if a.no_keepalive:
        headers["connection"] = "close"
    req = (f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
           + "\r\n").encode() + (body or b"")

    r = Runner(a, req, expect.encode() if isinstance(expect, str) else expect)
    r.deadline = perf() + a.max_seconds
    pids = a.pid or []
    before = {p: read_proc(p) for p in pids}
    if a.warmup:
        await r.phase(a.warmup, record=False)
        r.errors.clear()
        r.example_error = ""
    mid = {p: read_proc(p) for p in pids}
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    peaks: dict[int, int] = {}
    stop = asyncio.Event()
    sampler = asyncio.ensure_future(sample_rss(pids, peaks, stop, a.sample_every)) if pids else None
    wall = await r.phase(a.requests, record=True)
    stop.set()
    if sampler:
        await sampler
    after = {p: read_proc(p) for p in pids}
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)

    lat = sorted(r.lat)
    ttfb = sorted(r.ttfb)
    tdata = sorted(r.tdata)
    ok = len(lat)
    ms = lambda v: round(v * 1000, 3)
    res = {
        "label": a.label, "tag": a.tag, "url": a.url, "method": method, "preset": a.preset, "stream": a.stream,
        "concurrency": a.concurrency, "requests": a.requests, "warmup": a.warmup,
        "ok": ok, "errors": sum(r.errors.values()), "error_kinds": r.errors,
        "example_error": r.example_error, "status_counts": r.status_counts,
        "wall_s": round(wall, 4), "rps": round(ok / wall, 2) if wall > 0 else 0.0,
        "lat_ms": {"p50": ms(pctl(lat, 50)), "p90": ms(pctl(lat, 90)), "p99": ms(pctl(lat, 99)),
                   "max": ms(lat[-1]) if lat else None, "mean": ms(sum(lat) / ok) if ok else None},
        "ttfb_ms": {"p50": ms(pctl(ttfb, 50)), "p99": ms(pctl(ttfb, 99))},
        "first_data_ms": {"p50": ms(pctl(tdata, 50)), "p99": ms(pctl(tdata, 99))},
        "body_bytes": r.bytes_body, "raw_bytes": r.bytes_raw,
        "body_bytes_per_resp": round(r.bytes_body / ok, 1) if ok else 0,
        "sse_events_per_resp": round(r.events / ok, 1) if ok else 0,
        "connections_opened": r.connections_opened,
        # the load generator's own CPU during the measured phase; util near 1.0 means the
        # client (one core) may be the bottleneck rather than the server under test
        "client_cpu_s": round(client_cpu, 3),
        "client_cpu_util": round(client_cpu / wall, 3) if wall > 0 else None,
        "hit_time_limit": perf() >= r.deadline,
        "procs": {},
    }
    for p in pids:
        b, m, e = before.get(p, {}), mid.get(p, {}), after.get(p, {})
        cpu = (e.get("cpu_s", 0) - m.get("cpu_s", 0)) if "cpu_s" in e and "cpu_s" in m else None
        res["procs"][str(p)] = {
            "rss_before_kb": m.get("VmRSS"), "rss_peak_kb": max(peaks.get(p, 0), e.get("VmRSS", 0) or 0) or None,
            "rss_after_kb": e.get("VmRSS"), "hwm_kb": e.get("VmHWM"), "rss_start_kb": b.get("VmRSS"),
            "cpu_s": round(cpu, 3) if cpu is not None else None,
            "cpu_ms_per_req": round(cpu * 1000 / ok, 3) if (cpu is not None and ok) else None,
        }
    return res


def human(res: dict) -> str:
    s = (f"[{res['label'] or res['url']}] stream={res['stream']} c={res['concurrency']} ok={res['ok']} "
         f"err={res['errors']} rps={res['rps']} lat p50/p90/p99={res['lat_ms']['p50']}/"
         f"{res['lat_ms']['p90']}/{res['lat_ms']['p99']} ms ttfb p50/p99={res['ttfb_ms']['p50']}/"
         f"{res['ttfb_ms']['p99']} ms first-data p50/p99={res['first_data_ms']['p50']}/"
         f"{res['first_data_ms']['p99']} ms body={res['body_bytes_per_resp']}B events={res['sse_events_per_resp']}")
    for p, d in res["procs"].items():
        s += (f" | pid {p}: rss {d['rss_before_kb']}->{d['rss_peak_kb']} kB (hwm {d['hwm_kb']}) "
              f"cpu {d['cpu_ms_per_req']} ms/req")
    s += f" | client cpu util {res['client_cpu_util']}"
    if res["errors"]:
        s += f" | errors {res['error_kinds']} e.g. {res['example_error']!r}"
    return s


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="loopback HTTP/1.1 load generator for proxy benchmarks")
    ap.add_argument("--url", required=True)
    ap.add_argument("-n", "--requests", type=int, default=500)
    ap.add_argument("-c", "--concurrency", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=50, help="unmeasured requests first")
    ap.add_argument("--preset", choices=["anthropic", "openai", "cloudcode", "gemini"], default=None)
    ap.add_argument("--model", default="claude-sonnet-4-5")
    ap.add_argument("--max-tokens", type=int, default=1024)
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--body", default="", help="JSON body, or @file")
    ap.add_argument("-H", "--header", action="append", default=[])
    ap.add_argument("--method", default="POST", help="GET/HEAD send no body unless --body is given")
    ap.add_argument("--expect", default=None, help="substring every good body must contain ('' = none)")
    ap.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    ap.add_argument("--max-seconds", type=float, default=300.0, help="whole run bound, seconds")
    ap.add_argument("--no-keepalive", action="store_true")
    ap.add_argument("--cafile", default=None)
    ap.add_argument("--sni", default=None)
    ap.add_argument("--pid", type=int, action="append", help="process to watch (repeatable)")
    ap.add_argument("--sample-every", type=float, default=0.05)
    ap.add_argument("--label", default="")
    ap.add_argument("--tag", default="", help="free-form scenario tag stored in the JSON result")
    ap.add_argument("--json", default="", help="append the result as one JSON line to this file ('-' = stdout)")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--no-uvloop", action="store_true")
    return ap.parse_args(argv)


def main() -> None:
    a = parse_args()
    if a.requests > 1_000_000 or a.concurrency > 10_000:
        raise SystemExit("load.py: bounds are 1e6 requests, 1e4 connections")
    if not a.no_uvloop:
        try:
            import uvloop
            uvloop.install()
        except ImportError:
            pass
    res = asyncio.run(amain(a))
    if a.json == "-":
        sys.stdout.write(json.dumps(res) + "\n")
        sys.stdout.flush()
    elif a.json:
        with open(a.json, "a") as f:
            f.write(json.dumps(res) + "\n")
    if not a.quiet:
        print(human(res), flush=True)


if __name__ == "__main__":
    main()
