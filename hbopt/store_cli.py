"""``hbopt store``: maintain the telemetry store, export or delete a site's data.

Export and delete cover the site's plans and setpoints in the service database too
(``HBOPT_DATABASE_URL``, else the SQLite file ``HBOPT_DATABASE_PATH``).

    hbopt store maintain
    hbopt store export SITE out/ --format parquet
    hbopt store delete SITE --yes

It reads the same settings as ``hbopt serve`` (:class:`api.settings.Settings`, ``HBOPT_*``
environment variables), so both work on the same store: by default the SQLite file
``var/hbopt-telemetry.sqlite3`` (``HBOPT_TELEMETRY_PATH``). The flags override single settings.
The InfluxDB token is read from ``HBOPT_INFLUX_TOKEN`` only, so it never lands in a shell
history. It lives here, above the API package, because it composes the API's settings with the
store package.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from core import cli_args
from core.errors import CliError

if TYPE_CHECKING:
    from adapters.store import TelemetryStore
    from api.settings import Settings
    from scheduler.plan_store import SqlPlanStore

T = TypeVar("T")

#: Settings fields the flags override, by flag.
FLAGS = {
    "--backend": "telemetry_backend",
    "--path": "telemetry_path",
    "--influx-url": "influx_url",
    "--influx-org": "influx_org",
    "--influx-bucket": "influx_bucket",
}


def register(subparsers: Any) -> None:
    """Add ``store`` and its actions to the ``hbopt`` command line."""
    parser = subparsers.add_parser(
        "store",
        help="maintain, export or delete stored telemetry",
        description="Work on the telemetry store `hbopt serve` writes. Defaults come from the "
        "same HBOPT_* environment variables as serve; the InfluxDB token from "
        "HBOPT_INFLUX_TOKEN.",
    )
    parser.add_argument(
        "--backend", choices=["sqlite", "influxdb"], help="default: HBOPT_TELEMETRY_BACKEND, sqlite"
    )
    parser.add_argument(
        "--path",
        type=Path,
        help="SQLite file of the store (default: HBOPT_TELEMETRY_PATH, "
        "var/hbopt-telemetry.sqlite3)",
    )
    parser.add_argument("--influx-url", help="default: HBOPT_INFLUX_URL, http://127.0.0.1:8086")
    parser.add_argument("--influx-org", help="default: HBOPT_INFLUX_ORG, heartbeat")
    parser.add_argument("--influx-bucket", help="default: HBOPT_INFLUX_BUCKET, telemetry")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    maintain = actions.add_parser("maintain", help="update 15-min aggregates, apply retention")
    maintain.set_defaults(func=_maintain)
    export = actions.add_parser("export", help="write all data of a site as CSV or Parquet")
    export.add_argument("site")
    export.add_argument(
        "out", metavar="DIR", type=Path, help="output directory (made if its parent exists)"
    )
    export.add_argument("--format", choices=["csv", "parquet"], default="csv")
    export.set_defaults(func=_export)
    delete = actions.add_parser("delete", help="delete all data of a site")
    delete.add_argument("site")
    delete.add_argument("--yes", action="store_true", help="confirm the deletion")
    delete.set_defaults(func=_delete)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The service settings, with what the flags name overridden."""
    from pydantic import ValidationError

    from api.settings import Settings

    flag_of = {field: flag for flag, field in FLAGS.items()}
    overrides = {
        field: getattr(args, flag[2:].replace("-", "_"))
        for flag, field in FLAGS.items()
        if getattr(args, flag[2:].replace("-", "_")) is not None
    }
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise CliError(cli_args.pydantic_one_line(exc, flag_of)) from None


def open_store(args: argparse.Namespace) -> TelemetryStore:
    """The store the settings name; an SQLite file must exist (it is not made here)."""
    from api.main import store_from_settings, utc_now

    settings = settings_from_args(args)
    if settings.telemetry_backend == "sqlite" and not settings.telemetry_path.is_file():
        raise CliError(
            f"--path: no telemetry store at {settings.telemetry_path}; `hbopt serve` writes it "
            "there. Give --path FILE or set HBOPT_TELEMETRY_PATH"
        )
    store = store_from_settings(settings, utc_now)
    if store is None:
        raise CliError("--backend: HBOPT_TELEMETRY_BACKEND is none; give --backend sqlite|influxdb")
    return store


def _run_on_store(args: argparse.Namespace, action: Any) -> Any:
    """``action(store)``; a store server that does not answer is a one-line runtime error."""
    from influxdb_client.rest import ApiException
    from urllib3.exceptions import HTTPError

    from adapters.store import StoreError

    store = open_store(args)
    try:
        return action(store)
    except (StoreError, OSError, HTTPError, ApiException) as exc:
        settings = settings_from_args(args)
        where = (
            f"--influx-url {settings.influx_url}: InfluxDB"
            if settings.telemetry_backend == "influxdb"
            else f"--path {settings.telemetry_path}: the store"
        )
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CliError(
            f"{where} failed ({reason}); check that the server runs and the URL and "
            "HBOPT_INFLUX_TOKEN are right",
            exit_code=1,
        ) from None
    finally:
        store.close()


def _maintain(args: argparse.Namespace) -> int:
    result = _run_on_store(args, lambda store: store.maintain())
    print(f"aggregated {result.aggregated_buckets} buckets, deleted {result.deleted_raw} raw rows")
    return 0


def _export(args: argparse.Namespace) -> int:
    from adapters.store.sqlite import write_frames

    out: Path = args.out
    existed = out.is_dir()
    cli_args.output_dir("DIR", out)
    files = _run_on_store(args, lambda store: store.export_site(args.site, out, args.format))
    frames = _on_plans(args, lambda plans: plans.site_frames(args.site))
    files += write_frames(frames, out, args.format)  # plans and setpoints
    if all(_rows(path) == 0 for path in files):
        for path in files:
            path.unlink()
        if not existed:
            out.rmdir()
        raise CliError(f"store export: no data of site {args.site!r} in the store; check the id")
    for path in files:
        print(path)
    return 0


def _rows(path: Path) -> int:
    """Data rows of an exported CSV or Parquet file."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.read_metadata(path).num_rows)
    with path.open(encoding="utf-8") as f:
        return max(sum(1 for line in f if line.strip()) - 1, 0)


def _delete(args: argparse.Namespace) -> int:
    if not args.yes:
        raise CliError(f"delete: this removes all data of site {args.site!r}; add --yes")
    _run_on_store(args, lambda store: store.delete_site(args.site))
    _on_plans(args, lambda plans: plans.delete_sites([args.site]))
    print(f"deleted site {args.site}")
    return 0


def _on_plans(args: argparse.Namespace, action: Callable[[SqlPlanStore], T]) -> T:
    """Run ``action`` on the plan store in the service database (``HBOPT_DATABASE_URL``)."""
    from api.accounts_store import AccountStore
    from scheduler.plan_store import SqlPlanStore

    accounts = AccountStore(settings_from_args(args).accounts_url())  # migrated on open
    try:
        return action(SqlPlanStore(accounts.engine))
    finally:
        accounts.close()
