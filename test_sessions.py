"""Sessions that end (CONTRACT 1.2): logout, password changes, a 30-day age, and tokens that name them.

Every token names its session (`sid`) and when it began (`auth_time`); a
token of a session that ended is refused at once over REST and WebSocket,
and the session's live connections are closed with 4001. Sessions ended by
another process on the same database are noticed within 5 seconds.
"""

import contextlib
import sqlite3
import subprocess
import sys
import time

import jwt
import pytest
from websockets.exceptions import ConnectionClosed

import accounts
import store
from conftest import (HERE, RELEASE_1_1_SCHEMA, TEST_ITERATIONS, TEST_SECRET, Api, ChatClient,
                      authed, closed_with, login, store_opened_in_python, wait_until)

DAY = 24 * 3600
EXPIRED = {"success": False, "message": "Authentication required", "error": "Invalid or expired token"}


def claims_of(token):
    return jwt.decode(token, options={"verify_signature": False})


def forged(user_id, username, **claims):
    """A token signed with the server's secret, with these claims over a valid set."""
    issued = int(time.time())
    base = {"sub": user_id, "username": username, "iat": issued, "exp": issued + 3600,
            "iss": "SwiftChat"}
    return jwt.encode({k: v for k, v in {**base, **claims}.items() if v is not None},
                      TEST_SECRET, algorithm="HS256")


def session_begun(server, user_id, auth_time):
    """A session of user_id that began at auth_time (as if logged in then), and a token of it."""
    user = server.store.user(user_id)
    session_id = server.store.create_session(user_id, auth_time, 0)
    session = accounts.Session(session_id, user, auth_time)
    return forged(user_id, user["username"], sid=session_id, auth_time=auth_time), session


# -- tokens name their session -------------------------------------------------------

def test_a_login_starts_a_session_and_refreshing_keeps_it(api):
    token, user_id, name = api.register()
    registered = claims_of(token)
    assert isinstance(registered["sid"], str) and isinstance(registered["auth_time"], int)
    logged_in = claims_of(login(api, name).data["token"])
    assert logged_in["sid"] != registered["sid"]  # each login is a session of its own
    refreshed = api.post("/auth/refresh", token=token)
    assert refreshed.status == 200 and refreshed.data["id"] == user_id
    again = claims_of(refreshed.data["token"])
    assert (again["sid"], again["auth_time"]) == (registered["sid"], registered["auth_time"])


def test_a_refreshed_token_never_outlives_its_session(server, api):
    _, user_id, _ = api.register()
    auth_time = int(time.time()) - 30 * DAY + 600  # ten minutes of the session are left
    token, _ = session_begun(server, user_id, auth_time)
    refreshed = api.post("/auth/refresh", token=token)
    assert refreshed.status == 200
    assert claims_of(refreshed.data["token"])["exp"] == auth_time + 30 * DAY


def test_refreshing_a_session_past_30_days_says_session_expired(server, api):
    _, user_id, _ = api.register()
    token, _ = session_begun(server, user_id, int(time.time()) - 30 * DAY - 5)
    reply = api.post("/auth/refresh", token=token)
    assert reply.status == 401 and reply.json == {
        "success": False, "message": "Authentication required", "error": "Session expired"}
    assert api.get("/users/me", token=token).json == EXPIRED  # anywhere else: an expired token


@pytest.mark.parametrize("server_options", [{"session_days": 2}])
def test_session_days_sets_the_maximum_age(server, api):
    _, user_id, _ = api.register()
    young, _ = session_begun(server, user_id, int(time.time()) - DAY)
    old, _ = session_begun(server, user_id, int(time.time()) - 2 * DAY - 5)
    assert api.post("/auth/refresh", token=young).status == 200
    assert api.post("/auth/refresh", token=old).json["error"] == "Session expired"


def hostile_claims(session_id, auth_time):
    now = int(time.time())
    return {
        "token from before 1.2 (no sid, no auth_time)": {},
        "no sid": {"auth_time": auth_time},
        "no auth_time": {"sid": session_id},
        "sid a number": {"sid": 12345, "auth_time": auth_time},
        "sid of no session": {"sid": "made-up", "auth_time": auth_time},
        "auth_time a string": {"sid": session_id, "auth_time": str(auth_time)},
        "auth_time true": {"sid": session_id, "auth_time": True},
        "auth_time a float": {"sid": session_id, "auth_time": auth_time + 0.5},
        "auth_time in the future": {"sid": session_id, "auth_time": now + 3600},
        "auth_time not the session's": {"sid": session_id, "auth_time": auth_time - 1},
        "auth_time 31 days old": {"sid": session_id, "auth_time": now - 31 * DAY},
        "exp a numeric string": {"sid": session_id, "auth_time": auth_time, "exp": str(now + 600)},
        "iat a numeric string": {"sid": session_id, "auth_time": auth_time, "iat": str(now)},
    }


@pytest.mark.parametrize("case", list(hostile_claims("x", 0)))
def test_a_token_with_hostile_session_claims_is_refused_everywhere(server, api, case):
    token, user_id, name = api.register()
    claims = claims_of(token)
    hostile = forged(user_id, name, **hostile_claims(claims["sid"], claims["auth_time"])[case])
    assert api.get("/users/me", token=hostile).json == EXPIRED
    assert api.post("/auth/refresh", token=hostile).status == 401
    client = ChatClient(server.ws_port)
    assert client.request({"type": "auth", "token": hostile}) == {
        "success": False, "message": "Authentication failed", "error": "Invalid or expired token"}
    assert closed_with(client)[0] == 1008


def test_a_token_of_another_users_session_is_refused(api):
    token, _, _ = api.register()
    _, other_id, other_name = api.register()
    claims = claims_of(token)
    stolen = forged(other_id, other_name, sid=claims["sid"], auth_time=claims["auth_time"])
    assert api.get("/users/me", token=stolen).json == EXPIRED


# -- logout ------------------------------------------------------------------------------

def test_logout_ends_this_session_only_and_at_once(server, api):
    first, _, name = api.register()
    second = login(api, name).data["token"]
    assert api.get("/users/me", token=first).status == 200  # checked, and so remembered
    reply = api.post("/auth/logout", token=first)
    assert reply.status == 200 and reply.json == {
        "success": True, "message": "Logged out", "data": {"sessions_ended": 1}}
    assert api.get("/users/me", token=first).json == EXPIRED
    assert api.post("/auth/refresh", token=first).status == 401
    assert api.post("/auth/logout", token=first).status == 401
    assert api.get("/users/me", token=second).status == 200


def test_logout_all_ends_every_session_of_the_user(api):
    first, _, name = api.register()
    second = login(api, name).data["token"]
    third = login(api, name).data["token"]
    bystander, _, _ = api.register()
    reply = api.post("/auth/logout", {"all": True}, token=second)
    assert reply.data == {"sessions_ended": 3}
    for token in (first, second, third):
        assert api.get("/users/me", token=token).status == 401
    assert api.get("/users/me", token=bystander).status == 200
    assert login(api, name).status == 200  # logging in again starts a new one


@pytest.mark.parametrize("body", [b"", b"{}", b'{"all": false}', b'{"all": "yes"}'])
def test_logout_without_all_true_ends_one_session(api, body):
    first, _, name = api.register()
    second = login(api, name).data["token"]
    reply = api.call("POST", "/auth/logout", raw=body, token=first)
    assert reply.data == {"sessions_ended": 1}
    assert api.get("/users/me", token=second).status == 200


def test_logout_with_a_body_that_is_not_json_is_400(api):
    token, _, _ = api.register()
    assert api.call("POST", "/auth/logout", raw=b"{nope", token=token).json["error"] == \
        "Invalid JSON format"
    assert api.get("/users/me", token=token).status == 200


def test_logout_closes_the_sessions_websocket_with_4001_within_a_second(server, api):
    token, _, name = api.register()
    other = login(api, name).data["token"]
    client = authed(server, token)
    assert api.post("/auth/logout", token=other).status == 200  # another session: this one stays
    assert client.request({"type": "ping"})["data"]["type"] == "pong"
    api.post("/auth/logout", token=token)
    assert closed_with(client, timeout=1.0) == (4001, "session ended")
    refused = ChatClient(server.ws_port)
    assert refused.request({"type": "auth", "token": token})["message"] == "Authentication failed"


def test_frames_still_arriving_from_an_ended_session_are_not_acted_on(server, api):
    token, _, _ = api.register()
    room_id = api.create_room(token, "Closing time")
    client = authed(server, token)
    assert client.request({"type": "join_room", "room_id": room_id})["success"]
    assert api.post("/auth/logout", token=token).status == 200
    with contextlib.suppress(ConnectionClosed):  # sent after the logout, until the close arrives
        for n in range(10):
            client.send({"type": "send_message", "content": f"after logout {n}"})
    assert closed_with(client) == (4001, "session ended")
    reader, _, _ = api.register()
    api.post("/rooms/join", {"room_id": room_id}, token=reader)
    assert api.get(f"/messages?room_id={room_id}", token=reader).data["messages"] == []


# -- changing the password ------------------------------------------------------------------

def change(api, token, old, new):
    return api.post("/auth/password", {"old_password": old, "new_password": new}, token=token)


def test_a_new_password_starts_a_new_session_and_ends_every_earlier_one(server, api):
    """CONTRACT 1.3: a copy of the caller's own token (another tab, a stolen one) stops working too."""
    token, user_id, name = api.register()
    other = login(api, name).data["token"]
    own_client, other_client = authed(server, token), authed(server, other)
    reply = change(api, token, "password123", "a-new-password")
    assert reply.status == 200 and reply.json["message"] == "Password changed"
    assert reply.data["id"] == user_id and reply.data["username"] == name
    new_token = reply.data["token"]
    assert claims_of(new_token)["sid"] not in (claims_of(token)["sid"], claims_of(other)["sid"])
    assert api.get("/users/me", token=new_token).status == 200
    assert api.get("/users/me", token=token).json == EXPIRED
    assert api.get("/users/me", token=other).json == EXPIRED
    assert closed_with(own_client, timeout=1.0) == (4001, "session ended")
    assert closed_with(other_client, timeout=1.0) == (4001, "session ended")
    assert authed(server, new_token)  # the new session connects as any other
    assert login(api, name).status == 401
    assert login(api, name, "a-new-password").status == 200


def test_a_wrong_current_password_is_refused_and_counts_as_a_failed_login(api):
    token, _, name = api.register()
    for _ in range(5):
        reply = change(api, token, "not-my-password", "a-new-password")
        assert reply.status == 401 and reply.json == {
            "success": False, "message": "Invalid credentials",
            "error": "Current password is incorrect"}
    locked = change(api, token, "password123", "a-new-password")
    assert locked.status == 429 and int(locked.headers["Retry-After"]) > 0
    assert login(api, name).status == 429  # the same (name, address) pair is locked
    assert api.get("/users/me", token=token).status == 200  # the session goes on


@pytest.mark.parametrize("body, error", [
    ({"old_password": "password123", "new_password": "short"}, "new_password must be 8-128 characters"),
    ({"old_password": "password123", "new_password": "x" * 129}, "new_password must be 8-128 characters"),
    ({"old_password": "password123"}, "new_password is required"),
    ({"new_password": "long-enough"}, "old_password is required"),
    ({"old_password": 5, "new_password": "long-enough"}, "old_password must be a string"),
])
def test_a_bad_password_change_is_400_and_changes_nothing(api, body, error):
    token, _, name = api.register()
    reply = api.post("/auth/password", body, token=token)
    assert reply.status == 400 and reply.json["error"] == error
    assert login(api, name).status == 200


# -- WebSocket connections live as long as their session -----------------------------------

def test_an_open_connection_outlives_its_tokens_hour(server, api):
    token, user_id, name = api.register()
    claims = claims_of(token)
    short = forged(user_id, name, sid=claims["sid"], auth_time=claims["auth_time"],
                   exp=int(time.time()) + 2)
    client = authed(server, short)
    while time.time() < claims_of(short)["exp"] + 1:  # until the token has expired
        assert client.request({"type": "ping"})["data"]["type"] == "pong"
        time.sleep(0.1)  # pacing the pings under the flood limit, not waiting for an event
    assert client.request({"type": "ping"})["data"]["type"] == "pong"
    assert api.get("/users/me", token=short).status == 401  # the token itself is expired


def test_a_connection_is_closed_when_its_session_passes_its_age(server, api):
    _, user_id, _ = api.register()
    token, _ = session_begun(server, user_id, int(time.time()) - 30 * DAY + 2)
    client = authed(server, token)
    assert closed_with(client, timeout=5) == (4001, "session expired")


def test_a_fresh_token_of_the_same_session_renews_the_connection_in_place(server, api):
    token, _, name = api.register()
    listener_token, _, _ = api.register()
    room_id = api.create_room(token, "Renewed")
    api.post("/rooms/join", {"room_id": room_id}, token=listener_token)
    client = authed(server, token)
    listener = authed(server, listener_token)
    assert client.request({"type": "join_room", "room_id": room_id})["success"]
    assert listener.request({"type": "join_room", "room_id": room_id})["success"]
    client.recv_type("user_joined")
    fresh = api.post("/auth/refresh", token=token).data["token"]
    assert client.request({"type": "auth", "token": fresh}) == {
        "success": True, "message": "WebSocket authentication successful",
        "data": {"user_id": claims_of(token)["sub"], "status": "connected"}}
    sent = client.request({"type": "send_message", "content": "still here"})
    assert sent["data"]["type"] == "message_sent" and sent["data"]["room_id"] == room_id
    heard = listener.recv()  # the room heard no leave or join, only the message
    assert heard["data"]["type"] == "message_received" and heard["data"]["content"] == "still here"
    other_session = login(api, name).data["token"]
    for token_sent in (other_session, "not-a-token", listener_token):
        assert client.request({"type": "auth", "token": token_sent}) == {
            "success": False, "message": "Request failed", "error": "Already authenticated"}
    assert client.request({"type": "ping"})["data"]["type"] == "pong"


# -- what another process does to the database -------------------------------------------

def run_elsewhere(db, code):
    """Run Python code in another process, with `db` the database's path and the store importable."""
    subprocess.run([sys.executable, "-c", f"db = {str(db)!r}\n{code}"], cwd=HERE, check=True,
                   timeout=30)


def test_a_session_ended_by_another_process_ends_here_within_5_seconds(server, api, tmp_path):
    token, user_id, _ = api.register()
    client = authed(server, token)
    assert api.get("/users/me", token=token).status == 200  # remembered as checked
    sid = claims_of(token)["sid"]
    run_elsewhere(tmp_path / "chat.db", store_opened_in_python(tmp_path / "chat.db") +
                  f"import time\ns.end_sessions({user_id!r}, int(time.time()), only={sid!r})\n"
                  "s.close()")
    wait_until(lambda: api.get("/users/me", token=token).status == 401, timeout=5)
    assert closed_with(client, timeout=5) == (4001, "session ended")


@pytest.mark.sqlite_only
def test_a_user_deleted_by_another_process_is_refused_within_5_seconds(server, api, tmp_path):
    token, user_id, _ = api.register()
    assert api.get("/users/me", token=token).status == 200  # remembered as checked
    run_elsewhere(tmp_path / "chat.db", "import sqlite3\n"
                  "c = sqlite3.connect(db); c.execute('PRAGMA foreign_keys = ON')\n"
                  f"c.execute('DELETE FROM sessions WHERE user_id = ?', ({user_id!r},))\n"
                  f"c.execute('DELETE FROM users WHERE id = ?', ({user_id!r},)); c.commit()")
    wait_until(lambda: api.get("/users/me", token=token).status == 401, timeout=5)


# -- upgrading a 1.1 database --------------------------------------------------------------

@pytest.mark.sqlite_only
def test_a_1_1_database_upgrades_and_its_old_tokens_are_refused_once(tmp_path, serve_with):
    db = tmp_path / "release-1.1.db"
    old = sqlite3.connect(db)
    old.executescript(RELEASE_1_1_SCHEMA)
    old.execute("INSERT INTO users VALUES ('user_0000000a', 'veteran', ?, '2025-01-01T00:00:00Z')",
                (accounts.hash_password("old-password", TEST_ITERATIONS),))
    old.commit()
    old.close()
    issued = int(time.time())
    token_1_1 = jwt.encode({"sub": "user_0000000a", "username": "veteran", "iat": issued,
                            "exp": issued + 3600, "iss": "SwiftChat"}, TEST_SECRET, algorithm="HS256")
    with serve_with(db=db) as server:
        api = Api(server.http_port)
        assert api.get("/users/me", token=token_1_1).json == EXPIRED
        reply = login(api, "veteran", "old-password")
        assert reply.status == 200
        me = api.get("/users/me", token=reply.data["token"]).data["user"]
        assert me["role"] == "user"  # migration 3's default for every older account
        assert api.post("/auth/logout", token=reply.data["token"]).data == {"sessions_ended": 1}
    upgraded = sqlite3.connect(db)
    try:
        assert upgraded.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
    finally:
        upgraded.close()
