"""The journal: every event, one JSON line each, to replay and report on afterwards.

The lines are exactly those `hawatch events` prints (`hawatch.core.events.to_json`),
so a journal can be read with ``jq``, replayed into the screen, or turned into
incident reports by `hawatch replay FILE --report`, which computes the same
figures the live run computed: the core takes its time from the events only.

Where: ``--journal PATH``, else a new file per run under
``$XDG_STATE_HOME/hawatch/journal/`` (``~/.local/state/hawatch/journal/``), named
after the time the run started. Each file is created mode 0600 (it names hosts,
tasks and queues). When a file passes `max_bytes` it is rotated: ``PATH`` becomes
``PATH.1``, ``PATH.1`` becomes ``PATH.2`` and so on, the oldest beyond `keep`
is removed, so a run never holds more than ``(keep + 1) * max_bytes`` on disk.

Passwords never reach the journal: events hold none, the sources redact the
sentences they put in events, and each line is redacted once more with the
settings' secrets before it is written.

A journal that cannot be written is one sentence (`JournalError`) that the
caller shows; it is never a reason to stop watching.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from hawatch.core.events import Event, from_json, to_json
from hawatch.settings import Secret, redact

__all__ = [
    "DEFAULT_KEEP",
    "DEFAULT_MAX_BYTES",
    "Journal",
    "JournalError",
    "JournalLine",
    "default_journal_path",
    "read_journal",
    "state_dir",
]

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""A file is rotated when it passes this size (64 MiB: about 200,000 task events)."""
DEFAULT_KEEP = 4
"""Rotated files kept besides the current one."""


class JournalError(OSError):
    """The journal could not be opened, written or read, said in one sentence."""


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """hawatch's state directory: ``$XDG_STATE_HOME/hawatch``, else ``~/.local/state/hawatch``.

    An empty or relative ``XDG_STATE_HOME`` is ignored, as the XDG specification says.
    """
    env = os.environ if env is None else env
    state = env.get("XDG_STATE_HOME", "").strip()
    if state and Path(state).is_absolute():
        return Path(state) / "hawatch"
    home = env.get("HOME", "").strip()
    return (Path(home) if home else Path.home()) / ".local" / "state" / "hawatch"


def default_journal_path(now: float | None = None, env: Mapping[str, str] | None = None) -> Path:
    """A new journal file for a run starting at `now`: ``journal/YYYYmmdd-HHMMSS-PID.jsonl``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    return state_dir(env) / "journal" / f"{stamp}-{os.getpid()}.jsonl"


def _why(error: OSError) -> str:
    return error.strerror or type(error).__name__


class Journal:
    """Appends events to `path` as JSON lines, rotating at `max_bytes`.

    Lines go to the operating system as they are written (line buffering), so a
    crash of hawatch loses nothing already written. Not thread-safe: one thread
    writes (the event loop's, in `Monitor.feed`).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        keep: int = DEFAULT_KEEP,
        secrets: Iterable[Secret | str | None] = (),
    ) -> None:
        if max_bytes < 1024:
            raise ValueError("the journal's size cap must be at least 1024 bytes")
        if keep < 0:
            raise ValueError("the number of rotated journal files kept cannot be negative")
        self.path = Path(path).expanduser()
        self.max_bytes = max_bytes
        self.keep = keep
        self.written = 0
        """Lines written since the journal was opened."""
        self._secrets = [s for s in secrets if s]
        self._file: IO[str] | None = None
        self._size = 0
        self._open()

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as error:
            raise JournalError(
                f"cannot open the journal {self.path} ({_why(error)}); "
                "give another file with --journal"
            ) from None
        self._file = os.fdopen(fd, "a", encoding="utf-8", buffering=1)
        self._size = os.fstat(fd).st_size

    def write(self, event: Event) -> None:
        """Append `event` as one line; rotate first when the file is full."""
        data = redact(to_json(event), self._secrets) + "\n"
        if self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
        file = self._file
        if file is None:
            raise JournalError(f"the journal {self.path} is closed")
        try:
            file.write(data)
        except OSError as error:
            raise JournalError(f"cannot write the journal {self.path} ({_why(error)})") from None
        self._size += len(data) if data.isascii() else len(data.encode("utf-8"))
        self.written += 1

    def _rotate(self) -> None:
        self.close()
        try:
            for index in range(self.keep, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{index}")
                newer = self.path.with_name(f"{self.path.name}.{index - 1}") if index > 1 else None
                source = newer if newer is not None else self.path
                if index == self.keep and older.exists():
                    older.unlink()
                if source.exists():
                    source.replace(older)
            if self.keep == 0:
                self.path.unlink(missing_ok=True)
        except OSError as error:
            raise JournalError(f"cannot rotate the journal {self.path} ({_why(error)})") from None
        self._open()

    def close(self) -> None:
        """Flush and close the file (writing again reopens nothing: it raises)."""
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()


@dataclass(frozen=True, slots=True)
class JournalLine:
    """One line read back: the event, or why the line is not one."""

    number: int
    event: Event | None
    problem: str | None


def read_journal(path: Path | str) -> Iterator[JournalLine]:
    """Every line of the journal at `path`, in order, as events (or the problem with each).

    Blank lines are skipped. A file that cannot be read raises `JournalError`.
    """
    path = Path(path).expanduser()
    try:
        stream = path.open(encoding="utf-8", errors="replace")
    except OSError as error:
        raise JournalError(f"cannot read the journal {path} ({_why(error)})") from None
    with stream:
        try:
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    yield JournalLine(number, from_json(line), None)
                except ValueError as error:
                    yield JournalLine(number, None, str(error))
        except OSError as error:
            raise JournalError(f"cannot read the journal {path} ({_why(error)})") from None
