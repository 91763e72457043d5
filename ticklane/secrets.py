"""Secrets (API keys, broker tokens) from the environment or from files only their owner reads.

A secret is never logged or echoed: it travels as pydantic's SecretStr, whose repr hides it.
"""

import os
import stat
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
