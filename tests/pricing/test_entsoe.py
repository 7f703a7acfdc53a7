"""ENTSO-E readers on real stored A44/A75 responses, checked against an independent expansion."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from core.timeindex import check_index
from pricing.entsoe import (
    get_entsoe_prices,
    read_entsoe_generation,
    read_entsoe_prices,
)
from pricing.errors import (
    EntsoeAuthError,
    EntsoeNoDataError,
    PriceDataError,
)
from pricing.series import to_step


def _expand_by_hand(xml_text: str) -> pd.Series:
    """Independent oracle: A01/A03 expansion from the ENTSO-E curve-type rules, in EUR/MWh."""
    root = ET.fromstring(xml_text)
    values: dict[pd.Timestamp, float] = {}
    for element in root.iter():
        if not element.tag.endswith("}Period"):
            continue
        ns = element.tag[: element.tag.index("}") + 1]
        start = pd.Timestamp(element.find(f"{ns}timeInterval/{ns}start").text)
        end = pd.Timestamp(element.find(f"{ns}timeInterval/{ns}end").text)
        minutes = int(element.find(f"{ns}resolution").text[2:-1])
        points = {
            int(p.find(f"{ns}position").text): float(p.find(f"{ns}price.amount").text)
            for p in element.findall(f"{ns}Point")
        }
        n = int((end - start) / pd.Timedelta(minutes=minutes))
        last = None
        for position in range(1, n + 1):
            last = points.get(position, last)  # A03: a missing position repeats the previous
            for q in range(minutes // 15):
                t = start + pd.Timedelta(minutes=minutes * (position - 1) + 15 * q)
                values[t] = last
    return pd.Series(values).sort_index()


def test_spain_across_the_60_to_15_minute_switch(es_a44_text: str) -> None:
    spot = read_entsoe_prices(es_a44_text)
    # 4 days of 96 quarter-hours, no gap, no duplicate, on a fixed 15-min UTC grid
    assert len(spot) == 4 * 96
    assert check_index(pd.DatetimeIndex(spot.index)) == pd.Timedelta(minutes=15)
    assert spot.index[0] == pd.Timestamp("2025-09-28T22:00Z")
    expected = _expand_by_hand(es_a44_text) / 1000.0
    pd.testing.assert_series_equal(spot, expected, check_names=False, check_freq=False)
    # hourly days are constant within each hour; quarter-hour days are not
    hourly_day = spot["2025-09-29T00:00Z":"2025-09-29T23:45Z"].to_numpy().reshape(24, 4)
    assert (hourly_day == hourly_day[:, :1]).all()
    qh_day = spot["2025-10-01T00:00Z":"2025-10-01T23:45Z"].to_numpy().reshape(24, 4)
    assert (qh_day != qh_day[:, :1]).any()


def test_spain_compressed_curve_repeats_the_previous_value(es_a44_text: str) -> None:
    # positions absent in the A03 document must carry the previous price, not be gaps
    root = ET.fromstring(es_a44_text)
    ns = root.tag[: root.tag.index("}") + 1]
    n_points = len(list(root.iter(f"{ns}Point")))
    assert n_points < 2 * 24 + 2 * 96  # the document really is compressed
    assert read_entsoe_prices(es_a44_text).notna().all()


def test_france_hourly_on_hour_grid_equals_document(fr_a44_text: str) -> None:
    spot = read_entsoe_prices(fr_a44_text)
    hours = pd.date_range("2023-05-06T22:00Z", periods=48, freq="60min")
    hourly = to_step(spot, hours)
    expected = _expand_by_hand(fr_a44_text).iloc[::4] / 1000.0
    assert hourly.to_numpy() == pytest.approx(expected.to_numpy())
    # 7 May 2023 was a sunny Sunday: the midday price fell to 24 EUR/MWh
    assert hourly.min() == pytest.approx(0.02409)


def test_truncated_document_raises_instead_of_short_series(fr_a44_text: str) -> None:
    # cut exactly after a </Point>: entsoe-py alone returns fewer hours without complaint
    cut = fr_a44_text[: fr_a44_text.index("</Point>", len(fr_a44_text) // 2) + len("</Point>")]
    with pytest.raises(PriceDataError, match="well-formed"):
        read_entsoe_prices(cut)


def test_malformed_xml_raises() -> None:
    with pytest.raises(PriceDataError, match="well-formed"):
        read_entsoe_prices("<Publication_MarketDocument><TimeSeries>")
    with pytest.raises(PriceDataError, match="well-formed"):
        read_entsoe_prices("")


def test_error_documents_become_typed_errors(ack_no_data: str, ack_bad_token: str) -> None:
    with pytest.raises(EntsoeNoDataError, match="No matching data") as no_data:
        read_entsoe_prices(ack_no_data)
    assert no_data.value.code == "999"
    with pytest.raises(EntsoeAuthError, match="security token"):
        read_entsoe_generation(ack_bad_token)


def test_generation_document_is_not_a_price_document(lu_a75_text: str) -> None:
    with pytest.raises(PriceDataError, match="A44"):
        read_entsoe_prices(lu_a75_text)


def test_luxembourg_generation(lu_a75_text: str) -> None:
    gen = read_entsoe_generation(lu_a75_text)
    assert str(gen.index.tz) == "UTC"
    assert {"Solar", "Wind Onshore", "Fossil Gas", "Biomass"} <= set(gen.columns)
    assert (gen.index[1:] - gen.index[:-1]).min() == pd.Timedelta(minutes=15)
    # one quarter-hour is missing for all types but wind: it stays NaN, nothing invented
    incomplete = gen.index[gen.isna().any(axis=1)]
    assert list(incomplete) == [pd.Timestamp("2024-05-24T03:45Z")]
    assert gen.loc[incomplete[0], "Wind Onshore"] == 0.0
    assert (gen.dropna() >= 0).all().all()


def test_finland_generation_has_nuclear(fi_a75_text: str) -> None:
    gen = read_entsoe_generation(fi_a75_text)
    assert len(gen) == 3 * 96
    # Finland's nuclear fleet (about 4.4 GW) runs near its capacity
    assert 2000 < gen["Nuclear"].mean() < 4500


@pytest.mark.live
@pytest.mark.skipif(not os.environ.get("HBOPT_LIVE"), reason="HBOPT_LIVE=1 not set")
def test_live_entsoe_prices() -> None:
    token = os.environ.get("HBOPT_ENTSOE_TOKEN", "")
    start = pd.Timestamp("2024-06-14T22:00Z")
    spot = get_entsoe_prices(token, "DE_LU", start, start + pd.Timedelta(days=1))
    assert len(spot) == 96


@pytest.mark.live
@pytest.mark.skipif(not os.environ.get("HBOPT_LIVE"), reason="HBOPT_LIVE=1 not set")
def test_live_entsoe_bad_token_is_typed() -> None:
    start = pd.Timestamp("2024-06-14T22:00Z")
    with pytest.raises(EntsoeAuthError):
        get_entsoe_prices("not-a-token", "DE_LU", start, start + pd.Timedelta(days=1))
