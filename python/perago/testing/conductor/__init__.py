"""An emulated Conductor OSS server for tests and local runs (spec conductor-api.md).

Layout, one concept per module: `http11` (wire), `routes` (REST surface), `engine`
(polls, updates, workflow control), `decider` (workflow evaluation: scheduling, input
mapping, timeouts, retries), `state` (tables and bookkeeping), `queues`, `expressions`
(`${...}` mapping), `metadata` (definitions), `records` (tasks/workflows and their JSON),
`task_result` (update bodies), `faults`, `auth`, `clock`, `versions`, `settings`,
`server` (the `ConductorEmulator` runner).
"""

from perago.testing.conductor.clock import Clock, ManualClock, SystemClock
from perago.testing.conductor.faults import FaultPlan, FaultRule
from perago.testing.conductor.server import ConductorEmulator
from perago.testing.conductor.settings import EmulatorSettings

__all__ = ["Clock", "ConductorEmulator", "EmulatorSettings", "FaultPlan", "FaultRule", "ManualClock", "SystemClock"]
