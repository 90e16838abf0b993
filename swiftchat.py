"""SwiftChat: a small chat server. REST on one port, WebSocket on another.

This module is the HTTP half and the entry point. It owns the REST routes
(the ROUTES table), the request handler that runs them on the worker threads
of a ``ThreadingHTTPServer``, the ``SwiftChat`` object that starts and stops
both halves over one store, ``serve()`` for embedding, and the command line.

It leaves SQL to store.py, passwords and tokens to accounts.py, envelopes and
input checks to protocol.py, everything real-time to swiftchat_ws.py, and
the OpenAPI description of the routes to openapi.py.

A request travels: socket -> RequestHandler.dispatch (one per request, on
its own thread) -> find_route -> the bearer token is checked if the route's
row says LOGGED_IN -> a route function, which raises or returns (status,
message, data) -> RequestHandler.send_body. Route functions raise ApiError
for what they decide themselves; the layers below raise their own named
exceptions (InvalidToken, DatabaseBusy, ...), and HTTP_ERRORS says what each
means over HTTP. Only dispatch turns exceptions into error envelopes
(send_error does the same for the malformed requests that http.server
rejects before dispatch).

    python swiftchat.py --help
"""

import argparse
import collections
import contextlib
import email.utils
import errno
import http
import http.server
import json
import logging
import mimetypes
import os
import pathlib
import re
import secrets
import signal
import socket
import socketserver
import sys
import threading
import time
import urllib.parse

try:  # POSIX only: on Windows, no hold on the database and no file limit to fit under
    import fcntl
    import resource
except ImportError:
    fcntl = resource = None

import openapi
import protocol
from accounts import (DEFAULT_ITERATIONS, DEFAULT_SESSION_DAYS, Accounts, InvalidToken,
                      SessionExpired, TooManyLogins, TooManyRegistrations, TooManyRooms,
                      WrongPassword)
from protocol import ApiError, bad_request, encode, now
from store import (ClientIdReused, Conflict, DatabaseBusy, DatabaseReadOnly, DatabaseUnavailable,
                   DiskFull, Store, StoreError)
from swiftchat_ws import ChatHub, WebSocketServer

__all__ = ["SwiftChat", "serve", "main", "ROUTES", "VERSION", "ApiError", "StartupError"]

VERSION = "1.2.0"  # CONTRACT: 1.2.0 from the first 1.2 change merged
MAX_BODY = 64 * 1024
STATIC_DIR = pathlib.Path(__file__).with_name("static")
JSON_TYPE = "application/json"  # UTF-8 by definition (RFC 8259): no charset
CORS_HEADERS = {  # exactly as the API document lists them
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, X-Requested-With",
}

log = logging.getLogger("swiftchat")


# -- what a route function sees and may return ------------------------------

class Request:
    """One parsed HTTP request, as a route function sees it."""

    def __init__(self, app, method, path, query, headers, body, params, address):
        self.app = app  # the SwiftChat serving this request
        self.address = address  # the client's IP address (see client_address), for limits
        self.method = method
        self.path = path
        self.query = query  # {name: first value}
        self.headers = headers  # {lower-case name: value}
        self.body = body  # bytes
        self.params = params  # {name: value} from the route's {placeholders}
        self.session = None  # the caller's accounts.Session, on a LOGGED_IN route

    def json(self):
        return protocol.parse_json_object(self.body)

    def optional_json(self):
        """The body as a JSON object, or {} when there is none."""
        return self.json() if self.body.strip() else {}

    def bearer_session(self, renewing=False):
        """The session of the bearer token; raises ApiError(401) or InvalidToken.

        renewing: the route renews the token, and says so when the session
        is past its maximum age rather than calling the token expired.
        """
        header = self.headers.get("authorization")
        if not header:
            raise ApiError(401, "Authentication required", "Missing Authorization header")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise InvalidToken()
        try:
            return self.app.accounts.session_for_token(token.strip(), renewing)
        except SessionExpired:
            raise ApiError(401, "Authentication required", "Session expired") from None


# A route's answer when it is not an envelope to build: the chat page, or a
# JSON answer encoded already; headers are extra headers for the response.
Page = collections.namedtuple("Page", "content_type body headers", defaults=(None,))


# -- routes: authentication and users ---------------------------------------

def register(request):
    body = request.json()
    username, password = protocol.username(body), protocol.password(body)
    try:
        user = request.app.accounts.register(username, password, request.address)
    except Conflict:
        raise ApiError(409, "User already exists", "Username already taken") from None
    return 201, "User registered successfully", new_session(request, user)


def login(request):
    body = request.json()
    username = protocol.text_field(body, "username")
    password = protocol.text_field(body, "password")
    user = request.app.accounts.login(username, password, request.address)
    if user is None:
        raise ApiError(401, "Invalid credentials", "Username or password is incorrect")
    return 200, "Login successful", new_session(request, user)


def refresh(request, user):
    return 200, "Token refreshed", token_answer(request, request.session)


def logout(request, user):
    everywhere = request.optional_json().get("all") is True
    ended = request.app.accounts.end_sessions(
        user["id"], only=None if everywhere else request.session.id)
    request.app.websocket.call(request.app.hub.end_sessions, ended, "session ended")
    return 200, "Logged out", {"sessions_ended": len(ended)}


def change_password(request, user):
    body = request.json()
    old_password = protocol.text_field(body, "old_password")
    new_password = protocol.password(body, "new_password")
    ended = request.app.accounts.change_password(request.session, old_password, new_password,
                                                 request.address)
    request.app.websocket.call(request.app.hub.end_sessions, ended, "session ended")
    return 200, "Password changed", token_answer(request, request.session)


def new_session(request, user):
    """The answer of a login or registration: a token of a session that starts now."""
    return token_answer(request, request.app.accounts.start_session(user))


def token_answer(request, session):
    token = request.app.accounts.issue_token(session)
    return {"token": token, "id": session.user["id"], "username": session.user["username"]}


def current_user(request, user):
    return 200, "User information retrieved successfully", {"user": user}


def list_users(request, user):
    limit = protocol.query_int(request.query, "limit", 10, maximum=100)
    offset = protocol.query_int(request.query, "offset", 0)
    users, total = request.app.store.list_users(limit, offset)
    return 200, "Users retrieved successfully", {
        "users": users, "total": total, "limit": limit, "offset": offset}


def get_user(request, user):
    user = request.app.store.user(request.params["user_id"])
    if user is None:
        raise ApiError(404, "User not found")
    return 200, "User information retrieved successfully", {"user": user}


# -- routes: rooms ------------------------------------------------------------

def create_room(request, user):
    body = request.json()
    name, description = protocol.room_name(body), protocol.description(body, required=False)
    request.app.accounts.count_room(user["id"])
    try:
        room = request.app.store.create_room(name, description, user["id"], protocol.iso(now()))
    except Conflict:
        raise ApiError(409, "Room name already exists") from None
    request.app.websocket.call(request.app.hub.tell_everyone, "Room created",
                               {"type": "room_created", **room, "member_count": 1})
    return 201, "Room created successfully", room


def list_rooms(request):
    limit = protocol.query_int(request.query, "limit", 50, maximum=100)
    offset = protocol.query_int(request.query, "offset", 0)
    page = request.app.store.list_rooms(limit, offset)

    def answer():
        rooms, total = page
        return encode("Successfully retrieved rooms", {
            "rooms": rooms, "count": len(rooms), "total": total, "limit": limit,
            "offset": offset}).encode("utf-8")

    return Page(JSON_TYPE, request.app.encoded_pages.get(("rooms", limit, offset), page, answer))


def join_room(request, user):
    room_id = protocol.text_field(request.json(), "room_id")
    joined_at = request.app.store.add_member(room_id, user["id"], protocol.iso(now()))
    if joined_at is None:
        raise ApiError(404, "Room not found")
    return 200, "Successfully joined room", {
        "room_id": room_id, "user_id": user["id"], "joined_at": joined_at}


def leave_room(request, user):
    room_id = protocol.text_field(request.json(), "room_id")
    existing_room(request, room_id)
    if not request.app.store.remove_member(room_id, user["id"]):
        raise bad_request("You are not a member of this room")
    return 200, "Successfully left room", {"room_id": room_id, "user_id": user["id"]}


def update_room(request, user):
    room = room_of_creator(request, user, "update")
    description = protocol.description(request.json(), required=True)
    request.app.store.update_description(room["id"], description)
    request.app.websocket.call(request.app.hub.tell_everyone, "Room updated", {
        "type": "room_updated", "room_id": room["id"], "description": description})
    return 200, "Room description updated successfully", {
        "room_id": room["id"], "new_description": description, "updated_by": user["id"]}


def delete_room(request, user):
    room = room_of_creator(request, user, "delete")
    request.app.store.delete_room(room["id"])
    request.app.websocket.call(request.app.hub.close_room, room["id"])
    return 200, "Room deleted successfully", {"room_id": room["id"], "deleted_by": user["id"]}


def room_members(request, user):
    room = existing_room(request, request.params["room_id"])
    members = request.app.store.room_members(room["id"])
    online, here = request.app.hub.presence(room["id"])
    for member in members:
        member["is_online"] = member["id"] in online
        member["in_room"] = member["id"] in here
    return 200, "Members retrieved successfully", {
        "room_id": room["id"], "members": members, "count": len(members)}


def existing_room(request, room_id):
    room = request.app.store.room(room_id)
    if room is None:
        raise ApiError(404, "Room not found")
    return room


def room_of_creator(request, user, verb):
    room = existing_room(request, request.params["room_id"])
    if room["creator_id"] != user["id"]:
        raise ApiError(403, "Forbidden", f"Only the room creator can {verb} this room")
    return room


# -- routes: messages ---------------------------------------------------------

def list_messages(request, user):
    room_id = request.query.get("room_id")
    if not room_id:
        raise bad_request("room_id is required")
    limit = protocol.query_int(request.query, "limit", 50, maximum=100)
    before = protocol.query_int(request.query, "before", None)
    existing_room(request, room_id)
    rows = request.app.store.messages(room_id, limit, before)
    online = frozenset(request.app.hub.online_users({row["user_id"] for row in rows}))
    return Page(JSON_TYPE, request.app.encoded_pages.get(
        ("messages", room_id, limit, before), (rows, online),
        lambda: history_answer(room_id, rows, online)))


class EncodedPages:
    """Encoded answers of the list routes, kept while what they were built from is unchanged.

    Why: a page of rooms or history is read far more often than it changes,
    but building its dicts and encoding them was most of the request (10
    connections, interleaved A/B runs: GET /messages 1,630 -> 2,950
    requests/s; GET /rooms, with the logging settings of log_to_stderr,
    1.54x). An answer is kept with the source it was built from (the
    store's rows, and for history which senders are online) and served
    again while the source compares equal: at once when the store hands
    back its very same cached rows, after a comparison of values when it
    read them anew. At most MAX_BYTES of answers are kept (a page of long
    messages is 600 KB); past that, all are forgotten.
    """

    MAX_BYTES = 8 * 1024 * 1024

    def __init__(self):
        self._answers = {}  # key -> (source, encoded answer)
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key, source, build):
        """The answer kept for key if it was built from an equal source, else build()."""
        kept = self._answers.get(key)
        if kept is not None and kept[0] == source:
            return kept[1]
        answer = build()
        with self._lock:
            replaced = self._answers.pop(key, None)
            self._size -= len(replaced[1]) if replaced else 0
            if self._size + len(answer) > self.MAX_BYTES:
                self._answers.clear()
                self._size = 0
            self._answers[key] = (source, answer)
            self._size += len(answer)
        return answer


def history_answer(room_id, rows, online):
    """The encoded envelope of GET /messages for these rows."""
    messages = [{
        "id": row["id"],
        "room_id": row["room_id"],
        "user_id": row["user_id"],
        "content": row["content"],
        "timestamp": row["timestamp"],
        "sender": {
            "id": row["user_id"],
            "username": row["username"],
            "password": "",  # the API document keeps the field; it is never filled
            "is_online": row["user_id"] in online,
        },
    } for row in rows]
    return encode("Messages retrieved successfully", {
        "messages": messages, "room_id": room_id, "count": len(messages)}).encode("utf-8")


def post_message(request, user):
    body = request.json()
    room_id = protocol.text_field(body, "room_id")
    content, client_id = protocol.content(body), protocol.client_id(body)
    existing_room(request, room_id)
    if not request.app.store.is_member(room_id, user["id"]):
        raise ApiError(403, "Forbidden", "You are not a member of this room")
    message = request.app.websocket.call(request.app.hub.post, user, room_id, content, client_id)
    return 201, "Message sent successfully", message


# -- routes: system -----------------------------------------------------------

def health(request):
    seconds = int(time.monotonic() - request.app.started_at)
    hours, rest = divmod(seconds, 3600)
    uptime = f"{hours}h{rest // 60:02d}m{rest % 60:02d}s"
    return 200, "Server is running", {
        "status": "ok", "timestamp": now(), "uptime": uptime, "uptime_seconds": seconds}


def info(request):
    return 200, "Server information retrieved successfully", {
        "name": "SwiftChat HTTP Server",
        "version": VERSION,
        "description": "A simple HTTP server with WebSocket support",
        "timestamp": now(),
        "ws_port": request.app.websocket.port,
    }


def echo(request):
    data = {"method": request.method, "path": request.path}
    if request.method == "GET":
        data["user_agent"] = request.headers.get("user-agent", "")
    else:
        data["received_data"] = request.body.decode("utf-8", errors="replace")
    data["timestamp"] = now()
    return 200, f"Echo {request.method} request received", data


def protected(request, user):
    return 200, "This is a protected endpoint", {
        "secret_info": "Secret information", "timestamp": now(), "access_level": "authenticated"}


def openapi_document(request):
    return Page(JSON_TYPE, request.app.openapi_json)


def index_page(request):
    return static_page(request, "index.html")


def static_file(request):
    return static_page(request, request.params["name"])


# The names a static file may have: no separators of any kind, no NUL, no
# leading dot (no '..', no hidden files), and short enough for any file system.
STATIC_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")


def static_page(request, name):
    """A regular file directly inside static/, with the page's security headers; else a 404."""
    path = STATIC_DIR / name
    # The name comes percent-decoded from the network: check its characters
    # first, then where it really leads, since a symlink could point anywhere.
    if not (STATIC_NAME.fullmatch(name) and path.resolve().parent == STATIC_DIR.resolve()
            and path.is_file()):
        raise ApiError(404, "Not found", "No such file")
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type.endswith("javascript"):
        content_type += "; charset=utf-8"
    return Page(content_type, path.read_bytes(), request.app.page_headers)


def page_headers(frame_ancestors):
    """The headers that keep the page from being framed, or its text from leaking (CONTRACT 1.2).

    frame_ancestors: the origins that may show the page in a frame; none by default.
    """
    ancestors = " ".join(frame_ancestors) or "'none'"
    headers = {
        "Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; "
                                   f"img-src 'self' data:; frame-ancestors {ancestors}",
        "Referrer-Policy": "no-referrer",
    }
    if not frame_ancestors:
        headers["X-Frame-Options"] = "DENY"
    return headers


# Whether a route needs a logged-in user. A LOGGED_IN route is called as
# function(request, user) only after the bearer token checked out (and
# request.session is its session); a PUBLIC one as function(request).
# RENEWING is LOGGED_IN for the route that renews tokens, which tells a
# session past its maximum age apart from an expired token.
LOGGED_IN, RENEWING, PUBLIC = "logged in", "renewing", "public"

# (method, path pattern, route function, who may call it); {name} matches
# one path segment. The first row whose pattern and method match wins.
ROUTES = [
    ("POST", "/api/v1/auth/register", register, PUBLIC),
    ("POST", "/api/v1/auth/login", login, PUBLIC),
    ("POST", "/api/v1/auth/refresh", refresh, RENEWING),
    ("POST", "/api/v1/auth/logout", logout, LOGGED_IN),
    ("POST", "/api/v1/auth/password", change_password, LOGGED_IN),
    ("GET", "/api/v1/users/me", current_user, LOGGED_IN),
    ("GET", "/api/v1/users", list_users, LOGGED_IN),
    ("GET", "/api/v1/users/{user_id}", get_user, LOGGED_IN),
    ("POST", "/api/v1/rooms", create_room, LOGGED_IN),
    ("GET", "/api/v1/rooms", list_rooms, PUBLIC),
    ("POST", "/api/v1/rooms/join", join_room, LOGGED_IN),
    ("POST", "/api/v1/rooms/leave", leave_room, LOGGED_IN),
    ("PATCH", "/api/v1/rooms/{room_id}", update_room, LOGGED_IN),
    ("DELETE", "/api/v1/rooms/{room_id}", delete_room, LOGGED_IN),
    ("GET", "/api/v1/rooms/{room_id}/members", room_members, LOGGED_IN),
    ("GET", "/api/v1/messages", list_messages, LOGGED_IN),
    ("POST", "/api/v1/messages", post_message, LOGGED_IN),
    ("GET", "/api/v1/health", health, PUBLIC),
    ("GET", "/api/v1/info", info, PUBLIC),
    ("GET", "/api/v1/echo", echo, PUBLIC),
    ("POST", "/api/v1/echo", echo, PUBLIC),
    ("GET", "/api/v1/protected", protected, LOGGED_IN),
    ("GET", "/api/v1/openapi.json", openapi_document, PUBLIC),
    ("GET", "/", index_page, PUBLIC),
    ("GET", "/static/{name}", static_file, PUBLIC),
]

# Why: most requests name a path with no {placeholder}; one dict look-up
# finds them, instead of trying a regular expression per row.
EXACT_ROUTES = {(method, pattern): (function, access)
                for method, pattern, function, access in ROUTES if "{" not in pattern}

COMPILED_ROUTES = [
    (method, re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)), function, access)
    for method, pattern, function, access in ROUTES
]


def find_route(method, path):
    """(route function, its access, path parameters) for a request, or ApiError 404/405.

    HEAD is served by a path's GET route (the handler drops the body).
    """
    wanted = "GET" if method == "HEAD" else method
    if (wanted, path) in EXACT_ROUTES:
        return (*EXACT_ROUTES[wanted, path], {})
    allowed = []
    for route_method, pattern, function, access in COMPILED_ROUTES:
        match = pattern.fullmatch(path)
        if match and route_method == wanted:
            params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
            return function, access, params
        if match:
            allowed.append(route_method)
    if allowed:
        allowed += ["HEAD", "OPTIONS"] if "GET" in allowed else ["OPTIONS"]
        raise ApiError(405, "Method not allowed", f"{method} is not allowed on {path}",
                       headers={"Allow": ", ".join(allowed)})
    raise ApiError(404, "Not found", f"No such endpoint: {path}")


# What the named exceptions of the layers below mean over HTTP.
HTTP_ERRORS = {
    InvalidToken: (401, "Authentication required", "Invalid or expired token"),
    TooManyLogins: (429, "Too many requests", "Too many failed logins; try again later"),
    TooManyRegistrations: (429, "Too many requests", "Too many registrations; try again later"),
    TooManyRooms: (429, "Too many requests", "Too many rooms created; try again later"),
    WrongPassword: (401, "Invalid credentials", "Current password is incorrect"),
    ClientIdReused: (409, "Conflict", "client_id already used for another message"),
    DatabaseBusy: (503, "Service unavailable", "Database busy"),
    DatabaseReadOnly: (503, "Service unavailable", "Database is read-only"),
    DiskFull: (503, "Service unavailable", "Disk full"),
    DatabaseUnavailable: (503, "Service unavailable", "Database unavailable"),
}


def http_error(exc):
    """The ApiError that tells an HTTP client about one of HTTP_ERRORS."""
    status, message, error = HTTP_ERRORS[type(exc)]
    retry_after = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return ApiError(status, message, error, headers)


# -- HTTP plumbing --------------------------------------------------------------

def http_date(cache=[None, ""]):
    """Now as an HTTP Date header value, formatted once a second.

    Why: formatting it took 7% of a /health request; it changes once a second.
    """
    second = int(time.time())
    if cache[0] != second:  # two threads may both format it: harmless
        cache[:] = [second, email.utils.formatdate(second, usegmt=True)]
    return cache[1]


def error_body(exc):
    """The JSON body of an error envelope for an ApiError."""
    return encode(exc.message, error=exc.error).encode("utf-8")


def response_bytes(status, body, content_type, headers=None, close=False, head_only=False):
    """One whole HTTP/1.1 response: status line, headers, body. CORS always.

    `headers` are added to (or override) the CORS headers.
    """
    lines = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}", "Date: " + http_date()]
    lines += [f"{name}: {value}" for name, value in {**CORS_HEADERS, **(headers or {})}.items()]
    if status != 204:
        lines += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}",
                  "X-Content-Type-Options: nosniff"]
    if close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + body


class MalformedRequest(Exception):
    """A request head that cannot be read one way only; answered, then the connection closed."""

    def __init__(self, status=400, message="Bad request", error="Malformed request"):
        super().__init__(error)
        self.status, self.message, self.error = status, message, error


MAX_LINE = 65536  # as http.server: a longer request or header line is refused
MAX_HEADERS = 100
REQUEST_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([^\x00-\x20\x7f]+) (HTTP/\d\.\d)\r?\n")
HEADER_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\x00\r\n]*?)[ \t]*\r?\n")
SINGLE_HEADERS = ("content-length", "host")  # two of these make a request ambiguous


def read_request_head(request_line, rfile):
    """(method, target, version, {lower-case name: value}) of one request, or MalformedRequest.

    The rules of RFC 9112 that keep two readers of the same bytes from
    disagreeing on where a request ends, strictly: the request line is
    exactly three parts; a header line is a token, a colon with no space
    before it, and a value with no control characters; no folded lines;
    at most one Content-Length, of plain digits, and no Transfer-Encoding
    at all (chunked bodies are not accepted). Another header given twice
    keeps both values, joined by ", ".
    Why a parser of our own: http.server's (the email package's) keeps the
    first of two Content-Lengths and takes a malformed line for the start
    of the body, so a proxy that reads the same bytes otherwise finds a
    second request hidden in the first.
    """
    match = REQUEST_LINE.fullmatch(request_line)
    if not match:
        raise MalformedRequest()
    method, target, version = (part.decode("latin-1") for part in match.groups())
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise MalformedRequest(505, "HTTP version not supported", f"{version} is not supported")
    headers = {}
    for _ in range(MAX_HEADERS + 1):
        line = rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise MalformedRequest(431, "Request header fields too large", "Line too long")
        if line in (b"\r\n", b"\n"):
            break
        match = HEADER_LINE.fullmatch(line)
        if not match:  # no colon, space before it, folded, control bytes, or cut short
            raise MalformedRequest()
        name, value = match[1].decode("latin-1").lower(), match[2].decode("latin-1")
        if name in headers and name in SINGLE_HEADERS:
            raise MalformedRequest()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    else:  # MAX_HEADERS lines, and the head has not ended
        raise MalformedRequest(431, "Request header fields too large", "Too many headers")
    if "transfer-encoding" in headers or not headers.get("content-length", "0").isdigit() \
            or not headers.get("content-length", "0").isascii():
        raise MalformedRequest()
    return method, target, version, headers


class RequestHandler(http.server.BaseHTTPRequestHandler):
    """Reads one request at a time from a keep-alive connection and answers it."""

    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "SwiftChat/" + VERSION
    # Without this, the body's write waits for the client's delayed ACK of
    # the headers' write: ~40 ms a response, about 200 requests/s.
    disable_nagle_algorithm = True
    # Buffer the status line, headers and body, and send them with one
    # write (send_body flushes): one system call per response, not two.
    wbufsize = 64 * 1024
    # No socket timeout: the server's watchdog bounds how long a request may
    # take to arrive and its answer to leave (HTTPServer.watch). Why: with a
    # timeout, Python makes the socket non-blocking and polls before each
    # read and write, a system call and a GIL hand-off more per request
    # (/health: 4,400 -> 5,400 requests/s without it).
    timeout = None

    def handle_one_request(self):
        # A request (head and body) must arrive within --header-timeout of
        # when we start waiting for it, however slowly its bytes trickle in;
        # an idle keep-alive connection is closed after as long.
        self.server.watch(self.connection)
        try:
            super().handle_one_request()
        finally:
            self.server.unwatch(self.connection)

    def finish(self):
        try:
            super().finish()
        except OSError:
            # The buffered answer could not be flushed to a client that
            # reset the connection; close the reading side anyway, or the
            # socket stays open until the garbage collector finds it.
            self.rfile.close()

    def __getattr__(self, name):
        # http.server runs do_<METHOD> and answers 501 when there is none;
        # every method goes to dispatch, which answers 405 or 404 as JSON.
        if name.startswith("do_"):
            return self.dispatch
        raise AttributeError(name)

    def dispatch(self):
        started = time.perf_counter()
        url = urllib.parse.urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        error, headers = None, {}
        try:
            body = self.read_body()  # read even when refusing, to keep the connection in step
            if not self.server.unwatch(self.connection):
                self.close_connection = True  # too late: the watchdog has cut it off
                return
            with self.server.tracking_request():
                status, content_type, body, headers = self.respond(path, url.query, body)
        except ApiError as exc:
            error = exc
        except tuple(HTTP_ERRORS) as exc:
            error = http_error(exc)
        except Exception:
            log.exception("%s %s failed", self.command, path)
            error = ApiError(500, "Internal server error")
        if error is not None:
            status, content_type, headers = error.status, JSON_TYPE, error.headers
            body = error_body(error)
        # Logged before the write, so the record exists by the time the
        # client has its answer; the duration is the server's own work.
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.info("%s %s %s %d %.1fms", self.client_ip, self.command, path, status, elapsed_ms)
        self.send_body(status, body, content_type, headers)

    @property
    def client_ip(self):
        """The client's address: the peer's, or the one a trusted proxy forwarded for."""
        return protocol.client_address(self.client_address[0], self.headers.get("x-forwarded-for"),
                                       self.server.app.trusted_proxies)

    def respond(self, path, query_string, body):
        if self.command == "OPTIONS":  # CORS preflight: the headers are the answer
            return 204, None, b"", None
        function, access, params = find_route(self.command, path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(query_string, keep_blank_values=True).items()}
        request = Request(self.server.app, self.command, path, query, self.headers, body, params,
                          self.client_ip)
        if access == PUBLIC:
            result = function(request)
        else:
            request.session = request.bearer_session(renewing=access == RENEWING)
            result = function(request, request.session.user)
        if isinstance(result, Page):
            return 200, result.content_type, result.body, result.headers
        status, message, data = result
        return status, JSON_TYPE, encode(message, data).encode("utf-8"), None

    def parse_request(self):
        """Read the request line and headers strictly; False after answering a bad one.

        Replaces http.server's parsing, which keeps the first of two
        Content-Length headers and takes a malformed header line for the
        start of the body: a proxy in front that reads the same bytes
        differently would see a second request hidden in the first
        ("request smuggling"). See read_request_head for the rules.
        """
        self.command, self.request_version, self.headers = None, "HTTP/0.9", {}
        self.close_connection = True  # until the request proves it may stay open
        self.requestline = str(self.raw_requestline, "latin-1").rstrip("\r\n")
        try:
            self.command, self.path, self.request_version, self.headers = read_request_head(
                self.raw_requestline, self.rfile)
        except MalformedRequest as exc:
            self.send_error(exc.status, exc.message, exc.error)
            return False
        if self.path.startswith("//"):  # as http.server: not an absolute URL to a browser
            self.path = "/" + self.path.lstrip("/")
        connection = self.headers.get("connection", "").lower()
        self.close_connection = connection == "close" or (
            self.request_version == "HTTP/1.0" and connection != "keep-alive")
        if self.headers.get("expect", "").lower() == "100-continue" \
                and self.request_version == "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def read_body(self):
        length = self.headers.get("content-length", "0")  # plain digits: read_request_head
        if len(length) > 18 or int(length) > MAX_BODY:  # int() of 5,000 digits is refused
            self.close_connection = True
            raise ApiError(413, "Payload too large", f"Request body exceeds {MAX_BODY} bytes")
        try:
            body = self.rfile.read(int(length))
        except (TimeoutError, ConnectionError):
            body = b""
        if len(body) < int(length):
            self.close_connection = True
            raise bad_request("Request body is shorter than its Content-Length")
        return body

    def send_body(self, status, body, content_type, headers=None):
        """The one place an HTTP response is written: status, headers, body.

        A HEAD request gets the headers a GET would, with no body.
        """
        headers = dict(headers or {})
        if self.preflight_method() == "PATCH":
            # The document's list leaves out PATCH, which PATCH /rooms/{id}
            # needs; a browser that asks before sending one is told it may.
            headers["Access-Control-Allow-Methods"] = (
                CORS_HEADERS["Access-Control-Allow-Methods"] + ", PATCH")
        if self.server.stopping:  # don't keep a connection open into a shutdown
            self.close_connection = True
        self.server.watch(self.connection)  # a client that never reads is cut off too
        try:
            self.wfile.write(response_bytes(status, body, content_type, headers,
                                            self.close_connection, head_only=self.command == "HEAD"))
            self.wfile.flush()
        finally:
            self.server.unwatch(self.connection)

    def preflight_method(self):
        """The method a CORS preflight (OPTIONS) asks about, or None."""
        if self.command != "OPTIONS":
            return None
        return self.headers.get("access-control-request-method", "").strip().upper()

    def send_error(self, code, message=None, explain=None):
        """http.server's own errors (a bad request line, headers too long), as JSON."""
        self.close_connection = True
        text = message or http.HTTPStatus(code).phrase
        self.send_body(code, error_body(ApiError(code, text, explain)), JSON_TYPE)

    def log_message(self, format, *args):
        log.debug("%s " + format, self.address_string(), *args)


class HTTPServer(http.server.ThreadingHTTPServer):
    """A ThreadingHTTPServer that knows its SwiftChat and bounds what clients may hold.

    It counts requests in flight (so stop() can wait for them), caps the
    connections served at once, and cuts off a connection whose request
    does not arrive within header_timeout.
    """

    daemon_threads = True  # idle keep-alive connections must not block shutdown
    # socketserver's default listen backlog is 5: a burst of new connections
    # beyond that waits a second or more for TCP to retry.
    request_queue_size = 128

    def __init__(self, address, app, header_timeout=10.0, max_connections=1000):
        self.app = app
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.stopping = False
        self._in_flight = 0
        self._connections = 0
        self._idle = threading.Condition()
        self._deadlines = {}  # socket -> when its request must have arrived
        if ":" in address[0]:  # "::" or another IPv6 address
            self.address_family = socket.AF_INET6
        super().__init__(address, RequestHandler)

    def get_request(self):
        try:
            return super().get_request()
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                self.app.out_of_files()
                # The connection waits in the backlog; without a pause the
                # listening socket stays readable and this thread spins.
                time.sleep(0.1)
            raise  # socketserver drops the attempt and goes on

    # -- at most max_connections at once ---------------------------------

    def process_request(self, request, client_address):
        with self._idle:
            full = self._connections >= self.max_connections
            if not full:
                self._connections += 1
        if full:  # answered here, on the accepting thread, without a thread of its own
            busy = error_body(ApiError(503, "Service unavailable", "Server busy"))
            with contextlib.suppress(OSError):
                request.send(response_bytes(503, busy, JSON_TYPE, close=True))
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._idle:
                self._connections -= 1
                self._idle.notify_all()

    def wait_for_connections(self, at_most, timeout):
        """Wait until at most `at_most` connections are open; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._connections <= at_most, timeout)

    # -- a deadline for each request's arrival ---------------------------

    def watch(self, connection):
        with self._idle:
            self._deadlines[connection] = time.monotonic() + self.header_timeout

    def unwatch(self, connection):
        """Stop watching; False when the deadline had passed already."""
        with self._idle:
            return self._deadlines.pop(connection, None) is not None

    def service_actions(self):
        # serve_forever calls this between polls of the listening socket.
        now = time.monotonic()
        with self._idle:
            late = [sock for sock, deadline in self._deadlines.items() if deadline < now]
            for sock in late:
                del self._deadlines[sock]
        for sock in late:  # the handler's read then ends, and its thread with it
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def server_bind(self):
        if self.address_family == socket.AF_INET6:  # "::" takes IPv4 too, where the system maps it
            with contextlib.suppress(OSError):
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        # HTTPServer.server_bind also looks up the host's DNS name, which
        # nothing here uses and which can hang on a machine without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    @contextlib.contextmanager
    def tracking_request(self):
        with self._idle:
            if self.stopping:
                raise ApiError(503, "Service unavailable", "The server is shutting down")
            self._in_flight += 1
        try:
            yield
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def finish_requests(self, timeout):
        """Refuse new requests and wait for those in flight to finish."""
        with self._idle:
            self.stopping = True
            self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # the client hung up or went quiet: nothing to report
        log.exception("error on a connection from %s", client_address[0])


# -- the whole server -----------------------------------------------------------

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
    except OSError:
        try:
            fd = os.open(db, os.O_RDONLY)  # a read-only database is still served (reads)
        except OSError as exc:
            raise StartupError(f"cannot open the database {db}: {exc.strerror}") from None
    hold = os.fdopen(fd, "rb")
    try:
        fcntl.flock(hold, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        hold.close()
        raise StartupError(f"the database {db} is in use by another SwiftChat server") from None
    return hold


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


def fit_under_file_limit(max_ws_connections, max_connections):
    """Raise this process's soft file limit to its hard one; return a WebSocket cap that fits.

    Each connection is a file descriptor. Past the limit, accepting fails
    for everyone, the database's files included; so the cap on WebSocket
    connections leaves room for the HTTP connections and 100 more.
    """
    if resource is None:
        return max_ws_connections
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return max_ws_connections
    fits = max(1, soft - max_connections - 100)
    if max_ws_connections > fits:  # 0, no cap, is taken at its word
        log.warning("at most %d WebSocket connections at once: the process may open %d files, "
                    "%d of them for HTTP connections and 100 for the rest", fits, soft,
                    max_connections)
        return fits
    return max_ws_connections


class SwiftChat:
    """Both halves of SwiftChat over one store, started and stopped together.

    Attributes for embedders and tests: http_port, ws_port (the real ports,
    also when 0 was asked for), store, accounts, hub. Use as a context
    manager, or call stop(). The options are serve()'s.
    """

    def __init__(self, host="127.0.0.1", http_port=8080, ws_port=8081, db="swiftchat.db",
                 jwt_secret=None, pbkdf2_iterations=DEFAULT_ITERATIONS, auth_timeout=30.0,
                 login_attempts=5, registrations_per_minute=30, ws_rate=20,
                 header_timeout=10.0, max_connections=1000, clock=time.monotonic,
                 session_days=DEFAULT_SESSION_DAYS, rooms_per_hour=20, trusted_proxy="",
                 max_ws_connections=10_000, max_ws_unauthenticated=20, frame_ancestors=()):
        self.trusted_proxies = protocol.trusted_proxies(trusted_proxy)
        self._hold = hold_database(db)
        try:
            self.store = Store(db)
        except (StoreError, OSError) as exc:
            self._hold.close()
            raise StartupError(f"cannot open the database {db}: {exc}") from None
        secret = jwt_secret or self.store.setting("jwt_secret", lambda: secrets.token_hex(32))
        self.accounts = Accounts(self.store, secret, pbkdf2_iterations, login_attempts,
                                 registrations_per_minute, clock, session_days, rooms_per_hour)
        self.page_headers = page_headers(frame_ancestors)
        max_ws_connections = fit_under_file_limit(max_ws_connections, max_connections)
        self.out_of_files = OncePer(10, "out of file descriptors: new connections wait")
        self.hub = ChatHub(self.store, self.accounts, auth_timeout, ws_rate, clock,
                           self.trusted_proxies, max_ws_unauthenticated)
        self.openapi_json = json.dumps(openapi.document(VERSION), indent=1).encode("utf-8")
        self.encoded_pages = EncodedPages()
        self.started_at = time.monotonic()
        try:
            self.http = HTTPServer((host, http_port), self, header_timeout, max_connections)
        except OSError as exc:
            self._close_store()
            raise StartupError(f"cannot listen on {host}:{http_port}: {exc.strerror}") from None
        self.websocket = WebSocketServer(self.hub, host, ws_port, max_ws_connections,
                                         self.out_of_files)
        try:
            self.websocket.start()
        except OSError as exc:
            self.http.server_close()
            self._close_store()
            raise StartupError(f"cannot listen on {host}:{ws_port}: {exc.strerror}") from None
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

    def post_message(self, room_id, user_id, content, client_id=None):
        """Store a message as user_id and tell the room; return it as POST /messages does.

        For embedding programs, from any thread but the event loop's. Raises
        LookupError for an unknown room or user, ApiError(400) for content
        the API would refuse, and the store's errors (DatabaseBusy, ...).
        """
        user = self.store.user(user_id)
        if user is None or self.store.room(room_id) is None:
            raise LookupError(f"no room {room_id!r} or no user {user_id!r}")
        content = protocol.content({"content": content})
        client_id = protocol.client_id({"client_id": client_id})
        return self.websocket.call(self.hub.post, user, room_id, content, client_id)

    def on_message(self, callback):
        """Call callback(message) after each stored message, from REST, WebSocket or post_message.

        message is a dict as POST /messages returns it. Callbacks run one at
        a time on a thread of their own, never on the event loop; one that
        raises is logged and chat goes on.
        """
        self.hub.on_message(callback)

    def stop(self, timeout=5):
        """Stop accepting, finish requests, close WebSocket clients with 1001, close the store."""
        if self.http.stopping:  # stopped already
            return
        self.http.shutdown()
        self.http.server_close()
        self.http.finish_requests(timeout)
        self.websocket.stop()
        self.hub.close()
        self._close_store()

    def _close_store(self):
        self.store.close()
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
          frame_ancestors=()):
    """Start SwiftChat in background threads and return the running SwiftChat.

        with swiftchat.serve(http_port=0, ws_port=0, db=":memory:") as server:
            print(server.http_port, server.ws_port)
            server.on_message(print)

    The options are the command line's (see --help), with Python values:
    port 0 picks a free one, db=":memory:" keeps nothing, a limit of 0 turns
    it off, trusted_proxy is one string ("10.0.0.1,10.0.0.2") and
    frame_ancestors a list of origins; clock is a time.monotonic stand-in
    for tests of the throttles.
    """
    return SwiftChat(host, http_port, ws_port, db, jwt_secret, pbkdf2_iterations, auth_timeout,
                     login_attempts, registrations_per_minute, ws_rate, header_timeout,
                     max_connections, clock, session_days, rooms_per_hour, trusted_proxy,
                     max_ws_connections, max_ws_unauthenticated, frame_ancestors)


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


def parse_args(argv=None, environ=os.environ):
    """Options from the command line; each falls back to SWIFTCHAT_<NAME>, then its default."""
    parser = argparse.ArgumentParser(
        prog="swiftchat.py",
        description="SwiftChat: REST chat API over HTTP and real-time chat over WebSocket.",
        epilog="Every option can also be set as an environment variable, e.g. "
               "SWIFTCHAT_HTTP_PORT=9000; a flag wins over the variable.")
    parser.add_argument("--version", action="version", version=f"SwiftChat {VERSION}")

    def option(flag, default, help, type=str):
        env_name = "SWIFTCHAT_" + flag.lstrip("-").replace("-", "_").upper()
        parser.add_argument(flag, type=type, default=environ.get(env_name, default),
                            help=f"{help} [env {env_name}]")

    option("--host", "127.0.0.1", "address to listen on (default 127.0.0.1)")
    option("--http-port", "8080", "REST port; 0 picks a free one (default 8080)", port_number)
    option("--ws-port", "8081", "WebSocket port; 0 picks a free one (default 8081)", port_number)
    option("--db", "swiftchat.db", "SQLite database file, or :memory: (default swiftchat.db)")
    option("--jwt-secret", environ.get("JWT_SECRET"),
           "secret that signs tokens (also read from JWT_SECRET); "
           "by default one is generated and kept in the database")
    option("--log-level", "INFO", "DEBUG, INFO, WARNING or ERROR (default INFO)", log_level)
    option("--auth-timeout", "30", "seconds a WebSocket client has to authenticate (default 30)",
           positive_seconds)
    option("--pbkdf2-iterations", str(DEFAULT_ITERATIONS),
           f"PBKDF2 rounds per password hash (default {DEFAULT_ITERATIONS}); "
           "lower only for tests", positive_int)
    option("--login-attempts", "5",
           "failed logins per username from one address in 15 minutes before that pair "
           "must wait; an address may fail 6x as often, a username from all addresses "
           "20x (default 5; 0 = no limit)", limit)
    option("--registrations-per-minute", "30",
           "registrations per client address per minute (default 30; 0 = no limit)", limit)
    option("--ws-rate", "20",
           "WebSocket frames per second per connection, bursts of twice that "
           "(default 20; 0 = no limit)", limit)
    option("--header-timeout", "10",
           "seconds a client has to send a whole request (default 10)", positive_seconds)
    option("--max-connections", "1000",
           "HTTP connections served at once; more get 503 (default 1000)", positive_int)
    option("--session-days", str(DEFAULT_SESSION_DAYS),
           f"days a login session lasts at most (default {DEFAULT_SESSION_DAYS})", positive_int)
    option("--rooms-per-hour", "20", "rooms one user may create per hour (default 20; 0 = no limit)",
           limit)
    option("--trusted-proxy", "",
           "ADDR[,ADDR...]: reverse proxies whose X-Forwarded-For names the client "
           "(addresses or networks; default none)", proxy_list)
    option("--max-ws-connections", "10000",
           "WebSocket connections at once, lowered to fit the file limit "
           "(default 10000; 0 = no limit)", limit)
    option("--max-ws-unauthenticated", "20",
           "WebSocket connections per client address that have not authenticated yet "
           "(default 20; 0 = no limit)", limit)
    env_ancestors = environ.get("SWIFTCHAT_FRAME_ANCESTORS", "").split()
    parser.add_argument("--frame-ancestors", nargs="+", metavar="ORIGIN", default=env_ancestors,
                        help="origins that may show the page in a frame (default: none) "
                             "[env SWIFTCHAT_FRAME_ANCESTORS, space-separated]")
    return parser.parse_args(argv)


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
    to_stderr.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[to_stderr])
    logging.getLogger("websockets").setLevel(logging.WARNING)
    return to_stderr


def main(argv=None):
    args = parse_args(argv)
    log_handler = log_to_stderr(args.log_level)
    host = f"[{args.host}]" if ":" in args.host else args.host
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
    print(f"SwiftChat: REST on http://{host}:{server.http_port}, "
          f"WebSocket on ws://{host}:{server.ws_port}", flush=True)
    stop_requested.wait()
    log.info("stopping")
    server.stop()
    log_handler.close()  # writes out what is still gathered
    return 0


if __name__ == "__main__":
    sys.exit(main())
