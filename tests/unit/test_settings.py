"""Tests of hawatch.settings: addresses, URLs, redaction, precedence, refusals.

Pure: no network, no real environment, no real home directory. Every call to
`load_settings` gets an explicit `env` whose HOME points into `tmp_path`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hawatch.settings import (
    CONFIG_KEYS,
    DEFAULT_SENTINEL,
    REDACTED,
    URL_SCHEMES,
    ParsedUrl,
    Secret,
    SentinelAddress,
    Settings,
    SettingsError,
    default_config_path,
    load_settings,
    parse_address,
    parse_url,
    redact,
    redact_url,
)

PW = "s3cr3t-Pw"
"""A password that must never show up in a message, a repr or a summary."""


def A(host: str, port: int = 26379) -> SentinelAddress:
    """Shorthand for an address."""
    return SentinelAddress(host, port)


def assert_sentence(message: str) -> None:
    """A message fit for `hawatch: error: <message>`: one line, one full stop at the end."""
    assert message
    assert "\n" not in message and "\r" not in message
    assert message.endswith(".")
    assert "Traceback" not in message


def refused(exc_info: pytest.ExceptionInfo[SettingsError], *secrets: str) -> str:
    """The message of a refusal, checked to be a sentence holding none of `secrets`."""
    message = str(exc_info.value)
    assert_sentence(message)
    for secret in secrets:
        assert secret not in message
    return message


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment with a private, empty home: no config file unless a test writes one."""
    home = tmp_path / "home"
    home.mkdir()
    return {"HOME": str(home)}


def write_config(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    """A config file holding `text`."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- parse_address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.5:26380", A("10.0.0.5", 26380)),
        ("sentinel-1:1", A("sentinel-1", 1)),
        ("host.docker.internal:65535", A("host.docker.internal", 65535)),
        ("my_host", A("my_host")),
        ("127.0.0.1", A("127.0.0.1")),
        ("[::1]:26381", A("::1", 26381)),
        ("[fe80::1:2]", A("fe80::1:2")),
        ("[2001:db8::7]:6379", A("2001:db8::7", 6379)),
    ],
)
def test_parse_address_accepts(text: str, expected: SentinelAddress) -> None:
    assert parse_address(text) == expected


def test_ipv6_address_prints_with_brackets_and_parses_back() -> None:
    address = parse_address("[2001:db8::7]:6379")
    assert str(address) == "[2001:db8::7]:6379"
    assert parse_address(str(address)) == address
    assert str(A("h", 1)) == "h:1"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty address"),
        (":26379", "host is empty"),
        ("h:", "port is empty"),
        ("h:abc", "'abc' is not a number"),
        ("h:-1", "is not a number"),
        ("h:\uff11\uff12", "is not a number"),  # full-width digits that int() would accept
        ("h:0", "out of range"),
        ("h:65536", "out of range"),
        ("h:" + "9" * 5000, "out of range"),  # int() would refuse this many digits
        ("[::1", "unbalanced"),
        ("::1]", "unbalanced"),
        ("[::1]]:1", "unbalanced"),
        ("[[::1]:1", "unbalanced"),
        ("h[1]:2", "unbalanced"),
        ("::1", "needs brackets"),
        ("fe80::1:26379", "needs brackets"),
        ("h :26379", "whitespace"),
        (" h:26379", "whitespace"),
        ("h:26379\n", "whitespace"),
        ("[localhost]:1", "not one"),
        ("[]:1", "no address"),
        ("[::1]x", "follows the closing bracket"),
        ("[::1]:", "port is empty"),
        ("[::1]:99999", "out of range"),
        ("ho/st:1", "not a host name"),
        ("...:1", "not a host name"),
        ("redis://h:26379", "is a URL"),
    ],
)
def test_parse_address_refuses(text: str, fragment: str) -> None:
    with pytest.raises(SettingsError) as exc_info:
        parse_address(text, what="HAWATCH_SENTINELS")
    message = refused(exc_info)
    assert message.startswith("HAWATCH_SENTINELS")
    assert fragment in message
    if text.strip() and len(text) < 100:
        assert repr(text) in message  # the offending text is named


def test_parse_address_default_what_is_the_flag() -> None:
    with pytest.raises(SettingsError, match=r"^--sentinel 'h:0'"):
        parse_address("h:0")


@pytest.mark.parametrize("text", [f":{PW}@h:26379", f"user:{PW}@h", f"redis://:{PW}@h:1"])
def test_parse_address_never_echoes_credentials(text: str) -> None:
    with pytest.raises(SettingsError) as exc_info:
        parse_address(text)
    assert "--url" in refused(exc_info, PW)


# --------------------------------------------------------------------------- parse_url


def test_django_style_redis_url_is_a_sentinel_address() -> None:
    parsed = parse_url("redis://host.docker.internal:26379", what="--url")
    assert parsed == ParsedUrl(sentinels=(A("host.docker.internal"),))
    assert parsed.username is None and parsed.password is None and parsed.tls is False


def test_redis_url_defaults_to_the_sentinel_port_and_ignores_db_and_query() -> None:
    parsed = parse_url("redis://h/0?socket_timeout=3", what="--url")
    assert parsed.sentinels == (A("h", 26379),)
    assert parsed.masters == ()


def test_rediss_url_means_tls_and_carries_credentials() -> None:
    parsed = parse_url(f"rediss://alice:{PW}@h:26380/2", what="--url")
    assert parsed.tls is True
    assert parsed.sentinels == (A("h", 26380),)
    assert parsed.username == "alice"
    assert parsed.password == Secret(PW)


def test_password_without_user() -> None:
    parsed = parse_url(f"redis://:{PW}@h", what="--url")
    assert parsed.username is None
    assert parsed.password is not None and parsed.password.reveal() == PW


def test_user_without_password() -> None:
    parsed = parse_url("redis://alice@h", what="--url")
    assert parsed.username == "alice" and parsed.password is None


def test_percent_encoded_credentials_are_decoded() -> None:
    parsed = parse_url("redis://us%40er:p%3Aw%2Fd%40x%20y@h", what="--url")
    assert parsed.username == "us@er"
    assert parsed.password == Secret("p:w/d@x y")


def test_unencoded_at_sign_in_password_takes_the_last_at() -> None:
    parsed = parse_url("redis://:p@ss/w@h:1/0", what="--url")
    assert parsed.password == Secret("p@ss/w")
    assert parsed.sentinels == (A("h", 1),)


def test_kombu_sentinel_list_with_credentials_on_the_first() -> None:
    parsed = parse_url(
        f"sentinel://:{PW}@h1:26379;sentinel://h2:26380;sentinel://h3:26381", what="--url"
    )
    assert parsed.sentinels == (A("h1"), A("h2", 26380), A("h3", 26381))
    assert parsed.password == Secret(PW)
    assert parsed.tls is False


def test_kombu_sentinel_list_takes_the_first_credentials_found() -> None:
    parsed = parse_url(
        "sentinel://h1:26379;sentinel://bob:first@h2:26379;sentinel://carol:second@h3",
        what="--url",
    )
    assert parsed.username == "bob"
    assert parsed.password == Secret("first")


def test_kombu_password_with_semicolon_stays_in_one_url() -> None:
    parsed = parse_url("sentinel://:pa;ss@h1;sentinel://h2", what="--url")
    assert parsed.password == Secret("pa;ss")
    assert parsed.sentinels == (A("h1"), A("h2"))


def test_sentinels_scheme_means_tls() -> None:
    parsed = parse_url("sentinels://h1;sentinels://h2:1", what="--url")
    assert parsed.tls is True
    assert parsed.sentinels == (A("h1"), A("h2", 1))


def test_redis_sentinel_url_with_host_list_and_master() -> None:
    parsed = parse_url(f"redis+sentinel://u:{PW}@h1:26379,h2:26380/mymaster/0", what="--url")
    assert parsed.sentinels == (A("h1"), A("h2", 26380))
    assert parsed.masters == ("mymaster",)
    assert parsed.username == "u" and parsed.password == Secret(PW)
    assert parsed.tls is False


def test_rediss_sentinel_url_without_master() -> None:
    parsed = parse_url("rediss+sentinel://h1,[::1]:5", what="--url")
    assert parsed.tls is True
    assert parsed.masters == ()
    assert parsed.sentinels == (A("h1"), A("::1", 5))


def test_url_with_ipv6_host() -> None:
    assert parse_url("redis://[::1]:26380", what="--url").sentinels == (A("::1", 26380),)


def test_url_scheme_is_case_insensitive_and_outer_whitespace_is_stripped() -> None:
    assert parse_url("  REDIS://h:1\n", what="--url").sentinels == (A("h", 1),)


def test_url_duplicates_are_removed_in_order() -> None:
    parsed = parse_url("sentinel://h2;sentinel://h1;sentinel://h2:26379", what="--url")
    assert parsed.sentinels == (A("h2"), A("h1"))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        (f"http://:{PW}@h:1", "scheme 'http'"),
        (f"unix://:{PW}@/tmp/redis.sock", "scheme 'unix'"),
        (f"redis://:{PW}@", "no host"),
        (f"redis://:{PW}@/0", "no host"),
        (f"redis://:{PW}@:26379", "host is empty"),
        (f"redis://:{PW}@h:abc", "not a number"),
        (f"redis://:{PW}@h:0", "out of range"),
        (f"redis://:{PW}@h:70000", "out of range"),
        (f"redis://:{PW}@[::1:1", "unbalanced"),
        (f"redis://:{PW}@::1", "needs brackets"),
        (f"redis://:{PW}@h1,,h2", "empty entry"),
        (f"redis://:{PW}@h/mymaster", "database number"),
        (f"redis://:{PW}@h/0/1", "database number"),
        (f"redis+sentinel://:{PW}@h/m/x", "/MASTER/DB"),
        (f"redis+sentinel://:{PW}@h/m/0/1", "/MASTER/DB"),
        (f"redis+sentinel://:{PW}@h/m%20x", "whitespace"),
        (f"redis://:{PW}%ff@h", "percent-encoded"),
        (f"sentinel://:{PW}@h1;sentinels://h2", "mixes TLS"),
        (f"sentinel://:{PW}@h1;http://h2", "scheme 'http'"),
        (f"redis://:{PW} x@h", "whitespace"),
        (f"redis://:{PW}\x1b@h", "control characters"),
        (f":{PW}@h:26379", "not a URL"),
        ("h:26379", "not a URL"),
        (f"redis:/:{PW}@h", "not a URL"),
        ("redis://h:1/0?password=" + PW + "&x=ho st", "whitespace"),
    ],
)
def test_parse_url_refuses_without_leaking_the_password(text: str, fragment: str) -> None:
    with pytest.raises(SettingsError) as exc_info:
        parse_url(text, what="REDIS_ADDR")
    message = refused(exc_info, PW)
    assert "REDIS_ADDR" in message
    assert fragment in message


def test_unknown_scheme_message_lists_the_accepted_schemes() -> None:
    with pytest.raises(SettingsError) as exc_info:
        parse_url(f"amqp://guest:{PW}@h", what="--url")
    message = refused(exc_info, PW)
    for scheme in URL_SCHEMES:
        assert f"{scheme}://" in message


def test_refusal_echoes_the_redacted_url() -> None:
    with pytest.raises(SettingsError) as exc_info:
        parse_url(f"redis://alice:{PW}@h:99999", what="--url")
    assert f"'redis://alice:{REDACTED}@h:99999'" in refused(exc_info, PW)


# --------------------------------------------------------------------------- redaction


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"redis://:{PW}@h:1", f"redis://:{REDACTED}@h:1"),
        (f"rediss://alice:{PW}@h/0", f"rediss://alice:{REDACTED}@h/0"),
        (
            f"sentinel://:{PW}@h1:26379;sentinel://bob:{PW}x@h2;sentinel://h3",
            f"sentinel://:{REDACTED}@h1:26379;sentinel://bob:{REDACTED}@h2;sentinel://h3",
        ),
        (f"redis://:p@ss/{PW}@h", f"redis://:{REDACTED}@h"),
        (
            f"could not reach redis://:{PW}@a:1 or redis+sentinel://u:{PW}@b,c/m today",
            f"could not reach redis://:{REDACTED}@a:1 or redis+sentinel://u:{REDACTED}@b,c/m today",
        ),
        (f"REDIS_ADDR='redis://:{PW}@h'", f"REDIS_ADDR='redis://:{REDACTED}@h'"),
        (f"redis://h:1/0?password={PW}&db=1", f"redis://h:1/0?password={REDACTED}&db=1"),
        ("redis://alice@h:1", "redis://alice@h:1"),
        ("redis://h:1/0", "redis://h:1/0"),
        ("no url here: a:b@c", "no url here: a:b@c"),
    ],
)
def test_redact_url(text: str, expected: str) -> None:
    assert redact_url(text) == expected


def test_redact_url_is_idempotent() -> None:
    once = redact_url(f"sentinel://:{PW}@h1;sentinel://:{PW}@h2")
    assert redact_url(once) == once
    assert PW not in once


def test_redact_hides_given_secrets_anywhere_and_url_passwords() -> None:
    text = f"AUTH failed for {PW} ({'p%40w'}) at redis://:other@h"
    out = redact(text, [PW, Secret("p@w"), None, ""])
    assert PW not in out and "p%40w" not in out and "other" not in out
    assert out == f"AUTH failed for {REDACTED} ({REDACTED}) at redis://:{REDACTED}@h"


# --------------------------------------------------------------------------- Settings


def test_settings_repr_and_str_hide_the_password() -> None:
    settings = Settings(sentinels=(A("h"),), username="alice", password=Secret(PW))
    assert PW not in repr(settings)
    assert PW not in str(settings)
    assert PW not in repr(Secret(PW)) and PW not in str(Secret(PW))
    assert PW not in repr(ParsedUrl(sentinels=(A("h"),), password=Secret(PW)))
    assert settings.redis_kwargs() == {"username": "alice", "password": PW}


def test_describe_is_one_redacted_line() -> None:
    settings = Settings(
        sentinels=(A("h1"), A("::1", 5)),
        masters=("mymaster",),
        username="alice",
        password=Secret(PW),
        tls=True,
        read_only=True,
        origin="--url",
    )
    summary = settings.describe()
    assert PW not in summary and "\n" not in summary
    assert summary == (
        "sentinels h1:26379, [::1]:5 (from --url), master mymaster, user alice, "
        "password set, TLS, read-only"
    )


def test_describe_defaults() -> None:
    summary = Settings(sentinels=(DEFAULT_SENTINEL,)).describe()
    assert summary == (
        "sentinels 127.0.0.1:26379 (default), all masters, no user, no password, no TLS"
    )


def test_settings_redact_hides_its_own_password() -> None:
    settings = Settings(sentinels=(A("h"),), password=Secret(PW))
    assert settings.redact(f"WRONGPASS {PW}") == f"WRONGPASS {REDACTED}"


# --------------------------------------------------------------------------- config path


def test_default_config_path_uses_xdg_config_home(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")}
    assert default_config_path(env) == tmp_path / "xdg" / "hawatch" / "config.toml"


def test_default_config_path_falls_back_to_home(tmp_path: Path) -> None:
    expected = tmp_path / ".config" / "hawatch" / "config.toml"
    assert default_config_path({"HOME": str(tmp_path)}) == expected
    # A relative XDG_CONFIG_HOME is ignored, as the XDG spec says.
    assert default_config_path({"HOME": str(tmp_path), "XDG_CONFIG_HOME": "rel"}) == expected
    assert default_config_path({"HOME": str(tmp_path), "XDG_CONFIG_HOME": ""}) == expected


# --------------------------------------------------------------------------- load_settings: sources


def test_no_source_gives_the_local_default(env: dict[str, str]) -> None:
    settings = load_settings(env=env)
    assert settings == Settings(sentinels=(A("127.0.0.1"),), origin="default")


def test_sentinel_flags_repeatable_comma_separated_and_deduplicated(env: dict[str, str]) -> None:
    settings = load_settings(sentinels=["h1:1, h2:2", "h1:1", "[::1]"], env=env)
    assert settings.sentinels == (A("h1", 1), A("h2", 2), A("::1"))
    assert settings.origin == "--sentinel"


def test_a_single_string_is_one_sentinel_not_characters(env: dict[str, str]) -> None:
    settings = load_settings(sentinels="h1:1", masters="m", env=env)
    assert settings.sentinels == (A("h1", 1),)
    assert settings.masters == ("m",)


def test_url_flag(env: dict[str, str]) -> None:
    settings = load_settings(url=f"rediss://alice:{PW}@h:5", env=env)
    assert settings.sentinels == (A("h", 5),)
    assert settings.origin == "--url"
    assert (settings.username, settings.password, settings.tls) == ("alice", Secret(PW), True)


def test_sentinel_and_url_flags_combine_and_url_credentials_apply(env: dict[str, str]) -> None:
    settings = load_settings(sentinels=["h1:1"], url=f"redis://:{PW}@h2:2", env=env)
    assert settings.sentinels == (A("h1", 1), A("h2", 2))
    assert settings.origin == "--sentinel and --url"
    assert settings.password == Secret(PW)


def test_redis_addr_from_environment(env: dict[str, str]) -> None:
    env["REDIS_ADDR"] = "redis://host.docker.internal:26379"
    settings = load_settings(env=env)
    assert settings.sentinels == (A("host.docker.internal"),)
    assert settings.origin == "REDIS_ADDR"


def test_hawatch_sentinels_from_environment(env: dict[str, str]) -> None:
    env["HAWATCH_SENTINELS"] = "h1:1,h2:2"
    settings = load_settings(env=env)
    assert settings.sentinels == (A("h1", 1), A("h2", 2))
    assert settings.origin == "HAWATCH_SENTINELS"


def test_environment_sentinels_and_redis_addr_combine(env: dict[str, str]) -> None:
    env.update(HAWATCH_SENTINELS="h1:1", REDIS_ADDR=f"redis://:{PW}@h2:2")
    settings = load_settings(env=env)
    assert settings.sentinels == (A("h1", 1), A("h2", 2))
    assert settings.origin == "HAWATCH_SENTINELS and REDIS_ADDR"
    assert settings.password == Secret(PW)


def test_empty_environment_variables_count_as_unset(env: dict[str, str]) -> None:
    env.update(
        REDIS_ADDR="",
        HAWATCH_SENTINELS=" ",
        HAWATCH_MASTER="",
        HAWATCH_PASSWORD="",
        HAWATCH_USERNAME="",
        HAWATCH_READ_ONLY="",
        HAWATCH_CONFIG="",
    )
    assert load_settings(env=env) == Settings(sentinels=(DEFAULT_SENTINEL,))


def test_flags_beat_environment_and_bad_lower_sources_are_not_parsed(
    env: dict[str, str],
) -> None:
    env.update(REDIS_ADDR="unix:///tmp/redis.sock", HAWATCH_SENTINELS="bad:port")
    settings = load_settings(sentinels=["h1:1"], env=env)
    assert settings.sentinels == (A("h1", 1),)
    assert settings.origin == "--sentinel"


def test_environment_beats_config(tmp_path: Path, env: dict[str, str]) -> None:
    path = write_config(tmp_path, 'sentinels = ["c1:1"]\nurl = "redis://c2:2"\n')
    env["HAWATCH_SENTINELS"] = "e1:1"
    settings = load_settings(config=str(path), env=env)
    assert settings.sentinels == (A("e1", 1),)
    assert settings.origin == "HAWATCH_SENTINELS"


def test_config_sentinels_and_url_combine(tmp_path: Path, env: dict[str, str]) -> None:
    path = write_config(
        tmp_path, 'sentinels = ["c1:1", "c2:2"]\nurl = "sentinels://c3:3;sentinels://c1:1"\n'
    )
    settings = load_settings(config=str(path), env=env)
    assert settings.sentinels == (A("c1", 1), A("c2", 2), A("c3", 3))
    assert settings.origin == f"config file {path}"
    assert settings.tls is True


def test_full_config_file(tmp_path: Path, env: dict[str, str]) -> None:
    path = write_config(
        tmp_path,
        'sentinels = ["c1:1"]\nmasters = ["a", "b", "a"]\nusername = "mon"\n'
        f'password = "{PW}"\ntls = true\nread_only = true\n',
    )
    settings = load_settings(config=str(path), env=env)
    assert settings == Settings(
        sentinels=(A("c1", 1),),
        masters=("a", "b"),
        username="mon",
        password=Secret(PW),
        tls=True,
        read_only=True,
        origin=f"config file {path}",
    )
    assert PW not in repr(settings) and PW not in settings.describe()


# --------------------------------------------------------------------------- config file location


def test_hawatch_config_variable_names_the_file(tmp_path: Path, env: dict[str, str]) -> None:
    path = write_config(tmp_path, 'sentinels = ["v:1"]\n', name="via-env.toml")
    env["HAWATCH_CONFIG"] = str(path)
    assert load_settings(env=env).sentinels == (A("v", 1),)


def test_config_flag_beats_hawatch_config(tmp_path: Path, env: dict[str, str]) -> None:
    flag = write_config(tmp_path, 'sentinels = ["f:1"]\n', name="flag.toml")
    env["HAWATCH_CONFIG"] = str(tmp_path / "missing.toml")
    assert load_settings(config=str(flag), env=env).sentinels == (A("f", 1),)


def test_default_config_file_is_read_when_present(tmp_path: Path, env: dict[str, str]) -> None:
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    (tmp_path / "xdg" / "hawatch").mkdir(parents=True)
    write_config(tmp_path / "xdg" / "hawatch", 'sentinels = ["d:1"]\nmaster = "m"\n')
    settings = load_settings(env=env)
    assert settings.sentinels == (A("d", 1),)
    assert settings.masters == ("m",)
    assert settings.origin.startswith("config file ")


def test_default_config_under_home(tmp_path: Path, env: dict[str, str]) -> None:
    folder = Path(env["HOME"]) / ".config" / "hawatch"
    folder.mkdir(parents=True)
    write_config(folder, "read_only = true\n")
    settings = load_settings(env=env)
    assert settings.read_only is True
    assert settings.origin == "default"  # the file names no sentinels


@pytest.mark.parametrize("via", ["flag", "env"])
def test_a_named_config_file_must_exist(tmp_path: Path, env: dict[str, str], via: str) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(SettingsError) as exc_info:
        if via == "flag":
            load_settings(config=str(missing), env=env)
        else:
            load_settings(env={**env, "HAWATCH_CONFIG": str(missing)})
    message = refused(exc_info)
    assert str(missing) in message and "does not exist" in message
    assert ("--config" if via == "flag" else "HAWATCH_CONFIG") in message


def test_config_that_is_a_directory(tmp_path: Path, env: dict[str, str]) -> None:
    with pytest.raises(SettingsError) as exc_info:
        load_settings(config=str(tmp_path), env=env)
    assert "is a directory" in refused(exc_info)


# --------------------------------------------------------------------------- config file refusals


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (f"password = {PW}\n", "line 1"),
        (f'sentinels = ["h:1"]\npassword = "{PW}\n', "line 2"),
        (f'password = "{PW}\x01"\n', "line 1"),
        (f'password = "{PW}"x\n', "line 1"),
        (f'a = 1\npassword = "{PW}', "end of document"),
    ],
)
def test_invalid_toml_names_the_file_and_line_but_not_the_content(
    tmp_path: Path, env: dict[str, str], text: str, where: str
) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(SettingsError) as exc_info:
        load_settings(config=str(path), env=env)
    message = refused(exc_info, PW, "\\x01", "\x01")
    assert str(path) in message
    assert "not valid TOML" in message
    assert where in message


def test_config_that_is_not_utf8(tmp_path: Path, env: dict[str, str]) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'password = "\xff\xfe"\n')
    with pytest.raises(SettingsError) as exc_info:
        load_settings(config=str(path), env=env)
    assert "not UTF-8" in refused(exc_info)


def test_unknown_config_key_is_named_with_the_known_ones(
    tmp_path: Path, env: dict[str, str]
) -> None:
    path = write_config(tmp_path, 'sentinel = "h:1"\n')
    with pytest.raises(SettingsError) as exc_info:
        load_settings(config=str(path), env=env)
    message = refused(exc_info)
    assert "'sentinel'" in message
    for key in CONFIG_KEYS:
        assert key in message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('tls = "yes"\n', "tls"),
        ("read_only = 1\n", "read_only"),
        ('sentinels = "h:1"\n', "sentinels"),
        ("sentinels = [1]\n", "sentinels"),
        ("masters = [1]\n", "masters"),
        ("master = 1\n", "master"),
        ("url = 1\n", "url"),
        ("username = []\n", "username"),
        ("password = 424242424242\n", "password"),
        ("[password]\nvalue = 424242424242\n", "password"),
        ("node_password = 424242424242\n", "node_password"),
        ("node_username = 1\n", "node_username"),
        ("tls_ca_cert = 1\n", "tls_ca_cert"),
        ("tls_cert = []\n", "tls_cert"),
        ("tls_key = 1\n", "tls_key"),
        ('tls_insecure_skip_verify = "yes"\n', "tls_insecure_skip_verify"),
    ],
)
def test_wrong_config_types_are_named_without_their_value(
    tmp_path: Path, env: dict[str, str], text: str, key: str
) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(SettingsError) as exc_info:
        load_settings(config=str(path), env=env)
    message = refused(exc_info, "424242424242")
    assert f" {key} " in message and str(path) in message


def test_config_with_both_master_and_masters(tmp_path: Path, env: dict[str, str]) -> None:
    path = write_config(tmp_path, 'master = "a"\nmasters = ["b"]\n')
    with pytest.raises(SettingsError) as exc_info:
        load_settings(config=str(path), env=env)
    assert "both master and masters" in refused(exc_info)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (f'url = "http://:{PW}@h"\n', "scheme 'http'"),
        (f'url = "redis://:{PW}@h:0"\n', "out of range"),
        (f'url = "redis://:{PW}@"\n', "no host"),
        ('sentinels = ["h:0"]\n', "out of range"),
        ('master = ""\n', "is empty"),
        ('masters = ["a b"]\n', "whitespace"),
    ],
)
def test_bad_values_in_config(
    tmp_path: Path, env: dict[str, str], text: str, fragment: str
) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(SettingsError) as exc_info:
        load_settings(config=str(path), env=env)
    message = refused(exc_info, PW)
    assert fragment in message and str(path) in message


# --------------------------------------------------------------------------- passwords


def test_flag_url_password_beats_everything(tmp_path: Path, env: dict[str, str]) -> None:
    path = write_config(tmp_path, 'password = "from-file"\n')
    env.update(HAWATCH_PASSWORD="from-env", REDIS_ADDR="redis://:from-redis-addr@e")
    settings = load_settings(url="redis://:from-flag@h", config=str(path), env=env)
    assert settings.password == Secret("from-flag")


def test_hawatch_password_beats_config_password(tmp_path: Path, env: dict[str, str]) -> None:
    path = write_config(tmp_path, 'sentinels = ["c:1"]\npassword = "from-file"\n')
    env["HAWATCH_PASSWORD"] = "from-env"
    assert load_settings(config=str(path), env=env).password == Secret("from-env")


def test_hawatch_password_beats_the_password_in_redis_addr(env: dict[str, str]) -> None:
    env.update(HAWATCH_PASSWORD="from-env", REDIS_ADDR="redis://:from-redis-addr@e")
    assert load_settings(env=env).password == Secret("from-env")


def test_hawatch_password_applies_to_flag_sentinels(env: dict[str, str]) -> None:
    env["HAWATCH_PASSWORD"] = "from-env"
    assert load_settings(sentinels=["h:1"], env=env).password == Secret("from-env")


def test_redis_addr_password_beats_config_password(tmp_path: Path, env: dict[str, str]) -> None:
    path = write_config(tmp_path, 'password = "from-file"\n')
    env["REDIS_ADDR"] = "redis://:from-redis-addr@e"
    assert load_settings(config=str(path), env=env).password == Secret("from-redis-addr")


def test_config_password_applies_when_the_url_has_none(tmp_path: Path, env: dict[str, str]) -> None:
    path = write_config(tmp_path, 'password = "from-file"\n')
    settings = load_settings(url="redis://h", config=str(path), env=env)
    assert settings.password == Secret("from-file")


def test_config_password_key_beats_config_url_password(tmp_path: Path, env: dict[str, str]) -> None:
    path = write_config(tmp_path, 'url = "redis://:from-url@c"\npassword = "from-key"\n')
    assert load_settings(config=str(path), env=env).password == Secret("from-key")


def test_config_url_password_is_used_when_config_names_the_sentinels(
    tmp_path: Path, env: dict[str, str]
) -> None:
    path = write_config(tmp_path, f'url = "redis://mon:{PW}@c"\n')
    settings = load_settings(config=str(path), env=env)
    assert (settings.username, settings.password) == ("mon", Secret(PW))


def test_url_credentials_do_not_follow_other_sentinels(tmp_path: Path, env: dict[str, str]) -> None:
    path = write_config(tmp_path, 'url = "rediss://filemon:from-file-url@c/0"\n')
    env["REDIS_ADDR"] = "rediss+sentinel://envmon:from-redis-addr@e/envmaster"
    # --sentinel names the sentinels: neither URL's user, password, TLS or master applies.
    settings = load_settings(sentinels=["h:1"], config=str(path), env=env)
    assert settings.password is None and settings.username is None
    assert settings.tls is False and settings.masters == ()
    # The environment names them: the config URL's credentials stay out.
    settings = load_settings(config=str(path), env={**env, "REDIS_ADDR": "redis://e"})
    assert settings.password is None and settings.username is None and settings.tls is False


def test_no_password_anywhere(env: dict[str, str]) -> None:
    settings = load_settings(url="redis://h", env=env)
    assert settings.password is None
    assert "password" not in settings.redis_kwargs()


# --------------------------------------------------------------------------- other fields


def test_username_precedence(tmp_path: Path, env: dict[str, str]) -> None:
    path = write_config(tmp_path, 'username = "file"\n')
    env["HAWATCH_USERNAME"] = "env"
    url = "redis://urluser:pw@h"
    assert load_settings(username="flag", url=url, config=str(path), env=env).username == "flag"
    assert load_settings(url=url, config=str(path), env=env).username == "urluser"
    assert load_settings(sentinels=["h"], config=str(path), env=env).username == "env"
    del env["HAWATCH_USERNAME"]
    assert load_settings(sentinels=["h"], config=str(path), env=env).username == "file"


def test_master_precedence(tmp_path: Path, env: dict[str, str]) -> None:
    path = write_config(tmp_path, 'master = "file"\n')
    env["HAWATCH_MASTER"] = "env1, env2,env1"
    assert load_settings(masters=["a,b", "a"], config=str(path), env=env).masters == ("a", "b")
    assert load_settings(config=str(path), env=env).masters == ("env1", "env2")
    del env["HAWATCH_MASTER"]
    assert load_settings(config=str(path), env=env).masters == ("file",)


def test_url_master_counts_at_its_level(tmp_path: Path, env: dict[str, str]) -> None:
    path = write_config(tmp_path, 'master = "file"\n')
    url = "redis+sentinel://h/urlmaster"
    assert load_settings(url=url, config=str(path), env=env).masters == ("urlmaster",)
    assert load_settings(url=url, masters=["flag"], env=env).masters == ("flag",)
    env["HAWATCH_MASTER"] = "env"
    assert load_settings(url=url, env=env).masters == ("urlmaster",)


def test_no_masters_means_all_masters(env: dict[str, str]) -> None:
    settings = load_settings(env=env)
    assert settings.masters == ()
    assert "all masters" in settings.describe()


@pytest.mark.parametrize(
    ("masters", "environ", "fragment"),
    [
        ([""], {}, "from --master is empty"),
        (["a,,b"], {}, "from --master is empty"),
        (["my master"], {}, "whitespace"),
        (["m\x07"], {}, "control characters"),
        (["m\u200b"], {}, "control characters"),
        ((), {"HAWATCH_MASTER": "a,"}, "from HAWATCH_MASTER is empty"),
        ((), {"HAWATCH_MASTER": "a\tb"}, "whitespace"),
        ((), {"REDIS_ADDR": "redis+sentinel://h/%20"}, "whitespace"),
    ],
)
def test_bad_master_names(
    env: dict[str, str], masters: list[str], environ: dict[str, str], fragment: str
) -> None:
    with pytest.raises(SettingsError) as exc_info:
        load_settings(masters=masters, env={**env, **environ})
    message = refused(exc_info, "\x07")
    assert fragment in message
    assert "master" in message


def test_empty_master_message_says_what_to_do(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError) as exc_info:
        load_settings(masters=[""], env=env)
    assert "leave it out to watch every master" in refused(exc_info)


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        (" on ", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
    ],
)
def test_read_only_from_environment(env: dict[str, str], word: str, expected: bool) -> None:
    env["HAWATCH_READ_ONLY"] = word
    assert load_settings(env=env).read_only is expected


def test_read_only_precedence(tmp_path: Path, env: dict[str, str]) -> None:
    path = write_config(tmp_path, "read_only = true\n")
    assert load_settings(config=str(path), env=env).read_only is True
    env["HAWATCH_READ_ONLY"] = "off"
    assert load_settings(config=str(path), env=env).read_only is False
    assert load_settings(read_only=True, config=str(path), env=env).read_only is True
    env["HAWATCH_READ_ONLY"] = "on"
    assert load_settings(read_only=False, env=env).read_only is False


def test_bad_read_only_word(env: dict[str, str]) -> None:
    env["HAWATCH_READ_ONLY"] = "maybe"
    with pytest.raises(SettingsError) as exc_info:
        load_settings(env=env)
    message = refused(exc_info)
    assert "HAWATCH_READ_ONLY" in message and "'maybe'" in message


def test_tls_precedence(tmp_path: Path, env: dict[str, str]) -> None:
    path = write_config(tmp_path, "tls = true\n")
    # No URL names the sentinels: the config key decides.
    assert load_settings(sentinels=["h"], config=str(path), env=env).tls is True
    # A redis:// URL at a higher level says plain text.
    assert load_settings(url="redis://h", config=str(path), env=env).tls is False
    assert load_settings(url="rediss://h", env=env).tls is True


# ------------------------------------------------------------- refusals through load_settings


@pytest.mark.parametrize(
    ("kwargs", "environ", "fragment"),
    [
        ({"url": f"http://:{PW}@h"}, {}, "--url"),
        ({"url": f"redis://:{PW}@h:0"}, {}, "--url"),
        ({"url": f"redis://:{PW}@"}, {}, "--url"),
        ({"url": ""}, {}, "--url is empty"),
        ({"sentinels": ["h:0"]}, {}, "--sentinel 'h:0'"),
        ({"sentinels": ["h1,,h2"]}, {}, "empty entry"),
        ({"sentinels": [f":{PW}@h"]}, {}, "--sentinel"),
        ({}, {"REDIS_ADDR": f"redis://:{PW}@h:abc"}, "REDIS_ADDR"),
        ({}, {"REDIS_ADDR": f":{PW}@h"}, "REDIS_ADDR is not a URL"),
        ({}, {"REDIS_ADDR": "unix:///tmp/redis.sock"}, "REDIS_ADDR"),
        ({}, {"HAWATCH_SENTINELS": "h1:1,h2:x"}, "HAWATCH_SENTINELS 'h2:x'"),
        ({}, {"HAWATCH_SENTINELS": "::1"}, "brackets"),
    ],
)
def test_load_settings_refusals(
    env: dict[str, str], kwargs: dict[str, object], environ: dict[str, str], fragment: str
) -> None:
    with pytest.raises(SettingsError) as exc_info:
        load_settings(env={**env, **environ}, **kwargs)  # type: ignore[arg-type]
    assert fragment in refused(exc_info, PW)


def test_unexpected_errors_become_a_settings_error(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError) as exc_info:
        load_settings(sentinels=[object()], env=env)  # type: ignore[list-item]
    message = refused(exc_info)
    assert "could not read its connection settings" in message
    assert exc_info.value.__cause__ is None and exc_info.value.__suppress_context__


def test_unexpected_error_text_is_not_echoed(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    import hawatch.settings as settings_module

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"boom {PW}")

    monkeypatch.setattr(settings_module, "_read_only_from_env", explode)
    with pytest.raises(SettingsError) as exc_info:
        load_settings(env=env)
    assert "RuntimeError" in refused(exc_info, PW)


def test_load_settings_reads_os_environ_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in (
        "XDG_CONFIG_HOME",
        "HAWATCH_CONFIG",
        "HAWATCH_SENTINELS",
        "HAWATCH_MASTER",
        "HAWATCH_USERNAME",
        "HAWATCH_PASSWORD",
        "HAWATCH_READ_ONLY",
        "HAWATCH_NODE_USERNAME",
        "HAWATCH_NODE_PASSWORD",
        "HAWATCH_TLS_CA_CERT",
        "HAWATCH_TLS_CERT",
        "HAWATCH_TLS_KEY",
        "HAWATCH_TLS_INSECURE_SKIP_VERIFY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("REDIS_ADDR", "redis://from-os-environ:7")
    assert load_settings().sentinels == (A("from-os-environ", 7),)


# --------------------------------------------------------------------------- data node credentials

NODE_PW = "n0de-Pw-77"
"""The data nodes' password: as secret as `PW`."""


def test_node_credentials_default_to_the_sentinel_credentials_as_a_pair() -> None:
    settings = Settings(sentinels=(A("h"),), username="alice", password=Secret(PW))
    assert settings.node_credentials() == ("alice", Secret(PW))
    assert settings.node_redis_kwargs() == {"username": "alice", "password": PW}
    assert settings.node_redis_kwargs() == settings.redis_kwargs()


def test_a_node_password_alone_means_the_default_user_on_the_nodes() -> None:
    # requirepass on the data nodes, an ACL user on the sentinels: the user must not follow.
    settings = Settings(
        sentinels=(A("h"),), username="alice", password=Secret(PW), node_password=Secret(NODE_PW)
    )
    assert settings.node_redis_kwargs() == {"password": NODE_PW}
    assert settings.redis_kwargs() == {"username": "alice", "password": PW}


def test_a_node_user_alone_gets_no_sentinel_password() -> None:
    settings = Settings(sentinels=(A("h"),), password=Secret(PW), node_username="bob")
    assert settings.node_redis_kwargs() == {"username": "bob"}


def test_sentinels_without_password_and_nodes_with_one() -> None:
    settings = Settings(sentinels=(A("h"),), node_password=Secret(NODE_PW))
    assert settings.redis_kwargs() == {}
    assert settings.node_redis_kwargs() == {"password": NODE_PW}


def test_node_password_is_never_shown() -> None:
    settings = Settings(
        sentinels=(A("h"),), node_username="bob", node_password=Secret(NODE_PW), origin="lab"
    )
    assert NODE_PW not in repr(settings) and NODE_PW not in str(settings)
    summary = settings.describe()
    assert NODE_PW not in summary
    assert "node user bob, node password set" in summary
    assert settings.redact(f"WRONGPASS {NODE_PW} and {PW}") == f"WRONGPASS {REDACTED} and {PW}"
    both = Settings(sentinels=(A("h"),), password=Secret(PW), node_password=Secret(NODE_PW))
    assert both.redact(f"{PW} {NODE_PW}") == f"{REDACTED} {REDACTED}"
    assert "no node user, node password set" in both.describe()


def test_node_username_precedence(tmp_path: Path, env: dict[str, str]) -> None:
    path = write_config(tmp_path, 'node_username = "file"\n')
    env["HAWATCH_NODE_USERNAME"] = "env"
    assert load_settings(node_username="flag", config=str(path), env=env).node_username == "flag"
    assert load_settings(config=str(path), env=env).node_username == "env"
    del env["HAWATCH_NODE_USERNAME"]
    assert load_settings(config=str(path), env=env).node_username == "file"
    assert load_settings(env=env).node_username is None


def test_node_password_precedence(tmp_path: Path, env: dict[str, str]) -> None:
    path = write_config(tmp_path, f'password = "{PW}"\nnode_password = "from-file"\n')
    env["HAWATCH_NODE_PASSWORD"] = "from-env"
    settings = load_settings(config=str(path), env=env)
    assert settings.node_password == Secret("from-env")
    assert settings.password == Secret(PW)  # the sentinel password is separate
    del env["HAWATCH_NODE_PASSWORD"]
    assert load_settings(config=str(path), env=env).node_password == Secret("from-file")


def test_url_credentials_are_the_sentinel_credentials_and_reach_nodes_by_default(
    env: dict[str, str],
) -> None:
    settings = load_settings(url=f"redis://mon:{PW}@h", env=env)
    assert (settings.node_username, settings.node_password) == (None, None)
    assert settings.node_redis_kwargs() == {"username": "mon", "password": PW}
    env["HAWATCH_NODE_PASSWORD"] = NODE_PW
    settings = load_settings(url=f"redis://mon:{PW}@h", env=env)
    assert settings.redis_kwargs() == {"username": "mon", "password": PW}
    assert settings.node_redis_kwargs() == {"password": NODE_PW}
    assert NODE_PW not in settings.describe() and NODE_PW not in repr(settings)


# --------------------------------------------------------------------------- TLS files


def pem(tmp_path: Path, name: str, kind: str = "CERTIFICATE") -> Path:
    """A file that looks like PEM (the settings never parse the certificate itself)."""
    path = tmp_path / name
    path.write_text(f"-----BEGIN {kind}-----\nMIIB\n-----END {kind}-----\n")
    return path


def test_tls_kwargs_for_sentinels_and_nodes(tmp_path: Path) -> None:
    ca, cert, key = pem(tmp_path, "ca.pem"), pem(tmp_path, "c.pem"), pem(tmp_path, "c.key")
    settings = Settings(
        sentinels=(A("h"),),
        password=Secret(PW),
        tls=True,
        tls_ca_cert=ca,
        tls_cert=cert,
        tls_key=key,
    )
    tls = {
        "ssl": True,
        "ssl_ca_certs": str(ca),
        "ssl_certfile": str(cert),
        "ssl_keyfile": str(key),
        "ssl_cert_reqs": "required",
    }
    assert settings.redis_kwargs() == {"password": PW, **tls}
    assert settings.node_redis_kwargs() == {"password": PW, **tls}


def test_tls_insecure_turns_verification_off_in_both_kwargs() -> None:
    settings = Settings(sentinels=(A("h"),), tls=True, tls_insecure=True)
    expected = {"ssl": True, "ssl_cert_reqs": "none", "ssl_check_hostname": False}
    assert settings.redis_kwargs() == expected
    assert settings.node_redis_kwargs() == expected
    assert "CERTIFICATES NOT VERIFIED" in settings.describe()


def test_tls_files_are_not_used_without_tls(tmp_path: Path) -> None:
    settings = Settings(sentinels=(A("h"),), tls_ca_cert=pem(tmp_path, "ca.pem"))
    assert settings.redis_kwargs() == {} and settings.node_redis_kwargs() == {}


def test_describe_names_the_tls_files(tmp_path: Path) -> None:
    ca, cert = pem(tmp_path, "ca.pem"), pem(tmp_path, "c.pem")
    settings = Settings(sentinels=(A("h"),), tls=True, tls_ca_cert=ca, tls_cert=cert)
    assert settings.describe() == (
        f"sentinels h:26379 (default), all masters, no user, no password, TLS, CA {ca}, "
        f"client certificate {cert}"
    )


@pytest.mark.parametrize(
    ("flag", "variable", "key", "attribute"),
    [
        ("tls_ca_cert", "HAWATCH_TLS_CA_CERT", "tls_ca_cert", "tls_ca_cert"),
        ("tls_cert", "HAWATCH_TLS_CERT", "tls_cert", "tls_cert"),
    ],
)
def test_tls_file_precedence_flag_env_config(
    tmp_path: Path, env: dict[str, str], flag: str, variable: str, key: str, attribute: str
) -> None:
    from_flag, from_env = pem(tmp_path, "flag.pem"), pem(tmp_path, "env.pem")
    from_file = pem(tmp_path, "file.pem")
    path = write_config(tmp_path, f'{key} = "{from_file}"\n')
    env[variable] = str(from_env)
    kwargs: dict[str, str] = {flag: str(from_flag)}
    settings = load_settings(config=str(path), env=env, **kwargs)  # type: ignore[arg-type]
    assert getattr(settings, attribute) == from_flag
    assert getattr(load_settings(config=str(path), env=env), attribute) == from_env
    del env[variable]
    assert getattr(load_settings(config=str(path), env=env), attribute) == from_file


def test_tls_key_precedence(tmp_path: Path, env: dict[str, str]) -> None:
    cert = pem(tmp_path, "c.pem")
    keys = {name: pem(tmp_path, f"{name}.key", "PRIVATE KEY") for name in ("flag", "env", "file")}
    path = write_config(tmp_path, f'tls_cert = "{cert}"\ntls_key = "{keys["file"]}"\n')
    env["HAWATCH_TLS_KEY"] = str(keys["env"])
    assert (
        load_settings(tls_key=str(keys["flag"]), config=str(path), env=env).tls_key
        == (keys["flag"])
    )
    assert load_settings(config=str(path), env=env).tls_key == keys["env"]
    del env["HAWATCH_TLS_KEY"]
    assert load_settings(config=str(path), env=env).tls_key == keys["file"]


def test_relative_tls_paths_in_the_config_file_are_relative_to_it(
    tmp_path: Path, env: dict[str, str]
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    ca = pem(folder, "ca.pem")
    path = write_config(folder, 'sentinels = ["h:1"]\ntls_ca_cert = "ca.pem"\n')
    settings = load_settings(config=str(path), env=env)
    assert settings.tls_ca_cert == ca
    assert settings.tls is True


def test_a_tls_file_turns_tls_on(tmp_path: Path, env: dict[str, str]) -> None:
    ca = pem(tmp_path, "ca.pem")
    settings = load_settings(sentinels=["h:1"], tls_ca_cert=str(ca), env=env)
    assert settings.tls is True
    assert settings.redis_kwargs()["ssl_ca_certs"] == str(ca)
    env["HAWATCH_TLS_CA_CERT"] = str(ca)
    assert load_settings(env=env).tls is True


def test_a_higher_level_tls_setting_beats_a_lower_level_plain_url(
    tmp_path: Path, env: dict[str, str]
) -> None:
    ca = pem(tmp_path, "ca.pem")
    path = write_config(tmp_path, 'url = "redis://c:1"\n')
    env["HAWATCH_TLS_CA_CERT"] = str(ca)
    settings = load_settings(config=str(path), env=env)
    assert settings.sentinels == (A("c", 1),)
    assert settings.tls is True and settings.tls_ca_cert == ca


def test_a_higher_level_plain_url_beats_a_lower_level_tls_file(
    tmp_path: Path, env: dict[str, str]
) -> None:
    ca = pem(tmp_path, "ca.pem")
    path = write_config(tmp_path, f'tls_ca_cert = "{ca}"\n')
    settings = load_settings(url="redis://h:1", config=str(path), env=env)
    assert settings.tls is False
    assert "ssl" not in settings.redis_kwargs() and "ssl" not in settings.node_redis_kwargs()


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        ("flag-url", "--tls-ca-cert asks for TLS, but --url names the sentinels"),
        ("env-url", "HAWATCH_TLS_CA_CERT asks for TLS, but REDIS_ADDR names the sentinels"),
        ("config-key", "sets tls = false; set tls = true"),
        ("insecure", "HAWATCH_TLS_INSECURE_SKIP_VERIFY asks for TLS, but REDIS_ADDR"),
    ],
)
def test_tls_asked_and_refused_at_the_same_level(
    tmp_path: Path, env: dict[str, str], setup: str, fragment: str
) -> None:
    ca = pem(tmp_path, "ca.pem")
    with pytest.raises(SettingsError) as exc_info:
        if setup == "flag-url":
            load_settings(url=f"redis://:{PW}@h:1", tls_ca_cert=str(ca), env=env)
        elif setup == "env-url":
            env.update(REDIS_ADDR=f"redis://:{PW}@h:1", HAWATCH_TLS_CA_CERT=str(ca))
            load_settings(env=env)
        elif setup == "config-key":
            path = write_config(tmp_path, f'tls = false\ntls_ca_cert = "{ca}"\n')
            load_settings(config=str(path), env=env)
        else:
            env.update(REDIS_ADDR="redis://h:1", HAWATCH_TLS_INSECURE_SKIP_VERIFY="yes")
            load_settings(env=env)
    assert fragment in refused(exc_info, PW)


@pytest.mark.parametrize("via", ["flag", "env", "config"])
def test_missing_tls_file_is_one_sentence(tmp_path: Path, env: dict[str, str], via: str) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(SettingsError) as exc_info:
        if via == "flag":
            load_settings(tls_ca_cert=str(missing), env=env)
        elif via == "env":
            load_settings(env={**env, "HAWATCH_TLS_CA_CERT": str(missing)})
        else:
            path = write_config(tmp_path, f'tls_ca_cert = "{missing}"\n')
            load_settings(config=str(path), env=env)
    message = refused(exc_info)
    assert f"the CA certificate file {missing}" in message and "does not exist" in message
    expected = {"flag": "--tls-ca-cert", "env": "HAWATCH_TLS_CA_CERT", "config": "tls_ca_cert in"}
    assert expected[via] in message


def test_tls_file_that_is_a_directory(tmp_path: Path, env: dict[str, str]) -> None:
    with pytest.raises(SettingsError) as exc_info:
        load_settings(tls_cert=str(tmp_path), env=env)
    assert "client certificate file" in refused(exc_info) and "is a directory" in str(
        exc_info.value
    )


def test_unreadable_tls_file(tmp_path: Path, env: dict[str, str]) -> None:
    import os

    key = pem(tmp_path, "c.key", "PRIVATE KEY")
    key.chmod(0)
    try:
        if os.access(key, os.R_OK):
            pytest.skip("running as a user who can read any file (root)")
        with pytest.raises(SettingsError) as exc_info:
            load_settings(tls_cert=str(pem(tmp_path, "c.pem")), tls_key=str(key), env=env)
        assert "cannot be read (permission denied)" in refused(exc_info)
    finally:
        key.chmod(0o600)


def test_a_file_without_pem_text_is_refused_without_echoing_it(
    tmp_path: Path, env: dict[str, str]
) -> None:
    key = tmp_path / "c.key"
    key.write_bytes(PW.encode() + b"\x30\x82")
    with pytest.raises(SettingsError) as exc_info:
        load_settings(tls_cert=str(pem(tmp_path, "c.pem")), tls_key=str(key), env=env)
    message = refused(exc_info, PW)
    assert "client key file" in message and "no PEM text" in message


def test_empty_tls_flag(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError) as exc_info:
        load_settings(tls_ca_cert="", env=env)
    assert "--tls-ca-cert is empty" in refused(exc_info)


def test_a_client_key_needs_a_client_certificate(tmp_path: Path, env: dict[str, str]) -> None:
    key = pem(tmp_path, "c.key", "PRIVATE KEY")
    with pytest.raises(SettingsError) as exc_info:
        load_settings(tls_key=str(key), env=env)
    message = refused(exc_info)
    assert message.startswith("--tls-key gives a client key") and "--tls-cert" in message


def test_a_client_certificate_alone_may_hold_its_key(tmp_path: Path, env: dict[str, str]) -> None:
    both = pem(tmp_path, "both.pem")
    settings = load_settings(sentinels=["h"], tls_cert=str(both), env=env)
    assert settings.redis_kwargs()["ssl_certfile"] == str(both)
    assert "ssl_keyfile" not in settings.redis_kwargs()


def test_tls_insecure_precedence(tmp_path: Path, env: dict[str, str]) -> None:
    path = write_config(tmp_path, 'sentinels = ["h:1"]\ntls_insecure_skip_verify = true\n')
    settings = load_settings(config=str(path), env=env)
    assert settings.tls_insecure is True and settings.tls is True
    env["HAWATCH_TLS_INSECURE_SKIP_VERIFY"] = "no"
    settings = load_settings(config=str(path), env=env)
    assert settings.tls_insecure is False
    assert settings.tls is False  # nothing else asks for TLS
    env["HAWATCH_TLS_INSECURE_SKIP_VERIFY"] = "1"
    settings = load_settings(url="rediss://h", env=env)
    assert settings.redis_kwargs()["ssl_check_hostname"] is False


def test_bad_tls_insecure_word(env: dict[str, str]) -> None:
    env["HAWATCH_TLS_INSECURE_SKIP_VERIFY"] = "sure"
    with pytest.raises(SettingsError) as exc_info:
        load_settings(env=env)
    assert "HAWATCH_TLS_INSECURE_SKIP_VERIFY is 'sure'" in refused(exc_info)


def test_full_config_file_with_node_credentials_and_tls(
    tmp_path: Path, env: dict[str, str]
) -> None:
    ca, cert = pem(tmp_path, "ca.pem"), pem(tmp_path, "c.pem")
    key = pem(tmp_path, "c.key", "PRIVATE KEY")
    path = write_config(
        tmp_path,
        f'url = "rediss://mon:{PW}@c1:1"\nnode_username = "app"\nnode_password = "{NODE_PW}"\n'
        f'tls_ca_cert = "{ca}"\ntls_cert = "{cert}"\ntls_key = "{key}"\n',
    )
    settings = load_settings(config=str(path), env=env)
    assert settings == Settings(
        sentinels=(A("c1", 1),),
        username="mon",
        password=Secret(PW),
        tls=True,
        origin=f"config file {path}",
        node_username="app",
        node_password=Secret(NODE_PW),
        tls_ca_cert=ca,
        tls_cert=cert,
        tls_key=key,
    )
    for text in (repr(settings), settings.describe()):
        assert PW not in text and NODE_PW not in text


@pytest.fixture
def clean_os_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The real environment without any hawatch setting, with an empty home."""
    import os

    for name in list(os.environ):
        if name.startswith("HAWATCH_") or name in ("REDIS_ADDR", "XDG_CONFIG_HOME"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.mark.usefixtures("clean_os_env")
def test_cli_flags_reach_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import hawatch.views.app as app_module
    from hawatch.cli import main

    seen: list[Settings] = []

    class FakeApp:
        def __init__(self, settings: Settings, **kwargs: object) -> None:
            seen.append(settings)

        def run(self) -> None:
            pass

    monkeypatch.setattr(app_module, "HawatchApp", FakeApp)
    monkeypatch.setenv("HAWATCH_NODE_PASSWORD", NODE_PW)
    ca, cert = pem(tmp_path, "ca.pem"), pem(tmp_path, "c.pem")
    key = pem(tmp_path, "c.key", "PRIVATE KEY")
    argv = ["watch", "--sentinel", "127.0.0.1:1", "--node-username", "app"]
    argv += ["--tls-ca-cert", str(ca), "--tls-cert", str(cert), "--tls-key", str(key)]
    assert main(argv) == 0
    (settings,) = seen
    assert settings.node_redis_kwargs() == {
        "username": "app",
        "password": NODE_PW,
        "ssl": True,
        "ssl_ca_certs": str(ca),
        "ssl_certfile": str(cert),
        "ssl_keyfile": str(key),
        "ssl_cert_reqs": "required",
    }
    assert NODE_PW not in capsys.readouterr().err


@pytest.mark.usefixtures("clean_os_env")
def test_cli_refuses_a_missing_tls_file_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hawatch.cli import main

    missing = tmp_path / "ca.pem"
    assert main(["watch", "--sentinel", "127.0.0.1:1", "--tls-ca-cert", str(missing)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"hawatch: error: the CA certificate file {missing} given by --tls-ca-cert "
        "does not exist; check the path."
    ]


def test_there_is_no_password_flag() -> None:
    import click

    from hawatch.cli import cli

    command = cli.commands["watch"]
    assert isinstance(command, click.Command)
    names = {opt for param in command.params for opt in param.opts}
    assert {"--node-username", "--tls-ca-cert", "--tls-cert", "--tls-key"} <= names
    assert not any("password" in name or "insecure" in name for name in names)


def test_an_empty_node_password_means_the_nodes_need_none(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # requirepass on the sentinels only: the sentinel password must not be sent to the nodes.
    path = write_config(tmp_path, f'password = "{PW}"\nnode_password = ""\n')
    settings = load_settings(config=str(path), env=env)
    assert settings.redis_kwargs() == {"password": PW}
    assert settings.node_redis_kwargs() == {}
    assert "no node user, no node password" in settings.describe()
    assert not Secret("") and Secret(PW)
