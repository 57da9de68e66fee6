"""Connection settings: where the sentinels are, which masters to watch, how to log in.

One module used by every command, so that a sentinel address, a URL or a
password means the same thing everywhere, and so that a password is redacted in
one place.

Settings come from three sources, highest precedence first:

1. flags (the arguments of `load_settings`, which the CLI fills from
   ``--sentinel``, ``--url``, ``--master``, ``--username``, ``--node-username``,
   ``--tls-ca-cert``, ``--tls-cert``, ``--tls-key``, ``--config`` and
   ``--read-only``);
2. the environment (``REDIS_ADDR``, ``HAWATCH_SENTINELS``, ``HAWATCH_MASTER``,
   ``HAWATCH_USERNAME``, ``HAWATCH_PASSWORD``, ``HAWATCH_NODE_USERNAME``,
   ``HAWATCH_NODE_PASSWORD``, ``HAWATCH_TLS_CA_CERT``, ``HAWATCH_TLS_CERT``,
   ``HAWATCH_TLS_KEY``, ``HAWATCH_TLS_INSECURE_SKIP_VERIFY``,
   ``HAWATCH_READ_ONLY``, ``HAWATCH_CONFIG``);
3. a TOML config file (``--config``, else ``HAWATCH_CONFIG``, else
   ``$XDG_CONFIG_HOME/hawatch/config.toml`` or ``~/.config/hawatch/config.toml``
   when it exists).

Two sets of credentials: ``username``/``password`` log in to the **sentinels**
(what a ``redis://user:pw@sentinel`` URL carries), ``node_username``/
``node_password`` to the **data nodes** (master and replicas). When neither
node setting is given anywhere, the data nodes get the sentinel credentials,
as a pair; once either node setting is given, the node credentials are exactly
the node settings (a node password alone means the node's default user, as with
``requirepass``). So:

- one password everywhere: give it once (URL, ``HAWATCH_PASSWORD``, ``password``);
- ``requirepass`` on the data nodes only: give only ``HAWATCH_NODE_PASSWORD``
  (or ``node_password``) and no sentinel password;
- different ACL users: give both pairs;
- a password on the sentinels only: ``node_password = ""`` in the config file
  (an empty node password means none).

TLS is on for a ``rediss://``/``sentinels://`` URL, else per the config
``tls`` key, else as soon as a TLS file (CA, client certificate or key) or
``tls_insecure_skip_verify`` is given. It applies to sentinels and data nodes
alike. A certificate file must exist, be readable and hold PEM text, or
`load_settings` refuses it. Relative paths in the config file are relative to
the file's directory.

Every problem is reported as one `SettingsError` sentence that says what to do
and never holds a password: URLs are echoed only through `redact_url`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, unquote

__all__ = [
    "CONFIG_KEYS",
    "DEFAULT_SENTINEL",
    "DEFAULT_SENTINEL_PORT",
    "REDACTED",
    "TLS_SCHEMES",
    "URL_SCHEMES",
    "ParsedUrl",
    "Secret",
    "SentinelAddress",
    "Settings",
    "SettingsError",
    "default_config_path",
    "load_settings",
    "parse_address",
    "parse_url",
    "redact",
    "redact_url",
]

REDACTED = "******"

_T = TypeVar("_T")

DEFAULT_SENTINEL_PORT = 26379
"""The port Redis Sentinel listens on unless told otherwise."""

URL_SCHEMES = ("redis", "rediss", "sentinel", "sentinels", "redis+sentinel", "rediss+sentinel")
"""The URL schemes `parse_url` reads."""
TLS_SCHEMES = ("rediss", "sentinels", "rediss+sentinel")
"""The schemes among `URL_SCHEMES` that mean TLS."""

CONFIG_KEYS = (
    "master",
    "masters",
    "node_password",
    "node_username",
    "password",
    "read_only",
    "sentinels",
    "tls",
    "tls_ca_cert",
    "tls_cert",
    "tls_insecure_skip_verify",
    "tls_key",
    "url",
    "username",
)
"""The keys a config file may hold."""

_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "false", "no", "off"})

_SCHEME_PATTERN = r"[A-Za-z][A-Za-z0-9+.-]*://"
# A URL starts at the beginning of the text or after a separator, so that a
# "x://" inside a password is not mistaken for the start of another URL.
_URL_START = re.compile(r"(?:^|(?<=[\s;,'\"(<=\[]))" + _SCHEME_PATTERN)
_KOMBU_SPLIT = re.compile(r";(?=" + _SCHEME_PATTERN + ")")
_QUERY_PASSWORD = re.compile(r"([?&;]password=)[^&#\s'\"]*", re.IGNORECASE)
_HOST_NAME = re.compile(r"[\w.-]+")
_EXAMPLE = "for example 127.0.0.1:26379"
_IPV6_EXAMPLE = "for example [::1]:26379"


class SettingsError(ValueError):
    """Bad connection settings, explained in one sentence that never holds a password."""


class Secret:
    """A password that never shows itself in `repr`, `str`, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The password itself, for handing to a client library and nothing else."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __bool__(self) -> bool:
        """False for an empty password (which means: no password)."""
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, order=True)
class SentinelAddress:
    """The address of one sentinel (or any Redis server): host and TCP port."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


DEFAULT_SENTINEL = SentinelAddress("127.0.0.1", DEFAULT_SENTINEL_PORT)
"""The sentinel hawatch asks when no source names one: a local sentinel."""


@dataclass(frozen=True)
class Settings:
    """Everything hawatch needs to reach a Sentinel deployment."""

    sentinels: tuple[SentinelAddress, ...]
    masters: tuple[str, ...] = ()
    """Master names to watch; empty means every master the sentinels monitor."""
    username: str | None = None
    """ACL user for the sentinels (None: the default user)."""
    password: Secret | None = field(default=None, repr=False)
    """Password for the sentinels."""
    tls: bool = False
    read_only: bool = False
    origin: str = "default"
    """Where the sentinel addresses came from, for messages: a flag, a variable, a file."""
    node_username: str | None = None
    """ACL user for the data nodes; see `node_credentials` for the fallback."""
    node_password: Secret | None = field(default=None, repr=False)
    """Password for the data nodes; see `node_credentials` for the fallback. An empty
    password says the data nodes need none (when only the sentinels have one)."""
    tls_ca_cert: Path | None = None
    """PEM file of the CA that signed the servers' certificates (None: the system's CAs)."""
    tls_cert: Path | None = None
    """PEM client certificate, for servers that ask for one (it may hold the key too)."""
    tls_key: Path | None = None
    """PEM private key of `tls_cert`, when it is in a file of its own."""
    tls_insecure: bool = False
    """Skip verifying the servers' certificates and host names (anyone can pose as them)."""

    @property
    def separate_node_credentials(self) -> bool:
        """True when the data nodes have credentials of their own (either node setting given)."""
        return self.node_username is not None or self.node_password is not None

    def node_credentials(self) -> tuple[str | None, Secret | None]:
        """The user and password for the data nodes.

        The node settings when either is given, else the sentinel credentials
        as a pair (never a node user with the sentinel password, or the other
        way round: a mixed pair would log in to nobody).
        """
        if self.separate_node_credentials:
            return self.node_username, self.node_password
        return self.username, self.password

    def _tls_kwargs(self) -> dict[str, object]:
        """The redis-py ``ssl*`` keyword arguments, empty without TLS."""
        if not self.tls:
            return {}
        kwargs: dict[str, object] = {"ssl": True}
        if self.tls_ca_cert is not None:
            kwargs["ssl_ca_certs"] = str(self.tls_ca_cert)
        if self.tls_cert is not None:
            kwargs["ssl_certfile"] = str(self.tls_cert)
        if self.tls_key is not None:
            kwargs["ssl_keyfile"] = str(self.tls_key)
        if self.tls_insecure:
            kwargs["ssl_cert_reqs"] = "none"
            kwargs["ssl_check_hostname"] = False
        else:
            kwargs["ssl_cert_reqs"] = "required"
        return kwargs

    def redis_kwargs(self) -> dict[str, object]:
        """Keyword arguments for a redis-py client of a sentinel (sync or asyncio)."""
        return _client_kwargs(self.username, self.password, self._tls_kwargs())

    def node_redis_kwargs(self) -> dict[str, object]:
        """Keyword arguments for a redis-py client of a data node (master or replica)."""
        return _client_kwargs(*self.node_credentials(), self._tls_kwargs())

    def describe(self) -> str:
        """A one-line summary for a status line or a log, with the password left out.

        It says where the sentinels came from, so that an operator who reaches
        the wrong cluster can see at once which flag, variable or file sent
        hawatch there.
        """
        addresses = ", ".join(str(address) for address in self.sentinels)
        origin = "default" if self.origin == "default" else f"from {self.origin}"
        parts = [f"sentinels {addresses} ({_printable(origin)})"]
        if self.masters:
            word = "master" if len(self.masters) == 1 else "masters"
            parts.append(f"{word} {', '.join(_printable(name) for name in self.masters)}")
        else:
            parts.append("all masters")
        parts.append(f"user {_printable(self.username)}" if self.username else "no user")
        parts.append("password set" if self.password is not None else "no password")
        if self.separate_node_credentials:
            parts.append(
                f"node user {_printable(self.node_username)}"
                if self.node_username
                else "no node user"
            )
            parts.append("node password set" if self.node_password else "no node password")
        if self.tls:
            parts.append("TLS")
            if self.tls_ca_cert is not None:
                parts.append(f"CA {_printable(str(self.tls_ca_cert))}")
            if self.tls_cert is not None:
                parts.append(f"client certificate {_printable(str(self.tls_cert))}")
            if self.tls_insecure:
                parts.append("CERTIFICATES NOT VERIFIED")
        else:
            parts.append("no TLS")
        if self.read_only:
            parts.append("read-only")
        return ", ".join(parts)

    def redact(self, text: str) -> str:
        """`text` (say, an error from redis-py) with both passwords and URL passwords hidden."""
        return redact(text, [self.password, self.node_password])


def _client_kwargs(
    username: str | None, password: Secret | None, tls: Mapping[str, object]
) -> dict[str, object]:
    """redis-py keyword arguments for one set of credentials and the TLS options."""
    kwargs: dict[str, object] = {}
    if username:
        kwargs["username"] = username
    if password is not None and password.reveal():
        kwargs["password"] = password.reveal()
    kwargs.update(tls)
    return kwargs


@dataclass(frozen=True)
class ParsedUrl:
    """What one `--url` value (possibly several ``;``-joined URLs) says.

    `sentinels` are the addresses in the URL(s), deduplicated in order;
    `username` and `password` are the first credentials found (percent-decoded);
    `tls` is true for ``rediss://``, ``sentinels://`` and ``rediss+sentinel://``;
    `masters` are master names from a ``redis+sentinel://.../NAME`` path.
    """

    sentinels: tuple[SentinelAddress, ...]
    username: str | None = None
    password: Secret | None = None
    tls: bool = False
    masters: tuple[str, ...] = ()


# --------------------------------------------------------------------------- redaction


def redact_url(text: str) -> str:
    """`text` with the password of every URL in it replaced by ``******``.

    Works on a bare URL, on ``;``-joined kombu URLs and on free text that
    quotes URLs (an error message, a log line). The user name stays visible; an
    empty user (``redis://:pw@host``) is handled. A ``password=`` query
    parameter is hidden too. The password is taken to run from the first ``:``
    after ``scheme://`` to the *last* ``@`` of the URL, so a password with an
    unencoded ``@`` or ``/`` is still hidden in full (at the cost of hiding a
    little more than needed when a path holds an ``@``). Passwords outside a
    ``scheme://`` URL are not recognised: use `redact` for those.
    """
    starts = [match.start() for match in _URL_START.finditer(text)]
    if not starts:
        return text
    pieces = [text[: starts[0]]]
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(text)
        pieces.append(_redact_segment(text[start:end]))
    return "".join(pieces)


def _redact_segment(segment: str) -> str:
    """Redact the one URL that `segment` starts with; the URL ends at whitespace."""
    cut = re.search(r"\s", segment)
    url, after = (segment[: cut.start()], segment[cut.start() :]) if cut else (segment, "")
    scheme = re.match(_SCHEME_PATTERN, url)
    assert scheme is not None  # the caller found a URL start here
    head, rest = url[: scheme.end()], url[scheme.end() :]
    at = rest.rfind("@")
    if at >= 0:
        userinfo = rest[:at]
        colon = userinfo.find(":")
        if colon >= 0:
            rest = userinfo[: colon + 1] + REDACTED + rest[at:]
    rest = _QUERY_PASSWORD.sub(lambda match: match.group(1) + REDACTED, rest)
    return head + rest + after


def redact(text: str, secrets: Iterable[str | Secret | None] = ()) -> str:
    """`text` with every given secret (plain or percent-encoded) and every URL password hidden.

    Use it on text that may hold a password outside a URL, such as an
    exception message from a client library that was handed the password.
    Empty and `None` secrets are skipped.
    """
    values: set[str] = set()
    for secret in secrets:
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if value:
            values.add(value)
            values.add(quote(value, safe=""))
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return redact_url(text)


# --------------------------------------------------------------------------- addresses


def parse_address(text: str, *, what: str = "--sentinel") -> SentinelAddress:
    """Read ``HOST:PORT``, ``[IPv6]:PORT``, ``HOST`` or ``[IPv6]`` (port 26379).

    `what` names the source (a flag, a variable) in the error message. An IPv6
    address must be in brackets even without a port, because ``fe80::1:6379``
    could be read either way. Whitespace anywhere is refused (a caller that
    splits a list strips around its separators first).
    """
    if "@" in text:
        # Possibly user:password@host without a scheme: never echo it.
        raise SettingsError(
            f"{what} holds an '@', but a sentinel address has no user or password; "
            "give credentials in a URL with --url, or in HAWATCH_USERNAME and HAWATCH_PASSWORD."
        )
    shown = repr(redact_url(text))
    if "://" in text:
        raise SettingsError(
            f"{what} {shown} is a URL, not HOST:PORT; give URLs with --url or REDIS_ADDR, "
            f"or write HOST:PORT, {_EXAMPLE}."
        )
    return _parse_hostport(text, what=what, shown=shown)


def _parse_hostport(text: str, *, what: str, shown: str) -> SentinelAddress:
    """The address in `text`; errors name `what` and echo `shown` (already redacted)."""
    if not text:
        raise SettingsError(f"{what} has an empty address; write HOST:PORT, {_EXAMPLE}.")
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in text):
        raise SettingsError(
            f"{what} {shown}: the address contains whitespace or control characters; "
            f"write HOST:PORT without spaces, {_EXAMPLE}."
        )
    unbalanced = SettingsError(
        f"{what} {shown}: the brackets are unbalanced; "
        f"write an IPv6 address as [ADDRESS]:PORT, {_IPV6_EXAMPLE}."
    )
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise unbalanced
        host, after = text[1:end], text[end + 1 :]
        if "[" in host or "[" in after or "]" in after:
            raise unbalanced
        if not host:
            raise SettingsError(
                f"{what} {shown}: the brackets hold no address; "
                f"write an IPv6 address as [ADDRESS]:PORT, {_IPV6_EXAMPLE}."
            )
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise SettingsError(
                f"{what} {shown}: brackets are for IPv6 addresses and {host!r} is not one; "
                f"write a host name or an IPv4 address without brackets, {_EXAMPLE}."
            ) from None
        if not after:
            return SentinelAddress(host, DEFAULT_SENTINEL_PORT)
        if not after.startswith(":"):
            raise SettingsError(
                f"{what} {shown}: {after!r} follows the closing bracket; "
                f"write [ADDRESS]:PORT, {_IPV6_EXAMPLE}."
            )
        return SentinelAddress(host, _parse_port(after[1:], what=what, shown=shown))
    if "[" in text or "]" in text:
        raise unbalanced
    if text.count(":") > 1:
        raise SettingsError(
            f"{what} {shown}: an IPv6 address needs brackets; "
            f"write it as [ADDRESS]:PORT, or [ADDRESS] for port 26379, {_IPV6_EXAMPLE}."
        )
    host, colon, port_text = text.partition(":")
    if not host:
        raise SettingsError(f"{what} {shown}: the host is empty; write HOST:PORT, {_EXAMPLE}.")
    if not _HOST_NAME.fullmatch(host) or not any(ch.isalnum() for ch in host):
        raise SettingsError(
            f"{what} {shown}: {host!r} is not a host name or IP address; "
            f"write HOST:PORT, {_EXAMPLE}."
        )
    if not colon:
        return SentinelAddress(host, DEFAULT_SENTINEL_PORT)
    return SentinelAddress(host, _parse_port(port_text, what=what, shown=shown))


def _parse_port(text: str, *, what: str, shown: str) -> int:
    """A TCP port from 1 to 65535."""
    if not text:
        raise SettingsError(
            f"{what} {shown}: the port is empty; write HOST:PORT, or just HOST for port 26379."
        )
    if not (text.isascii() and text.isdigit()):
        raise SettingsError(
            f"{what} {shown}: the port {text!r} is not a number; "
            "write HOST:PORT with a port from 1 to 65535."
        )
    # Check the length first: int() refuses strings of thousands of digits.
    if len(text) > 5 or not 1 <= int(text) <= 65535:
        raise SettingsError(
            f"{what} {shown}: the port {text} is out of range; use a port from 1 to 65535."
        )
    return int(text)


def _parse_address_list(values: Iterable[str], *, what: str) -> list[SentinelAddress]:
    """Addresses from values that may each hold a comma-separated list."""
    addresses: list[SentinelAddress] = []
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item and value.strip():
                raise SettingsError(
                    f"{what} has an empty entry between commas; "
                    "write HOST:PORT,HOST:PORT with no empty entries."
                )
            addresses.append(parse_address(item, what=what))
    return addresses


# --------------------------------------------------------------------------- URLs


def parse_url(text: str, *, what: str) -> ParsedUrl:
    """Read a URL that locates the sentinels, as an application's settings hold it.

    Accepted forms (default port 26379, since these are sentinel addresses):

    - ``redis://[user[:password]@]host[:port][/db]`` and ``rediss://...`` (TLS);
    - kombu broker URLs ``sentinel://:pw@h1:26379;sentinel://h2:26379`` (and
      ``sentinels://`` for TLS); credentials may be on any of them and the
      first found are used;
    - ``redis+sentinel://[user:pw@]h1:26379,h2:26379[/master[/db]]`` (and
      ``rediss+sentinel://``), whose path names the master to watch.

    A comma-separated host list is accepted in every scheme. The database
    number and any query string are ignored: hawatch talks to the sentinels,
    not to a database. User and password are percent-decoded. Leading and
    trailing whitespace is stripped; whitespace inside is refused (write
    ``%20``). `what` names the source in messages, which never hold the
    password.
    """
    stripped = text.strip()
    if not stripped:
        raise SettingsError(
            f"{what} is empty; give a URL such as redis://127.0.0.1:26379, or leave it out."
        )
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in stripped):
        # Not echoed: a space could hide where the password ends.
        raise SettingsError(
            f"{what} contains whitespace or control characters; write the URL without spaces, "
            "percent-encoding them in a password (a space is %20)."
        )
    sentinels: list[SentinelAddress] = []
    masters: list[str] = []
    username: str | None = None
    password: Secret | None = None
    credentials_found = False
    tls_seen: set[bool] = set()
    for part in _KOMBU_SPLIT.split(stripped):
        one = _parse_one_url(part, what=what)
        sentinels.extend(one.sentinels)
        masters.extend(one.masters)
        tls_seen.add(one.tls)
        if not credentials_found and (one.username is not None or one.password is not None):
            username, password, credentials_found = one.username, one.password, True
    if len(tls_seen) > 1:
        raise SettingsError(
            f"{what} {redact_url(stripped)!r} mixes TLS and plain schemes; "
            "use rediss:// or sentinels:// for every sentinel, or for none."
        )
    return ParsedUrl(
        sentinels=_unique(sentinels),
        username=username,
        password=password,
        tls=tls_seen == {True},
        masters=_unique(masters),
    )


def _parse_one_url(part: str, *, what: str) -> ParsedUrl:
    """One URL of a possibly ``;``-joined list."""
    scheme, separator, rest = part.partition("://")
    if not separator:
        # Without a scheme redact_url cannot find a password, so echo only safe text.
        shown = "" if "@" in part else f" {part!r}"
        raise SettingsError(
            f"{what}{shown} is not a URL; write it as redis://HOST:PORT or "
            "sentinel://HOST:PORT;sentinel://HOST:PORT, or give HOST:PORT with --sentinel."
        )
    shown = repr(redact_url(part))
    scheme = scheme.lower()
    if scheme not in URL_SCHEMES:
        accepted = ", ".join(f"{name}://" for name in URL_SCHEMES[:-1])
        raise SettingsError(
            f"{what} {shown}: the scheme {scheme!r} is not one hawatch reads; "
            f"use {accepted} or {URL_SCHEMES[-1]}://."
        )
    username: str | None = None
    password: Secret | None = None
    at = rest.rfind("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        raw_user, colon, raw_password = userinfo.partition(":")
        try:
            username = unquote(raw_user, errors="strict") or None
            if colon and raw_password:
                password = Secret(unquote(raw_password, errors="strict"))
        except UnicodeDecodeError:
            raise SettingsError(
                f"{what} {shown}: the user or password is not valid percent-encoded UTF-8; "
                "percent-encode it again from the original text."
            ) from None
    end = re.search(r"[/?#]", rest)
    hostlist, tail = (rest[: end.start()], rest[end.start() :]) if end else (rest, "")
    if not hostlist:
        raise SettingsError(
            f"{what} {shown}: the URL has no host; write it as redis://HOST:PORT, "
            "for example redis://127.0.0.1:26379."
        )
    sentinels = []
    for item in hostlist.split(","):
        if not item:
            raise SettingsError(
                f"{what} {shown}: the host list has an empty entry; "
                "write HOST:PORT,HOST:PORT with no empty entries."
            )
        sentinels.append(_parse_hostport(item, what=what, shown=shown))
    path = re.split(r"[?#]", tail, maxsplit=1)[0]
    segments = [segment for segment in path.split("/") if segment]
    masters: list[str] = []
    if scheme.endswith("+sentinel"):
        if len(segments) > 2 or (len(segments) == 2 and not segments[1].isdigit()):
            raise SettingsError(
                f"{what} {shown}: the path must be /MASTER or /MASTER/DB; "
                f"for example {scheme}://127.0.0.1:26379/mymaster."
            )
        if segments:
            masters.append(_check_master(unquote(segments[0]), what=what))
    elif len(segments) > 1 or (segments and not segments[0].isdigit()):
        raise SettingsError(
            f"{what} {shown}: a {scheme}:// URL takes only a database number as its path, "
            "such as /0; name masters with --master or HAWATCH_MASTER, "
            "or use redis+sentinel://HOST:PORT/MASTER."
        )
    return ParsedUrl(
        sentinels=tuple(sentinels),
        username=username,
        password=password,
        tls=scheme in TLS_SCHEMES,
        masters=tuple(masters),
    )


# --------------------------------------------------------------------------- masters


def _check_master(name: str, *, what: str) -> str:
    """`name` if it can be a Sentinel master name: not empty, no spaces, no control characters."""
    if not name:
        raise SettingsError(
            f"the master name from {what} is empty; give a name such as mymaster, "
            "or leave it out to watch every master."
        )
    if any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") for ch in name):
        raise SettingsError(
            f"the master name {name!r} from {what} contains whitespace or control characters; "
            "give the name exactly as SENTINEL MASTERS lists it."
        )
    return name


def _parse_masters(values: Iterable[str], *, what: str) -> list[str]:
    """Master names from values that may each hold a comma-separated list."""
    return [_check_master(item.strip(), what=what) for value in values for item in value.split(",")]


# --------------------------------------------------------------------------- config file


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """Where hawatch looks for its config file when neither --config nor HAWATCH_CONFIG says.

    ``$XDG_CONFIG_HOME/hawatch/config.toml`` when that variable holds an
    absolute path (the XDG spec says to ignore a relative one), else
    ``$HOME/.config/hawatch/config.toml``. `env` defaults to `os.environ`.
    """
    environ = os.environ if env is None else env
    xdg = environ.get("XDG_CONFIG_HOME", "")
    if xdg and Path(xdg).is_absolute():
        base = Path(xdg)
    else:
        home = environ.get("HOME") or str(Path.home())
        base = Path(home) / ".config"
    return base / "hawatch" / "config.toml"


@dataclass(frozen=True)
class _Config:
    """The validated contents of a config file."""

    path: Path
    sentinels: tuple[str, ...] = ()
    url: str | None = None
    masters: tuple[str, ...] | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool | None = None
    read_only: bool | None = None
    node_username: str | None = None
    node_password: str | None = field(default=None, repr=False)
    tls_ca_cert: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_insecure: bool | None = None


_TOML_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "float"),
    (str, "string"),
    (list, "array"),
    (dict, "table"),
)


def _toml_type(value: object) -> str:
    """The TOML name of a value's type, for messages that must not echo the value."""
    for python_type, name in _TOML_TYPES:
        if isinstance(value, python_type):
            return name
    return "date or time"


def _find_config(config: str | None, environ: Mapping[str, str]) -> tuple[Path, str] | None:
    """The config file to read and what named it, or None when there is none."""
    if config is not None:
        return Path(config).expanduser(), "--config"
    from_env = environ.get("HAWATCH_CONFIG", "").strip()
    if from_env:
        return Path(from_env).expanduser(), "HAWATCH_CONFIG"
    path = default_config_path(environ)
    return (path, "default") if path.is_file() else None


def _read_config(path: Path, via: str) -> _Config:
    """Read and check a config file; `via` says what named it, for messages."""
    shown = _printable(str(path))
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SettingsError(
            f"the config file {shown} given by {via} does not exist; "
            f"check the path, or leave {via} out."
        ) from None
    except IsADirectoryError:
        raise SettingsError(
            f"the config file {shown} is a directory; give the path of a TOML file."
        ) from None
    except OSError as exc:
        raise SettingsError(
            f"cannot read the config file {shown} ({exc.strerror or type(exc).__name__}); "
            "check its path and permissions."
        ) from None
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise SettingsError(
            f"the config file {shown} is not UTF-8 text; save it as UTF-8 TOML."
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(
            f"the config file {shown} is not valid TOML ({_toml_problem(exc)}); "
            "fix the file, or give another one with --config."
        ) from None
    return _check_config(data, path)


def _toml_problem(exc: tomllib.TOMLDecodeError) -> str:
    """tomllib's description and position, minus any character quoted from the file."""
    message = str(exc).replace("\n", " ")
    match = re.fullmatch(r"(.*) \(at (.*)\)", message)
    problem, where = (match.group(1), match.group(2)) if match else (message, "")
    # These two quote a character of the file, which may be part of a password.
    for prefix in ("Found invalid character", "Illegal character"):
        if problem.startswith(prefix):
            problem = prefix
    problem = problem[:1].lower() + problem[1:]
    return f"{problem} at {where}" if where else problem


def _check_config(data: Mapping[str, object], path: Path) -> _Config:
    """The typed config, or a SettingsError naming the bad key (never its value)."""
    shown = _printable(str(path))
    for key in data:
        if key not in CONFIG_KEYS:
            known = ", ".join(CONFIG_KEYS[:-1]) + " and " + CONFIG_KEYS[-1]
            raise SettingsError(
                f"the config file {shown} has the unknown key {key!r}; the known keys are {known}."
            )
    if "master" in data and "masters" in data:
        raise SettingsError(
            f"the config file {shown} sets both master and masters; keep one of them."
        )

    def wrong(key: str, expected: str, example: str) -> SettingsError:
        return SettingsError(
            f"the config file {shown} sets {key} to a {_toml_type(data[key])}; "
            f"{key} must be {expected}, for example {example}."
        )

    def string(key: str, example: str) -> str | None:
        if key not in data:
            return None
        value = data[key]
        if not isinstance(value, str):
            raise wrong(key, "a string", example)
        return value

    def strings(key: str, example: str) -> tuple[str, ...] | None:
        if key not in data:
            return None
        value = data[key]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise wrong(key, "an array of strings", example)
        return tuple(value)

    def boolean(key: str) -> bool | None:
        if key not in data:
            return None
        value = data[key]
        if not isinstance(value, bool):
            raise wrong(key, "true or false", f"{key} = true")
        return value

    what_masters = f"the config file {shown}"
    masters: tuple[str, ...] | None = None
    single = string("master", 'master = "mymaster"')
    if single is not None:
        masters = (_check_master(single, what=what_masters),)
    many = strings("masters", 'masters = ["mymaster"]')
    if many is not None:
        masters = tuple(_check_master(name, what=what_masters) for name in many)
    return _Config(
        path=path,
        sentinels=strings("sentinels", 'sentinels = ["127.0.0.1:26379"]') or (),
        url=string("url", 'url = "redis://127.0.0.1:26379"'),
        masters=masters,
        username=string("username", 'username = "hawatch"') or None,
        password=string("password", 'password = "..."') or None,
        tls=boolean("tls"),
        read_only=boolean("read_only"),
        node_username=string("node_username", 'node_username = "hawatch"') or None,
        node_password=string("node_password", 'node_password = "..."'),
        tls_ca_cert=string("tls_ca_cert", 'tls_ca_cert = "/etc/hawatch/ca.pem"') or None,
        tls_cert=string("tls_cert", 'tls_cert = "/etc/hawatch/client.pem"') or None,
        tls_key=string("tls_key", 'tls_key = "/etc/hawatch/client.key"') or None,
        tls_insecure=boolean("tls_insecure_skip_verify"),
    )


# --------------------------------------------------------------------------- loading


def _read_only_from_env(environ: Mapping[str, str]) -> bool | None:
    """HAWATCH_READ_ONLY as a boolean; unset or empty means not said."""
    return _bool_from_env(environ, "HAWATCH_READ_ONLY")


def _bool_from_env(environ: Mapping[str, str], name: str) -> bool | None:
    """The variable `name` as a boolean; unset or empty means not said."""
    raw = environ.get(name, "")
    word = raw.strip().lower()
    if not word:
        return None
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise SettingsError(
        f"{name} is {raw!r}, which is neither true nor false; "
        "set it to 1, true, yes or on, or to 0, false, no or off."
    )


# --------------------------------------------------------------------------- TLS files


def _check_pem_file(path: Path, *, what: str, via: str) -> Path:
    """`path` if it is a readable file holding PEM text, else a `SettingsError`.

    The file's content is never echoed (a key file is a secret).
    """
    shown = _printable(str(path))
    try:
        with open(path, "rb") as pem:
            head = pem.read(1 << 20)
    except FileNotFoundError:
        raise SettingsError(
            f"the {what} file {shown} given by {via} does not exist; check the path."
        ) from None
    except IsADirectoryError:
        raise SettingsError(
            f"the {what} file {shown} given by {via} is a directory; give the path of a PEM file."
        ) from None
    except PermissionError:
        raise SettingsError(
            f"the {what} file {shown} given by {via} cannot be read (permission denied); "
            "let the user running hawatch read it, or give another file."
        ) from None
    except OSError as exc:
        raise SettingsError(
            f"cannot read the {what} file {shown} given by {via} "
            f"({exc.strerror or type(exc).__name__}); check its path and permissions."
        ) from None
    if b"-----BEGIN " not in head:
        raise SettingsError(
            f"the {what} file {shown} given by {via} holds no PEM text (no -----BEGIN line); "
            "give a PEM file, converting a DER file with openssl first."
        )
    return path


def _pick_tls_file(
    *,
    flag_value: str | None,
    flag: str,
    environ: Mapping[str, str],
    variable: str,
    file: _Config | None,
    key: str,
    what: str,
) -> tuple[Path | None, str, str]:
    """One TLS file from the flag, else the variable, else the config key.

    Returns the path, what gave it (for messages) and its level (``flags``,
    ``env`` or ``config``). A relative path in the config file is taken
    relative to the file's directory.
    """
    if flag_value is not None:
        if not flag_value.strip():
            raise SettingsError(f"{flag} is empty; give the path of a PEM file, or leave it out.")
        return _check_pem_file(Path(flag_value).expanduser(), what=what, via=flag), flag, "flags"
    from_env = environ.get(variable, "").strip()
    if from_env:
        path = _check_pem_file(Path(from_env).expanduser(), what=what, via=variable)
        return path, variable, "env"
    from_file = getattr(file, key) if file is not None else None
    if file is not None and from_file:
        path = Path(from_file).expanduser()
        if not path.is_absolute():
            path = file.path.parent / path
        via = f"{key} in the config file {_printable(str(file.path))}"
        return _check_pem_file(path, what=what, via=via), via, "config"
    return None, "", ""


@dataclass
class _Source:
    """The sentinel addresses one level (flags, environment, config) gives, with its URL."""

    addresses: list[SentinelAddress]
    url: ParsedUrl | None
    origin: str


def _as_list(values: Sequence[str] | str) -> list[str]:
    """A list of strings, even when a caller passed one string instead of a sequence."""
    return [values] if isinstance(values, str) else list(values)


def load_settings(
    *,
    sentinels: Sequence[str] = (),
    url: str | None = None,
    masters: Sequence[str] = (),
    username: str | None = None,
    config: str | None = None,
    read_only: bool | None = None,
    env: Mapping[str, str] | None = None,
    node_username: str | None = None,
    tls_ca_cert: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> Settings:
    """Gather the settings from flags, then the environment, then the config file.

    The arguments are the CLI flags: `sentinels` holds ``--sentinel`` values
    (each ``HOST:PORT`` or a comma-separated list of them), `url` is ``--url``,
    `masters` holds ``--master`` values (each may be a comma-separated list),
    `config` is ``--config``, `node_username`, `tls_ca_cert`, `tls_cert` and
    `tls_key` are ``--node-username``, ``--tls-ca-cert``, ``--tls-cert`` and
    ``--tls-key``. `env` defaults to `os.environ`.

    **Sentinel addresses** come from the first level that names any: flags
    (``--sentinel`` and ``--url``, combined), else the environment
    (``HAWATCH_SENTINELS`` and ``REDIS_ADDR``, combined), else the config
    file (``sentinels`` and ``url``, combined), else 127.0.0.1:26379. Levels
    are never mixed; lower levels' addresses are not even parsed.

    **Every other field** takes the first value found in this order: flags,
    environment, config file; within one level an explicit setting
    (``--master``, ``HAWATCH_PASSWORD``, the ``password`` key...) beats what
    that level's URL carries. A URL's user, password, TLS and master count
    only when its level supplied the sentinel addresses: credentials travel
    with the sentinels they belong to. For the password that gives::

        --url password            (when the flags name the sentinels)
        > HAWATCH_PASSWORD
        > REDIS_ADDR password     (when the environment names the sentinels)
        > config file `password`
        > config file url password (when the config names the sentinels)

    There is no password flag (it would show in ``ps``). Username and master
    names follow the same pattern with ``--username``/``HAWATCH_USERNAME``/
    ``username`` and ``--master``/``HAWATCH_MASTER``/``master(s)``. An empty
    environment variable counts as unset.

    The data nodes' credentials: ``--node-username`` > ``HAWATCH_NODE_USERNAME``
    > config ``node_username``, and ``HAWATCH_NODE_PASSWORD`` > config
    ``node_password`` (no URL carries them). When neither is found, the data
    nodes use the sentinel credentials (`Settings.node_credentials`).

    TLS files: ``--tls-ca-cert`` > ``HAWATCH_TLS_CA_CERT`` > ``tls_ca_cert``,
    and likewise ``--tls-cert``/``HAWATCH_TLS_CERT``/``tls_cert`` and
    ``--tls-key``/``HAWATCH_TLS_KEY``/``tls_key``; skipping verification only
    from ``HAWATCH_TLS_INSECURE_SKIP_VERIFY`` > ``tls_insecure_skip_verify``.
    TLS itself comes from the chosen URL's scheme, else the config ``tls``
    key, else it is on when any of those TLS settings is given.

    Raises `SettingsError` (one sentence, no password, no traceback worth
    reading) for any bad input.
    """
    environ = os.environ if env is None else env
    try:
        return _load_settings(
            sentinels=_as_list(sentinels),
            url=url,
            masters=_as_list(masters),
            username=username,
            config=config,
            read_only=read_only,
            environ=environ,
            node_username=node_username,
            tls_ca_cert=tls_ca_cert,
            tls_cert=tls_cert,
            tls_key=tls_key,
        )
    except SettingsError:
        raise
    except Exception as exc:
        # The message of an unexpected exception may quote input, so leave it out.
        raise SettingsError(
            f"hawatch could not read its connection settings ({type(exc).__name__}); "
            "check --sentinel, --url, the HAWATCH_* variables, REDIS_ADDR and the config file."
        ) from None


def _load_settings(
    *,
    sentinels: list[str],
    url: str | None,
    masters: list[str],
    username: str | None,
    config: str | None,
    read_only: bool | None,
    environ: Mapping[str, str],
    node_username: str | None,
    tls_ca_cert: str | None,
    tls_cert: str | None,
    tls_key: str | None,
) -> Settings:
    """`load_settings` without the safety net."""
    found = _find_config(config, environ)
    file = _read_config(*found) if found is not None else None
    file_what = f"the config file {_printable(str(file.path))}" if file else ""

    env_sentinels = environ.get("HAWATCH_SENTINELS", "").strip()
    env_url = environ.get("REDIS_ADDR", "").strip()

    # Which level names the sentinels.
    level: str
    source: _Source
    if sentinels or url is not None:
        level = "flags"
        source = _combine(
            _parse_address_list(sentinels, what="--sentinel"),
            parse_url(url, what="--url") if url is not None else None,
            [name for name, given in (("--sentinel", sentinels), ("--url", url)) if given],
        )
    elif env_sentinels or env_url:
        level = "env"
        source = _combine(
            _parse_address_list([env_sentinels], what="HAWATCH_SENTINELS") if env_sentinels else [],
            parse_url(env_url, what="REDIS_ADDR") if env_url else None,
            [
                name
                for name, given in (("HAWATCH_SENTINELS", env_sentinels), ("REDIS_ADDR", env_url))
                if given
            ],
        )
    elif file is not None and (file.sentinels or file.url is not None):
        level = "config"
        source = _combine(
            _parse_address_list(file.sentinels, what=f"sentinels in {file_what}"),
            parse_url(file.url, what=f"url in {file_what}") if file.url is not None else None,
            [f"config file {_printable(str(file.path))}"],
        )
    else:
        level = "default"
        source = _Source([DEFAULT_SENTINEL], None, "default")

    def from_url(at_level: str) -> ParsedUrl | None:
        return source.url if level == at_level else None

    flag_url, env_url_parsed, file_url = from_url("flags"), from_url("env"), from_url("config")

    env_masters = environ.get("HAWATCH_MASTER", "").strip()
    master_candidates: list[Sequence[str] | None] = [
        _parse_masters(masters, what="--master") if masters else None,
        flag_url.masters if flag_url and flag_url.masters else None,
        _parse_masters([env_masters], what="HAWATCH_MASTER") if env_masters else None,
        env_url_parsed.masters if env_url_parsed and env_url_parsed.masters else None,
        file.masters if file else None,
        file_url.masters if file_url and file_url.masters else None,
    ]
    chosen_masters = next((m for m in master_candidates if m is not None), ())

    chosen_username = _first(
        username or None,
        flag_url.username if flag_url else None,
        environ.get("HAWATCH_USERNAME") or None,
        env_url_parsed.username if env_url_parsed else None,
        file.username if file else None,
        file_url.username if file_url else None,
    )
    env_password = environ.get("HAWATCH_PASSWORD") or None
    chosen_password = _first(
        flag_url.password if flag_url else None,
        Secret(env_password) if env_password else None,
        env_url_parsed.password if env_url_parsed else None,
        Secret(file.password) if file and file.password else None,
        file_url.password if file_url else None,
    )
    chosen_node_username = _first(
        node_username or None,
        environ.get("HAWATCH_NODE_USERNAME") or None,
        file.node_username if file else None,
    )
    env_node_password = environ.get("HAWATCH_NODE_PASSWORD") or None
    chosen_node_password = _first(
        Secret(env_node_password) if env_node_password else None,
        # An empty node_password in the file is kept: it says the nodes need no password.
        Secret(file.node_password) if file and file.node_password is not None else None,
    )

    ca_cert, ca_via, ca_level = _pick_tls_file(
        flag_value=tls_ca_cert,
        flag="--tls-ca-cert",
        environ=environ,
        variable="HAWATCH_TLS_CA_CERT",
        file=file,
        key="tls_ca_cert",
        what="CA certificate",
    )
    client_cert, cert_via, cert_level = _pick_tls_file(
        flag_value=tls_cert,
        flag="--tls-cert",
        environ=environ,
        variable="HAWATCH_TLS_CERT",
        file=file,
        key="tls_cert",
        what="client certificate",
    )
    client_key, key_via, key_level = _pick_tls_file(
        flag_value=tls_key,
        flag="--tls-key",
        environ=environ,
        variable="HAWATCH_TLS_KEY",
        file=file,
        key="tls_key",
        what="client key",
    )
    if client_key is not None and client_cert is None:
        raise SettingsError(
            f"{key_via} gives a client key but no client certificate is given; "
            "give the certificate too with --tls-cert, HAWATCH_TLS_CERT or tls_cert."
        )
    env_insecure = _bool_from_env(environ, "HAWATCH_TLS_INSECURE_SKIP_VERIFY")
    chosen_insecure = _first(env_insecure, file.tls_insecure if file else None, False)

    # What asks for TLS at each level: the TLS files and an insecure switch set to true.
    tls_asked: dict[str, list[str]] = {"flags": [], "env": [], "config": []}
    for path, via, at_level in (
        (ca_cert, ca_via, ca_level),
        (client_cert, cert_via, cert_level),
        (client_key, key_via, key_level),
    ):
        if path is not None:
            tls_asked[at_level].append(via)
    if env_insecure:
        tls_asked["env"].append("HAWATCH_TLS_INSECURE_SKIP_VERIFY")
    if env_insecure is None and file is not None and file.tls_insecure:
        tls_asked["config"].append(
            f"tls_insecure_skip_verify in the config file {_printable(str(file.path))}"
        )
    chosen_tls = _choose_tls(level, source, file, tls_asked)
    chosen_read_only = _first(
        read_only, _read_only_from_env(environ), file.read_only if file else None, False
    )
    return Settings(
        sentinels=_unique(source.addresses),
        masters=_unique(chosen_masters),
        username=chosen_username,
        password=chosen_password,
        tls=bool(chosen_tls),
        read_only=bool(chosen_read_only),
        origin=source.origin,
        node_username=chosen_node_username,
        node_password=chosen_node_password,
        tls_ca_cert=ca_cert,
        tls_cert=client_cert,
        tls_key=client_key,
        tls_insecure=bool(chosen_insecure),
    )


def _choose_tls(
    level: str, source: _Source, file: _Config | None, asked: Mapping[str, list[str]]
) -> bool:
    """Whether to use TLS: the highest level that says anything about it decides.

    At each level, flags then environment then config file, a URL that names
    the sentinels says yes or no by its scheme (and at the config level, the
    ``tls`` key says it when no URL does); failing that, a TLS file or the
    insecure switch at that level says yes. A level that says no while a TLS
    setting of the same level asks for TLS is a contradiction, refused.
    """
    for at_level in ("flags", "env", "config"):
        said: bool | None = None
        by = fix = ""
        if level == at_level and source.url is not None:
            said, by = source.url.tls, f"{source.origin} names the sentinels with a non-TLS URL"
            fix = "use rediss:// (or sentinels://) to connect with TLS"
        elif at_level == "config" and file is not None and file.tls is not None:
            said, by = file.tls, f"the config file {_printable(str(file.path))} sets tls = false"
            fix = "set tls = true to connect with TLS"
        requests = asked[at_level]
        if said is False and requests:
            raise SettingsError(f"{requests[0]} asks for TLS, but {by}; {fix}, or leave it out.")
        if said is not None:
            return said
        if requests:
            return True
    return False


def _combine(addresses: list[SentinelAddress], url: ParsedUrl | None, names: list[str]) -> _Source:
    """One level's addresses: the explicit list first, then the URL's."""
    combined = addresses + (list(url.sentinels) if url is not None else [])
    return _Source(combined, url, " and ".join(names))


# --------------------------------------------------------------------------- helpers


def _first(*values: _T | None) -> _T | None:
    """The first value that is not None."""
    return next((value for value in values if value is not None), None)


def _unique(values: Iterable[_T]) -> tuple[_T, ...]:
    """`values` without repeats, in first-seen order."""
    return tuple(dict.fromkeys(values))


def _printable(text: str) -> str:
    """`text` as is when printable, else its repr, so a message stays on one line."""
    return text if text.isprintable() else repr(text)
