"""Worker ids and the two variables a supervisor hands its children."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perago import RuntimeConfigError
from perago.worker_identity import (
    broker_worker_id,
    child_environment,
    default_worker_id_prefix,
    executor_worker_id,
    resolve_worker_id,
    resolve_worker_id_prefix,
)


def test_broker_and_executor_ids() -> None:
    assert broker_worker_id("featuresBuild") == "featuresBuildBroker"
    assert [executor_worker_id("featuresBuild", slot) for slot in (1, 2, 42, 9999, 10000)] == [
        "featuresBuild0001",
        "featuresBuild0002",
        "featuresBuild0042",
        "featuresBuild9999",
        "featuresBuild10000",
    ]


@pytest.mark.parametrize("slot", [0, -1, True, 1.0, "1"])
def test_slots_are_one_based_integers(slot: object) -> None:
    with pytest.raises(ValueError, match="executor slot must be an integer >= 1"):
        executor_worker_id("p", slot)  # type: ignore[arg-type]


@given(st.integers(min_value=1, max_value=10**6))
def test_executor_ids_are_distinct_and_sort_by_slot_below_10000(slot: int) -> None:
    worker_id = executor_worker_id("p", slot)
    assert worker_id.startswith("p") and int(worker_id[1:]) == slot
    assert len(worker_id) == 1 + max(4, len(str(slot)))


def test_child_environment_is_exactly_the_two_variables() -> None:
    assert child_environment("prod", executor_worker_id("prod", 3)) == {
        "PERAGO_WORKER_ID_PREFIX": "prod",
        "PERAGO_WORKER_ID": "prod0003",
    }
    assert child_environment("prod", broker_worker_id("prod"))["PERAGO_WORKER_ID"] == "prodBroker"


@given(st.text(max_size=30))
def test_default_prefix_keeps_only_ascii_alphanumerics(target: str) -> None:
    expected = "".join(c for c in target if c.isascii() and c.isalnum())
    if expected:
        assert default_worker_id_prefix(target) == expected
    else:
        with pytest.raises(RuntimeConfigError, match="^PERAGO_WORKER_ID_PREFIX must not be empty$"):
            default_worker_id_prefix(target)


def test_configured_prefix_is_validated_not_corrected() -> None:
    assert resolve_worker_id_prefix("app.x", {"PERAGO_WORKER_ID_PREFIX": " ok1 "}) == "ok1"
    with pytest.raises(RuntimeConfigError, match="only ASCII letters and digits"):
        resolve_worker_id_prefix("app.x", {"PERAGO_WORKER_ID_PREFIX": "o.k"})


def test_worker_id_from_environment_or_pid_fallback() -> None:
    assert resolve_worker_id("app.x", {"PERAGO_WORKER_ID": "prod0002"}) == "prod0002"
    fallback = f"appx-pid-{os.getpid()}"
    assert resolve_worker_id("app.x", {"PERAGO_WORKER_ID": ""}) == fallback
    # the fallback ignores a configured prefix: it marks an unsupervised process, not a slot
    assert resolve_worker_id("app.x", {"PERAGO_WORKER_ID_PREFIX": "prod"}) == fallback


def test_worker_id_reads_the_real_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERAGO_WORKER_ID", "prodBroker")
    assert resolve_worker_id("app.x") == "prodBroker"
    monkeypatch.delenv("PERAGO_WORKER_ID")
    assert resolve_worker_id("app.x") == f"appx-pid-{os.getpid()}"
