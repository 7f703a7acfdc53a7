"""SlotMemory against the plain dict it replaces: same values, same forgetting."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.slot_memory import SlotMemory

T0 = pd.Timestamp("2024-01-01T00:00Z")
WINDOW = pd.Timedelta(hours=6)  # 24 slots, so the ring wraps many times below


def _index(first: int, n: int) -> pd.DatetimeIndex:
    return pd.date_range(T0 + first * pd.Timedelta(minutes=15), periods=n, freq="15min")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(1, 40)), min_size=1, max_size=25))
def test_it_answers_like_a_dict_that_forgets_beyond_the_window(
    calls: list[tuple[int, int]],
) -> None:
    memory, reference = SlotMemory(WINDOW), {}
    newest = None
    for k, (first, n) in enumerate(calls):
        index = _index(first, n)
        values = np.arange(n) + 1000.0 * k
        memory.update(index, values)
        reference.update(dict(zip(index, values, strict=True)))
        newest = index[-1] if newest is None else max(newest, index[-1])
        reference = {t: v for t, v in reference.items() if t >= newest - WINDOW}
        expected = pd.Series(reference, dtype=float).sort_index()
        pd.testing.assert_series_equal(memory.known(), expected, check_freq=False,
                                       check_index_type=False)  # fmt: skip
        probe = _index(0, 260)
        pd.testing.assert_series_equal(memory.on(probe), expected.reindex(probe))
        assert len(memory) == len(expected)


def test_it_floors_to_the_slot_and_is_small() -> None:
    memory = SlotMemory(pd.Timedelta(days=14))
    assert len(memory) == 0 and memory.known().empty
    assert memory.on(_index(0, 2)).isna().all()
    memory.update(pd.DatetimeIndex([T0 + pd.Timedelta(minutes=7)]), np.array([3.5]))
    assert memory.on(_index(0, 1)).iloc[0] == 3.5
    # two arrays of 14 days of slots: 16 bytes per slot
    assert memory._slot.nbytes + memory._value.nbytes == 16 * (14 * 96 + 1)
