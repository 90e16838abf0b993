"""SwiftChat: a small chat server. REST on one port, WebSocket on another, one process.

This module is the application: it opens the store, makes the accounts and
the chat core, starts the two edges around them, and stops them again
(``SwiftChat``, and ``serve()`` for programs that embed SwiftChat); and it
is the command line (``main``), with its logging. It holds no chat logic.

The files, in the order a reader might take them (docs/READING.md is the
guided tour): protocol.py (envelopes and input checks), store.py and
schema.sql (every SQL statement), accounts.py (passwords, sessions,
tokens, limits), swiftchat_core.py (who is connected, rooms, the one path
of a chat message), swiftchat_ws.py (the WebSocket edge),
swiftchat_routes.py and swiftchat_http.py (the REST edge), openapi.py (the
REST API described).

    python swiftchat.py --help
"""

import argparse
import collections
import contextlib
import ipaddress
import logging
import os
import signal
import socket
import struct
import sys
import tempfile
import threading
import time

try:  # POSIX only: on Windows, no hold on the database and no file limit to fit under
    import fcntl
    import resource
except ImportError:
    fcntl = resource = None

import protocol
import swiftchat_admin
from accounts import (DEFAULT_ITERATIONS, DEFAULT_SESSION_DAYS, Accounts, UploadsInProgress,
                      stored_secret)
from files import FileFolder, LinkSigner
from protocol import VERSION, ApiError, history_message, shown_user
import store
import store_postgres
from store import InvalidAttachment, InvalidReply, Store, StoreError
import swiftchat_core
from swiftchat_core import POLICIES, ChatCore
from swiftchat_http import HTTPServer
from swiftchat_routes import ROUTES, PageCache, page_headers
from swiftchat_ws import WebSocketEdge, WebSocketServer

__all__ = ["SwiftChat", "serve", "main", "ROUTES", "VERSION", "ApiError", "StartupError",
           "SwiftChatError", "NotFound", "Conflict", "Invalid"]

log = logging.getLogger("swiftchat")


# -- the whole server -----------------------------------------------------------

class SwiftChatError(Exception):
    """What an embedding program's call was refused for; str() says what was wrong."""


class NotFound(SwiftChatError, LookupError):
    """No such user or room ("room 'room_x' not found")."""


class Conflict(SwiftChatError):
    """A name is taken ("username 'bob' is taken")."""


class Invalid(SwiftChatError, ValueError):
    """A value the API would refuse; str() is the API's own message for it."""


def checked(check, fields):
    """check(fields), with the API's refusal as Invalid."""
    try:
        return check(fields)
    except ApiError as exc:
        raise Invalid(exc.error) from None


AS_ADMIN = {"role": "admin"}  # an embedding program sees users as an admin does
MIB = 1024 * 1024  # the sizes of uploads are options in MiB


class StartupError(Exception):
    """The server could not start: a port is taken, the database won't open or is in use."""


def hold_database(db):
    """Hold the database file for this server's lifetime; StartupError if another server does.

    Two servers on one file would both accept messages, and each would
    tell only its own clients. The hold is an flock(2) on the file itself,
    which the kernel releases when the process ends, however it ends.
    Returns the open file; closing it releases the hold. SQLite's own
    locks are fcntl locks, which flock does not touch; the command-line
    tools (which are not servers) never take the hold.
    """
    if str(db) == ":memory:" or fcntl is None:
        return open(os.devnull, "rb")  # nothing to share (or no flock): a hold that holds nothing
    try:
        fd = os.open(db, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as cannot_write:
        try:
            fd = os.open(db, os.O_RDONLY)  # a read-only database is still served (reads)
        except FileNotFoundError:  # so it could not be made: say why ("Permission denied")
            raise StartupError(f"cannot open the database {db}: "
                               f"{cannot_write.strerror}") from None
        except OSError as exc:
            raise StartupError(f"cannot open the database {db}: {exc.strerror}") from None
    hold = os.fdopen(fd, "rb")
    try:
        fcntl.flock(hold, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        hold.close()
        raise StartupError(f"the database {db} is in use by another SwiftChat server") from None
    return hold


def opening_error(db, exc):
    """What the store's failure to open db means, said so that the reader can mend it.

    SQLite keeps the -wal and -shm files beside the database, so a folder
    it may not write to fails an existing database too, in SQLite's words
    "attempt to write a readonly database".
    """
    folder = os.path.dirname(os.path.abspath(db))
    if not os.access(folder, os.W_OK):
        return (f"Permission denied to write in {folder}, where SQLite keeps "
                f"{os.path.basename(db)}-wal and -shm beside it")
    return str(exc)


class OncePer:
    """A warning logged at most once per `seconds`, however often it is called (from any thread).

    For a condition that every connection attempt meets while it lasts,
    such as running out of file descriptors: a line per attempt would fill
    the disk as fast as the attacker can connect.
    """

    def __init__(self, seconds, warning):
        self.seconds = seconds
        self.warning = warning
        self._next = 0.0
        self._lock = threading.Lock()

    def __call__(self):
        with self._lock:
            now = time.monotonic()
            if now < self._next:
                return
            self._next = now + self.seconds
        log.warning(self.warning)


FEWEST_CONNECTIONS = 64  # neither cap is lowered below this to fit the file limit (CONTRACT 1.3)
OTHER_FILES = 100  # descriptors kept for all but connections: the database, listeners, logs


def files_folder(db, files_dir):
    """Where uploads live: files_dir, or beside the database (<db>.files); for an in-memory
    database, a temporary folder of its own."""
    if str(db) == ":memory:" and not files_dir:
        return tempfile.mkdtemp(prefix="swiftchat-files-")
    if db is None:  # PostgreSQL: files_dir, or ./swiftchat.files
        return files_dir or "swiftchat.files"
    return swiftchat_admin.files_of(db, files_dir)  # the rule backup and restore follow too


def fit_under_file_limit(max_connections, max_ws_connections):
    """Raise this process's soft file limit to its hard one; return (HTTP cap, WebSocket cap) that fit.

    Each connection is a file descriptor. Past the limit, accepting fails
    for everyone, the database's files included; so the two caps together
    leave OTHER_FILES for the rest. Where they would not fit, both are
    lowered in proportion, with one warning, neither below
    FEWEST_CONNECTIONS (a machine with the common limit of 1,024 still
    serves a class); a limit too small even for that is a StartupError.
    A cap of 0 (no cap) is taken at its word: it counts as 0 and stays 0.
    """
    soft = raised_file_limit()
    if soft is None or max_connections + max_ws_connections + OTHER_FILES <= soft:
        return max_connections, max_ws_connections
    room = soft - OTHER_FILES
    least_http = min(max_connections, FEWEST_CONNECTIONS)
    least_ws = min(max_ws_connections, FEWEST_CONNECTIONS)
    if least_http + least_ws > room:
        raise StartupError(f"the file limit of {soft} open files is too small: SwiftChat needs at "
                           f"least {least_http + least_ws + OTHER_FILES} ({least_http} HTTP and "
                           f"{least_ws} WebSocket connections, {OTHER_FILES} other files); "
                           "raise it with ulimit -n")
    share = max_ws_connections * room // (max_connections + max_ws_connections)
    ws = min(max(share, least_ws), room - least_http)
    http = min(max_connections, room - ws)  # what the WebSocket share leaves, up to the cap asked
    lowered = [f"{kind} {cap} (not {asked})" for kind, cap, asked in
               [("HTTP", http, max_connections), ("WebSocket", ws, max_ws_connections)]
               if cap != asked]
    log.warning("connections at once lowered to fit the file limit of %d, %d files kept for the "
                "rest: %s", soft, OTHER_FILES, ", ".join(lowered))
    return http, ws


def raised_file_limit():
    """The soft file limit, after raising it to the hard one; None where there is no limit."""
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


class SwiftChat:
    """Both edges of SwiftChat around one chat core and one store, started and stopped together.

    Attributes for embedders and tests: http_port, ws_port (the real ports,
    also when 0 was asked for), store, accounts, core. Use as a context
    manager, or call stop(). The options are serve()'s.
    """

    def __init__(self, host="127.0.0.1", http_port=8080, ws_port=8081, db="swiftchat.db",
                 jwt_secret=None, pbkdf2_iterations=DEFAULT_ITERATIONS, auth_timeout=30.0,
                 login_attempts=5, registrations_per_minute=30, ws_rate=20,
                 header_timeout=10.0, max_connections=1000, clock=time.monotonic,
                 session_days=DEFAULT_SESSION_DAYS, rooms_per_hour=20, trusted_proxy="",
                 max_ws_connections=10_000, max_ws_unauthenticated=20, frame_ancestors=(),
                 registration="open", public_ws_url=None, sessions_per_user=5, rest_rate=10,
                 room_creation="everyone", direct_messages="on", files_dir=None,
                 max_upload_mb=10, upload_quota_mb=200, body_idle=30.0, database_url=None):
        if registration not in ("open", "closed"):
            raise ValueError(f"registration must be 'open' or 'closed', not {registration!r}")
        policies = {"room_creation": room_creation, "direct_messages": direct_messages}
        for name, value in policies.items():
            if value not in POLICIES[name]:
                raise ValueError(f"{name} must be one of {POLICIES[name]}, not {value!r}")
        self.registration_closed = registration == "closed"
        self.public_ws_url = public_ws_url  # behind a proxy: where clients reach the WebSocket
        self.trusted_proxies = protocol.trusted_proxies(trusted_proxy)
        self.page_headers = page_headers(frame_ancestors)
        self.out_of_files = OncePer(10, "out of file descriptors: new connections wait")
        self.started_at = time.monotonic()
        # First: a file limit too small to serve is a StartupError with nothing open yet.
        max_connections, max_ws_connections = fit_under_file_limit(max_connections,
                                                                   max_ws_connections)
        if database_url:
            db = None  # the files below have no database file to sit beside
            self._open_postgres(database_url)
        else:
            self._open_store(db)
        secret = jwt_secret or self._stored_secret(db or "at --database-url")
        self.accounts = Accounts(self.store, secret, pbkdf2_iterations, login_attempts,
                                 registrations_per_minute, clock, session_days, rooms_per_hour,
                                 rest_rate)
        self.page_cache = PageCache(self.store)
        # Searches run at once (swiftchat_routes.search): each may keep a core
        # busy for up to store.SEARCH_SECONDS, and the machine has few cores.
        self.search_slots = threading.BoundedSemaphore(2)
        self.files = FileFolder(files_folder(db, files_dir))
        self.max_upload = max_upload_mb * MIB  # bytes
        self.upload_quota = upload_quota_mb * MIB if upload_quota_mb else None  # bytes; None: none
        self.uploads_in_progress = UploadsInProgress()
        self.links = LinkSigner(secret)
        self.store.file_link = self.links.url
        # Seconds an upload's body may go without a byte before it is cut (CONTRACT 1.3: 30).
        self.body_idle = body_idle
        self.core = ChatCore(self.store, self.accounts, sessions_per_user, policies, self.files)
        edge = WebSocketEdge(self.core, self.accounts, auth_timeout, ws_rate, clock,
                             self.trusted_proxies, max_ws_unauthenticated)
        self._listen(host, http_port, header_timeout, max_connections)
        self.websocket = WebSocketServer(edge, host, ws_port, max_ws_connections,
                                         self.out_of_files)
        self._start(host, ws_port)

    def _open_store(self, db):
        problem = swiftchat_admin.not_a_database(db)  # before the store tightens the file's mode
        if problem:
            raise StartupError(f"cannot open the database {db}: {problem}")
        self._hold = hold_database(db)
        try:
            self.store = Store(db)
        except (StoreError, OSError) as exc:
            self._hold.close()
            raise StartupError(f"cannot open the database {db}: {opening_error(db, exc)}") from None
        if not self.store.writable:
            log.warning("%s cannot be written: serving reads only until it can", db)

    def _open_postgres(self, url):
        self._hold = None  # PostgreSQL is shared: no file to hold for this process alone
        try:
            self.store = store_postgres.PostgresStore(url)
        except StoreError as exc:
            raise StartupError(f"cannot open the PostgreSQL database: {exc}") from None

    def _stored_secret(self, db):
        """The secret that signs tokens, made and kept in the database the first time."""
        try:
            return stored_secret(self.store)
        except StoreError as exc:
            self._close_store()
            raise StartupError(f"cannot keep a token secret in the database {db} ({exc}): "
                               "make it writable, or give --jwt-secret") from None

    def _listen(self, host, http_port, header_timeout, max_connections):
        try:
            self.http = HTTPServer((host, http_port), self, header_timeout, max_connections)
        except OSError as exc:
            self._close_store()
            raise StartupError(f"cannot listen on {host}:{http_port}: {exc.strerror} "
                               "(choose another port with --http-port)") from None

    def _start(self, host, ws_port):
        try:
            self.websocket.start()
        except OSError as exc:
            self.http.server_close()
            self._close_store()
            # socket.create_server's own text repeats the address: the errno's is enough.
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise StartupError(f"cannot listen on {host}:{ws_port}: {reason} "
                               "(choose another port with --ws-port)") from None
        # A short poll interval only makes stop() quicker; the socket itself
        # is watched with select() between polls.
        self._http_thread = threading.Thread(
            target=self.http.serve_forever, args=(0.05,), name="swiftchat-http", daemon=True)
        self._http_thread.start()

    @property
    def http_port(self):
        return self.http.server_port

    @property
    def ws_port(self):
        return self.websocket.port

    # -- for programs that embed SwiftChat ------------------------------------------
    # Callable from any thread but the event loop's. Each raises NotFound,
    # Conflict or Invalid (all SwiftChatError) for what the API would refuse,
    # and the store's own faults (store.DatabaseBusy, ...) as they are.

    def create_user(self, username, password, role="user"):
        """A new account, as the API shows users (with role and disabled); no limits apply."""
        username = checked(protocol.username, {"username": username})
        password = checked(protocol.password, {"password": password})
        role = checked(protocol.role, {"role": role})
        try:
            return shown_user(self.accounts.create_user(username, password, role), AS_ADMIN)
        except store.Conflict:
            raise Conflict(f"username {username!r} is taken") from None

    def user(self, user_id=None, username=None):
        """The user with this id (or name, in any letter case), as the API shows it; or None."""
        found = (self.store.user(user_id) if user_id is not None
                 else self.store.user_with_password(username or ""))
        return None if found is None else shown_user(found, AS_ADMIN)

    def create_room(self, name, creator_id, description="", visibility="public"):
        """A new room made by creator_id (its first member), told to whoever may see it."""
        fields = {"name": name, "description": description, "visibility": visibility}
        name, description = checked(protocol.room_name, fields), checked(
            lambda f: protocol.description(f, required=False), fields)
        visibility = checked(protocol.visibility, fields)
        creator = self.known_user(creator_id)
        try:
            return self.core.perform(swiftchat_core.create_room, creator, name, description,
                                     visibility)
        except store.Conflict:
            raise Conflict(f"room name {name!r} is taken") from None

    def add_member(self, room_id, user_id):
        """Make user_id a member of room_id (lifting a ban); returns the member as the list shows it."""
        try:
            return self.core.perform(swiftchat_core.add_member_and_tell, self.known_room(room_id),
                                     self.known_user(user_id))
        except swiftchat_core.RoomNotFound:  # deleted a moment ago
            raise NotFound(f"room {room_id!r} not found") from None

    def members(self, room_id):
        """A room's members, as GET /rooms/{room_id}/members lists them."""
        self.known_room(room_id)
        return swiftchat_core.members_with_presence(self.core, room_id)

    def messages(self, room_id, limit=50, before=None):
        """The newest `limit` messages before id `before`, oldest first, as GET /messages gives them."""
        self.known_room(room_id)
        limit = min(checked(lambda f: protocol.message_id(f, "limit"), {"limit": limit}), 100)
        before = checked(lambda f: protocol.message_id(f, "before"), {"before": before})
        rows = self.store.messages(room_id, limit, before)
        online = self.core.online_users({row["user_id"] for row in rows})
        return [history_message(row, row["user_id"] in online) for row in rows]

    def token_for(self, user_id):
        """A token of a new session of user_id, exactly as a login gives it (logout ends it).

        For a host program that knows its users already: it signs them into
        the chat page (see examples/host_app.py) and the WebSocket.
        """
        user = self.known_user(user_id)
        if user["disabled"]:
            raise Invalid(f"user {user_id!r} is disabled")
        return self.accounts.issue_token(self.accounts.start_session(user))

    def post_message(self, room_id, user_id, content, client_id=None, attachments=(),
                     reply_to=None):
        """Store a message as user_id and tell the room; return it as POST /messages does.

        Trusted code may post where it likes: unlike POST /messages, the
        user need not be a member of the room. attachments: ids of user_id's
        uploads (then content may be empty); reply_to: the id of a message of
        the same room that this one answers. Raises NotFound for an unknown
        room or user and Invalid for content the API would refuse.
        """
        user = self.known_user(user_id)
        self.known_room(room_id)
        content, attachments = checked(protocol.message_body,
                                       {"content": content, "attachments": list(attachments)})
        client_id = checked(protocol.client_id, {"client_id": client_id})
        reply_to = checked(protocol.reply_to, {"reply_to": reply_to})
        try:
            return self.core.call(self.core.post, user, room_id, content, client_id, None,
                                  attachments, reply_to)
        except InvalidAttachment:
            raise Invalid("Invalid attachment") from None
        except InvalidReply:
            raise Invalid("Invalid reply") from None

    def on_message(self, callback):
        """Call callback(message) after each stored message, from REST, WebSocket or post_message.

        message is a dict as POST /messages returns it. Callbacks run one at
        a time on a thread of their own, never on the event loop; one that
        raises is logged and chat goes on.
        """
        self.core.on_message(callback)

    def known_user(self, user_id):
        user = self.store.user(user_id)
        if user is None:
            raise NotFound(f"user {user_id!r} not found")
        return user

    def known_room(self, room_id):
        room = self.store.room(room_id)
        if room is None:
            raise NotFound(f"room {room_id!r} not found")
        return room

    def stop(self, timeout=5):
        """Stop accepting, finish requests, close WebSocket clients with 1001, close the store."""
        if self.http.stopping:  # stopped already
            return
        self.http.shutdown()
        self.http.server_close()
        self.http.finish_requests(timeout)
        self.websocket.stop()
        self.core.close()
        self._close_store()

    def _close_store(self):
        self.store.close()
        if self._hold is not None:
            self._hold.close()  # after the store: closing it drops this process's locks on the file

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


def serve(host="127.0.0.1", http_port=8080, ws_port=8081, db="swiftchat.db", jwt_secret=None,
          pbkdf2_iterations=DEFAULT_ITERATIONS, auth_timeout=30.0, login_attempts=5,
          registrations_per_minute=30, ws_rate=20, header_timeout=10.0, max_connections=1000,
          clock=time.monotonic, session_days=DEFAULT_SESSION_DAYS, rooms_per_hour=20,
          trusted_proxy="", max_ws_connections=10_000, max_ws_unauthenticated=20,
          frame_ancestors=(), registration="open", public_ws_url=None, sessions_per_user=5,
          rest_rate=10, room_creation="everyone", direct_messages="on", files_dir=None,
          max_upload_mb=10, upload_quota_mb=200, body_idle=30.0, database_url=None):
    """Start SwiftChat in background threads and return the running SwiftChat.

        with swiftchat.serve(http_port=0, ws_port=0, db=":memory:") as server:
            print(server.http_port, server.ws_port)
            server.on_message(print)

    The options are the command line's (see --help), with Python values:
    port 0 picks a free one, db=":memory:" keeps nothing, database_url (a
    postgresql:// URL) serves from PostgreSQL instead of db, a limit of 0 turns
    it off, trusted_proxy is one string ("10.0.0.1,10.0.0.2") and
    frame_ancestors a list of origins; clock is a time.monotonic stand-in
    for tests of the throttles.
    """
    return SwiftChat(**locals())  # every option, by its name


# -- command line -----------------------------------------------------------------

def port_number(text):
    if not (text.isdigit() and 0 <= int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return int(text)


def positive_int(text):
    if not (text.isdigit() and int(text) > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def limit(text):
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (0 turns the limit off)")
    return int(text)


def positive_seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = 0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def ws_url(text):
    if not text.startswith(("ws://", "wss://")) or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a ws:// or wss:// URL")
    return text


def choice_of(*choices):
    """An argparse type that takes one of these words."""
    def one_of(text):
        if text not in choices:
            raise argparse.ArgumentTypeError(f"{text!r} is not {' or '.join(choices)}")
        return text
    return one_of


def proxy_list(text):
    try:
        protocol.trusted_proxies(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of addresses") from None
    return text


def log_level(text):
    if text.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise argparse.ArgumentTypeError(f"{text!r} is not DEBUG, INFO, WARNING or ERROR")
    return text.upper()


# The server's options: (flag, default, help, type). Each can also be set as
# SWIFTCHAT_<FLAG> in the environment; a flag wins over the variable.
OPTIONS = [
    ("--host", "127.0.0.1", "address to listen on (default 127.0.0.1)", str),
    ("--http-port", "8080", "REST port; 0 picks a free one (default 8080)", port_number),
    ("--ws-port", "8081", "WebSocket port; 0 picks a free one (default 8081)", port_number),
    ("--db", "swiftchat.db", "SQLite database file, or :memory: (default swiftchat.db)", str),
    ("--database-url", None, "postgresql://user:password@host/database: serve from PostgreSQL "
     "instead of --db (needs requirements-postgres.txt)", str),
    ("--jwt-secret", None, "secret that signs tokens (also read from JWT_SECRET); "
     "by default one is generated and kept in the database", str),
    ("--log-level", "INFO", "DEBUG, INFO, WARNING or ERROR (default INFO)", log_level),
    ("--auth-timeout", "30", "seconds a WebSocket client has to authenticate (default 30)",
     positive_seconds),
    ("--pbkdf2-iterations", str(DEFAULT_ITERATIONS),
     f"PBKDF2 rounds per password hash (default {DEFAULT_ITERATIONS}); lower only for tests",
     positive_int),
    ("--login-attempts", "5", "failed logins per username from one address in 15 minutes "
     "before that pair must wait; an address may fail 6x as often (one more every 20 s), a "
     "username from all addresses 20x (default 5; 0 = no limit)", limit),
    ("--registration", "open",
     "open: anyone may register (default); closed: admins create accounts",
     choice_of("open", "closed")),
    ("--room-creation", "everyone",
     "everyone: any user may create rooms (default); admins: only admins may",
     choice_of(*POLICIES["room_creation"])),
    ("--direct-messages", "on",
     "on: users may open direct rooms (default); off: only with an admin",
     choice_of(*POLICIES["direct_messages"])),
    ("--files-dir", None, "folder for uploaded files (default: <db>.files beside the database; "
     "on PostgreSQL ./swiftchat.files)", str),
    ("--max-upload-mb", "10", "largest upload, in MiB (default 10)", positive_int),
    ("--upload-quota-mb", "200", "MiB of uploads one user may keep (default 200; 0 = no quota; "
     "admins have none)", limit),
    ("--registrations-per-minute", "30",
     "registrations per client address per minute (default 30; 0 = no limit)", limit),
    ("--ws-rate", "20", "WebSocket frames per second per connection, bursts of twice that "
     "(default 20; 0 = no limit)", limit),
    ("--rest-rate", "10", "REST writes (messages, edits, read markers, reports...) per second "
     "per user, bursts of twice that (default 10; 0 = no limit)", limit),
    ("--header-timeout", "10", "seconds a client has to send a whole request (default 10)",
     positive_seconds),
    ("--max-connections", "1000", "HTTP connections served at once, lowered to fit the file "
     "limit; more get 503 (default 1000)", positive_int),
    ("--session-days", str(DEFAULT_SESSION_DAYS),
     f"days a login session lasts at most (default {DEFAULT_SESSION_DAYS})", positive_int),
    ("--rooms-per-hour", "20", "rooms one user may create per hour (default 20; 0 = no limit)",
     limit),
    ("--trusted-proxy", "", "ADDR[,ADDR...]: reverse proxies whose X-Forwarded-For names the "
     "client (addresses or networks; default none)", proxy_list),
    ("--max-ws-connections", "10000", "WebSocket connections at once, lowered to fit the file "
     "limit (default 10000; 0 = no limit)", limit),
    ("--max-ws-unauthenticated", "20", "WebSocket connections per client address that have "
     "not authenticated yet (default 20; 0 = no limit)", limit),
    ("--sessions-per-user", "5", "sessions (devices) of one user connected at once; one more "
     "closes the least recently connected (default 5; 0 = no limit)", limit),
    ("--public-ws-url", None, "the WebSocket URL clients should use, e.g. wss://chat.example/ws "
     "behind a proxy (default: ws://<the page's host>:<ws port>)", ws_url),
]


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a mistake is one line (no usage block above it)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_args(argv=None, environ=os.environ):
    """Options from the command line; each falls back to SWIFTCHAT_<NAME>, then its default.

    A bad value is one line naming what the user typed: the flag, or the
    environment variable it came from.
    """
    parser = OneLineParser(
        prog="swiftchat.py",
        description="SwiftChat: REST chat API over HTTP and real-time chat over WebSocket.",
        epilog="Every option can also be set as an environment variable, e.g. "
               "SWIFTCHAT_HTTP_PORT=9000; a flag wins over the variable. "
               "Accounts, backups and restores: python swiftchat.py users --help, "
               "python swiftchat.py backup FILE, python swiftchat.py restore FILE.")
    parser.add_argument("--version", action="version", version=f"SwiftChat {VERSION}")
    for flag, _, help, kind in OPTIONS:
        parser.add_argument(flag, type=kind, help=f"{help} [env {env_name(flag)}]")
    parser.add_argument("--frame-ancestors", nargs="+", metavar="ORIGIN",
                        default=environ.get("SWIFTCHAT_FRAME_ANCESTORS", "").split(),
                        help="origins that may show the page in a frame (default: none) "
                             "[env SWIFTCHAT_FRAME_ANCESTORS, space-separated]")
    args = parser.parse_args(argv)
    for flag, default, _, kind in OPTIONS:  # what no flag set: the environment, or the default
        dest = flag.lstrip("-").replace("-", "_")
        if getattr(args, dest) is not None:
            continue
        names = [env_name(flag)] + (["JWT_SECRET"] if flag == "--jwt-secret" else [])
        given = next(((name, environ[name]) for name in names if name in environ), None)
        try:
            value = kind(given[1]) if given else (None if default is None else kind(default))
        except argparse.ArgumentTypeError as exc:
            parser.error(f"environment variable {given[0]}: {exc}")
        setattr(args, dest, value)
    return args


WILDCARDS = ("0.0.0.0", "::", "")  # hosts that listen on every interface
SIOCGIFADDR = 0x8915  # Linux's ioctl for an interface's IPv4 address (linux/sockios.h)


def reachable_hosts(host):
    """The hosts the start-up banner shows: the one asked for, or for a wildcard (0.0.0.0, ::)
    this machine's addresses that other machines can reach, the default route's first; or [].

    Nobody can open http://0.0.0.0:8080 from another machine, and the
    machine's name often resolves to a loopback address (Debian's
    /etc/hosts maps it to 127.0.1.1), so the interfaces themselves are
    asked. "::" serves IPv4 too (swiftchat_http, swiftchat_ws): both kinds.
    """
    if host not in WILDCARDS:
        return [f"[{host}]" if ":" in host else host]
    versions = (4, 6) if host == "::" else (4,)
    preferred = default_route_addresses()
    usable = [address for address in preferred | interface_addresses()
              if address.version in versions and not (address.is_loopback or address.is_link_local
                                                      or address.is_unspecified)]
    usable.sort(key=lambda address: (address.version, address not in preferred, address))
    return [f"[{address}]" if address.version == 6 else str(address) for address in usable]


def default_route_addresses():
    """The addresses this machine sends from on its default routes (IPv4, IPv6), where it has them.

    Connecting a UDP socket sends nothing: the kernel only picks the route
    and the source address. The destinations are addresses set aside for
    documentation (RFC 5737, RFC 3849); no packet goes to them.
    """
    found = set()
    for family, destination in [(socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")]:
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((destination, 9))
            found.add(ipaddress.ip_address(probe.getsockname()[0].split("%")[0]))
    return found


def interface_addresses():
    """Every address of this machine's interfaces that the standard library can find.

    No one call lists them everywhere: the machine's name gives what
    /etc/hosts or DNS says of it; on Linux the kernel lists IPv6 addresses
    in /proc/net/if_inet6 and gives each interface's IPv4 address to an
    ioctl.
    """
    found = set()
    with contextlib.suppress(OSError):
        found |= {ipaddress.ip_address(info[4][0].split("%")[0])
                  for info in socket.getaddrinfo(socket.gethostname(), None)}
    with contextlib.suppress(OSError), open("/proc/net/if_inet6", encoding="ascii") as listing:
        found |= {ipaddress.IPv6Address(bytes.fromhex(line.split()[0])) for line in listing
                  if line.strip()}
    if fcntl is not None and sys.platform.startswith("linux"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            for _, name in socket.if_nameindex():
                with contextlib.suppress(OSError):  # an interface without an IPv4 address
                    answer = fcntl.ioctl(probe.fileno(), SIOCGIFADDR,
                                         struct.pack("256s", name.encode()[:15]))
                    found.add(ipaddress.IPv4Address(answer[20:24]))  # struct ifreq's sin_addr
    return found


def banner(host, http_port, ws_port):
    """The start-up lines: where to open the chat, with every address other machines may use.

    The first line names one address and ends in what else there is to
    say, so that a program reading it finds the ports where it always has.
    """
    hosts = reachable_hosts(host)
    first = hosts[0] if hosts else "127.0.0.1"
    line = f"SwiftChat: REST on http://{first}:{http_port}, WebSocket on ws://{first}:{ws_port}"
    if len(hosts) > 1:
        line += " (also " + ", ".join(f"http://{other}:{http_port}" for other in hosts[1:]) + ")"
    elif not hosts:
        line += (" (this machine only: no network address was found; other machines use the "
                 "address that `ip addr`, `ifconfig` or `ipconfig` shows)")
    return line + "\nCtrl+C to stop."


def env_name(flag):
    return "SWIFTCHAT_" + flag.lstrip("-").replace("-", "_").upper()


class BatchedLog(logging.Handler):
    """Log records written to a stream by a thread of its own, a batch at a time.

    Why: the access log writes a line per request. Written by each request
    thread itself, threads queued on the stream's lock; handed to a
    QueueListener, its thread woke for every line and fought the request
    threads for the GIL. Here a request thread only appends the record to
    a deque, and every `interval` seconds the log thread formats what has
    gathered and writes it in one go (/health, 10 connections, interleaved
    A/B runs: 1.20x). A line reaches the stream at most `interval` late;
    close() writes out the rest.
    """

    def __init__(self, stream, interval=0.1):
        super().__init__()
        self.stream = stream
        self.interval = interval
        self._records = collections.deque()  # append and popleft are thread-safe
        self._stopping = threading.Event()
        # logging.shutdown() may flush while the log thread does: one at a
        # time, or two batches could be written out of order.
        self._flushing = threading.Lock()
        self._thread = threading.Thread(target=self._write_batches, name="swiftchat-log",
                                        daemon=True)
        self._thread.start()

    def emit(self, record):
        self._records.append(record)

    def _write_batches(self):
        while not self._stopping.wait(self.interval):
            self.flush()

    def flush(self):
        with self._flushing:
            lines = []
            while self._records:
                record = self._records.popleft()
                try:
                    lines.append(self.format(record) + "\n")
                except Exception:  # a bad record (say, "%d" given a str) must not end the log thread
                    self.handleError(record)
            if lines:
                try:
                    self.stream.write("".join(lines))
                    self.stream.flush()
                except (OSError, ValueError):  # stderr closed or gone: the server goes on
                    pass

    def close(self):
        self._stopping.set()
        self._thread.join()
        self.flush()
        super().close()


class LogFormatter(logging.Formatter):
    """logging's Formatter, with each second's date and time formatted once.

    Why: time.strftime per record (Formatter.formatTime) was most of what
    the access log adds to the cheapest routes (server CPU per /health
    request at 50 connections: 100 -> 90 us; the bare server 85). The text
    is logging's own default ("2026-12-07 14:03:05,123"); formatTime is the
    documented place to change how a formatter writes times.
    """

    def __init__(self, fmt):
        super().__init__(fmt)
        self._second = (None, "")  # (a second, its text), replaced as one

    def formatTime(self, record, datefmt=None):
        second = int(record.created)
        known, text = self._second
        if known != second:
            text = time.strftime(self.default_time_format, self.converter(second))
            self._second = (second, text)
        return self.default_msec_format % (text, record.msecs)


def log_to_stderr(level):
    """Send every log record at `level` or above to stderr, a batch at a time; return the handler.

    Also tells logging not to collect what our format never shows: the
    caller's file and line (a walk up the stack), thread and process ids
    (the logging HOWTO's "Optimization" section). /health, 10 connections,
    interleaved A/B runs: 1.15x. These settings are process-wide, so only
    the command line, which owns its process, makes them; serve() does not.
    """
    logging._srcfile = None  # the HOWTO's documented switch, despite the underscore
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    to_stderr = BatchedLog(sys.stderr)
    to_stderr.setFormatter(LogFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[to_stderr])
    logging.getLogger("websockets").setLevel(logging.WARNING)
    return to_stderr


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if swiftchat_admin.is_admin_command(argv):  # users ..., backup FILE: not a server
        return swiftchat_admin.main(argv)
    args = parse_args(argv)
    log_handler = log_to_stderr(args.log_level)
    try:
        options = vars(args)
        del options["log_level"]
        server = SwiftChat(**options)
    except StartupError as exc:
        log_handler.close()
        print(f"swiftchat: {exc}", file=sys.stderr)
        return 1
    stop_requested = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop_requested.set())
    print(banner(args.host, server.http_port, server.ws_port), flush=True)
    # A wait with a timeout, again and again: the kernel may hand SIGTERM to any thread,
    # and then Python only marks it for the main thread, whose handler runs the next time
    # it runs Python code. A wait without one then never woke (seen once in CI: a server
    # on PostgreSQL, which has more threads, ignored SIGTERM for 15 s).
    while not stop_requested.wait(0.5):
        pass
    log.info("stopping")
    server.stop()
    log_handler.close()  # writes out what is still gathered
    return 0


if __name__ == "__main__":
    sys.exit(main())
