"""`hawatch serve`'s viewer command: no failover key in the browser unless asked, no
journal unless asked, and passwords in the viewer's environment, never on its command
line, with the viewer resolving exactly the settings `serve` did. Also the server's
guards (loopback-only Host, same-origin websocket) and its one-sentence refusals."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hawatch.cli import CELERY_FLAGS, CONNECTION_FLAGS, SCREEN_FLAGS, serve, watch
from hawatch.cli_extras import EXTRA_FLAGS, http_probe_options, prometheus_options
from hawatch.serve import (
    ServeUsageError,
    ViewerCommand,
    WebServer,
    is_loopback,
    url_for,
    viewer_command,
    without_credentials,
)
from hawatch.settings import load_settings

SECRET = "s3rve-Pa55"
OTHER = "0ther-Pa55"


def serve_options(*args: str) -> dict[str, Any]:
    """What `hawatch serve ARGS` hands its body: the parsed options, grouped as the
    CLI's decorators group them."""
    params = serve.make_context("serve", list(args)).params
    return {
        "connection": {name: params[name] for name in CONNECTION_FLAGS},
        "celery": {name: params[name] for name in CELERY_FLAGS},
        "screen": {name: params[name] for name in SCREEN_FLAGS},
        "read_only": params["read_only"],
        "journal": params["journal"],
        "allow_failover": params["browser_failover"],
        "extras": {name: params[name] for name in EXTRA_FLAGS},
    }


def viewer_for(*args: str) -> ViewerCommand:
    return viewer_command(**serve_options(*args))


def watch_params(viewer: ViewerCommand) -> dict[str, Any]:
    """The viewer's command line as `hawatch watch` parses it (it must accept every word)."""
    assert viewer.argv[:4] == (sys.executable, "-m", "hawatch", "watch")
    return watch.make_context("watch", list(viewer.argv[4:])).params


def test_the_browser_gets_no_failover_key_and_no_journal_by_default() -> None:
    viewer = viewer_for("--sentinel", "127.0.0.1:26379")
    assert "--no-failover" in viewer.argv
    assert "--no-journal" in viewer.argv
    params = watch_params(viewer)
    assert params["allow_failover"] is False
    assert params["no_journal"] is True
    assert viewer.shell().startswith("exec ")


def test_allow_failover_offers_the_key() -> None:
    viewer = viewer_for("--sentinel", "127.0.0.1:26379", "--allow-failover")
    assert "--no-failover" not in viewer.argv
    assert watch_params(viewer)["allow_failover"] is True


def test_no_failover_wins_over_allow_failover() -> None:
    viewer = viewer_command(**{**serve_options("--no-failover"), "allow_failover": True})
    assert watch_params(viewer)["allow_failover"] is False


def test_read_only_is_passed_on_and_hides_the_key_in_the_viewer() -> None:
    viewer = viewer_for("--read-only", "--allow-failover")
    assert watch_params(viewer)["read_only"] is True


def test_journal_lets_each_viewer_write_its_own_default_journal() -> None:
    viewer = viewer_for("--journal")
    params = watch_params(viewer)
    assert "--no-journal" not in viewer.argv
    assert params["journal"] is None  # the default file: one per process, named after its pid
    assert params["no_journal"] is False


@pytest.mark.parametrize(
    ("url", "password"),
    [
        (f"redis://:{SECRET}@127.0.0.1:26379", SECRET),
        (f"redis://alice:{SECRET}@127.0.0.1:26379/0?password={SECRET}#x", SECRET),
        (f"rediss://bob:{SECRET}@h1:26379,h2:26380", SECRET),
        (f"sentinel://:{SECRET}@h1:1;sentinel://carol:{OTHER}@h2:2", SECRET),
        ("sentinel://h1:1;sentinel://dave:" + SECRET + "@h2:2", SECRET),
        ("redis+sentinel://erin:" + SECRET.replace("-", "%2D") + "@h1:1,h2:2/mymaster/0", SECRET),
        ("redis://frank@127.0.0.1:26379", None),
    ],
)
@pytest.mark.parametrize("env_password", [None, OTHER])
@pytest.mark.parametrize("username", [None, "grace"])
def test_a_url_password_reaches_the_viewer_through_its_environment_only(
    url: str, password: str | None, env_password: str | None, username: str | None
) -> None:
    env = {"XDG_CONFIG_HOME": "/nonexistent-hawatch-config"}
    if env_password is not None:
        env["HAWATCH_PASSWORD"] = env_password
    args = ["--url", url, *(["--username", username] if username else [])]
    viewer = viewer_for(*args)

    words = " ".join(viewer.argv)
    assert SECRET not in words and OTHER not in words
    assert SECRET.replace("-", "%2D") not in words
    assert "password" not in words
    assert all(p.reveal() in (SECRET,) for p in viewer.secrets.values())
    assert SECRET not in repr(viewer)

    # The viewer, with its command line and environment, resolves what serve resolved.
    original = load_settings(**serve_options(*args)["connection"], env=env)
    params = watch_params(viewer)
    child = load_settings(
        **{name: params[name] for name in CONNECTION_FLAGS}, env=viewer.environment(env)
    )
    assert child == original
    assert (child.password.reveal() if child.password else None) == (
        password if password is not None else env_password
    )


def test_every_option_is_passed_on(tmp_path: Path) -> None:
    config = tmp_path / "hawatch.toml"
    config.write_text("")
    viewer = viewer_for(
        "--sentinel",
        "127.0.0.1:1",
        "--sentinel",
        "[::1]:2",
        "--master",
        "m1",
        "--master",
        "m2",
        "--username",
        "alice",
        "--node-username",
        "nodes",
        "--tls-ca-cert",
        "ca.pem",
        "--tls-cert",
        "client.pem",
        "--tls-key",
        "client.key",
        "--config",
        str(config),
        "--broker",
        "redis://127.0.0.1:6390/0",
        "--app",
        "proj.celery",
        "--queue",
        "q1",
        "--queue",
        "q2",
        "--canary",
        "2.5",
        "--lost-after",
        "45",
        "--no-celery",
        "--theme",
        "ansi",
        "--no-bell",
        "--refresh",
        "1.5",
        "--read-only",
    )
    params = watch_params(viewer)
    assert params["sentinels"] == ("127.0.0.1:1", "[::1]:2")
    assert params["masters"] == ("m1", "m2")
    assert params["username"] == "alice"
    assert params["node_username"] == "nodes"
    assert (params["tls_ca_cert"], params["tls_cert"], params["tls_key"]) == (
        "ca.pem",
        "client.pem",
        "client.key",
    )
    assert params["config"] == str(config)
    assert params["broker"] == "redis://127.0.0.1:6390/0"
    assert params["app"] == "proj.celery"
    assert params["queues"] == ("q1", "q2")
    assert params["canary_rate"] == 2.5
    assert params["lost_after"] == 45
    assert params["celery_enabled"] is False
    assert params["theme"] == "ansi"
    assert params["bell"] is False
    assert params["refresh"] == 1.5
    assert params["read_only"] is True


def test_a_broker_url_with_a_password_is_refused() -> None:
    for broker in (f"redis://:{SECRET}@h:6379/0", f"redis://h:6379/0?password={SECRET}"):
        with pytest.raises(ServeUsageError) as caught:
            viewer_for("--broker", broker)
        assert SECRET not in str(caught.value)


def test_without_credentials() -> None:
    assert without_credentials(f"redis://u:{SECRET}@h:1/0?password={SECRET}") == "redis://h:1/0"
    assert (
        without_credentials(f"sentinel://:{SECRET}@h1:1;sentinel://h2:2/")
        == "sentinel://h1:1;sentinel://h2:2/"
    )
    assert without_credentials("rediss+sentinel://h1:1,h2:2/m") == "rediss+sentinel://h1:1,h2:2/m"


def test_addresses() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("127.0.0.2")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    with pytest.raises(ServeUsageError):
        is_loopback("")
    assert url_for("127.0.0.1", 8000) == "http://127.0.0.1:8000"
    assert url_for("::1", 8000) == "http://[::1]:8000"


# --------------------------------------------------------------------------- the server's guards


async def test_a_page_for_another_host_or_origin_is_refused() -> None:
    """Listening on loopback, the server answers only requests addressed to a loopback name
    (DNS rebinding) and opens a screen only for a page of its own origin."""
    server = WebServer(ViewerCommand(argv=("true",)), host="127.0.0.1", port=0)
    client = TestClient(TestServer(await server._make_app(), host="127.0.0.1"))
    await client.start_server()
    try:
        page = await client.get("/")
        assert page.status == 200
        assert page.headers["Cache-Control"] == "no-store"  # no back-forward cache
        text = await page.text()
        assert f'data-session-websocket-url="ws://127.0.0.1:{client.port}/ws"' in text
        rebound = await client.get("/", headers={"Host": f"evil.example:{client.port}"})
        assert rebound.status == 403
        foreign = await client.get(
            "/ws",
            headers={
                "Origin": "http://evil.example",
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            },
        )
        assert foreign.status == 403
        assert server.viewer_pids == []
    finally:
        await client.close()


# --------------------------------------------------------------------------- the command line


def run_serve(*args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HAWATCH_", "REDIS_ADDR"))}
    base["XDG_CONFIG_HOME"] = "/nonexistent-hawatch-config"
    return subprocess.run(
        [sys.executable, "-m", "hawatch", "serve", *args],
        capture_output=True,
        text=True,
        env=base,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_a_taken_port_is_one_sentence_and_status_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_serve("--url", f"redis://:{SECRET}@127.0.0.1:26379", "--port", str(port))
    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        f"hawatch: error: cannot listen on 127.0.0.1:{port} (address already in use); "
        "choose another --port or --host.\n"
    )
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--host", "no-such-host.invalid"], "--host 'no-such-host.invalid'"),
        (["--host", ""], "--host is empty"),
        (["--port", "70000"], "--port"),
        (["--allow-failover", "--no-failover"], "contradict"),
        (["--broker", f"redis://:{SECRET}@127.0.0.1:6379/0"], "--broker holds a password"),
        (["--url", f"redis://:{SECRET}@127.0.0.1:0"], "out of range"),
    ],
)
def test_bad_input_is_one_sentence_and_status_2(args: list[str], needle: str) -> None:
    result = run_serve(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hawatch: error: "), result.stderr
    assert needle in lines[0]
    assert SECRET not in result.stderr + result.stdout
    assert result.stdout == ""


def test_prometheus_and_probes_reach_the_viewer_without_their_password() -> None:
    options = serve_options(
        "--prometheus",
        f"http://ops:{SECRET}@127.0.0.1:9090/prom",
        "--promql",
        "sum(up)",
        "--http-probe",
        "http://127.0.0.1:8801/health",
        "--http-probe-status",
        "204",
        "--http-probe-timeout",
        "1.5",
    )
    viewer = viewer_command(**options)
    assert SECRET not in " ".join(viewer.argv)
    assert viewer.secrets["HAWATCH_PROMETHEUS_PASSWORD"].reveal() == SECRET
    params = watch_params(viewer)
    child = {name: params[name] for name in EXTRA_FLAGS}
    env = {"HAWATCH_PROMETHEUS_PASSWORD": SECRET}
    mine, theirs = prometheus_options(options["extras"], {}), prometheus_options(child, env)
    assert mine is not None and theirs is not None
    assert (theirs.url, theirs.username, theirs.queries) == (mine.url, mine.username, mine.queries)
    assert theirs.password is not None and theirs.password.reveal() == SECRET
    assert http_probe_options(child) == http_probe_options(options["extras"])


def test_a_probe_url_with_a_password_is_refused() -> None:
    with pytest.raises(ServeUsageError, match="--http-probe holds a password"):
        viewer_for("--http-probe", f"http://u:{SECRET}@127.0.0.1:8801/")
