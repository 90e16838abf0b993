"""SwiftChat's REST routes: what each endpoint does, and the table that names them.

Each route is a plain function: ``function(request)`` for a PUBLIC route,
``function(request, user)`` for one that needs a logged-in user (the HTTP
dispatcher, swiftchat_http.py, checks the bearer token first, as the
route's row in ROUTES says). A route returns ``(status, message, data)``,
which the dispatcher wraps in an envelope, or a ``Page`` it sends as it is,
and raises ApiError for what it refuses itself; the layers below raise
their own named exceptions, which the dispatcher maps to statuses.

Routes reach the database through ``request.app.store`` and the accounts
through ``request.app.accounts``; anything that changes live chat (a room
created, a message posted, sessions ended) goes to the chat core on its
event loop through ``request.app.core.call``, the one bridge there. Routes
run on the HTTP server's worker threads, one request each.
"""

import collections
import json
import logging
import pathlib
import re
import threading
import time
import mimetypes
import urllib.parse

import export
import files
import openapi
import protocol
import swiftchat_core
from accounts import MAX_IMPORT, ImportRefused, InvalidToken, SessionExpired
from protocol import ApiError, bad_request, encode, history_message, now, shown_user
from store import SEARCH_SECONDS, Conflict, QuotaExceeded

__all__ = ["ROUTES", "LOGGED_IN", "RENEWING", "ADMIN", "WRITE", "PUBLIC", "Request", "Page", "Download", "FileAnswer", "FileChunks", "PageCache",
           "JSON_TYPE", "page_headers"]

log = logging.getLogger("swiftchat")

STATIC_DIR = pathlib.Path(__file__).with_name("static")
JSON_TYPE = "application/json"  # UTF-8 by definition (RFC 8259): no charset


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

    def optional_session(self):
        """The session of a valid bearer token, or None (no token, one that is no good, or one
        whose user must change their password first: CONTRACT 1.3)."""
        try:
            session = self.bearer_session() if self.headers.get("authorization") else None
        except (ApiError, InvalidToken):
            return None
        return None if session is None or session.user["must_change_password"] else session

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

# A route's answer that is a file to save (an export): chunks is an iterator
# of bytes, read only as the answer is written, after the route has
# returned, so that the file is never whole in memory (swiftchat_http).
Download = collections.namedtuple("Download", "filename content_type chunks")


# -- routes: authentication and users ---------------------------------------

def register(request):
    if request.app.registration_closed:
        raise ApiError(403, "Forbidden", "Registration is closed")
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
    request.app.core.call(request.app.core.end_sessions, ended)
    return 200, "Logged out", {"sessions_ended": len(ended)}


def change_password(request, user):
    body = request.json()
    old_password = protocol.text_field(body, "old_password")
    new_password = protocol.password(body, "new_password")
    session, ended = request.app.accounts.change_password(request.session, old_password,
                                                          new_password, request.address)
    request.app.core.call(request.app.core.end_sessions, ended)
    return 200, "Password changed", token_answer(request, session)


def new_session(request, user):
    """The answer of a login or registration: a token of a session that starts now."""
    return token_answer(request, request.app.accounts.start_session(user))


def token_answer(request, session):
    token = request.app.accounts.issue_token(session)
    return {"token": token, "id": session.user["id"], "username": session.user["username"],
            "must_change_password": session.user["must_change_password"]}


def current_user(request, user):
    return 200, "User information retrieved successfully", {"user": shown_user(user, user)}


def list_users(request, user):
    limit = protocol.query_int(request.query, "limit", 10, maximum=100)
    offset = protocol.query_int(request.query, "offset", 0)
    users, total = request.app.store.list_users(limit, offset)
    return 200, "Users retrieved successfully", {
        "users": [shown_user(listed, user) for listed in users], "total": total,
        "limit": limit, "offset": offset}


def get_user(request, user):
    return 200, "User information retrieved successfully", {
        "user": shown_user(existing_user(request), user)}


def existing_user(request):
    user = request.app.store.user(request.params["user_id"])
    if user is None:
        raise ApiError(404, "User not found")
    return user


# -- routes: blocking ----------------------------------------------------------------

def block_user(request, user):
    if request.params["user_id"] == user["id"]:
        raise bad_request("You cannot block yourself")
    blocked = request.app.core.perform(swiftchat_core.block_user, user, request.params["user_id"],
                                       True)
    return 200, "User blocked", {"user": shown_user(blocked, user)}


def unblock_user(request, user):
    unblocked = request.app.core.perform(swiftchat_core.block_user, user,
                                         request.params["user_id"], False)
    return 200, "User unblocked", {"user": shown_user(unblocked, user)}


def blocked_users(request, user):
    return 200, "Blocked users", {
        "users": [shown_user(blocked, user) for blocked in request.app.store.blocked_users(user["id"])]}


# -- routes: administration (ADMIN rows) ------------------------------------------

def create_user(request, user):
    body = request.json()
    username, password = protocol.username(body), protocol.password(body)
    role = protocol.role(body, required=False)
    try:  # an admin chose the password: its owner changes it first (CONTRACT 1.3)
        created = request.app.accounts.create_user(username, password, role or "user", True)
    except Conflict:
        raise ApiError(409, "User already exists", "Username already taken") from None
    return 201, "User created", {"user": shown_user(created, user)}


def import_users(request, user):
    entries = request.json().get("users")
    if not isinstance(entries, list) or not entries:
        raise bad_request("users must be a non-empty list")
    if len(entries) > MAX_IMPORT:
        raise bad_request(f"At most {MAX_IMPORT} users at once")
    try:
        created, skipped = request.app.accounts.import_users(entries)
    except ImportRefused as exc:
        raise bad_request(f"users[{exc.index}]: {exc.error}") from None
    return 201, "Users imported", {
        "created": [{"user": shown_user(new, user), "password": password}
                    for new, password in created],
        "skipped": [{"username": name, "error": error} for name, error in skipped]}


def update_profile(request, user):
    changes = protocol.profile(request.json())
    updated = request.app.core.perform(swiftchat_core.update_profile, user, changes)
    return 200, "Profile updated", {"user": shown_user(updated, updated)}


def update_user(request, user):
    body = request.json()
    role, disabled = protocol.role(body, required=False), protocol.flag(body, "disabled")
    password = protocol.password(body) if body.get("password") is not None else None
    existing_user(request)
    updated, ended = request.app.accounts.update_user(request.params["user_id"], role, disabled,
                                                      password)
    if updated is None:  # removed a moment ago
        raise ApiError(404, "User not found")
    request.app.core.call(request.app.core.end_sessions, ended)
    return 200, "User updated", {"user": shown_user(updated, user)}


# -- routes: rooms ------------------------------------------------------------

def create_room(request, user):
    body = request.json()
    name, description = protocol.room_name(body), protocol.description(body, required=False)
    visibility = protocol.visibility(body)
    posting, slow_mode = protocol.posting(body) or "everyone", protocol.slow_mode(body) or 0
    try:
        with request.app.accounts.room_creation(user):  # a refused creation is not counted
            room = request.app.core.perform(swiftchat_core.create_room, user, name, description,
                                            visibility, posting, slow_mode)
    except Conflict:
        raise ApiError(409, "Room name already exists") from None
    return 201, "Room created successfully", room


def open_direct_room(request, user):
    other_id = protocol.text_field(request.json(), "user_id")
    room, created = request.app.core.perform(swiftchat_core.open_direct_room, user, other_id)
    if created:
        return 201, "Direct room created", room
    return 200, "Direct room retrieved", room


def list_rooms(request):
    limit = protocol.query_int(request.query, "limit", 50, maximum=100)
    offset = protocol.query_int(request.query, "offset", 0)
    session = request.optional_session()  # no token, or a bad one: public rooms only
    viewer = (session.user["id"], session.user["role"] == "admin") if session else (None, False)

    def answer(page, _):
        rooms, total = page
        return encode("Successfully retrieved rooms", {
            "rooms": rooms, "count": len(rooms), "total": total, "limit": limit,
            "offset": offset}).encode("utf-8")

    return Page(JSON_TYPE, request.app.page_cache.get(
        ("rooms", *viewer, limit, offset),
        lambda: request.app.store.list_rooms(limit, offset, *viewer), answer))


def join_room(request, user):
    room_id = protocol.text_field(request.json(), "room_id")
    room = request.app.core.perform(swiftchat_core.join_room, user, room_id)
    return 200, "Successfully joined room", {
        "room_id": room["id"], "user_id": user["id"],
        # An admin let in by role is not stored as a member: no first join to tell of.
        "joined_at": room["joined_at"] or protocol.iso(now())}


def leave_room(request, user):
    room_id = protocol.text_field(request.json(), "room_id")
    request.app.core.perform(swiftchat_core.leave_room, user, room_id)
    return 200, "Successfully left room", {"room_id": room_id, "user_id": user["id"]}


def update_room(request, user):
    body = request.json()
    settings = {"posting": protocol.posting(body), "slow_mode": protocol.slow_mode(body)}
    changes = {name: value for name, value in settings.items() if value is not None}
    # The description may be left out when a setting changes (CONTRACT 1.3).
    if "description" in body or not changes:
        changes["description"] = protocol.description(body, required=True)
    room = request.app.core.perform(swiftchat_core.update_room, user, request.params["room_id"],
                                    changes)
    return 200, "Room description updated successfully", {
        "room_id": room["id"], "new_description": room["description"], "updated_by": user["id"],
        "posting": room["posting"], "slow_mode": room["slow_mode"]}


def delete_room(request, user):
    room = request.app.core.perform(swiftchat_core.delete_room, user, request.params["room_id"])
    return 200, "Room deleted successfully", {"room_id": room["id"], "deleted_by": user["id"]}


def room_members(request, user):
    room = seen_room(request, request.params["room_id"], user)
    members = swiftchat_core.members_with_presence(request.app.core, room["id"])
    return 200, "Members retrieved successfully", {
        "room_id": room["id"], "members": members, "count": len(members)}


def add_member(request, user):
    member_id = protocol.text_field(request.json(), "user_id")
    added = request.app.core.perform(swiftchat_core.add_member, user, request.params["room_id"],
                                     member_id)
    return 201, "Member added", added


def remove_member(request, user):
    ban = request.query.get("ban", "false").lower() in ("true", "1", "yes")
    room = request.app.core.perform(swiftchat_core.remove_member, user, request.params["room_id"],
                                    request.params["user_id"], ban)
    return 200, "Member removed", {"room_id": room["id"], "user_id": request.params["user_id"],
                                   "banned": ban}


def update_member(request, user):
    role = protocol.member_role(request.json())
    member = request.app.core.perform(swiftchat_core.update_member, user,
                                      request.params["room_id"], request.params["user_id"], role)
    return 200, "Member updated", {"room_id": request.params["room_id"], "member": member}


def mute_member(request, user):
    minutes = protocol.whole_number(request.json(), "minutes", 1, protocol.MAX_MUTE_MINUTES)
    member = request.app.core.perform(swiftchat_core.mute_member, user, request.params["room_id"],
                                      request.params["user_id"], minutes)
    return 200, "Member muted", {"room_id": request.params["room_id"], "member": member}


def unmute_member(request, user):
    member = request.app.core.perform(swiftchat_core.mute_member, user, request.params["room_id"],
                                      request.params["user_id"], None)
    return 200, "Member unmuted", {"room_id": request.params["room_id"], "member": member}


def seen_room(request, room_id, user):
    """The room, if user may see it; else 404 Room not found, as if it did not exist."""
    return swiftchat_core.visible_room(request.app.store, room_id, user["id"])


def export_room(request, user):
    """The room's whole history as a file to save (its owner, moderators, admins), streamed.

    ?format=json|csv|html; json when none is named (the API document says so).
    """
    file_format = request.query.get("format", "json")
    if file_format not in export.FORMATS:
        raise bad_request("format must be json, csv or html")
    room = request.app.core.perform(swiftchat_core.room_to_export, user, request.params["room_id"])
    messages = request.app.store.room_history(room["id"])
    return Download(*export.export_file(room, messages, file_format))


# -- routes: messages ---------------------------------------------------------

def list_messages(request, user):
    room_id = request.query.get("room_id")
    if not room_id:
        raise bad_request("room_id is required")
    limit = protocol.query_int(request.query, "limit", 50, maximum=100)
    before = protocol.query_int(request.query, "before", None)
    seen_room(request, room_id, user)
    return Page(JSON_TYPE, request.app.page_cache.get(
        ("messages", room_id, limit, before),
        lambda: request.app.store.messages(room_id, limit, before),
        lambda rows, online: history_answer(room_id, rows, online),
        lambda rows: frozenset(request.app.core.online_users({row["user_id"] for row in rows}))))


class PageCache:
    """Encoded answers of the list routes (GET /rooms, GET /messages), kept until the store writes.

    Why: a page of rooms or history is read far more often than it changes,
    and reading it (sqlite3 hands the GIL back and forth once per row, which
    many request threads wait on: 2,200 requests/s over one connection, 300
    over fifty) and encoding it (GET /messages, 10 connections: 1,630 ->
    2,950 requests/s) were most of the request.

    The one rule: an answer is served again while the store has not
    written since it was read (Store.generation) and for at most MAX_AGE
    seconds, so that a write by another process shows up soon too. An
    answer that also depends on something the store does not hold (which
    senders are online, for history) is kept with it, and rebuilt from the
    kept rows when that differs. At most MAX_BYTES of answers are kept;
    past that, all are forgotten. Safe from any thread.
    """

    MAX_AGE = 2.0
    MAX_BYTES = 8 * 1024 * 1024

    def __init__(self, store):
        self.store = store
        self._pages = {}  # key -> (generation, read at, rows, extra, encoded answer)
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key, read, build, extra=lambda rows: None):
        """The encoded answer for key: build(rows, extra(rows)) of rows = read(), or a kept one."""
        now = time.monotonic()
        generation = self.store.generation
        kept = self._pages.get(key)
        if kept is not None and kept[0] == generation and now - kept[1] < self.MAX_AGE:
            rows, read_at = kept[2], kept[1]
        else:
            kept, rows, read_at = None, read(), now
        depends_on = extra(rows)
        if kept is not None and kept[3] == depends_on:
            return kept[4]
        answer = build(rows, depends_on)
        if self.store.generation == generation:  # nothing was written while we read
            self._keep(key, (generation, read_at, rows, depends_on, answer))
        return answer

    def _keep(self, key, page):
        with self._lock:
            replaced = self._pages.pop(key, None)
            self._size -= len(replaced[4]) if replaced else 0
            if self._size + len(page[4]) > self.MAX_BYTES:
                self._pages.clear()
                self._size = 0
            self._pages[key] = page
            self._size += len(page[4])


def history_answer(room_id, rows, online):
    """The encoded envelope of GET /messages for these rows."""
    messages = [history_message(row, row["user_id"] in online) for row in rows]
    return encode("Messages retrieved successfully", {
        "messages": messages, "room_id": room_id, "count": len(messages)}).encode("utf-8")


def edit_message(request, user):
    content = protocol.content(request.json())
    edited = request.app.core.perform(swiftchat_core.edit_message, user, path_message_id(request),
                                      content)
    online = request.app.core.online_users({edited["user_id"]})
    return 200, "Message updated", history_message(edited, edited["user_id"] in online)


def delete_message(request, user):
    deleted = request.app.core.perform(swiftchat_core.delete_message, user,
                                       path_message_id(request))
    return 200, "Message deleted", deleted


def path_message_id(request):
    """The message id of the path; one that is not a number names no message."""
    text = request.params["message_id"]
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise swiftchat_core.MessageNotFound(text)
    return int(text)


def post_message(request, user):
    body = request.json()
    room_id = protocol.text_field(body, "room_id")
    (content, attachments), client_id = protocol.message_body(body), protocol.client_id(body)
    message = request.app.core.perform(swiftchat_core.post_message, user, room_id, content,
                                       client_id, attachments, protocol.reply_to(body))
    return 201, "Message sent successfully", message


def add_reaction(request, user):
    emoji = protocol.emoji(request.json().get("emoji"))
    data = request.app.core.perform(swiftchat_core.react, user, path_message_id(request), emoji,
                                    True)
    return 200, "Reaction added", without_type(data)


def remove_reaction(request, user):
    # The emoji is one path segment, percent-encoded; what it decodes to is checked as a body's.
    emoji = protocol.emoji(request.params["emoji"])
    data = request.app.core.perform(swiftchat_core.react, user, path_message_id(request), emoji,
                                    False)
    return 200, "Reaction removed", without_type(data)


def pin_message(request, user):
    data = request.app.core.perform(swiftchat_core.pin_message, user, path_message_id(request),
                                    True)
    return 200, "Message pinned", without_type(data)


def unpin_message(request, user):
    data = request.app.core.perform(swiftchat_core.pin_message, user, path_message_id(request),
                                    False)
    return 200, "Message unpinned", without_type(data)


def without_type(frame_data):
    """A frame's data as a REST answer carries it: the frame type is the WebSocket's."""
    return {name: value for name, value in frame_data.items() if name != "type"}


def room_pins(request, user):
    room_id = request.params["room_id"]
    seen_room(request, room_id, user)
    rows = request.app.store.pinned_messages(room_id)
    online = request.app.core.online_users({row["user_id"] for row in rows})
    return 200, "Pinned messages", {
        "messages": [history_message(row, row["user_id"] in online) for row in rows]}


def report_message(request, user):
    reason = protocol.text_field(request.optional_json(), "reason", required=False, default="")
    if len(reason) > protocol.MAX_REASON:
        raise bad_request(f"reason must be at most {protocol.MAX_REASON} characters")
    try:
        report = request.app.core.perform(swiftchat_core.report_message, user,
                                          path_message_id(request), reason.strip())
    except Conflict:
        raise ApiError(409, "Conflict", "Already reported") from None
    return 201, "Report received", {"report": shown_report_to(request, report, user)}


REPORT_STATUSES = ("open", "resolved", "dismissed")


def list_reports(request, user):
    status = request.query.get("status", "open")
    if status not in (*REPORT_STATUSES, "all"):
        raise bad_request('status must be "open", "resolved", "dismissed" or "all"')
    limit = protocol.query_int(request.query, "limit", 50, maximum=100)
    before = protocol.query_int(request.query, "before", None)
    reports = request.app.store.reports(None if status == "all" else status, user["id"],
                                        user["role"] == "admin", limit, before)
    return 200, "Reports", {"reports": [shown_report_to(request, report, user)
                                        for report in reports]}


def update_report(request, user):
    status = protocol.text_field(request.json(), "status")
    if status not in REPORT_STATUSES[1:]:
        raise bad_request('status must be "resolved" or "dismissed"')
    text = request.params["report_id"]
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise swiftchat_core.ReportNotFound(text)
    report = request.app.core.perform(swiftchat_core.update_report, user, int(text), status)
    return 200, "Report updated", {"report": shown_report_to(request, report, user)}


def shown_report_to(request, report, viewer):
    online = request.app.core.online_users({report["author_id"]})
    return protocol.shown_report(report, report["author_id"] in online, viewer)


def mark_read(request, user):
    message_id = protocol.message_id(request.json(), "message_id")
    if message_id is None:
        raise bad_request("message_id is required")
    marker = request.app.core.perform(swiftchat_core.mark_read, user["id"],
                                      request.params["room_id"], message_id)
    return 200, "Read marker updated", marker


def search(request, user):
    text = protocol.search_text(request.query)
    limit = protocol.query_int(request.query, "limit", 20, maximum=100)
    before = protocol.query_int(request.query, "before", None)
    room_id = request.query.get("room_id")
    if room_id is not None:
        seen_room(request, room_id, user)
    store = request.app.store
    if not store.can_search:
        raise ApiError(503, "Service unavailable", "Search is not available on this server")
    if not request.app.search_slots.acquire(timeout=SEARCH_SECONDS):
        raise ApiError(503, "Service unavailable", "Server busy")
    try:
        rows = store.search(text, user["id"], user["role"] == "admin", limit, room_id, before)
    finally:
        request.app.search_slots.release()
    online = request.app.core.online_users({row["user_id"] for row in rows})
    messages = [{**history_message(row, row["user_id"] in online), "room_name": row["room_name"]}
                for row in rows]
    return 200, "Search results", {"query": text, "messages": messages, "count": len(messages)}


# Reads that may take long (a search over a large database): they do not
# take turns with the others (swiftchat_http.Turns), so that a slow one
# holds up no quick one. They bound themselves instead.
SLOW_READS = ("/api/v1/search",)
# Requests whose body their route reads itself, a part at a time, as it
# arrives (an upload may be far larger than MAX_BODY); see
# RequestHandler.read_body_part.
STREAMED_BODIES = ("/api/v1/uploads",)


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
        "version": protocol.VERSION,
        "description": "A simple HTTP server with WebSocket support",
        "timestamp": now(),
        "ws_port": request.app.ws_port,
        "websocket_url": request.app.public_ws_url or websocket_url(request),
        "registration": "closed" if request.app.registration_closed else "open",
        "policies": dict(request.app.core.policies),
    }


# A Host header's host part: a name or IPv4 address, or an IPv6 one in brackets.
HOST = re.compile(r"([A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(:\d{1,5})?")


def websocket_url(request):
    """ws://<the host the client asked for>:<WebSocket port>: where a browser on that page connects."""
    match = HOST.fullmatch(request.headers.get("host", ""))
    host = match[1] if match else "127.0.0.1"
    return f"ws://{host}:{request.app.ws_port}"


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
    """The OpenAPI document, naming as its server where the reader reached the API.

    Behind a proxy that is --public-ws-url's scheme (wss: https) and host,
    which the proxy serves the page and the API under too (CONTRACT,
    "Deployment"); else the host this request asked for, over http.
    """
    public = urllib.parse.urlsplit(request.app.public_ws_url or "")
    match = HOST.fullmatch(request.headers.get("host", ""))
    if public.netloc:
        scheme = "https" if public.scheme == "wss" else "http"
        server = f"{scheme}://{public.netloc.rpartition('@')[2]}"  # never a user:password@
    else:
        server = f"http://{match[0]}" if match else f"http://127.0.0.1:{request.app.http_port}"
    return Page(JSON_TYPE, json.dumps(openapi.document(protocol.VERSION, server),
                                      indent=1).encode("utf-8"))


def index_page(request):
    return static_page(request, "index.html")


# -- routes: files (CONTRACT 1.3) --------------------------------------------------

def upload_file(request, user):
    """The body is the file: written to disk as it arrives, a part at a time (files.FileFolder)."""
    app, size = request.app, request.body_length
    filename = protocol.upload_filename(request.headers.get("x-filename"))
    if size > app.max_upload:
        raise ApiError(413, "Payload too large", "File too large")
    quota = None if user["role"] == "admin" else app.upload_quota
    with app.uploads_in_progress.receiving(user["id"], request.address, size):
        # Said before the body is read (counting uploads in progress), and
        # checked again as the upload is recorded, in one transaction.
        kept = app.store.upload_bytes(user["id"]) + app.uploads_in_progress.bytes_of(user["id"])
        if quota is not None and kept > quota:
            raise QuotaExceeded(user["id"])
        upload_id = app.store.new_upload_id()
        try:
            app.files.receive(upload_id, in_time(request.read_body_part, size, app.body_idle),
                              size, app.max_upload)
        except EOFError:
            raise bad_request("Request body is shorter than its Content-Length") from None
        except UploadTooSlow:
            raise ApiError(408, "Request timeout", f"Upload too slow: it must come at "
                                                  f"{MIN_UPLOAD_RATE // 1024} KiB/s at least") from None
        except OSError as exc:  # the files folder cannot be written (read-only, disk full)
            log.error("could not write an upload to %s: %s", app.files.path, exc.strerror)
            raise ApiError(503, "Service unavailable", "Files unavailable") from None
    try:
        image = app.files.image_info(upload_id)
        width, height = image[1:] if image else (None, None)
        upload = app.store.add_upload(upload_id, user["id"], filename,
                                      files.served_type(request.headers.get("content-type"), image),
                                      size, width, height, now(), quota)
    except BaseException:
        app.files.delete([upload_id])
        raise
    return 201, "File uploaded", upload


MIN_UPLOAD_RATE = 16 * 1024  # bytes a second an upload must keep up on average


class UploadTooSlow(Exception):
    """An upload's body came slower than MIN_UPLOAD_RATE on average."""


def in_time(read, size, idle):
    """read(n), which raises UploadTooSlow once an upload of `size` bytes has taken longer than
    idle + size / MIN_UPLOAD_RATE seconds: one that trickles in, a byte just inside each idle
    limit, ends all the same (and what came of it is not kept)."""
    deadline = time.monotonic() + idle + size / MIN_UPLOAD_RATE

    def read_in_time(count):
        if time.monotonic() >= deadline:
            raise UploadTooSlow(size)
        return read(count)
    return read_in_time


class FileChunks:
    """A file's bytes from `start`, `length` of them, read CHUNK at a time as they are sent.

    length is what send_body sends as Content-Length (a body that is not
    chunked). The file is closed once read through, or when dropped.
    """

    def __init__(self, file, start, length):
        self.file, self.start, self.length = file, start, length

    def __iter__(self):
        with self.file:
            self.file.seek(self.start)
            left = self.length
            while left > 0 and (chunk := self.file.read(min(files.CHUNK, left))):
                left -= len(chunk)
                yield chunk


# What a file is served with, whatever it is: the browser guesses nothing
# (nosniff), and a file opened on its own runs nothing (a sandbox that lets
# nothing load); it changes only when its message goes.
FILE_HEADERS = {"X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox",
                "Cache-Control": "private, max-age=3600", "Accept-Ranges": "bytes"}
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def serve_file(request):
    """A file by its signed link: no token, so that <img> can show it (files.LinkSigner)."""
    app, upload_id = request.app, request.params["upload_id"]
    verdict = app.links.check(upload_id, request.query.get("expires", ""),
                              request.query.get("sig", ""))
    if verdict == "bad":  # a guessed or altered link: as if there were no such file
        raise ApiError(404, "File not found", "File not found")
    if verdict == "expired":
        raise ApiError(403, "Forbidden", "Link expired")
    upload = app.store.upload(upload_id)
    try:
        file = app.files.open(upload_id) if upload else None
    except FileNotFoundError:
        file = None
    if file is None:  # deleted with its message, or never attached
        raise ApiError(404, "File not found", "File not found")
    size, headers = upload["size"], dict(FILE_HEADERS)
    if upload["content_type"] in IMAGE_TYPES:  # recognised by its bytes (files.image_info)
        content_type, download_as = upload["content_type"], None
    else:  # anything else is saved, never shown
        content_type, download_as = "application/octet-stream", upload["filename"]
    wanted = byte_range(request.headers.get("range"), size)
    if wanted == "unsatisfiable":
        file.close()
        raise ApiError(416, "Range not satisfiable", "Range not satisfiable",
                       {"Content-Range": f"bytes */{size}"})
    status, (start, end) = (200, (0, size - 1)) if wanted is None else (206, wanted)
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return FileAnswer(status, content_type, FileChunks(file, start, end - start + 1), headers,
                      download_as)


# A route's answer that is an uploaded file: chunks (FileChunks) knows its
# length; download_as, if not None, is the name a browser saves it under.
FileAnswer = collections.namedtuple("FileAnswer", "status content_type chunks headers download_as")
BYTE_RANGE = re.compile(r"bytes=(\d{0,18})-(\d{0,18})")


def byte_range(header, size):
    """(first, last) byte of a Range header's one range, 'unsatisfiable', or None to send all.

    Only one range is served (several, or a malformed one, get the whole
    file, as RFC 9110 allows a server to ignore Range).
    """
    match = BYTE_RANGE.fullmatch((header or "").strip())
    if not match or not (match[1] or match[2]):
        return None
    if not match[1]:  # bytes=-N: the last N bytes
        if int(match[2]) == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - int(match[2])), size - 1
    first = int(match[1])
    if match[2] and int(match[2]) < first:  # backwards: not a range at all (RFC 9110 14.1.1)
        return None
    if first >= size:
        return "unsatisfiable"
    return first, min(int(match[2]), size - 1) if match[2] else size - 1


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
# session past its maximum age apart from an expired token; ADMIN is
# LOGGED_IN for an admin only (403 `Admin only` for anyone else); WRITE is
# LOGGED_IN and spends one of the user's REST writes (429 `Rate limit
# exceeded` when they come faster than --rest-rate, CONTRACT 1.3). Only
# OWN_ACCOUNT and RENEWING routes (LOGGED_IN both) answer a user who must
# change their password first; every other logged-in route says 403
# `Password change required` (CONTRACT 1.3).
LOGGED_IN, RENEWING, ADMIN, WRITE, PUBLIC = "logged in", "renewing", "admin", "write", "public"
OWN_ACCOUNT = "own account"

# (method, path pattern, route function, who may call it); {name} matches
# one path segment. The first row whose pattern and method match wins.
ROUTES = [
    ("POST", "/api/v1/auth/register", register, PUBLIC),
    ("POST", "/api/v1/auth/login", login, PUBLIC),
    ("POST", "/api/v1/auth/refresh", refresh, RENEWING),
    ("POST", "/api/v1/auth/logout", logout, OWN_ACCOUNT),
    ("POST", "/api/v1/auth/password", change_password, OWN_ACCOUNT),
    ("GET", "/api/v1/users/me", current_user, OWN_ACCOUNT),
    ("PATCH", "/api/v1/users/me", update_profile, WRITE),
    ("GET", "/api/v1/users/me/blocked", blocked_users, LOGGED_IN),
    ("GET", "/api/v1/users", list_users, LOGGED_IN),
    ("POST", "/api/v1/users", create_user, ADMIN),
    ("POST", "/api/v1/users/import", import_users, ADMIN),
    ("GET", "/api/v1/users/{user_id}", get_user, LOGGED_IN),
    ("PATCH", "/api/v1/users/{user_id}", update_user, ADMIN),
    ("POST", "/api/v1/users/{user_id}/block", block_user, WRITE),
    ("DELETE", "/api/v1/users/{user_id}/block", unblock_user, WRITE),
    ("POST", "/api/v1/rooms", create_room, LOGGED_IN),
    ("GET", "/api/v1/rooms", list_rooms, PUBLIC),
    ("POST", "/api/v1/rooms/join", join_room, WRITE),
    ("POST", "/api/v1/direct", open_direct_room, WRITE),
    ("POST", "/api/v1/rooms/leave", leave_room, WRITE),
    ("PATCH", "/api/v1/rooms/{room_id}", update_room, WRITE),
    ("DELETE", "/api/v1/rooms/{room_id}", delete_room, WRITE),
    ("GET", "/api/v1/rooms/{room_id}/members", room_members, LOGGED_IN),
    ("GET", "/api/v1/rooms/{room_id}/export", export_room, LOGGED_IN),
    ("GET", "/api/v1/rooms/{room_id}/pins", room_pins, LOGGED_IN),
    ("POST", "/api/v1/rooms/{room_id}/members", add_member, WRITE),
    ("DELETE", "/api/v1/rooms/{room_id}/members/{user_id}", remove_member, WRITE),
    ("PATCH", "/api/v1/rooms/{room_id}/members/{user_id}", update_member, WRITE),
    ("POST", "/api/v1/rooms/{room_id}/members/{user_id}/mute", mute_member, WRITE),
    ("DELETE", "/api/v1/rooms/{room_id}/members/{user_id}/mute", unmute_member, WRITE),
    ("POST", "/api/v1/rooms/{room_id}/read", mark_read, WRITE),
    ("GET", "/api/v1/messages", list_messages, LOGGED_IN),
    ("POST", "/api/v1/messages", post_message, WRITE),
    ("PATCH", "/api/v1/messages/{message_id}", edit_message, WRITE),
    ("DELETE", "/api/v1/messages/{message_id}", delete_message, WRITE),
    ("POST", "/api/v1/messages/{message_id}/report", report_message, WRITE),
    ("POST", "/api/v1/messages/{message_id}/reactions", add_reaction, WRITE),
    ("DELETE", "/api/v1/messages/{message_id}/reactions/{emoji}", remove_reaction, WRITE),
    ("POST", "/api/v1/messages/{message_id}/pin", pin_message, WRITE),
    ("DELETE", "/api/v1/messages/{message_id}/pin", unpin_message, WRITE),
    ("GET", "/api/v1/reports", list_reports, LOGGED_IN),
    ("PATCH", "/api/v1/reports/{report_id}", update_report, WRITE),
    ("GET", "/api/v1/search", search, LOGGED_IN),
    ("GET", "/api/v1/health", health, PUBLIC),
    ("GET", "/api/v1/info", info, PUBLIC),
    ("GET", "/api/v1/echo", echo, PUBLIC),
    ("POST", "/api/v1/echo", echo, PUBLIC),
    ("GET", "/api/v1/protected", protected, LOGGED_IN),
    ("GET", "/api/v1/openapi.json", openapi_document, PUBLIC),
    ("POST", "/api/v1/uploads", upload_file, WRITE),
    ("GET", "/api/v1/files/{upload_id}", serve_file, PUBLIC),
    ("GET", "/", index_page, PUBLIC),
    ("GET", "/static/{name}", static_file, PUBLIC),
]
