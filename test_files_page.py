"""Files and images on the page (issue #35 item 5), in headless Chromium: two students in a room,
one attaching files ("Attach file", a drop on the conversation, a pasted image), each uploaded
at once with a progress bar, and the other seeing an image inline (at most 360 pixels wide,
opening full size) or a file as a link with its name and size; a file over the limit is refused.

The two students' pages are opened once for the file, on its one server (a page open costs about
a second); each test makes a room of its own and brings both pages into it, so that no test sees
another's files, and leaves the pages as it found them (no route, listener or extra tab).

Each control is found by its role and accessible name, as a screen reader
user would find it. Debian's Chromium (apt-get install chromium) is driven
by Playwright, which downloads no browser here; without it these tests
skip and say how to install it.
"""

import collections
import contextlib
import struct
import zlib

import pytest

from conftest import Api, log_in_on_page, serve_for_tests

expect = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-dev.txt").expect


def png(width, height, rgb=(36, 59, 107)):
    """A real PNG of one colour, which a browser draws: signature, IHDR, IDAT, IEND."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))  # filter 0, then the pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


BOARD = {"name": "board.png", "mimeType": "image/png", "buffer": png(400, 300)}
HANDOUT = {"name": "handout.pdf", "mimeType": "application/pdf",
           "buffer": b"%PDF-1.4\n" + b"x" * (1_250_000 - 9)}  # 1.19 MiB: "1.2 MB"


# -- two students in a room -----------------------------------------------------------------

Classroom = collections.namedtuple("Classroom", "server api tokens pages")
_room_letters = iter("ABCDEFGHIJKLMNOPQRSTUVWXYZ")  # "Physics A" is no part of another room's name


@pytest.fixture(scope="module")
def classroom(tmp_path_factory, browser):
    """One server for the file, with the default limits a class's server has, and Ana's and Ben's
    pages on it, each signed in once (a browser context each: two people); each test brings them
    into a room of its own (physics), so that no test sees another's files."""
    with serve_for_tests(tmp_path_factory.mktemp("files") / "chat.db") as server, \
            contextlib.closing(Api(server.http_port)) as api:
        tokens = {name: api.register(name)[0] for name in ("ana", "ben")}
        pages = {}
        try:
            for name in tokens:
                context = browser.new_context(viewport={"width": 1100, "height": 800})
                pages[name] = context.new_page()
                pages[name].set_default_timeout(10_000)
                pages[name].goto(f"http://127.0.0.1:{server.http_port}/")
                log_in_on_page(pages[name], name)
            yield Classroom(server, api, tokens, pages)
        finally:
            for page in pages.values():
                page.context.close()


@pytest.fixture
def physics(classroom):
    """A new public room "Physics X" that ana made and ben joined, open on both their pages;
    returns the two pages (ana's, ben's)."""
    name = f"Physics {next(_room_letters)}"
    room_id = classroom.api.create_room(classroom.tokens["ana"], name, "Waves")
    assert classroom.api.post("/rooms/join", {"room_id": room_id}, token=classroom.tokens["ben"]).status == 200
    for page in classroom.pages.values():
        open_room(page, name)
    return classroom.pages["ana"], classroom.pages["ben"]


def open_room(page, name):
    page.get_by_role("navigation", name="Rooms").get_by_role("button", name=name).click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    expect(composer(page)).to_be_enabled()


def composer(page):
    return page.get_by_role("textbox", name="Message", exact=True)


def conversation(page):
    return page.get_by_role("list", name="Messages")


def attach(page, *files):
    """Choose files with the composer's "Attach file" button, as its file picker would."""
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Attach file").click()
    chooser.value.set_files(list(files))


def uploaded(page, name):
    """Wait until the file of this name is uploaded and waits above the composer."""
    files = page.get_by_role("list", name="Files to send")
    expect(files.get_by_role("button", name=f"Remove {name}")).to_be_visible()
    expect(files.get_by_role("progressbar", name=f"Uploading {name}")).to_have_count(0)


def test_an_image_sent_alone_shows_inline_on_the_other_students_page_at_most_360_wide(physics):
    ana, ben = physics
    attach(ana, BOARD)
    uploaded(ana, "board.png")
    send = ana.get_by_role("button", name="Send")
    expect(send).to_be_enabled()  # files alone, no text
    send.click()
    expect(ana.get_by_role("list", name="Files to send")).to_be_hidden()

    for page in (ben, ana):
        image = conversation(page).get_by_role("img", name="board.png")
        expect(image).to_be_visible()
        wait_for_image(image)
        box = image.bounding_box()
        assert box["width"] <= 360 and abs(box["height"] - box["width"] * 3 / 4) <= 1, box
    full_size = conversation(ben).get_by_role("link", name="Open board.png full size")
    assert ben.request.get(full_size.evaluate("(link) => link.href")).body() == BOARD["buffer"]

    ben.reload()  # from history, as from the live frame
    image = conversation(ben).get_by_role("img", name="board.png")
    expect(image).to_be_visible()
    wait_for_image(image)
    assert image.bounding_box()["width"] <= 360


def wait_for_image(image):
    """The browser has fetched and decoded the picture (400 by 300) itself."""
    for _ in range(100):
        if image.evaluate("(img) => img.complete && img.naturalWidth") == 400:
            return
        image.page.wait_for_timeout(50)
    raise AssertionError("the image never loaded")


def test_the_full_size_link_is_reached_with_the_keyboard_and_opens_a_new_tab(physics):
    ana, _ = physics
    attach(ana, BOARD)
    uploaded(ana, "board.png")
    composer(ana).press("Enter")  # Enter sends files alone too
    link = conversation(ana).get_by_role("link", name="Open board.png full size")
    expect(link).to_be_visible()
    link.focus()
    with ana.context.expect_page() as opened:
        ana.keyboard.press("Enter")
    assert opened.value.url.startswith(f"{ana.url.rstrip('/')}/api/v1/files/")
    opened.value.close()  # Ana's page is the file's: the next test finds her with one tab


def test_a_file_shows_as_a_link_with_its_name_and_size_that_downloads_it(physics):
    ana, ben = physics
    attach(ana, HANDOUT)
    composer(ana).fill("Read this before Monday")
    uploaded(ana, "handout.pdf")
    composer(ana).press("Enter")

    message = conversation(ben).get_by_role("listitem").filter(has_text="Read this before Monday")
    link = message.get_by_role("link", name="handout.pdf, 1.2 MB")
    expect(link).to_be_visible()
    with ben.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "handout.pdf"
    with open(download.value.path(), "rb") as saved:
        assert saved.read() == HANDOUT["buffer"]


def test_a_file_dropped_on_the_conversation_is_attached_and_sent(physics):
    ana, ben = physics
    dropped = ana.evaluate_handle("""() => {
        const files = new DataTransfer();
        files.items.add(new File(['Question 1: 42'], 'answers.txt', {type: 'text/plain'}));
        return files;
    }""")
    conversation(ana).dispatch_event("dragover", {"dataTransfer": dropped})
    conversation(ana).dispatch_event("drop", {"dataTransfer": dropped})
    uploaded(ana, "answers.txt")
    composer(ana).fill("Mine")
    composer(ana).press("Enter")
    expect(conversation(ben).get_by_role("link", name="answers.txt, 14 bytes")).to_be_visible()


def test_an_image_pasted_into_the_message_box_is_attached(physics):
    ana, ben = physics
    composer(ana).evaluate("""(box, bytes) => {
        const clipboard = new DataTransfer();
        clipboard.items.add(new File([new Uint8Array(bytes)], 'image.png', {type: 'image/png'}));
        box.dispatchEvent(new ClipboardEvent('paste', {clipboardData: clipboard, bubbles: true, cancelable: true}));
    }""", list(BOARD["buffer"]))
    uploaded(ana, "image.png")
    composer(ana).press("Enter")
    expect(conversation(ben).get_by_role("img", name="image.png")).to_be_visible()


def test_while_a_file_uploads_its_progress_bar_shows_and_send_waits_for_it(physics):
    ana, ben = physics
    held = []
    ana.route("**/api/v1/uploads", lambda route: held.append(route))
    try:
        attach(ana, HANDOUT)
        files = ana.get_by_role("list", name="Files to send")
        expect(files.get_by_role("progressbar", name="Uploading handout.pdf")).to_be_visible()
        composer(ana).fill("Here it comes")
        expect(ana.get_by_role("button", name="Send")).to_be_disabled()
        composer(ana).press("Enter")  # waits too: the text stays
        expect(composer(ana)).to_have_value("Here it comes")

        held[0].continue_()
        uploaded(ana, "handout.pdf")
    finally:  # Ana's page is the file's: the next test's uploads go straight through
        ana.unroute("**/api/v1/uploads")
    ana.get_by_role("button", name="Send").click()
    expect(conversation(ben).get_by_role("link", name="handout.pdf, 1.2 MB")).to_be_visible()


def test_a_file_removed_before_sending_is_not_in_the_message(physics):
    ana, ben = physics
    attach(ana, BOARD, HANDOUT)
    uploaded(ana, "board.png")
    uploaded(ana, "handout.pdf")
    ana.get_by_role("button", name="Remove board.png").click()
    expect(ana.get_by_role("button", name="Remove handout.pdf")).to_be_focused()  # the next one
    composer(ana).fill("Only the handout")
    composer(ana).press("Enter")
    message = conversation(ben).get_by_role("listitem").filter(has_text="Only the handout")
    expect(message.get_by_role("link", name="handout.pdf, 1.2 MB")).to_be_visible()
    expect(message.get_by_role("img")).to_have_count(0)


def test_a_message_takes_ten_files_uploaded_three_at_a_time_as_the_server_takes_them(physics):
    ana, _ = physics
    in_flight, most = set(), []

    def count(request, started):
        if request.url.endswith("/api/v1/uploads"):
            (in_flight.add if started else in_flight.discard)(request)
            most.append(len(in_flight))
    listeners = {"request": lambda request: count(request, True),
                 "response": lambda response: count(response.request, False),
                 "requestfailed": lambda request: count(request, False)}
    for event, listener in listeners.items():
        ana.on(event, listener)
    try:
        attach(ana, *({"name": f"part{n}.txt", "mimeType": "text/plain", "buffer": b"x"} for n in range(11)))
        expect(ana.get_by_role("alert")).to_contain_text("at most 10 files")
        expect(ana.get_by_role("list", name="Files to send").get_by_role("listitem")).to_have_count(10)
        expect(ana.get_by_role("button", name="Remove part10.txt")).to_have_count(0)
        for n in range(10):
            uploaded(ana, f"part{n}.txt")  # none refused with 429 "Too many uploads at once"
    finally:  # Ana's page is the file's: the next test's requests are not counted
        for event, listener in listeners.items():
            ana.remove_listener(event, listener)
    assert max(most) == 3
    composer(ana).press("Enter")
    message = conversation(ana).get_by_role("listitem").filter(has_text="part0.txt")
    expect(message.get_by_role("link")).to_have_count(10)


@pytest.mark.parametrize("server_options", [{"max_upload_mb": 1}])
def test_a_file_over_the_limit_is_refused_with_the_servers_words(api, new_page):
    # A server of its own, with a lower limit: a page of its own too.
    api.create_room(api.register("ana")[0], "Physics", "Waves")
    ana = new_page()
    log_in_on_page(ana, "ana")
    open_room(ana, "Physics")
    attach(ana, HANDOUT)  # 1.19 MiB over a 1 MiB limit
    alert = ana.get_by_role("alert")
    expect(alert).to_contain_text("could not be uploaded: File too large")
    expect(alert).to_contain_text("handout.pdf")
    expect(ana.get_by_role("list", name="Files to send")).to_be_hidden()
    expect(ana.get_by_role("button", name="Send")).to_be_enabled()


def test_a_search_result_names_the_files_of_its_message(physics):
    ana, _ = physics
    attach(ana, HANDOUT)
    composer(ana).fill("The lab handout")
    uploaded(ana, "handout.pdf")
    composer(ana).press("Enter")
    expect(conversation(ana).get_by_role("link", name="handout.pdf, 1.2 MB")).to_be_visible()
    ana.get_by_role("searchbox", name="Search messages").fill("lab")
    result = ana.get_by_role("region", name="Search results").get_by_role("button").filter(has_text="The lab handout")
    for _ in range(40):  # the server indexes new messages about once a second
        ana.get_by_role("button", name="Search", exact=True).click()
        if result.count():
            break
        ana.wait_for_timeout(100)
    expect(result).to_contain_text("handout.pdf")
