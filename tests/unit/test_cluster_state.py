"""ClusterState folded from scripted events: deterministic, no clock, no sleeps."""

from __future__ import annotations

from hawatch.core.cluster import ClusterState
from hawatch.core.events import (
    Event,
    FailoverRequested,
    MasterObserved,
    NodeObserved,
    NodeUnreachable,
    ReplicaInfo,
    SentinelForgotten,
    SentinelMessage,
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


# --- Sentinel messages, topology details, node roles -------------------------------


R1, R2 = "127.0.0.1:6381", "127.0.0.1:6382"


def msg(ts: float, sentinel: str, channel: str, payload: str, **kw) -> SentinelMessage:
    """A parsed pub/sub message, as the sentinel source emits it."""
    return SentinelMessage(ts=ts, sentinel=sentinel, channel=channel, payload=payload, **kw)


def switch(ts: float, sentinel: str, old: str, new: str) -> SentinelMessage:
    o_ip, o_port = old.rsplit(":", 1)
    n_ip, n_port = new.rsplit(":", 1)
    return msg(
        ts,
        sentinel,
        "+switch-master",
        f"mymaster {o_ip} {o_port} {n_ip} {n_port}",
        master="mymaster",
        old=old,
        new=new,
    )


def replica(address: str, **kw) -> ReplicaInfo:
    values = {"flags": ("slave",), "link": "ok", "priority": 100, "offset": 0, "announced": True}
    values.update(kw)
    return ReplicaInfo(address, **values)


def test_switch_master_moves_the_role_at_once_and_three_copies_are_one_event() -> None:
    state = fold(
        seen(100.0, S1, OLD, 0),
        seen(100.0, S2, OLD, 0),
        seen(100.0, S3, OLD, 0),
        switch(120.0, S1, "127.0.0.1:6379", "127.0.0.1:6380"),
        switch(120.3, S2, "127.0.0.1:6379", "127.0.0.1:6380"),
        switch(120.5, S3, "127.0.0.1:6379", "127.0.0.1:6380"),
    )
    view = state.snapshot(now=121.0).master("mymaster")
    assert view is not None
    assert view.address == "127.0.0.1:6380" and view.since == 120.0 and view.switched
    assert view.previous == "127.0.0.1:6379"
    (event,) = view.events
    assert (event.channel, event.sentinels, event.ts) == ("+switch-master", 3, 120.0)
    assert event.text == "+switch-master mymaster 127.0.0.1:6379 → 127.0.0.1:6380"


def test_a_stale_switch_master_does_not_move_the_master_back() -> None:
    state = fold(
        seen(100.0, S1, OLD, 0),
        seen(130.0, S1, NEW, 1),
        seen(130.0, S2, NEW, 1),
        # a sentinel restarted with an old configuration replays the old switch
        switch(140.0, S3, "127.0.0.1:6380", "127.0.0.1:6379"),
    )
    view = state.snapshot(now=141.0).master("mymaster")
    assert view is not None
    assert view.address == "127.0.0.1:6380" and view.since == 130.0


def test_a_new_switch_after_the_window_is_a_new_event() -> None:
    state = fold(
        seen(100.0, S1, OLD, 0),
        switch(120.0, S1, "127.0.0.1:6379", "127.0.0.1:6380"),
        seen(121.0, S1, NEW, 1),
        msg(
            125.0,
            S1,
            "+sdown",
            "master mymaster 127.0.0.1 6380",
            master="mymaster",
            role="master",
            instance="mymaster",
            address="127.0.0.1:6380",
        ),
        msg(
            200.0,
            S1,
            "+sdown",
            "master mymaster 127.0.0.1 6380",
            master="mymaster",
            role="master",
            instance="mymaster",
            address="127.0.0.1:6380",
        ),
    )
    view = state.snapshot(now=201.0).master("mymaster")
    assert view is not None
    assert [e.channel for e in view.events] == ["+switch-master", "+sdown", "+sdown"]
    assert view.events[1].text == "+sdown master mymaster 127.0.0.1:6380"


def test_failover_in_progress_from_messages_until_the_switch() -> None:
    base = [seen(100.0, S1, OLD, 0)]
    trying = msg(
        110.0,
        S1,
        "+try-failover",
        "master mymaster 127.0.0.1 6379",
        master="mymaster",
        role="master",
        instance="mymaster",
        address="127.0.0.1:6379",
    )
    view = fold(*base, trying).snapshot(now=111.0).master("mymaster")
    assert view is not None and view.failover_in_progress
    done = fold(*base, trying, switch(112.0, S1, "127.0.0.1:6379", "127.0.0.1:6380"))
    view = done.snapshot(now=113.0).master("mymaster")
    assert view is not None and not view.failover_in_progress


def test_replicas_links_lag_and_what_nodes_say() -> None:
    state = fold(
        seen(
            100.0,
            S1,
            OLD,
            0,
            replicas=(replica(R2, offset=900), replica(R1, offset=950)),
            peers=(),
            num_other_sentinels=2,
            quorum=2,
        ),
        NodeObserved(
            ts=100.1, address="127.0.0.1:6379", role="master", offset=1000, connected_replicas=2
        ),
        NodeObserved(
            ts=100.1,
            address=R1,
            role="slave",
            master_address="127.0.0.1:6379",
            link="up",
            offset=990,
        ),
    )
    view = state.snapshot(now=101.0).master("mymaster")
    assert view is not None
    assert [(r.address, r.link, r.lag, r.says) for r in view.replicas] == [
        (R1, "ok", 10, "slave"),  # the node's own offset wins over the sentinel's
        (R2, "ok", 100, None),
    ]
    assert view.quorum == 2 and view.sentinels == 1  # peers=() given: only itself


def test_removed_and_hidden_replicas_disappear() -> None:
    state = fold(seen(100.0, S1, OLD, 0, replicas=(replica(R1), replica(R2))))
    state.apply(seen(110.0, S1, OLD, 0, replicas=(replica(R1), replica(R2, announced=False))))
    view = state.snapshot(now=111.0).master("mymaster")
    assert view is not None
    assert [r.address for r in view.replicas] == [R1] and view.hidden_replicas == 1
    state.apply(seen(120.0, S1, OLD, 0, replicas=(replica(R1),)))
    view = state.snapshot(now=121.0).master("mymaster")
    assert view is not None
    assert [r.address for r in view.replicas] == [R1] and view.hidden_replicas == 0
    # a report that did not ask for replicas keeps the last listing
    state.apply(seen(130.0, S1, OLD, 0))
    view = state.snapshot(now=131.0).master("mymaster")
    assert view is not None and [r.address for r in view.replicas] == [R1]


def test_split_brain_warning_when_the_old_master_still_says_master() -> None:
    events = [
        seen(100.0, S1, OLD, 0),
        seen(130.0, S1, NEW, 1, replicas=(replica("127.0.0.1:6379"),)),
        NodeObserved(ts=131.0, address="127.0.0.1:6379", role="master"),
    ]
    view = fold(*events).snapshot(now=132.0).master("mymaster")
    assert view is not None
    assert any(
        w.startswith("split brain: 127.0.0.1:6379 still says it is master") for w in view.warnings
    )
    demoted = fold(*events, NodeObserved(ts=140.0, address="127.0.0.1:6379", role="slave"))
    view = demoted.snapshot(now=141.0).master("mymaster")
    assert view is not None and not any("split brain" in w for w in view.warnings)
    gone = fold(*events, NodeUnreachable(ts=140.0, address="127.0.0.1:6379", reason="refused"))
    view = gone.snapshot(now=141.0).master("mymaster")
    assert view is not None and not any("split brain" in w for w in view.warnings)


def test_tilt_from_a_message_or_a_report_is_a_warning() -> None:
    tilted = fold(
        seen(100.0, S1, OLD, 0),
        seen(100.0, S2, OLD, 0),
        msg(101.0, S2, "+tilt", "#tilt mode entered", detail="#tilt mode entered"),
    )
    view = tilted.snapshot(now=102.0).master("mymaster")
    assert view is not None
    assert view.warnings == (f"sentinel {S2} is in TILT mode: it will not act until it leaves it.",)
    assert view.events[-1].channel == "+tilt"  # a master-less message, one master watched
    tilted.apply(msg(110.0, S2, "-tilt", "#tilt mode exited", detail="#tilt mode exited"))
    view = tilted.snapshot(now=111.0).master("mymaster")
    assert view is not None and view.warnings == ()
    by_report = fold(seen(100.0, S1, OLD, 0, tilt=True)).snapshot(now=101.0).master("mymaster")
    assert by_report is not None and "TILT" in by_report.warnings[0]


def test_quorum_and_disagreement_warnings() -> None:
    state = fold(
        seen(100.0, S1, OLD, 1, ckquorum="OK 3 usable Sentinels", ckquorum_ok=True),
        seen(100.0, S2, NEW, 0, ckquorum="NOQUORUM 1 usable Sentinels", ckquorum_ok=False),
    )
    view = state.snapshot(now=101.0).master("mymaster")
    assert view is not None
    assert view.quorum_ok is False and view.quorum_text == "NOQUORUM 1 usable Sentinels"
    assert view.warnings == (
        f"sentinels disagree: {S2} names 127.0.0.1:6380 (epoch 0), not 127.0.0.1:6379.",
        "no quorum: NOQUORUM 1 usable Sentinels.",
    )


def test_down_master_and_operator_failover_are_shown() -> None:
    state = fold(
        seen(100.0, S1, OLD, 0, flags=("master", "s_down", "o_down")),
        FailoverRequested(ts=101.0, master="mymaster", sentinel=S1, reply="OK", accepted=True),
    )
    view = state.snapshot(now=102.0).master("mymaster")
    assert view is not None
    assert "the sentinels see master 127.0.0.1:6379 as objectively down (o_down)." in view.warnings
    assert view.events[-1].text == f"operator failover via {S1}: accepted (OK)"


def test_a_forgotten_sentinel_is_neither_reachable_nor_unreachable_nor_a_voice() -> None:
    state = fold(
        seen(100.0, S1, OLD, 1),
        seen(100.0, S2, OLD, 1),
        seen(100.0, S3, NEW, 0),
        SentinelUnreachable(ts=101.0, sentinel=S3, reason="connection refused"),
        SentinelForgotten(ts=102.0, sentinel=S3, reason="no sentinel lists it"),
    )
    snapshot = state.snapshot(now=103.0)
    assert S3 not in snapshot.reachable
    assert [u.sentinel for u in snapshot.unreachable] == []
    view = snapshot.master("mymaster")
    assert view is not None and (view.known, view.agree, view.dissent) == (2, 2, ())


def test_a_flapping_address_switch_does_not_flood_the_event_list() -> None:
    run_id = "a" * 40
    flips = [
        msg(
            100.0 + i * 0.2,
            S1,
            "+sentinel-address-switch",
            f"sentinel {run_id} {ip} 26380 @ mymaster 127.0.0.1 6379 "
            f"ip {ip} port 26380 for {run_id}",
            master="mymaster",
            role="sentinel",
            instance=run_id,
            address=f"{ip}:26380",
        )
        for i, ip in enumerate(["127.0.0.1", "::1"] * 10)
    ]
    state = fold(seen(99.0, S1, OLD, 0), *flips)
    view = state.snapshot(now=105.0).master("mymaster")
    assert view is not None
    assert [e.channel for e in view.events] == ["+sentinel-address-switch"]


# --- cheap reads for callers that check per event ------------------------------------


def test_accessors_know_nothing_before_any_report() -> None:
    state = ClusterState()
    assert state.master_names() == ()
    assert state.master_address("mymaster") is None
    assert state.switched_at("mymaster") is None
    # a name heard of without a master (an operator action) is not a known master yet
    state.apply(FailoverRequested(ts=1.0, sentinel=S1, master="other", accepted=True, reply="OK"))
    assert state.master_names() == ()
    assert state.master_address("other") is None


def test_a_switch_master_moves_master_address_and_sets_switched_at() -> None:
    state = fold(seen(100.0, S1, OLD, 0), seen(100.0, S2, OLD, 0))
    assert state.master_names() == ("mymaster",)
    assert state.master_address("mymaster") == "127.0.0.1:6379"
    assert state.switched_at("mymaster") is None  # already master when first seen
    state.apply(switch(120.0, S1, "127.0.0.1:6379", "127.0.0.1:6380"))
    assert state.master_address("mymaster") == "127.0.0.1:6380"
    assert state.switched_at("mymaster") == 120.0
    # the copies from the other sentinels and the topology catching up change nothing
    state.apply(switch(120.4, S2, "127.0.0.1:6379", "127.0.0.1:6380"))
    state.apply(seen(121.0, S1, NEW, 1))
    assert state.switched_at("mymaster") == 120.0
    view = state.snapshot(now=122.0).master("mymaster")
    assert view is not None
    assert (view.address, view.since, view.switched) == (
        state.master_address("mymaster"),
        state.switched_at("mymaster"),
        True,
    )


def test_a_stale_switch_back_moves_neither_master_address_nor_switched_at() -> None:
    state = fold(
        seen(100.0, S1, OLD, 0),
        seen(130.0, S1, NEW, 1),
        seen(130.0, S2, NEW, 1),
        switch(140.0, S3, "127.0.0.1:6380", "127.0.0.1:6379"),
    )
    assert state.master_address("mymaster") == "127.0.0.1:6380"
    assert state.switched_at("mymaster") == 130.0


def test_master_names_are_sorted_and_addresses_are_per_name() -> None:
    v6 = MasterObserved(ts=1.0, sentinel=S1, master="b-cache", ip="::1", port=6390, epoch=0)
    state = fold(v6, seen(1.0, S1, OLD, 0))
    assert state.master_names() == ("b-cache", "mymaster")
    assert state.master_address("b-cache") == "[::1]:6390"
    assert state.master_address("mymaster") == "127.0.0.1:6379"
    assert state.master_address("nope") is None and state.switched_at("nope") is None
