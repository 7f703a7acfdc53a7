"""``hbopt demo --serve``: the demo owner can sign in and sees the site the scheduler used."""

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from fastapi.testclient import TestClient

from adapters.store import StoreSettings, make_store
from adapters.store.telemetry import Sample
from api.main import create_app
from api.settings import Settings
from hbopt.demo_serve import SCHEDULER_DB, create_demo_account


def test_demo_account_sees_the_demo_data(tmp_path: Path) -> None:
    account = create_demo_account(tmp_path, datetime(2024, 6, 12, tzinfo=UTC))
    at = pd.Timestamp("2024-06-13T10:00Z")
    # the store's clock is the simulated one, as in the demo (a 2024 sample is not "too old")
    store = make_store(
        StoreSettings(data_dir=tmp_path, sqlite_file=SCHEDULER_DB), clock=at.to_pydatetime
    )
    sample = Sample(account.site_id, "battery", at.to_pydatetime(), {"power_kw": 1.5, "soc": 0.8})
    assert store.write([sample]).accepted == 1
    store.close()
    settings = Settings(
        mode="demo", database_path=account.accounts_path, telemetry_path=tmp_path / SCHEDULER_DB
    )
    app = create_app(settings, clock=at.to_pydatetime)
    with TestClient(app) as client:
        token = client.post(
            "/v1/auth/token", json={"email": account.email, "password": account.password}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        (site,) = client.get("/v1/app/sites", headers=headers).json()
        assert site["id"] == account.site_id
        live = client.get(f"/v1/app/sites/{account.site_id}/live", headers=headers).json()
        (battery,) = [d for d in live["devices"] if d["device"] == "battery"]
        assert battery["fields"]["soc"] == 0.8 and battery["age_s"] == 0.0
        wrong = client.post("/v1/auth/token", json={"email": account.email, "password": "x" * 12})
        assert wrong.status_code == 401
