"""Secrets (API keys, broker tokens) from the environment or from files only their owner reads.

A secret is never logged or echoed: it travels as pydantic's SecretStr, whose repr hides it.
"""

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from pydantic import SecretStr


class SecretError(Exception):
    """A secret is missing or stored unsafely; the message says where to put it."""


def read_secret(name: str) -> SecretStr:
    """`NAME` from the environment, else the file named by `NAME_FILE` (mode 0600 or stricter)."""
    value = os.environ.get(name)
    if value:
        return SecretStr(value.strip())
    file_name = os.environ.get(f"{name}_FILE")
    if not file_name:
        raise SecretError(f"{name} is not set: export it, or put it in a file and set {name}_FILE")
    path = Path(file_name)
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise SecretError(f"{name}_FILE={path} cannot be read: {exc.strerror}") from None
    exposed = exposure(f"{name}_FILE={path}", path, mode)
    if exposed:
        raise SecretError(exposed)
    secret = path.read_text().strip()
    if not secret:
        raise SecretError(f"{name}_FILE={path} is empty")
    return SecretStr(secret)


def exposure(what: str, path: Path, mode: int) -> str:
    """Why a file holding secrets (`what`, with `mode`) is unsafe, with the fix; "" if only its
    owner may read or write it."""
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return f"{what} is readable by others (mode {stat.S_IMODE(mode):o}); run `chmod 600 {path}`"
    return ""


FRAGMENT: int = 5
"""The shortest piece of a secret that is masked in logs: Databento's client logs the key's
last five characters (its "bucket id") at DEBUG, and others print tails the same way."""


class Redactor(logging.Filter):
    """Masks every piece of `FRAGMENT` or more characters of the given secrets in the log
    records that pass it (the message as formatted, arguments included)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._pieces = frozenset(
            secret[i : i + FRAGMENT]
            for secret in secrets
            for i in range(len(secret) - FRAGMENT + 1)
        )

    def redact(self, text: str) -> str:
        """`text` with every character that belongs to a piece of a secret replaced by `*`."""
        masked: set[int] = set()
        for piece in self._pieces:
            start = text.find(piece)
            while start >= 0:
                masked.update(range(start, start + FRAGMENT))
                start = text.find(piece, start + 1)
        if not masked:
            return text
        return "".join("*" if i in masked else c for i, c in enumerate(text))

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        return True


def redact_logs(*secrets: SecretStr) -> Redactor:
    """From now on, mask the secrets in every record the root logger's handlers write, which
    includes every third-party library's that propagates (they all do by default)."""
    redactor = Redactor(s.get_secret_value() for s in secrets)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig()
    for handler in root.handlers:
        handler.addFilter(redactor)
    return redactor
