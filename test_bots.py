"""Scripts, bots and embedding: REST posting, token refresh, on_message/post_message, examples.

The example programs in examples/ run here as real processes against a
server on free ports, as a reader of the README would run them.
"""

import json
import logging
import os
import re
import select
import shutil
import subprocess
import sys
import threading

import jwt
import pytest

import swiftchat
from conftest import HERE, TEST_SECRET, Api, ChatClient, frames_of_type, history, in_room, say

EXAMPLES = os.path.join(HERE, "examples")


# -- POST /messages -------------------------------------------------------------------

def test_a_message_posted_over_rest_is_stored_and_heard_by_everyone_live(server, api, room):
    room_id, token, user_id = room
    own_connection, _ = in_room(api, server, room_id, token)
    listener, _ = in_room(api, server, room_id)
    own_connection.recv_type("user_joined")
    reply = api.post("/messages", {"room_id": room_id, "content": "  Build 42 passed  "}, token=token)
    assert reply.status == 201 and reply.json["message"] == "Message sent successfully"
    posted = reply.data
    assert set(posted) == {"id", "room_id", "user_id", "username", "content", "timestamp",
                           "mentions", "attachments", "reply_to", "reactions", "pinned"}  # the last four: 1.3
    assert (posted["room_id"], posted["user_id"], posted["content"]) == (room_id, user_id, "Build 42 passed")
    for client in (own_connection, listener):  # the author's own connection too
        heard = client.recv_type("message_received")["data"]
        assert heard["id"] == posted["id"] and heard["content"] == "Build 42 passed"
    assert [m["id"] for m in history(api, room_id, token)] == [posted["id"]]


def test_rest_and_websocket_messages_share_one_order(server, api, room):
    room_id, token, _ = room
    talker, _ = in_room(api, server, room_id)
    listener, _ = in_room(api, server, room_id)
    talker.recv_type("user_joined")
    ids = []
    for n in range(5):
        ids.append(say(talker, f"ws {n}")["data"]["id"])
        ids.append(api.post("/messages", {"room_id": room_id, "content": f"rest {n}"}, token=token).data["id"])
    heard = [f["data"]["id"] for f in frames_of_type(listener, "message_received", 10)]
    assert heard == ids == sorted(ids)


def test_a_retried_rest_post_with_the_same_client_id_is_stored_once(server, api, room):
    room_id, token, _ = room
    body = {"room_id": room_id, "content": "deploy done", "client_id": "job-7"}
    first = api.post("/messages", body, token=token)
    again = api.post("/messages", body, token=token)
    assert first.status == again.status == 201
    assert again.data == {**first.data, "duplicate": True}
    assert first.data["client_id"] == "job-7"
    assert len(history(api, room_id, token)) == 1


@pytest.mark.parametrize("body, status, error", [
    ({"room_id": "room_00000000", "content": "hi"}, 404, "Room not found"),
    ({"content": "hi"}, 400, "room_id is required"),
    ({"room_id": "{room}", "content": "   "}, 400, "content must be 1-4000 characters, not only spaces"),
    ({"room_id": "{room}", "content": "x" * 4001}, 400, "content must be 1-4000 characters, not only spaces"),
    ({"room_id": "{room}", "content": "hi", "client_id": ""}, 400, "client_id must be 1-64 characters"),
])
def test_a_bad_rest_post_is_refused(api, room, body, status, error):
    room_id, token, _ = room
    body = {k: (room_id if v == "{room}" else v) for k, v in body.items()}
    reply = api.post("/messages", body, token=token)
    assert reply.status == status and reply.json["error"] == error


def test_only_members_may_post_over_rest(api, room):
    room_id, _, _ = room
    outsider, _, _ = api.register()
    reply = api.post("/messages", {"room_id": room_id, "content": "let me in"}, token=outsider)
    assert reply.status == 403
    assert reply.json == {"success": False, "message": "Forbidden", "error": "You are not a member of this room"}
    assert api.post("/messages", {"room_id": room_id, "content": "x"}).status == 401


# -- POST /auth/refresh ------------------------------------------------------------------

def test_refresh_gives_a_new_token_with_another_hour(api):
    token, user_id, username = api.register()
    old_claims = jwt.decode(token, TEST_SECRET, algorithms=["HS256"])
    reply = api.post("/auth/refresh", token=token)
    assert reply.status == 200 and reply.json["message"] == "Token refreshed"
    assert (reply.data["id"], reply.data["username"]) == (user_id, username)
    claims = jwt.decode(reply.data["token"], TEST_SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 3600 and claims["exp"] >= old_claims["exp"]
    assert api.get("/users/me", token=reply.data["token"]).status == 200
    assert api.post("/auth/refresh", token="not-a-token").status == 401


# -- embedding --------------------------------------------------------------------------

def test_post_message_and_on_message_for_embedding_programs(server, api, room, caplog):
    room_id, token, user_id = room
    listener, _ = in_room(api, server, room_id)
    heard, done = [], threading.Event()

    def broken(message):
        raise RuntimeError("a bug in somebody's bot")

    def record(message):
        heard.append((message, threading.current_thread().name))
        if len(heard) == 3:
            done.set()

    server.on_message(broken)
    server.on_message(record)
    with caplog.at_level(logging.ERROR):
        posted = server.post_message(room_id, user_id, "from the embedding program")
        assert listener.recv_type("message_received")["data"]["id"] == posted["id"]
        say(listener, "from a websocket")
        api.post("/messages", {"room_id": room_id, "content": "from rest"}, token=token)
        assert done.wait(timeout=5)
    assert [m["content"] for m, _ in heard] == ["from the embedding program", "from a websocket", "from rest"]
    assert heard[0][0] == posted
    assert all(name.startswith("swiftchat-callbacks") for _, name in heard)  # never the loop
    assert caplog.text.count("an on_message callback failed") == 3
    assert listener.request({"type": "ping"})["success"]  # chat goes on


def test_post_message_refuses_unknown_rooms_users_and_bad_content(server, room):
    room_id, _, user_id = room
    with pytest.raises(LookupError):
        server.post_message("room_00000000", user_id, "hello")
    with pytest.raises(LookupError):
        server.post_message(room_id, "user_00000000", "hello")
    with pytest.raises(swiftchat.Invalid):  # 1.2: the embedding API's own errors (#26)
        server.post_message(room_id, user_id, "   ")


def test_serve_has_an_explicit_signature():
    import inspect
    parameters = inspect.signature(swiftchat.serve).parameters
    assert "options" not in parameters
    assert list(parameters)[:4] == ["host", "http_port", "ws_port", "db"]


# -- the examples, run as their README shows --------------------------------------------

@pytest.fixture
def bot_room(server, api):
    """A room, a member account for the example programs, and a listener in the room."""
    owner, _, _ = api.register()
    room_id = api.create_room(owner, "Notifications")
    bot_token, bot_id, bot_name = api.register(password="bot-password-1")
    assert api.post("/rooms/join", {"room_id": room_id}, token=bot_token).status == 200
    listener, _ = in_room(api, server, room_id, owner)
    env = {**os.environ, "SWIFTCHAT_URL": f"http://127.0.0.1:{server.http_port}",
           "SWIFTCHAT_USER": bot_name, "SWIFTCHAT_PASSWORD": "bot-password-1",
           "SWIFTCHAT_ROOM": room_id}
    return {"room_id": room_id, "listener": listener, "env": env, "bot_id": bot_id, "owner": owner}


@pytest.mark.parametrize("command", [["sh", "notify.sh"], [sys.executable, "notify.py"]])
def test_the_notifier_examples_post_a_line(bot_room, command):
    if command[0] == "sh" and not any(os.access(os.path.join(p, "curl"), os.X_OK)
                                      for p in os.environ["PATH"].split(os.pathsep)):
        pytest.skip("curl is not installed")
    line = 'Build 42 passed: "all green" \\o/'
    result = subprocess.run([*command, line], cwd=EXAMPLES, env=bot_room["env"],
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    heard = bot_room["listener"].recv_type("message_received")["data"]
    assert (heard["content"], heard["user_id"]) == (line, bot_room["bot_id"])


NOTIFIERS = [["sh", "notify.sh"], [sys.executable, "notify.py"]]


@pytest.mark.parametrize("command", NOTIFIERS)
@pytest.mark.parametrize("change, reason", [
    ({"SWIFTCHAT_PASSWORD": "not-the-password"}, "Username or password is incorrect (HTTP 401)"),
    ({"SWIFTCHAT_ROOM": "room_00000000"}, "Room not found (HTTP 404)"),
    ({"SWIFTCHAT_USER": "ab"}, "Username or password is incorrect (HTTP 401)"),
])
def test_a_notifier_that_is_refused_says_why_on_one_line(bot_room, command, change, reason):
    if command[0] == "sh" and not any(os.access(os.path.join(p, "curl"), os.X_OK)
                                      for p in os.environ["PATH"].split(os.pathsep)):
        pytest.skip("curl is not installed")
    result = subprocess.run([*command, "hello"], cwd=EXAMPLES, env={**bot_room["env"], **change},
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 1
    assert result.stderr == f"{command[-1]}: {reason}\n"


def test_a_notifier_for_a_room_it_is_not_in_says_so(server, api, bot_room):
    other_room = api.create_room(bot_room["owner"], "Elsewhere")
    for command in NOTIFIERS:
        env = {**bot_room["env"], "SWIFTCHAT_ROOM": other_room}
        result = subprocess.run([*command, "hello"], cwd=EXAMPLES, env=env, capture_output=True,
                                text=True, timeout=20)
        assert (result.returncode, result.stderr) == (
            1, f"{command[-1]}: You are not a member of this room (HTTP 403)\n")


def start_example(name, *args, env=None):
    process = subprocess.Popen([sys.executable, os.path.join(EXAMPLES, name), *args],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([process.stdout], [], [], 20)
    assert ready, f"{name} printed nothing"
    return process, process.stdout.readline()


def stop_example(process):
    process.terminate()
    process.wait(timeout=10)
    process.stdout.close()
    stderr = process.stderr.read()
    process.stderr.close()
    return stderr


def test_the_echo_bot_answers_and_after_a_drop_catches_up_with_since(server, api, bot_room):
    process, line = start_example("echo_bot.py", env=bot_room["env"])
    try:
        assert "in the room" in line
        listener = bot_room["listener"]
        listener.recv_type("user_joined")
        say(listener, "hello bot")
        assert listener.recv_type("message_received")["data"]["content"] == "echo: hello bot"
        # Drop the bot's connection as a network failure would, and talk meanwhile.
        server.core.call(lambda: [client.websocket.transport.abort()  # as if the network failed
                                  for client in server.core.clients[bot_room["bot_id"]].values()])
        frames_of_type(listener, "user_left", 1)
        say(listener, "said while you were away")
        answers = [f["data"]["content"] for f in frames_of_type(listener, "message_received", 1)]
        assert answers == ["echo: said while you were away"]
    finally:
        stderr = stop_example(process)
    assert "Traceback" not in stderr
    contents = [m["content"] for m in history(Api(server.http_port), bot_room["room_id"], bot_room["owner"])]
    assert contents.count("echo: hello bot") == 1  # the replayed one was not echoed twice


def test_the_embedded_time_bot_answers_time_in_any_room(tmp_path):
    process, line = start_example("time_bot.py", "--http-port", "0", "--ws-port", "0",
                                  "--db", str(tmp_path / "bot.db"))
    try:
        match = re.search(r"http://127\.0\.0\.1:(\d+), WebSocket on ws://127\.0\.0\.1:(\d+)", line)
        assert match, line
        http_port, ws_port = int(match[1]), int(match[2])
        api = Api(http_port)
        token, _, _ = api.register()
        room_id = api.create_room(token, "What time is it")
        client = ChatClient(ws_port)
        client.request({"type": "auth", "token": token})
        client.request({"type": "join_room", "room_id": room_id})
        say(client, "!time")
        answer = client.recv_type("message_received")["data"]
        assert answer["username"] == "timebot" and re.fullmatch(r"It is \d\d:\d\d:\d\d UTC\.", answer["content"])
        say(client, "what is the time?")  # anything else gets no answer
        assert client.request({"type": "ping"})["data"]["type"] == "pong"
    finally:
        stderr = stop_example(process)
    assert "Traceback" not in stderr


def test_the_readmes_python_snippets_run_as_pasted(server, api):
    """Each ```python block of the README, with the real ports for 8080 and 8081."""
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as readme:
        blocks = re.findall(r"^( *)```python\n(.*?)^\1```", readme.read(), re.S | re.M)
    assert len(blocks) >= 3
    token, _, _ = api.register("alice", "correct horse")  # as the README's walk-through does
    api.create_room(token, "General")
    for indent, code in blocks:
        code = "\n".join(line[len(indent):] for line in code.splitlines())
        code = code.replace("127.0.0.1:8080", f"127.0.0.1:{server.http_port}")
        code = code.replace("127.0.0.1:8081", f"127.0.0.1:{server.ws_port}")
        result = subprocess.run([sys.executable, "-c", code], cwd=HERE, capture_output=True,
                                text=True, timeout=30, env={**os.environ, "no_proxy": "*"})
        assert result.returncode == 0, (code, result.stderr)


def test_the_readmes_curl_walk_through_runs_as_pasted(server, api):
    """The README's curl walk-through, with the real port for 8080: it registers alice,
    makes a room, says hello, and reads it back."""
    if not shutil.which("curl"):
        pytest.skip("curl is not installed")
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as readme:
        walk_through = re.search(r"## A walk through the API with curl\n\n```sh\n(.*?)^```",
                                 readme.read(), re.S | re.M)[1]
    script = walk_through.replace("127.0.0.1:8080", f"127.0.0.1:{server.http_port}")
    result = subprocess.run(["sh", "-e", "-c", script], capture_output=True, text=True, timeout=30,
                            env={**os.environ, "no_proxy": "*"})
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.replace("}{", "}\n{").splitlines()]
    assert [answer["success"] for answer in answers] == [True, True, True]
    assert answers[-1]["data"]["messages"][0]["content"] == "Hello, everyone!"
    assert answers[1]["data"]["rooms"][0]["name"] == "General"
