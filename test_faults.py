"""Bad days: a database held or broken by others, crashes, and slow or hostile clients.

Every fault here is real: another process holds SQLite's write lock, a
tiny tmpfs fills up, the database file is moved away, the server is killed
with SIGKILL, sockets dribble or stop reading, another server holds the
database, a file size limit makes the disk fail writes.
"""

import http.client
import json
import logging
import os
import resource
import select
import signal
import socket
import sqlite3
import subprocess
import threading
import time

import pytest
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Opcode
from websockets.uri import parse_uri

import swiftchat
from conftest import (NO_LIMITS, Api, ChatClient, WriteLock, end_process, frames_of_type, history,
                      run_cli, start_cli)

BUSY = {"success": False, "message": "Service unavailable", "error": "Database busy"}
FAILED_SAVE = {"success": False, "message": "Failed to save message",
               "error": "Database operation failed"}


def timed(function, *args, **kwargs):
    started = time.monotonic()
    result = function(*args, **kwargs)
    return result, time.monotonic() - started


# -- another process holds the write lock -------------------------------------------

@pytest.mark.sqlite_only
def test_reads_and_pings_go_on_while_another_process_holds_the_write_lock(tmp_path, api, chat, server):
    token, _, _ = api.register()
    room_id = api.create_room(token, "Busy day")
    talker, listener = chat(token), chat(api.register()[0])
    listener.request({"type": "join_room", "room_id": room_id})
    talker.request({"type": "join_room", "room_id": room_id})
    listener.recv_type("user_joined")
    assert talker.request({"type": "send_message", "content": "before"})["success"]
    listener.recv_type("message_received")
    lock = WriteLock(tmp_path / "chat.db")
    try:
        pong, seconds = timed(talker.request, {"type": "ping"})
        assert pong["data"]["type"] == "pong" and seconds < 1
        for path in ("/rooms", f"/messages?room_id={room_id}", "/users", "/users/me"):
            reply, seconds = timed(api.get, path, token=token)
            assert reply.status == 200 and seconds < 1, path
        talker.request({"type": "leave_room"})
        rejoined, seconds = timed(talker.request, {"type": "join_room", "room_id": room_id})
        assert rejoined["data"]["type"] == "room_joined" and seconds < 1  # a member: no write
        listener.recv_type("user_left")
        listener.recv_type("user_joined")

        reply, seconds = timed(api.post, "/rooms", {"name": "Never made"}, token=token)
        assert reply.status == 503 and reply.json == BUSY and seconds < 2.5
        failed, seconds = timed(talker.request, {"type": "send_message", "content": "during"})
        assert failed == FAILED_SAVE and seconds < 2.5
        assert listener.recv_type("message_received")["data"]["content"] == "during"  # seed: still heard
    finally:
        lock.release()
    assert talker.request({"type": "send_message", "content": "after"})["success"]
    assert api.post("/rooms", {"name": "Made now"}, token=token).status == 201
    assert [m["content"] for m in history(api, room_id, token)] == ["before", "after"]


@pytest.mark.sqlite_only
@pytest.mark.parametrize("server_options", [NO_LIMITS])
def test_a_line_of_writers_behind_a_lock_all_fail_within_two_seconds(tmp_path, api, chat, server):
    token, _, _ = api.register()
    room_id = api.create_room(token)
    client = chat(token)
    client.request({"type": "join_room", "room_id": room_id})
    lock = WriteLock(tmp_path / "chat.db")
    try:
        started = time.monotonic()
        for n in range(10):
            client.send({"type": "send_message", "content": f"queued {n}"})
        replies = [client.recv(timeout=10) for _ in range(10)]
        assert replies == [FAILED_SAVE] * 10
        assert time.monotonic() - started < 2.5  # each within 2 s of its arrival
    finally:
        lock.release()


# -- a broken database: full disk, file moved away -----------------------------------

@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MiB tmpfs of our own (needs root, as on CI); unmounted afterwards."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
                            capture_output=True)
    if result.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


@pytest.mark.sqlite_only
def test_a_full_disk_is_a_clear_503_and_the_server_recovers_when_space_returns(tiny_disk, serve_with):
    server = serve_with(db=tiny_disk / "chat.db", **NO_LIMITS)
    api = Api(server.http_port)
    token, _, _ = api.register()
    room_id = api.create_room(token, "Filling up")
    client = ChatClient(server.ws_port)
    client.request({"type": "auth", "token": token})
    client.request({"type": "join_room", "room_id": room_id})
    filler = tiny_disk / "filler"
    with open(filler, "wb") as f:
        with pytest.raises(OSError):
            while True:
                f.write(b"\0" * 65536)
                f.flush()
    reply = api.post("/rooms", {"name": "No room for it", "description": "x" * 500}, token=token)
    assert reply.status == 503
    assert reply.json == {"success": False, "message": "Service unavailable", "error": "Disk full"}
    assert client.request({"type": "send_message", "content": "y" * 4000}) == FAILED_SAVE
    assert api.get("/rooms").status == 200  # reads go on
    filler.unlink()
    assert api.post("/rooms", {"name": "Room again"}, token=token).status == 201
    assert client.request({"type": "send_message", "content": "and again"})["success"]
    client.close()


@pytest.fixture
def read_only_view(tmp_path):
    """(writable folder, a read-only bind mount of it); needs root, as on CI."""
    writable, view = tmp_path / "rw", tmp_path / "ro"
    writable.mkdir()
    view.mkdir()
    if subprocess.run(["mount", "--bind", str(writable), str(view)], capture_output=True).returncode:
        pytest.skip("cannot bind-mount here (needs root)")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], check=True)
        yield writable, view
    finally:
        subprocess.run(["umount", "-l", str(view)], check=True)


@pytest.mark.sqlite_only
def test_a_read_only_database_serves_reads_refuses_writes_and_recovers(read_only_view, serve_with):
    writable, view = read_only_view
    with serve_with(db=writable / "chat.db") as before:
        api = Api(before.http_port)
        token, _, _ = api.register()
        other_token, _, _ = api.register()  # not a member: joining would need a write
        room_id = api.create_room(token, "Archive")
    # A process that keeps the database open (a backup, a shell) keeps its
    # -wal and -shm, which SQLite needs to read a WAL database it cannot write.
    keeper = sqlite3.connect(writable / "chat.db")
    keeper.execute("SELECT COUNT(*) FROM users").fetchone()
    try:
        with serve_with(db=view / "chat.db") as server:
            api = Api(server.http_port)
            assert api.get("/rooms").data["total"] == 1
            assert api.get(f"/messages?room_id={room_id}", token=token).status == 200
            reply = api.post("/rooms", {"name": "Not now"}, token=token)
            assert reply.status == 503
            assert reply.json == {"success": False, "message": "Service unavailable",
                                  "error": "Database is read-only"}
            stranger = ChatClient(server.ws_port)
            stranger.request({"type": "auth", "token": other_token})
            assert stranger.request({"type": "join_room", "room_id": room_id}) == {
                "success": False, "message": "Request failed", "error": "Database is read-only"}
            stranger.close()
            client = ChatClient(server.ws_port)
            client.request({"type": "auth", "token": token})
            assert client.request({"type": "join_room", "room_id": room_id})["success"]
            assert client.request({"type": "send_message", "content": "hello?"}) == FAILED_SAVE
            subprocess.run(["mount", "-o", "remount,rw,bind", str(view)], check=True)
            assert api.post("/rooms", {"name": "Now"}, token=token).status == 201
            assert client.request({"type": "send_message", "content": "hello!"})["success"]
            client.close()
    finally:
        keeper.close()


# -- crashes -------------------------------------------------------------------------

@pytest.mark.sqlite_only
def test_every_acknowledged_message_survives_kill_9_exactly_once(tmp_path, serve_with):
    db = tmp_path / "crash.db"
    process, http_port, ws_port = start_cli("--db", str(db), "--ws-rate", "0",
                                            "--registrations-per-minute", "0")
    acknowledged, enough = [], threading.Event()
    try:
        api = Api(http_port)
        token, _, _ = api.register()
        room_id = api.create_room(token, "Crash site")
        tokens = [api.register()[0] for _ in range(4)]

        def sender(n, user_token):
            client = ChatClient(ws_port)
            client.request({"type": "auth", "token": user_token})
            client.request({"type": "join_room", "room_id": room_id})
            try:
                for i in range(100_000):
                    client.send({"type": "send_message", "content": f"sender {n} message {i}"})
                    frame, = frames_of_type(client, "message_sent", 1)
                    if frame["success"]:
                        acknowledged.append(frame["data"]["content"])
                    if len(acknowledged) >= 200:
                        enough.set()
            except (ConnectionClosed, OSError, TimeoutError):
                return  # the server died under us: expected

        threads = [threading.Thread(target=sender, args=(n, t)) for n, t in enumerate(tokens)]
        for thread in threads:
            thread.start()
        assert enough.wait(timeout=30)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        for thread in threads:
            thread.join(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()
        process.stderr.close()
    assert len(acknowledged) >= 200
    with serve_with(db=db, jwt_secret=None) as again:  # the secret the process kept in db
        stored = [m["content"] for m in history(Api(again.http_port), room_id, token)]
    assert len(stored) == len(set(stored))  # nothing twice
    assert set(acknowledged) <= set(stored)  # nothing acknowledged is lost
    for n in range(4):  # and each sender's messages are in the order it sent them
        own = [int(c.rsplit(" ", 1)[1]) for c in stored if c.startswith(f"sender {n} ")]
        assert own == sorted(own)


# -- slow and hostile HTTP clients ---------------------------------------------------

TRICKLES = {
    "silent": [b""] * 100,
    "request line byte by byte": [bytes([b]) for b in b"GET /api/v1/health HTTP/1.1\r\n"] * 4,
    "endless headers": [b"GET /api/v1/health HTTP/1.1\r\n"] + [b"X-Slow: 1\r\n"] * 100,
}


@pytest.mark.parametrize("server_options", [{"header_timeout": 0.5}])
@pytest.mark.parametrize("trickle", TRICKLES.values(), ids=TRICKLES.keys())
def test_a_request_that_trickles_in_is_cut_off_at_the_header_timeout(server, trickle):
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as sock:
        for sent, chunk in enumerate(trickle):  # a chunk every 0.1 s until the server hangs up
            try:
                sock.sendall(chunk)
            except OSError:  # it hung up between our look and our write
                break
            readable, _, _ = select.select([sock], [], [], 0.1)
            if readable:
                assert sock.recv(4096) == b""  # closed, with no answer
                break
        else:
            pytest.fail("the trickle was never cut off")
    assert sent >= 3
    assert Api(server.http_port).get("/health").status == 200


@pytest.mark.parametrize("server_options", [{"max_connections": 2}])
def test_connections_beyond_the_cap_get_503_server_busy(server):
    held = [socket.create_connection(("127.0.0.1", server.http_port), timeout=5) for _ in range(2)]
    try:
        with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as extra:
            reply = extra.makefile("rb").read()
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503")
        assert json.loads(body) == {"success": False, "message": "Service unavailable",
                                    "error": "Server busy"}
    finally:
        held.pop().close()
    deadline = time.monotonic() + 5  # the closed connection's thread ends soon after
    while True:
        try:
            if Api(server.http_port).get("/health").status == 200:
                break
        except (OSError, http.client.HTTPException):
            pass
        assert time.monotonic() < deadline
    for sock in held:
        sock.close()


# -- a WebSocket client that stops reading -------------------------------------------

class SleepyClient:
    """A WebSocket client on a bare socket that reads only when told to.

    Library clients read in the background; this one leaves the server's
    frames in a small receive buffer, as a frozen or malicious client would.
    """

    def __init__(self, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        self.sock.settimeout(10)
        self.protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}"), max_size=None)
        self.protocol.send_request(self.protocol.connect())
        self.flush()
        self.read_until(lambda event: hasattr(event, "status_code"))

    def flush(self):
        self.sock.sendall(b"".join(self.protocol.data_to_send()))

    def request(self, frame):
        """Send a frame and wait for the next text frame."""
        self.protocol.send_text(json.dumps(frame).encode())
        self.flush()
        return json.loads(self.read_until(lambda event: getattr(event, "opcode", None) == Opcode.TEXT).data)

    def read_until(self, wanted):
        while True:
            for event in self.protocol.events_received():
                if wanted(event):
                    return event
            data = self.sock.recv(65536)
            if not data:
                self.protocol.receive_eof()
                return None
            self.protocol.receive_data(data)

    def read_to_the_end(self):
        """Read everything left; return the close code the server sent (None if none)."""
        self.read_until(lambda event: False)
        return self.protocol.close_code, self.protocol.close_reason


@pytest.mark.parametrize("server_options", [NO_LIMITS])
def test_a_client_that_stops_reading_is_dropped_and_the_room_goes_on(server, api, caplog):
    token, _, _ = api.register()
    room_id = api.create_room(token, "Firehose")
    sender, listener = ChatClient(server.ws_port), ChatClient(server.ws_port)
    for client, user_token in ((sender, token), (listener, api.register()[0])):
        client.request({"type": "auth", "token": user_token})
        client.request({"type": "join_room", "room_id": room_id})
    sleeper = SleepyClient(server.ws_port)
    assert sleeper.request({"type": "auth", "token": api.register()[0]})["success"]
    assert sleeper.request({"type": "join_room", "room_id": room_id})["success"]
    content = "z" * 4000
    with caplog.at_level(logging.WARNING):
        for batch in range(200):  # 80 kB a batch, 16 MB at most
            for _ in range(20):
                sender.send({"type": "send_message", "content": content})
            assert all(f["success"] for f in frames_of_type(sender, "message_sent", 20))
            assert all(f["success"] for f in frames_of_type(listener, "message_received", 20))
            if "over 1048576 bytes unread" in caplog.text:
                break
        else:
            pytest.fail("the sleeper was never dropped")
    assert sleeper.read_to_the_end() == (1008, "too slow")
    sleeper.sock.close()
    frames_of_type(sender, "user_left", 1)
    assert sender.request({"type": "send_message", "content": "still here"})["data"]["type"] == "message_sent"
    sender.close()
    listener.close()


@pytest.mark.parametrize("server_options", [{"header_timeout": 0.5}])
def test_a_client_that_never_reads_its_answers_is_cut_off(server):
    """Pipelined requests whose answers pile up unread do not hold a thread forever."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.http_port))
    try:
        # 2,000 answers of the page's style sheet: far more than the socket buffers hold.
        sock.sendall(b"GET /static/chat.css HTTP/1.1\r\nHost: x\r\n\r\n" * 2000)
        assert server.http.wait_for_connections(0, timeout=10)  # the watchdog cut it off
    finally:
        sock.close()
    assert Api(server.http_port).get("/health").status == 200


# -- another server holds the database -------------------------------------------------

@pytest.mark.sqlite_only
def test_a_second_server_on_a_held_database_is_refused_with_the_files_name(server, serve_with,
                                                                            tmp_path):
    db = tmp_path / "chat.db"  # the file the server fixture serves
    with pytest.raises(swiftchat.StartupError) as refused:
        serve_with(db=db)
    assert str(db) in str(refused.value) and "in use" in str(refused.value)
    assert Api(server.http_port).get("/health").status == 200  # the first goes on


def test_a_memory_database_may_be_served_twice_in_one_process(serve_with):
    one, two = serve_with(db=":memory:"), serve_with(db=":memory:")
    assert Api(one.http_port).get("/health").status == 200
    assert Api(two.http_port).get("/health").status == 200


@pytest.mark.sqlite_only
def test_a_second_server_process_on_a_held_database_exits_1_with_one_line(tmp_path):
    db = tmp_path / "held.db"
    first, _, _ = start_cli("--db", str(db))
    try:
        second = run_cli("--http-port", "0", "--ws-port", "0", "--db", str(db))
    finally:
        end_process(first)
    assert second.returncode == 1 and second.stdout == ""
    assert len(second.stderr.splitlines()) == 1 and str(db) in second.stderr, second.stderr
    assert "Traceback" not in second.stderr


def test_the_hold_on_a_database_ends_with_its_process_even_under_sigkill(tmp_path):
    db = tmp_path / "held.db"
    first, _, _ = start_cli("--db", str(db))
    try:
        first.kill()  # SIGKILL: no clean-up code runs; the kernel drops the hold
        first.wait(timeout=10)
        again, http_port, _ = start_cli("--db", str(db))
        try:
            assert Api(http_port).get("/health").status == 200
        finally:
            end_process(again)
    finally:
        end_process(first)


# -- a failing disk: writes fail with an I/O error -------------------------------------

UNAVAILABLE = {"success": False, "message": "Service unavailable", "error": "Database unavailable"}


@pytest.mark.sqlite_only
def test_an_io_error_is_a_503_logged_once_and_writes_resume_by_themselves(tmp_path):
    """A failing disk: every write is a 503 meanwhile, one log line says so, and writes come back."""
    db = tmp_path / "chat.db"
    process, http_port, ws_port = start_cli("--db", str(db), "--log-level", "INFO")
    try:
        api = Api(http_port)
        token, _, _ = api.register()
        room_id = api.create_room(token, "Failing disk")
        client = ChatClient(ws_port)
        client.request({"type": "auth", "token": token})
        assert client.request({"type": "join_room", "room_id": room_id})["success"]
        # The disk fails: with a file size limit at the -wal file's size, the
        # next commit cannot append its frames (EFBIG), which SQLite reports as
        # a disk I/O error; CPython ignores SIGXFSZ, so the process lives on.
        # The WAL only grows until a checkpoint (1,000 pages, or at close).
        limit = os.path.getsize(f"{db}-wal")
        resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        for n in range(3):
            reply = api.post("/rooms", {"name": f"Not now {n}"}, token=token)
            assert reply.status == 503 and reply.json == UNAVAILABLE
        assert client.request({"type": "send_message", "content": "lost"}) == FAILED_SAVE
        assert api.get("/rooms", token=token).status == 200  # reads go on
        resource.prlimit(process.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        assert api.post("/rooms", {"name": "Now"}, token=token).status == 201
        assert client.request({"type": "send_message", "content": "kept"})["success"]
        client.close()
        process.send_signal(signal.SIGTERM)
        _, log_text = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()
    lines = log_text.splitlines()
    assert len([line for line in lines if "writes to" in line and "fail" in line]) == 1, log_text
    assert len([line for line in lines if "work again" in line]) == 1, log_text
    assert "Traceback" not in log_text
