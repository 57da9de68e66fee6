"""The audit log: one JSON line for every failover an operator triggered from hawatch.

A failover is a change to production that someone will ask about afterwards:
who asked, from which machine, which master, which sentinel, and what it
answered. Each confirmed request is appended to the log as one JSON object per
line, so the file can be read with ``jq``, ``grep`` or a log shipper.

The log lives at ``$XDG_STATE_HOME/hawatch/audit.log`` (by default
``~/.local/state/hawatch/audit.log``); ``HAWATCH_AUDIT_LOG`` names another file.
It never holds a password: the fields are names, addresses and the server's
reply, and URL passwords in them are redacted all the same. A failure to write
is raised as `AuditError`, one sentence that the screen can show; it is never
a reason to crash.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hawatch.journal import state_dir
from hawatch.settings import Secret, Settings, redact

__all__ = [
    "AUDIT_ENV",
    "AuditError",
    "append_failover",
    "audit_failover",
    "audit_log_path",
    "failover_record",
]

AUDIT_ENV = "HAWATCH_AUDIT_LOG"
"""The environment variable that names the audit log file, overriding the default."""


class AuditError(OSError):
    """The audit log could not be written, said in one sentence that names the file."""


def audit_log_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the audit log is: ``$HAWATCH_AUDIT_LOG``, else under ``$XDG_STATE_HOME``.

    An empty or relative ``XDG_STATE_HOME`` is ignored, as the XDG specification
    says, and ``~/.local/state`` is used instead.
    """
    env = os.environ if env is None else env
    named = env.get(AUDIT_ENV, "").strip()
    if named:
        return Path(named).expanduser()
    return state_dir(env) / "audit.log"


def _local_user() -> str:
    """The local login name; the numeric uid when the system cannot name it."""
    try:
        return getpass.getuser()
    except (KeyError, OSError, ImportError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def failover_record(
    *,
    master: str,
    sentinel: str,
    reply: str,
    accepted: bool,
    redis_user: str | None = None,
    now: float | None = None,
    secrets: Iterable[str | Secret | None] = (),
) -> dict[str, Any]:
    """The audit record of one failover request, ready to be written as JSON.

    `reply` is what the sentinel answered (``OK``, ``INPROG ...``) or why it did
    not; `redis_user` is the ACL user hawatch logged in as, if any. Every text
    field is passed through `redact` with `secrets`, so a password that slipped
    into an error message never reaches the file.
    """
    ts = time.time() if now is None else now

    def clean(text: str) -> str:
        return redact(text, secrets)

    record: dict[str, Any] = {
        "time": datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds"),
        "unix": round(ts, 3),
        "action": "sentinel-failover",
        "user": _local_user(),
        "host": socket.gethostname(),
        "master": clean(master),
        "sentinel": clean(sentinel),
        "reply": clean(reply),
        "accepted": accepted,
    }
    if redis_user:
        record["redis_user"] = clean(redis_user)
    return record


def append_failover(
    *,
    master: str,
    sentinel: str,
    reply: str,
    accepted: bool,
    redis_user: str | None = None,
    now: float | None = None,
    secrets: Iterable[str | Secret | None] = (),
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Append the record of one failover request to the audit log; return the file's path.

    The directory is created (owner-only) when missing and the file is created
    owner-readable only. The line is written with a single ``write`` on a file
    opened for appending, so concurrent hawatch processes never interleave
    their lines. Raises `AuditError` when the file cannot be written.
    """
    target = audit_log_path(env) if path is None else path
    record = failover_record(
        master=master,
        sentinel=sentinel,
        reply=reply,
        accepted=accepted,
        redis_user=redis_user,
        now=now,
        secrets=secrets,
    )
    line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            written = os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise AuditError(
            f"could not write the audit log {target}: {reason}; set {AUDIT_ENV} to a writable file"
        ) from error
    if written != len(line):
        raise AuditError(
            f"could not write the audit log {target}: only {written} of {len(line)} bytes "
            "were written (is the disk full?)"
        )
    return target


def audit_failover(
    settings: Settings, *, master: str, sentinel: str, reply: str, accepted: bool
) -> str | None:
    """Append a failover request made with `settings`; the problem as a sentence, or None.

    Blocking file I/O: call it off the event loop (``asyncio.to_thread``).
    """
    try:
        append_failover(
            master=master,
            sentinel=sentinel,
            reply=reply,
            accepted=accepted,
            redis_user=settings.username,
            secrets=(settings.password, settings.node_password),
        )
    except AuditError as error:
        return str(error)
    return None
