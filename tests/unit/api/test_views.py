"""Response models: integers in 1e-9 units become exact decimal strings people read."""

from api.views import net_positions, order_view, units
from ticklane.trading import ComboLeg, Order, OrderStatus, OrderType, Position, Side


def test_units_are_exact_decimal_strings():
    assert units(5_001_250_000_000) == "5001.25"
    assert units(-4_900_000_000) == "-4.9"
    assert units(0) == "0"
    assert units(100 * 10**9) == "100"
    assert units(1) == "0.000000001"


def test_net_positions_sum_strategies_and_drop_symbols_never_held():
    held = [
        Position("a", "ES", 2, 1, 0, 1),
        Position("b", "ES", -2, 1, 0, 1),
        Position("a", "NQ", 0, 0, 5, 1),
        Position("b", "CL", 1, 1, 0, 1),
    ]
    net = {n.symbol: (n.quantity, n.strategies) for n in net_positions(held)}
    assert net == {"ES": (0, 2), "CL": (1, 1)}


def test_an_order_shows_its_average_fill_and_legs():
    order = Order(
        "c1",
        "s",
        "st",
        "vertical",
        Side.BUY,
        2,
        OrderType.LIMIT,
        OrderStatus.FILLED,
        7,
        limit_price=2_050_000_000,
        filled_quantity=2,
        filled_notional=4_200_000_000,
        legs=(ComboLeg("C600", 1), ComboLeg("C605", -1)),
    )
    view = order_view(order)
    assert (view.avg_fill_price, view.limit_price) == ("2.1", "2.05")
    assert [(leg.symbol, leg.ratio) for leg in view.legs] == [("C600", 1), ("C605", -1)]
