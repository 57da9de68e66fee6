"""Where log records go while the screen is up: a file, never the terminal.

A warning logged by a source (or by redis-py, kombu, Celery) would otherwise reach
Python's last-resort handler, which writes to standard error: on the terminal the
screen is drawn on, it scribbles over the panels. While the screen runs, records
at INFO and above go to ``$XDG_STATE_HOME/hawatch/hawatch.log`` (0600, rotated at
1 MiB, 3 files kept) with every password hidden, and nothing goes to the terminal.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from collections.abc import Iterable
from pathlib import Path

from hawatch.journal import state_dir
from hawatch.settings import Secret, redact

__all__ = ["LOG_NAME", "RedactingFilter", "log_to_file"]

LOG_NAME = "hawatch.log"
MAX_BYTES = 1 << 20
BACKUPS = 3
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactingFilter(logging.Filter):
    """Hide every password (in URLs, and the given secrets) in a record's message."""

    def __init__(self, secrets: Iterable[str | Secret | None] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secret for secret in secrets if secret)

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message by its redacted text; keep every record."""
        try:
            message = record.getMessage()
        except Exception:  # a bad format string in a library: keep what can be kept
            message = str(record.msg)
        record.msg = redact(message, self.secrets)
        record.args = None
        if record.exc_info and record.exc_text is None:
            record.exc_text = redact(
                logging.Formatter().formatException(record.exc_info), self.secrets
            )
            record.exc_info = None
        return True


def log_to_file(
    secrets: Iterable[str | Secret | None] = (), path: Path | None = None
) -> tuple[Path | None, str | None]:
    """Send the log to `path` (default: the state directory's ``hawatch.log``).

    Returns the path and None, or None and why the file could not be opened (the
    log then goes nowhere rather than to the terminal). Replaces the handlers of
    the root logger; call it once, when the screen starts.
    """
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    target = path or state_dir() / LOG_NAME
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handler = logging.handlers.RotatingFileHandler(
            target, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
        )
        os.chmod(target, 0o600)
    except OSError as error:
        root.addHandler(logging.NullHandler())
        return None, f"cannot write the log file {target}: {error.strerror or error}"
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(RedactingFilter(secrets))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return target, None
