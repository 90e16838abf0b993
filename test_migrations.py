"""Schema migrations, each tried on a database made by the release before it.

Release 1.2 made databases of schema version 5; 1.3 adds known logins,
blocks and reports (version 6). A 1.2 database, with its users, rooms and
messages, must open under 1.3 with nothing lost and every 1.3 feature
working on the old rows.
"""

import sqlite3

import pytest

import accounts
import store
from conftest import TEST_ITERATIONS, Api, login

pytestmark = pytest.mark.sqlite_only  # SQLite's own databases of earlier releases

# The tables of a database made by release 1.2 (schema version 5), as its
# schema.sql created them (comments left out).
RELEASE_1_2_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    role          TEXT NOT NULL DEFAULT 'user',
    disabled      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS users_by_age ON users (created_at, id);
CREATE TABLE IF NOT EXISTS rooms (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL COLLATE NOCASE,
    description TEXT NOT NULL DEFAULT '',
    creator_id  TEXT NOT NULL REFERENCES users (id),
    created_at  TEXT NOT NULL,
    visibility  TEXT NOT NULL DEFAULT 'public',
    kind        TEXT NOT NULL DEFAULT 'room',
    direct_key  TEXT UNIQUE,
    last_position INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS public_room_names ON rooms (name) WHERE visibility = 'public';
CREATE TABLE IF NOT EXISTS room_members (
    room_id   TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id),
    joined_at TEXT NOT NULL,
    last_read_id  INTEGER NOT NULL DEFAULT 0,
    read_position INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX IF NOT EXISTS members_by_join ON room_members (room_id, joined_at, user_id);
CREATE TABLE IF NOT EXISTS room_bans (
    room_id   TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id),
    banned_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE TABLE IF NOT EXISTS messages (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id   TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id),
    content   TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    client_id TEXT,
    edited_at INTEGER,
    mentions  TEXT,
    position  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_by_room ON messages (room_id, id);
CREATE INDEX IF NOT EXISTS messages_by_author ON messages (room_id, user_id, id);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_client_id
    ON messages (user_id, client_id) WHERE client_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS deleted_messages (
    room_id  TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (room_id, position)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mentions (
    user_id    TEXT NOT NULL REFERENCES users (id),
    room_id    TEXT NOT NULL,
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, room_id, message_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS mentions_by_message ON mentions (message_id);
CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id        TEXT PRIMARY KEY,
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time INTEGER NOT NULL,
    ended_at  INTEGER
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id) WHERE ended_at IS NULL;
CREATE INDEX IF NOT EXISTS sessions_by_end ON sessions (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS sessions_by_age ON sessions (auth_time);
PRAGMA user_version = 5;
"""


@pytest.fixture
def database_of_release_1_2(tmp_path):
    """A 1.2 database: two users (password "password123"), a public room of both, one message."""
    path = tmp_path / "release-1.2.db"
    old = sqlite3.connect(path)
    old.executescript(RELEASE_1_2_SCHEMA)
    hashed = accounts.hash_password("password123", TEST_ITERATIONS)
    for user_id, name in [("user_0000000a", "ada"), ("user_0000000b", "bob")]:
        old.execute("INSERT INTO users (id, username, password_hash, created_at)"
                    " VALUES (?, ?, ?, ?)", (user_id, name, hashed, "2026-11-01T08:00:00Z"))
    old.execute("INSERT INTO rooms (id, name, creator_id, created_at, last_position) VALUES"
                " ('room_0000000a', 'Old times', 'user_0000000a', '2026-11-01T08:00:00Z', 1)")
    for user_id in ("user_0000000a", "user_0000000b"):
        old.execute("INSERT INTO room_members (room_id, user_id, joined_at, last_read_id,"
                    " read_position) VALUES ('room_0000000a', ?, '2026-11-01T08:00:00Z', 1, 1)",
                    (user_id,))
    old.execute("INSERT INTO messages (room_id, user_id, content, timestamp, position)"
                " VALUES ('room_0000000a', 'user_0000000b', 'said in 1.2', 1764000000, 1)")
    old.commit()
    old.close()
    return path


def test_a_release_1_2_database_opens_with_its_rows_and_every_1_3_feature(database_of_release_1_2,
                                                                           serve_with):
    with serve_with(db=database_of_release_1_2) as server:
        api = Api(server.http_port)
        ada = login(api, "ada").data["token"]
        bob = login(api, "bob").data["token"]
        history = api.get("/messages?room_id=room_0000000a", token=ada).data["messages"]
        assert [m["content"] for m in history] == ["said in 1.2"]
        assert server.store.known_login("ada", "127.0.0.1", 0)  # known pairs are kept
        assert api.post("/users/user_0000000b/block", token=ada).status == 200
        report = api.post(f"/messages/{history[0]['id']}/report", {"reason": "old news"}, token=ada)
        assert report.status == 201
        assert [r["message"]["content"] for r in api.get("/reports", token=ada).data["reports"]] \
            == ["said in 1.2"]
        assert api.post("/messages", {"room_id": "room_0000000a", "content": "said in 1.3"},
                        token=bob).status == 201
        rooms = api.get("/rooms", token=ada).data["rooms"]
        room = next(r for r in rooms if r["id"] == "room_0000000a")
        assert room["unread_count"] == 1 and room["mention_count"] == 0
        # A teacher's tools (migration 7): the creator is the owner, members are members.
        assert (room["posting"], room["slow_mode"]) == ("everyone", 0)
        members = api.get("/rooms/room_0000000a/members", token=ada).data["members"]
        assert [(m["username"], m["role"], m["muted_until"]) for m in members] \
            == [("ada", "owner", None), ("bob", "member", None)]
        assert api.get("/users/me", token=bob).data["user"]["must_change_password"] is False
        assert api.post("/rooms/room_0000000a/members/user_0000000b/mute", {"minutes": 5},
                        token=ada).status == 200
        assert api.post("/messages", {"room_id": "room_0000000a", "content": "muted"},
                        token=bob).status == 403
        # Replies, reactions, pins and names (migration 9) on a message and users of 1.2.
        old_id = history[0]["id"]
        assert (history[0]["reply_to"], history[0]["reactions"], history[0]["pinned"]) \
            == (None, [], False)
        assert api.post(f"/messages/{old_id}/reactions", {"emoji": "👍"}, token=ada).status == 200
        assert api.post(f"/messages/{old_id}/pin", token=ada).status == 200
        answer = api.post("/messages", {"room_id": "room_0000000a", "content": "replying",
                                        "reply_to": old_id}, token=ada)
        assert answer.data["reply_to"]["excerpt"] == "said in 1.2"
        user = api.get("/users/me", token=bob).data["user"]
        assert (user["display_name"], user["status"]) == ("bob", "")
    again = sqlite3.connect(database_of_release_1_2)
    assert again.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
    again.close()
