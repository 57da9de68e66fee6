"""The command line as a user meets it: help, and one clear sentence with status 2 for bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SECRET = "s3cr3t-Pa55"


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m hawatch` with a clean environment (no user config, no REDIS_ADDR)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HAWATCH_", "REDIS_ADDR"))}
    base["XDG_CONFIG_HOME"] = str(cwd or Path("/nonexistent-hawatch-config"))
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "hawatch", *args],
        capture_output=True,
        text=True,
        env=base,
        cwd=cwd,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def assert_refused(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit status 2, exactly one line on stderr, nothing on stdout, no traceback, no secret."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hawatch: error: ")
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert result.stdout == ""
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["watch", "--sentinel", "127.0.0.1:99999"], "99999"),
        (["watch", "--sentinel", "127.0.0.1:0"], "out of range"),
        (["watch", "--sentinel", "127.0.0.1:port"], "port"),
        (["watch", "--sentinel", ":26379"], "host"),
        (["watch", "--url", f"redis://:{SECRET}@127.0.0.1:70000"], "70000"),
        (["watch", "--url", f"redis://user:{SECRET}@:26379"], "host"),
        (["watch", "--url", f"ftp://:{SECRET}@127.0.0.1:26379"], "ftp"),
        (["watch", "--url", f"sentinel://:{SECRET}@h1:abc;sentinel://h2:26379"], "abc"),
        (["watch", "--url", "not a url at all"], "--url"),
        (["watch", "--master", ""], "master"),
        (["watch", "--master", "two words"], "master"),
        (["--sentinel", "127.0.0.1:123456"], "123456"),  # the default command
        (["watch", "--config", "/nonexistent/hawatch.toml"], "/nonexistent/hawatch.toml"),
        (["watch", "--no-such-option"], "--no-such-option"),
        (["watch", "--tls-ca-cert", "/nonexistent/ca.pem"], "/nonexistent/ca.pem"),
        (["events", "--tls-cert", "/nonexistent/client.pem"], "/nonexistent/client.pem"),
        (["lab", "--sentinels", "3", "--quorum", "4"], "quorum"),
        (["lab", "--replicas", "-1"], "--replicas"),
        (["demo", "--down-after", "10"], "--down-after"),
        (["events", "--sentinel", "127.0.0.1:99999"], "99999"),
        (["events", "--url", f"redis://:{SECRET}@127.0.0.1:0"], "out of range"),
        (["watch", "--broker", f"amqp://guest:{SECRET}@localhost//"], "'amqp' is not a broker"),
        (["events", "--broker", f"localhost:{SECRET}"], "no scheme"),
        (["events", "--canary", "-1"], "--canary"),
        (["watch", "--canary", "101"], "--canary"),
        (["watch", "--lost-after", "soon"], "--lost-after"),
        (["watch", "--canary", "1", "--read-only"], "--canary sends tasks"),
    ],
)
def test_bad_input_is_one_sentence_and_status_2(args: list[str], needle: str) -> None:
    assert_refused(run(*args), needle)


@pytest.mark.parametrize("command", ["lab", "demo"])
def test_a_missing_server_binary_is_one_sentence_and_status_1(command: str, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-redis-server"
    result = run(command, "--dir", str(tmp_path), env={"HAWATCH_REDIS_SERVER": str(missing)})
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"hawatch: error: HAWATCH_REDIS_SERVER names '{missing}', which is not an executable "
        "file; point it at a redis-server or valkey-server binary."
    )
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_bad_redis_addr_in_the_environment_is_refused_without_the_password() -> None:
    result = run("watch", env={"REDIS_ADDR": f"redis://:{SECRET}@127.0.0.1:99999"})
    assert_refused(result, "REDIS_ADDR")


def test_broken_config_file_is_refused_without_its_content(tmp_path: Path) -> None:
    config = tmp_path / "hawatch.toml"
    config.write_text(f'password = "{SECRET}"\nsentinels = ["127.0.0.1:26379"\n')
    assert_refused(run("watch", "--config", str(config)), str(config))


def test_default_config_file_with_a_bad_address_is_refused(tmp_path: Path) -> None:
    (tmp_path / "hawatch").mkdir()
    (tmp_path / "hawatch" / "config.toml").write_text(
        f'url = "redis://:{SECRET}@127.0.0.1:26379"\nmaster = ""\n'
    )
    assert_refused(run("watch", cwd=tmp_path), "master")


@pytest.mark.parametrize(
    "command", [[], ["watch"], ["lab"], ["demo"], ["events"], ["drill"], ["replay"], ["serve"]]
)
def test_every_command_has_help(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: hawatch")
    assert result.stderr == ""
    text = " ".join(result.stdout.split())
    if not command:
        for name in ("watch", "lab", "demo", "events", "drill", "replay", "serve"):
            assert f" {name} " in text
        assert "Without a command, hawatch runs `watch`" in text
    if command == ["watch"]:
        assert "--sentinel HOST:PORT" in text and "--read-only" in text
    if command in (["lab"], ["demo"]):
        assert "--down-after MS" in text and "--replicas" in text


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip().startswith("hawatch, version ")


def test_console_script_and_module_are_the_same_program() -> None:
    script = Path(sys.executable).parent / "hawatch"
    assert script.exists()
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == run("--version").stdout


def test_refresh_caps_textuals_frame_rate_before_textual_is_imported() -> None:
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "os.environ.pop('TEXTUAL_FPS', None)\n"
        "from hawatch.cli import _screen_options\n"
        "_screen_options({'theme': None, 'bell': True, 'refresh': 2.0, 'allow_failover': True})\n"
        "import textual.constants\n"
        "print(textual.constants.MAX_FPS)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
