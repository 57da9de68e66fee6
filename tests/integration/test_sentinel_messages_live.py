"""The message parser against what a real sentinel publishes: nothing may come out unparsed.

A plain redis-py client subscribes with ``PSUBSCRIBE *`` to one sentinel of a
fresh lab while the test makes the sentinels talk: a forced failover, a crash
and the old master's return, admin commands on a master named ``master`` at a
host name, a replica that announces an IPv6 address, and TILT.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from hawatch.core.events import SentinelMessage, UnparsedSentinelMessage
from hawatch.lab import LabCluster, LabNode, ManagedProcess
from hawatch.sources.sentinel_messages import parse_message

pytestmark = pytest.mark.integration

Parsed = SentinelMessage | UnparsedSentinelMessage


class Listener:
    """Everything one sentinel publishes, parsed as it is read."""

    def __init__(self, node: LabNode) -> None:
        self.node = node
        self.client = node.client(timeout=5.0)
        self.pubsub = self.client.pubsub()
        self.pubsub.psubscribe("*")
        self.events: list[Parsed] = []

    def read_until(self, done: Callable[[list[Parsed]], bool], timeout: float = 30.0) -> None:
        """Read messages until `done(events)` holds; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not done(self.events):
            left = deadline - time.monotonic()
            assert left > 0, f"timed out; channels seen: {self.channels()}"
            message = self.pubsub.get_message(timeout=min(left, 0.5))
            if message is None or message["type"] != "pmessage":
                continue
            event = parse_message(
                message["channel"], message["data"], sentinel=str(self.node.address), ts=time.time()
            )
            self.events.append(event)

    def channels(self) -> list[str]:
        return [e.channel for e in self.events]

    def seen(self, channel: str, count: int = 1) -> Callable[[list[Parsed]], bool]:
        return lambda events: sum(e.channel == channel for e in events) >= count

    def close(self) -> None:
        with contextlib.suppress(redis.RedisError, OSError):
            self.pubsub.close()
            self.client.close()


@pytest.fixture
def listener(lab: LabCluster) -> Iterator[Listener]:
    """A subscriber on the lab's first sentinel (the one `lab.failover()` asks)."""
    subscriber = Listener(lab.sentinel_nodes[0])
    try:
        yield subscriber
    finally:
        subscriber.close()


def assert_all_parsed(events: list[Parsed]) -> None:
    unparsed = [e for e in events if isinstance(e, UnparsedSentinelMessage)]
    assert not unparsed, unparsed
    assert events


def test_failover_crash_and_return_messages_all_parse(lab: LabCluster, listener: Listener) -> None:
    first = lab.current_master()
    assert lab.failover() == "OK"
    second = lab.wait_for_new_master(first.port)
    listener.read_until(listener.seen("+switch-master"))
    (switch,) = [e for e in listener.events if e.channel == "+switch-master"]
    assert isinstance(switch, SentinelMessage)
    assert (switch.master, switch.old, switch.new) == (
        "mymaster",
        f"127.0.0.1:{first.port}",
        f"127.0.0.1:{second.port}",
    )
    # The sentinel asked to fail over leads it: it publishes every step.
    assert {
        "+new-epoch",
        "+try-failover",
        "+elected-leader",
        "+failover-state-select-slave",
        "+selected-slave",
        "+failover-state-send-slaveof-noone",
        "+promoted-slave",
        "+failover-end",
    } <= set(listener.channels())

    lab.kill(second)
    third = lab.wait_for_new_master(second.port)
    listener.read_until(listener.seen("+switch-master", 2))
    last = [e for e in listener.events if e.channel == "+switch-master"][-1]
    assert isinstance(last, SentinelMessage)
    assert (last.old, last.new) == (f"127.0.0.1:{second.port}", f"127.0.0.1:{third.port}")
    odown = next(e for e in listener.events if e.channel == "+odown")
    assert isinstance(odown, SentinelMessage) and odown.detail is not None
    assert odown.detail.startswith("#quorum ") and odown.address == f"127.0.0.1:{second.port}"

    # The old master returns and is demoted: the sentinel that does it publishes
    # +convert-to-slave, the others see its role change to slave.
    returned = len(listener.events)
    lab.restart(second)
    name = f"127.0.0.1:{second.port}"
    listener.read_until(
        lambda events: any(
            e.channel in ("+convert-to-slave", "+role-change")
            and e.payload.startswith(f"slave {name} ")
            for e in events[returned:]
        )
    )
    assert {"+sdown", "+odown", "+slave"} <= set(listener.channels())
    assert_all_parsed(listener.events)


def test_admin_commands_hostnames_and_tilt_all_parse(lab: LabCluster, listener: Listener) -> None:
    sentinel = listener.node
    port = lab.current_master().port
    sentinel.call("SENTINEL", "CONFIG", "SET", "resolve-hostnames", "yes")
    sentinel.call("SENTINEL", "CONFIG", "SET", "announce-hostnames", "yes")
    # A second name for the same node, called `master`, at a host name.
    sentinel.call("SENTINEL", "MONITOR", "master", "localhost", str(port), "1")
    sentinel.call("SENTINEL", "SET", "master", "quorum", "2")
    sentinel.call("SENTINEL", "SET", "master", "auth-pass", "not-shown")
    sentinel.call("SENTINEL", "SET", "master", "rename-command", "CONFIG", "CONFIG")
    sentinel.call("SENTINEL", "RESET", "master")
    sentinel.call("SENTINEL", "REMOVE", "master")
    listener.read_until(listener.seen("-monitor"))
    by_channel = {e.channel: e for e in listener.events}
    monitor = by_channel["+monitor"]
    assert isinstance(monitor, SentinelMessage)
    assert (monitor.master, monitor.role, monitor.instance, monitor.address, monitor.detail) == (
        "master",
        "master",
        "master",
        f"localhost:{port}",
        "quorum 1",
    )
    details = [e.detail for e in listener.events if e.channel == "+set"]
    assert details == ["quorum 2", "auth-pass ******", "rename-command CONFIG CONFIG"]
    assert {"+reset-master", "-monitor"} <= set(by_channel)

    # A sentinel whose timer stalls for more than 2 s enters TILT, and leaves it later.
    lab.pause(sentinel)
    time.sleep(2.5)
    lab.resume(sentinel)
    listener.read_until(listener.seen("-tilt"), timeout=30.0)
    tilt = next(e for e in listener.events if e.channel == "+tilt")
    assert isinstance(tilt, SentinelMessage) and tilt.detail == "#tilt mode entered"
    assert_all_parsed(listener.events)


def _ipv6_port() -> int:
    """A free port on ::1; skips the test where this machine has no IPv6 loopback."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
            return int(s.getsockname()[1])
    except OSError:
        pytest.skip("this machine has no IPv6 loopback (::1)")


def test_a_replica_that_announces_ipv6_parses(lab: LabCluster, listener: Listener) -> None:
    port = _ipv6_port()
    master = lab.current_master()
    assert lab.directory is not None
    directory = lab.directory / "v6-replica"
    directory.mkdir()
    conf = directory / "redis.conf"
    conf.write_text(
        "\n".join(
            [
                f"port {port}",
                "bind ::1",
                f'dir "{directory}"',
                'save ""',
                f"replicaof 127.0.0.1 {master.port}",
                "replica-announce-ip ::1",
                "",
            ]
        )
    )
    lab.register(
        ManagedProcess(
            f"v6-replica:{port}", [lab.binary, str(conf)], log_path=directory / "server.log"
        )
    )
    name = f"[::1]:{port}"
    listener.read_until(
        lambda events: any(
            e.channel == "+slave" and e.payload.startswith(f"slave {name} ") for e in events
        )
    )
    slave = next(e for e in listener.events if e.channel == "+slave" and name in e.payload)
    assert isinstance(slave, SentinelMessage)
    assert (slave.role, slave.instance, slave.address, slave.master) == (
        "slave",
        name,
        name,
        "mymaster",
    )
    # Sentinels now hear each other's hellos through ::1 too, and say so.
    listener.read_until(
        lambda events: any(
            e.channel == "+sentinel-address-switch" and " ip ::1 " in e.payload for e in events
        )
    )
    assert_all_parsed(listener.events)
