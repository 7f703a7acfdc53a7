"""Retail tariff: config validation, §14a Modul 3 zones in local time, import/export money."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.timeindex import local_day
from pricing.tariff import (
    SiteExportRules,
    TariffConfigError,
    load_tariff,
    retail_prices,
)
from pricing.tariffs import EXAMPLE_TARIFF

ROUND_TARIFF = """
name = "round numbers"
supplier_margin_eur_per_kwh = 0.02
electricity_tax_eur_per_kwh = 0.02
vat_rate = 0.20

[[levies]]
name = "a"
eur_per_kwh = 0.01

[[levies]]
name = "b"
eur_per_kwh = 0.03

[grid_fee]
low_eur_per_kwh = 0.02
standard_eur_per_kwh = 0.08
high_eur_per_kwh = 0.14

[[grid_fee.windows]]
quarters = [1, 4]
weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "00:00"
end = "06:00"
zone = "low"

[[grid_fee.windows]]
quarters = [1, 4]
weekdays = ["mon", "tue", "wed", "thu", "fri"]
start = "17:00"
end = "20:15"
zone = "high"

[export]
mode = "fixed"
fixed_eur_per_kwh = 0.08
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tariff.toml"
    path.write_text(text)
    return path


def _flat_spot(index: pd.DatetimeIndex, value: float) -> pd.DataFrame:
    return pd.DataFrame({"spot_eur_per_kwh": value, "is_estimate": False}, index=index)


def test_import_price_by_hand(tmp_path: Path) -> None:
    tariff = load_tariff(_write(tmp_path, ROUND_TARIFF))
    index = local_day("2024-01-15")  # a Monday in Q1
    prices = retail_prices(_flat_spot(index, 0.10), tariff, SiteExportRules())
    local = prices.set_index(prices.index.tz_convert("Europe/Berlin"))
    # (spot 0.10 + margin 0.02 + fee + levies 0.04 + tax 0.02) x 1.2
    assert local.loc["2024-01-15 03:00", "import_eur_per_kwh"] == pytest.approx(0.20 * 1.2)
    assert local.loc["2024-01-15 12:00", "import_eur_per_kwh"] == pytest.approx(0.26 * 1.2)
    assert local.loc["2024-01-15 20:00", "import_eur_per_kwh"] == pytest.approx(0.32 * 1.2)
    assert local.loc["2024-01-15 20:15", "import_eur_per_kwh"] == pytest.approx(0.26 * 1.2)
    parts = [
        "spot_eur_per_kwh",
        "margin_eur_per_kwh",
        "grid_fee_eur_per_kwh",
        "levies_eur_per_kwh",
        "electricity_tax_eur_per_kwh",
        "vat_eur_per_kwh",
    ]
    assert prices[parts].sum(axis=1).to_numpy() == pytest.approx(
        prices["import_eur_per_kwh"].to_numpy()
    )


def test_zones_follow_local_time_across_dst(tmp_path: Path) -> None:
    tariff = load_tariff(_write(tmp_path, ROUND_TARIFF))
    for day, low_quarters in (("2024-03-31", 5 * 4), ("2024-10-27", 7 * 4)):
        fee = retail_prices(_flat_spot(local_day(day), 0.1), tariff, SiteExportRules())
        assert (fee["grid_fee_eur_per_kwh"] == 0.02).sum() == low_quarters
    summer = retail_prices(_flat_spot(local_day("2024-06-17"), 0.1), tariff, SiteExportRules())
    assert (summer["grid_fee_eur_per_kwh"] == 0.08).all()
    weekend = retail_prices(_flat_spot(local_day("2024-01-13"), 0.1), tariff, SiteExportRules())
    assert (weekend["grid_fee_eur_per_kwh"] == 0.14).sum() == 0


def test_hourly_slot_averages_a_quarter_hour_zone_edge(tmp_path: Path) -> None:
    tariff = load_tariff(_write(tmp_path, ROUND_TARIFF))
    hourly = retail_prices(
        _flat_spot(local_day("2024-01-15", step_min=60), 0.1), tariff, SiteExportRules()
    )
    fee = hourly.set_index(hourly.index.tz_convert("Europe/Berlin"))["grid_fee_eur_per_kwh"]
    assert fee.loc["2024-01-15 20:00"] == pytest.approx((0.14 + 3 * 0.08) / 4)


def test_export_fixed_and_negative_price_rule(tmp_path: Path) -> None:
    tariff = load_tariff(_write(tmp_path, ROUND_TARIFF))
    index = pd.date_range("2024-06-15T10:00Z", periods=4, freq="15min")
    spot = pd.DataFrame({"spot_eur_per_kwh": [0.05, -0.01, 0.0, -0.2]}, index=index)
    free = retail_prices(spot, tariff, SiteExportRules())
    assert free["export_eur_per_kwh"].tolist() == [0.08] * 4
    assert not free["export_unpaid"].any()
    ruled = retail_prices(spot, tariff, SiteExportRules(unpaid_when_spot_negative=True))
    assert ruled["export_eur_per_kwh"].tolist() == [0.08, 0.0, 0.08, 0.0]
    assert ruled["export_unpaid"].tolist() == [False, True, False, True]


def test_export_spot_based(tmp_path: Path) -> None:
    text = ROUND_TARIFF.replace(
        'mode = "fixed"\nfixed_eur_per_kwh = 0.08',
        'mode = "spot"\nspot_margin_eur_per_kwh = -0.005',
    )
    tariff = load_tariff(_write(tmp_path, text))
    index = pd.date_range("2024-06-15T10:00Z", periods=2, freq="15min")
    spot = pd.DataFrame({"spot_eur_per_kwh": [0.05, -0.01]}, index=index)
    plain = retail_prices(spot, tariff, SiteExportRules())
    assert plain["export_eur_per_kwh"].tolist() == pytest.approx([0.045, -0.015])
    ruled = retail_prices(spot, tariff, SiteExportRules(unpaid_when_spot_negative=True))
    assert ruled["export_eur_per_kwh"].tolist() == pytest.approx([0.045, 0.0])


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("vat_rate = 0.20\n", "", "missing field 'vat_rate'"),
        ("low_eur_per_kwh = 0.02\n", "", "missing field 'grid_fee.low_eur_per_kwh'"),
        ('end = "06:00"', 'end = "06:10"', "quarter-hour edge"),
        ('end = "06:00"', 'end = "18:00"', "overlaps"),
        ('zone = "low"', 'zone = "cheap"', "grid_fee.windows.0.zone"),
        ("fixed_eur_per_kwh = 0.08", "", "needs fixed_eur_per_kwh"),
        ("vat_rate = 0.20", "vat_rate = 19", "vat_rate"),
        ("vat_rate = 0.20", "vat_rate = 0.20\nvat = 0.2", "vat"),
        ("[grid_fee]", "[grid_fee", "not valid TOML"),
    ],
)
def test_bad_tariff_names_the_field(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in ROUND_TARIFF
    with pytest.raises(TariffConfigError, match=message.replace(".", r"\.")):
        load_tariff(_write(tmp_path, ROUND_TARIFF.replace(old, new, 1)))


def test_shipped_german_example_is_plausible() -> None:
    tariff = load_tariff(EXAMPLE_TARIFF)
    index = local_day("2024-12-02")
    prices = retail_prices(_flat_spot(index, 0.08), tariff, SiteExportRules())
    # German household prices 2025: roughly 0.25-0.45 EUR/kWh gross at a spot of 80 EUR/MWh
    assert 0.25 < prices["import_eur_per_kwh"].mean() < 0.45
    assert prices["grid_fee_eur_per_kwh"].nunique() == 3


def test_gap_in_spot_is_an_error_not_a_price(tmp_path: Path) -> None:
    tariff = load_tariff(_write(tmp_path, ROUND_TARIFF))
    index = pd.date_range("2024-06-15T10:00Z", periods=2, freq="15min")
    spot = pd.DataFrame({"spot_eur_per_kwh": [0.05, float("nan")]}, index=index)
    with pytest.raises(ValueError, match="no value at 2024-06-15 10:15"):
        retail_prices(spot, tariff, SiteExportRules())
