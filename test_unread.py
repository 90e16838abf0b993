"""Unread counts, read markers, mentions, room activity and search (CONTRACT 1.2).

Through the real ports: GET /rooms carries each member's counts, POST
/rooms/{id}/read and the WebSocket's mark_read move a marker (and the
user's other connections hear it), members elsewhere hear room_activity and
mentions, and GET /search finds words in the rooms the caller may read.
The tests share one server: each makes its own users, rooms and words.
"""

import random
import sqlite3
import time
import urllib.parse

import pytest

import store
from conftest import RELEASE_1_1_SCHEMA, Api, ChatClient, login, say, wait_for_frame

pytestmark = pytest.mark.shared_server


def listed(api, token, room_id):
    """The room as GET /rooms lists it to the token's user."""
    rooms = api.get("/rooms?limit=100", token=token).data["rooms"]
    while True:
        found = [room for room in rooms if room["id"] == room_id]
        if found or len(rooms) < 100:
            return found[0] if found else None
        rooms = api.get(f"/rooms?limit=100&offset={len(rooms)}", token=token).data["rooms"]


def post(api, token, room_id, content):
    reply = api.post("/messages", {"room_id": room_id, "content": content}, token=token)
    assert reply.status == 201, reply.json
    return reply.data


def counts(room):
    return room["unread_count"], room["mention_count"], room["last_read_id"]


def nothing_more(client):
    """Whether no frame is waiting: a ping's pong comes back first."""
    client.send({"type": "ping"})
    return client.recv()["data"]["type"] == "pong"


@pytest.fixture
def pair(api):
    """alice's room, which bob has joined: (alice's token, bob's token, room id, bob's name)."""
    alice, _, _ = api.register()
    bob, _, bob_name = api.register()
    room_id = api.create_room(alice)
    assert api.post("/rooms/join", {"room_id": room_id}, token=bob).status == 200
    return alice, bob, room_id, bob_name


# -- counts and read markers -------------------------------------------------------------

def test_unread_and_mention_counts_follow_messages_and_the_read_marker(api, pair):
    alice, bob, room_id, bob_name = pair
    first = post(api, alice, room_id, "before bob joined?")
    late, _, _ = api.register()
    assert api.post("/rooms/join", {"room_id": room_id}, token=late).status == 200
    # A new member starts at the room's newest message: nothing unread.
    assert counts(listed(api, late, room_id)) == (0, 0, first["id"])
    second = post(api, alice, room_id, f"hello @{bob_name.upper()}")
    third = post(api, alice, room_id, "how are things")
    post(api, bob, room_id, "my own message is never unread")
    assert counts(listed(api, bob, room_id))[:2] == (3, 1)
    assert counts(listed(api, alice, room_id))[:2] == (1, 0)  # bob's
    assert counts(listed(api, late, room_id))[:2] == (3, 0)
    # Reading clears the mentions up to the marker; markers only move forward.
    reply = api.post(f"/rooms/{room_id}/read", {"message_id": second["id"]}, token=bob)
    assert (reply.status, reply.json["message"]) == (200, "Read marker updated")
    assert reply.data == {"room_id": room_id, "last_read_id": second["id"], "unread_count": 1}
    assert counts(listed(api, bob, room_id)) == (1, 0, second["id"])
    back = api.post(f"/rooms/{room_id}/read", {"message_id": first["id"]}, token=bob)
    assert back.data["last_read_id"] == second["id"]
    # Past the newest message: as far as the newest, and nothing is unread.
    ahead = api.post(f"/rooms/{room_id}/read", {"message_id": 2**62}, token=bob).data
    assert ahead["unread_count"] == 0 and ahead["last_read_id"] > third["id"]
    newer = post(api, alice, room_id, "one more")
    assert counts(listed(api, bob, room_id)) == (1, 0, ahead["last_read_id"])
    assert newer["id"] > ahead["last_read_id"]


def test_only_members_carry_counts_and_a_list_without_a_token_has_none(api, pair):
    alice, _, room_id, _ = pair
    stranger, _, _ = api.register()
    assert set(listed(api, stranger, room_id)) & {"unread_count", "mention_count",
                                                   "last_read_id"} == set()
    assert "unread_count" not in listed(api, None, room_id)
    assert "unread_count" in listed(api, alice, room_id)


def test_a_deleted_message_is_no_longer_unread_nor_a_mention(api, pair):
    alice, bob, room_id, bob_name = pair
    message = post(api, alice, room_id, f"@{bob_name} oops, wrong room")
    assert counts(listed(api, bob, room_id))[:2] == (1, 1)
    assert api.call("DELETE", f"/messages/{message['id']}", token=alice).status == 200
    assert counts(listed(api, bob, room_id))[:2] == (0, 0)


def test_the_unread_count_is_the_messages_after_the_marker_not_ones_own_whatever_is_deleted(api, pair):
    # The count is kept as arithmetic on positions (store.UNREAD_COUNT); here
    # it is checked against its definition after each of a random run of
    # posts, deletions and reads, by both users.
    alice, bob, room_id, _ = pair
    rng = random.Random(1724)
    tokens = {"alice": alice, "bob": bob}
    ids = {name: api.get("/users/me", token=token).data["user"]["id"]
           for name, token in tokens.items()}
    markers = {name: listed(api, token, room_id)["last_read_id"] for name, token in tokens.items()}
    posted = []
    for step in range(60):
        who = rng.choice(["alice", "bob"])
        action = rng.random()
        if action < 0.5 or not posted:
            posted.append(post(api, tokens[who], room_id, f"step {step}")["id"])
        elif action < 0.7:
            gone = posted.pop(rng.randrange(len(posted)))
            assert api.call("DELETE", f"/messages/{gone}", token=alice).status == 200
        else:
            upto = rng.choice(posted + [posted[-1] + 1, 1])
            markers[who] = api.post(f"/rooms/{room_id}/read", {"message_id": upto},
                                    token=tokens[who]).data["last_read_id"]
        messages = api.get(f"/messages?room_id={room_id}&limit=100", token=alice).data["messages"]
        for name, token in tokens.items():
            expected = sum(1 for m in messages
                           if m["id"] > markers[name] and m["user_id"] != ids[name])
            assert listed(api, token, room_id)["unread_count"] == expected, (step, name)


@pytest.mark.parametrize("body, error", [
    ({}, "message_id is required"),
    ({"message_id": None}, "message_id is required"),
    ({"message_id": "5"}, "message_id must be a non-negative integer"),
    ({"message_id": -1}, "message_id must be a non-negative integer"),
    ({"message_id": 1.5}, "message_id must be a non-negative integer"),
    ({"message_id": True}, "message_id must be a non-negative integer"),
    ({"message_id": 2**63}, "message_id must be a non-negative integer"),
])
def test_a_bad_message_id_is_a_400(api, pair, body, error):
    _, bob, room_id, _ = pair
    reply = api.post(f"/rooms/{room_id}/read", body, token=bob)
    assert (reply.status, reply.json["error"]) == (400, error)


def test_who_may_mark_a_room_read(api, pair):
    alice, _, room_id, _ = pair
    stranger, stranger_id, _ = api.register()
    private_id = api.post("/rooms", {"name": "secret read", "visibility": "private"},
                          token=alice).data["id"]
    cases = [
        (stranger, room_id, 403, "You are not a member of this room"),
        (stranger, private_id, 404, "Room not found"),
        (stranger, "room_00000000", 404, "Room not found"),
        (None, room_id, 401, "Missing Authorization header"),
        ("not.a.token", room_id, 401, "Invalid or expired token"),
    ]
    for token, room, status, error in cases:
        reply = api.post(f"/rooms/{room}/read", {"message_id": 1}, token=token)
        assert (reply.status, reply.json["error"]) == (status, error), (room, token)


def test_reading_on_one_device_is_heard_on_the_others(api, server, pair):
    alice, bob, room_id, bob_name = pair
    message = post(api, alice, room_id, "read me anywhere")
    not_joined = api.create_room(alice)
    laptop, phone = ChatClient(server.ws_port), ChatClient(server.ws_port)
    for device, token in ((laptop, bob), (phone, login(api, bob_name).data["token"])):
        assert device.request({"type": "auth", "token": token})["success"]
    marker = {"room_id": room_id, "last_read_id": message["id"], "unread_count": 0}
    reply = laptop.request({"type": "mark_read", "room_id": room_id, "message_id": message["id"]})
    assert reply == {"success": True, "message": "Read marker updated",
                     "data": {"type": "read_marker", **marker}}
    assert phone.recv() == reply  # the other device hears it
    assert nothing_more(laptop)  # and the sender hears it once
    # Over REST, every connection of the user hears it.
    api.post(f"/rooms/{room_id}/read", {"message_id": message["id"]}, token=bob)
    assert laptop.recv_type("read_marker")["data"] == {"type": "read_marker", **marker}
    assert phone.recv_type("read_marker")["data"] == {"type": "read_marker", **marker}
    errors = [laptop.request(frame)["error"] for frame in (
        {"type": "mark_read", "room_id": room_id},
        {"type": "mark_read", "message_id": 1},
        {"type": "mark_read", "room_id": "room_00000000", "message_id": 1},
        {"type": "mark_read", "room_id": not_joined, "message_id": 1},
    )]
    assert errors == ["message_id is required", "room_id is required", "Room not found",
                      "You are not a member of this room"]


# -- activity elsewhere and mentions -----------------------------------------------------

def test_members_elsewhere_hear_of_activity_at_most_once_a_second_per_room(api, chat, pair):
    alice, bob, room_id, _ = pair
    elsewhere, outsider, talker = chat(bob), chat(api.register()[0]), chat(alice)
    talker.request({"type": "join_room", "room_id": room_id})
    sent = [say(talker, f"burst {n}")["data"]["id"] for n in range(6)]
    first = elsewhere.recv_type("room_activity")
    first_at = time.monotonic()
    assert first == {"success": True, "message": "New activity", "data": {
        "type": "room_activity", "room_id": room_id, "last_message_id": sent[0]}}
    # The rest of the burst: one more frame when the second is up, with the newest id.
    later = elsewhere.recv_type("room_activity", timeout=5)
    assert later["data"]["last_message_id"] == sent[-1]
    assert time.monotonic() - first_at > 0.5
    assert nothing_more(outsider)  # not a member: told nothing
    assert nothing_more(talker)  # in the room: it hears the messages themselves


def test_a_mentioned_member_elsewhere_is_told_and_others_are_not(api, chat, pair):
    alice, bob, room_id, bob_name = pair
    carol_token, carol_id, carol_name = api.register()  # not a member
    bob_id = api.get("/users/me", token=bob).data["user"]["id"]
    bobs_phone, carols, talker = chat(bob), chat(carol_token), chat(alice)
    talker.request({"type": "join_room", "room_id": room_id})
    sent = say(talker, f"@{carol_name} and @{bob_name}, look")["data"]
    assert sent["mentions"] == [carol_id, bob_id]
    told = wait_for_frame(bobs_phone, "mention")
    assert told["message"] == "You were mentioned"
    assert told["data"]["message"] == {key: value for key, value in sent.items() if key != "type"}
    assert nothing_more(carols)  # mentioned, but not a member: told nothing
    # An edit finds the mentions again, and the counts follow.
    assert counts(listed(api, bob, room_id))[1] == 1
    edited = api.call("PATCH", f"/messages/{sent['id']}", {"content": "never mind"}, token=alice)
    assert edited.data["mentions"] == []
    assert counts(listed(api, bob, room_id))[1] == 0
    assert api.get(f"/messages?room_id={room_id}", token=bob).data["messages"][-1]["mentions"] == []


def test_which_words_are_mentions(api, pair):
    alice, _, room_id, bob_name = pair
    _, dot_id, dot_name = api.register(f"{bob_name}.dot")  # a name with a dot in it
    bob_id = api.get("/users/me", token=pair[1]).data["user"]["id"]
    cases = [
        (f"hi @{bob_name}", [bob_id]),
        (f"HI @{bob_name.upper()}!", [bob_id]),
        (f"thanks @{bob_name}.", [bob_id]),  # the end of a sentence
        (f"@{bob_name}- and -@{bob_name}", [bob_id]),
        (f"@{bob_name} @{bob_name} twice", [bob_id]),
        (f"@{dot_name} and @{bob_name}", [dot_id, bob_id]),
        (f"mail {bob_name}@example.com", []),
        (f"@{bob_name}x", []),
        (f"@{bob_name}é", []),
        (f"@@{bob_name}", []),
        (f"@ {bob_name}", []),
        (f"x@{bob_name}", []),
        ("@nobody_by_this_name", []),
        ("@" * 200, []),
    ]
    for content, mentions in cases:
        assert post(api, alice, room_id, content)["mentions"] == mentions, content
    history = api.get(f"/messages?room_id={room_id}&limit=100", token=alice).data["messages"]
    assert [m["mentions"] for m in history][-len(cases):] == [m for _, m in cases]


# -- search --------------------------------------------------------------------------------

def search(api, token, query, **params):
    # Already %-escaped bytes are sent as they are: %00 is a NUL in the query.
    path = "/search?" + "&".join(f"{k}={urllib.parse.quote(str(v), safe='%')}"
                                 for k, v in {"q": query, **params}.items())
    reply = api.get(path, token=token)
    assert reply.status == 200, reply.json
    return reply.data


def search_until(api, token, query, count, **params):
    """Search until at least `count` results come (a new message is indexed within a second)."""
    deadline = time.monotonic() + 10
    while True:
        found = search(api, token, query, **params)
        if found["count"] >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_search_finds_every_word_newest_first_in_readable_rooms(api, pair):
    alice, bob, room_id, _ = pair
    secret_id = api.post("/rooms", {"name": "secret search", "visibility": "private"},
                         token=alice).data["id"]
    older = post(api, alice, room_id, "Homework: zanzibar chapter three")
    newer = post(api, bob, room_id, "the ZANZIBAR homework link is up")
    post(api, alice, room_id, "zanzibar only")
    hidden = post(api, alice, secret_id, "zanzibar homework in private")
    assert search_until(api, alice, "homework zanzibar", 3)["count"] == 3  # all indexed now
    found = search(api, bob, "homework zanzibar")
    assert found["query"] == "homework zanzibar" and found["count"] == 2
    assert [m["id"] for m in found["messages"]] == [newer["id"], older["id"]]
    assert found["messages"][0]["room_name"] == listed(api, bob, room_id)["name"]
    assert found["messages"][0]["sender"]["password"] == ""
    # The private room's member finds it too; a word's prefix matches; accents do not matter.
    assert [m["id"] for m in search(api, alice, "homew* zanz*")["messages"]] == \
        [hidden["id"], newer["id"], older["id"]]
    assert search(api, alice, "zänzibár", room_id=secret_id)["count"] == 1
    assert search(api, bob, "homework zanzibar", limit=1)["count"] == 1
    assert [m["id"] for m in search(api, bob, "zanzibar homework", before=newer["id"])["messages"]] \
        == [older["id"]]


def test_search_follows_edits_and_deletions(api, pair):
    alice, bob, room_id, _ = pair
    message = post(api, alice, room_id, "quokka facts")
    assert search_until(api, bob, "quokka", 1)["count"] == 1
    # Once indexed, an edit or a deletion shows in search at once.
    api.call("PATCH", f"/messages/{message['id']}", {"content": "wombat facts"}, token=alice)
    assert search(api, bob, "quokka")["count"] == 0
    assert search(api, bob, "wombat")["messages"][0]["content"] == "wombat facts"
    api.call("DELETE", f"/messages/{message['id']}", token=alice)
    assert search(api, bob, "wombat")["count"] == 0
    # Edited or deleted before it was indexed: indexed as it is then, or not at all.
    early = post(api, alice, room_id, "durian facts")
    api.call("PATCH", f"/messages/{early['id']}", {"content": "mangosteen facts"}, token=alice)
    gone = post(api, alice, room_id, "rambutan facts")
    api.call("DELETE", f"/messages/{gone['id']}", token=alice)
    post(api, alice, room_id, "lychee facts")  # the newest: once it is found, so would the others be
    assert search_until(api, bob, "lychee", 1)["count"] == 1
    assert [search(api, bob, word)["count"] for word in ("durian", "mangosteen", "rambutan")] == \
        [0, 1, 0]


@pytest.mark.parametrize("query", [
    '"', '""', "NEAR(a b)", "a OR b", "a AND", "NOT x", "content:x", "-x", "^x", "*", "x**",
    "(((", "{a b}", "a:b", "'; DROP TABLE messages; --", "%00", "%E2%80%AE", "%F0%9F%98%80",
])
def test_search_syntax_from_the_user_is_only_words(api, pair, query):
    _, bob, _, _ = pair
    assert search(api, bob, query)["count"] >= 0


def test_what_search_refuses(api, pair):
    alice, bob, _, _ = pair
    private_id = api.post("/rooms", {"name": "search refusals", "visibility": "private"},
                          token=alice).data["id"]
    cases = [
        ("/search", bob, 400, "Query must be 1-200 characters"),
        ("/search?q=", bob, 400, "Query must be 1-200 characters"),
        ("/search?q=%20%20", bob, 400, "Query must be 1-200 characters"),
        ("/search?q=" + "a" * 201, bob, 400, "Query must be 1-200 characters"),
        ("/search?q=x&limit=-1", bob, 400, "limit must be a non-negative integer"),
        ("/search?q=x&before=abc", bob, 400, "before must be a non-negative integer"),
        (f"/search?q=x&room_id={private_id}", bob, 404, "Room not found"),
        ("/search?q=x", None, 401, "Missing Authorization header"),
    ]
    for path, token, status, error in cases:
        reply = api.get(path, token=token)
        assert (reply.status, reply.json["error"]) == (status, error), path
    assert search(api, bob, "a" * 200)["count"] == 0
    assert len(search(api, bob, "x", limit=1000)["messages"]) <= 100


# -- a database of the release before ------------------------------------------------------

@pytest.mark.sqlite_only
def test_a_database_before_read_markers_upgrades_with_nothing_unread_and_all_searchable(
        tmp_path, serve_with):
    db = tmp_path / "schema-4.db"
    old = sqlite3.connect(db)
    old.executescript(RELEASE_1_1_SCHEMA)
    for step in store.MIGRATIONS[1:4]:  # 1.1 -> schema 4: 1.2 before read markers
        for statement in step.split(";"):
            old.execute(statement)
    old.execute("PRAGMA user_version = 4")
    for user in ("0000000a", "0000000b"):
        old.execute("INSERT INTO users (id, username, password_hash, created_at)"
                    f" VALUES ('user_{user}', 'old{user}', 'x$1$00$00', '2025-01-01T00:00:00Z')")
        old.execute("INSERT INTO room_members"
                    f" VALUES ('room_00000001', 'user_{user}', '2025-01-01T00:00:00Z')")
    old.execute("INSERT INTO rooms (id, name, creator_id, created_at)"
                " VALUES ('room_00000001', 'Old', 'user_0000000a', '2025-01-01T00:00:00Z')")
    for n in range(3):
        old.execute("INSERT INTO messages (room_id, user_id, content, timestamp)"
                    f" VALUES ('room_00000001', 'user_0000000a', 'archived platypus {n}', {n})")
    old.commit()
    old.close()
    server = serve_with(db=db)
    api = Api(server.http_port)
    token = server.token_for("user_0000000b")
    assert counts(listed(api, token, "room_00000001")) == (0, 0, 3)
    found = search(api, token, "platypus")
    assert [m["id"] for m in found["messages"]] == [3, 2, 1]
    assert {tuple(m["mentions"]) for m in found["messages"]} == {()}
    post(api, server.token_for("user_0000000a"), "room_00000001", "new @old0000000b")
    assert counts(listed(api, token, "room_00000001"))[:2] == (1, 1)



@pytest.mark.sqlite_only
def test_a_schema_9_database_counts_from_its_messages_and_goes_on_after_a_deleted_newest(
        tmp_path, serve_with):
    # Schema 9 kept each room's last position in rooms.last_position; 10
    # reads it from the room's messages and deleted messages. The newest
    # message of this room (position 4) was deleted: the next is 5.
    db = tmp_path / "schema-9.db"
    old = sqlite3.connect(db)
    old.executescript(store.SCHEMA_PATH.read_text())
    old.execute("ALTER TABLE rooms ADD COLUMN last_position INTEGER NOT NULL DEFAULT 0")
    old.execute("PRAGMA user_version = 9")
    for user in ("0000000a", "0000000b"):
        old.execute("INSERT INTO users (id, username, password_hash, created_at)"
                    f" VALUES ('user_{user}', 'nine{user}', 'x$1$00$00', '2026-12-01T00:00:00Z')")
    old.execute("INSERT INTO rooms (id, name, creator_id, created_at, last_position)"
                " VALUES ('room_00000009', 'Nine', 'user_0000000a', '2026-12-01T00:00:00Z', 4)")
    for user, read in (("0000000a", 4), ("0000000b", 1)):  # bob has read the first message
        old.execute("INSERT INTO room_members (room_id, user_id, joined_at, last_read_id,"
                    f" read_position) VALUES ('room_00000009', 'user_{user}',"
                    f" '2026-12-01T00:00:00Z', {read}, {read})")
    for position in (1, 2, 3, 4):
        old.execute("INSERT INTO messages (room_id, user_id, content, timestamp, position)"
                    f" VALUES ('room_00000009', 'user_0000000a', 'said {position}', 1, {position})")
    old.execute("DELETE FROM messages WHERE id = 4")
    old.execute("INSERT INTO deleted_messages (room_id, position) VALUES ('room_00000009', 4)")
    old.commit()
    old.close()
    server = serve_with(db=db)
    api = Api(server.http_port)
    ada, bob = server.token_for("user_0000000a"), server.token_for("user_0000000b")
    assert counts(listed(api, bob, "room_00000009")) == (2, 0, 1)  # 2 and 3; 4 is deleted
    fifth = post(api, ada, "room_00000009", "said 5")
    assert counts(listed(api, bob, "room_00000009")) == (3, 0, 1)
    carol, _, _ = api.register()
    assert api.post("/rooms/join", {"room_id": "room_00000009"}, token=carol).status == 200
    assert counts(listed(api, carol, "room_00000009")) == (0, 0, fifth["id"])
    assert api.post("/rooms/room_00000009/read", {"message_id": fifth["id"]},
                    token=bob).data["unread_count"] == 0
    post(api, ada, "room_00000009", "said 6")
    assert counts(listed(api, carol, "room_00000009"))[:2] == (1, 0)
    assert counts(listed(api, bob, "room_00000009"))[:2] == (1, 0)

def a_room_then_stopped(serve_with, db):
    """A user and a room in the database at db, its server stopped: (user id, room id)."""
    with serve_with(db=db) as server:
        api = Api(server.http_port)
        token, user_id, _ = api.register()
        room_id = api.create_room(token)
    return user_id, room_id


@pytest.mark.sqlite_only
def test_messages_written_while_search_was_off_are_found_after_a_start_with_fts5(tmp_path,
                                                                                   serve_with):
    # A server on an SQLite without FTS5 drops the index's triggers and
    # writes messages the index never sees; the next start with FTS5
    # makes the triggers again and rebuilds the index.
    db = tmp_path / "chat.db"
    user_id, room_id = a_room_then_stopped(serve_with, db)
    with serve_with(db=db) as server:
        first = post(Api(server.http_port), server.token_for(user_id), room_id, "lemon before")
    without_fts5 = sqlite3.connect(db)
    for name in store.SEARCH_TRIGGERS:
        without_fts5.execute(f"DROP TRIGGER {name}")
    without_fts5.execute("UPDATE messages SET content = 'kiwi edited' WHERE id = ?", (first["id"],))
    without_fts5.execute("INSERT INTO messages (room_id, user_id, content, timestamp, position)"
                         " VALUES (?, ?, 'kiwi written meanwhile', 2, 2)", (room_id, user_id))
    without_fts5.commit()
    without_fts5.close()
    with serve_with(db=db) as server:
        api = Api(server.http_port)
        token = server.token_for(user_id)
        assert [m["content"] for m in search(api, token, "kiwi")["messages"]] == [
            "kiwi written meanwhile", "kiwi edited"]
        assert search(api, token, "lemon")["count"] == 0
        post(api, token, room_id, "kiwi live again")
        assert search_until(api, token, "kiwi", 3)["count"] == 3


def test_accents_typed_as_combining_marks_are_found_either_way(api, pair):
    alice, bob, room_id, _ = pair
    post(api, alice, room_id, "a nai\u0308ve question")  # "naïve" with a combining diaeresis
    post(api, alice, room_id, "another na\u00efve one")  # and with the precomposed letter
    assert search_until(api, bob, "na\u00efve", 2)["count"] == 2
    assert search(api, bob, "nai\u0308ve")["count"] == 2
    assert search(api, bob, "naive")["count"] == 2


def test_a_message_naming_60_users_mentions_the_first_50(api, pair):
    alice, _, room_id, _ = pair
    named = [api.register() for _ in range(60)]
    content = " ".join(f"@{name}" for _, _, name in named)
    assert post(api, alice, room_id, content)["mentions"] == [user_id for _, user_id, _ in named[:50]]


def test_what_the_writer_remembers_follows_each_change_at_once(api, pair):
    # store.WriterMemory: a batch recalls names, members, blocks and roles it met before;
    # each change below must hold for the very next message all the same.
    alice, bob, room_id, bob_name = pair
    newcomer = f"new{time.time_ns() % 10**12}"
    assert post(api, alice, room_id, f"@{newcomer} are you here?")["mentions"] == []
    token, user_id, _ = api.register(newcomer)  # a name remembered as no one's is someone's now
    assert post(api, alice, room_id, f"@{newcomer} hello")["mentions"] == [user_id]
    assert "mention_count" not in listed(api, token, room_id)  # not a member: no count
    assert api.post("/rooms/join", {"room_id": room_id}, token=token).status == 200
    post(api, alice, room_id, f"@{newcomer} welcome")
    assert listed(api, token, room_id)["mention_count"] == 1  # a member now: counted
    alice_id = api.get("/users/me", token=alice).data["user"]["id"]
    assert api.post(f"/users/{alice_id}/block", token=bob).status == 200
    post(api, alice, room_id, f"@{bob_name} still there?")
    assert listed(api, bob, room_id)["mention_count"] == 0  # blocked the author: not counted


def test_a_search_that_runs_too_long_is_stopped_with_a_clear_error(api, server, pair, monkeypatch):
    alice, bob, room_id, _ = pair
    for n in range(100):
        post(api, alice, room_id, f"tortoise {n}")
    assert search_until(api, bob, "tortoise", 100, limit=100)["count"] == 100
    monkeypatch.setattr(store, "SEARCH_SECONDS", 0.0)  # every search is over its time at once
    reply = api.get("/search?q=tortoise&limit=100", token=bob)
    assert (reply.status, reply.json["error"]) == (
        400, "Query matches too much: use more or longer words")
    monkeypatch.undo()
    assert search(api, bob, "tor*", limit=100)["count"] == 100  # and the server searches on
    # A prefix needs three letters; shorter, the word is matched whole.
    assert search(api, bob, "to*")["count"] == 0


@pytest.mark.sqlite_only
def test_a_backlog_of_messages_written_while_the_server_was_stopped_is_indexed_in_batches(
        tmp_path, serve_with):
    db = tmp_path / "chat.db"
    user_id, room_id = a_room_then_stopped(serve_with, db)
    script = sqlite3.connect(db)  # a script that wrote straight into the database
    script.executemany("INSERT INTO messages (room_id, user_id, content, timestamp, position)"
                       " VALUES (?, ?, ?, 1, ?)",
                       [(room_id, user_id, f"backlog {n}", n + 1)
                        for n in range(store.INDEX_BATCH + 500)])
    script.commit()
    script.close()
    with serve_with(db=db) as server:
        api = Api(server.http_port)
        token = server.token_for(user_id)
        last = f"backlog {store.INDEX_BATCH + 499}"
        assert search_until(api, token, last.replace(" ", "+"), 1)["messages"][0]["content"] == last
        assert search(api, token, "backlog", limit=100)["count"] == 100
