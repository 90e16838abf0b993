"""A teacher's tools (CONTRACT 1.3), through the real ports: room roles,
who may post, slow mode, mutes, the server's policies, passwords an admin
chose, and the roster import over REST.

The command line's import and export, and the page, have files of their
own (test_import_cli.py, test_export.py, test_teacher_page.py).
"""

import re

import pytest

from conftest import ChatClient, authed, login, make_admin, wait_for_frame

pytestmark = pytest.mark.shared_server

FORBIDDEN = "Forbidden"
ONLY_MODERATORS = {"success": False, "message": FORBIDDEN,
                   "error": "Only moderators can post in this room"}
MUTED = {"success": False, "message": FORBIDDEN, "error": "You are muted in this room"}
PASSWORD_CHANGE = {"success": False, "message": FORBIDDEN, "error": "Password change required"}


@pytest.fixture
def lesson(api):
    """A teacher's room with a TA and two students in it (tokens and ids)."""
    people = {}
    for name in ("teacher", "ta", "ana", "ben"):
        token, user_id, username = api.register()
        people[name] = {"token": token, "id": user_id, "username": username}
    room_id = api.create_room(people["teacher"]["token"], f"Chemistry {people['teacher']['username']}")
    for name in ("ta", "ana", "ben"):
        assert api.post("/rooms/join", {"room_id": room_id},
                        token=people[name]["token"]).status == 200
    return room_id, people


def members_by_name(api, room_id, token):
    reply = api.get(f"/rooms/{room_id}/members", token=token)
    assert reply.status == 200, reply.json
    return {member["username"]: member for member in reply.data["members"]}


def set_role(api, room_id, user_id, role, token):
    return api.call("PATCH", f"/rooms/{room_id}/members/{user_id}", {"role": role}, token=token)


def post(api, room_id, token, content="hello"):
    return api.post("/messages", {"room_id": room_id, "content": content}, token=token)


# -- room roles ---------------------------------------------------------------------

def test_members_carry_their_role_and_the_owner_makes_a_moderator_whom_the_room_hears_of(
        server, api, lesson):
    room_id, people = lesson
    members = members_by_name(api, room_id, people["ana"]["token"])
    assert members[people["teacher"]["username"]]["role"] == "owner"
    assert {members[people[name]["username"]]["role"] for name in ("ta", "ana", "ben")} == {"member"}
    assert all(member["muted_until"] is None for member in members.values())
    listening = authed(server, people["ben"]["token"])
    assert listening.request({"type": "join_room", "room_id": room_id})["success"]

    reply = set_role(api, room_id, people["ta"]["id"], "moderator", people["teacher"]["token"])

    assert reply.status == 200 and reply.json["message"] == "Member updated"
    assert reply.data["member"]["id"] == people["ta"]["id"]
    assert reply.data["member"]["role"] == "moderator"
    frame = wait_for_frame(listening, "member_updated")
    assert frame["message"] == "Member updated"
    assert frame["data"]["room_id"] == room_id
    assert frame["data"]["member"]["id"] == people["ta"]["id"]
    assert frame["data"]["member"]["role"] == "moderator"
    members = members_by_name(api, room_id, people["ana"]["token"])
    assert members[people["ta"]["username"]]["role"] == "moderator"


@pytest.mark.parametrize("who", ["ta", "ana"])
def test_only_the_owner_or_an_admin_changes_roles(api, lesson, who):
    room_id, people = lesson
    assert set_role(api, room_id, people["ta"]["id"], "moderator",
                    people["teacher"]["token"]).status == 200
    reply = set_role(api, room_id, people["ben"]["id"], "moderator", people[who]["token"])
    assert reply.status == 403 and reply.json["message"] == FORBIDDEN


def test_an_admin_changes_roles_in_any_room(server, api, lesson, admin):
    room_id, people = lesson
    reply = set_role(api, room_id, people["ana"]["id"], "moderator", admin[0])
    assert reply.status == 200 and reply.data["member"]["role"] == "moderator"


@pytest.mark.parametrize("body, error", [
    ({"role": "owner"}, 'role must be "moderator" or "member"'),
    ({"role": "admin"}, 'role must be "moderator" or "member"'),
    ({"role": 1}, None),
    ({}, None),
])
def test_a_role_must_be_moderator_or_member(api, lesson, body, error):
    room_id, people = lesson
    reply = api.call("PATCH", f"/rooms/{room_id}/members/{people['ana']['id']}", body,
                     token=people["teacher"]["token"])
    assert reply.status == 400
    if error:
        assert reply.json["error"] == error


def test_a_role_of_someone_who_is_not_a_member_is_not_found(api, lesson):
    room_id, people = lesson
    _, stranger, _ = api.register()
    reply = set_role(api, room_id, stranger, "moderator", people["teacher"]["token"])
    assert reply.status == 404 and reply.json["error"] == "Member not found"


def test_a_moderator_removes_bans_and_deletes_but_not_the_owner_or_another_moderator(
        api, lesson):
    room_id, people = lesson
    teacher, ta = people["teacher"]["token"], people["ta"]["token"]
    assert set_role(api, room_id, people["ta"]["id"], "moderator", teacher).status == 200
    message = post(api, room_id, people["ana"]["token"], "spam spam").data

    assert api.call("DELETE", f"/messages/{message['id']}", token=ta).status == 200
    assert api.call("DELETE", f"/rooms/{room_id}/members/{people['ana']['id']}?ban=true",
                    token=ta).status == 200
    assert api.post("/rooms/join", {"room_id": room_id},
                    token=people["ana"]["token"]).json["error"] == "You are banned from this room"
    # Told who may: the owner may act on a moderator, a moderator may not.
    outranked = "Only the room creator can remove members from this room"
    reply = api.call("DELETE", f"/rooms/{room_id}/members/{people['teacher']['id']}", token=ta)
    assert (reply.status, reply.json["error"]) == (403, outranked)
    assert set_role(api, room_id, people["ben"]["id"], "moderator", teacher).status == 200
    reply = api.call("DELETE", f"/rooms/{room_id}/members/{people['ben']['id']}", token=ta)
    assert (reply.status, reply.json["error"]) == (403, outranked)
    reply = api.post(f"/rooms/{room_id}/members/{people['ben']['id']}/mute", {"minutes": 5},
                     token=ta)
    assert (reply.status, reply.json["error"]) == (
        403, "Only the room creator can mute members of this room")
    # A moderator changes settings, but the description is the owner's.
    assert api.call("PATCH", f"/rooms/{room_id}", {"slow_mode": 5}, token=ta).status == 200
    reply = api.call("PATCH", f"/rooms/{room_id}", {"description": "mine now"}, token=ta)
    assert (reply.status, reply.json["error"]) == (
        403, "Only the room creator can update this room")


def test_a_member_is_no_moderator(api, lesson):
    room_id, people = lesson
    ana = people["ana"]["token"]
    message = post(api, room_id, people["ben"]["token"]).data
    assert api.call("DELETE", f"/messages/{message['id']}", token=ana).status == 403
    ben_id = people["ben"]["id"]
    refusals = [
        ("DELETE", f"/rooms/{room_id}/members/{ben_id}", None,
         "Only moderators can remove members from this room"),
        ("POST", f"/rooms/{room_id}/members/{ben_id}/mute", {"minutes": 5},
         "Only moderators can mute members of this room"),
        ("PATCH", f"/rooms/{room_id}/members/{ben_id}", {"role": "moderator"},
         "Only the room creator can change roles in this room"),
        ("POST", f"/rooms/{room_id}/members", {"user_id": people["ta"]["id"]},
         "Only the room creator can add members to this room"),
    ]
    for method, path, body, error in refusals:
        reply = api.call(method, path, body, token=ana)
        assert (reply.status, reply.json["message"], reply.json["error"]) == (
            403, "Forbidden", error), (method, path)
    assert api.call("PATCH", f"/rooms/{room_id}", {"posting": "moderators"},
                    token=ana).status == 403


# -- who may post, and how often --------------------------------------------------------

def test_an_announcement_room_takes_posts_from_its_moderators_only(server, api, lesson, admin):
    room_id, people = lesson
    teacher = people["teacher"]["token"]
    reply = api.call("PATCH", f"/rooms/{room_id}", {"posting": "moderators"}, token=teacher)
    assert reply.status == 200 and reply.data["posting"] == "moderators"
    listed = [room for room in api.get("/rooms?limit=100", token=teacher).data["rooms"]
              if room["id"] == room_id]
    assert listed[0]["posting"] == "moderators" and listed[0]["slow_mode"] == 0
    assert set_role(api, room_id, people["ta"]["id"], "moderator", teacher).status == 200

    assert post(api, room_id, people["ana"]["token"]).json == ONLY_MODERATORS
    student = authed(server, people["ben"]["token"])
    assert student.request({"type": "join_room", "room_id": room_id})["success"]
    student.send({"type": "send_message", "content": "may I?"})
    refused = student.recv()
    assert refused == {"success": False, "message": "Request failed",
                       "error": "Only moderators can post in this room"}
    assert post(api, room_id, teacher, "homework: page 12").status == 201
    assert post(api, room_id, people["ta"]["token"], "office hours at 3").status == 201
    assert api.post("/rooms/join", {"room_id": room_id}, token=admin[0]).status == 200
    assert post(api, room_id, admin[0], "from the office").status == 201  # admins always may
    history = api.get(f"/messages?room_id={room_id}", token=teacher).data["messages"]
    assert [m["content"] for m in history] == ["homework: page 12", "office hours at 3",
                                               "from the office"]


def test_a_room_can_be_made_an_announcement_room_with_slow_mode_from_the_start(api):
    token, _, name = api.register()
    reply = api.post("/rooms", {"name": f"Announcements {name}", "posting": "moderators",
                                "slow_mode": 60}, token=token)
    assert reply.status == 201
    assert reply.data["posting"] == "moderators" and reply.data["slow_mode"] == 60


@pytest.mark.parametrize("body", [
    {"posting": "students"}, {"posting": 1}, {"slow_mode": -1}, {"slow_mode": 3601},
    {"slow_mode": "10"}, {"slow_mode": 1.5}, {"slow_mode": True},
])
def test_room_settings_are_checked(api, lesson, body):
    room_id, people = lesson
    reply = api.call("PATCH", f"/rooms/{room_id}", body, token=people["teacher"]["token"])
    assert reply.status == 400 and reply.json["message"] == "Request failed"
    created = api.post("/rooms", {"name": f"settings {room_id}", **body},
                       token=people["teacher"]["token"])
    assert created.status == 400


def test_slow_mode_spaces_a_members_posts_and_spares_moderators(server, api, lesson, admin):
    room_id, people = lesson
    teacher = people["teacher"]["token"]
    reply = api.call("PATCH", f"/rooms/{room_id}", {"slow_mode": 30}, token=teacher)
    assert reply.status == 200 and reply.data["slow_mode"] == 30

    assert post(api, room_id, people["ana"]["token"], "first").status == 201
    too_soon = post(api, room_id, people["ana"]["token"], "second")
    assert too_soon.status == 429
    assert too_soon.json == {"success": False, "message": "Too many requests",
                             "error": "Slow mode is on"}
    assert 1 <= int(too_soon.headers["Retry-After"]) <= 30
    student = authed(server, people["ben"]["token"])
    assert student.request({"type": "join_room", "room_id": room_id})["success"]
    student.send({"type": "send_message", "content": "one"})
    assert wait_for_frame(student, "message_sent")["data"]["content"] == "one"
    student.send({"type": "send_message", "content": "two"})
    frame = student.recv()
    while frame["success"]:  # the room's own frames may come first
        frame = student.recv()
    assert frame == {"success": False, "message": "Request failed", "error": "Slow mode is on"}
    for _ in range(3):
        assert post(api, room_id, teacher, "the owner is not slowed").status == 201
    assert api.post("/rooms/join", {"room_id": room_id}, token=admin[0]).status == 200
    for _ in range(3):
        assert post(api, room_id, admin[0], "nor is an admin").status == 201


def test_a_message_refused_for_its_attachment_or_reply_starts_no_slow_mode_wait(api, lesson):
    room_id, people = lesson
    teacher, ben = people["teacher"]["token"], people["ben"]["token"]
    assert api.call("PATCH", f"/rooms/{room_id}", {"slow_mode": 60}, token=teacher).status == 200
    refused = [{"attachments": ["file_00000000"]}, {"reply_to": 999_999_999}]
    for extra in refused:
        reply = api.post("/messages", {"room_id": room_id, "content": "see this", **extra},
                         token=ben)
        assert reply.status == 400, reply.json
    assert post(api, room_id, ben, "the one that goes").status == 201
    assert post(api, room_id, ben, "and now I wait").status == 429


# -- mutes --------------------------------------------------------------------------

def test_a_muted_member_cannot_post_or_edit_until_unmuted(server, api, lesson):
    room_id, people = lesson
    ana, teacher = people["ana"]["token"], people["teacher"]["token"]
    written = post(api, room_id, ana, "before").data
    listening = authed(server, people["ben"]["token"])
    assert listening.request({"type": "join_room", "room_id": room_id})["success"]

    reply = api.post(f"/rooms/{room_id}/members/{people['ana']['id']}/mute", {"minutes": 10},
                     token=teacher)

    assert reply.status == 200 and reply.json["message"] == "Member muted"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", reply.data["member"]["muted_until"])
    frame = wait_for_frame(listening, "member_updated")
    assert frame["data"]["member"]["muted_until"] == reply.data["member"]["muted_until"]
    assert post(api, room_id, ana, "let me talk").json == MUTED
    assert api.call("PATCH", f"/messages/{written['id']}", {"content": "edited"},
                    token=ana).json == MUTED
    muted = authed(server, ana)
    assert muted.request({"type": "join_room", "room_id": room_id})["success"]
    muted.send({"type": "send_message", "content": "over the WebSocket then"})
    refused = muted.recv()
    while refused["success"]:  # the room's own frames may come first
        refused = muted.recv()
    assert refused == {**MUTED, "message": "Request failed"}
    members = members_by_name(api, room_id, teacher)
    assert members[people["ana"]["username"]]["muted_until"] == reply.data["member"]["muted_until"]

    reply = api.call("DELETE", f"/rooms/{room_id}/members/{people['ana']['id']}/mute",
                     token=teacher)
    assert reply.status == 200 and reply.json["message"] == "Member unmuted"
    assert reply.data["member"]["muted_until"] is None
    assert post(api, room_id, ana, "thank you").status == 201


@pytest.mark.parametrize("body", [{"minutes": 0}, {"minutes": 10081}, {"minutes": "5"},
                                  {"minutes": True}, {}])
def test_a_mute_lasts_one_minute_to_a_week(api, lesson, body):
    room_id, people = lesson
    reply = api.post(f"/rooms/{room_id}/members/{people['ana']['id']}/mute", body,
                     token=people["teacher"]["token"])
    assert reply.status == 400


def test_a_moderator_mutes_a_member_but_not_the_owner(api, lesson):
    room_id, people = lesson
    assert set_role(api, room_id, people["ta"]["id"], "moderator",
                    people["teacher"]["token"]).status == 200
    ta = people["ta"]["token"]
    assert api.post(f"/rooms/{room_id}/members/{people['ben']['id']}/mute", {"minutes": 1},
                    token=ta).status == 200
    assert api.post(f"/rooms/{room_id}/members/{people['teacher']['id']}/mute", {"minutes": 1},
                    token=ta).status == 403


# -- passwords someone else chose ---------------------------------------------------------

def test_an_account_an_admin_made_must_change_its_password_before_anything_else(
        server, api, admin):
    made = api.post("/users", {"username": "newstudent7", "password": "given-by-teacher"},
                    token=admin[0])
    assert made.status == 201 and made.data["user"]["must_change_password"] is True
    answer = login(api, "newstudent7", "given-by-teacher")
    assert answer.status == 200 and answer.data["must_change_password"] is True
    token = answer.data["token"]

    me = api.get("/users/me", token=token)
    assert me.status == 200 and me.data["user"]["must_change_password"] is True
    assert api.get("/users", token=token).json == PASSWORD_CHANGE
    room_id = api.create_room(admin[0])
    assert api.post("/rooms/join", {"room_id": room_id}, token=token).json == PASSWORD_CHANGE
    # An answer that works without a token answers as if there were none.
    assert api.get("/rooms", token=token).status == 200
    assert api.get("/info", token=token).status == 200
    client = ChatClient(server.ws_port)
    refused = client.request({"type": "auth", "token": token})
    assert refused["success"] is False and refused["error"] == "Password change required"
    # What the account itself needs still answers: a refreshed token (which
    # carries the same duty), and logging out of another session.
    refreshed = api.post("/auth/refresh", token=token)
    assert refreshed.status == 200 and refreshed.data["must_change_password"] is True
    token = refreshed.data["token"]
    other = login(api, "newstudent7", "given-by-teacher").data["token"]
    assert api.post("/auth/logout", token=other).status == 200
    assert api.get("/users/me", token=other).status == 401

    changed = api.post("/auth/password", {"old_password": "given-by-teacher",
                                          "new_password": "my-own-secret"}, token=token)
    assert changed.status == 200 and changed.data["must_change_password"] is False
    fresh = changed.data["token"]
    assert api.get("/users/me", token=fresh).data["user"]["must_change_password"] is False
    assert api.post("/rooms/join", {"room_id": room_id}, token=fresh).status == 200
    assert authed(server, fresh)


def test_a_password_an_admin_sets_must_be_changed_again(api, admin):
    token, user_id, name = api.register()
    assert api.get("/users/me", token=token).data["user"]["must_change_password"] is False
    reply = api.call("PATCH", f"/users/{user_id}", {"password": "reset-by-admin"}, token=admin[0])
    assert reply.status == 200 and reply.data["user"]["must_change_password"] is True
    again = login(api, name, "reset-by-admin").data["token"]
    assert api.get("/users", token=again).json == PASSWORD_CHANGE


# -- the roster, over REST ----------------------------------------------------------------

GENERATED = re.compile(r"[a-km-zA-HJ-NP-Z2-9]{12}")


def test_an_admin_imports_a_roster_and_each_new_account_logs_in_with_its_password(api, admin):
    taken = api.register()[2]
    roster = [{"username": "roster_ana"}, {"username": "roster_ben", "password": "chosen-pass"},
              {"username": "roster_ta", "role": "admin"}, {"username": taken.upper()}]
    reply = api.post("/users/import", {"users": roster}, token=admin[0])

    assert reply.status == 201 and reply.json["message"] == "Users imported"
    created = {entry["user"]["username"]: entry for entry in reply.data["created"]}
    assert list(created) == ["roster_ana", "roster_ben", "roster_ta"]
    assert GENERATED.fullmatch(created["roster_ana"]["password"])
    assert created["roster_ben"]["password"] == "chosen-pass"
    assert created["roster_ta"]["user"]["role"] == "admin"
    assert all(entry["user"]["must_change_password"] for entry in created.values())
    assert reply.data["skipped"] == [{"username": taken.upper(), "error": "Username already taken"}]
    for name, entry in created.items():
        answer = login(api, name, entry["password"])
        assert answer.status == 200 and answer.data["must_change_password"] is True


@pytest.mark.parametrize("users, error", [
    ([{"username": "ok_name"}, {"username": "x"}], "users[1]: username must be"),
    ([{"username": "ok_name2", "password": "short"}], "users[0]: password must be"),
    ([{"username": "ok_name3", "role": "teacher"}], 'users[0]: role must be "user" or "admin"'),
    ([{"username": "ok_name4"}, "ok_name5"], "users[1]: each user must be a JSON object"),
    ([], "users must be a non-empty list"),
    ("everyone", "users must be a non-empty list"),
    ([{"username": f"many{n}"} for n in range(501)], "At most 500 users at once"),
])
def test_a_bad_roster_creates_nothing(api, admin, users, error):
    reply = api.post("/users/import", {"users": users}, token=admin[0])
    assert reply.status == 400 and reply.json["error"].startswith(error), reply.json
    assert login(api, "ok_name").status == 401


def test_only_an_admin_imports(api):
    token = api.register()[0]
    reply = api.post("/users/import", {"users": [{"username": "sneaky"}]}, token=token)
    assert reply.status == 403


# -- the server's policies ------------------------------------------------------------------

@pytest.mark.parametrize("server_options", [{"room_creation": "admins",
                                             "direct_messages": "off"}])
def test_policies_keep_rooms_and_direct_messages_to_admins(server, api, server_options):
    info = api.get("/info").data
    assert info["policies"] == {"room_creation": "admins", "direct_messages": "off"}
    student, student_id, _ = api.register()
    other, other_id, _ = api.register()
    teacher, teacher_id, _ = api.register()
    make_admin(server, teacher_id)

    refused = api.post("/rooms", {"name": "my own room"}, token=student)
    assert refused.json == {"success": False, "message": FORBIDDEN,
                            "error": "Only admins can create rooms"}
    assert api.post("/rooms", {"name": "class room"}, token=teacher).status == 201
    refused = api.post("/direct", {"user_id": other_id}, token=student)
    assert refused.json == {"success": False, "message": FORBIDDEN,
                            "error": "Direct messages are turned off"}
    assert api.post("/direct", {"user_id": teacher_id}, token=student).status == 201
    assert api.post("/direct", {"user_id": student_id}, token=teacher).status == 200


def test_the_default_policies_are_shown(api):
    info = api.get("/info").data
    assert info["policies"] == {"room_creation": "everyone", "direct_messages": "on"}
    assert info["registration"] == "open"


def test_a_rooms_moderators_hear_of_its_reports_and_handle_them(server, api, lesson):
    room_id, people = lesson
    teacher = people["teacher"]["token"]
    assert set_role(api, room_id, people["ta"]["id"], "moderator", teacher).status == 200
    ta_listening = authed(server, people["ta"]["token"])
    message = post(api, room_id, people["ben"]["token"], "something rude").data

    reported = api.post(f"/messages/{message['id']}/report", {"reason": "rude"},
                        token=people["ana"]["token"])

    assert reported.status == 201
    frame = wait_for_frame(ta_listening, "report")
    assert frame["data"]["report"]["message"]["id"] == message["id"]
    listed = api.get("/reports", token=people["ta"]["token"]).data["reports"]
    assert [report["message"]["id"] for report in listed] == [message["id"]]
    assert api.get("/reports", token=people["ana"]["token"]).data["reports"] == []
    report_id = listed[0]["id"]
    assert api.call("PATCH", f"/reports/{report_id}", {"status": "resolved"},
                    token=people["ana"]["token"]).status == 403
    reply = api.call("PATCH", f"/reports/{report_id}", {"status": "resolved"},
                     token=people["ta"]["token"])
    assert reply.status == 200 and reply.data["report"]["status"] == "resolved"


# -- what an attack review tried (each held after its fix) -----------------------------------

def test_a_moderator_cannot_ban_the_owner_out_of_their_own_room(api, lesson):
    room_id, people = lesson
    teacher = people["teacher"]["token"]
    assert set_role(api, room_id, people["ta"]["id"], "moderator", teacher).status == 200
    assert api.post("/rooms/leave", {"room_id": room_id}, token=teacher).status == 200
    reply = api.call("DELETE", f"/rooms/{room_id}/members/{people['teacher']['id']}?ban=true",
                     token=people["ta"]["token"])
    assert reply.status == 403
    assert api.post("/rooms/join", {"room_id": room_id}, token=teacher).status == 200


def test_a_mute_outlasts_leaving_and_joining_again_and_binds_a_moderator_too(api, lesson):
    room_id, people = lesson
    teacher, ana = people["teacher"]["token"], people["ana"]["token"]
    assert api.post(f"/rooms/{room_id}/members/{people['ana']['id']}/mute", {"minutes": 60},
                    token=teacher).status == 200
    assert api.post("/rooms/leave", {"room_id": room_id}, token=ana).status == 200
    assert api.post("/rooms/join", {"room_id": room_id}, token=ana).status == 200
    assert post(api, room_id, ana, "back again").json == MUTED
    assert set_role(api, room_id, people["ta"]["id"], "moderator", teacher).status == 200
    assert api.post(f"/rooms/{room_id}/members/{people['ta']['id']}/mute", {"minutes": 5},
                    token=teacher).status == 200
    assert post(api, room_id, people["ta"]["token"], "as a moderator").json == MUTED


def test_slow_mode_counts_a_post_that_was_deleted(api, lesson):
    room_id, people = lesson
    ana = people["ana"]["token"]
    assert api.call("PATCH", f"/rooms/{room_id}", {"slow_mode": 60},
                    token=people["teacher"]["token"]).status == 200
    first = post(api, room_id, ana, "@someone look").data
    assert api.call("DELETE", f"/messages/{first['id']}", token=ana).status == 200
    assert post(api, room_id, ana, "@someone look again").status == 429
