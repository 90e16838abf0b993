"""Benchmarks for SwiftChat, side by side with a bare baseline, in one run.

    python bench_swiftchat.py                    # every load, 3 interleaved pairs each
    python bench_swiftchat.py --only rest --only ws-fanout --rounds 5
    python bench_swiftchat.py --json
    python bench_swiftchat.py --only ws-fixed --compare-ref 4735899   # and beside an older release

The baseline is the same process layout with nothing on top: a bare
``ThreadingHTTPServer`` answering /health, and a bare ``websockets`` server
on an event loop in a thread that relays each message to its room, with no
auth, no database and no checks (``python bench_swiftchat.py
--baseline-server`` runs it alone). It logs nothing; one more row compares
with http.server as it comes, writing a line per request to stderr. Each
server runs in a process of its own, and the load clients in this one, so
that neither shares a GIL with a server; the WebSocket rows say how busy
that one client process was, since near 100% it, not the server, is the
limit. Loads run interleaved (SwiftChat, baseline, SwiftChat, ...), and
the table shows medians, and the median of the per-pair ratios.

SwiftChat runs with its defaults (INFO access log included) except
--ws-rate 0, --rest-rate 0, --registrations-per-minute 0, --rooms-per-hour 0
and --max-ws-unauthenticated 0, since the load comes from one address far
faster than people type, and --pbkdf2-iterations 1000 to set up
thousands of users quickly (the login storm uses the default 600,000).

With --compare-ref REF, the loads that an older release also serves run a
second time with that release (a git ref, checked out into a temporary
folder) in the baseline's place, interleaved with this one the same way:
those rows' ratio is this tree against that release, measured side by side.

This is a measuring tool, not a test: nothing here is run by pytest.
"""

import argparse
import asyncio
import functools
import http.client
import http.server
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
# A 200 KB "photo of the whiteboard": a PNG's header (so SwiftChat serves it
# as an image) and padding.
BENCH_IMAGE = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x05\x00\x00\x00\x02\xd0"
               b"\x08\x02\x00\x00\x00" + b"\x00" * 200_000)
TICKS = os.sysconf("SC_CLK_TCK")


# -- the baseline ------------------------------------------------------------------

class BareHandler(http.server.BaseHTTPRequestHandler):
    """http.server as it comes, plus keep-alive: the floor SwiftChat's REST stands on."""

    protocol_version = "HTTP/1.1"
    # Without it the body's write waits ~40 ms for the client's delayed ACK
    # of the headers' write, and the "floor" would be 200 requests a second.
    disable_nagle_algorithm = True

    def do_GET(self):
        if self.path == "/file":  # an image held in memory: the floor of serving a file
            body, content_type = BENCH_IMAGE, "image/png"
        else:
            body, content_type = json.dumps({
                "success": True, "message": "Server is running",
                "data": {"status": "ok", "timestamp": int(time.time())}}).encode(), "application/json"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


class StockHandler(BareHandler):
    """The same, but logging each request to stderr as http.server does when it comes."""

    log_message = http.server.BaseHTTPRequestHandler.log_message


async def relay(websocket, rooms):
    """The bare relay: a client joins a room, and each message goes to the rest of it."""
    from websockets.asyncio.server import broadcast

    room = None
    try:
        async for text in websocket:
            frame = json.loads(text)
            if frame["type"] == "join_room":
                room = rooms.setdefault(frame["room_id"], set())
                room.add(websocket)
                await websocket.send(json.dumps({"data": {"type": "room_joined"}}))
            elif frame["type"] == "send_message":
                data = {"type": "message_received", "content": frame["content"]}
                broadcast(room - {websocket}, json.dumps({"data": data}))
                await websocket.send(json.dumps({"data": {**data, "type": "message_sent"}}))
            elif frame["type"] == "react":  # the room hears the message's reactions
                data = {"type": "reactions", "id": frame["id"],
                        "reactions": [{"emoji": frame["emoji"], "count": 1}]}
                broadcast(room - {websocket}, json.dumps({"data": data}))
                await websocket.send(json.dumps({"data": data}))
            else:
                await websocket.send(json.dumps({"data": {"type": "pong"}}))
    finally:
        if room is not None:
            room.discard(websocket)


def start_relay():
    """Run the relay on an event loop in a thread of its own; return its port."""
    from websockets.asyncio.server import serve

    rooms, port, ready = {}, [], threading.Event()

    async def serve_relay():
        async with serve(functools.partial(relay, rooms=rooms), "127.0.0.1", 0,
                         compression=None) as server:
            port.append(server.sockets[0].getsockname()[1])
            ready.set()
            await server.wait_closed()

    threading.Thread(target=asyncio.run, args=(serve_relay(),), daemon=True).start()
    ready.wait()
    return port[0]


class BareServer(http.server.ThreadingHTTPServer):
    # SwiftChat's own listen backlog: with the default of 5, fifty clients
    # connecting at once wait on SYN retries, and the baseline's tail is theirs.
    request_queue_size = 128


def run_baseline():
    """The bare HTTP server, the logging one and the bare relay, until killed."""
    ws_port = start_relay()
    stock = BareServer(("127.0.0.1", 0), StockHandler)
    stock.daemon_threads = True
    threading.Thread(target=stock.serve_forever, daemon=True).start()
    httpd = BareServer(("127.0.0.1", 0), BareHandler)
    httpd.daemon_threads = True
    print(f"Baseline: REST on http://127.0.0.1:{httpd.server_port}, "
          f"WebSocket on ws://127.0.0.1:{ws_port}, "
          f"logging REST on http://127.0.0.1:{stock.server_port}", flush=True)
    httpd.serve_forever()


# -- servers as processes ----------------------------------------------------------

class ServerProcess:
    """A server in a process of its own, and what /proc says about it."""

    def __init__(self, command):
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True)
        line = self.first_line = self.process.stdout.readline()
        match = re.search(r"http://[^:]+:(\d+), WebSocket on ws://[^:]+:(\d+)", line)
        if not match:
            self.stop()
            raise RuntimeError(f"{command} did not start: {line!r}")
        self.http_port, self.ws_port = int(match[1]), int(match[2])

    def cpu_seconds(self):
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime

    def rss_kib(self):
        with open(f"/proc/{self.process.pid}/status") as status:
            return int(re.search(r"VmRSS:\s+(\d+)", status.read())[1])

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=15)
        self.process.stdout.close()


class SwiftChatProcess(ServerProcess):
    """SwiftChat from this tree, or from `root`, a checkout of another release.

    Options that release does not know (a limit added since) are left out.
    """

    def __init__(self, *args, db=None, root=HERE):
        self.root = root
        self.folder = tempfile.TemporaryDirectory()
        program = os.path.join(root, "swiftchat.py")
        known = subprocess.run([sys.executable, program, "--help"], capture_output=True,
                               text=True, timeout=30).stdout
        options = [word for flag, value in zip(args[::2], args[1::2]) if flag in known
                   for word in (flag, value)]
        super().__init__([sys.executable, program, "--http-port", "0", "--ws-port", "0",
                          "--db", db or os.path.join(self.folder.name, "bench.db"), *options])
        self.is_swiftchat = True
        self._users = []

    def stop(self):
        super().stop()
        self.folder.cleanup()

    def users(self, count):
        """count (token, user_id) pairs of users made for the benchmark."""
        connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=60)
        while len(self._users) < count:
            status, data = call(connection, "POST", "/api/v1/auth/register",
                                {"username": f"bench{len(self._users)}", "password": "bench-password"})
            self._users.append((data["token"], data["id"]))
        connection.close()
        return self._users[:count]

    def room(self, name, token):
        connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=60)
        status, data = call(connection, "POST", "/api/v1/rooms", {"name": name}, token)
        connection.close()
        return data["id"]

    def join(self, room_id, token):
        connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=60)
        call(connection, "POST", "/api/v1/rooms/join", {"room_id": room_id}, token)
        connection.close()


class BaselineProcess(ServerProcess):
    root = None

    def __init__(self):
        super().__init__([sys.executable, os.path.abspath(__file__), "--baseline-server"])
        self.is_swiftchat = False
        self.logging_http_port = int(re.search(r"logging REST on http://[^:]+:(\d+)", self.first_line)[1])

    def users(self, count):
        return [(None, f"user{n}") for n in range(count)]

    def room(self, name, token):
        return name


def call(connection, method, path, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    connection.request(method, path, body=json.dumps(body) if body is not None else None,
                       headers=headers)
    reply = connection.getresponse()
    payload = reply.read()
    return reply.status, (json.loads(payload).get("data") if payload else None)


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


# -- REST: keep-alive connections hammering one path ----------------------------------

async def hammer(port, path, token, connections, seconds, latencies=None):
    """Requests per second over `connections` keep-alive connections (asyncio, raw HTTP).

    latencies: a list to which each request's time (seconds) is appended.
    """
    head = f"GET {path} HTTP/1.1\r\nHost: bench\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    request = (head + "\r\n").encode()
    done = 0
    deadline = time.perf_counter() + seconds

    async def one_connection():
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while (started_at := time.perf_counter()) < deadline:
            writer.write(request)
            header = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", header)[1])
            body = await reader.readexactly(length)
            if not header.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"{path}: {header[:40]!r} {body[:200]!r}")
            if latencies is not None:
                latencies.append(time.perf_counter() - started_at)
            done += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one_connection() for _ in range(connections)))
    return done / (time.perf_counter() - started)


def rest_setup(server):
    """The paths to hammer and the token they need, set up once per server."""
    if not server.is_swiftchat:
        return {"health": ("/api/v1/health", None)}
    if getattr(server, "rest_paths", None):  # set up already (--compare-ref runs the load again)
        return server.rest_paths
    token, _ = server.users(1)[0]
    connection = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=60)
    for n in range(50):
        call(connection, "POST", "/api/v1/rooms", {"name": f"listed {n}"}, token)
    room_id = server.room("ten thousand", token)
    for n in range(10_000):
        call(connection, "POST", "/api/v1/messages", {"room_id": room_id, "content": f"history {n}"}, token)
    connection.close()
    server.rest_paths = {"health": ("/api/v1/health", None), "users_me": ("/api/v1/users/me", token),
                         "rooms": ("/api/v1/rooms", None),
                         "messages": (f"/api/v1/messages?room_id={room_id}&limit=50", token)}
    return server.rest_paths


def bench_rest(swiftchat, baseline, rounds, seconds=3.0):
    setups = {id(swiftchat): rest_setup(swiftchat), id(baseline): rest_setup(baseline)}
    # Both warmed up first, so that the first row measured is not the one that pays for
    # each server's first connections (the first /health row was 0.82x in a full run,
    # 0.93x alone).
    for server in (swiftchat, baseline):
        asyncio.run(hammer(server.http_port, setups[id(server)]["health"][0],
                           setups[id(server)]["health"][1], 10, 1.0))
    rows = []
    # req/s against the bare server's /health, at 10 and at 50 connections
    targets = {10: {"health": 0.9, "users_me": 0.6, "rooms": 0.5, "messages": 0.35},
               50: {"health": 0.8, "users_me": 0.6, "rooms": 0.5, "messages": 0.35}}
    for connections in (10, 50):
        for name, target in targets[connections].items():
            pairs, tails = [], []
            for _ in range(rounds):
                path, token = setups[id(swiftchat)][name]
                our_times, their_times = [], []
                ours = asyncio.run(hammer(swiftchat.http_port, path, token, connections, seconds,
                                          our_times))
                # The bare server's /health is the floor; a release (--compare-ref) answers the same route.
                path, token = setups[id(baseline)].get(name, setups[id(baseline)]["health"])
                theirs = asyncio.run(hammer(baseline.http_port, path, token, connections, seconds,
                                            their_times))
                pairs.append((ours, theirs))
                tails.append((our_times, their_times))
            label = f"GET /{name.replace('_', '/')}"
            rows.append(row(f"{label} req/s, {connections} conns",
                            pairs, f">= {target}x", higher_is_better=True, target=target))
            if connections == 50:  # the tail (#27): each request's time, against the bare /health's
                rows.append(row(f"{label} p99 ms, 50 conns",
                                [(percentile(a, .99) * 1000, percentile(b, .99) * 1000)
                                 for a, b in tails], "<= 1.5x", higher_is_better=False,
                                target=1.5))
                rows.append(row(f"{label} max ms, 50 conns",
                                [(max(a) * 1000, max(b) * 1000) for a, b in tails], "-",
                                higher_is_better=False))
    if baseline.is_swiftchat:  # a release beside this one: no http.server to compare with
        return rows
    # Not a target: the baseline logs nothing, where http.server as it comes
    # writes a line per request to stderr, as SwiftChat's access log does.
    pairs = [(asyncio.run(hammer(swiftchat.http_port, "/api/v1/health", None, 10, seconds)),
              asyncio.run(hammer(baseline.logging_http_port, "/api/v1/health", None, 10, seconds)))
             for _ in range(rounds)]
    rows.append(row("GET /health req/s, 10 conns, against http.server logging each request",
                    pairs, "-", higher_is_better=True))
    return rows


# -- unread counts and search on a large database (#24) ---------------------------------

VOCABULARY = [f"w{n}" for n in range(5000)]  # word n is about n+1 times rarer than word 0


def words(rng, count):
    return " ".join(VOCABULARY[min(int(rng.paretovariate(1.0)) - 1, len(VOCABULARY) - 1)]
                    for _ in range(count))


def big_database(path, rooms, per_room, read_all_but=20):
    """A database of `rooms` rooms of `per_room` messages, made through the store in big batches.

    The reader ("reader", password "bench-password") is a member of every
    room and has read all but the last `read_all_but` messages of each;
    "writer" wrote every message. Returns the room ids.
    """
    import random
    sys.path.insert(0, HERE)
    import accounts
    import store as store_module
    rng = random.Random(24)
    db = store_module.Store(path)
    hashed = accounts.hash_password("bench-password", 1000)
    reader = db.create_user("reader", hashed, "2025-01-01T00:00:00Z")
    writer = db.create_user("writer", hashed, "2025-01-01T00:00:00Z")
    room_ids = []
    for n in range(rooms):
        room = db.create_room(f"big {n}", "", writer["id"], "2025-01-01T00:00:00Z",
                              members=[reader["id"]])
        room_ids.append(room["id"])
        for start in range(0, per_room, 10_000):
            db.add_messages([(room["id"], writer["id"], words(rng, 8), 1_700_000_000 + k, None)
                             for k in range(start, min(per_room, start + 10_000))])
        if read_all_but < per_room:
            newest = db.messages(room["id"], read_all_but + 1)[0]["id"]
            db.mark_read(room["id"], reader["id"], newest)
    while db.index_new_messages():  # as the server would, a batch a second, but all now
        pass
    db.close()
    return room_ids


def login_token(port, username):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    status, data = call(connection, "POST", "/api/v1/auth/login",
                        {"username": username, "password": "bench-password"})
    connection.close()
    return data["token"]


def keep_writing(port, token, room_id, per_second, stop):
    """Post per_second messages a second until stop is set: every answer's cache is outdated."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while not stop.wait(1 / per_second):
        call(connection, "POST", "/api/v1/messages", {"room_id": room_id, "content": "news"}, token)
    connection.close()


def bench_unread(swiftchat, baseline, rounds, seconds=3.0):
    """GET /rooms with counts for a member of 50 rooms of 10,000 messages each."""
    folder = tempfile.TemporaryDirectory()
    path = os.path.join(folder.name, "unread.db")
    room_ids = big_database(path, rooms=50, per_room=10_000, read_all_but=10_000)
    server = SwiftChatProcess("--pbkdf2-iterations", "1000", db=path)
    rows = []
    try:
        token = login_token(server.http_port, "reader")
        writer = login_token(server.http_port, "writer")
        path_of_rooms = "/api/v1/rooms?limit=100"
        for label, writes in (("nothing written meanwhile", 0),
                              ("while 20 messages/s arrive", 20)):
            pairs = []
            for _ in range(rounds):
                stop = threading.Event()
                posting = threading.Thread(target=keep_writing, args=(
                    server.http_port, writer, room_ids[0], writes, stop)) if writes else None
                if posting:
                    posting.start()
                ours = asyncio.run(hammer(server.http_port, path_of_rooms, token, 10, seconds))
                stop.set()
                if posting:
                    posting.join()
                theirs = asyncio.run(hammer(baseline.http_port, "/api/v1/health", None, 10, seconds))
                pairs.append((ours, theirs))
            rows.append(row(f"GET /rooms with counts (50 rooms x 10,000 msgs, all unread), "
                            f"{label}: req/s, 10 conns", pairs, ">= 0.5x", higher_is_better=True,
                            target=0.5))
    finally:
        server.stop()
        folder.cleanup()
    return rows


def rss_growth_during(server, work):
    """(KiB the server's RSS grew by at its highest while work() ran, seconds work took)."""
    before, peak, done = server.rss_kib(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], server.rss_kib())
            done.wait(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    try:
        work()
    finally:
        took = time.perf_counter() - started
        done.set()
        sampler.join()
    return max(0, peak[0] - before), took


def download(port, path, token):
    """GET path and read the answer through, a chunk at a time; return its size in bytes."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    reply = connection.getresponse()
    size = 0
    while chunk := reply.read(65536):
        size += len(chunk)
    connection.close()
    assert reply.status == 200, reply.status
    return size


def bench_export(swiftchat, baseline, rounds, small=20_000, large=60_000):
    """A room's history exported as CSV and JSON: the server's memory must not grow with the room.

    The baseline here is the same export of a room a third the size: a ratio
    near 1 says memory stays flat (CONTRACT 1.3: streamed). Both rooms are
    larger than what SQLite's page cache (2 MB a connection) holds, which
    a smaller room would show as growth that stops there.
    """
    folder = tempfile.TemporaryDirectory()
    small_path, large_path = (os.path.join(folder.name, f"{n}.db") for n in (small, large))
    small_room, large_room = (big_database(path, rooms=1, per_room=count)[0]
                              for path, count in ((small_path, small), (large_path, large)))
    rows = []
    try:
        for file_format in ("csv", "json"):
            pairs, seconds = [], []
            for _ in range(rounds):
                pair = []
                for path, room_id in ((large_path, large_room), (small_path, small_room)):
                    server = SwiftChatProcess("--pbkdf2-iterations", "1000", db=path)
                    try:
                        token = login_token(server.http_port, "writer")
                        grown, took = rss_growth_during(server, lambda: download(
                            server.http_port,
                            f"/api/v1/rooms/{room_id}/export?format={file_format}", token))
                    finally:
                        server.stop()
                    pair.append(grown)
                    if room_id == large_room:
                        seconds.append(took)
                pairs.append((max(pair[0], 1), max(pair[1], 1)))
            rows.append(row(f"export of {large:,} messages as {file_format.upper()}: server RSS "
                            f"growth KiB (baseline: {small:,} messages)", pairs, "<= 1.5x",
                            higher_is_better=False, target=1.5))
            rows.append({"load": f"export of {small:,} messages as {file_format.upper()}: server "
                                 "RSS growth KiB", "swiftchat": statistics.median(
                                     theirs for _, theirs in pairs),
                         "baseline": None, "ratio": None, "target": "-", "met": None})
            rows.append({"load": f"export of {large:,} messages as {file_format.upper()}: seconds",
                         "swiftchat": statistics.median(seconds), "baseline": None,
                         "ratio": None, "target": "-", "met": None})
    finally:
        folder.cleanup()
    return rows


def upload_body(size, part=64 * 1024):
    """size bytes of a file, made a part at a time (the client holds no 50 MB either)."""
    sent = 0
    while sent < size:
        chunk = b"\x00" * min(part, size - sent)
        sent += len(chunk)
        yield chunk


def post_file(port, token, body, size, name="lecture.mp4"):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    connection.request("POST", "/api/v1/uploads", body=body, headers={
        "Authorization": f"Bearer {token}", "X-Filename": name, "Content-Length": str(size),
        "Content-Type": "application/octet-stream"})
    reply = connection.getresponse()
    answer = json.loads(reply.read())
    connection.close()
    assert reply.status == 201, answer
    return answer["data"]


def bench_files(swiftchat, baseline, rounds, size=50 * 1024 * 1024):
    """A 50 MB upload (the server's memory, and /health meanwhile), and one image to 50 clients.

    Memory: the upload is written to disk as it arrives (CONTRACT 1.3:
    under 1 MiB per upload). /health's p99 during the upload is compared
    with its p99 on the same server without one, interleaved. The image
    rows compare SwiftChat serving a 200 KB image by its link with the
    bare server sending the same bytes from memory.
    """
    server = SwiftChatProcess(*BENCH_OPTIONS, "--max-upload-mb", "60", "--upload-quota-mb", "0")
    rows = []
    try:
        (token, _), = server.users(1)
        grown, quiet, busy = [], [], []
        for _ in range(rounds):
            quiet.append(percentile(probe_health(server.http_port, 2.0), 0.99))
            probes = []
            prober = threading.Thread(target=lambda: probes.extend(
                probe_health(server.http_port, 2.0)))
            prober.start()
            grown.append(rss_growth_during(server, lambda: post_file(
                server.http_port, token, upload_body(size), size))[0])
            prober.join()
            busy.append(percentile(probes, 0.99))
        rows.append({"load": f"upload of {size // 2**20} MB: server RSS growth KiB",
                     "swiftchat": statistics.median(grown), "baseline": None, "ratio": None,
                     "target": "<= 1024 KiB", "met": statistics.median(grown) <= 1024})
        rows.append(row(f"/health p99 ms during a {size // 2**20} MB upload "
                        "(baseline: the same server without one)", list(zip(busy, quiet)),
                        "<= 1.5x", higher_is_better=False, target=1.5))
        image = post_file(server.http_port, token, iter([BENCH_IMAGE]), len(BENCH_IMAGE),
                          "whiteboard.png")
        pairs, tails = [], []
        for _ in range(rounds):
            ours, theirs = [], []
            rate = asyncio.run(hammer(server.http_port, image["url"], None, 50, 3.0, ours))
            bare = asyncio.run(hammer(baseline.http_port, "/file", None, 50, 3.0, theirs))
            pairs.append((rate, bare))
            tails.append((percentile(ours, 0.99) * 1000, percentile(theirs, 0.99) * 1000))
        # No target: a signed link checked and a row read per request, against
        # bytes sent from memory; the row says what serving an image costs.
        rows.append(row("a 200 KB image to 50 clients at once: images/s", pairs, "-",
                        higher_is_better=True))
        rows.append(row("a 200 KB image to 50 clients at once: p99 ms", tails, "-",
                        higher_is_better=False))
    finally:
        server.stop()
    return rows


def timed_get(port, paths, token):
    """Each path's time in ms, requested one after another on one connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times = []
    for path in paths:
        started = time.perf_counter()
        status, _ = call(connection, "GET", path, token=token)
        if status != 200:
            raise RuntimeError(f"{path}: {status}")
        times.append((time.perf_counter() - started) * 1000)
    connection.close()
    return times


def bench_search(swiftchat, baseline, rounds, total=1_000_000):
    """Search over a million messages against a page of history on the same database."""
    import random
    folder = tempfile.TemporaryDirectory()
    path = os.path.join(folder.name, "search.db")
    room_ids = big_database(path, rooms=20, per_room=total // 20, read_all_but=0)
    server = SwiftChatProcess("--pbkdf2-iterations", "1000", db=path)
    rng = random.Random(27)
    rows = []
    try:
        token = login_token(server.http_port, "reader")
        # Every request asks for something not asked before, so that no answer is a kept one.
        queries = {"a word in nearly every message": lambda n: "w0",
                   "a rare word": lambda n: VOCABULARY[1000 + n],
                   "two words": lambda n: f"w1 {VOCABULARY[20 + n % 50]}",
                   "a prefix": lambda n: f"w{100 + n}*"}
        for label, query in queries.items():
            pairs = []
            for round_number in range(rounds):
                offset = round_number * 40
                history = [f"/api/v1/messages?room_id={rng.choice(room_ids)}&limit=50"
                           f"&before={rng.randrange(1, total)}" for _ in range(40)]
                searches = [f"/api/v1/search?q={query(offset + n).replace(' ', '+')}"
                            f"&before={rng.randrange(total // 2, total)}" for n in range(40)]
                pairs.append((statistics.median(timed_get(server.http_port, searches, token)),
                              statistics.median(timed_get(server.http_port, history, token))))
            rows.append(row(f"search over {total:,} messages, {label}: median ms "
                            "(baseline column: a GET /messages page)", pairs, "<= 3x",
                            higher_is_better=False, target=3.0))
    finally:
        server.stop()
        folder.cleanup()
    return rows


# -- WebSocket ----------------------------------------------------------------------------

class Room:
    """N live clients in one room of a server: the first is the sender.

    elsewhere: that many more members, connected but in no room, as people
    with the chat open on another room are: SwiftChat tells them of the
    room's activity (room_activity) and of mentions.
    """

    def __init__(self, server, size, name, elsewhere=0):
        self.server, self.size, self.name, self.elsewhere = server, size, name, elsewhere
        self.clients, self.idle = [], []

    async def __aenter__(self):
        from websockets.asyncio.client import connect
        users = self.server.users(self.size + self.elsewhere)
        room_id = self.server.room(self.name, users[0][0])
        for token, _ in users[self.size:]:
            client = await connect(f"ws://127.0.0.1:{self.server.ws_port}", compression=None,
                                   max_queue=None, max_size=None)
            if token:
                self.server.join(room_id, token)
                await client.send(json.dumps({"type": "auth", "token": token}))
                await client.recv()
            self.idle.append(client)
        for token, _ in users[:self.size]:
            client = await connect(f"ws://127.0.0.1:{self.server.ws_port}", compression=None,
                                   max_queue=None, max_size=None)
            if token:
                await client.send(json.dumps({"type": "auth", "token": token}))
                await client.recv()
            await client.send(json.dumps({"type": "join_room", "room_id": room_id}))
            while '"room_joined"' not in await client.recv():
                pass
            self.clients.append(client)
        return self

    async def __aexit__(self, *exc_info):
        await asyncio.gather(*(client.close() for client in self.clients + self.idle))


async def send_in_window(sender, messages, window):
    """Send `messages` timestamped messages, `window` unacknowledged at most, until all are."""
    acks = asyncio.Semaphore(window)

    async def read_acks():
        acked = 0
        async for text in sender:
            if '"message_sent"' in text:
                acked += 1
                acks.release()
                if acked == messages:
                    return

    ack_task = asyncio.create_task(read_acks())
    for _ in range(messages):
        await acks.acquire()
        await sender.send(json.dumps({"type": "send_message", "content": sent_now()}))
    await ack_task


async def send_and_hear(sender, messages, window, all_in, timeout=30):
    """send_in_window, then wait until all_in is set: every delivery heard (at most timeout
    seconds: what is not heard by then is counted lost)."""
    await send_in_window(sender, messages, window)
    try:
        await asyncio.wait_for(all_in.wait(), timeout=timeout)
    except asyncio.TimeoutError:
        pass


def sent_now():
    """A message's content: a mention (SwiftChat looks it up and tells bench1) and the send time."""
    return f"@bench1 look: {time.perf_counter()!r}"


def sent_at(text):
    """The send time of a message_received frame's text."""
    return float(json.loads(text)["data"]["content"].rsplit(" ", 1)[1])


async def fan_out(server, size, messages, window):
    """One sender, `window` messages unacknowledged at most; the rest of the room listens.

    Each message mentions a member, and a tenth of the room's members are
    connected elsewhere: mentions and room activity are part of the cost.
    """
    async with Room(server, size, f"fan-out {size} {time.time()}", elsewhere=size // 10) as room:
        sender, listeners = room.clients[0], room.clients[1:]
        latencies, received, all_in = [], [0], asyncio.Event()

        async def listen(client):
            async for text in client:
                if '"message_received"' in text:
                    latencies.append(time.perf_counter() - sent_at(text))
                    received[0] += 1
                    if received[0] == messages * len(listeners):
                        all_in.set()

        tasks = [asyncio.create_task(listen(client)) for client in listeners]
        cpu_before, client_cpu_before = server.cpu_seconds(), time.process_time()
        started = time.perf_counter()
        await send_and_hear(sender, messages, window, all_in)
        elapsed = time.perf_counter() - started
        cpu = server.cpu_seconds() - cpu_before
        client_cpu = time.process_time() - client_cpu_before
        for task in tasks:
            task.cancel()
        deliveries = received[0]
        return {"msgs_per_s": messages / elapsed, "deliveries_per_s": deliveries / elapsed,
                "cpu_us_per_delivery": cpu / max(1, deliveries) * 1e6,
                "p50_ms": percentile(latencies, .5) * 1000, "p99_ms": percentile(latencies, .99) * 1000,
                "lost": messages * len(listeners) - deliveries,
                "client_cpu_percent": client_cpu / elapsed * 100}


def bench_ws_fanout(swiftchat, baseline, rounds):
    rows = []
    for size, messages in ((10, 2000), (100, 400), (500, 100)):
        results = {"swiftchat": [], "baseline": []}
        for _ in range(rounds):
            results["swiftchat"].append(asyncio.run(fan_out(swiftchat, size, messages, window=10)))
            results["baseline"].append(asyncio.run(fan_out(baseline, size, messages, window=10)))
        pairs = lambda key: [(a[key], b[key]) for a, b in zip(results["swiftchat"], results["baseline"])]
        if size == 10:
            # A report against the bare relay, which saves nothing and checks nothing: a room
            # this small is the per-message cost alone (saving, checking, acknowledging),
            # which no broadcast amortises. Its target is held against the previous release
            # instead (RELEASE_TARGETS, with --compare-ref).
            rows.append(row("WS room of 10: msgs/s", pairs("msgs_per_s"), "-",
                            higher_is_better=True))
        rows.append(row(f"WS room of {size}: server CPU us/delivery", pairs("cpu_us_per_delivery"),
                        "<= 0.7x" if size >= 100 else "-", higher_is_better=False,
                        target=0.7 if size >= 100 else None))
        rows.append(row(f"WS room of {size}: deliveries/s", pairs("deliveries_per_s"), "-",
                        higher_is_better=True))
        rows.append(row(f"WS room of {size}: p99 latency ms", pairs("p99_ms"), "-", higher_is_better=False))
        # One Python process runs every client: near 100% of a core, it is the limit, not the server.
        rows.append(row(f"WS room of {size}: load client CPU %", pairs("client_cpu_percent"), "-",
                        higher_is_better=False))
        lost = sum(r["lost"] for r in results["swiftchat"])
        rows.append({"load": f"WS room of {size}: deliveries lost (SwiftChat, all rounds)",
                     "swiftchat": lost, "baseline": sum(r["lost"] for r in results["baseline"]),
                     "ratio": None, "target": "0", "met": lost == 0})
    return rows


async def fan_out_with_reactions(server, size, messages, window):
    """fan_out, with a second member reacting to each message as it arrives: the room hears
    as many `reactions` frames as messages (CONTRACT 1.3). Deliveries count both."""
    async with Room(server, size, f"reactions {size} {time.time()}") as room:
        sender, reactor, listeners = room.clients[0], room.clients[1], room.clients[2:]
        wanted = messages * (len(listeners) + 1) + messages * len(listeners)
        received, all_in = [0], asyncio.Event()

        def count():
            received[0] += 1
            if received[0] == wanted:
                all_in.set()

        async def listen(client):
            async for text in client:
                if '"message_received"' in text or '"reactions"' in text:
                    count()

        async def react(client):
            emoji = ["👍", "🎉", "❤️", "😂"]
            async for text in client:
                if '"message_received"' in text:
                    count()
                    message_id = json.loads(text)["data"].get("id")
                    await client.send(json.dumps({"type": "react", "id": message_id,
                                                  "emoji": emoji[received[0] % 4]}))

        tasks = [asyncio.create_task(listen(client)) for client in listeners]
        tasks.append(asyncio.create_task(react(reactor)))
        cpu_before, started = server.cpu_seconds(), time.perf_counter()
        await send_and_hear(sender, messages, window, all_in)
        elapsed = time.perf_counter() - started
        cpu = server.cpu_seconds() - cpu_before
        for task in tasks:
            task.cancel()
        return {"cpu_us_per_delivery": cpu / max(1, received[0]) * 1e6,
                "deliveries_per_s": received[0] / elapsed, "lost": wanted - received[0]}


def bench_ws_reactions(swiftchat, baseline, rounds, size=100, messages=300):
    """A room of 100 where reactions arrive at the rate of messages (#36): the fan-out target."""
    results = [(asyncio.run(fan_out_with_reactions(swiftchat, size, messages, window=10)),
                asyncio.run(fan_out_with_reactions(baseline, size, messages, window=10)))
               for _ in range(rounds)]
    pairs = lambda key: [(a[key], b[key]) for a, b in results]
    lost = sum(a["lost"] for a, _ in results)
    return [row(f"WS room of {size}, a reaction per message: server CPU us/delivery",
                pairs("cpu_us_per_delivery"), "<= 0.7x", higher_is_better=False, target=0.7),
            row(f"WS room of {size}, a reaction per message: deliveries/s",
                pairs("deliveries_per_s"), "-", higher_is_better=True),
            {"load": f"WS room of {size}, a reaction per message: deliveries lost (SwiftChat)",
             "swiftchat": lost, "baseline": sum(b["lost"] for _, b in results), "ratio": None,
             "target": "0", "met": lost == 0}]


async def record_latencies(client, latencies):
    """Record the latency of every message_received whose content is its send time."""
    async for text in client:
        if '"message_received"' in text:
            latencies.append(time.perf_counter() - sent_at(text))


async def fixed_load(server, size=100, senders=4, rate=50, seconds=5.0):
    """`senders` clients each sending `rate` messages a second into a room of `size`."""
    async with Room(server, size, f"fixed {time.time()}") as room:
        latencies = []

        async def talk(client):
            next_at = time.perf_counter()
            deadline = next_at + seconds
            while next_at < deadline:
                await client.send(json.dumps({"type": "send_message", "content": sent_now()}))
                next_at += 1 / rate
                await asyncio.sleep(max(0, next_at - time.perf_counter()))

        listeners = [asyncio.create_task(record_latencies(client, latencies)) for client in room.clients]
        client_cpu_before, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*(talk(client) for client in room.clients[:senders]))
        client_cpu = (time.process_time() - client_cpu_before) / (time.perf_counter() - started)
        await asyncio.sleep(0.5)  # the last deliveries: a fixed load ends with a drain, not a wait on an event
        for task in listeners:
            task.cancel()
        return {"p50_ms": percentile(latencies, .5) * 1000, "p99_ms": percentile(latencies, .99) * 1000,
                "max_ms": max(latencies) * 1000, "client_cpu_percent": client_cpu * 100}


async def class_room(server, size, seconds=10.0, every=10.0):
    """A room of `size` where everyone sends a message every `every` seconds: the p99 delivery ms.

    The senders start at evenly spread moments, as people in a class do not
    type in step; each delivery's latency is measured from its send.
    """
    async with Room(server, size, f"class {size} {time.time()}") as room:
        latencies = []

        async def talk(client, offset):
            await asyncio.sleep(offset)
            deadline = time.perf_counter() + seconds - offset
            while time.perf_counter() < deadline:
                await client.send(json.dumps({"type": "send_message", "content": sent_now()}))
                await asyncio.sleep(every)

        listeners = [asyncio.create_task(record_latencies(client, latencies)) for client in room.clients]
        client_cpu_before, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*(talk(client, every * n / size) for n, client in enumerate(room.clients)))
        client_cpu = (time.process_time() - client_cpu_before) / (time.perf_counter() - started)
        await asyncio.sleep(0.5)  # the last deliveries: the load ends with a drain
        for task in listeners:
            task.cancel()
        return percentile(latencies, .99) * 1000, client_cpu * 100


def bench_capacity(swiftchat, baseline, rounds, sizes=(50, 100, 200, 300, 400, 600, 800)):
    """The largest room, everyone sending a message every 10 s, whose delivery p99 stays under 100 ms.

    Beside a release (--compare-ref), the release's largest room is found
    the same way, each size measured on both in turn.
    """
    servers = [swiftchat] + ([baseline] if baseline.is_swiftchat else [])
    largest, going, rows = [0] * len(servers), [True] * len(servers), []
    for size in sizes:
        p99s = [None] * len(servers)
        for n, server in enumerate(servers):
            if going[n]:
                p99s[n], client_cpu = asyncio.run(class_room(server, size))
                going[n] = p99s[n] < 100
                largest[n] = size if going[n] else largest[n]
        rows.append({"load": f"capacity: room of {size}, one message per person per 10 s: p99 ms",
                     "swiftchat": p99s[0], "baseline": p99s[1] if len(servers) > 1 else None,
                     "ratio": None, "target": f"load client CPU {client_cpu:.0f}%", "met": None})
        if not any(going):
            break
    rows.append({"load": "capacity: the largest such room with a p99 under 100 ms",
                 "swiftchat": largest[0], "baseline": largest[1] if len(servers) > 1 else None,
                 "ratio": largest[0] / largest[1] if len(servers) > 1 and largest[1] else None,
                 "target": "-", "met": None})
    return rows


def bench_ws_fixed(swiftchat, baseline, rounds):
    results = [(asyncio.run(fixed_load(swiftchat)), asyncio.run(fixed_load(baseline))) for _ in range(rounds)]
    return [row("WS fixed load (100 clients, 4x50 msg/s): p50 ms", [(a["p50_ms"], b["p50_ms"]) for a, b in results],
                "-", higher_is_better=False),
            row("WS fixed load: p99 ms", [(a["p99_ms"], b["p99_ms"]) for a, b in results],
                "<= 1.2x", higher_is_better=False, target=1.2),
            row("WS fixed load: max ms", [(a["max_ms"], b["max_ms"]) for a, b in results],
                "-", higher_is_better=False),
            row("WS fixed load: load client CPU %",
                [(a["client_cpu_percent"], b["client_cpu_percent"]) for a, b in results],
                "-", higher_is_better=False)]


async def idle_rss(server, count):
    """RSS per idle authenticated connection, in KiB."""
    from websockets.asyncio.client import connect
    users = server.users(count)
    before = server.rss_kib()
    clients = []
    for token, _ in users:
        client = await connect(f"ws://127.0.0.1:{server.ws_port}", compression=None)
        if token:
            await client.send(json.dumps({"type": "auth", "token": token}))
            await client.recv()
        else:
            await client.send(json.dumps({"type": "ping"}))
            await client.recv()
        clients.append(client)
    await asyncio.sleep(0.5)  # let the server settle its buffers before reading RSS
    per_connection = (server.rss_kib() - before) / count
    await asyncio.gather(*(client.close() for client in clients))
    return per_connection


def fresh_like(server):
    """A new server process of the same kind (and release) as server."""
    if server.is_swiftchat:
        return SwiftChatProcess(*BENCH_OPTIONS, root=server.root)
    return BaselineProcess()


def bench_idle(swiftchat, baseline, rounds, count=2000):
    # Each round on fresh processes: a server that ran the other loads first
    # has freed memory to reuse, and its RSS grew 7.6 KiB a connection
    # where a fresh one's grew 14.1 (the baseline's 10.4 against 15.4).
    pairs = []
    for _ in range(rounds):
        pair = []
        for like in (swiftchat, baseline):
            server = fresh_like(like)
            try:
                pair.append(asyncio.run(idle_rss(server, count)))
            finally:
                server.stop()
        pairs.append(pair)
    result = row(f"idle: RSS KiB per connection ({count} authenticated, fresh servers)", pairs,
                 "<= 16 KB", higher_is_better=False)
    result["met"] = result["swiftchat"] * 1.024 <= 16
    return [result]


# -- a login storm at the default 600,000 rounds ------------------------------------------

def probe_health(port, seconds):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        status, _ = call(connection, "GET", "/api/v1/health")
        latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(0.005)  # a polite prober: about 150 probes a second
    connection.close()
    return latencies


def bench_login_storm(swiftchat, baseline, rounds, seconds=4.0, logins=20):
    quiet, storm = [], []
    server = SwiftChatProcess()  # default --pbkdf2-iterations: 600,000
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=60)
        call(connection, "POST", "/api/v1/auth/register", {"username": "stormy", "password": "correct horse"})
        connection.close()
        for _ in range(rounds):
            quiet.append(percentile(probe_health(server.http_port, seconds), 0.99))
            stop = threading.Event()

            def keep_logging_in():
                own = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=60)
                while not stop.is_set():
                    call(own, "POST", "/api/v1/auth/login", {"username": "stormy", "password": "correct horse"})
                own.close()

            threads = [threading.Thread(target=keep_logging_in) for _ in range(logins)]
            for thread in threads:
                thread.start()
            storm.append(percentile(probe_health(server.http_port, seconds), 0.99))
            stop.set()
            for thread in threads:
                thread.join()
    finally:
        server.stop()
    ours = statistics.median(storm)
    return [{"load": f"/health p99 ms during {logins} logins at 600,000 rounds (baseline: no logins)",
             "swiftchat": ours, "baseline": statistics.median(quiet), "ratio": None,
             "target": "< 100 ms", "met": ours < 100}]


# -- the writer thread's cost per message ------------------------------------------------

# Saves 2,000 messages through Store.add_messages in batches of 10, as the
# group commit gives them to the writer thread, each mentioning a member as
# the fan-out load's do, and prints the least CPU time per message of five
# runs, in microseconds. With no release folder, the floor: the same rows
# inserted into a bare table of 1.1's messages shape, with no checks at all.
WRITER_PROGRAM = r"""
import inspect, os, sqlite3, sys, tempfile, time
root = sys.argv[1]
folder = tempfile.mkdtemp()
if root:
    sys.path.insert(0, root)
    import store
    db = store.Store(os.path.join(folder, "writer.db"))
    users = [db.create_user(f"bench{n}", "pbkdf2_sha256$1$00$00", "2026-01-01T00:00:00Z")
             for n in range(10)]
    room = db.create_room("writer", "", users[0]["id"], "2026-01-01T00:00:00Z")
    for user in users[1:]:
        db.add_member(room["id"], user["id"], "2026-01-01T00:00:00Z")
    mentions = "mentioned" in inspect.signature(db.add_message).parameters
    def save(batch, content):
        rows = [(room["id"], users[0]["id"], f"{content} {n}", 1, None)
                + ((((("bench1",),),) if mentions else ())) for n in range(batch)]
        db.add_messages(rows)
else:
    raw = sqlite3.connect(os.path.join(folder, "floor.db"), isolation_level=None)
    raw.execute("PRAGMA journal_mode = WAL")
    raw.execute("PRAGMA synchronous = NORMAL")
    raw.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, room_id TEXT,"
                " user_id TEXT, content TEXT, timestamp INTEGER, client_id TEXT)")
    raw.execute("CREATE INDEX messages_by_room ON messages (room_id, id)")
    def save(batch, content):
        raw.execute("BEGIN")
        raw.executemany("INSERT INTO messages (room_id, user_id, content, timestamp, client_id)"
                        " VALUES (?, ?, ?, ?, ?)",
                        [("room", "user", f"{content} {n}", 1, None) for n in range(batch)])
        raw.execute("COMMIT")
best = float("inf")
for run in range(5):
    started = time.process_time()
    for batch in range(200):
        save(10, f"@bench1 look {run} {batch}")
    best = min(best, (time.process_time() - started) / 2000 * 1e6)
print(best)
"""


def writer_cpu(root):
    """Microseconds of CPU per message saved by the store at root (None: the bare floor)."""
    done = subprocess.run([sys.executable, "-c", WRITER_PROGRAM, root or ""], capture_output=True,
                          text=True, timeout=300, check=True)
    return float(done.stdout)


def bench_writer(swiftchat, baseline, rounds):
    other = baseline.root if baseline.is_swiftchat else None
    pairs = [(writer_cpu(swiftchat.root), writer_cpu(other)) for _ in range(rounds)]
    return [row("writer CPU us per message saved (batches of 10, each mentioning a member; "
                "baseline: bare inserts)", pairs, "-", higher_is_better=False)]


# -- the report -------------------------------------------------------------------------

def row(load, pairs, target_text, higher_is_better, target=None):
    ratio = statistics.median(a / b for a, b in pairs if b)
    met = None if target is None else (ratio >= target if higher_is_better else ratio <= target)
    return {"load": load, "swiftchat": statistics.median(a for a, _ in pairs),
            "baseline": statistics.median(b for _, b in pairs), "ratio": ratio,
            "target": target_text, "met": met}


def print_table(rows):
    print("| load | SwiftChat | baseline | ratio | target |")
    print("|---|---:|---:|---:|---|")
    for r in rows:
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
        verdict = {True: " (met)", False: " (NOT met)", None: ""}[r["met"]]
        baseline = "" if r["baseline"] is None else f"{r['baseline']:.1f}"
        print(f"| {r['load']} | {r['swiftchat']:.1f} | {baseline} | {ratio} | {r['target']}{verdict} |")


LOADS = {
    "rest": bench_rest,
    "ws-fanout": bench_ws_fanout,
    "ws-reactions": bench_ws_reactions,
    "ws-fixed": bench_ws_fixed,
    "idle": bench_idle,
    "login-storm": bench_login_storm,
    "capacity": bench_capacity,
    "unread": bench_unread,
    "search": bench_search,
    "writer": bench_writer,
    "export": bench_export,
    "files": bench_files,
}


# The server options of every run (the module docstring says why).
BENCH_OPTIONS = ("--ws-rate", "0", "--rest-rate", "0", "--registrations-per-minute", "0",
                 "--rooms-per-hour", "0", "--max-ws-unauthenticated", "0",
                 "--pbkdf2-iterations", "1000")
# The loads an older release (1.1 on) serves as this one does.
COMPARABLE = ("rest", "ws-fanout", "ws-fixed", "idle", "capacity", "writer")


def compared_with(ref, loads, rounds):
    """The comparable loads again, on a fresh server of this tree beside one of release `ref`."""
    with tempfile.TemporaryDirectory() as folder:
        checkout = os.path.join(folder, "release")
        subprocess.run(["git", "-C", HERE, "worktree", "add", "--detach", "-q", checkout, ref],
                       check=True)
        try:
            # Both fresh, so that neither starts warm (idle memory reads RSS growth).
            current = SwiftChatProcess(*BENCH_OPTIONS)
            release = SwiftChatProcess(*BENCH_OPTIONS, root=checkout)
            rows = []
            try:
                for name in loads:
                    if name in COMPARABLE:
                        rows += LOADS[name](current, release, rounds)
            finally:
                current.stop()
                release.stop()
        finally:
            subprocess.run(["git", "-C", HERE, "worktree", "remove", "--force", checkout],
                           check=False)
    for row_ in rows:  # this tree against the release: a report, but for RELEASE_TARGETS
        target = RELEASE_TARGETS.get(row_["load"])
        met = None if target is None or row_["ratio"] is None else row_["ratio"] >= target
        row_.update(load=f"{row_['load']} [vs {ref}]", met=met,
                    target="-" if target is None else f">= {target}x the release")
    return rows


# Targets held against the release named by --compare-ref (issue #33): a room of 10 as
# fast as the release, give or take a tenth, and a class as large as it served.
RELEASE_TARGETS = {"WS room of 10: msgs/s": 0.9,
                   "capacity: the largest such room with a p99 under 100 ms": 1.0}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(LOADS), action="append", help="run only this load (repeatable)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved pairs per load (default 3)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a target is missed (a normal run reports and exits 0)")
    parser.add_argument("--compare-ref", metavar="REF",
                        help="also run the loads an older release serves beside that release "
                             f"(a git ref; loads: {', '.join(COMPARABLE)})")
    parser.add_argument("--baseline-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline_server:
        return run_baseline()
    swiftchat = SwiftChatProcess(*BENCH_OPTIONS)
    baseline = BaselineProcess()
    rows = []
    try:
        for name in args.only or LOADS:
            rows += LOADS[name](swiftchat, baseline, args.rounds)
        if args.compare_ref:
            rows += compared_with(args.compare_ref, args.only or LOADS, args.rounds)
    finally:
        swiftchat.stop()
        baseline.stop()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(rows)
    missed = any(row["met"] is False for row in rows)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
