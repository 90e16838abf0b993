"""Replies, reactions, pins and names (CONTRACT 1.3), through the real ports.

The page's side has test_message_page.py and test_look_page.py.
"""

import urllib.parse

import pytest

from conftest import ChatClient, authed, login, make_admin, wait_for_frame

pytestmark = pytest.mark.shared_server

INVALID_REPLY = {"success": False, "message": "Request failed", "error": "Invalid reply"}
INVALID_EMOJI = {"success": False, "message": "Request failed", "error": "Invalid emoji"}


@pytest.fixture
def lesson(api):
    """A teacher's room with two students in it: {name: {token, id, username}}, room_id."""
    people = {}
    for name in ("teacher", "ana", "ben"):
        token, user_id, username = api.register()
        people[name] = {"token": token, "id": user_id, "username": username}
    room_id = api.create_room(people["teacher"]["token"])
    for name in ("ana", "ben"):
        assert api.post("/rooms/join", {"room_id": room_id},
                        token=people[name]["token"]).status == 200
    return room_id, people


def post(api, room_id, person, content, **fields):
    reply = api.post("/messages", {"room_id": room_id, "content": content, **fields},
                     token=person["token"])
    assert reply.status == 201, reply.json
    return reply.data


def history_by_id(api, room_id, token):
    reply = api.get(f"/messages?room_id={room_id}", token=token)
    assert reply.status == 200
    return {message["id"]: message for message in reply.data["messages"]}


def joined(chat, token, room_id):
    client = chat(token)
    assert client.request({"type": "join_room", "room_id": room_id})["success"]
    return client


def still_quiet(client, frame_type):
    """Nothing of frame_type arrived before the answer to a ping sent now."""
    client.send({"type": "ping"})
    while True:
        frame = client.recv()
        assert frame["data"].get("type") != frame_type, frame
        if frame["data"].get("type") == "pong":
            return


# -- replies ---------------------------------------------------------------------------

def test_a_reply_quotes_its_parent_live_and_in_history_and_follows_its_edit_and_deletion(
        api, chat, lesson):
    room_id, people = lesson
    ana, ben = people["ana"], people["ben"]
    parent = post(api, room_id, ana, "What is the boiling point of water at altitude? " * 4)
    listener = joined(chat, ana["token"], room_id)
    replier = joined(chat, ben["token"], room_id)
    listener.recv_type("user_joined")
    sent = replier.request({"type": "send_message", "content": "Lower!", "reply_to": parent["id"]})
    quote = {"id": parent["id"], "user_id": ana["id"], "username": ana["username"],
             "excerpt": parent["content"][:100]}
    assert sent["data"]["reply_to"] == quote and len(quote["excerpt"]) == 100
    assert wait_for_frame(listener, "message_received")["data"]["reply_to"] == quote
    reply_id = sent["data"]["id"]
    assert history_by_id(api, room_id, ana["token"])[reply_id]["reply_to"] == quote
    assert history_by_id(api, room_id, ana["token"])[parent["id"]]["reply_to"] is None

    assert api.call("PATCH", f"/messages/{parent['id']}", {"content": "Edited question"},
                    token=ana["token"]).status == 200
    assert history_by_id(api, room_id, ben["token"])[reply_id]["reply_to"]["excerpt"] \
        == "Edited question"
    assert api.call("DELETE", f"/messages/{parent['id']}", token=ana["token"]).status == 200
    assert history_by_id(api, room_id, ben["token"])[reply_id]["reply_to"] \
        == {"id": parent["id"], "deleted": True}


def test_a_reply_over_rest_counts_as_a_mention_of_the_parents_author_only(api, chat, lesson):
    room_id, people = lesson
    ana, ben, teacher = people["ana"], people["ben"], people["teacher"]
    question = post(api, room_id, ana, "Is the lab open on Friday?")
    own = post(api, room_id, ben, "Me too")
    elsewhere = chat(ana["token"])  # connected, in no room
    answer = post(api, room_id, teacher, "Yes, from 9", reply_to=question["id"])
    assert answer["mentions"] == []  # only the @names of its text
    assert answer["reply_to"]["id"] == question["id"]
    told = wait_for_frame(elsewhere, "mention")["data"]["message"]
    assert (told["id"], told["reply_to"]["username"]) == (answer["id"], ana["username"])
    # An edit of the reply keeps its mention of the parent's author.
    assert api.call("PATCH", f"/messages/{answer['id']}", {"content": "Yes, from 10"},
                    token=teacher["token"]).status == 200
    post(api, room_id, ben, "Answering myself", reply_to=own["id"])  # no mention of oneself
    rooms = {room["id"]: room for room in api.get("/rooms?limit=100", token=ana["token"]).data["rooms"]}
    assert rooms[room_id]["mention_count"] == 1
    rooms = {room["id"]: room for room in api.get("/rooms?limit=100", token=ben["token"]).data["rooms"]}
    assert rooms[room_id]["mention_count"] == 0


@pytest.mark.parametrize("reply_to, answer", [
    ("other room", INVALID_REPLY),
    (999_999_999, INVALID_REPLY),
    ("12", {"success": False, "message": "Request failed",
            "error": "reply_to must be a non-negative integer"}),
    (-1, {"success": False, "message": "Request failed",
          "error": "reply_to must be a non-negative integer"}),
    (True, {"success": False, "message": "Request failed",
            "error": "reply_to must be a non-negative integer"}),
    (2**63, {"success": False, "message": "Request failed",
             "error": "reply_to must be a non-negative integer"}),
])
def test_a_reply_to_anything_but_a_message_of_the_same_room_is_refused_and_nothing_is_saved(
        api, chat, lesson, reply_to, answer):
    room_id, people = lesson
    ana = people["ana"]
    if reply_to == "other room":
        other_room = api.create_room(ana["token"])
        reply_to = post(api, other_room, ana, "elsewhere")["id"]
    reply = api.post("/messages", {"room_id": room_id, "content": "orphan", "reply_to": reply_to},
                     token=ana["token"])
    assert (reply.status, reply.json) == (400, answer)
    client = joined(chat, ana["token"], room_id)
    assert client.request({"type": "send_message", "content": "orphan", "reply_to": reply_to}) \
        == answer
    assert "orphan" not in [m["content"] for m in history_by_id(api, room_id, ana["token"]).values()]


# -- reactions -------------------------------------------------------------------------

def test_reactions_are_counted_in_first_used_order_heard_by_the_room_and_kept(api, chat, lesson):
    room_id, people = lesson
    ana, ben = people["ana"], people["ben"]
    message = post(api, room_id, people["teacher"], "Homework: page 12")
    watcher = joined(chat, people["teacher"]["token"], room_id)
    path = f"/messages/{message['id']}/reactions"

    reply = api.post(path, {"emoji": "👍"}, token=ana["token"])
    assert reply.status == 200 and reply.json["message"] == "Reaction added"
    expected = [{"emoji": "👍", "count": 1, "user_ids": [ana["id"]]}]
    assert reply.data == {"id": message["id"], "room_id": room_id, "reactions": expected}
    heard = wait_for_frame(watcher, "reactions")
    assert heard["message"] == "Reactions updated"
    assert heard["data"] == {"type": "reactions", "id": message["id"], "room_id": room_id,
                             "reactions": expected}

    api.post(path, {"emoji": "🎉"}, token=ben["token"])
    reply = api.post(path, {"emoji": "👍"}, token=ben["token"])
    expected = [{"emoji": "👍", "count": 2, "user_ids": [ana["id"], ben["id"]]},
                {"emoji": "🎉", "count": 1, "user_ids": [ben["id"]]}]
    assert reply.data["reactions"] == expected
    again = api.post(path, {"emoji": "👍"}, token=ben["token"])  # made already: nothing changes
    assert again.status == 200 and again.data["reactions"] == expected
    assert history_by_id(api, room_id, ana["token"])[message["id"]]["reactions"] == expected

    quoted = urllib.parse.quote("👍")
    reply = api.call("DELETE", f"{path}/{quoted}", token=ana["token"])
    assert reply.status == 200 and reply.json["message"] == "Reaction removed"
    expected[0] = {"emoji": "👍", "count": 1, "user_ids": [ben["id"]]}
    assert reply.data["reactions"] == expected
    not_made = api.call("DELETE", f"{path}/{urllib.parse.quote('🎉')}", token=ana["token"])
    assert not_made.status == 200 and not_made.data["reactions"] == expected


def test_reactions_over_websocket_answer_the_sender_and_tell_the_rest_of_the_room(api, chat, lesson):
    room_id, people = lesson
    message = post(api, room_id, people["teacher"], "Quiz on Monday")
    ana = joined(chat, people["ana"]["token"], room_id)
    ben = joined(chat, people["ben"]["token"], room_id)
    ana.recv_type("user_joined")
    added = ben.request({"type": "react", "id": message["id"], "emoji": "❤️"})
    assert added["success"] and added["message"] == "Reaction added"
    assert added["data"]["type"] == "reactions"
    assert added["data"]["reactions"] == [{"emoji": "❤️", "count": 1,
                                           "user_ids": [people["ben"]["id"]]}]
    assert wait_for_frame(ana, "reactions")["data"] == added["data"]
    removed = ben.request({"type": "unreact", "id": message["id"], "emoji": "❤️"})
    assert removed["message"] == "Reaction removed" and removed["data"]["reactions"] == []
    assert wait_for_frame(ana, "reactions")["data"]["reactions"] == []
    assert ben.request({"type": "react", "id": message["id"], "emoji": "+"}) == INVALID_EMOJI
    assert ben.request({"type": "react", "emoji": "👍"})["error"] == "id is required"


def test_a_burst_of_reactions_reaches_the_room_as_fewer_frames_ending_with_the_newest(
        api, chat, lesson):
    room_id, people = lesson
    message = post(api, room_id, people["teacher"], "Vote with emoji")
    listener = joined(chat, people["ana"]["token"], room_id)
    toggler = joined(chat, people["ben"]["token"], room_id)
    listener.recv_type("user_joined")
    for n in range(40):  # as fast as the answers come: the room hears the first, then the newest
        answer = toggler.request({"type": "react" if n % 2 == 0 else "unreact",
                                  "id": message["id"], "emoji": "👍"})
        assert answer["success"], answer
    assert toggler.request({"type": "react", "id": message["id"], "emoji": "🎉"})["success"]
    final = [{"emoji": "🎉", "count": 1, "user_ids": [people["ben"]["id"]]}]
    heard = 0
    while True:
        frame = wait_for_frame(listener, "reactions")
        heard += 1
        if frame["data"]["reactions"] == final:
            break
    assert heard < 41  # 41 changes; each frame made stale by the next was not sent


@pytest.mark.parametrize("emoji", [
    "👍", "👍🏽", "❤️", "🇫🇷", "👨‍👩‍👧", "✔", "☕", "©", "^",
])
def test_an_emoji_is_one_to_eight_code_points_with_a_symbol(api, lesson, emoji):
    room_id, people = lesson
    message = post(api, room_id, people["ana"], "react to me")
    reply = api.post(f"/messages/{message['id']}/reactions", {"emoji": emoji},
                     token=people["ben"]["token"])
    assert reply.status == 200, reply.json
    assert reply.data["reactions"][0]["emoji"] == emoji


@pytest.mark.parametrize("emoji", [
    "", "a", "+", "$", "<", "1", " ", "👍 ", "👍" * 9, "\u200d", "\ufe0f", "\u202e👍",
    "<script>", "\x00", "👍\n", 5, None, ["👍"], {"emoji": "👍"},
])
def test_anything_else_is_an_invalid_emoji_and_adds_nothing(api, lesson, emoji):
    room_id, people = lesson
    message = post(api, room_id, people["ana"], "react to me")
    reply = api.post(f"/messages/{message['id']}/reactions", {"emoji": emoji},
                     token=people["ben"]["token"])
    assert (reply.status, reply.json) == (400, INVALID_EMOJI)
    assert history_by_id(api, room_id, people["ana"]["token"])[message["id"]]["reactions"] == []


@pytest.mark.parametrize("raw_emoji", ["%F0%9F%91", "%ZZ", "abc", "%2B", "%F0%9F%91%8D%F0%9F%91%8D" * 5])
def test_an_emoji_in_the_path_that_does_not_decode_to_one_is_refused(api, lesson, raw_emoji):
    room_id, people = lesson
    message = post(api, room_id, people["ana"], "react to me")
    reply = api.call("DELETE", f"/messages/{message['id']}/reactions/{raw_emoji}",
                     token=people["ben"]["token"])
    assert (reply.status, reply.json) == (400, INVALID_EMOJI)


def test_a_message_takes_twenty_different_emoji_at_most(api, lesson):
    room_id, people = lesson
    message = post(api, room_id, people["ana"], "react to me")
    path = f"/messages/{message['id']}/reactions"
    twenty = [chr(0x1F600 + n) for n in range(20)]
    for emoji in twenty:
        assert api.post(path, {"emoji": emoji}, token=people["ben"]["token"]).status == 200
    refused = api.post(path, {"emoji": "🚀"}, token=people["ben"]["token"])
    assert (refused.status, refused.json) == (400, {"success": False, "message": "Request failed",
                                                    "error": "Too many reactions"})
    joined_in = api.post(path, {"emoji": twenty[0]}, token=people["ana"]["token"])  # one in use
    assert joined_in.status == 200 and joined_in.data["reactions"][0]["count"] == 2
    assert [r["emoji"] for r in joined_in.data["reactions"]] == twenty


def test_only_members_who_may_post_react(api, lesson):
    room_id, people = lesson
    teacher, ana = people["teacher"], people["ana"]
    message = post(api, room_id, teacher, "Read chapter 3")
    path = f"/messages/{message['id']}/reactions"
    stranger = api.register()[0]
    refused = api.post(path, {"emoji": "👍"}, token=stranger)
    assert (refused.status, refused.json["error"]) == (403, "You are not a member of this room")
    assert api.post(f"/rooms/{room_id}/members/{ana['id']}/mute", {"minutes": 5},
                    token=teacher["token"]).status == 200
    refused = api.post(path, {"emoji": "👍"}, token=ana["token"])
    assert (refused.status, refused.json["error"]) == (403, "You are muted in this room")
    assert api.call("PATCH", f"/rooms/{room_id}", {"posting": "moderators"},
                    token=teacher["token"]).status == 200
    refused = api.post(path, {"emoji": "👍"}, token=people["ben"]["token"])
    assert (refused.status, refused.json["error"]) == (403, "Only moderators can post in this room")
    assert api.post(path, {"emoji": "👍"}, token=teacher["token"]).status == 200
    private = api.post("/rooms", {"name": "staff only", "visibility": "private"},
                       token=teacher["token"]).data["id"]
    hidden = post(api, private, teacher, "not for students")
    refused = api.post(f"/messages/{hidden['id']}/reactions", {"emoji": "👍"}, token=ana["token"])
    assert (refused.status, refused.json["error"]) == (404, "Message not found")
    assert history_by_id(api, room_id, teacher["token"])[message["id"]]["reactions"] \
        == [{"emoji": "👍", "count": 1, "user_ids": [teacher["id"]]}]


# -- pins ------------------------------------------------------------------------------

def test_moderators_pin_and_the_room_hears_and_lists_pins_newest_first(api, chat, lesson, server):
    room_id, people = lesson
    teacher, ana, ben = people["teacher"], people["ana"], people["ben"]
    first = post(api, room_id, teacher, "Homework link")
    second = post(api, room_id, ana, "Lab rules")
    watcher = joined(chat, ben["token"], room_id)

    refused = api.post(f"/messages/{first['id']}/pin", token=ana["token"])
    assert (refused.status, refused.json["error"]) \
        == (403, "Only moderators can pin messages in this room")
    reply = api.post(f"/messages/{first['id']}/pin", token=teacher["token"])
    assert reply.status == 200 and reply.json["message"] == "Message pinned"
    assert reply.data == {"id": first["id"], "room_id": room_id}
    heard = wait_for_frame(watcher, "message_pinned")
    assert heard["message"] == "Message pinned"
    assert heard["data"] == {"type": "message_pinned", "id": first["id"], "room_id": room_id}

    # A moderator may pin too; pinning twice changes nothing.
    assert api.call("PATCH", f"/rooms/{room_id}/members/{ana['id']}", {"role": "moderator"},
                    token=teacher["token"]).status == 200
    assert api.post(f"/messages/{second['id']}/pin", token=ana["token"]).status == 200
    assert api.post(f"/messages/{second['id']}/pin", token=ana["token"]).status == 200
    pins = api.get(f"/rooms/{room_id}/pins", token=ben["token"])
    assert pins.status == 200 and pins.json["message"] == "Pinned messages"
    assert [m["id"] for m in pins.data["messages"]] == [second["id"], first["id"]]
    assert all(m["pinned"] for m in pins.data["messages"])
    assert history_by_id(api, room_id, ben["token"])[first["id"]]["pinned"] is True

    reply = api.call("DELETE", f"/messages/{first['id']}/pin", token=teacher["token"])
    assert reply.status == 200 and reply.json["message"] == "Message unpinned"
    assert wait_for_frame(watcher, "message_unpinned")["data"] == {
        "type": "message_unpinned", "id": first["id"], "room_id": room_id}
    assert history_by_id(api, room_id, ben["token"])[first["id"]]["pinned"] is False
    assert api.call("DELETE", f"/messages/{second['id']}", token=ana["token"]).status == 200
    assert api.get(f"/rooms/{room_id}/pins", token=ben["token"]).data["messages"] == []

    admin_token, admin_id, _ = api.register()
    make_admin(server, admin_id)
    admin_token = login(api, _).data["token"]
    assert api.post(f"/messages/{first['id']}/pin", token=admin_token).status == 200


def test_either_member_of_a_direct_room_pins_and_strangers_see_no_pins(api):
    ana_token, ana_id, _ = api.register()
    ben_token, ben_id, _ = api.register()
    direct = api.post("/direct", {"user_id": ben_id}, token=ana_token).data["id"]
    message = post(api, direct, {"token": ben_token}, "our secret")
    assert api.post(f"/messages/{message['id']}/pin", token=ana_token).status == 200
    assert [m["id"] for m in api.get(f"/rooms/{direct}/pins", token=ben_token).data["messages"]] \
        == [message["id"]]
    assert api.post(f"/users/{ana_id}/block", token=ben_token).status == 200
    refused = api.post(f"/messages/{message['id']}/pin", token=ana_token)
    assert (refused.status, refused.json["error"]) == (403, "You cannot do this to this user")
    stranger = api.register()[0]
    assert api.get(f"/rooms/{direct}/pins", token=stranger).status == 404
    assert api.post(f"/messages/{message['id']}/pin", token=stranger).status == 404


def test_a_room_takes_fifty_pins_at_most(api, lesson):
    room_id, people = lesson
    teacher = people["teacher"]
    ids = [post(api, room_id, teacher, f"note {n}")["id"] for n in range(51)]
    for message_id in ids[:50]:
        assert api.post(f"/messages/{message_id}/pin", token=teacher["token"]).status == 200
    refused = api.post(f"/messages/{ids[50]}/pin", token=teacher["token"])
    assert (refused.status, refused.json) == (400, {"success": False, "message": "Request failed",
                                                    "error": "Too many pins"})
    assert len(api.get(f"/rooms/{room_id}/pins", token=teacher["token"]).data["messages"]) == 50


# -- names -----------------------------------------------------------------------------

def test_a_display_name_and_status_are_shown_everywhere_and_room_mates_hear_of_them(
        api, chat, lesson):
    room_id, people = lesson
    ana, ben = people["ana"], people["ben"]
    mate = chat(ben["token"])  # in no room now, but a member of ana's
    stranger = chat(api.register()[0])
    reply = api.call("PATCH", "/users/me", {"display_name": "  Ana K.  ", "status": " In the lab "},
                     token=ana["token"])
    assert reply.status == 200 and reply.json["message"] == "Profile updated"
    user = reply.data["user"]
    assert (user["username"], user["display_name"], user["status"]) \
        == (ana["username"], "Ana K.", "In the lab")
    heard = wait_for_frame(mate, "user_updated")
    assert heard["message"] == "Profile updated"
    assert (heard["data"]["user"]["id"], heard["data"]["user"]["display_name"]) \
        == (ana["id"], "Ana K.")
    assert "must_change_password" not in heard["data"]["user"]
    still_quiet(stranger, "user_updated")
    assert api.get("/users/me", token=ana["token"]).data["user"]["display_name"] == "Ana K."
    members = api.get(f"/rooms/{room_id}/members", token=ben["token"]).data["members"]
    listed = next(m for m in members if m["id"] == ana["id"])
    assert (listed["display_name"], listed["status"]) == ("Ana K.", "In the lab")
    # Only the status changes; the name stays. Mentions stay @username.
    assert api.call("PATCH", "/users/me", {"status": ""},
                    token=ana["token"]).data["user"]["display_name"] == "Ana K."
    said = post(api, room_id, ben, "@Ana K. and @" + ana["username"])
    assert said["mentions"] == [ana["id"]]


@pytest.mark.parametrize("body", [
    {}, {"display_name": ""}, {"display_name": "   "}, {"display_name": "x" * 41},
    {"display_name": "\u202eevil"}, {"display_name": "two\nlines"}, {"display_name": "bell\x07"},
    {"display_name": 5}, {"status": "x" * 81}, {"status": None, "display_name": None},
    {"status": "tab\tbed"}, {"display_name": "\u200b"}, {"display_name": "ad\u2060min"},
    {"display_name": "\ufeffteacher"}, {"status": "\u202dreversed"},
])
def test_a_bad_profile_is_refused_and_changes_nothing(api, body):
    token, _, username = api.register()
    reply = api.call("PATCH", "/users/me", body, token=token)
    assert reply.status == 400 and reply.json["message"] == "Request failed", reply.json
    user = api.get("/users/me", token=token).data["user"]
    assert (user["display_name"], user["status"]) == (username, "")


def test_a_display_name_may_not_read_as_another_users_username(api):
    _, _, other = api.register()
    token, _, own = api.register()
    for name in (other, other.upper(), "@" + other,
                 "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in other)):
        refused = api.call("PATCH", "/users/me", {"display_name": name}, token=token)
        assert (refused.status, refused.json["error"]) \
            == (400, "display_name is another user's username"), name
    assert api.call("PATCH", "/users/me", {"display_name": own.upper()}, token=token).status == 200


def test_a_profile_of_forty_characters_and_emoji_is_kept_whole(api):
    token, _, _ = api.register()
    name, status = "Zoë 👩\u200d🔬 " + "x" * 31, "🔬" * 80  # a joiner within an emoji is kept
    reply = api.call("PATCH", "/users/me", {"display_name": name, "status": status}, token=token)
    assert reply.status == 200
    assert (reply.data["user"]["display_name"], reply.data["user"]["status"]) == (name, status)
    assert api.call("PATCH", "/users/me", {"display_name": "x"}, token=None).status == 401
