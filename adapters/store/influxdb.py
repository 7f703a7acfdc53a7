"""Telemetry in InfluxDB 2.x through ``influxdb-client`` (plans live in the service database).

Points: measurement = device, tags ``site`` and ``device``, one float field per telemetry
field (kW, SOC 0-1, degC, codes), nanosecond UTC time. InfluxDB keeps one value per
(series, field, time), so a re-sent sample overwrites itself: writes are idempotent.

Why synchronous writes wrapped in tenacity and not the client's batching ``WriteApi``: the
batching API queues points and flushes them from a background thread, reporting failures to a
callback after ``write()`` has returned, so a caller cannot know when its batch is stored. The
synchronous API returns only after the server answered 204 for the request, so when
:meth:`InfluxStore.write` returns, every chunk of the batch is stored; if a chunk still fails
after the retries, :class:`~adapters.store.StoreError` is raised and nothing is
acknowledged (chunks stored before are harmless when the sender re-sends the batch).

Reads are Flux queries (latest sample, windowed means, aggregation into a second bucket). Raw
retention is the raw bucket's retention rule (:meth:`InfluxStore.ensure_buckets`), so
:meth:`InfluxStore.maintain` only aggregates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from influxdb_client import BucketRetentionRules, InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from adapters.store import (
    ExportFormat,
    MaintenanceResult,
    StoreError,
    StoreSettings,
    register_store,
)
from adapters.store.sqlite import write_frames
from adapters.store.telemetry import (
    DEVICE_FIELDS,
    Sample,
    WriteResult,
    check_field_window,
    split_valid,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NS = timedelta(microseconds=1) / 1000


def sample_point(sample: Sample) -> Point:
    """The InfluxDB point of a sample (measurement = device, tags site/device, ns UTC time)."""
    point = Point(sample.device).tag("site", sample.site_id).tag("device", sample.device)
    for name, value in sample.fields.items():
        point.field(name, float(value))
    return point.time(to_ns(sample.ts), WritePrecision.NS)


def to_ns(ts: datetime) -> int:
    """Nanoseconds since the Unix epoch of a tz-aware time (exact: integer arithmetic)."""
    delta = ts - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def flux_string(text: str) -> str:
    """A Flux string literal of ``text`` (Flux has no query parameters on InfluxDB OSS)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    return f'"{escaped}"'


def flux_time(ts: datetime) -> str:
    """An RFC 3339 UTC time literal for Flux."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _retryable(exc: BaseException) -> bool:
    # A 4xx other than 429 means the request itself is wrong; re-sending cannot help.
    if isinstance(exc, ApiException) and exc.status is not None:
        return not (400 <= int(exc.status) < 500) or int(exc.status) == 429
    return isinstance(exc, Exception)


@register_store("influxdb")
class InfluxStore:
    """:class:`~adapters.store.TelemetryStore` with telemetry in InfluxDB 2.x.

    Parameters
    ----------
    settings : StoreSettings
        ``influx_*`` connection and buckets, ``write_attempts``, ``retry_wait_max_s``;
        (``data_dir`` is unused: earlier releases kept plans and setpoints there).
    clock : callable
        Current tz-aware time.
    """

    def __init__(self, settings: StoreSettings, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.clock = clock
        self.client = InfluxDBClient(
            url=settings.influx_url, token=settings.influx_token, org=settings.influx_org
        )
        self._write_api = self.client.write_api(write_options=SYNCHRONOUS)

    def _retrying(self) -> Retrying:
        return Retrying(
            stop=stop_after_attempt(self.settings.write_attempts),
            wait=wait_exponential(multiplier=0.1, max=self.settings.retry_wait_max_s),
            retry=retry_if_exception(_retryable),
            reraise=True,
        )

    def write(self, samples: Sequence[Sample]) -> WriteResult:
        """Write valid samples in chunks of ``influx_batch_size``; raise if any chunk fails."""
        now = self.clock()
        good, rejected = split_valid(
            list(samples), now, self.settings.future_tolerance, now - self.settings.raw_retention
        )
        points = [sample_point(s) for s in good]
        size = self.settings.influx_batch_size
        for start in range(0, len(points), size):
            try:
                self._retrying()(self._write_chunk, points[start : start + size])
            except Exception as exc:
                raise StoreError(
                    f"influxdb: write failed after retries ({exc}); {start} of {len(points)} "
                    "points stored, batch not acknowledged; re-send it (writes are idempotent)"
                ) from exc
        return WriteResult(accepted=len(good), rejected=rejected)

    def _write_chunk(self, points: list[Point]) -> None:
        self._write_api.write(
            bucket=self.settings.influx_bucket,
            org=self.settings.influx_org,
            record=points,
            write_precision=WritePrecision.NS,  # type: ignore[arg-type]
        )

    def _query(self, flux: str) -> list[Any]:
        try:
            tables = self.client.query_api().query(flux, org=self.settings.influx_org)
        except ApiException as exc:
            raise StoreError(f"influxdb: Flux query failed with HTTP {exc.status}") from exc
        return [record for table in tables for record in table.records]

    def latest(self, site_id: str) -> dict[str, Sample]:
        """Per device, the newest value of each field (timestamp = newest of its fields)."""
        now = self.clock()
        start = now - self.settings.raw_retention
        stop = now + self.settings.future_tolerance + timedelta(seconds=1)
        records = self._query(
            f"from(bucket: {flux_string(self.settings.influx_bucket)})"
            f" |> range(start: {flux_time(start)}, stop: {flux_time(stop)})"
            f" |> filter(fn: (r) => r.site == {flux_string(site_id)})"
            " |> last()"
        )
        by_device: dict[str, tuple[datetime, dict[str, float]]] = {}
        for record in records:
            device = str(record.values["device"])
            ts, fields = by_device.get(device, (record.get_time(), {}))
            fields[str(record.get_field())] = float(record.get_value())
            by_device[device] = (max(ts, record.get_time()), fields)
        return {
            device: Sample(site_id, device, ts.astimezone(UTC), fields)
            for device, (ts, fields) in by_device.items()
        }

    def _window_query(
        self, bucket: str, site_id: str, start: datetime, end: datetime, step: timedelta
    ) -> pd.DataFrame:
        records = self._query(
            f"from(bucket: {flux_string(bucket)})"
            f" |> range(start: {flux_time(start)}, stop: {flux_time(end)})"
            f' |> filter(fn: (r) => r.site == {flux_string(site_id)} and r._field == "power_kw")'
            f" |> aggregateWindow(every: {int(step.total_seconds())}s, fn: mean,"
            ' createEmpty: false, timeSrc: "_start")'
        )
        rows = [(r.get_time(), f"{r.values['device']}-power_kw", r.get_value()) for r in records]
        frame = pd.DataFrame(rows, columns=["ts", "column", "value"])
        if frame.empty:
            return pd.DataFrame()
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        return frame.pivot_table(index="ts", columns="column", values="value", aggfunc="mean")

    def window(
        self, site_id: str, start: datetime, end: datetime, step: timedelta = timedelta(minutes=15)
    ) -> pd.DataFrame:
        """Mean power per device [kW] on ``[start, end)`` at ``step`` (raw, then aggregates).

        Where raw samples have expired, slots that are multiples of 15 minutes are filled from
        the aggregate bucket as the plain mean of the 15-minute means.
        """
        if step <= timedelta(0):
            raise ValueError(f"step: {step} must be positive")
        first = pd.Timestamp(start).floor(pd.Timedelta(step))  # type: ignore[arg-type]
        index = pd.date_range(first, pd.Timestamp(end), freq=pd.Timedelta(step), inclusive="left")
        columns = [f"{device}-power_kw" for device in DEVICE_FIELDS]
        frame = self._window_query(self.settings.influx_bucket, site_id, start, end, step)
        if step % timedelta(minutes=15) == timedelta(0):
            older = self._window_query(
                self.settings.influx_bucket_aggregates, site_id, start, end, step
            )
            frame = frame.combine_first(older) if not frame.empty else older
        if frame.empty:
            return pd.DataFrame(float("nan"), index=index, columns=columns)
        return frame.reindex(index=index, columns=columns)

    def field_window(
        self,
        site_id: str,
        device: str,
        field: str,
        *,
        start: datetime,
        end: datetime,
        step: timedelta = timedelta(minutes=15),
    ) -> pd.Series:
        """Mean of the raw ``field`` of ``device`` per ``step`` on ``[start, end)`` (raw bucket
        only); NaN where no sample holds it."""
        check_field_window(device, field, step)
        first = pd.Timestamp(start).floor(pd.Timedelta(step))  # type: ignore[arg-type]
        index = pd.date_range(first, pd.Timestamp(end), freq=pd.Timedelta(step), inclusive="left")
        records = self._query(
            f"from(bucket: {flux_string(self.settings.influx_bucket)})"
            f" |> range(start: {flux_time(start)}, stop: {flux_time(end)})"
            f" |> filter(fn: (r) => r.site == {flux_string(site_id)}"
            f" and r.device == {flux_string(device)} and r._field == {flux_string(field)})"
            f" |> aggregateWindow(every: {int(step.total_seconds())}s, fn: mean,"
            ' createEmpty: false, timeSrc: "_start")'
        )
        values = pd.Series(
            [float(r.get_value()) for r in records],
            index=pd.to_datetime([r.get_time() for r in records], utc=True),
            dtype=float,
        )
        values = values.groupby(level=0).mean() if len(values) else values
        return values.reindex(index).rename(f"{device}-{field}")

    def maintain(self, now: datetime | None = None) -> MaintenanceResult:
        """Write 15-minute means of complete buckets in the lookback into the aggregate bucket."""
        now = now or self.clock()
        stop = pd.Timestamp(now).floor("15min").to_pydatetime()
        start = stop - self.settings.influx_aggregate_lookback
        records = self._query(
            f"from(bucket: {flux_string(self.settings.influx_bucket)})"
            f" |> range(start: {flux_time(start)}, stop: {flux_time(stop)})"
            ' |> filter(fn: (r) => r._field == "power_kw" or r._field == "soc")'
            ' |> aggregateWindow(every: 15m, fn: mean, createEmpty: false, timeSrc: "_start")'
            f" |> to(bucket: {flux_string(self.settings.influx_bucket_aggregates)},"
            f" org: {flux_string(self.settings.influx_org)})"
        )
        return MaintenanceResult(aggregated_buckets=len(records), deleted_raw=0)

    def ensure_buckets(self) -> None:
        """Create the raw bucket (retention = ``raw_retention``) and the aggregate bucket."""
        api = self.client.buckets_api()
        wanted = {
            self.settings.influx_bucket: int(self.settings.raw_retention.total_seconds()),
            self.settings.influx_bucket_aggregates: 0,
        }
        for name, seconds in wanted.items():
            if api.find_bucket_by_name(name) is None:
                rules = BucketRetentionRules(type="expire", every_seconds=seconds)
                api.create_bucket(
                    bucket_name=name, retention_rules=rules, org=self.settings.influx_org
                )

    def _site_points(self, bucket: str, site_id: str) -> pd.DataFrame:
        stop = self.clock() + timedelta(days=1)
        records = self._query(
            f"from(bucket: {flux_string(bucket)})"
            f" |> range(start: 0, stop: {flux_time(stop)})"
            f" |> filter(fn: (r) => r.site == {flux_string(site_id)})"
        )
        rows = [(r.values["device"], r.get_time(), r.get_field(), r.get_value()) for r in records]
        frame = pd.DataFrame(rows, columns=["device", "ts", "field", "value"])
        if frame.empty:
            return pd.DataFrame(columns=["device", "ts"])
        wide = frame.pivot_table(index=["device", "ts"], columns="field", values="value")
        return wide.reset_index().rename_axis(columns=None).sort_values("ts")

    def export_site(self, site_id: str, path: Path, fmt: ExportFormat = "csv") -> list[Path]:
        """Write the site's points and aggregates as ``path/<table>.<fmt>``."""
        frames = {
            "raw": self._site_points(self.settings.influx_bucket, site_id),
            "aggregates_15min": self._site_points(self.settings.influx_bucket_aggregates, site_id),
        }
        return write_frames(frames, Path(path), fmt)

    def delete_site(self, site_id: str) -> None:
        """Delete the site's points from both buckets."""
        stop = self.clock() + timedelta(days=365)
        for bucket in (self.settings.influx_bucket, self.settings.influx_bucket_aggregates):
            self.client.delete_api().delete(
                start=EPOCH,
                stop=stop,
                predicate=f"site={flux_string(site_id)}",
                bucket=bucket,
                org=self.settings.influx_org,
            )

    def close(self) -> None:
        """Close the HTTP client."""
        self._write_api.close()
        self.client.close()
