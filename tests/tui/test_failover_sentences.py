"""What the operator reads after the failover key: one sentence per kind of answer.

The exceptions are the ones redis-py raises for the server's replies (the real
replies are exercised in ``tests/integration/test_failover_key.py``); here only
the wording and the recorded reply are checked, and the choice of sentinel.
"""

from __future__ import annotations

import pytest
from redis import exceptions as rex

from hawatch.core.cluster import ClusterSnapshot, MasterView
from hawatch.settings import Secret, SentinelAddress, Settings
from hawatch.views.failover import choose_sentinel, outcome_from_error, outcome_from_reply

M, S = "mymaster", "127.0.0.1:26379"


@pytest.mark.parametrize("reply", [True, "OK", "ok"])
def test_ok_is_accepted(reply: object) -> None:
    outcome = outcome_from_reply(M, S, reply)
    assert outcome.accepted and outcome.reply == "OK"
    assert outcome.sentence == "failover of mymaster accepted by 127.0.0.1:26379"


@pytest.mark.parametrize(
    ("error", "reply", "sentence"),
    [
        (
            rex.ResponseError("INPROG Failover already in progress"),
            "INPROG Failover already in progress",
            "a failover of mymaster is already in progress (127.0.0.1:26379 answered INPROG); "
            "wait for it to finish",
        ),
        (
            rex.ResponseError("NOGOODSLAVE No suitable replica to promote"),
            "NOGOODSLAVE No suitable replica to promote",
            "no replica can be promoted (127.0.0.1:26379 answered NOGOODSLAVE): mymaster keeps "
            "its master; check that a replica is up, linked and has a non-zero priority",
        ),
        (
            rex.NoPermissionError(
                "this user has no permissions to run the 'sentinel|failover' command"
            ),
            "NOPERM this user has no permissions to run the 'sentinel|failover' command",
            "this user may not fail over (NOPERM): this user has no permissions to run the "
            "'sentinel|failover' command; log in as an ACL user with +sentinel|failover",
        ),
        (
            rex.ResponseError("No such master with that name"),
            "ERR No such master with that name",
            "sentinel 127.0.0.1:26379 does not monitor a master called mymaster",
        ),
        (
            TimeoutError(),
            "TIMEOUT no answer within 3 s",
            "sentinel 127.0.0.1:26379 did not answer within 3 s: the failover of mymaster may "
            "or may not have started; watch the panel before trying again",
        ),
        (
            rex.TimeoutError("Timeout reading from socket"),
            "TIMEOUT no answer within 3 s",
            "sentinel 127.0.0.1:26379 did not answer within 3 s: the failover of mymaster may "
            "or may not have started; watch the panel before trying again",
        ),
        (
            rex.ConnectionError("Error 111 connecting to 127.0.0.1:26379. Connection refused."),
            "ERROR connection refused",
            "could not ask sentinel 127.0.0.1:26379 to fail over mymaster: connection refused",
        ),
        (
            rex.ResponseError("BUSY something else"),
            "BUSY something else",
            "sentinel 127.0.0.1:26379 refused to fail over mymaster: BUSY something else",
        ),
    ],
)
def test_each_refusal_is_a_sentence(error: BaseException, reply: str, sentence: str) -> None:
    outcome = outcome_from_error(M, S, error)
    assert not outcome.accepted
    assert outcome.reply == reply
    assert outcome.sentence == sentence


def test_a_password_quoted_by_the_server_is_redacted() -> None:
    settings = Settings(sentinels=(), password=Secret("pw-123456"))
    outcome = outcome_from_error(
        M, S, rex.ResponseError("WRONGPASS pw-123456 is wrong"), settings=settings
    )
    assert "pw-123456" not in outcome.sentence + outcome.reply


def view(dissent: tuple[tuple[str, str, int | None], ...] = ()) -> MasterView:
    return MasterView(
        name=M,
        ip="127.0.0.1",
        port=6379,
        epoch=0,
        since=0.0,
        age=1.0,
        switched=False,
        previous=None,
        known=3,
        agree=3 - len(dissent),
        dissent=dissent,
        flags=("master",),
        last_report=0.0,
    )


def snapshot(*reachable: str) -> ClusterSnapshot:
    return ClusterSnapshot(now=1.0, masters=(), reachable=tuple(sorted(reachable)), unreachable=())


def test_one_reachable_sentinel_is_chosen_the_configured_one_first() -> None:
    a, b, c = "127.0.0.1:26379", "127.0.0.1:26380", "127.0.0.1:26381"
    assert choose_sentinel(view(), snapshot(a, b, c)) == a
    prefer = (SentinelAddress("127.0.0.1", 26381), SentinelAddress("127.0.0.1", 26380))
    assert choose_sentinel(view(), snapshot(a, b, c), prefer) == c
    # A sentinel that names another master is not asked while another one agrees.
    assert choose_sentinel(view(((c, "127.0.0.1:6380", 1),)), snapshot(a, b, c), prefer) == b
    assert choose_sentinel(view(), snapshot(), prefer) is None
