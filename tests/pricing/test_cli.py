"""``hbopt prices`` end to end on the bundled data."""

from __future__ import annotations

import pytest

from hbopt.cli import main


def test_prices_day(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prices", "--day", "2024-06-15"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if line.startswith("2024-06-15T")]
    assert len(rows) == 96
    first = rows[0].split()
    spot, imp, exp, co2 = map(float, first[1:5])
    assert imp > spot and exp == pytest.approx(0.0786) and 40 < co2 < 820


def test_prices_dst_day_hourly(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prices", "--day", "2024-10-27", "--step", "60"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("2024-10-27")]
    assert len(rows) == 25


@pytest.mark.parametrize(
    "argv",
    [
        ["prices", "--day", "15.06.2024"],
        ["prices", "--day", "2024-06-15", "--tariff", "/nonexistent.toml"],
        ["prices", "--day", "2024-06-15", "--source", "nope"],
        ["prices", "--day", "2019-01-01"],
    ],
)
def test_user_errors_are_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("hbopt: ") and "Traceback" not in err
