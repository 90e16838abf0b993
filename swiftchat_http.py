"""SwiftChat's HTTP server: from the socket to a route and back.

``HTTPServer`` is a ``ThreadingHTTPServer``: each connection gets a worker
thread, which reads one request at a time with ``RequestHandler``. A
request travels: ``read_request_head`` (strict framing) ->
``RequestHandler.dispatch`` -> ``find_route`` (the ROUTES table of
swiftchat_routes.py) -> the bearer token is checked if the route's row
says so -> the route function -> ``send_body``, the one place a response
is written: a whole body, or a ``Download``'s chunks as they are made
(chunked, each within the watchdog's time). Only ``dispatch`` turns
exceptions into error envelopes:
ApiError carries its own status and texts, and ``HTTP_ERRORS`` says what
each named exception of the layers below means over HTTP (``send_error``
does the same for requests refused before dispatch).

The server also bounds what a client may hold: requests in flight (so
stop() can wait for them), connections at once, and how long a request
may take to arrive or its answer to leave (a watchdog on the serving
thread). It knows nothing of WebSocket or the chat core.
"""

import collections
import contextlib
import email.utils
import errno
import http
import http.server
import logging
import re
import socket
import socketserver
import sys
import threading
import time
import urllib.parse

import protocol
from accounts import (AccountDisabled, InvalidToken, PasswordChangeRequired, TooManyLogins,
                      TooManyRegistrations, TooManyRooms, TooManyUploads, TooManyWrites,
                      WrongPassword)
from protocol import ApiError, bad_request, encode
from store import (AuthorDisabled, Banned, Blocked, ClientIdReused, DatabaseBusy, DatabaseReadOnly,
                   DatabaseUnavailable, DiskFull, InvalidAttachment, InvalidReply, LastAdmin, Muted,
                   NameTaken, OnlyModeratorsPost, QuotaExceeded, SearchTooLong, SlowMode, TooManyPins,
                   TooManyReactions)
from swiftchat_core import (CannotChangeMessage, CannotChangeReport, CannotPin, DirectMessagesOff,
                            DirectWithOneself, MemberNotFound, MessageNotFound, NotAMember,
                            NotInCharge, NotInDirectRoom, NotJoined, OnlyAdminsCreateRooms,
                            ReportNotFound, RoomNotFound, UserNotFound)
from swiftchat_routes import (ADMIN, JSON_TYPE, OWN_ACCOUNT, PUBLIC, RENEWING, ROUTES, SLOW_READS,
                              STREAMED_BODIES, WRITE, Download, FileAnswer, FileChunks, Page,
                              Request)

__all__ = ["HTTPServer", "RequestHandler", "Turns", "find_route", "read_request_head", "HTTP_ERRORS",
           "MAX_BODY"]

MAX_BODY = 64 * 1024
CORS_HEADERS = {  # exactly as the API document lists them
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, X-Requested-With",
}

log = logging.getLogger("swiftchat")


# Why: most requests name a path with no {placeholder}; one dict look-up
# finds them, instead of trying a regular expression per row.
EXACT_ROUTES = {(method, pattern): (function, access)
                for method, pattern, function, access in ROUTES if "{" not in pattern}

COMPILED_ROUTES = [
    (method, re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)), function, access)
    for method, pattern, function, access in ROUTES
]


def path_segment(raw):
    """A path parameter, percent-decoded as UTF-8; as it came if it does not decode.

    (Not decoded with replacement characters: U+FFFD is a symbol, so a
    broken emoji in DELETE .../reactions/{emoji} would read as a real one.)
    """
    try:
        return urllib.parse.unquote(raw, errors="strict")
    except UnicodeDecodeError:
        return raw


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
            params = {k: path_segment(v) for k, v in match.groupdict().items()}
            return function, access, params
        if match:
            allowed.append(route_method)
    if allowed:
        allowed += ["HEAD", "OPTIONS"] if "GET" in allowed else ["OPTIONS"]
        raise ApiError(405, "Method not allowed", f"{method} is not allowed on {path}",
                       headers={"Allow": ", ".join(allowed)})
    raise ApiError(404, "Not found", f"No such endpoint: {path}")


# What the named exceptions of the layers below mean over HTTP. An error text
# may name an attribute of the exception in braces ({verb}).
HTTP_ERRORS = {
    InvalidToken: (401, "Authentication required", "Invalid or expired token"),
    TooManyLogins: (429, "Too many requests", "Too many failed logins; try again later"),
    TooManyRegistrations: (429, "Too many requests", "Too many registrations; try again later"),
    TooManyRooms: (429, "Too many requests", "Too many rooms created; try again later"),
    TooManyWrites: (429, "Too many requests", "Rate limit exceeded"),
    WrongPassword: (401, "Invalid credentials", "Current password is incorrect"),
    ClientIdReused: (409, "Conflict", "client_id already used for another message"),
    AccountDisabled: (403, "Forbidden", "Account disabled"),
    AuthorDisabled: (403, "Forbidden", "Account disabled"),
    LastAdmin: (400, "Request failed", "At least one admin must remain"),
    SearchTooLong: (400, "Request failed", "Query matches too much: use more or longer words"),
    Banned: (403, "Forbidden", "You are banned from this room"),
    Blocked: (403, "Forbidden", "You cannot do this to this user"),
    UserNotFound: (404, "User not found", "User not found"),
    ReportNotFound: (404, "Report not found", "Report not found"),
    CannotChangeReport: (403, "Forbidden", "You cannot change this report"),
    MessageNotFound: (404, "Message not found", "Message not found"),
    RoomNotFound: (404, "Room not found", "Room not found"),
    CannotChangeMessage: (403, "Forbidden", "You cannot change this message"),
    NotAMember: (403, "Forbidden", "You are not a member of this room"),
    NotJoined: (400, "Request failed", "You are not a member of this room"),
    NotInCharge: (403, "Forbidden", "Only {who} can {verb} this room"),
    CannotPin: (403, "Forbidden", "Only moderators can pin messages in this room"),
    NotInDirectRoom: (403, "Forbidden", "Not allowed in a direct room"),
    DirectWithOneself: (400, "Request failed", "A direct room needs another user"),
    PasswordChangeRequired: (403, "Forbidden", "Password change required"),
    OnlyModeratorsPost: (403, "Forbidden", "Only moderators can post in this room"),
    Muted: (403, "Forbidden", "You are muted in this room"),
    SlowMode: (429, "Too many requests", "Slow mode is on"),
    OnlyAdminsCreateRooms: (403, "Forbidden", "Only admins can create rooms"),
    DirectMessagesOff: (403, "Forbidden", "Direct messages are turned off"),
    MemberNotFound: (404, "Member not found", "Member not found"),
    InvalidAttachment: (400, "Request failed", "Invalid attachment"),
    InvalidReply: (400, "Request failed", "Invalid reply"),
    TooManyReactions: (400, "Request failed", "Too many reactions"),
    TooManyPins: (400, "Request failed", "Too many pins"),
    NameTaken: (400, "Request failed", "display_name is another user's username"),
    QuotaExceeded: (413, "Payload too large", "Upload quota exceeded"),
    TooManyUploads: (429, "Too many requests", "Too many uploads at once"),
    DatabaseBusy: (503, "Service unavailable", "Database busy"),
    DatabaseReadOnly: (503, "Service unavailable", "Database is read-only"),
    DiskFull: (503, "Service unavailable", "Disk full"),
    DatabaseUnavailable: (503, "Service unavailable", "Database unavailable"),
}


def http_error(exc):
    """The ApiError that tells an HTTP client about one of HTTP_ERRORS."""
    status, message, error = HTTP_ERRORS[type(exc)]
    error = error.format_map(vars(exc))
    retry_after = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return ApiError(status, message, error, headers)


# -- HTTP plumbing --------------------------------------------------------------

class DateHeader:
    """Now as an HTTP Date header value, formatted once a second.

    Why: formatting it took 7% of a /health request; it changes once a
    second. Two threads may both format it in the same second: harmless.
    """

    def __init__(self):
        self._second, self._text = None, ""

    def __call__(self):
        second = int(time.time())
        if self._second != second:
            self._text = email.utils.formatdate(second, usegmt=True)
            self._second = second  # after the text: a reader never pairs this second with the last text
        return self._text


http_date = DateHeader()


def error_body(exc):
    """The JSON body of an error envelope for an ApiError."""
    return encode(exc.message, error=exc.error).encode("utf-8")


def response_bytes(status, body, content_type, headers=None, close=False, head_only=False):
    """One whole HTTP/1.1 response: status line, headers, body. CORS always.

    `headers` are added to (or override) the CORS headers.
    """
    head = response_head(status, content_type, headers, close, len(body))
    return head if head_only else head + body


def response_head(status, content_type, headers=None, close=False, length=None):
    """The status line and headers of an HTTP/1.1 response, and the empty line after them.

    length: the body's Content-Length, or None for a body sent as it is
    made, whose end the caller's headers (Transfer-Encoding: chunked) or
    the connection's close marks.
    """
    lines = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}", "Date: " + http_date()]
    lines += [f"{name}: {value}" for name, value in {**CORS_HEADERS, **(headers or {})}.items()]
    if status != 204:
        lines += [f"Content-Type: {content_type}", "X-Content-Type-Options: nosniff"]
        if length is not None:
            lines.append(f"Content-Length: {length}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def attachment(filename):
    """A Content-Disposition value that has a browser save the body as filename (RFC 6266).

    filename* is the exact name, UTF-8 and percent-encoded (RFC 8187), which
    browsers prefer; filename an ASCII stand-in for clients that know only
    that, with every character outside printable ASCII, and " \\ %, made
    "_": none can end the quoted text early, break the header's line, or be
    read as an escape.
    """
    fallback = "".join(char if " " <= char <= "~" and char not in '"\\%' else "_"
                       for char in filename)
    exact = urllib.parse.quote(filename, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}"


class Turns:
    """At most `width` threads at once inside, the others let in first come, first served.

    Why: request threads take turns with the GIL, and CPython hands it
    over in no particular order: at 50 connections, a request that lost
    the hand-over could lose it again and again. GET /messages at 50
    connections had a p99 of 130-290 ms against the bare server's 50-60;
    with reads taking turns two at a time it is 35-42 ms (and 1,300-1,500
    -> 1,950 requests/s), the bare server's /health or better. Two, not
    one: while one waits on SQLite without the GIL, the other runs.

    A thread leaving hands its place straight to the longest waiting one,
    so a thread arriving meanwhile cannot jump the queue. Uses only
    threading.Lock.
    """

    def __init__(self, width=2):
        self._lock = threading.Lock()
        self._free = width
        self._waiting = collections.deque()  # a locked Lock per waiting thread, oldest first

    def __enter__(self):
        with self._lock:
            if self._free:
                self._free -= 1
                return self
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
        turn.acquire()  # until a leaving thread releases it: our place is then handed to us
        return self

    def __exit__(self, *exc_info):
        with self._lock:
            if self._waiting:
                self._waiting.popleft().release()
            else:
                self._free += 1


class MalformedRequest(Exception):
    """A request head that cannot be read one way only; answered, then the connection closed."""

    def __init__(self, status=400, message="Bad request", error="Malformed request"):
        super().__init__(error)
        self.status, self.message, self.error = status, message, error


MAX_HEAD = 64 * 1024  # request line, header lines and the empty line that ends them (CONTRACT 1.3)
MAX_HEADERS = 100
# The target is printable ASCII (RFC 3986; anything else is percent-encoded),
# so no control byte reaches the log or an error text. No two parts of this
# pattern can take the same byte (a space ends each), so a line that fails
# fails in one pass: the time is linear in its length.
REQUEST_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([\x21-\x7e]+) (HTTP/\d\.\d)\r?\n")
TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # a header name (RFC 9110, 5.6.2)
SINGLE_HEADERS = ("content-length", "host")  # two of these make a request ambiguous
HEAD_TOO_LARGE = (431, "Request header fields too large", "Request head too large")


def read_request_head(request_line, rfile):
    """(method, target, version, {lower-case name: value}) of one request, or MalformedRequest.

    The rules of RFC 9112 that keep two readers of the same bytes from
    disagreeing on where a request ends, strictly: the request line is
    exactly three parts; a header line is a token, a colon with no space
    before it, and a value with no NUL or CR; no folded lines; at most one
    Content-Length, of plain digits, and no Transfer-Encoding at all
    (chunked bodies are not accepted). Another header given twice keeps
    both values, joined by ", ". The whole head, from the request line to
    the empty line that ends it, is at most MAX_HEAD bytes (431 beyond),
    and at most MAX_HEADERS header lines.
    Why a parser of our own: http.server's (the email package's) keeps the
    first of two Content-Lengths and takes a malformed line for the start
    of the body, so a proxy that reads the same bytes otherwise finds a
    second request hidden in the first.
    """
    method, target, version = parse_request_line(request_line)
    headers = {}
    room = MAX_HEAD - len(request_line)  # http.server read the request line, up to 65,536 bytes
    for _ in range(MAX_HEADERS + 1):
        line = rfile.readline(room + 1)
        room -= len(line)
        if room < 0:
            raise MalformedRequest(*HEAD_TOO_LARGE)
        if line in (b"\r\n", b"\n"):
            break
        name, value = parse_header_line(line)
        if name in headers and name in SINGLE_HEADERS:
            raise MalformedRequest()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    else:  # MAX_HEADERS lines, and the head has not ended
        raise MalformedRequest(431, "Request header fields too large", "Too many headers")
    if "transfer-encoding" in headers or not headers.get("content-length", "0").isdigit() \
            or not headers.get("content-length", "0").isascii() \
            or (version == "HTTP/1.1" and "host" not in headers):  # RFC 9112, 3.2
        raise MalformedRequest()
    return method, target, version, headers


def parse_request_line(line):
    """(method, target, version) of a request line, or MalformedRequest (505 for another version)."""
    match = REQUEST_LINE.fullmatch(line)
    if not match:
        raise MalformedRequest()
    method, target, version = (part.decode("latin-1") for part in match.groups())
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise MalformedRequest(505, "HTTP version not supported", f"{version} is not supported")
    return method, target, version


def parse_header_line(line):
    """(lower-case name, value) of one header line, or MalformedRequest.

    Why not one regular expression: the pattern this replaced (a lazy value
    between two runs of optional blanks) tried every way of sharing a run
    of blanks among its three parts before it gave up, and a value of 20 KB
    of spaces followed by a NUL kept the server (and, through the GIL, every
    thread of it) for 5 seconds. partition, strip and `in` each take one
    pass over the line.
    """
    if not line.endswith(b"\n"):  # cut short: the client closed in the middle of the line
        raise MalformedRequest()
    name, colon, value = line.removesuffix(b"\n").removesuffix(b"\r").partition(b":")
    # A space or tab before the colon, or one opening the line (a folded
    # line), is not part of a token; nor is anything else before a colon.
    if not colon or not TOKEN.fullmatch(name):
        raise MalformedRequest()
    value = value.strip(b" \t")
    if b"\x00" in value or b"\r" in value:  # RFC 9110, 5.5 (a LF would have ended the line)
        raise MalformedRequest()
    return name.decode("latin-1").lower(), value.decode("latin-1")


class RequestHandler(http.server.BaseHTTPRequestHandler):
    """Reads one request at a time from a keep-alive connection and answers it."""

    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "SwiftChat/" + protocol.VERSION
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
        self.body_left = 0  # bytes of a streamed body (an upload) its route has yet to read
        # In flight from when the request is let in until its answer is
        # written: a Download's body is read from the store as it is sent,
        # and stop() must not close the store under it.
        with contextlib.ExitStack() as in_flight:
            try:
                # Read even when refusing, to keep the connection in step; an
                # upload's body is read by its route, a part at a time.
                if self.command == "POST" and path in STREAMED_BODIES:
                    body, self.body_left = b"", self.streamed_body_length()
                else:
                    body = self.read_body()
                if not self.server.unwatch(self.connection):
                    self.close_connection = True  # too late: the watchdog has cut it off
                    return
                in_flight.enter_context(self.server.tracking_request())
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
            if self.body_left:  # a streamed body not read to its end: the rest is no request
                self.close_connection = True
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
        if self.command in ("GET", "HEAD") and path not in SLOW_READS:
            # Reads take turns (Turns says why). A write does not: it may wait
            # on the database, the event loop or a password's hash, and the
            # reads queued behind it would wait too. A Download (an export)
            # holds its turn only while its route runs: its body is read
            # after, as send_body writes it, for as long as the client takes,
            # and two slow exports must not keep every other read waiting.
            with self.server.read_turns:
                return self.route(path, query_string, body)
        return self.route(path, query_string, body)

    def route(self, path, query_string, body):
        """Find the route, check its access, run it: (status, content type, body, headers)."""
        function, access, params = find_route(self.command, path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(query_string, keep_blank_values=True).items()}
        request = Request(self.server.app, self.command, path, query, self.headers, body, params,
                          self.client_ip)
        if self.command == "POST" and path in STREAMED_BODIES:
            request.body_length, request.read_body_part = self.body_left, self.read_body_part
        if access == PUBLIC:
            result = function(request)
        else:
            request.session = request.bearer_session(renewing=access == RENEWING)
            if request.session.user["must_change_password"] and access not in (OWN_ACCOUNT,
                                                                               RENEWING):
                raise PasswordChangeRequired()
            if access == ADMIN and request.session.user["role"] != "admin":
                raise ApiError(403, "Forbidden", "Admin only")
            if access == WRITE:
                request.app.accounts.rest_write(request.session.user["id"])
            result = function(request, request.session.user)
        if isinstance(result, Page):
            return 200, result.content_type, result.body, result.headers
        if isinstance(result, FileAnswer):
            headers = dict(result.headers)
            if result.download_as is not None:
                headers["Content-Disposition"] = attachment(result.download_as)
            return result.status, result.content_type, result.chunks, headers
        if isinstance(result, Download):  # private data, saved as a file: kept by no cache
            return 200, result.content_type, result.chunks, {
                "Content-Disposition": attachment(result.filename), "Cache-Control": "no-store"}
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

    def handle_expect_100(self):
        # http.server's writes "100 Continue" into our write buffer, where it
        # would wait for the whole answer: send it now, as the client waits.
        answered = super().handle_expect_100()
        self.wfile.flush()
        return answered

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

    def streamed_body_length(self):
        """The Content-Length of a body its route reads itself (checked as read_body checks it)."""
        length = self.headers.get("content-length", "0")  # plain digits: read_request_head
        if len(length) > 18:  # int() of 5,000 digits is refused, and no file is that large
            self.close_connection = True
            raise ApiError(413, "Payload too large", "File too large")
        return int(length)

    def read_body_part(self, size):
        """At most size bytes of the request's body, as they arrive (b"" at its end).

        For a body its route reads itself (STREAMED_BODIES: an upload). A
        read that brings no byte for app.body_idle seconds is cut off by the
        watchdog (CONTRACT 1.3): a body that never finishes holds no thread
        for ever, however slowly it trickles before that.
        """
        self.server.watch(self.connection, self.server.app.body_idle)
        try:
            part = self.rfile.read1(min(size, self.body_left))
        except (TimeoutError, ConnectionError):
            part = b""
        finally:
            self.server.unwatch(self.connection)
        self.body_left -= len(part)
        return part

    def send_body(self, status, body, content_type, headers=None):
        """The one place an HTTP response is written: status, headers, body.

        body is bytes, or an iterator of bytes (a Download's chunks) sent as
        they come: chunked on HTTP/1.1; on HTTP/1.0, which has no chunks,
        without a length, and the connection's close ends it. A HEAD request
        gets the headers a GET would, with no body (and no chunk is made).
        """
        headers = dict(headers or {})
        if self.preflight_method() == "PATCH":
            # The document's list leaves out PATCH, which PATCH /rooms/{id}
            # needs; a browser that asks before sending one is told it may.
            headers["Access-Control-Allow-Methods"] = (
                CORS_HEADERS["Access-Control-Allow-Methods"] + ", PATCH")
        if self.server.stopping:  # don't keep a connection open into a shutdown
            self.close_connection = True
        streamed = not isinstance(body, bytes)
        length = getattr(body, "length", None)  # a file's chunks know their total
        chunked = streamed and length is None and self.request_version != "HTTP/1.0"
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
        elif streamed and length is None:
            self.close_connection = True
        head = response_head(status, content_type, headers, self.close_connection,
                             length if streamed else len(body))
        self.server.watch(self.connection)  # a client that never reads is cut off too
        try:
            if self.command == "HEAD":
                self.wfile.write(head)
            elif isinstance(body, FileChunks):
                self.wfile.write(head)
                self.wfile.flush()
                # Why: the kernel copies the file to the socket itself
                # (socket.sendfile, os.sendfile where there is one), with no
                # 64 KiB reads and writes through Python: a 200 KB image to 50
                # clients, 1,460 -> 1,590 a second (bench_swiftchat.py --only files).
                with body.file:
                    self.connection.sendfile(body.file, body.start, body.length)
            elif streamed:
                self.wfile.write(head)
                self.write_chunks(body, chunked)
            else:
                self.wfile.write(head + body)
            self.wfile.flush()
        finally:
            self.server.unwatch(self.connection)

    def write_chunks(self, chunks, chunked):
        """Write a streamed body, each chunk within header_timeout of the last.

        The watchdog's deadline moves with each chunk, so a long download
        over a slow link goes on while a client that stops reading is cut
        off: the blocked write then fails, and the thread ends. An error
        while the chunks are made leaves the body without its last chunk
        (and the connection closed), which a client reads as cut short.
        """
        for chunk in chunks:
            if chunk:  # an empty chunk would end a chunked body
                self.server.watch(self.connection)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def preflight_method(self):
        """The method a CORS preflight (OPTIONS) asks about, or None."""
        if self.command != "OPTIONS":
            return None
        return self.headers.get("access-control-request-method", "").strip().upper()

    def send_error(self, code, message=None, explain=None):
        """http.server's own errors (a bad request line, headers too long), as JSON."""
        self.close_connection = True
        text = message or http.HTTPStatus(code).phrase
        log.info("%s - - %d %s", self.client_address[0], code, explain or text)
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
        self.read_turns = Turns()
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
        threading.current_thread().name = "swiftchat-request"  # named, like every thread here
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

    def watch(self, connection, seconds=None):
        """Cut the connection off unless unwatched within seconds (default: header_timeout)."""
        with self._idle:
            self._deadlines[connection] = time.monotonic() + (seconds or self.header_timeout)

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

    def shutdown(self):
        """Stop serve_forever now, not when the select it waits in next times out.

        A listening socket that is shut down reads as ready at once, so the
        loop wakes and sees that it must stop: serve() then stop() took
        17 ms instead of 69 ms.
        """
        with contextlib.suppress(OSError):
            self.socket.shutdown(socket.SHUT_RDWR)
        super().shutdown()

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
