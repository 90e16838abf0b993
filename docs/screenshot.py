"""Take the README's screenshot of the chat page (docs/screenshot.png), by hand, not in the suite.

It starts a SwiftChat of its own on free ports with a throwaway database, fills it as a
lesson would (a teacher and three students in a room, a reply, reactions, a pinned link,
display names and a status line), signs in as one student in Debian's Chromium through
Playwright, and saves the window as it is. Run it from the repository's root after
changing how the page looks:

    python docs/screenshot.py [--dark] [--phone] [--out docs/screenshot.png]
"""

import argparse
import re
import json
import pathlib
import sys
import tempfile
import urllib.request

from playwright.sync_api import expect, sync_playwright

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import swiftchat  # noqa: E402 (found through the line above)

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
PEOPLE = {  # username: (display name, status)
    "rivera": ("Ms Rivera", "Marking until Friday"),
    "student17": ("Ana K.", "Lab partner: Ben"),
    "ben": ("Ben Okafor", ""),
    "cleo": ("Cleo M.", "At the dentist, back at 11"),
}


def call(port, token, method, path, body=None):
    """One REST call; the answer's data."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode())
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)["data"]


def fill(port):
    """The lesson: returns nothing; the page reads it all from the server."""
    tokens = {}
    for username, (display_name, status) in PEOPLE.items():
        tokens[username] = call(port, None, "POST", "/auth/register",
                                {"username": username, "password": "password123"})["token"]
        call(port, tokens[username], "PATCH", "/users/me", {"display_name": display_name, "status": status})
    physics = call(port, tokens["rivera"], "POST", "/rooms",
                   {"name": "Physics 10B", "description": "Waves and optics, spring term"})["id"]
    call(port, tokens["rivera"], "POST", "/rooms", {"name": "Homework help", "description": ""})
    for username in ("student17", "ben", "cleo"):
        call(port, tokens[username], "POST", "/rooms/join", {"room_id": physics})

    def say(username, content, **fields):
        return call(port, tokens[username], "POST", "/messages", {"room_id": physics, "content": content, **fields})["id"]

    homework = say("rivera", "Homework for Friday: questions 1-6 on interference, https://example.org/waves-sheet")
    call(port, tokens["rivera"], "POST", f"/messages/{homework}/pin")
    question = say("ben", "Does question 4 want the path difference or the phase difference?")
    say("ben", "I got 3λ/2 either way")
    say("rivera", "The path difference. The phase follows from it: `Δφ = 2π·Δx/λ`", reply_to=question)
    thanks = say("cleo", "That makes sense now, thank you!")
    # Symbols that Debian's DejaVu fonts draw: a machine without an emoji font shows 👍 as a box.
    for username in ("student17", "ben"):
        call(port, tokens[username], "POST", f"/messages/{homework}/reactions", {"emoji": "♥"})
    call(port, tokens["rivera"], "POST", f"/messages/{thanks}/reactions", {"emoji": "✔"})
    say("student17", "@ben shall we check ours before the lab?")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dark", action="store_true", help="the dark colour scheme")
    parser.add_argument("--phone", action="store_true", help="a phone's window (390x844) instead of 1280x800")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    options = parser.parse_args()
    viewport = {"width": 390, "height": 844} if options.phone else {"width": 1280, "height": 800}
    with tempfile.TemporaryDirectory() as folder, \
            swiftchat.serve(http_port=0, ws_port=0, db=pathlib.Path(folder) / "chat.db", rest_rate=0) as server:
        fill(server.http_port)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport=viewport, color_scheme="dark" if options.dark else "light")
            page.goto(f"http://127.0.0.1:{server.http_port}/")
            page.get_by_label("Username").fill("student17")
            page.get_by_label("Password", exact=True).fill("password123")
            page.get_by_role("button", name="Log in").click()
            physics = page.get_by_role("navigation", name="Rooms").get_by_role("button", name="Physics 10B")
            physics.click()
            expect(page.get_by_role("list", name="Messages")).to_contain_text("shall we check ours")
            unread = physics.get_by_role("img", name=re.compile("unread"))
            expect(unread).to_have_count(0, timeout=10_000)  # viewing the room reads it (in 2 s)
            page.get_by_role("textbox", name="Message", exact=True).blur()  # no focus ring in the picture
            page.wait_for_timeout(300)  # the online dots and counts settle
            page.screenshot(path=options.out)
            browser.close()
    print(options.out)


if __name__ == "__main__":
    main()
