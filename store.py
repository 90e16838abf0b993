"""SwiftChat's storage: every SQL statement the server runs on SQLite lives here.

(On PostgreSQL, store_postgres.PostgresStore answers the same methods: it
inherits the queries below that both databases read alike, written so
that both do, and says the rest in PostgreSQL's words.)

The store owns the database file, opened on the schema in ``schema.sql``
in WAL mode, through two kinds of ``sqlite3`` connection:

- one writer connection, guarded by a ``threading.Lock``: every write is one
  short transaction under that lock, so writes from the HTTP threads and the
  WebSocket writer thread are serial and commit in the order they took it;
- reader connections, one per thread that is reading at the moment, kept in
  a pool. WAL lets them read the last commit while a writer (this one, or an
  admin's ``sqlite3`` shell in another process) holds the write lock, so
  reads never wait behind writes.

A write waits at most ``WRITE_TIMEOUT`` seconds, for the lock and for the
database together, then fails with ``DatabaseBusy``. Methods may be called
from any thread; none of them is slow on purpose (password hashing happens
before a method is called, never inside it).

The store knows nothing about HTTP, WebSocket frames, tokens or validation:
callers hand it checked values and get plain dicts back. Rows that are not
there come back as ``None``. Failures are the named exceptions below, never
a bare ``sqlite3`` error: ``Conflict`` (a UNIQUE constraint), ``DatabaseBusy``,
``DatabaseReadOnly``, ``DiskFull``, ``DatabaseUnavailable`` (any other
failure of a write, such as an I/O error), ``ClientIdReused``, or
``StoreError`` for anything else. A run of failing writes is logged once,
when it begins, and once when writes work again.
"""

import collections
import contextlib
import logging
import os
import pathlib
import re
import secrets
import sqlite3
import stat
import threading
import time
import unicodedata

__all__ = ["Store", "StoreError", "Conflict", "DatabaseBusy", "DatabaseReadOnly", "DiskFull",
           "DatabaseUnavailable", "ClientIdReused", "AuthorDisabled", "Blocked", "Banned",
           "LastAdmin", "SearchTooLong", "InvalidReply", "TooManyReactions", "TooManyPins", "NameTaken",
           "WRITE_TIMEOUT"]

SCHEMA_PATH = pathlib.Path(__file__).with_name("schema.sql")

# Each entry takes a database of one schema version to the next (its
# statements separated by ";"): MIGRATIONS[0] takes version 0 (the first
# release) to 1, and so on.
# schema.sql always describes the newest version, for new databases.
MIGRATIONS = [
    # 1: client_id, so that a retried send_message is stored once.
    "ALTER TABLE messages ADD COLUMN client_id TEXT",
    # 2 (1.2): sessions that end. Only a new table, which schema.sql creates;
    # the version still moves, so that a 1.1 server refuses this database.
    "-- sessions: created by schema.sql",
    # 3 (1.2): roles, disabled accounts, edited messages; room_bans is new (schema.sql).
    "ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'user';"
    "ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN edited_at INTEGER",
    # 4 (1.2): private and direct rooms. A room name is unique only among
    # public rooms now, and SQLite cannot drop a UNIQUE constraint: the table
    # is made anew (SQLite's documented way, with foreign keys off), keeping
    # each room's rowid, which gives the rooms' order.
    "CREATE TABLE rooms_1_2 ("
    " id TEXT PRIMARY KEY, name TEXT NOT NULL COLLATE NOCASE,"
    " description TEXT NOT NULL DEFAULT '', creator_id TEXT NOT NULL REFERENCES users (id),"
    " created_at TEXT NOT NULL, visibility TEXT NOT NULL DEFAULT 'public',"
    " kind TEXT NOT NULL DEFAULT 'room', direct_key TEXT UNIQUE);"
    "INSERT INTO rooms_1_2 (rowid, id, name, description, creator_id, created_at)"
    " SELECT rowid, id, name, description, creator_id, created_at FROM rooms;"
    "DROP TABLE rooms;"
    "ALTER TABLE rooms_1_2 RENAME TO rooms",
    # 5 (1.2): read markers, unread counts and mentions (deleted_messages and
    # mentions are schema.sql's). Each message gets its position in its room;
    # members of before the upgrade have read everything so far.
    "ALTER TABLE rooms ADD COLUMN last_position INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN position INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN mentions TEXT;"
    "ALTER TABLE room_members ADD COLUMN last_read_id INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE room_members ADD COLUMN read_position INTEGER NOT NULL DEFAULT 0;"
    "CREATE TEMP TABLE positions (id INTEGER PRIMARY KEY, position INTEGER NOT NULL);"
    "INSERT INTO positions SELECT id, ROW_NUMBER() OVER (PARTITION BY room_id ORDER BY id)"
    " FROM messages;"
    "UPDATE messages SET position = (SELECT p.position FROM positions p WHERE p.id = messages.id);"
    "DROP TABLE positions;"
    "UPDATE rooms SET last_position = (SELECT COUNT(*) FROM messages m WHERE m.room_id = rooms.id);"
    "UPDATE room_members SET read_position = (SELECT r.last_position FROM rooms r"
    " WHERE r.id = room_members.room_id), last_read_id = (SELECT COALESCE(MAX(m.id), 0)"
    " FROM messages m WHERE m.room_id = room_members.room_id)",
    # 6 (1.3): known logins, blocks and reports: new tables only, which schema.sql creates.
    "-- known_logins, blocks, reports: created by schema.sql",
    # 7 (1.3): a teacher's tools: passwords to change, room settings, room roles and mutes.
    "ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE rooms ADD COLUMN posting TEXT NOT NULL DEFAULT 'everyone';"
    "ALTER TABLE rooms ADD COLUMN slow_mode INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE room_members ADD COLUMN role TEXT NOT NULL DEFAULT 'member'",
    # 8 (1.3): files and images: a new table only, which schema.sql creates.
    "-- uploads: created by schema.sql",
    # 9 (1.3): replies and names (reactions and pins are new tables, schema.sql's).
    "ALTER TABLE users ADD COLUMN display_name TEXT;"
    "ALTER TABLE users ADD COLUMN status TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE messages ADD COLUMN reply_to INTEGER",
    # 10 (1.3): a room's last position is no longer written with each batch of
    # messages but read from its newest message (LAST_POSITION). The column
    # stays in databases of before (SQLite before 3.35 cannot drop one),
    # unused; the version moves so that an older server, which would read it
    # stale, refuses this database.
    "-- rooms.last_position: no longer kept (store.LAST_POSITION)",
]
SCHEMA_VERSION = len(MIGRATIONS)

# The full-text index of messages, for search (SQLite's FTS5). Kept apart
# from schema.sql because a Python may come with an SQLite built without
# FTS5: then the server runs without search (Store.can_search is False). An
# external-content table: it holds only the index of messages.content.
#
# New messages are added in batches (Store.index_new_messages, once
# a second), not as each is saved. Why: FTS5 writes a segment of its index
# per transaction, which made saving a message cost 2.5 times as much (CPU
# per message saved in batches of 10: 31 -> 78 us; batched: 35 us). The
# triggers keep what is indexed in step with every edit and delete at once
# (a room's deletion too: its messages go by ON DELETE CASCADE, which fires
# them); what is not indexed yet is indexed as it is then.
SEARCH_TABLES = [
    # prefix='3': the words of each 3-letter start are kept together too, so
    # that "hom*" reads one list instead of merging every word it starts.
    "CREATE VIRTUAL TABLE IF NOT EXISTS messages_search USING fts5(content, content='messages',"
    " content_rowid='id', tokenize='unicode61 remove_diacritics 2', prefix='3')",
    # One row: the messages with ids up to `through` are in the index.
    "CREATE TABLE IF NOT EXISTS messages_search_done (through INTEGER NOT NULL)",
]
SEARCH_TRIGGERS = {
    "messages_search_remove": "AFTER DELETE ON messages"
    " WHEN old.id <= (SELECT through FROM messages_search_done) BEGIN"
    " INSERT INTO messages_search (messages_search, rowid, content)"
    " VALUES ('delete', old.id, old.content); END",
    "messages_search_edit": "AFTER UPDATE OF content ON messages"
    " WHEN old.id <= (SELECT through FROM messages_search_done) BEGIN"
    " INSERT INTO messages_search (messages_search, rowid, content)"
    " VALUES ('delete', old.id, old.content);"
    " INSERT INTO messages_search (rowid, content) VALUES (new.id, new.content); END",
}
WRITE_TIMEOUT = 1.0  # seconds a write may wait for the lock and the database together
SEARCH_SECONDS = 1.0  # a search still running after this long is stopped (SearchTooLong)
MAX_SEARCH_WORDS = 10  # words of a query looked for; more are left out
MIN_PREFIX = 3  # letters before the "*" of a prefix search; with fewer, the word is matched whole
MEMORY_SECONDS = 1.0  # the writer's memory of rooms and users is forgotten this often (WriterMemory)
INDEX_BATCH = 5000  # messages added to the search index at most per batch

log = logging.getLogger("swiftchat.store")


class StoreError(Exception):
    """The database could not do what was asked."""


class Conflict(StoreError):
    """A write was refused by a UNIQUE constraint (a taken name)."""


class DatabaseBusy(StoreError):
    """Another writer held the database longer than a write may wait."""


class DatabaseReadOnly(StoreError):
    """The database file cannot be written to."""


class DiskFull(StoreError):
    """The disk (or the database's size limit) is full."""


class DatabaseUnavailable(StoreError):
    """A write failed for any other reason: an I/O error, a failing disk."""


class ClientIdReused(StoreError):
    """A client_id the user already gave a message of another room or content."""


class AuthorDisabled(StoreError):
    """A message's author was disabled before it could be saved."""


class Blocked(StoreError):
    """The other member of a direct room has blocked the message's author."""


class OnlyModeratorsPost(StoreError):
    """The room's posting is 'moderators', and the author is not one (1.3)."""


class Muted(StoreError):
    """The author is muted in the room (1.3)."""


class SlowMode(StoreError):
    """The author posted in this slow-mode room too recently; retry_after: whole seconds (1.3)."""

    def __init__(self, retry_after):
        super().__init__(retry_after)
        self.retry_after = retry_after


class InvalidAttachment(StoreError):
    """An attachment id that is unknown, another user's, or attached already (1.3)."""


class InvalidReply(StoreError):
    """A reply_to that names no message of the same room (1.3)."""


class TooManyReactions(StoreError):
    """A message has MAX_EMOJI different emoji already (1.3)."""


class NameTaken(StoreError):
    """A display name that reads as another user's username (1.3)."""


class TooManyPins(StoreError):
    """A room has MAX_PINS pinned messages already (1.3)."""


class QuotaExceeded(StoreError):
    """The user's uploads still kept would pass their quota (1.3)."""


class Banned(StoreError):
    """The user is banned from the room they would join."""


class LastAdmin(StoreError):
    """The change would leave no enabled admin."""


class SearchTooLong(StoreError):
    """A search ran past its time (SEARCH_SECONDS): it matches too much to sort through."""


def store_error(exc):
    """The named StoreError for an sqlite3 error, told apart by SQLite's own texts."""
    text = str(exc).lower()
    if isinstance(exc, sqlite3.IntegrityError) and "unique" in text:
        return Conflict(str(exc))
    if "locked" in text or "busy" in text:  # SQLITE_BUSY: "database is locked"
        return DatabaseBusy(str(exc))
    if "readonly" in text or "read-only" in text:  # SQLITE_READONLY
        return DatabaseReadOnly(str(exc))
    if "full" in text:  # SQLITE_FULL: "database or disk is full"
        return DiskFull(str(exc))
    return StoreError(str(exc))


def write_error(exc):
    """The named StoreError for an sqlite3 error met while writing.

    What 1.1 named keeps its name; anything else (an I/O error) means the
    database cannot be written now, which is not the client's fault.
    """
    error = store_error(exc)
    return DatabaseUnavailable(str(exc)) if type(error) is StoreError else error


USER_COLUMNS = ("id, username, created_at, role, disabled, must_change_password,"
                " display_name, status")
USER_COLUMNS_OF_U = ", ".join(f"u.{column}" for column in USER_COLUMNS.split(", "))  # "u.id, ..."
ROOM_COLUMNS = "id, name, description, creator_id, created_at, visibility, kind, posting, slow_mode"
# The position of room r's newest message, deleted or not: that of its
# newest message, or of a deleted one after it. Two index seeks
# (messages_by_room, deleted_messages' key). Why not a column of rooms
# kept up to date: writing the room's row with each batch of messages
# touched one more page per commit, and a room of 10 then served 0.84x
# the messages per second (bench_swiftchat.py, issue #33).
LAST_POSITION = ("MAX(COALESCE((SELECT n.position FROM messages n WHERE n.room_id = r.id"
                 "              ORDER BY n.id DESC LIMIT 1), 0),"
                 "     COALESCE((SELECT MAX(d.position) FROM deleted_messages d"
                 "              WHERE d.room_id = r.id), 0))")
# A member's unread messages (me: their room_members row, r: the room): the
# positions after their marker, less the deleted ones there, less their
# own. A few index lookups whatever the room holds, where counting the
# messages after the marker read every one of them (GET /rooms for a
# member of 50 rooms of 10,000 messages, all unread: 90-190 ms -> 0.6-1.1 ms).
UNREAD_COUNT = (f"({LAST_POSITION} - me.read_position"
                " - (SELECT COUNT(*) FROM deleted_messages d"
                "    WHERE d.room_id = r.id AND d.position > me.read_position)"
                " - (SELECT COUNT(*) FROM messages o"
                "    WHERE o.room_id = r.id AND o.user_id = me.user_id AND o.id > me.last_read_id))")
UPLOAD_COLUMNS = "id, filename, content_type, size, width, height"
MESSAGE_COLUMNS = ("m.id, m.room_id, m.user_id, m.content, m.timestamp, m.edited_at, m.mentions,"
                   " u.username, m.reply_to,"
                   " EXISTS (SELECT 1 FROM pins p WHERE p.message_id = m.id) AS pinned")
MAX_EMOJI = 20  # different emoji on one message (1.3)
MAX_PINS = 50  # pinned messages in one room (1.3)
EXCERPT = 100  # characters of a parent's text quoted by its replies (1.3)
# Whether the viewer (:viewer, an admin if :admin) may see room r: public
# rooms; private rooms they are a member or the creator (not banned) of;
# for an admin, every private room that is not a direct one.
# swiftchat_core.visible_room is the same rule for one room.
SEEN_BY_VIEWER = ("(r.visibility = 'public' OR (:admin AND r.kind = 'room')"
                  " OR EXISTS (SELECT 1 FROM room_members v"
                  "            WHERE v.room_id = r.id AND v.user_id = :viewer)"
                  " OR (r.creator_id = :viewer AND NOT EXISTS (SELECT 1 FROM room_bans b"
                  "     WHERE b.room_id = r.id AND b.user_id = :viewer)))")
# Whether :room is a direct room whose other member has blocked :user.
BLOCKED_IN_DIRECT_ROOM = ("EXISTS (SELECT 1 FROM rooms r JOIN room_members m ON m.room_id = r.id"
                          " JOIN blocks b ON b.blocker_id = m.user_id AND b.blocked_id = :user"
                          " WHERE r.id = :room AND r.kind = 'direct')")


def report_moderated_by(viewer):
    """SQL: whether `viewer` (a :parameter or a column) moderates report p, of room r, beside the
    admins: the room's owner and its moderators (1.3), unless the report is about their own
    message or they are banned from the room; in a direct room, nobody does."""
    return (f"(r.kind = 'room' AND p.author_id != {viewer}"
            f" AND NOT EXISTS (SELECT 1 FROM room_bans b WHERE b.room_id = r.id"
            f"  AND b.user_id = {viewer})"
            f" AND (r.creator_id = {viewer} OR EXISTS (SELECT 1 FROM room_members m"
            f"  WHERE m.room_id = r.id AND m.user_id = {viewer} AND m.role = 'moderator')))")

# The newest message of room :room (0 if it has none): where a new member's
# read marker starts, and as far as a marker can move.
NEWEST_IN_ROOM = "(SELECT COALESCE(MAX(id), 0) FROM messages WHERE room_id = :room)"


def open_search_index(db):
    """Bring the search index in step with the messages; return whether search works.

    The index is whole while its triggers are there. Where this SQLite has
    no FTS5, the triggers are dropped (they would fail every write of a
    message), and the next start on an SQLite with FTS5 makes them again
    and rebuilds the index from the messages.
    """
    triggers = db.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'"
                          " AND name LIKE 'messages_search_%'").fetchone()[0]
    try:
        db.execute("CREATE VIRTUAL TABLE temp.fts5_probe USING fts5(x)")
        db.execute("DROP TABLE temp.fts5_probe")
        has_fts5 = True
    except sqlite3.OperationalError as exc:  # "no such module: fts5"
        log.warning("search is off: this Python's SQLite %s has no FTS5 (%s)",
                    sqlite3.sqlite_version, exc)
        has_fts5 = False
    if has_fts5 and triggers == len(SEARCH_TRIGGERS):
        return True
    if not has_fts5 and triggers == 0:
        return False
    try:
        with db:
            db.execute("BEGIN")
            for name in SEARCH_TRIGGERS:
                db.execute(f"DROP TRIGGER IF EXISTS {name}")
            if has_fts5:
                for statement in SEARCH_TABLES:
                    db.execute(statement)
                for name, body in SEARCH_TRIGGERS.items():
                    db.execute(f"CREATE TRIGGER {name} {body}")
                # Index the messages already there (an older release's, or
                # ones written where this SQLite had no FTS5).
                db.execute("INSERT INTO messages_search (messages_search) VALUES ('rebuild')")
                db.execute("DELETE FROM messages_search_done")
                db.execute("INSERT INTO messages_search_done"
                           " SELECT COALESCE(MAX(id), 0) FROM messages")
    except sqlite3.OperationalError as exc:  # a read-only database
        log.warning("search is off: could not make the search index (%s)", exc)
        return False
    return has_fts5


def placeholders(values):
    """"?, ?, ?" for an IN list of these values (SQLite takes up to 32,766 parameters)."""
    return ", ".join("?" * len(values))


def ids_by_name(db, mentioned_lists):
    """{lower-cased username: user id} for every name the @mentions of these messages may name.

    mentioned_lists: for each message, its protocol.mentioned_names. One
    query for them all (a batch of messages mentioning the same people
    asks once).
    """
    names = sorted({name for mentioned in mentioned_lists for choices in mentioned
                    for name in choices})
    if not names:
        return {}
    return {row["username"].lower(): row["id"] for row in db.execute(
        f"SELECT id, username FROM users WHERE username IN ({placeholders(names)})", names)}


def users_named(known, mentioned):
    """The ids of the users a message mentions, in order, once each.

    mentioned: for each @mention, the names it may stand for, best first
    (see protocol.mentioned_names); the first that is a user's (any case,
    in known, from ids_by_name) is the one.
    """
    mentions = []
    for choices in mentioned:
        user_id = next((known[name] for name in choices if name in known), None)
        if user_id is not None and user_id not in mentions:
            mentions.append(user_id)
    return mentions


class Mentionable:
    """Who a message's @mentions may count for (their mention counts), asked in memory.

    Only members count (a member's marker starts at the newest message
    when they join, so a mention from before could never be counted), and
    neither the author nor anyone who blocked the author does. members:
    the (room id, user id) pairs that are; blocks: (blocker id, blocked id).
    """

    def __init__(self, members, blocks):
        self._members = members
        self._blocks = blocks

    @classmethod
    def read(cls, db, room_ids, author_ids, user_ids):
        """The pairs for these rooms, authors and mentioned users, in two queries."""
        user_ids = sorted(set(user_ids))
        return cls(members_among(db, room_ids, user_ids),
                   blocks_among(db, user_ids, author_ids) if user_ids else set())

    def counted(self, room_id, author_id, mentions):
        """Those of a message's mentioned user ids that count."""
        return [user_id for user_id in mentions if user_id != author_id
                and (room_id, user_id) in self._members and (user_id, author_id) not in self._blocks]


def members_among(db, room_ids, user_ids, role=None):
    """The (room id, user id) pairs of these rooms and users that are members (of this role)."""
    if not room_ids or not user_ids:
        return set()
    return {(row["room_id"], row["user_id"]) for row in db.execute(
        f"SELECT room_id, user_id FROM room_members WHERE room_id IN ({placeholders(room_ids)})"
        f" AND user_id IN ({placeholders(user_ids)})" + (" AND role = ?" if role else ""),
        (*room_ids, *user_ids, *([role] if role else [])))}


def blocks_among(db, blocker_ids, blocked_ids):
    """The (blocker id, blocked id) pairs of these users that are blocks."""
    if not blocker_ids or not blocked_ids:
        return set()
    return {(row["blocker_id"], row["blocked_id"]) for row in db.execute(
        f"SELECT blocker_id, blocked_id FROM blocks WHERE blocker_id IN ({placeholders(blocker_ids)})"
        f" AND blocked_id IN ({placeholders(blocked_ids)})", (*blocker_ids, *blocked_ids))}


def with_parent_author(mentions, parent_author):
    """The users a message mentions for their counts: a reply mentions its parent's author too
    (1.3), though its `mentions` field lists only the @names of its text."""
    if parent_author and parent_author not in mentions:
        return [*mentions, parent_author]
    return mentions


def note_mentions(db, message_id, room_id, author_id, mentions):
    """Record who one message mentions (for their mention counts); return those that count."""
    counted = Mentionable.read(db, [room_id], [author_id], mentions).counted(room_id, author_id,
                                                                              mentions)
    db.executemany("INSERT INTO mentions (user_id, room_id, message_id)"
                   " VALUES (?, ?, ?) ON CONFLICT DO NOTHING", [(user_id, room_id, message_id) for user_id in counted])
    return counted


def mention_ids(text):
    """The user ids of a messages row's mentions column (space-separated, or NULL)."""
    return text.split() if text else []


def as_user(row):
    """A users row as a dict, with disabled and must_change_password as bools and display_name
    the username until one is set (None stays None)."""
    if row is None:
        return None
    user = dict(row)
    user["disabled"] = bool(user["disabled"])
    user["must_change_password"] = bool(user["must_change_password"])
    user["display_name"] = user["display_name"] or user["username"]
    return user


def reply_quote(parent, parent_id):
    """What a reply carries of its parent (a messages row with its author's username, or None
    once deleted): {id, user_id, username, excerpt} or {id, deleted: True}."""
    if parent is None:
        return {"id": parent_id, "deleted": True}
    return {"id": parent["id"], "user_id": parent["user_id"], "username": parent["username"],
            "excerpt": parent["content"][:EXCERPT]}


def reactions_of(rows):
    """(message_id, emoji, user_id) rows in order of place, then age, as {message id:
    [{emoji, count, user_ids}]}: each message's emoji in the order first used, and who used
    each, first first."""
    found = {}
    for row in rows:
        by_emoji = found.setdefault(row["message_id"], {})
        by_emoji.setdefault(row["emoji"], []).append(row["user_id"])
    return {message_id: [{"emoji": emoji, "count": len(user_ids), "user_ids": user_ids}
                         for emoji, user_ids in by_emoji.items()]
            for message_id, by_emoji in found.items()}


def make_private(path):
    """Create the database file for its owner only, or tighten one others can read.

    Returns False for a file that exists but cannot be written.

    It holds password hashes and, unless one is passed in, the JWT secret.
    SQLite gives the -wal and -shm files it creates the database's own mode.
    """
    if str(path) == ":memory:":
        return True
    # os.open's mode applies only to a new file, and the umask can only take
    # bits away from it, so 0o600 holds whatever the umask is.
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    except OSError:
        if not os.path.exists(path):
            raise
        return False  # it exists but cannot be written: the server says so once it has started
    for name in (str(path), f"{path}-wal", f"{path}-shm"):
        try:
            mode = stat.S_IMODE(os.stat(name).st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            log.warning("%s was readable by others (mode %o); tightened to 600", name, mode)
            os.chmod(name, 0o600)
    return True


def no_limits():
    return {"muted_until": None, "last_post": None}


def limits_among(db, room_ids, user_ids):
    """{(room id, user id): {muted_until, last_post}} of these rooms and users that have any."""
    return {(row["room_id"], row["user_id"]): {"muted_until": row["muted_until"],
                                                "last_post": row["last_post"]}
            for row in db.execute(
                "SELECT room_id, user_id, muted_until, last_post FROM member_limits"
                f" WHERE room_id IN ({placeholders(room_ids)})"
                f" AND user_id IN ({placeholders(user_ids)})", (*room_ids, *user_ids))}


class PostingRules:
    """A room's own rules for who may post now (1.3): its posting setting, mutes, slow mode.

    Admins are bound by none of them; the room's owner and moderators by a
    mute alone. Made for a batch of messages from the rows MessageBatch
    read (rooms, admins among the authors) and a query of the authors'
    limits (and one of moderators, where a room has rules), then asked of
    each message in memory; a message saved counts for the slow mode of the
    next one in the same batch, and finish writes the new last posts.
    A mute and a last post live in member_limits, not on the membership:
    leaving and joining again, or deleting one's message, clears neither.
    """

    def __init__(self, rooms, admins, moderators, limits):
        """rooms: {id: {creator_id, posting, slow_mode}}; admins: those authors who are;
        moderators: the (room id, user id) pairs that are; limits: {(room id, user id):
        {muted_until, last_post}} (a pair not there has neither), changed in place."""
        self._rooms = rooms
        self._admins = admins
        self._moderators = moderators
        self._limits = limits
        self._posted = set()  # (room_id, user_id) whose last_post this batch moved

    @classmethod
    def of(cls, db, room_id, author_id):
        """The rules for one author in one room (an edit's, a reaction's)."""
        room = db.execute("SELECT id, creator_id, posting, slow_mode FROM rooms WHERE id = ?",
                          (room_id,)).fetchone()
        admin = db.execute("SELECT 1 FROM users WHERE id = ? AND role = 'admin'",
                           (author_id,)).fetchone()
        return cls({room_id: room} if room else {}, {author_id} if admin else set(),
                   members_among(db, [room_id], [author_id], "moderator"),
                   limits_among(db, [room_id], [author_id]))

    def check(self, room_id, user_id, timestamp, editing=False):
        """Raise Muted, OnlyModeratorsPost or SlowMode (not for an edit) if the rules refuse;
        else return whether the post counts for the room's slow mode (then call posted
        once it is saved: a post refused for another reason starts no wait)."""
        room = self._rooms.get(room_id)
        if room is None or user_id in self._admins:
            return False
        limits = self._limits.setdefault((room_id, user_id), no_limits())
        if (limits["muted_until"] or 0) > timestamp:
            raise Muted(user_id)
        if user_id == room["creator_id"] or (room_id, user_id) in self._moderators:
            return False
        if room["posting"] == "moderators":
            raise OnlyModeratorsPost(room_id)
        if room["slow_mode"] and not editing:
            last = limits["last_post"]
            if last is not None and timestamp - last < room["slow_mode"]:
                raise SlowMode(room["slow_mode"] - (timestamp - last))
            return True
        return False

    def posted(self, room_id, user_id, timestamp):
        """A post that counts for the room's slow mode (check said so) was saved."""
        self._limits[room_id, user_id]["last_post"] = timestamp
        self._posted.add((room_id, user_id))

    def finish(self, db):
        """Write the last posts this batch made in slow-mode rooms."""
        if not self._posted:
            return
        db.executemany(
            "INSERT INTO member_limits (room_id, user_id, last_post) VALUES (?, ?, ?)"
            " ON CONFLICT (room_id, user_id) DO UPDATE SET last_post = excluded.last_post",
            [(room_id, user_id, self._limits[room_id, user_id]["last_post"])
             for room_id, user_id in self._posted])


class WriterMemory:
    """What the writer thread remembers between message batches: the rows a batch checks.

    Why: every batch of messages needs its rooms (kind, rules, last
    position), its authors (disabled? admin?), who its @names are, who may
    count a mention, moderators, mutes and last posts, and who blocked
    whom: up to eight queries, asked anew for every batch. Under a chat's
    load a batch is one to a few messages, so saving one message cost the
    writer 80 us against the release's 33 (bench_swiftchat.py --only
    writer). Remembered, a batch asks only for what it has not met before.

    What is remembered is what the database holds, because only this
    writer changes it, and: a batch updates what it changes itself (last
    positions, last posts); every other write forgets it all, unless it is
    one that changes none of it (Database._transaction's keeps_memory:
    read markers, reactions, sessions...); a failed write forgets it all.
    Another process (a command-line tool disabling an account) writes
    behind its back, so it also forgets everything MEMORY_SECONDS after it
    began to remember: such a change holds within a second, as the
    contract's 5 seconds allow, for one batch's queries a second. (Asking
    SQLite's PRAGMA data_version before every batch instead cost 6 us a
    batch, a tenth of saving a message alone.) Used under the writer's
    lock only.
    """

    def __init__(self):
        self.forget()

    def forget(self):
        self._known = {}  # what -> {key: value}
        self._since = time.monotonic()

    def check(self):
        """Forget everything once it is MEMORY_SECONDS old (what other processes did)."""
        if time.monotonic() - self._since > MEMORY_SECONDS:
            self.forget()

    def recall(self, what, keys, read, default=None):
        """{key: value} for these keys of `what`, read(missing keys) -> {key: value} only for
        those not remembered; a key read() leaves out has default() (None without one)."""
        known = self._known.setdefault(what, {})
        missing = [key for key in dict.fromkeys(keys) if key not in known]
        if missing:
            found = read(missing)
            for key in missing:
                known[key] = found[key] if key in found else default and default()
        return {key: known[key] for key in keys}


def direct_blocks(db, room_ids):
    """{direct room id: the ids of the users a member of it has blocked} (rooms with any)."""
    found = {}
    for row in db.execute("SELECT m.room_id, b.blocked_id FROM room_members m"
                          " JOIN blocks b ON b.blocker_id = m.user_id"
                          f" WHERE m.room_id IN ({placeholders(room_ids)})", room_ids):
        found.setdefault(row["room_id"], set()).add(row["blocked_id"])
    return found


def pairs_read(read):
    """A recall reader of (a, b) pairs from read(a list, b list) -> a set or dict of pairs,
    asked of every a and b the missing pairs name."""
    def read_pairs(pairs):
        found = read(list({a for a, _ in pairs}), list({b for _, b in pairs}))
        return found if isinstance(found, dict) else dict.fromkeys(found, True)
    return read_pairs


class MessageBatch:
    """What saving a batch of messages checks once for the batch, not once per message.

    Why: a message's author must not be disabled, a direct room's other
    member must not have blocked them, its @names must be looked up, and
    it takes the next position in its room (for unread counts). Asked of
    the database once per message (subqueries, a users query per message
    that mentions someone, and an UPDATE of the room after each insert),
    saving cost the writer twice the CPU of the release before unread
    counts. Here the batch's rooms, authors and mentioned names are read
    in one query each, or recalled from the writer's memory (WriterMemory),
    in the batch's own transaction (so an account disabled before it is
    refused, one disabled after it waits for it), positions are counted in
    memory from the room's last one (which is read, not written: see
    LAST_POSITION). Mentions
    too: who they may count for is known for the batch (Mentionable), and
    their rows are written in one executemany (writer CPU per message,
    batches of 10 each mentioning a member: 41 -> 32 us); a room's posting
    rules come from the rows read here (PostingRules), and a statement is
    run only where there is something to write (with the rules and
    attachments of 1.3: 41.6 -> 36.3 us, side by side with 3e3ec40). To
    switch it off, save each message in a batch of its own.
    """

    def __init__(self, db, messages, memory):
        room_ids = list({message[0] for message in messages})
        author_ids = list({message[1] for message in messages})
        rooms = {room_id: room for room_id, room in memory.recall(
            "rooms", room_ids, lambda missing: {row["id"]: dict(row) for row in db.execute(
                f"SELECT r.id, r.kind, {LAST_POSITION} AS last_position, r.creator_id, r.posting,"
                f" r.slow_mode FROM rooms r WHERE r.id IN ({placeholders(missing)})",
                missing)}).items()
            if room is not None}  # None: deleted a moment ago
        self._rooms = {room_id: [room, room["last_position"]] for room_id, room in rooms.items()}
        names = [name for message in messages if len(message) > 5
                 for choices in message[5] for name in choices]
        self.names = {name: user_id for name, user_id in memory.recall(
            "names", names, lambda missing: ids_by_name(db, [[missing]])).items()
            if user_id is not None}
        roles = memory.recall("authors", author_ids, lambda missing: {
            row["id"]: row["role"] for row in db.execute(
                "SELECT id, role FROM users WHERE disabled = 0"
                f" AND id IN ({placeholders(missing)})", missing)})
        self.able_authors = {user_id for user_id, role in roles.items() if role is not None}
        self.rules = self._rules(db, memory, rooms, roles,
                                 [(message[0], message[1]) for message in messages])
        direct = [room_id for room_id, room in rooms.items() if room["kind"] == "direct"]
        # (room, user) pairs where a member of the direct room blocked the user.
        self.blocked = {(room_id, user_id) for room_id, blocked in memory.recall(
            "blocked in direct rooms", direct, lambda missing: direct_blocks(db, missing),
            frozenset).items() for user_id in blocked}
        self.mention_rows = []  # (user_id, room_id, message_id), written at the end
        upload_ids = [upload_id for message in messages if len(message) > 6
                      for upload_id in message[6]]
        self._uploads = {} if not upload_ids else {
            row["id"]: row for row in db.execute(
                f"SELECT {UPLOAD_COLUMNS}, user_id, message_id FROM uploads"
                f" WHERE id IN ({placeholders(upload_ids)})", upload_ids)}
        self._attached = set()  # upload ids attached by this batch so far
        parent_ids = list({message[7] for message in messages
                           if len(message) > 7 and message[7] is not None})
        self._parents = {} if not parent_ids else {
            row["id"]: row for row in db.execute(
                "SELECT m.id, m.room_id, m.user_id, m.content, u.username FROM messages m"
                f" JOIN users u ON u.id = m.user_id WHERE m.id IN ({placeholders(parent_ids)})",
                parent_ids)}
        # Who each message may mention, as (room id, author id, user id).
        mentioned = {(message[0], message[1], user_id) for message in messages
                     for user_id in self._may_mention(message)}
        self.mentionable = self._mentionable(db, memory, mentioned)

    @staticmethod
    def _rules(db, memory, rooms, roles, pairs):
        """The PostingRules of these (room id, author id) pairs; roles: {author id: role}."""
        ruled = [pair for pair in pairs if pair[0] in rooms and (
            rooms[pair[0]]["posting"] != "everyone" or rooms[pair[0]]["slow_mode"])]
        moderators = memory.recall("moderators", ruled, pairs_read(
            lambda room_ids, user_ids: members_among(db, room_ids, user_ids, "moderator")),
            bool)
        return PostingRules(
            rooms, {user_id for user_id, role in roles.items() if role == "admin"},
            {pair for pair, moderator in moderators.items() if moderator},
            memory.recall("limits", pairs, pairs_read(
                lambda room_ids, user_ids: limits_among(db, room_ids, user_ids)), no_limits))

    def _may_mention(self, message):
        """The ids of the users a message may mention: those its @names may be, and (a reply
        counts as a mention of its parent's author) its parent's author."""
        user_ids = [self.names[name] for choices in (message[5] if len(message) > 5 else ())
                    for name in choices if name in self.names]
        reply_to = message[7] if len(message) > 7 else None
        if reply_to in self._parents:
            user_ids.append(self._parents[reply_to]["user_id"])
        return user_ids

    @staticmethod
    def _mentionable(db, memory, mentioned):
        """Mentionable for these (room id, author id, user id): only the pairs they name are
        recalled, not every room of the batch with every user mentioned anywhere in it."""
        members = memory.recall("members", [(room_id, user_id) for room_id, _, user_id in mentioned],
                                pairs_read(lambda room_ids, user_ids: members_among(
                                    db, room_ids, user_ids)), bool)
        blocks = memory.recall("blocks", [(user_id, author_id)
                                          for _, author_id, user_id in mentioned],
                               pairs_read(lambda blocker_ids, blocked_ids: blocks_among(
                                   db, blocker_ids, blocked_ids)), bool)
        return Mentionable({pair for pair, member in members.items() if member},
                           {pair for pair, block in blocks.items() if block})

    def check_author(self, room_id, user_id, timestamp):
        """Raise what refuses this author's message here now (AuthorDisabled, Blocked, ...);
        return whether it counts for the room's slow mode (PostingRules.check)."""
        # Only while its author is not disabled (a message already on its way
        # when an admin disables the account is never saved, nor broadcast),
        # and, in a direct room, not blocked by the other member.
        if user_id not in self.able_authors:
            raise AuthorDisabled(user_id)
        if (room_id, user_id) in self.blocked:
            raise Blocked(user_id)
        return self.rules.check(room_id, user_id, timestamp)

    def check_attachments(self, user_id, upload_ids):
        """The uploads a message attaches, in order; InvalidAttachment for one that is unknown,
        another user's, or attached already (by an earlier message, or earlier in this batch)."""
        uploads = []
        for upload_id in upload_ids:
            upload = self._uploads.get(upload_id)
            if (upload is None or upload["user_id"] != user_id or upload["message_id"] is not None
                    or upload_id in self._attached
                    or upload_id in [earlier["id"] for earlier in uploads]):
                raise InvalidAttachment(upload_id)
            uploads.append(upload)
        return uploads

    def parent(self, room_id, reply_to):
        """The message a reply answers (None for no reply); InvalidReply if it is not in room_id."""
        if reply_to is None:
            return None
        parent = self._parents.get(reply_to)
        if parent is None or parent["room_id"] != room_id:
            raise InvalidReply(reply_to)
        return parent

    def attach(self, db, message_id, uploads):
        if not uploads:  # most messages: no statement at all
            return
        self._attached.update(upload["id"] for upload in uploads)
        db.executemany("UPDATE uploads SET message_id = ?, position = ? WHERE id = ?",
                       [(message_id, position, upload["id"])
                        for position, upload in enumerate(uploads)])

    def next_position(self, room_id):
        """The position of the room's next message; StoreError when the room is gone."""
        room = self._rooms.get(room_id)
        if room is None:  # deleted a moment ago
            raise StoreError(f"no room {room_id}")
        room[1] += 1
        return room[1]

    def note_mentions(self, message_id, room_id, author_id, mentions, parent=None):
        """Note who one message mentions, to be written by finish; return those that count.

        A reply mentions its parent's author too (for their count and
        `mention` frame), though its `mentions` lists only its @names.
        """
        mentions = with_parent_author(mentions, parent and parent["user_id"])
        counted = self.mentionable.counted(room_id, author_id, mentions)
        self.mention_rows.extend((user_id, room_id, message_id) for user_id in counted)
        return counted

    def finish(self, db):
        """Write the mentions the batch kept in memory; remember each room's last position."""
        for room, last in self._rooms.values():  # the writer's memory follows (WriterMemory)
            room["last_position"] = last
        if self.mention_rows:
            db.executemany("INSERT INTO mentions (user_id, room_id, message_id)"
                           " VALUES (?, ?, ?) ON CONFLICT DO NOTHING", self.mention_rows)
        self.rules.finish(db)


class Database:
    """The connections to one SQLite file, and the one way to read and write through them.

    _rows and _row read on a pooled reader connection; _transaction writes
    on the writer, under its lock. Store builds every query on these.
    Also: setting (a value that must survive restarts), data_changed,
    generation, backup, close.
    """

    def __init__(self, path):
        self.writable = make_private(path)  # False: only reads can be served
        self._path = str(path)
        # The writer: shared by every thread; the lock, not sqlite3's
        # same-thread check, is what keeps its use serial.
        self._lock = threading.Lock()
        self._memory = WriterMemory()  # what message batches remember; see _transaction
        self._busy_until = 0.0  # see _transaction
        self._busy_ms = None  # the writer's busy_timeout now, if _transaction set it
        self._reopen = False  # the last write failed in a way a new connection may mend
        self._failing = None  # the error of the run of failing writes going on now, if any
        self._versions = None  # see data_changed
        self._last_version = None
        self._lock_for_versions = threading.Lock()
        try:
            self._db = self._open_writer()
            self._upgrade()
            self.can_search = open_search_index(self._db)
        except sqlite3.Error as exc:  # not a database, locked, unreadable...
            raise store_error(exc) from exc
        # Idle reader connections; deque's append and pop are thread-safe.
        # A ":memory:" database is private to one connection, so there its
        # reads share the writer (under the lock) and nothing else changes.
        self._idle_readers = collections.deque()
        self._shared = self._path == ":memory:"
        # Counts this store's commits: a page read at one generation is
        # still what the database holds while it has not moved (a cache's
        # rule: swiftchat_routes.PageCache). An int's += under the lock is enough.
        self.generation = 0

    def _upgrade(self):
        """Bring the database to SCHEMA_VERSION: migrate an older one in place, then schema.sql.

        The version is kept in SQLite's own `PRAGMA user_version`; a
        database made before versions were recorded says 0.
        """
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        is_new = self._db.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'messages'").fetchone()[0] == 0
        if version > SCHEMA_VERSION:
            raise StoreError(f"the database is of schema version {version}, newer than this "
                             f"SwiftChat's {SCHEMA_VERSION}")
        # Off while the tables change (a table made anew is dropped, which must
        # not cascade); a no-op inside a transaction, so set before it begins.
        self._db.execute("PRAGMA foreign_keys = OFF")
        with self._db:  # one transaction: a failed upgrade leaves the database as it was
            self._db.execute("BEGIN")  # sqlite3 would not begin one before CREATE or ALTER
            if not is_new:
                for step in MIGRATIONS[version:]:
                    for statement in step.split(";"):
                        self._db.execute(statement)
            for statement in SCHEMA_PATH.read_text(encoding="utf-8").split(";"):
                if statement.strip():
                    self._db.execute(statement)
            if version != SCHEMA_VERSION:  # a read-only database already up to date still opens
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._db.execute("PRAGMA foreign_keys = ON")

    def _open_writer(self):
        db = self._connect(self._path)
        db.execute("PRAGMA journal_mode = WAL")
        # WAL with synchronous=NORMAL survives a crash of this process;
        # only a power cut can lose the last few commits.
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        return db

    @staticmethod
    def _connect(target, **options):
        db = sqlite3.connect(target, check_same_thread=False, **options)
        db.row_factory = sqlite3.Row
        db.execute(f"PRAGMA busy_timeout = {int(WRITE_TIMEOUT * 1000)}")
        return db

    def _connect_reader(self):
        uri = pathlib.Path(self._path).resolve().as_uri() + "?mode=ro"
        return self._connect(uri, uri=True)

    def close(self):
        """Fold the write-ahead log into the database file and close every connection."""
        while self._idle_readers:
            self._idle_readers.pop().close()
        if self._versions is not None:
            self._versions.close()
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:  # another process holds the database
                log.warning("could not fold the write-ahead log into the database: %s", exc)
            self._db.close()

    # -- helpers -----------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self):
        """A connection to read from, taken from the pool for one query's time."""
        if self._shared:
            with self._lock:
                yield self._db
            return
        try:
            db = self._idle_readers.pop()
        except IndexError:
            db = self._connect_reader()
        try:
            yield db
        finally:
            self._idle_readers.append(db)

    def _rows(self, sql, params=()):
        try:
            with self._reading() as db:
                return [dict(row) for row in db.execute(sql, params)]
        except sqlite3.Error as exc:
            raise store_error(exc) from exc

    def _row(self, sql, params=()):
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    @contextlib.contextmanager
    def _transaction(self, keeps_memory=False):
        """Hold the write lock for one transaction: commit on success, else roll back.

        The writer's memory of rooms and users (WriterMemory) is forgotten
        after it, unless keeps_memory says this write changes nothing
        remembered (or, for a message batch, keeps it up to date itself).

        The lock and SQLite's busy wait share one WRITE_TIMEOUT, so a write
        fails with DatabaseBusy in bounded time however long the line is.
        For WRITE_TIMEOUT after a write found the database busy, writes try
        once without waiting: a line of writes behind a locked database then
        fails at once instead of each waiting its turn, and the first write
        after the lock goes still succeeds.
        This is the one place a writer's sqlite3 error becomes a StoreError
        (but for a message of add_messages refused on its own).
        """
        started = time.monotonic()
        # Not `with self._lock`: a write must give up waiting for the lock
        # too, or a line of writers behind one stuck write would wait forever.
        if not self._lock.acquire(timeout=WRITE_TIMEOUT):
            raise DatabaseBusy("the store's write lock was held too long")
        try:
            if self._reopen:
                # After a read-only file or an I/O error SQLite may keep the
                # connection in that state; a new one lets writes resume as
                # soon as the file can be written again.
                self._db.close()
                self._db = self._open_writer()
                self._busy_ms = None
                self._reopen = False
            now = time.monotonic()
            left = 0 if now < self._busy_until else WRITE_TIMEOUT - (now - started)
            # In whole 50 ms, set only when it changes: most writes wait for
            # nothing and would set the same value (a statement per write:
            # writer CPU per message 27.2 -> 25.6 us).
            busy_ms = max(0, int(left * 1000)) // 50 * 50
            if busy_ms != self._busy_ms:
                self._db.execute(f"PRAGMA busy_timeout = {busy_ms}")
                self._busy_ms = busy_ms
            try:
                with self._db:
                    yield self._db
            except BaseException:
                self._memory.forget()  # what a batch kept up to date was rolled back
                raise
            if not keeps_memory:
                self._memory.forget()
            self.generation += 1
            self._writes_work()
        except sqlite3.Error as exc:
            error = write_error(exc)
            if isinstance(error, DatabaseBusy):
                self._busy_until = time.monotonic() + WRITE_TIMEOUT
            elif not isinstance(error, Conflict):  # a taken name is the client's doing
                self._reopen = not self._shared
                self._writes_fail(error)
            raise error from exc
        finally:
            self._lock.release()

    def _writes_fail(self, error):
        """Log the first failure of a run of failing writes (not one line per request)."""
        if self._failing is None:
            log.error("writes to %s fail: %s", self._path, error)
        self._failing = error

    def _writes_work(self):
        if self._failing is not None:
            log.warning("writes to %s work again", self._path)
            self._failing = None

    # A message of a batch that breaks a constraint on its own (add_messages).
    IntegrityError = sqlite3.IntegrityError
    @staticmethod
    def _lock_rooms(db, room_ids):
        """Be the only writer of these rooms' messages until the transaction ends: nothing
        to do on SQLite, where one write at a time is the database's own rule."""

    @staticmethod
    def _store_error(exc):
        return store_error(exc)

    @staticmethod
    def _alone(db):
        """What one message of a batch writes, undone alone if it fails: SQLite undoes only
        the failed statement anyway."""
        return contextlib.nullcontext()

    @staticmethod
    def _inserted_id(db, sql, params):
        """Run an INSERT of one row (or none); the new row's id, or None if none was inserted."""
        cursor = db.execute(sql, params)
        return cursor.lastrowid if cursor.rowcount else None

    @staticmethod
    def _unused_id(db, prefix, table):
        # 8 hex digits give 4 billion ids; a clash is rare but possible, so
        # check inside the caller's transaction before using one.
        while True:
            candidate = prefix + secrets.token_hex(4)
            taken = db.execute(f"SELECT 1 FROM {table} WHERE id = ?", (candidate,))
            if taken.fetchone() is None:
                return candidate

    # -- settings ----------------------------------------------------------

    def setting(self, key, make_default):
        """Return the stored value for key, storing make_default() the first time."""
        with self._transaction() as db:
            row = db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
            if row is not None:
                return row["value"]
            value = make_default()
            db.execute("INSERT INTO settings (key, value) VALUES (?, ?)", (key, value))
            return value

    def backup(self, path):
        """Write a consistent copy of the database to a new file at path, readable by its owner only.

        Raises FileExistsError when path exists (or is a link).

        SQLite's online backup API copies a snapshot while the server
        (this process or another) goes on writing.
        """
        # A new file, for its owner only; O_EXCL and O_NOFOLLOW: never an
        # existing file, nor one a symbolic link points to.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
        copy = sqlite3.connect(path)
        try:
            with self._reading() as db:
                db.backup(copy)
        except sqlite3.Error as exc:
            raise store_error(exc) from exc
        finally:
            copy.close()

    def data_changed(self):
        """Whether anyone (this process's writer, or another process) committed since the last call.

        Uses SQLite's `PRAGMA data_version` on a connection of its own,
        which changes whenever another connection commits: a cheap way for
        a server to notice what a command-line tool did to its database.
        """
        if self._shared:
            return False
        with self._lock_for_versions:
            if self._versions is None:
                self._versions = self._connect_reader()
            version = self._versions.execute("PRAGMA data_version").fetchone()[0]
            changed, self._last_version = version != self._last_version, version
        return changed


class Store(Database):
    """Every query SwiftChat runs, for any thread: one class, one job (the database's rows).

    Database below it holds the connections and the one way to write
    (_transaction); Store is everything asked of them, by topic:

    Users:    create_user, import_users, user, user_with_password, list_users, update_user,
              set_password, admin_ids
    Sessions: create_session, session_user, end_sessions, sessions_ended_since
    Logins:   remember_login, known_login
    Blocks:   block, unblock, blocks, blocked_users, blocked_in_direct_room
    Rooms:    create_room, direct_room, room, room_seen_by, list_rooms, update_room,
              delete_room, mark_read, room_history
    Members:  add_member, member_ids, room_members, update_member, remove_member
    Messages: add_message, add_messages, message, edit_message, delete_message,
              messages, messages_after
    Search:   index_new_messages, search (can_search says whether this SQLite has FTS5)
    Uploads:  add_upload, upload, upload_bytes, upload_ids, remove_unattached_uploads, attachment
              (and file_link, the server's maker of file links)
    Reports:  add_report, report, report_moderators, reports, set_report_status
    And from Database: setting, data_changed, generation, backup, close, writable.
    """

    # -- users -------------------------------------------------------------

    def create_user(self, username, password_hash, created_at, role="user",
                    must_change_password=False):
        with self._transaction() as db:
            return self._insert_user(db, username, password_hash, created_at, role,
                                     must_change_password)

    def _insert_user(self, db, username, password_hash, created_at, role, must_change_password):
        user_id = self._unused_id(db, "user_", "users")
        db.execute(
            "INSERT INTO users (id, username, password_hash, created_at, role, must_change_password)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (user_id, username, password_hash, created_at, role, int(must_change_password)),
        )
        return {"id": user_id, "username": username, "created_at": created_at, "role": role,
                "disabled": False, "must_change_password": must_change_password,
                "display_name": username, "status": ""}

    def import_users(self, users, created_at):
        """Create each (username, password_hash, role) whose name is free, in one transaction.

        Every account created must change its password (someone else chose
        it). Returns (the users created, in order; the usernames skipped
        because they are taken, any letter case, or repeated in the list).
        """
        created, skipped = [], []
        with self._transaction() as db:
            for username, password_hash, role in users:
                taken = db.execute("SELECT 1 FROM users WHERE username = ?", (username,))
                if taken.fetchone() is not None:
                    skipped.append(username)
                else:
                    created.append(self._insert_user(db, username, password_hash, created_at,
                                                     role, True))
        return created, skipped

    def user(self, user_id):
        """{id, username, created_at, role, disabled} of a user, or None."""
        return as_user(self._row(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", (user_id,)))

    def user_with_password(self, username):
        """The user with this name (any letter case), including password_hash."""
        return as_user(self._row(
            f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = ?", (username,)))

    def list_users(self, limit, offset):
        """One page of users, oldest first, and the number of all users."""
        users = self._rows(
            f"SELECT {USER_COLUMNS} FROM users ORDER BY created_at, id LIMIT ? OFFSET ?",
            (limit, offset),
        )
        total = self._row("SELECT COUNT(*) AS n FROM users")["n"]
        return [as_user(user) for user in users], total

    def update_user(self, user_id, ended_at, role=None, disabled=None, password_hash=None):
        """Change a user's role, disabled flag or password; return (user, ids of sessions ended).

        A password set here is an admin's choice: its owner must change it
        (must_change_password). Disabling or a new password ends every session of the user. One
        transaction, which refuses (LastAdmin) to leave no enabled admin
        where there was one: two admins demoting each other at once cannot
        both succeed. Returns (None, []) for an unknown user.
        """
        with self._transaction() as db:
            admins = self._enabled_admins(db)
            changes = {"role": role, "disabled": None if disabled is None else int(disabled),
                       "password_hash": password_hash,
                       "must_change_password": None if password_hash is None else 1}
            for column, value in changes.items():
                if value is not None:  # the column names are ours, never the client's
                    db.execute(f"UPDATE users SET {column} = ? WHERE id = ?", (value, user_id))
            if admins and not self._enabled_admins(db):
                raise LastAdmin(user_id)
            user = as_user(db.execute(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?",
                                      (user_id,)).fetchone())
            ended = []
            if user is not None and (disabled or password_hash is not None):
                ended = self._end_sessions(db, user_id, ended_at, None, None)
            return user, ended

    def update_profile(self, user_id, changes):
        """Set a user's display_name and/or status (changes: {column: value}); return the user.

        NameTaken for a display name that reads as another user's username
        (in any letter case, fullwidth letters or with an "@" before it):
        the username is what tells people apart, and it shows only on hover.
        """
        with self._transaction() as db:
            name = changes.get("display_name")
            if name is not None and db.execute(
                    "SELECT 1 FROM users WHERE username = ? AND id != ?",
                    (unicodedata.normalize("NFKC", name).removeprefix("@"), user_id)).fetchone():
                raise NameTaken(name)
            for column, value in changes.items():
                if column in ("display_name", "status"):  # the column names are ours
                    db.execute(f"UPDATE users SET {column} = ? WHERE id = ?", (value, user_id))
            return as_user(db.execute(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?",
                                      (user_id,)).fetchone())

    def room_mates(self, user_id):
        """The ids of the users who share a room with user_id (members of the same rooms)."""
        return {row["user_id"] for row in self._rows(
            "SELECT DISTINCT o.user_id FROM room_members mine"
            " JOIN room_members o ON o.room_id = mine.room_id WHERE mine.user_id = ?",
            (user_id,))}

    @staticmethod
    def _enabled_admins(db):
        return db.execute(
            "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0").fetchone()[0]

    def set_password(self, user_id, password_hash, ended_at, keep_session):
        """Store the user's own new password hash and end every session of theirs but keep_session.

        Returns the ids of the sessions ended. One transaction: no moment
        in which the new password works and an old session does too. The
        password is its owner's choice now: must_change_password is over.
        """
        with self._transaction() as db:
            db.execute("UPDATE users SET password_hash = ?, must_change_password = 0 WHERE id = ?",
                       (password_hash, user_id))
            return self._end_sessions(db, user_id, ended_at, keep_session, None)

    # -- sessions ----------------------------------------------------------

    def create_session(self, user_id, auth_time, forget_before):
        """Start a session for user_id; return its id.

        Sessions that began before forget_before are past their age and
        are deleted on the way, so the table holds only the last month's.
        """
        with self._transaction(keeps_memory=True) as db:  # nothing remembered changes
            db.execute("DELETE FROM sessions WHERE auth_time < ?", (forget_before,))
            session_id = secrets.token_urlsafe(16)
            db.execute("INSERT INTO sessions (id, user_id, auth_time) VALUES (?, ?, ?)",
                       (session_id, user_id, auth_time))
        return session_id

    def session_user(self, session_id, user_id, auth_time):
        """The user of a session that has not ended, or None (ended, unknown, disabled, not theirs)."""
        return as_user(self._row(
            f"SELECT {USER_COLUMNS_OF_U} FROM sessions s"
            " JOIN users u ON u.id = s.user_id"
            " WHERE s.id = ? AND s.user_id = ? AND s.auth_time = ? AND s.ended_at IS NULL"
            " AND u.disabled = 0",
            (session_id, user_id, auth_time),
        ))

    def end_sessions(self, user_id, ended_at, keep=None, only=None):
        """End the user's sessions (only the one named, or all but `keep`); return their ids."""
        with self._transaction() as db:
            return self._end_sessions(db, user_id, ended_at, keep, only)

    @staticmethod
    def _end_sessions(db, user_id, ended_at, keep, only):
        ended = [row["id"] for row in db.execute(
            "SELECT id FROM sessions WHERE user_id = ? AND ended_at IS NULL", (user_id,))
            if row["id"] != keep and only in (None, row["id"])]
        db.executemany("UPDATE sessions SET ended_at = ? WHERE id = ?",
                       [(ended_at, session_id) for session_id in ended])
        return ended

    def sessions_ended_since(self, when):
        """The ids of sessions ended at `when` (Unix seconds) or later."""
        return [row["id"] for row in self._rows(
            "SELECT id FROM sessions WHERE ended_at >= ?", (when,))]

    # -- known logins ------------------------------------------------------

    def remember_login(self, username, address, when):
        """Note that username (lower-cased) logged in from address at `when`."""
        with self._transaction(keeps_memory=True) as db:  # nothing remembered changes
            db.execute("INSERT INTO known_logins (username, address, last_success) VALUES (?, ?, ?)"
                       " ON CONFLICT (username, address) DO UPDATE SET last_success = excluded.last_success",
                       (username, address, when))

    def known_login(self, username, address, since):
        """Whether username (lower-cased) logged in from address at `since` or later."""
        return self._row("SELECT 1 AS yes FROM known_logins WHERE username = ? AND address = ?"
                         " AND last_success >= ?", (username, address, since)) is not None

    # -- blocks -------------------------------------------------------------

    def block(self, blocker_id, blocked_id, when):
        with self._transaction() as db:
            db.execute("INSERT INTO blocks (blocker_id, blocked_id, created_at)"
                       " VALUES (?, ?, ?) ON CONFLICT DO NOTHING", (blocker_id, blocked_id, when))

    def unblock(self, blocker_id, blocked_id):
        with self._transaction() as db:
            db.execute("DELETE FROM blocks WHERE blocker_id = ? AND blocked_id = ?",
                       (blocker_id, blocked_id))

    def blocks(self, blocker_id, blocked_id):
        """Whether blocker_id has blocked blocked_id."""
        return self._row("SELECT 1 AS yes FROM blocks WHERE blocker_id = ? AND blocked_id = ?",
                         (blocker_id, blocked_id)) is not None

    def blocked_in_direct_room(self, room_id, user_id):
        """Whether room_id is a direct room whose other member has blocked user_id."""
        return self._row(f"SELECT {BLOCKED_IN_DIRECT_ROOM} AS blocked",
                         {"room": room_id, "user": user_id})["blocked"] == 1

    def blocked_users(self, blocker_id):
        """The users blocker_id has blocked, in the order they were blocked."""
        return [as_user(row) for row in self._rows(
            f"SELECT {USER_COLUMNS_OF_U} FROM blocks b"
            " JOIN users u ON u.id = b.blocked_id WHERE b.blocker_id = ?"
            " ORDER BY b.created_at, u.id", (blocker_id,))]

    # -- rooms -------------------------------------------------------------

    def create_room(self, name, description, creator_id, created_at, visibility="public",
                    members=(), posting="everyone", slow_mode=0):
        """Create a room with its creator (and members) in it; raises Conflict for a taken public name."""
        with self._transaction() as db:
            room = self._insert_room(db, name, description, creator_id, created_at, visibility,
                                     "room", None, posting, slow_mode)
            db.executemany(
                "INSERT INTO room_members (room_id, user_id, joined_at) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                [(room["id"], user_id, created_at) for user_id in (creator_id, *members)])
        return room

    def _insert_room(self, db, name, description, creator_id, created_at, visibility, kind,
                     direct_key, posting="everyone", slow_mode=0):
        room_id = self._unused_id(db, "room_", "rooms")
        db.execute(
            "INSERT INTO rooms (id, name, description, creator_id, created_at, visibility, kind,"
            " direct_key, posting, slow_mode) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (room_id, name, description, creator_id, created_at, visibility, kind, direct_key,
             posting, slow_mode),
        )
        return {"id": room_id, "name": name, "description": description,
                "creator_id": creator_id, "created_at": created_at, "visibility": visibility,
                "kind": kind, "posting": posting, "slow_mode": slow_mode}

    def direct_room(self, user_id, other_id, name, created_at):
        """The one direct room of two users, made on first use; returns (room, whether it was made)."""
        key = "|".join(sorted((user_id, other_id)))
        with self._transaction() as db:
            row = db.execute(f"SELECT {ROOM_COLUMNS} FROM rooms WHERE direct_key = ?",
                             (key,)).fetchone()
            if row is not None:
                return dict(row), False
            room = self._insert_room(db, name, "", user_id, created_at, "private", "direct", key)
            db.executemany(
                "INSERT INTO room_members (room_id, user_id, joined_at) VALUES (?, ?, ?)",
                [(room["id"], member, created_at) for member in (user_id, other_id)])
        return room, True

    def room(self, room_id):
        return self._row(f"SELECT {ROOM_COLUMNS} FROM rooms WHERE id = ?", (room_id,))

    def room_seen_by(self, room_id, user_id):
        """A room, with user_id's joined_at (None if not a member), member_role and
        muted_until (None if not a member), is_member, is_banned and viewer_is_admin
        (whether they are an admin now); or None.

        One read for everything a check of who may see or change the room needs.
        """
        room = self._row(
            f"SELECT {', '.join('r.' + column for column in ROOM_COLUMNS.split(', '))},"
            " m.joined_at, m.role AS member_role, l.muted_until,"
            " EXISTS (SELECT 1 FROM room_bans b WHERE b.room_id = r.id"
            "  AND b.user_id = :user) AS is_banned,"
            " EXISTS (SELECT 1 FROM users u WHERE u.id = :user AND u.role = 'admin'"
            "  AND u.disabled = 0) AS viewer_is_admin"
            " FROM rooms r LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = :user"
            " LEFT JOIN member_limits l ON l.room_id = r.id AND l.user_id = :user"
            " WHERE r.id = :room", {"user": user_id, "room": room_id})
        if room is not None:
            room["is_member"] = room["joined_at"] is not None
        return room

    def list_rooms(self, limit, offset, viewer_id=None, viewer_is_admin=False):
        """One page of the rooms a viewer may see, in creation order, and how many they may see.

        Public rooms for everyone; a viewer also sees the private rooms they
        are a member or the creator of, and an admin every private room that
        is not a direct one. No viewer: public rooms only. Each room of
        which the viewer is a member carries their last_read_id,
        unread_count and mention_count.
        """
        # One query for the page: the rowid order needs no index; the
        # member count reads the room_members primary key; the unread count
        # is UNREAD_COUNT's arithmetic, and the mention count a range of the
        # mentions primary key (the mentions after the marker).
        names = {"viewer": viewer_id, "admin": bool(viewer_is_admin), "limit": limit,
                 "offset": offset}
        rooms = self._rows(
            "SELECT r.id, r.name, r.description, r.creator_id,"
            " (SELECT COUNT(*) FROM room_members m WHERE m.room_id = r.id) AS member_count,"
            f" r.created_at, r.visibility, r.kind, r.posting, r.slow_mode, me.last_read_id,"
            f" {UNREAD_COUNT} AS unread_count,"
            " (SELECT COUNT(*) FROM mentions n WHERE n.user_id = :viewer AND n.room_id = r.id"
            "  AND n.message_id > me.last_read_id) AS mention_count"
            " FROM rooms r LEFT JOIN room_members me ON me.room_id = r.id AND me.user_id = :viewer"
            f" WHERE {SEEN_BY_VIEWER} ORDER BY r.rowid LIMIT :limit OFFSET :offset", names)
        for room in rooms:
            if room["last_read_id"] is None:  # not a member: no marker, no counts
                del room["last_read_id"], room["unread_count"], room["mention_count"]
        total = self._row(f"SELECT COUNT(*) AS n FROM rooms r WHERE {SEEN_BY_VIEWER}", names)["n"]
        return rooms, total

    def mark_read(self, room_id, user_id, message_id):
        """Move user_id's read marker in room_id forward to message_id (no further than the newest).

        Returns {room_id, last_read_id, unread_count}, or None if the user
        is not a member. A marker never moves back.
        """
        names = {"room": room_id, "user": user_id, "read": message_id}
        marker = self._row(f"SELECT last_read_id, MIN(:read, {NEWEST_IN_ROOM}) AS wanted"
                           " FROM room_members WHERE room_id = :room AND user_id = :user", names)
        if marker is None:
            return None
        # Only a marker that moves is a write: a client that repeats
        # itself (or floods) costs a read, and no one else's writes wait.
        if marker["wanted"] > marker["last_read_id"]:
            with self._transaction(keeps_memory=True) as db:  # nothing remembered changes
                db.execute("UPDATE room_members SET last_read_id = MAX(last_read_id, :wanted)"
                           " WHERE room_id = :room AND user_id = :user",
                           {**names, "wanted": marker["wanted"]})
                # The marker's position: that of the newest message up to it
                # (one read back along messages_by_room).
                db.execute(
                    "UPDATE room_members SET read_position = MAX(read_position, COALESCE("
                    " (SELECT m.position FROM messages m WHERE m.room_id = :room"
                    "  AND m.id <= room_members.last_read_id ORDER BY m.id DESC LIMIT 1), 0))"
                    " WHERE room_id = :room AND user_id = :user", names)
        # Counted after the write, outside the write lock.
        return self._row(f"SELECT me.room_id, me.last_read_id, {UNREAD_COUNT} AS unread_count"
                         " FROM room_members me JOIN rooms r ON r.id = me.room_id"
                         " WHERE me.room_id = :room AND me.user_id = :user", names)

    def member_ids(self, room_id):
        """The ids of a room's members."""
        return [row["user_id"] for row in self._rows(
            "SELECT user_id FROM room_members WHERE room_id = ?", (room_id,))]

    def admin_ids(self):
        return [row["id"] for row in self._rows(
            "SELECT id FROM users WHERE role = 'admin' AND disabled = 0")]

    def update_room(self, room_id, changes):
        """Change a room's description, posting or slow_mode (changes: {column: value})."""
        with self._transaction() as db:
            for column in ("description", "posting", "slow_mode"):  # the names are ours
                if column in changes:
                    db.execute(f"UPDATE rooms SET {column} = ? WHERE id = ?",
                               (changes[column], room_id))

    def delete_room(self, room_id):
        """Delete a room; its members, messages and uploads go with it (ON DELETE CASCADE).

        Returns the ids of the uploads whose files are to be deleted now.
        """
        with self._transaction() as db:
            uploads = [row["id"] for row in db.execute(
                "SELECT u.id FROM messages m JOIN uploads u ON u.message_id = m.id"
                " WHERE m.room_id = ?", (room_id,))]
            db.execute("DELETE FROM rooms WHERE id = ?", (room_id,))
            return uploads

    # -- membership --------------------------------------------------------

    def add_member(self, room_id, user_id, joined_at, lift_ban=False):
        """Make user_id a member of room_id; return the first join's time.

        Joining twice keeps the first time. Returns None when the room does
        not exist (it may have been deleted a moment ago). Raises Banned for
        a user banned from it, unless lift_ban (someone in charge adds them).
        """
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM rooms WHERE id = ?", (room_id,)).fetchone() is None:
                return None
            if lift_ban:
                db.execute("DELETE FROM room_bans WHERE room_id = ? AND user_id = ?",
                           (room_id, user_id))
            elif db.execute("SELECT 1 FROM room_bans WHERE room_id = ? AND user_id = ?",
                            (room_id, user_id)).fetchone() is not None:
                raise Banned(room_id)
            # A new member has read everything so far: nothing is unread.
            db.execute(
                "INSERT INTO room_members (room_id, user_id, joined_at, last_read_id,"
                f" read_position) SELECT :room, :user, :joined_at, {NEWEST_IN_ROOM}, {LAST_POSITION}"
                " FROM rooms r WHERE r.id = :room ON CONFLICT DO NOTHING",
                {"room": room_id, "user": user_id, "joined_at": joined_at},
            )
            row = db.execute(
                "SELECT joined_at FROM room_members WHERE room_id = ? AND user_id = ?",
                (room_id, user_id),
            ).fetchone()
            return row["joined_at"]

    def room_members(self, room_id, member_id=None):
        """A room's members (or the one member_id), {id, username, display_name, status,
        joined_at, role, muted_until}, in the order they joined; role is 'owner' for the room's
        creator."""
        # One query for the whole list: members_by_join gives the order,
        # the users primary key each name.
        return self._rows(
            "SELECT u.id, u.username, COALESCE(u.display_name, u.username) AS display_name,"
            " u.status, m.joined_at,"
            " CASE WHEN r.creator_id = u.id THEN 'owner' ELSE m.role END AS role, l.muted_until"
            " FROM room_members m JOIN users u ON u.id = m.user_id JOIN rooms r ON r.id = m.room_id"
            " LEFT JOIN member_limits l ON l.room_id = m.room_id AND l.user_id = m.user_id"
            " WHERE m.room_id = :room AND (:member IS NULL OR m.user_id = :member)"
            " ORDER BY m.joined_at, m.user_id",
            {"room": room_id, "member": member_id},
        )

    def update_member(self, room_id, user_id, changes):
        """Change a member's role or muted_until (changes: {column: value}); False if not a member.

        A mute is kept in member_limits, so that it outlasts leaving the room.
        """
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM room_members WHERE room_id = ? AND user_id = ?",
                          (room_id, user_id)).fetchone() is None:
                return False
            if "role" in changes:
                db.execute("UPDATE room_members SET role = ? WHERE room_id = ? AND user_id = ?",
                           (changes["role"], room_id, user_id))
            if "muted_until" in changes:
                db.execute("INSERT INTO member_limits (room_id, user_id, muted_until)"
                           " VALUES (?, ?, ?) ON CONFLICT (room_id, user_id) DO UPDATE"
                           " SET muted_until = excluded.muted_until",
                           (room_id, user_id, changes["muted_until"]))
            return True

    def remove_member(self, room_id, user_id, banned_at=None):
        """Remove a membership, and ban the user too if banned_at is given; False if there was none."""
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM room_members WHERE room_id = ? AND user_id = ?",
                (room_id, user_id),
            )
            if banned_at is not None:
                db.execute("INSERT INTO room_bans (room_id, user_id, banned_at) VALUES (?, ?, ?)"
                           " ON CONFLICT (room_id, user_id) DO UPDATE SET banned_at = excluded.banned_at", (room_id, user_id, banned_at))
            return cursor.rowcount > 0

    # -- messages ------------------------------------------------------------

    def add_message(self, room_id, user_id, content, timestamp, client_id=None, mentioned=(),
                    reply_to=None):
        """Save a chat message; return {id, content, timestamp, duplicate, mentions, ...} once committed.

        A client_id the same user already sent with the same room and
        content saves nothing: the first message comes back, with
        duplicate=True. With another room or content it is ClientIdReused.
        mentioned: the names content may @mention (protocol.mentioned_names);
        those that are users become the message's mentions.
        """
        [saved] = self.add_messages([(room_id, user_id, content, timestamp, client_id, mentioned,
                                      (), reply_to)])
        if isinstance(saved, StoreError):
            raise saved
        return saved

    def add_messages(self, messages):
        """Save (room_id, user_id, content, timestamp, client_id, mentioned, upload_ids,
        reply_to) messages in one transaction (the last two may be left out).

        Returns, in order, what add_message would for each, or the
        StoreError that one message met on its own (its room was deleted a
        moment ago); the others are saved all the same. A failure of the
        transaction itself (busy, read-only, disk full) raises for all.

        Why: the commit is most of the cost of saving a message (it writes
        the table's and both indexes' pages to the log), and messages that
        arrive together can share one (group commit).
        """
        saved = []
        with self._transaction(keeps_memory=True) as db:
            self._memory.check()
            self._lock_rooms(db, {message[0] for message in messages})
            batch = MessageBatch(db, messages, self._memory)
            for message in messages:
                try:
                    with self._alone(db):
                        saved.append(self._insert_message(db, batch, *message))
                except self.IntegrityError as exc:
                    # Only this message's statements are undone; the transaction goes on.
                    saved.append(self._store_error(exc))
                except StoreError as exc:  # refused on its own: ClientIdReused, Blocked...
                    saved.append(exc)
            batch.finish(db)
        return saved

    def _insert_message(self, db, batch, room_id, user_id, content, timestamp, client_id,
                        mentioned=(), upload_ids=(), reply_to=None):
        if client_id is not None:
            first = db.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.user_id"
                " WHERE m.user_id = ? AND m.client_id = ?",
                (user_id, client_id),
            ).fetchone()
            if first is not None and (first["room_id"], first["content"]) != (room_id, content):
                raise ClientIdReused(client_id)
            if first is not None:
                first = self._completed([dict(first)], db)[0]
                return {**{field: first[field] for field in (
                            "id", "timestamp", "mentions", "attachments", "reply_to", "reactions",
                            "pinned")},
                        "content": content, "duplicate": True, "mentioned_members": []}
        slowed = batch.check_author(room_id, user_id, timestamp)
        uploads = batch.check_attachments(user_id, upload_ids)
        parent = batch.parent(room_id, reply_to)
        position = batch.next_position(room_id)
        mentions = users_named(batch.names, mentioned)
        message_id = self._inserted_id(
            db, "INSERT INTO messages (room_id, user_id, content, timestamp, client_id, mentions,"
            " position, reply_to) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (room_id, user_id, content, timestamp, client_id, " ".join(mentions) or None,
             position, reply_to))
        if slowed:  # saved: the author's slow-mode wait starts now
            batch.rules.posted(room_id, user_id, timestamp)
        members = batch.note_mentions(message_id, room_id, user_id, mentions, parent)
        batch.attach(db, message_id, uploads)
        return {"id": message_id, "content": content, "timestamp": timestamp,
                "duplicate": False, "mentions": mentions, "mentioned_members": members,
                "attachments": [self.attachment(upload) for upload in uploads],
                "reply_to": None if parent is None else reply_quote(parent, reply_to),
                "reactions": [], "pinned": False}

    def _messages(self, sql, params):
        """Rows of messages (MESSAGE_COLUMNS), completed as message objects carry them."""
        return self._completed(self._rows(sql, params))

    def _completed(self, rows, db=None):
        """Message rows with their mentions as lists of user ids, and their attachments,
        reactions and replied-to messages, read in one query each for all the rows (on db, or
        a reader)."""
        ids = [row["id"] for row in rows]
        attachments = self._attachments(db, ids)
        reactions = self._reactions(db, ids)
        parents = self._parents(db, [row["reply_to"] for row in rows if row["reply_to"]])
        for row in rows:
            row["mentions"] = mention_ids(row["mentions"])
            row["attachments"] = attachments.get(row["id"], [])
            row["reactions"] = reactions.get(row["id"], [])
            row["pinned"] = bool(row["pinned"])
            reply_to = row["reply_to"]
            row["reply_to"] = reply_to and reply_quote(parents.get(reply_to), reply_to)
        return rows

    def _read(self, db, sql, params):
        """Rows of sql: in the caller's transaction (db), or on a reader."""
        return db.execute(sql, params).fetchall() if db is not None else self._rows(sql, params)

    def _reactions(self, db, message_ids):
        if not message_ids:
            return {}
        return reactions_of(self._read(
            db, "SELECT message_id, emoji, user_id FROM reactions"
            f" WHERE message_id IN ({placeholders(message_ids)}) ORDER BY place, rowid",
            message_ids))

    def _parents(self, db, parent_ids):
        """{id: messages row with its author's username} of those parent ids still there."""
        if not parent_ids:
            return {}
        return {row["id"]: row for row in self._read(
            db, "SELECT m.id, m.user_id, m.content, u.username FROM messages m"
            f" JOIN users u ON u.id = m.user_id WHERE m.id IN ({placeholders(parent_ids)})",
            list(set(parent_ids)))}

    def _attachments(self, db, message_ids):
        """{message id: [its attachments, in order]} in one query (on db, or a reader)."""
        found = collections.defaultdict(list)
        if not message_ids:
            return found
        for upload in self._read(
                db, f"SELECT {UPLOAD_COLUMNS}, message_id FROM uploads"
                f" WHERE message_id IN ({placeholders(message_ids)}) ORDER BY message_id, position",
                message_ids):
            found[upload["message_id"]].append(self.attachment(upload))
        return found

    def attachment(self, upload):
        """An upload as message objects carry it (CONTRACT 1.3), its url made by file_link."""
        return {"id": upload["id"], "filename": upload["filename"],
                "content_type": upload["content_type"], "size": upload["size"],
                "url": self.file_link(upload["id"]), "width": upload["width"],
                "height": upload["height"]}

    @staticmethod
    def file_link(upload_id):
        """The link to an upload's file; the server sets its own (files.LinkSigner.url)."""
        return f"/api/v1/files/{upload_id}"

    def message(self, message_id):
        """Who wrote a message, and where: {id, room_id, user_id, creator_id (its room's)}, or None.

        What a check of who may change or react to it needs, in one indexed
        read (not the message object: that is four queries).
        """
        return self._row("SELECT m.id, m.room_id, m.user_id, r.creator_id FROM messages m"
                         " JOIN rooms r ON r.id = m.room_id WHERE m.id = ?", (message_id,))

    def edit_message(self, message_id, content, edited_at, mentioned=()):
        """Replace a message's content and mentions; return the message as history shows it, or None."""
        with self._transaction() as db:
            author = db.execute("SELECT room_id, user_id FROM messages WHERE id = ?",
                                (message_id,)).fetchone()
            if author is None:
                return None
            # An edit is a new text: refused where its author may not post now (but no slow mode).
            PostingRules.of(db, author["room_id"], author["user_id"]).check(
                author["room_id"], author["user_id"], edited_at, editing=True)
            mentions = users_named(ids_by_name(db, [mentioned]), mentioned)
            db.execute("UPDATE messages SET content = ?, edited_at = ?, mentions = ? WHERE id = ?",
                       (content, edited_at, " ".join(mentions) or None, message_id))
            row = db.execute(f"SELECT {MESSAGE_COLUMNS} FROM messages m"
                             " JOIN users u ON u.id = m.user_id WHERE m.id = ?",
                             (message_id,)).fetchone()
            if row is not None:
                row = self._completed([dict(row)], db)[0]
                db.execute("DELETE FROM mentions WHERE message_id = ?", (message_id,))
                parent_author = (row["reply_to"] or {}).get("user_id")
                note_mentions(db, message_id, row["room_id"], row["user_id"],
                              with_parent_author(mentions, parent_author))
        return row

    def delete_message(self, message_id):
        """Delete a message for good, with its uploads; return the ids of the uploads whose files
        are to be deleted now, or None if there was no message."""
        with self._transaction() as db:
            # Its position stays counted as deleted, for the unread counts (UNREAD_COUNT).
            db.execute("INSERT INTO deleted_messages (room_id, position)"
                       " SELECT room_id, position FROM messages WHERE id = ?"
                       " ON CONFLICT DO NOTHING", (message_id,))
            uploads = [row["id"] for row in db.execute(
                "SELECT id FROM uploads WHERE message_id = ?", (message_id,))]
            if db.execute("DELETE FROM messages WHERE id = ?", (message_id,)).rowcount == 0:
                return None
            return uploads

    def react(self, message_id, user_id, emoji, adding, when):
        """Add (or with adding=False take back) user_id's emoji on a message; return the message's
        reactions then, and whether they changed, or None if the message is gone.

        Reacting is refused where user_id may not post now (Muted,
        OnlyModeratorsPost; slow mode aside); TooManyReactions for a new
        emoji on a message that has MAX_EMOJI already. Reacting twice, or
        taking back what was not there, changes nothing.
        """
        with self._transaction(keeps_memory=True) as db:  # nothing remembered changes
            message = db.execute("SELECT room_id FROM messages WHERE id = ?",
                                 (message_id,)).fetchone()
            if message is None:
                return None
            room_id = message["room_id"]
            PostingRules.of(db, room_id, user_id).check(room_id, user_id, when, editing=True)
            if adding:
                places = {row["emoji"]: row["place"] for row in db.execute(
                    "SELECT emoji, MIN(place) AS place FROM reactions WHERE message_id = ?"
                    " GROUP BY emoji", (message_id,))}
                if emoji not in places and len(places) >= MAX_EMOJI:
                    raise TooManyReactions(message_id)
                place = places.get(emoji, max(places.values(), default=0) + 1)
                changed = db.execute("INSERT INTO reactions (message_id, emoji, user_id,"
                                     " place) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                                     (message_id, emoji, user_id, place)).rowcount
            else:
                changed = db.execute("DELETE FROM reactions WHERE message_id = ? AND emoji = ?"
                                     " AND user_id = ?", (message_id, emoji, user_id)).rowcount
            reactions = self._reactions(db, [message_id]).get(message_id, [])
        return reactions, changed > 0

    def pin(self, message_id, room_id, user_id, when, pinning):
        """Pin (or with pinning=False unpin) a message of room_id; return whether that changed
        anything, or None if the message is gone. TooManyPins past MAX_PINS in the room."""
        with self._transaction(keeps_memory=True) as db:  # nothing remembered changes
            if db.execute("SELECT 1 FROM messages WHERE id = ? AND room_id = ?",
                          (message_id, room_id)).fetchone() is None:
                return None
            if not pinning:
                return db.execute("DELETE FROM pins WHERE message_id = ?",
                                  (message_id,)).rowcount > 0
            if db.execute("SELECT 1 FROM pins WHERE message_id = ?", (message_id,)).fetchone():
                return False
            if db.execute("SELECT COUNT(*) FROM pins WHERE room_id = ?",
                          (room_id,)).fetchone()[0] >= MAX_PINS:
                raise TooManyPins(room_id)
            db.execute("INSERT INTO pins (message_id, room_id, pinned_by, pinned_at)"
                       " VALUES (?, ?, ?, ?)", (message_id, room_id, user_id, when))
            return True

    def pinned_messages(self, room_id):
        """A room's pinned messages, newest pin first."""
        return self._messages(
            f"SELECT {MESSAGE_COLUMNS} FROM pins p0 JOIN messages m ON m.id = p0.message_id"
            " JOIN users u ON u.id = m.user_id WHERE p0.room_id = ? ORDER BY p0.id DESC",
            (room_id,))

    def messages(self, room_id, limit, before=None):
        """The newest `limit` messages of a room older than id `before`, oldest first."""
        if before is None:
            before = 2**63 - 1  # SQLite's largest integer: no upper bound
        # The inner query walks messages_by_room backwards from `before` and
        # stops after `limit` rows; the outer one puts them in reading order.
        return self._messages(
            "SELECT * FROM ("
            f" SELECT {MESSAGE_COLUMNS}"
            " FROM messages m JOIN users u ON u.id = m.user_id"
            " WHERE m.room_id = ? AND m.id < ?"
            " ORDER BY m.id DESC LIMIT ?"
            ") AS newest ORDER BY id",
            (room_id, before, limit),
        )

    def room_history(self, room_id, page=500):
        """Every message of a room, oldest first, as messages() gives them: a generator.

        Read a page at a time, each page a read of its own: memory stays
        flat however long the room's history (an export), and no read holds
        a connection for the whole of it. A message posted meanwhile may or
        may not be included; one deleted meanwhile may still be.
        """
        after = 0
        while True:
            rows = self.messages_after_oldest(room_id, after, page)
            yield from rows
            if len(rows) < page:
                return
            after = rows[-1]["id"]

    def messages_after_oldest(self, room_id, after, limit):
        """The oldest `limit` messages of a room with ids above `after`, oldest first."""
        return self._messages(
            f"SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.user_id"
            " WHERE m.room_id = ? AND m.id > ? ORDER BY m.id LIMIT ?", (room_id, after, limit))

    def messages_after(self, room_id, since, limit):
        """The newest `limit` messages of a room with ids above `since`, oldest first."""
        return self._messages(
            "SELECT * FROM ("
            f" SELECT {MESSAGE_COLUMNS}"
            " FROM messages m JOIN users u ON u.id = m.user_id"
            " WHERE m.room_id = ? AND m.id > ?"
            " ORDER BY m.id DESC LIMIT ?"
            ") AS newest ORDER BY id",
            (room_id, since, limit),
        )

    # -- search --------------------------------------------------------------

    def index_new_messages(self):
        """Add messages saved since the last call to the search index; return how many.

        One transaction for up to INDEX_BATCH of them (SEARCH_TABLES says
        why), and none at all when nothing is new.
        """
        state = self._row("SELECT (SELECT through FROM messages_search_done) AS through,"
                          " (SELECT COALESCE(MAX(id), 0) FROM messages) AS newest")
        if state["through"] >= state["newest"]:
            return 0
        # At most INDEX_BATCH at a time: a long backlog (messages a script
        # wrote with the server stopped) must not hold the writer for long.
        with self._transaction(keeps_memory=True) as db:  # nothing remembered changes
            through = db.execute("SELECT COALESCE(MAX(id), (SELECT through FROM messages_search_done))"
                                 " FROM (SELECT id FROM messages"
                                 " WHERE id > (SELECT through FROM messages_search_done)"
                                 " ORDER BY id LIMIT ?)", (INDEX_BATCH,)).fetchone()[0]
            added = db.execute("INSERT INTO messages_search (rowid, content)"
                               " SELECT id, content FROM messages WHERE id > (SELECT through"
                               " FROM messages_search_done) AND id <= ?", (through,)).rowcount
            db.execute("UPDATE messages_search_done SET through = ?", (through,))
        return added

    def search(self, text, viewer_id, viewer_is_admin, limit, room_id=None, before=None):
        """The newest `limit` messages that have every word of text, from the rooms the viewer may see.

        Only messages indexed already (index_new_messages). Newest first, each with its room's name (room_name). A word ending
        in "*" matches as a prefix; case and accents are ignored (FTS5's
        unicode61). Only the words of text count: quotes, operators and the
        like are not FTS5 syntax here, but spaces.
        """
        # Each word as an FTS5 string ("..." is a phrase of that word's
        # tokens; a "*" after it makes it a prefix): nothing a user types
        # can be taken as a column filter, NEAR, NOT or a syntax error. NFC
        # first, so that an accent typed as a letter and a combining mark
        # stays in its word. A word given twice is looked for once.
        # A prefix needs MIN_PREFIX letters: "w*" would have FTS5 merge the
        # lists of every word starting with w (seconds over a million
        # messages, and not stoppable); shorter, it is a whole word.
        words = re.findall(r"(\w+)(\*?)", unicodedata.normalize("NFC", text))
        terms = list(dict.fromkeys(f'"{word}"' + (star if len(word) >= MIN_PREFIX else "")
                                   for word, star in words))[:MAX_SEARCH_WORDS]
        if not terms:
            return []
        names = {"query": " ".join(terms), "viewer": viewer_id, "admin": bool(viewer_is_admin),
                 "room": room_id, "before": 2**63 - 1 if before is None else before,
                 "limit": limit}
        # The index gives the matches newest first (ORDER BY its rowid, with
        # the `before` bound inside it), so LIMIT stops the walk early. A
        # search whose words match too much (a one-letter prefix over a
        # million messages: seconds) is stopped at SEARCH_SECONDS, so that
        # no one's search can keep a core busy for long.
        deadline = time.monotonic() + SEARCH_SECONDS
        try:
            with self._reading() as db:
                db.set_progress_handler(lambda: time.monotonic() > deadline, 1000)
                try:
                    rows = [dict(row) for row in db.execute(
                        f"SELECT {MESSAGE_COLUMNS}, r.name AS room_name FROM messages_search"
                        " JOIN messages m ON m.id = messages_search.rowid"
                        " JOIN rooms r ON r.id = m.room_id JOIN users u ON u.id = m.user_id"
                        " WHERE messages_search MATCH :query AND messages_search.rowid < :before"
                        f" AND (:room IS NULL OR m.room_id = :room) AND {SEEN_BY_VIEWER}"
                        " ORDER BY messages_search.rowid DESC LIMIT :limit", names)]
                finally:
                    db.set_progress_handler(None, 0)
        except sqlite3.OperationalError as exc:
            if time.monotonic() > deadline:  # stopped by the progress handler: "interrupted"
                raise SearchTooLong(text) from exc
            raise store_error(exc) from exc
        except sqlite3.Error as exc:
            raise store_error(exc) from exc
        return self._completed(rows)

    # -- uploads ---------------------------------------------------------------

    def add_upload(self, upload_id, user_id, filename, content_type, size, width, height,
                   created_at, quota=None):
        """Record an upload whose file was written; return it as messages carry it.

        upload_id: the name its file was written under (new_upload_id).
        Raises QuotaExceeded when the user's uploads still kept, this one
        included, would pass quota bytes (None: no quota). One transaction:
        two uploads at once cannot both slip under the quota.
        """
        with self._transaction(keeps_memory=True) as db:  # nothing remembered changes
            if quota is not None:
                used = db.execute("SELECT COALESCE(SUM(size), 0) FROM uploads WHERE user_id = ?",
                                  (user_id,)).fetchone()[0]
                if used + size > quota:
                    raise QuotaExceeded(user_id)
            db.execute("INSERT INTO uploads (id, user_id, filename, content_type, size, width,"
                       " height, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (upload_id, user_id, filename, content_type, size, width, height,
                        created_at))
        return self.attachment({"id": upload_id, "filename": filename, "size": size,
                                "content_type": content_type, "width": width, "height": height})

    @staticmethod
    def new_upload_id():
        """A new upload's id ('file_' and 8 hex digits), made before its file is written; a clash
        with an existing one fails as the file is written (files.FileFolder) or recorded."""
        return "file_" + secrets.token_hex(4)

    def upload_bytes(self, user_id):
        """The bytes of a user's uploads still kept (their quota's use)."""
        return self._row("SELECT COALESCE(SUM(size), 0) AS used FROM uploads WHERE user_id = ?",
                         (user_id,))["used"]

    def upload(self, upload_id):
        """An upload, with user_id and the room of its message (room_id, None if unattached)."""
        return self._row("SELECT u.id, u.filename, u.content_type, u.size, u.width, u.height,"
                         " u.user_id, u.created_at, m.room_id FROM uploads u"
                         " LEFT JOIN messages m ON m.id = u.message_id WHERE u.id = ?",
                         (upload_id,))

    def remove_unattached_uploads(self, created_before):
        """Delete the uploads never attached that were made before then; return their ids."""
        with self._transaction() as db:
            removed = [row["id"] for row in db.execute(
                "SELECT id FROM uploads WHERE message_id IS NULL AND created_at < ?",
                (created_before,))]
            db.executemany("DELETE FROM uploads WHERE id = ?", [(upload_id,) for upload_id in removed])
            return removed

    def upload_ids(self, upload_ids):
        """Those of these ids that are uploads (a sweep's check for files no upload owns)."""
        return {row["id"] for row in self._rows(
            f"SELECT id FROM uploads WHERE id IN ({placeholders(upload_ids)})",
            list(upload_ids))} if upload_ids else set()

    # -- reports ---------------------------------------------------------------

    def add_report(self, message_id, reporter_id, reason, created_at):
        """Report a message, keeping a copy of it; return the report, or None if the message is gone.

        Raises Conflict when the reporter reported this message already.
        """
        with self._transaction() as db:
            report_id = self._inserted_id(
                db, "INSERT INTO reports (message_id, room_id, room_name, author_id, author_name,"
                " content, timestamp, edited_at, mentions, reporter_id, reason, created_at)"
                " SELECT m.id, m.room_id, r.name, m.user_id, u.username, m.content, m.timestamp,"
                " m.edited_at, m.mentions, ?, ?, ? FROM messages m JOIN rooms r ON r.id = m.room_id"
                " JOIN users u ON u.id = m.user_id WHERE m.id = ?",
                (reporter_id, reason, created_at, message_id))
        return None if report_id is None else self.report(report_id, reporter_id)

    def report(self, report_id, viewer_id):
        """A report, with whether viewer_id moderates it (moderated_by_viewer); or None."""
        reports = self._reports("WHERE p.id = :id", {"id": report_id, "viewer": viewer_id})
        return reports[0] if reports else None

    def report_moderators(self, report_id):
        """The ids of those who moderate a report beside the admins (report_moderated_by)."""
        return [row["id"] for row in self._rows(
            "SELECT c.id FROM reports p JOIN rooms r ON r.id = p.room_id"
            " CROSS JOIN (SELECT r2.creator_id AS id FROM reports p2 JOIN rooms r2 ON r2.id = p2.room_id"
            "  WHERE p2.id = :id UNION SELECT m.user_id FROM reports p2 JOIN room_members m"
            "  ON m.room_id = p2.room_id WHERE p2.id = :id AND m.role = 'moderator') c"
            f" WHERE p.id = :id AND {report_moderated_by('c.id')}", {"id": report_id})]

    def reports(self, status, viewer_id, viewer_is_admin, limit, before=None):
        """A page of the reports of one status (None: all) that a viewer handles, newest first.

        An admin handles every room's; anyone else the reports they moderate
        (report_moderated_by). before: only reports with smaller ids, for the
        next page: a flood of new reports can never hide an older one.
        """
        return self._reports(
            "WHERE (:status IS NULL OR p.status = :status) AND p.id < :before"
            f" AND (:admin OR {report_moderated_by(':viewer')})"
            " ORDER BY p.id DESC LIMIT :limit",
            {"status": status, "admin": bool(viewer_is_admin), "viewer": viewer_id,
             "before": 2**63 - 1 if before is None else before, "limit": limit})

    def _reports(self, where, names):
        rows = self._rows(
            "SELECT p.*, COALESCE(r.name, p.room_name) AS current_room_name,"
            f" {report_moderated_by(':viewer')} AS moderated_by_viewer,"
            " v.username AS reporter_name, v.created_at AS reporter_created_at,"
            " v.role AS reporter_role, v.disabled AS reporter_disabled,"
            " v.must_change_password AS reporter_must_change_password,"
            " v.display_name AS reporter_display_name, v.status AS reporter_status"
            " FROM reports p LEFT JOIN rooms r ON r.id = p.room_id"
            f" JOIN users v ON v.id = p.reporter_id {where}", names)
        for row in rows:
            row["mentions"] = mention_ids(row["mentions"])
        return rows

    def set_report_status(self, report_id, status, viewer_id):
        with self._transaction() as db:
            db.execute("UPDATE reports SET status = ? WHERE id = ?", (status, report_id))
        return self.report(report_id, viewer_id)
