"""Files and images (CONTRACT 1.3), through the real ports: uploads written as they arrive,
attachments on messages, signed links, and what hostile clients try.

Uploads are sent with http.client or a raw socket, since the point of
several tests is a header or a body that a client library would tidy up.
"""

import contextlib
import http.client
import json
import os
import select
import socket
import stat
import struct
import threading
import time

import pytest

import swiftchat_core
from conftest import (COMMANDS_ON_SQLITE_ONLY, NO_LIMITS, Api, LatencyWatch, authed, make_admin,
                      run_cli, serve_for_tests, wait_for_frame, wait_until)


# -- files of each kind, made here ---------------------------------------------------------

def png(width, height, padding=200):
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR"
    return header + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0) + b"\0" * padding


def gif(width, height):
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\0" * 50


def jpeg(width, height, profiles=0):
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0" + b"\0" * 9  # a segment to skip
    # A phone's photo: EXIF and colour profile segments of 64 KiB each before its size.
    app2 = (b"\xff\xe2" + struct.pack(">H", 65535) + b"ICC_PROFILE\0" + b"\0" * 65521) * profiles
    sof0 = b"\xff\xc0" + struct.pack(">HBHH", 17, 8, height, width) + b"\0" * 10
    return b"\xff\xd8" + app0 + app2 + sof0 + b"\xff\xda" + b"\0" * 50


def webp(kind, width, height):
    if kind == "VP8X":
        data = b"\0" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    elif kind == "VP8 ":
        data = b"\0\0\0" + b"\x9d\x01\x2a" + struct.pack("<HH", width, height)
    else:  # VP8L
        data = b"\x2f" + ((width - 1) | (height - 1) << 14).to_bytes(4, "little")
    chunk = kind.encode() + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk + b"\0" * 20


# -- one server for the file, with small limits ---------------------------------------------

MIB = 1024 * 1024
OPTIONS = {**NO_LIMITS, "max_upload_mb": 1, "upload_quota_mb": 3, "body_idle": 1.0}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve_for_tests(tmp_path_factory.mktemp("files") / "chat.db", **OPTIONS) as running:
        yield running


@pytest.fixture
def api(server):
    return Api(server.http_port)


def upload(server, token, body, filename="board.png", content_type="image/png"):
    """POST /uploads; (status, parsed answer).

    On a socket of its own: a refusal (413, 429) may come, and the
    connection close, while the body is still being sent, and http.client
    would stop at the broken pipe before reading the answer.
    """
    head = (f"POST /api/v1/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nX-Filename: {filename}\r\n"
            + (f"Content-Type: {content_type}\r\n" if content_type else "")
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as sock:
        try:
            sock.sendall(head + body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered already: the answer is waiting to be read
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def uploaded(server, token, body=None, **kwargs):
    status, answer = upload(server, token, png(64, 48) if body is None else body, **kwargs)
    assert status == 201, answer
    return answer["data"]


def fetch(server, url, headers=None):
    """GET a file's link with no token: (status, headers, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=10)
    connection.request("GET", url, headers=headers or {})
    reply = connection.getresponse()
    body = reply.read()
    connection.close()
    return reply.status, {name.lower(): value for name, value in reply.getheaders()}, body


def raw_exchange(server, data, shut_write=False, timeout=5):
    """Send raw bytes, then read until the server closes (or timeout); return what came back."""
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=timeout) as sock:
        sock.sendall(data)
        if shut_write:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return received


def upload_head(token, length, filename=b"x.bin"):
    return (b"POST /api/v1/uploads HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\nX-Filename: " + filename +
            b"\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
            str(length).encode() + b"\r\n\r\n")


def files_on_disk(server):
    return sorted(os.listdir(server.files.path))


def used(server, user_id):
    return server.store.upload_bytes(user_id)


# -- uploading -------------------------------------------------------------------------------

@pytest.mark.parametrize("body, content_type, width, height", [
    (png(640, 480), "image/png", 640, 480),
    (gif(32, 16), "image/gif", 32, 16),
    (jpeg(1024, 768), "image/jpeg", 1024, 768),
    (jpeg(4032, 3024, profiles=3), "image/jpeg", 4032, 3024),
    (webp("VP8X", 300, 200), "image/webp", 300, 200),
    (webp("VP8 ", 120, 90), "image/webp", 120, 90),
    (webp("VP8L", 77, 55), "image/webp", 77, 55),
])
def test_an_images_type_and_size_are_read_from_its_own_bytes(server, api, body, content_type,
                                                              width, height):
    token = api.register()[0]
    # The declared type says nothing true: only the bytes count.
    status, answer = upload(server, token, body, "photo", "application/octet-stream")
    assert status == 201 and answer["message"] == "File uploaded"
    data = answer["data"]
    assert (data["content_type"], data["width"], data["height"]) == (content_type, width, height)
    assert data["filename"] == "photo" and data["size"] == len(body)
    assert data["url"].startswith(f"/api/v1/files/{data['id']}?")
    status, headers, served = fetch(server, data["url"])
    assert status == 200 and served == body and headers["content-type"] == content_type
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == "default-src 'none'; sandbox"


@pytest.mark.parametrize("body, declared, described", [
    (b"<html><script>alert(1)</script></html>", "image/png", "application/octet-stream"),
    (b"<html><script>alert(1)</script></html>", "text/html", "text/html"),
    (png(10, 10), "text/html", "image/png"),
    (b"%PDF-1.7 a handout", "application/pdf", "application/pdf"),
    (b"plain words", "text/plain; charset=utf-8", "text/plain"),
    (b"plain words", "not a type", "application/octet-stream"),
    (b"plain words", None, "application/octet-stream"),
])
def test_a_file_that_is_no_recognised_image_is_only_ever_downloaded(server, api, body, declared,
                                                                    described):
    token = api.register()[0]
    data = uploaded(server, token, body, filename="page.html", content_type=declared)
    assert data["content_type"] == described
    status, headers, served = fetch(server, data["url"])
    assert status == 200 and served == body
    if described == "image/png":
        assert headers["content-type"] == "image/png"
        assert "content-disposition" not in headers
    else:
        assert headers["content-type"] == "application/octet-stream"
        assert headers["content-disposition"].startswith('attachment; filename="page.html"')
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == "default-src 'none'; sandbox"


@pytest.mark.parametrize("filename", [
    b"a/b.png", b"a\\b.png", b"..", b".", b"a\x00b.png", b"a\x01b.png", b"tab\tname",
    b"x" * 256, "gpj\u202eexe.png".encode(), b"%2e%2e", b"a%2Fb", b"a%00b", b"%E2%80%AEgpj.exe",
    b"%FF%FE", b"", b"a%E2%80%8Bb.exe", b"a%E2%80%A8b", b"%EF%BB%BFname", b"%EE%80%80.png",
    b"%F3%A0%80%81tag",
])
def test_a_hostile_file_name_is_refused_and_nothing_is_kept(server, api, filename):
    token, user_id, _ = api.register()
    before = files_on_disk(server)
    answer = raw_exchange(server, upload_head(token, 10, filename) + b"0123456789")
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 400 Bad Request", answer[:300]
    # Refused by the name's rule, or (a NUL in a header) by the request's own framing.
    assert b"X-Filename" in answer or b"Malformed request" in answer
    assert files_on_disk(server) == before and used(server, user_id) == 0


def test_a_name_in_any_language_is_kept(server, api):
    token = api.register()[0]
    data = uploaded(server, token, filename="%E6%9D%BF%E4%B9%A6 %C3%A9t%C3%A9.png")  # percent-encoded
    assert data["filename"] == "板书 été.png"
    status, headers, _ = fetch(server, data["url"])
    assert status == 200


def test_a_file_over_the_limit_is_refused_before_its_body_is_read(server, api):
    token, user_id, _ = api.register()
    started = time.monotonic()
    # Only the head is sent: the answer must not wait for the 2 MiB that never come.
    answer = raw_exchange(server, upload_head(token, 2 * MIB), timeout=5)
    assert answer.startswith(b"HTTP/1.1 413 ")
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body == {"success": False, "message": "Payload too large", "error": "File too large"}
    assert time.monotonic() - started < 3 and used(server, user_id) == 0


def test_a_body_shorter_than_its_length_keeps_nothing(server, api):
    token, user_id, _ = api.register()
    before = files_on_disk(server)
    answer = raw_exchange(server, upload_head(token, 1000) + b"only ten b", shut_write=True)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"shorter than its Content-Length" in answer
    assert files_on_disk(server) == before and used(server, user_id) == 0


def test_an_upload_that_stops_sending_is_cut_and_holds_no_thread(server, api):
    token, user_id, _ = api.register()
    before = files_on_disk(server)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as stalled:
        stalled.sendall(upload_head(token, 1000) + b"a start")
        answer = stalled.recv(65536)  # the server gives up after body_idle (1 s here)
    assert time.monotonic() - started < 5
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400 ")
    assert api.get("/health").status == 200
    # The request's thread deletes the part it wrote as it ends, just after the cut.
    wait_until(lambda: files_on_disk(server) == before)
    assert used(server, user_id) == 0


def test_an_upload_that_trickles_in_is_cut_when_it_falls_below_16_kib_a_second(server, api):
    # 512 bytes every 0.4 s: each part well inside the idle limit (1 s here),
    # but 16 KiB would take 13 s, and may take 1 + 16 KiB / (16 KiB/s) = 2 s.
    token, user_id, _ = api.register()
    started = time.monotonic()
    answer = b""
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as trickle:
        trickle.sendall(upload_head(token, 16 * 1024))
        for _ in range(32):
            if select.select([trickle], [], [], 0.4)[0]:  # the server has answered
                break
            with contextlib.suppress(OSError):  # the answer may be on its way as this goes
                trickle.sendall(b"x" * 512)
        with contextlib.suppress(OSError):
            while chunk := trickle.recv(65536):
                answer += chunk
    assert 2 <= time.monotonic() - started < 8
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1]) == {
        "success": False, "message": "Request timeout",
        "error": "Upload too slow: it must come at 16 KiB/s at least"}
    wait_until(lambda: used(server, user_id) == 0)


def test_ten_uploads_at_once_leave_health_and_the_websocket_quick(server, api):
    tokens = [api.register()[0] for _ in range(10)]
    client = authed(server, tokens[0])
    body = png(100, 100, padding=MIB - 200)
    health = Api(server.http_port)
    results = []

    def one(token):
        results.append(upload(server, token, body)[0])

    with LatencyWatch(lambda: health.get("/health")) as rest, \
            LatencyWatch(lambda: client.request({"type": "ping"})) as ping:
        threads = [threading.Thread(target=one, args=(token,)) for token in tokens]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == [201] * 10
    assert rest.slowest < 1.0 and ping.slowest < 1.0, (rest.slowest, ping.slowest)


def test_the_quota_counts_files_kept_and_frees_them_with_their_message(server, api):
    token, user_id, _ = api.register()
    room_id = api.create_room(token)
    near_a_mib = png(10, 10, padding=MIB - 100)
    ids = [uploaded(server, token, near_a_mib)["id"] for _ in range(3)]
    # Refused from the head alone: only the head is sent, so no refusal can
    # meet a body still on its way (the server's close would reset it).
    answer = raw_exchange(server, upload_head(token, len(near_a_mib)))
    assert answer.startswith(b"HTTP/1.1 413 ") and b"Upload quota exceeded" in answer
    message = api.post("/messages", {"room_id": room_id, "content": "the handouts",
                                     "attachments": ids[:1]}, token=token).data
    assert api.call("DELETE", f"/messages/{message['id']}", token=token).status == 200
    assert ids[0] not in files_on_disk(server)
    assert fetch(server, message["attachments"][0]["url"])[0] == 404
    assert upload(server, token, near_a_mib)[0] == 201


def test_admins_have_no_quota(server, api):
    token, user_id, _ = api.register()
    make_admin(server, user_id)
    near_a_mib = png(10, 10, padding=MIB - 100)
    assert [upload(server, token, near_a_mib)[0] for _ in range(4)] == [201] * 4


@pytest.mark.sqlite_only
def test_files_live_beside_the_database_for_their_owner_alone(server, api):
    token = api.register()[0]
    data = uploaded(server, token)
    assert server.files.path == f"{server.store._path}.files"
    assert stat.S_IMODE(os.stat(server.files.path).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(server.files.path, data["id"])).st_mode) == 0o600


# -- attachments ------------------------------------------------------------------------------

def test_an_image_a_student_posts_reaches_the_room_live_and_in_history(server, api):
    ana, _, _ = api.register()
    ben, _, _ = api.register()
    room_id = api.create_room(ana)
    assert api.post("/rooms/join", {"room_id": room_id}, token=ben).status == 200
    listening = authed(server, ben)
    assert listening.request({"type": "join_room", "room_id": room_id})["success"]
    sender = authed(server, ana)
    assert sender.request({"type": "join_room", "room_id": room_id})["success"]
    image = png(360, 240)
    data = uploaded(server, ana, image)

    sender.send({"type": "send_message", "content": "", "attachments": [data["id"]]})

    sent = wait_for_frame(sender, "message_sent")["data"]
    heard = wait_for_frame(listening, "message_received")["data"]
    assert heard["content"] == "" and heard["attachments"] == sent["attachments"]
    [attachment] = heard["attachments"]
    assert {key: attachment[key] for key in ("id", "filename", "content_type", "width", "height")} \
        == {"id": data["id"], "filename": "board.png", "content_type": "image/png",
            "width": 360, "height": 240}
    assert fetch(server, attachment["url"])[2] == image
    history = api.get(f"/messages?room_id={room_id}", token=ben).data["messages"]
    assert history[-1]["attachments"][0]["id"] == data["id"]
    assert fetch(server, history[-1]["attachments"][0]["url"])[0] == 200


def test_an_attachment_must_be_the_senders_own_and_unattached(server, api):
    ana, _, _ = api.register()
    ben, _, _ = api.register()
    room_id = api.create_room(ana)
    assert api.post("/rooms/join", {"room_id": room_id}, token=ben).status == 200
    anas, bens = uploaded(server, ana)["id"], uploaded(server, ben)["id"]
    invalid = {"success": False, "message": "Request failed", "error": "Invalid attachment"}

    def post(token, attachments, content="see this"):
        return api.post("/messages", {"room_id": room_id, "content": content,
                                      "attachments": attachments}, token=token)

    assert post(ana, [bens]).json == invalid  # someone else's
    assert post(ana, ["file_00000000"]).json == invalid  # unknown
    assert post(ana, [anas, anas]).json == invalid  # twice in one message
    assert post(ana, [anas]).status == 201
    assert post(ana, [anas]).json == invalid  # attached already
    for unknown in ("../etc/passwd", "nope", "", "FILE_" + anas[5:], anas + " ", "\ud800",
                    "file_0000000\ud800"):
        assert post(ben, [unknown]).json == invalid, unknown
    shape = {"success": False, "message": "Request failed",
             "error": "attachments must be a list of at most 10 upload ids"}
    for not_a_list in ([bens] * 11, "file_1", [7], {"id": bens}, [None]):
        assert post(ben, not_a_list).json == shape, not_a_list
    assert post(ben, [], content="").status == 400  # no text and no file: nothing to send
    client = authed(server, ben)
    assert client.request({"type": "join_room", "room_id": room_id})["success"]
    anas_unsent = uploaded(server, ana)["id"]
    # attached already; someone else's; no upload's id at all
    for attachments in ([anas], [anas_unsent], [bens.upper()]):
        client.send({"type": "send_message", "content": "", "attachments": attachments})
        refused = client.recv()
        while refused["success"]:
            refused = client.recv()
        assert refused == invalid


def test_the_embedding_api_posts_attachments(server, api):
    token, user_id, _ = api.register()
    room_id = api.create_room(token)
    data = uploaded(server, token)
    posted = server.post_message(room_id, user_id, "", attachments=[data["id"]])
    assert posted["attachments"][0]["id"] == data["id"]
    with pytest.raises(Exception, match="Invalid attachment"):
        server.post_message(room_id, user_id, "again", attachments=[data["id"]])


def test_a_private_rooms_files_are_linked_only_to_its_readers(server, api):
    owner, _, _ = api.register()
    outsider, _, _ = api.register()
    room = api.post("/rooms", {"name": f"private {time.time()}", "visibility": "private"},
                    token=owner).data
    data = uploaded(server, owner)
    api.post("/messages", {"room_id": room["id"], "content": "for us", "attachments": [data["id"]]},
             token=owner)
    assert api.get(f"/messages?room_id={room['id']}", token=outsider).status == 404
    found = api.get("/search?q=for", token=outsider).data["messages"]
    assert all(message["room_id"] != room["id"] for message in found)
    # Without the link's signature, the id alone opens nothing.
    assert fetch(server, f"/api/v1/files/{data['id']}")[0] == 404


@pytest.mark.parametrize("change", [
    lambda url: url.replace("sig=", "sig=0"),
    lambda url: url[:-1] + ("0" if url[-1] != "0" else "1"),
    lambda url: url.replace("expires=", "expires=9"),
    lambda url: url.split("?")[0],
    lambda url: url.split("&sig")[0],
    lambda url: url.replace("file_", "file_0", 1),
    lambda url: url.replace("/files/", "/files/..%2F"),
])
def test_a_guessed_or_altered_link_opens_nothing(server, api, change):
    token = api.register()[0]
    data = uploaded(server, token)
    status, _, body = fetch(server, change(data["url"]))
    assert status == 404 and json.loads(body)["error"] in ("File not found", "Not found")


def test_a_link_expires_and_a_fresh_message_object_gives_a_fresh_one(server, api):
    token = api.register()[0]
    data = uploaded(server, token)
    old = server.links.url(data["id"], now=time.time() - 30 * 3600)
    status, _, body = fetch(server, old)
    assert status == 403 and json.loads(body) == {"success": False, "message": "Forbidden",
                                                   "error": "Link expired"}
    assert fetch(server, data["url"])[0] == 200
    expires = int(data["url"].split("expires=")[1].split("&")[0])
    assert expires >= time.time() + 24 * 3600


@pytest.mark.parametrize("range_header, status, content_range, part", [
    ("bytes=0-9", 206, "bytes 0-9/{size}", slice(0, 10)),
    ("bytes=10-", 206, "bytes 10-{last}/{size}", slice(10, None)),
    ("bytes=-5", 206, "bytes {tail}-{last}/{size}", slice(-5, None)),
    ("bytes=5-100000", 206, "bytes 5-{last}/{size}", slice(5, None)),
    ("bytes=100000-", 416, "bytes */{size}", None),
    ("bytes=9-3", 200, None, slice(None)),  # backwards: no range (RFC 9110)
    ("bytes=0-1,5-6", 200, None, slice(None)),
    ("pages=1", 200, None, slice(None)),
    ("bytes=abc", 200, None, slice(None)),
])
def test_a_range_is_answered(server, api, range_header, status, content_range, part):
    token = api.register()[0]
    body = png(20, 20)
    data = uploaded(server, token, body)
    got, headers, served = fetch(server, data["url"], {"Range": range_header})
    assert got == status
    size = len(body)
    if content_range:
        assert headers["content-range"] == content_range.format(size=size, last=size - 1,
                                                                tail=size - 5)
    if part is not None:
        assert served == body[part]


def test_deleting_a_room_deletes_its_files(server, api):
    token, user_id, _ = api.register()
    room_id = api.create_room(token)
    data = uploaded(server, token)
    api.post("/messages", {"room_id": room_id, "content": "x", "attachments": [data["id"]]},
             token=token)
    assert used(server, user_id) == data["size"]
    assert api.call("DELETE", f"/rooms/{room_id}", token=token).status == 200
    assert data["id"] not in files_on_disk(server)
    assert fetch(server, data["url"])[0] == 404
    assert used(server, user_id) == 0  # the quota is freed with them


def test_a_client_that_comes_back_gets_the_files_of_what_it_missed(server, api):
    ana, _, _ = api.register()
    ben, _, _ = api.register()
    room_id = api.create_room(ana)
    assert api.post("/rooms/join", {"room_id": room_id}, token=ben).status == 200
    seen = api.post("/messages", {"room_id": room_id, "content": "before"}, token=ana).data["id"]
    data = uploaded(server, ana, png(12, 8))
    missed = api.post("/messages", {"room_id": room_id, "content": "",
                                    "attachments": [data["id"]]}, token=ana).data
    back = authed(server, ben)
    assert back.request({"type": "join_room", "room_id": room_id, "since": seen})["success"]
    replayed = back.recv_type("message_received")["data"]
    assert replayed["id"] == missed["id"] and replayed["replayed"] is True
    [attachment] = replayed["attachments"]
    assert (attachment["id"], attachment["width"], attachment["height"]) == (data["id"], 12, 8)
    assert fetch(server, attachment["url"])[2] == png(12, 8)


def test_an_upload_never_attached_is_deleted_after_a_day(server, api):
    token, user_id, _ = api.register()
    kept = uploaded(server, token)
    room_id = api.create_room(token)
    attached = uploaded(server, token)
    api.post("/messages", {"room_id": room_id, "content": "x", "attachments": [attached["id"]]},
             token=token)
    # A crash between writing a file and recording it leaves a file no upload owns; a
    # --files-dir may hold files of someone else's, which are never the sweep's.
    folder = server.files.path
    for name in ("file_0123abcd", "file_0123abcd.part", "notes.txt", "file_0123abcd.txt"):
        with open(os.path.join(folder, name), "wb") as file:
            file.write(b"left")
        os.utime(os.path.join(folder, name), (time.time() - 7200, time.time() - 7200))
    before = used(server, user_id)
    removed = server.core.perform(swiftchat_core.sweep_uploads_once, time.time() + 25 * 3600)
    assert kept["id"] in removed and attached["id"] not in removed
    assert kept["id"] not in files_on_disk(server) and attached["id"] in files_on_disk(server)
    assert fetch(server, kept["url"])[0] == 404
    assert used(server, user_id) == before - kept["size"]
    assert {"file_0123abcd", "file_0123abcd.part"} <= set(removed)
    left = set(os.listdir(folder))
    assert {"notes.txt", "file_0123abcd.txt"} <= left and "file_0123abcd" not in left
    for name in ("notes.txt", "file_0123abcd.txt"):
        os.unlink(os.path.join(folder, name))


def a_message_with_a_file(db, body, **options):
    """Run a server on db just long enough for one message carrying body as a file; the
    upload's data."""
    with serve_for_tests(db, **{**OPTIONS, **options}) as running:
        api = Api(running.http_port)
        token = api.register()[0]
        room_id = api.create_room(token)
        data = uploaded(running, token, body)
        assert api.post("/messages", {"room_id": room_id, "content": "x",
                                      "attachments": [data["id"]]}, token=token).status == 201
    return data


@pytest.mark.sqlite_only(COMMANDS_ON_SQLITE_ONLY)
@pytest.mark.parametrize("given", ["flag", "environment"])
def test_backup_and_restore_follow_the_servers_files_dir(tmp_path, given):
    db, files_dir = tmp_path / "class.db", tmp_path / "elsewhere" / "uploads"
    data = a_message_with_a_file(db, png(6, 6), files_dir=str(files_dir))
    flag = ["--files-dir", str(files_dir)] if given == "flag" else []
    env = {**os.environ, **({"SWIFTCHAT_FILES_DIR": str(files_dir)} if given != "flag" else {})}
    backup = tmp_path / "backup.db"
    done = run_cli("backup", str(backup), "--db", str(db), *flag, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"and its files to {backup}.files")
    assert (tmp_path / "backup.db.files" / data["id"]).read_bytes() == png(6, 6)
    os.unlink(files_dir / data["id"])
    done = run_cli("restore", str(backup), "--db", str(db), *flag, env=env)
    assert done.returncode == 0, done.stderr
    assert (files_dir / data["id"]).read_bytes() == png(6, 6)
    assert stat.S_IMODE(os.stat(files_dir).st_mode) == 0o700
    assert not (tmp_path / "class.db.files").exists()  # nothing made where the server never looks
    # The folder it replaced is kept beside the replaced database.
    [kept] = [name for name in os.listdir(tmp_path) if name.endswith(".files")
              and name.startswith("class.db.before-restore-")]
    assert data["id"] not in os.listdir(tmp_path / kept)


@pytest.mark.sqlite_only(COMMANDS_ON_SQLITE_ONLY)
@pytest.mark.parametrize("command", ["backup", "restore"])
@pytest.mark.parametrize("files_dir", ["the database's folder", "a file"])
def test_a_files_dir_that_cannot_be_one_is_refused_before_anything_is_touched(
        tmp_path, command, files_dir):
    db = tmp_path / "class.db"
    with serve_for_tests(db, **OPTIONS) as running:
        Api(running.http_port).register()
    backup = tmp_path / "backup.db"
    assert run_cli("backup", str(backup), "--db", str(db)).returncode == 0
    folder = tmp_path if files_dir == "the database's folder" else tmp_path / "notes.txt"
    (tmp_path / "notes.txt").write_text("not a folder")
    before = db.read_bytes()
    target = str(backup) if command == "restore" else str(tmp_path / "again.db")
    done = run_cli(command, target, "--db", str(db), "--files-dir", str(folder))
    assert done.returncode == 1 and done.stdout == "" and len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith(f"swiftchat: --files-dir {folder} ")
    assert db.read_bytes() == before  # not replaced
    assert not (tmp_path / "again.db").exists()
    assert not [name for name in os.listdir(tmp_path) if "before-restore" in name]


@pytest.mark.sqlite_only(COMMANDS_ON_SQLITE_ONLY)
def test_a_backup_told_of_a_files_dir_that_is_not_there_says_so(tmp_path):
    db = tmp_path / "class.db"
    with serve_for_tests(db, **OPTIONS):
        pass
    done = run_cli("backup", str(tmp_path / "backup.db"), "--db", str(db),
                   "--files-dir", str(tmp_path / "typo"))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (f"swiftchat: backed up {db} to {tmp_path / 'backup.db'}, but found no "
                           f"files folder at {tmp_path / 'typo'}\n")


@pytest.mark.sqlite_only(COMMANDS_ON_SQLITE_ONLY)
def test_a_backup_carries_the_files_and_restore_brings_them_back(tmp_path):
    db = tmp_path / "class.db"
    data = a_message_with_a_file(db, png(5, 5))
    backup = tmp_path / "backup.db"
    done = run_cli("backup", str(backup), "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "backup.db.files" / data["id"]).read_bytes() == png(5, 5)
    os.unlink(tmp_path / "class.db.files" / data["id"])
    done = run_cli("restore", str(backup), "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "class.db.files" / data["id"]).read_bytes() == png(5, 5)


# -- what an attack review tried (each held after its fix) -----------------------------------

@pytest.mark.parametrize("head", [
    # Leading zeros past 18 digits: once read as 60 bytes of file, the rest as a request.
    lambda token, hidden: upload_head(token, 0).replace(
        b"Content-Length: 0", b"Content-Length: 00000000000000000060"),
    # OPTIONS answers without reading the body its route would read.
    lambda token, hidden: (b"OPTIONS /api/v1/uploads HTTP/1.1\r\nHost: x\r\nContent-Length: "
                           + str(len(hidden)).encode() + b"\r\n\r\n"),
])
def test_a_request_hidden_in_an_uploads_body_is_never_answered(server, api, head):
    token = api.register()[0]
    hidden = (b"GET /api/v1/echo HTTP/1.1\r\nHost: x\r\nUser-Agent: SMUGGLED\r\n"
              b"Content-Length: 0\r\n\r\n")
    answer = raw_exchange(server, head(token, hidden) + hidden.ljust(60, b" "), shut_write=True)
    assert b"SMUGGLED" not in answer
    assert answer.count(b"HTTP/1.1 ") == 1


@pytest.mark.parametrize("sig", ["%FF", "%C3%A9" * 16, "ZZ" * 16, "A" * 32, "", "0" * 33])
def test_a_link_whose_signature_is_no_hex_is_not_found(server, api, sig):
    token = api.register()[0]
    data = uploaded(server, token)
    link = data["url"].split("&sig=")[0] + "&sig=" + sig
    status, _, body = fetch(server, link)
    assert status == 404 and json.loads(body)["error"] == "File not found"


def test_uploads_in_progress_are_capped_and_count_against_the_quota(server, api):
    token, user_id, _ = api.register()
    # Three uploads that trickle: each holds a thread, and its declared size of the quota.
    stalled = [socket.create_connection(("127.0.0.1", server.http_port), timeout=10)
               for _ in range(3)]
    try:
        for sock in stalled:
            sock.sendall(upload_head(token, 900_000) + b"a start")
        wait_until(lambda: server.uploads_in_progress.bytes_of(user_id) == 2_700_000)
        status, answer = upload(server, token, png(4, 4))
        assert status == 429 and answer["error"] == "Too many uploads at once"
        other = api.register()[0]
        assert upload(server, other, png(4, 4))[0] == 201  # another user is not held up
    finally:
        for sock in stalled:
            sock.close()
    wait_until(lambda: server.uploads_in_progress.bytes_of(user_id) == 0)
    assert upload(server, token, png(4, 4))[0] == 201
