"""The audit log: where it is, what one line holds, and that a failure is a sentence."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime
from pathlib import Path

import pytest

from hawatch.audit import AUDIT_ENV, AuditError, append_failover, audit_log_path, failover_record
from hawatch.settings import Secret

PASSWORD = "s3cr3t-pw-4f1e"


def test_path_defaults_to_the_xdg_state_directory(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    assert audit_log_path(env) == tmp_path / ".local" / "state" / "hawatch" / "audit.log"
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    assert audit_log_path(env) == tmp_path / "state" / "hawatch" / "audit.log"


def test_a_relative_or_empty_xdg_state_home_is_ignored(tmp_path: Path) -> None:
    default = tmp_path / ".local" / "state" / "hawatch" / "audit.log"
    assert audit_log_path({"HOME": str(tmp_path), "XDG_STATE_HOME": "state"}) == default
    assert audit_log_path({"HOME": str(tmp_path), "XDG_STATE_HOME": ""}) == default


def test_hawatch_audit_log_overrides_the_path(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path), AUDIT_ENV: "~/x/a.log"}
    assert audit_log_path(env) == Path("~/x/a.log").expanduser()
    env[AUDIT_ENV] = str(tmp_path / "named.log")
    assert audit_log_path(env) == tmp_path / "named.log"
    env[AUDIT_ENV] = "  "
    assert audit_log_path(env) == tmp_path / "hawatch" / "audit.log"


def test_the_environment_is_read_when_none_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(AUDIT_ENV, str(tmp_path / "env.log"))
    assert audit_log_path() == tmp_path / "env.log"


def test_a_record_says_who_where_what_and_the_reply() -> None:
    record = failover_record(
        master="mymaster",
        sentinel="127.0.0.1:26379",
        reply="OK",
        accepted=True,
        redis_user="operator",
        now=1_700_000_000.25,
    )
    assert record["time"] == "2023-11-14T22:13:20.250+00:00"
    assert datetime.fromisoformat(record["time"]).timestamp() == 1_700_000_000.25
    assert record["unix"] == 1_700_000_000.25
    assert record["user"] and record["host"]
    assert (record["master"], record["sentinel"], record["reply"]) == (
        "mymaster",
        "127.0.0.1:26379",
        "OK",
    )
    assert record["accepted"] is True
    assert record["redis_user"] == "operator"
    assert record["action"] == "sentinel-failover"


def test_a_password_never_reaches_the_log(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    append_failover(
        master="mymaster",
        sentinel="127.0.0.1:26379",
        reply=f"ERROR AUTH failed for redis://op:{PASSWORD}@127.0.0.1:26379 with {PASSWORD}",
        accepted=False,
        secrets=(Secret(PASSWORD), None),
        path=path,
    )
    text = path.read_text()
    assert PASSWORD not in text
    assert "******" in text


def test_each_failover_is_one_json_line_appended(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "audit.log"
    env = {AUDIT_ENV: str(path)}
    first = append_failover(
        master="mymaster", sentinel="127.0.0.1:26379", reply="OK", accepted=True, env=env
    )
    append_failover(
        master="mymaster",
        sentinel="127.0.0.1:26379",
        reply="INPROG Failover already in progress",
        accepted=False,
        env=env,
    )
    assert first == path
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    records = [json.loads(line) for line in lines]
    assert [r["reply"] for r in records] == ["OK", "INPROG Failover already in progress"]
    assert [r["accepted"] for r in records] == [True, False]
    # Only the owner may read who failed over what.
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def test_an_unwritable_log_is_one_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(AuditError) as error:
        append_failover(
            master="mymaster",
            sentinel="127.0.0.1:26379",
            reply="OK",
            accepted=True,
            path=blocker / "audit.log",
        )
    message = str(error.value)
    assert message.startswith(f"could not write the audit log {blocker / 'audit.log'}: ")
    assert AUDIT_ENV in message
    assert "\n" not in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_directory_is_an_audit_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(AuditError, match="Permission denied"):
            append_failover(
                master="m", sentinel="127.0.0.1:1", reply="OK", accepted=True, path=locked / "a"
            )
    finally:
        locked.chmod(0o700)


def test_a_directory_in_place_of_the_file_is_an_audit_error(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match="Is a directory"):
        append_failover(
            master="m", sentinel="127.0.0.1:1", reply="OK", accepted=True, path=tmp_path
        )
