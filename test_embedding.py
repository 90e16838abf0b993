"""Embedding SwiftChat in a host program, through its public Python API only.

Everything here uses what the README's embedding section documents: serve()
and the methods of the object it returns, and the exceptions SwiftChatError,
NotFound, Conflict and Invalid. A test below fails if this file or an
example reaches into the server's internals (store, accounts, hub, core).
"""

import os
import re
import select
import signal
import subprocess
import sys
import urllib.request

import pytest

import swiftchat
from conftest import HERE, Api, authed

# Each test names its own users and rooms, and none is named twice.
pytestmark = pytest.mark.shared_server


@pytest.fixture
def host(server):
    """A SwiftChat embedded as a host program would run it (serve()'s answer)."""
    return server


def test_the_host_creates_users_and_finds_them_by_id_or_name(host):
    made = host.create_user("Grace", "grace-password")
    assert set(made) == {"id", "username", "created_at", "role", "disabled", "must_change_password",
                         "display_name", "status"}
    assert (made["username"], made["role"], made["disabled"]) == ("Grace", "user", False)
    assert host.user(user_id=made["id"]) == made
    assert host.user(username="grace") == made  # any letter case, as at login
    assert host.user(user_id="user_00000000") is None and host.user(username="nobody") is None
    admin = host.create_user("Ada", "ada-password", role="admin")
    assert admin["role"] == "admin"


@pytest.mark.parametrize("call, error, text", [
    (lambda h: h.create_user("ab", "password123"), swiftchat.Invalid, "username must be 3-32"),
    (lambda h: h.create_user("valid_name", "short"), swiftchat.Invalid,
     "password must be 8-128 characters"),
    (lambda h: h.create_user("valid_name", "password123", role="root"), swiftchat.Invalid,
     'role must be "user" or "admin"'),
    (lambda h: h.create_room("", "user_00000000"), swiftchat.Invalid, "name must be 1-64"),
    (lambda h: h.create_room("Fine", "user_00000000"), swiftchat.NotFound,
     "user 'user_00000000' not found"),
    (lambda h: h.members("room_00000000"), swiftchat.NotFound, "room 'room_00000000' not found"),
    (lambda h: h.messages("room_00000000"), swiftchat.NotFound, "room 'room_00000000' not found"),
    (lambda h: h.token_for("user_00000000"), swiftchat.NotFound, "user 'user_00000000' not found"),
    (lambda h: h.add_member("room_00000000", h.create_user("member1", "password123")["id"]),
     swiftchat.NotFound, "room 'room_00000000' not found"),
])
def test_a_refused_call_says_what_was_wrong(host, call, error, text):
    with pytest.raises(error) as refused:
        call(host)
    assert str(refused.value).startswith(text)
    assert isinstance(refused.value, swiftchat.SwiftChatError)


def test_a_taken_name_is_a_conflict_that_names_it(host):
    user = host.create_user("bob_the_host", "password123")
    host.create_room("Ops", user["id"])
    with pytest.raises(swiftchat.Conflict, match="username 'Bob_The_Host' is taken"):
        host.create_user("Bob_The_Host", "password123")
    with pytest.raises(swiftchat.Conflict, match="room name 'ops' is taken"):
        host.create_room("ops", user["id"])
    assert issubclass(swiftchat.NotFound, LookupError) and issubclass(swiftchat.Invalid, ValueError)


def test_token_for_signs_a_user_in_like_a_login_and_logout_ends_it(host):
    user = host.create_user("signed_in", "password123")
    token = host.token_for(user["id"])
    api = Api(host.http_port)
    assert api.get("/users/me", token=token).data["user"]["id"] == user["id"]
    client = authed(host, token)
    assert client.request({"type": "ping"})["data"]["type"] == "pong"
    assert api.post("/auth/logout", token=token).data == {"sessions_ended": 1}
    assert api.get("/users/me", token=token).status == 401


def test_rooms_members_and_history_as_the_api_shows_them(host):
    owner = host.create_user("owner_one", "password123")
    guest = host.create_user("guest_one", "password123")
    guest_socket = authed(host, host.token_for(guest["id"]))
    room = host.create_room("Team", owner["id"], "work talk", visibility="private")
    assert (room["name"], room["visibility"], room["kind"]) == ("Team", "private", "room")
    member = host.add_member(room["id"], guest["id"])
    assert member["id"] == guest["id"] and member["is_online"] is True
    assert guest_socket.recv_type("room_added")["data"]["id"] == room["id"]
    assert sorted(m["id"] for m in host.members(room["id"])) == sorted([owner["id"], guest["id"]])
    for n in range(3):
        host.post_message(room["id"], guest["id"], f"note {n}")
    history = host.messages(room["id"], limit=2)
    assert [m["content"] for m in history] == ["note 1", "note 2"]
    assert history[0]["sender"]["username"] == "guest_one" and history[0]["edited_at"] is None
    older = host.messages(room["id"], before=history[0]["id"])
    assert [m["content"] for m in older] == ["note 0"]
    api = Api(host.http_port)
    assert api.get(f"/messages?room_id={room['id']}&limit=2",
                   token=host.token_for(owner["id"])).data["messages"] == history
    with pytest.raises(swiftchat.Invalid, match="limit must be a non-negative integer"):
        host.messages(room["id"], limit=-1)


def test_trusted_code_may_post_where_it_likes(host):
    owner = host.create_user("owner_two", "password123")
    outsider = host.create_user("outsider", "password123")
    room = host.create_room("Announcements", owner["id"])
    posted = host.post_message(room["id"], outsider["id"], "from the host program")
    assert posted["user_id"] == outsider["id"] and isinstance(posted["id"], int)
    assert [m["id"] for m in host.members(room["id"])] == [owner["id"]]  # nobody became a member


PUBLIC_ONLY = re.compile(r"\.(store|accounts|hub|core)\b")


@pytest.mark.parametrize("path", ["test_embedding.py", "examples/time_bot.py",
                                  "examples/host_app.py"])
def test_the_examples_and_these_tests_use_the_public_api_only(path):
    with open(os.path.join(HERE, path), encoding="utf-8") as source:
        lines = [line for line in source if not line.lstrip().startswith(("#", "PUBLIC_ONLY"))]
    assert [line for line in lines if PUBLIC_ONLY.search(line)] == []


def test_the_host_app_example_signs_its_user_into_the_chat_page(tmp_path):
    process = subprocess.Popen([sys.executable, os.path.join(HERE, "examples", "host_app.py"),
                                "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        ready, _, _ = select.select([process.stdout], [], [], 20)
        assert ready, "host_app.py printed nothing"
        line = process.stdout.readline()
        tool, chat = re.search(r"on (http://\S+/) \(chat on (http://\S+/)\)", line).groups()
        with urllib.request.urlopen(tool, timeout=10) as reply:
            page = reply.read().decode("utf-8")
        token = re.search(r'src="[^"#]+#token=([^"]+)"', page)[1]
        port = int(re.search(r":(\d+)/$", chat)[1])
        assert Api(port).get("/users/me", token=token).data["user"]["username"] == "host_user"
        with urllib.request.urlopen(chat, timeout=10) as reply:
            policy = reply.headers["Content-Security-Policy"]
        assert policy.endswith(f"frame-ancestors {tool.rstrip('/')}")
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=15)
