"""The `ConductorEmulator` object itself: modes, settings, and the §6.2 mapping rules."""

from __future__ import annotations

import httpx
import pytest
from conductor_rest import Api, fast_taskdef

from perago.testing import ConductorEmulator
from perago.testing.conductor import ManualClock
from perago.testing.conductor.expressions import compile_template, evaluate, walk


def test_child_process_mode_serves_the_same_api() -> None:
    with ConductorEmulator(in_process=False) as conductor:
        assert conductor.url.endswith("/api") and conductor.pid is not None
        port = conductor.port
        api = Api(conductor.url)
        api.register_taskdefs(fast_taskdef("a"))
        api.chain("wf", "a")
        workflow_id = api.start("wf")
        api.update(api.poll_one("a"), "COMPLETED")
        assert api.workflow(workflow_id)["status"] == "COMPLETED"
        api.close()
    assert conductor.pid is None
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)


def test_configuration_errors_are_named() -> None:
    with pytest.raises(ValueError, match="server_version"):
        ConductorEmulator(server_version="banana")
    with pytest.raises(ValueError, match="clock"):
        ConductorEmulator(in_process=False, clock=ManualClock())
    with pytest.raises(ValueError, match="update_v2_status"):
        ConductorEmulator(update_v2_status=418)
    with pytest.raises(RuntimeError, match="not running"):
        _ = ConductorEmulator().url
    with pytest.raises(ValueError, match="advance"):
        ManualClock().advance(-1)


def test_version_endpoint(api: Api) -> None:
    answer = api.client.get("/version")
    assert answer.status_code == 200 and answer.text == "3.32.1"


def _run(template: object, workflow_input: dict, outputs: dict) -> object:
    def resolve(root: str, path: list) -> object:
        if root == "workflow":
            return walk({"input": workflow_input}, path)
        return walk({"output": outputs[root]}, path) if root in outputs else None

    return evaluate(compile_template(template), resolve)


def test_mapping_examples_of_spec_6_2() -> None:
    workflow_input = {"x": 5, "name": "a"}
    outputs = {"t1": {"y": [1, 2]}}
    assert _run("${workflow.input.x}", workflow_input, outputs) == 5
    assert _run("id-${workflow.input.name}", workflow_input, outputs) == "id-a"
    assert _run("${t1.output.y}", workflow_input, outputs) == [1, 2]
    assert _run("${t1.output.y[1]}", workflow_input, outputs) == 2
    assert _run("${t1.output.missing}", workflow_input, outputs) is None
    assert _run("v=${t1.output.missing}", workflow_input, outputs) == "v=null"
    assert _run("$${literal}", workflow_input, outputs) == "${literal}"
    assert _run({"nested": ["${workflow.input.x}", 3, True]}, workflow_input, outputs) == {"nested": [5, 3, True]}
    assert _run("all ${t1.output}", workflow_input, outputs) == "all {y=[1, 2]}"


def test_mapped_values_are_copies(api: Api) -> None:
    api.register_taskdefs(fast_taskdef("a"), fast_taskdef("b"))
    api.register_workflow(
        "wf",
        [
            {
                "name": "a",
                "taskReferenceName": "first",
                "inputParameters": {"shared": "${workflow.input.obj}", "id": "${CPEWF_TASK_ID}"},
            },
            {"name": "b", "taskReferenceName": "second", "inputParameters": {"shared": "${workflow.input.obj}"}},
        ],
    )
    workflow_id = api.start("wf", {"obj": {"k": [1]}})
    first = api.poll_one("a")
    assert first["inputData"]["id"] == first["taskId"]
    api.update(first, "COMPLETED")
    workflow = api.workflow(workflow_id)
    assert workflow["tasks"][1]["inputData"] == {"shared": {"k": [1]}}
    assert workflow["input"] == {"obj": {"k": [1]}}


def test_docstring_examples_run() -> None:
    import doctest

    from perago.testing.conductor import server

    failures, tried = doctest.testmod(server)
    assert tried > 0 and failures == 0


def test_child_emulator_exits_when_its_parent_dies() -> None:
    import os
    import subprocess
    import sys
    import time

    script = (
        "import sys, time\n"
        "from perago.testing.conductor import ConductorEmulator\n"
        "emulator = ConductorEmulator(in_process=False).start()\n"
        "print(emulator.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    parent.kill()  # no clean stop(): the child must notice on its own
    parent.wait()
    parent.stdout.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{child_pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return  # exited; only waiting for a reaper
        except FileNotFoundError:
            return
        time.sleep(0.2)
    os.kill(child_pid, 9)
    raise AssertionError("the orphaned emulator child kept running")
