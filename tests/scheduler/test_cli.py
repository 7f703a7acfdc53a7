"""``hbopt demo`` and ``hbopt backtest`` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from hbopt.cli import main


def test_demo_runs_closed_loop_and_writes_the_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["demo", "--hours", "3", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    png = tmp_path / "hbopt-demo-20240612.png"
    assert f"plot                  {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "0 failed" in out and "saving vs no control" in out
    assert out.count("\n12:00 ") + out.count("\n13:00 ") + out.count("\n14:00 ") == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["backtest", "--days", "0"], "--days"),
        (["backtest", "--start", "not-a-date"], "--start"),
        (["demo", "--hours", "0"], "--hours"),
    ],
)
def test_bad_arguments_are_one_line_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("hbopt: ") and message in err
