"""The browser chat page, driven in headless Chromium by Playwright.

These tests use Debian's Chromium (apt-get install chromium); Playwright
downloads no browser here. Without it they skip and say how to install it.
"""

import os
import shutil

import pytest

from conftest import ChatClient


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip("Chromium is not installed: run 'apt-get install chromium' to run the browser tests",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-dev.txt")
expect = sync_api.expect

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    # Without these Chromium keeps calling out to Google's hosts, which this
    # machine's closed network refuses.
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, server):
    """Open the chat page in a fresh browser context (its own sessionStorage)."""
    contexts = []

    def open_page(viewport=None):
        context = browser.new_context(viewport=viewport or {"width": 1100, "height": 800})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto(f"http://127.0.0.1:{server.http_port}/")
        return page

    yield open_page
    for context in contexts:
        context.close()


def register(page, username, password="password123"):
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#register-button")
    expect(page.locator("#whoami")).to_have_text(username)
    expect(page.locator("#status")).to_have_text("Connected")


def create_room(page, name, description=""):
    page.fill("#room-name", name)
    page.fill("#room-description", description)
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


def test_the_page_is_served_with_its_assets(server, new_page):
    page = new_page()
    expect(page).to_have_title("SwiftChat")
    expect(page.locator("#login-form")).to_be_visible()
    response = page.request.get(f"http://127.0.0.1:{server.http_port}/static/chat.js")
    assert response.ok and "javascript" in response.headers["content-type"]


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


def test_a_message_is_rendered_as_text_never_as_html(new_page):
    page = new_page()
    register(page, "mallory")
    create_room(page, "Sandbox")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    attack = "<img src=x onerror=alert(1)>"
    say(page, attack)
    expect(page.locator(".message .content").last).to_have_text(attack)
    page.reload()  # and from history, too
    expect(page.locator(".message .content").last).to_have_text(attack)
    assert page.locator("#messages img").count() == 0
    assert dialogs == []


def test_the_page_reconnects_and_rejoins_after_the_server_drops_the_socket(server, new_page):
    page, other = new_page(), new_page()
    register(page, "erin")
    create_room(page, "Resilient")
    register(other, "frank")
    join(other, "Resilient")
    user_id = page.evaluate("JSON.parse(sessionStorage.getItem('swiftchat.user')).id")

    def drop_connection():
        server.hub.clients[user_id].websocket.transport.abort()  # as if the network failed
    server.websocket.call(drop_connection)
    expect(page.locator("#error")).to_contain_text("Reconnecting")
    expect(page.locator("#status")).to_have_text("Connected")
    expect(other.locator("#messages")).to_contain_text("erin joined")

    say(other, "welcome back")
    expect(page.locator(".message").last).to_contain_text("welcome back")


def test_a_message_both_live_and_in_the_history_being_loaded_is_shown_once(server, new_page, api):
    """Live frames that arrive while history loads wait for it; one in both is shown once."""
    token, _, _ = api.register("olga")
    room_id = api.create_room(token, "Overlap")
    speaker = ChatClient(server.ws_port)
    speaker.request({"type": "auth", "token": token})
    speaker.request({"type": "join_room", "room_id": room_id})
    page = new_page()
    register(page, "pavel")
    held = []  # the page's history request, held until the live message has arrived
    page.route("**/api/v1/messages?*", lambda route: held.append(route))
    with page.expect_request("**/api/v1/messages?*"):
        page.locator("#room-list button", has_text="Overlap").click()
    speaker.recv_type("user_joined")
    assert speaker.request({"type": "send_message", "content": "said during the load"})["success"]
    page.wait_for_function("state.pendingLive && state.pendingLive.length === 1")
    held[0].continue_()  # the history now holds the same message
    expect(page.locator(".message .content")).to_have_text(["said during the load"])
    speaker.close()


def test_the_creator_edits_the_description_and_deletes_the_room(new_page):
    owner, guest = new_page(), new_page()
    register(owner, "olga")
    create_room(owner, "Temporary", "short-lived")
    register(guest, "gus")
    join(guest, "Temporary")
    expect(guest.locator("#creator-tools")).to_be_hidden()

    owner.fill("#new-description", "even shorter")
    owner.press("#new-description", "Enter")
    expect(owner.locator("#room-about")).to_have_text("even shorter")

    owner.once("dialog", lambda dialog: dialog.accept())
    owner.click("#delete-room")
    expect(guest.locator("#messages")).to_contain_text("This room was deleted")
    expect(guest.locator("#room-list")).not_to_contain_text("Temporary")
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


def test_the_api_documents_browser_snippet_works_unchanged(server, new_page, api):
    """The seed's JavaScript example, with only the port and token filled in."""
    token, user_id, _ = api.register()
    room_id = api.create_room(token)
    page = new_page()
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
