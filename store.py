"""SwiftChat's storage: every SQL statement the server runs lives here.

The store owns one ``sqlite3`` connection, opened on the schema in
``schema.sql``, and a ``threading.Lock`` that every method takes, so the HTTP
worker threads and the WebSocket event loop thread can share it safely. Each
method holds the lock for one short query or one transaction; slow work such
as password hashing happens before a method is called, never inside it.

The store knows nothing about HTTP, WebSocket frames, tokens or validation:
callers hand it checked values and get plain dicts back. Rows that are not
there come back as ``None``; a write that breaks a UNIQUE constraint raises
``Conflict``.
"""

import contextlib
import logging
import os
import pathlib
import secrets
import sqlite3
import stat
import threading

__all__ = ["Store", "Conflict"]

SCHEMA_PATH = pathlib.Path(__file__).with_name("schema.sql")

log = logging.getLogger("swiftchat.store")


def make_private(path):
    """Create the database file for its owner only, or tighten one others can read.

    It holds password hashes and, unless one is passed in, the JWT secret.
    SQLite gives the -wal and -shm files it creates the database's own mode.
    """
    if str(path) == ":memory:":
        return
    # os.open's mode applies only to a new file, and the umask can only take
    # bits away from it, so 0o600 holds whatever the umask is.
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for name in (str(path), f"{path}-wal", f"{path}-shm"):
        try:
            mode = stat.S_IMODE(os.stat(name).st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            log.warning("%s was readable by others (mode %o); tightened to 600", name, mode)
            os.chmod(name, 0o600)


class Conflict(Exception):
    """A write was refused by a UNIQUE constraint (a taken name)."""


class Store:
    """Lock-guarded access to the SwiftChat database.

    Users:    create_user, user, user_with_password, list_users
    Rooms:    create_room, room, list_rooms, update_description, delete_room
    Members:  add_member, remove_member
    Messages: add_message, messages
    Settings: setting
    Lifetime: close
    """

    def __init__(self, path):
        make_private(path)
        # One connection shared by every thread; the lock, not sqlite3's
        # same-thread check, is what keeps its use serial.
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode = WAL")
            # WAL with synchronous=NORMAL survives a crash of this process;
            # only a power cut can lose the last few commits.
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA busy_timeout = 5000")
            self._db.executescript(SCHEMA_PATH.read_text(encoding="utf-8"))

    def close(self):
        """Fold the write-ahead log into the database file and close it."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()

    # -- helpers -----------------------------------------------------------

    def _rows(self, sql, params=()):
        with self._lock:
            return [dict(row) for row in self._db.execute(sql, params)]

    def _row(self, sql, params=()):
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    @contextlib.contextmanager
    def _transaction(self):
        """Hold the lock for one transaction: commit on success, else roll back.

        This is the one place where sqlite3.IntegrityError becomes Conflict.
        """
        with self._lock:
            try:
                with self._db:
                    yield self._db
            except sqlite3.IntegrityError as exc:
                raise Conflict(str(exc)) from exc

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

    # -- users -------------------------------------------------------------

    def create_user(self, username, password_hash, created_at):
        with self._transaction() as db:
            user_id = self._unused_id(db, "user_", "users")
            db.execute(
                "INSERT INTO users (id, username, password_hash, created_at)"
                " VALUES (?, ?, ?, ?)",
                (user_id, username, password_hash, created_at),
            )
        return {"id": user_id, "username": username, "created_at": created_at}

    def user(self, user_id):
        return self._row(
            "SELECT id, username, created_at FROM users WHERE id = ?", (user_id,)
        )

    def user_with_password(self, username):
        """The user with this name (any letter case), including password_hash."""
        return self._row(
            "SELECT id, username, created_at, password_hash FROM users"
            " WHERE username = ?",
            (username,),
        )

    def list_users(self, limit, offset):
        """One page of users, oldest first, and the number of all users."""
        users = self._rows(
            "SELECT id, username, created_at FROM users"
            " ORDER BY created_at, id LIMIT ? OFFSET ?",
            (limit, offset),
        )
        total = self._row("SELECT COUNT(*) AS n FROM users")["n"]
        return users, total

    # -- rooms -------------------------------------------------------------

    def create_room(self, name, description, creator_id, created_at):
        """Create a room and make its creator the first member."""
        with self._transaction() as db:
            room_id = self._unused_id(db, "room_", "rooms")
            db.execute(
                "INSERT INTO rooms (id, name, description, creator_id, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (room_id, name, description, creator_id, created_at),
            )
            db.execute(
                "INSERT INTO room_members (room_id, user_id, joined_at) VALUES (?, ?, ?)",
                (room_id, creator_id, created_at),
            )
        return {
            "id": room_id,
            "name": name,
            "description": description,
            "creator_id": creator_id,
            "created_at": created_at,
        }

    def room(self, room_id):
        return self._row(
            "SELECT id, name, description, creator_id, created_at FROM rooms"
            " WHERE id = ?",
            (room_id,),
        )

    def list_rooms(self, limit, offset):
        """One page of rooms with their member counts, and the number of all rooms."""
        # The correlated COUNT reads the room_members primary key index, so
        # the whole page costs one query however many rooms it holds.
        rooms = self._rows(
            "SELECT r.id, r.name, r.description, r.creator_id,"
            " (SELECT COUNT(*) FROM room_members m WHERE m.room_id = r.id)"
            "   AS member_count,"
            " r.created_at"
            " FROM rooms r ORDER BY r.created_at, r.id LIMIT ? OFFSET ?",
            (limit, offset),
        )
        total = self._row("SELECT COUNT(*) AS n FROM rooms")["n"]
        return rooms, total

    def update_description(self, room_id, description):
        with self._transaction() as db:
            db.execute(
                "UPDATE rooms SET description = ? WHERE id = ?", (description, room_id)
            )

    def delete_room(self, room_id):
        """Delete a room; its members and messages go with it (ON DELETE CASCADE)."""
        with self._transaction() as db:
            db.execute("DELETE FROM rooms WHERE id = ?", (room_id,))

    # -- membership --------------------------------------------------------

    def add_member(self, room_id, user_id, joined_at):
        """Make user_id a member of room_id; return the first join's time.

        Joining twice keeps the first time. Returns None when the room does
        not exist (it may have been deleted a moment ago).
        """
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM rooms WHERE id = ?", (room_id,)).fetchone() is None:
                return None
            db.execute(
                "INSERT OR IGNORE INTO room_members (room_id, user_id, joined_at)"
                " VALUES (?, ?, ?)",
                (room_id, user_id, joined_at),
            )
            row = db.execute(
                "SELECT joined_at FROM room_members WHERE room_id = ? AND user_id = ?",
                (room_id, user_id),
            ).fetchone()
            return row["joined_at"]

    def remove_member(self, room_id, user_id):
        """Remove a membership; return False when there was none."""
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM room_members WHERE room_id = ? AND user_id = ?",
                (room_id, user_id),
            )
            return cursor.rowcount > 0

    # -- messages ----------------------------------------------------------

    def add_message(self, room_id, user_id, content, timestamp):
        """Save a chat message and return its id once it is committed."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO messages (room_id, user_id, content, timestamp)"
                " VALUES (?, ?, ?, ?)",
                (room_id, user_id, content, timestamp),
            )
            return cursor.lastrowid

    def messages(self, room_id, limit, before=None):
        """The newest `limit` messages of a room older than id `before`, oldest first."""
        if before is None:
            before = 2**63 - 1  # SQLite's largest integer: no upper bound
        # The inner query walks messages_by_room backwards from `before` and
        # stops after `limit` rows; the outer one puts them in reading order.
        return self._rows(
            "SELECT * FROM ("
            " SELECT m.id, m.room_id, m.user_id, m.content, m.timestamp, u.username"
            " FROM messages m JOIN users u ON u.id = m.user_id"
            " WHERE m.room_id = ? AND m.id < ?"
            " ORDER BY m.id DESC LIMIT ?"
            ") ORDER BY id",
            (room_id, before, limit),
        )
