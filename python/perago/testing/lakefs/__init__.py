"""A faithful lakeFS emulator for tests, benchmarks and `perago dev` (spec/workspace.md §6)."""

from .emulator import DEFAULT_VERSION, LakeFSEmulator
from .faults import FaultRule
from .graph import MergeEvent

__all__ = ["DEFAULT_VERSION", "FaultRule", "LakeFSEmulator", "MergeEvent"]
