"""The incident model: scripted event lists (no sleeps, no clock) and hypothesis fuzzing.

Times are real Unix seconds with millisecond parts: the gap and the outage must
come out exact to the millisecond of the scripted times.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hawatch.core.events import (
    BlindInfo,
    BrokerConnected,
    BrokerDisconnected,
    Event,
    FailoverRequested,
    IncidentUpdate,
    MasterObserved,
    NodeObserved,
    NodeUnreachable,
    ProbeResult,
    PrometheusObserved,
    PrometheusUnreachable,
    SentinelMessage,
    SwitchInfo,
    TaskEvent,
    from_json,
    to_json,
)
from hawatch.core.incidents import PHASES, IncidentModel, IncidentReport
from hawatch.core.tasks import TaskTracker

T0 = 1_700_000_000.0
M = "mymaster"
A = "127.0.0.1:6380"
B = "127.0.0.1:6381"
C = "127.0.0.1:6382"
S1, S2, S3 = "127.0.0.1:26379", "127.0.0.1:26380", "127.0.0.1:26381"
MS = 1e-3


def t(seconds: float) -> float:
    """A scripted time: `seconds` after T0."""
    return T0 + seconds


def msg(
    at: float,
    channel: str,
    *,
    sentinel: str = S1,
    role: str = "master",
    address: str = A,
    master: str = M,
    detail: str | None = None,
) -> SentinelMessage:
    ip, port = address.rsplit(":", 1)
    instance = master if role == "master" else address
    payload = f"{role} {instance} {ip} {port}"
    if role != "master":
        payload += f" @ {master} 127.0.0.1 6381"
    if detail:
        payload += f" {detail}"
    return SentinelMessage(
        ts=t(at),
        sentinel=sentinel,
        channel=channel,
        payload=payload,
        master=master,
        role=role,
        instance=instance,
        address=address,
        detail=detail,
    )


def switch(
    at: float, old: str = A, new: str = B, *, sentinel: str = S1, master: str = M
) -> SentinelMessage:
    o_ip, o_port = old.rsplit(":", 1)
    n_ip, n_port = new.rsplit(":", 1)
    return SentinelMessage(
        ts=t(at),
        sentinel=sentinel,
        channel="+switch-master",
        payload=f"{master} {o_ip} {o_port} {n_ip} {n_port}",
        master=master,
        old=old,
        new=new,
    )


def task(
    at: float,
    state: str,
    uuid: str = "t1",
    *,
    worker: str | None = "w1",
    via: str | None = None,
    queue: str | None = None,
) -> TaskEvent:
    return TaskEvent(
        ts=t(at),
        state=state,
        uuid=uuid,
        worker=None if state == "sent" else worker,
        via=via,
        queue=queue,
    )


def requested(at: float, master: str = M, accepted: bool = True) -> FailoverRequested:
    return FailoverRequested(
        ts=t(at),
        master=master,
        sentinel=S1,
        reply="OK" if accepted else "INPROG",
        accepted=accepted,
    )


def probe(at: float, phase: str, ok: bool) -> ProbeResult:
    return ProbeResult(ts=t(at), probe="canary", phase=phase, ok=ok, task_id="hawatch-canary-1")


def feed(model: IncidentModel, events: list[Any]) -> list[IncidentUpdate]:
    updates: list[IncidentUpdate] = []
    for event in events:
        updates.extend(model.apply(event))
    return updates


def only(model: IncidentModel) -> IncidentReport:
    [report] = model.reports()
    return report


def reached(updates: list[IncidentUpdate]) -> list[str | None]:
    return [u.reached for u in updates]


def close_to(value: float | None, expected: float) -> bool:
    return value is not None and value == pytest.approx(expected, abs=MS)


# -- the scripts ---------------------------------------------------------------------

CRASH = [
    msg(0.0, "+sdown", sentinel=S1),
    msg(0.1, "+sdown", sentinel=S2),
    msg(0.2, "+sdown", sentinel=S3),
    msg(0.3, "+odown", sentinel=S1, detail="#quorum 2/2"),
    msg(0.5, "+try-failover", sentinel=S1),
    msg(0.6, "+elected-leader", sentinel=S1),
    switch(1.0, sentinel=S1),
    switch(1.05, sentinel=S2),
    switch(1.2, sentinel=S3),
    msg(1.3, "+sdown", role="slave", address=A, sentinel=S1),  # the old master, still dead
    task(14.123, "started", "t1", worker="w1"),
    task(14.5, "succeeded", "t1", worker="w1"),
    task(15.5, "started", "t2", worker="w2"),
]


def test_crash_phases_gap_and_outage_exact_to_the_millisecond() -> None:
    model = IncidentModel()
    updates = feed(model, CRASH)
    assert reached(updates) == ["fault", "detected", "elected", "switched", "resumed"]
    assert {u.id for u in updates} == {"mymaster-1"}
    report = only(model)
    assert report.status == "open"
    assert report.fault == t(0.0)
    assert report.detected == t(0.3)
    assert report.elected == t(0.5)
    assert report.switched == t(1.0)
    assert report.resumed == t(14.123)
    assert (report.old_master, report.new_master) == (A, B)
    assert close_to(report.gap_s, 13.123)
    assert close_to(report.outage_s, 14.123)
    assert report.workers == (("w1", t(14.123)), ("w2", t(15.5)))
    # the old master is down: nothing to wait for, no split brain
    assert report.demoted is None and report.split_brain_s is None
    assert report.counting == ()


def test_crash_closes_stable_after_the_resume_at_the_deadline_itself() -> None:
    model = IncidentModel(stable_after=10.0)
    feed(model, CRASH)
    assert model.tick(t(24.0)) == []
    [update] = model.tick(t(30.0))  # noticed late: the close time is still the deadline
    assert update.reached == "closed" and update.status == "closed"
    assert update.closed == t(24.123)
    assert update.ts == t(30.0)
    assert close_to(update.gap_s, 13.123) and close_to(update.outage_s, 14.123)
    snap = model.snapshot(t(31.0))
    assert snap.open == ()
    [closed] = snap.history
    assert closed.status == "closed" and closed.closed == t(24.123)
    assert model.tick(t(99.0)) == []


def test_forced_failover_has_no_detected_phase_and_waits_for_the_demotion() -> None:
    model = IncidentModel(stable_after=10.0)
    events = [
        requested(0.0),
        msg(0.002, "+try-failover"),
        msg(0.004, "+elected-leader"),
        switch(1.1),
        switch(1.15, sentinel=S2),
        task(1.2, "started", "t1", via=B),
        task(1.3, "succeeded", "t1", via=B),
        msg(11.0, "+convert-to-slave", role="slave", address=A),
    ]
    updates = feed(model, events)
    assert reached(updates) == ["fault", "elected", "switched", "resumed", "demoted"]
    report = only(model)
    assert report.detected is None
    assert report.fault == t(0.0) and report.elected == t(0.002)
    assert close_to(report.gap_s, 0.1) and close_to(report.outage_s, 1.2)
    assert report.demoted == t(11.0)
    assert close_to(report.split_brain_s, 9.9)
    # stable: 10 s after the later of the resume and the demotion
    assert model.tick(t(20.99)) == []
    [closed] = model.tick(t(21.0))
    assert closed.closed == t(21.0)
    assert closed.demoted == t(11.0)


def test_graceful_failover_waits_for_a_late_demotion_before_closing() -> None:
    model = IncidentModel(stable_after=10.0)
    feed(model, [requested(0.0), switch(1.0), task(1.2, "started")])
    assert model.tick(t(11.2)) == []  # stable, but the old master still takes writes
    live = model.snapshot(t(12.0)).open[0]
    assert "split_brain_s" in live.counting and close_to(live.split_brain_s, 11.0)
    updates = model.apply(NodeObserved(ts=t(13.5), address=A, role="slave", master_address=B))
    assert reached(updates) == ["demoted"]
    assert close_to(updates[-1].split_brain_s, 12.5)
    [closed] = model.tick(t(23.5))
    assert closed.closed == t(23.5)


def test_an_old_master_never_demoted_is_given_up_after_demote_wait_with_a_note() -> None:
    model = IncidentModel(stable_after=10.0, demote_wait=60.0)
    feed(model, [requested(0.0), switch(1.0), task(1.2, "started")])
    assert model.tick(t(60.9)) == []
    [closed] = model.tick(t(61.0))
    assert closed.closed == t(61.0)
    assert closed.demoted is None and closed.split_brain_s is None
    assert closed.note is not None and "not seen demoted" in closed.note and A in closed.note


def test_an_old_master_that_comes_back_after_a_crash_is_waited_for() -> None:
    model = IncidentModel(stable_after=10.0)
    feed(model, CRASH)
    # it returns before the incident closed: it says master until converted
    feed(model, [msg(20.0, "-sdown", role="slave", address=A)])
    assert model.tick(t(24.2)) == []
    updates = feed(model, [msg(21.0, "+convert-to-slave", role="slave", address=A)])
    assert reached(updates) == ["demoted"]
    assert model.tick(t(30.9)) == []
    [closed] = model.tick(t(31.0))
    assert closed.closed == t(31.0)
    assert closed.demoted == t(21.0)
    assert close_to(closed.split_brain_s, 20.0)  # from the switch: it was down for most of it


# -- aborts and faults without a failover ---------------------------------------------


def test_an_aborted_failover_stays_open_until_the_master_comes_back() -> None:
    model = IncidentModel(stable_after=10.0)
    events = [
        msg(0.0, "+sdown"),
        msg(0.5, "+odown", detail="#quorum 2/2"),
        msg(1.0, "+try-failover"),
        msg(5.0, "-failover-abort-no-good-slave"),
    ]
    updates = feed(model, events)
    assert reached(updates) == ["fault", "detected", "elected", None]
    assert updates[-1].aborted is True
    assert model.tick(t(1000.0)) == []
    report = model.snapshot(t(1000.0)).open[0]
    assert report.aborted and report.note is not None
    assert report.note.startswith("failover aborted: no replica could be promoted.")
    assert close_to(report.outage_s, 1000.0) and report.counting == ("outage_s",)
    feed(model, [msg(1200.25, "-sdown")])
    assert model.tick(t(1210.0)) == []
    [closed] = model.tick(t(1210.25))
    assert closed.aborted and closed.gap_s is None
    assert close_to(closed.outage_s, 1200.25)
    assert closed.note is not None and "master came back without a failover" in closed.note


def test_a_forced_failover_that_aborts_never_lost_its_master() -> None:
    model = IncidentModel(stable_after=10.0)
    feed(
        model,
        [requested(0.0), msg(0.1, "+try-failover"), msg(3.0, "-failover-abort-no-good-slave")],
    )
    [closed] = model.tick(t(13.0))
    assert closed.closed == t(13.0) and closed.aborted
    assert close_to(closed.outage_s, 3.0)


def test_an_abort_followed_by_a_switch_is_not_aborted() -> None:
    model = IncidentModel()
    feed(
        model,
        [
            msg(0.0, "+sdown"),
            msg(0.3, "+odown"),
            msg(0.5, "+try-failover", sentinel=S2),
            msg(10.5, "-failover-abort-not-elected", sentinel=S2),
            switch(11.0),
            task(11.5, "started"),
        ],
    )
    report = only(model)
    assert not report.aborted
    assert report.note is not None and "attempt aborted" in report.note
    assert close_to(report.gap_s, 0.5)


def test_failover_end_for_timeout_is_noted_not_an_abort() -> None:
    model = IncidentModel()
    feed(model, [msg(0.0, "+sdown"), msg(180.0, "+failover-end-for-timeout"), switch(180.1)])
    report = only(model)
    assert not report.aborted and report.switched == t(180.1)
    assert report.note is not None and "timed out" in report.note


def test_fault_without_failover_closes_when_the_master_comes_back() -> None:
    model = IncidentModel(stable_after=10.0)
    updates = feed(
        model,
        [
            msg(0.0, "+sdown", sentinel=S1),
            msg(0.2, "+sdown", sentinel=S2),
            msg(3.5, "-sdown", sentinel=S1),
            msg(3.6, "-sdown", sentinel=S2),
        ],
    )
    assert reached(updates) == ["fault", None]  # None: back
    [closed] = model.tick(t(13.5))
    assert closed.switched is None and closed.gap_s is None
    assert close_to(closed.outage_s, 3.5)
    assert closed.note == "master came back without a failover."


def test_a_master_that_flaps_within_stable_after_stays_one_incident() -> None:
    model = IncidentModel(stable_after=10.0)
    feed(
        model,
        [msg(0.0, "+sdown"), msg(2.0, "-sdown"), msg(6.0, "+sdown"), msg(7.25, "-sdown")],
    )
    assert model.tick(t(12.0)) == []
    [closed] = model.tick(t(17.25))
    assert close_to(closed.outage_s, 7.25)
    assert closed.id == "mymaster-1"


# -- several failovers -----------------------------------------------------------------


def test_a_second_failover_during_the_first_is_one_incident_gap_from_the_last_switch() -> None:
    model = IncidentModel(stable_after=10.0)
    events = [
        msg(0.0, "+sdown"),
        msg(0.4, "+odown"),
        msg(0.6, "+elected-leader"),
        switch(1.0, A, B),
        msg(3.0, "+sdown", address=B),  # the new master fails too
        msg(3.2, "+odown", address=B),
        switch(6.0, B, C),
        task(8.25, "started", "t1"),
    ]
    updates = feed(model, events)
    assert reached(updates) == ["fault", "detected", "elected", "switched", "switched", "resumed"]
    report = only(model)
    assert report.id == "mymaster-1"
    assert report.switches == (SwitchInfo(t(1.0), A, B), SwitchInfo(t(6.0), B, C))
    assert (report.old_master, report.new_master) == (A, C)
    assert report.switched == t(6.0) and report.detected == t(0.4)
    assert close_to(report.gap_s, 2.25) and close_to(report.outage_s, 8.25)


def test_work_between_two_switches_does_not_count_as_the_resume() -> None:
    model = IncidentModel(stable_after=10.0)
    feed(
        model,
        [
            msg(0.0, "+sdown"),
            switch(1.0, A, B),
            task(2.0, "started", "t1", worker="w1"),
            msg(4.0, "+sdown", address=B),
            switch(5.0, B, C),
        ],
    )
    live = model.snapshot(t(6.0)).open[0]
    assert live.resumed is None and live.workers == ()
    assert close_to(live.gap_s, 1.0) and "gap_s" in live.counting
    feed(model, [task(7.5, "started", "t2", worker="w2")])
    report = only(model)
    assert report.resumed == t(7.5) and report.workers == (("w2", t(7.5)),)
    assert close_to(report.gap_s, 2.5)


def test_a_new_fault_after_the_close_opens_a_new_incident() -> None:
    model = IncidentModel(stable_after=10.0)
    feed(model, CRASH)
    # an event past the deadline closes the first, then opens the second
    updates = feed(model, [msg(100.0, "+sdown", address=B)])
    assert [(u.id, u.reached) for u in updates] == [
        ("mymaster-1", "closed"),
        ("mymaster-2", "fault"),
    ]
    assert updates[0].closed == t(24.123)
    assert updates[1].old_master == B


# -- copies, order, staleness ------------------------------------------------------------


def test_copies_from_three_sentinels_stamp_each_phase_once_from_the_first() -> None:
    model = IncidentModel()
    events: list[Any] = []
    for at, channel in [(0.0, "+sdown"), (0.3, "+odown"), (0.6, "+try-failover")]:
        for offset, sentinel in [(0.0, S1), (0.05, S2), (0.09, S3)]:
            events.append(msg(at + offset, channel, sentinel=sentinel))
    for offset, sentinel in [(0.0, S1), (0.01, S2), (0.4, S3)]:
        events.append(switch(1.0 + offset, sentinel=sentinel))
    events.append(task(2.0, "started"))
    for offset, sentinel in [(0.0, S1), (0.2, S2), (0.3, S3)]:
        events.append(msg(9.0 + offset, "+convert-to-slave", role="slave", sentinel=sentinel))
    updates = feed(model, events)
    assert reached(updates) == ["fault", "detected", "elected", "switched", "resumed", "demoted"]
    report = only(model)
    assert (report.fault, report.detected, report.elected) == (t(0.0), t(0.3), t(0.6))
    assert report.switches == (SwitchInfo(t(1.0), A, B),)
    assert report.demoted == t(9.0)
    assert close_to(report.gap_s, 1.0) and close_to(report.split_brain_s, 8.0)


def test_out_of_order_arrival_gives_the_earliest_evidence() -> None:
    model = IncidentModel()
    events = [
        task(14.123, "started", "t1", worker="w1"),  # before the switch it follows
        switch(1.2, sentinel=S3),
        msg(0.3, "+odown"),  # after the switch, with an earlier time
        switch(1.0, sentinel=S1),
        msg(0.2, "+sdown", sentinel=S3),
        msg(0.0, "+sdown", sentinel=S1),
        msg(0.5, "+try-failover"),
    ]
    feed(model, events)
    report = only(model)
    assert (report.fault, report.detected, report.elected) == (t(0.0), t(0.3), t(0.5))
    assert report.switched == t(1.0) and report.resumed == t(14.123)
    assert close_to(report.gap_s, 13.123) and close_to(report.outage_s, 14.123)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order=st.permutations(list(range(len(CRASH)))))
def test_any_arrival_order_of_the_crash_gives_the_same_incident(order: list[int]) -> None:
    ordered = IncidentModel()
    feed(ordered, CRASH)
    model = IncidentModel()
    feed(model, [CRASH[i] for i in order])
    want, got = only(ordered), only(model)
    assert got.phases == want.phases
    assert (got.gap_s, got.outage_s, got.old_master, got.new_master) == (
        want.gap_s,
        want.outage_s,
        want.old_master,
        want.new_master,
    )
    assert got.workers == want.workers
    assert got.switches == want.switches


def test_a_second_switch_that_arrives_before_the_first_is_chained() -> None:
    model = IncidentModel()
    known = MasterObserved(ts=t(-9.0), sentinel=S1, master=M, ip="127.0.0.1", port=6380, epoch=1)
    feed(
        model,
        [known, msg(0.0, "+sdown"), switch(6.0, B, C), switch(1.0, A, B), task(7.0, "started")],
    )
    report = only(model)
    assert report.switches == (SwitchInfo(t(1.0), A, B), SwitchInfo(t(6.0), B, C))
    assert close_to(report.gap_s, 1.0)


def test_a_stale_switch_never_opens_an_incident() -> None:
    model = IncidentModel(stable_after=10.0)
    feed(model, CRASH)
    model.tick(t(30.0))
    # a restarted sentinel replays the old switch, later
    assert feed(model, [switch(40.0, A, B, sentinel=S2)]) == []
    # the master moves on to C; then the replay of A -> B again
    feed(model, [msg(100.0, "+sdown", address=B), switch(101.0, B, C), task(102.0, "started")])
    model.tick(t(200.0))
    assert feed(model, [switch(300.0, A, B, sentinel=S3)]) == []
    assert model.snapshot(t(301.0)).open == ()
    assert [r.id for r in model.reports()] == ["mymaster-1", "mymaster-2"]
    # and the current master is still C: a fault of C is a fault, one of B is not
    assert feed(model, [msg(400.0, "+sdown", address=B)]) == []
    assert reached(feed(model, [msg(401.0, "+sdown", address=C)])) == ["fault"]


def test_a_lagging_sentinel_about_the_old_master_after_the_switch_is_ignored() -> None:
    model = IncidentModel(stable_after=10.0)
    feed(model, [*CRASH, msg(16.0, "+sdown", sentinel=S2, address=A)])
    [closed] = model.tick(t(24.123))
    assert closed.closed == t(24.123)


def test_late_copies_after_the_close_are_about_the_closed_incident() -> None:
    model = IncidentModel(stable_after=10.0)
    feed(model, [msg(0.0, "+sdown"), msg(2.0, "-sdown")])
    model.tick(t(12.0))
    assert feed(model, [msg(0.1, "+sdown", sentinel=S2)]) == []
    assert len(model.reports()) == 1


def test_the_topology_at_a_higher_epoch_is_a_switch_and_the_message_moves_it_earlier() -> None:
    model = IncidentModel()

    def observed(at: float, port: int, epoch: int, flags: tuple[str, ...] = ()) -> MasterObserved:
        return MasterObserved(
            ts=t(at), sentinel=S1, master=M, ip="127.0.0.1", port=port, epoch=epoch, flags=flags
        )

    feed(
        model,
        [
            observed(-5.0, 6380, 3),
            msg(0.0, "+sdown"),
            observed(0.9, 6380, 4, ("failover_in_progress",)),  # the leader, mid-failover
            observed(2.0, 6381, 4),
            observed(2.1, 6380, 3),  # a lagging sentinel
        ],
    )
    report = only(model)
    assert report.switches == (SwitchInfo(t(2.0), A, B),)
    feed(model, [switch(1.0, sentinel=S2), task(1.5, "started")])
    report = only(model)
    assert report.switches == (SwitchInfo(t(1.0), A, B),)
    assert close_to(report.gap_s, 0.5)


def test_a_switch_the_topology_saw_first_still_opens_an_incident() -> None:
    model = IncidentModel()
    feed(
        model,
        [
            MasterObserved(ts=t(0.0), sentinel=S1, master=M, ip="127.0.0.1", port=6380, epoch=3),
            MasterObserved(ts=t(1.5), sentinel=S2, master=M, ip="127.0.0.1", port=6381, epoch=4),
        ],
    )
    assert model.reports() == ()
    feed(model, [switch(1.0), task(2.0, "started")])
    report = only(model)
    assert report.fault == t(1.0) and report.switched == t(1.0)
    assert close_to(report.gap_s, 1.0)


# -- split brain ------------------------------------------------------------------------


def test_split_brain_results_at_risk_via_the_old_master() -> None:
    model = IncidentModel(stable_after=10.0)
    events = [
        requested(0.0),
        task(0.5, "succeeded", "before", via=A),  # before the switch: safe
        task(2.0, "succeeded", "early", via=A),  # arrives before the switch it follows
        switch(1.0),
        task(1.2, "started", "t1", via=B),
        task(3.0, "succeeded", "t1", via=B),  # on the new master: safe
        task(4.0, "succeeded", "t2", via=A),
        task(5.0, "succeeded", "t2", via=A),  # the same task again: counted once
        task(6.0, "succeeded", "t3", via=A),
        task(7.0, "failed", "t4", via=A),  # no result to lose
        msg(11.5, "+convert-to-slave", role="slave"),
        task(11.0, "succeeded", "late", via=A),  # arrives after the demotion, ran before
        task(11.6, "succeeded", "after", via=A),  # read after the demotion
    ]
    feed(model, events)
    report = only(model)
    assert report.results_at_risk == 4  # early, t2, t3, late
    assert set(report.at_risk_ids) == {"early", "t2", "t3", "late"}
    assert report.demoted == t(11.5)
    assert close_to(report.split_brain_s, 10.5)
    assert close_to(report.gap_s, 0.2)
    [closed] = model.tick(t(21.5))
    assert closed.results_at_risk == 4 and closed.closed == t(21.5)
    assert model.reports()[0].at_risk_ids == report.at_risk_ids
    assert closed.ts == t(21.5)
    assert report.to_dict()["tasks"]["results_at_risk"] == 4


GRACEFUL = [
    requested(0.0),
    msg(0.002, "+try-failover"),
    switch(1.0),
    switch(1.02, sentinel=S2),
    task(0.5, "succeeded", "before", via=A),
    task(1.2, "started", "t1", via=B),
    task(2.0, "succeeded", "t2", via=A),
    task(2.5, "succeeded", "t2", via=A),
    task(3.0, "succeeded", "t3", via=A),
    task(4.0, "succeeded", "t1", via=B),
    msg(11.5, "+convert-to-slave", role="slave"),
    NodeObserved(ts=t(12.0), address=A, role="slave", master_address=B),
    task(11.0, "succeeded", "t4", via=A),
    task(11.6, "succeeded", "t5", via=A),
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order=st.permutations(list(range(len(GRACEFUL)))))
def test_any_arrival_order_of_a_graceful_failover_gives_the_same_split_brain(
    order: list[int],
) -> None:
    model = IncidentModel(stable_after=10.0)
    feed(model, [GRACEFUL[i] for i in order])
    report = only(model)
    assert report.phases == {
        "fault": t(0.0),
        "detected": None,
        "elected": t(0.002),
        "switched": t(1.0),
        "resumed": t(1.2),
        "demoted": t(11.5),
        "closed": None,
    }
    assert report.results_at_risk == 3  # t2, t3, t4
    assert close_to(report.split_brain_s, 10.5) and close_to(report.gap_s, 0.2)
    [closed] = model.tick(t(21.5))
    assert closed.closed == t(21.5)


# -- the Celery side ----------------------------------------------------------------------


def test_a_probe_opens_an_incident_only_for_the_brokers_master() -> None:
    model = IncidentModel(stable_after=10.0, broker_master=M)
    feed(
        model,
        [
            msg(-10.0, "+sdown", master="cache", address=C),
            msg(-9.0, "-sdown", master="cache", address=C),
        ],
    )
    model.tick(t(5.0))
    updates = feed(
        model,
        [
            probe(50.0, "send-failed", False),
            probe(50.5, "send-failed", False),
            probe(51.0, "send-failed", False),
        ],
    )
    assert [(u.master, u.reached) for u in updates] == [(M, "fault")]
    # The canary's round trip ends: its task event, and the probe result read from it.
    feed(
        model,
        [
            probe(52.0, "failed", False),
            task(53.0, "succeeded", "hawatch-canary-1"),
            probe(53.0, "succeeded", True),
        ],
    )
    [closed] = model.tick(t(63.0))
    assert closed.master == M and close_to(closed.outage_s, 3.0)
    assert closed.note == "the canary recovered without a failover."


def test_a_probe_without_a_known_broker_master_is_ignored_when_there_are_several() -> None:
    model = IncidentModel()
    feed(
        model,
        [
            msg(0.0, "+sdown", master="cache", address=C),
            msg(0.5, "-sdown", master="cache", address=C),
        ],
    )
    model.tick(t(100.0))
    feed(model, [msg(101.0, "+sdown", master=M), msg(101.5, "-sdown", master=M)])
    model.tick(t(200.0))
    assert feed(model, [probe(300.0, "send-failed", False)]) == []
    model.broker_master = M  # the Monitor chose it later
    assert reached(feed(model, [probe(301.0, "send-failed", False)])) == ["fault"]


def test_a_master_that_is_not_the_brokers_closes_without_a_gap() -> None:
    model = IncidentModel(stable_after=10.0, broker_master="other")
    feed(model, CRASH[:-3])
    [closed] = model.tick(t(11.0))
    assert closed.closed == t(11.0)
    assert closed.gap_s is None and closed.outage_s is None and closed.resumed is None
    assert closed.note is not None and "not observed" in closed.note


def test_without_a_celery_side_an_incident_closes_after_its_switch() -> None:
    model = IncidentModel(stable_after=10.0, work_observed=False)
    feed(model, CRASH[:-3])
    [closed] = model.tick(t(11.0))
    assert closed.gap_s is None and closed.note is not None and "no Celery side" in closed.note


def test_a_failover_that_never_resumes_stays_open_and_keeps_counting() -> None:
    model = IncidentModel(stable_after=10.0)
    feed(model, CRASH[:-3])
    assert model.tick(t(1_000_000.0)) == []
    live = model.snapshot(t(61.0)).open[0]
    assert live.status == "open" and live.resumed is None
    assert close_to(live.gap_s, 60.0) and close_to(live.outage_s, 61.0)
    assert live.counting == ("gap_s", "outage_s")
    later = model.snapshot(t(121.0)).open[0]
    assert close_to(later.gap_s, 120.0)
    # the report for a replay counts up to the latest time seen
    [report] = model.reports()
    assert report.status == "open" and close_to(report.gap_s, 999_999.0)
    # figures still counting are not published in an update
    update = report.to_update(t(1.0), None)
    assert update.gap_s is None and update.outage_s is None


def test_blind_windows_during_the_incident_are_recorded() -> None:
    model = IncidentModel(stable_after=10.0)
    feed(
        model,
        [
            BrokerDisconnected(ts=t(-1.0), source="canary", reason="connection reset"),
            msg(0.0, "+sdown"),
            BrokerDisconnected(ts=t(0.5), source="celery-events", reason="connection reset"),
            BrokerDisconnected(ts=t(0.6), source="celery-events", reason="again"),
            switch(1.0),
            BrokerConnected(ts=t(3.25), source="celery-events", address=B),
            task(4.0, "started"),
        ],
    )
    report = only(model)
    assert report.blind_windows == (
        BlindInfo(t(-1.0), None, "canary", "connection reset"),
        BlindInfo(t(0.5), t(3.25), "celery-events", "connection reset"),
    )
    [closed] = model.tick(t(14.0))
    assert closed.blind_windows == report.blind_windows


def feed_like_the_monitor(
    model: IncidentModel, tracker: TaskTracker, events: list[Event]
) -> list[IncidentUpdate]:
    """Each event to the tracker first, a switch noted in it, then to the model."""
    updates: list[IncidentUpdate] = []
    for event in events:
        tracker.apply(event)
        if isinstance(event, SentinelMessage) and event.channel == "+switch-master":
            tracker.note_switch(event.ts)
        updates.extend(model.apply(event))
    return updates


def test_task_figures_from_the_tracker() -> None:
    tracker = TaskTracker(lost_after=30.0)
    model = IncidentModel(tracker=tracker, stable_after=10.0)
    events: list[Event] = [
        task(-20.0, "sent", "d", queue="q"),
        task(-19.0, "succeeded", "d", queue="q"),
        task(-18.0, "succeeded", "d", queue="q"),  # duplicated before the incident
        task(-5.0, "sent", "t1", queue="q"),
        task(-4.0, "sent", "t2", queue="q"),
        msg(0.0, "+sdown"),
        switch(1.0),
        task(2.0, "sent", "t3", queue="q"),
        task(2.5, "received", "t3", queue="q"),
        task(3.0, "started", "t3", queue="q"),
        task(3.5, "succeeded", "t3", queue="q"),
        task(3.6, "succeeded", "t3", queue="q"),  # ran twice
        task(4.0, "failed", "t5", queue="q"),
    ]
    feed_like_the_monitor(model, tracker, events)
    report = only(model)
    assert report.pending_at_switch == 2
    assert report.duplicated == 1
    assert (report.sent, report.completed) == (1, 3)
    [closed] = model.tick(t(13.0))
    # read as the tracker will see it once lost_after passed: t1 and t2 were overtaken
    assert closed.lost == 2 and closed.duplicated == 1 and closed.pending_at_switch == 2
    assert only(model).to_dict()["tasks"] == {
        "sent": 1,
        "completed": 3,
        "lost": 2,
        "duplicated": 1,
        "pending_at_switch": 2,
        "results_at_risk": 0,
    }


# -- output ---------------------------------------------------------------------------------


def test_to_dict_has_the_drill_shape() -> None:
    model = IncidentModel(stable_after=10.0)
    feed(model, CRASH)
    [closed] = model.tick(t(25.0))
    [report] = model.reports()
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    for key in ("master", "old_master", "new_master", "phases", "gap_s", "outage_s", "tasks"):
        assert key in data
    assert list(data["phases"]) == list(PHASES)
    assert data["phases"]["switched"] == t(1.0) and data["phases"]["closed"] == t(24.123)
    assert set(data["tasks"]) == {
        "sent",
        "completed",
        "lost",
        "duplicated",
        "pending_at_switch",
        "results_at_risk",
    }
    assert data["split_brain_s"] is None and data["blind_windows"] == []
    assert data["workers_resumed"] == {"w1": t(14.123), "w2": t(15.5)}
    assert closed == report.to_update(t(25.0), "closed")


def test_incident_update_round_trips_through_json() -> None:
    update = IncidentUpdate(
        ts=t(30.0),
        id="mymaster-1",
        master=M,
        status="closed",
        reached="closed",
        old_master=A,
        new_master=C,
        fault=t(0.0),
        detected=t(0.3),
        elected=None,
        switched=t(6.0),
        resumed=t(8.25),
        demoted=t(11.0),
        closed=t(18.25),
        gap_s=2.25,
        outage_s=8.25,
        split_brain_s=10.0,
        sent=12,
        completed=10,
        pending_at_switch=3,
        lost=1,
        duplicated=0,
        results_at_risk=2,
        blind_windows=(
            BlindInfo(t(0.5), t(3.25), "celery-events", "reset"),
            BlindInfo(t(4.0), None, "canary", "x"),
        ),
        switches=(SwitchInfo(t(1.0), A, B), SwitchInfo(t(6.0), None, C)),
        aborted=False,
        note="a failover attempt aborted (no replica could be promoted) before a switch happened.",
    )
    back = from_json(to_json(update))
    assert back == update
    assert isinstance(back, IncidentUpdate)
    assert isinstance(back.blind_windows[0], BlindInfo) and isinstance(back.switches[1], SwitchInfo)


def test_every_update_of_a_script_round_trips() -> None:
    model = IncidentModel(stable_after=10.0)
    updates = feed(
        model,
        [*CRASH, msg(20.0, "-sdown", role="slave"), msg(21.0, "+convert-to-slave", role="slave")],
    )
    updates += model.tick(t(100.0))
    assert updates and updates[-1].reached == "closed"
    for update in updates:
        assert from_json(to_json(update)) == update


def test_history_is_bounded_and_newest_last() -> None:
    model = IncidentModel(stable_after=1.0, max_history=3)
    for n in range(5):
        base = n * 100.0
        feed(model, [msg(base, "+sdown"), msg(base + 1.0, "-sdown")])
        model.tick(t(base + 50.0))
    snap = model.snapshot(t(1000.0))
    assert [r.id for r in snap.history] == ["mymaster-3", "mymaster-4", "mymaster-5"]
    assert len(model.reports()) == 3


def test_the_model_ignores_what_it_cannot_use() -> None:
    model = IncidentModel()
    assert model.apply("not an event") == []
    assert model.apply(msg(math.nan, "+sdown")) == []
    assert (
        model.apply(IncidentUpdate(ts=t(0.0), id="x-1", master="x", status="open", reached="fault"))
        == []
    )
    assert model.apply(NodeUnreachable(ts=t(0.0), address=A, reason="timed out")) == []
    assert model.tick(math.inf) == []
    junk: list[Any] = [
        TaskEvent(ts=t(1.0), state={"not": "hashable"}, uuid=None),  # type: ignore[arg-type]
        ProbeResult(ts=t(1.0), probe="canary", phase=["x"], ok=False),  # type: ignore[arg-type]
        SentinelMessage(ts=t(1.0), sentinel=S1, channel=None, payload="", master=M),  # type: ignore[arg-type]
        SentinelMessage(
            ts=t(1.0), sentinel=S1, channel="+sdown", payload="", master=3, role="master"
        ),  # type: ignore[arg-type]
        MasterObserved(ts=t(1.0), sentinel=S1, master=M, ip="x", port="6379", epoch=None),  # type: ignore[arg-type]
        FailoverRequested(ts=t(1.0), master=None, sentinel=S1, reply="OK", accepted=True),  # type: ignore[arg-type]
        BrokerDisconnected(ts=t(1.0), source=None, reason=None),  # type: ignore[arg-type]
        NodeObserved(ts=True, address=A, role="slave"),
    ]
    for event in junk:
        assert model.apply(event) == []
    assert model.reports() == ()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="stable_after"):
        IncidentModel(stable_after=-1.0)
    with pytest.raises(ValueError, match="max_history"):
        IncidentModel(max_history=-1)
    with pytest.raises(ValueError, match="demote_wait"):
        IncidentModel(demote_wait=math.nan)


# -- fuzzing ------------------------------------------------------------------------------

_TIMES = st.integers(0, 60).map(lambda n: t(n / 2))
_ADDRESSES = st.sampled_from([A, B, C])
_MASTERS = st.sampled_from([M, "cache"])
_CHANNELS = st.sampled_from(
    [
        "+sdown",
        "-sdown",
        "+odown",
        "-odown",
        "+try-failover",
        "+elected-leader",
        "-failover-abort-no-good-slave",
        "-failover-abort-not-elected",
        "+failover-end-for-timeout",
        "+convert-to-slave",
        "+role-change",
        "+slave",
        "+new-epoch",
    ]
)


@st.composite
def _message(draw: Any) -> SentinelMessage:
    channel = draw(_CHANNELS)
    return SentinelMessage(
        ts=draw(_TIMES),
        sentinel=draw(st.sampled_from([S1, S2, S3])),
        channel=channel,
        payload="",
        master=draw(st.one_of(st.none(), _MASTERS)),
        role=draw(st.sampled_from(["master", "slave", None])),
        address=draw(st.one_of(st.none(), _ADDRESSES)),
        detail=draw(
            st.sampled_from([None, "new reported role is slave", "new reported role is master"])
        ),
    )


_EVENTS = st.one_of(
    _message(),
    st.builds(
        lambda ts, m, old, new: SentinelMessage(
            ts=ts, sentinel=S1, channel="+switch-master", payload="", master=m, old=old, new=new
        ),
        _TIMES,
        _MASTERS,
        st.one_of(st.none(), _ADDRESSES),
        _ADDRESSES,
    ),
    st.builds(
        TaskEvent,
        ts=_TIMES,
        state=st.sampled_from(["sent", "received", "started", "succeeded", "failed", "bogus"]),
        uuid=st.sampled_from(["a", "b", "c", None]),
        worker=st.sampled_from(["w1", "w2", None]),
        queue=st.sampled_from(["q", None]),
        via=st.one_of(st.none(), _ADDRESSES),
    ),
    st.builds(
        ProbeResult,
        ts=_TIMES,
        probe=st.just("canary"),
        phase=st.sampled_from(["sent", "started", "succeeded", "failed", "send-failed"]),
        ok=st.booleans(),
    ),
    st.builds(
        FailoverRequested,
        ts=_TIMES,
        master=_MASTERS,
        sentinel=st.just(S1),
        reply=st.just("OK"),
        accepted=st.booleans(),
    ),
    st.builds(
        MasterObserved,
        ts=_TIMES,
        sentinel=st.sampled_from([S1, S2]),
        master=_MASTERS,
        ip=st.just("127.0.0.1"),
        port=st.sampled_from([6380, 6381, 6382]),
        epoch=st.one_of(st.none(), st.integers(0, 5)),
        flags=st.sampled_from([(), ("failover_in_progress",)]),
    ),
    st.builds(
        NodeObserved, ts=_TIMES, address=_ADDRESSES, role=st.sampled_from(["master", "slave"])
    ),
    st.builds(NodeUnreachable, ts=_TIMES, address=_ADDRESSES, reason=st.just("down")),
    st.builds(
        BrokerDisconnected,
        ts=_TIMES,
        source=st.sampled_from(["celery-events", "canary"]),
        reason=st.just("x"),
    ),
    st.builds(BrokerConnected, ts=_TIMES, source=st.sampled_from(["celery-events", "canary"])),
    _TIMES.map(lambda ts: ("tick", ts)),
    st.sampled_from([math.nan, math.inf]).map(
        lambda ts: TaskEvent(ts=ts, state="started", uuid="z")
    ),
)


def _check(report: IncidentReport | IncidentUpdate) -> None:
    for figure in ("gap_s", "outage_s", "split_brain_s"):
        value = getattr(report, figure)
        assert value is None or (math.isfinite(value) and value >= 0), (figure, value)
    for count in ("pending_at_switch", "lost", "duplicated", "results_at_risk"):
        value = getattr(report, count)
        assert value is None or value >= 0
    assert report.sent >= 0 and report.completed >= 0
    phases = {name: getattr(report, name) for name in PHASES}
    fault = phases["fault"]
    assert fault is not None
    for name, value in phases.items():
        assert value is None or value >= fault, (name, value, fault)
    if report.resumed is not None:
        assert report.switched is not None and report.resumed >= report.switched
    if report.demoted is not None:
        assert report.switches and report.demoted >= report.switches[0].ts
    assert report.status in ("open", "closed")
    assert (report.closed is not None) == (report.status == "closed")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(_EVENTS, max_size=60),
    tracked=st.booleans(),
    broker=st.sampled_from([None, M]),
    now=_TIMES,
)
def test_fuzz_never_raises_and_figures_are_never_negative(
    events: list[Any], tracked: bool, broker: str | None, now: float
) -> None:
    tracker = TaskTracker(lost_after=2.0) if tracked else None
    model = IncidentModel(tracker=tracker, stable_after=3.0, broker_master=broker, demote_wait=5.0)
    ids: dict[str, str] = {}
    for event in events:
        if isinstance(event, tuple):
            updates = model.tick(event[1])
        else:
            if tracker is not None:
                tracker.apply(event)
            updates = model.apply(event)
        for update in updates:
            _check(update)
            assert from_json(to_json(update)) == update
            assert ids.setdefault(update.id, update.master) == update.master
    snap = model.snapshot(now)
    assert len({r.master for r in snap.open}) == len(snap.open)
    for report in (*snap.open, *snap.history, *model.reports()):
        _check(report)
        json.dumps(report.to_dict())
    for report in snap.history:
        assert report.status == "closed" and report.counting == ()


def test_work_on_the_old_master_in_a_split_brain_is_not_the_resume() -> None:
    model = IncidentModel(stable_after=10.0)
    feed(
        model,
        [
            requested(0.0),
            switch(1.0),
            task(1.1, "started", "old-1", via=A),  # the old master still serves a worker
            task(1.3, "succeeded", "old-1", via=A),
            task(2.5, "started", "new-1", via=B),  # the first work on the new master
        ],
    )
    report = only(model)
    assert report.resumed == t(2.5)
    assert close_to(report.gap_s, 1.5)
    assert report.at_risk_ids == ("old-1",)


# -- users (HTTP probes) and Prometheus -------------------------------------------------

HEALTH = "http GET 127.0.0.1:8801/health"


def http(at: float, ok: bool, name: str = HEALTH) -> ProbeResult:
    """One HTTP probe's answer at `at` (its phase as `run_http_probes` gives it)."""
    return ProbeResult(ts=t(at), probe=name, phase="ok" if ok else "failed", ok=ok, latency=0.01)


def prom(at: float, address: str | None, master: str = M) -> PrometheusObserved:
    """Prometheus's answer at `at`: `address` is the master it shows for `master`."""
    return PrometheusObserved(ts=t(at), master=master, address=address, sample_ts=t(at - 0.5))


def probes_every(start: float, stop: float, ok: bool, step: float = 0.5) -> list[ProbeResult]:
    count = round((stop - start) / step)
    return [http(start + n * step, ok) for n in range(count)]


def merged(*scripts: list[Any]) -> list[Any]:
    """Several scripts as one stream, by time (the order events arrive in live)."""
    return sorted((e for script in scripts for e in script), key=lambda e: e.ts)


def test_the_users_resume_at_the_first_successful_probe_after_the_switch() -> None:
    # A crash: the users fail from -0.6 s (before Sentinel's +sdown at 0), a probe
    # succeeds again at 1.9 s, after the switch at 1.0 s; Celery resumes at 14.123 s.
    users = [
        *probes_every(-3.0, -0.6, ok=True),
        *probes_every(-0.6, 1.9, ok=False),
        *probes_every(1.9, 20.0, ok=True),
    ]
    model = IncidentModel(stable_after=10.0)
    updates = feed(model, merged(CRASH, users))
    report = only(model)
    assert report.http_probed and not report.prometheus_watched
    assert report.user_resumed == t(1.9)
    assert close_to(report.user_gap_s, 0.9)
    assert report.user_failed == t(-0.6)  # before the fault: the users failed first
    assert close_to(report.user_outage_s, 2.5)
    assert report.fault == t(0.0)  # failed probes are not evidence of the fault
    assert close_to(report.gap_s, 13.123)  # the Celery gap, beside it
    # The users' resume is published as an update of its own (not a phase).
    learnt = [u for u in updates if u.user_resumed is not None]
    assert learnt[0].reached is None and close_to(learnt[0].user_gap_s, 0.9)
    assert reached(updates) == ["fault", "detected", "elected", "switched", None, "resumed"]
    # It closes as it did without probes, the users' figures kept.
    [closed] = model.tick(t(30.0))
    assert closed.closed == t(24.123)
    assert closed.user_resumed == t(1.9) and close_to(closed.user_outage_s, 2.5)
    data = model.snapshot(t(31.0)).history[0].to_dict()
    assert data["user_resumed"] == t(1.9) and data["user_failed"] == t(-0.6)
    assert "prometheus_seen" not in data


def test_successful_probes_before_the_switch_do_not_count() -> None:
    model = IncidentModel(stable_after=10.0)
    # The application never failed (it does not use this master): its probes succeed
    # all along; the first one at or after the switch (1.0 s) is the users' resume.
    feed(model, merged(CRASH, [http(0.7, True), http(0.95, True), http(1.25, True)]))
    report = only(model)
    assert report.user_resumed == t(1.25)
    assert close_to(report.user_gap_s, 0.25)
    assert report.user_failed is None and report.user_outage_s is None


def test_failed_probes_open_no_incident_and_never_hold_the_close() -> None:
    model = IncidentModel(stable_after=10.0)
    assert feed(model, probes_every(0.0, 30.0, ok=False)) == []
    assert model.reports() == ()
    # A probe that never succeeds: the incident closes as it would without it.
    model = IncidentModel(stable_after=10.0)
    feed(model, merged(CRASH, probes_every(-1.0, 20.0, ok=False)))
    live = model.snapshot(t(5.0)).open[0]
    assert "user_gap_s" in live.counting and close_to(live.user_gap_s, 4.0)
    assert "user_outage_s" in live.counting and close_to(live.user_outage_s, 6.0)
    [closed] = model.tick(t(30.0))
    assert closed.closed == t(24.123)
    assert closed.user_resumed is None and closed.user_gap_s is None
    assert closed.user_failed == t(-1.0) and closed.http_probed
    # Failures after the users' resume are not when the users' outage began.
    model = IncidentModel(stable_after=10.0)
    feed(model, merged(CRASH, [http(1.5, True), http(2.0, False), http(2.5, True)]))
    assert only(model).user_failed is None and only(model).user_resumed == t(1.5)


def test_a_probe_that_arrives_before_the_switch_it_follows_still_counts() -> None:
    model = IncidentModel(stable_after=10.0)
    events = [msg(0.0, "+sdown"), http(0.5, False), http(1.4, True), switch(1.0)]
    feed(model, events)  # the success at 1.4 s was fed before the switch at 1.0 s
    report = only(model)
    assert report.user_resumed == t(1.4) and close_to(report.user_gap_s, 0.4)
    assert close_to(report.user_outage_s, 0.9)


def test_a_second_switch_looks_for_the_users_resume_again() -> None:
    model = IncidentModel(stable_after=10.0)
    feed(model, [msg(0.0, "+sdown"), switch(1.0), http(1.5, True)])
    assert only(model).user_resumed == t(1.5)
    feed(model, [switch(3.0, B, C), http(3.2, False), http(3.7, True)])
    report = only(model)
    assert report.switched == t(3.0)
    assert report.user_resumed == t(3.7) and close_to(report.user_gap_s, 0.7)
    assert report.user_failed == t(3.2) and close_to(report.user_outage_s, 0.5)


def test_several_probes_each_keep_their_own_run_of_failures() -> None:
    other = "http GET 127.0.0.1:8802/orders"
    model = IncidentModel(stable_after=10.0)
    events = [
        http(-0.4, False, other),  # the orders page fails first
        msg(0.0, "+sdown"),
        http(0.2, True),  # /health still answers
        http(0.3, False, other),
        http(0.6, False),  # now /health fails too
        switch(1.0),
        http(1.6, True, other),  # the first success of any probe after the switch
        http(2.1, True),
    ]
    feed(model, events)
    report = only(model)
    assert report.user_failed == t(-0.4)
    assert report.user_resumed == t(1.6) and close_to(report.user_outage_s, 2.0)


def test_prometheus_lag_is_when_it_first_showed_the_new_master() -> None:
    model = IncidentModel(stable_after=10.0)
    scraped = [
        prom(-1.0, A),
        prom(0.5, B),  # before the switch: not the scraped view catching up
        prom(1.5, A),  # still the old master after the switch
        prom(2.6, B, master="cache"),  # another master name
        prom(3.5, B),
        prom(4.5, B),
    ]
    updates = feed(model, merged(CRASH, scraped))
    report = only(model)
    assert report.prometheus_watched and not report.http_probed
    assert report.prometheus_seen == t(3.5) and close_to(report.prometheus_lag_s, 2.5)
    assert any(u.reached is None and u.prometheus_seen == t(3.5) for u in updates)
    data = report.to_dict()
    assert data["prometheus_lag_s"] == report.prometheus_lag_s and "user_gap_s" not in data
    # While it lags, the lag ticks.
    model = IncidentModel(stable_after=10.0)
    feed(model, merged(CRASH, scraped[:3]))
    live = model.snapshot(t(3.0)).open[0]
    assert "prometheus_lag_s" in live.counting and close_to(live.prometheus_lag_s, 2.0)
    # An address written another way is the same node.
    model = IncidentModel(stable_after=10.0)
    feed(model, [msg(0.0, "+sdown"), switch(1.0, "[::1]:6380", "[::1]:6381")])
    feed(model, [prom(2.0, "::1:6381")])
    assert only(model).prometheus_seen == t(2.0)


def test_prometheus_without_a_switch_or_unreachable_says_it_was_watched() -> None:
    model = IncidentModel(stable_after=10.0)
    feed(model, [PrometheusUnreachable(ts=t(-5.0), reason="connection refused"), *CRASH])
    report = only(model)
    assert report.prometheus_watched and report.prometheus_seen is None
    assert report.prometheus_lag_s is not None and "prometheus_lag_s" in report.counting


def test_late_figures_after_the_close_amend_the_closed_incident() -> None:
    model = IncidentModel(stable_after=10.0, late_wait=60.0)
    feed(model, [prom(-1.0, A), *CRASH, http(0.5, False)])
    [closed] = model.tick(t(24.123))
    assert closed.prometheus_seen is None and closed.user_resumed is None
    # Prometheus scrapes slowly: the new master shows 29 s after the switch.
    [late] = model.apply(prom(30.0, B))
    assert (late.status, late.reached, late.closed) == ("closed", None, t(24.123))
    assert late.prometheus_seen == t(30.0) and close_to(late.prometheus_lag_s, 29.0)
    [users] = model.apply(http(31.0, True))
    assert users.user_resumed == t(31.0) and close_to(users.user_gap_s, 30.0)
    assert close_to(users.user_outage_s, 30.5) and users.prometheus_seen == t(30.0)
    [history] = model.snapshot(t(40.0)).history
    assert history.prometheus_seen == t(30.0) and history.user_resumed == t(31.0)
    assert history.gap_s == closed.gap_s and history.closed == t(24.123)
    # Only the first: later answers change nothing.
    assert model.apply(prom(32.0, B)) == [] and model.apply(http(33.0, True)) == []
    # Past late_wait, nothing is amended.
    model = IncidentModel(stable_after=10.0, late_wait=60.0)
    feed(model, [prom(-1.0, A), *CRASH])
    model.tick(t(24.123))
    assert model.apply(prom(24.123 + 60.5, B)) == []
    assert model.snapshot(t(100.0)).history[0].prometheus_seen is None


def test_without_a_celery_side_the_users_resume_may_come_after_the_close() -> None:
    model = IncidentModel(stable_after=10.0, work_observed=False)
    feed(model, [msg(0.0, "+sdown"), http(0.2, False), switch(1.0)])
    [closed] = model.tick(t(11.0))
    assert closed.closed == t(11.0) and closed.user_resumed is None
    [late] = model.apply(http(15.0, True))
    assert late.user_resumed == t(15.0) and close_to(late.user_gap_s, 14.0)
    # A new incident of the master ends the wait for the old one.
    model = IncidentModel(stable_after=10.0, work_observed=False)
    feed(model, [msg(0.0, "+sdown"), switch(1.0)])
    model.tick(t(11.0))
    feed(model, [msg(20.0, "+sdown", address=B)])
    model.apply(http(21.0, True))
    assert model.snapshot(t(22.0)).history[0].user_resumed is None


def test_without_probes_or_prometheus_every_update_is_as_before() -> None:
    """Journals recorded before HTTP probes and Prometheus: the same updates, to the byte
    of their old JSON lines (the new fields absent there come back as their defaults)."""
    model = IncidentModel(stable_after=10.0)
    updates = feed(model, [*CRASH, probe(0.5, "send-failed", False)])
    updates += model.tick(t(100.0))
    new = {
        "user_resumed",
        "user_gap_s",
        "user_failed",
        "user_outage_s",
        "prometheus_seen",
        "prometheus_lag_s",
        "http_probed",
        "prometheus_watched",
    }
    for update in updates:
        line = json.loads(to_json(update))
        assert {key: line.pop(key) for key in new} == dict.fromkeys(new, None) | {
            "http_probed": False,
            "prometheus_watched": False,
        }
        assert from_json(json.dumps(line)) == update  # an old line reads as the same update
    [report] = model.reports()
    data = report.to_dict()
    assert not new & set(data)
    assert report.counting == ()


_USER_EVENTS = st.one_of(
    _EVENTS,
    st.builds(
        lambda ts, ok, name: ProbeResult(
            ts=ts, probe=name, phase="ok" if ok else "failed", ok=ok, latency=0.1
        ),
        _TIMES,
        st.booleans(),
        st.sampled_from([HEALTH, "http GET 127.0.0.1:8802/x"]),
    ),
    st.builds(
        PrometheusObserved,
        ts=_TIMES,
        master=_MASTERS,
        address=st.one_of(st.none(), _ADDRESSES),
    ),
    st.builds(PrometheusUnreachable, ts=_TIMES, reason=st.just("down")),
)


def _check_users(report: IncidentReport | IncidentUpdate) -> None:
    _check(report)
    for figure in ("user_gap_s", "user_outage_s", "prometheus_lag_s"):
        value = getattr(report, figure)
        assert value is None or (math.isfinite(value) and value >= 0), (figure, value)
    for seen in (report.user_resumed, report.prometheus_seen):
        if seen is not None:
            assert report.switched is not None and seen >= report.switched
    if report.user_outage_s is not None:
        assert report.user_failed is not None
        counting = isinstance(report, IncidentReport) and "user_outage_s" in report.counting
        assert counting or report.user_resumed is not None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(_USER_EVENTS, max_size=60),
    work=st.booleans(),
    now=_TIMES,
)
def test_fuzz_with_probes_and_prometheus_figures_are_never_negative(
    events: list[Any], work: bool, now: float
) -> None:
    model = IncidentModel(stable_after=3.0, demote_wait=5.0, late_wait=4.0, work_observed=work)
    for event in events:
        updates = model.tick(event[1]) if isinstance(event, tuple) else model.apply(event)
        for update in updates:
            _check_users(update)
            assert from_json(to_json(update)) == update
    snap = model.snapshot(now)
    for report in (*snap.open, *snap.history, *model.reports()):
        _check_users(report)
        json.dumps(report.to_dict())
