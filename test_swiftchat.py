"""The REST API, the store beneath it, and the command line, tested through real ports."""

import io
import json
import logging
import os
import re
import signal
import socket
import struct
import threading
import time

import jwt
import openapi_spec_validator
import pytest
from websockets.exceptions import ConnectionClosed

import accounts
import store
import swiftchat
import swiftchat_http
import swiftchat_routes
import swiftchat_ws
from conftest import (HERE, NO_LIMITS, TEST_SECRET, Api, ChatClient, http_connection, login,
                      run_cli, start_cli)

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def error_of(reply):
    assert reply.json["success"] is False
    assert set(reply.json) == {"success", "message", "error"}
    return reply.json["error"]


# -- registration and login ---------------------------------------------------

def test_register_returns_token_id_and_username(api):
    reply = api.post("/auth/register", {"username": "alice", "password": "password123"})
    assert reply.status == 201
    assert reply.json["message"] == "User registered successfully"
    assert re.fullmatch(r"user_[0-9a-f]{8}", reply.data["id"])
    assert reply.data["username"] == "alice"
    claims = jwt.decode(reply.data["token"], TEST_SECRET, algorithms=["HS256"], issuer="SwiftChat")
    assert claims["sub"] == reply.data["id"] and claims["username"] == "alice"
    assert claims["exp"] - claims["iat"] == 3600


def test_register_taken_name_is_409_whatever_the_case(api):
    api.register("bob")
    reply = api.post("/auth/register", {"username": "BOB", "password": "password123"})
    assert reply.status == 409
    assert reply.json == {"success": False, "message": "User already exists",
                          "error": "Username already taken"}


@pytest.mark.parametrize("body, field", [
    ({"password": "password123"}, "username"),
    ({"username": "carol"}, "password"),
    ({"username": "ab", "password": "password123"}, "username"),
    ({"username": "x" * 33, "password": "password123"}, "username"),
    ({"username": "bad name", "password": "password123"}, "username"),
    ({"username": 42, "password": "password123"}, "username"),
    ({"username": "carol", "password": "short"}, "password"),
    ({"username": "carol", "password": "p" * 129}, "password"),
    ({"username": "carol", "password": ["password123"]}, "password"),
    ({"username": "carol\ud800", "password": "password123"}, "username"),
])
def test_register_rejects_bad_fields_naming_the_field(api, body, field):
    reply = api.post("/auth/register", raw=json.dumps(body).encode())
    assert reply.status == 400
    assert field in error_of(reply)


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"a string"', b"", b"\xff\xfe", b"[" * 5000],
                         ids=["broken", "array", "string", "empty", "not utf-8", "deep nesting"])
def test_a_body_that_is_not_a_json_object_is_400_invalid_json(api, raw):
    reply = api.call("POST", "/auth/register", raw=raw)
    assert reply.status == 400
    assert error_of(reply) == "Invalid JSON format"


def test_login_succeeds_with_any_letter_case_of_the_name(api):
    _, user_id, _ = api.register("dave")
    reply = login(api, "DAVE")
    assert reply.status == 200
    assert reply.json["message"] == "Login successful"
    assert reply.data["id"] == user_id and reply.data["username"] == "dave"
    assert api.get("/users/me", token=reply.data["token"]).status == 200


@pytest.mark.parametrize("username, password", [("erin", "wrong-password"), ("nobody", "password123")])
def test_login_failure_is_the_same_401_for_unknown_user_and_wrong_password(api, username, password):
    api.register("erin")
    reply = login(api, username, password)
    assert reply.status == 401
    assert reply.json == {"success": False, "message": "Invalid credentials",
                          "error": "Username or password is incorrect"}


def test_login_without_a_password_is_400(api):
    reply = api.post("/auth/login", {"username": "frank"})
    assert reply.status == 400 and "password" in error_of(reply)


def test_passwords_are_stored_as_pbkdf2_with_the_configured_count(api, server):
    api.register("gina", "secret-password")
    stored = server.store.user_with_password("gina")["password_hash"]
    algorithm, iterations, salt, digest = stored.split("$")
    assert (algorithm, iterations, len(salt), len(digest)) == ("pbkdf2_sha256", "1000", 32, 64)
    assert "secret-password" not in stored


def test_the_default_iteration_count_is_600000():
    assert accounts.hash_password("password123").startswith("pbkdf2_sha256$600000$")
    assert swiftchat.parse_args([], environ={}).pbkdf2_iterations == 600_000


# -- tokens --------------------------------------------------------------------

def make_token(secret=TEST_SECRET, algorithm="HS256", **overrides):
    now = int(time.time())
    claims = {"sub": "user_00000000", "username": "x", "iat": now, "exp": now + 60,
              "iss": "SwiftChat", **overrides}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, algorithm=algorithm)


def test_a_missing_authorization_header_is_401(api):
    reply = api.get("/users/me")
    assert reply.status == 401
    assert reply.json == {"success": False, "message": "Authentication required",
                          "error": "Missing Authorization header"}


@pytest.mark.parametrize("kind", ["garbage", "not bearer", "expired", "forged", "alg none",
                                  "no exp", "wrong issuer", "unknown user"])
def test_a_bad_token_is_401_invalid_or_expired(api, kind):
    _, user_id, _ = api.register()
    now = int(time.time())
    headers = {
        "garbage": "Bearer not.a.token",
        "not bearer": "Basic dXNlcjpwYXNz",
        "expired": "Bearer " + make_token(sub=user_id, iat=now - 7200, exp=now - 3600),
        "forged": "Bearer " + make_token("some-other-secret-of-enough-length!!", sub=user_id),
        "alg none": "Bearer " + jwt.encode({"sub": user_id, "iat": now, "exp": now + 60,
                                            "iss": "SwiftChat"}, None, algorithm="none"),
        "no exp": "Bearer " + make_token(sub=user_id, exp=None),
        "wrong issuer": "Bearer " + make_token(sub=user_id, iss="Elsewhere"),
        "unknown user": "Bearer " + make_token(sub="user_deadbeef"),
    }
    reply = api.get("/users/me", headers={"Authorization": headers[kind]})
    assert reply.status == 401
    assert reply.json == {"success": False, "message": "Authentication required",
                          "error": "Invalid or expired token"}


# -- users ---------------------------------------------------------------------

def test_users_me_returns_the_token_owner(api):
    token, user_id, name = api.register()
    reply = api.get("/users/me", token=token)
    assert reply.json["message"] == "User information retrieved successfully"
    user = reply.data["user"]
    assert (user["id"], user["username"]) == (user_id, name)
    assert ISO.fullmatch(user["created_at"])
    # role: 1.2; must_change_password: 1.3, shown to the user and to admins; names: 1.3
    assert set(user) == {"id", "username", "created_at", "role", "must_change_password",
                         "display_name", "status"}
    assert (user["display_name"], user["status"]) == (name, "")  # until they are set


def test_users_are_listed_in_pages_with_the_total(api):
    token, first_id, _ = api.register()
    ids = {first_id} | {api.register()[1] for _ in range(4)}
    everyone = api.get("/users?limit=100", token=token).data["users"]
    assert {u["id"] for u in everyone} == ids
    # The contract's order: by created_at, then id for users made in the same second.
    assert everyone == sorted(everyone, key=lambda u: (u["created_at"], u["id"]))
    page = api.get("/users?limit=2&offset=1", token=token)
    assert page.status == 200
    assert page.data["total"] == 5 and page.data["limit"] == 2 and page.data["offset"] == 1
    assert page.data["users"] == everyone[1:3]
    default = api.get("/users", token=token).data
    assert (default["limit"], default["offset"], len(default["users"])) == (10, 0, 5)
    assert api.get("/users?limit=5000", token=token).data["limit"] == 100


@pytest.mark.parametrize("query", ["limit=abc", "limit=-1", "offset=-5", "limit=1.5", "limit=", "offset=x"])
def test_a_bad_limit_or_offset_is_400(api, query):
    token, _, _ = api.register()
    for path in ("/users?", "/rooms?"):
        reply = api.get(path + query, token=token)
        assert reply.status == 400
        assert re.search("limit|offset", error_of(reply))


def test_users_by_id(api):
    token, user_id, name = api.register()
    reply = api.get(f"/users/{user_id}", token=token)
    assert reply.status == 200 and reply.data["user"]["username"] == name
    missing = api.get("/users/user_00000000", token=token)
    assert missing.status == 404 and error_of(missing) == "User not found"
    assert api.get(f"/users/{user_id}").status == 401


# -- rooms ---------------------------------------------------------------------

def test_create_room_returns_it_and_makes_the_creator_a_member(api):
    token, user_id, _ = api.register()
    reply = api.post("/rooms", {"name": "  General  ", "description": "Main room"}, token=token)
    assert reply.status == 201
    assert reply.json["message"] == "Room created successfully"
    room = reply.data
    assert re.fullmatch(r"room_[0-9a-f]{8}", room["id"])
    assert (room["name"], room["description"], room["creator_id"]) == ("General", "Main room", user_id)
    assert ISO.fullmatch(room["created_at"])
    listed = api.get("/rooms").data["rooms"]
    assert listed == [{**room, "member_count": 1}]


def test_room_names_are_unique_whatever_the_case(api):
    token, _, _ = api.register()
    api.create_room(token, "Lobby")
    reply = api.post("/rooms", {"name": "LOBBY"}, token=token)
    assert reply.status == 409 and error_of(reply) == "Room name already exists"


@pytest.mark.parametrize("body, field", [
    ({}, "name"), ({"name": "   "}, "name"), ({"name": "n" * 65}, "name"), ({"name": 7}, "name"),
    ({"name": "ok", "description": "d" * 501}, "description"),
    ({"name": "ok", "description": 5}, "description"),
])
def test_create_room_rejects_bad_fields(api, body, field):
    token, _, _ = api.register()
    reply = api.post("/rooms", body, token=token)
    assert reply.status == 400 and field in error_of(reply)


def test_create_room_needs_a_token(api):
    assert api.post("/rooms", {"name": "x"}).status == 401


def test_rooms_list_needs_no_token_and_pages(api):
    token, _, _ = api.register()
    created = [api.create_room(token) for _ in range(3)]  # within one second, most likely
    every_room = api.get("/rooms").data["rooms"]
    assert [room["id"] for room in every_room] == created  # creation order, not id order
    assert every_room == sorted(every_room, key=lambda r: r["created_at"])
    page = api.get("/rooms?limit=2&offset=1")
    assert page.status == 200
    assert page.json["message"] == "Successfully retrieved rooms"
    assert page.data["rooms"] == every_room[1:3]
    assert (page.data["count"], page.data["total"], page.data["limit"], page.data["offset"]) == (2, 3, 2, 1)
    assert api.get("/rooms?limit=500").data["limit"] == 100
    assert api.get("/rooms").data["limit"] == 50


def test_a_listed_page_changes_as_soon_as_its_rooms_and_messages_do(api, chat):
    token, _, _ = api.register()
    room_id = api.create_room(token, "Changing", description="before")
    first = api.get("/rooms").data["rooms"]
    assert api.get("/rooms").data["rooms"] == first  # read twice: the kept answer
    assert api.call("PATCH", f"/rooms/{room_id}", {"description": "after"}, token=token).status == 200
    other, _, _ = api.register()
    assert api.post("/rooms/join", {"room_id": room_id}, token=other).status == 200
    [room] = api.get("/rooms").data["rooms"]
    assert (room["description"], room["member_count"]) == ("after", 2)
    history = f"/messages?room_id={room_id}"
    assert api.get(history, token=token).data["messages"] == []
    assert api.post("/messages", {"room_id": room_id, "content": "news"}, token=token).status == 201
    assert [m["content"] for m in api.get(history, token=token).data["messages"]] == ["news"]


def test_join_is_idempotent_and_keeps_the_first_join_time(api):
    owner, _, _ = api.register()
    room_id = api.create_room(owner)
    token, user_id, _ = api.register()
    first = api.post("/rooms/join", {"room_id": room_id}, token=token)
    assert first.status == 200 and first.json["message"] == "Successfully joined room"
    assert first.data["room_id"] == room_id and first.data["user_id"] == user_id
    assert ISO.fullmatch(first.data["joined_at"])
    again = api.post("/rooms/join", {"room_id": room_id}, token=token)
    assert again.status == 200 and again.data["joined_at"] == first.data["joined_at"]
    assert api.get("/rooms").data["rooms"][0]["member_count"] == 2


def test_join_and_leave_an_unknown_room_are_404(api):
    token, _, _ = api.register()
    for path in ("/rooms/join", "/rooms/leave"):
        reply = api.post(path, {"room_id": "room_00000000"}, token=token)
        assert reply.status == 404 and error_of(reply) == "Room not found"
    assert api.post("/rooms/join", {}, token=token).status == 400


def test_leave_removes_membership_and_a_second_leave_is_400(api):
    owner, _, _ = api.register()
    room_id = api.create_room(owner)
    token, user_id, _ = api.register()
    api.post("/rooms/join", {"room_id": room_id}, token=token)
    reply = api.post("/rooms/leave", {"room_id": room_id}, token=token)
    assert reply.status == 200 and reply.json["message"] == "Successfully left room"
    assert reply.data == {"room_id": room_id, "user_id": user_id}
    assert api.get("/rooms").data["rooms"][0]["member_count"] == 1
    again = api.post("/rooms/leave", {"room_id": room_id}, token=token)
    assert again.status == 400 and error_of(again) == "You are not a member of this room"


def test_only_the_creator_may_update_the_description(api):
    owner, owner_id, _ = api.register()
    room_id = api.create_room(owner)
    other, _, _ = api.register()
    denied = api.call("PATCH", f"/rooms/{room_id}", {"description": "mine now"}, token=other)
    assert denied.status == 403
    assert denied.json == {"success": False, "message": "Forbidden",
                           "error": "Only the room creator can update this room"}
    reply = api.call("PATCH", f"/rooms/{room_id}", {"description": "Updated"}, token=owner)
    assert reply.status == 200
    assert reply.json["message"] == "Room description updated successfully"
    assert reply.data == {"room_id": room_id, "new_description": "Updated", "updated_by": owner_id,
                          "posting": "everyone", "slow_mode": 0}  # the room's settings: 1.3
    assert api.get("/rooms").data["rooms"][0]["description"] == "Updated"


@pytest.mark.parametrize("body", [{}, {"description": 3}, {"description": None}])
def test_update_without_a_string_description_is_400(api, body):
    owner, _, _ = api.register()
    room_id = api.create_room(owner)
    reply = api.call("PATCH", f"/rooms/{room_id}", body, token=owner)
    assert reply.status == 400 and "description" in error_of(reply)


def test_update_and_delete_an_unknown_room_are_404(api):
    token, _, _ = api.register()
    assert api.call("PATCH", "/rooms/room_00000000", {"description": "x"}, token=token).status == 404
    assert api.call("DELETE", "/rooms/room_00000000", token=token).status == 404


def test_only_the_creator_may_delete_and_deletion_takes_members_and_messages(api, chat):
    owner, owner_id, _ = api.register()
    room_id = api.create_room(owner, "Doomed")
    speaker = chat(owner)
    speaker.request({"type": "join_room", "room_id": room_id})
    speaker.request({"type": "send_message", "content": "soon gone"})
    other, _, _ = api.register()
    denied = api.call("DELETE", f"/rooms/{room_id}", token=other)
    assert denied.status == 403 and error_of(denied) == "Only the room creator can delete this room"
    reply = api.call("DELETE", f"/rooms/{room_id}", token=owner)
    assert reply.status == 200 and reply.json["message"] == "Room deleted successfully"
    assert reply.data == {"room_id": room_id, "deleted_by": owner_id}
    assert api.get("/rooms").data["total"] == 0
    assert api.get(f"/messages?room_id={room_id}", token=owner).status == 404
    # The name is free again, and the new room starts with no history.
    new_id = api.create_room(owner, "Doomed")
    assert api.get(f"/messages?room_id={new_id}", token=owner).data["messages"] == []


# -- messages ------------------------------------------------------------------

def test_history_needs_a_room_id_and_a_known_room(api):
    token, _, _ = api.register()
    missing = api.get("/messages", token=token)
    assert missing.status == 400 and "room_id" in error_of(missing)
    unknown = api.get("/messages?room_id=room_00000000", token=token)
    assert unknown.status == 404 and error_of(unknown) == "Room not found"
    assert api.get("/messages?room_id=room_00000000").status == 401


@pytest.mark.parametrize("server_options", [NO_LIMITS])
def test_history_returns_the_newest_messages_oldest_first_and_pages_with_before(api, chat):
    token, user_id, name = api.register()
    room_id = api.create_room(token)
    client = chat(token)
    client.request({"type": "join_room", "room_id": room_id})
    for n in range(120):
        client.send({"type": "send_message", "content": f"message {n}"})
    for n in range(120):
        assert client.recv_type("message_sent")["data"]["content"] == f"message {n}"

    newest = api.get(f"/messages?room_id={room_id}", token=token)
    assert newest.status == 200 and newest.json["message"] == "Messages retrieved successfully"
    assert newest.data["room_id"] == room_id and newest.data["count"] == 50
    contents = [m["content"] for m in newest.data["messages"]]
    assert contents == [f"message {n}" for n in range(70, 120)]
    first = newest.data["messages"][0]
    assert first["room_id"] == room_id and first["user_id"] == user_id
    assert isinstance(first["id"], int) and isinstance(first["timestamp"], int)
    assert first["sender"] == {"id": user_id, "username": name, "password": "", "is_online": True}

    older = api.get(f"/messages?room_id={room_id}&limit=30&before={first['id']}", token=token)
    assert [m["content"] for m in older.data["messages"]] == [f"message {n}" for n in range(40, 70)]
    ids = [m["id"] for m in older.data["messages"]]
    assert ids == sorted(ids) and ids[-1] < first["id"]
    assert api.get(f"/messages?room_id={room_id}&limit=1000", token=token).data["count"] == 100
    assert api.get(f"/messages?room_id={room_id}&before=x", token=token).status == 400


# -- system endpoints ------------------------------------------------------------

def test_health_reports_uptime(api):
    reply = api.get("/health")
    assert reply.status == 200 and reply.json["message"] == "Server is running"
    assert reply.data["status"] == "ok"
    assert re.fullmatch(r"\d+h\d\dm\d\ds", reply.data["uptime"])
    assert isinstance(reply.data["uptime_seconds"], int)
    assert abs(reply.data["timestamp"] - time.time()) < 5


def test_info_names_the_server_and_its_websocket_port(api, server):
    reply = api.get("/info")
    assert reply.json["message"] == "Server information retrieved successfully"
    assert reply.data["name"] == "SwiftChat HTTP Server"
    assert reply.data["version"] == swiftchat.VERSION
    assert reply.data["description"] == "A simple HTTP server with WebSocket support"
    assert reply.data["ws_port"] == server.ws_port


def test_echo_get_and_post(api):
    got = api.get("/echo", headers={"User-Agent": "curl/7.68.0"})
    assert got.json["message"] == "Echo GET request received"
    assert {k: got.data[k] for k in ("method", "path", "user_agent")} == {
        "method": "GET", "path": "/api/v1/echo", "user_agent": "curl/7.68.0"}
    posted = api.call("POST", "/echo", raw=b'{"test": "data"}')
    assert posted.json["message"] == "Echo POST request received"
    assert posted.data["received_data"] == '{"test": "data"}'
    assert posted.data["method"] == "POST" and isinstance(posted.data["timestamp"], int)


def test_protected_needs_a_token(api):
    token, _, _ = api.register()
    reply = api.get("/protected", token=token)
    assert reply.json["message"] == "This is a protected endpoint"
    assert reply.data["secret_info"] == "Secret information"
    assert reply.data["access_level"] == "authenticated"
    assert api.get("/protected").status == 401


# -- HTTP edges: CORS, unknown paths, methods, sizes ------------------------------

@pytest.mark.parametrize("method, path, status", [
    ("GET", "/health", 200), ("GET", "/nowhere", 404), ("PUT", "/rooms", 405),
    ("GET", "/users/me", 401), ("OPTIONS", "/rooms/join", 204),
])
def test_every_response_carries_cors_headers(api, method, path, status):
    reply = api.call(method, path)
    assert reply.status == status
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert "OPTIONS" in reply.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in reply.headers["Access-Control-Allow-Headers"]
    if status != 204:
        assert reply.headers["Content-Type"].startswith("application/json")
        assert reply.json["success"] is (status == 200)


def test_cors_headers_are_the_documents_and_a_patch_preflight_is_allowed(api):
    reply = api.get("/health")
    assert reply.headers["Access-Control-Allow-Methods"] == "GET, POST, PUT, DELETE, OPTIONS"
    assert reply.headers["Access-Control-Allow-Headers"] == "Content-Type, Authorization, X-Requested-With"
    preflight = api.call("OPTIONS", "/rooms/room_12345678", headers={
        "Origin": "http://elsewhere.example", "Access-Control-Request-Method": "PATCH"})
    assert preflight.status == 204
    assert "PATCH" in preflight.headers["Access-Control-Allow-Methods"].split(", ")


def test_unknown_paths_are_404_and_wrong_methods_405_as_json(api):
    assert error_of(api.get("/nowhere")).startswith("No such endpoint")
    reply = api.call("DELETE", "/auth/login")
    assert reply.status == 405 and reply.json["message"] == "Method not allowed"


def test_a_body_over_64_kib_is_413(api):
    reply = api.call("POST", "/echo", raw=b"x" * (64 * 1024 + 1))
    assert reply.status == 413 and reply.json["success"] is False


@pytest.mark.parametrize("length", ["abc", "-1", "1e3"])
def test_a_bogus_content_length_is_400(server, length):
    connection = http_connection(server.http_port)
    connection.putrequest("POST", "/api/v1/echo")
    connection.putheader("Content-Length", length)
    connection.endheaders()
    reply = connection.getresponse()
    assert reply.status == 400 and json.loads(reply.read())["error"] == "Malformed request"


def test_a_post_without_content_length_has_an_empty_body(server):
    connection = http_connection(server.http_port)
    connection.putrequest("POST", "/api/v1/auth/register")
    connection.endheaders()
    reply = connection.getresponse()
    assert reply.status == 400 and json.loads(reply.read())["error"] == "Invalid JSON format"


@pytest.mark.parametrize("hang_up", ["close", "reset"])
def test_a_client_that_hangs_up_mid_request_leaves_no_traceback(server, caplog, capfd, hang_up):
    """Guarded twice: read_body takes a reset during the body as an empty body,
    and handle_error keeps quiet when the answer then cannot be written."""
    with caplog.at_level(logging.DEBUG):
        for _ in range(20):
            with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as sock:
                sock.sendall(b"POST /api/v1/echo HTTP/1.1\r\nContent-Length: 1000\r\n\r\npartial")
                if hang_up == "reset":  # RST instead of FIN: the server's read and write both fail
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    sock.shutdown(socket.SHUT_WR)
                    sock.recv(4096)  # the server's 400 for the short body
        # Each handler thread logs (or prints) before its connection counts as closed.
        assert server.http.wait_for_connections(0, timeout=10)
        assert Api(server.http_port).get("/health").status == 200
    assert "Traceback" not in caplog.text
    assert "Traceback" not in capfd.readouterr().err


def test_a_malformed_request_line_gets_a_json_error(server):
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        head, _, body = sock.makefile("rb").read().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert json.loads(body)["success"] is False


def test_many_requests_share_one_keep_alive_connection(api):
    for _ in range(20):
        assert api.get("/health").status == 200
    assert api.get("/health").headers.get("Connection") != "close"


def test_an_unexpected_error_is_a_generic_500_with_a_logged_traceback(api, monkeypatch, caplog):
    def broken(request):
        raise RuntimeError("internal detail that must stay private")
    routes = [("GET", re.compile("/api/v1/broken"), broken, swiftchat_routes.PUBLIC)]
    monkeypatch.setattr(swiftchat_http, "COMPILED_ROUTES", routes + swiftchat_http.COMPILED_ROUTES)
    with caplog.at_level(logging.ERROR, logger="swiftchat"):
        reply = api.get("/broken")
    assert reply.status == 500
    assert reply.json == {"success": False, "message": "Internal server error",
                          "error": "Internal server error"}
    assert "internal detail" in caplog.text and "Traceback" in caplog.text
    assert api.get("/health").status == 200


def test_tokens_and_passwords_never_reach_the_logs(api, caplog):
    with caplog.at_level(logging.DEBUG):
        token, _, _ = api.register("henry", "hunter2-password")
        logged_in = login(api, "henry", "hunter2-password")
        api.get("/users/me?x=1", token=token)
    assert "hunter2-password" not in caplog.text
    assert token not in caplog.text and logged_in.data["token"] not in caplog.text
    assert "GET /api/v1/users/me 200" in caplog.text


def test_concurrent_registrations_and_room_creations_all_land(server):
    token, _, _ = Api(server.http_port).register()
    results = []

    def worker(n):
        api = Api(server.http_port)
        results.append(api.post("/auth/register", {"username": f"racer{n}", "password": "password123"}).status)
        results.append(api.post("/auth/register", {"username": "samename", "password": "password123"}).status)
        results.append(api.post("/rooms", {"name": f"race room {n}"}, token=token).status)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [201] * 17 + [409] * 7
    assert Api(server.http_port).get("/users", token=token).data["total"] == 10
    assert Api(server.http_port).get("/rooms").data["total"] == 8


def test_the_chat_page_and_its_assets_are_served_with_their_types(server):
    connection = http_connection(server.http_port)
    for path, content_type in [("/", "text/html"), ("/static/main.js", "javascript"),
                               ("/static/chat.css", "text/css")]:
        connection.request("GET", path)
        reply = connection.getresponse()
        assert reply.status == 200 and content_type in reply.headers["Content-Type"]
        assert reply.read()


@pytest.mark.parametrize("path", ["/static/..", "/static/.hidden", "/static/%2e%2e%2fswiftchat.py",
                                  "/static/../swiftchat.py", "/static/nope.js"])
def test_static_files_cannot_be_read_from_outside_their_folder(server, path):
    connection = http_connection(server.http_port)
    connection.request("GET", path)
    reply = connection.getresponse()
    assert reply.status == 404 and json.loads(reply.read())["success"] is False


# -- embedding, restart and the command line --------------------------------------

def test_two_embedded_servers_run_side_by_side(serve_with):
    one, two = serve_with(db=":memory:"), serve_with()
    assert len({one.http_port, one.ws_port, two.http_port, two.ws_port}) == 4
    Api(one.http_port).register("onlyinone")
    assert login(Api(two.http_port), "onlyinone").status == 401


def test_a_restart_keeps_users_rooms_messages_and_tokens(serve_with):
    with serve_with(jwt_secret=None) as first:  # the secret kept in the database
        api = Api(first.http_port)
        token, _, _ = api.register("keeper")
        room_id = api.create_room(token, "Kept")
        client = ChatClient(first.ws_port)
        client.request({"type": "auth", "token": token})
        client.request({"type": "join_room", "room_id": room_id})
        client.request({"type": "send_message", "content": "still here"})
        client.close()
    with serve_with(jwt_secret=None) as second:
        api = Api(second.http_port)
        assert api.get("/users/me", token=token).data["user"]["username"] == "keeper"
        assert api.get("/rooms").data["rooms"][0]["name"] == "Kept"
        history = api.get(f"/messages?room_id={room_id}", token=token).data["messages"]
        assert [m["content"] for m in history] == ["still here"]


def test_flags_win_over_environment_variables():
    environ = {"SWIFTCHAT_HTTP_PORT": "9000", "SWIFTCHAT_DB": "env.db", "JWT_SECRET": "plain"}
    from_env = swiftchat.parse_args([], environ)
    assert (from_env.http_port, from_env.db, from_env.jwt_secret) == (9000, "env.db", "plain")
    flagged = swiftchat.parse_args(["--http-port", "9100"], environ)
    assert flagged.http_port == 9100
    both = swiftchat.parse_args([], {**environ, "SWIFTCHAT_JWT_SECRET": "preferred"})
    assert both.jwt_secret == "preferred"
    defaults = swiftchat.parse_args([], {})
    assert (defaults.host, defaults.http_port, defaults.ws_port, defaults.db, defaults.auth_timeout) == (
        "127.0.0.1", 8080, 8081, "swiftchat.db", 30.0)


def test_help_documents_every_option():
    result = run_cli("--help")
    assert result.returncode == 0
    for flag in ("--host", "--http-port", "--ws-port", "--db", "--jwt-secret", "--log-level",
                 "--auth-timeout", "--pbkdf2-iterations"):
        assert flag in result.stdout


def test_a_bad_environment_variable_is_named_in_one_line():
    result = run_cli(env={**os.environ, "SWIFTCHAT_HTTP_PORT": "eighty"})
    assert result.returncode == 2
    assert result.stderr == ("swiftchat.py: error: environment variable SWIFTCHAT_HTTP_PORT: "
                             "'eighty' is not a port number (0-65535)\n")


def test_with_a_wildcard_host_the_start_up_line_names_an_address_one_can_open(tmp_path):
    process, http_port, _ = start_cli("--host", "0.0.0.0", "--db", str(tmp_path / "w.db"))
    try:
        assert process.stdout.readline() == "Ctrl+C to stop.\n"
        assert Api(http_port).get("/health").status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=15)
    assert "0.0.0.0" not in out


@pytest.mark.parametrize("args", [["--http-port", "http"], ["--ws-port", "70000"],
                                  ["--auth-timeout", "-1"], ["--pbkdf2-iterations", "0"],
                                  ["--log-level", "loud"]])
def test_an_invalid_option_value_exits_with_one_sentence(args):
    result = run_cli(*args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"error: argument {args[0]}: '{args[1]}' is not" in result.stderr


@pytest.mark.sqlite_only
def test_a_port_in_use_or_an_unopenable_database_exits_with_one_sentence(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for port_flag in ("--http-port", "--ws-port"):
            other = "--ws-port" if port_flag == "--http-port" else "--http-port"
            result = run_cli(port_flag, port, other, "0", "--db", str(tmp_path / "a.db"))
            assert result.returncode == 1
            assert "cannot listen" in result.stderr and port in result.stderr
            assert "Traceback" not in result.stderr
    result = run_cli("--http-port", "0", "--ws-port", "0", "--db", str(tmp_path / "no" / "such" / "x.db"))
    assert result.returncode == 1
    assert "cannot open the database" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.sqlite_only
def test_sigterm_closes_websockets_with_1001_and_leaves_the_database_whole(tmp_path, serve_with):
    db = tmp_path / "term.db"
    process, http_port, ws_port = start_cli("--db", str(db))
    try:
        api = Api(http_port)
        token, _, _ = api.register("terminator")
        room_id = api.create_room(token, "Last words")
        client = ChatClient(ws_port)
        client.request({"type": "auth", "token": token})
        client.request({"type": "join_room", "room_id": room_id})
        assert client.request({"type": "send_message", "content": "bye"})["success"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=5)
        assert client.ws.close_code == 1001
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    stderr = process.stderr.read()
    assert "Traceback" not in stderr
    assert "POST /api/v1/rooms 201" in stderr  # the access log is written out before exit
    process.stdout.close()
    process.stderr.close()
    assert not (tmp_path / "term.db-wal").exists() or (tmp_path / "term.db-wal").stat().st_size == 0
    again = serve_with(db=db, jwt_secret=None)  # the secret the process kept in db
    history = Api(again.http_port).get(f"/messages?room_id={room_id}", token=token)
    assert [m["content"] for m in history.data["messages"]] == ["bye"]


@pytest.mark.parametrize("interval", [0.01, 3600])
def test_the_log_writes_its_lines_in_order_by_itself_or_on_close(interval):
    stream = io.StringIO()
    handler = swiftchat.BatchedLog(stream, interval)
    logger = logging.getLogger(f"swiftchat.test-batched-log-{interval}")
    logger.addHandler(handler)
    try:
        for n in range(3):
            logger.warning("line %d", n)
        if interval < 1:  # the log thread writes them without being asked
            deadline = time.monotonic() + 5
            while stream.getvalue().count("\n") < 3 and time.monotonic() < deadline:
                threading.Event().wait(0.01)
            assert stream.getvalue() == "line 0\nline 1\nline 2\n"
        logger.warning("last words")
    finally:
        logger.removeHandler(handler)
        handler.close()  # writes out whatever is still gathered
    assert stream.getvalue() == "line 0\nline 1\nline 2\nlast words\n"


def test_a_record_that_cannot_be_formatted_leaves_the_log_writing(monkeypatch):
    monkeypatch.setattr(logging, "raiseExceptions", False)  # handleError stays quiet in tests
    stream = io.StringIO()
    handler = swiftchat.BatchedLog(stream, 0.01)
    logger = logging.getLogger("swiftchat.test-batched-log-bad-record")
    logger.addHandler(handler)
    try:
        logger.warning("a count of %d", "not a number")
        logger.warning("the next line")
        deadline = time.monotonic() + 5
        while "the next line" not in stream.getvalue() and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        assert stream.getvalue() == "the next line\n"  # written by the log thread, still running
        logger.warning("and the one after")
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert stream.getvalue() == "the next line\nand the one after\n"


def test_version_prints_the_servers_version():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"SwiftChat {swiftchat.VERSION}"


# -- the OpenAPI document -------------------------------------------------------------

def test_the_openapi_document_is_served_without_a_token_and_matches_the_routes(api):
    reply = api.get("/openapi.json")
    assert reply.status == 200 and reply.headers["Content-Type"] == "application/json"
    document = reply.json
    assert document["openapi"] == "3.1.0" and document["info"]["version"] == swiftchat.VERSION
    routes = {(pattern, method.lower()): access for method, pattern, _, access in swiftchat.ROUTES
              if pattern.startswith("/api/")}
    documented = {(path, method) for path, operations in document["paths"].items()
                  for method in operations if method not in ("head", "options")}
    assert documented == set(routes)
    for (path, method), access in routes.items():  # a token is asked for exactly where needed
        needs_token = "security" in document["paths"][path][method]
        assert needs_token == (access != swiftchat_routes.PUBLIC), (path, method)


def test_the_openapi_document_is_valid_openapi_3_1_and_names_the_host_it_was_asked_on(server):
    connection = http_connection(server.http_port)
    connection.request("GET", "/api/v1/openapi.json", headers={"Host": f"chat.example:{server.http_port}"})
    document = json.loads(connection.getresponse().read())
    openapi_spec_validator.validate(document)
    assert document["servers"] == [{"url": f"http://chat.example:{server.http_port}"}]


def test_info_says_where_the_websocket_is(server):
    connection = http_connection(server.http_port)
    connection.request("GET", "/api/v1/info", headers={"Host": "lab-pc.local:8080"})
    data = json.loads(connection.getresponse().read())["data"]
    assert data["websocket_url"] == f"ws://lab-pc.local:{server.ws_port}"


@pytest.mark.parametrize("host", ['evil"><script>', "a b", "x" * 300, "[::1", "host:port:9",
                                  "%2e%2e", "\u00e9t\u00e9.example"])
def test_a_hostile_host_header_never_reaches_the_urls_the_server_gives(server, host):
    connection = http_connection(server.http_port)
    connection.putrequest("GET", "/api/v1/info", skip_host=True)
    connection.putheader("Host", host.encode("utf-8"))
    connection.endheaders()
    data = json.loads(connection.getresponse().read())["data"]
    assert data["websocket_url"] == f"ws://127.0.0.1:{server.ws_port}"
    connection = http_connection(server.http_port)
    connection.putrequest("GET", "/api/v1/openapi.json", skip_host=True)
    connection.putheader("Host", host.encode("utf-8"))
    connection.endheaders()
    document = json.loads(connection.getresponse().read())
    assert document["servers"] == [{"url": f"http://127.0.0.1:{server.http_port}"}]


@pytest.mark.parametrize("server_options", [{"public_ws_url": "wss://chat.example/ws"}])
def test_public_ws_url_is_what_info_tells_clients(api):
    assert api.get("/info").data["websocket_url"] == "wss://chat.example/ws"


def test_an_answer_outside_the_openapi_document_fails_the_check():
    """The check every Api call makes is real: it refuses what the document does not allow."""
    from conftest import check_against_openapi
    with pytest.raises(AssertionError):
        check_against_openapi("GET", "/api/v1/health", 418, b"{}")
    with pytest.raises(Exception):
        check_against_openapi("GET", "/api/v1/health", 200,
                              b'{"success": true, "message": "Server is running", "data": {}}')
    check_against_openapi("GET", "/api/v1/nowhere", 404,
                          b'{"success": false, "message": "Not found", "error": "No such endpoint"}')


def test_the_api_reference_covers_every_route_and_frame_type(server):
    with open(os.path.join(HERE, "docs", "API.md"), encoding="utf-8") as reference:
        text = reference.read()
    for method, pattern, _, _ in swiftchat.ROUTES:
        if pattern.startswith("/api/v1/"):
            assert f"{method} {pattern[len('/api/v1'):]}" in text, (method, pattern)
    for frame_type in swiftchat_ws.ACTIONS:
        assert f'"type": "{frame_type}"' in text, frame_type


@pytest.mark.sqlite_only
def test_a_file_that_is_not_a_database_exits_with_one_sentence(tmp_path):
    not_a_database = tmp_path / "notes.db"
    not_a_database.write_bytes(b"these are my lecture notes, not SQLite" * 100)
    result = run_cli("--http-port", "0", "--ws-port", "0", "--db", str(not_a_database))
    assert result.returncode == 1
    assert "cannot open the database" in result.stderr and "Traceback" not in result.stderr


def test_messages_saved_together_share_one_transaction_yet_fail_alone(tmp_path):
    db = store.Store(tmp_path / "batch.db")
    try:
        user = db.create_user("batcher", "pbkdf2_sha256$1$00$00", "2025-07-20T13:30:00Z")
        kept = db.create_room("Kept", "", user["id"], "2025-07-20T13:30:00Z")
        gone = db.create_room("Gone", "", user["id"], "2025-07-20T13:30:00Z")
        db.delete_room(gone["id"])
        saved = db.add_messages([
            (kept["id"], user["id"], "first", 1, "a"),
            (gone["id"], user["id"], "into a deleted room", 2, None),
            (kept["id"], user["id"], "first", 3, "a"),  # a retry within the same batch
            (kept["id"], user["id"], "first, changed", 3, "a"),  # its client_id reused (1.2)
            (kept["id"], user["id"], "second", 4, None),
        ])
        first, refused, retry, reused, second = saved
        assert isinstance(refused, store.StoreError)
        assert first["duplicate"] is False and second["id"] > first["id"]
        assert retry == {"id": first["id"], "content": "first", "timestamp": 1, "duplicate": True,
                         "mentions": [], "mentioned_members": [], "attachments": [],
                         "reply_to": None, "reactions": [], "pinned": False}
        assert isinstance(reused, store.ClientIdReused)
        assert [m["content"] for m in db.messages(kept["id"], 10)] == ["first", "second"]
        with pytest.raises(store.StoreError):
            db.add_message(gone["id"], user["id"], "alone", 5)
    finally:
        db.close()


@pytest.mark.parametrize("width", [1, 2])
def test_reads_take_turns_first_come_first_served_and_never_more_at_once_than_allowed(width):
    # swiftchat_http.Turns orders GET requests (why: its docstring). Threads
    # queue one at a time behind the places held here; each leaving thread
    # must hand its place to the oldest waiter, never to a later one.
    turns = swiftchat_http.Turns(width)
    for _ in range(width):
        turns.__enter__()
    entered, inside, most_inside, lock = [], [0], [0], threading.Lock()

    def take_turn(n):
        with turns:
            with lock:
                entered.append(n)
                inside[0] += 1
                most_inside[0] = max(most_inside[0], inside[0])
            with lock:
                inside[0] -= 1

    threads = []
    for n in range(8):
        threads.append(threading.Thread(target=take_turn, args=(n,)))
        threads[-1].start()
        deadline = time.monotonic() + 5
        while len(turns._waiting) < n + 1:  # thread n is queued before n + 1 starts
            assert time.monotonic() < deadline
            time.sleep(0.001)
    for _ in range(width):
        turns.__exit__(None, None, None)
    for thread in threads:
        thread.join(timeout=5)
    assert most_inside[0] <= width and sorted(entered) == list(range(8))
    if width == 1:
        assert entered == list(range(8))
    with turns:  # every place is free again
        assert len(turns._waiting) == 0
