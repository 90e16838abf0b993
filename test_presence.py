"""Who is here: the member list with presence, typing indicators, live room-list events."""

import asyncio

import pytest
from websockets.asyncio.client import connect as async_connect

from conftest import NO_LIMITS, Api, authed, in_room


# -- GET /rooms/{room_id}/members -----------------------------------------------------

def test_members_show_who_is_online_and_who_is_in_the_room(server, api):
    owner, owner_id, _ = api.register("owner")
    room_id = api.create_room(owner, "Presence")
    here_token, here_id, _ = api.register("here")
    away_token, away_id, _ = api.register("away")
    offline_token, offline_id, _ = api.register("offline")
    for token in (here_token, away_token, offline_token):
        api.post("/rooms/join", {"room_id": room_id}, token=token)
    in_room(api, server, room_id, here_token)
    authed(server, away_token)  # online, but in no room
    reply = api.get(f"/rooms/{room_id}/members", token=owner)
    assert reply.status == 200 and reply.json["message"] == "Members retrieved successfully"
    assert reply.data["room_id"] == room_id and reply.data["count"] == 4
    members = reply.data["members"]
    assert members == sorted(members, key=lambda m: (m["joined_at"], m["id"]))  # the contract's order
    assert sorted((m["id"], m["username"], m["is_online"], m["in_room"]) for m in members) == sorted([
        (owner_id, "owner", False, False), (here_id, "here", True, True),
        (away_id, "away", True, False), (offline_id, "offline", False, False)])
    assert all(set(m) == {"id", "username", "joined_at", "is_online", "in_room", "role",
                          "muted_until", "display_name", "status"}
               for m in reply.data["members"])


def test_members_of_an_unknown_room_is_404_and_needs_a_token(api):
    token, _, _ = api.register()
    assert api.get("/rooms/room_00000000/members", token=token).json["error"] == "Room not found"
    assert api.get("/rooms/room_00000000/members").status == 401


@pytest.mark.parametrize("server_options", [NO_LIMITS])
def test_a_room_of_500_members_150_of_them_live_is_listed_whole(server, api):
    owner, _, _ = api.register()
    room_id = api.create_room(owner, "Big hall")
    tokens = [api.register()[0] for _ in range(499)]
    for token in tokens:
        api.post("/rooms/join", {"room_id": room_id}, token=token)

    async def live(count):  # many live connections in the room, cheaply
        # max_queue=None: a client that reads nothing must still see its close handshake.
        clients = [await async_connect(f"ws://127.0.0.1:{server.ws_port}", proxy=None, max_queue=None)
                   for _ in range(count)]
        for client, token in zip(clients, tokens):
            await client.send(f'{{"type": "auth", "token": "{token}"}}')
            await client.recv()
            await client.send(f'{{"type": "join_room", "room_id": "{room_id}"}}')
            while '"room_joined"' not in await client.recv():
                pass
        reply = await asyncio.to_thread(api.get, f"/rooms/{room_id}/members", token=owner)
        for client in clients:
            await client.close()
        return reply

    reply = asyncio.run(live(150))
    members = reply.data["members"]
    assert reply.data["count"] == len(members) == 500
    assert sum(m["in_room"] for m in members) == 150
    assert members == sorted(members, key=lambda m: (m["joined_at"], m["id"]))


# -- typing ------------------------------------------------------------------------------

def test_typing_tells_the_others_at_most_every_two_seconds(serve_with, clock):
    server = serve_with(clock=clock)
    api = Api(server.http_port)
    token, user_id, username = api.register()
    room_id = api.create_room(token, "Typing")
    typist, _ = in_room(api, server, room_id, token)
    reader, _ = in_room(api, server, room_id)
    typist.recv_type("user_joined")
    for _ in range(5):
        typist.send({"type": "typing"})
    assert reader.recv() == {"success": True, "message": "User is typing", "data": {
        "type": "user_typing", "user_id": user_id, "username": username, "room_id": room_id}}
    clock.advance(1.9)
    typist.send({"type": "typing"})  # still within 2 s: dropped
    clock.advance(0.1)
    typist.send({"type": "typing"})
    assert reader.recv_type("user_typing")["data"]["user_id"] == user_id
    assert reader.request({"type": "ping"})["data"]["type"] == "pong"  # nothing more came
    assert typist.request({"type": "ping"})["data"]["type"] == "pong"  # the typist got nothing


def test_typing_in_no_room_is_an_error(server, api):
    client = authed(server, api.register()[0])
    assert client.request({"type": "typing"}) == {
        "success": False, "message": "Request failed", "error": "You are not in any room"}


# -- the room list, live -------------------------------------------------------------------

def test_room_changes_reach_every_connection_in_a_room_or_not(server, api):
    creator, _, _ = api.register()
    lobby = authed(server, api.register()[0])  # in no room
    old_room = api.create_room(creator, "Old")
    lobby.recv_type("room_created")
    inside, _ = in_room(api, server, old_room)

    room_id = api.create_room(creator, "Brand new", "fresh")
    listed = next(r for r in api.get("/rooms").data["rooms"] if r["id"] == room_id)
    for client in (lobby, inside):
        frame = client.recv_type("room_created")
        assert frame["message"] == "Room created" and frame["data"] == {"type": "room_created", **listed}

    api.call("PATCH", f"/rooms/{room_id}", {"description": "renovated"}, token=creator)
    for client in (lobby, inside):
        assert client.recv_type("room_updated") == {"success": True, "message": "Room updated", "data": {
            "type": "room_updated", "room_id": room_id, "description": "renovated"}}

    api.call("DELETE", f"/rooms/{old_room}", token=creator)
    for client in (lobby, inside):
        assert client.recv_type("room_deleted") == {"success": True, "message": "Room deleted", "data": {
            "type": "room_deleted", "room_id": old_room}}
    assert inside.request({"type": "leave_room"})["error"] == "You are not in any room"
