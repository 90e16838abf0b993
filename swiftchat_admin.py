"""SwiftChat's administration commands: accounts and backups, straight on the database file.

    python swiftchat.py users list
    python swiftchat.py users add NAME [--password-stdin]
    python swiftchat.py users promote|demote|disable|enable NAME
    python swiftchat.py users set-password NAME [--password-stdin]
    python swiftchat.py backup FILE

Each command opens the database named by --db (or SWIFTCHAT_DB) through the
store, does one thing, prints one line (``users list``: one a user) and
exits 0; or prints one error line and exits 1, never a traceback. These
commands are not servers, so they run beside a running server on the same
file (they take no hold on it). The server notices what they did within a
few seconds: sessions that ended (a disabled account, a new password) are
closed, and no remembered token outlives a change (accounts.py).

Passwords come from a prompt, or from standard input with
--password-stdin; never from the command line, where other users of the
machine could read them. Everything here runs on the main thread.
"""

import argparse
import getpass
import logging
import os
import sys

import protocol
from accounts import DEFAULT_ITERATIONS, hash_password
from protocol import ApiError, iso, now
from store import Conflict, DatabaseBusy, LastAdmin, Store, StoreError

__all__ = ["main", "is_admin_command", "COMMANDS"]

COMMANDS = ("users", "backup")


class CommandError(Exception):
    """Said on one line, and the command exits 1."""


def is_admin_command(argv):
    """Whether these arguments name an administration command rather than start a server."""
    words = iter(argv)
    for word in words:
        if not word.startswith("-"):
            return word in COMMANDS
        if "=" not in word and word not in ("-h", "--help", "--version", "--password-stdin"):
            next(words, None)  # the option's value
    return False


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a mistake is one line and exit code 1, like every other error here."""

    def error(self, message):
        self.exit(1, f"swiftchat: {message} (see {self.prog} --help)\n")


def parse_args(argv, environ):
    # --db may come before the command or after it: --db x.db users list, users list --db x.db.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=argparse.SUPPRESS,
                        help="SQLite database file (default swiftchat.db) [env SWIFTCHAT_DB]")
    parser = OneLineParser(prog="swiftchat.py", parents=[common],
                           description="Manage SwiftChat's accounts and back it up.")
    parser.add_argument("--pbkdf2-iterations", type=int, default=int(environ.get(
        "SWIFTCHAT_PBKDF2_ITERATIONS", DEFAULT_ITERATIONS)), help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    users = commands.add_parser("users", help="list and change accounts", parents=[common])
    actions = users.add_subparsers(dest="action", required=True, parser_class=OneLineParser)
    actions.add_parser("list", help="every user, one a line", parents=[common])
    for action, text in [("add", "create an account"), ("promote", "make an admin"),
                         ("demote", "make a user"), ("set-password", "give a new password"),
                         ("disable", "stop an account (its sessions end)"),
                         ("enable", "let a disabled account in again")]:
        command = actions.add_parser(action, help=text, parents=[common])
        command.add_argument("name")
        if action in ("add", "set-password"):
            command.add_argument("--password-stdin", action="store_true",
                                 help="read the password from standard input")
    backup = commands.add_parser("backup", help="a consistent copy of the live database",
                                 parents=[common])
    backup.add_argument("file")
    args = parser.parse_args(argv)
    if "db" not in vars(args):
        args.db = environ.get("SWIFTCHAT_DB", "swiftchat.db")
    return args


def main(argv, environ=os.environ):
    args = parse_args(argv, environ)
    # The store's warnings (a database others could read, tightened) are the
    # server's to give; a command says one line.
    logging.getLogger("swiftchat").setLevel(logging.ERROR)
    try:
        if args.db == ":memory:" or not os.path.isfile(args.db):
            raise CommandError(f"no database at {args.db}")
        store = open_store(args.db)
        try:
            print(run(store, args))
        finally:
            store.close()
    except CommandError as exc:
        print(f"swiftchat: {exc}", file=sys.stderr)
        return 1
    return 0


def open_store(path):
    try:
        return Store(path)
    except StoreError as exc:
        raise CommandError(said(exc, path)) from None


def run(store, args):
    """Do the command; return its line of output."""
    try:
        if args.command == "backup":
            return backup(store, args.db, args.file)
        if args.action == "list":
            return "\n".join(user_line(user) for user in all_users(store))
        if args.action == "add":
            return add(store, args)
        return change(store, args)
    except LastAdmin:
        raise CommandError("at least one admin must remain") from None
    except StoreError as exc:
        raise CommandError(said(exc, args.db)) from None


def said(exc, path):
    if isinstance(exc, DatabaseBusy):
        return f"the database {path} is busy (another program is writing to it); try again"
    return f"cannot use the database {path}: {exc}"


def all_users(store):
    users, total = store.list_users(100, 0)
    while len(users) < total:
        users += store.list_users(100, len(users))[0]
    return users


def user_line(user):
    return " ".join([user["id"], user["username"], user["role"]]
                    + (["disabled"] if user["disabled"] else []))


def add(store, args):
    name = checked(protocol.username, {"username": args.name})
    password = new_password(args)
    try:
        user = store.create_user(name, hash_password(password, args.pbkdf2_iterations),
                                 iso(now()))
    except Conflict:
        raise CommandError(f"a user named {name} exists already") from None
    return f"added {user['username']} ({user['id']})"


def change(store, args):
    name = checked(protocol.username, {"username": args.name})  # never echo a name with a newline
    user = store.user_with_password(name)
    if user is None:
        raise CommandError(f"no user named {name}")
    changes = {"promote": {"role": "admin"}, "demote": {"role": "user"},
               "disable": {"disabled": True}, "enable": {"disabled": False}}.get(args.action)
    if changes is None:  # set-password
        changes = {"password_hash": hash_password(new_password(args), args.pbkdf2_iterations)}
    user, ended = store.update_user(user["id"], now(), **changes)
    said_of = {"promote": "is now an admin", "demote": "is now a user",
               "disable": "is disabled", "enable": "is enabled",
               "set-password": "has a new password"}[args.action]
    sessions = f"; {len(ended)} session{'s' * (len(ended) != 1)} ended" if ended else ""
    return f"{user['username']} {said_of}{sessions}"


def new_password(args):
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():
        raise CommandError("no terminal to ask for the password on: use --password-stdin")
    else:
        try:
            password = getpass.getpass(f"Password for {args.name}: ")
            again = getpass.getpass("Again: ")
        except (EOFError, KeyboardInterrupt):  # no terminal to ask on, or Ctrl+C
            raise CommandError("no password given (or use --password-stdin)") from None
        if again != password:
            raise CommandError("the two passwords differ")
    return checked(protocol.password, {"password": password})


def checked(check, fields):
    try:
        return check(fields)
    except ApiError as exc:
        raise CommandError(exc.error) from None


def backup(store, db, file):
    try:
        store.backup(file)
    except FileExistsError:  # also a link, dangling or not: never written through
        raise CommandError(f"{file} exists already; name a new file") from None
    except OSError as exc:
        raise CommandError(f"cannot write {file}: {exc.strerror}") from None
    return f"backed up {db} to {file}"
