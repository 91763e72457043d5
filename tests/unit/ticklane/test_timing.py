"""Timing stamps in headers: written as ASCII ns, read back from either header shape."""

from ticklane.timing import SIGNAL_SENT, TICK_RECEIVED, stamp, stamps


def test_stamps_read_back_what_stamp_wrote_from_a_list_or_a_mapping() -> None:
    headers = [stamp(TICK_RECEIVED, 1_700_000_000_123_456_789), stamp(SIGNAL_SENT, 5)]
    assert stamps(headers) == {TICK_RECEIVED: 1_700_000_000_123_456_789, SIGNAL_SENT: 5}
    assert stamps(dict(headers)) == stamps(headers)


def test_other_and_malformed_headers_are_left_out() -> None:
    headers = [
        ("reason", b"x"),
        (TICK_RECEIVED, b"12a"),
        (SIGNAL_SENT, None),
        ("ticklane-other-ns", b"7"),
    ]
    assert stamps(headers) == {"ticklane-other-ns": 7}
    assert stamps(None) == {}
    assert stamps([]) == {}
