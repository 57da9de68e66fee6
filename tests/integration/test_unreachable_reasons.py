"""Why hawatch says a sentinel failed, against real servers: one sentence an on-call engineer
can act on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from hawatch.core.events import Event, MasterObserved, SentinelUnreachable
from hawatch.lab import LabCluster
from hawatch.lab.procs import free_port
from hawatch.settings import SentinelAddress, Settings

pytestmark = pytest.mark.integration


async def test_failures_are_named_in_a_sentence(
    lab: LabCluster, survey: Callable[..., Awaitable[list[Event]]]
) -> None:
    data_node = lab.current_master().address
    closed = SentinelAddress("127.0.0.1", free_port())
    paused = lab.sentinel_nodes[2]
    lab.pause(paused)
    try:
        events = await survey(Settings(sentinels=(data_node, closed, paused.address)))
    finally:
        lab.resume(paused)
    reasons = {e.sentinel: e.reason for e in events if isinstance(e, SentinelUnreachable)}
    assert reasons == {
        str(data_node): "not a sentinel: it does not know SENTINEL MASTERS",
        str(closed): "connection refused",
        str(paused.address): "timed out after 1.0 s",
    }
    assert not [e for e in events if isinstance(e, MasterObserved)]


async def test_a_master_filter_keeps_other_masters_out(
    lab: LabCluster, survey: Callable[..., Awaitable[list[Event]]]
) -> None:
    seed = lab.sentinel_addresses[0]
    events = await survey(Settings(sentinels=(seed,), masters=(lab.master_name,)))
    assert {e.master for e in events if isinstance(e, MasterObserved)} == {lab.master_name}
    lab.sentinel_nodes[0].call("SENTINEL", "MONITOR", "other", "127.0.0.1", "1", "1")
    try:
        filtered = await survey(Settings(sentinels=(seed,), masters=(lab.master_name,)))
        everything = await survey(Settings(sentinels=(seed,)))
    finally:
        lab.sentinel_nodes[0].call("SENTINEL", "REMOVE", "other")
    assert {e.master for e in filtered if isinstance(e, MasterObserved)} == {lab.master_name}
    assert {e.master for e in everything if isinstance(e, MasterObserved)} == {
        lab.master_name,
        "other",
    }
