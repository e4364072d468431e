"""Every collected test has exactly one tier (pure, sim, cli or faults), and each tier has tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TIERS = {"pure", "sim", "cli", "faults"}
ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.cli


def collect(tmp_path: Path, *args: str) -> dict[str, list[str]]:
    """Collect the suite in a subprocess; return each test's tier markers (from conftest.py)."""
    report = tmp_path / "tiers.txt"
    env = {**os.environ, "NCINFO_TIER_REPORT": str(report)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    tiers: dict[str, list[str]] = {}
    for line in report.read_text().splitlines():
        nodeid, _, names = line.partition("\t")
        tiers[nodeid] = names.split(",") if names else []
    return tiers


def test_every_test_has_exactly_one_tier(tmp_path: Path) -> None:
    """The whole suite partitions into the four tiers: one tier marker per test, none empty."""
    tiers = collect(tmp_path)
    assert len(tiers) > 400
    wrong = {nodeid: names for nodeid, names in tiers.items() if len(names) != 1}
    assert not wrong
    assert {names[0] for names in tiers.values()} == TIERS
    assert tiers["tests/test_tiers.py::test_every_test_has_exactly_one_tier"] == ["cli"]
