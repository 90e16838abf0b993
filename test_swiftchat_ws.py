"""The WebSocket API, tested with real clients against a real server on ephemeral ports."""

import asyncio
import json
import logging
import socket

import pytest
from websockets.asyncio.client import connect as async_connect

from conftest import NO_LIMITS, TEST_SECRET, ChatClient, closed_with


def joined(api, chat, room_id, username=None):
    """A new user, authenticated over WebSocket and in room_id; returns (client, user_id, name)."""
    token, user_id, name = api.register(username)
    client = chat(token)
    client.request({"type": "join_room", "room_id": room_id})
    return client, user_id, name


# -- authentication -------------------------------------------------------------

def test_auth_with_a_valid_token_connects(server, api):
    token, user_id, _ = api.register()
    client = ChatClient(server.ws_port)
    reply = client.request({"type": "auth", "token": token})
    assert reply == {"success": True, "message": "WebSocket authentication successful",
                     "data": {"user_id": user_id, "status": "connected"}}
    client.close()


def test_every_connection_sends_its_frames_at_once_with_nagle_off(server, api):
    # A listener's frames must not wait for its delayed ACKs (up to 40 ms):
    # asyncio turns Nagle off only for sockets that say they are TCP, and the
    # server's listener does not (swiftchat_ws.no_delay).
    client = ChatClient(server.ws_port)
    client.request({"type": "auth", "token": api.register()[0]})
    [connection] = [connection for connection in server.websocket._server.connections
                    if connection.remote_address[1] == client.ws.local_address[1]]
    sock = connection.transport.get_extra_info("socket")
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


def test_auth_fields_may_also_come_inside_data(server, api):
    token, _, _ = api.register()
    client = ChatClient(server.ws_port)
    assert client.request({"type": "auth", "data": {"token": token}})["success"]
    client.close()


@pytest.mark.parametrize("token", ["not-a-token", None, 42])
def test_a_bad_token_gets_authentication_failed_and_close_1008(server, token):
    client = ChatClient(server.ws_port)
    reply = client.request({"type": "auth", "token": token})
    assert reply == {"success": False, "message": "Authentication failed",
                     "error": "Invalid or expired token"}
    assert closed_with(client)[0] == 1008


def test_a_first_frame_other_than_auth_is_refused_with_1008(server):
    client = ChatClient(server.ws_port)
    reply = client.request({"type": "ping"})
    assert reply == {"success": False, "message": "Authentication required",
                     "error": "First message must be auth"}
    assert closed_with(client)[0] == 1008


def test_a_client_that_never_authenticates_is_closed_after_the_deadline(serve_with):
    client = ChatClient(serve_with(auth_timeout=0.3).ws_port)
    assert closed_with(client)[0] == 1008


# -- rooms ----------------------------------------------------------------------

def test_join_room_answers_the_actor_and_tells_the_room(api, chat, room):
    room_id = room.id
    first, _, _ = joined(api, chat, room_id)
    token, user_id, name = api.register("newcomer")
    second = chat(token)
    reply = second.request({"type": "join_room", "room_id": room_id})
    assert reply == {"success": True, "message": "Room joined successfully",
                     "data": {"type": "room_joined", "room_id": room_id, "user_id": user_id}}
    assert first.recv() == {"success": True, "message": "User joined room",
                            "data": {"type": "user_joined", "user_id": user_id,
                                     "username": name, "room_id": room_id}}
    member_count = api.get("/rooms").data["rooms"][0]["member_count"]
    assert member_count == 3  # creator + two who joined over WebSocket: joins persist


def test_join_errors_keep_the_connection_open(api, chat, room):
    room_id, token, _ = room
    client = chat(token)
    unknown = client.request({"type": "join_room", "room_id": "room_00000000"})
    assert unknown == {"success": False, "message": "Request failed", "error": "Room not found"}
    missing = client.request({"type": "join_room"})
    assert missing["success"] is False and "room_id" in missing["error"]
    client.request({"type": "join_room", "room_id": room_id})
    again = client.request({"type": "join_room", "room_id": room_id})
    assert again == {"success": False, "message": "Request failed",
                     "error": "You are already in this room"}
    assert client.request({"type": "ping"})["data"]["type"] == "pong"


def test_leave_room_answers_the_actor_and_tells_the_rest(api, chat, room):
    room_id = room.id
    stayer, _, _ = joined(api, chat, room_id)
    leaver, leaver_id, leaver_name = joined(api, chat, room_id)
    stayer.recv_type("user_joined")
    reply = leaver.request({"type": "leave_room"})
    assert reply == {"success": True, "message": "Room left successfully",
                     "data": {"type": "room_left", "room_id": room_id, "user_id": leaver_id}}
    assert stayer.recv() == {"success": True, "message": "User left room",
                             "data": {"type": "user_left", "user_id": leaver_id,
                                      "username": leaver_name, "room_id": room_id}}
    nowhere = leaver.request({"type": "leave_room"})
    assert nowhere == {"success": False, "message": "Request failed",
                       "error": "You are not in any room"}


def test_joining_another_room_leaves_the_current_one(api, chat, room):
    room_a, token, _ = room
    room_b = api.create_room(token, "Other")
    watcher_a, _, _ = joined(api, chat, room_a)
    watcher_b, _, _ = joined(api, chat, room_b)
    mover, mover_id, _ = joined(api, chat, room_a)
    watcher_a.recv_type("user_joined")
    assert mover.request({"type": "join_room", "room_id": room_b})["data"]["type"] == "room_joined"
    assert watcher_a.recv_type("user_left")["data"]["user_id"] == mover_id
    assert watcher_b.recv_type("user_joined")["data"]["user_id"] == mover_id
    # The mover now hears room B, not room A.
    watcher_b.request({"type": "send_message", "content": "in B"})
    assert mover.recv_type("message_received")["data"]["content"] == "in B"


# -- messages -------------------------------------------------------------------

def test_send_message_confirms_to_the_sender_and_reaches_the_room(api, chat, room):
    room_id, token, _ = room
    listener, _, _ = joined(api, chat, room_id)
    sender, sender_id, sender_name = joined(api, chat, room_id)
    listener.recv_type("user_joined")
    sent = sender.request({"type": "send_message", "content": "  Hello, everyone!  "})
    assert sent["success"] and sent["message"] == "Message sent successfully"
    expected = {"user_id": sender_id, "username": sender_name, "room_id": room_id,
                "content": "Hello, everyone!", "timestamp": sent["data"]["timestamp"],
                "id": sent["data"]["id"], "mentions": [], "attachments": [], "reply_to": None,
                "reactions": [], "pinned": False}
    assert sent["data"] == {"type": "message_sent", **expected}
    received = listener.recv()
    assert received == {"success": True, "message": "Message sent successfully",
                        "data": {"type": "message_received", **expected}}
    # Saved before message_sent went out: history has it at once, with the same id.
    history = api.get(f"/messages?room_id={room_id}", token=token).data["messages"]
    assert [(m["id"], m["content"]) for m in history] == [(sent["data"]["id"], "Hello, everyone!")]


def test_send_message_needs_a_room_and_real_content(api, chat, room):
    room_id, token, _ = room
    client = chat(token)
    nowhere = client.request({"type": "send_message", "content": "hi"})
    assert nowhere == {"success": False, "message": "Request failed", "error": "You are not in any room"}
    client.request({"type": "join_room", "room_id": room_id})
    for content in ("", "   ", None, 5, "x" * 4001):
        reply = client.request({"type": "send_message", "content": content})
        assert reply["success"] is False and "content" in reply["error"]
    nested = client.request({"type": "send_message", "data": {"content": "nested works"}})
    assert nested["data"]["content"] == "nested works"


def test_messages_from_two_senders_arrive_in_the_order_the_server_accepted_them(api, chat, room):
    room_id, token, _ = room
    reader, _, _ = joined(api, chat, room_id)
    alice, _, _ = joined(api, chat, room_id)
    bob, _, _ = joined(api, chat, room_id)
    for n in range(20):
        alice.send({"type": "send_message", "content": f"alice {n}"})
        bob.send({"type": "send_message", "content": f"bob {n}"})
    seen = []
    while len(seen) < 40:
        frame = reader.recv()
        if frame["data"]["type"] == "message_received":
            seen.append(frame["data"]["content"])
    assert [c for c in seen if c.startswith("alice")] == [f"alice {n}" for n in range(20)]
    assert [c for c in seen if c.startswith("bob")] == [f"bob {n}" for n in range(20)]
    history = api.get(f"/messages?room_id={room_id}&limit=100", token=token).data["messages"]
    assert [m["content"] for m in history] == seen


def test_ping_gets_pong(api, chat):
    token, _, _ = api.register()
    reply = chat(token).request({"type": "ping"})
    assert reply["success"] and reply["message"] == "Pong response"
    assert reply["data"]["type"] == "pong" and isinstance(reply["data"]["timestamp"], int)


@pytest.mark.parametrize("raw, error", [
    ("{not json", "Invalid JSON format"),
    ("[1, 2]", "Invalid JSON format"),
    ('{"type": "invalid_type"}', "Unknown message type: invalid_type"),
    ('{"type": "auth", "token": "again"}', "Already authenticated"),
])
def test_bad_frames_get_an_error_and_the_connection_stays_open(api, chat, raw, error):
    token, _, _ = api.register()
    client = chat(token)
    client.ws.send(raw)
    assert client.recv() == {"success": False, "message": "Request failed", "error": error}
    assert client.request({"type": "ping"})["success"]


def test_a_frame_over_64_kib_closes_with_1009(api, chat):
    token, _, _ = api.register()
    client = chat(token)
    client.send({"type": "send_message", "content": "x" * (64 * 1024)})
    assert closed_with(client)[0] == 1009


# -- connections: one per user, disconnects, presence -----------------------------

def test_a_second_connection_replaces_the_first(api, chat, room):
    room_id = room.id
    watcher, _, _ = joined(api, chat, room_id)
    token, user_id, _ = api.register()
    old = chat(token)
    old.request({"type": "join_room", "room_id": room_id})
    watcher.recv_type("user_joined")
    new = chat(token)
    assert closed_with(old) == (4000, "logged in from another location")
    assert watcher.recv_type("user_left")["data"]["user_id"] == user_id
    nowhere = new.request({"type": "send_message", "content": "where am I?"})
    assert nowhere["error"] == "You are not in any room"


def test_presence_follows_the_connection(api, chat, room):
    room_id, token, _ = room
    watcher, _, _ = joined(api, chat, room_id)
    talker, talker_id, _ = joined(api, chat, room_id)
    watcher.recv_type("user_joined")
    talker.request({"type": "send_message", "content": "I am here"})
    watcher.recv_type("message_received")

    def talker_online():
        history = api.get(f"/messages?room_id={room_id}", token=token).data["messages"]
        return history[0]["sender"]["is_online"]

    assert talker_online() is True
    talker.close()
    # The server marks the user offline before it sends user_left.
    assert watcher.recv_type("user_left")["data"]["user_id"] == talker_id
    assert talker_online() is False


def test_deleting_a_room_over_http_tells_its_websocket_clients(api, chat, room):
    room_id, token, _ = room
    member, _, _ = joined(api, chat, room_id)
    assert api.call("DELETE", f"/rooms/{room_id}", token=token).status == 200
    assert member.recv() == {"success": True, "message": "Room deleted",
                             "data": {"type": "room_deleted", "room_id": room_id}}
    assert member.request({"type": "send_message", "content": "hello?"})["error"] == \
        "You are not in any room"


@pytest.mark.parametrize("server_options", [NO_LIMITS])
def test_fifty_clients_in_one_room_all_receive_every_message(server, api, room):
    room_id = room.id
    tokens = [api.register()[0] for _ in range(50)]

    async def scenario():
        # max_queue=None: frames this test never reads (user_left as the
        # others close) must not hold up each client's closing handshake.
        clients = [await async_connect(f"ws://127.0.0.1:{server.ws_port}", proxy=None,
                                       max_queue=None) for _ in tokens]
        for client, token in zip(clients, tokens):
            await client.send(json.dumps({"type": "auth", "token": token}))
            await client.recv()
        for client in clients:  # joined one after another: each sees the later joins
            await client.send(json.dumps({"type": "join_room", "room_id": room_id}))
            await client.recv()
        sender, listeners = clients[0], clients[1:]
        for n in range(5):
            await sender.send(json.dumps({"type": "send_message", "content": f"to all {n}"}))

        async def messages_for(client):
            contents = []
            while len(contents) < 5:
                frame = json.loads(await client.recv())
                if frame["data"]["type"] == "message_received":
                    contents.append(frame["data"]["content"])
            return contents

        received = await asyncio.wait_for(
            asyncio.gather(*(messages_for(c) for c in listeners)), timeout=20)
        for client in clients:
            await client.close()
        return received

    received = asyncio.run(scenario())
    assert received == [[f"to all {n}" for n in range(5)]] * 49


def test_tokens_in_websocket_frames_never_reach_the_logs(api, chat, caplog):
    token, _, _ = api.register()
    with caplog.at_level(logging.DEBUG):
        client = chat(token)
        client.request({"type": "ping"})
        client.close()
    assert token not in caplog.text
    assert TEST_SECRET not in caplog.text


def test_a_message_that_cannot_be_saved_is_an_error_to_the_sender_but_still_reaches_the_room(
        server, api, chat, room):
    room_id = room.id
    listener, _, _ = joined(api, chat, room_id)
    sender, _, _ = joined(api, chat, room_id)
    listener.recv_type("user_joined")
    # Delete the room's row behind the hub's back: the clients are still in
    # it, but the message's foreign key can no longer be satisfied.
    server.store.delete_room(room_id)
    reply = sender.request({"type": "send_message", "content": "into the void"})
    assert reply == {"success": False, "message": "Failed to save message",
                     "error": "Database operation failed"}
    assert listener.recv_type("message_received")["data"]["content"] == "into the void"
    assert sender.request({"type": "ping"})["success"]


def test_clients_that_vanish_at_any_step_leave_no_traceback(server, api, caplog):
    token, _, _ = api.register()
    with caplog.at_level(logging.INFO):
        ChatClient(server.ws_port).close()  # before auth
        bad = ChatClient(server.ws_port)
        bad.send({"type": "auth", "token": "bogus"})
        bad.close()  # while the server answers
        good = ChatClient(server.ws_port)
        good.request({"type": "auth", "token": token})
        good.send({"type": "ping"})
        good.close()  # with a reply on its way
        # The server still serves, and a fresh client gets through.
        fresh = ChatClient(server.ws_port)
        assert fresh.request({"type": "auth", "token": token})["success"]
        fresh.close()
    assert "Traceback" not in caplog.text and "handler failed" not in caplog.text
