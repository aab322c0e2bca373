"""`perago reconcile --repository R [--branch B ...] [--workflow-id W] [--dry-run]`: revert abandoned publications.

Reads the same `LAKECTL_*` and `CONDUCTOR_*` configuration (`.env`, then the environment) as
`perago start`. Prints one line per orphaned or undecidable publication — `reverted:`,
`would revert:`, `already reverted:`, `failed:` or `undecided:`, then the branch, the
commit and why — and a summary line; every decision, kept ones included, is also logged on
stderr. Exit status 1 when a revert failed, a branch could not be read, or Conductor could
not be asked (then nothing it could not judge is touched). Meant for a cron job, or a
workflow-end hook with `--workflow-id`; `perago.workspace.reconcile` has the rules.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Optional

import typer

from perago.cli.app import app
from perago.cli.output import fail
from perago.conductor import client_from_config, conductor_worker_id
from perago.config import load_runtime_config
from perago.errors import RuntimeConfigError
from perago.units import parse_duration
from perago.workspace.errors import LakeFSError
from perago.workspace.lakefs_client import LakeFSClient
from perago.workspace.reconcile import DEFAULT_MAX_COMMITS, Decision, Reconciler

CONFIG_TARGET = "perago.reconcile"
"""Stands in for a task module when deriving the (unused) worker-id prefix."""


@app.command()
def reconcile(
    repository: Annotated[str, typer.Option("--repository", "-r", help="lakeFS repository to inspect.")],
    branch: Annotated[
        Optional[list[str]],  # noqa: UP007, UP045 - typer reads Optional
        typer.Option("--branch", "-b", help="Target branch (repeatable; default: every non-staging branch)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would be reverted; write nothing.")] = False,
    window: Annotated[
        str, typer.Option("--window", help="Only inspect commits younger than this (e.g. 12h, 7d).")
    ] = "7d",
    max_commits: Annotated[
        int, typer.Option("--max-commits", min=1, help="Inspect at most this many commits per branch.")
    ] = DEFAULT_MAX_COMMITS,
    workflow_id: Annotated[
        Optional[str],  # noqa: UP007, UP045 - typer reads Optional
        typer.Option("--workflow-id", help="Only this workflow's publications (e.g. from a workflow-end hook)."),
    ] = None,
) -> None:
    """Revert publications Conductor will never record (retries exhausted, terminated, skipped)."""
    try:
        config = load_runtime_config(CONFIG_TARGET, probe_roots=False)
        window_seconds = parse_duration(window, name="--window").total_seconds()
    except RuntimeConfigError as error:
        fail(str(error))
    if config.conductor is None:
        fail("CONDUCTOR_SERVER_URL is required for perago reconcile")
    if config.lakefs is None:
        fail(
            "LakeFS config is required for perago reconcile; set LAKECTL_SERVER_ENDPOINT_URL, "
            "LAKECTL_CREDENTIALS_ACCESS_KEY_ID and LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY"
        )
    lakefs = LakeFSClient(
        config.lakefs.endpoint_url,
        config.lakefs.access_key_id,
        config.lakefs.secret_access_key.get_secret_value(),
    )
    conductor = client_from_config(config.conductor, worker_id=conductor_worker_id(config.worker_id_prefix))
    try:
        reconciler = Reconciler(
            lakefs,
            conductor,
            repository,
            window_seconds=window_seconds,
            max_commits=max_commits,
            dry_run=dry_run,
            workflow_id=workflow_id,
        )
        decisions, unreadable = _run(reconciler, branch or None)
    finally:
        conductor.close()
    _report(decisions, unreadable, reconciler.conductor_down)


def _run(reconciler: Reconciler, branches: list[str] | None) -> tuple[list[Decision], int]:
    """Every branch's decisions, printing orphan lines as they come; counts unreadable branches."""
    decisions: list[Decision] = []
    unreadable = 0
    try:
        targets = reconciler.branches() if branches is None else branches
    except LakeFSError as error:
        fail(f"cannot list the branches of repository {reconciler.repository!r}: {error}")
    for target in targets:
        try:
            found = reconciler.reconcile_branch(target)
        except LakeFSError as error:
            typer.echo(f"error: cannot reconcile branch {target!r}: {error}", err=True)
            unreadable += 1
            continue
        for decision in found:
            if decision.action != "kept":
                typer.echo(decision.line())
        decisions.extend(found)
    return decisions, unreadable


def _report(decisions: list[Decision], unreadable: int, conductor_down: str | None) -> None:
    counts = Counter(decision.action for decision in decisions)
    summary = ", ".join(f"{counts[action]} {action}" for action in sorted(counts)) or "no publications found"
    typer.echo(f"reconcile: {summary}")
    failed = sum(1 for decision in decisions if decision.failed)
    if conductor_down is not None:
        fail(f"{conductor_down}; publications it could not judge were left in place")
    if failed or unreadable:
        problems = [f"{failed} publication(s) not settled"] if failed else []
        problems += [f"{unreadable} branch(es) unreadable"] if unreadable else []
        fail("; ".join(problems))
