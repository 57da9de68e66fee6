"""The wheel as users get it: built, installed in a fresh virtualenv outside the source
tree, and started headless from there."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from hawatch.lab.procs import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]

SMOKE = """
import asyncio, sys
from pathlib import Path

import hawatch
from hawatch.settings import SentinelAddress, Settings
from hawatch.views.app import HawatchApp
from hawatch.views.styles import stylesheet_path

prefix = Path(sys.prefix).resolve()
assert Path(hawatch.__file__).resolve().is_relative_to(prefix), hawatch.__file__
css = stylesheet_path()
assert css.is_file() and css.resolve().is_relative_to(prefix), css
sheets = [Path(p).resolve() for p in HawatchApp.CSS_PATH]
assert css.resolve() in sheets, HawatchApp.CSS_PATH
assert all(p.is_file() and p.is_relative_to(prefix) for p in sheets), sheets


async def main() -> None:
    app = HawatchApp(Settings(sentinels=(SentinelAddress("127.0.0.1", PORT),)))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        masters = app.query_one("#masters")
        # the rule from styles/hawatch.tcss: proof the shipped stylesheet was loaded
        assert masters.styles.border.top[0] == "round", masters.styles.border
        await pilot.press("q")
    print("headless start ok")


asyncio.run(main())
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this checkout."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("hawatch-*.whl")
    return built


def test_wheel_ships_the_stylesheets(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n for n in names if n.endswith(".tcss")}
    expected = {f"hawatch/styles/{p.name}" for p in (ROOT / "styles").glob("*.tcss")}
    assert expected and shipped == expected
    assert "hawatch/lab/demo_app.py" in names
    assert not [n for n in names if n.startswith(("tests/", "styles/"))]


def test_installed_wheel_starts_headless_from_anywhere(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["XDG_CONFIG_HOME"] = str(elsewhere)
    helped = subprocess.run(
        [str(venv / "bin" / "hawatch"), "--help"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert helped.returncode == 0 and "Usage: hawatch" in helped.stdout, helped.stderr
    script = elsewhere / "smoke.py"
    script.write_text(textwrap.dedent(SMOKE).replace("PORT", str(free_port())))
    run = subprocess.run(
        [str(python), str(script)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "headless start ok" in run.stdout
