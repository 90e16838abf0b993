"""A teacher's page (issue #34) in headless Chromium: the Admin view's list, its import of a
class, a password of one's own, the login form, and a class's room with a teacher (its owner),
a TA made moderator and two students: the member menu, mutes, posting, slow mode, export and ban.
The class's four pages are opened once for the file, on one server (a page open costs about a
second); each of those tests has a Biology room of its own, deleted after it.

Each control is found by its role and accessible name, as a screen reader
user would find it. Debian's Chromium (apt-get install chromium) is driven
by Playwright, which downloads no browser here; without it these tests
skip and say how to install it.
"""

import collections
import contextlib
import csv
import json

import pytest

from conftest import Api, log_in_on_page, login, make_admin, serve_for_tests, signed_in

expect = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-dev.txt").expect


def test_the_admin_view_lists_users_by_name_and_a_filter_narrows_them(server, api, new_page):
    for name in ("zoe", "pupil10", "Ben", "pupil2", "adam"):  # the server lists them as made
        api.register(name)
    make_admin(server, api.register("teacher")[1])
    page = new_page()
    log_in_on_page(page, "teacher")
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
    assert api.get("/info").data["registration"] == "closed"
    page = new_page()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    expect(page.get_by_role("button", name="Register")).to_be_hidden()


def test_while_registration_is_open_the_page_offers_a_register_button(new_page):
    page = new_page()
    expect(page.get_by_role("button", name="Register")).to_be_visible()
    page.wait_for_load_state("networkidle")  # GET /info answered: still there
    expect(page.get_by_role("button", name="Register")).to_be_visible()


# -- a class: a teacher, a teaching assistant and two students ---------------------------------

CLASS = ("teacher", "assistant", "ana", "ben")  # the TA's username: at least 3 characters


School = collections.namedtuple("School", "server api people pages")
_room_letters = iter("ABCDEFGHIJKLMNOPQRSTUVWXYZ")  # "Biology A" is no part of another room's name


@pytest.fixture(scope="module")
def school(tmp_path_factory, browser):
    """One server for the class's tests, with the default limits a school's server has, and the
    pages of the teacher, the TA and the two students on it, each signed in once (a browser
    context each: four people). Each test brings them into a Biology room of its own."""
    with serve_for_tests(tmp_path_factory.mktemp("school") / "chat.db") as server, \
            contextlib.closing(Api(server.http_port)) as api:
        people = {name: api.register(name)[:2] for name in CLASS}
        pages = {}
        try:
            for name in CLASS:
                pages[name] = signed_in(browser, server, name)
            yield School(server, api, people, pages)
        finally:
            for page in pages.values():
                page.context.close()



@pytest.fixture
def biology(school):
    """A new public room "Biology X" made by the teacher, with the TA and two students as members;
    nobody is an admin. Deleted after the test, and with it every role, mute and ban in it; what
    anyone blocked is unblocked, so that the next test finds the four pages as this one did.

    Returns {"room": room id, "name": its name, "api": an Api, "school": the School,
    name: (token, user id) for each of CLASS}.
    """
    api, people = school.api, school.people
    name = f"Biology {next(_room_letters)}"
    room_id = api.create_room(people["teacher"][0], name, "Cells and such")
    for person in CLASS[1:]:
        assert api.post("/rooms/join", {"room_id": room_id}, token=people[person][0]).status == 200
    yield {"room": room_id, "name": name, "api": api, "school": school, **people}
    assert api.call("DELETE", f"/rooms/{room_id}", token=people["teacher"][0]).status == 200
    for token, _ in people.values():
        for blocked in api.get("/users/me/blocked", token=token).data["users"]:
            assert api.call("DELETE", f"/users/{blocked['id']}/block", token=token).status == 200


def make_moderator(biology, name):
    """The teacher makes this member a moderator of the room, over the API."""
    reply = biology["api"].call("PATCH", f"/rooms/{biology['room']}/members/{biology[name][1]}",
                                {"role": "moderator"}, token=biology["teacher"][0])
    assert reply.status == 200, reply.json


def in_biology(biology, name):
    """name's page (the school's), in the test's Biology room."""
    page = biology["school"].pages[name]
    open_biology(page, biology)
    return page


def open_biology(page, biology):
    page.get_by_role("navigation", name="Rooms").get_by_role("button", name=biology["name"]).click()
    expect(page.get_by_role("heading", name=biology["name"])).to_be_visible()
    expect(member_rows(page)).to_have_count(len(CLASS))


def connection_status(page):
    return page.get_by_role("banner").get_by_role("status")


def member_rows(page):
    return page.get_by_role("complementary", name="Members").get_by_role("listitem")


def member_row(page, name):
    return member_rows(page).filter(has=page.get_by_text(name, exact=True))


def member_actions(page, name):
    """Open the actions menu of the member of this name, and return the menu."""
    page.get_by_role("complementary", name="Members").get_by_role(
        "button", name=f"Actions for {name}", exact=True).click()
    menu = page.get_by_role("menu", name=f"Actions for {name}", exact=True)
    expect(menu).to_be_visible()
    return menu


def room_settings(page):
    """Open the room header's Settings menu (a <details>: its summary fills the group's box)."""
    settings = page.get_by_role("group", name="Room settings")
    settings.click()
    expect(settings.get_by_role("button", name="Export")).to_be_visible()
    return settings


def composer(page):
    return page.get_by_role("textbox", name="Message", exact=True)


def say(page, text):
    composer(page).fill(text)
    composer(page).press("Enter")


def messages(page):
    return page.get_by_role("list", name="Messages").get_by_role("paragraph")


# -- Import accounts (#34 item 1) -----------------------------------------------------------

def open_admin_view(page):
    page.get_by_role("button", name="Admin", exact=True).click()
    return page.get_by_role("dialog", name="Admin")


def test_an_admin_imports_a_class_from_csv_and_sees_each_new_password_once_with_a_download(
        server, api, new_page):
    make_admin(server, api.register("teacher")[1])
    page = new_page()
    log_in_on_page(page, "teacher")
    view = open_admin_view(page)
    region = view.get_by_role("region", name="Import accounts")
    region.get_by_label("Accounts (CSV)").fill(
        "username,password,role\nana\n\nben,a given passphrase\n teacher ,x-password-1\n")
    region.get_by_role("button", name="Import").click()
    expect(view.get_by_role("status")).to_have_text("2 accounts created, 1 skipped.")
    table = region.get_by_role("table", name="New accounts")
    rows = table.get_by_role("row")
    expect(rows).to_have_count(3)  # the header and the two made
    expect(rows.nth(2)).to_have_text("bena given passphrase")
    made_up = rows.nth(1).get_by_role("cell").nth(1).inner_text()
    assert len(made_up) == 12 and not set(made_up) & set("0O1lI"), made_up
    expect(region.get_by_role("list", name="Skipped")).to_contain_text("teacher: ")

    with page.expect_download() as download:
        region.get_by_role("link", name="Download the passwords (CSV)").click()
    assert download.value.suggested_filename.endswith(".csv")
    with open(download.value.path(), encoding="utf-8", newline="") as saved:
        assert saved.read() == f"username,password\nana,{made_up}\nben,a given passphrase\n"

    users = view.get_by_role("list", name="Users").get_by_role("listitem")
    expect(users.filter(has_text="ana")).to_contain_text("must change password")
    reply = login(api, "ana", made_up)
    assert reply.status == 200
    view.get_by_role("button", name="Close").click()
    view = open_admin_view(page)  # shown once: gone when the view closes
    expect(view.get_by_role("table")).to_have_count(0)
    expect(view.get_by_role("link", name="Download the passwords (CSV)")).to_have_count(0)


def test_a_chosen_csv_file_is_read_into_the_box_and_a_refused_line_is_named(server, api, new_page):
    make_admin(server, api.register("teacher")[1])
    page = new_page()
    log_in_on_page(page, "teacher")
    region = open_admin_view(page).get_by_role("region", name="Import accounts")
    region.get_by_label("Or choose a CSV file").set_input_files(files=[{
        "name": "class.csv", "mimeType": "text/csv", "buffer": b"cleo\nno spaces allowed\n"}])
    expect(region.get_by_label("Accounts (CSV)")).to_have_value("cleo\nno spaces allowed\n")
    region.get_by_role("button", name="Import").click()
    expect(page.get_by_role("dialog", name="Admin").get_by_role("alert")).to_contain_text("Line 2: ")
    assert login(api, "cleo", "anything").status == 401  # nothing was made

    region.get_by_label("Accounts (CSV)").fill("cleo\n,a-password-only\n")
    region.get_by_role("button", name="Import").click()
    expect(page.get_by_role("dialog", name="Admin").get_by_role("alert")).to_have_text(
        "Line 2 has no username.")


# -- a password of one's own (#34 item 2) ---------------------------------------------------

def test_an_account_whose_password_someone_else_chose_picks_its_own_before_the_chat(
        server, api, new_page):
    admin_token, admin_id, _ = api.register("teacher")
    make_admin(server, admin_id)
    reply = api.post("/users/import", {"users": [{"username": "cleo"}]}, token=admin_token)
    handed_out = reply.data["created"][0]["password"]
    page = new_page()
    page.get_by_label("Username").fill("cleo")
    page.get_by_label("Password", exact=True).fill(handed_out)
    page.get_by_role("button", name="Log in").click()

    dialog = page.get_by_role("dialog", name="Choose your own password")
    expect(dialog.get_by_label("New password")).to_be_focused()  # the current one was just typed
    expect(page.get_by_role("navigation", name="Rooms")).to_be_hidden()  # no chat yet
    dialog.get_by_label("New password").fill("my very own passphrase")
    dialog.get_by_role("button", name="Change password").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("banner")).to_contain_text("cleo")
    expect(connection_status(page)).to_have_text("Connected")
    expect(page.get_by_role("navigation", name="Rooms")).to_be_visible()
    assert login(api, "cleo", handed_out).status == 401
    token = login(api, "cleo", "my very own passphrase").data["token"]
    assert api.get("/users/me", token=token).data["user"]["must_change_password"] is False


def test_closing_the_new_password_dialog_signs_out(server, api, new_page):
    admin_token, admin_id, _ = api.register("teacher")
    make_admin(server, admin_id)
    handed_out = api.post("/users/import", {"users": [{"username": "dora"}]},
                          token=admin_token).data["created"][0]["password"]
    page = new_page()
    page.get_by_label("Username").fill("dora")
    page.get_by_label("Password", exact=True).fill(handed_out)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("dialog", name="Choose your own password")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    page.reload()  # the session is gone, not kept for the next visitor of this tab
    expect(page.get_by_role("button", name="Log in")).to_be_visible()


# -- roles and the member menu (#34 items 3 and 9) ---------------------------------------------

def menu_items(menu):
    return menu.get_by_role("menuitem")


def test_the_owner_makes_the_ta_a_moderator_and_every_page_shows_it_live(biology):
    teacher, ta, ana = (in_biology(biology, name) for name in ("teacher", "assistant", "ana"))
    expect(member_row(ana, "teacher")).to_contain_text("owner")
    menu = member_actions(teacher, "assistant")
    expect(menu_items(menu)).to_have_text(["Message", "Remove", "Ban", "Mute", "Make moderator", "Block"])
    menu.get_by_role("menuitem", name="Make moderator").click()
    for page in (teacher, ta, ana):  # member_updated, no reload
        expect(member_row(page, "assistant")).to_contain_text("moderator")

    # A moderator acts on students only; a student on nobody but by messaging or blocking.
    expect(menu_items(member_actions(ta, "ana"))).to_have_text(["Message", "Remove", "Ban", "Mute", "Block"])
    ta.keyboard.press("Escape")
    expect(menu_items(member_actions(ta, "teacher"))).to_have_text(["Message", "Block"])
    ta.keyboard.press("Escape")
    expect(menu_items(member_actions(ana, "ben"))).to_have_text(["Message", "Block"])
    expect(ta.get_by_role("button", name="Reports, 0 open")).to_be_visible()  # a moderator's too

    member_actions(teacher, "assistant").get_by_role("menuitem", name="Make member").click()
    expect(member_row(ana, "assistant")).not_to_contain_text("moderator")
    expect(menu_items(member_actions(ta, "ben"))).to_have_text(["Message", "Block"])


def test_the_member_menu_works_from_the_keyboard_and_gives_focus_back_to_its_button(biology):
    teacher = in_biology(biology, "teacher")
    button = teacher.get_by_role("button", name="Actions for ana", exact=True)
    menu = teacher.get_by_role("menu", name="Actions for ana", exact=True)
    button.focus()
    teacher.keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitem", name="Message")).to_be_focused()
    expect(button).to_have_attribute("aria-expanded", "true")
    teacher.keyboard.press("ArrowUp")  # round to the last
    expect(menu.get_by_role("menuitem", name="Block")).to_be_focused()
    teacher.keyboard.press("Home")
    teacher.keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitem", name="Remove")).to_be_focused()
    teacher.keyboard.press("Escape")
    expect(menu).to_have_count(0)
    expect(button).to_be_focused()
    expect(button).to_have_attribute("aria-expanded", "false")

    teacher.keyboard.press("Enter")
    expect(menu.get_by_role("menuitem", name="Message")).to_be_focused()
    teacher.keyboard.press("End")
    teacher.keyboard.press("Enter")  # Block
    expect(button).to_be_focused()
    expect(menu).to_have_count(0)
    teacher.keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitem", name="Unblock")).to_be_visible()
    teacher.mouse.click(5, 5)  # a click elsewhere closes it
    expect(menu).to_have_count(0)


# -- mutes, posting and slow mode (#34 items 4 and 9) -----------------------------------------

def test_a_moderator_mutes_a_student_who_sees_a_note_instead_of_the_composer_until_unmuted(
        biology):
    make_moderator(biology, "assistant")
    ta, ana, ben = (in_biology(biology, name) for name in ("assistant", "ana", "ben"))
    member_actions(ta, "ana").get_by_role("menuitem", name="Mute").click()
    dialog = ta.get_by_role("dialog", name="Mute ana")
    expect(dialog.get_by_label("Minutes")).to_be_focused()
    dialog.get_by_label("Minutes").fill("10")
    dialog.get_by_role("button", name="Mute").click()
    expect(dialog).to_be_hidden()
    expect(ta.get_by_role("button", name="Actions for ana", exact=True)).to_be_focused()

    for page in (ta, ben, ana):
        expect(member_row(page, "ana")).to_contain_text("muted until")
    expect(ana.get_by_role("status").filter(has_text="You are muted in this room until")).to_be_visible()
    expect(composer(ana)).to_be_hidden()
    expect(composer(ben)).to_be_visible()

    member_actions(ta, "ana").get_by_role("menuitem", name="Unmute").click()
    expect(composer(ana)).to_be_visible()
    expect(member_row(ben, "ana")).not_to_contain_text("muted")
    say(ana, "thank you")
    expect(messages(ta)).to_have_text(["thank you"])


def test_in_a_room_where_only_moderators_post_a_students_composer_becomes_a_note(
        biology):
    make_moderator(biology, "assistant")
    teacher, ta, ana = (in_biology(biology, name) for name in ("teacher", "assistant", "ana"))
    expect(ana.get_by_role("group", name="Room settings")).to_be_hidden()
    settings = room_settings(teacher)
    settings.get_by_label("Who may post").select_option(label="Only moderators")
    settings.get_by_role("button", name="Save settings").click()
    expect(settings.get_by_role("status")).to_have_text("Settings saved")

    expect(ana.get_by_text("Only moderators post in this room.")).to_be_visible()  # room_updated, live
    expect(composer(ana)).to_be_hidden()
    say(ta, "Homework: chapter 3")  # a moderator still posts
    expect(messages(ana)).to_have_text(["Homework: chapter 3"])
    ana.reload()  # and so it stays
    expect(ana.get_by_text("Only moderators post in this room.")).to_be_visible()
    expect(composer(ana)).to_be_hidden()

    settings.get_by_label("Who may post").select_option(label="Everyone")
    settings.get_by_role("button", name="Save settings").click()
    expect(composer(ana)).to_be_visible()
    expect(ana.get_by_text("Only moderators post in this room.")).to_be_hidden()


def test_slow_mode_tells_a_student_when_the_next_message_may_go(biology, browser):
    make_moderator(biology, "assistant")
    ta, ana = in_biology(biology, "assistant"), in_biology(biology, "ana")
    settings = room_settings(ta)  # a moderator sets it
    expect(settings.get_by_role("button", name="Delete room")).to_be_hidden()  # the owner's
    settings.get_by_label("Slow mode").fill("60")
    settings.get_by_role("button", name="Save settings").click()
    expect(settings.get_by_role("status")).to_have_text("Settings saved")

    say(ana, "first question")
    expect(messages(ana)).to_have_text(["first question"])
    note = ana.get_by_text("Slow mode is on: you can send your next message at")
    expect(note).to_be_visible()
    expect(ana.get_by_role("button", name="Send")).to_be_disabled()
    say(ana, "too soon")
    expect(composer(ana)).to_have_value("too soon")  # kept, not sent
    say(ta, "one")  # moderators are exempt
    say(ta, "two")
    expect(messages(ana)).to_have_text(["first question", "one", "two"])

    other_tab = signed_in(browser, biology["school"].server, "ana")  # knows nothing of the wait:
    try:  # the server refuses
        open_biology(other_tab, biology)
        say(other_tab, "from the other tab")
        expect(other_tab.get_by_text("Slow mode is on: you can send your next message at")).to_be_visible()
        expect(composer(other_tab)).to_have_value("from the other tab")  # given back
        expect(messages(ta)).to_have_text(["first question", "one", "two"])
    finally:
        other_tab.context.close()


# -- export and ban (#34 items 5 and 9) ----------------------------------------------------

def test_a_moderator_exports_the_history_as_csv_and_the_owner_as_json(biology):
    make_moderator(biology, "assistant")
    ta, teacher, ana = (in_biology(biology, name) for name in ("assistant", "teacher", "ana"))
    for text in ("cells divide", "mitosis, then"):
        say(ana, text)
    expect(messages(ta)).to_have_text(["cells divide", "mitosis, then"])

    settings = room_settings(ta)
    settings.get_by_label("Export format").select_option(label="CSV (a spreadsheet)")
    with ta.expect_download() as download:
        settings.get_by_role("button", name="Export").click()
    assert download.value.suggested_filename.startswith(f"{biology['name']}-")
    assert download.value.suggested_filename.endswith(".csv")
    with open(download.value.path(), encoding="utf-8", newline="") as saved:
        rows = list(csv.reader(saved))
    assert rows[0] == ["id", "timestamp", "username", "content", "edited_at", "attachments"]
    assert [(row[2], row[3]) for row in rows[1:]] == [("ana", "cells divide"), ("ana", "mitosis, then")]

    settings = room_settings(teacher)
    settings.get_by_label("Export format").select_option(label="JSON")
    with teacher.expect_download() as download:
        settings.get_by_role("button", name="Export").click()
    with open(download.value.path(), encoding="utf-8") as saved:
        exported = json.load(saved)
    assert exported["room"]["name"] == biology["name"]
    assert [m["content"] for m in exported["messages"]] == ["cells divide", "mitosis, then"]


def test_a_banned_student_is_told_and_cannot_come_back(biology):
    teacher, ben = in_biology(biology, "teacher"), in_biology(biology, "ben")
    member_actions(teacher, "ben").get_by_role("menuitem", name="Ban").click()
    expect(ben.get_by_role("list", name="Messages")).to_contain_text(f"You were removed from {biology['name']}.")
    expect(member_rows(teacher)).to_have_count(len(CLASS) - 1)
    ben.get_by_role("navigation", name="Rooms").get_by_role("button", name=biology["name"]).click()
    expect(ben.get_by_role("alert")).to_have_text("You are banned from this room")
    expect(composer(ben)).to_be_disabled()
