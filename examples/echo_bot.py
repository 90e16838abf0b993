"""A bot that echoes every message in one room, over the WebSocket.

    SWIFTCHAT_USER=echo SWIFTCHAT_PASSWORD='echo-password' SWIFTCHAT_ROOM=room_1f0c2a9b \\
        python examples/echo_bot.py

It logs in over REST, then stays in the room. When the connection drops it
reconnects by itself and rejoins with `since`, the id of the last message
it saw, so it answers what was said meanwhile too; each echo carries a
client_id made from the message's id, so an echo sent twice is stored once.
A refusal (a wrong password, a disabled account) stops it with the
server's reason on one line: asking again would not change the answer,
and a wrong password tried again and again locks the account. Needs the
`websockets` package, as SwiftChat does. Ctrl+C stops it.
"""

import asyncio
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

API = os.environ.get("SWIFTCHAT_URL", "http://127.0.0.1:8080") + "/api/v1"
NEEDED = ("SWIFTCHAT_USER", "SWIFTCHAT_PASSWORD", "SWIFTCHAT_ROOM")


class Refused(Exception):
    """The server said no (HTTP 4xx) to something that asking again will not change."""


def api(method, path, body=None, token=None):
    request = urllib.request.Request(API + path, method=method,
                                     data=json.dumps(body).encode() if body else None)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.load(reply)["data"]
    except urllib.error.HTTPError as answer:  # an OSError too: caught here, or it would be retried
        with answer:
            if not 400 <= answer.code < 500:  # the server's own trouble: worth another try
                raise
            try:  # the server's error envelope says why; a proxy's page does not
                reason = json.load(answer).get("error")
            except ValueError:
                reason = answer.reason
            raise Refused(f"{reason} (HTTP {answer.code})") from None


def websocket_url():
    host = urllib.parse.urlsplit(API).hostname
    return f"ws://{host}:{api('GET', '/info')['ws_port']}"


async def echo(username, password, room_id):
    last_seen = None  # the id of the newest message of the room we have seen
    while True:
        try:
            # Logging in each time also gets a fresh token after a long run.
            session = api("POST", "/auth/login", {"username": username, "password": password})
            async with connect(websocket_url()) as websocket:
                await websocket.send(json.dumps({"type": "auth", "token": session["token"]}))
                await websocket.recv()
                join = {"type": "join_room", "room_id": room_id}
                if last_seen is not None:
                    join["since"] = last_seen
                await websocket.send(json.dumps(join))
                print("in the room", flush=True)
                async for text in websocket:
                    data = json.loads(text).get("data") or {}
                    if data.get("type") != "message_received" or data.get("id") is None:
                        continue
                    last_seen = data["id"]
                    if data["user_id"] != session["id"] and not data["content"].startswith("echo: "):
                        await websocket.send(json.dumps({
                            "type": "send_message", "content": f"echo: {data['content']}",
                            "client_id": f"echo-{data['id']}"}))
        except (OSError, ConnectionClosed) as exc:
            print(f"connection lost ({exc}); reconnecting", flush=True)
            await asyncio.sleep(1)


def main():
    missing = [name for name in NEEDED if not os.environ.get(name)]
    if missing:
        sys.exit(f"echo_bot.py: set {', '.join(missing)}")
    try:
        asyncio.run(echo(*(os.environ[name] for name in NEEDED)))
    except Refused as refused:
        sys.exit(f"echo_bot.py: {refused}")
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
