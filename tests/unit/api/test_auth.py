"""Users, sessions and the login limiter: hashes only, owner-only files, expiry, limits."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from api.auth import (
    AuthError,
    LoginLimiter,
    Role,
    Sessions,
    User,
    Users,
    hash_api_key,
    hash_password,
    new_api_key,
    save_users,
)

TICKLANE = str(Path(sys.executable).with_name("ticklane"))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_user_is_found_by_key_or_password_and_nothing_is_kept_in_the_clear(tmp_path):
    key = new_api_key()
    path = tmp_path / "users.json"
    save_users(path, [User("ann", Role.TRADER, hash_password("pw one"), (hash_api_key(key),))])
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    text = path.read_text()
    assert key not in text
    assert "pw one" not in text
    users = Users.load(path)
    assert users.by_key(key).name == "ann"
    assert users.by_key(key + "x") is None
    assert users.check_password("ann", "pw one").role is Role.TRADER
    assert users.check_password("ann", "pw two") is None
    assert users.check_password("nobody", "pw one") is None


def test_a_users_file_others_can_read_or_a_bad_one_is_refused_saying_why(tmp_path):
    path = tmp_path / "users.json"
    save_users(path, [User("ann", Role.VIEWER)])
    os.chmod(path, 0o644)
    with pytest.raises(AuthError, match="chmod 600"):
        Users.load(path)
    path.write_text(json.dumps({"users": [{"name": "x", "role": "god"}]}))
    os.chmod(path, 0o600)
    with pytest.raises(AuthError, match="role"):
        Users.load(path)
    with pytest.raises(AuthError, match="twice"):
        Users((User("a", Role.VIEWER), User("a", Role.TRADER)))


def test_sessions_expire():
    clock = Clock()
    sessions = Sessions(60.0, clock)
    token, session = sessions.start(User("ann", Role.TRADER))
    assert sessions.get(token) == session
    clock.now += 61
    assert sessions.get(token) is None


def test_the_limiter_counts_failures_in_a_sliding_window_per_user_and_address():
    clock = Clock()
    limiter = LoginLimiter(3, 60.0, clock)
    for _ in range(3):
        assert limiter.retry_after("ann", "1.2.3.4") == 0
        limiter.failed("ann", "1.2.3.4")
    assert limiter.retry_after("ann", "1.2.3.4") == pytest.approx(60.0)
    assert limiter.retry_after("ann", "5.6.7.8") == 0
    clock.now += 61
    assert limiter.retry_after("ann", "1.2.3.4") == 0


def test_api_users_add_writes_the_file_and_shows_the_key_once(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLANE_")}
    env["TICKLANE_DATA_DIR"] = str(tmp_path)
    added = subprocess.run(
        [TICKLANE, "api-users", "add", "ann", "--role", "trader", "--password-stdin"],
        input="s3cret pass\n",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    key = added.stdout.strip()
    assert key.startswith("tl_")
    path = tmp_path / "api" / "users.json"
    assert key not in path.read_text()
    assert "s3cret" not in path.read_text() + added.stderr
    users = Users.load(path)
    assert users.by_key(key).role is Role.TRADER
    assert users.check_password("ann", "s3cret pass") is not None
    listed = subprocess.run(
        [TICKLANE, "api-users", "list"], env=env, capture_output=True, text=True, check=True
    )
    assert listed.stdout.split("\t")[:2] == ["ann", "trader"]
