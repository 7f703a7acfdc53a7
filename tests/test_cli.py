"""The ``hbopt`` command line as a user meets it: fast start, one-line errors, quiet solver.

Every case runs the real command in a subprocess (stdout and stderr as the user sees them),
except where a network retry would make the test slow.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from hbopt.cli import COMMANDS, build_parser, main

HEAVY = ("pandas", "numpy", "highspy", "fastapi", "dask", "distributed", "uvicorn", "pydantic")


def hbopt(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 90
):
    return subprocess.run(
        [sys.executable, "-m", "hbopt", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        check=False,
    )


def one_line(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """The single ``hbopt: ...`` line on stderr (and the exit code), nothing else."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("hbopt: "), proc.stderr
    for word in words:
        assert word in lines[0]
    return lines[0]


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, never listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port another server listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


# --- start-up --------------------------------------------------------------------------------


def test_help_of_every_command_imports_no_heavy_module() -> None:
    names = [c.name for c in COMMANDS]
    code = (
        "import sys; from hbopt.cli import build_parser\n"
        f"for name in {names!r}:\n"
        "    build_parser(load=[name]).format_help()\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
    top = hbopt("--help")
    assert top.returncode == 0 and all(c.name in top.stdout for c in COMMANDS)


def test_the_command_list_matches_what_the_modules_register() -> None:
    full = build_parser()
    sub = next(a for a in full._actions if a.dest == "command")
    helps = {a.dest: a.help for a in sub._choices_actions}  # type: ignore[attr-defined]
    assert helps == {c.name: c.help for c in COMMANDS}


def test_choices_spelled_out_for_help_match_their_source() -> None:
    from core.timeindex import ALLOWED_STEPS_MIN
    from optimizer import ChargingMode, available_solvers
    from pricing.cli import STEPS_MIN
    from scheduler import fleet_cli, fleet_sim, plan_cli
    from scheduler.scenario import DEVICE_SETS

    assert tuple(m.value for m in ChargingMode) == plan_cli.CHARGING_MODES
    assert tuple(DEVICE_SETS) == plan_cli.DEVICE_SET_NAMES
    assert tuple(available_solvers()) == plan_cli.SOLVERS
    assert STEPS_MIN == ALLOWED_STEPS_MIN
    assert fleet_cli.DEFAULT_START == fleet_sim.DEFAULT_START


# --- the solver's banner ---------------------------------------------------------------------


def test_plan_prints_no_solver_banner() -> None:
    proc = hbopt("plan", "--hours", "6")
    assert proc.returncode == 0, proc.stderr
    assert "energy cost" in proc.stdout
    for text in (proc.stdout, proc.stderr):
        assert "HiGHS" not in text and "Copyright" not in text


# --- the nine ordinary mistakes --------------------------------------------------------------


def test_plan_unknown_time_zone_fails_before_solving() -> None:
    line = one_line(hbopt("plan", "--tz", "Mars/Olympus"), 2, "--tz", "Mars/Olympus")
    assert "Europe/Berlin" in line


def test_plan_csv_in_a_missing_directory(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "dir" / "x.csv"
    one_line(hbopt("plan", "--csv", str(target)), 2, "--csv", "does not exist")
    assert not (tmp_path / "missing").exists()


def test_demo_out_is_a_file() -> None:
    one_line(hbopt("demo", "--out", "/etc/passwd"), 2, "--out", "/etc/passwd", "not a directory")


def test_fleet_unreachable_dask_scheduler_fails_fast(closed_port: int) -> None:
    address = f"tcp://127.0.0.1:{closed_port}"
    proc = hbopt("fleet", "--backend", "dask", "--scheduler", address, "--sites", "2", timeout=120)
    one_line(proc, 1, "--scheduler", address, "dask scheduler")


def test_prices_from_smard_without_network(
    closed_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tenacity import wait_none

    from pricing import smard

    # the real client and its retries, minus the back-off waits
    monkeypatch.setattr(smard._get_text.retry, "wait", wait_none())  # type: ignore[attr-defined]
    monkeypatch.setenv("HBOPT_SMARD_BASE_URL", f"http://127.0.0.1:{closed_port}/chart_data")
    assert main(["prices", "--source", "smard", "--day", "2025-11-02"]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hbopt: --source smard:"), captured.err
    assert "--source bundled" in lines[0] and captured.out == ""


def test_prices_into_a_closed_pipe_stops_quietly() -> None:
    cmd = [sys.executable, "-m", "hbopt", "prices", "--day", "2024-06-15", "--step", "5"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader goes away before the table is written (`| head -0`)
    err = proc.stderr.read()
    assert proc.wait(60) == 1
    assert err == ""  # no BrokenPipeError traceback, no "Exception ignored" at exit


def test_store_influxdb_unreachable(tmp_path: Path, closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    proc = hbopt(
        "store", "--backend", "influxdb", "--influx-url", url, "maintain", cwd=tmp_path, timeout=60
    )
    one_line(proc, 1, f"--influx-url {url}", "InfluxDB")


def test_box_sim_on_a_port_in_use(busy_port: int) -> None:
    one_line(hbopt("box-sim", "--port", str(busy_port)), 1, f"--port {busy_port}", "in use")


def test_box_sim_on_a_bad_host() -> None:
    one_line(hbopt("box-sim", "--port", "0", "--host", "256.1.2.3"), 2, "--host 256.1.2.3:")
    one_line(hbopt("box-sim", "--port", "0", "--host", "192.0.2.1"), 2, "--host 192.0.2.1")


# --- flags named as typed, dates, time zones -------------------------------------------------


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["plan", "--soc", "2"], "--soc"),
        (["fleet", "--workers", "0"], "--workers"),
        (["fleet", "--chunk-size", "0"], "--chunk-size"),
        (["api-box", "--serial", ""], "--serial"),
        (["api-account", "--email", "not-an-address", "--role", "analyst"], "--email"),
        (["plan", "--start", "2030-01-01"], "--start"),
        (["prices", "--day", "2030-01-01"], "--day"),
    ],
)
def test_messages_name_the_flag_typed(
    args: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"hbopt: {flag}"), err
    assert "State." not in err and "Config." not in err and "validation error" not in err
    if "2030" in args:
        assert "2024-01-01 to 2025-10-26" in err and "--source smard" in err


def test_naive_start_is_local_time_of_the_site(tmp_path: Path) -> None:
    csv = tmp_path / "plan.csv"
    assert main(["plan", "--start", "2024-06-13T00:00", "--hours", "1", "--csv", str(csv)]) == 0
    first = pd.Timestamp(pd.read_csv(csv, index_col=0).index[0])
    assert first == pd.Timestamp("2024-06-12T22:00Z")  # midnight in Berlin (CEST)
    help_text = " ".join(hbopt("plan", "--help").stdout.split())  # whatever the wrapping
    assert "without an offset" in help_text and "Europe/Berlin" in help_text


# --- the store command and the service share one store ---------------------------------------


def test_store_uses_the_service_settings(tmp_path: Path) -> None:
    from api.settings import Settings
    from hbopt.store_cli import settings_from_args

    args = build_parser(load=["store"]).parse_args(["store", "maintain"])
    assert settings_from_args(args).telemetry_path == Settings().telemetry_path
    # nothing stored there yet: an error, and no directory tree made
    one_line(hbopt("store", "maintain", cwd=tmp_path), 2, "--path", "hbopt serve")
    assert list(tmp_path.iterdir()) == []


def test_store_export_of_an_unknown_site_is_an_error(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from adapters.store import StoreSettings, make_store
    from adapters.store.telemetry import Sample

    store = make_store(StoreSettings(data_dir=tmp_path, sqlite_file="t.sqlite3"))
    store.write([Sample("home", "pv", datetime.now(UTC), {"power_kw": 1.0})])
    store.close()
    path = tmp_path / "t.sqlite3"
    out = tmp_path / "out"
    proc = hbopt("store", "--path", str(path), "export", "nohome", str(out))
    one_line(proc, 2, "'nohome'")
    assert not out.exists()
    proc = hbopt("store", "--path", str(path), "export", "home", str(out))
    assert proc.returncode == 0 and pd.read_csv(out / "raw.csv")["power_kw"].sum() == 1.0


def test_no_directory_tree_is_made_for_a_configured_database(tmp_path: Path) -> None:
    env = {"HBOPT_DATABASE_PATH": str(tmp_path / "a" / "b" / "api.sqlite3")}
    proc = hbopt("api-box", "--serial", "HB-F-0001", env=env, cwd=tmp_path)
    one_line(proc, 2, "HBOPT_DATABASE_PATH", "does not exist")
    assert list(tmp_path.iterdir()) == []
