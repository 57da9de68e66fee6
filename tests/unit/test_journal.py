"""The journal: lines as `hawatch events` prints them, rotation, permissions, no secrets."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hawatch.core.events import BrokerDisconnected, SentinelMessage, TaskEvent, to_json
from hawatch.journal import Journal, JournalError, default_journal_path, read_journal, state_dir
from hawatch.settings import Secret

SECRET = "s3cr3t-Pa55"


def message(ts: float) -> SentinelMessage:
    return SentinelMessage(
        ts=ts,
        sentinel="127.0.0.1:26379",
        channel="+switch-master",
        payload="mymaster 127.0.0.1 6379 127.0.0.1 6380",
        master="mymaster",
        old="127.0.0.1:6379",
        new="127.0.0.1:6380",
    )


def test_lines_are_the_events_json_and_read_back_equal(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    events = [message(1.5), TaskEvent(ts=2.25, state="sent", uuid="t1", name="a.b", queue="q")]
    journal = Journal(path)
    for event in events:
        journal.write(event)
    journal.close()
    assert path.read_text().splitlines() == [to_json(e) for e in events]
    assert [line.event for line in read_journal(path)] == events
    assert journal.written == 2


def test_the_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "j.jsonl"
    Journal(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_rotation_keeps_at_most_keep_files_and_loses_no_line_of_the_newest(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal(path, max_bytes=2048, keep=2)
    for n in range(100):
        journal.write(message(float(n)))
    journal.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["j.jsonl", "j.jsonl.1", "j.jsonl.2"]
    for name in files:
        assert (tmp_path / name).stat().st_size <= 2048
    # Read oldest to newest: the times follow each other with no gap, ending at 99.
    times = [
        line.event.ts
        for name in ("j.jsonl.2", "j.jsonl.1", "j.jsonl")
        for line in read_journal(tmp_path / name)
        if line.event is not None
    ]
    assert times == [float(n) for n in range(100 - len(times), 100)]


def test_secrets_never_reach_the_file(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal(path, secrets=[Secret(SECRET), None])
    journal.write(BrokerDisconnected(ts=1.0, source="x", reason=f"AUTH {SECRET} refused"))
    journal.write(
        BrokerDisconnected(ts=2.0, source="x", reason=f"redis://:{SECRET}@h:6379 refused")
    )
    journal.close()
    text = path.read_text()
    assert SECRET not in text
    assert text.count("refused") == 2


def test_an_unwritable_place_is_one_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(JournalError) as caught:
        Journal(blocker / "j.jsonl")
    assert str(caught.value).startswith(f"cannot open the journal {blocker / 'j.jsonl'} (")
    assert "--journal" in str(caught.value)


def test_bad_lines_are_reported_with_their_number(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text(to_json(message(1.0)) + "\n\nnot json\n" + '{"type": "nope"}\n')
    lines = list(read_journal(path))
    assert [(line.number, line.event is None) for line in lines] == [
        (1, False),
        (3, True),
        (4, True),
    ]
    assert "not valid JSON" in (lines[1].problem or "")
    assert "unknown event type 'nope'" in (lines[2].problem or "")
    with pytest.raises(JournalError):
        list(read_journal(tmp_path / "missing.jsonl"))


def test_default_path_is_under_the_state_directory(tmp_path: Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path), "HOME": "/nonexistent"}
    assert state_dir(env) == tmp_path / "hawatch"
    path = default_journal_path(0.0, env)
    assert path.parent == tmp_path / "hawatch" / "journal"
    assert path.name.endswith(f"-{os.getpid()}.jsonl")
    assert state_dir({"XDG_STATE_HOME": "relative", "HOME": "/h"}) == Path(
        "/h/.local/state/hawatch"
    )
