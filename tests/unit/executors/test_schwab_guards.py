"""The Schwab adapter's pure guards: the breaker on authentication failures, and the start-up
check that no `executor.symbols` pattern can route a future to Schwab."""

import pytest

from executors.brokers.base import BrokerError
from executors.brokers.schwab import routing
from executors.brokers.schwab.breaker import AuthBreaker
from executors.brokers.schwab.client import SchwabBroker
from executors.routing import Route

pytestmark = pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning")

# --- the breaker


def test_the_breaker_opens_at_the_limit_of_failures_in_a_row_and_says_how_to_fix_it():
    breaker = AuthBreaker(3)
    for n in (1, 2):
        breaker = breaker.failed(f"list orders: HTTP 401 ({n})")
        assert not breaker.is_open
        assert breaker.reason() == ""
    breaker = breaker.failed("read positions: the refresh token was refused (invalid_client)")
    assert breaker.is_open
    assert breaker.failures == 3
    reason = breaker.reason()
    assert "3 times in a row" in reason
    assert "read positions: the refresh token was refused (invalid_client)" in reason
    assert "`ticklane auth schwab`" in reason
    assert breaker.failed("again").is_open  # stays open while failures go on


def test_a_call_that_authenticates_closes_the_breaker_and_starts_the_count_over():
    breaker = AuthBreaker(2).failed("a").failed("b")
    assert breaker.is_open
    closed = breaker.succeeded()
    assert (closed.is_open, closed.failures, closed.reason()) == (False, 0, "")
    # Failures count only in a row: one success between them starts over.
    assert not AuthBreaker(2).failed("a").succeeded().failed("b").is_open
    fresh = AuthBreaker(2)
    assert fresh.succeeded() is fresh


def test_a_breaker_limit_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        AuthBreaker(0)
    assert AuthBreaker(1).failed("x").is_open


# --- patterns that could route a future


@pytest.mark.parametrize(
    ("pattern", "what", "example"),
    [
        ("*", "a future", "AF0"),
        ("ES*", "a future", "ESF0"),
        ("SPY*", "a future", "SPYF0"),  # `SPY` and `SPY *` say what is meant
        ("ESZ6", "a future", "ESZ6"),
        ("??Z6", "a future", "AAZ6"),
        ("ES[A-Z]*", "a future", "ESF0"),
        ("ESM4 P5230", "a future option", "ESM4 P5230"),
        ("ESM4 *", "a future option", "ESM4 C0"),
        ("/ES*", "a /-named future", "/ES"),
        ("/*", "a /-named future", "/"),
    ],
)
def test_a_pattern_matching_a_futures_shape_is_found_with_an_example(pattern, what, example):
    assert routing.future_matched(pattern) == (what, example)
    assert Route(symbols=(pattern,)).covers("s1", example)  # the example really is routed


@pytest.mark.parametrize(
    "pattern",
    [
        "AAPL",
        "AAPL *",  # OSI options on AAPL
        "SPXW *",
        "SPY   261218C00600000",
        "SYN001",
        "AAPL?",  # five characters cannot end in a month code and a year
        "BRK.B",
        "es*",  # routes are case-sensitive, and futures are capitals
        "[",  # an unclosed bracket is a plain character, as fnmatch reads it
        "ES[!A-Z0-9]*",
    ],
)
def test_a_pattern_no_futures_shape_can_match_passes(pattern):
    assert routing.future_matched(pattern) is None


def test_pattern_tokens_read_brackets_as_fnmatch_does():
    [(kind, chars)] = routing.pattern_tokens("[!A-Y]")
    assert kind == "one"
    assert "Z" in chars
    assert not chars & {"A", "Y"}
    assert routing.pattern_tokens("[]]") == [("one", frozenset("]"))]
    assert [k for k, _ in routing.pattern_tokens("A*?")] == ["one", "any_number", "one"]


def test_start_up_refuses_symbols_that_could_route_a_future_and_names_the_setting():
    with pytest.raises(BrokerError, match=r"empty executor\.symbols.*futures included"):
        SchwabBroker.check_symbols([])
    with pytest.raises(BrokerError) as refused:
        SchwabBroker.check_symbols(["AAPL", "AAPL *", "ES*", "/NQ*", "ESZ6"])
    message = str(refused.value)
    assert "TICKLANE_EXECUTOR__SYMBOLS" in message
    assert "ES* (it matches a future, e.g. ESF0)" in message
    assert "/NQ* (it matches a /-named future, e.g. /NQ)" in message
    assert message.count("ESZ6") == 1  # a literal future is named as it is
    routed = message.split("would route futures here:")[1].split(". ", maxsplit=1)[0]
    assert "AAPL" not in routed
    # A literal the adapter's own test calls a future is refused too (a looser shape).
    with pytest.raises(BrokerError, match="AAPL C5"):
        SchwabBroker.check_symbols(["AAPL C5"])
    SchwabBroker.check_symbols(["AAPL", "AAPL *", "SPY", "SPY   261218C00600000"])
