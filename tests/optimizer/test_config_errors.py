"""Bad configuration raises a clear error naming the field."""

import numpy as np
import pandas as pd
import pytest

from core.timeindex import utc_range
from optimizer import (
    Battery,
    ConfigError,
    EVSession,
    HeatPump,
    Inputs,
    Problem,
    Site,
    State,
    Tuning,
    Wallbox,
)

IDX = utc_range("2024-06-15", 4)
GOOD = dict(
    import_eur_per_kwh=np.full(4, 0.3),
    export_eur_per_kwh=np.full(4, 0.08),
    pv_kw=np.zeros(4),
    load_kw=np.ones(4),
)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Battery(capacity_kwh=-1), "Battery.capacity_kwh"),
        (lambda: Battery(soc_min=0.8, soc_max=0.5), "Battery.soc_min"),
        (lambda: Battery(charge_efficiency=1.2), "Battery.charge_efficiency"),
        (lambda: Battery(capacity_kwh=float("nan")), "Battery.capacity_kwh"),
        (lambda: Wallbox(phases=2), "Wallbox.phases"),
        (lambda: Wallbox(min_current_a=4), "Wallbox.min_current_a"),
        (lambda: HeatPump(comfort_min_c=25, comfort_max_c=20), "HeatPump.comfort_min_c"),
        (lambda: EVSession(capacity_kwh=40, energy_kwh=50), "EVSession.energy_kwh"),
        (lambda: Tuning(battery_wear_eur_per_kwh=-0.1), "Tuning.battery_wear_eur_per_kwh"),
        (lambda: State(battery_soc=1.5), "State.battery_soc"),
        (
            lambda: Site(battery=Battery(name="x"), pv=None, heat_pumps=(HeatPump(name="x"),)),
            "Site.devices",
        ),
        (lambda: Inputs(IDX.tz_localize(None), **GOOD), "Inputs.index"),
        (
            lambda: Inputs(
                IDX, **{**GOOD, "import_eur_per_kwh": np.array([0.3, np.nan, 0.3, 0.3])}
            ),
            "Inputs.import_eur_per_kwh",
        ),
        (lambda: Inputs(IDX, **{**GOOD, "pv_kw": np.zeros(3)}), "Inputs.pv_kw"),
        (lambda: Inputs(IDX, **{**GOOD, "load_kw": -np.ones(4)}), "Inputs.load_kw"),
        (lambda: Problem(Site(heat_pumps=(HeatPump(),)), Inputs(IDX, **GOOD)), "Inputs.t_out_c"),
        (
            lambda: Problem(Site(), Inputs(IDX, **GOOD), State(ev_sessions=(EVSession(),))),
            "EVSession.wallbox",
        ),
    ],
)
def test_bad_configuration_names_the_field(build, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as info:
        build()
    assert info.value.field == field
    assert field in str(info.value)


def test_naive_departure_is_rejected() -> None:
    from optimizer import optimize

    site = Site(wallboxes=(Wallbox(),))
    session = EVSession(departure=pd.Timestamp("2024-06-15 08:00"))
    with pytest.raises(ConfigError, match=r"EVSession\.departure"):
        optimize(Problem(site, Inputs(IDX, **GOOD), State(ev_sessions=(session,))))


def test_missing_input_column_is_named() -> None:
    frame = pd.DataFrame({"import_eur_per_kwh": 0.3, "pv_kw": 0.0, "load_kw": 1.0}, index=IDX)
    with pytest.raises(ConfigError, match="export_eur_per_kwh"):
        Inputs.from_frame(frame)
