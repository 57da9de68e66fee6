"""Where the stylesheet is: next to the installed package, or in the source checkout.

The stylesheets live in the repository's top-level ``styles/`` folder and the
wheel maps that folder to ``hawatch/styles/``; an editable install has only the
checkout's copy. Textual would resolve a relative path against the module that
defines the App, which is right for neither, so the path is made absolute here.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["STYLESHEET", "stylesheet_path"]

STYLESHEET = "hawatch.tcss"

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def stylesheet_path(name: str = STYLESHEET) -> Path:
    """The absolute path of stylesheet `name`, preferring the installed package's copy.

    When neither copy exists the installed location is returned, so that the error
    Textual raises names where the file was expected.
    """
    installed = _PACKAGE_DIR / "styles" / name
    checkout = _PACKAGE_DIR.parent / "styles" / name
    if installed.is_file() or not checkout.is_file():
        return installed
    return checkout
