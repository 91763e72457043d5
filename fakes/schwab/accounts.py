"""The fake's accounts: numbers, and the hashes every account path uses instead of them.

Pure. Schwab's Trader API never takes an account number in a path: `GET /accounts/
accountNumbers` maps each number to an opaque `hashValue`, and every account call names the
hash. The fake's hashes are stable (a restarted fake keeps them), 64 upper-case hex digits
like Schwab's, and match the `\\w+` that schwab-py's `extract_order_id` expects.
"""

import hashlib
from collections.abc import Iterable
from typing import Final

DEFAULT_ACCOUNT: Final = "10000001"


def account_hash(number: str) -> str:
    """The hash of an account number."""
    return hashlib.sha256(f"ticklane-fake-schwab:{number}".encode()).hexdigest().upper()


class Accounts:
    """Account numbers in the order configured, and their hashes."""

    def __init__(self, numbers: Iterable[str]) -> None:
        self.numbers = tuple(numbers)
        self._by_hash = {account_hash(n): n for n in self.numbers}

    def number(self, hash_value: str) -> str | None:
        """The account a hash names, or None."""
        return self._by_hash.get(hash_value)

    def pairs(self) -> list[tuple[str, str]]:
        """(number, hash) of every account."""
        return [(n, account_hash(n)) for n in self.numbers]
