"""``hbopt plan`` on the bundled scenario: a table, a cost, clear errors."""

from pathlib import Path

import pandas as pd
import pytest

from hbopt.cli import main


def test_plan_prints_schedule_and_cost(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    csv = tmp_path / "plan.csv"
    assert main(["plan", "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["time", "import", "export"]
    assert sum(1 for line in lines if line[:2].isdigit() and line[2] == ":") == 96
    assert "energy cost" in out
    plan = pd.read_csv(csv, index_col=0)
    cost = (
        (plan["grid_import_kw"] * plan["import_eur_per_kwh"])
        - (plan["grid_export_kw"] * plan["export_eur_per_kwh"])
    ).sum() / 4
    assert f"{cost:8.2f} EUR" in out
    # the car reaches its 48 kWh by 07:00 local: nothing is reported as missed
    assert "nothing: every target" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "not-a-date"], "--start"),
        (["--start", "2030-01-01"], "bundled prices cover 2024-01-01"),
        (["--hours", "0"], "--hours"),
    ],
)
def test_plan_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["plan", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hbopt: ") and message in err
    assert "Traceback" not in err
