"""The confirmation asked before a failover: a modal that names what will happen, and
defaults to No.

Focus starts on Cancel, so an Enter pressed by habit does nothing harmful;
Escape cancels too. Confirming needs a deliberate move to "Fail over" (Tab or
→) and Enter.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Static

__all__ = ["ConfirmFailover"]


class ConfirmFailover(ModalScreen[bool]):
    """Ask whether to fail over `master`, now at `address`, by asking `sentinel` only.

    Dismisses with True only when "Fail over" is pressed; Cancel and Escape give False.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("left", "app.focus_previous", "Previous", show=False),
        Binding("right", "app.focus_next", "Next", show=False),
    ]

    def __init__(self, master: str, address: str, sentinel: str) -> None:
        super().__init__()
        self.master = master
        self.address = address
        self.sentinel = sentinel

    def compose(self) -> ComposeResult:
        """The question, what it will do, and the two buttons (Cancel first)."""
        with Vertical(id="dialog"):
            yield Static(f"Fail over {self.master}?", id="question", markup=False)
            yield Static(
                f"master    {self.master}\n"
                f"now at    {self.address}\n"
                f"ask       sentinel {self.sentinel} (this one only)\n"
                "\n"
                "It promotes a replica at once, without waiting for a fault.\n"
                "Clients are disconnected and must reconnect; writes sent to\n"
                "the old master meanwhile can be lost.",
                id="details",
                markup=False,
            )
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Fail over", id="confirm", variant="error")
            yield Static("Esc cancels · Tab, then Enter, fails over", id="hint", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        """Start on Cancel: the safe answer is the default one."""
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Answer True for "Fail over", False for Cancel."""
        event.stop()
        self.dismiss(event.button.id == "confirm")

    def action_cancel(self) -> None:
        """Close without failing over."""
        self.dismiss(False)
