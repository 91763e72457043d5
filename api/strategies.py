"""What the strategies are doing, per symbol: enabled or not, their effective parameters,
their last signal and their indicators, from the settings' `[[agents.strategies]]`, the
`control` commands the API has read (applied in issue order by the agents' own
`ControlBook`), the `signals` topic and the `indicators` topic (what each strategy acted on
at its last bar).
"""

from typing import Annotated, get_origin

import msgspec

from agents.controls import ControlBook
from agents.strategies.registry import StrategyRegistry
from api import views
from api.store import Store
from ticklane.control import ParamValue
from ticklane.settings import StrategyConfig


def declared(registry: StrategyRegistry, name: str) -> list[views.ParamSpec]:
    """The parameters a strategy declares, with their types and defaults."""
    params_type = registry.get(name).params_type
    specs = []
    for field in msgspec.structs.fields(params_type):
        default = None if field.default is msgspec.NODEFAULT else field.default
        kind = _type_name(field.type)
        specs.append(views.ParamSpec(name=field.name, type=kind, default=default))
    return specs


def _type_name(annotation: object) -> str:
    """`int` for `int` and for `Annotated[int, Meta(ge=1)]` alike: what a form needs."""
    base = (
        getattr(annotation, "__origin__", annotation)
        if get_origin(annotation) is Annotated
        else annotation
    )
    return getattr(base, "__name__", None) or str(base)


def strategies_view(
    store: Store, registry: StrategyRegistry, configured: list[StrategyConfig]
) -> views.StrategiesView:
    """Each configured strategy on each symbol it names (or, for `"*"`, has signalled in)."""
    book = ControlBook()
    for command in store.all_commands():
        book.apply(command)
    rows: list[views.StrategyView] = []
    known: dict[str, list[views.ParamSpec]] = {}
    for entry in configured:
        if entry.name not in known:
            known[entry.name] = declared(registry, entry.name)
        defaults = {p.name: p.default for p in known[entry.name] if p.default is not None}
        symbols = (
            store.signalled_symbols(entry.name) if entry.symbols == "*" else list(entry.symbols)
        )
        for symbol in symbols:
            params: dict[str, ParamValue] = {**defaults, **entry.params}
            params.update(book.params(entry.name, symbol))
            last = store.last_signal(entry.name, symbol)
            latest = store.latest_indicators(entry.name, symbol)
            rows.append(
                views.StrategyView(
                    strategy=entry.name,
                    symbol=symbol,
                    enabled=book.enabled(entry.name, symbol),
                    params=params,
                    bar_interval=entry.bar_interval,
                    last_signal=None if last is None else views.signal_view(last),
                    indicators=None if latest is None else views.indicator_view(latest),
                )
            )
    return views.StrategiesView(declared=known, strategies=rows)
