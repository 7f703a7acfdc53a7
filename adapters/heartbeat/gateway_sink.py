"""The box's backlog upload to the service's gateway route (``POST /v1/gateway/telemetry``).

A :class:`~adapters.heartbeat.backlog.BacklogSink` over HTTP: each one-minute record becomes one
sample per device in the project's telemetry vocabulary, posted with the box's token. The route
is idempotent on (site, device, timestamp), so a batch re-sent after an outage stores nothing
twice; the idempotency key goes along as a header for the service's logs. A failed request
raises, so the box keeps the batch and retries later (its buffer holds five days).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx

from adapters.heartbeat.backlog import MinuteRecord

log = logging.getLogger(__name__)

TELEMETRY_PATH = "/v1/gateway/telemetry"


def record_samples(record: MinuteRecord) -> list[dict[str, object]]:
    """The gateway samples of one minute record [kW, SOC 0-1]; battery + = discharge."""
    ts = datetime.fromtimestamp(record.t, tz=UTC).isoformat()
    fields: dict[str, dict[str, float]] = {
        "pv": {"power_kw": record.pv_kw},
        "grid": {"power_kw": record.grid_kw},
        "battery": {"power_kw": record.battery_kw, "soc": record.battery_soc},
        "house": {"power_kw": record.house_load_kw},
        "wallbox": {"power_kw": record.wallbox_kw},
        "heatpump": {"power_kw": record.hp_kw},
    }
    return [{"ts": ts, "device": device, "fields": f} for device, f in fields.items()]


class GatewaySink:
    """Posts backlog batches to ``base_url`` + :data:`TELEMETRY_PATH` with the box token.

    Parameters
    ----------
    base_url : str
        The service, e.g. ``https://optimizer.example``.
    box_token : str
        The token the box got when it was paired.
    timeout_s : float
        Per-request timeout [s]; a timeout raises, so the batch stays in the box's buffer.
    """

    def __init__(self, base_url: str, box_token: str, timeout_s: float = 10.0) -> None:
        self._client = httpx.Client(
            base_url=base_url,
            timeout=timeout_s,
            headers={"Authorization": f"Bearer {box_token}"},
        )

    def send(self, batch: Sequence[MinuteRecord], idempotency_key: str) -> None:
        samples = [s for record in batch for s in record_samples(record)]
        response = self._client.post(
            TELEMETRY_PATH,
            json={"samples": samples},
            headers={"Idempotency-Key": idempotency_key},
        )
        response.raise_for_status()
        rejected = response.json().get("rejected", [])
        if rejected:
            # a sample the service refuses will be refused again: delivered, not retried
            log.warning("gateway rejected %d of %d samples: %s", len(rejected), len(samples),
                        rejected[:3])  # fmt: skip

    def close(self) -> None:
        self._client.close()


def gateway_sink_from_env() -> GatewaySink:
    """The sink named ``gateway`` in :data:`~adapters.heartbeat.backlog.SINKS`: configured by
    ``HBOPT_GATEWAY_URL`` and ``HBOPT_BOX_TOKEN``."""
    try:
        return GatewaySink(os.environ["HBOPT_GATEWAY_URL"], os.environ["HBOPT_BOX_TOKEN"])
    except KeyError as exc:
        raise ValueError(f"gateway sink: set {exc.args[0]}") from None
