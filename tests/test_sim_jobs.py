"""Pure tests of job generation, time evolution and DURATIONPP (`ncinfo_async.sim._jobs`)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from ncinfo_async.sim._jobs import (
    FIELD_INDEX,
    FIELDS,
    INT_FIELDS,
    JobTable,
    SimClock,
    duration_pp,
    generate_jobs,
)

T0 = 1_700_000_000.0


def col(row: tuple[Any, ...] | None, name: str) -> Any:
    assert row is not None
    return row[FIELD_INDEX[name]]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (31, "31s"),
        (59, "59s"),
        (60, "1m00s"),
        (125, "2m05s"),
        (3599, "59m59s"),
        (3600, "1h00m"),
        (3720, "1h02m"),
        (86399, "23h59m"),
        (86400, "1d00h"),
        (277200, "3d05h"),
    ],
)
def test_duration_pp_style(seconds: int, text: str) -> None:
    """DURATIONPP uses two units at most: 31s, 2m05s, 1h02m, 3d05h."""
    assert duration_pp(seconds) == text


def test_generation_is_deterministic_per_seed() -> None:
    """The same seed and start time give the same jobs; another seed differs."""
    first = [plan.row(T0) for plan in generate_jobs(300, 7, T0)]
    again = [plan.row(T0) for plan in generate_jobs(300, 7, T0)]
    other = [plan.row(T0) for plan in generate_jobs(300, 8, T0)]
    assert first == again
    assert first != other


def test_generated_rows_are_realistic_and_consistent() -> None:
    """IDs are 1..N, statuses mixed, and fields agree with STATUSNC at start."""
    plans = generate_jobs(1000, 0, T0)
    rows = [plan.row(T0) for plan in plans]
    assert [col(row, "IDINT") for row in rows] == list(range(1, 1001))
    assert col(rows[0], "ID") == "000000001"
    statuses = Counter(col(row, "STATUSNC") for row in rows)
    for name in ("Done", "Failed", "Running", "Queued", "Idle", "Suspended", "Withdrawn"):
        assert statuses[name] > 0, name
    vov = {"Done": "VALID", "Failed": "FAILED", "Running": "RUNNING", "Queued": "SCHEDULED"}
    for row in rows:
        assert len(row) == len(FIELDS)
        for name in INT_FIELDS:
            assert isinstance(col(row, name), int), name
        nc = col(row, "STATUSNC")
        if nc in vov:
            assert col(row, "STATUS") == vov[nc]
        assert 1 <= col(row, "PRIORITY") <= 15
        assert str(col(row, "COMMAND")).startswith("vw ")
        assert " > vnc_logs/" in str(col(row, "COMMAND"))
        assert str(col(row, "GROUP")).startswith("/")
        assert col(row, "DURATIONPP") == duration_pp(col(row, "DURATION"))
        if nc in ("Queued", "Idle", "Withdrawn"):
            assert col(row, "HOST") == ""
            assert col(row, "STARTTIME") == 0
        else:
            assert col(row, "HOST") != ""
        if nc in ("Done", "Failed"):
            assert col(row, "DURATION") == col(row, "ENDTIME") - col(row, "STARTTIME")
            assert (col(row, "EXIT") == 0) == (nc == "Done")
        else:
            assert col(row, "ENDTIME") == 0


def test_active_jobs_finish_within_minutes() -> None:
    """Every Queued or Running job is Done or Failed 10 simulated minutes later."""
    plans = generate_jobs(500, 3, T0)
    active = [
        plan for plan in plans if plan.row(T0)[FIELD_INDEX["STATUSNC"]] in ("Queued", "Running")
    ]
    assert active
    later = [plan.row(T0 + 600) for plan in active]
    outcomes = Counter(col(row, "STATUSNC") for row in later)
    assert set(outcomes) == {"Done", "Failed"}
    for row in later:
        assert col(row, "ENDTIME") > T0
        assert col(row, "HOST") != ""


def test_running_duration_grows_with_time() -> None:
    """A running job's DURATION follows the clock until it ends, then freezes."""
    plan = next(p for p in generate_jobs(200, 0, T0) if col(p.row(T0), "STATUSNC") == "Running")
    d0 = col(plan.row(T0), "DURATION")
    assert col(plan.row(T0 + 2), "DURATION") == d0 + 2
    assert col(plan.row(plan.end + 100), "DURATION") == plan.end - plan.start


def test_job_table_caches_only_settled_rows() -> None:
    """Rows of finished jobs are cached; active ones are recomputed from the clock."""
    clock = SimClock(T0, scale=1.0)
    table = JobTable(generate_jobs(100, 0, T0), clock)
    done = next(i for i in table.ids() if col(table.row(i, T0), "STATUSNC") == "Done")
    running = next(i for i in table.ids() if col(table.row(i, T0), "STATUSNC") == "Running")
    assert table.is_settled(done)
    assert not table.is_settled(running)
    assert table.row(100_000) is None
    assert 5 in table
    assert 101 not in table
