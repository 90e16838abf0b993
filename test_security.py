"""Hostile input and abuse, tried through the real ports: files, throttles, methods, floods.

Raw request lines go through a plain socket, so nothing is normalised away
the way urllib or a browser would (dot segments, percent escapes, NULs).
"""

import json
import logging
import os
import socket
import stat
import threading

import pytest

import swiftchat
from conftest import TEST_ITERATIONS, TEST_SECRET, Api, ChatClient

ROOT_SECRET_FILE = "/etc/hostname"


class FakeClock:
    """A time.monotonic stand-in that moves only when told to."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


def raw_request(port, request_line, headers=b""):
    """Send one request exactly as given; return (status, headers text, body bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request_line + b"\r\nHost: x\r\nConnection: close\r\n" + headers + b"\r\n")
        reply = sock.makefile("rb").read()
    head, _, body = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head.decode("latin-1"), body


# -- static files ------------------------------------------------------------------

HOSTILE_NAMES = [
    b"/static/%2Fetc%2Fhostname",                    # absolute after decoding
    b"/static/%2fetc%2fpasswd",
    b"/static/..%2fswiftchat.py",                    # encoded separator
    b"/static/%2e%2e%2fswiftchat.py",
    b"/static/%2e%2e",
    b"/static/..",
    b"/static/.",
    b"/static/../swiftchat.py",                      # raw dot segments
    b"/static/../../../../etc/hostname",
    b"/static//etc/hostname",
    b"/static/%252e%252e%252fswiftchat.py",          # double-encoded
    b"/static/%252Fetc%252Fhostname",
    b"/static/..%5cswiftchat.py",                    # backslashes
    b"/static/..\\swiftchat.py",
    b"/static/%5cetc%5chostname",
    b"/static/chat.js%00.png",                       # NUL
    b"/static/chat.js%00",
    b"/static/%c0%ae%c0%ae%c0%afswiftchat.py",       # overlong UTF-8 dots and slash
    b"/static/" + b"a" * 300,                        # longer than a file name may be
    b"/static/" + b"%2e" * 100 + b"%2f" * 100,
    b"/static/.gitignore",
    b"/static/swiftchat.db",
    b"/static/chat.db-wal",
    b"/static/%2E%2E%2F%2E%2E%2Fswiftchat.db",
]


@pytest.mark.parametrize("target", HOSTILE_NAMES, ids=lambda t: t.decode("latin-1")[:60])
def test_a_hostile_static_name_is_a_404_envelope(server, caplog, target):
    with caplog.at_level(logging.INFO):
        status, head, body = raw_request(server.http_port, b"GET " + target + b" HTTP/1.1")
    assert status == 404
    assert "application/json" in head
    envelope = json.loads(body)
    assert envelope["success"] is False and envelope["message"] == "Not found"
    with open(ROOT_SECRET_FILE, "rb") as secret:
        assert secret.read().strip() not in body
    assert b"import" not in body and b"SQLite" not in body
    assert "Traceback" not in caplog.text


def test_a_symlink_out_of_the_static_folder_is_not_followed(server, tmp_path, monkeypatch):
    static = tmp_path / "static"
    static.mkdir()
    (static / "ok.txt").write_text("inside")
    (tmp_path / "secret.txt").write_text("outside")
    (static / "leak.txt").symlink_to(tmp_path / "secret.txt")
    monkeypatch.setattr(swiftchat, "STATIC_DIR", static)
    assert raw_request(server.http_port, b"GET /static/ok.txt HTTP/1.1")[2] == b"inside"
    status, _, body = raw_request(server.http_port, b"GET /static/leak.txt HTTP/1.1")
    assert status == 404 and b"outside" not in body


def test_the_real_assets_are_still_served(server):
    status, head, body = raw_request(server.http_port, b"GET /static/chat.js HTTP/1.1")
    assert status == 200 and "javascript" in head and body


# -- the database file -------------------------------------------------------------

def file_mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_database_and_its_companions_are_private_whatever_the_umask(tmp_path):
    old_umask = os.umask(0o022)
    try:
        db = tmp_path / "private.db"
        with swiftchat.serve(http_port=0, ws_port=0, db=db, pbkdf2_iterations=TEST_ITERATIONS) as running:
            Api(running.http_port).register()
            modes = {name: file_mode(tmp_path / name)
                     for name in ("private.db", "private.db-wal", "private.db-shm")}
    finally:
        os.umask(old_umask)
    assert modes == {"private.db": 0o600, "private.db-wal": 0o600, "private.db-shm": 0o600}


def test_a_database_readable_by_others_is_tightened_with_a_warning(tmp_path, caplog):
    db = tmp_path / "open.db"
    with swiftchat.serve(http_port=0, ws_port=0, db=db, pbkdf2_iterations=TEST_ITERATIONS):
        pass
    os.chmod(db, 0o644)
    with caplog.at_level(logging.WARNING):
        with swiftchat.serve(http_port=0, ws_port=0, db=db, pbkdf2_iterations=TEST_ITERATIONS):
            assert file_mode(db) == 0o600
    assert "readable by others" in caplog.text and "open.db" in caplog.text


# -- login and registration throttling ---------------------------------------------

@pytest.fixture
def throttled(tmp_path, clock):
    """A server whose throttles run on `clock`."""
    with swiftchat.serve(http_port=0, ws_port=0, db=tmp_path / "t.db", jwt_secret=TEST_SECRET,
                         pbkdf2_iterations=TEST_ITERATIONS, clock=clock) as running:
        yield running


def login(api, username, password):
    return api.post("/auth/login", {"username": username, "password": password})


TOO_MANY_LOGINS = {"success": False, "message": "Too many requests",
                   "error": "Too many failed logins; try again later"}


def test_five_failed_logins_lock_the_name_for_15_minutes_after_the_last(throttled, clock):
    api = Api(throttled.http_port)
    api.register("victim", "the-right-password")
    for _ in range(5):
        assert login(api, "victim", "wrong-password").status == 401
        clock.advance(60)
    reply = login(api, "Victim", "the-right-password")  # any letter case, even the right password
    assert reply.status == 429 and reply.json == TOO_MANY_LOGINS
    assert reply.headers["Retry-After"] == str(15 * 60 - 60)
    clock.advance(15 * 60 - 61)
    assert login(api, "victim", "the-right-password").headers["Retry-After"] == "1"
    clock.advance(1)
    assert login(api, "victim", "the-right-password").status == 200


def test_a_successful_login_clears_the_names_count(throttled):
    api = Api(throttled.http_port)
    api.register("forgetful", "the-right-password")
    for _ in range(2):
        for _ in range(4):
            assert login(api, "forgetful", "wrong-password").status == 401
        assert login(api, "forgetful", "the-right-password").status == 200


def test_thirty_failures_from_one_address_block_every_login_from_it(throttled, clock):
    api = Api(throttled.http_port)
    api.register("bystander", "the-right-password")
    for n in range(30):
        assert login(api, f"guess{n}", "wrong-password").status == 401
    reply = login(api, "bystander", "the-right-password")
    assert reply.status == 429 and int(reply.headers["Retry-After"]) == 15 * 60
    clock.advance(15 * 60)
    assert login(api, "bystander", "the-right-password").status == 200


def test_registrations_are_limited_to_thirty_a_minute_per_address(throttled, clock):
    api = Api(throttled.http_port)
    for n in range(30):
        api.register(f"student{n}")
        clock.advance(1)
    reply = api.post("/auth/register", {"username": "latecomer", "password": "password123"})
    assert reply.status == 429
    assert reply.json == {"success": False, "message": "Too many requests",
                          "error": "Too many registrations; try again later"}
    assert reply.headers["Retry-After"] == "30"
    clock.advance(30)
    assert api.post("/auth/register", {"username": "latecomer", "password": "password123"}).status == 201


def test_a_throttled_login_answers_without_computing_a_hash(throttled):
    api = Api(throttled.http_port)
    for _ in range(5):
        login(api, "target", "wrong-password")
    slots = throttled.accounts.hash_slots
    taken = 0
    while slots.acquire(blocking=False):  # every hash would now wait forever
        taken += 1
    try:
        assert login(api, "target", "wrong-password").status == 429
    finally:
        for _ in range(taken):
            slots.release()


def test_at_most_cpu_count_minus_one_hashes_run_at_once(throttled):
    slots = throttled.accounts.hash_slots
    expected = max(1, (os.cpu_count() or 1) - 1)
    for _ in range(expected):
        assert slots.acquire(blocking=False)
    assert not slots.acquire(blocking=False)
    answers = []
    waiting = threading.Thread(
        target=lambda: answers.append(login(Api(throttled.http_port), "anyone", "password123").status))
    waiting.start()
    waiting.join(timeout=0.5)
    assert waiting.is_alive() and not answers  # its hash waits for a free slot
    for _ in range(expected):
        slots.release()
    waiting.join(timeout=10)
    assert answers == [401]


@pytest.mark.parametrize("username, password", [("known", "wrong-password"), ("unknown", "password123")])
def test_an_unknown_name_costs_a_hash_like_a_wrong_password(throttled, username, password):
    """So that timing does not tell which names exist (the decoy hash)."""
    api = Api(throttled.http_port)
    api.register("known", "the-right-password")
    slots = throttled.accounts.hash_slots
    taken = 0
    while slots.acquire(blocking=False):
        taken += 1
    answers = []
    attempt = threading.Thread(target=lambda: answers.append(login(Api(throttled.http_port), username, password)))
    attempt.start()
    attempt.join(timeout=0.5)
    waited_for_a_hash = attempt.is_alive()
    for _ in range(taken):
        slots.release()
    attempt.join(timeout=10)
    assert waited_for_a_hash
    assert answers[0].status == 401 and answers[0].json["error"] == "Username or password is incorrect"


@pytest.mark.parametrize("server_options", [{"login_attempts": 0, "registrations_per_minute": 0}])
def test_zero_turns_the_login_and_registration_limits_off(api):
    api.register("relaxed", "the-right-password")
    for _ in range(40):
        assert login(api, "relaxed", "wrong-password").status == 401
    assert login(api, "relaxed", "the-right-password").status == 200
    for _ in range(35):
        api.register()


# -- methods -----------------------------------------------------------------------

@pytest.mark.parametrize("path", [b"/api/v1/health", b"/api/v1/rooms", b"/", b"/static/chat.css"])
def test_head_answers_as_get_without_a_body(server, path):
    get_status, get_head, get_body = raw_request(server.http_port, b"GET " + path + b" HTTP/1.1")
    status, head, body = raw_request(server.http_port, b"HEAD " + path + b" HTTP/1.1")
    assert status == get_status == 200 and body == b""
    length = [line for line in head.split("\r\n") if line.lower().startswith("content-length")]
    assert length and int(length[0].split(":")[1]) > 0


@pytest.mark.parametrize("method, path, allow", [
    (b"TRACE", b"/api/v1/health", "GET, HEAD, OPTIONS"),
    (b"FROB", b"/api/v1/health", "GET, HEAD, OPTIONS"),
    (b"PUT", b"/api/v1/rooms", "POST, GET, HEAD, OPTIONS"),
    (b"GET", b"/api/v1/rooms/room_12345678", "PATCH, DELETE, OPTIONS"),
    (b"DELETE", b"/api/v1/auth/login", "POST, OPTIONS"),
    (b"CONNECT", b"/api/v1/echo", "GET, POST, HEAD, OPTIONS"),
])
def test_a_method_a_known_path_does_not_serve_is_405_with_allow(server, method, path, allow):
    status, head, body = raw_request(server.http_port, method + b" " + path + b" HTTP/1.1")
    assert status == 405
    assert f"\r\nAllow: {allow}" in head
    assert json.loads(body) == {"success": False, "message": "Method not allowed",
                                "error": f"{method.decode()} is not allowed on {path.decode()}"}


def test_an_unknown_method_on_an_unknown_path_is_404(server):
    status, _, body = raw_request(server.http_port, b"TRACE /nowhere HTTP/1.1")
    assert status == 404 and json.loads(body)["success"] is False


# -- WebSocket floods ----------------------------------------------------------------

def pings(client, count):
    """Send count pings at once, then read count replies; return their errors (None for a pong)."""
    for _ in range(count):
        client.send({"type": "ping"})
    return [client.recv().get("error") for _ in range(count)]


def flood_server(tmp_path, clock, **options):
    return swiftchat.serve(http_port=0, ws_port=0, db=tmp_path / "f.db", jwt_secret=TEST_SECRET,
                           pbkdf2_iterations=TEST_ITERATIONS, clock=clock, **options)


def test_a_websocket_flood_is_refused_frame_by_frame_and_the_connection_stays(tmp_path, clock):
    with flood_server(tmp_path, clock) as running:
        token, _, _ = Api(running.http_port).register()
        client = ChatClient(running.ws_port)
        client.request({"type": "auth", "token": token})  # not counted: before the bucket
        errors = pings(client, 45)
        assert errors == [None] * 40 + ["Rate limit exceeded"] * 5  # bursts of 2 x 20
        clock.advance(0.5)  # refills 10
        assert pings(client, 11) == [None] * 10 + ["Rate limit exceeded"]
        client.close()


def test_ws_rate_sets_the_limit_and_zero_turns_it_off(tmp_path, clock):
    with flood_server(tmp_path, clock, ws_rate=5) as running:
        token, _, _ = Api(running.http_port).register()
        client = ChatClient(running.ws_port)
        client.request({"type": "auth", "token": token})
        assert pings(client, 11) == [None] * 10 + ["Rate limit exceeded"]
        client.close()
    with flood_server(tmp_path, clock, ws_rate=0) as running:
        token, _, _ = Api(running.http_port).register()
        client = ChatClient(running.ws_port)
        client.request({"type": "auth", "token": token})
        assert pings(client, 200) == [None] * 200
        client.close()
