"""Sentinel messages as people read them: short, and safe to print on a terminal.

Pure formatting of core events, shared by the views (the event list) and by
anything that logs; a hostile payload can never drive the terminal.
"""

from __future__ import annotations

import unicodedata

from hawatch.core.events import SentinelMessage, UnparsedSentinelMessage

__all__ = ["printable", "short_text"]

_RAW_LIMIT = 120
"""How much of an unparsed payload `short_text` shows."""


def short_text(message: SentinelMessage | UnparsedSentinelMessage) -> str:
    """The message as a one-liner for people (the TUI's event list, logs).

    ``+switch-master mymaster 127.0.0.1:6380 → 127.0.0.1:6381``,
    ``+odown master mymaster 127.0.0.1:6380 #quorum 2/2``,
    ``+sdown slave 127.0.0.1:6381`` (a replica's name is its address). Control
    characters are replaced, so a hostile payload cannot drive the terminal.
    """
    if isinstance(message, UnparsedSentinelMessage):
        raw = message.payload
        raw = raw if len(raw) <= _RAW_LIMIT else raw[: _RAW_LIMIT - 1] + "…"
        return printable(f"{message.channel} {raw} (unparsed: {message.problem})")
    if message.channel == "+switch-master" and message.old and message.new:
        return printable(f"{message.channel} {message.master} {message.old} → {message.new}")
    if message.role and message.instance:
        return printable(_instance_text(message))
    return printable(f"{message.channel} {message.payload}".strip())


def _instance_text(message: SentinelMessage) -> str:
    """``<channel> <type> <who> [<address>] [<detail>]`` for a message with instance details.

    A master is named by its name and address, a replica by its name (which is
    its address), a sentinel by its address (its 40-hex run id means little to
    a person).
    """
    if message.role == "master":
        who = f"{message.instance} {message.address}" if message.address else message.instance
    elif message.role == "sentinel" and message.address:
        who = message.address
    else:
        who = message.instance
    detail = f" {message.detail}" if message.detail else ""
    return f"{message.channel} {message.role} {who}{detail}"


def printable(text: str) -> str:
    """`text` with control and other unprintable characters replaced by ``�``."""
    if text.isprintable():
        return text
    return "".join(
        c if c == " " or unicodedata.category(c)[0] not in "CZ" else "\N{REPLACEMENT CHARACTER}"
        for c in text
    )
