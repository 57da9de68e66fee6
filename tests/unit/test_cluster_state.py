"""ClusterState folded from scripted events: deterministic, no clock, no sleeps."""

from __future__ import annotations

from hawatch.core.cluster import ClusterState
from hawatch.core.events import (
    Event,
    MasterObserved,
    SentinelReachable,
    SentinelUnreachable,
)

S1, S2, S3 = "127.0.0.1:26379", "127.0.0.1:26380", "127.0.0.1:26381"
OLD, NEW = ("127.0.0.1", 6379), ("127.0.0.1", 6380)


def seen(ts: float, sentinel: str, address: tuple[str, int], epoch: int | None, **kw) -> Event:
    """A report of `sentinel` naming `address` master of ``mymaster`` at config epoch `epoch`."""
    ip, port = address
    return MasterObserved(
        ts=ts, sentinel=sentinel, master="mymaster", ip=ip, port=port, epoch=epoch, **kw
    )


def fold(*events: Event) -> ClusterState:
    state = ClusterState()
    for event in events:
        state.apply(event)
    return state


def test_nothing_known_before_any_report() -> None:
    snapshot = ClusterState().snapshot(now=10.0)
    assert snapshot.masters == ()
    assert snapshot.master("mymaster") is None
    assert snapshot.unreachable == ()


def test_master_known_after_reports() -> None:
    state = fold(seen(100.0, S1, OLD, 0), seen(100.1, S2, OLD, 0), seen(100.2, S3, OLD, 0))
    view = state.snapshot(now=112.0).master("mymaster")
    assert view is not None
    assert view.address == "127.0.0.1:6379"
    assert view.epoch == 0
    assert view.since == 100.0
    assert view.age == 12.0
    assert not view.switched
    assert (view.known, view.agree, view.dissent) == (3, 3, ())


def test_switch_moves_the_master_and_resets_since() -> None:
    state = fold(
        seen(100.0, S1, OLD, 0),
        seen(100.0, S2, OLD, 0),
        seen(130.0, S1, NEW, 1),
    )
    view = state.snapshot(now=131.5).master("mymaster")
    assert view is not None
    assert view.address == "127.0.0.1:6380"
    assert view.epoch == 1
    assert view.since == 130.0
    assert view.age == 1.5
    assert view.switched
    assert view.previous == "127.0.0.1:6379"
    # S2 has not caught up yet: that is a disagreement, not a reason to stay.
    assert (view.known, view.agree) == (2, 1)
    assert view.dissent == ((S2, "127.0.0.1:6379", 0),)


def test_catching_up_keeps_since() -> None:
    state = fold(seen(100.0, S1, OLD, 0), seen(130.0, S1, NEW, 1), seen(131.0, S2, NEW, 1))
    view = state.snapshot(now=140.0).master("mymaster")
    assert view is not None
    assert view.since == 130.0
    assert (view.known, view.agree) == (2, 2)


def test_stale_lower_epoch_report_does_not_move_it_back() -> None:
    state = fold(
        seen(100.0, S1, OLD, 0),
        seen(130.0, S1, NEW, 1),
        # S1 restarts with an old config and is the only sentinel left.
        SentinelUnreachable(ts=131.0, sentinel=S1, reason="connection refused"),
        seen(140.0, S2, OLD, 0),
        seen(141.0, S2, OLD, 0),
    )
    view = state.snapshot(now=150.0).master("mymaster")
    assert view is not None
    assert view.address == "127.0.0.1:6380"
    assert view.epoch == 1
    assert view.since == 130.0
    assert view.dissent == ((S2, "127.0.0.1:6379", 0),)


def test_failover_leader_reporting_the_new_epoch_early_does_not_pin_the_old_address() -> None:
    # The sequence a real Redis 7.0 sentinel pair produced when the master was killed:
    # the leader shows the new epoch beside the old address while failing over.
    busy = ("failover_in_progress", "master", "o_down", "s_down")
    state = fold(
        seen(100.0, S1, OLD, 2, flags=("master",)),
        seen(100.0, S2, OLD, 2, flags=("master",)),
        seen(103.0, S1, OLD, 2, flags=busy),
        seen(103.7, S1, OLD, 3, flags=busy),
        # S2 learns the new configuration first; S1's last word is still the old address.
        seen(103.8, S2, NEW, 3, flags=("disconnected", "master")),
    )
    view = state.snapshot(now=104.0).master("mymaster")
    assert view is not None
    assert view.address == "127.0.0.1:6380"
    assert view.since == 103.8
    assert view.epoch == 3
    assert view.dissent == ((S1, "127.0.0.1:6379", 3),)

    state.apply(seen(103.9, S1, NEW, 3, flags=("master",)))
    view = state.snapshot(now=104.0).master("mymaster")
    assert view is not None
    assert (view.address, view.since, view.known, view.agree) == ("127.0.0.1:6380", 103.8, 2, 2)


def test_among_equal_epochs_the_majority_wins() -> None:
    state = fold(
        seen(100.0, S1, OLD, 2),
        seen(100.0, S2, NEW, 2),
        seen(100.0, S3, NEW, 2),
    )
    view = state.snapshot(now=100.0).master("mymaster")
    assert view is not None
    assert view.address == "127.0.0.1:6380"
    assert (view.known, view.agree) == (3, 2)


def test_a_tie_keeps_the_current_holder() -> None:
    state = fold(seen(100.0, S1, NEW, 2), seen(101.0, S2, OLD, 2))
    view = state.snapshot(now=102.0).master("mymaster")
    assert view is not None
    assert view.address == "127.0.0.1:6380"
    assert view.since == 100.0


def test_higher_epoch_beats_a_majority() -> None:
    state = fold(
        seen(100.0, S1, OLD, 4),
        seen(100.0, S2, OLD, 4),
        seen(101.0, S3, NEW, 5),
    )
    view = state.snapshot(now=101.0).master("mymaster")
    assert view is not None
    assert view.address == "127.0.0.1:6380"


def test_flags_of_the_agreeing_sentinels_are_shown() -> None:
    state = fold(
        seen(100.0, S1, OLD, 0, flags=("master", "s_down")),
        seen(100.0, S2, OLD, 0, flags=("master", "o_down", "s_down")),
    )
    view = state.snapshot(now=100.0).master("mymaster")
    assert view is not None
    assert view.flags == ("master", "o_down", "s_down")


def test_masters_are_independent_and_sorted() -> None:
    state = fold(
        MasterObserved(ts=1.0, sentinel=S1, master="zeta", ip="10.0.0.9", port=1, epoch=0),
        MasterObserved(ts=1.0, sentinel=S1, master="alpha", ip="10.0.0.1", port=1, epoch=7),
    )
    snapshot = state.snapshot(now=2.0)
    assert [view.name for view in snapshot.masters] == ["alpha", "zeta"]


def test_unreachable_and_reachable_tracking() -> None:
    state = fold(
        SentinelReachable(ts=99.0, sentinel=S1),
        seen(100.0, S1, OLD, 0),
        seen(100.0, S2, OLD, 0),
        SentinelUnreachable(ts=105.0, sentinel=S2, reason="connection refused"),
        SentinelUnreachable(ts=107.0, sentinel=S2, reason="timed out after 1.0 s"),
    )
    snapshot = state.snapshot(now=110.0)
    assert snapshot.reachable == (S1,)
    [down] = snapshot.unreachable
    assert (down.sentinel, down.since, down.reason, down.age) == (
        S2,
        105.0,
        "timed out after 1.0 s",
        5.0,
    )
    view = snapshot.master("mymaster")
    assert view is not None
    # The unreachable sentinel's last word no longer counts, but the master stays known.
    assert (view.known, view.agree) == (1, 1)

    state.apply(SentinelReachable(ts=111.0, sentinel=S2))
    snapshot = state.snapshot(now=112.0)
    assert snapshot.unreachable == ()
    assert snapshot.reachable == (S1, S2)


def test_master_stays_known_when_every_sentinel_is_gone() -> None:
    state = fold(
        seen(100.0, S1, OLD, 0),
        SentinelUnreachable(ts=101.0, sentinel=S1, reason="connection refused"),
    )
    view = state.snapshot(now=120.0).master("mymaster")
    assert view is not None
    assert view.address == "127.0.0.1:6379"
    assert (view.known, view.agree) == (0, 0)
    assert view.last_report == 100.0


def test_a_report_proves_its_sentinel_reachable() -> None:
    state = fold(
        SentinelUnreachable(ts=1.0, sentinel=S1, reason="connection refused"),
        seen(2.0, S1, OLD, 0),
    )
    assert state.snapshot(now=3.0).unreachable == ()


def test_age_comes_from_now_only() -> None:
    state = fold(seen(100.0, S1, OLD, 0))
    assert state.snapshot(now=100.0).masters[0].age == 0.0
    assert state.snapshot(now=160.0).masters[0].age == 60.0
    # A clock that lags the events never shows a negative age.
    assert state.snapshot(now=90.0).masters[0].age == 0.0


def test_unknown_event_types_are_ignored() -> None:
    state = ClusterState()
    state.apply(Event(ts=1.0))
    assert state.snapshot(now=1.0).masters == ()
