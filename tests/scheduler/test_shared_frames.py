"""Frames read by several threads at once: a controller's cycle runs in a thread while its
heat-store observer reads the same weather on the event loop, and every site of a weather
cell reads one forecast frame. pandas builds an index's lookup table at the first lookup, and
two threads doing that together can see a unique index as duplicated."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pandas as pd

from core.timeindex import shareable
from scheduler.feeds import BundledWeather

TRIALS, THREADS = 150, 4
QUERY = pd.date_range("2024-01-02T00:00Z", periods=96, freq="15min")


def _together(call: Callable[[], object]) -> list[str]:
    """Run ``call`` in THREADS threads released at the same instant; the errors raised."""
    errors: list[str] = []
    start = threading.Barrier(THREADS)

    def run() -> None:
        start.wait()
        try:
            call()
        except Exception as exc:  # what the race raises is the point of the test
            errors.append(repr(exc))

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def _fresh_frame() -> pd.DataFrame:
    index = pd.date_range("2024-01-01T00:00Z", periods=5 * 96, freq="15min")
    return pd.DataFrame({"temp_air_c": np.arange(len(index), dtype=float)}, index=index)


def test_a_warmed_frame_reindexes_from_many_threads_at_once() -> None:
    errors: list[str] = []
    for _ in range(TRIALS):
        frame = shareable(_fresh_frame())
        errors += _together(lambda f=frame: f.reindex(QUERY, method="ffill"))
    assert errors == []


def test_one_controllers_bundled_weather_from_its_thread_and_its_loop_at_once() -> None:
    errors: list[str] = []
    for _ in range(TRIALS // 3):
        weather = BundledWeather()  # a controller's own, first read by several at once
        errors += _together(lambda w=weather: w.weather(QUERY))
    assert errors == []
