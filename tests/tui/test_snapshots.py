"""Snapshots of the screen an operator sees, at 80x24 and 160x48, in each look.

Four screens (a healthy cluster, an incident in progress, the failover
confirmation, the help screen) in three looks (the default theme, the ANSI theme
and ``NO_COLOR=1``), on the frozen clock of `scenes`. A change to what the screen
shows fails here until a person has looked at the new picture and accepted it
(``pytest tests/tui/test_snapshots.py --snapshot-update``; the report of a failed
run shows both pictures side by side).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from scenes import SceneApp, freeze_time_zone, healthy, incident
from textual.pilot import Pilot

from hawatch.views.options import ScreenOptions

freeze_time_zone()

SIZES = {"80x24": (80, 24), "160x48": (160, 48)}
LOOKS = ("default", "ansi", "no-color")


async def _settle(pilot: Pilot[None]) -> None:
    """Let a render tick pass so the widgets show the scene."""
    await pilot.pause(0.4)


def _scene(name: str) -> tuple[Callable[[], list], tuple[str, ...]]:
    return {
        "healthy": (healthy, ()),
        "incident": (incident, ()),
        "confirmation": (healthy, ("f",)),
        "help": (healthy, ("question_mark",)),
    }[name]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("look", LOOKS)
@pytest.mark.parametrize("scene", ["healthy", "incident", "confirmation", "help"])
def test_screen(
    snap_compare: Callable[..., bool],
    monkeypatch: pytest.MonkeyPatch,
    scene: str,
    look: str,
    size: str,
) -> None:
    if look == "no-color":
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    events, keys = _scene(scene)
    theme = "ansi" if look == "ansi" else "default"
    app = SceneApp(events(), screen=ScreenOptions(theme=theme))
    assert app.no_color == (look == "no-color")

    async def run_before(pilot: Pilot[None]) -> None:
        await _settle(pilot)
        for key in keys:
            await pilot.press(key)
            await _settle(pilot)

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)
