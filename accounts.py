"""Accounts: password hashing, registration, login, and the tokens that prove identity.

Passwords are hashed with PBKDF2-HMAC-SHA256 from ``hashlib`` and stored in a
self-describing form, ``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>``,
so the iteration count can be raised later without breaking old hashes.
Tokens are HS256 JWTs made and checked with PyJWT. ``Accounts.user_for_token``
is the one place a token is verified, for HTTP and WebSocket alike.

Guessing passwords is made slow in two ways: failed logins are counted per
username and per client address (``RateLimit``), and a refused attempt is
refused before any hash is computed; and at most ``cpu_count - 1`` hashes
run at once, so a storm of logins leaves a core free for everything else.

Hashing is slow on purpose and runs on the caller's thread, outside the
store's lock. Nothing here knows about HTTP or WebSocket framing: failures
are the named exceptions below, which the two dispatchers turn into replies.
"""

import collections
import hashlib
import hmac
import math
import os
import secrets
import threading
import time

import jwt

from protocol import iso, now

__all__ = [
    "Accounts", "RateLimit", "hash_password", "verify_password", "DEFAULT_ITERATIONS",
    "InvalidToken", "Throttled", "TooManyLogins", "TooManyRegistrations",
]

DEFAULT_ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-HMAC-SHA256
TOKEN_LIFETIME = 3600  # seconds, per the API document
ISSUER = "SwiftChat"
LOGIN_WINDOW = 15 * 60  # seconds over which failed logins are counted
ADDRESS_FACTOR = 6  # an address may fail 6x as often as one username (30 by default)
REGISTRATION_WINDOW = 60
TOKEN_MEMORY = 60  # seconds a checked token is taken as valid without checking again


class InvalidToken(Exception):
    """A token that is missing its parts, expired, forged, or names a user who is gone."""


class Throttled(Exception):
    """Too many attempts; retry_after is the whole seconds until the next may succeed."""

    def __init__(self, retry_after):
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class TooManyLogins(Throttled):
    """Too many failed logins for this username or from this address."""


class TooManyRegistrations(Throttled):
    """Too many registrations from this address."""


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
        if not self.limit:
            return 0
        with self._lock:
            times = self._events.get(key, ())
            if len(times) < self.limit or times[-1] - times[0] >= self.window:
                return 0
            until = (times[-1] if self.lockout else times[0]) + self.window
        return max(0, math.ceil(until - self.clock()))

    def record(self, key):
        if not self.limit:
            return
        now = self.clock()
        with self._lock:
            if len(self._events) >= self.MAX_KEYS:
                self._events = {k: times for k, times in self._events.items()
                                if times[-1] > now - self.window}
            self._events.setdefault(key, collections.deque(maxlen=self.limit)).append(now)

    def clear(self, key):
        with self._lock:
            self._events.pop(key, None)


class Accounts:
    """Registration, login and tokens over one store.

    register(username, password, address) -> user; raises store.Conflict for a
                                 taken name, TooManyRegistrations
    login(username, password, address) -> user, or None for bad credentials;
                                 raises TooManyLogins
    issue_token(user)            -> JWT text
    user_for_token(token)        -> user; raises InvalidToken
    hash_slots                   the semaphore every password hash runs under
    """

    def __init__(self, store, secret, iterations=DEFAULT_ITERATIONS, login_attempts=5,
                 registrations_per_minute=30, clock=time.monotonic):
        self.store = store
        self.iterations = iterations
        self._secret = secret
        self._failed_logins_by_name = RateLimit(login_attempts, LOGIN_WINDOW, True, clock)
        self._failed_logins_by_address = RateLimit(
            login_attempts * ADDRESS_FACTOR, LOGIN_WINDOW, True, clock)
        self._registrations = RateLimit(registrations_per_minute, REGISTRATION_WINDOW, False, clock)
        # Each hash keeps one core busy for its whole run (hashlib releases
        # the GIL); leaving one core free keeps the server answering others.
        self.hash_slots = threading.BoundedSemaphore(max(1, (os.cpu_count() or 1) - 1))
        # Checked against when the username is unknown, so that a login for
        # a name that does not exist takes as long as a wrong password.
        self._decoy_hash = hash_password(secrets.token_hex(16), iterations)
        self._checked_tokens = {}  # token -> (valid until, user); see user_for_token

    def register(self, username, password, address):
        wait = self._registrations.retry_after(address)
        if wait:
            raise TooManyRegistrations(wait)
        self._registrations.record(address)
        with self.hash_slots:
            password_hash = hash_password(password, self.iterations)
        return self.store.create_user(username, password_hash, iso(now()))

    def login(self, username, password, address):
        name = username.lower()[:64]  # names are unique whatever their case
        wait = max(self._failed_logins_by_name.retry_after(name),
                   self._failed_logins_by_address.retry_after(address))
        if wait:  # refused before hashing: a throttled guess costs the server nothing
            raise TooManyLogins(wait)
        user = self.store.user_with_password(username)
        stored = user["password_hash"] if user else self._decoy_hash
        with self.hash_slots:
            correct = verify_password(password, stored)
        if not correct or user is None:
            self._failed_logins_by_name.record(name)
            self._failed_logins_by_address.record(address)
            return None
        self._failed_logins_by_name.clear(name)
        del user["password_hash"]
        return user

    def issue_token(self, user):
        issued = now()
        claims = {
            "sub": user["id"],
            "username": user["username"],
            "iat": issued,
            "exp": issued + TOKEN_LIFETIME,
            "iss": ISSUER,
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def user_for_token(self, token):
        # Why: checking a signature and reading the user cost a /users/me
        # request about a third of its time, again for every request of the
        # same client. A checked token is remembered for TOKEN_MEMORY seconds
        # (never past its own expiry); plain dict reads and writes are atomic.
        remembered = self._checked_tokens.get(token)
        if remembered is not None and remembered[0] > time.time():
            return remembered[1]
        user = self._check_token(token)
        if len(self._checked_tokens) >= 10_000:
            self._checked_tokens.clear()
        self._checked_tokens[token] = (min(time.time() + TOKEN_MEMORY, user.pop("exp")), user)
        return user

    def _check_token(self, token):
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],  # pinned: 'none' and key-confusion tricks fail
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.InvalidTokenError:
            raise InvalidToken() from None
        user = self.store.user(claims["sub"])
        if user is None:  # a valid signature for a user that is gone
            raise InvalidToken()
        return {**user, "exp": claims["exp"]}
