"""Drive perago 0.6.1's LakeFSWorkspaceRuntime against the emulator: download, stage, merge, replace, no-op."""
import sys, tempfile, types
from pathlib import Path
from lakefs import Client, Repository
from perago.lakefs_runtime import LakeFSWorkspaceRuntime
from perago.models import WorkspaceInput, WorkspaceSpec, PublishBudget

url, key, secret = sys.argv[1:4]
client = Client(host=url, username=key, password=secret)
repo = Repository("oracle", client=client).create(storage_namespace="local://oracle")
main = repo.branch("main")
for i in range(5):
    main.object(f"audio/render/f{i}.txt").upload(f"v0-{i}".encode() * 30000)
main.object("audio/rendering.txt").upload(b"sibling")
A = main.commit("seed").get_commit().id
spec = WorkspaceSpec(prefix="/audio/render")
winput = WorkspaceInput(repository="oracle", branch="main", refType="commit", ref=A)

def attempt(n):
    return types.SimpleNamespace(workflow_instance_id="wf-1", reference_task_name="render", seq=1, iteration=0,
                                 task_id=f"task-{n}", retry_count=n, execution_id=f"exec{n}")

for budget in (None, PublishBudget(observed_merge_p99_seconds=1, safety_margin_seconds=1, lakefs_merge_timeout_seconds=10,
                                   conductor_completion_timeout_seconds=5, worker_shutdown_grace_seconds=5, heartbeat_interval_seconds=5)):
    rt = LakeFSWorkspaceRuntime(client=client, publish_budget=budget)
    # attempt 1: download, change, stage, publish by squash merge
    w = Path(tempfile.mkdtemp())
    rt.download_workspace(winput, spec, w)
    assert sorted(p.name for p in w.iterdir()) == [f"f{i}.txt" for i in range(5)], list(w.iterdir())
    assert (w / "f0.txt").read_bytes() == b"v0-0" * 30000
    (w / "f0.txt").write_bytes(b"changed")
    (w / "f4.txt").unlink()
    (w / "new.txt").write_bytes(b"new")
    staged = rt.stage_workspace(w, winput, spec, attempt(1))
    M = rt.publish_workspace(staged, winput, spec, attempt(1))
    rt.cleanup_staging(staged)
    head = main.get_commit()
    assert head.id == M and head.parents == [A], head
    assert main.object("audio/render/f0.txt").reader().read() == b"changed"
    assert not main.object("audio/render/f4.txt").exists()
    assert main.object("audio/rendering.txt").reader().read() == b"sibling"
    # attempt 2 (retry after lost completion): replacement publication by hard reset to the new staged commit
    w2 = Path(tempfile.mkdtemp())
    rt.download_workspace(winput, spec, w2)
    (w2 / "f1.txt").write_bytes(b"retry")
    staged2 = rt.stage_workspace(w2, winput, spec, attempt(2))
    C = rt.publish_workspace(staged2, winput, spec, attempt(2))
    rt.cleanup_staging(staged2)
    assert C == staged2.commit and main.get_commit().id == C and main.get_commit().parents == [A]
    # attempt 3: no-op relocates the branch back to A
    assert rt.complete_noop_workspace(winput, spec, attempt(3)) == A
    assert main.get_commit().id == A
    assert [b.id for b in repo.branches()] == ["main"]
print("perago 0.6.1 workspace runtime OK against the emulator")
