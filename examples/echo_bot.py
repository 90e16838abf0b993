"""A bot that echoes every message in one room, over the WebSocket.

    SWIFTCHAT_USER=echo SWIFTCHAT_PASSWORD='echo-password' SWIFTCHAT_ROOM=room_1f0c2a9b \\
        python examples/echo_bot.py

It logs in over REST, then stays in the room. When the connection drops it
reconnects by itself and rejoins with `since`, the id of the last message
it saw, so it answers what was said meanwhile too; each echo carries a
client_id made from the message's id, so an echo sent twice is stored once.
Needs the `websockets` package, as SwiftChat does. Ctrl+C stops it.
"""

import asyncio
import json
import os
import urllib.parse
import urllib.request

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

API = os.environ.get("SWIFTCHAT_URL", "http://127.0.0.1:8080") + "/api/v1"


def api(method, path, body=None, token=None):
    request = urllib.request.Request(API + path, method=method,
                                     data=json.dumps(body).encode() if body else None)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.load(reply)["data"]


def websocket_url():
    host = urllib.parse.urlsplit(API).hostname
    return f"ws://{host}:{api('GET', '/info')['ws_port']}"


async def echo(room_id):
    last_seen = None  # the id of the newest message of the room we have seen
    while True:
        try:
            # Logging in each time also gets a fresh token after a long run.
            session = api("POST", "/auth/login", {"username": os.environ["SWIFTCHAT_USER"],
                                                  "password": os.environ["SWIFTCHAT_PASSWORD"]})
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


if __name__ == "__main__":
    try:
        asyncio.run(echo(os.environ["SWIFTCHAT_ROOM"]))
    except KeyboardInterrupt:
        pass
