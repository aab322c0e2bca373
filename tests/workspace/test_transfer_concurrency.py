"""How many transfers a workspace attempt runs at once on hosts of different sizes."""

from __future__ import annotations

import os
import threading
import time

import pytest

from perago.workspace import transfer


@pytest.mark.parametrize(("cores", "expected"), [(1, 4), (2, 4), (3, 6), (8, 16), (64, 16)])
def test_two_transfers_per_usable_core_between_4_and_16(
    monkeypatch: pytest.MonkeyPatch, cores: int, expected: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cores)), raising=False)
    assert transfer.transfers_for_this_host() == expected


def test_the_cpu_count_stands_in_where_affinity_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 5)
    assert transfer.transfers_for_this_host() == 10


def test_transfers_run_on_at_most_the_given_number_of_threads_and_keep_item_order() -> None:
    lock = threading.Lock()
    running = peak = 0

    def work(item: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.002)
        with lock:
            running -= 1
        return item * item

    assert transfer.run_bounded(work, range(40), 3) == [n * n for n in range(40)]
    assert 1 < peak <= 3


def test_the_first_failure_is_raised_and_stops_the_items_not_yet_started() -> None:
    started: list[int] = []

    def work(item: int) -> int:
        started.append(item)
        if item == 2:
            raise OSError("lakeFS went away")
        time.sleep(0.01)
        return item

    with pytest.raises(OSError, match="lakeFS went away"):
        transfer.run_bounded(work, range(200), 2)
    assert len(started) < 10
