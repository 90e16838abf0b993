"""A whole class behind one address (CONTRACT 1.3), tried through the real ports.

A school reaches the server through one address: a NAT, or a proxy that is
not named with --trusted-proxy. Sixty students must be able to log in at
the same moment and mistype their passwords as people do, without locking
each other out; a stranger's guesses still cost the stranger. The REST
write budget and the room-creation limit are here too: what one user may
do, counted so that it never punishes the others.
"""

import threading

import pytest

import accounts
from conftest import NO_LIMITS, TOO_MANY_LOGINS, Api, LatencyWatch, login

RATE_LIMITED = {"success": False, "message": "Too many requests", "error": "Rate limit exceeded"}


@pytest.fixture
def school(serve_with, clock, server_options):
    """A server whose limits run on `clock`, with these server_options."""
    return serve_with(clock=clock, **server_options)


def from_address(address):
    """The headers of a request the trusted proxy passes on from this client address."""
    return {"X-Forwarded-For": address}


def all_at_once(count, attempt):
    """Run attempt(n) for n in range(count) on threads released together; their results, in order."""
    start = threading.Barrier(count)
    results = [None] * count

    def run(n):
        start.wait()
        results[n] = attempt(n)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def healthy(api):
    """GET /health, which must answer 200."""
    assert api.get("/health").status == 200


# -- right passwords are never refused for a crowd --------------------------------------------

def test_sixty_students_log_in_at_once_from_one_address_with_the_default_rounds(serve_with):
    """60 right passwords at the same moment, 600,000 rounds each: every one is 200, and /health
    stays quick meanwhile (1.2 refused half of them: attempts in flight counted as failures)."""
    rounds = accounts.DEFAULT_ITERATIONS
    server = serve_with(pbkdf2_iterations=rounds)
    hashed = accounts.hash_password("password123", rounds)  # one hash serves the class
    for n in range(60):
        server.store.create_user(f"student{n}", hashed, "2026-09-01T08:00:00Z")
    health_api = Api(server.http_port)
    with LatencyWatch(lambda: healthy(health_api)) as health:
        # Logins take turns for the hash slots: the last waits for 59 hashes before its own.
        replies = all_at_once(60, lambda n: login(Api(server.http_port, timeout=120),
                                                  f"student{n}"))
    assert [reply.status for reply in replies] == [200] * 60
    assert health.answers > 10 and health.slowest < 1.0, (health.answers, health.slowest)


def test_twelve_logins_of_one_account_at_once_all_succeed(school):
    api = Api(school.http_port)
    api.register("twelve", "password123")
    replies = all_at_once(12, lambda n: login(Api(school.http_port), "twelve"))
    assert [reply.status for reply in replies] == [200] * 12


def test_guesses_sent_at_once_on_one_pair_are_decided_one_after_another(school):
    """Five of ten simultaneous wrong guesses are checked and count; the pair is then locked,
    so the other five are refused without a hash and cannot overdraw its count."""
    Api(school.http_port).register("target", "password123")
    replies = all_at_once(10, lambda n: login(Api(school.http_port), "target", "wrong-password"))
    assert sorted(reply.status for reply in replies) == [401] * 5 + [429] * 5
    assert login(Api(school.http_port), "target").json == TOO_MANY_LOGINS


# -- typos from the school's address ---------------------------------------------------------

def test_thirty_typos_lock_no_returning_student_and_a_new_one_is_told_when_to_retry(school, clock):
    api = Api(school.http_port)
    for name in ["returning", "newcomer", *(f"typist{n}" for n in range(30))]:
        school.create_user(name, "password123")
    assert login(api, "returning").status == 200  # a known pair from now on
    for n in range(30):
        assert login(api, f"typist{n}", "the-wrong-password").status == 401
    assert login(api, "returning").status == 200
    refused = login(api, "newcomer")
    assert refused.status == 429 and refused.json == TOO_MANY_LOGINS
    assert refused.headers["Retry-After"] == "20"  # one failure grows back every 20 seconds
    clock.advance(19)
    assert login(api, "newcomer").headers["Retry-After"] == "1"
    clock.advance(1)
    assert login(api, "newcomer").status == 200


@pytest.mark.parametrize("server_options", [{"pbkdf2_iterations": 200_000}])
def test_typos_sent_together_from_one_address_cannot_overdraw_its_allowance(school, clock):
    """Failures in flight together all pass the check before any is counted; the allowance
    then goes below empty and is paid back before the address may try again."""
    api = Api(school.http_port)
    school.create_user("newcomer", "password123")
    replies = all_at_once(36, lambda n: login(Api(school.http_port, timeout=60), f"ghost{n}",
                                              "wrong-password"))
    failures = sum(reply.status == 401 for reply in replies)
    assert failures > 30  # the overdraw this test is about did happen
    owed = 30 - failures  # below empty, one failure growing back every 20 seconds
    refused = login(api, "newcomer")
    assert refused.json == TOO_MANY_LOGINS
    assert refused.headers["Retry-After"] == str((1 - owed) * 20)
    clock.advance((1 - owed) * 20)
    assert login(api, "newcomer").status == 200


def test_a_typo_costs_the_address_one_failure_that_grows_back(school, clock):
    api = Api(school.http_port)
    school.create_user("bystander", "password123")
    for n in range(29):
        assert login(api, f"ghost{n}", "wrong-password").status == 401
    assert login(api, "bystander").status == 200  # one failure left in the allowance
    assert login(api, "ghost29", "wrong-password").status == 401
    assert login(api, "ghost30", "wrong-password").status == 429  # empty: not even tried
    clock.advance(40)
    for n in range(2):  # two grew back
        assert login(api, f"later{n}", "wrong-password").status == 401
    assert login(api, "later2", "wrong-password").status == 429


def test_a_known_pair_is_kept_in_the_database_across_a_restart(serve_with, clock):
    with serve_with(clock=clock) as server:
        server.create_user("returning", "password123")
        assert login(Api(server.http_port), "returning").status == 200
    with serve_with(clock=clock) as server:
        api = Api(server.http_port)
        for n in range(30):
            assert login(api, f"typist{n}", "wrong-password").status == 401
        assert login(api, "returning").status == 200


def test_registering_makes_the_pair_known(school):
    api = Api(school.http_port)
    api.register("fresh", "password123")
    for n in range(30):
        assert login(api, f"typist{n}", "wrong-password").status == 401
    assert login(api, "fresh").status == 200


def test_a_known_pair_is_still_locked_by_its_own_failures(school, clock):
    api = Api(school.http_port)
    school.create_user("careless", "password123")
    assert login(api, "careless").status == 200
    for _ in range(5):
        assert login(api, "careless", "wrong-password").status == 401
    assert login(api, "careless").json == TOO_MANY_LOGINS


# -- addresses as the limits count them --------------------------------------------------------

@pytest.mark.parametrize("server_options", [{"trusted_proxy": "127.0.0.1"}])
@pytest.mark.parametrize("failing_from, then_from", [
    ("::ffff:10.0.0.7", "10.0.0.7"),               # IPv4-mapped: the same IPv4 address
    ("10.0.0.7", "::ffff:10.0.0.7"),
    ("2001:db8:1:2::1", "2001:db8:1:2:ffff::99"),  # one IPv6 /64: one client
])
def test_one_client_is_counted_once_however_its_address_is_written(school, failing_from, then_from):
    api = Api(school.http_port)
    school.create_user("victim", "password123")
    for _ in range(5):
        assert login(api, "victim", "wrong-password", headers=from_address(failing_from)).status == 401
    assert login(api, "victim", headers=from_address(then_from)).json == TOO_MANY_LOGINS


@pytest.mark.parametrize("server_options", [{"trusted_proxy": "127.0.0.1"}])
def test_another_ipv6_64_is_another_client(school):
    api = Api(school.http_port)
    school.create_user("victim", "password123")
    failing, other_64 = from_address("2001:db8:1:2::1"), from_address("2001:db8:1:3::1")
    for _ in range(5):
        assert login(api, "victim", "wrong-password", headers=failing).status == 401
    assert login(api, "victim", headers=other_64).status == 200


@pytest.mark.parametrize("server_options", [{"trusted_proxy": "127.0.0.1"}])
def test_a_username_failing_100_times_spares_its_known_pairs(school):
    api = Api(school.http_port)
    school.create_user("popular", "password123")
    known = from_address("10.9.9.9")
    assert login(api, "popular", headers=known).status == 200  # known from there
    assert login(api, "popular", "wrong-password", headers=known).status == 401  # and failed there
    for n in range(99):  # four failures from each of 25 addresses: no pair locked
        failing = from_address(f"10.0.{n // 4}.1")
        assert login(api, "popular", "wrong-password", headers=failing).status == 401
    assert login(api, "popular", headers=from_address("10.0.0.1")).json == TOO_MANY_LOGINS
    assert login(api, "popular", headers=known).status == 200
    assert login(api, "popular", headers=from_address("10.5.5.5")).status == 200  # never failed on it


# -- the REST write budget --------------------------------------------------------------------

def a_member_in_a_room(school):
    api = Api(school.http_port)
    token, user_id, _ = api.register()
    room_id = api.create_room(token)
    return api, token, user_id, room_id


def post(api, token, room_id, content="hello"):
    return api.post("/messages", {"room_id": room_id, "content": content}, token=token)


def test_rest_writes_of_one_user_share_10_a_second_with_bursts_of_20(school, clock):
    api, token, _, room_id = a_member_in_a_room(school)
    for n in range(20):
        assert post(api, token, room_id, f"message {n}").status == 201
    refused = post(api, token, room_id)
    assert refused.status == 429 and refused.json == RATE_LIMITED
    assert refused.headers["Retry-After"] == "1"
    clock.advance(0.1)  # one write grows back every tenth of a second
    assert post(api, token, room_id).status == 201
    assert post(api, token, room_id).status == 429
    other_api, other_token, _, other_room = a_member_in_a_room(school)
    assert post(other_api, other_token, other_room).status == 201  # another user's budget
    assert api.get(f"/messages?room_id={room_id}", token=token).status == 200  # reads are free


# Every REST write that spends the budget, as (method, path, body), with what it needs.
def spending_writes(api, token, user_id, room_id, message_id, other_id):
    return [
        ("POST", "/messages", {"room_id": room_id, "content": "one more"}),
        ("PATCH", f"/messages/{message_id}", {"content": "edited"}),
        ("DELETE", f"/messages/{message_id}", None),
        ("POST", f"/rooms/{room_id}/read", {"message_id": message_id}),
        ("POST", f"/rooms/{room_id}/members", {"user_id": other_id}),
        ("POST", "/direct", {"user_id": other_id}),
        ("POST", f"/messages/{message_id}/report", {"reason": "spam"}),
        # Not named by CONTRACT 1.3, but each is a write another user hears or
        # pays for: PATCH /rooms alone sent a room_updated to every connection.
        ("PATCH", f"/rooms/{room_id}", {"description": "again and again"}),
        ("DELETE", f"/rooms/{room_id}", None),
        ("DELETE", f"/rooms/{room_id}/members/{other_id}", None),
        ("POST", "/rooms/join", {"room_id": room_id}),
        ("POST", "/rooms/leave", {"room_id": room_id}),
        ("POST", f"/users/{other_id}/block", None),
        ("DELETE", f"/users/{other_id}/block", None),
        ("PATCH", "/reports/1", {"status": "resolved"}),
        # 1.3's writes: uploads, roles and mutes, reactions, pins, a profile.
        ("POST", "/uploads", {"a file": "of JSON"}),
        ("PATCH", f"/rooms/{room_id}/members/{other_id}", {"role": "moderator"}),
        ("POST", f"/rooms/{room_id}/members/{other_id}/mute", {"minutes": 5}),
        ("DELETE", f"/rooms/{room_id}/members/{other_id}/mute", None),
        ("POST", f"/messages/{message_id}/reactions", {"emoji": "\U0001F44D"}),
        ("DELETE", f"/messages/{message_id}/reactions/%F0%9F%91%8D", None),
        ("POST", f"/messages/{message_id}/pin", None),
        ("DELETE", f"/messages/{message_id}/pin", None),
        ("PATCH", "/users/me", {"status": "here"}),
    ]


def test_every_rest_write_spends_the_same_budget(school):
    api, token, user_id, room_id = a_member_in_a_room(school)
    _, other_id, _ = api.register()
    message_id = post(api, token, room_id).data["id"]
    for _ in range(19):  # 20 with the post above: the budget is spent
        post(api, token, room_id)
    for method, path, body in spending_writes(api, token, user_id, room_id, message_id, other_id):
        assert api.call(method, path, body, token=token).json == RATE_LIMITED, (method, path)


@pytest.mark.parametrize("server_options", [{"rest_rate": 0}])
def test_rest_rate_zero_turns_the_budget_off(school):
    api, token, _, room_id = a_member_in_a_room(school)
    for n in range(60):
        assert post(api, token, room_id, f"message {n}").status == 201


def test_trusted_code_is_not_limited(school):
    api, token, user_id, room_id = a_member_in_a_room(school)
    for n in range(40):
        school.post_message(room_id, user_id, f"from the host program {n}")
    assert post(api, token, room_id).status == 201  # the user's own budget is untouched


# -- rooms per hour ------------------------------------------------------------------------------

@pytest.mark.parametrize("server_options", [{"rooms_per_hour": 2}])
def test_a_refused_room_creation_is_not_counted(school):
    api = Api(school.http_port)
    token, _, _ = api.register()
    api.create_room(token, "taken")
    for body in ({"name": "taken"}, {"name": ""}, {"name": "x", "visibility": "secret"}):
        assert api.post("/rooms", body, token=token).status in (400, 409)
    api.create_room(token, "second")
    assert api.post("/rooms", {"name": "third"}, token=token).status == 429


@pytest.mark.parametrize("server_options", [{**NO_LIMITS, "rooms_per_hour": 1}])
def test_admins_are_exempt_from_rooms_per_hour(school):
    api = Api(school.http_port)
    school.create_user("teacher", "password123", role="admin")
    token = login(api, "teacher").data["token"]
    for n in range(5):
        api.create_room(token, f"lesson {n}")
