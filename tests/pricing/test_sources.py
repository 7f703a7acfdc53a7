"""Sources by name, prices_for/carbon_for on the bundled data, estimates for missing days."""

from __future__ import annotations

import pandas as pd
import pytest

from core.timeindex import local_day
from pricing.bundled import bundled_hourly
from pricing.errors import PricingError
from pricing.estimate import prices_on_index
from pricing.sources import (
    BundledPriceSource,
    EntsoePriceSource,
    PricingSettings,
    SmardPriceSource,
    carbon_for,
    make_carbon_source,
    make_price_source,
    prices_for,
)


def test_bundled_day_equals_the_csv() -> None:
    index = local_day("2024-06-15")
    frame = prices_for(index)
    assert len(frame) == 96
    assert not frame["is_estimate"].any()
    csv = bundled_hourly()["spot_eur_per_kwh"]
    hourly = frame["spot_eur_per_kwh"].iloc[::4]
    assert hourly.to_numpy() == pytest.approx(csv.reindex(hourly.index).to_numpy())
    # held constant within each hour
    assert (frame["spot_eur_per_kwh"].to_numpy().reshape(24, 4).std(axis=1) == 0).all()


@pytest.mark.parametrize(("day", "n"), [("2024-03-31", 92), ("2024-10-27", 100)])
def test_bundled_dst_days(day: str, n: int) -> None:
    frame = prices_for(local_day(day))
    assert len(frame) == n
    assert frame["spot_eur_per_kwh"].notna().all()
    assert not frame["is_estimate"].any()


def test_bundled_quarter_hour_week_on_hourly_grid_is_averaged() -> None:
    frame = prices_for(local_day("2025-10-22", step_min=60))
    quarters = prices_for(local_day("2025-10-22"))["spot_eur_per_kwh"]
    assert frame["spot_eur_per_kwh"].to_numpy() == pytest.approx(
        quarters.to_numpy().reshape(24, 4).mean(axis=1)
    )


class _PublishedUntil:
    """A price source whose data stop at ``cutoff`` (tomorrow not yet published)."""

    def __init__(self, cutoff: str) -> None:
        self.cutoff = pd.Timestamp(cutoff)

    def spot_prices(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
        known = BundledPriceSource().spot_prices(start, end)
        return known[known.index < self.cutoff]


def test_missing_tomorrow_is_estimated_and_flagged() -> None:
    # Thursday 13 June 2024 + Friday 14 June; Friday not yet published
    index = pd.date_range("2024-06-12T22:00Z", periods=2 * 96, freq="15min")
    frame = prices_for(index, _PublishedUntil("2024-06-13T22:00Z"))
    known, estimated = frame.iloc[:96], frame.iloc[96:]
    assert not known["is_estimate"].any() and estimated["is_estimate"].all()
    truth = prices_for(index)["spot_eur_per_kwh"]
    assert known["spot_eur_per_kwh"].equals(truth.iloc[:96])
    # by hand: Friday 12:00 local = mean of 12:00 over the weekdays of the 21 days before
    history = (
        BundledPriceSource()
        .spot_prices(pd.Timestamp("2024-05-23T22:00Z"), pd.Timestamp("2024-06-13T22:00Z"))
        .tz_convert("Europe/Berlin")
    )
    noon = history[(history.index.hour == 12) & (history.index.minute == 0)]
    weekday_noon = noon[noon.index.weekday < 5].mean()
    assert estimated.loc["2024-06-14T10:00Z", "spot_eur_per_kwh"] == pytest.approx(weekday_noon)
    # an estimate, not the truth: the error is real but the daily shape is kept
    assert estimated["spot_eur_per_kwh"].corr(truth.iloc[96:]) > 0.5


def test_hour_with_one_missing_quarter_is_flagged() -> None:
    quarters = pd.Series(
        0.1,
        index=pd.date_range(
            "2024-06-10T00:00Z", "2024-06-15T00:00Z", freq="15min", inclusive="left"
        ),
    )
    gap = quarters.drop(pd.Timestamp("2024-06-14T12:15Z"))
    index = pd.date_range("2024-06-14T10:00Z", periods=4, freq="h")
    frame = prices_on_index(gap, index)
    assert frame["is_estimate"].tolist() == [False, False, True, False]
    assert frame["spot_eur_per_kwh"].tolist() == pytest.approx([0.1] * 4)


def test_outside_bundled_period_is_an_error() -> None:
    with pytest.raises(PricingError, match="does not cover"):
        prices_for(local_day("2023-01-10"))


def test_carbon_for_bundled_day() -> None:
    frame = carbon_for(local_day("2024-06-15"))
    assert len(frame) == 96 and not frame["is_estimate"].any()
    local = frame.set_index(frame.index.tz_convert("Europe/Berlin"))["co2_g_per_kwh"]
    # June noon: solar pushes intensity below the night value
    assert local.loc["2024-06-15 13:00"] < local.loc["2024-06-15 02:00"] - 50


def test_registry_and_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(make_price_source(PricingSettings()), BundledPriceSource)
    monkeypatch.setenv("HBOPT_PRICE_SOURCE", "entsoe")
    monkeypatch.setenv("HBOPT_ENTSOE_TOKEN", "secret-token")
    source = make_price_source(PricingSettings())
    assert isinstance(source, EntsoePriceSource) and source.token == "secret-token"
    assert "secret-token" not in repr(PricingSettings())
    assert isinstance(make_price_source(PricingSettings(price_source="smard")), SmardPriceSource)
    with pytest.raises(PricingError, match="price_source must be one of"):
        make_price_source(PricingSettings(price_source="nope"))
    with pytest.raises(PricingError, match="emission_factors"):
        make_carbon_source(PricingSettings(emission_factors="nope"))


def test_entsoe_source_without_token_is_a_typed_error() -> None:
    from pricing.errors import EntsoeAuthError

    source = make_price_source(PricingSettings(price_source="entsoe"))
    with pytest.raises(EntsoeAuthError, match="HBOPT_ENTSOE_TOKEN"):
        prices_for(local_day("2024-06-15"), source)


def test_site_prices_one_frame_for_the_optimizer() -> None:
    from pricing import SiteExportRules, load_tariff, site_prices
    from pricing.tariffs import EXAMPLE_TARIFF

    index = local_day("2024-05-12")  # a Sunday with negative midday prices
    rules = SiteExportRules(unpaid_when_spot_negative=True, export_limit_kw=6.0)
    frame = site_prices(index, load_tariff(EXAMPLE_TARIFF), rules)
    assert len(frame) == 96
    negative = frame["spot_eur_per_kwh"] < 0
    assert negative.any()
    assert (frame.loc[negative, "export_eur_per_kwh"] == 0).all()
    assert frame["export_unpaid"].equals(negative)
    assert frame[["co2_g_per_kwh", "import_eur_per_kwh"]].notna().all().all()
    assert not frame["price_is_estimate"].any() and not frame["co2_is_estimate"].any()
