"""While the screen is up, log records go to a private file, with passwords hidden."""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hawatch.logfile import log_to_file
from hawatch.settings import Secret


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_records_go_to_a_private_file_with_passwords_hidden(
    tmp_path: Path, restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    path, problem = log_to_file([Secret("hunter2-plain")], tmp_path / "state" / "hawatch.log")
    assert problem is None and path == tmp_path / "state" / "hawatch.log"
    log = logging.getLogger("hawatch.sources.test")
    log.warning("cannot reach %s", "redis://app:s3cret-pw@127.0.0.1:6379/0")
    log.info("auth with hunter2-plain failed")
    try:
        raise ConnectionError("redis://:s3cret-pw@127.0.0.1:1/0 refused")
    except ConnectionError:
        log.exception("source stopped")
    text = path.read_text(encoding="utf-8")
    assert "cannot reach redis://app:******@127.0.0.1:6379/0" in text
    assert "auth with ****** failed" in text
    assert "source stopped" in text and "ConnectionError" in text
    assert "s3cret-pw" not in text and "hunter2-plain" not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Nothing reached the terminal.
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_an_unwritable_place_is_a_sentence_and_nothing_reaches_the_terminal(
    tmp_path: Path, restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    path, problem = log_to_file((), blocker / "hawatch.log")
    assert path is None
    assert problem is not None and problem.startswith(f"cannot write the log file {blocker}")
    logging.getLogger("hawatch.sources.test").warning("lost on purpose")
    assert capsys.readouterr().err == ""
