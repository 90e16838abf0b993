"""SwiftChat embedded in a Python program, with a bot that answers "!time" in any room.

    python examples/time_bot.py                      # ports 8080 and 8081
    python examples/time_bot.py --http-port 0 --ws-port 0 --db :memory:

The program runs the whole chat server in background threads (serve()),
listens to every stored message with on_message, and answers with
post_message as a user of its own, "timebot". Ctrl+C stops it.
"""

import argparse
import os
import secrets
import signal
import sys
import threading
import time

# Run from a clone without installing anything: swiftchat.py is one folder up.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import swiftchat  # noqa: E402

BOT_NAME = "timebot"


def bot_account(server):
    """The bot's user, made on the first run; nobody needs its password."""
    return server.user(username=BOT_NAME) or server.create_user(BOT_NAME,
                                                                secrets.token_urlsafe(24))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--ws-port", type=int, default=8081)
    parser.add_argument("--db", default="timebot.db")
    args = parser.parse_args()
    with swiftchat.serve(http_port=args.http_port, ws_port=args.ws_port, db=args.db) as server:
        bot = bot_account(server)

        def answer(message):  # runs on SwiftChat's callback thread, one message at a time
            if message["content"].strip() == "!time" and message["user_id"] != bot["id"]:
                now = time.strftime("%H:%M:%S UTC", time.gmtime())
                server.post_message(message["room_id"], bot["id"], f"It is {now}.")

        server.on_message(answer)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        print(f"SwiftChat with timebot: REST on http://127.0.0.1:{server.http_port}, "
              f"WebSocket on ws://127.0.0.1:{server.ws_port}", flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
