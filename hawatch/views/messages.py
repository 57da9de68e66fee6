"""Textual messages that carry news from the sources to the app.

Workers post these; only the app reacts to them, so no source ever touches a
widget.
"""

from __future__ import annotations

from textual.message import Message

from hawatch.core.events import Event

__all__ = ["EventArrived"]


class EventArrived(Message):
    """A core event from a source, delivered on the UI's event loop to feed the core."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event
