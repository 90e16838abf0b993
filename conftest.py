"""Shared pytest fixtures: a real SwiftChat on ephemeral ports and small real clients.

Every test talks to the server the way a user's program would: HTTP through
http.client (which, unlike urllib, ignores proxy settings) and WebSocket
through the websockets library's clients.

Page tests: `browser` is one headless Chromium per test process (skipped without Debian's chromium);
`new_page()` opens the page in a fresh browser context of its own, closed after the test.

The store: SQLite files by default. With SWIFTCHAT_TEST_POSTGRES set to a
PostgreSQL URL (a role that may create schemas), every server serves from
PostgreSQL instead, each database file a test names becoming a schema of
its own there (postgres_for); tests marked `sqlite_only` (they open the
SQLite file itself) are skipped then.
"""

import collections
import contextlib
import hashlib
import http.client
import itertools
import json
import os
import re
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import jsonschema
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import openapi
import swiftchat

HERE = os.path.dirname(os.path.abspath(__file__))
TEST_SECRET = "test-secret-that-is-long-enough-for-hs256!"
TEST_ITERATIONS = 1000  # the default is 600,000; tests only need a valid hash
_names = itertools.count(1)
_open_clients = []  # every Api and ChatClient made, so that each test's are closed after it


@pytest.fixture(autouse=True)
def close_clients():
    """Close the clients a test made (the suite runs clean under -W error::ResourceWarning)."""
    already_open = len(_open_clients)
    yield
    while len(_open_clients) > already_open:
        _open_clients.pop().close()


def pytest_configure(config):
    # A socket or file a test (or the server) leaves open fails the suite,
    # as it would under python -X dev -W error::ResourceWarning.
    config.addinivalue_line("filterwarnings", "error::ResourceWarning")
    config.addinivalue_line("filterwarnings", "error::pytest.PytestUnraisableExceptionWarning")
    config.addinivalue_line("markers", "shared_server: the file's tests share one server (see the "
                                       "shared_server fixture)")
    config.addinivalue_line("markers", "sqlite_only: reads or writes the SQLite file itself (skipped "
                                       "with SWIFTCHAT_TEST_POSTGRES)")


TEST_POSTGRES = os.environ.get("SWIFTCHAT_TEST_POSTGRES")
# Why a test of backup or restore is `sqlite_only`: they copy SQLite's file;
# on PostgreSQL they say to use pg_dump and psql (issue #37 may bring them).
COMMANDS_ON_SQLITE_ONLY = "backup and restore copy SQLite's file (on PostgreSQL: pg_dump)"
_schemas = []  # the PostgreSQL schemas this test process made, dropped at its end


def postgres_for(db):
    """The URL of a PostgreSQL schema standing for the database file db (made if new).

    The same file gives the same schema, so a test that starts a server again
    on its file finds its data again. The extensions live in `public`, shared.
    """
    import psycopg
    schema = "t_" + hashlib.sha1(str(db).encode()).hexdigest()[:20]
    with psycopg.connect(TEST_POSTGRES, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    if schema not in _schemas:
        _schemas.append(schema)
    separator = "&" if "?" in TEST_POSTGRES else "?"
    return f"{TEST_POSTGRES}{separator}options=-csearch_path%3D{schema},public"


@pytest.fixture(scope="session", autouse=True)
def postgres_schemas():
    """With SWIFTCHAT_TEST_POSTGRES: citext and unaccent ready in `public`; every schema made,
    dropped after."""
    if not TEST_POSTGRES:
        yield
        return
    import psycopg
    with psycopg.connect(TEST_POSTGRES, autocommit=True) as admin:
        with contextlib.suppress(psycopg.errors.UniqueViolation):  # another worker made it first
            admin.execute("CREATE EXTENSION IF NOT EXISTS citext SCHEMA public")
        with contextlib.suppress(psycopg.errors.UniqueViolation):
            admin.execute("CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public")
    yield
    with psycopg.connect(TEST_POSTGRES, autocommit=True) as admin:
        for schema in _schemas:
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


class FakeClock:
    """A time.monotonic stand-in that moves only when told to (serve(clock=...))."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def clock():
    """A FakeClock for serve_with(clock=clock), moved by the test."""
    return FakeClock()


# For tests that send faster than a person could: the flood limits off.
NO_LIMITS = {"ws_rate": 0, "rest_rate": 0, "registrations_per_minute": 0, "login_attempts": 0,
             "rooms_per_hour": 0, "max_ws_unauthenticated": 0}

# Answers that several test files expect.
ROOM_NOT_FOUND = {"success": False, "message": "Room not found", "error": "Room not found"}
TOO_MANY_LOGINS = {"success": False, "message": "Too many requests",
                   "error": "Too many failed logins; try again later"}


def open_test_store(db):
    """The store a test server on db serves from (with SWIFTCHAT_TEST_POSTGRES, db's schema)."""
    if TEST_POSTGRES:
        import store_postgres
        return store_postgres.PostgresStore(postgres_for(db))
    import store
    return store.Store(db)


def store_opened_in_python(db):
    """Python code that opens, as `s`, the store a test server on db serves from: for a test
    that changes the database from another process."""
    if TEST_POSTGRES:
        return f"import store_postgres\ns = store_postgres.PostgresStore({postgres_for(db)!r})\n"
    return f"import store\ns = store.Store({str(db)!r})\n"


def serve_for_tests(db, **options):
    """swiftchat.serve on free ports with the test secret and cheap hashes; options win.

    With SWIFTCHAT_TEST_POSTGRES, on the PostgreSQL schema standing for db."""
    if TEST_POSTGRES and "database_url" not in options:
        if str(db) == ":memory:":  # a database of its own, as an in-memory one is
            db = os.path.join(tempfile.mkdtemp(prefix="swiftchat-test-"), "memory.db")
        options["database_url"] = postgres_for(db)
        options.setdefault("files_dir", f"{db}.files")
    return swiftchat.serve(**{"http_port": 0, "ws_port": 0, "db": db, "jwt_secret": TEST_SECRET,
                              "pbkdf2_iterations": TEST_ITERATIONS, **options})


@pytest.fixture
def serve_with(tmp_path):
    """serve_with(**options) starts a SwiftChat with the test defaults and these options.

    The database is tmp_path / "chat.db" unless db= is given; jwt_secret=None
    signs with the secret kept in the database, as the command line does.
    Every server started is stopped after the test; one that must stop sooner
    (to start another on the same file) is stopped by stop() or a `with` block.
    """
    started = []

    def serve_with(**options):
        server = serve_for_tests(options.pop("db", tmp_path / "chat.db"), **options)
        started.append(server)
        return server

    yield serve_with
    for server in reversed(started):
        server.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One SwiftChat for a whole test file, flood limits off (every test comes from one address).

    A file whose tests each make their own users and rooms and count nothing
    server-wide (GET /users totals, the admins, an admin's reports) says
    `pytestmark = pytest.mark.shared_server`, and its `server` is this one.
    """
    with serve_for_tests(tmp_path_factory.mktemp("shared") / "chat.db", **NO_LIMITS) as running:
        yield running


@pytest.fixture
def server_options():
    """Extra serve() options; a test overrides them with
    @pytest.mark.parametrize("server_options", [{...}])."""
    return {}


@pytest.fixture
def server(request, serve_with, server_options):
    """The test's SwiftChat, on tmp_path / "chat.db" with server_options; in a file marked
    shared_server, a test without server_options gets the file's shared server instead."""
    if request.node.get_closest_marker("shared_server") and not server_options:
        return request.getfixturevalue("shared_server")
    return serve_with(**server_options)


@pytest.fixture
def api(server):
    return Api(server.http_port)


# -- every JSON answer the tests receive is checked against the OpenAPI document --

OPENAPI = openapi.document(swiftchat.VERSION)
OPENAPI_PATHS = [(re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", template) + "$"), operations)
                 for template, operations in OPENAPI["paths"].items()]
_validators = {}


def documented_schema(method, path, status):
    """The schema the document gives this answer; fails the test if it has none."""
    path = urllib.parse.urlsplit(path).path.rstrip("/")
    # As the server's router does: the first path that matches and has the method.
    operation = next((ops[method.lower()] for pattern, ops in OPENAPI_PATHS
                      if pattern.match(path) and method.lower() in ops), None)
    if operation is None:  # an unknown path (404) or method (405): an error envelope
        if method == "OPTIONS" and status == 204:  # a CORS preflight is answered for any path
            return None
        assert status in (404, 405, *openapi.ALWAYS), (method, path, status)
        return openapi.ref("Error")
    response = operation["responses"].get(str(status))
    assert response is not None, f"{method} {path} answered {status}, which the document lacks"
    return response.get("content", {}).get("application/json", {}).get("schema")


def check_against_openapi(method, path, status, body):
    schema = documented_schema(method, path, status)
    if method == "HEAD":  # the status is GET's; there is no body to check
        return
    if schema is None:
        assert not body, (method, path, status, body)
        return
    key = json.dumps(schema, sort_keys=True)
    if key not in _validators:
        _validators[key] = jsonschema.Draft202012Validator({**schema, "components": OPENAPI["components"]})
    _validators[key].validate(json.loads(body))


def http_connection(port):
    """A bare http.client connection, closed after the test."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    _open_clients.append(connection)
    return connection


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        self.json = json.loads(body) if body else None

    @property
    def data(self):
        return self.json["data"]


class Api:
    """A keep-alive HTTP client for one server.

    source: the loopback address to connect from (127.0.0.2, say), to be
    another client address in the server's eyes. timeout: seconds to wait
    for an answer.
    """

    def __init__(self, port, source=None, timeout=10):
        self.port = port
        self.connection = http.client.HTTPConnection(
            "127.0.0.1", port, timeout=timeout, source_address=(source, 0) if source else None)
        _open_clients.append(self)

    def close(self):
        self.connection.close()

    def call(self, method, path, body=None, token=None, headers=None, raw=None):
        self._reopen_if_closed_by_the_server()
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if raw is None and body is not None:
            raw = json.dumps(body).encode()
        if raw is not None:
            headers.setdefault("Content-Type", "application/json")
        self.connection.request(method, "/api/v1" + path, body=raw, headers=headers)
        reply = self.connection.getresponse()
        response = Response(reply.status, reply.headers, reply.read())
        check_against_openapi(method, "/api/v1" + path, response.status, response.body)
        return response

    def _reopen_if_closed_by_the_server(self):
        # The server closes a keep-alive connection idle for --header-timeout (10 s), which a
        # page test on a busy machine can reach between two calls; a request written into the
        # closed socket would fail with a broken pipe. Like a browser, open a new one instead:
        # an idle connection that is readable has been closed.
        sock = self.connection.sock
        if sock is not None and select.select([sock], [], [], 0)[0]:
            self.connection.close()  # http.client connects anew on the next request

    def get(self, path, **kwargs):
        return self.call("GET", path, **kwargs)

    def post(self, path, body=None, **kwargs):
        return self.call("POST", path, body, **kwargs)

    def register(self, username=None, password="password123"):
        """Register a fresh user; return (token, user_id, username)."""
        username = username or f"user{next(_names)}"
        reply = self.post("/auth/register", {"username": username, "password": password})
        assert reply.status == 201, reply.json
        return reply.data["token"], reply.data["id"], username

    def create_room(self, token, name=None, description="a room"):
        name = name or f"room {next(_names)}"
        reply = self.post("/rooms", {"name": name, "description": description}, token=token)
        assert reply.status == 201, reply.json
        return reply.data["id"]


class ChatClient:
    """A synchronous WebSocket client that speaks SwiftChat's JSON frames."""

    def __init__(self, port):
        # max_queue=None: a test that ignores some frames must not stall the
        # connection (and its closing handshake) behind an unread queue.
        # __enter__ gives the open connection with websockets 16 and 17 alike
        # (17 warns when connect() is used without it; 16 has no `legacy`).
        self.ws = connect(f"ws://127.0.0.1:{port}", proxy=None, open_timeout=5,
                          max_queue=None).__enter__()
        _open_clients.append(self)

    def send(self, frame):
        self.ws.send(json.dumps(frame))

    def recv(self, timeout=5):
        return json.loads(self.ws.recv(timeout=timeout))

    def request(self, frame, timeout=5):
        self.send(frame)
        return self.recv(timeout)

    def recv_type(self, frame_type, timeout=5):
        """The next frame, which must be a success of the given data type."""
        frame = self.recv(timeout)
        assert frame["success"] and frame["data"]["type"] == frame_type, frame
        return frame

    def close(self):
        self.ws.close()


# -- small conversations ------------------------------------------------------------

def in_room(api, server, room_id, token=None):
    """A client authenticated (as a new user unless token is given) and in room_id."""
    token = token or api.register()[0]
    client = ChatClient(server.ws_port)
    client.request({"type": "auth", "token": token})
    assert client.request({"type": "join_room", "room_id": room_id})["success"]
    return client, token


def say(client, content, **fields):
    """Send a message; return our own answer, skipping the room's frames meanwhile."""
    client.send({"type": "send_message", "content": content, **fields})
    while True:
        frame = client.recv()
        if not frame["success"] or frame["data"]["type"] == "message_sent":
            return frame


def frames_of_type(client, frame_type, count):
    """The next `count` frames of one data type, skipping any others in between."""
    found = []
    while len(found) < count:
        frame = client.recv(timeout=10)
        if not frame["success"] or frame["data"].get("type") == frame_type:
            found.append(frame)
    return found


def history(api, room_id, token):
    """Every message of a room, oldest first, read page by page with before=."""
    messages, before = [], ""
    while True:
        page = api.get(f"/messages?room_id={room_id}&limit=100{before}", token=token).data["messages"]
        messages = page + messages
        if len(page) < 100:
            return messages
        before = f"&before={page[0]['id']}"


def authed(server, token):
    """A chat client authenticated with token (closed after the test)."""
    client = ChatClient(server.ws_port)
    reply = client.request({"type": "auth", "token": token})
    assert reply["success"], reply
    return client


def closed_with(client, timeout=5.0):
    """Read until the server closes the connection; return its (code, reason)."""
    deadline = time.monotonic() + timeout
    with pytest.raises(ConnectionClosed) as closed:
        while True:  # a TimeoutError here fails the test: the server never closed
            client.recv(timeout=max(0.01, deadline - time.monotonic()))
    return closed.value.rcvd.code, closed.value.rcvd.reason


def make_admin(server, user_id):
    """Give user_id the admin role, straight in the store (as `users promote` would)."""
    server.store.update_user(user_id, int(time.time()), role="admin")


@pytest.fixture
def admin(server, api):
    """(token, user_id, username) of a new admin, as api.register() gives them."""
    token, user_id, name = api.register()
    make_admin(server, user_id)
    return token, user_id, name


def login(api, username, password="password123", **kwargs):
    """The Response of POST /auth/login; kwargs (headers=...) go to api.post."""
    return api.post("/auth/login", {"username": username, "password": password}, **kwargs)


Room = collections.namedtuple("Room", "id token user_id")


@pytest.fixture
def room(api):
    """A new user's new public room: Room(id, token, user_id), the token and id its creator's."""
    token, user_id, _ = api.register()
    return Room(api.create_room(token), token, user_id)


def wait_until(condition, timeout=5, pause=time.sleep):
    """Poll condition() until it is true; fails after timeout seconds.

    pause(seconds) waits between two looks; a browser test passes one that
    lets Playwright run, since it hears of the page's events only then.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the time the contract gives"
        pause(0.05)


class LatencyWatch:
    """Calls ask() over and over on a thread of its own, and keeps the slowest call's time: how
    another request fares while a test does something hostile.

    It goes on until stop() (or the end of its `with` block), and asks three
    times at least, so that a hostile act over at once is still measured.
    stop() raises again whatever ask() raised.
    """

    def __init__(self, ask):
        self.ask = ask
        self.slowest = 0.0
        self.answers = 0
        self._error = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="latency-watch")
        self._thread.start()

    def _watch(self):
        try:
            while self.answers < 3 or not self._stop.is_set():
                started = time.perf_counter()
                self.ask()
                self.slowest = max(self.slowest, time.perf_counter() - started)
                self.answers += 1
        except BaseException as error:  # for stop() to raise in the test's own thread
            self._error = error

    def stop(self):
        """Stop asking and wait for the last answer; slowest and answers are final after it."""
        self._stop.set()
        self._thread.join(timeout=30)
        if self._error is not None:
            raise self._error

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


def wait_for_frame(client, frame_type, timeout=5.0):
    """The next frame of this data type, skipping the others; fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        frame = client.recv(timeout=max(0.01, deadline - time.monotonic()))
        if frame.get("success") and frame["data"].get("type") == frame_type:
            return frame


@pytest.fixture
def chat(server):
    """A factory of authenticated chat clients; all are closed after the test."""
    clients = []

    def make(token):
        client = ChatClient(server.ws_port)
        clients.append(client)
        reply = client.request({"type": "auth", "token": token})
        assert reply["success"], reply
        return client

    yield make
    for client in clients:
        client.close()


# -- the command line, as a real process -------------------------------------------

def on_the_tests_store(args):
    """A command's arguments as given, or with SWIFTCHAT_TEST_POSTGRES its `--db FILE` as
    `--database-url` of the schema that stands for FILE (postgres_for)."""
    if not TEST_POSTGRES:
        return list(args)
    given, changed = iter(args), []
    for arg in given:
        changed += ["--database-url", postgres_for(next(given))] if arg == "--db" else [arg]
    return changed


def run_cli(*args, env=None, timeout=20, preexec_fn=None):
    """`python swiftchat.py ARGS` to its end; the CompletedProcess, with text output.

    preexec_fn runs in the child before the server starts (to lower a limit, say).
    """
    args = on_the_tests_store(args)
    return subprocess.run([sys.executable, os.path.join(HERE, "swiftchat.py"), *args],
                          capture_output=True, text=True, timeout=timeout, env=env,
                          preexec_fn=preexec_fn)


def start_cli(*args, preexec_fn=None):
    """A real `python swiftchat.py` process; returns it and its (http_port, ws_port).

    preexec_fn runs in the child before the server starts (to lower a limit, say).
    """
    if TEST_POSTGRES and "--db" in args:  # its files beside the file named, as on SQLite
        args = [*on_the_tests_store(args), "--files-dir", f"{args[args.index('--db') + 1]}.files"]
    process = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "swiftchat.py"), "--http-port", "0", "--ws-port", "0",
         "--pbkdf2-iterations", "1000", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec_fn)
    ready, _, _ = select.select([process.stdout], [], [], 15)
    assert ready, "the server printed no start-up line"
    line = process.stdout.readline()
    match = re.search(r"http://\S+:(\d+), WebSocket on ws://\S+:(\d+)", line)
    assert match, (line, process.stderr.read() if process.poll() is not None else "")
    return process, int(match[1]), int(match[2])


def end_process(process):
    """Stop a process this test started (SIGTERM, then SIGKILL if it hangs) and close its pipes."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for pipe in (process.stdout, process.stderr):
        pipe.close()


@contextlib.contextmanager
def cli_server(*args):
    """start_cli(*args), ended with SIGTERM (or SIGKILL if it hangs) and its pipes closed."""
    process, http_port, ws_port = start_cli(*args)
    try:
        yield process, http_port, ws_port
    finally:
        end_process(process)


class WriteLock:
    """Another process that holds the database's write lock until released."""

    def __init__(self, db):
        script = ("import sqlite3, sys\n"
                  f"db = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
                  "db.execute('BEGIN EXCLUSIVE')\n"
                  "print('locked', flush=True)\n"
                  "sys.stdin.readline()\n"
                  "db.execute('COMMIT')\n")
        self.process = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "locked"

    def release(self):
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        assert self.process.wait(timeout=10) == 0
        self.process.stdin.close()
        self.process.stdout.close()


# The tables of a database made by release 1.1 (schema version 1), for upgrade tests.
RELEASE_1_1_SCHEMA = """
CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE COLLATE NOCASE,
                    password_hash TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX users_by_age ON users (created_at, id);
CREATE TABLE rooms (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE,
                    description TEXT NOT NULL DEFAULT '', creator_id TEXT NOT NULL REFERENCES users (id),
                    created_at TEXT NOT NULL);
CREATE TABLE room_members (room_id TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
                           user_id TEXT NOT NULL REFERENCES users (id), joined_at TEXT NOT NULL,
                           PRIMARY KEY (room_id, user_id));
CREATE INDEX members_by_join ON room_members (room_id, joined_at, user_id);
CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT,
                       room_id TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
                       user_id TEXT NOT NULL REFERENCES users (id), content TEXT NOT NULL,
                       timestamp INTEGER NOT NULL, client_id TEXT);
CREATE INDEX messages_by_room ON messages (room_id, id);
CREATE UNIQUE INDEX messages_by_client_id ON messages (user_id, client_id) WHERE client_id IS NOT NULL;
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
PRAGMA user_version = 1;
"""


# -- SwiftChat behind nginx with TLS, as docs/deploy/nginx.conf has it ----------------

DEPLOY = os.path.join(HERE, "docs", "deploy")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed_certificate(folder):
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return key, cert


def nginx_config(folder, https_port, http_port, ws_port, key, cert):
    """docs/deploy/nginx.conf as it is, with the test's ports, certificate and name."""
    with open(os.path.join(DEPLOY, "nginx.conf"), encoding="utf-8") as site:
        text = site.read()
    for old, new in [("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
                     ("listen 80;", f"listen 127.0.0.1:{free_port()};"),
                     ("/etc/letsencrypt/live/chat.example.org/fullchain.pem", str(cert)),
                     ("/etc/letsencrypt/live/chat.example.org/privkey.pem", str(key)),
                     ("127.0.0.1:8081", f"127.0.0.1:{ws_port}"),
                     ("127.0.0.1:8080", f"127.0.0.1:{http_port}")]:
        assert old in text, old
        text = text.replace(old, new)
    (folder / "site.conf").write_text(text)
    main = folder / "nginx.conf"
    main.write_text(f"""user root;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    include {folder}/site.conf;
}}
""")
    return main


@pytest.fixture
def behind_nginx(tmp_path, serve_with):
    """(https port, a TLS context that trusts the test's certificate) of SwiftChat behind nginx."""
    if not (shutil.which("nginx") and shutil.which("openssl")):
        pytest.skip("nginx or openssl is not installed")
    key, cert = self_signed_certificate(tmp_path)
    https_port = free_port()
    server = serve_with(trusted_proxy="127.0.0.1", public_ws_url=f"wss://127.0.0.1:{https_port}/ws")
    config = nginx_config(tmp_path, https_port, server.http_port, server.ws_port, key, cert)
    nginx = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(config),
                              "-g", "daemon off;"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:  # until nginx listens
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
                break
            except OSError:
                assert nginx.poll() is None, nginx.stderr.read()
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        context = ssl.create_default_context(cafile=str(cert))
        yield https_port, context
    finally:
        nginx.terminate()
        nginx.communicate(timeout=15)


# -- the page in a real browser: one Chromium per test process --------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    # Without these Chromium keeps calling out to Google's hosts, which this
    # machine's closed network refuses.
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def pytest_collection_modifyitems(items):
    # While Playwright's sync API is started, it marks its event loop as running on the main
    # thread, so a later asyncio.run() in the same process would fail: the tests that use the
    # session's browser run after all the others (a stable sort; xdist hands them out in order).
    items.sort(key=lambda item: "browser" in getattr(item, "fixturenames", ()))
    if TEST_POSTGRES:
        for item in items:
            marker = item.get_closest_marker("sqlite_only")
            if marker:
                reason = marker.args[0] if marker.args else "about the SQLite file itself"
                item.add_marker(pytest.mark.skip(reason=f"{reason}; this run is on PostgreSQL"))


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, launched once per test process (each xdist worker has its own).

    A test never shares a page with another: it opens its own with browser.new_context()
    (closed after it), or with the new_page fixture, which does that for it.
    """
    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium is not installed: run 'apt-get install chromium' to run the browser tests")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-dev.txt")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, server):
    """new_page() opens the chat page of the test's server in a fresh browser context of its
    own (its own sessionStorage: another person, or another device); all are closed after the test.

    viewport, color_scheme and permissions go to browser.new_context(); before_load(page) runs
    before the page is loaded (to route a request, say); path is the address on the server.
    """
    contexts = []

    def open_page(viewport=None, color_scheme="light", before_load=None, path="/", permissions=None):
        context = browser.new_context(viewport=viewport or {"width": 1100, "height": 800},
                                      color_scheme=color_scheme, permissions=permissions or [])
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        if before_load:
            before_load(page)
        page.goto(f"http://127.0.0.1:{server.http_port}{path}")
        return page

    yield open_page
    for context in contexts:
        context.close()


def signed_in(browser, server, username):
    """A page of its own on server (a browser context: another person, or another device),
    signed in as username: for page tests that share their pages across a file."""
    page = browser.new_context(viewport={"width": 1100, "height": 800},
                               color_scheme="light").new_page()
    page.set_default_timeout(10_000)
    page.goto(f"http://127.0.0.1:{server.http_port}/")
    log_in_on_page(page, username)
    return page


def log_in_on_page(page, username, password="password123"):
    """Sign in through the page's form, as a person would; wait until the page shows who is
    signed in and that its socket is connected."""
    from playwright.sync_api import expect  # here, so that only page tests need Playwright

    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#whoami")).to_have_text(username)
    expect(page.get_by_role("banner").get_by_role("status")).to_have_text("Connected")
