"""Who may call the API: users with roles, their hashed passwords and API keys, sessions.

Users live in a JSON file only its owner may read (0600, like every secret here), written by
`ticklane api-users`: a name, a role (a viewer reads; a trader also controls), an argon2 hash
of a password for the dashboard's login, and SHA-256 hashes of API keys for scripts. Nothing
here keeps or logs a password or a key in the clear: a key is shown once, when it is made.

A script sends `Authorization: Bearer <key>`. A person logs in with a password and gets a
session: an HttpOnly cookie, and a CSRF token that every request changing something must echo
in `X-CSRF-Token` (a page on another site can make the browser send the cookie, never read
the token). Failed logins are limited per user and address.
"""

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Final

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ticklane.secrets import exposure

KEY_PREFIX: Final = "tl_"
SESSION_COOKIE: Final = "ticklane_session"
CSRF_HEADER: Final = "X-CSRF-Token"
_HASHER: Final = PasswordHasher()
_DUMMY_HASH: Final = _HASHER.hash("not a password anyone has")
"""Verified against when the user is unknown, so a wrong name costs what a wrong password does."""


class Role(StrEnum):
    """What a user may do: read, or read and control."""

    VIEWER = "viewer"
    TRADER = "trader"


class User(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One user as the users file holds it."""

    name: str
    role: Role
    password_hash: str = ""
    api_key_hashes: tuple[str, ...] = ()


class UsersFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The users file's shape."""

    users: tuple[User, ...] = ()


class AuthError(Exception):
    """The users file cannot be used; the message says why and what to do."""


def hash_password(password: str) -> str:
    """An argon2id hash of a password."""
    return _HASHER.hash(password)


def new_api_key() -> str:
    """A fresh API key: shown to its owner once, kept only as its hash."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """A key's SHA-256, as the users file keeps it (a key is random: no salt is needed)."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class Users:
    """The users, looked up by name or by API key."""

    def __init__(self, users: tuple[User, ...] = ()) -> None:
        names = [u.name for u in users]
        if len(set(names)) != len(names):
            raise AuthError("the users file names a user twice")
        self._by_name = {u.name: u for u in users}
        self._by_key = {h: u for u in users for h in u.api_key_hashes}

    @classmethod
    def load(cls, path: Path) -> "Users":
        """The users in `path`, which only its owner may read; `AuthError` otherwise."""
        try:
            mode = path.stat().st_mode
            data = path.read_bytes()
        except OSError as exc:
            raise AuthError(f"the API users file {path} cannot be read: {exc.strerror}") from None
        exposed = exposure(f"the API users file {path}", path, mode)
        if exposed:
            raise AuthError(exposed)
        try:
            return cls(msgspec.json.decode(data, type=UsersFile).users)
        except msgspec.DecodeError as exc:
            # The decoder's message names the field, never a value.
            raise AuthError(f"the API users file {path} is not valid: {exc}") from None

    @property
    def names(self) -> list[str]:
        """Every user's name."""
        return sorted(self._by_name)

    def all(self) -> list["User"]:
        """Every user, by name."""
        return [self._by_name[name] for name in sorted(self._by_name)]

    def by_key(self, key: str) -> User | None:
        """The user an API key belongs to."""
        return self._by_key.get(hash_api_key(key))

    def check_password(self, name: str, password: str) -> User | None:
        """The user, if the password is theirs (the same work whether or not the name exists)."""
        user = self._by_name.get(name)
        stored = user.password_hash if user and user.password_hash else _DUMMY_HASH
        try:
            _HASHER.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        return user if user is not None and user.password_hash else None


def save_users(path: Path, users: list[User]) -> None:
    """Write the users file atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    body = msgspec.json.encode(UsersFile(tuple(users)))
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps(json.loads(body), indent=2).encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


class Session(msgspec.Struct, frozen=True):
    """A logged-in person: who, the CSRF token their changes must carry, until when."""

    user: User
    csrf: str
    expires: float


class Sessions:
    """Sessions in memory: a restart logs everyone out, which is the safe way round."""

    def __init__(self, lifetime_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._lifetime = lifetime_s
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def start(self, user: User) -> tuple[str, Session]:
        """A new session's token (the cookie's value) and the session."""
        token = secrets.token_urlsafe(32)
        session = Session(user, secrets.token_urlsafe(24), self._clock() + self._lifetime)
        with self._lock:
            self._sessions[token] = session
        return token, session

    def get(self, token: str) -> Session | None:
        """The live session a cookie names."""
        with self._lock:
            session = self._sessions.get(token)
            if session is not None and session.expires <= self._clock():
                del self._sessions[token]
                return None
            return session

    def end(self, token: str) -> None:
        """Log a session out."""
        with self._lock:
            self._sessions.pop(token, None)


def same_token(given: str, expected: str) -> bool:
    """Compare tokens in constant time."""
    return hmac.compare_digest(given.encode(), expected.encode())


class LoginLimiter:
    """At most `attempts` failed logins per user and address in a sliding `window_s`."""

    def __init__(
        self, attempts: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._attempts, self._window = attempts, window_s
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, name: str, address: str) -> float:
        """Seconds until another attempt is allowed (0: now)."""
        now = self._clock()
        with self._lock:
            failures = self._failures.get((name, address))
            if failures is None:
                return 0.0
            while failures and failures[0] <= now - self._window:
                failures.popleft()
            if len(failures) < self._attempts:
                return 0.0
            return failures[0] + self._window - now

    def failed(self, name: str, address: str) -> None:
        """Count a failed attempt."""
        with self._lock:
            self._failures.setdefault((name, address), deque()).append(self._clock())

    def succeeded(self, name: str, address: str) -> None:
        """Forget the failures of a user who got in."""
        with self._lock:
            self._failures.pop((name, address), None)
