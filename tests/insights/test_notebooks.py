"""Execute every notebook under notebooks/ headless (nbclient on an ipykernel).

The kernel inherits the environment: unset, the notebooks run their short period; with
HBOPT_NOTEBOOK_FULL=1 they run the full bundled period. Notebooks that leave a ``RESULT`` dict
get a cell appended that prints it as JSON, and the study's own claims are checked on it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
RESULT_TAG = "HBOPT-RESULT "
PRINT_RESULT = f"import json\nprint({RESULT_TAG!r} + json.dumps(RESULT, default=float))"


def check_backtest(result: dict[str, Any]) -> None:
    """The limit beats the plan, the plan beats no control (net cost), and CO2 is counted."""
    net = result["net_cost_eur"]
    assert net["perfect foresight"] <= net["day-ahead plan"] + 1e-6, net
    assert net["day-ahead plan"] < net["no control"], net
    # the cars got (nearly) what they asked for in every run: savings are not unmet charging
    ev = result["ev_kwh"]
    assert min(ev.values()) > 0.9 * max(ev.values()), ev
    assert all(v > 0 for v in result["co2_kg"].values())
    assert all(0 < v < 2 * result["days"] for v in result["battery_cycles"].values())
    cf = result["counterfactual_cost_eur"]
    assert cf["rule-based self-consumption"] < cf["no PV/battery"], cf


def check_parameter_study(result: dict[str, Any]) -> None:
    """More wear cost -> fewer cycles; a terminal value leaves more energy in the battery."""
    wear = [f"{w:g}" for w in result["wear"]]
    terminal = [f"{t:g}" for t in result["terminal"]]
    cycles, soc = result["cycles"], result["soc_end"]
    for t in terminal:
        seq = [cycles[w][t] for w in wear]
        # a 0.5 % MIP gap may move a plan's throughput a little; the trend must hold
        assert all(b <= a + 0.02 for a, b in pairwise(seq)), (t, seq)
        assert seq[-1] < seq[0] - 0.1, (t, seq)
    for w in wear:
        assert soc[w][terminal[-1]] > soc[w][terminal[0]], (w, soc[w])
    assert all(v > 0 for row in result["savings_eur"].values() for v in row.values())


def check_own_data(result: dict[str, Any]) -> None:
    """The backtest ran on the files' data, and the fair score adds up."""
    assert result["cycles_failed"] == 0
    # the twin's outdoor temperature is the measured DWD 2024 series, slot for slot
    twin, dwd = result["twin_t_out_c"], result["dwd_t_out_c"]
    assert len(twin) == len(dwd) == result["days"] * 96
    assert max(abs(a - b) for a, b in zip(twin, dwd, strict=True)) < 1e-9
    # the measured household is far from the standard profile of the same annual energy
    assert result["load_profile_error"] > 0.2
    for part in ("net_eur", "interior_net_eur"):
        net = result[part]
        assert net["perfect foresight"] <= net["rule-based"] + 1e-6, (part, net)
        # played back exactly, the plan costs what it predicted
        assert abs(net["pf on twin"] - net["perfect foresight"]) < 0.1 * result["days"], net
    for name, kwh in result["ev_short_kwh"].items():
        assert result["ev_short_eur"][name] == pytest.approx(0.55 * kwh), name
    assert result["ev_short_kwh"]["perfect foresight"] < 0.1


CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "02_backtest_year.ipynb": check_backtest,
    "03_parameter_study.ipynb": check_parameter_study,
    "04_own_data_backtest.ipynb": check_own_data,
}


def test_notebooks_exist() -> None:
    assert PATHS, f"no notebooks under {NOTEBOOKS}"
    assert set(CHECKS) <= {p.name for p in PATHS}


def notebook_result(nb: nbformat.NotebookNode) -> dict[str, Any]:
    """The ``RESULT`` the appended cell printed."""
    for out in nb.cells[-1].get("outputs", []):
        for line in out.get("text", "").splitlines():
            if line.startswith(RESULT_TAG):
                result: dict[str, Any] = json.loads(line[len(RESULT_TAG) :])
                return result
    raise AssertionError("the notebook printed no RESULT")


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    check = CHECKS.get(path.name)
    if check is not None:
        nb.cells.append(nbformat.v4.new_code_cell(PRINT_RESULT))
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
    images = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {})
    ]
    assert images, "the notebook drew no figure"
    if check is not None:
        check(notebook_result(nb))
