"""The operator's failover: which sentinel to ask, how to ask it, and what its reply means.

``SENTINEL FAILOVER <name>`` is sent to exactly **one** sentinel, on one
connection: redis-py's ``Sentinel.sentinel_failover`` would send it to every
sentinel, which starts several failovers or answers ``INPROG`` to itself. The
reply becomes a `FailoverOutcome`: what to record (`reply`, for the event and
the audit log) and what to tell the operator (`sentence`).

The app runs `ask_failover` in a worker; nothing here touches a widget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as rex
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from hawatch.core.cluster import ClusterSnapshot, MasterView
from hawatch.settings import Settings, SettingsError, parse_address
from hawatch.sources.sentinel import describe_error

__all__ = [
    "FAILOVER_TIMEOUT",
    "FailoverOutcome",
    "ask_failover",
    "choose_sentinel",
    "outcome_from_error",
    "outcome_from_reply",
]

FAILOVER_TIMEOUT = 3.0
"""Seconds to wait for the sentinel's answer (connecting included)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FailoverOutcome:
    """What one sentinel answered to ``SENTINEL FAILOVER``, for the record and for people."""

    master: str
    sentinel: str
    reply: str
    """``OK``, or the refusal as the server said it (``INPROG ...``, ``NOPERM ...``), or
    ``TIMEOUT ...``/``ERROR ...`` when there was no answer."""
    accepted: bool
    sentence: str
    """The status line: one sentence that says what happened and what to do."""


def choose_sentinel(
    view: MasterView, snapshot: ClusterSnapshot, prefer: Sequence[object] = ()
) -> str | None:
    """The one reachable sentinel to ask for a failover of `view`, or None if none answers.

    The sentinels in `prefer` (the configured ones, in their order) come first,
    then the others by address, so that the same sentinel is asked every time:
    a second request then meets the first one's failover and answers ``INPROG``.
    A sentinel that names another master than the one shown is avoided: it would
    fail over a configuration the operator is not looking at.
    """
    reachable = set(snapshot.reachable)
    order = [str(s) for s in prefer if str(s) in reachable]
    order += [s for s in snapshot.reachable if s not in order]
    dissenting = {sentinel for sentinel, _address, _epoch in view.dissent}
    agreeing = [s for s in order if s not in dissenting]
    candidates = agreeing or order
    return candidates[0] if candidates else None


def outcome_from_reply(master: str, sentinel: str, reply: object) -> FailoverOutcome:
    """The outcome of a normal reply (``+OK``; redis-py may give ``True`` or ``"OK"``)."""
    text = "OK" if reply is True else str(reply)
    if text.upper() == "OK":
        return FailoverOutcome(
            master, sentinel, "OK", True, f"failover of {master} accepted by {sentinel}"
        )
    return FailoverOutcome(
        master,
        sentinel,
        text,
        False,
        f"sentinel {sentinel} gave an unexpected answer to the failover of {master}: {text}",
    )


def outcome_from_error(
    master: str,
    sentinel: str,
    error: BaseException,
    *,
    timeout: float = FAILOVER_TIMEOUT,
    settings: Settings | None = None,
) -> FailoverOutcome:
    """The outcome of a refusal (``-INPROG``, ``-NOGOODSLAVE``, ``-NOPERM`` ...) or of no answer.

    Text quoted from the server is redacted with `settings` when given.
    """

    def clean(text: str) -> str:
        return settings.redact(text) if settings is not None else text

    seconds = f"{timeout:g}"
    if isinstance(error, TimeoutError | rex.TimeoutError):
        return FailoverOutcome(
            master,
            sentinel,
            f"TIMEOUT no answer within {seconds} s",
            False,
            f"sentinel {sentinel} did not answer within {seconds} s: the failover of {master} "
            "may or may not have started; watch the panel before trying again",
        )
    if isinstance(error, rex.NoPermissionError):
        said = clean(str(error).strip()) or "this user may not run SENTINEL FAILOVER"
        return FailoverOutcome(
            master,
            sentinel,
            f"NOPERM {said}",
            False,
            f"this user may not fail over (NOPERM): {said}; "
            "log in as an ACL user with +sentinel|failover",
        )
    if isinstance(error, rex.ResponseError):
        said = clean(str(error).strip())
        code = said.split(" ", 1)[0].upper()
        if code == "INPROG":
            sentence = (
                f"a failover of {master} is already in progress ({sentinel} answered INPROG); "
                "wait for it to finish"
            )
        elif code == "NOGOODSLAVE":
            sentence = (
                f"no replica can be promoted ({sentinel} answered NOGOODSLAVE): {master} keeps "
                "its master; check that a replica is up, linked and has a non-zero priority"
            )
        elif "no such master" in said.lower():
            said = f"ERR {said}" if code != "ERR" else said
            sentence = f"sentinel {sentinel} does not monitor a master called {master}"
        else:
            sentence = f"sentinel {sentinel} refused to fail over {master}: {said}"
        return FailoverOutcome(master, sentinel, said, False, sentence)
    reason = clean(describe_error(error, timeout=timeout))
    return FailoverOutcome(
        master,
        sentinel,
        f"ERROR {reason}",
        False,
        f"could not ask sentinel {sentinel} to fail over {master}: {reason}",
    )


async def ask_failover(
    settings: Settings, master: str, sentinel: str, *, timeout: float = FAILOVER_TIMEOUT
) -> FailoverOutcome:
    """Send ``SENTINEL FAILOVER master`` to `sentinel` alone and describe its answer.

    One connection, no retries, `timeout` seconds for connecting and answering
    together. Never raises except `asyncio.CancelledError`: every failure is an
    outcome with a sentence.
    """
    try:
        address = parse_address(sentinel, what="the sentinel's address")
    except SettingsError as error:
        return FailoverOutcome(master, sentinel, f"ERROR {error}", False, str(error))
    kwargs: dict[str, Any] = {
        "host": address.host,
        "port": address.port,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "decode_responses": True,
        # A retry could deliver the command twice; one answer or none is the contract.
        "retry": Retry(NoBackoff(), 0),
    }
    kwargs.update(settings.redis_kwargs())
    client = aioredis.Redis(**kwargs)
    try:
        async with asyncio.timeout(timeout):
            reply = await client.execute_command("SENTINEL", "FAILOVER", master)
    except asyncio.CancelledError:
        raise
    except Exception as error:
        return outcome_from_error(master, sentinel, error, timeout=timeout, settings=settings)
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await client.aclose()
    return outcome_from_reply(master, sentinel, reply)
