"""Benchmarks for SwiftChat, run side by side with a baseline in one run.

    python bench_swiftchat.py                 # every load, a table
    python bench_swiftchat.py --only login-storm --rounds 3 --json

Each load starts its own servers as separate processes (so the load client
does not share a GIL with the server), runs the SwiftChat side and the
baseline side interleaved (A, B, A, B, ...) and reports medians. The machine
may be shared and noisy: read ratios and medians, not single numbers.

This is a measuring tool, not a test: nothing here is run by pytest.
"""

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


# -- servers ------------------------------------------------------------------------

class SwiftChatProcess:
    """`python swiftchat.py` on free ports with a throwaway database."""

    def __init__(self, *args):
        self.folder = tempfile.TemporaryDirectory()
        command = [sys.executable, os.path.join(HERE, "swiftchat.py"), "--http-port", "0",
                   "--ws-port", "0", "--log-level", "WARNING",
                   "--db", os.path.join(self.folder.name, "bench.db"), *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True)
        line = self.process.stdout.readline()
        match = re.search(r":(\d+), WebSocket on ws://[^:]+:(\d+)", line)
        if not match:
            self.stop()
            raise RuntimeError(f"SwiftChat did not start: {line!r}")
        self.http_port, self.ws_port = int(match[1]), int(match[2])

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=15)
        self.folder.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


def call(connection, method, path, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    connection.request(method, path, body=json.dumps(body) if body is not None else None,
                       headers=headers)
    reply = connection.getresponse()
    return reply.status, reply.read()


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- loads --------------------------------------------------------------------------

def probe_health(port, seconds):
    """GET /health one after another on one keep-alive connection; latencies in ms."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        status, _ = call(connection, "GET", "/api/v1/health")
        latencies.append((time.perf_counter() - started) * 1000)
        assert status == 200
        time.sleep(0.005)  # a polite prober: about 150 probes a second
    connection.close()
    return latencies


def login_storm(port, logins, stop):
    """Keep `logins` logins in flight until stop is set; return how many finished."""
    finished = []

    def keep_logging_in():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while not stop.is_set():
            status, _ = call(connection, "POST", "/api/v1/auth/login",
                             {"username": "stormy", "password": "correct horse battery"})
            assert status == 200, status
            finished.append(1)

    threads = [threading.Thread(target=keep_logging_in) for _ in range(logins)]
    for thread in threads:
        thread.start()
    return threads, finished


def bench_login_storm(rounds, seconds=4.0, logins=20):
    """/health p99 while 20 logins at the default 600,000 rounds run, against none."""
    quiet, storm, done = [], [], 0
    with SwiftChatProcess() as server:  # default --pbkdf2-iterations: 600,000
        connection = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=60)
        call(connection, "POST", "/api/v1/auth/register",
             {"username": "stormy", "password": "correct horse battery"})
        for _ in range(rounds):
            quiet.append(percentile(probe_health(server.http_port, seconds), 0.99))
            stop = threading.Event()
            threads, finished = login_storm(server.http_port, logins, stop)
            storm.append(percentile(probe_health(server.http_port, seconds), 0.99))
            stop.set()
            for thread in threads:
                thread.join()
            done += len(finished)
    return [{
        "load": f"/health p99 ms during {logins} concurrent logins (600,000 rounds)",
        "swiftchat": statistics.median(storm),
        "baseline": statistics.median(quiet),
        "baseline_is": "the same server with no logins",
        "target": "< 100 ms",
        "met": statistics.median(storm) < 100,
        "logins_per_second": round(done / (rounds * seconds), 1),
    }]


LOADS = {
    "login-storm": bench_login_storm,
}


# -- report -------------------------------------------------------------------------

def print_table(rows):
    print(f"{'load':<62} {'SwiftChat':>10} {'baseline':>10} {'ratio':>7}  target")
    for row in rows:
        ratio = row["swiftchat"] / row["baseline"] if row["baseline"] else float("nan")
        met = "met" if row["met"] else "NOT MET"
        print(f"{row['load']:<62} {row['swiftchat']:>10.1f} {row['baseline']:>10.1f} "
              f"{ratio:>7.2f}  {row['target']} ({met})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(LOADS), action="append",
                        help="run only this load (repeatable)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved pairs per load (default 3)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    rows = []
    for name in args.only or LOADS:
        rows += LOADS[name](args.rounds)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows)
    return 0 if all(row["met"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
