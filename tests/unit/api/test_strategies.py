"""The strategies view: config, control commands in issue order, last signals."""

from fastapi.testclient import TestClient

from agents.strategies.registry import StrategyRegistry
from api.access import Access
from api.app import ApiState, create_app
from api.auth import LoginLimiter, Sessions, Users
from api.metrics import ApiMetrics
from api.store import Located, Store
from ticklane.control import ControlAction, ControlCommand
from ticklane.settings import StrategyConfig
from ticklane.trading import Signal


def test_each_strategy_per_symbol_with_its_effective_params_state_and_last_signal(tmp_path):
    store = Store(tmp_path / "api.sqlite")
    commands = [
        ControlCommand.create(ControlAction.DISABLE, 1, strategy="ema_cross"),
        ControlCommand.create(ControlAction.ENABLE, 2, strategy="ema_cross", symbol="ES"),
        ControlCommand.create(
            ControlAction.SET_PARAMS, 3, strategy="ema_cross", symbol="ES", params={"fast": 5}
        ),
    ]
    signals = [Signal.create("ema_cross", "ES", ts, ts % 2) for ts in (10, 20)]
    store.apply([Located(0, i, m) for i, m in enumerate([*commands, *signals])], {})
    configured = [
        StrategyConfig(name="ema_cross", symbols=("ES", "NQ"), params={"slow": 30}),
        StrategyConfig(name="supertrend", symbols="*"),
    ]
    access = Access(Users(), Sessions(60.0), LoginLimiter(5, 60.0), open_reads=True)
    state = ApiState(
        store, ApiMetrics(), access=access, registry=StrategyRegistry(), strategies=configured
    )
    answer = TestClient(create_app(state)).get("/api/v1/strategies").json()
    rows = {(r["strategy"], r["symbol"]): r for r in answer["strategies"]}
    es, nq = rows[("ema_cross", "ES")], rows[("ema_cross", "NQ")]
    assert (es["enabled"], nq["enabled"]) == (True, False)  # enabled for ES after a disable-all
    assert (es["params"]["fast"], es["params"]["slow"]) == (5, 30)
    assert nq["params"]["fast"] != 5  # the command named ES only
    assert es["last_signal"]["ts_event"] == 20
    assert nq["last_signal"] is None
    assert not any(s == "supertrend" for s, _ in rows)  # "*" and no signal yet: no symbol
    names = {p["name"] for p in answer["declared"]["ema_cross"]}
    assert {"fast", "slow", "quantity"} <= names
    # The types a form needs, through the bounds the parameters are declared with.
    kinds = {p["name"]: p["type"] for p in answer["declared"]["supertrend"]}
    assert kinds == {"length": "int", "multiplier": "float", "quantity": "int", "long_only": "bool"}
    assert es["indicators"] is None  # no indicators published for it in this store
    store.close()
