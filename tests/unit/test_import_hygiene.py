"""The core and the sources import without Textual: headless runs and replays stay cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEADLESS_MODULES = [
    "hawatch.core",
    "hawatch.core.events",
    "hawatch.core.cluster",
    "hawatch.core.text",
    "hawatch.core.tasks",
    "hawatch.core.incidents",
    "hawatch.core.attention",
    "hawatch.core.prometheus",
    "hawatch.sources",
    "hawatch.sources.sentinel",
    "hawatch.sources.sentinel_messages",
    "hawatch.sources.queues",
    "hawatch.sources.celery_events",
    "hawatch.settings",
    "hawatch.audit",
    "hawatch.monitor",
    "hawatch.sources.canary",
    "hawatch.sources.prometheus",
    "hawatch.sources.http_probe",
    "hawatch.journal",
    "hawatch.report",
    "hawatch.logfile",
    "hawatch.cli_extras",
]


@pytest.mark.parametrize("module", HEADLESS_MODULES)
def test_module_imports_without_textual(module: str) -> None:
    code = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        "loaded = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def test_all_headless_modules_together_import_without_textual() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in HEADLESS_MODULES)
        + "assert 'textual' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
