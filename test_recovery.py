"""Message ids, safe retries with client_id, recovery with since, and schema upgrades.

All through real WebSocket clients and real database files.
"""

import sqlite3
import threading

import pytest

import accounts
import store
from conftest import NO_LIMITS, TEST_ITERATIONS, Api, ChatClient, history, in_room, login, say

# Each test makes its own users and rooms, and a client_id is one user's.
pytestmark = pytest.mark.shared_server


# -- client_id ---------------------------------------------------------------------

def test_a_retry_with_the_same_client_id_is_stored_and_heard_once(server, api, room):
    room_id, token, _ = room
    sender, _ = in_room(api, server, room_id, token)
    listener, _ = in_room(api, server, room_id)
    sender.recv_type("user_joined")
    first = say(sender, "only once", client_id="c-1")
    assert first["data"]["client_id"] == "c-1" and "duplicate" not in first["data"]
    heard = listener.recv_type("message_received")["data"]
    assert (heard["id"], heard["client_id"]) == (first["data"]["id"], "c-1")
    again = say(sender, "only once", client_id="c-1")
    assert again["data"] == {**first["data"], "duplicate": True}
    other = say(sender, "only once", client_id="c-2")  # another id is another message
    assert other["data"]["id"] > first["data"]["id"]
    assert listener.recv_type("message_received")["data"]["id"] == other["data"]["id"]  # not the retry
    assert [m["content"] for m in history(api, room_id, token)] == ["only once", "only once"]


def test_client_ids_are_remembered_across_a_restart(serve_with):
    with serve_with() as server:
        api = Api(server.http_port)
        token, _, _ = api.register()
        room_id = api.create_room(token)
        client, _ = in_room(api, server, room_id, token)
        first = say(client, "before the restart", client_id="uuid-123")
        client.close()
    with serve_with() as server:
        client, _ = in_room(Api(server.http_port), server, room_id, token)
        again = say(client, "before the restart", client_id="uuid-123")
        assert again["data"]["duplicate"] is True and again["data"]["id"] == first["data"]["id"]
        client.close()


@pytest.mark.parametrize("client_id, error", [
    ("", "client_id must be 1-64 characters"), ("x" * 65, "client_id must be 1-64 characters"),
    (42, "client_id must be a string"), (["a"], "client_id must be a string")])
def test_a_bad_client_id_is_refused(server, api, room, client_id, error):
    client, _ = in_room(api, server, room.id)
    assert say(client, "hello", client_id=client_id) == {
        "success": False, "message": "Request failed", "error": error}


# -- since -----------------------------------------------------------------------------

def test_a_client_that_comes_back_with_since_gets_exactly_what_it_missed(server, api, room):
    room_id, token, _ = room
    talker, _ = in_room(api, server, room_id, token)
    dropper, dropper_token = in_room(api, server, room_id)
    talker.recv_type("user_joined")
    seen = say(talker, "before the drop")["data"]["id"]
    assert dropper.recv_type("message_received")["data"]["id"] == seen
    dropper.close()
    talker.recv_type("user_left")
    missed = [say(talker, f"missed {n}")["data"]["id"] for n in range(3)]

    back = ChatClient(server.ws_port)
    back.request({"type": "auth", "token": dropper_token})
    joined = back.request({"type": "join_room", "room_id": room_id, "since": seen})
    assert joined["data"] == {"type": "room_joined", "room_id": room_id,
                              "user_id": joined["data"]["user_id"], "recovered": True}
    replayed = [back.recv_type("message_received")["data"] for _ in missed]
    assert [m["id"] for m in replayed] == missed
    assert [m["content"] for m in replayed] == ["missed 0", "missed 1", "missed 2"]
    assert all(m["replayed"] is True for m in replayed)
    live = say(talker, "live again")["data"]["id"]
    frame = back.recv_type("message_received")["data"]
    assert frame["id"] == live and "replayed" not in frame
    assert back.request({"type": "ping"})["data"]["type"] == "pong"  # nothing else was queued


def test_since_with_nothing_missed_replays_nothing(server, api, room):
    room_id, token, _ = room
    talker, _ = in_room(api, server, room_id, token)
    last = say(talker, "the last one")["data"]["id"]
    other = ChatClient(server.ws_port)
    other.request({"type": "auth", "token": api.register()[0]})
    joined = other.request({"type": "join_room", "room_id": room_id, "since": last})
    assert joined["data"]["recovered"] is True
    assert other.request({"type": "ping"})["data"]["type"] == "pong"


@pytest.mark.parametrize("server_options", [NO_LIMITS])
def test_more_than_100_missed_replays_the_newest_100_and_says_not_recovered(server, api, room):
    room_id, token, _ = room
    talker, _ = in_room(api, server, room_id, token)
    ids = [say(talker, f"message {n}")["data"]["id"] for n in range(105)]
    back = ChatClient(server.ws_port)
    back.request({"type": "auth", "token": api.register()[0]})
    joined = back.request({"type": "join_room", "room_id": room_id, "since": ids[0] - 1})
    assert joined["data"]["recovered"] is False
    replayed = [back.recv_type("message_received")["data"]["id"] for _ in range(100)]
    assert replayed == ids[-100:]


@pytest.mark.parametrize("server_options", [NO_LIMITS])
def test_messages_sent_during_the_replay_follow_it_with_no_gap_and_no_duplicate(server, api, room):
    room_id, token, _ = room
    senders = [in_room(api, server, room_id)[0] for _ in range(3)]
    start = say(senders[0], "the start")["data"]["id"]
    for _ in range(40):  # missed before the rejoin
        say(senders[1], "before")
    stop = threading.Event()

    def keep_talking(client):
        while not stop.is_set():
            say(client, "during")

    threads = [threading.Thread(target=keep_talking, args=(client,)) for client in senders]
    for thread in threads:
        thread.start()
    try:
        back = ChatClient(server.ws_port)
        back.request({"type": "auth", "token": api.register()[0]})
        back.send({"type": "join_room", "room_id": room_id, "since": start})
        received, recovered = [], None
        while len(received) < 150:
            frame = back.recv()
            if frame["data"]["type"] == "room_joined":
                recovered = frame["data"]["recovered"]
            if frame["data"]["type"] == "message_received":
                received.append(frame["data"]["id"])
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    stored = [m["id"] for m in history(api, room_id, token) if m["id"] > start]
    # When the talkers got more than 100 messages in before the join was
    # served (a busy machine), the replay is the newest 100 and recovered
    # is false; either way, live messages follow it with no gap.
    first = stored.index(received[0])
    assert (first == 0) is recovered, (first, recovered)
    assert received == stored[first:first + len(received)], \
        f"received {received}\nstored {stored}"  # every one, in order, once


@pytest.mark.parametrize("since", ["12", -1, True, 1.5, 2**63])
def test_a_bad_since_is_refused(server, api, room, since):
    client = ChatClient(server.ws_port)
    client.request({"type": "auth", "token": api.register()[0]})
    assert client.request({"type": "join_room", "room_id": room.id, "since": since}) == {
        "success": False, "message": "Request failed", "error": "since must be a non-negative integer"}


# -- the schema upgrades in place ---------------------------------------------------------

# The tables of the first release (schema version 0), as its schema.sql made them.
FIRST_RELEASE_SCHEMA = """
CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE COLLATE NOCASE,
                    password_hash TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX users_by_age ON users (created_at, id);
CREATE TABLE rooms (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE,
                    description TEXT NOT NULL DEFAULT '', creator_id TEXT NOT NULL REFERENCES users (id),
                    created_at TEXT NOT NULL);
CREATE INDEX rooms_by_age ON rooms (created_at, id);
CREATE TABLE room_members (room_id TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
                           user_id TEXT NOT NULL REFERENCES users (id), joined_at TEXT NOT NULL,
                           PRIMARY KEY (room_id, user_id));
CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT,
                       room_id TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
                       user_id TEXT NOT NULL REFERENCES users (id), content TEXT NOT NULL,
                       timestamp INTEGER NOT NULL);
CREATE INDEX messages_by_room ON messages (room_id, id);
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@pytest.mark.sqlite_only
def test_a_database_of_the_first_release_is_upgraded_in_place_with_nothing_lost(tmp_path, serve_with):
    db = tmp_path / "old.db"
    old = sqlite3.connect(db)
    old.executescript(FIRST_RELEASE_SCHEMA)
    old.execute("PRAGMA journal_mode = WAL")
    old.execute("INSERT INTO users VALUES ('user_0000000a', 'veteran', ?, '2025-01-01T00:00:00Z')",
                (accounts.hash_password("old-password", TEST_ITERATIONS),))
    old.execute("INSERT INTO rooms VALUES ('room_0000000b', 'Old times', 'since 2025', 'user_0000000a',"
                " '2025-01-01T00:00:00Z')")
    old.execute("INSERT INTO room_members VALUES ('room_0000000b', 'user_0000000a', '2025-01-01T00:00:00Z')")
    old.executemany("INSERT INTO messages (room_id, user_id, content, timestamp)"
                    " VALUES ('room_0000000b', 'user_0000000a', ?, 1735689600)",
                    [("first words",), ("second words",)])
    old.commit()
    old.close()

    with serve_with(db=db) as server:
        api = Api(server.http_port)
        reply = login(api, "veteran", "old-password")
        assert reply.status == 200
        token = reply.data["token"]
        assert [r["name"] for r in api.get("/rooms").data["rooms"]] == ["Old times"]
        assert [m["content"] for m in history(api, "room_0000000b", token)] == ["first words",
                                                                               "second words"]
        client, _ = in_room(api, server, "room_0000000b", token)
        first = say(client, "new words", client_id="k1")
        assert say(client, "new words", client_id="k1")["data"]["duplicate"] is True
        assert first["data"]["id"] == 3
        client.close()
    upgraded = sqlite3.connect(db)
    try:
        assert upgraded.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
        assert upgraded.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 3
    finally:
        upgraded.close()
