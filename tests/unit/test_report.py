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


# -- users (HTTP probes) and Prometheus ------------------------------------------------


def with_users(**changes: Any) -> IncidentReport:
    """The crash with HTTP probes failing from 0.4 s before the fault until 0.8 s after
    the switch, and Prometheus showing the new master 2.25 s after it."""
    switched = T0 + 6.3
    values: dict[str, Any] = {
        "http_probed": True,
        "user_failed": T0 - 0.4,
        "user_resumed": switched + 0.8,
        "user_gap_s": 0.8,
        "user_outage_s": 7.5,
        "prometheus_watched": True,
        "prometheus_seen": switched + 2.25,
        "prometheus_lag_s": 2.25,
    }
    values.update(changes)
    return crash(**values)


def test_reports_without_probes_or_prometheus_say_nothing_about_them() -> None:
    report = crash()
    text = as_text(report, scenario="crash", slo=10)
    assert "users" not in text and "prometheus" not in text.lower() and "HTTP" not in text
    md = as_markdown(report)
    assert "users" not in md.lower() and "prometheus" not in md.lower()
    data = as_json(report)
    assert not {k for k in data if k.startswith(("user_", "prometheus_"))}
    assert set(summary([report])) == {"gap_s", "outage_s", "split_brain_s"}
    assert "users" not in summary_text([report]) and "users" not in summary_markdown([report])


def test_the_users_resume_and_the_prometheus_lag_beside_the_celery_gap() -> None:
    report = with_users()
    lines = as_text(report, scenario="crash", slo=10).splitlines()
    assert all(len(line) <= 80 for line in lines), [ln for ln in lines if len(ln) > 80]
    gap = lines.index("gap         6.900 s (resumed − switched)")
    assert lines[gap + 3 : gap + 6] == [
        "users       gap 0.800 s (first successful HTTP probe − switched)",
        "            outage 7.500 s (failing since 22:13:19.600)",
        "prometheus  lag 2.250 s (it first showed the new master at 22:13:28.550)",
    ]
    assert lines[-1] == "result      PASSED: gap 6.900 s is within the SLO of 10 s."  # unchanged

    data = as_json(report, scenario="crash")
    assert json.loads(json.dumps(data)) == data
    assert data["user_gap_s"] == 0.8 and data["user_outage_s"] == 7.5
    assert data["user_resumed"] == T0 + 7.1 and data["user_failed"] == T0 - 0.4
    assert data["prometheus_seen"] == T0 + 8.55 and data["prometheus_lag_s"] == 2.25

    md = as_markdown(report).splitlines()
    assert any(line.startswith("| users' gap | 0.800 | first successful HTTP") for line in md)
    assert any(line.startswith("| users' outage | 7.500 |") for line in md)
    assert any(line.startswith("| Prometheus lag | 2.250 |") for line in md)
    assert "- Prometheus: lag 2.250 s (it first showed the new master at 22:13:28.550)." in md
    assert (
        "- Users: gap 0.800 s (first successful HTTP probe − switched); "
        "outage 7.500 s (failing since 22:13:19.600)."
    ) in md


def test_users_and_prometheus_not_there_yet_are_said_in_words() -> None:
    open_ = with_users(
        status="open",
        closed=None,
        user_resumed=None,
        user_gap_s=3.0,
        user_outage_s=9.7,
        prometheus_seen=None,
        prometheus_lag_s=3.0,
        counting=("user_gap_s", "user_outage_s", "prometheus_lag_s"),
    )
    text = as_text(open_)
    assert (
        "users       gap 3.000 s and counting (no HTTP probe succeeded since the switch)\n"
        "            outage 9.700 s and counting (failing since 22:13:19.600)\n"
        "prometheus  lag 3.000 s and counting: still not showing the new master\n"
    ) in text
    never = with_users(
        user_resumed=None,
        user_gap_s=None,
        user_outage_s=None,
        user_failed=None,
        prometheus_seen=None,
        prometheus_lag_s=None,
    )
    text = as_text(never)
    assert (
        "users       no HTTP probe succeeded after the switch\n"
        "            no HTTP probe failed\n"
        "prometheus  had not shown the new master\n"
    ) in text
    assert never.to_dict()["user_gap_s"] is None  # the key is there: probes ran
    healthy = with_users(user_failed=None, user_outage_s=None)
    assert "            no HTTP probe failed\n" in as_text(healthy)
    failing = with_users(user_outage_s=None)
    assert "            failing since 22:13:19.600\n" in as_text(failing)
    quiet = no_failover()
    quiet = replace(quiet, http_probed=True, user_failed=T0 + 0.5, prometheus_watched=True)
    text = as_text(quiet)
    assert (
        "users       no switch, so no users' gap\n            failing since 22:13:20.500\n" in text
    )
    assert "prometheus  no switch, so no lag to measure\n" in text
    assert "- Users: no switch, so no users' gap; failing since 22:13:20.500." in as_markdown(quiet)


def test_a_summary_adds_the_users_and_prometheus_figures_when_some_run_had_them() -> None:
    runs = [with_users(user_gap_s=0.5), with_users(user_gap_s=1.5), crash()]
    figures = summary(runs)
    assert figures["user_gap_s"] == {"median": 1.0, "min": 0.5, "max": 1.5, "runs": 2}
    assert figures["prometheus_lag_s"]["runs"] == 2
    lines = summary_text(runs, scenario="crash").splitlines()
    assert all(len(line) <= 80 for line in lines)
    start = lines.index("users       gap median 1.000, min 0.500, max 1.500")
    assert lines[start + 1 : start + 3] == [
        "            outage median 7.500, min 7.500, max 7.500",
        "prometheus  lag median 2.250, min 2.250, max 2.250",
    ]
    md = summary_markdown(runs)
    assert "| users' gap | 1.000 | 0.500 | 1.500 |" in md
    assert "| Prometheus lag | 2.250 | 2.250 | 2.250 |" in md
    assert summary_json(runs)["summary"]["user_outage_s"]["median"] == 7.5
