"""``scheduler@1.0``: a process's schedule (``schedule``, ``slot``) — see ``process@1.0``.

The node's :class:`~hbeam.node.scheduler.Scheduler` does the work; this device exposes
the same keys as ``process@1.0`` for messages that name it directly.
"""

from __future__ import annotations

from hbeam.devices.process import schedule, slot

info = {"exports": ["schedule", "slot"], "volatile": ["schedule", "slot"]}

__all__ = ["info", "schedule", "slot"]
