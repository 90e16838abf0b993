"""A teacher's page (issue #34): the Admin view's list and the login form, in headless Chromium.

Each control is found by its role and accessible name, as a screen reader
user would find it. Debian's Chromium (apt-get install chromium) is driven
by Playwright, which downloads no browser here; without it these tests
skip and say how to install it.
"""

import os
import shutil

import pytest

from conftest import make_admin

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

    def open_page():
        context = browser.new_context(viewport={"width": 1100, "height": 800})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto(f"http://127.0.0.1:{server.http_port}/")
        return page

    yield open_page
    for context in contexts:
        context.close()


def log_in(page, username, password="password123"):
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#whoami")).to_have_text(username)


def test_the_admin_view_lists_users_by_name_and_a_filter_narrows_them(server, api, new_page):
    for name in ("zoe", "pupil10", "Ben", "pupil2", "adam"):  # the server lists them as made
        api.register(name)
    make_admin(server, api.register("teacher")[1])
    page = new_page()
    log_in(page, "teacher")
    page.get_by_role("button", name="Admin", exact=True).click()
    view = page.get_by_role("dialog", name="Admin")
    users = view.get_by_role("list", name="Users").get_by_role("listitem")
    names = users.locator(".name")
    expect(names).to_have_text(["adam", "Ben", "pupil2", "pupil10", "teacher", "zoe"])

    view.get_by_role("searchbox", name="Filter users").fill("PUP")
    expect(names).to_have_text(["pupil2", "pupil10"])
    users.filter(has_text="pupil10").get_by_role("button", name="Disable").click()
    expect(users.filter(has_text="pupil10")).to_contain_text("disabled")
    expect(names).to_have_text(["pupil2", "pupil10"])  # a change keeps the filter

    view.get_by_role("searchbox", name="Filter users").fill("nobody")
    expect(users).to_have_text(["No user matches the filter."])
    view.get_by_role("searchbox", name="Filter users").fill("")
    expect(names).to_have_count(6)


@pytest.mark.parametrize("server_options", [{"registration": "closed"}])
def test_while_registration_is_closed_the_page_offers_no_register_button(server, api, new_page):
    if "registration" not in api.get("/info").data:
        pytest.skip("GET /api/v1/info does not say yet whether registration is open "
                    "(swiftchat_routes.info)")
    page = new_page()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    expect(page.get_by_role("button", name="Register")).to_be_hidden()


def test_while_registration_is_open_the_page_offers_a_register_button(new_page):
    page = new_page()
    expect(page.get_by_role("button", name="Register")).to_be_visible()
    page.wait_for_load_state("networkidle")  # GET /info answered: still there
    expect(page.get_by_role("button", name="Register")).to_be_visible()
