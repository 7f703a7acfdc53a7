"""The box's 5-day buffer and idempotent backlog upload."""

from __future__ import annotations

import pytest

from adapters.heartbeat.backlog import InMemorySink, MeasurementBuffer, MinuteRecord

pytestmark = pytest.mark.anyio


def _rec(t: int) -> MinuteRecord:
    return MinuteRecord(t, 1.0, 0.5, 0.0, 0.5, 1.5, 0.0, 0.0)


def test_outage_then_upload_oldest_first_without_loss_or_duplicates():
    buf, sink = MeasurementBuffer("site-7"), InMemorySink()
    sink.failing = True
    for i in range(1000):
        buf.append(_rec(60 * i))
        buf.flush(sink, batch_size=100)
    assert len(buf) == 1000 and not sink.batches
    sink.failing = False
    assert buf.flush(sink, batch_size=100) == 1000
    got = sink.records()
    assert [r.t for r in got] == [60 * i for i in range(1000)]
    assert len(buf) == 0


def test_resend_of_a_batch_has_the_same_key():
    class LostReply(InMemorySink):
        def send(self, batch, idempotency_key):
            super().send(batch, idempotency_key)
            if self.calls == 1:
                raise TimeoutError("reply lost")

    buf, sink = MeasurementBuffer("s"), LostReply()
    for i in range(50):
        buf.append(_rec(60 * i))
    buf.flush(sink, batch_size=50)  # stored, but the box saw a failure
    assert len(buf) == 50
    buf.flush(sink, batch_size=50)
    assert sink.calls == 2 and len(sink.batches) == 1 and len(sink.records()) == 50


def test_retention_drops_oldest_beyond_five_days():
    buf = MeasurementBuffer("s")
    for i in range(6 * 1440):
        buf.append(_rec(60 * i))
    pending = buf.pending()
    assert pending[-1].t - pending[0].t == 5 * 86400
    assert buf.dropped == 6 * 1440 - len(pending)


async def test_box_keeps_recording_while_sink_is_down(rig):
    sink = InMemorySink()
    rig.box.sink = sink
    sink.failing = True
    rig.clock.advance(3 * 3600)
    rig.box.tick()
    assert rig.box.upload_backlog() == 0
    n = len(rig.box.buffer)
    assert n == 180
    sink.failing = False
    assert rig.box.upload_backlog() == n
    assert len(sink.records()) == n and len(rig.box.buffer) == 0


def test_sink_registry():
    from adapters.heartbeat.backlog import make_sink

    assert isinstance(make_sink("memory"), InMemorySink)
    with pytest.raises(ValueError, match="sink"):
        make_sink("carrier-pigeon")
