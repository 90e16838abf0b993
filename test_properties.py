"""Property-based tests: whatever a client sends, the server answers with a valid envelope.

Hypothesis generates requests to every REST route (any method, hostile path
parameters and query strings, any JSON or raw body, with and without a
token) and frames of every WebSocket type (any fields, any types, raw
text). The properties: never a 5xx (no fault is injected here, so not even
a 503), every JSON answer is a well-formed envelope, and the server keeps
serving. One server is shared by all examples, so the state they leave
behind (rooms, members, messages) is part of what later examples meet.
"""

import json
import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import swiftchat
from conftest import Api, ChatClient

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                             suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                    HealthCheck.too_slow])


@pytest.fixture(scope="module")
def world(shared_server):
    """A running server, a user's token, one of their rooms, and a WebSocket client in it."""
    api = Api(shared_server.http_port)
    token, user_id, _ = api.register("prober")
    room_id = api.create_room(token, "Probed")
    client = ChatClient(shared_server.ws_port)
    client.request({"type": "auth", "token": token})
    yield {"server": shared_server, "token": token, "user_id": user_id, "room_id": room_id,
           "client": client}
    client.close()
    api.close()


def assert_envelope(envelope):
    assert isinstance(envelope, dict), envelope
    if envelope.get("success") is True:
        assert set(envelope) == {"success", "message", "data"}, envelope
        assert isinstance(envelope["data"], dict)
    else:
        assert set(envelope) == {"success", "message", "error"}, envelope
        assert envelope["success"] is False and isinstance(envelope["error"], str)
    assert isinstance(envelope["message"], str)


# -- REST ------------------------------------------------------------------------------

# Not logout: it would end the session of the token every example shares
# (test_sessions.py tries it).
ROUTE_PATHS = sorted({row[1] for row in swiftchat.ROUTES
                      if row[1].startswith("/api/") and row[1] != "/api/v1/auth/logout"})
METHODS = ["GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS", "TRACE"]

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=80)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
field_names = st.sampled_from(["username", "password", "name", "description", "room_id",
                               "content", "client_id", "since", "data", "type"])
bodies = (st.dictionaries(field_names, json_values, max_size=5).map(lambda d: json.dumps(d).encode())
          | json_values.map(lambda v: json.dumps(v).encode())
          | st.binary(max_size=200))
segments = st.text(max_size=40).map(lambda s: urllib.parse.quote(s, safe=""))
query_values = st.sampled_from(["", "0", "1", "-1", "100", "101", "99999999999999999999999",
                                "abc", "1.5", "%00", "room_x"]) | st.text(max_size=20)


@st.composite
def rest_requests(draw):
    pattern = draw(st.sampled_from(ROUTE_PATHS))
    path = pattern
    for name in ("user_id", "room_id"):
        path = path.replace("{%s}" % name, draw(st.sampled_from(["{real}", "user_00000000", "..", "%2F"])
                                                | segments))
    keys = draw(st.lists(st.sampled_from(["limit", "offset", "before", "room_id", "x"]), max_size=3))
    query = "&".join(f"{key}={urllib.parse.quote(draw(query_values), safe='')}" for key in keys)
    return {
        "method": draw(st.sampled_from(METHODS)),
        "path": path + ("?" + query if query else ""),
        "body": draw(st.none() | bodies),
        "auth": draw(st.sampled_from(["valid", "none", "garbage", "basic"])),
        "real_room": draw(st.booleans()),
    }


@PROPERTY_SETTINGS
@given(request=rest_requests())
def test_every_rest_answer_is_an_envelope_and_never_a_5xx(world, request):
    api = Api(world["server"].http_port)
    path = request["path"].replace("{real}", world["room_id"] if request["real_room"] else world["user_id"])
    path = path.replace("room_id=room_x", f"room_id={world['room_id']}")
    headers = {"Authorization": {"valid": f"Bearer {world['token']}", "none": None,
                                 "garbage": "Bearer x.y.z", "basic": "Basic YTpi"}[request["auth"]]}
    headers = {k: v for k, v in headers.items() if v}
    reply = api.call(request["method"], path[len("/api/v1"):], raw=request["body"], headers=headers)
    assert reply.status < 500, (request, reply.status, reply.body)
    if request["method"] in ("HEAD", "OPTIONS"):
        assert reply.body == b""
    elif path.startswith("/api/v1/openapi.json") and reply.status == 200:
        assert reply.json["openapi"] == "3.1.0"  # the document itself, not an envelope
    elif urllib.parse.urlsplit(path).path.endswith("/export") and reply.status == 200:
        assert reply.headers["Content-Disposition"].startswith("attachment; ")  # a file (1.3)
    else:
        assert reply.headers["Content-Type"] == "application/json"
        assert_envelope(reply.json)
    api.connection.close()


def test_the_server_still_serves_after_the_rest_examples(world):
    assert Api(world["server"].http_port).get("/health").status == 200


# -- WebSocket ---------------------------------------------------------------------------

frame_types = st.sampled_from(["auth", "join_room", "leave_room", "send_message", "ping", "typing"]) \
    | st.text(max_size=20) | json_scalars


@st.composite
def ws_frames(draw):
    if draw(st.integers(0, 9)) == 0:  # now and then, not JSON or not an object
        return draw(st.text(max_size=100) | json_values.map(json.dumps))
    frame = {"type": draw(frame_types)}
    fields = draw(st.dictionaries(field_names, json_values | st.just("{room}"), max_size=4))
    if draw(st.booleans()):
        frame["data"] = fields
    else:
        frame.update({k: v for k, v in fields.items() if k != "type"})
    return json.dumps(frame)


@PROPERTY_SETTINGS
@given(text=ws_frames())
def test_every_websocket_answer_is_an_envelope_and_the_connection_stays(world, text):
    client = world["client"]
    client.ws.send(text.replace('"{room}"', json.dumps(world["room_id"])))
    # Some frames (typing) get no answer, others one: read up to a marker's answer.
    client.send({"type": "end-of-example"})
    while True:
        reply = client.recv(timeout=5)
        assert_envelope(reply)
        if reply == {"success": False, "message": "Request failed",
                     "error": "Unknown message type: end-of-example"}:
            break
        if not reply["success"]:
            assert reply["error"] != "Internal server error", (text, reply)


def test_the_websocket_client_is_still_served_after_the_examples(world):
    assert world["client"].request({"type": "ping"})["data"]["type"] == "pong"
