"""A room's history as a file: JSON, CSV or one printable HTML page, made as it is sent.

``export_file(room, messages, file_format, today)`` gives the file's name,
its content type, and an iterator of its bytes. Nothing is made until the
iterator is read, and only about ``CHUNK_BYTES`` at a time: with
``Store.room_history``, which reads the room a page at a time, memory stays
the same whatever the room holds (CONTRACT 1.3, "Export").

This module owns the three formats and the file's name. It does not read
the store, check who may export (``swiftchat_core.room_to_export``), or
know how the bytes travel: the REST route hands them to the HTTP server as
a ``Download``, the command line writes them to a file or standard output.
It runs on whichever thread reads the chunks.
"""

import csv
import datetime
import html
import io

from protocol import COMPACT_JSON, history_message, iso

__all__ = ["export_file", "FORMATS", "CHUNK_BYTES"]

CHUNK_BYTES = 64 * 1024  # about this much text is encoded and handed on at once

# Room fields an export carries: the room as GET /rooms shows it, without
# who asked (room_to_export's room also says whether they are a member).
ROOM_FIELDS = ("id", "name", "description", "creator_id", "created_at", "visibility", "kind",
               "posting", "slow_mode")

CSV_COLUMNS = ("id", "timestamp", "username", "content", "edited_at", "attachments")

# Characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# Characters no file name should carry on any system; each becomes "_".
UNSAFE_IN_FILE_NAMES = set('/\\:*?"<>|')


def export_file(room, messages, file_format, today=None):
    """(file name, content type, iterator of bytes) of room's history in file_format.

    messages: the room's messages as Store.room_history gives them, oldest
    first (any iterable; it is read as the bytes are). file_format: one of FORMATS. today: a
    datetime.date for the file's name; by default today's date in UTC, the
    time zone of every time the file holds.
    """
    today = today or datetime.datetime.now(datetime.timezone.utc).date()
    extension, content_type, pieces = FORMATS[file_format]
    return file_name(room["name"], today, extension), content_type, in_chunks(pieces(room, messages))


def file_name(room_name, today, extension):
    """<room name>-<YYYY-MM-DD>.<extension>, with characters unsafe in a file name made "_"."""
    safe = "".join("_" if char in UNSAFE_IN_FILE_NAMES or not char.isprintable() else char
                   for char in room_name)
    return f"{safe}-{today.isoformat()}.{extension}"


def in_chunks(pieces):
    """The text pieces as UTF-8 bytes, joined into chunks of about CHUNK_BYTES.

    Why: one write (and, over HTTP, one chunk header) per message would cost
    more than the message; one for the whole file would hold it in memory.
    """
    batch, size = [], 0
    for piece in pieces:
        batch.append(piece)
        size += len(piece)
        if size >= CHUNK_BYTES:
            yield "".join(batch).encode("utf-8")
            batch, size = [], 0
    if batch:
        yield "".join(batch).encode("utf-8")


# -- JSON: {"room": {...}, "messages": [history message, ...]}, a message a line --

def json_pieces(room, messages):
    shown_room = {field: room[field] for field in ROOM_FIELDS if field in room}
    yield '{"room":' + COMPACT_JSON.encode(shown_room) + ',"messages":['
    separator = "\n"
    for message in messages:
        # As GET /messages shows it; an export is a record, not a view of
        # who is online now, so no sender is.
        yield separator + COMPACT_JSON.encode(history_message(message, False))
        separator = ",\n"
    yield "\n]}\n"


# -- CSV: a header row, then a row a message ---------------------------------------

def csv_pieces(room, messages):
    """The CSV text, a row a message. A text cell that begins with = + - @, a tab or a
    carriage return gets a ' before it, as OWASP's "CSV Injection" page advises: a
    spreadsheet then shows it as text instead of running it as a formula. Only the
    CSV is changed so; the JSON export keeps every text exactly.
    """
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")  # RFC 4180's line ends
    writer.writerow(CSV_COLUMNS)
    for message in messages:
        writer.writerow(csv_row(message))
        yield text.getvalue()
        text.seek(0)
        text.truncate()
    yield text.getvalue()  # the header alone, for a room without messages


def csv_row(message):
    edited_at = message["edited_at"]
    files = "; ".join(f"{item['filename']} ({item['url']})" for item in message["attachments"])
    return [message["id"], iso(message["timestamp"]), as_text_cell(message["username"]),
            as_text_cell(message["content"]), "" if edited_at is None else iso(edited_at),
            as_text_cell(files)]


def as_text_cell(text):
    return "'" + text if text.startswith(FORMULA_STARTS) else text


# -- HTML: one printable page, no scripts --------------------------------------------

# The page's only style. The Content-Security-Policy in the page itself lets
# nothing else load or run, should any text ever escape its escaping.
HTML_HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #000; background: #fff; }}
h1 {{ font-size: 1.5em; margin: 0 0 .2em; }}
.message {{ margin: 0 0 .8em; break-inside: avoid; }}
.meta {{ color: #555; font-size: .85em; }}
.content {{ white-space: pre-wrap; overflow-wrap: anywhere; margin: .1em 0 0; }}
ul {{ margin: .2em 0 0; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p class="meta">{description}</p>
"""


def html_pieces(room, messages):
    escape = html.escape  # quote=True: " and ' too, so no text can leave an attribute
    yield HTML_HEAD.format(title=escape(room["name"]), description=escape(room["description"]))
    count = 0
    for message in messages:
        yield html_message(message)
        count += 1
    yield f'<p class="meta">{count} message{"s" * (count != 1)}</p>\n</body>\n</html>\n'


def html_message(message):
    escape = html.escape
    sent = iso(message["timestamp"])
    edited = "" if message["edited_at"] is None else f", edited {iso(message['edited_at'])}"
    files = "".join(f"<li>{escape(item['filename'])} ({escape(item['url'])})</li>"
                    for item in message["attachments"])
    return (f'<div class="message" id="m{int(message["id"])}">'
            f'<div class="meta"><strong>{escape(message["username"])}</strong> '
            f'<time datetime="{sent}">{sent}</time>{edited}</div>'
            f'<p class="content">{escape(message["content"])}</p>'
            + (f"<ul>{files}</ul>" if files else "") + "</div>\n")


# Each format: (file name extension, content type, the function that makes its text).
FORMATS = {
    "json": ("json", "application/json", json_pieces),
    "csv": ("csv", "text/csv; charset=utf-8", csv_pieces),
    "html": ("html", "text/html; charset=utf-8", html_pieces),
}
