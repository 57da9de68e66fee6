"""Passwords, ACL users and TLS against real servers: hawatch reaches a protected
cluster with the right settings, says why in one sentence without them, and a
read-only monitor user can watch but not fail over.

Each protected lab is started once per module (a lab takes a second or two);
the tests only read from it, except the ACL test, which adds users.
"""

from __future__ import annotations

import asyncio
import stat
import sys
import textwrap
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis import exceptions as rex

from hawatch.core.events import (
    Event,
    MasterObserved,
    SentinelReachable,
    SentinelUnreachable,
    to_json,
)
from hawatch.lab.cluster import LabCluster, LabConfig, LabNode, TlsUnavailable
from hawatch.lab.procs import LabError
from hawatch.settings import Secret, Settings, load_settings

pytestmark = pytest.mark.integration

NODE_PW = "n0de-pw-5e1f"
SENTINEL_PW = "s3nt-pw-9a2c"
MONITOR_PW = "m0n-pw-77d1"
NODE_MONITOR_PW = "nm0n-pw-31b0"
SECRETS = (NODE_PW, SENTINEL_PW, MONITOR_PW, NODE_MONITOR_PW)

#: The read-only monitor user of the reference (docs: Access control), exactly.
MONITOR_ACL = (
    "&* -@all +ping +hello +auth +client|setname +client|setinfo +info +role +subscribe "
    "+psubscribe +unsubscribe +punsubscribe +sentinel|masters +sentinel|master "
    "+sentinel|replicas +sentinel|slaves +sentinel|sentinels "
    "+sentinel|get-master-addr-by-name +sentinel|ckquorum +sentinel|info-cache +sentinel|myid"
)
#: Rules the server may not know: CLIENT SETINFO arrived in Redis 7.2.
NEWER_RULES = ("+client|setinfo",)
#: What a monitor needs on a data node.
NODE_MONITOR_ACL = "+ping +info +role"


Survey = Callable[..., Awaitable[list[Event]]]
"""The `survey` fixture of conftest.py: run the Sentinel source until every sentinel answered."""

# --------------------------------------------------------------------------- helpers


def assert_no_secret(*texts: str) -> None:
    """None of the lab's passwords appears in any of `texts`."""
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"a password leaked into {text!r}"


def assert_watched(events: list[Event], lab: LabCluster) -> None:
    """Every sentinel answered and named the lab's current master."""
    master = lab.current_master()
    sentinels = {str(a) for a in lab.sentinel_addresses}
    reachable = {e.sentinel for e in events if isinstance(e, SentinelReachable)}
    observed = {e.sentinel: (e.master, e.port) for e in events if isinstance(e, MasterObserved)}
    assert reachable == sentinels, events
    assert observed == dict.fromkeys(sentinels, (lab.master_name, master.port)), events
    assert not [e for e in events if isinstance(e, SentinelUnreachable)]


def reasons(events: list[Event]) -> set[str]:
    """The distinct reasons of the `SentinelUnreachable` events."""
    return {e.reason for e in events if isinstance(e, SentinelUnreachable)}


def everything_shown(events: list[Event], settings: Settings) -> list[str]:
    """Every text hawatch could show or record about these events and settings."""
    return [
        *(to_json(e) for e in events),
        *(repr(e) for e in events),
        repr(settings),
        str(settings),
        settings.describe(),
    ]


async def node_call(settings: Settings, lab: LabCluster, *args: str) -> object:
    """Run one command on the lab's current master with the settings' data-node credentials."""
    master = lab.current_master()
    client = aioredis.Redis(
        host=master.host,
        port=master.port,
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
        decode_responses=True,
        **settings.node_redis_kwargs(),  # type: ignore[arg-type]
    )
    try:
        return await client.execute_command(*args)
    finally:
        await client.aclose()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def password_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabCluster]:
    """A lab whose data nodes and sentinels each have their own password."""
    config = LabConfig.fast(
        base_dir=tmp_path_factory.mktemp("password-lab"),
        password=NODE_PW,
        sentinel_password=SENTINEL_PW,
    )
    with LabCluster(config) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def tls_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabCluster]:
    """A lab that speaks TLS only, with passwords too; skipped if the server has no TLS."""
    config = LabConfig.fast(
        base_dir=tmp_path_factory.mktemp("tls-lab"),
        tls=True,
        password=NODE_PW,
        sentinel_password=SENTINEL_PW,
    )
    try:
        cluster = LabCluster(config).start()
    except TlsUnavailable as exc:
        pytest.skip(f"no TLS lab on this machine: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


# --------------------------------------------------------------------------- passwords


async def test_lab_settings_reach_a_password_protected_lab(
    survey: Survey, password_lab: LabCluster
) -> None:
    settings = password_lab.settings()
    assert settings.password == Secret(SENTINEL_PW)
    assert settings.node_password == Secret(NODE_PW)
    events = await survey(settings)
    assert_watched(events, password_lab)
    # The data-node credentials reach the data nodes.
    assert (await node_call(settings, password_lab, "ROLE"))[0] == "master"  # type: ignore[index]
    assert_no_secret(*everything_shown(events, settings))


async def test_without_the_password_the_reason_says_authentication_required(
    survey: Survey,
    password_lab: LabCluster,
) -> None:
    settings = password_lab.settings(password=None, node_password=None)
    events = await survey(settings)
    assert reasons(events) == {"authentication required: this sentinel needs a password"}
    assert not [e for e in events if isinstance(e, MasterObserved)]
    assert_no_secret(*everything_shown(events, settings))
    # The data nodes refuse too, with Redis's own NOAUTH (to HELLO or to the command).
    with pytest.raises(rex.AuthenticationError, match=r"(?i)authenticat"):
        await node_call(settings, password_lab, "ROLE")


async def test_a_wrong_password_is_named_and_never_shown(
    survey: Survey, password_lab: LabCluster
) -> None:
    wrong = "wr0ng-pw-0000"
    settings = password_lab.settings(password=Secret(wrong))
    events = await survey(settings)
    (reason,) = reasons(events)
    assert reason.startswith("authentication failed"), reason
    for text in everything_shown(events, settings):
        assert wrong not in text
    assert_no_secret(*everything_shown(events, settings))


async def test_the_sentinel_password_alone_does_not_open_the_data_nodes(
    survey: Survey,
    password_lab: LabCluster,
) -> None:
    # Without node credentials the nodes get the sentinel password, which is not theirs.
    settings = password_lab.settings(node_password=None)
    assert_watched(await survey(settings), password_lab)
    with pytest.raises(rex.AuthenticationError) as exc_info:
        await node_call(settings, password_lab, "ROLE")
    assert_no_secret(str(exc_info.value))


# --------------------------------------------------------------------------- ACL users


async def test_read_only_monitor_user_watches_and_cannot_fail_over(
    survey: Survey,
    password_lab: LabCluster,
) -> None:
    lab = password_lab
    for sentinel in lab.sentinel_nodes:
        set_user(sentinel, MONITOR_PW, MONITOR_ACL.split())
    for node in lab.data_nodes:
        reply = node.call(
            "ACL", "SETUSER", "hawatch", "on", f">{NODE_MONITOR_PW}", *NODE_MONITOR_ACL.split()
        )
        assert reply in (True, "OK")
    settings = lab.settings(
        username="hawatch",
        password=Secret(MONITOR_PW),
        node_username="hawatch",
        node_password=Secret(NODE_MONITOR_PW),
    )
    before = lab.master_by_sentinel()

    # The poller watches with the monitor user.
    events = await survey(settings)
    assert_watched(events, lab)
    assert_no_secret(*everything_shown(events, settings))

    # Everything else a watcher asks a sentinel is allowed, PSUBSCRIBE * included.
    address = lab.sentinel_addresses[0]
    client = aioredis.Redis(
        host=address.host,
        port=address.port,
        socket_timeout=2.0,
        decode_responses=True,
        single_connection_client=True,
        **settings.redis_kwargs(),  # type: ignore[arg-type]
    )
    try:
        for command in (
            ("SENTINEL", "MASTER", lab.master_name),
            ("SENTINEL", "REPLICAS", lab.master_name),
            ("SENTINEL", "SENTINELS", lab.master_name),
            ("SENTINEL", "GET-MASTER-ADDR-BY-NAME", lab.master_name),
            ("SENTINEL", "CKQUORUM", lab.master_name),
            ("SENTINEL", "MYID"),
            ("INFO", "sentinel"),
            ("ROLE",),
        ):
            await client.execute_command(*command)

        # ... but SENTINEL FAILOVER is refused, on this one connection.
        with pytest.raises(rex.ResponseError) as exc_info:
            await client.execute_command("SENTINEL", "FAILOVER", lab.master_name)
    finally:
        await client.aclose()
    error = exc_info.value
    # redis-py strips the error code from the text and maps NOPERM to this class.
    assert isinstance(error, rex.NoPermissionError), repr(error)
    assert "no permissions" in str(error) and "sentinel|failover" in str(error)
    # On the wire the reply is literally -NOPERM: check it with a bare connection.
    wire = await raw_exchange(
        address.host,
        address.port,
        [("AUTH", "hawatch", MONITOR_PW), ("SENTINEL", "FAILOVER", lab.master_name)],
    )
    assert wire[0] == "+OK"
    assert wire[1].startswith("-NOPERM "), wire
    await asyncio.sleep(1.0)
    assert lab.master_by_sentinel() == before  # nothing failed over

    pubsub_client = aioredis.Redis(
        host=address.host,
        port=address.port,
        socket_timeout=2.0,
        **settings.redis_kwargs(),  # type: ignore[arg-type]
    )
    pubsub = pubsub_client.pubsub()
    try:
        await pubsub.psubscribe("*")
        confirmation = await pubsub.get_message(timeout=2.0)
        assert confirmation is not None and confirmation["type"] == "psubscribe"
    finally:
        await pubsub.aclose()
        await pubsub_client.aclose()

    # On the data nodes the monitor user reads roles and INFO, and nothing more.
    assert (await node_call(settings, lab, "ROLE"))[0] == "master"  # type: ignore[index]
    info = await node_call(settings, lab, "INFO", "replication")
    assert isinstance(info, dict) and info["role"] == "master"
    with pytest.raises(rex.NoPermissionError):
        await node_call(settings, lab, "SET", "hawatch-test", "1")


def set_user(node: LabNode, password: str, rules: list[str]) -> None:
    """``ACL SETUSER hawatch on >PASSWORD <rules>`` exactly; on a server older than a rule
    (Redis 7.0 has no CLIENT SETINFO), again without the rules it does not know."""
    try:
        reply = node.call("ACL", "SETUSER", "hawatch", "on", f">{password}", *rules)
    except rex.ResponseError as exc:
        unknown = [rule for rule in NEWER_RULES if f"'{rule}'" in str(exc)]
        if not unknown or "Unknown command" not in str(exc):
            raise
        kept = [rule for rule in rules if rule not in NEWER_RULES]
        reply = node.call("ACL", "SETUSER", "hawatch", "on", f">{password}", *kept)
    assert reply in (True, "OK")


async def raw_exchange(host: str, port: int, commands: list[tuple[str, ...]]) -> list[str]:
    """Send `commands` as RESP arrays on one plain connection; return each first reply line."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        replies = []
        for command in commands:
            parts = [f"*{len(command)}\r\n"]
            for arg in command:
                data = arg.encode()
                parts.append(f"${len(data)}\r\n{arg}\r\n")
            writer.write("".join(parts).encode())
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 2.0)
            replies.append(line.decode().rstrip("\r\n"))
        return replies
    finally:
        writer.close()
        await writer.wait_closed()


# --------------------------------------------------------------------------- TLS


def tls_url(lab: LabCluster) -> str:
    """A rediss:// URL over every sentinel of the lab, with its sentinel password."""
    hosts = ",".join(str(a) for a in lab.sentinel_addresses)
    return f"rediss://:{SENTINEL_PW}@{hosts}"


async def test_rediss_url_with_the_ca_watches_a_tls_lab(
    survey: Survey, tls_lab: LabCluster, tmp_path: Path
) -> None:
    assert tls_lab.tls is not None
    env = {"HOME": str(tmp_path), "HAWATCH_NODE_PASSWORD": NODE_PW}
    settings = load_settings(
        url=tls_url(tls_lab),
        masters=[tls_lab.master_name],
        tls_ca_cert=str(tls_lab.tls.ca_cert),
        env=env,
    )
    assert settings.tls and settings.tls_ca_cert == tls_lab.tls.ca_cert
    events = await survey(settings)
    assert_watched(events, tls_lab)
    assert (await node_call(settings, tls_lab, "ROLE"))[0] == "master"  # type: ignore[index]
    # The lab's own settings say the same.
    assert_watched(await survey(tls_lab.settings()), tls_lab)
    assert_no_secret(*everything_shown(events, settings))


async def test_without_the_ca_the_reason_is_a_tls_failure(
    survey: Survey, tls_lab: LabCluster, tmp_path: Path
) -> None:
    settings = load_settings(url=tls_url(tls_lab), env={"HOME": str(tmp_path)})
    events = await survey(settings)
    (reason,) = reasons(events)
    assert "TLS" in reason, reason
    assert not [e for e in events if isinstance(e, MasterObserved)]
    assert_no_secret(*everything_shown(events, settings))


async def test_skipping_verification_reaches_the_tls_lab(
    survey: Survey, tls_lab: LabCluster, tmp_path: Path
) -> None:
    env = {"HOME": str(tmp_path), "HAWATCH_TLS_INSECURE_SKIP_VERIFY": "yes"}
    settings = load_settings(url=tls_url(tls_lab), env=env)
    assert "CERTIFICATES NOT VERIFIED" in settings.describe()
    assert_watched(await survey(settings), tls_lab)


# --------------------------------------------------------------------------- no TLS in the server


def fake_server(tmp_path: Path, body: str) -> str:
    """An executable that stands in for a redis-server built without TLS."""
    script = tmp_path / "fake-redis-server"
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_a_server_that_drops_tls_connections_is_reported(tmp_path: Path) -> None:
    # Redis 7.0 built without TLS starts, listens on tls-port and drops every connection.
    binary = fake_server(
        tmp_path,
        """
        import re, socket, sys
        port = int(re.search(r"^tls-port (\\d+)", open(sys.argv[1]).read(), re.M).group(1))
        server = socket.create_server(("127.0.0.1", port))
        while True:
            connection, _ = server.accept()
            connection.close()
        """,
    )
    config = LabConfig.fast(base_dir=tmp_path / "lab", tls=True, server_binary=binary)
    with pytest.raises(TlsUnavailable) as exc_info:
        LabCluster(config).start()
    message = str(exc_info.value)
    assert "never completes a TLS handshake" in message and "without TLS" in message
    assert isinstance(exc_info.value, LabError)


def test_a_server_that_refuses_tls_settings_is_reported(tmp_path: Path) -> None:
    binary = fake_server(
        tmp_path,
        """
        import sys
        print("# Failed to configure TLS. Check logs for more info.", flush=True)
        sys.exit(1)
        """,
    )
    config = LabConfig.fast(base_dir=tmp_path / "lab", tls=True, server_binary=binary)
    with pytest.raises(TlsUnavailable, match="refused the TLS settings"):
        LabCluster(config).start()


def test_lab_passwords_must_fit_a_config_line() -> None:
    for bad in ("", "two words", 'quo"te', "back\\slash"):
        with pytest.raises(LabError, match="password"):
            LabConfig(password=bad)
        with pytest.raises(LabError, match="sentinel password"):
            LabConfig(sentinel_password=bad)
    assert NODE_PW not in repr(LabConfig(password=NODE_PW, sentinel_password=SENTINEL_PW))
