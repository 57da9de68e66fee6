"""Replays: a journal recorded live, played back through the core, gives the same figures.

The "live" run here is a `Monitor` fed a scripted crash failover with its clock
ticking once a second, writing its journal as it goes (exactly what the screen
does, without Redis). The replay reads that journal back. No sleeps, no clock.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hawatch.core.events import (
    Event,
    IncidentUpdate,
    MasterObserved,
    NodeObserved,
    ProbeResult,
    PrometheusObserved,
    SentinelMessage,
    SentinelReachable,
    SessionStarted,
    TaskEvent,
    to_json,
)
from hawatch.core.incidents import IncidentReport
from hawatch.journal import Journal, JournalError, read_journal
from hawatch.monitor import CeleryOptions, Monitor
from hawatch.replay import (
    QUIET_LEAD,
    Player,
    ReadProblems,
    opening_session,
    replay_file,
    replay_lines,
)
from hawatch.settings import SentinelAddress, Settings

T0 = 1_700_000_000.0
M = "mymaster"
OLD, NEW = "127.0.0.1:6379", "127.0.0.1:6380"
SENTINELS = ("127.0.0.1:26379", "127.0.0.1:26380", "127.0.0.1:26381")
LOST_AFTER = 20.0
SWITCH, RESUME = 16.4, 20.721
"""Seconds after T0: the first +switch-master, and the first task started after it."""
STUCK_RECEIVED = RESUME + 10.0 + 0.2
"""A task stuck since before the fault is received 0.2 s after the incident's close
deadline (resumed + 10 s), before the live clock's next tick noticed the deadline."""


def t(seconds: float) -> float:
    return T0 + seconds


def observed(at: float, sentinel: str, port: int, epoch: int) -> MasterObserved:
    return MasterObserved(
        ts=t(at),
        sentinel=sentinel,
        master=M,
        ip="127.0.0.1",
        port=port,
        epoch=epoch,
        flags=("master",),
        num_slaves=2,
        num_other_sentinels=2,
        quorum=2,
    )


def message(
    at: float, sentinel: str, channel: str, *, role: str = "master", address: str = OLD
) -> SentinelMessage:
    host, port = address.split(":")
    return SentinelMessage(
        ts=t(at),
        sentinel=sentinel,
        channel=channel,
        payload=f"{role} {M} {host} {port}",
        master=M,
        role=role,
        instance=M if role == "master" else address,
        address=address,
    )


def switch(at: float, sentinel: str) -> SentinelMessage:
    return SentinelMessage(
        ts=t(at),
        sentinel=sentinel,
        channel="+switch-master",
        payload=f"{M} 127.0.0.1 6379 127.0.0.1 6380",
        master=M,
        old=OLD,
        new=NEW,
    )


def task(at: float, state: str, uuid: str, worker: str | None = "celery@w1") -> TaskEvent:
    return TaskEvent(
        ts=t(at),
        state=state,
        uuid=uuid,
        name="shop.checkout",
        worker=None if state == "sent" else worker,
        queue="celery" if state == "sent" else None,
        via=NEW if at >= SWITCH else OLD,
    )


def crash() -> list[Event]:
    """A master crash seen by three sentinels and a Celery side with a canary: the
    events a live run receives, in arrival order (times in seconds after T0)."""
    events: list[Event] = [SentinelReachable(ts=t(0.1), sentinel=s) for s in SENTINELS]
    events += [observed(0.2, s, 6379, 0) for s in SENTINELS]
    events.append(NodeObserved(ts=t(0.3), address=OLD, role="master", offset=100))
    for n in range(8):  # healthy work before the crash
        at = 1.0 + n
        events += [
            task(at, "sent", f"ok-{n}"),
            task(at + 0.05, "received", f"ok-{n}"),
            task(at + 0.1, "started", f"ok-{n}"),
            task(at + 0.3, "succeeded", f"ok-{n}"),
            ProbeResult(ts=t(at + 0.4), probe="canary", phase="succeeded", ok=True, latency=0.3),
        ]
    events.append(task(9.5, "sent", "stuck"))  # never received until long after the switch
    # The master dies at 10 s: the canary cannot send, then the sentinels notice.
    events += [
        ProbeResult(
            ts=t(10.2), probe="canary", phase="send-failed", ok=False, detail="connection refused"
        ),
        task(11.0, "sent", "during-1"),
        task(12.0, "sent", "during-2"),
    ]
    events += [message(15.0 + 0.05 * k, s, "+sdown") for k, s in enumerate(SENTINELS)]
    events += [
        message(15.2, SENTINELS[0], "+odown"),
        message(15.25, SENTINELS[0], "+try-failover"),
        message(15.3, SENTINELS[0], "+elected-leader"),
    ]
    events += [switch(SWITCH + 0.05 * k, s) for k, s in enumerate(SENTINELS)]
    events += [observed(16.6, s, 6380, 1) for s in SENTINELS]
    events += [
        message(16.7, s, "+sdown", role="slave", address=OLD) for s in SENTINELS
    ]  # the old master is down: no demotion to wait for
    events += [
        task(17.0, "sent", "after-1"),
        task(RESUME - 0.1, "received", "during-1"),
        task(RESUME, "started", "during-1"),  # work resumes: gap = 4.321 s
        task(RESUME + 0.2, "succeeded", "during-1"),
        task(RESUME + 0.3, "received", "during-2"),
        task(RESUME + 0.4, "started", "during-2"),
        task(RESUME + 0.6, "succeeded", "during-2"),
        task(RESUME + 1.0, "received", "after-1"),  # overtakes "stuck"
        task(RESUME + 1.1, "started", "after-1"),
        ProbeResult(ts=t(RESUME + 1.2), probe="canary", phase="succeeded", ok=True, latency=0.4),
        task(STUCK_RECEIVED, "received", "stuck"),
        task(STUCK_RECEIVED + 0.1, "started", "stuck"),
        task(STUCK_RECEIVED + 0.3, "succeeded", "stuck"),
        observed(40.0, SENTINELS[0], 6380, 1),
    ]
    return events


def live_run(events: list[Event], journal: Path | None) -> Monitor:
    """Feed `events` to a monitor as a live run does: its session first, then the events
    in arrival order, with its clock ticking once a second (on whole seconds)."""
    settings = Settings(sentinels=(SentinelAddress("127.0.0.1", 26379),), masters=(M,))
    recording = Journal(journal) if journal is not None else None
    monitor = Monitor(
        settings,
        celery=CeleryOptions(lost_after=LOST_AFTER, canary_rate=1.0),
        journal=recording,
    )
    monitor.clock = lambda: T0
    monitor.configure(M)
    next_tick = T0 + 1.0
    for event in events:
        while next_tick <= event.ts:
            monitor.tick(next_tick)
            next_tick += 1.0
        monitor.feed(event)
    monitor.tick(next_tick)
    if recording is not None:
        recording.close()
    return monitor


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    path = tmp_path / "drill.jsonl"
    live_run(crash(), path)
    return path


def the_incident(reports: tuple[IncidentReport, ...]) -> IncidentReport:
    assert len(reports) == 1, reports
    return reports[0]


# --------------------------------------------------------------------------- the core


def test_the_replay_computes_the_live_figures_to_the_millisecond(journal: Path) -> None:
    live = live_run(crash(), None).incidents.reports()
    result = replay_file(journal)

    assert result.reports == live
    incident = the_incident(result.reports)
    assert incident.status == "closed"
    assert incident.switched == t(SWITCH) and incident.resumed == t(RESUME)
    assert round(incident.gap_s * 1000) == 4321  # type: ignore[operator]
    assert round(incident.outage_s * 1000) == round((RESUME - 10.2) * 1000)  # type: ignore[operator]
    assert incident.closed == t(RESUME + 10.0)
    # The stuck task was received before the live clock noticed the close: not lost.
    assert incident.lost == 0
    # Every update computed live is computed again, nothing more.
    assert result.recorded and result.differences() == 0
    assert sorted(map(to_json, result.recorded)) == sorted(map(to_json, result.recomputed))
    assert result.events == len(list(read_journal(journal)))
    assert result.problems.count == 0


def test_a_recorded_close_is_where_the_live_clock_ticked(tmp_path: Path) -> None:
    """Closing at the deadline before the next event is fed (instead of where the journal
    says the live clock noticed it) would count the stuck task lost: the replay does not."""
    path = tmp_path / "drill.jsonl"
    events = crash()
    live_run(events, path)
    closes = [
        line.event
        for line in read_journal(path)
        if isinstance(line.event, IncidentUpdate) and line.event.status == "closed"
    ]
    assert [close.ts for close in closes] == [t(STUCK_RECEIVED)]  # closed inside that event
    incident = the_incident(replay_file(path).reports)
    assert incident.lost == 0
    # Without the received event the same task is lost: the figure depends on the order.
    without = [
        e
        for e in events
        if not (isinstance(e, TaskEvent) and e.uuid == "stuck" and e.state != "sent")
    ]
    path2 = tmp_path / "lost.jsonl"
    live_run(without, path2)
    assert the_incident(replay_file(path2).reports).lost == 1


def test_the_session_shapes_the_core_before_the_first_event(journal: Path) -> None:
    session = opening_session(read_journal(journal))
    assert session.broker_master == M and session.celery
    assert session.lost_after == LOST_AFTER and session.version is not None
    result = replay_file(journal)
    assert result.runs == 1


def test_a_journal_without_a_session_line_is_replayed_with_the_celery_side_it_shows() -> None:
    events = [e for e in crash() if not isinstance(e, SessionStarted)]
    session = opening_session(events)
    assert session.celery and session.broker_master is None and session.version is None
    incident = the_incident(replay_lines(events).reports)
    assert round(incident.gap_s * 1000) == 4321  # type: ignore[operator]

    sentinel_only = [e for e in events if isinstance(e, MasterObserved | SentinelMessage)]
    assert not opening_session(sentinel_only).celery
    incident = the_incident(replay_lines(sentinel_only).reports)
    assert incident.gap_s is None and incident.note is not None and "not observed" in incident.note


def test_two_runs_appended_to_one_journal_are_replayed_each_from_its_own_start(
    tmp_path: Path,
) -> None:
    path = tmp_path / "twice.jsonl"
    live_run(crash(), path)
    later = 3600.0
    second = [dataclasses.replace(e, ts=e.ts + later) for e in crash()]
    settings = Settings(sentinels=(SentinelAddress("127.0.0.1", 26379),), masters=(M,))
    monitor = Monitor(settings, celery=CeleryOptions(lost_after=LOST_AFTER), journal=Journal(path))
    monitor.clock = lambda: T0 + later
    monitor.configure(M)
    for event in second:
        monitor.feed(event)
    monitor.tick(second[-1].ts + 1.0)
    assert monitor.journal is not None
    monitor.journal.close()

    result = replay_file(path)
    assert result.runs == 2
    first, again = result.reports
    assert first.id == again.id == f"{M}-1"  # as each live run numbered it
    assert again.switched == first.switched + later  # type: ignore[operator]
    assert round(again.gap_s * 1000) == round(first.gap_s * 1000) == 4321  # type: ignore[operator]
    assert result.differences() == 0


def test_a_replay_that_disagrees_with_the_recorded_updates_says_so(journal: Path) -> None:
    lines = list(read_journal(journal))
    tampered = []
    for line in lines:
        event = line.event
        if isinstance(event, IncidentUpdate) and event.gap_s is not None:
            event = dataclasses.replace(event, gap_s=9.0)
        tampered.append(event)
    result = replay_lines(tampered)
    assert result.differences() >= 1
    assert the_incident(result.reports).gap_s != 9.0


def test_unreadable_lines_are_counted_once_with_the_first() -> None:
    problems = ReadProblems()
    assert problems.sentence("j.jsonl") is None
    problems.note(3, "an event line is not valid JSON: Expecting value.")
    assert problems.sentence("j.jsonl") == (
        "line 3 of j.jsonl could not be read and was skipped: "
        "an event line is not valid JSON: Expecting value."
    )
    problems.note(9, "unknown event type 'x'")
    assert problems.sentence("j.jsonl") == (
        "2 lines of j.jsonl could not be read and were skipped; the first, line 3: "
        "an event line is not valid JSON: Expecting value."
    )


def test_a_session_line_the_core_cannot_use_is_skipped_as_unreadable() -> None:
    bad = SessionStarted(ts=t(0.0), broker_master=M, celery=True, lost_after=-1.0, max_tasks=0)
    events = [bad, *[e for e in crash() if not isinstance(e, SessionStarted)]]
    assert opening_session(events).lost_after != -1.0
    result = replay_lines(events)
    assert result.problems.count == 1 and result.problems.first_problem is not None
    assert "lost_after or max_tasks" in result.problems.first_problem
    assert round(the_incident(result.reports).gap_s * 1000) == 4321  # type: ignore[operator]


# --------------------------------------------------------------------------- the timeline


def lines_at(*seconds: float) -> list[Event]:
    return [SentinelReachable(ts=t(s), sentinel=SENTINELS[0]) for s in seconds]


def test_lines_are_due_at_speed_times_their_recorded_pace() -> None:
    player = Player(lines_at(0.0, 2.0, 4.0), speed=4.0)
    assert player.now(100.0) == t(0.0)
    assert [e.ts for e in player.due(100.0)] == [t(0.0)]
    assert player.due(100.4) == []  # 2 journal seconds take 0.5 s at 4x
    assert player.now(100.25) == t(1.0)  # the clock advances smoothly in between
    assert [e.ts for e in player.due(100.5)] == [t(2.0)]
    assert player.set_speed(8.0, 100.5) == 8.0
    assert [e.ts for e in player.due(100.75)] == [t(4.0)]
    assert player.ended
    assert player.now(200.0) == t(4.0)  # the clock stops at the last line


def test_the_clock_never_passes_a_line_not_handed_out() -> None:
    player = Player(lines_at(0.0, 2.0))
    player.due(0.0)
    assert player.now(10.0) == t(2.0)  # late: the render waits for the feed
    assert [e.ts for e in player.due(10.0)] == [t(2.0)]


def test_pause_stops_the_clock_and_step_hands_out_one_event() -> None:
    update = IncidentUpdate(ts=t(1.5), id=f"{M}-1", master=M, status="open", reached="fault")
    player = Player([*lines_at(0.0, 1.0), update, *lines_at(3.0, 9.0)], speed=1.0)
    player.due(0.0)
    player.pause(0.5)
    assert player.paused and player.now(0.5) == player.now(50.0) == t(0.5)
    assert player.due(50.0) == []
    assert [e.ts for e in player.step(51.0)] == [t(1.0)]
    assert player.now(52.0) == t(1.0) and player.paused
    # A step skips over recorded incident updates to the next event.
    assert [type(e).__name__ for e in player.step(53.0)] == ["IncidentUpdate", "SentinelReachable"]
    assert player.now(54.0) == t(3.0)
    player.resume(60.0)
    assert player.now(61.0) == t(4.0)


def test_a_quiet_stretch_is_cut_short_and_counted() -> None:
    player = Player(lines_at(0.0, 100.0), speed=1.0)
    player.due(0.0)
    assert player.due(0.5) == [] and player.now(0.5) == t(0.5)
    assert player.due(1.0) == []  # one second of the quiet is played, then it is cut
    assert player.now(1.0) == t(100.0 - QUIET_LEAD)
    assert player.skipped == pytest.approx(100.0 - 2 * QUIET_LEAD)
    assert [e.ts for e in player.due(2.0)] == [t(100.0)]


def test_a_short_quiet_stretch_is_played_in_full() -> None:
    player = Player(lines_at(0.0, 4.0), speed=1.0)
    player.due(0.0)
    assert player.due(3.9) == [] and player.now(3.9) == pytest.approx(t(3.9))
    assert player.skipped == 0.0


def test_a_flood_slows_the_clock_instead_of_running_ahead() -> None:
    player = Player(lines_at(*[n / 1000 for n in range(50)], 10.0), speed=1.0)
    assert len(player.due(0.0)) == 1
    first = player.due(5.0, limit=10)
    assert len(first) == 10
    assert player.now(5.0) == first[-1].ts


def test_unreadable_lines_do_not_stop_the_player(journal: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type":"nope","at":1}\n' + journal.read_text() + "{truncated\n")
    player = Player(read_journal(bad), speed=1024.0)
    handed = 0
    wall = 0.0
    while not player.ended:
        handed += len(player.due(wall))
        wall += 1.0
    assert handed == len(journal.read_text().splitlines())
    assert player.problems.count == 2 and player.problems.first_line == 1


def test_a_journal_that_cannot_be_read_on_ends_the_player_with_the_reason() -> None:
    def lines() -> Iterator[Event]:
        yield from lines_at(0.0, 1.0)
        raise JournalError("cannot read the journal j.jsonl (Input/output error)")

    player = Player(lines(), speed=1.0)
    assert len(player.due(0.0)) == 1
    assert len(player.due(1.0)) == 1
    assert player.ended
    assert player.failure == "cannot read the journal j.jsonl (Input/output error)"


# --------------------------------------------------------------------------- the command


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAWATCH_", "REDIS_ADDR"))}
    return subprocess.run(
        [sys.executable, "-m", "hawatch", "replay", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_report_prints_the_gap(journal: Path) -> None:
    result = run(str(journal), "--report")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert f"{M}-1" in result.stdout
    assert "4.321" in result.stdout


def test_report_as_json_lines_holds_the_live_figures(journal: Path) -> None:
    live = the_incident(live_run(crash(), None).incidents.reports())
    result = run(str(journal), "--json")  # --json implies --report
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["id"] == f"{M}-1" and report["status"] == "closed"
    assert report["gap_s"] == live.gap_s  # the same float, not only the same millisecond
    assert report["phases"]["switched"] == t(SWITCH)


def test_a_journal_without_incident_says_so(tmp_path: Path) -> None:
    path = tmp_path / "quiet.jsonl"
    with path.open("w") as out:
        for event in lines_at(0.0, 1.0):
            out.write(to_json(event) + "\n")
    result = run(str(path), "--report")
    assert result.returncode == 0
    assert result.stdout == "no incident in this journal.\n"
    result = run(str(path), "--json")
    assert result.returncode == 0 and result.stdout == ""
    assert result.stderr == "hawatch: warning: no incident in this journal.\n"


def test_bad_lines_are_one_warning_and_the_report_still_comes(
    journal: Path, tmp_path: Path
) -> None:
    path = tmp_path / "damaged.jsonl"
    good = journal.read_text().splitlines()
    path.write_text("\n".join([good[0], "not json", *good[1:], '{"type":"nope","at":1}']) + "\n")
    result = run(str(path), "--report")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"hawatch: warning: 2 lines of {path} could not be read and were skipped; the first, "
        "line 2: an event line is not valid JSON: Expecting value: line 1 column 1 (char 0)."
    ]
    assert "4.321" in result.stdout


def test_a_missing_file_is_one_sentence_and_status_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    result = run(str(missing), "--report")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"hawatch: error: there is no journal {missing}; ")


def test_a_file_that_is_not_a_journal_is_status_2(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\nworld\n")
    result = run(str(path), "--report")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"hawatch: error: {path} is not a hawatch journal: ")
    assert result.stdout == ""
    result = run(str(tmp_path), "--report")  # a directory
    assert result.returncode == 2 and "cannot read the journal" in result.stderr


# --------------------------------------------------------------------------- users and Prometheus

NEW_FIELDS = (
    "user_resumed",
    "user_gap_s",
    "user_failed",
    "user_outage_s",
    "prometheus_seen",
    "prometheus_lag_s",
    "http_probed",
    "prometheus_watched",
)


def test_a_journal_from_before_http_probes_and_prometheus_replays_as_before(
    journal: Path, tmp_path: Path
) -> None:
    """Its incident lines lack the users' and Prometheus's fields: the replay computes the
    same updates (no difference said) and prints the same report, without those figures."""
    old = tmp_path / "old.jsonl"
    with old.open("w") as out:
        for line in journal.read_text().splitlines():
            data = json.loads(line)
            if data["type"] == "incident":
                for name in NEW_FIELDS:
                    data.pop(name)
            out.write(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n")
    before, after = replay_file(journal), replay_file(old)
    assert after.recorded and after.differences() == 0
    assert after.reports == before.reports
    report = the_incident(after.reports)
    assert not report.http_probed and not report.prometheus_watched
    shown = run(str(old), "--report")
    assert shown.returncode == 0 and shown.stderr == ""
    lines, recorded = shown.stdout.splitlines(), run(str(journal), "--report").stdout.splitlines()
    end = next(n for n, line in enumerate(lines) if line.startswith("settings    journal: "))
    assert lines[:end] == recorded[:end] and lines[-1] == recorded[-1]
    assert "users" not in shown.stdout and "prometheus" not in shown.stdout
    data = json.loads(run(str(old), "--json").stdout)
    assert not [key for key in data if key.startswith(("user_", "prometheus_"))]


HEALTH = "http GET 127.0.0.1:8801/health"


def with_users() -> list[Event]:
    """`crash` with an HTTP probe every half second: failing from 10 s (the crash) until
    a second after the switch."""
    users = [
        ProbeResult(
            ts=t(n / 2),
            probe=HEALTH,
            phase="failed" if 10.0 <= n / 2 < SWITCH + 1.0 else "ok",
            ok=not 10.0 <= n / 2 < SWITCH + 1.0,
            latency=0.01,
        )
        for n in range(2, 2 * 40)
    ]
    # Prometheus scrapes slowly: it shows the new master only after the close.
    scraped = [
        PrometheusObserved(ts=t(at), master=M, address=OLD if at < 35 else NEW)
        for at in (5.0, 20.0, 35.0)
    ]
    return sorted([*crash(), *users, *scraped], key=lambda event: event.ts)


def test_a_journal_with_http_probes_replays_the_users_resume(tmp_path: Path) -> None:
    path = tmp_path / "users.jsonl"
    live = the_incident(live_run(with_users(), path).incidents.reports())
    assert live.http_probed and live.user_failed == t(10.0)
    assert live.user_resumed == t(17.5) and round(live.user_gap_s * 1000) == 1100  # type: ignore[operator]
    assert live.closed == t(RESUME + 10.0) and live.prometheus_seen == t(35.0)  # a late figure
    result = replay_file(path)
    assert result.differences() == 0 and result.reports == (live,)
    late = [u for u in result.recorded if u.prometheus_seen is not None]
    assert [(u.status, u.reached) for u in late] == [("closed", None)]
    shown = run(str(path), "--report")
    assert "users       gap 1.100 s (first successful HTTP probe − switched)" in shown.stdout
    # A journal without its session line: HTTP probes alone are not a Celery side.
    probes_only = [e for e in with_users() if isinstance(e, ProbeResult) and e.probe == HEALTH]
    assert opening_session(probes_only).celery is False
    assert opening_session(crash()).celery is True
