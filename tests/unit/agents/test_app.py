"""The agents' Faust app and side reader reach a secured cluster with the same `kafka`
settings as every other ticklane client (librdkafka's names, translated)."""

from pathlib import Path

import certifi
import faust
from pydantic import SecretStr

from agents.app import aiokafka_security, faust_credentials, make_app
from ticklane.settings import KafkaSettings, Settings

PASSWORD = "s3cret-kafka-pass"  # noqa: S105 - a test value


def _sasl_ssl() -> KafkaSettings:
    return KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="ticklane",
        sasl_password=SecretStr(PASSWORD),
        ssl_ca_location=Path(certifi.where()),
    )


def test_plaintext_needs_no_credentials() -> None:
    assert faust_credentials(KafkaSettings()) is None
    assert aiokafka_security(KafkaSettings()) == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_reaches_the_faust_app(tmp_path: Path) -> None:
    settings = Settings(kafka=_sasl_ssl(), data_dir=tmp_path)
    app = make_app(settings, "kafka-0:9093,kafka-1:9093", tmp_path / "state")
    credentials = app.conf.broker_credentials
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.protocol.value, credentials.mechanism.value) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
    )
    assert (credentials.username, credentials.password) == ("ticklane", PASSWORD)
    assert credentials.ssl_context is not None
    assert PASSWORD not in repr(credentials)


def test_sasl_ssl_reaches_the_side_reader() -> None:
    config = aiokafka_security(_sasl_ssl())
    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (config["sasl_plain_username"], config["sasl_plain_password"]) == ("ticklane", PASSWORD)
    assert config["ssl_context"] is not None


def test_ssl_alone_carries_a_context_and_no_sasl() -> None:
    kafka = KafkaSettings(security_protocol="SSL", ssl_ca_location=Path(certifi.where()))
    credentials = faust_credentials(kafka)
    assert isinstance(credentials, faust.SSLCredentials)
    assert "sasl_mechanism" not in aiokafka_security(kafka)
