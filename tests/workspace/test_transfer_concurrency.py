"""How many transfers a workspace attempt runs at once on hosts of different sizes."""

from __future__ import annotations

import os

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
