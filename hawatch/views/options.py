"""How the screen looks and behaves: the choices of `hawatch watch`, `demo` and `serve`.

Kept apart from the app so the command line can build it without importing Textual
(Textual reads ``TEXTUAL_FPS`` once, when it is first imported).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_REFRESH", "THEME_NAMES", "ScreenOptions"]

DEFAULT_REFRESH = 0.25
"""Seconds between two renders unless ``--refresh`` says otherwise (4 Hz)."""

THEME_NAMES = {"default": "textual-dark", "ansi": "ansi-dark"}
"""hawatch's theme names and the Textual themes they stand for. ``ansi`` uses only the
terminal's own 16 colours, so it looks as the terminal's palette says."""


@dataclass(frozen=True, slots=True)
class ScreenOptions:
    """The screen's options.

    `theme`: a key of `THEME_NAMES`. `bell`: ring the terminal bell with each
    notification. `refresh`: seconds between two renders of the core (the most the
    screen redraws on its own). `allow_failover`: offer the failover action (never in
    read-only mode, whatever this says).
    """

    theme: str = "default"
    bell: bool = True
    refresh: float = DEFAULT_REFRESH
    allow_failover: bool = True
