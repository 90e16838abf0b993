"""Limits that cannot be turned against users (CONTRACT 1.2 and 1.3), tried through the real ports.

Failed logins are counted per (username, client address), so a stranger's
guesses lock out only the stranger; a trusted proxy's X-Forwarded-For names
the client; rooms, WebSocket connections and unauthenticated sockets are
capped, and idle sockets push out only the oldest of their own address;
both connection caps fit under the file limit; a client_id cannot be reused
for another message. Other loopback addresses (127.0.0.2, ...) stand for
other machines. test_class.py has the login limits of a class behind one address.
"""

import asyncio
import json
import logging
import resource
import signal
import socket

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from conftest import (NO_LIMITS, TOO_MANY_LOGINS, Api, ChatClient, authed, closed_with, login,
                      run_cli, start_cli)


@pytest.fixture
def limited(serve_with, clock, server_options):
    """A server whose limits run on `clock`, with these server_options."""
    return serve_with(clock=clock, **server_options)


# -- failed logins per (username, address) ---------------------------------------------------

def test_a_strangers_guesses_lock_out_only_the_stranger(limited, clock):
    Api(limited.http_port).register("alice", "alice-password")
    stranger, alice = Api(limited.http_port, source="127.0.0.2"), Api(limited.http_port)
    for _ in range(5):
        assert login(stranger, "alice", "guess-guess").status == 401
    locked = login(stranger, "alice", "alice-password")
    assert locked.status == 429 and locked.json == TOO_MANY_LOGINS
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    assert login(alice, "alice", "alice-password").status == 200  # her own address never failed
    clock.advance(15 * 60)
    assert login(stranger, "alice", "alice-password").status == 200


def test_a_username_failing_100_times_from_everywhere_is_refused_where_it_failed(limited):
    Api(limited.http_port).register("bob", "bob-password")
    guessers = [Api(limited.http_port, source=f"127.0.0.{10 + i}") for i in range(25)]
    for guesser in guessers:  # 4 each: no (username, address) pair is locked
        for _ in range(4):
            assert login(guesser, "bob", "guess-guess").status == 401
    assert login(guessers[0], "bob", "bob-password").json == TOO_MANY_LOGINS
    assert login(Api(limited.http_port, source="127.0.0.2"), "bob", "bob-password").status == 200


@pytest.mark.parametrize("server_options", [{"login_attempts": 2}])
def test_login_attempts_sets_all_three_counts(limited):
    Api(limited.http_port).register("carol", "carol-password")
    guesser = Api(limited.http_port, source="127.0.0.2")
    for _ in range(2):
        login(guesser, "carol", "guess-guess")
    assert login(guesser, "carol", "carol-password").status == 429  # the pair: 2
    for number in range(10):
        login(guesser, f"nobody{number}", "guess-guess")  # 12 failures from this address in all
    assert login(guesser, "someone", "guess-guess").status == 429  # the address: 6 x 2 = 12
    assert login(Api(limited.http_port), "carol", "carol-password").status == 200


# -- behind a trusted proxy -----------------------------------------------------------------

PROXIED = {"trusted_proxy": "127.0.0.1,127.0.0.3"}


@pytest.mark.parametrize("server_options", [PROXIED])
def test_behind_a_trusted_proxy_each_client_is_counted_apart(limited, caplog):
    proxy = Api(limited.http_port)
    proxy.register("dave", "dave-password")
    guesser = {"X-Forwarded-For": "10.1.1.1"}
    for _ in range(5):
        login(proxy, "dave", "guess-guess", headers=guesser)
    assert login(proxy, "dave", "dave-password", headers=guesser).status == 429
    with caplog.at_level(logging.INFO, logger="swiftchat"):
        reply = login(proxy, "dave", "dave-password", headers={"X-Forwarded-For": "10.1.1.2"})
    assert reply.status == 200
    assert any(r.getMessage().startswith("10.1.1.2 POST /api/v1/auth/login 200")
               for r in caplog.records)


@pytest.mark.parametrize("server_options", [PROXIED])
@pytest.mark.parametrize("chain, counted_as", [
    ("10.1.1.1", "10.1.1.1"),
    ("6.6.6.6, 10.1.1.1", "10.1.1.1"),          # the left part is the client's own invention
    ("10.1.1.1, 127.0.0.3", "10.1.1.1"),        # a second trusted proxy appended its peer
    ("10.1.1.1,   127.0.0.3 ,127.0.0.1", "10.1.1.1"),
    ("not-an-address", None),                   # nothing usable: the proxy's own address
    ("", None),
])
def test_the_rightmost_untrusted_forwarded_address_is_the_client(limited, chain, counted_as):
    proxy = Api(limited.http_port)
    proxy.register("erin", "erin-password")
    for _ in range(5):
        login(proxy, "erin", "guess-guess", headers={"X-Forwarded-For": chain})
    locked_for = {"X-Forwarded-For": counted_as} if counted_as else {}
    assert login(proxy, "erin", "erin-password", headers=locked_for).status == 429
    elsewhere = {"X-Forwarded-For": "10.9.9.9"}
    assert login(proxy, "erin", "erin-password", headers=elsewhere).status == 200


@pytest.mark.parametrize("server_options", [{"trusted_proxy": "127.0.0.3"}])
def test_forwarded_for_from_an_untrusted_peer_is_ignored(limited):
    Api(limited.http_port).register("frank", "frank-password")
    forger = Api(limited.http_port, source="127.0.0.2")
    for i in range(5):  # a new "client" on every try
        login(forger, "frank", "guess-guess", headers={"X-Forwarded-For": f"10.0.0.{i}"})
    assert login(forger, "frank", "frank-password",
                 headers={"X-Forwarded-For": "10.0.0.99"}).status == 429


def test_a_trusted_proxy_that_is_not_an_address_is_refused_at_start(serve_with):
    with pytest.raises(ValueError):
        serve_with(trusted_proxy="nonsense")


# -- rooms per hour ---------------------------------------------------------------------------

@pytest.mark.parametrize("server_options", [{"rooms_per_hour": 3}])
def test_rooms_per_hour_limits_each_user_and_says_when_to_retry(limited, clock):
    api = Api(limited.http_port)
    token, _, _ = api.register()
    other, _, _ = api.register()
    watcher = authed(limited, other)
    for i in range(3):
        api.create_room(token, f"Room {i}")
        assert watcher.recv_type("room_created")["data"]["name"] == f"Room {i}"
    refused = api.post("/rooms", {"name": "One too many"}, token=token)
    assert refused.status == 429 and refused.json == {
        "success": False, "message": "Too many requests",
        "error": "Too many rooms created; try again later"}
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    api.create_room(other, "Someone else's")  # another user has an hour of their own
    assert watcher.recv_type("room_created")["data"]["name"] == "Someone else's"  # none between
    clock.advance(3600)
    api.create_room(token, "An hour later")
    assert [r["name"] for r in api.get("/rooms").data["rooms"]] == [
        "Room 0", "Room 1", "Room 2", "Someone else's", "An hour later"]


# -- WebSocket connections ------------------------------------------------------------------

def bare_socket(port, source="127.0.0.1", forwarded_for=None):
    """A WebSocket connection that completed its handshake and never authenticates."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
    return connect(f"ws://127.0.0.1:{port}", proxy=None, open_timeout=5, max_queue=None,
                   source_address=(source, 0), additional_headers=headers).__enter__()


def still_waiting(websocket):
    """Whether the server still waits for this connection's auth: a ping is told to authenticate
    (and the connection is then closed). Once the answer is read, the server has admitted it."""
    websocket.send('{"type": "ping"}')
    return "First message must be auth" in websocket.recv(timeout=5)


def authenticates(websocket, token):
    """Whether auth on this connection succeeds; once it has, the connection no longer waits."""
    websocket.send(json.dumps({"type": "auth", "token": token}))
    return "WebSocket authentication successful" in websocket.recv(timeout=5)


PUSHED_OUT = (1008, "too many unauthenticated connections")


def test_a_21st_unauthenticated_connection_is_served_and_the_oldest_closed(server):
    """Idle sockets cannot keep out a client that authenticates at once (CONTRACT 1.3)."""
    token, _, _ = Api(server.http_port).register()
    elsewhere = bare_socket(server.ws_port, "127.0.0.12")
    idle = [bare_socket(server.ws_port, "127.0.0.11") for _ in range(20)]
    try:
        assert authenticates(bare_socket(server.ws_port, "127.0.0.11"), token)
        assert closed_with(idle[0]) == PUSHED_OUT
        quiet = bare_socket(server.ws_port, "127.0.0.11")  # 20 waiting: one authenticated, gone
        assert authenticates(bare_socket(server.ws_port, "127.0.0.11"), token)
        assert closed_with(idle[1]) == PUSHED_OUT  # the oldest again, not quiet's doing
        assert still_waiting(idle[2]) and still_waiting(quiet) and still_waiting(elsewhere)
    finally:
        for websocket in idle:
            websocket.close()


@pytest.mark.parametrize("server_options", [{**PROXIED, "max_ws_unauthenticated": 2}])
def test_behind_a_trusted_proxy_unauthenticated_sockets_are_counted_per_client(limited):
    first = [bare_socket(limited.ws_port, forwarded_for="10.2.2.2") for _ in range(2)]
    other = bare_socket(limited.ws_port, forwarded_for="10.3.3.3")
    third = bare_socket(limited.ws_port, forwarded_for="10.2.2.2")
    assert still_waiting(third)
    assert closed_with(first[0]) == PUSHED_OUT
    assert still_waiting(first[1]) and still_waiting(other)
    for websocket in (*first, other, third):
        websocket.close()


@pytest.mark.parametrize("server_options", [{"trusted_proxy": "127.0.0.1",
                                             "max_ws_unauthenticated": 1}])
@pytest.mark.parametrize("first, then, one_client", [
    ("10.4.4.4", "::ffff:10.4.4.4", True),        # IPv4-mapped: the IPv4 address
    ("::ffff:10.4.4.4", "10.4.4.4", True),
    ("2001:db8::1", "2001:db8::ffff:2", True),    # one IPv6 /64
    ("2001:db8::1", "2001:db8:0:1::1", False),    # the next /64
    ("10.4.4.4", "10.4.4.5", False),
])
def test_one_client_is_one_address_for_unauthenticated_sockets_however_written(
        limited, first, then, one_client):
    """Addresses as every limit counts them (protocol.limit_key). A dual-stack listener sees each
    IPv4 peer in its mapped form only, so the forms meet here through X-Forwarded-For."""
    waiting = bare_socket(limited.ws_port, forwarded_for=first)
    newcomer = bare_socket(limited.ws_port, forwarded_for=then)
    assert still_waiting(newcomer)
    if one_client:
        assert closed_with(waiting) == PUSHED_OUT
    else:
        assert still_waiting(waiting)
    for websocket in (waiting, newcomer):
        websocket.close()


@pytest.mark.parametrize("server_options", [{"max_ws_connections": 3, **NO_LIMITS}])
def test_a_handshake_beyond_the_connection_cap_is_503(limited):
    held = [bare_socket(limited.ws_port) for _ in range(3)]
    with pytest.raises(InvalidStatus) as refused:
        bare_socket(limited.ws_port)
    assert refused.value.response.status_code == 503
    held.pop().close()
    for _ in range(100):  # until the server has seen the close
        try:
            bare_socket(limited.ws_port).close()
            break
        except InvalidStatus:
            pass
    else:
        pytest.fail("the cap never let a new connection in")
    for websocket in held:
        websocket.close()


def silent_sockets(port, count, source="127.0.0.1"):
    """count TCP connections to port that never send a byte (a handshake that never comes)."""
    return [socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
            for _ in range(count)]


def dropped(sock):
    """Whether the server hung up on sock (EOF or reset) within 5 seconds."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


HANDSHAKE = (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def shakes_hands(sock):
    """Whether a handshake sent now on this TCP connection is answered 101."""
    sock.sendall(HANDSHAKE)
    return sock.recv(12) == b"HTTP/1.1 101"


def test_silent_connections_cannot_keep_out_one_that_shakes_hands_at_once(server):
    """20 TCP connections that never send a handshake; a 21st from their address is served and
    the oldest silent one is dropped (CONTRACT 1.3)."""
    token, _, _ = Api(server.http_port).register()
    silent = silent_sockets(server.ws_port, 20, "127.0.0.21")
    try:
        assert authenticates(bare_socket(server.ws_port, "127.0.0.21"), token)
        assert dropped(silent[0])
        assert shakes_hands(silent[1])  # the others were kept
    finally:
        for sock in silent:
            sock.close()


@pytest.mark.parametrize("server_options", [{"max_ws_connections": 2, "max_ws_unauthenticated": 0}])
def test_connections_that_never_send_a_handshake_count_against_the_cap(limited):
    room = 2 + 50  # the cap, and room to answer a handshake over it with 503
    held = [sock for n in range(room) for sock in silent_sockets(limited.ws_port, 1,
                                                                 f"127.0.1.{n % 4 + 1}")]
    extra = silent_sockets(limited.ws_port, 1, "127.0.2.1")
    try:
        assert dropped(extra[0])
    finally:
        for sock in held + extra:
            sock.close()


# -- the file limit (CONTRACT 1.3) --------------------------------------------------------------

def lower_file_limit(limit):
    def in_child():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    return in_child


def served_503(port):
    """Whether a new HTTP connection is answered 503 at once, before it sends a request."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        return sock.makefile("rb").readline().startswith(b"HTTP/1.1 503")


def test_a_hard_file_limit_of_1024_starts_with_both_caps_lowered_in_proportion(tmp_path):
    process, http_port, ws_port = start_cli("--db", str(tmp_path / "fds.db"),
                                            "--max-ws-unauthenticated", "0",
                                            preexec_fn=lower_file_limit(1024))
    held, websockets = [], []
    try:
        # 1,024 - 100 = 924 shared as the 1,000 and 10,000 asked for: 84 and 840.
        held = [socket.create_connection(("127.0.0.1", http_port), timeout=5) for _ in range(84)]
        assert served_503(http_port)
        websockets = [bare_socket(ws_port) for _ in range(100)]  # 1.2 allowed 1 here
    finally:
        for connection in held + websockets:
            connection.close()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    assert stderr.count("lowered to fit the file limit of 1024, 100 files kept for the rest: "
                        "HTTP 84 (not 1000), WebSocket 840 (not 10000)") == 1, stderr
    assert stderr.count(" WARNING ") == 1, stderr


@pytest.mark.parametrize("limit", [200, 227])  # 64 + 64 + 100 = 228 would do
def test_a_file_limit_too_small_for_64_connections_of_each_kind_ends_the_start(tmp_path, limit):
    ended = run_cli("--http-port", "0", "--ws-port", "0", "--db", str(tmp_path / "fds.db"),
                    preexec_fn=lower_file_limit(limit))
    assert ended.returncode == 1 and ended.stdout == ""
    assert ended.stderr.splitlines() == [
        f"swiftchat: the file limit of {limit} open files is too small: SwiftChat needs at least 228 "
        "(64 HTTP and 64 WebSocket connections, 100 other files); raise it with ulimit -n"]


def test_running_out_of_file_descriptors_logs_one_line_and_recovers(tmp_path):
    process, http_port, ws_port = start_cli(
        "--db", str(tmp_path / "fds.db"), "--max-ws-connections", "0",
        "--max-ws-unauthenticated", "0", "--max-connections", "20",
        preexec_fn=lower_file_limit(200))
    sockets = []
    try:
        async def flood():  # more connections than the process has descriptors
            for port in [ws_port] * 250:
                sockets.append(socket.create_connection(("127.0.0.1", port), timeout=5))
                await asyncio.sleep(0)
        asyncio.run(flood())
        for sock in sockets:
            sock.close()
        sockets.clear()
        api = Api(http_port)
        for _ in range(100):  # the server accepts again once descriptors are free
            try:
                if api.get("/health").status == 200:
                    break
            except OSError:
                api.close()
                api = Api(http_port)
        else:
            pytest.fail("the server never answered again")
        client = ChatClient(ws_port)
        token, _, _ = api.register()
        assert client.request({"type": "auth", "token": token})["success"]
        client.close()
    finally:
        for sock in sockets:
            sock.close()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    assert stderr.count("out of file descriptors") == 1, stderr[-3000:]
    assert "Traceback" not in stderr


# -- a client_id names one message ------------------------------------------------------------

CLIENT_ID_REUSED = {"success": False, "message": "Conflict",
                    "error": "client_id already used for another message"}


def test_a_client_id_reused_for_another_room_or_text_is_409(server, api):
    token, _, _ = api.register()
    first_room, second_room = api.create_room(token), api.create_room(token)
    original = {"room_id": first_room, "content": "the original", "client_id": "k-1"}
    stored = api.post("/messages", original, token=token)
    assert stored.status == 201
    assert api.post("/messages", original, token=token).data["duplicate"] is True
    for changed in ({"room_id": second_room}, {"content": "something else"}):
        reply = api.post("/messages", {**original, **changed}, token=token)
        assert reply.status == 409 and reply.json == CLIENT_ID_REUSED
    for room_id in (first_room, second_room):
        history = api.get(f"/messages?room_id={room_id}", token=token).data["messages"]
        assert [m["content"] for m in history] == (["the original"] if room_id == first_room else [])


def test_over_websocket_a_reused_client_id_is_refused_and_nobody_hears_it(server, api, chat):
    token, _, _ = api.register()
    listener_token, _, _ = api.register()
    room_id = api.create_room(token)
    api.post("/rooms/join", {"room_id": room_id}, token=listener_token)
    sender, listener = chat(token), chat(listener_token)
    sender.request({"type": "join_room", "room_id": room_id})
    listener.request({"type": "join_room", "room_id": room_id})
    sender.recv_type("user_joined")
    assert sender.request({"type": "send_message", "content": "first", "client_id": "c"})["success"]
    assert listener.recv_type("message_received")["data"]["content"] == "first"
    assert sender.request({"type": "send_message", "content": "second", "client_id": "c"}) == {
        "success": False, "message": "Request failed",
        "error": "client_id already used for another message"}
    sender.request({"type": "send_message", "content": "third"})
    assert listener.recv_type("message_received")["data"]["content"] == "third"  # nothing between
