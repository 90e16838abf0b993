"""Accounts: password hashing, registration, login, sessions, and the limits on each.

Passwords are hashed with PBKDF2-HMAC-SHA256 from ``hashlib`` and stored in a
self-describing form, ``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>``,
so the iteration count can be raised later without breaking old hashes.

Each login or registration starts a session, a row in the store. Tokens are
HS256 JWTs made and checked with PyJWT; each names its session (``sid``)
and when the session began (``auth_time``). A session lasts at most
``session_days`` from its start, and ends earlier at logout or a password
change; a token of an ended session is refused at once. ``session_for_token``
is the one place a token is verified, for HTTP and WebSocket alike.

Guessing passwords is made slow in two ways: failed logins are counted per
(username, client address), per address, and per username across addresses
(``LoginLimits``), and a refused attempt is refused before any hash is
computed; and at most ``cpu_count - 1`` hashes run at once, so a storm of
logins leaves a core free for everything else. The count per pair is what
locks; so a stranger guessing at alice's password locks out only himself,
and a class behind one address is not locked out by its own typos.
The same file holds the other limits on what one user or address may do:
registrations, rooms per hour, the REST write budget (``Allowances``), and
the uploads one user or address may have in progress (``UploadsInProgress``).

Hashing is slow on purpose and runs on the caller's thread, outside the
store's lock. Nothing here knows about HTTP or WebSocket framing: failures
are the named exceptions below, which the two dispatchers turn into replies.
"""

import collections
import contextlib
import hashlib
import hmac
import math
import os
import secrets
import threading
import time

import jwt

import protocol
from protocol import ApiError, iso, limit_key, now

__all__ = [
    "Accounts", "Session", "RateLimit", "stored_secret", "Allowances", "LoginLimits", "hash_password", "verify_password", "DEFAULT_ITERATIONS",
    "InvalidToken", "SessionExpired", "WrongPassword", "AccountDisabled", "Throttled",
    "TooManyLogins",
    "TooManyRegistrations", "TooManyRooms", "TooManyWrites",
]

DEFAULT_ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-HMAC-SHA256
TOKEN_LIFETIME = 3600  # seconds, per the API document
DEFAULT_SESSION_DAYS = 30
ISSUER = "SwiftChat"
LOGIN_WINDOW = 15 * 60  # seconds over which failed logins are counted
ADDRESS_FACTOR = 6  # an address's allowance of failures is 6x a pair's count
ADDRESS_REGROWTH = 20  # seconds in which an address's allowance grows back by one failure
KNOWN_PAIR_DAYS = 30  # a successful login makes its (username, address) known for this long
USERNAME_FACTOR = 20  # a username may fail 20x as often, from all addresses together
REGISTRATION_WINDOW = 60
ROOM_WINDOW = 3600
TOKEN_MEMORY = 60  # seconds a checked token is taken as valid without checking again


# Generated passwords: letters and digits without look-alikes (0 O 1 l I), read
# aloud or copied from paper by a class without mistakes.
PASSWORD_ALPHABET = "".join(sorted(set("abcdefghijkmnopqrstuvwxyz"
                                       "ABCDEFGHJKLMNPQRSTUVWXYZ" "23456789")))
GENERATED_LENGTH = 12
MAX_IMPORT = 500  # accounts in one import request


class ImportRefused(Exception):
    """An import's entry `index` (0-based) is not valid; error says why. Nothing was created."""

    def __init__(self, index, error):
        super().__init__(f"entry {index}: {error}")
        self.index, self.error = index, error


class PasswordChangeRequired(Exception):
    """The account's password was chosen by someone else; its owner must change it first."""


class InvalidToken(Exception):
    """A token that is missing its parts, expired, forged, or names a session that ended."""


class SessionExpired(InvalidToken):
    """A well-signed, unexpired token of a session older than its maximum age."""


class WrongPassword(Exception):
    """The current password given to change a password is not the user's."""


class AccountDisabled(Exception):
    """The right password of an account an admin has disabled."""


class Throttled(Exception):
    """Too many attempts; retry_after is the whole seconds until the next may succeed."""

    def __init__(self, retry_after):
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class TooManyLogins(Throttled):
    """Too many failed logins for this username from this address, or from this address."""


class TooManyRegistrations(Throttled):
    """Too many registrations from this address."""


class TooManyRooms(Throttled):
    """Too many rooms created by this user within the hour."""


class TooManyWrites(Throttled):
    """The user's REST writes came faster than their budget (--rest-rate)."""


class TooManyUploads(Exception):
    """The user, or their address, has as many uploads in progress as it may (1.3)."""


class UploadsInProgress:
    """The uploads being received now: at most per_user for one user and per_address for one
    address at once, and the bytes they declared, which count against their user's quota
    until they end.

    Why: an upload may trickle in, a byte every 29 seconds, for as long as
    it likes, holding a request thread and its part of the disk; and a
    quota that counted only finished files let twenty such uploads past a
    quota of five. (An attack review held 1,005 connections with one
    account, until /health answered 503.)
    """

    def __init__(self, per_user=3, per_address=50):
        self.per_user, self.per_address = per_user, per_address
        self._lock = threading.Lock()
        self._users = collections.Counter()  # user id -> uploads in progress
        self._addresses = collections.Counter()  # limit_key -> uploads in progress
        self._bytes = collections.Counter()  # user id -> the bytes those uploads declared

    @contextlib.contextmanager
    def receiving(self, user_id, address, size):
        """A with-block around receiving one upload; raises TooManyUploads beyond the caps."""
        address = limit_key(address)
        with self._lock:
            if (self._users[user_id] >= self.per_user
                    or self._addresses[address] >= self.per_address):
                raise TooManyUploads(user_id)
            self._users[user_id] += 1
            self._addresses[address] += 1
            self._bytes[user_id] += size
        try:
            yield
        finally:
            with self._lock:
                for counter, key, amount in ((self._users, user_id, 1),
                                             (self._addresses, address, 1),
                                             (self._bytes, user_id, size)):
                    counter[key] -= amount
                    if counter[key] <= 0:
                        del counter[key]

    def bytes_of(self, user_id):
        """The bytes the user's uploads in progress declared."""
        with self._lock:
            return self._bytes[user_id]


# A session as a checked token shows it: its id, its user (a dict as the
# API shows users) and when it began (Unix seconds).
Session = collections.namedtuple("Session", "id user auth_time")


def stored_secret(store):
    """The secret that signs tokens (and file links) when none is given: made and kept in the
    database the first time, so the server and its commands (an export's links) agree on it."""
    return store.setting("jwt_secret", lambda: secrets.token_hex(32))


def hash_password(password, iterations=DEFAULT_ITERATIONS):
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def verify_password(password, stored):
    algorithm, iterations, salt, expected = stored.split("$")
    if algorithm != "pbkdf2_sha256":
        return False
    digest = hashlib.pbkdf2_hmac(
        "sha256", password.encode("utf-8"), bytes.fromhex(salt), int(iterations)
    )
    return hmac.compare_digest(digest.hex(), expected)


class RateLimit:
    """At most `limit` events per key within any `window` seconds.

    retry_after(key) is 0 while the key may go on, else the whole seconds
    until it may. Only the newest `limit` events of a key are kept: the key
    is at its limit while they all fit in one window. Then it waits until its
    oldest leaves the window, or with lockout=True (a login lockout) until
    `window` seconds after its newest. A limit of 0 turns it off. Safe to
    use from any thread; `clock` is injectable for tests.
    """

    MAX_KEYS = 10_000  # past this many keys, those with only old events are dropped

    def __init__(self, limit, window, lockout=False, clock=time.monotonic):
        self.limit = limit
        self.window = window
        self.lockout = lockout
        self.clock = clock
        self._events = {}  # key -> deque of the newest `limit` event times, oldest first
        self._lock = threading.Lock()

    def retry_after(self, key):
        with self._lock:
            return self._retry_after(key)

    def _retry_after(self, key):
        times = self._events.get(key, ())
        if not self.limit or len(times) < self.limit or times[-1] - times[0] >= self.window:
            return 0
        until = (times[-1] if self.lockout else times[0]) + self.window
        return max(0, math.ceil(until - self.clock()))

    def take(self, key, when=None):
        """Count an event at `when` (now) if key may go on (0), else count nothing and return retry_after.

        One step under the lock: a hundred requests that arrive together
        cannot all pass a check made before any of them was counted.
        """
        with self._lock:
            wait = self._retry_after(key)
            if not wait:
                self._record(key, self.clock() if when is None else when)
            return wait

    def seen_lately(self, key):
        """Whether key had an event within the last window."""
        with self._lock:
            times = self._events.get(key)
            return bool(times) and times[-1] > self.clock() - self.window

    def record(self, key, when=None):
        """Count an event of key at `when` (now by default)."""
        with self._lock:
            self._record(key, self.clock() if when is None else when)

    def _record(self, key, when):
        if not self.limit:
            return
        if len(self._events) >= self.MAX_KEYS:
            self._events = {k: times for k, times in self._events.items()
                            if times[-1] > when - self.window}
        self._events.setdefault(key, collections.deque(maxlen=self.limit)).append(when)

    def forget(self, key, when):
        """Take back one event of key counted at `when` (a reservation that came to nothing)."""
        with self._lock:
            times = self._events.get(key)
            if times is not None and when in times:
                times.remove(when)

    def clear(self, key):
        with self._lock:
            self._events.pop(key, None)


class Allowances:
    """For each key, an allowance of up to `capacity` that grows back by `rate` a second.

    A token bucket per key: take(key) spends one if there is one (0) or
    says how many whole seconds until one grows back; spend(key) spends one
    whatever is left, down to as far below empty as the capacity (an
    overdraw, from attempts that passed wait() together, is paid back
    before the key may go on); wait(key) only looks. A capacity of 0 turns
    it off. Safe from any thread; `clock` is injectable for tests.
    """

    MAX_KEYS = 10_000  # past this many keys, those whose allowance is whole again are dropped

    def __init__(self, capacity, rate, clock=time.monotonic):
        self.capacity = capacity
        self.rate = rate
        self.clock = clock
        self._left = {}  # key -> [what was left, when]
        self._lock = threading.Lock()

    def wait(self, key):
        with self._lock:
            return self._wait(self._refilled(key))

    def take(self, key):
        with self._lock:
            left = self._refilled(key)
            if left[0] >= 1:
                left[0] -= 1
                return 0
            return self._wait(left)

    def spend(self, key):
        with self._lock:
            left = self._refilled(key)
            left[0] = max(-self.capacity, left[0] - 1)

    def _refilled(self, key):
        now = self.clock()
        left = self._left.get(key)
        if left is None:
            if len(self._left) >= self.MAX_KEYS:
                self._left = {k: v for k, v in self._left.items()
                              if v[0] + (now - v[1]) * self.rate < self.capacity}
            left = self._left[key] = [float(self.capacity), now]
        left[0] = min(self.capacity, left[0] + (now - left[1]) * self.rate)
        left[1] = now
        return left

    def _wait(self, left):
        if not self.capacity or left[0] >= 1:
            return 0
        return max(1, math.ceil((1 - left[0]) / self.rate))


class LoginLimits:
    """The counts of failed logins (CONTRACT 1.3, "A class behind one address"), and what they refuse.

    - A (username, address) pair that failed `attempts` times in 15
      minutes is locked until 15 minutes after its last failure.
    - An address has an allowance of 6x `attempts` failures, which grows
      back by one every 20 seconds: thirty students who each mistype once
      cost the school's address a few minutes at most, never a lock-out.
    - A username that failed 20x `attempts` times from all addresses
      together is refused to the addresses that failed on it lately.
    - A known pair (a past success from that address, see Accounts.login)
      is locked only by its own count: a returning student gets in while
      strangers' failures have used up the address or the name.
    Only failures count, once their password has been checked, and the
    attempts of one pair are decided one after another (turn): a right
    password is never refused because other attempts were in flight, and
    guesses sent together on one pair cannot overdraw its count.
    attempts=0 turns all of it off. Addresses are protocol.limit_key's.
    """

    def __init__(self, attempts, clock):
        self.by_pair = RateLimit(attempts, LOGIN_WINDOW, True, clock)
        self.by_address = Allowances(attempts * ADDRESS_FACTOR, 1 / ADDRESS_REGROWTH, clock)
        self.by_name = RateLimit(attempts * USERNAME_FACTOR, LOGIN_WINDOW, True, clock)
        self._turns = {}  # pair -> [its lock, how many attempts hold or wait for it]
        self._turns_lock = threading.Lock()

    @contextlib.contextmanager
    def turn(self, name, address):
        """Decide the attempts of one pair one at a time."""
        pair = (name, address)
        with self._turns_lock:
            turn = self._turns.setdefault(pair, [threading.Lock(), 0])
            turn[1] += 1
        try:
            with turn[0]:
                yield
        finally:
            with self._turns_lock:
                turn[1] -= 1
                if not turn[1]:
                    del self._turns[pair]

    def check(self, name, address, known):
        """Raise TooManyLogins if this attempt may not even be tried (no hash is computed)."""
        wait = self.by_pair.retry_after((name, address))
        if not known:
            wait = max(wait, self.by_address.wait(address))
            if self.by_pair.seen_lately((name, address)):
                wait = max(wait, self.by_name.retry_after(name))
        if wait:
            raise TooManyLogins(wait)

    def failed(self, name, address):
        self.by_pair.record((name, address))
        self.by_address.spend(address)
        self.by_name.record(name)

    def succeeded(self, name, address):
        self.by_pair.clear((name, address))


class Accounts:
    """Registration, login, sessions, tokens, and the per-user limits, over one store.

    register(username, password, address) -> user; raises store.Conflict for a
                                 taken name, TooManyRegistrations
    create_user(username, password, role) -> user (an admin's doing)
    update_user(user_id, role, disabled, password) -> (user, sessions ended)
    login(username, password, address) -> user, or None for bad credentials;
                                 raises TooManyLogins, AccountDisabled
    start_session(user)          -> Session, for a user who just proved who they are
    issue_token(session)         -> JWT text
    session_for_token(token, renewing=False, remember=True) -> Session; raises InvalidToken
                                 (SessionExpired when renewing a session past its age)
    end_sessions(user_id, keep=None, only=None) -> the ids of the sessions ended
    change_password(session, old, new, address) -> (new Session, ids of the sessions ended);
                                 raises WrongPassword, TooManyLogins
    sessions_ended_since(when)   -> ids of sessions ended since then (by any process)
    room_creation(user)          a with-block that counts one room created; raises TooManyRooms
    rest_write(user_id)          spends one REST write of the user's budget; raises TooManyWrites
    hash_slots                   the semaphore every password hash runs under
    """

    def __init__(self, store, secret, iterations=DEFAULT_ITERATIONS, login_attempts=5,
                 registrations_per_minute=30, clock=time.monotonic,
                 session_days=DEFAULT_SESSION_DAYS, rooms_per_hour=20, rest_rate=10):
        self.store = store
        self.iterations = iterations
        self.session_seconds = session_days * 24 * 3600
        self._secret = secret
        self._logins = LoginLimits(login_attempts, clock)
        self._registrations = RateLimit(registrations_per_minute, REGISTRATION_WINDOW, False, clock)
        self._rooms = RateLimit(rooms_per_hour, ROOM_WINDOW, False, clock)
        self._rest_writes = Allowances(2 * rest_rate, rest_rate, clock)  # bursts of twice the rate
        # Each hash keeps one core busy for its whole run (hashlib releases
        # the GIL); leaving one core free keeps the server answering others.
        self.hash_slots = threading.BoundedSemaphore(max(1, (os.cpu_count() or 1) - 1))
        # Checked against when the username is unknown, so that a login for
        # a name that does not exist takes as long as a wrong password.
        self._decoy_hash = hash_password(secrets.token_hex(16), iterations)
        self._checked_tokens = {}  # token -> (valid until, Session); see session_for_token
        self._forgotten = 0  # how many times the checked tokens were forgotten
        self._tokens_lock = threading.Lock()  # remembering and forgetting; reads need none

    # -- proving who you are ------------------------------------------------

    def register(self, username, password, address):
        wait = self._registrations.take(limit_key(address))
        if wait:
            raise TooManyRegistrations(wait)
        user = self.create_user(username, password)
        self.store.remember_login(username.lower(), limit_key(address), now())  # as a login would
        return user

    def create_user(self, username, password, role="user", must_change_password=False):
        """A new account (an admin's doing, or a registration); raises store.Conflict.

        must_change_password: someone other than its owner chose the password.
        """
        return self.store.create_user(username, self._hash(password), iso(now()), role,
                                      must_change_password)

    def import_users(self, entries):
        """Create every account of a roster whose name is free, in one transaction.

        entries: [{"username", "password"?, "role"?}]; a missing password is
        generated. Returns (created: [(user, password)], skipped: [(username,
        error)]). Raises ImportRefused for the first entry that is not valid,
        before anything is created. Used by POST /users/import and `users import`.
        """
        checked = []
        for index, entry in enumerate(entries):
            try:
                if not isinstance(entry, dict):
                    raise protocol.bad_request("each user must be a JSON object")
                username = protocol.username(entry)
                given = entry.get("password") not in (None, "")
                password = protocol.password(entry) if given else generate_password()
                role = protocol.role(entry, required=False) or "user"
            except ApiError as exc:
                raise ImportRefused(index, exc.error) from None
            checked.append((username, password, role))
        # Hashing is the slow part (600,000 rounds each, 0.3 s here): one at a
        # time on this thread, outside hash_slots, so that an import of a
        # class takes one core and never the slot logins wait for (an attack
        # review saw a login take 14 s during an import that held it).
        hashes = [hash_password(password, self.iterations) for _, password, _ in checked]
        created, skipped = self.store.import_users(
            [(username, hashed, role) for (username, _, role), hashed in zip(checked, hashes)],
            iso(now()))
        passwords = {}  # the first entry of a name repeated in the roster is the one created
        for username, password, _ in checked:
            passwords.setdefault(username.lower(), password)
        return ([(user, passwords[user["username"].lower()]) for user in created],
                [(username, "Username already taken") for username in skipped])

    def update_user(self, user_id, role=None, disabled=None, password=None):
        """An admin's change of a user; returns (user or None, ids of the sessions it ended)."""
        password_hash = None if password is None else self._hash(password)
        user, ended = self.store.update_user(user_id, now(), role, disabled, password_hash)
        self.forget_checked_tokens()  # a remembered token carries the user's old role
        return user, ended

    def login(self, username, password, address):
        name, address = username.lower()[:64], limit_key(address)  # names are unique in any case
        with self._logins.turn(name, address):
            known = self.store.known_login(name, address, now() - KNOWN_PAIR_DAYS * 24 * 3600)
            self._logins.check(name, address, known)  # before hashing: a refused guess costs nothing
            user = self.store.user_with_password(username)
            stored = user["password_hash"] if user else self._decoy_hash
            with self.hash_slots:
                correct = verify_password(password, stored)
            if not correct or user is None:
                self._logins.failed(name, address)
                return None
            self._logins.succeeded(name, address)
        if user["disabled"]:  # said only to whoever knows the password
            raise AccountDisabled()
        self.store.remember_login(name, address, now())
        del user["password_hash"]
        return user

    def change_password(self, session, old_password, new_password, address):
        """Give the session's user a new password; return (a new Session, ids of the sessions ended).

        Every earlier session ends, the caller's own included: a copy of
        the caller's token (another tab, a stolen one) stops working too.
        """
        if self.login(session.user["username"], old_password, address) is None:
            raise WrongPassword()
        ended = self.store.set_password(session.user["id"], self._hash(new_password), now(),
                                        keep_session=None)
        self.forget_checked_tokens()
        return self.start_session({**session.user, "must_change_password": False}), ended

    def _hash(self, password):
        with self.hash_slots:
            return hash_password(password, self.iterations)

    # -- sessions and their tokens -------------------------------------------

    def start_session(self, user):
        started = now()
        session_id = self.store.create_session(user["id"], started, started - self.session_seconds)
        return Session(session_id, user, started)

    def end_sessions(self, user_id, keep=None, only=None):
        """End the user's sessions (only one, or all but one); return the ids ended."""
        ended = self.store.end_sessions(user_id, now(), keep=keep, only=only)
        self.forget_checked_tokens()
        return ended

    def sessions_ended_since(self, when):
        """The ids of sessions ended at `when` or later, by this process or another.

        Also forgets every checked token when the database changed since the
        last call, so that a session ended or a user removed by another
        process is not taken on trust from memory.
        """
        if self.store.data_changed():
            self.forget_checked_tokens()
        return self.store.sessions_ended_since(when)

    def expires_at(self, session):
        """When the session passes its maximum age (Unix seconds)."""
        return session.auth_time + self.session_seconds

    def issue_token(self, session):
        issued = now()
        claims = {
            "sub": session.user["id"],
            "username": session.user["username"],
            "sid": session.id,
            "auth_time": session.auth_time,
            "iat": issued,
            "exp": min(issued + TOKEN_LIFETIME, self.expires_at(session)),
            "iss": ISSUER,
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def session_for_token(self, token, renewing=False, remember=True):
        """The live session a token belongs to; raises InvalidToken.

        renewing: the caller would renew the token (POST /auth/refresh), so a
        session past its maximum age is told apart as SessionExpired.
        remember=False: the token is checked once (a WebSocket's auth), so
        keeping it for next time would only cost memory (about 0.6 KiB a
        connection, bench_swiftchat.py --only idle).
        """
        # Why: checking a signature and reading the session cost a /users/me
        # request about a third of its time, again for every request of the
        # same client. A checked token is remembered for at most TOKEN_MEMORY
        # seconds and never past its own expiry; every ending of a session
        # forgets them all (forget_checked_tokens). Dict reads and writes
        # are atomic.
        remembered = self._checked_tokens.get(token)
        if remembered is not None and remembered[0] > time.time():
            return remembered[1]
        forgotten = self._forgotten  # a session ended while we read is not remembered as live
        session, expires = self._check_token(token, renewing)
        with self._tokens_lock:
            if remember and self._forgotten == forgotten:
                if len(self._checked_tokens) >= 10_000:
                    self._checked_tokens.clear()
                self._checked_tokens[token] = (min(time.time() + TOKEN_MEMORY, expires), session)
        return session

    def _check_token(self, token, renewing):
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],  # pinned: 'none' and key-confusion tricks fail
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "sid", "auth_time"]},
            )
        except jwt.InvalidTokenError:
            raise InvalidToken() from None
        sid, auth_time = claims["sid"], claims["auth_time"]
        # We only ever sign whole numbers (PyJWT lets "123" through for exp,
        # and bool is an int to Python); a token before 1.2 has no sid at all.
        if not isinstance(sid, str) or type(auth_time) is not int or auth_time > now() \
                or type(claims["exp"]) is not int or type(claims["iat"]) is not int:
            raise InvalidToken()
        if auth_time + self.session_seconds <= now():
            raise SessionExpired() if renewing else InvalidToken()
        user = self.store.session_user(sid, claims["sub"], auth_time)
        if user is None:  # the session ended, or its user is gone
            raise InvalidToken()
        expires = min(claims["exp"], auth_time + self.session_seconds)
        return Session(sid, user, auth_time), expires

    def forget_checked_tokens(self):
        """Check every token anew: a remembered one carries its user as they were (a role, a
        display name)."""
        with self._tokens_lock:
            self._forgotten += 1
            self._checked_tokens = {}

    # -- other limits on what one user may do ----------------------------------

    @contextlib.contextmanager
    def room_creation(self, user):
        """Count a room user is about to create; raises TooManyRooms past the hour's limit.

        Admins are exempt, and a creation refused inside the with (a taken
        name, say) is given back: only rooms really made are counted.
        """
        if user["role"] == "admin":
            yield
            return
        when = self._rooms.clock()
        wait = self._rooms.take(user["id"], when)
        if wait:
            raise TooManyRooms(wait)
        try:
            yield
        except BaseException:
            self._rooms.forget(user["id"], when)
            raise

    def rest_write(self, user_id):
        """Spend one of the user's REST writes; raises TooManyWrites when none is left."""
        wait = self._rest_writes.take(user_id)
        if wait:
            raise TooManyWrites(wait)


def generate_password():
    """A new random password of GENERATED_LENGTH characters from PASSWORD_ALPHABET."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(GENERATED_LENGTH))
