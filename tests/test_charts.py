"""Charts are drawn from known inputs and checked for what they show, not only that a PNG exists."""

from __future__ import annotations

import datetime as dt
import io

import matplotlib.colors as mcolors
import matplotlib.dates as mdates
import matplotlib.image as mimage
import numpy as np
import polars as pl
import pytest

from botclave_cli.report.charts import (
    BUY_COLOR,
    SELL_COLOR,
    UTC_LABEL,
    ChartGenerator,
    to_datetime64,
    underwater_pct,
)

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def minutes(n: int) -> pl.Series:
    return pl.Series("ts", [T0 + dt.timedelta(minutes=i) for i in range(n)],
                     dtype=pl.Datetime("us", "UTC"))


@pytest.fixture(scope="module")
def gen() -> ChartGenerator:
    return ChartGenerator(dpi=50, width_in=8)


def decode(png: bytes) -> np.ndarray:
    return mimage.imread(io.BytesIO(png), format="png")


def rgba(color: str) -> tuple[float, float, float, float]:
    return mcolors.to_rgba(color)


def test_equity_last_point_is_final_equity_and_trades_sit_on_the_curve(gen):
    ts = minutes(5)
    equity = [1000.0, 1010.0, 990.0, 1025.5, 1030.25]
    chart = gen.equity(ts, equity, trade_exit_ts=[ts[1], ts[2], ts[3]],
                       trade_pnl=[10.0, -20.0, 35.5])
    ax = chart.figure.axes[0]
    line = ax.lines[0]
    assert line.get_ydata()[-1] == 1030.25 == chart.data["final_equity"]
    assert list(line.get_ydata()) == equity
    # x axis in UTC dates: the first point is 2024-01-01 00:00 UTC
    assert mdates.num2date(line.get_xdata()[0], tz=dt.UTC) == T0
    wins, losses = ax.collections[0], ax.collections[1]
    assert [tuple(p) for p in wins.get_offsets()] == [
        (mdates.date2num(T0 + dt.timedelta(minutes=1)), 1010.0),
        (mdates.date2num(T0 + dt.timedelta(minutes=3)), 1025.5)]
    assert [tuple(p) for p in losses.get_offsets()] == [
        (mdates.date2num(T0 + dt.timedelta(minutes=2)), 990.0)]
    assert tuple(wins.get_facecolor()[0]) == rgba(BUY_COLOR)
    assert tuple(losses.get_facecolor()[0]) == rgba(SELL_COLOR)
    assert ax.get_xlabel() == UTC_LABEL
    assert "quote" in ax.get_ylabel()


def test_equity_mark_uses_last_equity_at_or_before_exit(gen):
    ts = minutes(4)
    exit_between = T0 + dt.timedelta(minutes=2, seconds=30)
    chart = gen.equity(ts, [100.0, 101.0, 102.0, 103.0], [exit_between], [1.0])
    assert list(chart.data["trade_mark_equity"]) == [102.0]


def test_drawdown_matches_hand_computed_underwater(gen):
    equity = [100.0, 110.0, 99.0, 121.0, 110.0]
    expected = [0.0, 0.0, -10.0, 0.0, (110 / 121 - 1) * 100]
    chart = gen.drawdown(minutes(5), equity)
    np.testing.assert_allclose(chart.figure.axes[0].lines[0].get_ydata(), expected, atol=1e-12)
    assert chart.data["max_drawdown_pct"] == pytest.approx(-10.0)
    np.testing.assert_allclose(underwater_pct(np.array(equity)), expected, atol=1e-12)


def test_candlesticks_bodies_wicks_colours_and_split_volume(gen):
    bars = pl.DataFrame({
        "ts": minutes(3), "open": [10.0, 12.0, 11.0], "high": [13.0, 12.5, 11.0],
        "low": [9.5, 10.0, 8.0], "close": [12.0, 11.0, 11.0], "volume": [5.0, 3.0, 2.0],
        "buy_volume": [4.0, 1.0, 1.5], "sell_volume": [1.0, 2.0, 0.5],
    })
    chart = gen.candlesticks(bars, quote="USDT", base="BTC")
    price_ax, vol_ax = chart.figure.axes
    wicks, bodies = price_ax.collections
    rects = [p.vertices for p in bodies.get_paths()]
    assert len(rects) == 3
    assert [(r[:, 1].min(), r[:, 1].max()) for r in rects] == [(10.0, 12.0), (11.0, 12.0),
                                                                (11.0, 11.0)]
    x0 = mdates.date2num(np.datetime64("2024-01-01T00:00"))
    assert rects[0][:, 0].mean() == pytest.approx(x0)
    # up candle (and the unchanged one) in buy colour, down candle in sell colour
    assert [tuple(c) for c in bodies.get_facecolor()] == [rgba(BUY_COLOR), rgba(SELL_COLOR),
                                                          rgba(BUY_COLOR)]
    assert [(s[0][1], s[1][1]) for s in wicks.get_segments()] == [(9.5, 13.0), (10.0, 12.5),
                                                                   (8.0, 11.0)]
    buy, sell = vol_ax.collections
    assert [(p.vertices[:, 1].min(), p.vertices[:, 1].max()) for p in buy.get_paths()] == [
        (0.0, 4.0), (0.0, 1.0), (0.0, 1.5)]
    # sell volume stacked on top of buy volume
    assert [(p.vertices[:, 1].min(), p.vertices[:, 1].max()) for p in sell.get_paths()] == [
        (4.0, 5.0), (1.0, 3.0), (1.5, 2.0)]
    assert vol_ax.get_ylim()[1] >= 5.0
    assert price_ax.get_ylabel() == "price (USDT)" and vol_ax.get_ylabel() == "volume (BTC)"
    assert vol_ax.get_xlabel() == UTC_LABEL


def test_volume_profile_levels_and_markers(gen):
    price = [100.0, 101.0, 102.0, 103.0]
    volume = [1.0, 5.0, 3.0, 0.5]
    chart = gen.volume_profile(price, volume, poc=101.0, vah=102.0, val=100.0, hvn=[101.0],
                               lvn=[103.0], buy_volume=[0.5, 4.0, 1.0, 0.5])
    ax = chart.figure.axes[0]
    bars = [p for p in ax.patches if p.get_label() != "value area (VAL..VAH)"]
    buy_bars, sell_bars = bars[:4], bars[4:8]
    assert [b.get_width() for b in buy_bars] == [0.5, 4.0, 1.0, 0.5]
    assert [b.get_width() + b.get_x() for b in sell_bars] == volume
    assert [b.get_y() for b in buy_bars] == price  # a level is labelled by its lower price
    lines = {line.get_label(): line.get_ydata()[0] for line in ax.lines}
    assert lines["POC 101"] == 101.5  # drawn through the middle of the POC row
    assert lines["HVN"] == 101.5 and lines["LVN"] == 103.5


def test_cvd_divergence_marked_at_swing_bars(gen):
    ts = minutes(6)
    close = [10.0, 12.0, 11.0, 13.0, 12.0, 11.0]
    cvd = [1.0, 5.0, 2.0, 4.0, 0.0, -1.0]
    div = {"kind": "bearish_divergence", "start_ts": ts[1], "end_ts": ts[3]}
    chart = gen.cvd(ts, close, cvd, [div])
    price_ax, cvd_ax = chart.figure.axes
    assert list(price_ax.lines[1].get_ydata()) == [12.0, 13.0]  # higher high in price
    assert list(cvd_ax.lines[1].get_ydata()) == [5.0, 4.0]  # lower high in CVD
    assert price_ax.lines[1].get_color() == SELL_COLOR
    assert list(cvd_ax.lines[0].get_ydata()) == cvd


def test_monte_carlo_fan_percentiles_by_hand(gen):
    paths = np.array([[1.0, 2.0], [3.0, 6.0], [5.0, 4.0]])
    chart = gen.monte_carlo_fan(paths, initial_equity=0.0)
    median = chart.figure.axes[0].lines[0]
    assert list(median.get_ydata()) == [0.0, 3.0, 4.0]
    assert list(chart.data["p25"]) == [0.0, 2.0, 3.0]  # linear interpolation between runs
    assert "3 runs" in chart.title


def test_drawdown_distribution_counts_every_run(gen):
    dd = [-5.0, -10.0, -15.0, -20.0, -25.0]
    chart = gen.drawdown_distribution(dd, ruin_pct=30)
    assert chart.data["counts"].sum() == 5
    assert chart.data["median"] == 15.0
    assert chart.data["p95"] == pytest.approx(24.0)


def test_walk_forward_windows(gen):
    day = dt.timedelta(days=1)
    folds = [{"is_start": T0, "is_end": T0 + 2 * day, "oos_start": T0 + 2 * day,
              "oos_end": T0 + 3 * day},
             {"is_start": T0 + day, "is_end": T0 + 3 * day, "oos_start": T0 + 3 * day,
              "oos_end": T0 + 4 * day}]
    chart = gen.walk_forward(folds, [T0 + 2 * day, T0 + 3 * day], [100.0, 104.0])
    fold_ax, eq_ax = chart.figure.axes
    is_bars = fold_ax.collections[0].get_paths()[0].vertices
    x0 = mdates.date2num(np.datetime64("2024-01-01T00:00"))
    assert is_bars[:, 0].min() == x0 and is_bars[:, 0].max() == x0 + 2
    assert chart.data["spans"][1].tolist() == [x0 + 1, x0 + 3, x0 + 3, x0 + 4]
    assert list(eq_ax.lines[0].get_ydata()) == [100.0, 104.0]


def test_png_decodes_has_size_and_is_deterministic(gen):
    ts = minutes(3)
    first = gen.equity(ts, [1.0, 2.0, 3.0])
    second = gen.equity(ts, [1.0, 2.0, 3.0])
    image = decode(first.png)
    assert image.shape[0] > 100 and image.shape[1] == 8 * 50
    assert first.png == second.png
    assert first.filename == "equity.png"


def test_to_datetime64_accepts_polars_ints_and_aware_datetimes():
    want = np.array(["2024-01-01T00:00"], dtype="datetime64[us]")
    assert to_datetime64(minutes(1)).tolist() == want.tolist()
    assert to_datetime64([1_704_067_200_000_000]).tolist() == want.tolist()
    paris = dt.timezone(dt.timedelta(hours=1))
    assert to_datetime64([dt.datetime(2024, 1, 1, 1, tzinfo=paris)]).tolist() == want.tolist()
