"""Secrets come from the environment or an owner-only file, and are never shown."""

import logging
from pathlib import Path

import pytest

from ticklane.secrets import Redactor, SecretError, read_secret


def test_environment_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TL_TEST_KEY", " db-abc \n")
    secret = read_secret("TL_TEST_KEY")
    assert secret.get_secret_value() == "db-abc"
    assert "db-abc" not in repr(secret)
    assert "db-abc" not in str(secret)


def test_file_must_be_private(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TL_TEST_KEY", raising=False)
    path = tmp_path / "key"
    path.write_text("db-from-file\n")
    path.chmod(0o644)
    monkeypatch.setenv("TL_TEST_KEY_FILE", str(path))
    with pytest.raises(SecretError, match="chmod 600"):
        read_secret("TL_TEST_KEY")
    path.chmod(0o600)
    assert read_secret("TL_TEST_KEY").get_secret_value() == "db-from-file"


def test_missing_secret_says_where_to_put_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TL_TEST_KEY", raising=False)
    monkeypatch.delenv("TL_TEST_KEY_FILE", raising=False)
    with pytest.raises(SecretError, match="TL_TEST_KEY_FILE"):
        read_secret("TL_TEST_KEY")


def test_the_redactor_masks_whole_secrets_and_any_five_of_their_characters() -> None:
    redactor = Redactor(["db-Zq7Xk2Lp9Wm4Rt6Yv8Nb3Hc5Jd1Fg"])
    record = logging.LogRecord(
        "databento.live.protocol", logging.DEBUG, __file__, 1,
        "sending CRAM challenge response auth='%s' key=%s", ("abc123-Jd1Fg", "****5Jd1F"), None,
    )  # fmt: skip
    assert redactor.filter(record)
    assert (
        record.getMessage() == "sending CRAM challenge response auth='abc123-*****' key=*********"
    )
    assert redactor.redact("Jd1F and 5Jd1 stay: shorter than five") == (
        "Jd1F and 5Jd1 stay: shorter than five"
    )
    assert "db-Zq" not in redactor.redact("key db-Zq7Xk2Lp9Wm4Rt6Yv8Nb3Hc5Jd1Fg!")
