"""The page's look (issue #36 item 5), in headless Chromium: a teacher and two students in a room
with messages, a reply and a reaction. The chat view has no serious or critical axe-core
violation in light and dark, on a desktop (1280x800) and a phone (390x844); the top bar is the
page's own colour (no bright bar in dark mode); on a phone it keeps the connection's status and
the user's name whole and puts the rest behind "Menu"; members show their display names (the
username on hover and in the accessible name) with one actions menu each; and "Profile" changes
one's display name and status, which the other members' pages follow live.

axe-core is axe-playwright-python's copy of axe.min.js (requirements-dev.txt). The page loads it
from its own origin, at an address the browser answers itself (page.route), so the page's
Content-Security-Policy (scripts from 'self' only) need not be loosened for the test.

One server and one teacher's page serve the whole file; each control is found by its role and
accessible name, as a screen reader user would find it.
"""

import pathlib

import pytest

from conftest import Api

pytestmark = pytest.mark.shared_server
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-dev.txt")
axe_package = pytest.importorskip("axe_playwright_python", reason="pip install -r requirements-dev.txt")
expect = sync_api.expect

AXE_SCRIPT = (pathlib.Path(axe_package.__file__).parent / "axe.min.js").read_text(encoding="utf-8")
DESKTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}
LONG_NAME = "Benedict Oyelaran-Smithfield, Year Ten B"  # 40 characters, the most a display name has


# -- a teacher and two students in Physics --------------------------------------------------

@pytest.fixture(scope="module")
def physics(shared_server):
    """Physics, made by ada (the teacher, "Ada Lovelace"), with student17 ("Ana K.", a status line)
    and ben (the longest display name); a question, its reply, and a reaction to it."""
    api = Api(shared_server.http_port)
    (ada, _, _), (ana, _, _), (ben, _, _) = (api.register(name) for name in ("ada", "student17", "ben"))
    for token, profile in ((ada, {"display_name": "Ada Lovelace"}),
                           (ana, {"display_name": "Ana K.", "status": "In the library until 3"}),
                           (ben, {"display_name": LONG_NAME})):
        assert api.call("PATCH", "/users/me", profile, token=token).status == 200
    room_id = api.create_room(ada, "Physics", "Waves and optics, year 10")
    for token in (ana, ben):
        assert api.post("/rooms/join", {"room_id": room_id}, token=token).status == 200
    post(api, ada, room_id, "Morning! Today: **interference**. Read section 3 first: https://example.org/waves")
    question = post(api, ana, room_id, "Is the lab open at 9? @ada")
    post(api, ada, room_id, "Yes, from 9.", reply_to=question)
    reacted = api.post(f"/messages/{question}/reactions", {"emoji": "👍"}, token=ben)
    assert reacted.status == 200, reacted.json
    yield room_id
    api.close()


def post(api, token, room_id, content, **fields):
    reply = api.post("/messages", {"room_id": room_id, "content": content, **fields}, token=token)
    assert reply.status == 201, reply.json
    return reply.data["id"]


def open_physics(browser, server, username, viewport):
    """A page of its own (its own context) signed in as username, in Physics, with axe-core
    loadable from the page's origin."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(10_000)
    origin = f"http://127.0.0.1:{server.http_port}"
    page.route(f"{origin}/__axe.js", lambda route: route.fulfill(body=AXE_SCRIPT, content_type="text/javascript"))
    page.goto(origin + "/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill("password123")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("banner").get_by_role("status")).to_have_text("Connected")
    page.get_by_role("navigation", name="Rooms").get_by_role("button", name="Physics").click()
    expect(page.get_by_role("list", name="Messages")).to_contain_text("Yes, from 9.")
    return page


@pytest.fixture(scope="module")
def teacher(browser, shared_server, physics):
    """Ada's page in Physics, shared by the file's tests; each sets the size and scheme it needs."""
    page = open_physics(browser, shared_server, "ada", DESKTOP)
    yield page
    page.context.close()


def show(page, viewport, scheme):
    page.set_viewport_size(viewport)
    page.emulate_media(color_scheme=scheme)


def members(page):
    return page.get_by_role("complementary", name="Members").get_by_role("list")


# -- axe-core -----------------------------------------------------------------------------

def serious_violations(page):
    """What axe-core finds serious or critical on the page as it is now, one line each."""
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.add_script_tag(url=f"{page.url.rstrip('/')}/__axe.js")
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{violation['id']} ({violation['impact']}): {node['target']} {node['failureSummary']}"
            for violation in results["violations"] if violation["impact"] in ("serious", "critical")
            for node in violation["nodes"]]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_chat_view_has_no_serious_or_critical_axe_violations(teacher, viewport, scheme):
    show(teacher, viewport, scheme)
    expect(teacher.get_by_role("list", name="Messages")).to_be_visible()
    assert serious_violations(teacher) == []
    if viewport is PHONE:  # the other panes are views of their own there
        teacher.get_by_role("button", name="Members", exact=True).click()
        expect(members(teacher)).to_be_visible()
        assert serious_violations(teacher) == []
        teacher.get_by_role("button", name="Back to the conversation").click()


# -- a calm look --------------------------------------------------------------------------

def background(locator):
    """The computed background colour as (red, green, blue)."""
    colour = locator.evaluate("(element) => getComputedStyle(element).backgroundColor")
    return tuple(int(part) for part in colour[colour.index("(") + 1:-1].split(",")[:3])


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_top_bar_is_the_pages_own_colour_not_a_bright_bar(teacher, scheme):
    show(teacher, DESKTOP, scheme)
    bar = background(teacher.get_by_role("banner"))
    assert bar == background(teacher.get_by_role("navigation", name="Rooms"))  # the panels' colour
    if scheme == "dark":
        assert sum(bar) < 3 * 48, bar


# -- the top bar on a phone ---------------------------------------------------------------

def assert_whole(locator, width):
    """Shown entire: nothing clipped or ellipsized, and inside the window."""
    expect(locator).to_be_visible()
    assert locator.evaluate("(element) => element.scrollWidth <= element.clientWidth")
    box = locator.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, box


def test_on_a_phone_the_top_bar_keeps_the_name_and_status_whole_and_the_rest_behind_menu(
        browser, shared_server, physics):
    page = open_physics(browser, shared_server, "ben", PHONE)
    bar = page.get_by_role("banner")
    assert_whole(bar.get_by_role("status"), PHONE["width"])
    assert_whole(bar.get_by_text(LONG_NAME, exact=True), PHONE["width"])
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    profile, log_out = bar.get_by_role("button", name="Profile"), bar.get_by_role("button", name="Log out")
    expect(profile).to_be_hidden()

    menu = bar.get_by_role("button", name="Menu")
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    for name in ("Profile", "Change password", "Log out"):
        expect(bar.get_by_role("button", name=name, exact=True)).to_be_visible()
    page.keyboard.press("Escape")  # the keyboard is on the menu's first button
    expect(log_out).to_be_hidden()
    expect(menu).to_be_focused()

    menu.click()
    profile.click()  # an item closes the menu as it acts
    dialog = page.get_by_role("dialog", name="Profile")
    expect(dialog.get_by_label("Display name")).to_have_value(LONG_NAME)
    expect(menu).to_have_attribute("aria-expanded", "false")
    dialog.get_by_role("button", name="Cancel").click()
    page.context.close()


# -- names ----------------------------------------------------------------------------------

def test_members_show_display_names_with_the_username_on_hover_and_one_actions_menu_each(teacher):
    show(teacher, DESKTOP, "light")
    listed = members(teacher)
    ana = listed.get_by_role("listitem").filter(has_text="Ana K.")
    expect(ana).to_contain_text("In the library until 3")
    expect(ana.get_by_title("student17", exact=True)).to_have_text("Ana K. (student17)")  # hidden: the username
    expect(ana.get_by_text("Ana K.", exact=True)).to_be_visible()
    expect(teacher.get_by_role("banner").get_by_text("Ada Lovelace", exact=True)).to_be_visible()

    # One button for each of the two others, their actions menu, and no other button in the list.
    expect(listed.get_by_role("button")).to_have_count(2)
    actions = listed.get_by_role("button", name="Actions for Ana K. (student17)")
    expect(actions).to_have_attribute("aria-haspopup", "menu")
    actions.click()
    menu = listed.get_by_role("menu")
    expect(menu.get_by_role("menuitem")).to_have_text(
        ["Message", "Remove", "Ban", "Mute", "Make moderator", "Block"])
    teacher.keyboard.press("Escape")
    expect(menu).to_have_count(0)
    expect(actions).to_be_focused()


def test_profile_saves_a_display_name_and_status_that_other_members_see_live(
        browser, shared_server, physics, teacher):
    show(teacher, DESKTOP, "light")
    student = open_physics(browser, shared_server, "student17", DESKTOP)
    student.get_by_role("banner").get_by_role("button", name="Profile").click()
    dialog = student.get_by_role("dialog", name="Profile")
    expect(dialog.get_by_label("Display name")).to_have_value("Ana K.")
    expect(dialog.get_by_label("Status")).to_have_value("In the library until 3")

    dialog.get_by_label("Display name").fill("   ")  # nothing once trimmed: the server says why
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_role("alert")).not_to_be_empty()
    expect(dialog).to_be_visible()

    dialog.get_by_label("Display name").fill("Ana Kowalska")
    dialog.get_by_label("Status").fill("Back at 3")
    with student.expect_response("**/api/v1/users/me") as saved:
        dialog.get_by_role("button", name="Save").click()
    assert saved.value.request.method == "PATCH" and saved.value.status == 200
    expect(dialog).to_be_hidden()
    expect(student.get_by_role("banner").get_by_text("Ana Kowalska", exact=True)).to_be_visible()

    row = members(teacher).get_by_role("listitem").filter(has_text="Ana Kowalska")  # live, no reload
    expect(row).to_contain_text("Back at 3")
    expect(members(teacher).get_by_role("button", name="Actions for Ana Kowalska (student17)")).to_be_visible()
    student.context.close()
