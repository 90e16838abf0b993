"""Private rooms and direct messages (CONTRACT 1.2): to anyone outside, a private room does not exist.

A table of every endpoint and frame that names a room, tried with a valid
token of someone who may not see the room: each answers 404 as for a room
that never existed, and no room event reaches them.
"""

import sqlite3
import threading

import pytest

from conftest import RELEASE_1_1_SCHEMA, ROOM_NOT_FOUND, Api, authed, make_admin, wait_for_frame

MESSAGE_NOT_FOUND = {"success": False, "message": "Message not found", "error": "Message not found"}
NOT_IN_DIRECT = {"success": False, "message": "Forbidden", "error": "Not allowed in a direct room"}


@pytest.fixture
def secret(server, api):
    """A private room with its owner, a member added by the owner, and a message in it."""
    owner, owner_id, _ = api.register()
    reply = api.post("/rooms", {"name": "Secret", "visibility": "private"}, token=owner)
    assert reply.status == 201 and reply.data["visibility"] == "private"
    room_id = reply.data["id"]
    member, member_id, _ = api.register()
    added = api.post(f"/rooms/{room_id}/members", {"user_id": member_id}, token=owner)
    assert added.status == 201 and added.json["message"] == "Member added"
    assert added.data["id"] == member_id and added.data["in_room"] is False
    message = api.post("/messages", {"room_id": room_id, "content": "for us only"}, token=member).data
    return {"room_id": room_id, "owner": owner, "owner_id": owner_id, "member": member,
            "member_id": member_id, "message_id": message["id"]}


def rest_probes(room_id, message_id, user_id):
    return {
        "members": ("GET", f"/rooms/{room_id}/members", None),
        "history": ("GET", f"/messages?room_id={room_id}", None),
        "post": ("POST", "/messages", {"room_id": room_id, "content": "let me in"}),
        "join": ("POST", "/rooms/join", {"room_id": room_id}),
        "leave": ("POST", "/rooms/leave", {"room_id": room_id}),
        "update": ("PATCH", f"/rooms/{room_id}", {"description": "mine now"}),
        "delete": ("DELETE", f"/rooms/{room_id}", None),
        "add member": ("POST", f"/rooms/{room_id}/members", {"user_id": user_id}),
        "remove member": ("DELETE", f"/rooms/{room_id}/members/{user_id}", None),
        "edit message": ("PATCH", f"/messages/{message_id}", {"content": "changed"}),
        "delete message": ("DELETE", f"/messages/{message_id}", None),
    }


@pytest.mark.parametrize("probe", list(rest_probes("r", 1, "u")))
def test_a_non_member_gets_404_from_every_endpoint_that_names_a_private_room(api, secret, probe):
    outsider, outsider_id, _ = api.register()
    method, path, body = rest_probes(secret["room_id"], secret["message_id"], outsider_id)[probe]
    reply = api.call(method, path, body, token=outsider)
    expected = MESSAGE_NOT_FOUND if "message" in probe and probe != "post" else ROOM_NOT_FOUND
    assert (reply.status, reply.json) == (404, expected)
    # ...exactly what a room that never existed answers.
    method, path, body = rest_probes("room_00000000", 999999, outsider_id)[probe]
    assert api.call(method, path, body, token=outsider).json == expected


def test_a_private_room_is_listed_only_for_those_who_may_see_it(server, api, secret):
    outsider, _, _ = api.register()
    public_id = api.create_room(outsider, "Open to all")
    for token, sees in ((None, False), ("not-a-token", False), (outsider, False),
                        (secret["member"], True), (secret["owner"], True)):
        listed = api.get("/rooms", token=token)
        assert listed.status == 200
        ids = [room["id"] for room in listed.data["rooms"]]
        assert (secret["room_id"] in ids) == sees and public_id in ids
        assert listed.data["total"] == len(ids)


def test_over_websocket_a_non_member_gets_room_not_found_and_hears_nothing(server, api, secret):
    outsider, _, _ = api.register()
    client = authed(server, outsider)
    for frame in ({"type": "join_room", "room_id": secret["room_id"]},
                  {"type": "join_room", "room_id": secret["room_id"], "since": 0}):
        assert client.request(frame) == {"success": False, "message": "Request failed",
                                         "error": "Room not found"}
    for frame in ({"type": "edit_message", "id": secret["message_id"], "content": "x"},
                  {"type": "delete_message", "id": secret["message_id"]}):
        assert client.request(frame)["error"] == "Message not found"
    # The private room's list events pass the outsider by; the public one after them arrives.
    owner = secret["owner"]
    api.call("PATCH", f"/rooms/{secret['room_id']}", {"description": "quiet"}, token=owner)
    hidden = api.post("/rooms", {"name": "Another secret", "visibility": "private"}, token=owner)
    api.call("DELETE", f"/rooms/{hidden.data['id']}", token=owner)
    public_id = api.create_room(owner, "Announced")
    assert client.recv_type("room_created")["data"]["id"] == public_id


def test_members_hear_a_private_rooms_events_and_an_added_user_is_told(server, api, secret):
    member = authed(server, secret["member"])
    newcomer_token, newcomer_id, _ = api.register()
    newcomer = authed(server, newcomer_token)
    api.call("PATCH", f"/rooms/{secret['room_id']}", {"description": "for the team"},
             token=secret["owner"])
    # wait_for_frame: the fixture's message may still bring this member a room_activity first
    assert wait_for_frame(member, "room_updated")["data"]["description"] == "for the team"
    api.post(f"/rooms/{secret['room_id']}/members", {"user_id": newcomer_id}, token=secret["owner"])
    told = newcomer.recv_type("room_added")
    assert told["message"] == "Added to room"
    assert told["data"]["id"] == secret["room_id"] and told["data"]["member_count"] == 3
    assert newcomer.request({"type": "join_room", "room_id": secret["room_id"]})["success"]


def test_a_removed_members_open_connection_hears_the_room_no_more(server, api, secret):
    member = authed(server, secret["member"])
    assert member.request({"type": "join_room", "room_id": secret["room_id"]})["success"]
    api.call("DELETE", f"/rooms/{secret['room_id']}/members/{secret['member_id']}",
             token=secret["owner"])
    assert wait_for_frame(member, "room_removed")["data"]["room_id"] == secret["room_id"]
    api.post("/messages", {"room_id": secret["room_id"], "content": "after you left"},
             token=secret["owner"])
    assert member.request({"type": "ping"})["data"]["type"] == "pong"  # nothing came before it
    assert api.get(f"/messages?room_id={secret['room_id']}", token=secret["member"]).json == \
        ROOM_NOT_FOUND
    assert member.request({"type": "join_room", "room_id": secret["room_id"]})["error"] == \
        "Room not found"


def test_the_creator_keeps_their_rights_after_leaving(api, secret):
    owner = secret["owner"]
    assert api.post("/rooms/leave", {"room_id": secret["room_id"]}, token=owner).status == 200
    assert api.get(f"/rooms/{secret['room_id']}/members", token=owner).status == 200
    assert api.call("PATCH", f"/rooms/{secret['room_id']}", {"description": "still mine"},
                    token=owner).status == 200
    assert api.post("/rooms/join", {"room_id": secret["room_id"]}, token=owner).status == 200


def test_admins_see_private_rooms_but_not_direct_ones(server, api, secret):
    admin, admin_id, _ = api.register()
    make_admin(server, admin_id)
    assert api.get(f"/messages?room_id={secret['room_id']}", token=admin).status == 200
    assert api.call("DELETE", f"/messages/{secret['message_id']}", token=admin).status == 200
    direct = api.post("/direct", {"user_id": secret["member_id"]}, token=secret["owner"]).data
    assert api.get(f"/messages?room_id={direct['id']}", token=admin).json == ROOM_NOT_FOUND
    assert direct["id"] not in [r["id"] for r in api.get("/rooms", token=admin).data["rooms"]]


def test_a_private_rooms_name_may_repeat_and_a_public_ones_may_not(api):
    token, _, _ = api.register()
    api.create_room(token, "Study group")
    twin = api.post("/rooms", {"name": "study GROUP", "visibility": "private"}, token=token)
    assert twin.status == 201
    assert api.post("/rooms", {"name": "Study Group"}, token=token).status == 409


@pytest.mark.parametrize("visibility", ["secret", 1, ""])
def test_a_bad_visibility_is_400(api, visibility):
    token, _, _ = api.register()
    reply = api.post("/rooms", {"name": "Odd", "visibility": visibility}, token=token)
    assert reply.status == 400


# -- direct rooms -----------------------------------------------------------------------------

@pytest.mark.parametrize("server_options", [{"rooms_per_hour": 1}])
def test_a_direct_room_is_one_per_pair_and_seen_by_the_two_only(server, api):
    alice, alice_id, alice_name = api.register()
    bob, bob_id, bob_name = api.register()
    third, _, _ = api.register()
    api.create_room(alice, "Her one room this hour")
    bobs_socket = authed(server, bob)
    first = api.post("/direct", {"user_id": bob_id}, token=alice)
    assert first.status == 201 and first.json["message"] == "Direct room created"
    room = first.data
    assert (room["kind"], room["visibility"], room["name"]) == (
        "direct", "private", f"{alice_name} & {bob_name}")
    assert bobs_socket.recv_type("room_created")["data"]["id"] == room["id"]
    again = api.post("/direct", {"user_id": alice_id}, token=bob)
    assert again.status == 200 and again.json["message"] == "Direct room retrieved"
    assert again.data["id"] == room["id"]
    members = api.get(f"/rooms/{room['id']}/members", token=bob).data["members"]
    assert sorted(m["id"] for m in members) == sorted([alice_id, bob_id])
    assert api.get(f"/rooms/{room['id']}/members", token=third).json == ROOM_NOT_FOUND
    assert room["id"] in [r["id"] for r in api.get("/rooms", token=bob).data["rooms"]]
    assert api.post("/messages", {"room_id": room["id"], "content": "hi bob"}, token=alice).status == 201


def test_nothing_may_change_a_direct_rooms_two_members(server, api):
    alice, _, _ = api.register()
    bob, bob_id, _ = api.register()
    admin, admin_id, _ = api.register()
    make_admin(server, admin_id)
    room_id = api.post("/direct", {"user_id": bob_id}, token=alice).data["id"]
    for token in (alice, bob):
        for method, path, body in [
                ("PATCH", f"/rooms/{room_id}", {"description": "x"}),
                ("DELETE", f"/rooms/{room_id}", None),
                ("POST", f"/rooms/{room_id}/members", {"user_id": admin_id}),
                ("DELETE", f"/rooms/{room_id}/members/{bob_id}", None),
                ("POST", "/rooms/leave", {"room_id": room_id})]:
            assert api.call(method, path, body, token=token).json == NOT_IN_DIRECT, (method, path)


def test_a_direct_room_with_oneself_or_nobody_is_refused(api):
    token, user_id, _ = api.register()
    assert api.post("/direct", {"user_id": user_id}, token=token).status == 400
    assert api.post("/direct", {"user_id": "user_00000000"}, token=token).json["error"] == \
        "User not found"
    assert api.post("/direct", {}, token=token).status == 400


# -- a database of the 1.1 release ------------------------------------------------------------

@pytest.mark.sqlite_only
def test_rooms_of_a_1_1_database_stay_public_in_order_and_names_stay_unique(tmp_path, serve_with):
    db = tmp_path / "release-1.1.db"
    old = sqlite3.connect(db)
    old.executescript(RELEASE_1_1_SCHEMA)
    old.execute("INSERT INTO users VALUES ('user_0000000a', 'veteran', 'x$1$00$00', '2025-01-01T00:00:00Z')")
    for n, name in enumerate(["Zebra", "Apple", "Mango"]):
        old.execute("INSERT INTO rooms VALUES (?, ?, '', 'user_0000000a', '2025-01-01T00:00:00Z')",
                    (f"room_0000000{n}", name))
        old.execute("INSERT INTO room_members VALUES (?, 'user_0000000a', '2025-01-01T00:00:00Z')",
                    (f"room_0000000{n}",))
    old.execute("INSERT INTO messages (room_id, user_id, content, timestamp)"
                " VALUES ('room_00000001', 'user_0000000a', 'kept', 1)")
    old.commit()
    old.close()
    server = serve_with(db=db)
    api = Api(server.http_port)
    rooms = api.get("/rooms").data["rooms"]
    assert [(r["name"], r["visibility"], r["kind"], r["member_count"]) for r in rooms] == [
        ("Zebra", "public", "room", 1), ("Apple", "public", "room", 1),
        ("Mango", "public", "room", 1)]
    token, _, _ = api.register()
    assert api.post("/rooms", {"name": "apple"}, token=token).status == 409
    assert api.post("/rooms", {"name": "apple", "visibility": "private"}, token=token).status == 201
    assert [(m["content"], m["edited_at"]) for m in server.store.messages("room_00000001", 10)] \
        == [("kept", None)]  # migration 3: no older message was edited


def test_leaving_a_private_room_over_rest_takes_the_open_connection_out_too(server, api, secret):
    member = authed(server, secret["member"])
    assert member.request({"type": "join_room", "room_id": secret["room_id"]})["success"]
    assert api.post("/rooms/leave", {"room_id": secret["room_id"]}, token=secret["member"]).status == 200
    assert wait_for_frame(member, "room_left")["data"] == {
        "type": "room_left", "room_id": secret["room_id"], "user_id": secret["member_id"]}
    api.post("/messages", {"room_id": secret["room_id"], "content": "not for you"},
             token=secret["owner"])
    assert member.request({"type": "send_message", "content": "still here?"})["error"] == \
        "You are not in any room"


@pytest.mark.parametrize("server_options", [{"rest_rate": 0}])  # 30 writes at once
def test_adding_a_member_while_the_room_is_deleted_is_201_or_404_never_500(server, api):
    owner, _, _ = api.register()
    _, other_id, _ = api.register()
    for _ in range(15):
        room_id = api.post("/rooms", {"name": f"brief {_}", "visibility": "private"},
                           token=owner).data["id"]
        deleting = threading.Thread(target=lambda: Api(server.http_port).call(
            "DELETE", f"/rooms/{room_id}", token=owner))
        deleting.start()
        reply = api.post(f"/rooms/{room_id}/members", {"user_id": other_id}, token=owner)
        deleting.join(timeout=10)
        assert reply.status in (201, 404), reply.json


def test_in_a_direct_room_neither_may_delete_the_others_messages(api):
    alice, _, _ = api.register()
    bob, bob_id, _ = api.register()
    room_id = api.post("/direct", {"user_id": bob_id}, token=alice).data["id"]
    bobs = api.post("/messages", {"room_id": room_id, "content": "mine"}, token=bob).data
    alices = api.post("/messages", {"room_id": room_id, "content": "mine too"}, token=alice).data
    assert api.call("DELETE", f"/messages/{bobs['id']}", token=alice).status == 403
    assert api.call("DELETE", f"/messages/{alices['id']}", token=bob).status == 403
    assert api.call("DELETE", f"/messages/{alices['id']}", token=alice).status == 200
