"""The small screens the keys open: the list of every key (``?``) and the PENDING filter
(``/``).

The help screen is built from the bindings the main screen has at the moment it is
opened, after `HawatchApp.check_action` has gated them, so it can never list a key
that does nothing (in read-only mode there is no failover key to list) nor miss
one that was added later.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

__all__ = ["FilterPrompt", "HelpScreen", "KeyHelp", "key_name"]

KeyHelp = tuple[str, str, str]
"""(key as shown, what it does, longer words) for one line of the help screen."""

_KEY_NAMES = {
    "question_mark": "?",
    "slash": "/",
    "ctrl+c": "Ctrl-C",
    "ctrl+p": "Ctrl-P",
    "escape": "Esc",
    "space": "Space",
    "plus": "+",
    "minus": "-",
    "equals_sign": "=",
    "tab": "Tab",
}


def key_name(key: str) -> str:
    """A binding's key as people write it: ``question_mark`` → ``?``, ``ctrl+c`` → ``Ctrl-C``."""
    first = key.split(",")[0].strip()
    return _KEY_NAMES.get(first, first)


class HelpScreen(ModalScreen[None]):
    """Every key of the main screen, with what it does; any of Esc, ``?`` or ``q`` closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close"),
    ]

    def __init__(self, keys: Iterable[KeyHelp], *, notes: Iterable[str] = ()) -> None:
        super().__init__()
        self.keys = tuple(keys)
        self.notes = tuple(notes)

    @property
    def text(self) -> str:
        """The help as plain text, one key per line (what the screen shows)."""
        width = max((len(key) for key, _, _ in self.keys), default=1)
        lines = [
            f"{key:<{width}}  {description:<10} {words}".rstrip()
            for key, description, words in self.keys
        ]
        return "\n".join([*lines, "", *self.notes]).rstrip()

    def compose(self) -> ComposeResult:
        """The title, the keys and the notes, in a box that fits 80x24."""
        with Vertical(id="help"):
            yield Static("hawatch keys", id="help-title", markup=False)
            yield Static(self.text, id="help-keys", markup=False)
            yield Static("Esc, ? or q closes this help", id="help-hint", markup=False)

    def action_close(self) -> None:
        """Back to the main screen."""
        self.dismiss(None)


class FilterPrompt(ModalScreen[str | None]):
    """Ask for the text the PENDING panel's tasks must contain (id, name, queue, state or
    worker). Enter applies it (empty: show every task); Esc leaves the filter as it was."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, current: str = "") -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        """One line of explanation and the input."""
        with Vertical(id="filter"):
            yield Static(
                "Show only the pending tasks whose id, name, queue, state or worker "
                "contains (empty: all):",
                id="filter-question",
                markup=False,
            )
            yield Input(value=self.current, placeholder="e.g. checkout", id="filter-input")
            yield Static("Enter applies · Esc cancels", id="filter-hint", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Apply what was typed."""
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        """Close, keeping the filter as it was."""
        self.dismiss(None)
