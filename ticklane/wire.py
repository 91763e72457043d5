"""The versioned binary wire format of every ticklane message.

A message is an 8-byte header followed by a msgpack body:

    magic b"TL" | version u8 | kind u8 | crc32(body) u32 big-endian | body

The kind says which type the body holds, so a message is self-describing. The CRC makes
a corrupted message fail loudly instead of decoding into different numbers: an integer
with a flipped bit is still a valid integer. Decoding never returns a value it is not
sure of; anything else raises `WireError`.
"""

import struct
import zlib
from typing import Final, TypeVar

import msgspec

from ticklane.control import ControlAck, ControlCommand
from ticklane.dbn import DbnRecordError, count_records
from ticklane.market import Bar, DataGap, InstrumentDef, MarketFrame, Quote, Trade
from ticklane.status import ProcessStatus
from ticklane.trading import Fill, Indicators, Order, Position, Signal

MAGIC: Final = b"TL"
VERSION: Final = 1
_HEADER: Final = struct.Struct(">2sBBI")
HEADER_SIZE: Final = _HEADER.size

Message = (MarketFrame | Trade | Quote | Bar | InstrumentDef | Signal | Order | Fill | Position) | (
    ControlCommand | DataGap | ControlAck | ProcessStatus | Indicators
)

# Kind byte on the wire -> (name shown to people, type). Never renumber: add at the end.
KINDS: Final[dict[int, tuple[str, type[Message]]]] = {
    1: ("frame", MarketFrame),
    2: ("trade", Trade),
    3: ("quote", Quote),
    4: ("bar", Bar),
    5: ("instrument", InstrumentDef),
    6: ("signal", Signal),
    7: ("order", Order),
    8: ("fill", Fill),
    9: ("position", Position),
    10: ("control", ControlCommand),
    11: ("data_gap", DataGap),
    12: ("control_ack", ControlAck),
    13: ("status", ProcessStatus),
    14: ("indicators", Indicators),
}
_KIND_OF: Final[dict[type[Message], int]] = {typ: kind for kind, (_, typ) in KINDS.items()}
_DECODERS: Final = {kind: msgspec.msgpack.Decoder(typ) for kind, (_, typ) in KINDS.items()}
_ENCODER: Final = msgspec.msgpack.Encoder()
_FRAME_FIELDS: Final = 5
"""A `MarketFrame`'s fields before multi-symbol frames added `symbols` and `runs`."""

M = TypeVar("M", bound=Message)


class WireError(ValueError):
    """Bytes that are not a valid ticklane message: the reason says what is wrong."""


class UnsupportedVersionError(WireError):
    """A message written by a newer (or unknown) version of the wire format."""

    def __init__(self, version: int) -> None:
        super().__init__(f"unsupported wire version {version} (this build reads {VERSION})")
        self.version = version


def encode(message: Message) -> bytes:
    """Serialise a message with its header."""
    try:
        kind = _KIND_OF[type(message)]
    except KeyError:
        raise TypeError(f"{type(message).__name__} is not a wire message type") from None
    body: bytes
    if isinstance(message, MarketFrame):
        count_records(message)  # never put bytes on the wire that readers refuse
        if not message.runs and not message.symbols:
            # Without runs, the layout frames had before runs existed, byte for byte.
            body = _ENCODER.encode(msgspec.structs.astuple(message)[:_FRAME_FIELDS])
        else:
            body = _ENCODER.encode(message)
    else:
        body = _ENCODER.encode(message)
    return _HEADER.pack(MAGIC, VERSION, kind, zlib.crc32(body)) + body


def kind_name(message: Message) -> str:
    """The short name of a message's type as shown by tools (`trade`, `signal`, ...)."""
    return KINDS[_KIND_OF[type(message)]][0]


def decode(data: bytes | bytearray | memoryview) -> Message:
    """Deserialise a message, or raise WireError naming what is wrong with the bytes."""
    view = memoryview(data)
    if len(view) < HEADER_SIZE:
        raise WireError(f"message too short for a header: {len(view)} bytes, need {HEADER_SIZE}")
    magic, version, kind, crc = _HEADER.unpack_from(view)
    if magic != MAGIC:
        raise WireError(f"not a ticklane message: magic {bytes(magic)!r}, expected {MAGIC!r}")
    if version != VERSION:
        raise UnsupportedVersionError(version)
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise WireError(f"unknown message kind {kind}")
    body = view[HEADER_SIZE:]
    if zlib.crc32(body) != crc:
        raise WireError(f"checksum mismatch in a {KINDS[kind][0]} message: corrupted bytes")
    try:
        message: Message = decoder.decode(body)
    except msgspec.DecodeError as exc:  # ValidationError is a subclass
        raise WireError(f"invalid {KINDS[kind][0]} body: {exc}") from exc
    if isinstance(message, MarketFrame):
        try:
            count_records(message)
        except DbnRecordError as exc:
            raise WireError(f"invalid frame records: {exc}") from exc
    return message


def decode_as(data: bytes | bytearray | memoryview, expected: type[M]) -> M:
    """Deserialise a message that must be of one type."""
    message = decode(data)
    if not isinstance(message, expected):
        raise WireError(f"expected a {expected.__name__}, got a {type(message).__name__}")
    return message
