"""Export of a room's history (issue #34 item 6): REST and the command line.

GET /api/v1/rooms/{id}/export answers a file to save, streamed: its bytes
are read from the store as they are sent, so neither the server's memory
nor a read turn is held for a room's whole history. The large-room tests
run a real server process on a database of 22,000 messages and watch its
memory in /proc; the others a server in this process.
"""

import csv
import datetime
import http.client
import io
import json
import os
import re
import socket
import stat
import time
import urllib.parse

import pytest

import accounts
from conftest import Api, end_process, login, make_admin, open_test_store, run_cli, start_cli

pytestmark = pytest.mark.shared_server

CSV_HEADER = ["id", "timestamp", "username", "content", "edited_at", "attachments"]


class Download:
    """A response read whole: status, headers (an http.client.HTTPMessage), body bytes."""

    def __init__(self, reply):
        self.status, self.headers, self.body = reply.status, reply.headers, reply.read()

    def csv_rows(self):
        return list(csv.reader(io.StringIO(self.body.decode("utf-8"), newline="")))


def export(port, room_id, token, file_format="csv", method="GET"):
    """The answer to an export request, through http.client (which undoes the chunking)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        query = f"?format={file_format}" if file_format is not None else ""
        connection.request(method, f"/api/v1/rooms/{room_id}/export{query}",
                           headers={"Authorization": f"Bearer {token}"})
        return Download(connection.getresponse())
    finally:
        connection.close()


def post(api, token, room_id, content):
    reply = api.post("/messages", {"room_id": room_id, "content": content}, token=token)
    assert reply.status == 201, reply.json
    return reply.data["id"]


def today():
    return datetime.datetime.now(datetime.timezone.utc).date().isoformat()


# -- what the file holds --------------------------------------------------------------

def test_csv_has_the_contract_columns_and_a_row_per_message_oldest_first_edits_applied(
        server, api, room):
    first = post(api, room.token, room.id, "first")
    edited = post(api, room.token, room.id, "before the edit")
    deleted = post(api, room.token, room.id, "deleted")
    post(api, room.token, room.id, 'a "quoted", multi-line\ntext')
    assert api.call("PATCH", f"/messages/{edited}", {"content": "after the edit"},
                    token=room.token).status == 200
    assert api.call("DELETE", f"/messages/{deleted}", token=room.token).status == 200
    rows = export(server.http_port, room.id, room.token).csv_rows()
    assert rows[0] == CSV_HEADER
    assert [row[3] for row in rows[1:]] == ["first", "after the edit",
                                             'a "quoted", multi-line\ntext']
    assert rows[1][0] == str(first)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows[1][1])
    assert rows[1][4] == "" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows[2][4])
    assert rows[1][5] == ""  # no attachments


@pytest.mark.parametrize("content", ["=HYPERLINK(\"http://evil\")", "+1", "-2+3+cmd|' /C calc'!A0",
                                     "@SUM(A1)"])
def test_a_csv_cell_a_spreadsheet_would_run_as_a_formula_starts_with_a_quote(
        server, api, room, content):
    post(api, room.token, room.id, content)
    assert export(server.http_port, room.id, room.token).csv_rows()[1][3] == "'" + content


def test_json_is_the_room_and_its_messages_as_history_shows_them(server, api, room):
    for number in range(3):
        post(api, room.token, room.id, f"message {number} @nobody")
    reply = api.get(f"/rooms/{room.id}/export?format=json", token=room.token)  # checked: OpenAPI
    assert reply.status == 200
    history = api.get(f"/messages?room_id={room.id}", token=room.token).data["messages"]
    assert reply.json["room"]["id"] == room.id
    assert [message["id"] for message in reply.json["messages"]] == [m["id"] for m in history]
    for exported, shown in zip(reply.json["messages"], history):
        assert {**exported, "sender": None} == {**shown, "sender": None}
        assert exported["sender"]["username"] == shown["sender"]["username"]


def test_html_is_one_page_with_every_text_escaped_and_no_script(server, api):
    token, _, _ = api.register()
    name = "<script>alert('room')</script>"
    room_id = api.create_room(token, name=name)
    post(api, token, room_id, "<img src=x onerror=alert(1)> & <script>alert(2)</script>")
    page = export(server.http_port, room_id, token, "html").body.decode("utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.count("<html") == 1
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "<title>&lt;script&gt;alert(&#x27;room&#x27;)&lt;/script&gt;</title>" in page
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; &lt;script&gt;" in page
    assert "default-src 'none'" in page  # nothing loads or runs, should anything slip through


def test_attachments_are_exported_by_name_and_url(server, api, room):
    upload = api.post("/uploads", raw=b"the notes", token=room.token,
                      headers={"Content-Type": "text/plain", "X-Filename": "notes; v2.txt"}).data
    reply = api.post("/messages", {"room_id": room.id, "content": "", "attachments": [upload["id"]]},
                     token=room.token)
    assert reply.status == 201, reply.json
    cell = export(server.http_port, room.id, room.token).csv_rows()[1][5]
    assert re.fullmatch(r"notes; v2\.txt \(/api/v1/files/" + upload["id"] + r"\?\S+\)", cell)
    [exported] = json.loads(export(server.http_port, room.id, room.token, "json").body)["messages"]
    assert exported["attachments"][0]["filename"] == "notes; v2.txt"
    page = export(server.http_port, room.id, room.token, "html").body.decode()
    assert f"<li>notes; v2.txt (/api/v1/files/{upload['id']}?" in page


def test_an_empty_room_exports_the_header_or_an_empty_list(server, api, room):
    assert export(server.http_port, room.id, room.token).csv_rows() == [CSV_HEADER]
    assert json.loads(export(server.http_port, room.id, room.token, "json").body)["messages"] == []


# -- how it is sent -------------------------------------------------------------------

def test_the_file_is_an_attachment_named_after_the_room_and_today_sent_in_chunks(server, api):
    token, _, _ = api.register()
    room_id = api.create_room(token, name="Année 3/B")
    reply = export(server.http_port, room_id, token, "csv")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in reply.headers
    name = f"Année 3_B-{today()}.csv"  # no "/" in a file name
    assert reply.headers["Content-Disposition"] == (
        f'attachment; filename="Ann_e 3_B-{today()}.csv"; '
        f"filename*=UTF-8''{urllib.parse.quote(name, safe='')}")


@pytest.mark.parametrize("file_format, content_type", [
    ("json", "application/json"), ("html", "text/html; charset=utf-8")])
def test_each_format_has_its_type_and_extension(server, room, file_format, content_type):
    reply = export(server.http_port, room.id, room.token, file_format)
    assert reply.headers["Content-Type"] == content_type
    assert reply.headers["Content-Disposition"].endswith(f"-{today()}.{file_format}")


def test_without_a_format_the_file_is_json(server, room):
    reply = export(server.http_port, room.id, room.token, None)
    assert reply.status == 200 and json.loads(reply.body)["room"]["id"] == room.id


@pytest.mark.parametrize("file_format", ["xml", "", "CSV"])
def test_an_unknown_format_is_400(server, api, room, file_format):
    reply = api.get(f"/rooms/{room.id}/export?format={file_format}", token=room.token)
    assert reply.status == 400 and reply.json["error"] == "format must be json, csv or html"


def test_head_answers_the_headers_only(server, api, room):
    post(api, room.token, room.id, "hello")
    reply = export(server.http_port, room.id, room.token, "csv", method="HEAD")
    assert reply.status == 200 and reply.body == b""
    assert reply.headers["Content-Disposition"].startswith("attachment; ")


def test_an_http_1_0_client_gets_the_body_unchunked_until_the_connection_closes(server, api, room):
    post(api, room.token, room.id, "hello")
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as sock:
        sock.sendall(f"GET /api/v1/rooms/{room.id}/export?format=csv HTTP/1.0\r\n"
                     f"Authorization: Bearer {room.token}\r\n\r\n".encode())
        answer = b"".join(iter(lambda: sock.recv(65536), b""))  # until the server closes
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"\r\nConnection: close" in head
    assert b"Transfer-Encoding" not in head and b"Content-Length" not in head
    assert body == export(server.http_port, room.id, room.token).body


def test_a_client_that_asks_to_close_after_it_gets_a_whole_chunked_body(server, api, room):
    post(api, room.token, room.id, "hello")
    connection = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=10)
    try:
        connection.request("GET", f"/api/v1/rooms/{room.id}/export?format=csv",
                           headers={"Authorization": f"Bearer {room.token}", "Connection": "close"})
        reply = Download(connection.getresponse())  # http.client undoes the chunks, or fails
    finally:
        connection.close()
    assert reply.headers["Transfer-Encoding"] == "chunked"
    assert reply.csv_rows()[1][3] == "hello"


# -- who may export ---------------------------------------------------------------------

def test_a_plain_member_is_forbidden_and_a_moderator_and_an_admin_may(server, api, room):
    member_token, member_id, _ = api.register()
    assert api.post("/rooms/join", {"room_id": room.id}, token=member_token).status == 200
    reply = api.get(f"/rooms/{room.id}/export?format=csv", token=member_token)
    assert (reply.status, reply.json["message"], reply.json["error"]) == (
        403, "Forbidden", "Only moderators can export this room")
    assert api.call("PATCH", f"/rooms/{room.id}/members/{member_id}", {"role": "moderator"},
                    token=room.token).status == 200
    assert export(server.http_port, room.id, member_token).status == 200
    admin_token, admin_id, _ = api.register()
    make_admin(server, admin_id)
    assert export(server.http_port, room.id, admin_token).status == 200


def test_a_private_room_one_may_not_see_is_404_and_no_token_is_401(server, api):
    owner_token, _, _ = api.register()
    reply = api.post("/rooms", {"name": f"secret {time.monotonic_ns()}", "description": "",
                                "visibility": "private"}, token=owner_token)
    outsider_token, _, _ = api.register()
    assert api.get(f"/rooms/{reply.data['id']}/export", token=outsider_token).status == 404
    assert api.get(f"/rooms/{reply.data['id']}/export").status == 401


# -- streamed: a client that stops reading, and reads meanwhile ----------------------------

def seed(server_store, room_id, user_id, count, size=1000):
    """count messages of about size characters each, straight into the store (in one transaction)."""
    text = "x" * size
    server_store.add_messages([(room_id, user_id, f"{number} {text}", 1_700_000_000 + number,
                                None, ()) for number in range(count)])


def stalled_export(port, room_id, token):
    """A socket that asked for an export, read the answer's head, and reads no further.

    Its receive buffer is small, so the server soon cannot send more.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET /api/v1/rooms/{room_id}/export?format=json HTTP/1.1\r\nHost: x\r\n"
                 f"Authorization: Bearer {token}\r\n\r\n".encode())
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(1024)
    assert received.startswith(b"HTTP/1.1 200 "), received
    return sock, received


def test_a_client_that_stops_reading_an_export_is_cut_off(serve_with):
    server = serve_with(header_timeout=1)
    api = Api(server.http_port)
    token, user_id, _ = api.register()
    room_id = api.create_room(token)
    seed(server.store, room_id, user_id, 10_000)  # 10 MB: more than any socket buffer holds
    api.close()
    sock, received = stalled_export(server.http_port, room_id, token)
    with sock:
        # The writing thread ends when the watchdog cuts its connection off.
        assert server.http.wait_for_connections(0, timeout=10)
        try:
            received += b"".join(iter(lambda: sock.recv(1 << 20), b""))
        except ConnectionResetError:  # the server closed with our request's bytes unread: fine
            pass
    assert not received.endswith(b"\r\n0\r\n\r\n")  # cut short: no last chunk


def test_exports_that_stall_hold_no_read_turn_from_other_requests(server, api):
    token, user_id, _ = api.register()
    room_id = api.create_room(token)
    seed(server.store, room_id, user_id, 10_000)
    stalled = []
    try:
        stalled += [stalled_export(server.http_port, room_id, token)[0] for _ in range(3)]
        # Reads take turns two at a time: were the exports holding theirs,
        # this read would wait until the watchdog cut them off (10 s).
        started = time.monotonic()
        assert api.get(f"/messages?room_id={room_id}&limit=1", token=token).status == 200
        assert time.monotonic() - started < 5  # generous on a busy machine; held, it is 10
    finally:
        for sock in stalled:
            sock.close()


# -- a room of 20,000 messages, from a server process --------------------------------------

@pytest.fixture(scope="module")
def large_rooms(tmp_path_factory):
    """A server process on a database with rooms of 2,000 and 20,000 messages (500 characters
    each), made straight through the store before it starts: (process, port, db, token,
    {"small": room id, "large": room id})."""
    db = str(tmp_path_factory.mktemp("large") / "chat.db")
    seeding = open_test_store(db)
    try:
        teacher = seeding.create_user("teacher", accounts.hash_password("password123", 1000),
                                      "2024-01-01T00:00:00Z")
        rooms = {}
        for name, count in (("small", 2_000), ("large", 20_000)):
            rooms[name] = seeding.create_room(name, "", teacher["id"], "2024-01-01T00:00:00Z")["id"]
            seed(seeding, rooms[name], teacher["id"], count, size=500)
    finally:
        seeding.close()
    process, http_port, _ = start_cli("--db", db)
    try:
        api = Api(http_port)
        token = login(api, "teacher").data["token"]
        api.close()
        yield process, http_port, db, token, rooms
    finally:
        end_process(process)


def peak_memory_of_export(process, port, room_id, token):
    """(how far the server's resident memory rose above where it was, in bytes; the file's size)."""
    with open(f"/proc/{process.pid}/clear_refs", "w") as clear:
        clear.write("5")  # the peak (VmHWM) starts again from the resident size now
    before = memory(process, "VmRSS")
    size = len(export(port, room_id, token, "json").body)
    return memory(process, "VmHWM") - before, size


def memory(process, field):
    with open(f"/proc/{process.pid}/status") as status:
        kilobytes = next(line.split()[1] for line in status if line.startswith(field + ":"))
    return int(kilobytes) * 1024


def test_the_servers_memory_does_not_grow_with_the_room_it_exports(large_rooms):
    process, port, _, token, rooms = large_rooms
    # The first exports' one-off costs: among them SQLite's page cache of each
    # reader connection, which fills (to its bound) as the large room is read.
    for room in ("small", "large"):
        peak_memory_of_export(process, port, rooms[room], token)
    small, _ = peak_memory_of_export(process, port, rooms["small"], token)
    # The least of two: what else the process allocates meanwhile only ever adds (one CI
    # run on 3.12 saw a rise of 4.8 MB for the 15.7 MB file, where 3.10, 3.11 and 3.13
    # stayed under a quarter of it).
    large, size = min(peak_memory_of_export(process, port, rooms["large"], token)
                      for _ in range(2))
    assert size > 10_000_000
    # Held whole, the 14 MB file (and its 20,000 rows before it) would raise the peak by
    # more than its size; streamed, ten times the messages cost about what a tenth did.
    assert large - small < size / 4, (small, large, size)


def test_an_export_of_a_20000_message_room_has_every_row_in_order(large_rooms):
    _, port, _, token, rooms = large_rooms
    rows = export(port, rooms["large"], token, "csv").csv_rows()
    assert rows[0] == CSV_HEADER and len(rows) == 20_001
    ids = [int(row[0]) for row in rows[1:]]
    assert ids == sorted(ids) and rows[-1][3].startswith("19999 ")


# -- the command line --------------------------------------------------------------------

def test_the_export_command_writes_a_room_named_by_its_name_to_a_new_private_file(
        large_rooms, tmp_path):
    _, _, db, _, _ = large_rooms  # beside the running server
    out = tmp_path / "small.csv"
    result = run_cli("export", "SMALL", "--format", "csv", "--out", str(out), "--db", db)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("exported room ") and result.stdout.count("\n") == 1
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    with open(out, newline="", encoding="utf-8") as file:
        assert len(list(csv.reader(file))) == 2_001


def test_the_export_command_prints_the_file_the_route_sends(serve_with, tmp_path):
    server = serve_with()
    api = Api(server.http_port)
    token, _, _ = api.register()
    room_id = api.create_room(token)
    post(api, token, room_id, "hello\nthere")
    result = run_cli("export", room_id, "--format", "json", "--db", str(tmp_path / "chat.db"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == export(server.http_port, room_id, token, "json").body.decode()


@pytest.mark.parametrize("secret", [None, "the secret the class server was started with"])
def test_the_export_commands_file_links_open_on_the_server(serve_with, tmp_path, secret):
    # A link is signed as the server signs it: with the secret it was given
    # (JWT_SECRET for the command too), else the one kept in the database.
    server = serve_with(jwt_secret=secret)
    api = Api(server.http_port)
    token, _, _ = api.register()
    room_id = api.create_room(token)
    upload = api.post("/uploads", raw=b"the notes", token=token,
                      headers={"Content-Type": "text/plain", "X-Filename": "notes.txt"}).data
    assert api.post("/messages", {"room_id": room_id, "content": "", "attachments": [upload["id"]]},
                    token=token).status == 201
    env = {**os.environ, **({"JWT_SECRET": secret} if secret else {})}
    result = run_cli("export", room_id, "--format", "json", "--db", str(tmp_path / "chat.db"),
                     env=env)
    assert result.returncode == 0, result.stderr
    [message] = json.loads(result.stdout)["messages"]
    link = message["attachments"][0]["url"]
    connection = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=10)
    try:
        connection.request("GET", link)
        reply = connection.getresponse()
        assert (reply.status, reply.read()) == (200, b"the notes"), link
    finally:
        connection.close()


def test_the_export_command_names_the_ids_of_rooms_that_share_a_name(serve_with, tmp_path):
    server = serve_with()
    api = Api(server.http_port)
    token, _, _ = api.register()
    public = api.create_room(token, name="Maths")
    private = api.post("/rooms", {"name": "maths", "description": "", "visibility": "private"},
                       token=token).data["id"]
    result = run_cli("export", "Maths", "--format", "csv", "--db", str(tmp_path / "chat.db"))
    assert result.returncode == 1 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert public in line and private in line


@pytest.mark.parametrize("room, out, error", [
    ("no such room", None, "no room has the id or name 'no such room'"),
    ("Maths", "taken.csv", "{out} exists already; name a new file")])
def test_the_export_command_refuses_in_one_line(serve_with, tmp_path, room, out, error):
    server = serve_with()
    api = Api(server.http_port)
    api.create_room(api.register()[0], name="Maths")
    taken = tmp_path / "taken.csv"
    taken.write_text("mine")
    result = run_cli("export", room, "--format", "csv", "--db", str(tmp_path / "chat.db"),
                     *(["--out", str(tmp_path / out)] if out else []))
    assert result.returncode == 1
    assert result.stderr == f"swiftchat: {error.format(out=taken)}\n"
    assert taken.read_text() == "mine"
