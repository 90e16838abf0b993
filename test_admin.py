"""Someone in charge (CONTRACT 1.2 "Administration and moderation"), through the real ports.

Roles and disabled accounts, closed registration, admins' changes to users,
editing and deleting messages (REST and WebSocket, live to the room),
removing and banning members, and the command line run as a real process
against a running server's database.
"""

import os
import stat
import subprocess
import sys
import threading
import time

import pytest

import store
from conftest import (COMMANDS_ON_SQLITE_ONLY, HERE, TEST_ITERATIONS, Api, WriteLock, authed,
                      closed_with, history, login, make_admin, on_the_tests_store, wait_until)

FORBIDDEN_ADMIN_ONLY = {"success": False, "message": "Forbidden", "error": "Admin only"}


# -- roles, and who sees what ----------------------------------------------------------------

def test_every_user_object_carries_its_role_and_admins_also_see_disabled(api, admin):
    token, user_id, _ = api.register()
    mine = api.get("/users/me", token=token).data["user"]
    assert mine["role"] == "user" and "disabled" not in mine
    seen_by_admin = api.get(f"/users/{user_id}", token=admin[0]).data["user"]
    assert seen_by_admin["role"] == "user" and seen_by_admin["disabled"] is False
    listed = api.get("/users?limit=100", token=token).data["users"]
    assert all("role" in user and "disabled" not in user for user in listed)
    assert {user["id"]: user["role"] for user in listed}[admin[1]] == "admin"


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/users", {"username": "newcomer", "password": "password123"}),
    ("PATCH", "/users/user_00000000", {"disabled": True}),
])
def test_the_admin_routes_refuse_everyone_else(api, method, path, body):
    token, _, _ = api.register()
    assert api.call(method, path, body, token=token).json == FORBIDDEN_ADMIN_ONLY
    assert api.call(method, path, body).status == 401


@pytest.mark.parametrize("server_options", [{"registration": "closed"}])
def test_with_registration_closed_only_admins_create_accounts(server, api):
    reply = api.post("/auth/register", {"username": "walk_in", "password": "password123"})
    assert reply.status == 403 and reply.json == {
        "success": False, "message": "Forbidden", "error": "Registration is closed"}
    teacher = server.accounts.create_user("teacher", "teacher-password", "admin")
    token = login(api, "teacher", "teacher-password").data["token"]
    created = api.post("/users", {"username": "student", "password": "student-pass"}, token=token)
    assert created.status == 201 and created.json["message"] == "User created"
    assert created.data["user"]["role"] == "user" and created.data["user"]["disabled"] is False
    assert login(api, "student", "student-pass").status == 200
    second = api.post("/users", {"username": "helper", "password": "helper-pass", "role": "admin"},
                      token=token)
    assert second.data["user"]["role"] == "admin"
    assert api.post("/users", {"username": "student", "password": "x" * 8}, token=token).status == 409
    assert teacher["role"] == "admin"


@pytest.mark.parametrize("body, error", [
    ({"username": "ab", "password": "password123"}, "username must be 3-32"),
    ({"username": "valid_name", "password": "short"}, "password must be 8-128 characters"),
    ({"username": "valid_name", "password": "password123", "role": "root"},
     'role must be "user" or "admin"'),
])
def test_a_bad_new_account_is_400(api, admin, body, error):
    reply = api.post("/users", body, token=admin[0])
    assert reply.status == 400 and reply.json["error"].startswith(error)


# -- PATCH /users/{id} ----------------------------------------------------------------------

def test_disabling_ends_the_users_sessions_and_login_says_account_disabled(server, api, admin):
    token, user_id, name = api.register()
    client = authed(server, token)
    reply = api.call("PATCH", f"/users/{user_id}", {"disabled": True}, token=admin[0])
    assert reply.status == 200 and reply.json["message"] == "User updated"
    assert reply.data["user"]["disabled"] is True
    assert api.get("/users/me", token=token).status == 401
    assert closed_with(client, timeout=1.0) == (4001, "session ended")
    assert login(api, name).json == {"success": False, "message": "Forbidden",
                                     "error": "Account disabled"}
    assert login(api, name, "wrong-password").status == 401  # only the right password learns it
    api.call("PATCH", f"/users/{user_id}", {"disabled": False}, token=admin[0])
    assert login(api, name).status == 200


def test_a_new_password_from_an_admin_ends_the_users_sessions(server, api, admin):
    token, user_id, name = api.register()
    reply = api.call("PATCH", f"/users/{user_id}", {"password": "set-by-admin"}, token=admin[0])
    assert reply.status == 200
    assert api.get("/users/me", token=token).status == 401
    assert login(api, name).status == 401 and login(api, name, "set-by-admin").status == 200


def test_a_role_change_takes_effect_at_once(server, api, admin):
    token, user_id, _ = api.register()
    api.get("/users/me", token=token)  # remembered as checked
    api.call("PATCH", f"/users/{user_id}", {"role": "admin"}, token=admin[0])
    assert api.get("/users/me", token=token).data["user"]["role"] == "admin"
    assert api.post("/users", {"username": "made_by_new", "password": "password123"},
                    token=token).status == 201


LAST_ADMIN = {"success": False, "message": "Request failed", "error": "At least one admin must remain"}


@pytest.mark.parametrize("change", [{"role": "user"}, {"disabled": True}])
def test_the_last_admin_cannot_demote_or_disable_themselves(api, admin, change):
    token, user_id, _ = admin
    assert api.call("PATCH", f"/users/{user_id}", change, token=token).json == LAST_ADMIN
    assert api.get("/users/me", token=token).data["user"]["role"] == "admin"


def test_two_admins_demoting_each_other_at_once_leave_one_admin(server, api, admin):
    other_token, other_id, _ = api.register()
    make_admin(server, other_id)
    replies = []
    demotions = [(admin[0], other_id), (other_token, admin[1])]
    threads = [threading.Thread(target=lambda token, target: replies.append(
        Api(server.http_port).call("PATCH", f"/users/{target}", {"role": "user"}, token=token).status),
        args=pair) for pair in demotions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    admins = [user for user in server.store.list_users(100, 0)[0] if user["role"] == "admin"]
    assert len(admins) == 1
    # The loser gets 400 (the last admin) or, demoted a moment before, 403 (Admin only).
    assert sorted(replies) in ([200, 400], [200, 403])


@pytest.mark.parametrize("body, status", [
    ({"role": "superuser"}, 400), ({"disabled": "yes"}, 400), ({"password": "short"}, 400),
    ({}, 200),
])
def test_a_bad_user_change_is_refused_and_changes_nothing(api, admin, body, status):
    _, user_id, name = api.register()
    assert api.call("PATCH", f"/users/{user_id}", body, token=admin[0]).status == status
    assert login(api, name).status == 200


def test_changing_an_unknown_user_is_404(api, admin):
    reply = api.call("PATCH", "/users/user_00000000", {"disabled": True}, token=admin[0])
    assert reply.status == 404 and reply.json["error"] == "User not found"


def test_a_disabled_authors_message_is_never_saved(server, api):
    """Even one already on its way when the account is disabled (the store refuses it)."""
    token, user_id, _ = api.register()
    room_id = api.create_room(token)
    server.store.update_user(user_id, int(time.time()), disabled=True)
    with pytest.raises(store.AuthorDisabled):
        server.store.add_message(room_id, user_id, "from beyond", int(time.time()))


# -- editing and deleting messages ----------------------------------------------------------

@pytest.fixture
def conversation(server, api):
    """A room with its creator, a member who wrote a message, and a listener in the room."""
    creator, _, _ = api.register()
    room_id = api.create_room(creator, "Moderated")
    author, author_id, _ = api.register()
    api.post("/rooms/join", {"room_id": room_id}, token=author)
    message = api.post("/messages", {"room_id": room_id, "content": "first draft"}, token=author).data
    listener = authed(server, creator)
    listener.request({"type": "join_room", "room_id": room_id})
    return {"room_id": room_id, "creator": creator, "author": author, "author_id": author_id,
            "message": message, "listener": listener}


def test_the_author_edits_a_message_and_the_room_sees_it_live(api, conversation):
    message = conversation["message"]
    reply = api.call("PATCH", f"/messages/{message['id']}", {"content": "  second draft "},
                     token=conversation["author"])
    assert reply.status == 200 and reply.json["message"] == "Message updated"
    edited = reply.data
    assert (edited["id"], edited["content"]) == (message["id"], "second draft")
    assert isinstance(edited["edited_at"], int) and edited["sender"]["id"] == conversation["author_id"]
    heard = conversation["listener"].recv_type("message_updated")
    assert heard == {"success": True, "message": "Message updated", "data": {
        "type": "message_updated", "id": message["id"], "room_id": conversation["room_id"],
        "content": "second draft", "edited_at": edited["edited_at"], "mentions": []}}
    shown = history(api, conversation["room_id"], conversation["creator"])
    assert [(m["content"], m["edited_at"]) for m in shown] == [("second draft", edited["edited_at"])]


def test_only_the_author_may_edit(api, conversation, admin):
    message_id = conversation["message"]["id"]
    for token in (conversation["creator"], admin[0]):
        reply = api.call("PATCH", f"/messages/{message_id}", {"content": "not yours"}, token=token)
        assert reply.status == 403 and reply.json == {
            "success": False, "message": "Forbidden", "error": "You cannot change this message"}


@pytest.mark.parametrize("content, status", [("", 400), ("   ", 400), ("x" * 4001, 400),
                                             (5, 400), (None, 400)])
def test_an_edit_to_bad_content_is_400(api, conversation, content, status):
    message_id = conversation["message"]["id"]
    assert api.call("PATCH", f"/messages/{message_id}", {"content": content},
                    token=conversation["author"]).status == status


@pytest.mark.parametrize("message_id", ["999999", "abc", "-1", "1.5", "99999999999999999999999"])
def test_a_message_that_does_not_exist_is_404(api, conversation, message_id):
    for method, body in (("PATCH", {"content": "x"}), ("DELETE", None)):
        reply = api.call(method, f"/messages/{message_id}", body, token=conversation["author"])
        assert reply.status == 404 and reply.json == {
            "success": False, "message": "Message not found", "error": "Message not found"}


@pytest.mark.parametrize("who", ["author", "creator", "admin"])
def test_a_message_is_deleted_by_its_author_the_rooms_creator_or_an_admin(api, conversation, admin,
                                                                           who):
    token = admin[0] if who == "admin" else conversation[who]
    message_id = conversation["message"]["id"]
    reply = api.call("DELETE", f"/messages/{message_id}", token=token)
    assert reply.status == 200 and reply.json == {
        "success": True, "message": "Message deleted",
        "data": {"id": message_id, "room_id": conversation["room_id"]}}
    assert conversation["listener"].recv_type("message_deleted")["data"] == {
        "type": "message_deleted", "id": message_id, "room_id": conversation["room_id"]}
    assert history(api, conversation["room_id"], conversation["creator"]) == []


def test_a_deleted_message_is_gone_from_the_since_replay(server, api, conversation):
    api.call("DELETE", f"/messages/{conversation['message']['id']}", token=conversation["author"])
    kept = api.post("/messages", {"room_id": conversation["room_id"], "content": "kept"},
                    token=conversation["author"]).data
    client = authed(server, conversation["author"])
    client.request({"type": "join_room", "room_id": conversation["room_id"], "since": 0})
    assert client.recv_type("message_received")["data"]["id"] == kept["id"]


def test_someone_else_may_not_delete(api, conversation):
    stranger, _, _ = api.register()
    reply = api.call("DELETE", f"/messages/{conversation['message']['id']}", token=stranger)
    assert reply.status == 403 and reply.json["error"] == "You cannot change this message"


def test_over_websocket_edit_and_delete_answer_and_tell_the_room(server, conversation):
    author = authed(server, conversation["author"])
    message_id = conversation["message"]["id"]
    edited = author.request({"type": "edit_message", "id": message_id, "content": "by frame"})
    assert edited["message"] == "Message updated" and edited["data"]["content"] == "by frame"
    assert conversation["listener"].recv_type("message_updated")["data"]["content"] == "by frame"
    deleted = author.request({"type": "delete_message", "data": {"id": message_id}})
    assert deleted == {"success": True, "message": "Message deleted", "data": {
        "type": "message_deleted", "id": message_id, "room_id": conversation["room_id"]}}
    assert conversation["listener"].recv_type("message_deleted")["data"]["id"] == message_id


@pytest.mark.parametrize("frame, error", [
    ({"type": "edit_message", "id": 999999, "content": "x"}, "Message not found"),
    ({"type": "delete_message", "id": 999999}, "Message not found"),
    ({"type": "delete_message"}, "id is required"),
    ({"type": "delete_message", "id": "7"}, "id must be a non-negative integer"),
    ({"type": "edit_message", "id": 1, "content": ""}, "content must be 1-4000 characters, not only spaces"),
])
def test_over_websocket_bad_edits_and_deletes_get_an_error_frame(server, api, frame, error):
    token, _, _ = api.register()
    client = authed(server, token)
    assert client.request(frame) == {"success": False, "message": "Request failed", "error": error}
    assert client.request({"type": "ping"})["data"]["type"] == "pong"


def test_over_websocket_someone_elses_message_cannot_be_changed(server, api, conversation):
    stranger, _, _ = api.register()
    client = authed(server, stranger)
    for frame in ({"type": "edit_message", "id": conversation["message"]["id"], "content": "x"},
                  {"type": "delete_message", "id": conversation["message"]["id"]}):
        assert client.request(frame)["error"] == "You cannot change this message"


# -- removing and banning members ------------------------------------------------------------

def test_the_creator_removes_a_member_who_is_told_and_the_room_hears_them_leave(server, api,
                                                                                 conversation):
    author = authed(server, conversation["author"])
    author.request({"type": "join_room", "room_id": conversation["room_id"]})
    conversation["listener"].recv_type("user_joined")
    reply = api.call("DELETE", f"/rooms/{conversation['room_id']}/members/{conversation['author_id']}",
                     token=conversation["creator"])
    assert reply.status == 200 and reply.json["message"] == "Member removed"
    assert author.recv_type("room_removed")["data"] == {"type": "room_removed",
                                                        "room_id": conversation["room_id"]}
    assert conversation["listener"].recv_type("user_left")["data"]["user_id"] == conversation["author_id"]
    assert author.request({"type": "send_message", "content": "still here?"})["error"] == \
        "You are not in any room"
    # Not banned: they may come back.
    assert api.post("/rooms/join", {"room_id": conversation["room_id"]},
                    token=conversation["author"]).status == 200


def test_a_banned_member_cannot_join_again(server, api, conversation, admin):
    room_id, author = conversation["room_id"], conversation["author"]
    reply = api.call("DELETE", f"/rooms/{room_id}/members/{conversation['author_id']}?ban=true",
                     token=admin[0])
    assert reply.data == {"room_id": room_id, "user_id": conversation["author_id"], "banned": True}
    rejoin = api.post("/rooms/join", {"room_id": room_id}, token=author)
    assert rejoin.status == 403 and rejoin.json == {
        "success": False, "message": "Forbidden", "error": "You are banned from this room"}
    client = authed(server, author)
    assert client.request({"type": "join_room", "room_id": room_id}) == {
        "success": False, "message": "Request failed", "error": "You are banned from this room"}
    members = api.get(f"/rooms/{room_id}/members", token=conversation["creator"]).data["members"]
    assert conversation["author_id"] not in [m["id"] for m in members]


def test_only_the_creator_or_an_admin_removes_members(api, conversation):
    stranger, _, _ = api.register()
    reply = api.call("DELETE", f"/rooms/{conversation['room_id']}/members/{conversation['author_id']}",
                     token=stranger)
    assert reply.status == 403
    assert api.call("DELETE", f"/rooms/room_00000000/members/{conversation['author_id']}",
                    token=conversation["creator"]).status == 404
    assert api.call("DELETE", f"/rooms/{conversation['room_id']}/members/user_00000000",
                    token=conversation["creator"]).json["error"] == "User not found"


def test_an_admin_may_update_and_delete_any_room(api, conversation, admin):
    room_id = conversation["room_id"]
    assert api.call("PATCH", f"/rooms/{room_id}", {"description": "tidied"}, token=admin[0]).status == 200
    assert api.call("DELETE", f"/rooms/{room_id}", token=admin[0]).status == 200
    assert api.get(f"/rooms/{room_id}/members", token=admin[0]).status == 404


# -- the command line, against a running server's database -----------------------------------

def admin_cli(db, *args, password=None):
    return subprocess.run([sys.executable, os.path.join(HERE, "swiftchat.py"),
                           *on_the_tests_store(["--db", str(db)]),
                           "--pbkdf2-iterations", str(TEST_ITERATIONS), *args],
                          input=password, capture_output=True, text=True, timeout=30)


def one_line(result):
    assert "Traceback" not in result.stderr, result.stderr
    out = result.stdout if result.returncode == 0 else result.stderr
    assert out.count("\n") == 1, (result.returncode, result.stdout, result.stderr)
    return out.strip()


def test_the_command_line_manages_accounts_beside_a_running_server(server, api, tmp_path):
    db = tmp_path / "chat.db"
    added = admin_cli(db, "users", "add", "teacher", "--password-stdin", password="teacher-pass\n")
    assert added.returncode == 0 and one_line(added).startswith("added teacher (user_")
    assert one_line(admin_cli(db, "users", "promote", "teacher")) == "teacher is now an admin"
    token = login(api, "teacher", "teacher-pass").data["token"]
    assert api.get("/users/me", token=token).data["user"]["role"] == "admin"
    assert admin_cli(db, "users", "demote", "teacher").stderr.strip() == \
        "swiftchat: at least one admin must remain"
    student, student_id, name = api.register()
    client = authed(server, student)
    disabled = admin_cli(db, "users", "disable", name)
    assert one_line(disabled) == f"{name} is disabled; 1 session ended"
    assert closed_with(client, timeout=5) == (4001, "session ended")
    wait_until(lambda: api.get("/users/me", token=student).status == 401)
    assert login(api, name).status == 403
    assert one_line(admin_cli(db, "users", "enable", name)) == f"{name} is enabled"
    fresh = login(api, name).data["token"]
    reset = admin_cli(db, "users", "set-password", name, "--password-stdin", password="reset-pass\n")
    assert one_line(reset) == f"{name} has a new password; 1 session ended"
    wait_until(lambda: api.get("/users/me", token=fresh).status == 401)
    answer = login(api, name, "reset-pass")
    # Someone else chose it: its owner must change it first (CONTRACT 1.3); `users add`'s
    # typist is taken to be the owner.
    assert answer.status == 200 and answer.data["must_change_password"] is True
    assert login(api, "teacher", "teacher-pass").data["must_change_password"] is False
    listed = admin_cli(db, "users", "list")
    assert listed.returncode == 0
    assert f"{student_id} {name} user" in listed.stdout.splitlines()
    assert any(line.endswith(" teacher admin") for line in listed.stdout.splitlines())


def test_a_role_given_on_the_command_line_reaches_the_server_within_5_seconds(api, tmp_path):
    token, _, name = api.register()
    api.get("/users/me", token=token)  # remembered as checked, with role "user"
    admin_cli(tmp_path / "chat.db", "users", "promote", name)
    wait_until(lambda: api.get("/users/me", token=token).data["user"]["role"] == "admin")


@pytest.mark.parametrize("args, stdin, error", [
    (["users", "promote", "nobody"], None, "swiftchat: no user named nobody"),
    (["users", "add", "ab", "--password-stdin"], "password123\n", "swiftchat: username must be 3-32"),
    (["users", "add", "fine_name", "--password-stdin"], "short\n",
     "swiftchat: password must be 8-128 characters"),
    (["users", "frobnicate"], None, "swiftchat: argument action: invalid choice"),
])
def test_a_command_line_mistake_is_one_line_and_exit_1(server, tmp_path, args, stdin, error):
    result = admin_cli(tmp_path / "chat.db", *args, password=stdin)
    assert result.returncode == 1 and one_line(result).startswith(error)


def test_a_taken_name_on_the_command_line_is_one_line(server, api, tmp_path):
    _, _, name = api.register()
    result = admin_cli(tmp_path / "chat.db", "users", "add", name, "--password-stdin",
                       password="password123\n")
    assert result.returncode == 1 and one_line(result) == f"swiftchat: a user named {name} exists already"


@pytest.mark.sqlite_only
def test_the_command_line_on_a_missing_or_locked_database(server, api, tmp_path):
    missing = admin_cli(tmp_path / "no-such.db", "users", "list")
    assert missing.returncode == 1
    assert one_line(missing).startswith(f"swiftchat: no database at {tmp_path / 'no-such.db'}: "
                                        "start the server once to create it")
    assert not (tmp_path / "no-such.db").exists()
    _, _, name = api.register()
    lock = WriteLock(tmp_path / "chat.db")
    try:
        busy = admin_cli(tmp_path / "chat.db", "users", "disable", name)
    finally:
        lock.release()
    assert busy.returncode == 1 and "busy" in one_line(busy)
    assert login(api, name).status == 200  # nothing changed


@pytest.mark.sqlite_only(COMMANDS_ON_SQLITE_ONLY)
def test_backup_makes_a_private_consistent_copy_of_the_live_database(server, api, tmp_path):
    token, _, name = api.register()
    room_id = api.create_room(token, "Saved")
    api.post("/messages", {"room_id": room_id, "content": "keep me"}, token=token)
    result = admin_cli(tmp_path / "chat.db", "backup", str(tmp_path / "copy.db"))
    assert one_line(result) == (f"backed up {tmp_path / 'chat.db'} to {tmp_path / 'copy.db'}, "
                                f"and its files to {tmp_path / 'copy.db.files'}")
    assert stat.S_IMODE(os.stat(tmp_path / "copy.db").st_mode) == 0o600
    copy = store.Store(tmp_path / "copy.db")
    try:
        assert copy.user_with_password(name) is not None
        assert [m["content"] for m in copy.messages(room_id, 10)] == ["keep me"]
    finally:
        copy.close()
    again = admin_cli(tmp_path / "chat.db", "backup", str(tmp_path / "copy.db"))
    assert again.returncode == 1 and "exists already" in one_line(again)


def test_the_command_line_without_a_terminal_asks_for_password_stdin(server, tmp_path):
    result = subprocess.run([sys.executable, os.path.join(HERE, "swiftchat.py"),
                             *on_the_tests_store(["--db", str(tmp_path / "chat.db")]),
                             "users", "add", "no_tty_user"],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and one_line(result) == \
        "swiftchat: no terminal to ask for the password on: use --password-stdin"


def test_a_name_with_a_newline_is_refused_not_echoed(server, tmp_path):
    result = admin_cli(tmp_path / "chat.db", "users", "promote", "x\nroot is now an admin")
    assert result.returncode == 1 and one_line(result).startswith("swiftchat: username must be")


@pytest.mark.sqlite_only(COMMANDS_ON_SQLITE_ONLY)
def test_backup_never_writes_through_a_link(server, tmp_path):
    (tmp_path / "link.db").symlink_to(tmp_path / "elsewhere.db")  # dangling
    result = admin_cli(tmp_path / "chat.db", "backup", str(tmp_path / "link.db"))
    assert result.returncode == 1 and "exists already" in one_line(result)
    assert not (tmp_path / "elsewhere.db").exists()


def test_a_listing_piped_into_a_reader_that_leaves_early_ends_quietly(server, api, tmp_path):
    """`users list | head -2`: the reader has gone before the list is written; no traceback."""
    for _ in range(3):
        api.register()
    reader, writer = os.pipe()
    os.close(reader)  # gone before the command writes a line
    try:
        listed = subprocess.run([sys.executable, os.path.join(HERE, "swiftchat.py"),
                                 *on_the_tests_store(["--db", str(tmp_path / "chat.db")]),
                                 "users", "list"],
                                stdout=writer, stderr=subprocess.PIPE, text=True, timeout=30)
    finally:
        os.close(writer)
    assert "Traceback" not in listed.stderr and listed.stderr == "", listed.stderr
    assert listed.returncode == 1
