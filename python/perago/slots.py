"""The broker's view of its executor slots: endpoint, generation, readiness, the one lease.

A slot is leasable when its current generation said Ready and holds no lease. A lease
ties one dispatch (dispatch id, execution id) to one Conductor task; a Complete frame
settles it only if both ids match — anything else is dropped (fail closed). Everything
here is touched by the broker's loop thread only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from perago import _core


@dataclass(slots=True)
class Lease:
    dispatch_id: int
    execution_id: str
    task_id: str
    workflow_instance_id: str


@dataclass(slots=True)
class Slot:
    number: int
    worker_id: str
    generation: int
    endpoint: _core.SlotEndpoint | None
    ready: bool = False
    lease: Lease | None = None

    def leasable(self) -> bool:
        return self.ready and self.lease is None and self.endpoint is not None


@dataclass
class SlotTable:
    slots: dict[int, Slot] = field(default_factory=dict)
    by_fd: dict[int, int] = field(default_factory=dict)

    def install(self, socket: _core.SlotSocket) -> tuple[Slot, Slot | None]:
        """A new generation's socket for a slot; returns the new slot and the one it replaces."""
        previous = self.slots.get(socket.slot)
        if previous is not None and previous.endpoint is not None:
            self.by_fd.pop(previous.endpoint.fileno(), None)
        slot = Slot(socket.slot, socket.worker_id, socket.generation, socket.endpoint)
        self.slots[socket.slot] = slot
        self.by_fd[socket.endpoint.fileno()] = socket.slot
        return slot, previous

    def detach(self, slot: Slot) -> None:
        """Forget the slot's endpoint (closed or its executor exited); it is no longer leasable."""
        if slot.endpoint is not None:
            self.by_fd.pop(slot.endpoint.fileno(), None)
            slot.endpoint.close()
        slot.endpoint = None
        slot.ready = False

    def free(self) -> int:
        return sum(1 for slot in self.slots.values() if slot.leasable())

    def next_free(self) -> Slot | None:
        for number in sorted(self.slots):
            if self.slots[number].leasable():
                return self.slots[number]
        return None

    def leases(self) -> int:
        return sum(1 for slot in self.slots.values() if slot.lease is not None)
