"""A teacher's command line and deployment (issue #34): restore, the banner, and the papercuts.

Every test runs `python swiftchat.py ...` as a real process, against a
database a real server (a process too, where it must die by SIGKILL) has
written. The database papercuts are about what a newcomer reads when the
database cannot be opened: one line, saying why, and nothing changed.
"""

import ctypes
import http.client
import ipaddress
import json
import os
import re
import select
import socket
import stat
import subprocess
import sys

import pytest

import store
import swiftchat
from conftest import (COMMANDS_ON_SQLITE_ONLY, DEPLOY, HERE, Api, end_process, history,
                      http_connection, login, run_cli, start_cli)



# -- restore --------------------------------------------------------------------------

def post(api, token, room_id, count, start=0):
    for number in range(start, start + count):
        reply = api.post("/messages", {"room_id": room_id, "content": f"message {number}"},
                         token=token)
        assert reply.status == 201, reply.json


def one_line(result):
    """The command's only line of standard error, which must be one line."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def messages_in(db, room_id):
    """The room's messages in a database file no server has open, read through the store."""
    kept = store.Store(db)
    try:
        return [message["content"] for message in kept.messages(room_id, 1000)]
    finally:
        kept.close()


@pytest.mark.sqlite_only(COMMANDS_ON_SQLITE_ONLY)
def test_restore_after_a_kill_brings_back_exactly_the_backups_messages(tmp_path):
    """Issue #34: 65 messages, a backup, 3 more, kill -9, restore: 65, not 68."""
    db, backup = str(tmp_path / "chat.db"), str(tmp_path / "backup.db")
    process, http_port, _ = start_cli("--db", db, "--rest-rate", "0")
    try:
        api = Api(http_port)
        token, _, name = api.register()
        room_id = api.create_room(token)
        post(api, token, room_id, 65)
        assert run_cli("backup", backup, "--db", db).returncode == 0
        post(api, token, room_id, 3, start=65)
        process.kill()  # SIGKILL, to this server alone: what it wrote since is only in the -wal
        process.wait()
    finally:
        end_process(process)
    assert os.path.getsize(db + "-wal") > 0
    restored = run_cli("restore", backup, "--db", db)
    assert restored.returncode == 0, restored.stderr
    kept = re.fullmatch(r"restored \S+ from \S+; the database it replaced is kept as (\S+)\n",
                        restored.stdout)[1]
    assert re.fullmatch(re.escape(db) + r"\.before-restore-\d{8}-\d{6}", kept)
    assert not os.path.exists(db + "-wal") and not os.path.exists(db + "-shm")
    assert len(messages_in(kept, room_id)) == 68  # the replaced database, its -wal folded in
    process, http_port, _ = start_cli("--db", db)
    try:
        api = Api(http_port)
        token = login(api, name).data["token"]
        assert [m["content"] for m in history(api, room_id, token)] == [
            f"message {number}" for number in range(65)]
    finally:
        end_process(process)


def test_the_policies_are_set_by_their_flags_and_shown_in_info(tmp_path):
    process, http_port, _ = start_cli("--db", str(tmp_path / "chat.db"),
                                      "--room-creation", "admins", "--direct-messages", "off")
    try:
        api = Api(http_port)
        assert api.get("/info").data["policies"] == {"room_creation": "admins",
                                                     "direct_messages": "off"}
        token, _, _ = api.register()
        _, other_id, _ = api.register()
        assert api.post("/rooms", {"name": "mine"}, token=token).json["error"] == \
            "Only admins can create rooms"
        assert api.post("/direct", {"user_id": other_id}, token=token).json["error"] == \
            "Direct messages are turned off"
    finally:
        end_process(process)


@pytest.mark.sqlite_only(COMMANDS_ON_SQLITE_ONLY)
def test_restore_is_refused_while_a_server_runs_on_the_database(tmp_path):
    db, backup = str(tmp_path / "chat.db"), str(tmp_path / "backup.db")
    process, http_port, _ = start_cli("--db", db)
    try:
        token, _, _ = Api(http_port).register()
        assert run_cli("backup", backup, "--db", db).returncode == 0
        refused = run_cli("restore", backup, "--db", db)
        assert refused.returncode == 1
        assert one_line(refused) == (f"swiftchat: the database {db} is in use by a running "
                                     "SwiftChat server: stop the server first")
        assert Api(http_port).get("/users/me", token=token).status == 200  # served as before
    finally:
        end_process(process)
    # Nothing was replaced or kept: the database, its files folder and the backup, as before.
    assert sorted(os.listdir(tmp_path)) == ["backup.db", "backup.db.files", "chat.db",
                                            "chat.db.files"]


@pytest.mark.parametrize("backup_text, error", [
    (None, "no backup at {backup}"),
    ("not a database", "cannot restore from {backup}: it is not a SQLite database (it was left as "
                       "it is)")])
@pytest.mark.sqlite_only(COMMANDS_ON_SQLITE_ONLY)
def test_restore_of_something_that_is_no_backup_changes_nothing(tmp_path, serve_with, backup_text,
                                                                 error):
    db, backup = str(tmp_path / "chat.db"), str(tmp_path / "backup.db")
    serve_with(db=db).stop()
    if backup_text is not None:
        write(backup, backup_text)
    before = sorted(os.listdir(tmp_path))
    refused = run_cli("restore", backup, "--db", db)
    assert refused.returncode == 1
    assert one_line(refused) == "swiftchat: " + error.format(backup=backup)
    assert sorted(os.listdir(tmp_path)) == before


def write(path, text):
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)


def read(path):
    with open(path, encoding="utf-8") as file:
        return file.read()


@pytest.mark.sqlite_only(COMMANDS_ON_SQLITE_ONLY)
def test_backup_copies_the_uploaded_files_and_restore_brings_them_back(tmp_path, serve_with):
    """Uploads live in <db>.files; a file put there by hand stands in for them (test_files.py
    backs up real uploads, and under --files-dir)."""
    db, backup = str(tmp_path / "chat.db"), str(tmp_path / "backup.db")
    serve_with(db=db).stop()
    os.makedirs(db + ".files", exist_ok=True)  # the server made it already
    write(os.path.join(db + ".files", "photo.png"), "as backed up")
    backed_up = run_cli("backup", backup, "--db", db)
    assert backed_up.stdout == f"backed up {db} to {backup}, and its files to {backup}.files\n"
    assert stat.S_IMODE(os.stat(backup + ".files").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(backup + ".files", "photo.png")).st_mode) == 0o600
    write(os.path.join(db + ".files", "photo.png"), "changed since")
    restored = run_cli("restore", backup, "--db", db)
    assert restored.returncode == 0, restored.stderr
    kept = restored.stdout.split()[-1]
    assert read(os.path.join(db + ".files", "photo.png")) == "as backed up"
    assert read(os.path.join(kept + ".files", "photo.png")) == "changed since"


# -- the start-up banner ------------------------------------------------------------

def banner_of(host, tmp_path):
    """The start-up lines of a real server listening on host (every interface, for a wildcard)."""
    process = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "swiftchat.py"), "--host", host, "--http-port", "0",
         "--ws-port", "0", "--db", str(tmp_path / "chat.db")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([process.stdout], [], [], 15)
        assert ready, "the server printed no start-up line"
        return process.stdout.readline() + process.stdout.readline()
    finally:
        end_process(process)


def shown_addresses(banner):
    """Every address the banner names in an http:// URL, as ipaddress objects."""
    return [ipaddress.ip_address(host.strip("[]"))
            for host in re.findall(r"http://(\[[^]]+\]|[^:/\s]+):\d+", banner)]


def is_this_machines(address):
    """Whether address is one of this machine's own: only those can be bound to."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((str(address), 0))
        return True
    except OSError:
        return False


def has_default_route():
    """Whether this machine has a default IPv4 route (Linux: /proc/net/route), so an address."""
    try:
        with open("/proc/net/route", encoding="ascii") as routes:
            return any(line.split()[1] == "00000000" for line in list(routes)[1:])
    except OSError:
        pytest.skip("no /proc/net/route to tell whether this machine has a network")


def test_with_host_0000_the_banner_lists_this_machines_addresses_and_no_loopback(tmp_path):
    """Also where the host name resolves to a loopback address, as here: 'vm' is 127.0.0.1."""
    banner = banner_of("0.0.0.0", tmp_path)
    assert banner.endswith("\nCtrl+C to stop.\n"), banner
    shown = shown_addresses(banner)
    assert all(address.version == 4 and not address.is_loopback and not address.is_unspecified
               and is_this_machines(address) for address in shown), banner
    if has_default_route():
        assert shown, banner


def test_with_host_v6_wildcard_the_banner_lists_ipv6_addresses_too(tmp_path):
    if not socket.has_ipv6:
        pytest.skip("this Python has no IPv6")
    with open("/proc/net/if_inet6", encoding="ascii") as listing:  # global ones: scope 00
        global_ipv6 = {ipaddress.IPv6Address(bytes.fromhex(line.split()[0])) for line in listing
                       if line.split()[3] == "00"}
    banner = banner_of("::", tmp_path)
    shown = shown_addresses(banner)
    assert all(not (address.is_loopback or address.is_link_local) and is_this_machines(address)
               for address in shown), banner
    assert global_ipv6 <= set(shown), banner


# -- opening the database: one line, saying why, and nothing changed ---------------------

SERVER = ("--http-port", "0", "--ws-port", "0")


PR_CAPBSET_DROP = 24  # prctl(2)
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2  # capabilities(7)


def without_power_over_file_modes(libc):
    """A preexec_fn: the child, if root, loses the capabilities that let root ignore a file's mode.

    They leave its bounding set, so the program it runs next never has
    them: a folder of mode 555 stops it as it stops anyone.
    """
    def drop():
        for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
            if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")
    return drop


@pytest.fixture
def unwritable_folder(tmp_path):
    """(a folder the server may read but not write, the preexec_fn to run the server with)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    preexec_fn = None
    if os.geteuid() == 0:  # the tests run as root here, whom no mode stops
        preexec_fn = without_power_over_file_modes(ctypes.CDLL(None, use_errno=True))
        try:
            run_cli("--version", preexec_fn=preexec_fn)
        except (subprocess.SubprocessError, OSError) as exc:
            pytest.skip(f"cannot run the server as root without its power over modes: {exc}")
    folder.chmod(0o555)
    yield folder, preexec_fn
    folder.chmod(0o755)  # for pytest to clean it up


@pytest.mark.sqlite_only
def test_a_new_database_in_a_folder_one_may_not_write_to_is_permission_denied(unwritable_folder):
    folder, preexec_fn = unwritable_folder
    db = folder / "chat.db"
    refused = run_cli(*SERVER, "--db", str(db), preexec_fn=preexec_fn)
    assert refused.returncode == 1
    assert one_line(refused) == f"swiftchat: cannot open the database {db}: Permission denied"
    assert os.listdir(folder) == []


@pytest.mark.sqlite_only
def test_an_existing_database_in_a_folder_one_may_not_write_to_says_why(unwritable_folder,
                                                                         serve_with):
    folder, preexec_fn = unwritable_folder
    db = folder / "chat.db"
    folder.chmod(0o755)
    serve_with(db=db).stop()
    folder.chmod(0o555)
    refused = run_cli(*SERVER, "--db", str(db), preexec_fn=preexec_fn)
    assert refused.returncode == 1
    assert one_line(refused) == (f"swiftchat: cannot open the database {db}: Permission denied "
                                 f"to write in {folder}, where SQLite keeps chat.db-wal and -shm "
                                 "beside it")


@pytest.mark.sqlite_only
@pytest.mark.parametrize("command", [SERVER, ("users", "list")])
def test_db_naming_a_folder_is_one_line(tmp_path, command):
    refused = run_cli(*command, "--db", str(tmp_path))
    assert refused.returncode == 1
    assert one_line(refused) == (f"swiftchat: cannot open the database {tmp_path}: it is a folder; "
                                 f"name a file, e.g. --db {tmp_path / 'swiftchat.db'}")


@pytest.mark.sqlite_only
@pytest.mark.parametrize("command", [SERVER, ("users", "list"), ("backup", "copy.db")])
def test_a_file_that_is_not_a_database_is_refused_and_left_as_it_was(tmp_path, command):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, not a database\n")
    notes.chmod(0o644)
    refused = run_cli(*command, "--db", str(notes))
    assert refused.returncode == 1
    assert one_line(refused) == (f"swiftchat: cannot open the database {notes}: it is not a SQLite "
                                 "database (it was left as it is)")
    assert stat.S_IMODE(notes.stat().st_mode) == 0o644
    assert notes.read_text() == "my notes, not a database\n"
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


@pytest.mark.parametrize("action", [("list",), ("add", "teacher", "--password-stdin"),
                                    ("promote", "teacher")])
def test_users_on_a_database_not_made_yet_says_how_to_make_it_and_makes_nothing(tmp_path, action):
    db = tmp_path / "chat.db"
    refused = run_cli("users", *action, env={**os.environ, "SWIFTCHAT_DB": str(db)})
    assert refused.returncode == 1
    assert one_line(refused) == (f"swiftchat: no database at {db}: start the server once to "
                                 f"create it (python swiftchat.py --db {db}), or name another "
                                 "with --db FILE")
    assert os.listdir(tmp_path) == []


# -- the examples ---------------------------------------------------------------------

EXAMPLES = os.path.join(HERE, "examples")


def run_example(command, env):
    return subprocess.run(command, cwd=EXAMPLES, env=env, capture_output=True, text=True,
                          timeout=30)


def test_the_echo_bot_given_a_wrong_password_stops_at_once_and_never_asks_again(server, api):
    _, _, name = api.register(password="the-right-password")
    env = {**os.environ, "SWIFTCHAT_URL": f"http://127.0.0.1:{server.http_port}",
           "SWIFTCHAT_USER": name, "SWIFTCHAT_PASSWORD": "a-wrong-password",
           "SWIFTCHAT_ROOM": "room_00000000"}
    stopped = run_example([sys.executable, "echo_bot.py"], env)
    assert (stopped.returncode, stopped.stdout, stopped.stderr) == (
        1, "", "echo_bot.py: Username or password is incorrect (HTTP 401)\n")
    assert login(api, name, "the-right-password").status == 200  # one try: far from locked


@pytest.mark.parametrize("missing", ["SWIFTCHAT_USER", "SWIFTCHAT_PASSWORD", "SWIFTCHAT_ROOM"])
@pytest.mark.parametrize("command", [[sys.executable, "echo_bot.py"], ["sh", "notify.sh", "hello"]])
def test_an_example_without_a_variable_it_needs_names_it_on_one_line(command, missing):
    env = {**os.environ, "SWIFTCHAT_URL": "http://127.0.0.1:9",  # never reached
           "SWIFTCHAT_USER": "bot", "SWIFTCHAT_PASSWORD": "bot-password", "SWIFTCHAT_ROOM": "room_1"}
    del env[missing]
    stopped = run_example(command, env)
    script = os.path.basename(command[1])
    assert (stopped.returncode, stopped.stderr) == (1, f"{script}: set {missing}\n")


# -- docs/deploy/Dockerfile, read as docker would (there is no docker daemon here) --------

def dockerfile_instructions():
    """(instruction, arguments) of each line of the Dockerfile, continuation lines joined."""
    with open(os.path.join(DEPLOY, "Dockerfile"), encoding="utf-8") as dockerfile:
        text = re.sub(r"\\\n\s*", " ", dockerfile.read())
    return [tuple(line.split(None, 1)) for line in text.splitlines()
            if line.strip() and not line.startswith("#")]


def dockerfile_env():
    """The Dockerfile's ENV, its /data volume being a folder of the test's instead."""
    return dict(pair.split("=", 1) for instruction, arguments in dockerfile_instructions()
                if instruction == "ENV" for pair in arguments.split())


def test_the_image_holds_the_servers_modules_and_no_tests_or_benchmark():
    copied = {source for instruction, arguments in dockerfile_instructions()
              if instruction == "COPY" for source in arguments.split()[:-1]}
    imported = subprocess.run(
        [sys.executable, "-c", "import os, sys, swiftchat; print('\\n'.join(sorted("
                               "os.path.basename(m.__file__) for m in list(sys.modules.values()) "
                               "if os.path.dirname(getattr(m, '__file__', None) or '') == "
                               f"{HERE!r})))"],
        cwd=HERE, capture_output=True, text=True, timeout=30, check=True).stdout.split()
    assert {name for name in copied if name.endswith(".py")} == set(imported)
    assert {"requirements.txt", "schema.sql", "static"} <= copied
    assert not any(name.startswith("test_") or name in ("conftest.py", "bench_swiftchat.py")
                   for name in copied)


@pytest.mark.sqlite_only(COMMANDS_ON_SQLITE_ONLY)
def test_the_dockerfile_tells_the_server_and_the_commands_where_the_database_is(tmp_path,
                                                                                serve_with, api):
    env = dockerfile_env()
    assert env["SWIFTCHAT_DB"] == "/data/swiftchat.db"
    assert swiftchat.parse_args([], environ=env).db == env["SWIFTCHAT_DB"]  # the ENTRYPOINT's server
    volume = {**env, "SWIFTCHAT_DB": env["SWIFTCHAT_DB"].replace("/data", str(tmp_path))}
    server = serve_with(db=volume["SWIFTCHAT_DB"])
    added = subprocess.run(  # docker exec -i swiftchat python swiftchat.py users add teacher
        [sys.executable, "swiftchat.py", "users", "add", "teacher", "--password-stdin"],
        cwd=HERE, env={**os.environ, **volume, "SWIFTCHAT_PBKDF2_ITERATIONS": "1000"},
        input="password123\n", capture_output=True, text=True, timeout=30)
    assert added.returncode == 0, added.stderr
    assert login(Api(server.http_port), "teacher").status == 200


def test_the_dockerfiles_healthcheck_passes_while_health_answers(server):
    healthcheck = next(arguments for instruction, arguments in dockerfile_instructions()
                       if instruction == "HEALTHCHECK")
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert command[0] == "python"
    check = [sys.executable, *command[1:]]
    env = {**os.environ, "no_proxy": "*"}  # urllib would ask a proxy of the test machine's
    healthy = subprocess.run(check, env={**env, "SWIFTCHAT_HTTP_PORT": str(server.http_port)},
                             capture_output=True, timeout=30)
    assert healthy.returncode == 0, healthy.stderr
    with socket.socket() as closed:  # a port nothing listens on: unhealthy
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        unhealthy = subprocess.run(check, env={**env, "SWIFTCHAT_HTTP_PORT": str(port)},
                                   capture_output=True, timeout=30)
    assert unhealthy.returncode != 0


# -- OpenAPI's servers behind a TLS proxy ---------------------------------------------

def openapi_servers(port, headers=None):
    connection = http_connection(port)
    connection.request("GET", "/api/v1/openapi.json", headers=headers or {})
    return json.loads(connection.getresponse().read())["servers"]


@pytest.mark.parametrize("public_ws_url, url", [
    ("wss://chat.example.org/ws", "https://chat.example.org"),
    ("wss://chat.example.org:8443/ws", "https://chat.example.org:8443"),
    ("ws://[2001:db8::5]:8000/ws", "http://[2001:db8::5]:8000")])
def test_openapi_names_the_public_url_that_public_ws_url_gives(serve_with, public_ws_url, url):
    server = serve_with(public_ws_url=public_ws_url)
    assert openapi_servers(server.http_port) == [{"url": url}]


def test_openapi_never_takes_forwarded_headers_from_a_peer_it_does_not_trust(serve_with):
    server = serve_with(trusted_proxy="10.0.0.1")  # not 127.0.0.1, where the test connects from
    forged = {"Host": f"127.0.0.1:{server.http_port}", "X-Forwarded-Proto": "https",
              "X-Forwarded-Host": "evil.example", "X-Forwarded-For": "10.0.0.1"}
    assert openapi_servers(server.http_port, forged) == [
        {"url": f"http://127.0.0.1:{server.http_port}"}]


def test_behind_nginx_with_tls_openapi_names_the_https_url(behind_nginx):
    port, context = behind_nginx
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        connection.request("GET", "/api/v1/openapi.json")
        document = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    assert document["servers"] == [{"url": f"https://127.0.0.1:{port}"}]
