#!/usr/bin/env python3
"""A bounded soak of `neuronlens serve` on loopback (Python stdlib only).

For DURATION seconds, at the same time:
  - normal clients (keep-alive) browse: info, a layer page, a neuron, an
    exact search, token lookups, and a probe now and then;
  - slow clients send half a request and wait (the server must answer 408
    or close within its request deadline);
  - hostile requests: huge heads, invalid UTF-8 in query parameters and in
    JSON bodies, deeply nested JSON bodies, garbage bytes.
Every hostile request must be answered (any status but 5xx) or end in a
closed connection; the normal clients must keep being answered. Prints a
summary: requests, statuses per kind, max/p50/p99 latency of the normal
requests. Exits 1 when a normal request failed or got a 5xx, or a hostile
one got a 5xx or hung past --hang-seconds.

  scripts/soak-serve.py --cli build/neuronlens --atlas ATLAS.db [--model M] [--duration 60]
  scripts/soak-serve.py --url http://127.0.0.1:8080 [--duration 60]
"""
import argparse
import collections
import http.client
import json
import random
import re
import socket
import subprocess
import sys
import threading
import time


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.statuses = collections.defaultdict(collections.Counter)  # kind -> status -> count
        self.latencies = []  # seconds, normal requests
        self.failures = []   # (kind, what)

    def add(self, kind, status, latency=None):
        with self.lock:
            self.statuses[kind][status] += 1
            if latency is not None:
                self.latencies.append(latency)

    def fail(self, kind, what):
        with self.lock:
            self.failures.append((kind, what))


NORMAL_GETS = [
    "/api/info",
    "/api/overview",
    "/api/layers/0/up?limit=20",
    "/api/layers/0/up?sort=entropy&limit=10",
    "/api/neurons/0/up/7",
    "/api/search?q=dog&limit=10",
    "/api/search?q=music&limit=10",
    "/api/tokens?q=do&limit=10",
    "/",
]


def normal_client(host, port, stop, tally, rng):
    conn = None
    while not stop.is_set():
        if rng.random() < 0.05:
            method, path = "POST", "/api/probe"
            body = json.dumps({"prompt": "The dog", "tokens": [" dog"]}).encode()
        else:
            method, path, body = "GET", rng.choice(NORMAL_GETS), None
        started = time.monotonic()
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=30)
            headers = {"Content-Type": "application/json"} if body else {}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            latency = time.monotonic() - started
            tally.add("normal", response.status, latency)
            if response.status >= 500 or (response.status >= 400 and response.status != 429):
                tally.fail("normal", f"{method} {path}: {response.status}")
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            # A keep-alive connection the server closed while idle is normal
            # for the first request after a pause: retry once on a new one.
            if conn is not None:
                conn.close()
                conn = None
            try:
                conn = http.client.HTTPConnection(host, port, timeout=30)
                conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
                response = conn.getresponse()
                response.read()
                tally.add("normal", response.status, time.monotonic() - started)
            except (OSError, http.client.HTTPException) as e2:
                tally.add("normal", "error")
                tally.fail("normal", f"{method} {path}: {e!r} then {e2!r}")
                conn = None


def raw_exchange(host, port, data, hang_seconds, pause_after=None):
    """Sends data (then waits pause_after seconds with the request unfinished,
    if given) and reads until the server closes. Returns (status, seconds);
    status is None when the server closed without a status line, 'hang' when
    it neither answered nor closed within hang_seconds."""
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=hang_seconds) as s:
        try:
            s.sendall(data)
        except OSError:
            pass  # the server may refuse a huge head before it is all sent
        received = b""
        s.settimeout(0.5)
        while time.monotonic() - started < hang_seconds:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not chunk:
                break
            received += chunk
        else:
            return "hang", time.monotonic() - started
    m = re.match(rb"HTTP/1\.[01] (\d{3})", received)
    return (int(m.group(1)) if m else None), time.monotonic() - started


def hostile_requests():
    """(kind, bytes) pairs: one of each per round."""
    nested = "[" * 20000 + "]" * 20000
    deep_object = '{"a":' * 5000 + "1" + "}" * 5000
    yield "huge-head", (b"GET /api/info HTTP/1.1\r\nHost: x\r\n" +
                        b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 1000) for i in range(200)) + b"\r\n")
    yield "huge-line", b"GET /api/info HTTP/1.1\r\nHost: x\r\nX-Long: " + b"h" * 100000 + b"\r\n\r\n"
    yield "huge-uri", b"GET /api/search?q=" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    for q in (b"%FF%FE", b"%C3%28", b"%ED%A0%80", b"\xff\xfe", b"dog%00cat"):
        yield "bad-utf8-query", b"GET /api/search?q=" + q + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        yield "bad-utf8-query", b"GET /api/tokens?q=" + q + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    for body in (b'{"prompt": "\xff\xfe", "tokens": [" dog"]}', b'{"prompt": "\xc3\x28"}',
                 b'{"text": "hi\xed\xa0\x80", "layer": 0, "index": 0}'):
        for path in (b"/api/probe", b"/api/generate", b"/api/activations"):
            yield "bad-utf8-json", post(path, body)
    for body in (nested.encode(), deep_object.encode()):
        for path in (b"/api/probe", b"/api/generate"):
            yield "deep-json", post(path, body)
    yield "garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) + b"\r\n\r\n"


def post(path, body):
    return (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def hostile_client(host, port, stop, tally, hang_seconds):
    while not stop.is_set():
        for kind, data in hostile_requests():
            if stop.is_set():
                return
            try:
                status, _ = raw_exchange(host, port, data, hang_seconds)
            except OSError as e:
                status = f"refused:{type(e).__name__}"
            tally.add(kind, status)
            if status == "hang" or (isinstance(status, int) and status >= 500) or str(status).startswith("refused"):
                tally.fail(kind, f"{data[:60]!r}: {status}")


def slow_client(host, port, stop, tally, hang_seconds, rng):
    halves = [
        b"GET /api/info HTTP/1.1\r\nHost: x\r\n",
        b"POST /api/probe HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n{\"prompt\": ",
        b"GE",
    ]
    while not stop.is_set():
        try:
            status, seconds = raw_exchange(host, port, rng.choice(halves), hang_seconds)
        except OSError as e:
            status, seconds = f"refused:{type(e).__name__}", 0
        tally.add("slow-half-request", status)
        with tally.lock:
            tally.statuses["slow-half-request-seconds"][round(seconds)] += 1
        if status == "hang" or str(status).startswith("refused"):
            tally.fail("slow-half-request", f"{status} after {seconds:.1f} s")


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def start_server(args):
    command = [args.cli, "serve", args.atlas, "--port", "0", "--threads", str(args.threads)]
    command += ["--model", args.model] if args.model else []
    command += ["--no-model"] if args.no_model else []
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    m = re.search(r"http://([^:/]+):(\d+)/", line)
    if not m:
        server.kill()
        sys.exit(f"serve did not start: {line!r}")
    return server, m.group(1), int(m.group(2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cli", help="the neuronlens binary (starts its own server)")
    parser.add_argument("--atlas")
    parser.add_argument("--model")
    parser.add_argument("--no-model", action="store_true")
    parser.add_argument("--threads", type=int, default=8, help="the server's --threads")
    parser.add_argument("--url", help="an already running server instead")
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--normal", type=int, default=4, help="normal clients")
    parser.add_argument("--slow", type=int, default=40, help="slow clients")
    parser.add_argument("--hostile", type=int, default=2, help="hostile clients")
    parser.add_argument("--hang-seconds", type=float, default=15)
    args = parser.parse_args()

    server = None
    if args.url:
        m = re.match(r"http://([^:/]+):(\d+)", args.url)
        host, port = m.group(1), int(m.group(2))
    else:
        if not (args.cli and args.atlas):
            parser.error("give --url, or --cli and --atlas")
        server, host, port = start_server(args)

    tally, stop, rng = Tally(), threading.Event(), random.Random(1)
    threads = [threading.Thread(target=normal_client, args=(host, port, stop, tally, random.Random(i)))
               for i in range(args.normal)]
    threads += [threading.Thread(target=slow_client, args=(host, port, stop, tally, args.hang_seconds, random.Random(100 + i)))
                for i in range(args.slow)]
    threads += [threading.Thread(target=hostile_client, args=(host, port, stop, tally, args.hang_seconds))
                for _ in range(args.hostile)]
    started = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(args.duration)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started

    # Still serving afterwards?
    alive = False
    try:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request("GET", "/api/info")
        alive = conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        pass

    total = sum(sum(c.values()) for k, c in tally.statuses.items() if not k.endswith("-seconds"))
    lat = tally.latencies
    print(f"soak: {elapsed:.0f} s, {args.normal} normal + {args.slow} slow + {args.hostile} hostile clients, "
          f"{total} requests")
    for kind in sorted(tally.statuses):
        counts = ", ".join(f"{s}: {n}" for s, n in sorted(tally.statuses[kind].items(), key=lambda x: str(x[0])))
        print(f"  {kind:28s} {counts}")
    print(f"  normal latency: n={len(lat)}, p50 {percentile(lat, 50) * 1000:.1f} ms, "
          f"p99 {percentile(lat, 99) * 1000:.1f} ms, max {max(lat, default=float('nan')) * 1000:.1f} ms")
    print(f"  still serving afterwards: {'yes' if alive else 'NO'}")
    for kind, what in tally.failures[:20]:
        print(f"  FAILED {kind}: {what}")
    if server is not None:
        server.terminate()
        server.wait(timeout=30)
    ok = alive and not tally.failures
    print("soak:", "ok" if ok else f"{len(tally.failures)} failures")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
