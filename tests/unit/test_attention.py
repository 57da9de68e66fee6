"""Notices: each moment worth a notification is said once, when it happens."""

from __future__ import annotations

from hawatch.core.attention import Attention
from hawatch.core.cluster import ClusterState
from hawatch.core.events import (
    Event,
    MasterObserved,
    SentinelReachable,
    SentinelUnreachable,
    TaskEvent,
)
from hawatch.core.incidents import IncidentModel
from hawatch.core.tasks import TaskTracker
from hawatch.sources.sentinel_messages import parse_message

T0 = 1_000_000.0
A, B, C = "127.0.0.1:26379", "127.0.0.1:26380", "127.0.0.1:26381"


def observed(ts: float, sentinel: str, port: int, epoch: int) -> MasterObserved:
    return MasterObserved(
        ts=ts,
        sentinel=sentinel,
        master="mymaster",
        ip="127.0.0.1",
        port=port,
        epoch=epoch,
        flags=("master",),
        num_slaves=2,
        num_other_sentinels=2,
        quorum=2,
    )


class Core:
    """The parts of the core the screen snapshots, fed scripted events."""

    def __init__(self) -> None:
        self.cluster = ClusterState()
        self.tasks = TaskTracker()
        self.incidents = IncidentModel(tracker=self.tasks, work_observed=True)
        self.attention = Attention()

    def feed(self, *events: Event) -> list[tuple[str, str]]:
        for event in events:
            self.cluster.apply(event)
            self.tasks.apply(event)
            for update in self.incidents.apply(event):
                self.cluster.apply(update)
        now = max(event.ts for event in events) if events else T0
        notices = self.attention.notices(self.cluster.snapshot(now), self.incidents.snapshot(now))
        return [(notice.kind, notice.message) for notice in notices]


def test_what_is_known_at_start_is_not_news_and_each_change_is_said_once() -> None:
    core = Core()
    start = [SentinelReachable(ts=T0, sentinel=s) for s in (A, B, C)]
    start += [observed(T0, s, 6379, 0) for s in (A, B, C)]
    assert core.feed(*start) == []  # the first look: nothing is news
    assert core.feed(observed(T0 + 1, A, 6379, 0)) == []
    # A sentinel stops answering: said once, not on every snapshot.
    down = SentinelUnreachable(ts=T0 + 2, sentinel=C, reason="connection refused")
    assert core.feed(down) == [
        ("unreachable", f"sentinel {C} does not answer: connection refused.")
    ]
    assert core.feed(observed(T0 + 3, A, 6379, 0)) == []
    # The switch, seen by one sentinel first: a switch, and a disagreement.
    switch = parse_message(
        "+switch-master", "mymaster 127.0.0.1 6379 127.0.0.1 6380", sentinel=A, ts=T0 + 10
    )
    said = dict(core.feed(switch, observed(T0 + 10, A, 6380, 1)))
    assert said["switch"] == "mymaster switched from 127.0.0.1:6379 to 127.0.0.1:6380."
    assert said["disagreement"].startswith("only 1 of 2 sentinels say 127.0.0.1:6380")
    # B agrees: no new notice; work resumes: one notice with the gap.
    assert core.feed(observed(T0 + 11, B, 6380, 1)) == []
    resumed = core.feed(
        TaskEvent(ts=T0 + 15, state="sent", uuid="t1", name="x", queue="celery"),
        TaskEvent(ts=T0 + 15.5, state="started", uuid="t1", via="127.0.0.1:6380"),
    )
    assert resumed == [("resume", "work resumed on 127.0.0.1:6380 after a gap of 5.5 s.")]
    assert core.feed(observed(T0 + 20, B, 6380, 1)) == []
    # The sentinel comes back and goes away again: news again.
    assert core.feed(SentinelReachable(ts=T0 + 30, sentinel=C)) == []
    assert [kind for kind, _ in core.feed(down.__class__(T0 + 40, C, "timed out"))] == [
        "unreachable"
    ]
