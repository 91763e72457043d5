"""Settings come from TOML and environment in the documented order; bad values stop start-up."""

import os
from pathlib import Path

import pytest

from ticklane.settings import ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "TICKLANE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("TICKLANE_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ticklane.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    settings = load_settings()
    assert settings.kafka.bootstrap_servers is None
    assert settings.topics.partitions == 12
    assert settings.kafka.fetch_wait_max_ms == 10


def test_toml_then_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        tmp_path,
        '[kafka]\nbootstrap_servers = "a:1"\nclient_id = "x"\n[topics]\npartitions = 3\n',
    )
    assert load_settings(path).kafka.bootstrap_servers == "a:1"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "b:2")
    assert load_settings(path).kafka.bootstrap_servers == "b:2"
    monkeypatch.setenv("TICKLANE_KAFKA__BOOTSTRAP_SERVERS", "c:3")
    monkeypatch.setenv("TICKLANE_TOPICS__PARTITIONS", "24")
    settings = load_settings(path)
    assert settings.kafka.bootstrap_servers == "c:3"
    assert settings.topics.partitions == 24
    assert settings.kafka.client_id == "x"  # untouched TOML values survive the merge


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKLANE_CONFIG", str(write(tmp_path, '[topics]\nprefix = "prod."\n')))
    assert load_settings().topics.prefix == "prod."


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[topics]\npartitions = 0\n", "topics.partitions"),
        ("[kafka]\nbootstrap_server = 'x:1'\n", "kafka.bootstrap_server: Extra inputs"),
        ("[kafka]\nbootstrap_servers = 'nohost'\n", "'nohost' is not host:port"),
        ("[topics]\nprefix = 'a b'\n", "topics.prefix"),
        ("log_level = 'LOUD'\n", "log_level"),
        ("[kafka]\nsecurity_protocol = 'TLS'\n", "kafka.security_protocol"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_settings(write(tmp_path, toml))


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKLANE_TOPICS__PARTITIONS", "many")
    with pytest.raises(ConfigError, match="TICKLANE_TOPICS__PARTITIONS"):
        load_settings()


def test_unreadable_files_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[kafka\n"))


def test_secrets_are_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, "[kafka]\nsasl_password = 987654\nsasl_mechanism = 'NOPE'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "kafka.sasl_password" in str(info.value)
    assert "987654" not in str(info.value)
    settings = load_settings(write(tmp_path, "[kafka]\nsasl_password = 'hunter2'\n"))
    assert "hunter2" not in repr(settings)


def test_a_strategy_order_style_reaches_the_engine(tmp_path: Path) -> None:
    from executors.pricing import OrderStyle  # noqa: PLC0415 - the executor's side of it
    from executors.service import engine_config  # noqa: PLC0415
    from ticklane.trading import TimeInForce  # noqa: PLC0415

    toml = """
[executor.order_styles.breakout]
order_type = "stop"
ticks = 2
time_in_force = "gtc"

[executor.order_styles.scalp]
order_type = "marketable_limit"
ticks = 3
"""
    config = engine_config(load_settings(write(tmp_path, toml)))
    assert config.style_for("breakout") == OrderStyle(
        "stop", time_in_force=TimeInForce.GTC, ticks_away=2
    )
    assert config.style_for("scalp") == OrderStyle("marketable_limit", ticks_through=3)
    assert config.style_for("other") == OrderStyle()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[executor.order_styles.x]\norder_type = "iceberg"', "order_styles.x.order_type"),
        ('[executor.order_styles.x]\norder_type = "limit"\nticks = -1', "order_styles.x.ticks"),
        ('[executor]\norder_type = "stop"', "executor.order_type"),
    ],
)
def test_bad_order_styles_are_named(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_settings(write(tmp_path, toml))
