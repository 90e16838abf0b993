"""Several devices (CONTRACT 1.2): one user, up to 5 sessions connected at once.

Each connection has its own room; the room hears a user join when their
first connection enters and leave when their last one goes; presence is per
user. A reconnect of the same session still replaces the older connection.
"""

import pytest

from conftest import Api, closed_with, login

# Each test makes its own users and rooms.
pytestmark = pytest.mark.shared_server


@pytest.fixture
def room_with_watcher(room, chat):
    """(room id, its creator's client in the room, the creator's token)."""
    watcher = chat(room.token)
    watcher.request({"type": "join_room", "room_id": room.id})
    return room.id, watcher, room.token


def test_two_devices_stay_connected_and_the_room_sees_one_person(api, chat, room_with_watcher):
    room_id, watcher, watcher_token = room_with_watcher
    laptop_token, user_id, name = api.register()
    phone_token = login(api, name).data["token"]
    laptop, phone = chat(laptop_token), chat(phone_token)
    laptop.request({"type": "join_room", "room_id": room_id})
    assert watcher.recv_type("user_joined")["data"]["user_id"] == user_id
    phone.request({"type": "join_room", "room_id": room_id})
    members = api.get(f"/rooms/{room_id}/members", token=watcher_token).data["members"]
    assert {m["id"]: m["in_room"] for m in members}[user_id] is True
    assert laptop.request({"type": "leave_room"})["data"]["type"] == "room_left"
    watcher.send({"type": "ping"})
    assert watcher.recv()["data"]["type"] == "pong"  # no user_left: the phone is still here
    members = api.get(f"/rooms/{room_id}/members", token=watcher_token).data["members"]
    assert {m["id"]: m["in_room"] for m in members}[user_id] is True
    phone.request({"type": "leave_room"})
    assert watcher.recv_type("user_left")["data"]["user_id"] == user_id
    assert laptop.request({"type": "ping"})["data"]["type"] == "pong"  # both still connected


def test_a_message_is_sent_from_one_device_and_heard_on_the_other(api, chat, room_with_watcher):
    room_id, watcher, _ = room_with_watcher
    laptop_token, _, name = api.register()
    laptop, phone = chat(laptop_token), chat(login(api, name).data["token"])
    for device in (laptop, phone):
        device.request({"type": "join_room", "room_id": room_id})
    watcher.recv_type("user_joined")
    sent = laptop.request({"type": "send_message", "content": "from my laptop"})
    assert sent["data"]["type"] == "message_sent"
    heard = phone.recv_type("message_received")["data"]
    assert (heard["content"], heard["id"]) == ("from my laptop", sent["data"]["id"])
    assert watcher.recv_type("message_received")["data"]["id"] == sent["data"]["id"]


def test_the_user_is_online_while_any_device_is(api, chat, room_with_watcher):
    room_id, _, watcher_token = room_with_watcher
    token, user_id, name = api.register()
    api.post("/rooms/join", {"room_id": room_id}, token=token)
    first, second = chat(token), chat(login(api, name).data["token"])

    def online():
        members = api.get(f"/rooms/{room_id}/members", token=watcher_token).data["members"]
        return {m["id"]: m["is_online"] for m in members}[user_id]

    assert online()
    first.close()
    assert second.request({"type": "ping"})["data"]["type"] == "pong"
    assert online()


@pytest.mark.parametrize("server_options", [{"sessions_per_user": 2}])
def test_one_session_too_many_closes_the_least_recently_connected(server, api, chat):
    token, _, name = api.register()
    oldest, newer = chat(token), chat(login(api, name).data["token"])
    newest = chat(login(api, name).data["token"])
    assert closed_with(oldest) == (4000, "logged in from another location")
    for device in (newer, newest):
        assert device.request({"type": "ping"})["data"]["type"] == "pong"


def test_five_sessions_by_default(server, api, chat):
    token, _, name = api.register()
    other_sessions = [login(Api(server.http_port), name).data["token"] for _ in range(4)]
    devices = [chat(token)] + [chat(other) for other in other_sessions]
    for device in devices:
        assert device.request({"type": "ping"})["data"]["type"] == "pong"
    sixth = chat(login(api, name).data["token"])
    assert closed_with(devices[0]) == (4000, "logged in from another location")
    assert sixth.request({"type": "ping"})["data"]["type"] == "pong"
