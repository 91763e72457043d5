"""The agents' control feed against the real broker: nothing written around start-up is lost."""

from confluent_kafka import KafkaError, Producer

from agents.control_feed import ControlFeed
from agents.controls import ControlBook
from tests.conftest import poll_until
from tests.integration.executors.scenario import create_topics
from ticklane import kafka, wire
from ticklane.control import ControlAction, ControlCommand
from ticklane.settings import Settings
from ticklane.topics import resolve


class _EndThenCommand:
    """The consumer's batch when the first fetch found the topic empty and a command came
    in right after: the end-of-partition event, then the command, in one batch."""

    def __init__(self, real, command: bytes) -> None:
        self._real, self._command, self.batches = real, command, 0

    def consume(self, n: int, timeout: float):
        self.batches += 1
        if self.batches > 1:
            return self._real.consume(n, timeout)
        return [_Message(KafkaError(KafkaError._PARTITION_EOF)), _Message(None, self._command)]

    def close(self) -> None:
        self._real.close()


class _Message:
    def __init__(self, error, value: bytes | None = None) -> None:
        self._error, self._value = error, value

    def error(self):
        return self._error

    def value(self):
        return self._value

    def offset(self) -> int:
        return 0


def test_a_command_in_the_same_batch_as_the_end_of_the_topic_is_applied(settings: Settings):
    create_topics(settings)
    book = ControlBook()
    feed = ControlFeed(
        book,
        settings.kafka,
        kafka.bootstrap_servers(settings),
        resolve(settings.topics, "control"),
    )
    off = ControlCommand.create(ControlAction.DISABLE, 1, strategy="ema_cross", symbol="ES")
    feed._consumer = _EndThenCommand(feed._consumer, wire.encode(off))  # type: ignore[assignment]
    try:
        assert feed.catch_up() == 1
        assert not book.enabled("ema_cross", "ES")
    finally:
        feed.stop()


def test_commands_written_before_and_while_the_feed_runs_are_all_applied(settings: Settings):
    create_topics(settings)
    topic = resolve(settings.topics, "control")
    bootstrap = kafka.bootstrap_servers(settings)
    out = Producer(kafka.producer_config(settings.kafka, bootstrap))

    def send(symbol: str) -> None:
        command = ControlCommand.create(ControlAction.DISABLE, 1, strategy="s", symbol=symbol)
        out.produce(topic, key=command.key.encode(), value=wire.encode(command))
        out.flush(10)

    send("A")
    book = ControlBook()
    feed = ControlFeed(book, settings.kafka, bootstrap, topic)
    send("B")  # between the feed's assignment and its catch-up
    try:
        feed.catch_up()
        send("C")  # while it runs
        feed.start()
        poll_until(
            lambda: not any(book.enabled("s", sym) for sym in "ABC"),
            what="every command applied",
        )
    finally:
        feed.stop()
