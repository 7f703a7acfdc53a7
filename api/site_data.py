"""A site's data across the account store and the telemetry store: export and deletion."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from api.accounts_store import Site
from api.deps import Services


def site_export(services: Services, site: Site) -> dict[str, Any]:
    """Everything stored about ``site`` as plain JSON-able data (secrets left out)."""
    accounts = services.accounts
    site_params = accounts.get_site_parameters(site.id)
    document: dict[str, Any] = {
        "format": "hbopt-site-export/1",
        "exported_at": services.now().isoformat(),
        "site": {
            "id": site.id,
            "name": site.name,
            "timezone": site.timezone,
            "fleet_group": site.fleet_group,
            "factory_service": site.factory_service,
            "created_at": site.created_at.isoformat(),
        },
        "grants": [
            {"supporter_id": g.supporter_id, "created_at": g.created_at.isoformat()}
            for g in accounts.grants_of_site(site.id)
        ],
        "boxes": [
            {
                "id": b.id,
                "serial": b.serial,
                "created_at": b.created_at.isoformat(),
                "revoked_at": None if b.revoked_at is None else b.revoked_at.isoformat(),
            }
            for b in accounts.boxes_of_site(site.id)
        ],
        "trading_parameters": None
        if site_params is None
        else json.loads(site_params.parameters_json),
        "parameter_audit": [
            {
                "at": e.at.isoformat(),
                "actor_id": e.actor_id,
                "field": e.field,
                "old_value": e.old_value,
                "new_value": e.new_value,
            }
            for e in accounts.audit_trail("site", site.id, limit=100_000)
        ],
        "setpoint_acks": [
            {
                "box_id": a.box_id,
                "etag": a.etag,
                "applied_at": a.applied_at.isoformat(),
                "received_at": a.received_at.isoformat(),
                "setpoints": json.loads(a.setpoints_json),
            }
            for a in accounts.acks_of_site(site.id, limit=1_000_000)
        ],
        "device_preferences": [
            {
                "kind": d.kind,
                "name": d.name,
                "preferences": json.loads(d.preferences_json),
                "updated_at": d.updated_at.isoformat(),
            }
            for d in accounts.device_preferences(site.id)
        ],
        "telemetry": telemetry_export(services, site.id),
        "equipment": _equipment(services, site.id),
        "tariff": _tariff(services, site.id),
    }
    return document


def telemetry_export(services: Services, site_id: str) -> dict[str, list[dict[str, Any]]]:
    """The site's raw samples and aggregates (telemetry store, when there is one), plans and
    setpoints (service database) as records, one list per table."""
    frames = services.plans.site_frames(site_id)
    if services.telemetry is not None:
        with tempfile.TemporaryDirectory(prefix="hbopt-export-") as tmp:
            for path in sorted(services.telemetry.export_site(site_id, Path(tmp), "csv")):
                try:
                    frames[path.stem] = pd.read_csv(path)
                except pd.errors.EmptyDataError:
                    frames[path.stem] = pd.DataFrame()
    return {
        name: json.loads(frame.to_json(orient="records", date_format="iso"))
        for name, frame in sorted(frames.items())
    }


def delete_sites_everywhere(services: Services, site_ids: Sequence[str]) -> None:
    """Remove the sites' telemetry, plans and setpoints (accounts stay)."""
    services.plans.delete_sites(site_ids)
    for site_id in site_ids:
        if services.telemetry is not None:
            services.telemetry.delete_site(site_id)
        services.plan_cache.forget(site_id)


def _equipment(services: Services, site_id: str) -> dict[str, Any] | None:
    doc = services.accounts.get_equipment(site_id)
    if doc is None:
        return None
    return {
        "equipment": json.loads(doc.equipment_json),
        "updated_at": doc.updated_at.isoformat(),
        "updated_by": doc.updated_by,
    }


def _tariff(services: Services, site_id: str) -> dict[str, Any] | None:
    doc = services.accounts.get_tariff(site_id)
    if doc is None:
        return None
    return {
        "tariff_id": doc.tariff_id,
        "tariff_toml": doc.tariff_toml,
        "updated_at": doc.updated_at.isoformat(),
        "updated_by": doc.updated_by,
    }
