"""SwiftChat's store on PostgreSQL: store.Store's interface, for a database several processes share.

What it owns: the connections to one PostgreSQL database (psycopg 3, an
optional dependency: requirements-postgres.txt), its schema
(schema_postgres.sql, created and migrated at start), and the queries
that PostgreSQL asks in its own words: search, the schema's upgrade, and
the helpers store.Database keeps for SQLite (a new row's id, a message of
a batch undone alone, what an error means).

What it does not own: every other query, which it inherits from
store.Store unchanged. store.py writes them in SQLite's placeholders
(``?`` and ``:name``); postgres_sql() turns them into psycopg's
(``%s`` and ``%(name)s``) once per query text. Nor the chat between
processes (who is online where, frames for another process's
connections): that is the chat core's.

    store = PostgresStore("postgresql://swiftchat@localhost/swiftchat")

A process writes as store.Store does, one transaction at a time under one
lock, so that its own writes keep their order; other processes write
beside it, and what must be serial between them (the messages of one
room) takes a row lock in PostgreSQL.
"""

import contextlib
import decimal
import functools
import pathlib
import re
import threading
import time
import unicodedata

try:
    import psycopg
    import psycopg.adapt
    import psycopg.errors
except ImportError:  # PostgresStore says what to install
    psycopg = None

import store
from store import (MAX_SEARCH_WORDS, MESSAGE_COLUMNS, MIN_PREFIX, SEEN_BY_VIEWER, WRITE_TIMEOUT,
                   Conflict, DatabaseBusy, DatabaseReadOnly, DatabaseUnavailable, DiskFull,
                   SearchTooLong, StoreError)

__all__ = ["PostgresStore", "postgres_sql", "SCHEMA_VERSION"]

SCHEMA_PATH = pathlib.Path(__file__).with_name("schema_postgres.sql")
# PostgreSQL's own schema versions (kept in the settings table as
# 'schema_version'). Each entry takes a database of one version to the
# next, as store.MIGRATIONS does for SQLite; version 1 is 1.3's first.
MIGRATIONS = []
SCHEMA_VERSION = 1 + len(MIGRATIONS)
READERS = 8  # idle reader connections kept open at most (more are opened while needed)
UPGRADE_LOCK = 7265  # the advisory lock a starting server takes to make or upgrade the tables

# One placeholder or literal of a query in SQLite's words: a quoted string
# (kept as it is), a "?", or a ":name" (not a PostgreSQL "::" cast).
SQLITE_TOKENS = re.compile(r"'(?:[^']|'')*'|\?|(?<!:):([A-Za-z_]\w*)")


@functools.lru_cache(maxsize=1024)
def postgres_sql(sql):
    """A query of store.py in psycopg's placeholders: ? -> %s, :name -> %(name)s, % -> %%.

    It knows '...' literals (their "?" and ":word" stay), and PostgreSQL's :: casts. It
    does not know -- comments, "quoted identifiers", E'...' strings or array slices
    (a[1:n]): store.py's queries have none, and one that did would need them here.
    """
    def placeholder(match):
        text = match.group(0)
        if text.startswith("'"):
            return text
        return "%s" if text == "?" else f"%({match.group(1)})s"
    return SQLITE_TOKENS.sub(placeholder, sql.replace("%", "%%"))


def store_error(exc):
    """The named StoreError for a psycopg error, told apart by PostgreSQL's error classes
    (its text on one line: libpq adds hints on lines of their own)."""
    text = " ".join(str(exc).split())
    if isinstance(exc, psycopg.errors.UniqueViolation):
        return Conflict(text)
    if isinstance(exc, (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled,
                        psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)):
        return DatabaseBusy(text)
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        return DatabaseReadOnly(text)
    if isinstance(exc, psycopg.errors.DiskFull):
        return DiskFull(text)
    if isinstance(exc, psycopg.OperationalError):  # the server is gone, or refuses us
        return DatabaseUnavailable(text)
    return StoreError(text)


def statements(text):
    """The statements of schema_postgres.sql (or a migration): ";" ends one at a line's end;
    lines of "--" comments are left out."""
    for statement in text.split(";\n"):
        lines = [line for line in statement.splitlines() if not line.lstrip().startswith("--")]
        if "".join(lines).strip():
            yield "\n".join(lines)


class Row(dict):
    """A row as sqlite3.Row gives it to store.py: by column name, or by place (row[0])."""

    __slots__ = ("values",)

    def __init__(self, names, values):
        super().__init__(zip(names, values))
        self.values = values

    def __getitem__(self, key):
        return self.values[key] if isinstance(key, int) else dict.__getitem__(self, key)


def store_rows(cursor):
    """psycopg's row factory for Row."""
    names = [column.name for column in cursor.description or ()]
    return lambda values: Row(names, values)


if psycopg is not None:
    class WholeNumberLoader(psycopg.adapt.Loader):
        """NUMERIC as SQLite gives it: an int when it is whole. Why: SUM() of a BIGINT is a
        NUMERIC in PostgreSQL (a Decimal, which json cannot encode); quotas add up sizes."""

        def load(self, data):
            number = decimal.Decimal(bytes(data).decode())
            return int(number) if number == number.to_integral_value() else float(number)


class Connection:
    """A psycopg connection that takes store.py's queries as they are written (postgres_sql)."""

    def __init__(self, connection):
        self.connection = connection

    def execute(self, sql, params=()):
        # Params even when empty: psycopg reads the query's %% only when given some.
        return self.connection.execute(postgres_sql(sql), params)

    def executemany(self, sql, rows):
        cursor = self.connection.cursor()
        cursor.executemany(postgres_sql(sql), rows)
        return cursor


class NoMemory(store.WriterMemory):
    """store.WriterMemory for a database other processes write too: it remembers nothing
    from one batch to the next (each batch reads what it checks)."""

    def check(self):
        self.forget()


class PostgresStore(store.Store):
    """store.Store on a PostgreSQL database, shared with any number of SwiftChat processes."""

    IntegrityError = psycopg.errors.IntegrityError if psycopg else Exception

    def __init__(self, url):
        if psycopg is None:
            raise StoreError("PostgreSQL needs psycopg: pip install -r requirements-postgres.txt")
        self.writable = True
        self._url = url
        self._path = re.sub(r"//[^@/]*@", "//", url)  # for log lines: never the password
        self._lock = threading.Lock()
        self._memory = NoMemory()
        self._failing = None
        self._idle_readers = []
        self._readers_lock = threading.Lock()
        self._last_snapshot = None
        self.generation = 0
        try:
            self._db = self._connect()
        except psycopg.Error as exc:
            raise store_error(exc) from exc
        try:
            self._upgrade()
        except BaseException as exc:
            self._db.close()
            raise store_error(exc) if isinstance(exc, psycopg.Error) else exc from exc
        self.can_search = True

    def _connect(self):
        connection = psycopg.connect(self._url, row_factory=store_rows, autocommit=True,
                                     cursor_factory=psycopg.ClientCursor)
        connection.adapters.register_loader("numeric", WholeNumberLoader)
        # A write waits for another process's row lock no longer than SQLite's busy wait.
        connection.execute(f"SET lock_timeout = {int(WRITE_TIMEOUT * 1000)}")
        return connection

    def _upgrade(self):
        """Create the tables, or bring them to SCHEMA_VERSION; one process at a time."""
        with self._db.transaction():
            # Two processes starting at once: the second waits for the first's tables.
            self._db.execute(f"SELECT pg_advisory_xact_lock({UPGRADE_LOCK})")
            exists = self._db.execute("SELECT to_regclass('settings') IS NOT NULL").fetchone()[0]
            version = 0
            if exists:
                row = self._db.execute(
                    "SELECT value FROM settings WHERE key = 'schema_version'").fetchone()
                version = int(row["value"]) if row else 1
            if version > SCHEMA_VERSION:
                raise StoreError(f"the database is of schema version {version}, newer than "
                                 f"this SwiftChat's {SCHEMA_VERSION}")
            if exists:
                for step in MIGRATIONS[version - 1:]:
                    for statement in statements(step):
                        self._db.execute(statement)
            for statement in statements(SCHEMA_PATH.read_text(encoding="utf-8")):
                self._db.execute(statement)
            self._db.execute(
                "INSERT INTO settings (key, value) VALUES ('schema_version', %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))

    def close(self):
        with self._readers_lock:
            readers, self._idle_readers = self._idle_readers, []
        for reader in readers:
            reader.close()
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _reading(self):
        with self._readers_lock:
            reader = self._idle_readers.pop() if self._idle_readers else None
        if reader is None or reader.closed:
            reader = self._connect()
        try:
            yield Connection(reader)
        finally:
            with self._readers_lock:
                if len(self._idle_readers) < READERS and not (reader.closed or reader.broken):
                    self._idle_readers.append(reader)
                    reader = None
            if reader is not None:
                reader.close()

    def _rows(self, sql, params=()):
        try:
            with self._reading() as db:
                return [dict(row) for row in db.execute(sql, params)]
        except psycopg.Error as exc:
            raise store_error(exc) from exc

    @contextlib.contextmanager
    def _transaction(self, keeps_memory=False):
        """One transaction on the writer connection, under this process's write lock."""
        if not self._lock.acquire(timeout=WRITE_TIMEOUT):
            raise DatabaseBusy("the store's write lock was held too long")
        try:
            if self._db.closed or self._db.broken:
                self._db = self._connect()
            with self._db.transaction():
                yield Connection(self._db)
            self.generation += 1
            self._writes_work()
        except psycopg.Error as exc:
            error = store_error(exc)
            if not isinstance(error, (Conflict, DatabaseBusy)):
                self._writes_fail(error)
            raise error from exc
        finally:
            self._lock.release()

    # -- what SQLite and PostgreSQL say differently -----------------------------------

    @staticmethod
    def _store_error(exc):
        return store_error(exc)

    @staticmethod
    def _alone(db):
        # A failed statement spoils a PostgreSQL transaction: a savepoint undoes one message.
        return db.connection.transaction()

    @staticmethod
    def _lock_rooms(db, room_ids):
        """Another process may be saving messages in the same rooms: their rows are locked,
        in id order, until the batch commits, so that one writer at a time counts a room's
        positions and its message ids increase in commit order. A statement of its own:
        in READ COMMITTED, only a statement that begins after the wait sees what the
        other writer committed."""
        room_ids = sorted(room_ids)
        db.execute(f"SELECT id FROM rooms WHERE id IN ({store.placeholders(room_ids)})"
                   " ORDER BY id FOR UPDATE", room_ids).fetchall()

    @staticmethod
    def _inserted_id(db, sql, params):
        row = db.execute(sql + " RETURNING id", params).fetchone()
        return None if row is None else row["id"]

    def data_changed(self):
        """Whether any transaction may have committed since the last call (on any process).

        The snapshot's xmax moves with every transaction of the server: a
        change somewhere in it, cheaply told, and never missed.
        """
        snapshot = self._row("SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS x")["x"]
        changed, self._last_snapshot = snapshot != self._last_snapshot, snapshot
        return changed

    def backup(self, path):
        raise StoreError("backup of a PostgreSQL database: use pg_dump")

    # -- search ---------------------------------------------------------------------

    def index_new_messages(self):
        """Nothing to do: PostgreSQL indexes each message as it is saved (messages_words)."""
        return 0

    def search(self, text, viewer_id, viewer_is_admin, limit, room_id=None, before=None):
        """store.Store.search's answer, from the messages_words index: every word (a word
        ending in "*" as a prefix), letter case ignored, newest first."""
        # Each word a quoted lexeme (nothing typed is a tsquery operator); a
        # prefix needs MIN_PREFIX letters, as store.Store.search says why.
        words = re.findall(r"(\w+)(\*?)", unicodedata.normalize("NFC", text.lower()))
        lexemes = list(dict.fromkeys(f"'{word}'" + (":*" if star and len(word) >= MIN_PREFIX else "")
                                     for word, star in words))[:MAX_SEARCH_WORDS]
        if not lexemes:
            return []
        query = " & ".join(lexemes)
        names = {"query": query, "viewer": viewer_id, "admin": bool(viewer_is_admin),
                 "room": room_id, "before": 2**63 - 1 if before is None else before,
                 "limit": limit}
        # As SQLite's progress handler does: a search still running after
        # SEARCH_SECONDS is stopped (PostgreSQL's statement_timeout), and one
        # that finished later than that counts as stopped too.
        deadline = time.monotonic() + store.SEARCH_SECONDS
        try:
            with self._reading() as db:
                with db.connection.transaction():
                    db.execute("SET LOCAL statement_timeout = "
                               f"{max(1, int(store.SEARCH_SECONDS * 1000))}")
                    rows = [dict(row) for row in db.execute(
                        f"SELECT {MESSAGE_COLUMNS}, r.name AS room_name FROM messages m"
                        " JOIN rooms r ON r.id = m.room_id JOIN users u ON u.id = m.user_id"
                        " WHERE to_tsvector('swiftchat_words', normalize(m.content, NFC))"
                        " @@ to_tsquery('swiftchat_words', :query)"
                        " AND m.id < :before AND (:room IS NULL OR m.room_id = :room)"
                        f" AND {SEEN_BY_VIEWER} ORDER BY m.id DESC LIMIT :limit", names)]
        except psycopg.errors.QueryCanceled as exc:
            raise SearchTooLong(text) from exc
        except psycopg.Error as exc:
            raise store_error(exc) from exc
        if time.monotonic() > deadline:
            raise SearchTooLong(text)
        return self._completed(rows)

