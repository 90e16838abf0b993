"""Post one line to a SwiftChat room with nothing but Python's standard library.

    SWIFTCHAT_USER=ci-bot SWIFTCHAT_PASSWORD='ci-password' SWIFTCHAT_ROOM=room_1f0c2a9b \\
        python examples/notify.py "Build 42 passed"

SWIFTCHAT_URL defaults to http://127.0.0.1:8080. The user must be a member
of the room (POST /api/v1/rooms/join once). A refusal (wrong password, no
such room, not a member) prints the server's reason on one line and exits 1.
"""

import json
import os
import sys
import urllib.error
import urllib.request


def call(url, body, token=None):
    """POST a JSON body; return the envelope's data (urllib raises HTTPError on 4xx/5xx)."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.load(reply)["data"]


def main():
    api = os.environ.get("SWIFTCHAT_URL", "http://127.0.0.1:8080") + "/api/v1"
    try:
        session = call(f"{api}/auth/login", {"username": os.environ["SWIFTCHAT_USER"],
                                             "password": os.environ["SWIFTCHAT_PASSWORD"]})
        posted = call(f"{api}/messages", {"room_id": os.environ["SWIFTCHAT_ROOM"],
                                          "content": " ".join(sys.argv[1:])}, session["token"])
    except KeyError as missing:
        sys.exit(f"notify.py: set {missing.args[0]}")
    except urllib.error.HTTPError as refused:  # the server's error envelope says why
        sys.exit(f"notify.py: {json.load(refused).get('error')} (HTTP {refused.code})")
    except urllib.error.URLError as unreachable:
        sys.exit(f"notify.py: cannot reach {api}: {unreachable.reason}")
    print(f"posted message {posted['id']}")


if __name__ == "__main__":
    main()
