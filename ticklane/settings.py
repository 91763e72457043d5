"""Settings from the environment and an optional TOML file, validated once at start.

Precedence, highest first: `TICKLANE_*` environment variables (nested with `__`, e.g.
`TICKLANE_TOPICS__PARTITIONS=24`), the conventional `KAFKA_BOOTSTRAP_SERVERS`, the
TOML file (`--config PATH` or `TICKLANE_CONFIG`), then the defaults below. Unknown keys
are errors: a typo must not silently fall back to a default.
"""

import json
import os
import re
import tomllib
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from ticklane.control import ParamValue

CONFIG_ENV = "TICKLANE_CONFIG"
BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"

_TOPIC_PREFIX = re.compile(r"^[A-Za-z0-9._-]*$")


class ConfigError(Exception):
    """Settings that cannot be used; the message names every bad value and where to fix it."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Section):
    """How every process connects to Kafka."""

    bootstrap_servers: str | None = None
    """Comma-separated host:port list. Unset: the address `ticklane broker` last published."""
    client_id: str = "ticklane"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: Path | None = None
    fetch_wait_max_ms: int = Field(default=10, ge=0, le=60_000)
    """A broker may hold a fetch this long when there is no data; low keeps latency low."""
    connect_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    """At start, how long a process waits for Kafka to answer before it exits (code 4)."""
    session_timeout_ms: int = Field(default=10_000, ge=1_000, le=3_600_000)
    """Consumer-group liveness; group joins on the embedded broker wait about half of it."""

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_servers(cls, value: str | None) -> str | None:
        if value is None:
            return None
        servers = [s.strip() for s in value.split(",") if s.strip()]
        if not servers:
            raise ValueError("must name at least one host:port")
        for server in servers:
            host, sep, port = server.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{server!r} is not host:port")
        return ",".join(servers)


class TopicSettings(_Section):
    """Topic names and sizes."""

    prefix: str = ""
    """Prepended to every topic name, e.g. `prod.` to share a cluster between environments."""
    partitions: int = Field(default=12, ge=1, le=10_000)
    """Partitions of every symbol-keyed topic; symbols spread over them and over workers."""
    replication_factor: int = Field(default=1, ge=1, le=32)

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not _TOPIC_PREFIX.match(value):
            raise ValueError("may hold only letters, digits, '.', '_' and '-'")
        return value


BarInterval = Literal["1s", "1m", "5m"]
BarSource = Literal["trades", "mbp-1", "ohlcv-1s", "ohlcv-1m", "ohlcv-1h", "ohlcv-1d"]


class StrategyConfig(_Section):
    """One strategy run on some symbols: `[[agents.strategies]]` in the TOML file."""

    name: str
    """Registry name (`ema_cross`, `supertrend`, or a user's entry point)."""
    symbols: tuple[str, ...] | Literal["*"] = "*"
    """The symbols it runs on; `"*"` is every symbol not named by a list for this strategy."""
    params: dict[str, ParamValue] = Field(default_factory=dict)
    """Strategy parameters; `control` set_params commands override them at run time."""
    bar_interval: BarInterval = "1m"
    """Bars it is fed when bars are built from ticks (ignored for ohlcv-* sources)."""


class AgentSettings(_Section):
    """The agents process: which md.* topic feeds it and which strategies run per symbol."""

    source: BarSource = "trades"
    """trades or mbp-1 (bars are built from the trades), or an ohlcv-* schema (bars as given)."""
    strategies: tuple[StrategyConfig, ...] = (StrategyConfig(name="ema_cross"),)
    bar_intervals: tuple[BarInterval, ...] = ("1m",)
    """Bars built and published to `bars.<interval>` besides those strategies need."""
    app_id: str = "ticklane-agents"
    """Faust app id: the consumer group and the prefix of the state changelog topic."""
    commit_interval_s: float = Field(default=1.0, gt=0.0, le=60.0)
    """How often consumed offsets are committed (a replay after a crash is skipped anyway)."""
    warmup_bars: int = Field(default=500, ge=0, le=1_000_000)
    """History bars fed to a strategy, emitting nothing, before its first live bar on a
    symbol, or after new parameters start its indicators over (`agents.warmup`); 0: off."""
    warmup_lookback_h: float = Field(default=72.0, gt=0, le=24 * 366)
    """How far back warm-up reads the bars.* and md.* topics (by message time) and asks
    Databento."""
    warmup_dataset: str | None = Field(default=None, pattern=r"^[A-Z0-9]+\.[A-Z0-9]+$")
    """Databento dataset (e.g. `GLBX.MDP3`) asked for ohlcv-1m history when Kafka holds
    none; needs `DATABENTO_API_KEY` (or `DATABENTO_API_KEY_FILE`). Unset: Kafka only."""

    @field_validator("strategies")
    @classmethod
    def _check_overlap(cls, value: tuple[StrategyConfig, ...]) -> tuple[StrategyConfig, ...]:
        wildcard: set[str] = set()
        listed: dict[str, set[str]] = {}
        for entry in value:
            if entry.symbols == "*":
                if entry.name in wildcard:
                    raise ValueError(f"strategy {entry.name!r} has two '*' entries")
                wildcard.add(entry.name)
                continue
            seen = listed.setdefault(entry.name, set())
            twice = seen.intersection(entry.symbols)
            if twice:
                raise ValueError(f"strategy {entry.name!r} lists {sorted(twice)} twice")
            seen.update(entry.symbols)
        return value


class LedgerSettings(_Section):
    """Where the executor's order ledger lives."""

    store: Literal["sqlite", "postgres"] = "sqlite"
    sqlite_path: Path | None = None
    """SQLite file; unset: `<data_dir>/executor/ledger.sqlite`."""
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    """NORMAL (WAL) survives a killed process; FULL also survives a power loss, slower."""
    postgres_dsn: SecretStr | None = None
    """libpq connection string, e.g. `host=127.0.0.1 dbname=test user=postgres`."""
    postgres_schema: str = Field(default="ticklane", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    """Schema holding the ledger's tables; created if missing."""


class PaperSettings(_Section):
    """The paper venue: tick-level fills against md.* and its own durable record."""

    data_dir: Path | None = None
    """The venue's own store; unset: `<data_dir>/paper`."""
    market_data: tuple[str, ...] = ("mbp-1",)
    """md.* schemas it fills against; one schema keeps fills deterministic per symbol."""
    fee_per_unit: int = Field(default=0, ge=0)
    """Fee per contract or share, in 1e-9 currency units."""
    slippage: int = Field(default=0, ge=0)
    """Added against the order to market and stop fills, in 1e-9 price units."""
    reverse_in_one_order: bool = True
    """Whether one order may close a position and open the opposite one."""
    tick_buffer: int = Field(default=100_000, ge=1)
    """Recent ticks kept per symbol to fill an order whose signal time has passed."""
    lose_answer_every: int = Field(default=0, ge=0)
    """Fault injection: every Nth submit is recorded but its answer is lost (0: never)."""
    answer_delay_ms: int = Field(default=0, ge=0, le=10_000)
    """Fault injection: a slow link; each submit is answered this long after it is recorded."""


class TastytradeSettings(_Section):
    """The TastyTrade venue (`executors/brokers/tastytrade/`). The client secret and refresh
    token are never settings: they come from TASTYTRADE_CLIENT_SECRET and
    TASTYTRADE_REFRESH_TOKEN, or the 0600 files their `_FILE` variables name."""

    environment: Literal["sandbox", "production"] = "sandbox"
    """`sandbox` is tastytrade's cert environment (api.cert.tastyworks.com): start there."""
    account: str | None = None
    """Account number to trade; unset: the login's only account (several: an error)."""
    dry_run: bool = False
    """Send every order as a dry run: the venue checks it and places nothing."""
    timeout_s: float = Field(default=10.0, gt=0)
    """Per request; an order whose answer takes longer is resolved by lookup."""
    source: str = "ticklane"
    """The `source` every order carries: how ticklane's orders stand out in the account."""
    api_url: str | None = None
    """Tests and the local fake only (`ticklane fake tastytrade`): where to send the API's
    requests, e.g. http://127.0.0.1:8765, instead of the environment's."""


class SchwabSettings(_Section):
    """The Charles Schwab venue (`executors/brokers/schwab/`). The app secret is never a
    setting: it comes from SCHWAB_APP_SECRET or the 0600 file SCHWAB_APP_SECRET_FILE names;
    the app key from SCHWAB_APP_KEY (or its `_FILE`), else `app_key` here."""

    app_key: str | None = None
    """The app's key (not a secret); unset: SCHWAB_APP_KEY."""
    token_file: Path | None = None
    """schwab-py's token file (written by its login flow; `ticklane auth schwab` is to come);
    unset: `<data_dir>/schwab-token.json`. Rewritten atomically (0600) after every refresh."""
    account: str | None = None
    """Account number to trade; unset: the login's only account (several: an error)."""
    timeout_s: float = Field(default=10.0, gt=0)
    """Per request; an order whose answer takes longer is resolved by lookup."""
    orders_per_minute: int = Field(default=120, gt=0)
    """Order requests (place, replace, cancel) per rolling minute: Schwab allows 120."""
    reducing_after_days: float = Field(default=6.0, gt=0)
    """Refresh-token age at which the executor only reduces positions."""
    auth_failures_to_halt: int = Field(default=3, ge=1)
    """Calls refused authentication in a row (401, 403, a refused refresh token) after which
    trading halts, until a call authenticates again (`ticklane auth schwab` fixes it)."""
    api_url: str | None = None
    """Tests and the local fake only (`ticklane fake schwab`): where to send the API's
    requests, e.g. http://127.0.0.1:8766, instead of api.schwabapi.com."""


class OrderStyleSettings(_Section):
    """How one strategy's orders are sent (`executor.order_styles.<strategy>`)."""

    order_type: Literal["market", "marketable_limit", "limit", "stop"]
    """`limit` rests `ticks` ticks on the better side of the signal's reference price (a buy
    below it); `stop` triggers `ticks` ticks beyond it (a buy above it). A resting order is
    cancelled when the next signal for its symbol arrives, before that signal is netted."""
    ticks: int = Field(default=0, ge=0)
    """Marketable limit: ticks through the reference; limit and stop: ticks away from it."""
    time_in_force: Literal["day", "gtc", "ioc"] = "day"


class ExecutorSettings(_Section):
    """The executor: signals to orders, risk limits, ledger and broker."""

    broker: Literal["paper", "tastytrade", "schwab"] = "paper"
    group_id: str = "ticklane-executor"
    """Consumer group whose committed offsets on `signals` the executor resumes from."""
    max_position: int = Field(default=100, ge=0)
    position_overrides: dict[str, int] = Field(default_factory=dict)
    max_notional: int = Field(default=10_000_000 * 1_000_000_000, ge=0)
    """Largest notional of one order, in 1e-9 currency units."""
    max_orders_per_minute: int = Field(default=600, ge=0)
    daily_loss_limit: int = Field(default=10_000 * 1_000_000_000, gt=0)
    """Positive, in 1e-9 currency units: new exposure stops at this day's loss."""
    multipliers: dict[str, int] = Field(default_factory=dict)
    """Contract multiplier per symbol (options: 100); others use `default_multiplier`."""
    default_multiplier: int = Field(default=1, gt=0)
    reconcile_interval_s: float = Field(default=30.0, gt=0)
    lost_answer_settle_s: float | None = Field(default=None, ge=0)
    """After a lost answer, how long after the send a venue's "no such order" is believed (its
    order lists can lag an accept by seconds); until then the order is UNKNOWN and its symbol
    takes no new order. None: the venue's own (0 for paper, whose record is written before it
    answers; 10 s for real venues)."""
    max_sends: int = Field(default=3, ge=1)
    """Sends of one order in all, resends after a settled "no such order" included."""
    strategies: list[str] = Field(default_factory=list)
    """Strategies this executor trades, as shell patterns; empty: all. One executor per
    account can then run beside another (e.g. futures at one venue, equities at another)."""
    symbols: list[str] = Field(default_factory=list)
    """Symbols this executor trades, as shell patterns (`ES*`); empty: all."""
    halt_on_foreign_positions: bool = False
    """Whether a venue position in a symbol this executor never traded halts trading (else it
    is reported: a gauge and a log line)."""
    order_type: Literal["market", "marketable_limit"] = "market"
    """`marketable_limit`: a limit `limit_ticks` ticks through the signal's reference price,
    which trades at once in a normal market and never far from it: the safe choice for a real
    account."""
    limit_ticks: int = Field(default=4, ge=0)
    time_in_force: Literal["day", "gtc", "ioc"] = "day"
    order_styles: dict[str, OrderStyleSettings] = Field(default_factory=dict)
    """Per strategy, a style of its own, resting limits and stops included. The default above
    stays market or marketable limit: a flatten is sent in it, and must trade now."""
    tick_sizes: dict[str, int] = Field(default_factory=dict)
    """Tick size per symbol in 1e-9 units, for marketable limits where the venue does not
    say (TastyTrade does; the paper venue does not)."""
    metrics_port: int = Field(default=0, ge=0, le=65535)
    """Port of /metrics, /health and /ready (ready: reconciled, not halted, no order of unknown
    fate); 0: no HTTP endpoint."""
    ledger: LedgerSettings = LedgerSettings()
    paper: PaperSettings = PaperSettings()
    tastytrade: TastytradeSettings = TastytradeSettings()
    schwab: SchwabSettings = SchwabSettings()


class ApiSettings(_Section):
    """The API service (`ticklane api`): what it serves and where it keeps its store."""

    host: str = "127.0.0.1"
    """Address to listen on; 0.0.0.0 to serve beyond this machine."""
    port: int = Field(default=8080, ge=0, le=65535)
    """0: any free port (the chosen one is printed)."""
    store: Literal["sqlite", "postgres"] = "sqlite"
    """Where its store lives; either way it is rebuilt from the topics if lost."""
    store_path: Path | None = None
    """Its SQLite store; unset: `<data_dir>/api/api.sqlite`. Rebuilt from the topics if lost."""
    postgres_dsn: SecretStr | None = None
    """libpq connection string, e.g. `host=127.0.0.1 dbname=test user=postgres`."""
    postgres_schema: str = Field(default="ticklane_api", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    """Schema holding the store's tables; created if missing. Never the ledger's schema."""
    group_id: str = "ticklane-api"
    """Client id prefix; the API keeps its offsets in its store, not in a consumer group."""
    ready_max_lag: int = Field(default=1_000, ge=0)
    """/ready fails while the store is more than this many messages behind the topics."""
    page_size: int = Field(default=100, ge=1, le=10_000)
    """Items per page of a list, unless the request asks for fewer (at most `max_page_size`)."""
    max_page_size: int = Field(default=1_000, ge=1, le=100_000)
    users_file: Path | None = None
    """Users, roles, hashed passwords and API keys (`ticklane api-users`), mode 0600; unset:
    `<data_dir>/api/users.json`. Without it, reads need `open_reads` and controls are refused."""
    open_reads: bool = False
    """Reads without logging in: for a private network only. Controls always need a trader."""
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    secure_cookies: bool = False
    """Mark the session cookie Secure (HTTPS only): set it when a TLS proxy fronts the API."""
    login_attempts: int = Field(default=5, ge=1)
    """Failed logins allowed per user and address in `login_window_s`; then 429."""
    login_window_s: float = Field(default=60.0, gt=0)
    web_dir: Path | None = None
    """The dashboard's static export served at `/`; unset: the checkout's `web/out` (`make web`)."""


class Settings(BaseSettings):
    """Everything a ticklane process can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix="TICKLANE_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    agents: AgentSettings = AgentSettings()
    executor: ExecutorSettings = ExecutorSettings()
    api: ApiSettings = ApiSettings()
    data_dir: Path = Path(".ticklane")
    """Local state: embedded broker address and log, RocksDB tables, SQLite ledger."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    status_interval_s: float = Field(default=5.0, gt=0, le=3600)
    """Every process publishes its status this often; one silent for three is shown silent."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init arguments; the environment overrides it.
        return (env_settings, init_settings)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"invalid settings ({source}):"]
    for item in error.errors():
        loc = ".".join(str(part) for part in item["loc"])
        env = "TICKLANE_" + "__".join(str(part).upper() for part in item["loc"])
        secret = any(word in loc for word in ("password", "key", "dsn"))
        shown = "" if secret else f" (got {item.get('input')!r})"
        lines.append(f"  {loc}: {item['msg']}{shown}  [TOML key {loc} or env {env}]")
    return "\n".join(lines)


def load_settings(config_file: Path | None = None) -> Settings:
    """Settings from the environment and the TOML file; ConfigError says what is wrong."""
    path = config_file or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    data = _read_toml(path) if path else {}
    bootstrap = os.environ.get(BOOTSTRAP_ENV)
    if bootstrap:
        kafka = data.get("kafka")
        data["kafka"] = {
            **(kafka if isinstance(kafka, dict) else {}),
            "bootstrap_servers": bootstrap,
        }
    try:
        return Settings(**data)
    except ValidationError as exc:
        source = f"config file {path} and environment" if path else "environment"
        raise ConfigError(_describe(exc, source)) from None
    except SettingsError as exc:
        raise ConfigError(_describe_unparsed(exc)) from None


def _describe_unparsed(exc: SettingsError) -> str:
    """pydantic-settings names only the top-level field when an environment variable for a
    list or table setting is not JSON: name the variables themselves (never their values,
    which may be secrets)."""
    found = re.search(r'field "(\w+)"', str(exc))
    prefix = f"TICKLANE_{found.group(1).upper() if found else ''}"
    unparsed = sorted(
        name
        for name, value in os.environ.items()
        if name.upper() == prefix or name.upper().startswith(prefix + "__")
        if _takes_json(name.upper().removeprefix("TICKLANE_").split("__")) and not _is_json(value)
    )
    names = " and ".join(unparsed) or f"a {prefix}* variable"
    return (
        f"environment: {names} is not valid JSON; a list or table setting takes JSON in the "
        """environment, e.g. TICKLANE_AGENTS__BAR_INTERVALS='["1s", "1m"]'"""
    )


def _takes_json(path: list[str]) -> bool:
    """Whether the setting an environment variable's name leads to is a list or a table."""
    model: type[BaseModel] = Settings
    annotation: Any = None
    for part in path:
        field = model.model_fields.get(part.lower())
        if field is None:
            return False
        annotation = field.annotation
        nested = [a for a in (typing.get_args(annotation) or (annotation,)) if _is_model(a)]
        if nested:
            model = nested[0]
    origins = {typing.get_origin(a) or a for a in (typing.get_args(annotation) or (annotation,))}
    origins.add(typing.get_origin(annotation) or annotation)
    return bool(origins & {list, dict, tuple, set, frozenset}) or any(map(_is_model, origins))


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _is_json(value: str) -> bool:
    try:
        json.loads(value)
    except ValueError:
        return False
    return True
