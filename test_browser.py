"""The browser chat page, driven in headless Chromium by Playwright.

These tests use Debian's Chromium (apt-get install chromium); Playwright
downloads no browser here. Without it they skip and say how to install it.
"""

import collections
import contextlib
import http.server
import itertools
import json
import pathlib
import re
import threading
import time

import pytest

from conftest import (NO_LIMITS, Api, in_room, log_in_on_page, login, make_admin, serve_for_tests,
                      signed_in, wait_until)


expect = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-dev.txt").expect


def playwright_pause(page):
    """A pause for wait_until that lets Playwright run: it hears of the page's events (a route
    being asked for, say) only inside a call of its own, never during a time.sleep."""
    return lambda seconds: page.wait_for_timeout(seconds * 1000)


def wait_until_in_page(page, expression, arg=None, timeout=10):
    """Wait until a page expression is true, looking every 50 ms.

    Not page.wait_for_function: while it polls, it runs the expression
    with eval, which the page's Content-Security-Policy forbids (it passes
    only when the expression is true at its first look).
    """
    wait_until(lambda: page.evaluate(expression, arg), timeout, pause=playwright_pause(page))


def register(page, username, password="password123"):
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#register-button")
    expect(page.locator("#whoami")).to_have_text(username)
    expect(page.locator("#status")).to_have_text("Connected")


def create_room(page, name, description="", private=False):
    page.fill("#room-name", name)
    page.fill("#room-description", description)
    if private:
        page.get_by_label("Private").check()
    page.click("#create-room-form button[type=submit]")
    expect(page.locator("#room-title")).to_have_text(name)
    expect(page.locator("#message-input")).to_be_enabled()


def say(page, text):
    page.fill("#message-input", text)
    page.press("#message-input", "Enter")


def join(page, name):
    page.locator("#room-list button", has_text=name).click()
    expect(page.locator("#room-title")).to_have_text(name)
    expect(page.locator("#message-input")).to_be_enabled()


# -- two people on pages of their own, shared by the file's tests --------------------------------
#
# A page open and a sign-in cost a second or two each: the tests below that need no more than two
# signed-in people (one who makes rooms, one who only joins them) share two pages, opened once for
# the file on one server of its own (flood limits off: every request comes from one address). Each
# test makes rooms of its own, named with a suffix no other room's name contains, and leaves the
# pages as it found them (no route, listener, block, open menu, dialog or search). The guest never makes a
# room, so that she moderates none. Tests that need a page of their own (a reload of a newcomer's
# page, a log-out, a viewport, a colour scheme, a fake clock, a spy before load, a fresh account)
# still open one with new_page, and so do the two that wait for a typing line: a page tells the
# room it is typing at most every 2.2 s (and the server passes one a user per 2 s), so a guest who
# had just typed in the test before would show no typing line in time.

HOST, GUEST = "hana", "gabe"
Duo = collections.namedtuple("Duo", "server api tokens host guest room")
_suffixes = ("".join(pair) for pair in itertools.product("ABCDEFGHIJKLMNOPQRSTUVWXYZ", repeat=2))



@pytest.fixture(scope="module")
def two_people(tmp_path_factory, browser):
    """One server for the file's shared pages, and the host's and the guest's pages on it, each
    signed in once (a browser context each: two people)."""
    with serve_for_tests(tmp_path_factory.mktemp("two_people") / "chat.db", **NO_LIMITS) as server, \
            contextlib.closing(Api(server.http_port)) as api:
        tokens = {name: api.register(name)[0] for name in (HOST, GUEST)}
        pages = {}
        try:
            for name in tokens:
                pages[name] = signed_in(browser, server, name)
            yield server, api, tokens, pages
        finally:
            for page in pages.values():
                page.context.close()


# Closes what a test may leave open on a shared page: a member's menu, a dialog (Reports), a menu,
# search results.
CLOSE_WHAT_IS_OPEN = """() => {
    if (!$('search-results').hidden) $('close-search').click();
    state.memberMenu = null;
    document.querySelectorAll('.member-menu').forEach((menu) => menu.remove());
    document.querySelectorAll('dialog[open]').forEach((dialog) => dialog.close());
    document.querySelectorAll('details[open]').forEach((details) => { details.open = false; });
}"""


@pytest.fixture
def duo(two_people):
    """The shared pages: Duo(server, api, tokens, host page, guest page, room), where room(name)
    gives a room name of this test's own ("Club AB"). After the test, what either person blocked
    is unblocked and what was left open is closed, so that the next test finds the pages as this
    one did."""
    server, api, tokens, pages = two_people
    suffix = next(_suffixes)
    yield Duo(server, api, tokens, pages[HOST], pages[GUEST], lambda name: f"{name} {suffix}")
    for page in pages.values():
        page.evaluate(CLOSE_WHAT_IS_OPEN)
    for token in tokens.values():
        for blocked in api.get("/users/me/blocked", token=token).data["users"]:
            assert api.call("DELETE", f"/users/{blocked['id']}/block", token=token).status == 200


def test_the_page_is_served_with_its_assets_and_its_favicon(server, new_page):
    responses = []
    page = new_page(before_load=lambda page: page.on("response", lambda response: responses.append(response)))
    # Its assets.
    expect(page).to_have_title("SwiftChat")
    expect(page.locator("#login-form")).to_be_visible()
    response = page.request.get(f"http://127.0.0.1:{server.http_port}/static/main.js")
    assert response.ok and "javascript" in response.headers["content-type"]
    # Its favicon, which the browser asks for on its own; nothing the page asked for was refused.
    wait_until(lambda: any(r.url.endswith("/static/favicon.svg") for r in responses),
               pause=playwright_pause(page))
    assert [r.url for r in responses if r.status >= 400] == []


def test_wrong_password_and_taken_name_show_clear_errors(new_page):
    page = new_page()
    register(page, "dora")
    page.click("#logout")
    page.fill("#username", "dora")
    page.fill("#password", "not-the-password")
    page.click("#login-button")
    expect(page.locator("#error")).to_have_text("Username or password is incorrect")
    page.click("#register-button")
    expect(page.locator("#error")).to_have_text("Username already taken")


def test_two_people_chat_live_and_history_survives_a_reload(new_page, tmp_path):
    alice, bob = new_page(), new_page()
    register(alice, "alice")
    create_room(alice, "Lab 4", "Questions about lab 4")
    register(bob, "bob")
    expect(bob.locator("#room-list")).to_contain_text("Lab 4")
    join(bob, "Lab 4")
    expect(alice.locator("#messages")).to_contain_text("bob joined")
    expect(alice.locator("#room-list")).to_contain_text("2 members")

    say(alice, "Hi Bob, did the tests pass?")
    expect(bob.locator(".message").last).to_contain_text("Hi Bob, did the tests pass?")
    say(bob, "All green!")
    expect(alice.locator(".message").last).to_contain_text("All green!")
    expect(alice.locator(".message.mine")).to_have_count(1)
    expect(bob.locator(".message.mine .content")).to_have_text(["All green!"])
    expect(bob.locator(".message.mine .meta")).to_contain_text("bob · ")

    alice.reload()
    expect(alice.locator("#room-title")).to_have_text("Lab 4")
    expect(alice.locator(".message .content")).to_have_text(["Hi Bob, did the tests pass?", "All green!"])
    alice.screenshot(path=str(tmp_path / "chat.png"), full_page=True)
    assert (tmp_path / "chat.png").stat().st_size > 0


def test_a_message_is_rendered_as_text_never_as_html(duo):
    page = duo.host
    create_room(page, duo.room("Sandbox"))
    dialogs = []

    def dismiss(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()
    page.on("dialog", dismiss)
    try:
        attack = "<img src=x onerror=alert(1)>"
        say(page, attack)
        expect(page.locator(".message .content").last).to_have_text(attack)
        page.reload()  # and from history, too
        expect(page.locator(".message .content").last).to_have_text(attack)
        assert page.locator("#messages img").count() == 0
        assert dialogs == []
    finally:  # the host's page is the file's: the next test's dialogs are its own
        page.remove_listener("dialog", dismiss)


def test_the_page_reconnects_and_rejoins_after_the_server_drops_the_socket(server, new_page):
    page, other = new_page(), new_page()
    register(page, "erin")
    create_room(page, "Resilient")
    register(other, "frank")
    join(other, "Resilient")
    user_id = page.evaluate("JSON.parse(sessionStorage.getItem('swiftchat.user')).id")

    def drop_connection():
        for client in server.core.clients[user_id].values():
            client.websocket.transport.abort()  # as if the network failed
    server.core.call(drop_connection)
    expect(page.locator("#error")).to_contain_text("Reconnecting")
    expect(page.locator("#status")).to_have_text("Connected")
    expect(other.locator("#messages")).to_contain_text("erin joined")

    say(other, "welcome back")
    expect(page.locator(".message").last).to_contain_text("welcome back")


def test_a_message_both_live_and_in_the_history_being_loaded_is_shown_once(duo):
    """Live frames that arrive while history loads wait for it; one in both is shown once."""
    server, api = duo.server, duo.api
    token, _, _ = api.register("olga")
    overlap = duo.room("Overlap")
    room_id = api.create_room(token, overlap)
    speaker, _ = in_room(api, server, room_id, token)
    page = duo.guest
    held = []  # the page's history request, held until the live message has arrived
    page.route("**/api/v1/messages?*", lambda route: held.append(route))
    try:
        with page.expect_request("**/api/v1/messages?*"):
            page.locator("#room-list button", has_text=overlap).click()
        speaker.recv_type("user_joined")
        assert speaker.request({"type": "send_message", "content": "said during the load"})["success"]
        wait_until_in_page(page, "state.pendingLive && state.pendingLive.length === 1")
        held[0].continue_()  # the history now holds the same message
        expect(page.locator(".message .content")).to_have_text(["said during the load"])
    finally:  # the guest's page is the file's: the next test's history loads go straight through
        page.unroute("**/api/v1/messages?*")
    speaker.close()


def test_the_creator_edits_the_description_and_deletes_the_room(duo):
    owner, guest = duo.host, duo.guest
    temporary = duo.room("Temporary")
    create_room(owner, temporary, "short-lived")
    join(guest, temporary)
    expect(guest.locator("#creator-tools")).to_be_hidden()

    owner.click("#creator-tools summary")  # the creator's tools live in a menu
    owner.fill("#new-description", "even shorter")
    owner.press("#new-description", "Enter")
    expect(owner.locator("#room-about")).to_have_text("even shorter")
    # The menu closes once the PATCH is answered, which may come after the room_updated
    # frame that showed the text: opening it before then would close it again.
    expect(owner.locator("#new-description")).to_be_hidden()

    owner.once("dialog", lambda dialog: dialog.accept())
    owner.click("#creator-tools summary")
    owner.click("#delete-room")
    expect(guest.locator("#messages")).to_contain_text("This room was deleted")
    expect(guest.locator("#room-list")).not_to_contain_text(temporary)
    expect(guest.locator("#message-input")).to_be_disabled()


def test_it_works_on_a_narrow_phone_screen_with_the_keyboard(new_page):
    page = new_page(viewport={"width": 375, "height": 700})
    page.focus("#username")
    page.keyboard.type("phoebe")
    page.keyboard.press("Tab")
    page.keyboard.type("password123")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # past "Log in" to "Register"
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_have_text("Connected")
    create_room(page, "Pocket")
    page.keyboard.type("typed on a phone")
    page.keyboard.press("Enter")
    expect(page.locator(".message.mine .content")).to_have_text("typed on a phone")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375


def test_the_api_documents_browser_snippet_works_unchanged(duo):
    """The seed's JavaScript example, with only the port and token filled in."""
    server, api = duo.server, duo.api
    token, user_id, _ = api.register()
    room_id = api.create_room(token)
    page = duo.guest  # any page will do: the snippet opens a socket of its own, and closes it
    frames = page.evaluate("""([port, token, roomId]) => new Promise((resolve) => {
        const seen = [];
        const ws = new WebSocket('ws://localhost:' + port);
        ws.onopen = function() {
            ws.send(JSON.stringify({type: 'auth', token: token}));
        };
        ws.onmessage = function(event) {
            const message = JSON.parse(event.data);
            seen.push(message);
            if (message.success && message.data) {
                switch (message.data.type) {
                    case undefined:  // the auth answer carries no type
                        ws.send(JSON.stringify({type: 'join_room', room_id: roomId}));
                        break;
                    case 'room_joined':
                        ws.send(JSON.stringify({type: 'send_message', content: 'from the seed'}));
                        break;
                    case 'message_sent':
                        ws.send(JSON.stringify({type: 'ping'}));
                        break;
                    case 'pong':
                        ws.close();
                        resolve(seen);
                        break;
                }
            }
        };
    })""", [server.ws_port, token, room_id])
    assert [f["message"] for f in frames] == [
        "WebSocket authentication successful", "Room joined successfully",
        "Message sent successfully", "Pong response"]
    assert frames[0]["data"] == {"user_id": user_id, "status": "connected"}
    assert frames[2]["data"]["content"] == "from the seed"


# -- never miss a message (issue 10) -------------------------------------------------

def contents(page):
    return page.locator(".message .content").all_inner_texts()


def test_a_reconnect_mid_conversation_shows_every_message_once(server, new_page, api):
    page = new_page()
    joins = []  # the join_room frames the page sends
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: joins.append(json.loads(payload))
                                          if '"join_room"' in payload else None))
    register(page, "rita")
    create_room(page, "Flaky wifi")
    room_id = page.evaluate("state.joinedRoomId")
    user_id = page.evaluate("state.user.id")
    token, _, _ = api.register("sam")
    sam, _ = in_room(api, server, room_id, token)
    say(page, "one")
    sam.request({"type": "send_message", "content": "two"})
    expect(page.locator(".message .content")).to_have_text(["one", "two"])

    server.core.call(lambda: [client.websocket.transport.abort()
                              for client in server.core.clients[user_id].values()])
    for text in ("three", "four", "five"):  # said while rita is away
        sam.send({"type": "send_message", "content": text})
    # Back in the room: what was said meanwhile is shown. (Waiting for "Connected" alone
    # could pass before the page noticed the drop at all, and "six" then went out on the
    # dead connection, to be sent again only after the rejoin: seen once in a full run.)
    expect(page.locator(".message .content")).to_have_text(["one", "two", "three", "four", "five"])
    expect(page.locator("#status")).to_have_text("Connected")
    say(page, "six")
    # Sam answers once he has heard it: sent at once, "seven" could reach the server
    # before the page's "six" (two connections), and the room would rightly show it first.
    while sam.recv().get("data", {}).get("content") != "six":
        pass
    sam.send({"type": "send_message", "content": "seven"})
    expect(page.locator(".message .content")).to_have_text(
        ["one", "two", "three", "four", "five", "six", "seven"])
    assert "since" not in joins[0] and joins[-1]["since"] > 0  # the rejoin asked for what it missed
    sam.close()


def test_scrolling_back_reaches_the_first_message_of_a_long_room(duo):
    api = duo.api  # the shared server has no flood limits
    token, _, _ = api.register("archivist")
    archive = duo.room("Archive")
    room_id = api.create_room(token, archive)
    for n in range(260):
        api.post("/messages", {"room_id": room_id, "content": f"message {n}"}, token=token)
    page = duo.guest  # the reader
    join(page, archive)
    expect(page.locator(".message")).to_have_count(50)
    for _ in range(10):  # each scroll to the top brings the page before
        if page.locator(".message").count() == 260:
            break
        count = page.locator(".message").count()
        page.evaluate("$('messages').scrollTop = 0")
        expect(page.locator(".message")).not_to_have_count(count)
    expect(page.locator(".notice").first).to_have_text("This is the beginning of the room.")
    assert contents(page) == [f"message {n}" for n in range(260)]


@pytest.mark.parametrize("server_options", [NO_LIMITS])
def test_older_history_that_fails_to_load_is_not_asked_for_again_and_again(server, new_page, api):
    """A tall window keeps loading older pages; if one fails, the page says so and waits for
    the reader to scroll, rather than asking again as fast as the network refuses."""
    token, _, _ = api.register("chronicler")
    room_id = api.create_room(token, "Chronicle")
    for n in range(120):
        api.post("/messages", {"room_id": room_id, "content": f"entry {n}"}, token=token)
    page = new_page(viewport={"width": 1280, "height": 4000})
    refused = []

    def refuse(route):
        refused.append(route.request.url)
        route.abort()

    page.route(re.compile(r".*/api/v1/messages\?.*before=.*"), refuse)
    register(page, "reader")
    join(page, "Chronicle")
    expect(page.get_by_role("alert")).to_be_visible()
    for _ in range(5):  # round trips in which a retry loop would have asked many times
        page.evaluate("fetch('/api/v1/health').then((r) => r.status)")
    assert len(refused) == 1, refused


def test_days_are_separated_and_a_reader_scrolled_up_is_not_moved(duo):
    server, api = duo.server, duo.api
    token, user_id, _ = api.register("historian")
    old_and_new = duo.room("Old and new")
    room_id = api.create_room(token, old_and_new)
    day = 24 * 3600
    now = int(time.time())
    for n in range(40):  # history from last week and yesterday, written straight to the store
        server.store.add_message(room_id, user_id, f"old {n}", now - (7 if n < 20 else 1) * day + n)
    page = duo.guest  # the newcomer
    join(page, old_and_new)
    expect(page.locator(".day", has_text="Yesterday")).to_have_count(1)
    assert page.locator(".day").count() == 2  # a date for last week, then Yesterday
    page.evaluate("$('messages').scrollTop = 0")
    top = page.evaluate("$('messages').scrollTop")
    api.post("/messages", {"room_id": room_id, "content": "breaking news"}, token=token)
    expect(page.locator("#new-messages")).to_be_visible()
    assert page.evaluate("$('messages').scrollTop") == top  # the reader stays where they were
    expect(page.locator(".day").last).to_have_text("Today")
    page.click("#new-messages")
    expect(page.locator("#new-messages")).to_be_hidden()
    expect(page.locator(".message .content").last).to_be_in_viewport()


# -- who is here (issue 11) -------------------------------------------------------------

def test_two_people_see_each_others_presence_typing_rooms_and_leaving(new_page):
    ann, ben = new_page(), new_page()
    register(ann, "ann")
    create_room(ann, "Study group")
    register(ben, "ben")
    join(ben, "Study group")
    expect(ann.locator("#member-list .member")).to_have_count(2)
    ben_row = ann.locator(".member", has_text="ben")
    expect(ben_row.locator(".dot.online")).to_have_count(1)
    expect(ben_row.locator(".here")).to_have_count(1)

    ben.locator("#message-input").press_sequentially("hello the")
    expect(ann.locator("#typing")).to_have_text("ben is typing…")
    ben.press("#message-input", "Enter")
    expect(ann.locator(".message .content").last).to_have_text("hello the")
    # (the typing line after a message: test_someone_who_types_on_after_sending_still_shows_as_typing)

    create_room(ann, "Brand new room")  # ben sees it without a reload
    expect(ben.locator("#room-list")).to_contain_text("Brand new room")
    join(ann, "Study group")
    ben.click("#leave-room")
    expect(ben.locator("#room-title")).to_have_text("Pick a room to start chatting")
    expect(ann.locator("#member-list .member")).to_have_count(1)  # ben is no longer a member
    expect(ann.locator("#messages")).to_contain_text("ben left")


# -- long sessions (issue 12) -------------------------------------------------------------

def test_the_page_renews_its_token_before_the_hour_is_up(new_page):
    page = new_page(before_load=lambda page: page.clock.install())
    register(page, "stayer")
    create_room(page, "Long day")
    with page.expect_response("**/api/v1/auth/refresh") as refreshed:
        page.clock.fast_forward("56:00")
    assert refreshed.value.status == 200
    say(page, "still here after an hour")
    expect(page.locator(".message .content").last).to_have_text("still here after an hour")
    expect(page.locator("#login-view")).to_be_hidden()


# -- a page that fits and feels like a chat (issue 13) --------------------------------------

DESKTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}


def assert_fits_the_window(page, composer=True):
    """No page-level scrolling, and (in the conversation) the composer wholly inside the window."""
    height = page.viewport_size["height"]
    assert page.evaluate("document.documentElement.scrollHeight") <= height
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    if not composer:
        return
    box = page.locator("#send-form").bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= height


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_composer_stays_in_the_window_with_a_banner_showing(new_page, viewport, tmp_path):
    page = new_page(viewport=viewport)
    register(page, f"fit{viewport['width']}")
    create_room(page, f"Fit {viewport['width']}")
    for n in range(30):
        say(page, f"line {n}")
    expect(page.locator(".message")).to_have_count(30)
    page.evaluate("showError('A banner that takes a line or two of the window, as errors do')")
    expect(page.locator("#error")).to_be_visible()
    assert_fits_the_window(page)
    expect(page.locator("#room-title")).to_be_in_viewport()
    page.screenshot(path=str(tmp_path / f"fit-{viewport['width']}.png"))


def test_a_phone_shows_one_pane_at_a_time(new_page, tmp_path):
    page = new_page(viewport=PHONE)
    register(page, "mobile")
    create_room(page, "Pocket room")
    expect(page.locator("#room-panel")).to_be_visible()
    expect(page.locator("#rooms-panel")).to_be_hidden()
    expect(page.locator("#room-title")).to_be_in_viewport()
    page.click("#show-members")
    expect(page.locator("#members-panel")).to_be_visible()
    expect(page.locator("#room-panel")).to_be_hidden()
    expect(page.locator("#member-list")).to_contain_text("mobile")
    page.click("#back-to-conversation")
    page.click("#back-to-rooms")
    expect(page.locator("#rooms-panel")).to_be_visible()
    expect(page.locator("#room-panel")).to_be_hidden()
    assert_fits_the_window(page, composer=False)
    page.screenshot(path=str(tmp_path / "phone-rooms.png"))


def test_dark_mode_follows_the_browsers_preference(new_page, tmp_path):
    page = new_page(viewport=DESKTOP, color_scheme="dark")
    register(page, "owl")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    red, green, blue = (int(part) for part in background[background.index("(") + 1:-1].split(",")[:3])
    assert red + green + blue < 3 * 64, background
    page.screenshot(path=str(tmp_path / "dark.png"))


def test_messages_group_by_author_and_keep_their_line_breaks(new_page, tmp_path):
    page = new_page(viewport=DESKTOP)
    register(page, "poet")
    create_room(page, "Verses")
    for text in ("first", "second", "third"):
        say(page, text)
    page.fill("#message-input", "roses are red")
    page.press("#message-input", "Shift+Enter")  # a new line, not a send
    page.locator("#message-input").press_sequentially("violets are blue")
    expect(page.locator(".message")).to_have_count(3)
    page.press("#message-input", "Enter")
    expect(page.locator(".message")).to_have_count(4)
    expect(page.locator(".message .content").last).to_have_text("roses are red\nviolets are blue")
    expect(page.locator(".message .meta")).to_have_count(1)  # one name over the whole run
    page.screenshot(path=str(tmp_path / "grouped.png"))


def test_it_can_be_used_with_the_keyboard_alone(new_page):
    page = new_page(viewport=DESKTOP)
    page.focus("#username")
    page.keyboard.type("keys")
    page.keyboard.press("Tab")
    page.keyboard.type("password123")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # Register
    expect(page.locator("#status")).to_have_text("Connected")
    page.focus("#room-name")
    page.keyboard.type("Keyboard room")
    page.keyboard.press("Enter")
    expect(page.locator("#room-title")).to_have_text("Keyboard room")
    expect(page.locator("#message-input")).to_be_focused()
    page.keyboard.type("no mouse needed")
    page.keyboard.press("Enter")
    expect(page.locator(".message .content")).to_have_text(["no mouse needed"])
    page.keyboard.press("Shift+Tab")  # focus moves, and shows where it is
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    labels = page.evaluate("""[...document.querySelectorAll('input, textarea, button')]
        .filter((e) => !e.labels?.length && !e.getAttribute('aria-label') && !e.textContent.trim())
        .map((e) => e.id)""")
    assert labels == []  # every control has a name a screen reader can say
    assert page.get_attribute("#messages", "aria-live") == "polite"


# -- sessions that end, bidi text and a locked-down page (issue 20) -------------------------

def session_token(page):
    """The token the page holds, read where the page keeps it."""
    return page.evaluate("sessionStorage.getItem('swiftchat.token')")


def heard(client, content):
    """Read a ChatClient's frames up to the message with this content (typing and the like pass by)."""
    while True:
        frame = client.recv()
        data = frame.get("data") or {}
        if data.get("type") == "message_received" and data.get("content") == content:
            return frame


def test_log_out_ends_the_session_on_the_server(new_page, api):
    page = new_page()
    register(page, "leaver")
    token = session_token(page)
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    assert api.get("/users/me", token=token).status == 401


def test_a_session_ended_elsewhere_signs_the_page_out_and_it_does_not_reconnect(new_page, api):
    page = new_page(before_load=lambda page: page.clock.install())
    sockets = []
    page.on("websocket", lambda socket: sockets.append(socket))
    register(page, "wanderer")
    assert api.post("/auth/logout", token=session_token(page)).status == 200  # as another program would
    expect(page.get_by_role("alert")).to_have_text("Your session has ended. Please log in again.")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    page.clock.fast_forward("01:00")  # longer than any reconnect delay
    assert page.evaluate("state.socket") is None and len(sockets) == 1


def test_a_new_password_replaces_the_old_one_and_the_page_stays_signed_in(new_page, api):
    page = new_page()
    register(page, "quinn")
    create_room(page, "Secrets")
    page.get_by_role("button", name="Change password").focus()
    page.keyboard.press("Enter")  # the form is reached from the keyboard
    expect(page.get_by_label("Current password", exact=True)).to_be_focused()
    page.keyboard.type("password123")
    page.keyboard.press("Tab")
    page.keyboard.type("a much better passphrase")
    with page.expect_response("**/api/v1/auth/password") as changed:
        page.keyboard.press("Enter")
    form = page.get_by_role("form", name="Change password")
    expect(form.get_by_role("status")).to_have_text("Password changed")
    assert session_token(page) == changed.value.json()["data"]["token"]  # kept as a login's token is

    assert login(api, "quinn").status == 401
    assert login(api, "quinn", "a much better passphrase").status == 200
    say(page, "still signed in")
    expect(page.get_by_role("list", name="Messages").get_by_role("paragraph")).to_have_text(["still signed in"])


def test_a_wrong_current_password_is_shown_and_the_user_stays_signed_in(new_page, api):
    page = new_page()
    register(page, "rhea")
    page.get_by_role("button", name="Change password").click()
    page.get_by_label("Current password", exact=True).fill("not-my-password")
    page.get_by_label("New password", exact=True).fill("whatever I like")
    page.get_by_role("button", name="Save password").click()
    form = page.get_by_role("form", name="Change password")
    expect(form.get_by_role("alert")).to_have_text("Current password is incorrect")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.get_by_role("button", name="Log in")).to_be_hidden()
    assert api.get("/users/me", token=session_token(page)).status == 200


def test_a_renewed_token_is_sent_on_the_open_socket_and_the_room_carries_on(server, new_page, api):
    page = new_page(before_load=lambda page: page.clock.install())
    sockets, history_loads = [], []
    page.on("websocket", lambda socket: sockets.append(socket))
    page.on("request", lambda request: history_loads.append(request.url)
            if "/api/v1/messages?" in request.url else None)
    register(page, "marathon")
    create_room(page, "All day")
    token, _, _ = api.register("sprinter")
    friend, _ = in_room(api, server, page.evaluate("state.joinedRoomId"), token)
    messages = page.get_by_role("list", name="Messages").get_by_role("paragraph")
    say(page, "before the hour")
    expect(messages).to_have_text(["before the hour"])
    heard(friend, "before the hour")

    sent = []
    sockets[0].on("framesent", lambda payload: sent.append(json.loads(payload)))
    with sockets[0].expect_event("framereceived",
                                 predicate=lambda payload: "WebSocket authentication successful" in payload):
        with page.expect_response("**/api/v1/auth/refresh") as refreshed:
            page.clock.fast_forward("56:00")
    renewed = refreshed.value.json()["data"]["token"]
    assert {"type": "auth", "token": renewed} in sent
    assert not [frame for frame in sent if frame["type"] == "join_room"]  # no rejoin

    say(page, "after the hour")
    expect(messages).to_have_text(["before the hour", "after the hour"])  # nothing cleared or loaded twice
    heard(friend, "after the hour")  # said in the same room on the server's side too
    expect(page.get_by_role("heading", name="All day")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_count(0)
    assert len(history_loads) == 1 and len(sockets) == 1
    friend.close()


def unicode_bidi(locator):
    return locator.evaluate("(element) => getComputedStyle(element).unicodeBidi")


def test_bidi_controls_in_names_and_messages_cannot_reorder_the_page(new_page):
    """U+202E (RIGHT-TO-LEFT OVERRIDE) in a name or message stays inside its own isolate."""
    name, text, room = "\u202eevil", "\u202eolleh, the rest of the line", "\u2067Lounge"
    page = new_page()

    def from_a_bidi_author(route):  # usernames are ASCII on this server; the page must not rely on it
        history = route.fetch().json()
        for message in history["data"]["messages"]:
            message["sender"]["username"] = message["sender"]["display_name"] = name
        route.fulfill(json=history)
    page.route("**/api/v1/messages?*", from_a_bidi_author)
    register(page, "vera")
    create_room(page, room)
    say(page, text)
    page.reload()  # the history brings the message back, by the author above

    messages = page.get_by_role("list", name="Messages")
    author = messages.get_by_text(name, exact=True)
    content = messages.get_by_text(text, exact=True)
    expect(content).to_be_visible()
    assert unicode_bidi(author) == "isolate" and unicode_bidi(content) == "isolate"
    assert unicode_bidi(page.get_by_role("navigation", name="Rooms").get_by_text(room)) == "isolate"
    assert unicode_bidi(page.get_by_role("heading", name=room)) == "isolate"

    # The time still reads after the name, left to right, with the separator between.
    name_right, time_left, time_text, meta_text = author.evaluate("""(element) => {
        const time = element.parentElement.querySelector('time');
        return [element.getBoundingClientRect().right, time.getBoundingClientRect().left,
                time.textContent, element.parentElement.textContent];
    }""")
    assert meta_text == f"{name} · {time_text}" and re.match(r"\d\d:\d\d", time_text)
    assert name_right < time_left


def test_the_page_works_under_its_content_security_policy(new_page):
    problems, documents = [], []

    def watch(page):
        page.on("console", lambda message: problems.append(message.text)
                if "Content Security Policy" in message.text else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("response", lambda response: documents.append(response)
                if response.request.resource_type == "document" else None)
    page = new_page(before_load=watch)
    assert "default-src 'self'" in documents[0].headers["content-security-policy"]
    register(page, "careful")
    create_room(page, "Locked down")
    say(page, "nothing inline here")
    expect(page.get_by_role("list", name="Messages").get_by_role("paragraph")).to_have_text(["nothing inline here"])
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("form", name="Change password")).to_be_visible()
    assert problems == []


# -- the page in modules (issue 32) ------------------------------------------------------

STATIC = pathlib.Path(__file__).with_name("static")


def test_the_page_is_made_of_es_modules_that_load_under_its_content_security_policy(server, new_page):
    """index.html loads only module scripts; every static/*.js is under 600 lines, served as
    JavaScript, and one of the modules Chromium loads, without an error, under the page's policy."""
    base = f"http://127.0.0.1:{server.http_port}"
    files = sorted(STATIC.glob("*.js"))
    for path in files:
        assert len(path.read_text(encoding="utf-8").splitlines()) < 600, path.name
    problems, responses = [], []

    def watch(page):
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("requestfailed", lambda request: problems.append(f"{request.url}: {request.failure}"))
        page.on("response", lambda response: responses.append(response))
    page = new_page(before_load=watch)
    loaded = {kind: [response for response in responses if response.request.resource_type == kind]
              for kind in ("document", "script")}
    policy = dict(directive.strip().split(" ", 1)
                  for directive in loaded["document"][0].headers["content-security-policy"].split(";"))
    assert policy.get("script-src", policy["default-src"]) == "'self'"  # no inline script, no eval
    tags = page.evaluate("[...document.scripts].map((script) => [script.type, script.src, script.text])")
    assert tags and all(kind == "module" and src and not text for kind, src, text in tags), tags
    assert sorted(response.url for response in loaded["script"]) == [f"{base}/static/{js.name}" for js in files]
    for response in loaded["script"]:
        assert response.status == 200 and "javascript" in response.headers["content-type"], response.url
    assert problems == []  # each module found what it imports
    register(page, "modular")  # and they run: the page signs in and connects
    assert problems == []


# -- editing, moderation and administration (issue 22) ----------------------------------

def message_item(page, text):
    """The list item of the message that shows this text."""
    return page.get_by_role("list", name="Messages").get_by_role("listitem").filter(has_text=text)


def member_actions(page, name):
    """Open the actions menu of the member of this name in the Members pane, and return the menu."""
    page.get_by_role("complementary", name="Members").get_by_role(
        "button", name=f"Actions for {name}", exact=True).click()
    menu = page.get_by_role("menu", name=f"Actions for {name}", exact=True)
    expect(menu).to_be_visible()
    return menu


def test_an_author_edits_and_deletes_her_messages_and_the_room_sees_it_live(duo):
    ada, ben = duo.host, duo.guest
    drafts = duo.room("Drafts")
    create_room(ada, drafts)
    join(ben, drafts)
    say(ada, "teh first draft")
    say(ada, "a slip of the keys")
    expect(message_item(ben, "a slip of the keys")).to_be_visible()
    first_edit = message_item(ada, "teh first draft").get_by_role("button", name="Edit", exact=True)
    expect(first_edit).to_have_css("opacity", "0")  # shown only on hover or focus

    for _ in range(7):  # back from the composer: Delete, Edit, Pin, React, Reply of the last message, then Delete, Edit of the first
        ada.keyboard.press("Shift+Tab")
    expect(first_edit).to_be_focused()
    expect(first_edit).to_have_css("opacity", "1")
    ada.keyboard.press("Enter")
    editor = ada.get_by_role("textbox", name="Edit message")
    expect(editor).to_be_focused()
    expect(editor).to_have_value("teh first draft")
    ada.keyboard.press("Control+A")
    ada.keyboard.type("the first draft")
    ada.keyboard.press("Enter")
    expect(editor).to_have_count(0)
    expect(message_item(ada, "the first draft").get_by_role("button", name="Edit", exact=True)).to_be_focused()
    seen_by_ben = message_item(ben, "the first draft")
    expect(seen_by_ben.get_by_role("paragraph")).to_have_text("the first draft")
    expect(seen_by_ben).to_contain_text("(edited)")

    slip = message_item(ada, "a slip of the keys")
    slip.hover()
    slip.get_by_role("button", name="Delete", exact=True).click()
    confirm = slip.get_by_role("button", name="Confirm delete")
    expect(confirm).to_be_focused()
    expect(message_item(ben, "a slip of the keys")).to_have_count(1)  # asked, not yet deleted
    confirm.click()
    expect(message_item(ada, "a slip of the keys")).to_have_count(0)
    expect(message_item(ben, "a slip of the keys")).to_have_count(0)

    ben.reload()
    expect(ben.get_by_role("heading", name=drafts)).to_be_visible()
    expect(ben.get_by_role("list", name="Messages").get_by_role("paragraph")).to_have_text(["the first draft"])
    expect(message_item(ben, "the first draft")).to_contain_text("(edited)")


def test_only_the_author_edits_and_the_rooms_creator_deletes_anyones_message(duo):
    owner, guest = duo.host, duo.guest
    moderated = duo.room("Moderated")
    create_room(owner, moderated)
    join(guest, moderated)
    say(owner, "house rules")
    say(guest, "spam spam spam")
    own = message_item(guest, "spam spam spam")
    expect(own.get_by_role("button", name="Edit", exact=True)).to_have_count(1)
    expect(own.get_by_role("button", name="Delete", exact=True)).to_have_count(1)
    expect(message_item(guest, "house rules").get_by_role("button")).to_have_text(["Reply", "React", "Report"])  # no Edit, no Delete
    by_the_guest = message_item(owner, "spam spam spam")
    expect(by_the_guest.get_by_role("button", name="Delete", exact=True)).to_have_count(1)
    expect(by_the_guest.get_by_role("button", name="Edit", exact=True)).to_have_count(0)

    own.hover()  # an edit the server refuses shows its reason, and Escape gives the text back
    own.get_by_role("button", name="Edit", exact=True).click()
    guest.get_by_role("textbox", name="Edit message").fill("   ")
    guest.get_by_role("button", name="Save", exact=True).click()
    expect(guest.get_by_role("list", name="Messages").get_by_role("alert")).to_have_text(
        "content must be 1-4000 characters, not only spaces")
    guest.keyboard.press("Escape")
    expect(guest.get_by_role("textbox", name="Edit message")).to_have_count(0)
    expect(own.get_by_role("paragraph")).to_have_text("spam spam spam")

    by_the_guest.hover()
    by_the_guest.get_by_role("button", name="Delete", exact=True).click()
    by_the_guest.get_by_role("button", name="Confirm delete").click()
    expect(message_item(guest, "spam spam spam")).to_have_count(0)
    expect(guest.get_by_role("list", name="Messages").get_by_role("paragraph")).to_have_text(["house rules"])


def test_the_rooms_creator_removes_a_member_who_is_told_and_is_out_of_the_room(duo):
    owner, member = duo.host, duo.guest
    club = duo.room("Club")
    create_room(owner, club)
    join(member, club)
    members = owner.get_by_role("complementary", name="Members").get_by_role("listitem")
    remove_max = member_actions(owner, GUEST).get_by_role("menuitem", name="Remove", exact=True)
    expect(remove_max).to_be_visible()
    expect(members.filter(has_text=HOST).get_by_role("button")).to_have_count(0)  # not oneself
    expect(member_actions(member, HOST).get_by_role("menuitem", name="Remove")).to_have_count(0)

    remove_max.click()
    expect(member.get_by_role("list", name="Messages")).to_contain_text(f"You were removed from {club}.")
    expect(member.get_by_role("heading", name="Pick a room to start chatting")).to_be_visible()
    expect(member.get_by_role("textbox", name="Message", exact=True)).to_be_disabled()
    expect(members).to_have_count(1)
    room_id = owner.evaluate("state.joinedRoomId")
    listed = duo.api.get(f"/rooms/{room_id}/members", token=session_token(owner)).data["members"]
    assert [m["username"] for m in listed] == [HOST]


def test_an_admin_disables_a_user_whose_page_is_signed_out_and_enables_them_again(server, new_page, api):
    make_admin(server, api.register("root")[1])
    user = new_page()
    with user.expect_response("**/api/v1/users/me"):
        register(user, "vic")
    expect(user.get_by_role("button", name="Admin", exact=True)).to_be_hidden()  # not for users

    page = new_page()
    log_in_on_page(page, "root")
    page.get_by_role("button", name="Admin", exact=True).click()
    view = page.get_by_role("dialog", name="Admin")
    expect(view.get_by_role("heading", name="Admin")).to_be_visible()
    vic = view.get_by_role("listitem").filter(has_text="vic")
    vic.get_by_role("button", name="Disable").click()
    expect(user.get_by_role("alert")).to_have_text("Your session has ended. Please log in again.")
    expect(user.get_by_role("button", name="Log in")).to_be_visible()
    expect(vic).to_contain_text("disabled")
    assert login(api, "vic").status == 403

    vic.get_by_role("button", name="Enable").click()
    expect(vic.get_by_role("button", name="Disable")).to_be_visible()
    assert login(api, "vic").status == 200


def test_an_admin_makes_another_admin_and_sets_their_password(server, new_page, api):
    make_admin(server, api.register("chief")[1])
    api.register("deputy")
    page = new_page()
    log_in_on_page(page, "chief")
    page.reload()  # the role is asked for again when the page loads signed in
    page.get_by_role("button", name="Admin", exact=True).click()
    view = page.get_by_role("dialog", name="Admin")
    chief = view.get_by_role("listitem").filter(has_text="chief")
    deputy = view.get_by_role("listitem").filter(has_text="deputy")
    chief.get_by_role("button", name="Make user").click()
    expect(view.get_by_role("alert")).to_have_text("At least one admin must remain")

    deputy.get_by_role("button", name="Make admin").click()
    expect(deputy.get_by_role("button", name="Make user")).to_be_visible()
    expect(view.get_by_role("alert")).to_be_hidden()
    deputy.get_by_role("button", name="Set password").click()
    expect(deputy.get_by_label("New password")).to_be_focused()
    deputy.get_by_label("New password").fill("a fresh passphrase")
    deputy.get_by_role("button", name="Save password").click()
    expect(view.get_by_role("status")).to_contain_text("has a new password")
    reply = login(api, "deputy", "a fresh passphrase")
    assert reply.status == 200
    assert api.get("/users/me", token=reply.data["token"]).data["user"]["role"] == "admin"


# -- private rooms and direct messages (issue 23) ------------------------------------------

def rooms_panel(page):
    return page.get_by_role("navigation", name="Rooms")


def test_a_private_room_is_seen_only_by_the_people_its_creator_adds(new_page, api):
    ada, bob, cleo = new_page(), new_page(), new_page()
    for page, name in ((ada, "ada"), (bob, "bob"), (cleo, "cleo")):
        register(page, name)  # all three are connected when the room is made
    create_room(ada, "Hideout", private=True)
    expect(rooms_panel(ada).get_by_role("button", name="Hideout")).to_contain_text("private")

    ada.get_by_role("button", name="Add member").click()
    form = ada.get_by_role("form", name="Add member")
    expect(form.get_by_label("Username")).to_be_focused()
    form.get_by_label("Username").fill("nobody")
    form.get_by_role("button", name="Add", exact=True).click()
    expect(form.get_by_role("alert")).to_contain_text("Nobody is called")
    form.get_by_label("Username").fill("bob")
    form.get_by_role("button", name="Add", exact=True).click()
    expect(form.get_by_role("status")).to_contain_text("was added")
    members = ada.get_by_role("complementary", name="Members").get_by_role("listitem")
    expect(members.filter(has_text="bob")).to_be_visible()

    hideout = rooms_panel(bob).get_by_role("button", name="Hideout")
    expect(hideout).to_be_visible()  # live: room_added, no reload
    hideout.click()
    expect(bob.get_by_role("heading", name="Hideout")).to_be_visible()
    say(bob, "thanks for having me")
    expect(message_item(ada, "thanks for having me")).to_be_visible()
    say(ada, "welcome in")
    expect(message_item(bob, "welcome in")).to_be_visible()

    expect(cleo.get_by_text("No rooms yet")).to_be_visible()  # nothing arrived live
    cleo.reload()
    expect(cleo.get_by_text("No rooms yet")).to_be_visible()  # nor is anything listed on loading
    expect(rooms_panel(cleo).get_by_role("button", name="Hideout")).to_have_count(0)
    assert api.get("/rooms", token=session_token(cleo)).data["rooms"] == []


def test_message_opens_a_direct_room_that_both_see_under_direct_messages(new_page, api):
    ada, bob, cleo = new_page(), new_page(), new_page()
    for page, name in ((ada, "ada"), (bob, "bob"), (cleo, "cleo")):
        register(page, name)
    create_room(ada, "Lobby")
    join(bob, "Lobby")
    members = ada.get_by_role("complementary", name="Members").get_by_role("listitem")
    expect(members.filter(has_text="ada").get_by_role("button")).to_have_count(0)  # not oneself
    member_actions(ada, "bob").get_by_role("menuitem", name="Message", exact=True).click()
    expect(ada.get_by_role("heading", name="bob", exact=True)).to_be_visible()  # the conversation is open

    for page, other in ((ada, "bob"), (bob, "ada")):  # each sees the other's name, bob without a reload
        expect(page.get_by_role("heading", name="Direct messages")).to_be_visible()
        expect(page.get_by_role("region", name="Direct messages").get_by_role("button")).to_have_text([other])
    expect(rooms_panel(bob).get_by_role("button", name="ada")).to_have_count(1)  # not among the rooms too
    say(ada, "just between us")
    bob.get_by_role("region", name="Direct messages").get_by_role("button", name="ada").click()
    expect(message_item(bob, "just between us")).to_be_visible()
    say(bob, "my lips are sealed")
    expect(message_item(ada, "my lips are sealed")).to_be_visible()

    expect(cleo.get_by_text("No direct messages")).to_be_visible()
    expect(cleo.get_by_role("region", name="Direct messages").get_by_role("listitem")).to_have_count(0)
    assert [room["name"] for room in api.get("/rooms", token=session_token(cleo)).data["rooms"]] == ["Lobby"]


# -- embedding (issue 26) --------------------------------------------------------------------

def test_a_token_in_the_url_fragment_signs_the_page_in_and_leaves_the_address_bar(server, new_page):
    user = server.create_user("host_user", "password123")
    token = server.token_for(user["id"])
    page = new_page(path=f"/#token={token}")
    expect(page.locator("#whoami")).to_have_text("host_user")
    expect(page.locator("#status")).to_have_text("Connected")
    assert page.url == f"http://127.0.0.1:{server.http_port}/"
    assert session_token(page) == token  # kept as a login's token is
    page.go_back()  # the entry was replaced, not pushed: Back does not bring the token back
    assert "token" not in page.url


def test_a_bad_token_in_the_url_fragment_falls_back_to_the_login_form(server, new_page):
    page = new_page(path="/#token=not.a.token")
    expect(page.get_by_role("alert")).to_have_text("Your session has expired. Please log in again.")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    assert page.url == f"http://127.0.0.1:{server.http_port}/"


class HostPage(http.server.BaseHTTPRequestHandler):
    """Another site's page (its server's `page`), which shows the chat in a frame."""

    def do_GET(self):
        body = self.server.page.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass  # no request lines in the test's output


@contextlib.contextmanager
def host_site():
    """A site of another origin (its own port) serving HostPage, stopped and closed after the block."""
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HostPage)
    site.page = ""
    thread = threading.Thread(target=site.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"host-site-{site.server_port}")
    thread.start()
    try:
        yield site
    finally:
        site.shutdown()
        thread.join()
        site.server_close()


def test_only_the_allowed_origin_shows_the_page_in_a_frame(browser, serve_with):
    # The allowed origin's port is known only once its site runs, so the chat
    # starts here, after it, rather than from the `server` fixture.
    with host_site() as tool, host_site() as stranger:
        tool_origin = f"http://127.0.0.1:{tool.server_port}"
        with serve_with(frame_ancestors=[tool_origin]) as chat:
            tool.page = stranger.page = f'<iframe title="Chat" src="http://127.0.0.1:{chat.http_port}/"></iframe>'
            context = browser.new_context()
            try:
                page = context.new_page()
                page.goto(f"{tool_origin}/")
                framed = page.frame_locator('iframe[title="Chat"]')
                expect(framed.get_by_role("button", name="Log in")).to_be_visible()

                page.goto(f"http://127.0.0.1:{stranger.server_port}/")  # returns after the frame's load event
                assert page.main_frame.child_frames[0].url.startswith("chrome-error://")  # refused
                expect(framed.get_by_role("button", name="Log in")).to_have_count(0)
            finally:
                context.close()


def test_the_page_chats_through_nginx_on_one_https_port(browser, behind_nginx):
    """The README's deployment: nginx with TLS in front, the WebSocket at wss://.../ws,
    which the page learns from GET /api/v1/info (--public-ws-url)."""
    port, _ = behind_nginx
    context = browser.new_context(ignore_https_errors=True)  # the test's own certificate
    try:
        page = context.new_page()
        page.goto(f"https://127.0.0.1:{port}/")
        register(page, "behind_tls")  # waits for "Connected": the socket is open through nginx
        create_room(page, "Over TLS")
        say(page, "through the proxy")
        expect(page.get_by_role("list", name="Messages", exact=True)).to_contain_text(
            "through the proxy")
    finally:
        context.close()


# -- never miss what matters: unread, notifications, search, several devices (issue 24) ----

def room_button(page, name):
    """A room's button in the rooms pane (its name, counts and badges are its accessible name)."""
    return rooms_panel(page).get_by_role("button", name=name)


def room_id_of(page, name):
    return page.evaluate("(name) => state.rooms.find((room) => room.name === name).id", name)


def test_two_devices_of_one_user_stay_connected_and_reading_on_one_clears_the_others_badges(new_page, api):
    laptop, phone = new_page(), new_page()
    register(laptop, "alice")
    create_room(laptop, "Homework")
    create_room(laptop, "Lounge")  # the laptop stays in the Lounge
    log_in_on_page(phone, "alice")  # a second session of hers, in no room
    token, _, _ = api.register("bob")
    homework = room_id_of(laptop, "Homework")
    api.post("/rooms/join", {"room_id": homework}, token=token)
    for text in ("is the homework due Friday?", "@alice do you know?", "or Monday?"):
        api.post("/messages", {"room_id": homework, "content": text}, token=token)

    for page in (laptop, phone):
        expect(room_button(page, "Homework").get_by_role("img", name="3 unread", exact=True)).to_be_visible()
        expect(room_button(page, "Homework").get_by_role("img", name="1 mentions", exact=True)).to_be_visible()
        expect(room_button(page, "Homework").locator(".room-name")).to_have_css("font-weight", "700")
        expect(page).to_have_title("(3) SwiftChat")
        expect(room_button(page, "Lounge").get_by_role("img")).to_have_count(0)

    room_button(laptop, "Homework").click()  # reading on the laptop...
    expect(message_item(laptop, "or Monday?")).to_be_visible()
    expect(laptop).to_have_title("SwiftChat")
    expect(room_button(phone, "Homework").get_by_role("img")).to_have_count(0)  # ...clears the phone
    expect(phone).to_have_title("SwiftChat")
    expect(room_button(phone, "Homework").locator(".room-name")).to_have_css("font-weight", "400")

    latest = api.post("/messages", {"room_id": homework, "content": "Friday, then"}, token=token).data["id"]
    expect(message_item(laptop, "Friday, then")).to_be_visible()  # read as it arrives, on both
    wait_until_in_page(phone, "(id) => state.rooms.find((room) => room.name === 'Homework').last_read_id === id",
                       latest)
    expect(room_button(phone, "Homework").get_by_role("img")).to_have_count(0)
    expect(phone).to_have_title("SwiftChat")
    rooms = api.get("/rooms", token=session_token(phone)).data["rooms"]
    assert [(room["name"], room["unread_count"], room["mention_count"]) for room in rooms] == [
        ("Homework", 0, 0), ("Lounge", 0, 0)]
    for page in (laptop, phone):  # neither session pushed the other out
        expect(page.locator("#status")).to_have_text("Connected")
        expect(page.get_by_role("alert")).to_be_hidden()


# The test hides the tab (window.tabHidden, then a visibilitychange event)
# and reads what the page showed (window.shown) and how often it asked for
# permission (window.permissionAsked).
SPY_ON_NOTIFICATIONS = """
window.tabHidden = false;
Object.defineProperty(Document.prototype, 'hidden', {configurable: true, get: () => window.tabHidden});
Object.defineProperty(Document.prototype, 'visibilityState', {configurable: true,
    get: () => (window.tabHidden ? 'hidden' : 'visible')});
window.shown = [];
window.permissionAsked = 0;
const BrowsersNotification = window.Notification;
window.Notification = class extends BrowsersNotification {
    constructor(title, options) {
        super(title, options);
        window.shown.push(this);
    }
    static get permission() {
        return BrowsersNotification.permission;
    }
    static requestPermission() {
        window.permissionAsked += 1;
        return BrowsersNotification.requestPermission();
    }
};
"""


def hide_tab(page, hidden):
    page.evaluate("(hidden) => { window.tabHidden = hidden; document.dispatchEvent(new Event('visibilitychange')); }",
                  hidden)


def notifications_shown(page):
    return page.evaluate("window.shown.map((shown) => [shown.title, shown.body])")


def test_a_mention_or_direct_message_in_a_hidden_tab_is_a_notification_once_turned_on(new_page, api):
    page = new_page(permissions=["notifications"],
                    before_load=lambda page: page.add_init_script(SPY_ON_NOTIFICATIONS))
    register(page, "carol")
    create_room(page, "Staff")
    create_room(page, "Lounge")  # carol stays in the Lounge
    token, _, _ = api.register("dave")
    staff = room_id_of(page, "Staff")
    api.post("/rooms/join", {"room_id": staff}, token=token)
    hide_tab(page, True)
    api.post("/messages", {"room_id": staff, "content": "@carol are you there?"}, token=token)
    expect(room_button(page, "Staff").get_by_role("img", name="1 mentions", exact=True)).to_be_visible()
    assert notifications_shown(page) == [] and page.evaluate("window.permissionAsked") == 0  # not on load

    page.get_by_role("button", name="Enable notifications").click()
    expect(page.get_by_role("button", name="Turn off notifications")).to_be_visible()
    assert page.evaluate("window.permissionAsked") == 1
    api.post("/messages", {"room_id": staff, "content": "@Carol can you check the rota?"}, token=token)
    api.post("/messages", {"room_id": staff, "content": "nobody named here"}, token=token)
    expect(room_button(page, "Staff").get_by_role("img", name="3 unread", exact=True)).to_be_visible()
    direct = api.post("/direct", {"user_id": page.evaluate("state.user.id")}, token=token).data["id"]
    api.post("/messages", {"room_id": direct, "content": "just between us"}, token=token)
    wait_until_in_page(page, "window.shown.length === 2")
    assert notifications_shown(page) == [["dave mentioned you in Staff", "@Carol can you check the rota?"],
                                         ["dave sent you a message", "just between us"]]
    expect(page).to_have_title("(4) SwiftChat")

    page.evaluate("window.shown[0].dispatchEvent(new Event('click'))")  # opens the room at the mention
    hide_tab(page, False)
    expect(page.get_by_role("heading", name="Staff")).to_be_visible()
    mention = message_item(page, "can you check the rota?")
    expect(mention).to_be_focused()
    expect(mention.locator("mark")).to_have_text("@Carol")
    expect(room_button(page, "Staff").get_by_role("img")).to_have_count(0)  # read, now that it is seen
    expect(page).to_have_title("(1) SwiftChat")  # the direct message is still unread

    api.post("/messages", {"room_id": staff, "content": "@carol thanks!"}, token=token)
    expect(message_item(page, "thanks!")).to_be_visible()  # a visible tab shows it; no notification
    assert len(notifications_shown(page)) == 2


def test_messages_show_links_emphasis_code_and_mentions_and_never_run_what_they_hold(new_page, api):
    page = new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    register(page, "zoe")
    create_room(page, "Formatting")
    token, _, _ = api.register("yan")
    room_id = page.evaluate("state.joinedRoomId")
    api.post("/rooms/join", {"room_id": room_id}, token=token)
    hostile = ["[x](javascript:alert(1))", "javascript:alert(1)", "<img src=x onerror=alert(1)>", "**<b>x</b>**"]
    for text in ("see https://example.com/a_(b)?q=1. with **bold**, *italic* and `x < y`",
                 "```\n**not bold** https://inside.example\n```",
                 "hey @Zoe, not @zoey nor mail@zoe", *hostile):
        api.post("/messages", {"room_id": room_id, "content": text}, token=token)
    messages = page.get_by_role("list", name="Messages")

    def shown_as_it_should_be():
        expect(message_item(page, "<b>x</b>").locator("strong")).to_have_text("<b>x</b>")  # the last one
        link = messages.get_by_role("link")
        expect(link).to_have_text(["https://example.com/a_(b)?q=1"])  # the only link: none in the code
        expect(link).to_have_attribute("href", "https://example.com/a_(b)?q=1")
        expect(link).to_have_attribute("target", "_blank")
        expect(link).to_have_attribute("rel", "noopener noreferrer")
        first = message_item(page, "see https://")
        expect(first.locator("strong")).to_have_text("bold")
        expect(first.locator("em")).to_have_text("italic")
        expect(first.locator("code")).to_have_text("x < y")
        expect(messages.locator("pre")).to_have_text(["**not bold** https://inside.example"])
        expect(messages.locator("mark")).to_have_text(["@Zoe"])  # only her own name, only as a word
        for text in hostile[:3]:
            expect(messages.get_by_text(text, exact=True)).to_have_count(1)
        assert messages.locator("img, b, script, iframe").count() == 0

    shown_as_it_should_be()  # live
    page.reload()
    expect(page.get_by_role("heading", name="Formatting")).to_be_visible()
    shown_as_it_should_be()  # from history

    say(page, "plain words for now")
    edited = message_item(page, "plain words for now")
    expect(edited).to_be_visible()
    message_id = edited.get_attribute("data-id")
    reply = api.call("PATCH", f"/messages/{message_id}", {"content": "now **bold** and https://example.org/x"},
                     token=session_token(page))
    assert reply.status == 200
    expect(message_item(page, "now bold").locator("strong")).to_have_text("bold")  # re-rendered alike
    expect(message_item(page, "now bold").get_by_role("link")).to_have_attribute("href", "https://example.org/x")
    assert dialogs == []


def test_search_shows_room_author_time_and_words_and_opens_the_room_at_the_message(duo):
    api = duo.api  # the shared server has no flood limits
    token, _, _ = api.register("teacher")
    homework = duo.room("Homework")
    room_id = api.create_room(token, homework)
    api.post("/messages", {"room_id": room_id, "content": "The homework link is https://example.com/hw4"},
             token=token)
    for n in range(120):  # the message is far from the newest page
        api.post("/messages", {"room_id": room_id, "content": f"filler {n}"}, token=token)
    # New messages are indexed within a second.
    wait_until(lambda: api.get("/search?q=filler+119", token=token).data["count"], timeout=10)
    page = duo.guest  # the student: not a member of the room
    box = page.get_by_role("search").get_by_label("Search messages")
    box.fill("nothing-like-this")
    box.press("Enter")
    results = page.get_by_role("region", name="Search results")
    expect(results.get_by_role("status")).to_have_text("No messages match \u2068nothing-like-this\u2069")
    box.fill("filler")
    box.press("Enter")
    expect(results.get_by_role("button", name=re.compile("filler"))).to_have_count(20)  # newest first
    expect(results.get_by_role("button", name=re.compile("filler")).first).to_contain_text("filler 119")
    results.get_by_role("button", name="More results").click()
    expect(results.get_by_role("button", name=re.compile("filler"))).to_have_count(40)
    expect(results.get_by_role("button", name=re.compile("filler")).last).to_contain_text("filler 80")

    box.fill("HOMEWORK lin*")
    box.press("Enter")
    result = results.get_by_role("button", name=re.compile("homework link is"))
    expect(result).to_have_count(1)
    expect(result.locator(".meta")).to_contain_text(f"{homework} · teacher · ")
    expect(result.locator("time")).to_have_count(1)
    expect(result.locator("mark")).to_have_text(["homework", "link"])

    result.click()
    expect(page.get_by_role("heading", name=homework)).to_be_visible()
    found = message_item(page, "The homework link is")
    expect(found).to_be_focused()
    expect(found).to_be_in_viewport()
    expect(message_item(page, "filler 119")).to_have_count(1)  # and what came after it, to the newest
    say(page, "found it, thanks")  # joined: a member now
    expect(message_item(page, "found it, thanks")).to_be_visible()


@pytest.mark.parametrize("server_options", [NO_LIMITS])
def test_the_room_list_reaches_past_the_first_100_rooms(new_page, api):
    token, _, _ = api.register("founder")
    for n in range(1, 151):
        api.create_room(token, f"Room {n:03}")
    page = new_page()
    register(page, "explorer")
    expect(rooms_panel(page).get_by_role("button", name=re.compile(r"^Room \d{3}"))).to_have_count(150)
    room_button(page, "Room 150").click()
    expect(page.get_by_role("heading", name="Room 150")).to_be_visible()
    say(page, "made it to the end")
    expect(message_item(page, "made it to the end")).to_be_visible()


def test_member_counts_in_the_room_list_keep_up_with_the_member_list(duo):
    owner, guest = duo.host, duo.guest
    club = duo.room("Club")
    create_room(owner, club)
    expect(room_button(owner, club)).to_contain_text("1 member")
    join(guest, club)
    for page in (owner, guest):  # the one who joined counts herself too
        expect(room_button(page, club)).to_contain_text("2 members")
    guest.get_by_role("button", name="Leave").click()
    for page in (owner, guest):
        expect(room_button(page, club)).to_contain_text("1 member")
    join(guest, club)
    expect(room_button(owner, club)).to_contain_text("2 members")
    members = owner.get_by_role("complementary", name="Members").get_by_role("listitem")
    member_actions(owner, GUEST).get_by_role("menuitem", name="Remove", exact=True).click()
    expect(members).to_have_count(1)
    expect(room_button(owner, club)).to_contain_text("1 member")


def test_someone_who_types_on_after_sending_still_shows_as_typing(new_page):
    ann, ben = new_page(), new_page()
    register(ann, "ann")
    create_room(ann, "Chatter")
    register(ben, "ben")
    join(ben, "Chatter")
    ann.evaluate("""() => {
        window.seen = [];  // after each change: [is ben's message shown, the typing line]
        new MutationObserver(() => window.seen.push([
            $('messages').textContent.includes('first thought'), $('typing').textContent,
        ])).observe($('room-panel'), {childList: true, subtree: true, characterData: true});
    }""")
    composer = ben.get_by_role("textbox", name="Message", exact=True)
    composer.press_sequentially("first thought")
    expect(ann.locator("#typing")).to_have_text("ben is typing…")
    composer.press("Enter")
    composer.press_sequentially("and a second one, typed at once", delay=90)  # about 3 s of typing
    expect(message_item(ann, "first thought")).to_be_visible()
    expect(ann.locator("#typing")).to_have_text("ben is typing…")
    seen = ann.evaluate("window.seen")
    assert [True, "ben is typing…"] in seen and [True, ""] not in seen, seen  # never gone while he typed on

    composer.press("Enter")
    expect(message_item(ann, "and a second one")).to_be_visible()
    expect(ann.locator("#typing")).to_have_text("")  # he stopped: the line goes soon after


# -- links that cannot pass for another site, blocking, reports, a new password's session ---------

def test_a_link_is_isolated_and_a_look_alike_host_shows_its_punycode_beside_it(duo):
    page = duo.host
    create_room(page, duo.room("Links"))
    say(page, "real https://example.com/a and fake http://ex\u0430mple.com/login")  # a Cyrillic а
    links = message_item(page, "real https://").get_by_role("link")
    expect(links).to_have_count(2)
    real, fake = links.nth(0), links.nth(1)
    expect(real).to_have_text("https://example.com/a")  # ASCII: nothing beside it
    expect(real.locator("bdi")).to_have_text(["https://example.com/a"])
    expect(fake).to_have_text("http://ex\u0430mple.com/login (xn--exmple-4nf.com)")
    expect(fake.locator("bdi")).to_have_text(["http://ex\u0430mple.com/login", "xn--exmple-4nf.com"])
    expect(fake).to_have_attribute("href", "http://xn--exmple-4nf.com/login")


def members_of(page):
    return page.get_by_role("complementary", name="Members").get_by_role("listitem")


def test_a_blocked_users_messages_wait_behind_a_button_live_and_in_history_until_unblocked(duo):
    sue, tom = duo.host, duo.guest
    class_5b = duo.room("Class 5B")
    create_room(sue, class_5b)
    join(tom, class_5b)
    say(tom, "before the block")
    expect(message_item(sue, "before the block")).to_be_visible()
    expect(members_of(sue).filter(has_text=HOST).get_by_role("button")).to_have_count(0)  # not oneself

    member_actions(sue, GUEST).get_by_role("menuitem", name="Block", exact=True).click()
    expect(sue.get_by_role("button", name=f"Actions for {GUEST}", exact=True)).to_be_focused()
    messages = sue.get_by_role("list", name="Messages")
    hidden = messages.get_by_role("button", name="Blocked message - show", exact=True)
    expect(hidden).to_have_count(1)
    say(tom, "said while blocked")  # live
    expect(hidden).to_have_count(2)
    expect(messages).not_to_contain_text("before the block")
    expect(messages).not_to_contain_text("said while blocked")

    sue.reload()  # and in history
    expect(sue.get_by_role("heading", name=class_5b)).to_be_visible()
    expect(hidden).to_have_count(2)
    expect(messages).not_to_contain_text("said while blocked")
    hidden.last.click()
    expect(messages.get_by_role("paragraph")).to_have_text(["said while blocked"])
    expect(hidden).to_have_count(1)  # only the one pressed is shown

    member_actions(sue, GUEST).get_by_role("menuitem", name="Unblock", exact=True).click()
    expect(hidden).to_have_count(0)
    expect(messages.get_by_role("paragraph")).to_have_text(["before the block", "said while blocked"])
    assert duo.api.get("/users/me/blocked", token=session_token(sue)).data["users"] == []


def report_message(page, text, reason):
    """Report the message that shows this text, and return the report dialog."""
    item = message_item(page, text)
    item.hover()
    item.get_by_role("button", name="Report", exact=True).click()
    dialog = page.get_by_role("dialog", name="Report message")
    expect(dialog.get_by_label("Reason")).to_be_focused()
    dialog.get_by_label("Reason").fill(reason)
    dialog.get_by_role("button", name="Send report").click()
    return dialog


def reports_button(page):
    return page.get_by_role("button", name=re.compile(r"^Reports\b"))


def test_a_report_reaches_the_rooms_creator_live_who_resolves_it_and_the_count_drops(duo):
    teacher, student = duo.host, duo.guest  # the guest makes no room: she moderates none
    api = duo.api
    biology = duo.room("Biology")
    create_room(teacher, biology)
    expect(reports_button(teacher)).to_have_accessible_name("Reports, 0 open")
    token, _, _ = api.register("troll")
    room_id = teacher.evaluate("state.joinedRoomId")
    api.post("/rooms/join", {"room_id": room_id}, token=token)
    join(student, biology)
    expect(reports_button(student)).to_be_hidden()  # a student moderates no room
    api.post("/messages", {"room_id": room_id, "content": "you are all fools"}, token=token)
    say(student, "my own words")
    expect(message_item(student, "my own words").get_by_role("button", name="Report")).to_have_count(0)

    dialog = report_message(student, "you are all fools", "insults the class")
    expect(dialog).to_be_hidden()
    expect(student.get_by_role("list", name="Messages")).to_contain_text("Report received")
    expect(reports_button(teacher)).to_have_accessible_name("Reports, 1 open")  # live
    expect(reports_button(teacher)).to_have_text("Reports 1")

    report_message(student, "you are all fools", "and again")
    expect(dialog.get_by_role("alert")).to_have_text("Already reported")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()

    reports_button(teacher).click()
    view = teacher.get_by_role("dialog", name="Reports", exact=True)
    report = view.get_by_role("listitem")
    expect(report).to_have_count(1)
    for shown in (f"{biology} · troll", "you are all fools", f"Reported by {GUEST} · ", "insults the class"):
        expect(report).to_contain_text(shown)
    expect(report.locator("time")).to_have_count(1)
    report.get_by_role("button", name="Resolve", exact=True).click()
    expect(report).to_have_count(0)
    expect(view).to_contain_text("No open reports.")
    expect(reports_button(teacher)).to_have_accessible_name("Reports, 0 open")
    [resolved] = api.get("/reports?status=resolved", token=session_token(teacher)).data["reports"]
    assert resolved["reason"] == "insults the class" and resolved["reporter"]["username"] == GUEST


def test_an_admin_sees_a_direct_messages_report_live_and_dismisses_it(server, new_page, api):
    make_admin(server, api.register("principal")[1])
    admin, student = new_page(), new_page()
    log_in_on_page(admin, "principal")
    expect(reports_button(admin)).to_have_accessible_name("Reports, 0 open")
    reports_button(admin).click()
    view = admin.get_by_role("dialog", name="Reports", exact=True)
    expect(view).to_contain_text("No open reports.")  # open while the report comes in

    token, user_id, _ = api.register("pest")
    register(student, "lily")
    room_id = api.post("/direct", {"user_id": student.evaluate("state.user.id")}, token=token).data["id"]
    api.post("/messages", {"room_id": room_id, "content": "nobody likes you"}, token=token)
    student.get_by_role("region", name="Direct messages").get_by_role("button", name="pest").click()
    report_message(student, "nobody likes you", "")  # a reason may be left out

    report = view.get_by_role("listitem")
    expect(report).to_have_count(1)
    expect(report).to_contain_text("nobody likes you")
    expect(report).to_contain_text("No reason given")
    expect(reports_button(admin)).to_have_accessible_name("Reports, 1 open")
    report.get_by_role("button", name="Dismiss", exact=True).click()
    expect(report).to_have_count(0)
    expect(reports_button(admin)).to_have_accessible_name("Reports, 0 open")
    view.get_by_label("Show").select_option("Dismissed")
    expect(report).to_have_count(1)
    expect(report).to_contain_text("Dismissed")
    expect(report.get_by_role("button")).to_have_count(0)


def test_a_new_passwords_session_reconnects_the_page_even_when_the_old_socket_closes_first(server, new_page, api):
    page = new_page()
    sockets, held = [], []
    page.on("websocket", lambda socket: sockets.append(socket))
    register(page, "nora")
    create_room(page, "Night shift")
    token, _, _ = api.register("owl")
    friend, _ = in_room(api, server, page.evaluate("state.joinedRoomId"), token)
    page.route("**/api/v1/auth/password", lambda route: held.append(route))
    page.get_by_role("button", name="Change password").click()
    page.get_by_label("Current password", exact=True).fill("password123")
    page.get_by_label("New password", exact=True).fill("a much better passphrase")
    page.get_by_role("button", name="Save password").click()
    # Until the password change is sent: the route's handler runs once Playwright hears of it.
    wait_until(lambda: held, timeout=10, pause=playwright_pause(page))
    answer = held[0].fetch()  # the server changes the password and ends the page's session...
    wait_until_in_page(page, "state.awaitingSession")  # ...whose socket closes (4001) before the answer arrives
    held[0].fulfill(response=answer)

    expect(page.get_by_role("form", name="Change password").get_by_role("status")).to_have_text("Password changed")
    expect(page.locator("#status")).to_have_text("Connected")
    assert len(sockets) == 2 and sockets[0].is_closed()
    assert session_token(page) == answer.json()["data"]["token"]
    friend.send({"type": "send_message", "content": "still up?"})
    expect(message_item(page, "still up?")).to_be_visible()  # back in the room
    say(page, "wide awake")
    heard(friend, "wide awake")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.locator("#error")).to_be_hidden()
    friend.close()
