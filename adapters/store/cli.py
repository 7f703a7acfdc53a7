"""``hbopt store``: maintain the telemetry store, export or delete a site's data.

    hbopt store --data-dir data maintain
    hbopt store --data-dir data export SITE out/ --format parquet
    hbopt store --data-dir data delete SITE --yes

The InfluxDB backend reads its token from the ``INFLUXDB_TOKEN`` environment variable so it
never appears in a shell history.
"""

from __future__ import annotations

import argparse
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from adapters.store import StoreSettings, make_store


def settings_from_args(args: argparse.Namespace) -> StoreSettings:
    """The store settings named on the command line."""
    if args.raw_retention_days <= 0:
        raise ValueError("--raw-retention-days: must be positive")
    return StoreSettings(
        backend=args.backend,
        data_dir=Path(args.data_dir),
        raw_retention=timedelta(days=args.raw_retention_days),
        influx_url=args.influx_url,
        influx_org=args.influx_org,
        influx_bucket=args.influx_bucket,
        influx_bucket_aggregates=f"{args.influx_bucket}_15min",
        influx_token=os.environ.get("INFLUXDB_TOKEN", ""),
    )


def _maintain(args: argparse.Namespace) -> int:
    store = make_store(settings_from_args(args))
    try:
        result = store.maintain()
    finally:
        store.close()
    print(f"aggregated {result.aggregated_buckets} buckets, deleted {result.deleted_raw} raw rows")
    return 0


def _export(args: argparse.Namespace) -> int:
    store = make_store(settings_from_args(args))
    try:
        files = store.export_site(args.site, Path(args.path), args.format)
    finally:
        store.close()
    for path in files:
        print(path)
    return 0


def _delete(args: argparse.Namespace) -> int:
    if not args.yes:
        raise ValueError(f"delete: this removes all data of site {args.site!r}; add --yes")
    store = make_store(settings_from_args(args))
    try:
        store.delete_site(args.site)
    finally:
        store.close()
    print(f"deleted site {args.site}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``store`` and its actions to the ``hbopt`` command line."""
    parser = subparsers.add_parser("store", help="maintain, export or delete stored telemetry")
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "influxdb"])
    parser.add_argument("--data-dir", default="data", help="directory of the SQLite file")
    parser.add_argument("--raw-retention-days", type=float, default=35.0)
    parser.add_argument("--influx-url", default="http://127.0.0.1:8086")
    parser.add_argument("--influx-org", default="heartbeat")
    parser.add_argument("--influx-bucket", default="telemetry")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    maintain = actions.add_parser("maintain", help="update 15-min aggregates, apply retention")
    maintain.set_defaults(func=_maintain)
    export = actions.add_parser("export", help="write all data of a site as CSV or Parquet")
    export.add_argument("site")
    export.add_argument("path", help="output directory")
    export.add_argument("--format", choices=["csv", "parquet"], default="csv")
    export.set_defaults(func=_export)
    delete = actions.add_parser("delete", help="delete all data of a site")
    delete.add_argument("site")
    delete.add_argument("--yes", action="store_true", help="confirm the deletion")
    delete.set_defaults(func=_delete)
