"""Deploying (README "Deploying", docs/deploy/): SwiftChat behind nginx with TLS, and the systemd unit.

The nginx configuration in docs/deploy/ is run as it is, with its ports,
certificate paths and server name swapped for the test's, in front of a
real SwiftChat on one HTTPS port: the page, the API and the WebSocket
(wss://.../ws) all go through it, and each client is counted by its own
address. Skipped where nginx, openssl or systemd-analyze are not installed
(.ci/run installs nginx).
"""

import http.client
import json
import os
import shutil
import subprocess
import sys

import pytest
from websockets.sync.client import connect

from conftest import DEPLOY, HERE


def call(port, context, method, path, body=None, token=None, source="127.0.0.1"):
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10,
                                             source_address=(source, 0))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        connection.request(method, "/api/v1" + path, json.dumps(body) if body else None, headers)
        reply = connection.getresponse()
        return reply.status, json.loads(reply.read())
    finally:
        connection.close()


def test_behind_nginx_the_page_the_api_and_the_websocket_share_one_https_port(behind_nginx):
    port, context = behind_nginx
    status, info = call(port, context, "GET", "/info")
    assert status == 200 and info["data"]["websocket_url"] == f"wss://127.0.0.1:{port}/ws"
    page = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    page.request("GET", "/")
    reply = page.getresponse()
    assert reply.status == 200 and "frame-ancestors 'none'" in reply.headers["Content-Security-Policy"]
    reply.read()
    page.close()
    _, registered = call(port, context, "POST", "/auth/register",
                         {"username": "proxied", "password": "password123"})
    token = registered["data"]["token"]
    _, room = call(port, context, "POST", "/rooms", {"name": "Through nginx"}, token)
    with connect(info["data"]["websocket_url"], ssl=context, proxy=None, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "auth", "token": token}))
        assert json.loads(ws.recv(timeout=10))["success"]
        ws.send(json.dumps({"type": "join_room", "room_id": room["data"]["id"]}))
        assert json.loads(ws.recv(timeout=10))["data"]["type"] == "room_joined"
        ws.send(json.dumps({"type": "send_message", "content": "over wss"}))
        assert json.loads(ws.recv(timeout=10))["data"]["type"] == "message_sent"


def test_behind_nginx_one_students_guesses_do_not_lock_out_the_class(behind_nginx):
    port, context = behind_nginx
    call(port, context, "POST", "/auth/register", {"username": "teacher", "password": "password123"})
    for _ in range(5):  # from 127.0.0.2, as nginx tells SwiftChat in X-Forwarded-For
        call(port, context, "POST", "/auth/login", {"username": "teacher", "password": "guess-guess"},
             source="127.0.0.2")
    locked, _ = call(port, context, "POST", "/auth/login",
                     {"username": "teacher", "password": "password123"}, source="127.0.0.2")
    assert locked == 429
    status, _ = call(port, context, "POST", "/auth/login",
                     {"username": "teacher", "password": "password123"}, source="127.0.0.3")
    assert status == 200


def test_the_systemd_unit_is_valid(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    with open(os.path.join(DEPLOY, "swiftchat.service"), encoding="utf-8") as unit:
        text = unit.read()
    # Its paths and user as on this machine; everything else as shipped.
    text = (text.replace("/opt/swiftchat/.venv/bin/python", sys.executable)
                .replace("/opt/swiftchat/swiftchat.py", os.path.join(HERE, "swiftchat.py"))
                .replace("WorkingDirectory=/opt/swiftchat", f"WorkingDirectory={HERE}")
                .replace("User=swiftchat", "User=root").replace("Group=swiftchat", "Group=root"))
    (tmp_path / "swiftchat.service").write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "swiftchat.service")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for hardening in ("NoNewPrivileges=true", "ProtectSystem=strict", "User="):
        assert hardening in text
