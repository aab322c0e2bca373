"""The compiled core as Python sees it: stub, restart policy, workspace-root lock."""

from __future__ import annotations

import ast
import inspect
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perago import RuntimeConfigError, _core


def test_stub_names_match_compiled_module() -> None:
    stub = Path(_core.__file__).with_name("_core.pyi")
    tree = ast.parse(stub.read_text())
    stub_names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            stub_names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            stub_names.add(node.target.id)
    runtime_names = {name for name in dir(_core) if not name.startswith("_")} | {"__version__"}
    assert stub_names == runtime_names
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            stub_members = {item.name for item in node.body if isinstance(item, ast.FunctionDef)}
            runtime_members = {name for name, _ in inspect.getmembers(getattr(_core, node.name))}
            assert stub_members <= runtime_members, node.name


def test_restart_backoff_sequence() -> None:
    assert [_core.restart_backoff_seconds(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]


@given(st.integers(min_value=0, max_value=2**62))
def test_restart_backoff_is_bounded_and_monotonic(count: int) -> None:
    delay = _core.restart_backoff_seconds(count)
    assert 1 <= delay <= _core.MAX_RESTART_BACKOFF_SECONDS
    assert _core.restart_backoff_seconds(count + 1) >= delay


@given(st.integers(max_value=-1))
def test_restart_backoff_rejects_negative_counts(count: int) -> None:
    with pytest.raises(ValueError, match="restart_count must be >= 0"):
        _core.restart_backoff_seconds(count)


def test_lock_writes_pid_and_is_removed_on_release(tmp_path: Path) -> None:
    with _core.WorkspaceRootLock.acquire(tmp_path / "root") as lock:
        assert lock.path == tmp_path / "root" / ".perago-supervisor.lock"
        assert lock.path.read_text() == f'{{"supervisor_pid": {os.getpid()}}}\n'
    assert not lock.held
    assert not lock.path.exists()


HOLDER = textwrap.dedent(
    """
    import sys, time
    from perago import _core
    lock = _core.WorkspaceRootLock.acquire(sys.argv[1])
    print("held", flush=True)
    time.sleep(60)
    """
)


def test_lock_held_by_another_process_is_refused_until_it_is_killed(tmp_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            with pytest.raises(RuntimeConfigError) as refused:
                _core.WorkspaceRootLock.acquire(tmp_path)
            message = str(refused.value)
            assert f"supervisor pid {holder.pid}" in message
            assert str(tmp_path) in message
            assert "PERAGO_WORKSPACE_ROOT" in message
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait()
    # The kernel released the flock with the process; the stale file does not block us.
    with _core.WorkspaceRootLock.acquire(tmp_path) as lock:
        assert lock.path.read_text() == f'{{"supervisor_pid": {os.getpid()}}}\n'
