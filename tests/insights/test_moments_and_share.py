from __future__ import annotations

import io

import pandas as pd
import pytest
from PIL import Image

from core.timeindex import utc_range
from insights import energy_highlights, notable_moments, share_card_png, share_text
from tests.insights.frames import FrameFactory, slots

TZ = "Europe/Berlin"


def test_notable_moments_by_hand(make_frame: FrameFactory) -> None:
    # three local days from Mon 2024-06-10; PV 1/3/2 kW at noon; EV charges at 02:00 local
    # on day 1 (0.25 EUR/kWh) and at 03:00 local on day 2 (0.12 EUR/kWh); -0.05 EUR/kWh
    # from 13:00 to 15:00 local on day 3, while the house imports.
    idx = utc_range(pd.Timestamp("2024-06-10", tz=TZ), 3 * 96)
    n = len(idx)
    pv = slots(n, {(48, 52): 1.0, (96 + 48, 96 + 52): 3.0, (192 + 48, 192 + 52): 2.0})
    ev = slots(n, {(8, 12): 4.0, (96 + 12, 96 + 16): 4.0})
    price = 0.30 + slots(n, {(8, 12): -0.05, (96 + 12, 96 + 16): -0.18, (244, 252): -0.35})
    frame = make_frame(idx, pv=pv, house=1.0, ev=ev, import_price=price)
    moments = {m.kind: m for m in notable_moments(frame)}
    cheap = moments["cheapest_charging_hour"]
    assert cheap.at == pd.Timestamp("2024-06-11 03:00", tz=TZ)
    assert cheap.value == pytest.approx(0.12)
    solar = moments["most_solar_day"]
    assert solar.at == pd.Timestamp("2024-06-11", tz=TZ)
    assert solar.value == pytest.approx(3.0)
    negative = moments["negative_price_hours"]
    assert negative.value == pytest.approx(2.0)
    assert "2 h" in negative.text


def test_share_text_and_png_card(make_frame: FrameFactory, day: pd.DatetimeIndex) -> None:
    pv = slots(len(day), {(36, 68): 4.0})
    ev = slots(len(day), {(44, 52): 3.0})
    p = energy_highlights(make_frame(day, pv=pv, house=0.5, ev=ev), "day").periods[0]
    text = share_text(p, site_name="Haus Sonnenschein")
    assert "Haus Sonnenschein, 12 Jun 2024" in text
    assert f"Solar: {p.pv_kwh:.1f} kWh" in text
    assert f"CO2 avoided: {p.co2.avoided_total_kg:.1f} kg" in text
    assert "EV charged 100 % from own solar" in text
    png = share_card_png(p, site_name="Haus Sonnenschein")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(io.BytesIO(png)).size == (1200, 630)
