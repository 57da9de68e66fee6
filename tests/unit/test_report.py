"""Report formatting (hawatch/report.py) on hand-built incident reports: JSON, text, Markdown,
the SLO verdict, and the summary of repeated runs."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from typing import Any

import pytest

from hawatch.core.events import BlindInfo, SwitchInfo
from hawatch.core.incidents import IncidentReport
from hawatch.report import (
    as_json,
    as_markdown,
    as_text,
    passed,
    slo_figure,
    summary,
    summary_json,
    summary_markdown,
    summary_text,
    verdict,
    work_resumed,
)

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
A, B = "127.0.0.1:6380", "127.0.0.1:6381"


def crash(gap: float = 6.9, **changes: Any) -> IncidentReport:
    """A crash: fault at T0, odown at +5.3, switch at +6.3, work again `gap` s later."""
    switched = T0 + 6.3
    resumed = switched + gap
    report = IncidentReport(
        id="mymaster-1",
        master="mymaster",
        status="closed",
        old_master=A,
        new_master=B,
        fault=T0,
        detected=T0 + 5.3,
        elected=T0 + 5.8,
        switched=switched,
        resumed=resumed,
        demoted=None,
        closed=resumed + 10,
        gap_s=gap,
        outage_s=resumed - T0,
        split_brain_s=None,
        sent=60,
        completed=55,
        pending_at_switch=3,
        lost=1,
        duplicated=0,
        results_at_risk=0,
        blind_windows=(
            BlindInfo(T0 + 0.2, T0 + 7.1, "celery-events", "connection refused"),
            BlindInfo(T0 + 0.3, None, "canary", "timed out after 1 s"),
        ),
        switches=(SwitchInfo(switched, A, B),),
        aborted=False,
        note=None,
        workers=(("demo@host", resumed),),
    )
    return replace(report, **changes)


def never_resumed() -> IncidentReport:
    """Switched at +6.3, no task since: still open, the gap counting."""
    return crash(
        status="open",
        resumed=None,
        closed=None,
        gap_s=113.7,
        outage_s=120.0,
        workers=(),
        counting=("gap_s", "outage_s"),
    )


def no_failover(outage: float = 3.0) -> IncidentReport:
    """A hang shorter than down-after: the master came back, nobody switched."""
    return crash(
        detected=None,
        elected=None,
        switched=None,
        resumed=None,
        new_master=None,
        closed=T0 + outage + 10,
        gap_s=None,
        outage_s=outage,
        switches=(),
        workers=(),
        note="the canary recovered without a failover.",
        pending_at_switch=None,
        lost=None,
    )


# -- verdicts ---------------------------------------------------------------------------


def test_the_slo_is_checked_against_the_gap_inclusive() -> None:
    report = crash(gap=6.9)
    assert work_resumed(report) and slo_figure(report) == 6.9
    assert passed(report) is True  # no SLO: work resumed is enough
    assert passed(report, 10) is True
    assert passed(report, 6.9) is True  # "within" includes the limit
    assert passed(report, 6.899) is False
    assert passed(report, 0.001) is False
    assert verdict(report, 10) == "PASSED: gap 6.900 s is within the SLO of 10 s."
    assert verdict(report, 0.25) == "FAILED: gap 6.900 s is over the SLO of 0.25 s."
    assert verdict(report) == "PASSED: work resumed, gap 6.900 s; no SLO given."


def test_work_that_never_resumed_fails_whatever_the_slo() -> None:
    report = never_resumed()
    assert not work_resumed(report) and slo_figure(report) is None
    assert passed(report) is False
    assert passed(report, 3600) is False
    assert verdict(report, 3600) == (
        "FAILED: work never resumed after the switch (waited 113.700 s)."
    )


def test_without_a_failover_the_outage_is_what_counts() -> None:
    report = no_failover(outage=3.0)
    assert work_resumed(report) and slo_figure(report) == 3.0
    assert passed(report, 5) is True and passed(report, 2) is False
    assert "no failover" in verdict(report, 5) and verdict(report, 5).startswith("PASSED")
    stuck = replace(report, status="open", closed=None, counting=("outage_s",))
    assert not passed(stuck) and verdict(stuck).startswith("FAILED: no failover happened")


# -- JSON -------------------------------------------------------------------------------


def test_json_has_every_drill_field() -> None:
    settings = {"down_after_ms": 5000, "profile": "default: Celery's own settings"}
    data = as_json(crash(), scenario="crash", slo=10, settings=settings)
    assert json.loads(json.dumps(data)) == data  # plain JSON types only
    for key in (
        "scenario",
        "master",
        "old_master",
        "new_master",
        "phases",
        "gap_s",
        "outage_s",
        "tasks",
        "split_brain_s",
        "blind_windows",
        "slo_s",
        "passed",
    ):
        assert key in data, key
    assert data["scenario"] == "crash" and data["master"] == "mymaster"
    assert (data["old_master"], data["new_master"]) == (A, B)
    assert data["phases"] == {
        "fault": T0,
        "detected": T0 + 5.3,
        "elected": T0 + 5.8,
        "switched": T0 + 6.3,
        "resumed": T0 + 6.3 + 6.9,
        "demoted": None,
        "closed": T0 + 6.3 + 6.9 + 10,
    }
    assert data["gap_s"] == 6.9 and data["outage_s"] == pytest.approx(13.2)
    assert data["split_brain_s"] is None
    assert data["tasks"] == {
        "sent": 60,
        "completed": 55,
        "lost": 1,
        "duplicated": 0,
        "pending_at_switch": 3,
        "results_at_risk": 0,
    }
    assert data["blind_windows"][1] == {
        "start": T0 + 0.3,
        "end": None,
        "source": "canary",
        "reason": "timed out after 1 s",
    }
    assert data["slo_s"] == 10 and data["passed"] is True and data["work_resumed"] is True
    assert data["settings"] == settings
    # Without a scenario (a replayed journal) the shape is the same.
    bare = as_json(never_resumed())
    assert bare["scenario"] is None and bare["slo_s"] is None and bare["passed"] is False
    assert bare["counting"] == ["gap_s", "outage_s"] and bare["settings"] == {}


# -- text -------------------------------------------------------------------------------


def test_text_report_reads_top_to_bottom_in_80_columns() -> None:
    settings = {
        "cluster": "hawatch lab: 1 master, 2 replicas, 3 sentinels (quorum 2) on loopback; "
        "Sentinel periods shortened (SENTINEL DEBUG)",
        "down_after_ms": 5000,
    }
    text = as_text(crash(), scenario="crash", slo=10, settings=settings)
    lines = text.splitlines()
    assert lines[0] == "Failover drill: crash of mymaster"
    assert all(len(line) <= 80 for line in lines), [ln for ln in lines if len(ln) > 80]
    assert f"master      {A} → {B}" in lines
    assert "fault       22:13:20.000   +0.000 s" in lines
    assert "switched    22:13:26.300   +6.300 s" in lines
    assert "demoted     —              —" in lines
    assert "gap         6.900 s (resumed − switched)" in lines
    assert "outage      13.200 s (resumed − fault)" in lines
    assert "split brain —" in lines
    assert "tasks       sent 60, completed 55, lost 1, duplicated 0" in lines
    assert "            pending at the switch 3, results at risk 0" in lines
    assert "blind       celery-events from 22:13:20.200 for 6.900 s: connection refused" in lines
    assert "            canary from 22:13:20.300, still blind: timed out after 1 s" in lines
    assert "workers     demo@host resumed +6.900 s after the switch" in lines
    # A long setting wraps under its label instead of running off the screen.
    start = lines.index(
        "settings    cluster: hawatch lab: 1 master, 2 replicas, 3 sentinels (quorum 2)"
    )
    assert lines[start + 1].startswith("            on loopback;")
    assert lines[-1] == "result      PASSED: gap 6.900 s is within the SLO of 10 s."


def test_text_report_of_an_open_incident_says_what_is_still_counting() -> None:
    text = as_text(never_resumed(), slo=30)
    assert text.startswith("Failover incident mymaster-1 of mymaster (open)\n")
    assert "gap         113.700 s and counting (resumed − switched)\n" in text
    assert "resumed     —              —\n" in text
    assert text.endswith(
        "result      FAILED: work never resumed after the switch (waited 113.700 s).\n"
    )


# -- Markdown ---------------------------------------------------------------------------


def test_markdown_is_a_postmortem_section() -> None:
    settings = {"profile": "tuned", "fault": "a | b"}
    md = as_markdown(crash(), scenario="crash", slo=10, settings=settings)
    lines = md.splitlines()
    assert lines[0] == "## Failover drill: crash of mymaster (2023-11-14 22:13:20 UTC)"
    assert "**PASSED: gap 6.900 s is within the SLO of 10 s.**" in lines
    assert f"Master `mymaster`: `{A}` → `{B}`." in lines
    table = lines.index("| phase | time (UTC) | since the fault |")
    assert lines[table + 1] == "| --- | --- | --- |"
    assert lines[table + 2 : table + 9] == [
        "| fault | 22:13:20.000 | +0.000 s |",
        "| detected | 22:13:25.300 | +5.300 s |",
        "| elected | 22:13:25.800 | +5.800 s |",
        "| switched | 22:13:26.300 | +6.300 s |",
        "| resumed | 22:13:33.200 | +13.200 s |",
        "| demoted | — | — |",
        "| closed | 22:13:43.200 | +23.200 s |",
    ]
    assert any(line.startswith("| gap | 6.900 | resumed − switched") for line in lines)
    assert any(line.startswith("| split brain | — |") for line in lines)
    assert "### Tasks" in lines and "| pending at the switch | 3 |" in lines
    assert "| lost | 1 |" in lines and "| results at risk | 0 |" in lines
    assert "### Blind windows" in lines
    assert "- celery-events from 22:13:20.200 for 6.900 s: connection refused" in lines
    assert "| `demo@host` | +6.900 s |" in lines
    assert "### Settings" in lines and "| profile | tuned |" in lines
    assert "| fault | a \\| b |" in lines  # a pipe in a value does not break the table
    # Every table row has as many cells as its header.
    for index, line in enumerate(lines):
        if line.startswith("| ---"):
            columns = lines[index - 1].count(" | ")
            row = index + 1
            while row < len(lines) and lines[row].startswith("| "):
                assert lines[row].replace("\\|", "").count(" | ") == columns, lines[row]
                row += 1
    deeper = as_markdown(no_failover(), level=3)
    assert deeper.startswith("### Failover incident mymaster-1 of mymaster (closed)")
    assert "#### Tasks" in deeper and "Note: the canary recovered without a failover." in deeper
    assert f"Master `mymaster`: `{A}`, no switch." in deeper


# -- repeated runs ----------------------------------------------------------------------


def test_summary_gives_median_min_and_max_over_the_runs_that_have_a_figure() -> None:
    runs = [crash(gap=2.0), crash(gap=7.0), crash(gap=4.0), never_resumed()]
    figures = summary(runs[:3])
    assert figures["gap_s"] == {"median": 4.0, "min": 2.0, "max": 7.0, "runs": 3}
    assert figures["split_brain_s"] == {"median": None, "min": None, "max": None, "runs": 0}
    even = summary([crash(gap=2.0), crash(gap=7.0)])["gap_s"]
    assert even["median"] == 4.5

    data = summary_json(runs[:3], scenario="crash", slo=5, settings={"profile": "default"})
    assert json.loads(json.dumps(data)) == data
    assert data["runs"] == 3 and data["passed"] is False  # 7.0 is over 5
    assert [r["passed"] for r in data["reports"]] == [True, False, True]
    assert data["reports"][0]["scenario"] == "crash" and data["summary"]["gap_s"]["max"] == 7.0
    assert summary_json(runs[:3], slo=10)["passed"] is True

    text = summary_text(runs, scenario="crash", slo=5)
    lines = text.splitlines()
    assert lines[0] == "Failover drill: crash of mymaster, 4 runs"
    assert all(len(line) <= 80 for line in lines)
    assert lines[2] == "run            gap    outage  split brain  result"
    assert lines[4] == "2            7.000    13.300            —  FAILED: over the SLO"
    assert lines[6] == "4         >113.700  >120.000            —  FAILED: not resumed"
    # A figure still counting is not a result: the summary leaves it out.
    assert "median       4.000    10.300            —" in lines
    assert "max          7.000    13.300            —" in lines
    assert summary(runs)["gap_s"]["runs"] == 3
    assert lines[-1] == (
        "result      FAILED: 2 of 4 runs failed (over the SLO or work never resumed)."
    )

    md = summary_markdown(runs[:3], scenario="crash", slo=10)
    assert md.startswith("## Failover drill: crash of mymaster, 3 runs\n")
    assert "**PASSED: every run resumed within the SLO of 10 s.**" in md
    assert "| gap | 4.000 | 2.000 | 7.000 |" in md
    assert "| 2 | 2023-11-14 22:13:20 UTC | 7.000 | 13.300 | — |" in md


def test_the_report_module_needs_neither_the_drill_nor_the_screen() -> None:
    code = (
        "import sys, hawatch.report; "
        "bad = [m for m in ('hawatch.drill', 'hawatch.cli', 'textual', 'click', 'celery', 'redis')"
        " if m in sys.modules]; print(bad)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
