"""What a message carries on the page, and the actions on it (issue #36), in headless Chromium:
a teacher (an admin) and two students, Ana and Bea, each on a page of their own, reply with a
quote that leads back to its question, react with counted chips that say who reacted (seen live
on the other student's page), pick an emoji from the keyboard, pin (the teacher) and find the pin
under "Pinned messages" (a student, who has no "Pin"), see an author's run under one header,
and see a display name as soon as its owner sets it.

The three pages are opened once for the file, on its one server; each test makes a room of its
own and brings the pages into it, so no test sees another's messages. Each control is found by
its role and accessible name, as a screen reader user would find it.
"""

import collections
import contextlib
import itertools
import re

import pytest

from conftest import Api, make_admin, signed_in

expect = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-dev.txt").expect

pytestmark = pytest.mark.shared_server

Person = collections.namedtuple("Person", "token id page")
Class = collections.namedtuple("Class", "teacher ana bea")
_rooms = itertools.count(1)



@pytest.fixture(scope="module")
def school(shared_server, browser):
    """The teacher (an admin), Ana K. and Bea M., each signed in on a page of their own (the
    display names chosen once signed in: the rooms' members and messages bring them)."""
    with contextlib.closing(Api(shared_server.http_port)) as api:
        people = {username: api.register(username)[:2] for username in ("teacher", "ana", "bea")}
    make_admin(shared_server, people["teacher"][1])
    pages = {username: signed_in(browser, shared_server, username) for username in people}
    with contextlib.closing(Api(shared_server.http_port)) as api:  # the first has been idle too long
        for username, display_name in (("teacher", "Ms Lind"), ("ana", "Ana K."), ("bea", "Bea M.")):
            reply = api.call("PATCH", "/users/me", {"display_name": display_name}, token=people[username][0])
            assert reply.status == 200, reply.json
    yield Class(*(Person(*people[name], pages[name]) for name in ("teacher", "ana", "bea")))
    for page in pages.values():
        page.context.close()


def new_room(api, school, *people):
    """A room of the teacher's that the students joined, open on these people's pages; its id."""
    name = f"Lesson {next(_rooms)}"
    room_id = api.create_room(school.teacher.token, name)
    for student in (school.ana, school.bea):
        assert api.post("/rooms/join", {"room_id": room_id}, token=student.token).status == 200
    for person in people:
        person.page.get_by_role("navigation", name="Rooms").get_by_role("button", name=name).click()
        expect(person.page.get_by_role("heading", name=name)).to_be_visible()
        expect(composer(person.page)).to_be_enabled()
    return room_id


def post(api, person, room_id, content):
    """A message sent over REST, as any client may; its id."""
    reply = api.post("/messages", {"room_id": room_id, "content": content}, token=person.token)
    assert reply.status == 201, reply.json
    return reply.data["id"]


def composer(page):
    return page.get_by_role("textbox", name="Message", exact=True)


def message(page, text):
    return page.get_by_role("list", name="Messages").get_by_role("listitem").filter(has_text=text)


def action(page, text, name):
    """A message's action button ("Reply", "React", ...), shown as a pointer on it would."""
    item = message(page, text)
    item.hover()
    return item.get_by_role("group", name="Message actions").get_by_role("button", name=name, exact=True)


# -- replies -----------------------------------------------------------------------

def test_a_reply_quotes_its_question_and_the_quote_leads_back_to_it(api, school):
    room_id = new_room(api, school, school.ana, school.bea)
    post(api, school.ana, room_id, "Who has the homework link?")
    for n in range(30):  # the question scrolls out of view
        post(api, school.teacher, room_id, f"Answer {n}")
    ana, bea = school.ana.page, school.bea.page
    expect(message(bea, "Answer 29")).to_be_visible()

    action(bea, "Answer 3", "Reply").click()  # the composer says what it answers; "Cancel reply" lets go
    expect(composer(bea)).to_have_accessible_description(re.compile("^Replying to Ms Lind: Answer 3"))
    bea.get_by_role("button", name="Cancel reply").click()
    expect(composer(bea)).not_to_have_accessible_description(re.compile("Replying"))

    message(bea, "Who has the homework link?").scroll_into_view_if_needed()
    action(bea, "Who has the homework link?", "Reply").click()
    expect(composer(bea)).to_be_focused()
    expect(composer(bea)).to_have_accessible_description("Replying to Ana K.: Who has the homework link?")
    composer(bea).fill("It is on the class page")
    composer(bea).press("Enter")
    expect(bea.get_by_role("button", name="Cancel reply")).to_be_hidden()

    quote = message(ana, "It is on the class page").get_by_role(
        "button", name="In reply to Ana K. (ana): Who has the homework link?")
    expect(quote).to_be_visible()
    question = message(ana, "Who has the homework link?").first  # the reply quotes it too
    expect(question).not_to_be_in_viewport()
    quote.click()
    expect(question).to_be_in_viewport()
    expect(question).to_be_focused()

    message(ana, "Answer 29").scroll_into_view_if_needed()  # and by keyboard
    expect(question).not_to_be_in_viewport()
    quote.focus()
    ana.keyboard.press("Enter")
    expect(question).to_be_in_viewport()


# -- reactions ---------------------------------------------------------------------

def chip(page, text, emoji):
    return message(page, text).get_by_role("group", name="Reactions").get_by_role(
        "button", name=re.compile(f"^{emoji} "))


def test_reactions_are_counted_with_who_reacted_live_on_the_other_students_page(api, school):
    room_id = new_room(api, school, school.ana, school.bea)
    post(api, school.teacher, room_id, "Quiz on Friday")
    ana, bea = school.ana.page, school.bea.page

    action(ana, "Quiz on Friday", "React").click()
    ana.get_by_role("dialog", name="Choose a reaction").get_by_role("button", name="👍").click()
    expect(ana.get_by_role("dialog", name="Choose a reaction")).to_have_count(0)
    expect(chip(bea, "Quiz on Friday", "👍")).to_have_accessible_name("👍 1: Ana K.")
    expect(chip(bea, "Quiz on Friday", "👍")).to_have_attribute("aria-pressed", "false")
    expect(chip(ana, "Quiz on Friday", "👍")).to_have_attribute("aria-pressed", "true")

    chip(bea, "Quiz on Friday", "👍").click()  # Bea adds hers to the chip
    for page in (ana, bea):
        expect(chip(page, "Quiz on Friday", "👍")).to_have_accessible_name("👍 2: Ana K., Bea M.")
        expect(chip(page, "Quiz on Friday", "👍")).to_have_attribute("aria-pressed", "true")

    chip(ana, "Quiz on Friday", "👍").click()  # and Ana takes hers back
    expect(chip(bea, "Quiz on Friday", "👍")).to_have_accessible_name("👍 1: Bea M.")
    expect(chip(ana, "Quiz on Friday", "👍")).to_have_attribute("aria-pressed", "false")


def test_the_actions_show_on_keyboard_focus_and_the_picker_works_from_the_keyboard(api, school):
    room_id = new_room(api, school, school.bea)
    post(api, school.ana, room_id, "Lab report due")
    bea = school.bea.page
    bar = message(bea, "Lab report due").get_by_role("group", name="Message actions")
    expect(bar).to_have_css("opacity", "0")
    react = bar.get_by_role("button", name="React", exact=True)
    react.focus()
    expect(bar).to_have_css("opacity", "1")

    bea.keyboard.press("Enter")
    picker = bea.get_by_role("dialog", name="Choose a reaction")
    expect(picker.get_by_role("button", name="👍")).to_be_focused()
    bea.keyboard.press("ArrowRight")
    expect(picker.get_by_role("button", name="❤️")).to_be_focused()
    bea.keyboard.press("Escape")  # closes it, back on "React"
    expect(picker).to_have_count(0)
    expect(react).to_be_focused()

    bea.keyboard.press("Enter")
    bea.keyboard.press("ArrowRight")
    bea.keyboard.press("ArrowRight")
    bea.keyboard.press("Enter")
    expect(chip(bea, "Lab report due", "😂")).to_have_accessible_name("😂 1: Bea M.")
    expect(react).to_be_focused()


# -- pins --------------------------------------------------------------------------

def test_the_teacher_pins_a_message_that_a_student_finds_under_pinned_messages(api, school):
    room_id = new_room(api, school, school.teacher, school.bea)
    post(api, school.ana, room_id, "Homework: page 42")
    for n in range(30):
        post(api, school.ana, room_id, f"Chatter {n}")
    teacher, bea = school.teacher.page, school.bea.page
    message(teacher, "Homework: page 42").scroll_into_view_if_needed()
    action(teacher, "Homework: page 42", "Pin").click()
    expect(action(teacher, "Homework: page 42", "Unpin")).to_be_visible()

    conversation = bea.get_by_role("list", name="Messages")
    expect(message(bea, "Homework: page 42")).to_contain_text("Pinned")
    expect(conversation.get_by_role("button", name="Pin", exact=True)).to_have_count(0)
    expect(conversation.get_by_role("button", name="Reply", exact=True)).to_have_count(31)
    homework = message(bea, "Homework: page 42")
    expect(homework).not_to_be_in_viewport()

    bea.get_by_role("button", name="Pinned messages").click()
    pins = bea.get_by_role("dialog", name="Pinned messages")
    entry = pins.get_by_role("list", name="Pinned messages").get_by_role("button")
    expect(entry).to_have_count(1)
    expect(entry).to_have_accessible_name("Ana K. (ana): Homework: page 42")
    entry.click()
    expect(pins).to_be_hidden()
    expect(homework).to_be_in_viewport()
    expect(homework).to_be_focused()


# -- names -------------------------------------------------------------------------

def test_an_authors_messages_within_five_minutes_share_one_header(api, school):
    room_id = new_room(api, school, school.bea)
    for person, text in ((school.ana, "First thought"), (school.ana, "Second thought"),
                         (school.teacher, "Good points"), (school.ana, "Third thought")):
        post(api, person, room_id, text)
    bea = school.bea.page
    conversation = bea.get_by_role("list", name="Messages")
    expect(message(bea, "Third thought")).to_be_visible()
    for text in ("First thought", "Second thought", "Third thought"):  # each still says who wrote it
        expect(message(bea, text)).to_have_accessible_name(re.compile(r"^Ana K\. \(ana\), "))
    # A header for Ana's first two, one for the teacher's, one for Ana's after it.
    expect(conversation.get_by_text("Ana K.", exact=True)).to_have_count(2)
    expect(message(bea, "Second thought").get_by_text("Ana K.", exact=True)).to_have_count(0)
    expect(message(bea, "First thought").get_by_text("Ana K.", exact=True)).to_have_attribute("title", "ana")


def test_a_display_name_shows_on_messages_as_soon_as_its_owner_sets_it(api, school):
    room_id = new_room(api, school, school.ana)
    token, _, _ = api.register("cal")
    assert api.post("/rooms/join", {"room_id": room_id}, token=token).status == 200
    ana = school.ana.page
    ana.evaluate("""() => {
        window.heard = [];
        document.addEventListener('swiftchat:user-updated', (event) => window.heard.push(event.detail.display_name));
    }""")
    post(api, Person(token, None, None), room_id, "Hello, I am new")
    expect(message(ana, "Hello, I am new")).to_have_accessible_name(re.compile("^cal, "))

    reply = api.call("PATCH", "/users/me", {"display_name": "Cal Reyes"}, token=token)
    assert reply.status == 200 and reply.data["user"]["display_name"] == "Cal Reyes"
    expect(message(ana, "Hello, I am new")).to_have_accessible_name(re.compile(r"^Cal Reyes \(cal\), "))
    name = message(ana, "Hello, I am new").get_by_text("Cal Reyes", exact=True)
    expect(name).to_have_attribute("title", "cal")
    ana.wait_for_function("window.heard.includes('Cal Reyes')")
