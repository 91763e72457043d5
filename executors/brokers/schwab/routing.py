"""Whether an `executor.symbols` pattern could route a future to Schwab: pure.

Executors route by shell-style patterns (`executors/routing.py`, `fnmatchcase`), so testing
only the literal names misses `ES*`, `/ES*` or `*`, each of which lets a future through. A
pattern is refused when some futures-shaped symbol matches it; that is decided exactly, not
by trying examples: the pattern and each futures shape are small automata, and a
breadth-first walk of their product finds the shortest symbol both accept (shown in the
error), or proves there is none.

The futures shapes are those Databento and Schwab's streamer write:
- an outright, CME style: a root of 1 to 5 letters or digits, a month code, a 1- or 2-digit
  year (`ESZ6`, `ESZ26`);
- an option on one: the outright, a space, C or P, the strike (`ESM4 P5230`);
- anything after a `/` (`/ES`, `/ESZ26`: Schwab's and thinkorswim's futures names).
An OSI equity option (`AAPL  250117C00150000`, or `AAPL *` as a pattern) is none of these.
The adapter's own test of a symbol (`orders.is_future`) is looser about future options;
the start-up check applies it as well to every pattern without wildcards.
"""

import string
from collections import deque
from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Final, Literal

Kind = Literal["one", "optional", "any_number"]
Token = tuple[Kind, frozenset[str]]

ALPHABET: Final = (
    string.ascii_uppercase + string.digits + " " + string.ascii_lowercase + string.punctuation
) + "\u00e9"
"""Every character a pattern or a shape can tell apart: printable ASCII, and one beyond it
that stands for all the rest (no shape names any). Ordered so that the example shown is
readable: capitals first."""
ANY: Final = frozenset(ALPHABET)
_ROOT: Final = frozenset(string.ascii_uppercase + string.digits)
_MONTH: Final = frozenset("FGHJKMNQUVXZ")
_DIGIT: Final = frozenset(string.digits)


def _repeat(chars: frozenset[str], least: int, most: int | None) -> list[Token]:
    one: Token = ("one", chars)
    if most is None:
        return [one] * least + [("any_number", chars)]
    optional: Token = ("optional", chars)
    return [one] * least + [optional] * (most - least)


_OUTRIGHT: Final = _repeat(_ROOT, 1, 5) + _repeat(_MONTH, 1, 1) + _repeat(_DIGIT, 1, 2)
SHAPES: Final[dict[str, list[Token]]] = {
    "a future": _OUTRIGHT,
    "a future option": _OUTRIGHT
    + _repeat(frozenset(" "), 1, 1)
    + _repeat(frozenset("CP"), 1, 1)
    + _repeat(_DIGIT, 1, None),
    "a /-named future": _repeat(frozenset("/"), 1, 1) + _repeat(ANY, 0, None),
}


def pattern_tokens(pattern: str) -> list[Token]:
    """A shell-style pattern as tokens, read the way `fnmatch.translate` reads it."""
    tokens: list[Token] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            tokens.append(("any_number", ANY))
        elif c == "?":
            tokens.append(("one", ANY))
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                tokens.append(("one", frozenset("[")))  # unclosed: a plain `[`, as fnmatch
            else:
                bracket = pattern[i - 1 : j + 1]
                tokens.append(("one", frozenset(a for a in ALPHABET if fnmatchcase(a, bracket))))
                i = j + 1
        else:
            tokens.append(("one", frozenset(c)))
    return tokens


def _closure(tokens: Sequence[Token], positions: set[int]) -> frozenset[int]:
    """Positions reachable without reading a character (past optional tokens)."""
    todo = list(positions)
    seen = set(positions)
    while todo:
        p = todo.pop()
        if p < len(tokens) and tokens[p][0] != "one" and p + 1 not in seen:
            seen.add(p + 1)
            todo.append(p + 1)
    return frozenset(seen)


def _step(tokens: Sequence[Token], positions: frozenset[int], c: str) -> frozenset[int]:
    after: set[int] = set()
    for p in positions:
        if p < len(tokens) and c in tokens[p][1]:
            after.add(p if tokens[p][0] == "any_number" else p + 1)
    return _closure(tokens, after)


def shortest_common(a: Sequence[Token], b: Sequence[Token]) -> str | None:
    """The shortest string both token sequences accept, or None if there is none."""
    start = (_closure(a, {0}), _closure(b, {0}))
    seen = {start}
    queue: deque[tuple[tuple[frozenset[int], frozenset[int]], str]] = deque([(start, "")])
    while queue:
        (pa, pb), text = queue.popleft()
        if len(a) in pa and len(b) in pb:
            return text
        for c in ALPHABET:
            nxt = (_step(a, pa, c), _step(b, pb, c))
            if nxt[0] and nxt[1] and nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, text + c))
    return None


def future_matched(pattern: str) -> tuple[str, str] | None:
    """(what, example): a futures-shaped symbol `pattern` matches, or None if none can."""
    tokens = pattern_tokens(pattern)
    for what, shape in SHAPES.items():
        example = shortest_common(tokens, shape)
        if example is not None:
            return what, example
    return None


def has_wildcard(pattern: str) -> bool:
    """Whether the pattern names more than itself."""
    return any(c in pattern for c in "*?[")
