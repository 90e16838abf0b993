"""The OpenAPI 3.1 description of SwiftChat's REST API, as one Python structure.

``document()`` builds what ``GET /api/v1/openapi.json`` serves, and what the test
suite checks every JSON response it receives against. Keeping it in Python
lets a few small functions (``success``, ``errors``, ``operation``) say once
what every envelope looks like, instead of repeating it for every operation.

It describes; it decides nothing: the routes in swiftchat_routes.py are the
behaviour, and the tests hold the two together. Nothing here runs per
request except ``document()``, for a request of the document itself
(``swiftchat_routes.openapi_document``).
"""

import re

__all__ = ["document", "ref", "ALWAYS"]


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required=None, optional=None):
    """A JSON object schema with exactly these properties."""
    properties = {**(required or {}), **(optional or {})}
    return {"type": "object", "properties": properties, "required": list(required or {}),
            "additionalProperties": False}


STRING, INTEGER, BOOLEAN = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
ISO_TIME = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$",
            "examples": ["2025-07-20T13:30:00Z"]}
USER_ID = {"type": "string", "pattern": "^user_[0-9a-f]{8}$", "examples": ["user_a3a80b0b"]}
ROOM_ID = {"type": "string", "pattern": "^room_[0-9a-f]{8}$", "examples": ["room_12345678"]}
ROLE = {"enum": ["user", "admin"]}
MEMBER_ROLE = {"enum": ["owner", "moderator", "member"]}  # a member's role in one room
POSTING = {"enum": ["everyone", "moderators"], "description": "who may post in the room"}
SLOW_MODE = {"type": "integer", "minimum": 0, "maximum": 3600,
             "description": "seconds between one member's posts (0: off)"}
ROOM_SETTINGS = {"posting": POSTING, "slow_mode": SLOW_MODE}
MUTED_UNTIL = {"anyOf": [ISO_TIME, {"type": "null"}],
               "description": "until when the member may not post or edit here"}
VISIBILITY = {"enum": ["public", "private"]}
KIND = {"enum": ["room", "direct"]}
MENTIONS = {"type": "array", "items": USER_ID,
            "description": "the users the content @mentions, in order"}
MARKER = obj({"room_id": ROOM_ID, "last_read_id": INTEGER, "unread_count": INTEGER})
REPORT_STATUS = {"enum": ["open", "resolved", "dismissed"]}
POLICIES = obj({"room_creation": {"enum": ["everyone", "admins"]},
                "direct_messages": {"enum": ["on", "off"]}})
UPLOAD = obj({"id": {"type": "string", "pattern": "^file_[0-9a-f]{8}$"},
              "filename": STRING, "content_type": STRING, "size": INTEGER,
              "url": {"type": "string", "description": "/api/v1/files/<id>?expires=&sig=: works "
                                                       "without a token for 24 hours at least"},
              "width": {"type": ["integer", "null"]}, "height": {"type": ["integer", "null"]}})
ATTACHMENTS = {"type": "array", "maxItems": 10, "description": "the message's files (1.3)",
               "items": UPLOAD}
REPLY_TO = {"anyOf": [
    {"type": "null"},
    obj({"id": INTEGER, "user_id": USER_ID, "username": STRING,
         "excerpt": {"type": "string", "maxLength": 100,
                     "description": "the first 100 characters of the parent's current text"}}),
    obj({"id": INTEGER, "deleted": {"const": True}})],
    "description": "the message this one replies to (1.3)"}
EMOJI = {"type": "string", "minLength": 1, "maxLength": 8,
         "description": "1-8 code points: symbols (So, Sk), marks, variation selectors, the "
                        "zero-width joiner, regional indicators; at least one symbol"}
REACTIONS = {"type": "array", "maxItems": 20, "description": "in first-used order (1.3)",
             "items": obj({"emoji": EMOJI, "count": INTEGER,
                           "user_ids": {"type": "array", "items": USER_ID}})}
MESSAGE_EXTRAS = {"reply_to": REPLY_TO, "reactions": REACTIONS, "pinned": BOOLEAN}
MESSAGE_FIELDS = {  # a message as history shows it
    "id": INTEGER, "room_id": ROOM_ID, "user_id": USER_ID, "content": STRING,
    "timestamp": INTEGER, "edited_at": {"type": ["integer", "null"]}, "mentions": MENTIONS,
    **MESSAGE_EXTRAS,
    "sender": obj({"id": USER_ID, "username": STRING, "password": {"const": ""},
                   "is_online": BOOLEAN}),
}

SCHEMAS = {
    "Error": obj({"success": {"const": False}, "message": STRING, "error": STRING}),
    "User": obj({"id": USER_ID, "username": STRING, "created_at": ISO_TIME, "role": ROLE,
                 "display_name": {"type": "string", "minLength": 1, "maxLength": 40,
                                  "description": "the username until set (1.3)"},
                 "status": {"type": "string", "maxLength": 80}},
                {"disabled": BOOLEAN, "must_change_password": BOOLEAN}),
    "Session": obj({"token": STRING, "id": USER_ID, "username": STRING,
                    "must_change_password": BOOLEAN}),
    "Room": obj({"id": ROOM_ID, "name": STRING, "description": STRING, "creator_id": USER_ID,
                 "created_at": ISO_TIME, "visibility": VISIBILITY, "kind": KIND, **ROOM_SETTINGS}),
    "ListedRoom": obj({"id": ROOM_ID, "name": STRING, "description": STRING,
                       "creator_id": USER_ID, "member_count": INTEGER, "created_at": ISO_TIME,
                       "visibility": VISIBILITY, "kind": KIND, **ROOM_SETTINGS},
                      # with a token, in the rooms of which the caller is a member
                      {"last_read_id": INTEGER, "unread_count": INTEGER,
                       "mention_count": INTEGER}),
    "Member": obj({"id": USER_ID, "username": STRING, "display_name": STRING, "status": STRING,
                   "joined_at": ISO_TIME,
                   "is_online": BOOLEAN, "in_room": BOOLEAN, "role": MEMBER_ROLE,
                   "muted_until": MUTED_UNTIL}),
    "Message": obj({**MESSAGE_FIELDS, "attachments": ATTACHMENTS}),
    # as search and reports give it
    "RoomMessage": obj({**MESSAGE_FIELDS, "room_name": STRING, "attachments": ATTACHMENTS}),
    "Report": obj({"id": INTEGER, "message": ref("RoomMessage"), "reporter": ref("User"),
                   "reason": {"type": "string", "maxLength": 500}, "status": REPORT_STATUS,
                   "created_at": ISO_TIME}),
    "PostedMessage": obj(
        {"id": INTEGER, "room_id": ROOM_ID, "user_id": USER_ID, "username": STRING,
         "content": STRING, "timestamp": INTEGER, "mentions": MENTIONS,
         "attachments": ATTACHMENTS, **MESSAGE_EXTRAS},
        {"client_id": STRING, "duplicate": {"const": True}}),
    "Credentials": {"type": "object", "required": ["username", "password"], "properties": {
        "username": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{3,32}$"},
        "password": {"type": "string", "minLength": 8, "maxLength": 128}}},
    "RoomRef": {"type": "object", "required": ["room_id"], "properties": {"room_id": STRING}},
    "MemberChanged": obj({"room_id": ROOM_ID, "member": ref("Member")}),
    "Reactions": obj({"id": INTEGER, "room_id": ROOM_ID, "reactions": REACTIONS}),
    "Pin": obj({"id": INTEGER, "room_id": ROOM_ID}),
}

ERROR_TEXTS = {  # status -> what it means here, shown in the document
    400: "Invalid input: the error names the field (`Invalid JSON format` for a body that is "
         "not a JSON object); `Bad request`/`Malformed request` for ambiguous framing (two "
         "Content-Lengths, any Transfer-Encoding, a malformed header line), then the "
         "connection is closed",
    401: "`Authentication required`: `Missing Authorization header` or `Invalid or expired token` "
         "(also for a token of a session that ended)",
    403: "`Forbidden`: only the room's creator (or an admin) may do this, or its moderators "
         "where they may too (`Only the room creator can update this room`, `Only moderators "
         "can export this room`); `Admin only`; "
         "`Account disabled`; `Registration is closed`; `You are banned from this room`; "
         "`You cannot change this message`; `You are not a member of this room`; `You cannot "
         "do this to this user` (they have blocked the caller); `You cannot change this report`; "
         "`Password change required` (a password an admin gave or generated: only "
         "POST /auth/password, /auth/logout, /auth/refresh and GET /users/me answer until it "
         "is changed); `Only moderators can post in this room`; `You are muted in this room`; "
         "`Only admins can create rooms`; `Direct messages are turned off`",
    408: "`Request timeout`: `Upload too slow: it must come at 16 KiB/s at least` (an "
         "upload's body on average; the connection is then closed)",
    409: "Conflict: the name is taken (whatever its letter case), a client_id already used "
         "for another message, or `Already reported` (one report per message and reporter)",
    404: "Not found",
    413: "A body over 64 KiB (`Payload too large`); an upload over --max-upload-mb (`File too "
         "large`) or the uploader's quota (`Upload quota exceeded`)",
    431: "A request head (request line and header lines together) over 64 KiB, a header line "
         "over 64 KiB, or over 100 headers",
    505: "An HTTP version other than 1.0 and 1.1",
    429: "`Too many requests`, with a `Retry-After` header in seconds: `Rate limit exceeded` "
         "(the REST write budget), `Too many failed logins; try again later`, `Too many rooms "
         "created; try again later`, `Too many registrations; try again later` or `Slow mode "
         "is on` (the room's slow_mode: seconds between one member's posts)",
    500: "`Internal server error` (never details)",
    503: "`Service unavailable`: `Database busy`, `Database is read-only`, `Disk full`, "
         "`Database unavailable`, `Server busy`, `The server is shutting down` or `Search is "
         "not available on this server`",
}
ALWAYS = (400, 413, 431, 500, 503, 505)  # any request can meet these
RETRY_AFTER = {"Retry-After": {"description": "whole seconds until a retry may succeed",
                               "schema": {"type": "integer", "minimum": 1}}}


def success(status, message, data_schema, description=None):
    envelope = obj({"success": {"const": True}, "message": {"const": message}, "data": data_schema})
    return {str(status): {"description": description or message,
                          "content": {"application/json": {"schema": envelope}}}}


def errors(*statuses):
    responses = {}
    for status in sorted(set(statuses) | set(ALWAYS)):
        responses[str(status)] = {"description": ERROR_TEXTS[status],
                                  "content": {"application/json": {"schema": ref("Error")}}}
        if status == 429:
            responses[str(status)]["headers"] = RETRY_AFTER
    return responses


def query(name, description, required=False):
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": {"type": "string"}}


def path_param(name):
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def operation(summary, responses, auth=False, body=None, parameters=(), body_optional=False):
    op = {"summary": summary, "responses": responses}
    if auth:
        op["security"] = [{"bearer": []}]
    if body is not None:
        op["requestBody"] = {"required": not body_optional,
                             "content": {"application/json": {"schema": body}}}
    if parameters:
        op["parameters"] = list(parameters)
    return op


PAGING = (query("limit", "page size; too large is clamped to the maximum"),
          query("offset", "how many to skip"))

PATHS = {
    "/api/v1/auth/register": {"post": operation(
        "Create an account and get a token (403 `Registration is closed` with "
        "--registration closed)", {**success(201, "User registered successfully", ref("Session")),
                                   **errors(403, 409, 429)}, body=ref("Credentials"))},
    "/api/v1/auth/login": {"post": operation(
        "Start a session and get its token. 429 `Too many failed logins; try again later`, with "
        "`Retry-After`: 5 failures for one name from one address in 15 minutes lock that pair; "
        "an address's allowance of 30 failures grows back one every 20 s; 100 failures on one "
        "name in 15 minutes refuse the addresses that failed on it. A pair that logged in "
        "within 30 days is locked only by its own count",
        {**success(200, "Login successful", ref("Session")), **errors(401, 403, 429)},
        body={"type": "object", "required": ["username", "password"],
              "properties": {"username": STRING, "password": STRING}})},
    "/api/v1/auth/refresh": {"post": operation(
        "A new token of the same session, valid for another hour but never past the session's "
        "30 days (`Session expired` after them)",
        {**success(200, "Token refreshed", ref("Session")), **errors(401)}, auth=True)},
    "/api/v1/auth/logout": {"post": operation(
        "End the token's session, or with `{\"all\": true}` every session of its user; "
        "their WebSocket connections are closed with 4001",
        {**success(200, "Logged out", obj({"sessions_ended": INTEGER})), **errors(401)},
        auth=True, body={"type": "object", "properties": {"all": BOOLEAN}}, body_optional=True)},
    "/api/v1/auth/password": {"post": operation(
        "Change the password. The answer's token is of a new session; every earlier session "
        "of the user ends, the caller's own included (WebSocket connections close with 4001 "
        "`session ended`). A wrong old password (401 `Invalid credentials`/`Current password "
        "is incorrect`) counts as a failed login",
        {**success(200, "Password changed", ref("Session")), **errors(401, 429)}, auth=True,
        body={"type": "object", "required": ["old_password", "new_password"], "properties": {
            "old_password": STRING,
            "new_password": {"type": "string", "minLength": 8, "maxLength": 128}}})},
    "/api/v1/users/me": {
        "get": operation(
            "The token's user", {**success(200, "User information retrieved successfully",
                                           obj({"user": ref("User")})), **errors(401)}, auth=True),
        "patch": operation(
            "Set one's display name (1-40 characters) and/or status line (0-80), both trimmed, "
            "without control characters (1.3). Members of the user's rooms hear `user_updated`",
            {**success(200, "Profile updated", obj({"user": ref("User")})),
             **errors(401, 429)}, auth=True,
            body={"type": "object", "properties": {
                "display_name": {"type": "string", "minLength": 1, "maxLength": 40},
                "status": {"type": "string", "maxLength": 80}}}),
    },
    "/api/v1/users/me/blocked": {"get": operation(
        "The users the caller has blocked",
        {**success(200, "Blocked users", obj({"users": {"type": "array", "items": ref("User")}})),
         **errors(401)}, auth=True)},
    "/api/v1/users": {"get": operation(
        "Users, oldest first (limit default 10, max 100)",
        {**success(200, "Users retrieved successfully", obj({
            "users": {"type": "array", "items": ref("User")}, "total": INTEGER,
            "limit": INTEGER, "offset": INTEGER})), **errors(401)}, auth=True, parameters=PAGING),
        "post": operation(
            "Create an account (admins only; the way in when registration is closed)",
            {**success(201, "User created", obj({"user": ref("User")})), **errors(401, 403, 409)},
            auth=True, body={**SCHEMAS["Credentials"], "properties": {
                **SCHEMAS["Credentials"]["properties"], "role": ROLE}})},
    "/api/v1/users/import": {"post": operation(
        "Create the accounts of a roster (admins only), in one transaction: at most 500 (400 "
        "`At most 500 users at once`); a missing password is generated (12 letters and digits "
        "without look-alikes). Names taken already are skipped; an entry that is not valid "
        "creates nothing (400, naming it). Every account created must change its password at "
        "first login",
        {**success(201, "Users imported", obj({
            "created": {"type": "array", "items": obj({"user": ref("User"), "password": STRING})},
            "skipped": {"type": "array", "items": obj({"username": STRING, "error": STRING})}})),
         **errors(400, 401, 403)}, auth=True,
        body={"type": "object", "required": ["users"], "properties": {"users": {
            "type": "array", "minItems": 1, "maxItems": 500, "items": {
                "type": "object", "required": ["username"], "properties": {
                    "username": STRING, "password": STRING, "role": ROLE}}}}})},
    "/api/v1/users/{user_id}": {
        "get": operation("One user", {**success(200, "User information retrieved successfully",
                                                obj({"user": ref("User")})), **errors(401, 404)},
                         auth=True, parameters=[path_param("user_id")]),
        "patch": operation(
            "Change a user's role, disabled flag or password (admins only); disabling or a "
            "new password ends the user's sessions",
            {**success(200, "User updated", obj({"user": ref("User")})), **errors(401, 403, 404)},
            auth=True, parameters=[path_param("user_id")],
            body={"type": "object", "properties": {
                "role": ROLE, "disabled": BOOLEAN,
                "password": {"type": "string", "minLength": 8, "maxLength": 128}}}),
    },
    "/api/v1/users/{user_id}/block": {
        "post": operation(
            "Block a user: they cannot open a direct room with the caller, add the caller to a "
            "room or post new messages in their direct room (403 `You cannot do this to this "
            "user`), and their mentions of the caller are neither counted nor told. Admins' and "
            "moderators' powers do not change. 400 `You cannot block yourself`",
            {**success(200, "User blocked", obj({"user": ref("User")})),
             **errors(400, 401, 404, 429)},
            auth=True, parameters=[path_param("user_id")]),
        "delete": operation(
            "Unblock a user",
            {**success(200, "User unblocked", obj({"user": ref("User")})), **errors(401, 404, 429)},
            auth=True, parameters=[path_param("user_id")]),
    },
    "/api/v1/rooms": {
        "post": operation("Create a room; its creator becomes its first member and its owner "
                          "(429 past --rooms-per-hour; admins exempt, refused creations not "
                          "counted; 403 `Only admins can create rooms` with --room-creation "
                          "admins)",
                          {**success(201, "Room created successfully", ref("Room")),
                           **errors(401, 403, 409, 429)},
                          auth=True, body={"type": "object", "required": ["name"], "properties": {
                              "name": {"type": "string", "minLength": 1, "maxLength": 64},
                              "description": {"type": "string", "maxLength": 500},
                              "visibility": VISIBILITY, **ROOM_SETTINGS}}),
        "get": operation("Rooms in creation order (limit default 50, max 100); no token needed: "
                         "without one (or with a bad one) public rooms only, with one also the "
                         "private rooms the caller may see",
                         {**success(200, "Successfully retrieved rooms", obj({
                             "rooms": {"type": "array", "items": ref("ListedRoom")},
                             "count": INTEGER, "total": INTEGER, "limit": INTEGER,
                             "offset": INTEGER})), **errors()}, parameters=PAGING),
    },
    "/api/v1/direct": {"post": operation(
        "The direct room of the caller and another user, made on first use (201), the same "
        "room from either side after (200); private, and its members are exactly the two. "
        "403 `You cannot do this to this user` if that user has blocked the caller",
        {**success(201, "Direct room created", ref("Room")),
         **success(200, "Direct room retrieved", ref("Room")), **errors(401, 403, 404, 429)},
        auth=True, body={"type": "object", "required": ["user_id"],
                         "properties": {"user_id": STRING}})},
    "/api/v1/rooms/{room_id}/members": {"get": operation(
        "A room's members in the order they joined, with who is online and in the room now",
        {**success(200, "Members retrieved successfully", obj({
            "room_id": ROOM_ID, "count": INTEGER,
            "members": {"type": "array", "items": ref("Member")}})), **errors(401, 404)},
        auth=True, parameters=[path_param("room_id")]),
        "post": operation(
            "Add a member (the room's creator or an admin). It lifts a ban when an admin adds, "
            "or the creator adds someone other than themselves; adding oneself back is 403 `You "
            "are banned from this room`. 403 `You cannot do this to this user` if the user has "
            "blocked the caller. The added user's connections get `room_added`",
            {**success(201, "Member added", ref("Member")), **errors(401, 403, 404, 429)},
            auth=True, parameters=[path_param("room_id")],
            body={"type": "object", "required": ["user_id"], "properties": {"user_id": STRING}})},
    "/api/v1/rooms/{room_id}/members/{user_id}": {"patch": operation(
        "Make a member a moderator of the room, or a member again (the room's owner or an "
        "admin); the room hears `member_updated`. 404 `Member not found` for a user who is "
        "not a member",
        {**success(200, "Member updated", ref("MemberChanged")), **errors(400, 401, 403, 404, 429)},
        auth=True, parameters=[path_param("room_id"), path_param("user_id")],
        body={"type": "object", "required": ["role"],
              "properties": {"role": {"enum": ["moderator", "member"]}}}),
        "delete": operation(
        "Remove a member (the room's creator or an admin); `?ban=true` keeps them out. Their "
        "connections in the room get `room_removed`, the room hears `user_left`",
        {**success(200, "Member removed", obj({"room_id": ROOM_ID, "user_id": USER_ID,
                                                "banned": BOOLEAN})), **errors(401, 403, 404, 429)},
        auth=True, parameters=[path_param("room_id"), path_param("user_id"),
                               query("ban", "true: the user may not join again")])},
    "/api/v1/rooms/{room_id}/members/{user_id}/mute": {
        "post": operation(
            "Mute a member for some minutes (1-10080; the room's moderators, owner and admins): "
            "until muted_until they may not post or edit there (403 `You are muted in "
            "this room`). The room hears `member_updated`",
            {**success(200, "Member muted", ref("MemberChanged")), **errors(401, 403, 404, 429)},
            auth=True, parameters=[path_param("room_id"), path_param("user_id")],
            body={"type": "object", "required": ["minutes"], "properties": {
                "minutes": {"type": "integer", "minimum": 1, "maximum": 10080}}}),
        "delete": operation(
            "End a member's mute (the room's moderators, owner and admins); the room hears "
            "`member_updated`",
            {**success(200, "Member unmuted", ref("MemberChanged")), **errors(401, 403, 404, 429)},
            auth=True, parameters=[path_param("room_id"), path_param("user_id")]),
    },
    "/api/v1/rooms/{room_id}/pins": {"get": operation(
        "A room's pinned messages, newest pin first (those who may read the room)",
        {**success(200, "Pinned messages", obj({"messages": {"type": "array",
                                                             "items": ref("Message")}})),
         **errors(401, 404)}, auth=True, parameters=[path_param("room_id")])},
    "/api/v1/rooms/{room_id}/export": {"get": operation(
        "The room's whole history as a file to save (its owner, moderators and admins; 403 "
        "`Forbidden` for other members): oldest first, edits applied, deleted messages absent, "
        "streamed. `Content-Disposition: attachment; filename=\"<room name>-<YYYY-MM-DD>.<ext>\"`",
        {"200": {"description": "The file: JSON `{room, messages}`, CSV with the columns "
                                "id,timestamp,username,content,edited_at,attachments, or one "
                                "printable HTML page without scripts",
                 "headers": {"Content-Disposition": {
                     "description": "attachment, with the file's name",
                     "schema": {"type": "string"}}},
                 "content": {"application/json": {"schema": obj({
                                 "room": ref("Room"),
                                 "messages": {"type": "array", "items": ref("Message")}})},
                             "text/csv": {"schema": STRING},
                             "text/html": {"schema": STRING}}},
         **errors(400, 401, 403, 404)}, auth=True,
        parameters=[path_param("room_id"),
                    query("format", "json (the default), csv or html")])},
    "/api/v1/rooms/join": {"post": operation(
        "Become a member of a room (joining twice keeps the first time)",
        {**success(200, "Successfully joined room", obj({
            "room_id": ROOM_ID, "user_id": USER_ID, "joined_at": ISO_TIME})),
         **errors(401, 403, 404, 429)}, auth=True, body=ref("RoomRef"))},
    "/api/v1/rooms/leave": {"post": operation(
        "Stop being a member of a room (not of a direct room: 403)",
        {**success(200, "Successfully left room", obj({"room_id": ROOM_ID, "user_id": USER_ID})),
         **errors(401, 403, 404, 429)}, auth=True, body=ref("RoomRef"))},
    "/api/v1/rooms/{room_id}": {
        "patch": operation(
            "Change a room's description (its owner or an admin), or its posting and slow_mode "
            "(also its moderators); description may be left out when a setting changes", {
            **success(200, "Room description updated successfully", obj({
                "room_id": ROOM_ID, "new_description": STRING, "updated_by": USER_ID,
                **ROOM_SETTINGS})),
            **errors(401, 403, 404, 429)}, auth=True, parameters=[path_param("room_id")],
            body={"type": "object", "properties": {
                "description": {"type": "string", "maxLength": 500}, **ROOM_SETTINGS}}),
        "delete": operation("Delete a room with its members and messages (its creator only)", {
            **success(200, "Room deleted successfully", obj({"room_id": ROOM_ID, "deleted_by": USER_ID})),
            **errors(401, 403, 404, 429)}, auth=True, parameters=[path_param("room_id")]),
    },
    "/api/v1/messages": {
        "get": operation(
            "A room's newest messages, oldest first (limit default 50, max 100)",
            {**success(200, "Messages retrieved successfully", obj({
                "messages": {"type": "array", "items": ref("Message")}, "room_id": STRING,
                "count": INTEGER})), **errors(401, 404)}, auth=True,
            parameters=[query("room_id", "the room", required=True), query("limit", "how many"),
                        query("before", "only messages with a smaller id: the page before")]),
        "post": operation(
            "Post a message to a room you are a member of; everyone live in it hears it. In a "
            "direct room whose other member has blocked the author: 403 `You cannot do this to "
            "this user`",
            {**success(201, "Message sent successfully", ref("PostedMessage")),
             **errors(401, 403, 404, 409, 429)}, auth=True,
            body={"type": "object", "required": ["room_id"], "properties": {
                "room_id": STRING,
                "content": {"type": "string", "maxLength": 4000,
                            "description": "1-4000 characters; may be empty or left out when "
                                           "attachments are given"},
                "client_id": {"type": "string", "minLength": 1, "maxLength": 64},
                "attachments": {"type": "array", "maxItems": 10, "items": {
                    "type": "string", "pattern": "^file_[0-9a-f]{8}$"},
                    "description": "ids of the sender's uploads (1.3)"},
                "reply_to": {"type": "integer", "minimum": 0,
                             "description": "a message of the same room this one answers "
                                            "(1.3); else 400 `Invalid reply`"}}}),
    },
    "/api/v1/messages/{message_id}": {
        "patch": operation(
            "Edit a message (its author only, and not after being banned from its room: 403 "
            "`You are banned from this room`); the room hears `message_updated`",
            {**success(200, "Message updated", ref("Message")), **errors(401, 403, 404, 429)},
            auth=True, parameters=[path_param("message_id")],
            body={"type": "object", "required": ["content"], "properties": {
                "content": {"type": "string", "minLength": 1, "maxLength": 4000}}}),
        "delete": operation(
            "Delete a message (its author, the room's creator or an admin); it is gone from "
            "history and replay, and the room hears `message_deleted`",
            {**success(200, "Message deleted", obj({"id": INTEGER, "room_id": ROOM_ID})),
             **errors(401, 403, 404, 429)}, auth=True, parameters=[path_param("message_id")]),
    },
    "/api/v1/messages/{message_id}/report": {"post": operation(
        "Report a message to the admins and the room's moderators (anyone who may read it, "
        "once per message: 409 `Already reported`); they get a `report` frame. The report keeps "
        "a copy of the message's text",
        {**success(201, "Report received", obj({"report": ref("Report")})),
         **errors(400, 401, 404, 409, 429)}, auth=True, parameters=[path_param("message_id")],
        body={"type": "object", "properties": {"reason": {"type": "string", "maxLength": 500}}},
        body_optional=True)},
    "/api/v1/messages/{message_id}/reactions": {"post": operation(
        "React to a message (members who may post in its room: 403 with the posting error "
        "otherwise). At most 20 different emoji on a message: 400 `Too many reactions`; an "
        "emoji outside the rule: 400 `Invalid emoji`. The room hears `reactions`; reacting "
        "twice changes nothing",
        {**success(200, "Reaction added", ref("Reactions")), **errors(401, 403, 404, 429)},
        auth=True, parameters=[path_param("message_id")],
        body={"type": "object", "required": ["emoji"], "properties": {"emoji": EMOJI}})},
    "/api/v1/messages/{message_id}/reactions/{emoji}": {"delete": operation(
        "Take back one's reaction (the emoji URL-encoded); taking back one not made changes "
        "nothing",
        {**success(200, "Reaction removed", ref("Reactions")), **errors(401, 403, 404, 429)},
        auth=True, parameters=[path_param("message_id"), path_param("emoji")])},
    "/api/v1/messages/{message_id}/pin": {
        "post": operation(
            "Pin a message (the room's moderators, owner and admins; in a direct room either "
            "member). At most 50 pins a room: 400 `Too many pins`. The room hears "
            "`message_pinned`",
            {**success(200, "Message pinned", ref("Pin")), **errors(401, 403, 404, 429)},
            auth=True, parameters=[path_param("message_id")]),
        "delete": operation(
            "Unpin a message (who may pin it); the room hears `message_unpinned`",
            {**success(200, "Message unpinned", ref("Pin")), **errors(401, 403, 404, 429)},
            auth=True, parameters=[path_param("message_id")]),
    },
    "/api/v1/reports": {"get": operation(
        "Reports, newest first: an admin's from every room, direct rooms included; anyone "
        "else's from the rooms they moderate (those they created, but not reports of their "
        "own messages, nor of a room they are banned from). Pages of `limit` (default 50, max "
        "100); `before` a report id gives the page after it. 400 for another status",
        {**success(200, "Reports", obj({"reports": {"type": "array", "items": ref("Report")}})),
         **errors(400, 401)}, auth=True,
        parameters=[query("status", "open (the default), resolved, dismissed or all"),
                    query("limit", "reports per page (default 50, max 100)"),
                    query("before", "only reports with a smaller id (the next page)")])},
    "/api/v1/reports/{report_id}": {"patch": operation(
        "Resolve or dismiss a report (admins and the room's moderators; 403 `You cannot change "
        "this report` for anyone else)",
        {**success(200, "Report updated", obj({"report": ref("Report")})),
         **errors(400, 401, 403, 404, 429)}, auth=True, parameters=[path_param("report_id")],
        body={"type": "object", "required": ["status"],
              "properties": {"status": {"enum": ["resolved", "dismissed"]}}})},
    "/api/v1/rooms/{room_id}/read": {"post": operation(
        "Move the caller's read marker forward to message_id (a member only; never back, never "
        "past the room's newest message); the caller's other connections get `read_marker`",
        {**success(200, "Read marker updated", MARKER), **errors(401, 403, 404, 429)}, auth=True,
        parameters=[path_param("room_id")],
        body={"type": "object", "required": ["message_id"],
              "properties": {"message_id": {"type": "integer", "minimum": 0}}})},
    "/api/v1/search": {"get": operation(
        "Messages that have every word of q (`word*`: a prefix; case ignored), newest first, "
        "from the rooms the caller may read; 400 `Query must be 1-200 characters`; 503 if "
        "this server's SQLite has no FTS5",
        {**success(200, "Search results", obj({
            "query": STRING, "count": INTEGER,
            "messages": {"type": "array", "items": ref("RoomMessage")}})),
         **errors(401, 404)}, auth=True,
        parameters=[query("q", "the words to find", required=True),
                    query("room_id", "only this room"),
                    query("limit", "how many (default 20, max 100)"),
                    query("before", "only messages with a smaller id: the next page")])},
    "/api/v1/uploads": {"post": {
        **operation(
            "Upload a file: the body is the file itself, `Content-Type` its type, `X-Filename` "
            "its name (percent-encoded UTF-8, 1-255 characters, no `/`, `\\` or control "
            "characters). Written to disk as it arrives; a body with no byte for 30 seconds is "
            "cut. `width`/`height` for PNG, JPEG, GIF and WebP images, read from the file's "
            "bytes. 413 `File too large` (over --max-upload-mb) or `Upload quota exceeded` "
            "(over --upload-quota-mb of files kept; admins have none). Counts against the REST "
            "write budget",
            {**success(201, "File uploaded", UPLOAD), **errors(401, 403, 408, 413, 429)},
            auth=True,
            parameters=[{"name": "X-Filename", "in": "header", "required": True,
                         "schema": {"type": "string"}}]),
        "requestBody": {"required": True, "content": {"*/*": {"schema": {
            "type": "string", "format": "binary"}}}}}},
    "/api/v1/files/{upload_id}": {"get": operation(
        "An uploaded file by its link (no token: an <img> can show it): a PNG, JPEG, GIF or "
        "WebP recognised by its bytes with its type, anything else as "
        "application/octet-stream with `Content-Disposition: attachment`; always `nosniff` and "
        "`Content-Security-Policy: default-src 'none'; sandbox`. One `Range` is answered (206, "
        "or 416). 404 `File not found` for a wrong or altered link, or a file deleted with its "
        "message; 403 `Link expired`",
        {"200": {"description": "The file", "content": {"*/*": {"schema": {
            "type": "string", "format": "binary"}}}},
         "206": {"description": "The part of the file the Range asked for",
                 "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
         "416": {"description": "`Range not satisfiable`, with `Content-Range: bytes */<size>`",
                 "content": {"application/json": {"schema": ref("Error")}}},
         **errors(403, 404)},
        parameters=[path_param("upload_id"), query("expires", "the link's end (Unix seconds)"),
                    query("sig", "the link's signature")])},
    "/api/v1/health": {"get": operation("Is the server up, and for how long", {
        **success(200, "Server is running", obj({"status": {"const": "ok"}, "timestamp": INTEGER,
                                                 "uptime": STRING, "uptime_seconds": INTEGER})),
        **errors()})},
    "/api/v1/info": {"get": operation(
        "The server's name, version, WebSocket port, the WebSocket URL clients should use "
        "(--public-ws-url, or ws://<this request's host>:<ws port>), whether anyone may "
        "register (--registration), and who may create rooms and open direct rooms "
        "(--room-creation, --direct-messages)", {
        **success(200, "Server information retrieved successfully", obj({
            "name": STRING, "version": STRING, "description": STRING, "timestamp": INTEGER,
            "ws_port": INTEGER, "websocket_url": STRING,
            "registration": {"enum": ["open", "closed"]}, "policies": POLICIES})),
        **errors()})},
    "/api/v1/echo": {
        "get": operation("Echo the request", {**success(200, "Echo GET request received", obj({
            "method": STRING, "path": STRING, "user_agent": STRING, "timestamp": INTEGER})),
            **errors()}),
        "post": operation("Echo the request and its body (as text)", {
            **success(200, "Echo POST request received", obj({
                "method": STRING, "path": STRING, "received_data": STRING, "timestamp": INTEGER})),
            **errors()}),
    },
    "/api/v1/protected": {"get": operation("A token check and nothing more", {
        **success(200, "This is a protected endpoint", obj({
            "secret_info": STRING, "timestamp": INTEGER, "access_level": STRING})),
        **errors(401)}, auth=True)},
    "/api/v1/openapi.json": {"get": operation("This document", {
        "200": {"description": "OpenAPI 3.1", "content": {"application/json": {
            "schema": {"type": "object", "required": ["openapi", "paths"]}}}}, **errors()})},
}


def with_head_and_options(paths):
    """Every path answers OPTIONS (a CORS preflight) with 204, and HEAD wherever GET works."""
    for template, operations in paths.items():
        in_path = [path_param(name) for name in re.findall(r"\{(\w+)\}", template)]
        if "get" in operations:
            operations["head"] = {"summary": "GET's status and headers, no body", "responses": {
                status: {"description": response["description"]}
                for status, response in operations["get"]["responses"].items()}}
            if operations["get"].get("parameters"):
                operations["head"]["parameters"] = operations["get"]["parameters"]
        operations["options"] = {"summary": "CORS preflight", "responses": {
            "204": {"description": "the CORS headers, no body, no token needed"}}}
        if in_path:
            operations["options"]["parameters"] = in_path
    return paths


# What a user whose password an admin gave (must_change_password) may still ask;
# any other operation with a token may answer 403 `Password change required`.
BEFORE_PASSWORD_CHANGE = {("/api/v1/auth/password", "post"), ("/api/v1/auth/logout", "post"),
                          ("/api/v1/auth/refresh", "post"), ("/api/v1/users/me", "get")}


def with_password_change_required(paths):
    """Every operation that needs a token, but those above, may answer 403."""
    for template, operations in paths.items():
        for method, op in operations.items():
            if "security" in op and (template, method) not in BEFORE_PASSWORD_CHANGE:
                op["responses"].setdefault("403", errors(403)["403"])
    return paths


def document(version, server_url="http://127.0.0.1:8080"):
    """The OpenAPI document; server_url is where the reader reached the API."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SwiftChat",
            "version": version,
            "description": (
                "REST half of SwiftChat. Every answer is an envelope: "
                "`{success: true, message, data}` or `{success: false, message, error}`. "
                "A method a path does not serve is 405 with an `Allow` header; an unknown "
                "path is 404; both are error envelopes. Every response carries CORS headers. "
                "The WebSocket API (port 8081) is described in docs/API.md."),
        },
        "servers": [{"url": server_url}],
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "paths": with_head_and_options(with_password_change_required(PATHS)),
    }
