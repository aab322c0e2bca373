"""The versioned graph lakeFS keeps per repository, with lakeFS's rules and status codes.

`Store` is the one object the HTTP layer talks to; its operations are grouped by concept in
`repositories.py`, `staging.py` and `history.py` over the shared lock and ref resolution of
`core.py`.
"""

from __future__ import annotations

from .core import MergeEvent, PreMergeHook, View
from .history import HistoryOps
from .repositories import RepositoryOps
from .staging import StagingOps

__all__ = ["MergeEvent", "PreMergeHook", "Store", "View"]


class Store(RepositoryOps, StagingOps, HistoryOps):
    """Repositories with their branches, tags, commits and staging areas."""
