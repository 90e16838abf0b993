"""Accounts: password hashing, registration, login, and the tokens that prove identity.

Passwords are hashed with PBKDF2-HMAC-SHA256 from ``hashlib`` and stored in a
self-describing form, ``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>``,
so the iteration count can be raised later without breaking old hashes.
Tokens are HS256 JWTs made and checked with PyJWT. ``Accounts.user_for_token``
is the one place a token is verified, for HTTP and WebSocket alike.

Hashing is slow on purpose and runs on the caller's thread, outside the
store's lock. Nothing here knows about HTTP or WebSocket framing.
"""

import hashlib
import hmac
import secrets

import jwt

from protocol import ApiError, iso, now

__all__ = ["Accounts", "hash_password", "verify_password", "DEFAULT_ITERATIONS"]

DEFAULT_ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-HMAC-SHA256
TOKEN_LIFETIME = 3600  # seconds, per the API document
ISSUER = "SwiftChat"


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


def invalid_token():
    return ApiError(401, "Authentication required", "Invalid or expired token")


class Accounts:
    """Registration, login and tokens over one store.

    register(username, password) -> user; raises store.Conflict for a taken name
    login(username, password)    -> user, or None for bad credentials
    issue_token(user)            -> JWT text
    user_for_token(token)        -> user; raises ApiError(401)
    """

    def __init__(self, store, secret, iterations=DEFAULT_ITERATIONS):
        self.store = store
        self.iterations = iterations
        self._secret = secret
        # Checked against when the username is unknown, so that a login for
        # a name that does not exist takes as long as a wrong password.
        self._decoy_hash = hash_password(secrets.token_hex(16), iterations)

    def register(self, username, password):
        password_hash = hash_password(password, self.iterations)
        return self.store.create_user(username, password_hash, iso(now()))

    def login(self, username, password):
        user = self.store.user_with_password(username)
        stored = user["password_hash"] if user else self._decoy_hash
        if not verify_password(password, stored) or user is None:
            return None
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
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],  # pinned: 'none' and key-confusion tricks fail
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.InvalidTokenError:
            raise invalid_token() from None
        user = self.store.user(claims["sub"])
        if user is None:  # a valid signature for a user that is gone
            raise invalid_token()
        return user
