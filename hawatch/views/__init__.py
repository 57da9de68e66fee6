"""Views: render snapshots of the core. The Textual TUI lives here, and only here."""

from hawatch.views.app import HawatchApp

__all__ = ["HawatchApp"]
