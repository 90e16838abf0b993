"""`python swiftchat.py users import ROSTER.csv` (issue #34 item 1), beside a running server.

Each test writes a roster, runs the command as a real process on the
database of a server running in this process, and logs in through that
server's API with the passwords the command gave out.
"""

import csv
import io
import os
import re
import stat

import pytest

from conftest import Api, login, run_cli

# The contract's generated password: 12 letters and digits, none of 0 O 1 l I.
GENERATED = r"[a-km-zA-HJ-NP-Z2-9]{12}"


@pytest.fixture
def chat(serve_with, tmp_path):
    """(an API client of a running server, the path of its database)."""
    server = serve_with()
    return Api(server.http_port), str(tmp_path / "chat.db")


@pytest.fixture
def roster(tmp_path):
    """roster(text or bytes) writes a roster file and returns its path."""
    def write(content):
        path = tmp_path / "roster.csv"
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return str(path)
    return write


def import_roster(db, path, *options):
    return run_cli("--pbkdf2-iterations", "1000", "users", "import", path, "--db", db, *options)


def passwords_in(text):
    """{username: password} of the CSV the command gives out, which must start with its header."""
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["username", "password"], text
    return dict(rows[1:])


def usernames(db):
    listed = run_cli("users", "list", "--db", db).stdout
    return [line.split()[1] for line in listed.splitlines() if line]  # "" when there are none


def test_the_roster_is_created_and_each_account_printed_with_its_password(chat, roster):
    api, db = chat
    path = roster('username,password,role\nalice,,\nbob,"pass,word 1",admin\n')
    result = import_roster(db, path)
    assert (result.returncode, result.stderr) == (0, "")
    passwords = passwords_in(result.stdout)
    assert list(passwords) == ["alice", "bob"]
    assert passwords["bob"] == "pass,word 1"  # a given password is printed too
    for username, password in passwords.items():
        answer = login(api, username, password)
        # A password someone else chose, given or generated, is changed at the first login.
        assert answer.status == 200 and answer.data["must_change_password"] is True
    token = login(api, "bob", "pass,word 1").data["token"]
    assert api.get("/users/me", token=token).data["user"]["role"] == "admin"


def test_a_missing_password_is_made_of_12_letters_and_digits_without_look_alikes(chat, roster):
    _, db = chat
    result = import_roster(db, roster("".join(f"student{number}\n" for number in range(30))))
    passwords = passwords_in(result.stdout)
    assert len(passwords) == 30 and len(set(passwords.values())) == 30
    assert all(re.fullmatch(GENERATED, password) for password in passwords.values())


def test_without_a_header_the_columns_are_username_password_and_role(chat, roster):
    api, db = chat
    result = import_roster(db, roster("carol,password123,admin\ndave\n"))
    assert passwords_in(result.stdout)["carol"] == "password123"
    token = login(api, "carol").data["token"]
    assert api.get("/users/me", token=token).data["user"]["role"] == "admin"


def test_existing_usernames_are_skipped_one_line_each_and_the_command_succeeds(chat, roster):
    api, db = chat
    api.register("alice")
    result = import_roster(db, roster("username\nALICE\nerin\n"))
    assert result.returncode == 0
    assert list(passwords_in(result.stdout)) == ["erin"]
    assert result.stderr == "skipped ALICE: Username already taken\n"


@pytest.mark.parametrize("content, line", [
    ("username\nalice\nx\n", 3),  # the header row is line 1
    ("alice\n\nbob,short\n", 3),  # a blank line is a line too
    ("alice\nbob,password123,king\n", 2),
    ("alice,password123,user,extra\n", 1),
    ("username,email\nalice,a@example.org\n", 1),
    (b"alice\nb\xf8b\n", 2),  # not UTF-8
])
def test_a_malformed_roster_creates_nothing_and_names_its_line(chat, roster, content, line):
    _, db = chat
    result = import_roster(db, roster(content))
    assert (result.returncode, result.stdout) == (1, "")
    [said] = result.stderr.splitlines()
    assert said.startswith(f"swiftchat: {roster(content)} line {line}: "), said
    assert "alice" not in usernames(db)


def test_a_roster_without_accounts_is_refused(chat, roster):
    _, db = chat
    result = import_roster(db, roster("username,password\n\n"))
    assert result.returncode == 1 and result.stderr.endswith("names no account\n")


def test_out_puts_the_passwords_in_a_new_file_only_its_owner_may_read(chat, roster, tmp_path):
    api, db = chat
    out = tmp_path / "passwords.csv"
    result = import_roster(db, roster("frank\ngrace,password123\n"), "--out", str(out))
    assert result.returncode == 0
    assert result.stdout == f"created 2 accounts; their passwords are in {out}\n"
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    passwords = passwords_in(out.read_text())
    assert login(api, "frank", passwords["frank"]).status == 200


def test_out_naming_a_file_that_exists_creates_no_account(chat, roster, tmp_path):
    _, db = chat
    out = tmp_path / "passwords.csv"
    out.write_text("kept")
    result = import_roster(db, roster("henry\n"), "--out", str(out))
    assert (result.returncode, result.stderr) == (1, f"swiftchat: {out} exists already; "
                                                     "name a new file\n")
    assert out.read_text() == "kept" and "henry" not in usernames(db)
