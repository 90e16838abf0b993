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
import socket
import ssl
import subprocess
import sys
import time

import pytest
from websockets.sync.client import connect

import swiftchat
from conftest import HERE, TEST_ITERATIONS, TEST_SECRET

DEPLOY = os.path.join(HERE, "docs", "deploy")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed_certificate(folder):
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return key, cert


def nginx_config(folder, https_port, http_port, ws_port, key, cert):
    """docs/deploy/nginx.conf as it is, with the test's ports, certificate and name."""
    with open(os.path.join(DEPLOY, "nginx.conf"), encoding="utf-8") as site:
        text = site.read()
    for old, new in [("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
                     ("listen 80;", f"listen 127.0.0.1:{free_port()};"),
                     ("/etc/letsencrypt/live/chat.example.org/fullchain.pem", str(cert)),
                     ("/etc/letsencrypt/live/chat.example.org/privkey.pem", str(key)),
                     ("127.0.0.1:8081", f"127.0.0.1:{ws_port}"),
                     ("127.0.0.1:8080", f"127.0.0.1:{http_port}")]:
        assert old in text, old
        text = text.replace(old, new)
    (folder / "site.conf").write_text(text)
    main = folder / "nginx.conf"
    main.write_text(f"""user root;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    include {folder}/site.conf;
}}
""")
    return main


@pytest.fixture
def behind_nginx(tmp_path):
    """(https port, a TLS context that trusts the test's certificate) of SwiftChat behind nginx."""
    if not (shutil.which("nginx") and shutil.which("openssl")):
        pytest.skip("nginx or openssl is not installed")
    key, cert = self_signed_certificate(tmp_path)
    https_port = free_port()
    with swiftchat.serve(http_port=0, ws_port=0, db=tmp_path / "chat.db", jwt_secret=TEST_SECRET,
                         pbkdf2_iterations=TEST_ITERATIONS, trusted_proxy="127.0.0.1",
                         public_ws_url=f"wss://127.0.0.1:{https_port}/ws") as server:
        config = nginx_config(tmp_path, https_port, server.http_port, server.ws_port, key, cert)
        nginx = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(config),
                                  "-g", "daemon off;"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 15
            while True:  # until nginx listens
                try:
                    socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
                    break
                except OSError:
                    assert nginx.poll() is None, nginx.stderr.read()
                    assert time.monotonic() < deadline, "nginx did not start"
                    time.sleep(0.05)
            context = ssl.create_default_context(cafile=str(cert))
            yield https_port, context
        finally:
            nginx.terminate()
            nginx.communicate(timeout=15)


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
