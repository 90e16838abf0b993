"""SwiftChat's administration commands, straight on the database file: accounts, export, backups.

    python swiftchat.py users list
    python swiftchat.py users add NAME [--password-stdin]
    python swiftchat.py users import ROSTER.csv [--out FILE]
    python swiftchat.py users promote|demote|disable|enable NAME
    python swiftchat.py users set-password NAME [--password-stdin]
    python swiftchat.py export ROOM --format csv|json|html [--out FILE]
    python swiftchat.py backup FILE [--files-dir DIR]
    python swiftchat.py restore FILE [--files-dir DIR]

Each command opens the database named by --db (or SWIFTCHAT_DB), or the
PostgreSQL database of --database-url (or SWIFTCHAT_DATABASE_URL), through
the store, does one thing, prints one line (``users list``: one a user;
``users import``: a CSV of the accounts it created; ``export``: the file,
unless --out names one) and exits 0; or prints one error line and exits 1,
never a traceback. These commands are not servers, so they run beside a
running server on the same file (they take no hold on it). The server
notices what they did within a few seconds: sessions that ended (a
disabled account, a new password) are closed, and no remembered token
outlives a change (accounts.py).

On PostgreSQL, ``backup`` and ``restore`` say to use pg_dump and psql.
``restore`` is the exception: it replaces the file, so it takes the hold a
server takes (swiftchat.hold_database) and refuses while a server has it.
Before anything opens a database, ``not_a_database`` looks at what the path
names (the server asks it too): the store tightens a database file's mode,
and must never do that to a folder or a file of something else.

Passwords come from a prompt, or from standard input with
--password-stdin; never from the command line, where other users of the
machine could read them. A roster's passwords come from its file, and the
ones made for it go to standard output or a new file only its owner may
read. What a roster may hold, and how its accounts are made, is
accounts.py's (the same as POST /users/import); what an export holds is
export.py's (the same as GET /rooms/{id}/export, without its check of who
asks: whoever may open the database may read it all). Everything here
runs on the main thread (the roster's passwords are hashed on a few more).
"""

import argparse
import contextlib
import csv
import getpass
import io
import logging
import os
import shutil
import stat
import sys
import time

try:  # POSIX only: on Windows no hold is taken, and restore trusts that the server is stopped
    import fcntl
except ImportError:
    fcntl = None

import export
import protocol
from accounts import DEFAULT_ITERATIONS, Accounts, ImportRefused, hash_password, stored_secret
from files import LinkSigner
from protocol import ApiError, iso, now
import store_postgres
from store import Conflict, DatabaseBusy, LastAdmin, Store, StoreError

__all__ = ["main", "is_admin_command", "not_a_database", "COMMANDS"]

COMMANDS = ("users", "export", "backup", "restore")

# The first 16 bytes of every SQLite database file (https://sqlite.org/fileformat.html, 1.3).
SQLITE_HEADER = b"SQLite format 3\x00"


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
    common.add_argument("--database-url", default=argparse.SUPPRESS,
                        help="the server's PostgreSQL database instead of --db "
                             "[env SWIFTCHAT_DATABASE_URL]")
    parser = OneLineParser(prog="swiftchat.py", parents=[common],
                           description="Manage SwiftChat's accounts, back it up and restore it.")
    parser.add_argument("--pbkdf2-iterations", type=int, default=int(environ.get(
        "SWIFTCHAT_PBKDF2_ITERATIONS", DEFAULT_ITERATIONS)), help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    add_users_commands(commands, common)
    exporting = commands.add_parser("export", help="a room's whole history as a file",
                                    parents=[common])
    exporting.add_argument("room", help="the room's id, or its name")
    exporting.add_argument("--format", required=True, choices=export.FORMATS)
    exporting.add_argument("--out", help="a new file to write it to (only you may read it); "
                                         "standard output by default")
    # Its file links are signed as the server signs them: with the secret the
    # server was given (JWT_SECRET), else the one kept in the database.
    exporting.set_defaults(jwt_secret=environ.get("SWIFTCHAT_JWT_SECRET")
                           or environ.get("JWT_SECRET"))
    backup = commands.add_parser("backup", help="a consistent copy of the live database",
                                 parents=[common])
    backup.add_argument("file")
    restore = commands.add_parser("restore", help="replace the database with a backup "
                                  "(the server stopped)", parents=[common])
    restore.add_argument("file")
    for command in (backup, restore):
        command.add_argument("--files-dir", default=environ.get("SWIFTCHAT_FILES_DIR"),
                             help="the server's folder of uploaded files, if it was started with "
                                  "one (default: <db>.files) [env SWIFTCHAT_FILES_DIR]")
    args = parser.parse_args(argv)
    if "db" not in vars(args):
        args.db = environ.get("SWIFTCHAT_DB", "swiftchat.db")
    if "database_url" not in vars(args):
        args.database_url = environ.get("SWIFTCHAT_DATABASE_URL")
    if args.database_url:
        args.db = "at --database-url"  # how messages name the database; never the URL's password
    return args


def add_users_commands(commands, common):
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
    roster = actions.add_parser("import", help="create the accounts of a roster (CSV: username, "
                                "optional password and role)", parents=[common])
    roster.add_argument("file")
    roster.add_argument("--out", help="a new file for the usernames and passwords (only you may "
                                      "read it); standard output by default")


def main(argv, environ=os.environ):
    args = parse_args(argv, environ)
    # The store's warnings (a database others could read, tightened) are the
    # server's to give; a command says one line.
    logging.getLogger("swiftchat").setLevel(logging.ERROR)
    try:
        if args.database_url and args.command in ("backup", "restore"):
            raise CommandError(f"{args.command} works on SQLite's file; on PostgreSQL use "
                               f"{'pg_dump' if args.command == 'backup' else 'psql'} (see the README)")
        if args.command == "restore":
            output = restore(args.db, args.file, args.files_dir)
        else:
            output = on_the_database(args)
        if output is not None:  # None: the command wrote its output itself (an export)
            print(output)
        sys.stdout.flush()
    except CommandError as exc:
        print(f"swiftchat: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `users list | head -2`: the reader went away, which is no error
        # The recipe of the signal module's documentation: stdout to /dev/null,
        # so that Python's own flush at exit does not fail a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


def on_the_database(args):
    """Open the database, do the command, close it; the command's output."""
    store = open_postgres(args.database_url) if args.database_url else open_store(args.db)
    try:
        return run(store, args)
    finally:
        store.close()


def open_store(path):
    """The store of an existing database; CommandError for anything else (never creates one)."""
    if path == ":memory:" or not os.path.lexists(path):
        raise CommandError(f"no database at {path}: start the server once to create it "
                           f"(python swiftchat.py --db {path}), or name another with --db FILE")
    problem = not_a_database(path)
    if problem:
        raise CommandError(f"cannot open the database {path}: {problem}")
    try:
        return Store(path)
    except StoreError as exc:
        raise CommandError(said(exc, path)) from None


def open_postgres(url):
    """The store of the server's PostgreSQL database; CommandError if it cannot be opened."""
    try:
        return store_postgres.PostgresStore(url)
    except StoreError as exc:
        raise CommandError(f"cannot open the PostgreSQL database: {exc}") from None


def not_a_database(path):
    """Why path cannot be a SQLite database (a folder, a file of something else); None if it may be.

    Asked before the store opens a file, which tightens its mode: a file
    that is not a database is left as it was. A path with nothing there
    may become a new database, and an empty file is one; whether they can
    be created or read is for the opening to say, in its own words.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISDIR(mode):
        return f"it is a folder; name a file, e.g. --db {os.path.join(path, 'swiftchat.db')}"
    if not stat.S_ISREG(mode):
        return "it is not a regular file"
    try:
        with open(path, "rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except OSError:
        return None
    if header and header != SQLITE_HEADER:
        return "it is not a SQLite database (it was left as it is)"
    return None


def run(store, args):
    """Do the command; return its output (None: written already)."""
    try:
        if args.command == "backup":
            return backup(store, args.db, args.file, args.files_dir)
        if args.command == "export":
            return export_room(store, args)
        if args.action == "list":
            return "\n".join(user_line(user) for user in all_users(store))
        if args.action == "add":
            return add(store, args)
        if args.action == "import":
            return import_roster(store, args)
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


# -- a roster: users import ------------------------------------------------------------

ROSTER_COLUMNS = ("username", "password", "role")


def import_roster(store, args):
    """Create the roster's accounts, all or none; the CSV of those created, or None with --out.

    The passwords go to a new file (mode 0600) with --out, which is made
    first, so that no account is ever created whose password could not be
    written down. Each username skipped (taken already) is one line on
    standard error; it does not make the command fail.
    """
    lines, entries = read_roster(args.file)
    if args.out is None:
        return passwords_csv(create_accounts(store, args, lines, entries)).rstrip("\n")
    with written_new(args.out) as out:
        created = create_accounts(store, args, lines, entries)
        out.write(passwords_csv(created).encode("utf-8"))
    return f"created {len(created)} account{'s' * (len(created) != 1)}; " \
           f"their passwords are in {args.out}"


def create_accounts(store, args, lines, entries):
    """The accounts created, [(user, password)]; a line on standard error for each skipped."""
    try:
        # No secret: this Accounts issues no token; it checks, hashes and creates as the server's.
        created, skipped = Accounts(store, None, args.pbkdf2_iterations).import_users(entries)
    except ImportRefused as exc:
        raise CommandError(f"{args.file} line {lines[exc.index]}: {exc.error}") from None
    for username, error in skipped:
        print(f"skipped {username}: {error}", file=sys.stderr)
    return created


def read_roster(path):
    """(the line number of each entry, [{"username", "password"?, "role"?}]) of a roster file.

    CSV, UTF-8 (a spreadsheet's byte order mark is allowed); a first row
    with a cell "username" names the columns, else they are username,
    password, role in that order. Cells are stripped of the spaces around
    them (a roster typed by hand has them), an empty one is one not given,
    and blank lines are passed over. Line numbers count every line of the
    file, the header's too, as a text editor shows them.
    """
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise CommandError(f"{path} line {line}: not UTF-8 text") from None
    lines, entries = roster_entries(path, csv.reader(io.StringIO(text, newline="")))
    if not entries:
        raise CommandError(f"{path} names no account")
    return lines, entries


def roster_entries(path, reader):
    """(line numbers, entries) of the rows a csv.reader reads: read_roster's rules."""
    lines, entries, columns, line = [], [], None, 1
    try:
        for row in reader:
            cells = [cell.strip() for cell in row]
            if columns is None and "username" in (cell.lower() for cell in cells):
                columns = roster_header(path, line, cells)
            elif any(cells):
                columns = columns or ROSTER_COLUMNS
                if len(cells) > len(columns):
                    raise CommandError(f"{path} line {line}: more than {len(columns)} cells")
                lines.append(line)
                entries.append({name: cell for name, cell in zip(columns, cells) if cell})
            line = reader.line_num + 1  # where the next row begins (a quoted cell may hold lines)
    except csv.Error as exc:
        raise CommandError(f"{path} line {reader.line_num}: {exc}") from None
    return lines, entries


def roster_header(path, line, cells):
    """The columns a header row names; CommandError for one that is not a roster's."""
    columns = [cell.lower() for cell in cells]
    unknown = [name for name in columns if name not in ROSTER_COLUMNS]
    if unknown or len(set(columns)) < len(columns):
        raise CommandError(f"{path} line {line}: the columns may be username, password and "
                           "role, each once")
    return columns


def passwords_csv(created):
    """username,password and a line for each account created, as CSV (a password may hold a comma)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["username", "password"])
    writer.writerows((user["username"], password) for user, password in created)
    return text.getvalue()


# -- export: a room's history as a file ---------------------------------------------

def export_room(store, args):
    """Write the room's history to --out (a new file, mode 0600) or standard output.

    No check of who asks: whoever may open the database may read it all.
    """
    room = room_by_id_or_name(store, args.room)
    store.file_link = LinkSigner(args.jwt_secret or stored_secret(store)).url
    _, _, chunks = export.export_file(room, store.room_history(room["id"]), args.format)
    if args.out is None:
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return None
    with written_new(args.out) as out:
        for chunk in chunks:
            out.write(chunk)
    return f"exported room {room['id']} to {args.out}"


def room_by_id_or_name(store, wanted):
    """The room with this id, else the one room with this name (any letter case).

    Names are unique among public rooms only (a private room may share
    one), so a name may be ambiguous: CommandError then lists the rooms'
    ids, to name one by. Direct rooms are found by id only.
    """
    room = store.room(wanted)
    if room is not None:
        return room
    named = [room for room in all_rooms(store) if room["name"].casefold() == wanted.casefold()]
    if not named:
        raise CommandError(f"no room has the id or name {wanted!r}")
    if len(named) > 1:
        raise CommandError(f"{len(named)} rooms are named {wanted!r}: "
                           f"{', '.join(room['id'] for room in named)}; name one by its id")
    return named[0]


def all_rooms(store):
    """Every room but the direct ones (as an admin lists them)."""
    rooms, total = store.list_rooms(100, 0, viewer_is_admin=True)
    while len(rooms) < total:
        rooms += store.list_rooms(100, len(rooms), viewer_is_admin=True)[0]
    return rooms


# -- new files --------------------------------------------------------------------------

@contextlib.contextmanager
def new_private_file(path):
    """A new file for its owner only (mode 0600), open to write bytes; removed if the block fails.

    O_EXCL and O_NOFOLLOW: never into an existing file, nor where a link
    points. Raises OSError (FileExistsError for a name taken).
    """
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with open(handle, "wb") as file:
            yield file
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise


@contextlib.contextmanager
def written_new(path):
    """new_private_file(path), its failures said as CommandError."""
    try:
        with new_private_file(path) as file:
            yield file
    except FileExistsError:
        raise CommandError(f"{path} exists already; name a new file") from None
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror}") from None


# -- backup and restore ------------------------------------------------------------
# Uploaded files live in a folder beside the database, <db>.files, or where
# --files-dir says (CONTRACT 1.3, "Files and images"); a backup keeps them in
# FILE.files whichever it was, and restore puts them back where the server
# looks for them. A database whose server never took an upload has no folder,
# so both commands copy files only where the folder exists.

def files_of(db, files_dir=None):
    """The folder of a database's uploads: files_dir if the server is given one, else <db>.files."""
    return files_dir or f"{db}.files"


def check_files_dir(db, files_dir):
    """CommandError for a --files-dir that cannot be the server's folder of uploads: a file,
    or a folder that holds the database itself (its copy would take the database along)."""
    if files_dir is None:
        return
    if os.path.lexists(files_dir) and not os.path.isdir(files_dir):
        raise CommandError(f"--files-dir {files_dir} is not a folder")
    folder, database = os.path.realpath(files_dir), os.path.realpath(db)
    if os.path.commonpath([folder, database]) == folder:
        raise CommandError(f"--files-dir {files_dir} holds the database {db}: uploads need a "
                           "folder of their own")


def backup(store, db, file, files_dir=None):
    check_files_dir(db, files_dir)
    try:
        store.backup(file)
    except FileExistsError:  # also a link, dangling or not: never written through
        raise CommandError(f"{file} exists already; name a new file") from None
    except OSError as exc:
        raise CommandError(f"cannot write {file}: {exc.strerror}") from None
    folder = files_of(db, files_dir)
    if os.path.isdir(folder):
        # After the database's snapshot: a file uploaded meanwhile is one
        # more (unattached) file, never a message without its file.
        copy_folder(folder, files_of(file))
        return f"backed up {db} to {file}, and its files to {files_of(file)}"
    if files_dir:  # named, so its absence is a mistake worth a line, not a silent backup
        raise CommandError(f"backed up {db} to {file}, but found no files folder at {files_dir}")
    return f"backed up {db} to {file}"


def copy_folder(source, target):
    """Copy a folder of uploads to a new folder, for its owner only (mode 0700, files 0600)."""
    try:
        shutil.copytree(source, target, copy_function=shutil.copyfile)
        os.chmod(target, 0o700)
        for folder, _, names in os.walk(target):
            for name in names:
                os.chmod(os.path.join(folder, name), 0o600)
    except FileExistsError:
        raise CommandError(f"{target} exists already; name a new file") from None
    except (OSError, shutil.Error) as exc:
        raise CommandError(f"cannot copy {source} to {target}: {exc}") from None


def restore(db, backup_file, files_dir=None):
    """Replace the database with a backup made by `backup`, the server stopped; the line to print.

    The replaced database is kept, with what its write-ahead log held folded
    into it, as <db>.before-restore-<local time>; its -wal and -shm are
    removed before the backup takes its place, or SQLite would replay them
    onto the backup (65 messages became 68: issue #34).
    """
    check_restore(db, backup_file)
    check_files_dir(db, files_dir)
    kept_name = f"{db}.before-restore-{time.strftime('%Y%m%d-%H%M%S')}"
    with held_as_a_server_holds_it(db):
        copy = checked_copy(backup_file, f"{db}.restoring")
        try:
            kept = keep_replaced(db, kept_name)
            os.replace(copy, db)
        finally:
            remove_database_files(copy)  # gone already, unless something failed
        restore_files(files_of(db, files_dir), backup_file, kept_name)
    done = f"restored {db} from {backup_file}"
    return done if kept is None else f"{done}; the database it replaced is kept as {kept}"


def check_restore(db, backup_file):
    """CommandError for a restore that would do harm or nothing, before anything is touched."""
    if db == ":memory:":
        raise CommandError("--db :memory: keeps nothing to restore into; name the database file")
    if not os.path.exists(backup_file):
        raise CommandError(f"no backup at {backup_file}")
    for path, what in [(backup_file, "restore from"), (db, "replace the database")]:
        problem = not_a_database(path)
        if problem:
            raise CommandError(f"cannot {what} {path}: {problem}")
    if os.path.exists(db) and os.path.samefile(backup_file, db):
        raise CommandError(f"{backup_file} is the database itself; name a backup")


@contextlib.contextmanager
def held_as_a_server_holds_it(db):
    """Hold the database file as a running server does, for the restore's length.

    The hold is swiftchat.hold_database's flock(2) on the file itself: it
    fails while a server runs on the database, and a server started
    meanwhile refuses to start. A database not there yet has no server.
    """
    if fcntl is None or not os.path.exists(db):
        yield
        return
    try:
        hold = open(db, "rb")
    except OSError as exc:
        raise CommandError(f"cannot open the database {db}: {exc.strerror}") from None
    with hold:
        try:
            fcntl.flock(hold, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise CommandError(f"the database {db} is in use by a running SwiftChat server: "
                               "stop the server first") from None
        yield


def checked_copy(backup_file, copy):
    """Copy the backup to a new file beside the database, and open it once as a store.

    Opening it proves it is a SwiftChat database (and brings an older
    one's schema up to date) before anything is replaced.
    """
    remove_database_files(copy)  # left by a restore that was stopped half-way
    try:
        copy_to_new_file(backup_file, copy)
        Store(copy).close()
    except OSError as exc:
        remove_database_files(copy)
        raise CommandError(f"cannot copy {backup_file} to {copy}: {exc.strerror}") from None
    except StoreError as exc:
        remove_database_files(copy)
        raise CommandError(f"{backup_file} is not a SwiftChat backup: {exc}") from None
    return copy


def copy_to_new_file(source, target):
    """Copy source to a new file (new_private_file), on the disk before it returns."""
    with open(source, "rb") as reading, new_private_file(target) as writing:
        shutil.copyfileobj(reading, writing)
        os.fsync(writing.fileno())


def keep_replaced(db, kept):
    """Keep the database at `kept`, its write-ahead log folded in, and remove its -wal and -shm.

    Returns kept, or None when there was no database to keep. The old file
    gets its new name by a hard link, so the database's own name never
    points at nothing (a server starting meanwhile still finds it held).
    """
    if not os.path.exists(db) or os.path.getsize(db) == 0:
        remove_database_files(db, only_logs=True)
        return None
    fold_log(db)
    try:
        os.link(db, kept)
    except FileExistsError:
        raise CommandError(f"{kept} exists already; try again in a second") from None
    except OSError:  # a file system without hard links: a moment without the name, then
        os.rename(db, kept)
    remove_database_files(db, only_logs=True)
    return kept


def fold_log(db):
    """Fold the -wal into the database: the store's close does it (a TRUNCATE checkpoint)."""
    open_store(db).close()
    if os.path.exists(f"{db}-wal") and os.path.getsize(f"{db}-wal") > 0:
        raise CommandError(f"another program has {db} open, so its -wal could not be folded "
                           "into it; close that program and try again")


def remove_database_files(path, only_logs=False):
    for name in ([] if only_logs else [path]) + [f"{path}-wal", f"{path}-shm"]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def restore_files(folder, backup_file, kept):
    """The uploads as the backup had them, in folder; the replaced ones are kept beside the kept
    database (<kept>.files)."""
    if os.path.isdir(folder):
        shutil.move(folder, files_of(kept))  # a move, not a rename: --files-dir may be on another disk
    if os.path.isdir(files_of(backup_file)):
        copy_folder(files_of(backup_file), folder)
