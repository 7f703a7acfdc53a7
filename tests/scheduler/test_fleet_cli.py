"""``hbopt fleet``: a per-status summary of one cycle over simulated homes."""

import pytest

from hbopt.cli import main


def test_fleet_prints_a_status_summary(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["fleet", "--sites", "6", "--hours", "6", "--chunk-size", "2", "--unreachable", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    counts = {
        line.split()[0]: int(line.split()[1])
        for line in out.splitlines()
        if line.split() and line.split()[0] in ("ok", "error", "box_unreachable")
    }
    assert counts == {"ok": 5, "error": 0, "box_unreachable": 1}
    assert "home-000000: box_unreachable" in out
    assert "site cycles/s" in out and "EUR over 5 homes" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--sites", "0"], "--sites"), (["--backend", "process", "--workers", "0"], "workers")],
)
def test_fleet_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["fleet", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hbopt: ") and message in err
