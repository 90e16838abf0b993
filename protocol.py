"""The JSON that both halves of SwiftChat speak: envelopes, errors, input checks.

Every HTTP body and every WebSocket frame the server sends is built by
``envelope()``; every field a client sends is checked by one of the
functions here before it reaches the store. ``ApiError`` is how any part of
the server says "this request cannot be served" with a status and the two
texts of an error envelope.

The API's objects (users, history messages, reports) are shaped here too,
so that REST, WebSocket and the embedding API show them alike.

Nothing here touches sockets, threads or the database; the functions are
plain and run on whichever thread calls them.
"""

import ipaddress
import json
import re
import time
import unicodedata
import urllib.parse

__all__ = [
    "VERSION", "ApiError", "bad_request", "envelope", "encode", "parse_json_object", "text_field",
    "username", "password", "room_name", "description", "content", "trimmed_text",
    "client_id", "message_id", "role", "flag", "visibility", "mentioned_names", "search_text",
    "posting", "slow_mode", "member_role", "whole_number", "message_body",
    "upload_filename",
    "query_int", "trusted_proxies", "client_address", "limit_key", "shown_user",
    "history_message", "shown_report", "now", "iso",
]

VERSION = "1.3.0"  # the API's version (GET /info, OpenAPI); CONTRACT: 1.3.0 from the first 1.3 change

MAX_USERNAME, MAX_PASSWORD, MAX_ROOM_NAME, MAX_DESCRIPTION, MAX_CONTENT = 32, 128, 64, 500, 4000
MAX_SEARCH = 200  # characters of a search query
MAX_REASON = 500  # characters of a report's reason
MAX_CLIENT_ID = 64
MAX_SLOW_MODE = 3600  # seconds (1.3)
MAX_ATTACHMENTS = 10  # uploads one message may carry (1.3)
MAX_FILENAME = 255  # characters of an upload's name (1.3)
UPLOAD_ID = re.compile(r"file_[0-9a-f]{8}")  # what store.Store.new_upload_id makes
MAX_MUTE_MINUTES = 10080  # a week (1.3)
USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{3,%d}" % MAX_USERNAME)


class ApiError(Exception):
    """A request that cannot be served: a status and the error envelope's texts.

    `message` is the short summary, `error` the detail; when only one text
    is given it serves as both. `headers` are extra HTTP headers for the
    reply (`Allow`, `Retry-After`); WebSocket replies have none.
    """

    def __init__(self, status, message, error=None, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error = error or message
        self.headers = headers or {}


def bad_request(error):
    return ApiError(400, "Request failed", error)


def envelope(message, data=None, error=None):
    """The one place a SwiftChat envelope is built, for HTTP and WebSocket alike."""
    if error is not None:
        return {"success": False, "message": message, "error": error}
    return {"success": True, "message": message, "data": {} if data is None else data}


# Why one encoder for every envelope: json.dumps with any option but the
# defaults builds a new JSONEncoder on each call (a tenth of encoding a frame).
COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode(message, data=None, error=None):
    """An envelope as compact JSON text, ready to send."""
    return COMPACT_JSON.encode(envelope(message, data, error))


def parse_json_object(raw):
    """Decode a request body or frame that must hold one JSON object."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise bad_request("Invalid JSON format") from None
    if not isinstance(value, dict):
        raise bad_request("Invalid JSON format")
    return value


def text_field(obj, name, required=True, default=None):
    """obj[name] as a string; absent is an error only when required."""
    value = obj.get(name)
    if value is None:
        if required:
            raise bad_request(f"{name} is required")
        return default
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate such as "\ud800" slips through JSON
        raise bad_request(f"{name} must be valid Unicode text") from None
    return value


def username(obj):
    value = text_field(obj, "username")
    if not USERNAME_PATTERN.fullmatch(value):
        raise bad_request(
            f"username must be 3-{MAX_USERNAME} characters of letters, digits, '_', '.' or '-'"
        )
    return value


def password(obj, name="password"):
    value = text_field(obj, name)
    if not 8 <= len(value) <= MAX_PASSWORD:
        raise bad_request(f"{name} must be 8-{MAX_PASSWORD} characters")
    return value


def room_name(obj):
    return trimmed_text(obj, "name", MAX_ROOM_NAME)


def description(obj, required):
    value = text_field(obj, "description", required, default="")
    if len(value) > MAX_DESCRIPTION:
        raise bad_request(f"description must be at most {MAX_DESCRIPTION} characters")
    return value


def content(obj):
    return trimmed_text(obj, "content", MAX_CONTENT)


# What a file name may not hold (1.3): path separators, and characters of the
# Unicode categories that draw nothing or move what is drawn: control and
# format characters (among them the bidirectional controls that make
# "gpj.exe" read as "exe.jpg", and zero-width spaces), line and paragraph
# separators, private-use and surrogate code points.
NOT_IN_FILENAME = frozenset("/\\")
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs"})


def upload_filename(header):
    """An upload's name from its X-Filename header: percent-encoded UTF-8 (as a browser's
    encodeURIComponent makes it), 1-255 characters, none of NOT_IN_FILENAME."""
    if header is None:
        raise bad_request("X-Filename is required")
    try:
        # Raw UTF-8 bytes, which some clients send, arrive read as latin-1.
        header = header.encode("latin-1").decode("utf-8")
    except UnicodeError:
        pass
    try:
        name = urllib.parse.unquote(header, errors="strict")
    except UnicodeDecodeError:
        raise bad_request("X-Filename must be percent-encoded UTF-8") from None
    if (not 1 <= len(name) <= MAX_FILENAME or not name.strip(" .")  # no "..", no "."
            or any(char in NOT_IN_FILENAME or unicodedata.category(char) in INVISIBLE_CATEGORIES
                   for char in name)):
        raise bad_request(f"X-Filename must be 1-{MAX_FILENAME} characters, without / \\ or "
                          "control characters")
    return name


def message_body(obj):
    """A new message's (content, attachments): attachments is a list of at most MAX_ATTACHMENTS
    upload ids (1.3), and with one or more the content may be empty.

    Whether each id is an upload of the sender's not attached yet is the
    store's to say (store.InvalidAttachment). A string that cannot be an
    upload's id at all is just as unknown, and is told so in the same words
    here, before it reaches the store (where a lone surrogate, say, could not
    even be a query's parameter).
    """
    attachments = obj.get("attachments")
    if attachments is None:
        attachments = []
    if (not isinstance(attachments, list) or len(attachments) > MAX_ATTACHMENTS
            or not all(isinstance(upload_id, str) for upload_id in attachments)):
        raise bad_request(f"attachments must be a list of at most {MAX_ATTACHMENTS} upload ids")
    if not all(UPLOAD_ID.fullmatch(upload_id) for upload_id in attachments):
        raise bad_request("Invalid attachment")
    if attachments and not (text_field(obj, "content", required=False) or "").strip():
        return "", attachments
    return content(obj), attachments


def trimmed_text(obj, name, maximum):
    """obj[name] without surrounding white space, 1 to maximum characters long."""
    value = text_field(obj, name).strip()
    if not 1 <= len(value) <= maximum:
        raise bad_request(f"{name} must be 1-{maximum} characters, not only spaces")
    return value


# An @mention: "@" and a username's characters, not inside a longer word
# (so neither "bob@example.com" nor "@bobby" mentions bob).
MENTION = re.compile(r"(?<![\w.@-])@([A-Za-z0-9_.-]+)(?![\w@])")
MAX_MENTIONS = 50  # @names looked up per message; a message naming more mentions the first 50


def mentioned_names(content):
    """For each @mention in content, the usernames it may stand for, lowercased, best first.

    "@bob." at the end of a sentence may be the user "bob." or "bob": the
    store takes the first that exists. Usernames match in any case.
    """
    mentioned = {}  # the choices, in the order first met (a dict: looked up in one step)
    for match in MENTION.finditer(content):
        written = match.group(1).lower()
        choices = tuple(dict.fromkeys(name for name in (written, written.rstrip(".-"))
                                      if USERNAME_PATTERN.fullmatch(name)))
        if choices:
            mentioned[choices] = True
            if len(mentioned) == MAX_MENTIONS:
                break
    return list(mentioned)


def search_text(query):
    """The q of GET /search: 1 to 200 characters, not only spaces."""
    value = (query.get("q") or "").strip()
    if not 1 <= len(value) <= MAX_SEARCH:
        raise bad_request(f"Query must be 1-{MAX_SEARCH} characters")
    return value


def role(obj, required=True):
    """A user's role: "user" or "admin"."""
    value = text_field(obj, "role", required)
    if value is not None and value not in ("user", "admin"):
        raise bad_request('role must be "user" or "admin"')
    return value


def visibility(obj):
    """A new room's visibility: "public" (the default) or "private"."""
    value = text_field(obj, "visibility", required=False, default="public")
    if value not in ("public", "private"):
        raise bad_request('visibility must be "public" or "private"')
    return value


def posting(obj):
    """Who may post in a room (1.3): "everyone" or "moderators"; None if not given."""
    value = text_field(obj, "posting", required=False)
    if value is not None and value not in ("everyone", "moderators"):
        raise bad_request('posting must be "everyone" or "moderators"')
    return value


def slow_mode(obj):
    """Seconds between one member's posts in a room (1.3), 0-3600; None if not given."""
    return whole_number(obj, "slow_mode", 0, MAX_SLOW_MODE, required=False)


def member_role(obj):
    """A member's role in a room, as it may be given (1.3): "moderator" or "member"."""
    value = text_field(obj, "role")
    if value not in ("moderator", "member"):
        raise bad_request('role must be "moderator" or "member"')
    return value


def whole_number(obj, name, lowest, highest, required=True):
    """An integer field from lowest to highest (not a bool, not a float)."""
    value = obj.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
        raise bad_request(f"{name} must be a whole number from {lowest} to {highest}")
    return value


def flag(obj, name):
    """An optional true or false field."""
    value = obj.get(name)
    if value is not None and not isinstance(value, bool):
        raise bad_request(f"{name} must be true or false")
    return value


def reply_to(obj):
    """The optional id of the message a new message replies to (1.3)."""
    return message_id(obj, "reply_to")


# What an emoji may be made of (1.3): symbols (So, Sk: so "+", "$" and "<"
# are not emoji, being Sm and Sc), marks (Mn, Mc, Me: variation selectors
# are Mn), the zero-width joiner, and regional indicators (So already).
EMOJI_CATEGORIES = frozenset({"So", "Sk", "Mn", "Mc", "Me"})
ZERO_WIDTH_JOINER = "\u200d"
MAX_EMOJI_CODE_POINTS = 8


def emoji(value):
    """A reaction's emoji: 1-8 code points of EMOJI_CATEGORIES or the joiner, one a symbol."""
    if (not isinstance(value, str) or not 1 <= len(value) <= MAX_EMOJI_CODE_POINTS
            or not all(char == ZERO_WIDTH_JOINER
                       or unicodedata.category(char) in EMOJI_CATEGORIES for char in value)
            or not any(unicodedata.category(char) in ("So", "Sk") for char in value)):
        raise bad_request("Invalid emoji")
    return value


MAX_DISPLAY_NAME = 40
MAX_STATUS = 80


def profile(obj):
    """PATCH /users/me's changes: {"display_name"?, "status"?}, trimmed (1.3).

    Neither may hold what does not show (INVISIBLE_CATEGORIES: control and
    format characters, bidi overrides among them, line breaks): a name that
    reads as someone else's, or looks empty, is refused. The zero-width
    joiner is let through, as emoji sequences need it.
    """
    changes = {}
    for name, lowest, highest in (("display_name", 1, MAX_DISPLAY_NAME), ("status", 0, MAX_STATUS)):
        value = text_field(obj, name, required=False)
        if value is None:
            continue
        value = value.strip()
        if not lowest <= len(value) <= highest or any(
                char != ZERO_WIDTH_JOINER and unicodedata.category(char) in INVISIBLE_CATEGORIES
                for char in value):
            raise bad_request(f"{name} must be {lowest}-{highest} characters,"
                              " without control characters")
        changes[name] = value
    if not changes:
        raise bad_request("display_name or status is required")
    return changes


def client_id(obj):
    """The optional id a client gives a message so that a retry is stored once."""
    value = text_field(obj, "client_id", required=False)
    if value is not None and not 1 <= len(value) <= MAX_CLIENT_ID:
        raise bad_request(f"client_id must be 1-{MAX_CLIENT_ID} characters")
    return value


def message_id(obj, name):
    """An optional message id (a non-negative integer) such as `since`."""
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise bad_request(f"{name} must be a non-negative integer")
    return value


def query_int(query, name, default, maximum=None):
    """A non-negative integer query parameter; values above maximum are clamped."""
    raw = query.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]+", raw):
        raise bad_request(f"{name} must be a non-negative integer")
    value = int(raw) if len(raw) <= 18 else 10**18  # stays within SQLite's 64-bit integers
    return value if maximum is None else min(value, maximum)


def trusted_proxies(text):
    """The networks named by --trusted-proxy ("10.0.0.1,10.0.0.0/24,::1"); ValueError if one is not."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False)
                 for part in text.split(",") if part.strip())


def client_address(peer, forwarded_for, trusted):
    """The address a request came from, for the limits and the access log.

    From a trusted proxy, it is the rightmost address of X-Forwarded-For
    that is not itself a trusted proxy: each proxy appends the address it
    heard from, so everything left of that may be the client's own
    invention. From anyone else the header is ignored. An entry that is
    not an address leaves the peer's own.
    """
    if not trusted or not forwarded_for or not is_in(peer, trusted):
        return peer
    for entry in reversed(forwarded_for.split(",")):
        entry = without_port(entry.strip())
        if not is_in(entry, trusted):
            try:
                return str(ipaddress.ip_address(entry))
            except ValueError:
                return peer
    return peer


def limit_key(address):
    """The address as the limits count it (CONTRACT 1.3): one key per IPv4 address or IPv6 /64.

    An IPv4-mapped IPv6 address ("::ffff:10.0.0.7", from a dual-stack
    socket) is its IPv4 address, and every address of one IPv6 /64 is one
    client: a single machine is handed a whole /64 and may use any of it.
    Anything that is not an address is its own key.
    """
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6 and parsed.ipv4_mapped:
        return str(parsed.ipv4_mapped)
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def without_port(entry):
    """'10.0.0.7:51234' -> '10.0.0.7', '[::1]:51234' -> '::1': some proxies append the port."""
    if entry.startswith("[") and "]" in entry:
        return entry[1:entry.index("]")]
    if entry.count(":") == 1:
        return entry.partition(":")[0]
    return entry


def is_in(address, networks):
    try:
        address = ipaddress.ip_address(address)
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped:  # "::ffff:10.0.0.1" from a dual-stack socket
        address = address.ipv4_mapped
    return any(address in network for network in networks)


# -- the API's objects, as both edges show them ----------------------------------

def shown_user(user, viewer):
    """A user as the API shows it to viewer: with its role, and for an admin whether it is disabled.

    Whether its password must be changed is told to the user and to admins.
    """
    shown = {"id": user["id"], "username": user["username"], "created_at": user["created_at"],
             "role": user["role"], "display_name": user["display_name"], "status": user["status"]}
    if viewer["role"] == "admin":
        shown["disabled"] = user["disabled"]
    if viewer["role"] == "admin" or viewer.get("id") == user["id"]:
        shown["must_change_password"] = user["must_change_password"]
    return shown


def history_message(row, is_online):
    """A message as history shows it."""
    return {
        "id": row["id"],
        "room_id": row["room_id"],
        "user_id": row["user_id"],
        "content": row["content"],
        "timestamp": row["timestamp"],
        "edited_at": row["edited_at"],
        "mentions": row["mentions"],
        "attachments": row["attachments"],
        "reply_to": row["reply_to"],
        "reactions": row["reactions"],
        "pinned": row["pinned"],
        "sender": {
            "id": row["user_id"],
            "username": row["username"],
            "password": "",  # the API document keeps the field; it is never filled
            "is_online": is_online,
        },
    }


def shown_report(report, author_online, viewer):
    """A report (a store row) as the API shows it to viewer: its copy of the message, as history
    shows messages (with room_id and room_name), and who reported it, why and when.
    """
    message = history_message({
        "id": report["message_id"], "room_id": report["room_id"], "user_id": report["author_id"],
        "content": report["content"], "timestamp": report["timestamp"],
        "edited_at": report["edited_at"], "mentions": report["mentions"],
        "attachments": [], "reply_to": None, "reactions": [], "pinned": False,  # a copy of the text only
        "username": report["author_name"]}, author_online)
    reporter = {"id": report["reporter_id"], "username": report["reporter_name"],
                "display_name": report["reporter_display_name"] or report["reporter_name"],
                "status": report["reporter_status"],
                "created_at": report["reporter_created_at"], "role": report["reporter_role"],
                "disabled": bool(report["reporter_disabled"]),
                "must_change_password": bool(report["reporter_must_change_password"])}
    return {"id": report["id"], "message": {**message, "room_name": report["current_room_name"]},
            "reporter": shown_user(reporter, viewer), "reason": report["reason"],
            "status": report["status"], "created_at": iso(report["created_at"])}


def now():
    """The current time in whole Unix seconds, as `timestamp` fields carry it."""
    return int(time.time())


def iso(timestamp):
    """Unix seconds as the ISO-8601 UTC text of `created_at` fields."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
