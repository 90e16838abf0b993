"""Moderation that holds (CONTRACT 1.3), through the real ports.

A ban holds against edits and against adding oneself back; an admin reads
private rooms by role alone and loses them with the role; a user can
block another, and report a message to the people who can act on it: the
room's owner and the admins, who alone can see direct messages that way.
"""

import pytest

from conftest import ROOM_NOT_FOUND, authed, make_admin, run_cli, wait_for_frame

BANNED = {"success": False, "message": "Forbidden", "error": "You are banned from this room"}
BLOCKED = {"success": False, "message": "Forbidden", "error": "You cannot do this to this user"}


def heard(client):
    """The types of the frames that reached client before the answer to a ping it sends now."""
    client.send({"type": "ping"})
    types = []
    while (frame_type := client.recv()["data"]["type"]) != "pong":
        types.append(frame_type)
    return types


@pytest.fixture
def classroom(server, api):
    """A public room of a teacher's, a student in it with a message, and the teacher connected there."""
    teacher, teacher_id, _ = api.register()
    room_id = api.create_room(teacher, "Biology")
    student, student_id, student_name = api.register()
    assert api.post("/rooms/join", {"room_id": room_id}, token=student).status == 200
    message = api.post("/messages", {"room_id": room_id, "content": "my first answer"},
                       token=student).data
    watching = authed(server, teacher)
    assert watching.request({"type": "join_room", "room_id": room_id})["success"]
    return {"room_id": room_id, "teacher": teacher, "teacher_id": teacher_id,
            "student": student, "student_id": student_id, "student_name": student_name,
            "message_id": message["id"], "watching": watching}


def ban(api, room_id, user_id, token):
    reply = api.call("DELETE", f"/rooms/{room_id}/members/{user_id}?ban=true", token=token)
    assert reply.status == 200, reply.json


# -- bans hold ----------------------------------------------------------------------------------

def test_a_banned_member_cannot_edit_their_messages_but_may_delete_them(server, api, classroom):
    ban(api, classroom["room_id"], classroom["student_id"], classroom["teacher"])
    path = f"/messages/{classroom['message_id']}"
    assert api.call("PATCH", path, {"content": "rewritten"}, token=classroom["student"]).json == BANNED
    student = authed(server, classroom["student"])
    reply = student.request({"type": "edit_message", "id": classroom["message_id"],
                             "content": "rewritten"})
    assert reply == {"success": False, "message": "Request failed",
                     "error": "You are banned from this room"}
    assert "message_updated" not in heard(classroom["watching"])
    history = api.get(f"/messages?room_id={classroom['room_id']}", token=classroom["teacher"])
    assert [m["content"] for m in history.data["messages"]] == ["my first answer"]
    assert api.call("DELETE", path, token=classroom["student"]).status == 200


def test_a_creator_banned_by_an_admin_cannot_lift_the_ban_themselves(api, admin):
    token, _, _ = admin
    owner, owner_id, _ = api.register()
    room_id = api.create_room(owner, "Mine")
    ban(api, room_id, owner_id, token)
    add_back = api.post(f"/rooms/{room_id}/members", {"user_id": owner_id}, token=owner)
    assert add_back.status == 403 and add_back.json == BANNED
    assert api.post("/rooms/join", {"room_id": room_id}, token=owner).json == BANNED
    assert api.post("/messages", {"room_id": room_id, "content": "back!"}, token=owner).status == 403
    assert api.call("PATCH", f"/rooms/{room_id}", {"description": "x"}, token=owner).json == BANNED
    assert api.call("DELETE", f"/rooms/{room_id}", token=owner).json == BANNED
    assert api.post(f"/rooms/{room_id}/members", {"user_id": owner_id}, token=token).status == 201
    assert api.post("/messages", {"room_id": room_id, "content": "back"}, token=owner).status == 201


def test_a_private_rooms_banned_creator_no_longer_sees_it(api, admin):
    token, _, _ = admin
    owner, owner_id, _ = api.register()
    room_id = api.post("/rooms", {"name": "Hideout", "visibility": "private"}, token=owner).data["id"]
    ban(api, room_id, owner_id, token)
    assert api.get(f"/messages?room_id={room_id}", token=owner).json == ROOM_NOT_FOUND
    assert api.post(f"/rooms/{room_id}/members", {"user_id": owner_id}, token=owner).json \
        == ROOM_NOT_FOUND
    assert room_id not in [room["id"] for room in api.get("/rooms", token=owner).data["rooms"]]


def test_a_banned_member_adding_themselves_back_is_told_they_are_banned(api, classroom):
    ban(api, classroom["room_id"], classroom["student_id"], classroom["teacher"])
    reply = api.post(f"/rooms/{classroom['room_id']}/members",
                     {"user_id": classroom["student_id"]}, token=classroom["student"])
    assert reply.status == 403 and reply.json == BANNED


def test_a_member_banned_from_a_private_room_may_still_delete_their_messages(api):
    owner, _, _ = api.register()
    member, member_id, _ = api.register()
    room_id = api.post("/rooms", {"name": "Club", "visibility": "private"}, token=owner).data["id"]
    api.post(f"/rooms/{room_id}/members", {"user_id": member_id}, token=owner)
    said = api.post("/messages", {"room_id": room_id, "content": "regret"}, token=member).data
    kept = api.post("/messages", {"room_id": room_id, "content": "the owner's"}, token=owner).data
    ban(api, room_id, member_id, owner)
    assert api.get(f"/messages?room_id={room_id}", token=member).json == ROOM_NOT_FOUND
    assert api.call("DELETE", f"/messages/{kept['id']}", token=member).status == 404
    assert api.call("DELETE", f"/messages/{said['id']}", token=member).status == 200
    history = api.get(f"/messages?room_id={room_id}", token=owner).data["messages"]
    assert [m["content"] for m in history] == ["the owner's"]


def test_a_creator_may_lift_a_ban_on_someone_else(api, classroom):
    ban(api, classroom["room_id"], classroom["student_id"], classroom["teacher"])
    assert api.post("/rooms/join", {"room_id": classroom["room_id"]},
                    token=classroom["student"]).json == BANNED
    assert api.post(f"/rooms/{classroom['room_id']}/members", {"user_id": classroom["student_id"]},
                    token=classroom["teacher"]).status == 201
    assert api.call("PATCH", f"/messages/{classroom['message_id']}", {"content": "fixed"},
                    token=classroom["student"]).status == 200


# -- admins reach private rooms by role --------------------------------------------------------

@pytest.fixture
def private_room(api):
    owner, owner_id, _ = api.register()
    room_id = api.post("/rooms", {"name": "Staff", "visibility": "private"}, token=owner).data["id"]
    api.post("/messages", {"room_id": room_id, "content": "staff only"}, token=owner)
    return room_id, owner, owner_id


def member_ids(api, room_id, token):
    return [member["id"] for member in api.get(f"/rooms/{room_id}/members", token=token).data["members"]]


def test_an_admin_reads_a_private_room_without_becoming_a_member(server, api, admin, private_room):
    token, admin_id, _ = admin
    room_id, owner, owner_id = private_room
    assert api.post("/rooms/join", {"room_id": room_id}, token=token).status == 200
    looking = authed(server, token)
    assert looking.request({"type": "join_room", "room_id": room_id})["data"]["type"] == "room_joined"
    assert member_ids(api, room_id, owner) == [owner_id]
    listed = {room["id"]: room for room in api.get("/rooms", token=token).data["rooms"]}
    assert listed[room_id]["member_count"] == 1 and "unread_count" not in listed[room_id]
    assert [m["content"] for m in api.get(f"/messages?room_id={room_id}",
                                          token=token).data["messages"]] == ["staff only"]


def test_a_demoted_admin_loses_private_rooms_within_5_seconds(server, api, admin, private_room,
                                                               tmp_path):
    token, admin_id, name = admin
    _, other_admin_id, _ = api.register()
    make_admin(server, other_admin_id)  # so that this one is not the last
    room_id, _, _ = private_room
    looking = authed(server, token)
    assert looking.request({"type": "join_room", "room_id": room_id})["success"]
    demoted = run_cli("users", "demote", name, "--db", str(tmp_path / "chat.db"))
    assert demoted.returncode == 0, demoted.stderr
    removed = wait_for_frame(looking, "room_removed", timeout=5.5)
    assert removed["data"] == {"type": "room_removed", "room_id": room_id}
    assert api.get(f"/messages?room_id={room_id}", token=token).json == ROOM_NOT_FOUND
    assert looking.request({"type": "send_message", "content": "still here?"})["error"] \
        == "You are not in any room"


# -- blocking ------------------------------------------------------------------------------------

def test_blocking_is_listed_and_undone(api):
    token, _, _ = api.register()
    _, pest_id, pest_name = api.register()
    reply = api.post(f"/users/{pest_id}/block", token=token)
    assert reply.status == 200 and reply.json["message"] == "User blocked"
    assert reply.data["user"]["id"] == pest_id
    assert api.post(f"/users/{pest_id}/block", token=token).status == 200  # twice: no change
    listed = api.get("/users/me/blocked", token=token)
    assert listed.json["message"] == "Blocked users"
    assert [user["username"] for user in listed.data["users"]] == [pest_name]
    reply = api.call("DELETE", f"/users/{pest_id}/block", token=token)
    assert reply.status == 200 and reply.json["message"] == "User unblocked"
    assert api.get("/users/me/blocked", token=token).data["users"] == []


@pytest.mark.parametrize("method, target, status, error", [
    ("POST", "self", 400, "You cannot block yourself"),
    ("POST", "user_00000000", 404, "User not found"),
    ("DELETE", "user_00000000", 404, "User not found"),
    ("POST", "..%2f..%2fusers", 404, "User not found"),
])
def test_a_block_of_oneself_or_nobody_is_refused(api, method, target, status, error):
    token, user_id, _ = api.register()
    reply = api.call(method, f"/users/{user_id if target == 'self' else target}/block", token=token)
    assert reply.status == status and reply.json["error"] == error


def test_a_blocked_user_cannot_open_a_direct_room_or_add_the_blocker(api):
    blocker, blocker_id, _ = api.register()
    pest, pest_id, _ = api.register()
    api.post(f"/users/{pest_id}/block", token=blocker)
    assert api.post("/direct", {"user_id": blocker_id}, token=pest).json == BLOCKED
    room_id = api.post("/rooms", {"name": "Trap", "visibility": "private"}, token=pest).data["id"]
    assert api.post(f"/rooms/{room_id}/members", {"user_id": blocker_id}, token=pest).json == BLOCKED
    assert api.post("/direct", {"user_id": pest_id}, token=blocker).status == 201  # the blocker may


def test_a_direct_room_stays_readable_but_the_blocked_user_cannot_post_in_it(server, api):
    blocker, blocker_id, _ = api.register()
    pest, pest_id, _ = api.register()
    room_id = api.post("/direct", {"user_id": blocker_id}, token=pest).data["id"]
    before = api.post("/messages", {"room_id": room_id, "content": "before"}, token=pest).data
    listening = authed(server, blocker)
    assert listening.request({"type": "join_room", "room_id": room_id})["success"]
    api.post(f"/users/{pest_id}/block", token=blocker)
    assert api.post("/messages", {"room_id": room_id, "content": "after"}, token=pest).json == BLOCKED
    sending = authed(server, pest)
    assert sending.request({"type": "join_room", "room_id": room_id})["success"]
    refused = sending.request({"type": "send_message", "content": "still after"})
    assert refused == {"success": False, "message": "Request failed",
                       "error": "You cannot do this to this user"}
    # An edit is a new text too: neither over REST nor over WebSocket.
    assert api.call("PATCH", f"/messages/{before['id']}", {"content": "after, by editing"},
                    token=pest).json == BLOCKED
    assert sending.request({"type": "edit_message", "id": before["id"],
                            "content": "after, by editing"})["error"] \
        == "You cannot do this to this user"
    assert not {"message_received", "message_updated"} & set(heard(listening))
    contents = [m["content"] for m in api.get(f"/messages?room_id={room_id}",
                                              token=pest).data["messages"]]
    assert contents == ["before"]
    assert api.post("/messages", {"room_id": room_id, "content": "ok"}, token=blocker).status == 201


def test_a_blocked_users_mentions_are_neither_counted_nor_told(server, api):
    blocker, blocker_id, blocker_name = api.register()
    pest, pest_id, _ = api.register()
    room_id = api.create_room(pest)
    api.post("/rooms/join", {"room_id": room_id}, token=blocker)
    elsewhere = authed(server, blocker)
    api.post(f"/users/{pest_id}/block", token=blocker)
    api.post("/messages", {"room_id": room_id, "content": f"@{blocker_name} look at me"}, token=pest)
    room = next(r for r in api.get("/rooms", token=blocker).data["rooms"] if r["id"] == room_id)
    assert room["mention_count"] == 0 and room["unread_count"] == 1
    before_activity = []  # a mention frame would come first: it is sent at once
    while (frame := elsewhere.recv())["data"]["type"] != "room_activity":
        before_activity.append(frame["data"]["type"])
    assert frame["data"]["room_id"] == room_id
    assert "mention" not in before_activity + heard(elsewhere)


def test_an_admin_keeps_every_admin_power_when_blocked(api, admin):
    token, admin_id, _ = admin
    user, user_id, _ = api.register()
    api.post(f"/users/{admin_id}/block", token=user)
    room_id = api.post("/rooms", {"name": "Detention", "visibility": "private"}, token=token).data["id"]
    assert api.post(f"/rooms/{room_id}/members", {"user_id": user_id}, token=token).status == 201


# -- reports -------------------------------------------------------------------------------------

def report(api, message_id, token, reason="rude"):
    return api.post(f"/messages/{message_id}/report", {"reason": reason}, token=token)


def test_a_report_reaches_the_rooms_owner_and_admins_live_and_is_resolved(server, api, admin,
                                                                          classroom):
    admin_token, _, _ = admin
    admin_client = authed(server, admin_token)
    bystander, _, _ = api.register()
    bystander_client = authed(server, bystander)
    reporter, reporter_id, _ = api.register()
    reply = report(api, classroom["message_id"], reporter, "  off topic  ")
    assert reply.status == 201 and reply.json["message"] == "Report received"
    made = reply.data["report"]
    assert made["status"] == "open" and made["reason"] == "off topic"
    assert made["reporter"]["id"] == reporter_id
    assert made["message"]["content"] == "my first answer"
    assert made["message"]["room_name"] == "Biology"
    assert made["message"]["sender"]["username"] == classroom["student_name"]
    for told in (classroom["watching"], admin_client):
        frame = wait_for_frame(told, "report")
        assert frame["message"] == "New report" and frame["data"]["report"]["id"] == made["id"]
    assert "report" not in heard(bystander_client)
    listed = api.get("/reports", token=classroom["teacher"])
    assert listed.json["message"] == "Reports"
    assert [r["id"] for r in listed.data["reports"]] == [made["id"]]
    assert [r["id"] for r in api.get("/reports", token=admin_token).data["reports"]] == [made["id"]]
    assert api.get("/reports", token=bystander).data["reports"] == []
    updated = api.call("PATCH", f"/reports/{made['id']}", {"status": "resolved"},
                       token=classroom["teacher"])
    assert updated.json["message"] == "Report updated"
    assert updated.data["report"]["status"] == "resolved"
    assert api.get("/reports", token=classroom["teacher"]).data["reports"] == []
    resolved = api.get("/reports?status=resolved", token=admin_token).data["reports"]
    assert [r["id"] for r in resolved] == [made["id"]]
    assert len(api.get("/reports?status=all", token=admin_token).data["reports"]) == 1


def test_a_report_of_the_rooms_owner_goes_to_the_admins_alone(server, api, admin):
    """The owner of a room is not its moderator for reports about their own messages: they
    would learn who reported them, and could dismiss it."""
    admin_token, _, _ = admin
    owner, _, _ = api.register()
    room_id = api.create_room(owner)
    rude = api.post("/messages", {"room_id": room_id, "content": "you all fail"}, token=owner).data
    owner_client, admin_client = authed(server, owner), authed(server, admin_token)
    victim, _, _ = api.register()
    made = report(api, rude["id"], victim, "bullying").data["report"]
    assert wait_for_frame(admin_client, "report")["data"]["report"]["id"] == made["id"]
    assert "report" not in heard(owner_client)
    assert api.get("/reports", token=owner).data["reports"] == []
    assert api.call("PATCH", f"/reports/{made['id']}", {"status": "dismissed"},
                    token=owner).status == 403
    assert [r["id"] for r in api.get("/reports", token=admin_token).data["reports"]] == [made["id"]]


def test_an_owner_banned_from_their_room_moderates_its_reports_no_more(api, admin, classroom):
    admin_token, _, _ = admin
    reporter, _, _ = api.register()
    made = report(api, classroom["message_id"], reporter).data["report"]
    ban(api, classroom["room_id"], classroom["teacher_id"], admin_token)
    assert api.get("/reports", token=classroom["teacher"]).data["reports"] == []
    assert api.call("PATCH", f"/reports/{made['id']}", {"status": "dismissed"},
                    token=classroom["teacher"]).status == 403


@pytest.mark.parametrize("server_options", [{"rest_rate": 0}])
def test_a_flood_of_reports_cannot_hide_an_older_one(api, admin):
    """Reports come in pages (limit, before): however many arrive after it, a report is reached."""
    admin_token, _, _ = admin
    bully, _, _ = api.register()
    room_id = api.create_room(bully)
    nasty = api.post("/messages", {"room_id": room_id, "content": "nasty"}, token=bully).data
    victim, _, _ = api.register()
    real = report(api, nasty["id"], victim, "the real one").data["report"]
    for n in range(60):
        junk = api.post("/messages", {"room_id": room_id, "content": f"junk {n}"}, token=bully).data
        report(api, junk["id"], bully, "noise")
    seen, before = [], ""
    while True:
        page = api.get(f"/reports?limit=25{before}", token=admin_token).data["reports"]
        seen += [r["id"] for r in page]
        if len(page) < 25:
            break
        before = f"&before={page[-1]['id']}"
    assert real["id"] in seen and len(seen) == 61 and seen == sorted(seen, reverse=True)
    assert len(api.get("/reports", token=admin_token).data["reports"]) == 50  # the default page


def test_a_message_is_reported_once_per_reporter(api, classroom):
    reporter, _, _ = api.register()
    assert report(api, classroom["message_id"], reporter).status == 201
    again = report(api, classroom["message_id"], reporter)
    assert again.status == 409 and again.json == {
        "success": False, "message": "Conflict", "error": "Already reported"}
    other, _, _ = api.register()
    assert report(api, classroom["message_id"], other).status == 201


def test_a_report_keeps_the_message_after_it_is_deleted(api, classroom):
    reporter, _, _ = api.register()
    made = report(api, classroom["message_id"], reporter).data["report"]
    api.call("DELETE", f"/messages/{classroom['message_id']}", token=classroom["student"])
    kept = api.get("/reports", token=classroom["teacher"]).data["reports"]
    assert [(r["id"], r["message"]["content"]) for r in kept] == [(made["id"], "my first answer")]


def test_a_student_shows_a_teacher_a_nasty_direct_message(server, api, admin):
    """Admins cannot read direct rooms, but see what a student reports from one."""
    admin_token, _, _ = admin
    student, student_id, _ = api.register()
    bully, _, _ = api.register()
    room_id = api.post("/direct", {"user_id": student_id}, token=bully).data["id"]
    nasty = api.post("/messages", {"room_id": room_id, "content": "you are stupid"}, token=bully).data
    assert api.get(f"/messages?room_id={room_id}", token=admin_token).json == ROOM_NOT_FOUND
    admin_client = authed(server, admin_token)
    made = report(api, nasty["id"], student, "bullying").data["report"]
    assert wait_for_frame(admin_client, "report")["data"]["report"]["id"] == made["id"]
    listed = api.get("/reports", token=admin_token).data["reports"]
    assert listed[0]["message"]["content"] == "you are stupid"
    assert api.get("/reports", token=bully).data["reports"] == []  # a direct room has no moderator


def test_only_readers_report_and_only_moderators_change_reports(api, classroom):
    outsider, _, _ = api.register()
    owner, _, _ = api.register()
    room_id = api.post("/rooms", {"name": "Closed", "visibility": "private"}, token=owner).data["id"]
    hidden = api.post("/messages", {"room_id": room_id, "content": "hidden"}, token=owner).data
    assert report(api, hidden["id"], outsider).status == 404
    made = report(api, classroom["message_id"], outsider).data["report"]
    forbidden = api.call("PATCH", f"/reports/{made['id']}", {"status": "dismissed"}, token=outsider)
    assert forbidden.status == 403 and forbidden.json["error"] == "You cannot change this report"
    assert api.call("PATCH", f"/reports/{made['id']}", {"status": "dismissed"},
                    token=classroom["teacher"]).data["report"]["status"] == "dismissed"


@pytest.mark.parametrize("method, path, body, status", [
    ("POST", "/messages/{message}/report", {"reason": "x" * 501}, 400),
    ("POST", "/messages/{message}/report", {"reason": 5}, 400),
    ("POST", "/messages/999999999/report", {"reason": "?"}, 404),
    ("POST", "/messages/not-a-number/report", {}, 404),
    ("GET", "/reports?status=everything", None, 400),
    ("PATCH", "/reports/{report}", {"status": "open"}, 400),
    ("PATCH", "/reports/{report}", {"status": "deleted"}, 400),
    ("PATCH", "/reports/{report}", {}, 400),
    ("PATCH", "/reports/999999999", {"status": "resolved"}, 404),
    ("PATCH", "/reports/1e3", {"status": "resolved"}, 404),
    ("PATCH", "/reports/99999999999999999999999", {"status": "resolved"}, 404),
])
def test_a_bad_report_request_is_refused(api, classroom, method, path, body, status):
    reporter, _, _ = api.register()
    made = report(api, classroom["message_id"], reporter).data["report"]
    path = path.format(message=classroom["message_id"], report=made["id"])
    assert api.call(method, path, body, token=classroom["teacher"]).status == status


def test_a_report_without_a_reason_is_received(api, classroom):
    reporter, _, _ = api.register()
    reply = api.post(f"/messages/{classroom['message_id']}/report", token=reporter)
    assert reply.status == 201 and reply.data["report"]["reason"] == ""
