"""SwiftChat on PostgreSQL (CONTRACT 1.3, "More than one process: PostgreSQL"): what is its own.

The rest of the suite runs on PostgreSQL too when SWIFTCHAT_TEST_POSTGRES
names a server (conftest.py): every server of it then serves from a schema
there. Here: what is said when PostgreSQL cannot be used, how store.py's
queries are put in psycopg's words, and (with SWIFTCHAT_TEST_POSTGRES) two
stores on one database, and the schema's version.
"""

import os
import threading

import pytest

import store
import store_postgres
from conftest import TEST_POSTGRES, postgres_for, run_cli

needs_postgres = pytest.mark.skipif(not TEST_POSTGRES,
                                    reason="set SWIFTCHAT_TEST_POSTGRES to a PostgreSQL URL")


def test_without_psycopg_the_server_says_what_to_install(tmp_path):
    # A Python where psycopg cannot be imported (None in sys.modules: "not there").
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text("import sys\nsys.modules['psycopg'] = None\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = run_cli("--database-url", "postgresql://nobody@127.0.0.1:1/none", "--http-port", "0",
                   "--ws-port", "0", env=env)
    assert done.returncode != 0
    assert done.stderr.strip() == ("swiftchat: cannot open the PostgreSQL database: PostgreSQL needs "
                                   "psycopg: pip install -r requirements-postgres.txt")
    assert done.stdout == ""


@pytest.mark.skipif(store_postgres.psycopg is None, reason="pip install -r requirements-postgres.txt")
def test_a_database_url_that_answers_nothing_stops_the_server_with_one_line_and_no_password():
    done = run_cli("--database-url", "postgresql://someone:s3cret-word@127.0.0.1:1/none",
                   "--http-port", "0", "--ws-port", "0")
    assert done.returncode != 0
    assert done.stderr.startswith("swiftchat: cannot open the PostgreSQL database: ")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "s3cret-word" not in done.stderr + done.stdout


@pytest.mark.parametrize("sqlite, postgres", [
    ("SELECT 1 FROM users WHERE id = ?", "SELECT 1 FROM users WHERE id = %s"),
    ("WHERE r.id = :room AND m.user_id = :user", "WHERE r.id = %(room)s AND m.user_id = %(user)s"),
    # A literal keeps its "?" and ":word"; a "%" anywhere is psycopg's %%.
    ("SELECT 'what? :not_a_name' WHERE a LIKE 'x%' AND b = ?",
     "SELECT 'what? :not_a_name' WHERE a LIKE 'x%%' AND b = %s"),
    ("SELECT 'it''s ?' , ?", "SELECT 'it''s ?' , %s"),
    # PostgreSQL's own casts are left alone.
    ("SELECT x::text FROM t WHERE y = :y", "SELECT x::text FROM t WHERE y = %(y)s"),
])
def test_store_queries_are_put_in_psycopgs_placeholders(sqlite, postgres):
    assert store_postgres.postgres_sql(sqlite) == postgres


@needs_postgres
def test_two_stores_on_one_database_see_each_others_writes(tmp_path):
    url = postgres_for(tmp_path / "shared.db")
    first, second = store_postgres.PostgresStore(url), store_postgres.PostgresStore(url)
    try:
        ada = first.create_user("Ada", "x$1$00$00", "2026-12-01T00:00:00Z")
        assert second.user_with_password("ADA")["id"] == ada["id"]  # citext: any letter case
        with pytest.raises(store.Conflict):
            second.create_user("ada", "x$1$00$00", "2026-12-01T00:00:00Z")
        room = second.create_room("Hall", "", ada["id"], "2026-12-01T00:00:00Z")
        saved = [first.add_message(room["id"], ada["id"], f"hello {n}", 1)["id"] for n in range(3)]
        saved.append(second.add_message(room["id"], ada["id"], "hello 3", 1)["id"])
        assert saved == sorted(saved)
        assert [m["id"] for m in second.messages(room["id"], 10)] == saved
        assert [m["content"] for m in first.search("HELLO", ada["id"], False, 10)] == [
            "hello 3", "hello 2", "hello 1", "hello 0"]
    finally:
        first.close()
        second.close()


@needs_postgres
def test_a_database_of_a_newer_schema_is_refused(tmp_path):
    url = postgres_for(tmp_path / "newer.db")
    store_postgres.PostgresStore(url).close()
    newer = store_postgres.PostgresStore(url)
    newer.setting("schema_version", lambda: "")  # there already: read, not made
    with newer._transaction() as db:
        db.execute("UPDATE settings SET value = ? WHERE key = 'schema_version'",
                   (str(store_postgres.SCHEMA_VERSION + 1),))
    newer.close()
    with pytest.raises(store.StoreError, match="newer than this SwiftChat"):
        store_postgres.PostgresStore(url)


def test_the_postgres_requirements_are_their_own_file():
    # The server's own requirements stay websockets and PyJWT (the design card).
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "requirements.txt")) as runtime:
        assert "psycopg" not in runtime.read()
    with open(os.path.join(here, "requirements-postgres.txt")) as postgres:
        assert "psycopg" in postgres.read()


@needs_postgres
@pytest.mark.parametrize("command, tool", [("backup", "pg_dump"), ("restore", "psql")])
def test_backup_and_restore_on_postgres_say_what_to_use_instead(tmp_path, serve_with, command,
                                                                 tool):
    serve_with()  # the database (its schema) of tmp_path / "chat.db"
    done = run_cli(command, str(tmp_path / "copy.sql"), "--db", str(tmp_path / "chat.db"))
    assert (done.returncode, done.stderr) == (
        1, f"swiftchat: {command} works on SQLite's file; on PostgreSQL use {tool} (see the README)\n")
    assert not (tmp_path / "copy.sql").exists()


@needs_postgres
def test_two_processes_saving_in_one_room_count_every_message_for_unread(tmp_path):
    # Each store stands for a process: both save into one room at once. Each message's
    # position must be its own (the room's row is locked while a batch is saved), or a
    # member's unread count comes out short.
    url = postgres_for(tmp_path / "busy.db")
    first, second = store_postgres.PostgresStore(url), store_postgres.PostgresStore(url)
    try:
        ada = first.create_user("ada", "x$1$00$00", "2026-12-01T00:00:00Z")
        bob = first.create_user("bob", "x$1$00$00", "2026-12-01T00:00:00Z")
        room = first.create_room("Busy", "", ada["id"], "2026-12-01T00:00:00Z")
        first.add_member(room["id"], bob["id"], "2026-12-01T00:00:00Z")

        def save(store_, name):
            for batch in range(20):
                store_.add_messages([(room["id"], ada["id"], f"{name} {batch} {n}", 1, None)
                                     for n in range(3)])

        threads = [threading.Thread(target=save, args=(s, name))
                   for s, name in ((first, "first"), (second, "second"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        rooms, _ = second.list_rooms(10, 0, bob["id"])
        assert [r["unread_count"] for r in rooms if r["id"] == room["id"]] == [120]
    finally:
        first.close()
        second.close()
