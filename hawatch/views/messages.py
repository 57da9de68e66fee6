"""Textual messages that carry news from the sources and the workers to the app.

Workers post these; only the app reacts to them, so no source or worker ever
touches a widget.
"""

from __future__ import annotations

from textual.message import Message

from hawatch.core.events import Event
from hawatch.views.failover import FailoverOutcome

__all__ = ["EventArrived", "FailoverAnswered"]


class EventArrived(Message):
    """A core event from a source, delivered on the UI's event loop to feed the core."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class FailoverAnswered(Message):
    """The operator's failover request is over: the sentinel's answer (or its silence)
    and, if the audit log could not be written, why."""

    def __init__(self, outcome: FailoverOutcome, audit_problem: str | None = None) -> None:
        super().__init__()
        self.outcome = outcome
        self.audit_problem = audit_problem
