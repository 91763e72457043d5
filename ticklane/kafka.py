"""librdkafka (confluent-kafka) client configuration built from settings.

Every process builds its clients here, so the choices that keep the pipeline correct
(idempotent producer, Java-compatible key partitioning, manual commits) are made once.
"""

import logging
from pathlib import Path
from typing import Any, Final

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from ticklane.logs import LIBRDKAFKA
from ticklane.settings import KafkaSettings, Settings

ClientConfig = dict[str, Any]
"""librdkafka properties, and `logger` (a `logging.Logger`, which confluent-kafka takes too)."""

ADDRESS_FILE: Final = "broker.addr"


class NoBrokerError(Exception):
    """No Kafka bootstrap address is configured and no local broker is running."""


class KafkaUnreachableError(Exception):
    """Kafka did not answer within `kafka.connect_timeout_s` at start."""


def probe(kafka: KafkaSettings, bootstrap: str) -> None:
    """Return once a broker at `bootstrap` answers a metadata request; else raise
    KafkaUnreachableError naming the address and what to check (never the credentials)."""
    # librdkafka's own lines (one per failed connection attempt) say nothing this one does not.
    quiet = logging.getLogger("ticklane.kafka.probe")
    quiet.propagate = False
    quiet.disabled = True
    admin = AdminClient(client_config(kafka, bootstrap) | {"logger": quiet})
    try:
        admin.list_topics(timeout=kafka.connect_timeout_s)
    except KafkaException as exc:
        raise KafkaUnreachableError(
            f"cannot reach Kafka at {bootstrap} within {kafka.connect_timeout_s:g}s "
            f"({exc.args[0].str()}); check the address (KAFKA_BOOTSTRAP_SERVERS or "
            "kafka.bootstrap_servers), the network, and for a secured cluster "
            "kafka.security_protocol and the SASL/SSL settings; kafka.connect_timeout_s "
            "sets how long to wait"
        ) from None


def bootstrap_servers(settings: Settings) -> str:
    """The configured bootstrap servers, else the address a running `ticklane broker` published."""
    if settings.kafka.bootstrap_servers:
        return settings.kafka.bootstrap_servers
    published = read_published_address(settings.data_dir)
    if published:
        return published
    raise NoBrokerError(
        "no Kafka broker configured: set KAFKA_BOOTSTRAP_SERVERS (or kafka.bootstrap_servers "
        "in the config file), or start one with `ticklane broker` in another shell"
    )


def read_published_address(data_dir: Path) -> str | None:
    """The address `ticklane broker` wrote to the data dir, if that broker is still alive."""
    path = data_dir / ADDRESS_FILE
    try:
        address, pid = path.read_text().split()
    except (OSError, ValueError):
        return None
    if not Path(f"/proc/{pid}").exists():
        return None  # a broker that died without cleaning up; don't point clients at it
    return address


def client_config(kafka: KafkaSettings, bootstrap: str) -> ClientConfig:
    """Connection settings shared by producers, consumers and admin clients."""
    config: ClientConfig = {
        "bootstrap.servers": bootstrap,
        "client.id": kafka.client_id,
        "security.protocol": kafka.security_protocol,
        # Into Python's logging (served by the client's poll), where repeats are held back.
        "logger": LIBRDKAFKA,
        # A producer's metadata requests may otherwise have the broker create a missing
        # topic with its default partitions (a cluster come back empty, a typo): topics
        # come from the catalogue (`ticklane topics create`), keyed placement intact.
        "allow.auto.create.topics": False,
    }
    if kafka.sasl_mechanism:
        config["sasl.mechanism"] = kafka.sasl_mechanism
    if kafka.sasl_username:
        config["sasl.username"] = kafka.sasl_username
    if kafka.sasl_password:
        config["sasl.password"] = kafka.sasl_password.get_secret_value()
    if kafka.ssl_ca_location:
        config["ssl.ca.location"] = str(kafka.ssl_ca_location)
    return config


def producer_config(kafka: KafkaSettings, bootstrap: str, *, linger_ms: int = 1) -> ClientConfig:
    """An idempotent producer: retries never duplicate or reorder within a partition."""
    return client_config(kafka, bootstrap) | {
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": linger_ms,
        # Java's partitioner (also aiokafka's and so Faust's): a symbol lands in the same
        # partition whichever client produced it. librdkafka's default hashes differently.
        "partitioner": "murmur2_random",
        # Small produce requests must not wait for Nagle's algorithm and delayed ACKs.
        "socket.nagle.disable": True,
    }


def consumer_config(
    kafka: KafkaSettings, bootstrap: str, group_id: str, *, from_beginning: bool = True
) -> ClientConfig:
    """A group consumer that commits only when the caller says its work is durable."""
    return client_config(kafka, bootstrap) | {
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest" if from_beginning else "latest",
        "fetch.wait.max.ms": kafka.fetch_wait_max_ms,
        "session.timeout.ms": kafka.session_timeout_ms,
        "heartbeat.interval.ms": max(kafka.session_timeout_ms // 6, 100),
    }
